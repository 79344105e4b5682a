import os
import time

import matplotlib
import pytest

matplotlib.use("Agg")  # tests never open windows
os.environ.setdefault("TQDM_DISABLE", "1")

import dmlbook  # noqa: E402

# The test session is a main program of the package: it caps torch's threads
# as the chapters do (importing dmlbook changes nothing by itself). On a
# pytest-xdist worker (`make test` runs two), one thread each: two workers of two
# threads on two cores spend their time waiting for each other.
dmlbook.configure_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else None)
if os.environ.get("PYTEST_XDIST_WORKER"):
    # And so do the processes the tests start: the book's and the handout's kernels,
    # JupyterLab's, Binder's. Two kernels of two threads each, one per worker, ran
    # 2 to 4 times slower side by side than alone.
    os.environ.setdefault(dmlbook.THREADS_ENV, "1")

# End-to-end tests, marked ``slow``: `make test-fast` (pytest -m "not slow") leaves them
# out, `make test` runs them. Whole modules: the book build, the browser, JupyterLab,
# the Binder environment, the handout, the launcher's real gloo runs.
SLOW_MODULES = {"test_book", "test_browser", "test_explorers_browser", "test_lab",
                "test_binder_env", "test_handout", "test_claims_build", "test_distributed"}
# Single tests elsewhere that start real gloo worker processes: found by what they call.
SLOW_CALLS = ("run_dpsgd_distributed(", "torch_distributed=True")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: an end-to-end test (book build, browser, "
                            "JupyterLab, Binder environment, handout, launcher); "
                            "`make test-fast` leaves it out")


def pytest_collection_modifyitems(config, items):
    import inspect

    for item in items:
        try:
            source = inspect.getsource(item.function)
        except (AttributeError, OSError, TypeError):
            source = ""
        if (item.path.stem in SLOW_MODULES or any(call in source for call in SLOW_CALLS)
                or "built_book" in getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


BAD_NUMBERS = [0, -1, -0.5, float("nan"), float("inf"), float("-inf"), "10", None, True, [1]]


@pytest.fixture(autouse=True)
def seeded_global_streams():
    """Each test starts from the same global random state (torch, NumPy, ``random``),
    whatever ran before it on its worker: a test's unseeded draws are the same in
    every run and in every order."""
    import random

    import numpy as np
    import torch

    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def built_book(tmp_path_factory):
    """One cold build of the whole book per test session (as `make book` runs it).

    `make test` runs the test files on two pytest-xdist workers (``--dist
    loadfile``: a file's tests, and so its module fixtures, stay on one worker).
    Tests of the built book sit in several files, so the first worker to need
    the book builds it while holding a lock, and the other reads its result: one
    build per run. The lock and the result live in the run's own temporary
    folder, which both workers share and no earlier run left behind.
    """
    import fcntl
    import json
    import subprocess

    from book_helpers import build_book

    if "PYTEST_XDIST_WORKER" not in os.environ:
        return build_book()
    shared = tmp_path_factory.getbasetemp().parent  # this run's, one per xdist run
    result = shared / "built_book.json"
    with open(shared / "built_book.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not result.is_file():
            done = build_book()
            result.write_text(json.dumps({"args": done.args, "returncode": done.returncode,
                                          "stdout": done.stdout, "stderr": done.stderr}))
    return subprocess.CompletedProcess(**json.loads(result.read_text()))


@pytest.fixture
def slow_down(monkeypatch):
    """``slow_down(owner, name, seconds)``: ``owner.name`` (a function or a method)
    waits ``seconds`` of wall-clock, using no CPU, before it runs, for this test."""
    def apply(owner, name: str, seconds: float) -> None:
        real = getattr(owner, name)

        def slowed(*args, **kwargs):
            time.sleep(seconds)
            return real(*args, **kwargs)

        monkeypatch.setattr(owner, name, slowed)

    return apply
