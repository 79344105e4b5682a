"""What a check trusts, and how long it waits: the package as it came, whose code
raised, and the time limit.

The checks judge with the package, torch, NumPy, ``math`` and ``builtins`` as
they came (:func:`bindings`, :func:`foreign`, :func:`changed_bindings`), blame
an error on the student only where their own code raised it
(:func:`raised_in_student_code`), and stop the student's code with interval
timers (:func:`time_limit`). :mod:`.harness` runs the checks with these; the
package docstring, :mod:`dmlbook.check`, says what they cannot do.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import sysconfig
import threading
import types

from .display import short

#: Whether a check refuses to judge while functions of the package (outside
#: dmlbook.check), torch, NumPy, math or builtins are rebound (tests that spy on the
#: package's internals turn it off).
GUARD_BINDINGS = True
WATCHED_MODULES = ("builtins", "math", "numpy", "torch", "torch.nn.functional")


class TimeUp(BaseException):
    """Raised in the student's code when the check's time is up (not an Exception,
    so that ``except Exception`` in a student's loop does not swallow it)."""


@contextlib.contextmanager
def time_limit(seconds: float, wait_s: float):
    """Raise :class:`TimeUp` in the main thread after ``seconds`` of CPU time or
    ``wait_s`` of wall time (and every 0.2 s after that, should the
    student's code catch it). No limit off the main thread or where the platform
    has no interval timers (Windows)."""
    usable = (seconds and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    armed = [True]

    def alarm(signum, frame):
        if armed[0]:
            raise TimeUp()

    timers = ((signal.SIGPROF, signal.ITIMER_PROF, seconds),
              (signal.SIGALRM, signal.ITIMER_REAL, wait_s))
    previous = []

    def disarm():
        armed[0] = False
        for (sig, timer, _), handler in zip(timers, previous):
            signal.setitimer(timer, 0)
            signal.signal(sig, handler)

    try:  # armed inside the try: a limit that runs out at once is still disarmed
        for sig, _, _ in timers:
            previous.append(signal.signal(sig, alarm))
        for _, timer, limit in timers:
            signal.setitimer(timer, limit, 0.2)
        yield
    finally:
        while True:  # a last alarm may interrupt the disarming: then disarm again
            try:
                disarm()
                break
            except TimeUp:
                continue


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_LIBRARY_DIRS = tuple({sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib",
                                                              "purelib", "platlib")})


def error_text(err: BaseException) -> str:
    """``Type: message`` of an error, short; an error whose ``str`` fails is named alone."""
    try:
        return f"{type(err).__name__}: {short(str(err))}"
    except Exception:
        return type(err).__name__


def raised_in_student_code(err: BaseException) -> bool:
    """Whether a frame of ``err``'s traceback is outside this package and the libraries:
    code the student wrote (a notebook cell, a test), such as a returned object's method."""
    tb = err.__traceback__
    while tb is not None:
        if not library_file(tb.tb_frame.f_code.co_filename):
            return True
        tb = tb.tb_next
    return False


def bindings() -> dict:
    """The functions and classes of the watched modules and of the package (outside
    dmlbook.check): ``{(module, name): value}``."""
    names = [m for m in list(sys.modules) if m in WATCHED_MODULES
             or m.startswith("dmlbook.") and not m.startswith("dmlbook.check")]
    found = {}
    for module_name in names:
        for attr, value in list(vars(sys.modules[module_name]).items()):
            if callable(value) and not isinstance(value, types.ModuleType):
                found[module_name, attr] = value
    return found


def changed_bindings(before: dict) -> list:
    """The ``(module, name)`` of ``before`` whose value is another object now."""
    changed = []
    for (module_name, attr), value in before.items():
        module = sys.modules.get(module_name)
        if module is not None and vars(module).get(attr, value) is not value:
            changed.append((module_name, attr))
    return changed


def library_file(filename: str) -> bool:
    return (filename.startswith(_PACKAGE_DIR) or filename.startswith(_LIBRARY_DIRS)
            or filename.startswith("<frozen"))


def foreign(value) -> bool:
    """Whether ``value`` is code from outside the package and the libraries (a notebook
    cell's function, or an instance or partial of one)."""
    target = getattr(value, "func", value) if not isinstance(value, type) else value
    code = getattr(target, "__code__", None)
    if code is not None:
        return not library_file(code.co_filename)
    cls = target if isinstance(target, type) else type(target)
    name = str(getattr(cls, "__module__", None) or "__main__")
    while name not in sys.modules and "." in name:  # numpy.rec: a name, not a module
        name = name.rsplit(".", 1)[0]
    if name == "__main__" or name not in sys.modules:  # a notebook's own class
        return True
    filename = getattr(sys.modules[name], "__file__", None)
    return filename is not None and not library_file(filename)
