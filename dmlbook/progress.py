"""A progress bar for a chapter's long cells, shown only where a reader waits for it.

In a live kernel (JupyterLab, Binder) a cell that trains for many seconds shows
only ``[*]``; :func:`steps` wraps its loop in a ``tqdm`` bar there. In the book
build the bar would be saved into the page as a dead widget, so it stays silent
when the build marks its kernels (``DMLBOOK_STATIC_BUILD=1``, set by
``_ext/pagespeed.py``) or under ``TQDM_DISABLE``, and outside IPython.

Use it in a chapter cell::

    from dmlbook.progress import steps
    runs = [train(seed=s) for s in steps(range(5), "seeds")]
"""

from __future__ import annotations

import os
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")
STATIC_BUILD_ENV = "DMLBOOK_STATIC_BUILD"
MAX_TOTAL = 10**9


def shown() -> bool:
    """True in a live IPython kernel, False in the book build, under TQDM_DISABLE, or in a script."""
    if os.environ.get(STATIC_BUILD_ENV, "") == "1":
        return False
    if os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true", "yes"):
        return False
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with the kernel
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def steps(iterable: Iterable[T], desc: str, *, total: int | None = None) -> Iterator[T]:
    """Iterate over ``iterable``; in a live kernel with a bar labelled ``desc``.

    ``total`` (the number of items) defaults to ``len(iterable)`` where it has one.
    The bar disappears when the loop ends (the cell's output stays as it was).
    """
    if not isinstance(desc, str) or not desc.strip():
        raise ValueError(f"desc must be a non-empty string naming what is counted, got {desc!r}")
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)
    if total is not None and (isinstance(total, bool) or not isinstance(total, int)
                              or not 0 <= total <= MAX_TOTAL):
        raise ValueError(f"total must be a whole number from 0 to {MAX_TOTAL:,}, got {total!r}")
    if not shown():
        yield from iterable
        return
    from tqdm.auto import tqdm

    with tqdm(iterable, desc=desc, total=total, leave=False) as bar:
        yield from bar
