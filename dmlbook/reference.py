"""The workbook's reference solutions, now at :mod:`dmlbook.check.reference` (this name stays)."""

from .check.reference import *  # noqa: F401,F403
from .check.reference import __all__  # noqa: F401
