"""Claims a chapter makes in words, checked against the numbers it computed.

A chapter states each qualitative sentence once, with the condition that makes
it true, in a hidden cell::

    claim("balanced sampling reduces the share of silent nodes", bal < uni)

When the condition stops holding (a change to the package, a different seed,
a different machine), :func:`claim` raises :class:`ClaimError`, the cell fails,
and the ``-W`` build fails with the claim's own words in the log.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ClaimError", "claim", "claims_made", "reset"]

_MADE: list[str] = []


class ClaimError(AssertionError):
    """A sentence of the book that its own numbers no longer support."""


def claim(statement: str, condition, **evidence) -> bool:
    """Assert that ``statement`` holds, because ``condition`` is true.

    ``condition`` is a bool (or a numpy bool, or an array that must be true
    everywhere). ``evidence`` names the numbers behind it; they are printed in
    the error, so a failing build says what changed. Returns ``True``.
    """
    if not isinstance(statement, str) or not statement.strip():
        raise ValueError(f"statement must be a non-empty sentence, got {statement!r}")
    holds = np.asarray(condition)
    if holds.dtype != bool:
        raise ValueError(f"condition of claim {statement!r} must be a bool "
                         f"(a comparison), got {condition!r}")
    if not holds.size or not bool(holds.all()):
        detail = ", ".join(f"{k}={v!r}" for k, v in evidence.items())
        raise ClaimError(f"claim no longer holds: {statement!r}"
                         + (f" ({detail})" if detail else ""))
    _MADE.append(statement)
    return True


def claims_made() -> list[str]:
    """The statements checked so far in this process (kernel), in order."""
    return list(_MADE)


def reset() -> None:
    """Forget the claims made so far (tests)."""
    _MADE.clear()
