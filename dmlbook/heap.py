"""Giving the heap's free memory back to the system during long runs.

A long simulated run allocates and frees the same large buffers thousands of
times. glibc's ``malloc`` keeps freed chunks inside its heap and returns only
the heap's top, so on a busy machine the heap can fragment: in a run of
``train_data_parallel("ps")`` with 4,096 workers for 2,441 rounds beside other
work, the heap's free memory rose from 37 MiB to 1.82 GiB while the memory in
use stayed at 96 to 214 MiB, and the process's peak from 0.46 to 2.26 GiB. A
copy of the run calling ``malloc_trim`` every 50 rounds stayed at 0.60 GiB, and
the case with :class:`Trimmer` in the engine peaked at 0.73 GiB
(benchmarks/README.md, session 13).

``malloc_trim`` changes no result: it only hands free pages back. Where the C
library has none (macOS, Windows, musl), :func:`trim` does nothing.
"""

from __future__ import annotations

import ctypes

#: Engine calls (one batched step or gradient computation of all nodes) between
#: two trims. A trim costs a few microseconds on a small heap, about 1 ms on a large
#: fragmented one with nothing to hand back, and 0.11 s to hand back 469 MiB in
#: 2,500 gaps; a step of 4,096 MLP workers takes about 80 ms.
TRIM_EVERY_CALLS = 32


def _find_malloc_trim():
    try:
        return ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError, TypeError):  # no glibc, or no such symbol
        return None


_MALLOC_TRIM = _find_malloc_trim()


def available() -> bool:
    """Whether this process's C library can trim its heap (glibc)."""
    return _MALLOC_TRIM is not None


def trim() -> bool:
    """Hand the heap's free pages back to the system; whether anything could be done."""
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)
    return True


class Trimmer:
    """Calls :func:`trim` once every ``every`` calls of :meth:`tick`."""

    def __init__(self, every: int = TRIM_EVERY_CALLS):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a whole number of calls >= 1, got {every!r}")
        self.every = every
        self.calls = 0

    def tick(self) -> None:
        self.calls += 1
        if self.calls % self.every == 0:
            trim()
