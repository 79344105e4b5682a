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
import site
import sys
import sysconfig
import threading
import types

from .display import short

#: Whether a check refuses to judge while a name of the package (outside
#: dmlbook.check), torch, NumPy, math or builtins is bound to a notebook's code (tests
#: that spy on the package's internals turn it off).
GUARD_BINDINGS = True
WATCHED_MODULES = ("builtins", "math", "numpy", "torch", "torch.nn.functional")


class TimeUp(BaseException):
    """Raised in the student's code when the check's time is up (not an Exception,
    so that ``except Exception`` in a student's loop does not swallow it)."""


def timers_available() -> bool:
    """Whether a time limit can stop code here: interval timers, on the main thread."""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def time_limit(seconds: float, wait_s: float):
    """Raise :class:`TimeUp` in the main thread after ``seconds`` of CPU time or
    ``wait_s`` of wall time (and every 0.2 s after that, should the
    student's code catch it). No limit off the main thread or where the platform
    has no interval timers (Windows)."""
    usable = seconds and timers_available()
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


def _trusted_dirs() -> tuple[str, ...]:
    """Where the package and the libraries live: this package, the interpreter's
    paths, every site-packages (the user's, Debian's dist-packages), and the folder
    of each watched library wherever it came from (``PYTHONPATH`` on a cluster)."""
    dirs = [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
    dirs += [sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib",
                                                    "platlib")]
    try:
        dirs += site.getsitepackages() + [site.getusersitepackages()]
    except AttributeError:  # an old virtualenv's site module has neither
        pass
    for name in ("numpy", "torch"):
        file = getattr(sys.modules.get(name), "__file__", None)
        if file:
            dirs.append(os.path.dirname(os.path.dirname(file)))
    found = set()
    for folder in dirs:
        found.update({os.path.normcase(os.path.abspath(folder)) + os.sep,
                      os.path.normcase(os.path.realpath(folder)) + os.sep})
    return tuple(sorted(found))


_TRUSTED_DIRS = _trusted_dirs()


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
        if not _library_frame(tb.tb_frame):
            return True
        tb = tb.tb_next
    return False


def bindings() -> dict:
    """The names bound in the watched modules and in the package (outside
    dmlbook.check), modules left out: ``{(module, name): value}``."""
    names = [m for m in list(sys.modules) if m in WATCHED_MODULES
             or m.startswith("dmlbook.") and not m.startswith("dmlbook.check")]
    found = {}
    for module_name in names:
        for attr, value in list(vars(sys.modules[module_name]).items()):
            if module_name == "builtins" and attr.startswith("_"):
                continue  # "_": the REPL's last value, a student's function as often as not
            if not isinstance(value, types.ModuleType):  # functions, classes and data
                found[module_name, attr] = value
    return found


def changed_bindings(before: dict) -> list:
    """The ``(module, name)`` of ``before`` rebound since to a notebook's code. A
    library's own rebinding (``torch._dynamo`` wraps ``torch.manual_seed`` when the
    first optimizer steps) is left alone."""
    changed = []
    for (module_name, attr), value in before.items():
        module = sys.modules.get(module_name)
        now = vars(module).get(attr, value) if module is not None else value
        if now is not value and foreign(now):
            changed.append((module_name, attr))
    return changed


def library_file(filename: str) -> bool:
    """Whether ``filename`` is the package's or a library's (frozen modules included)."""
    if filename.startswith("<frozen"):
        return True
    return os.path.normcase(os.path.abspath(filename)).startswith(_TRUSTED_DIRS) \
        or os.path.normcase(os.path.realpath(filename)).startswith(_TRUSTED_DIRS)


def _library_frame(frame) -> bool:
    """A frame of the package's or a library's code, generated code included (a
    dataclass's ``__init__`` runs as ``<string>`` in its module's globals)."""
    if library_file(frame.f_code.co_filename):
        return True
    module = sys.modules.get(frame.f_globals.get("__name__") or "__main__")
    file = getattr(module, "__file__", None)
    return module is not None and module.__name__ != "__main__" and bool(file) \
        and library_file(file)


def foreign(value) -> bool:
    """Whether ``value`` is code from outside the package and the libraries (a notebook
    cell's function, or an instance or partial of one). An object that cannot be asked
    is not counted: a check would rather judge than refuse a right student."""
    try:
        return _foreign(value)
    except Exception:
        return False


def _foreign(value) -> bool:
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
