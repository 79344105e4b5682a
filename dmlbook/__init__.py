"""dmlbook: the tested code behind the book's exercises (:data:`dmlbook.sheet.EXERCISES`).

One module per concept; the chapters import these and narrate.

Importing the package changes no global state. A program that runs the
package (a chapter, a benchmark, a worker of :mod:`dmlbook.distributed`)
caps torch's CPU threads itself with :func:`configure_threads`: the models
are small, and on a busy 2-core machine more threads than free cores make
every step slower, not faster.
"""

import numbers
import os
from contextlib import contextmanager

__version__ = "0.1.0"

#: Environment variable that sets the number of torch CPU threads.
THREADS_ENV = "DMLBOOK_THREADS"
#: Default and largest thread counts.
DEFAULT_MAX_THREADS = 2
MAX_THREADS = 256


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, else the machine's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def thread_count(environ=os.environ) -> int:
    """Torch CPU threads: ``$DMLBOOK_THREADS``, else ``min(2, available cores)``.

    A value that is not a whole number in [1, 256] is a ``ValueError`` naming
    the variable.
    """
    raw = environ.get(THREADS_ENV, "").strip()
    if not raw:
        return min(DEFAULT_MAX_THREADS, available_cores())
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not 1 <= value <= MAX_THREADS:
        raise ValueError(f"{THREADS_ENV} must be a whole number of threads in "
                         f"[1, {MAX_THREADS}], got {raw!r}")
    return value


def configure_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads to ``threads`` (default :func:`thread_count`).

    Inter-op threads are set to 1 too, where torch still allows it (only
    before its first parallel work). Returns the thread count set.
    """
    n = thread_count() if threads is None else threads
    if isinstance(n, numbers.Integral) and not isinstance(n, bool):
        n = int(n)  # a NumPy integer too
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_THREADS:
        raise ValueError(f"threads must be a whole number in [1, {MAX_THREADS}], got {n!r}")
    import sys

    if "torch" not in sys.modules:
        # OpenMP sizes its pool when torch loads: tell it before.
        os.environ.setdefault("OMP_NUM_THREADS", str(n))
    import torch

    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # torch already ran parallel work in this process
        pass
    return n


@contextmanager
def pinned_threads(threads: int = 1):
    """Run a block on ``threads`` torch intra-op threads, then restore the count.

    The package's one thread-pinning helper: timings and the live panels run
    their small models on one thread, whatever the kernel was set to.
    """
    if (isinstance(threads, bool) or not isinstance(threads, int)
            or not 1 <= threads <= MAX_THREADS):
        raise ValueError(f"threads must be a whole number in [1, {MAX_THREADS}], got {threads!r}")
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _record_glued_values() -> None:
    """In a live kernel, keep what cells glue: JupyterLab shows it (dmlbook.glued)."""
    from . import glued

    glued.install()


_record_glued_values()
