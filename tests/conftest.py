import os

import matplotlib
import pytest

matplotlib.use("Agg")  # tests never open windows
os.environ.setdefault("TQDM_DISABLE", "1")

import dmlbook  # noqa: E402

# The test session is a main program of the package: it caps torch's threads
# as the chapters do (importing dmlbook changes nothing by itself).
dmlbook.configure_threads()

BAD_NUMBERS = [0, -1, -0.5, float("nan"), float("inf"), float("-inf"), "10", None, True, [1]]


@pytest.fixture(scope="session")
def built_book():
    """One cold build of the whole book per test session (as `make book` runs it)."""
    from book_helpers import build_book

    return build_book()
