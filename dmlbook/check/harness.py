"""The checks' harness: results, failures, the student's calls guarded, conversions.

Every check is a list of stages run by :func:`run`. The student's function is
only ever called through :func:`call`; its value is converted on the
package's side (:func:`as_int`, :func:`as_float`, :func:`as_tensor`) before any
comparison, so that an object whose ``==`` lies cannot pass. Everything else
raised while judging is the check's own error and is reported as such.
The isolation (time limit, captured output, restored state) is described in
the package docstring, :mod:`dmlbook.check`.
"""

from __future__ import annotations

import contextlib
import html
import io
import math
import numbers
import random
import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from ..units import check_number
from . import guard
from .display import DEFAULT_ATOL, DEFAULT_RTOL, short, shown_pair
from .guard import TimeUp, error_text, raised_in_student_code, time_limit

#: Seconds of computing (this process's CPU time) a check may take before it answers
#: "did not return within ... s". CPU time, so that a busy machine does not fail a
#: right solution; code that waits instead is stopped after WAIT_FACTOR times as long.
TIME_LIMIT_S = 10.0
WAIT_FACTOR = 6
#: The longest limit a caller may ask for (``time_limit_s``), in seconds.
MAX_TIME_LIMIT_S = 3600.0
#: Seconds past the limit that a passing check may have taken before its pass is
#: refused: only code that turned the check's timers off can take longer.
LIMIT_GRACE_S = 0.5
#: Characters of the student's printed output kept in a report.
MAX_OUTPUT_CHARS = 600

# References taken when this module loads: rebinding torch.allclose or
# math.isclose in the kernel afterwards does not change a verdict.
_allclose, _equal, _isfinite = torch.allclose, torch.equal, math.isfinite
_Tensor, _as_subclass = torch.Tensor, torch.Tensor.as_subclass
_Real, _Integral = numbers.Real, numbers.Integral


@dataclass
class CheckResult:
    """What a check found. ``mistake`` names the likely mistake class (None if passed)."""

    name: str
    passed: bool
    feedback: str
    mistake: str | None = None
    seconds: float = 0.0

    def __repr__(self) -> str:
        return self.feedback

    def _repr_html_(self) -> str:
        colour, border = ("#e8f5e9", "#2e7d32") if self.passed else ("#fff3e0", "#ef6c00")
        return (f'<div class="dmlbook-check" style="background:{colour};'
                f'border-left:4px solid {border};padding:0.5em 1em;">'
                f'<pre style="white-space:pre-wrap;margin:0;background:none;">'
                f'{html.escape(self.feedback)}</pre></div>')


class Failure(Exception):
    """One failed case: what was tried, what was expected, what came back, and why."""

    def __init__(self, case: str, *, expected=None, actual=None, mistake: str = "wrong value",
                 hint: str = "", show_values: bool = True, rtol: float = DEFAULT_RTOL,
                 atol: float = DEFAULT_ATOL):
        super().__init__(case)
        # Only short texts are kept: a report never holds on to a large result. A tensor
        # is shown from where it differs beyond the tolerance its comparison used.
        self.case = case
        self.expected, self.actual = shown_pair(expected, actual, rtol, atol)
        self.mistake, self.hint, self.show_values = mistake, hint, show_values


# ---------------------------------------------------------------------------
# Isolation: captured output, restored state, a time limit


class _Capture(io.TextIOBase):
    """A stream that keeps the first characters written to it and counts the rest."""

    def __init__(self):
        self.kept, self.kept_chars, self.total = [], 0, 0

    def writable(self) -> bool:
        return True

    def write(self, text) -> int:
        text = str(text)
        room = MAX_OUTPUT_CHARS - self.kept_chars
        if room > 0 and text:  # constant work a write: many empty prints cost no more
            self.kept.append(text[:room])
            self.kept_chars += len(self.kept[-1])
        self.total += len(text)
        return len(text)

    def summary(self) -> str:
        if not self.total:
            return ""
        kept = "".join(self.kept)
        cut = f" (first {len(kept)} of {self.total:,} characters)" if self.total > len(kept) \
            else ""
        return f"Your function printed{cut}:\n{kept}"


def _state():
    return (torch.get_default_dtype(), torch.is_grad_enabled(), torch.get_rng_state(),
            np.random.get_state(), random.getstate(), torch.get_num_threads(),
            torch.get_default_device())


def _check_settings() -> None:
    """The settings the check itself runs in, whatever the kernel or the student set."""
    torch.set_default_dtype(torch.float32)
    torch.set_grad_enabled(True)
    if torch.get_default_device().type != "cpu":
        torch.set_default_device(None)


def _restore(state) -> None:
    dtype, grad, torch_rng, np_rng, py_rng, threads, device = state
    if torch.get_default_device() != device:  # None is the CPU without a device mode
        torch.set_default_device(None if device.type == "cpu" else device)
    torch.set_default_dtype(dtype)
    torch.set_grad_enabled(grad)
    torch.set_rng_state(torch_rng)
    np.random.set_state(np_rng)
    random.setstate(py_rng)
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


@contextlib.contextmanager
def isolated(seconds: float):
    """Run a check: the student's output captured, the kernel's state restored after."""
    state, capture = _state(), _Capture()
    try:
        _check_settings()  # the same verdict whatever the kernel set
        with contextlib.redirect_stdout(capture), contextlib.redirect_stderr(capture), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with time_limit(seconds, seconds * WAIT_FACTOR):
                yield capture
    finally:
        _restore(state)


# ---------------------------------------------------------------------------
# Running stages and calling the student's function


class _StudentError(Exception):
    """The student's function raised, or returned nothing: a failure of the case."""


def report_failure(name: str, failure: Failure, done: list[str]) -> str:
    """The feedback of a failed check: the case, the values, the hint, the stages passed."""
    lines = [f"✗ {name}: not yet.", f"Case: {failure.case}"]
    if failure.show_values:
        lines += [f"  expected: {failure.expected}", f"  got:      {failure.actual}"]
    if failure.hint:
        lines.append(f"Hint ({failure.mistake}): {failure.hint}")
    if done:
        lines.append("Already passed: " + "; ".join(done) + ".")
    return "\n".join(lines)


def run(name: str, fn, stages, *, time_limit_s: float | None = None) -> CheckResult:
    """Run ``stages`` (label, function) in order under :func:`isolated`; stop at the
    first failure. ``time_limit_s`` (default :data:`TIME_LIMIT_S`; 0 for none)."""
    limit = TIME_LIMIT_S if time_limit_s is None else _checked_limit(time_limit_s)
    if not (callable(fn) or isinstance(fn, tuple) and fn and all(map(callable, fn))):
        return CheckResult(name, False, f"✗ {name}: pass your function itself, e.g. "
                           f"check.{name}(my_function), not {short(fn)}.", "not a function")
    done: list[str] = []
    started, cpu_started = time.perf_counter(), time.process_time()
    before = guard.bindings() if guard.GUARD_BINDINGS else {}
    rebound = [key for key, value in before.items() if guard.foreign(value)]
    if rebound:
        return _refused(name, rebound, "the kernel has rebound")
    result, capture = None, _Capture()
    try:
        with isolated(limit) as capture:
            result = _stages(name, fn, stages, done, limit)
    except TimeUp:  # the limit ran out just as the stages ended
        result = result or _timed_out(name, limit)
    if result.passed and limit and guard.timers_available() and (
            time.process_time() - cpu_started > limit + LIMIT_GRACE_S
            or time.perf_counter() - started > limit * WAIT_FACTOR + LIMIT_GRACE_S):
        # Past the limit without being stopped: the function turned the timers off
        # (signal.signal, setitimer). No pass without the limit.
        result = _timed_out(name, limit)
    changed = guard.changed_bindings(before) if guard.GUARD_BINDINGS else []
    if changed:  # put the package back, and no pass for a function that rebinds it
        for module, attr in changed:
            setattr(sys.modules[module], attr, before[module, attr])
        result = _refused(name, changed, "your function rebound")
    printed = capture.summary()
    if printed:
        result.feedback += "\n" + printed
    result.seconds = time.perf_counter() - started
    return result


def _refused(name: str, keys: list, what: str) -> CheckResult:
    shown = ", ".join(f"{m}.{a}" for m, a in keys[:3]) + (" ..." if len(keys) > 3 else "")
    return CheckResult(name, False, (
        f"✗ {name}: not judged: {what} {shown}. A check judges with the package and "
        f"torch as they come; restart the kernel (Kernel > Restart) and run the cells "
        f"again without rebinding them."), "changed the package")


def _checked_limit(time_limit_s) -> float:
    try:
        return float(check_number("time_limit_s", time_limit_s, allow_zero=True,
                                  maximum=MAX_TIME_LIMIT_S))
    except ValueError as err:
        raise ValueError(f"{err} (seconds; 0 turns the limit off)") from None


def _timed_out(name: str, limit: float) -> CheckResult:
    return CheckResult(name, False, f"✗ {name}: your function did not return within "
                       f"{limit:g} s (the check's time limit: {limit:g} s of computing, or "
                       f"{limit * WAIT_FACTOR:g} s of waiting), so the check stopped it. "
                       f"Look for a loop that never ends.", "time limit")


def _stages(name, fn, stages, done, limit) -> CheckResult:
    """The stages in order, up to the first failure."""
    try:
        for label, stage in stages:
            try:
                summary = stage(fn)
            except Failure as failure:
                return CheckResult(name, False, report_failure(name, failure, done),
                                   failure.mistake)
            done.append(summary or label)
    except TimeUp:
        return _timed_out(name, limit)
    except Exception as err:
        if raised_in_student_code(err):  # e.g. a returned object whose len() raises
            return CheckResult(name, False, (
                f"✗ {name}: not yet. The check could not read what your function returned: "
                f"your code raised {error_text(err)}"), "an error")
        return CheckResult(name, False, (
            f"✗ {name}: the check itself failed ({error_text(err)}) "
            f"while judging your function. This is an error in dmlbook.check, not "
            f"yours; please report it."), "the check's error")
    return CheckResult(name, True, f"✓ {name}: passed. " + "; ".join(done) + ".")


def stages(name: str, fn, hand, random_cases, simulator, *, time_limit_s=None) -> CheckResult:
    """:func:`run` with the three stages every check has: hand, random, simulator."""
    return run(name, fn, [("hand", hand), ("random", random_cases), ("simulator", simulator)],
               time_limit_s=time_limit_s)


def each(case_fn, cases, summary: str | None = None):
    """A stage that runs ``case_fn(fn, *case)`` for every case of ``cases``."""
    def stage(fn):
        for case in cases:
            case_fn(fn, *case)
        return summary or f"{len(cases)} hand-worked cases"
    return stage


def seeded(name: str):
    """The seeded random draws of one check: a NumPy generator and a torch one."""
    rng = rng_for(name)
    return rng, torch.Generator().manual_seed(int(rng.integers(0, 10**6)))


def call(fn, case: str, *args):
    """Call the student's function; its exception, exit or missing return is a failure."""
    try:
        out = fn(*args)
    except (Failure, TimeUp, KeyboardInterrupt):
        raise
    except SystemExit as err:
        raise Failure(case, mistake="an error", show_values=False,
                      hint=f"your function called sys.exit({short(err.code)}); return "
                           f"a value instead.") from None
    except BaseException as err:  # the student's code: any error is feedback, not a crash
        raise Failure(case, mistake="an error", show_values=False,
                      hint=f"your function raised {error_text(err)}") from None
    finally:
        _check_settings()  # the check goes on in its own settings, whatever the function set
    if out is None or out is Ellipsis:
        raise Failure(case, expected="a value", actual=out, mistake="an empty stub",
                      hint="your function returned nothing: replace `...` by the body "
                           "and `return` the result.")
    return out


# ---------------------------------------------------------------------------
# Conversions on the package's side


def _is_scalar_array(value) -> bool:
    return isinstance(value, (np.ndarray, np.generic, _Tensor)) and np.ndim(value) == 0


def as_int(value, case, expected, what="the number"):
    """The student's whole number as a Python int; a float or text is a failure."""
    if isinstance(value, (bool, np.bool_)) or isinstance(value, (str, bytes)):
        raise Failure(case, expected=expected, actual=value, mistake="not a number",
                      hint=f"return {what} as an int.")
    if _is_scalar_array(value) and not isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, _Integral):
        try:
            return int(value)
        except Exception:
            raise Failure(case, expected=expected, actual=value, mistake="not a number",
                          hint=f"return {what} as an int.") from None
    if isinstance(value, _Real):
        number = as_float(value, case, expected, what)
        if number == int(number) and number == expected:
            raise Failure(case, expected=expected, actual=value, mistake="not a whole number",
                          hint=f"{what} comes in whole numbers: return an int (int(...)).")
        raise Failure(case, expected=expected, actual=value, mistake="not a whole number",
                      hint=f"return {what} as an int.")
    raise Failure(case, expected=expected, actual=value, mistake="not a number",
                  hint=f"return {what} as an int.")


def as_float(value, case, expected, what="the number"):
    """The student's number as a finite Python float."""
    if isinstance(value, (bool, np.bool_, str, bytes)) or not (
            isinstance(value, _Real) or _is_scalar_array(value)):
        raise Failure(case, expected=expected, actual=value, mistake="not a number",
                      hint=f"return {what} as a float.")
    try:
        number = float(value.item() if _is_scalar_array(value) else value)
    except OverflowError:
        number = math.inf
    except Exception:
        raise Failure(case, expected=expected, actual=value, mistake="not a number",
                      hint=f"return {what} as a float.") from None
    if not _isfinite(number):
        raise Failure(case, expected=expected, actual=value, mistake="not a number",
                      hint=f"return {what} as a finite number.")
    return number


def as_tensor(value, case, expected: torch.Tensor, *, name="the result"):
    """The student's tensor as a plain float tensor of ``expected``'s shape and dtype."""
    if isinstance(value, _Tensor):
        value = _as_subclass(value, _Tensor).detach()
    else:
        try:
            value = torch.as_tensor(np.asarray(value, dtype=np.float64))
        except Exception:
            raise Failure(case, expected=expected, actual=value, mistake="not a tensor",
                          hint=f"return {name} as a torch tensor.") from None
    if not (value.is_floating_point() or value.dtype in (torch.int64, torch.int32)):
        raise Failure(case, expected=expected, actual=value, mistake="not a tensor",
                      hint=f"return {name} as a float tensor.")
    if value.device.type == "meta":
        raise Failure(case, expected=expected, actual=value, mistake="not a tensor",
                      hint=f"return {name} with its values: a tensor on the meta device "
                           f"has none.")
    return value.to(device="cpu", dtype=expected.dtype)


def close(a: float, b: float, rel: float = 1e-9, abs_tol: float = 1e-12) -> bool:
    """``math.isclose`` that calls an int beyond any float not close to a float."""
    try:
        return math.isclose(a, b, rel_tol=rel, abs_tol=abs_tol)
    except OverflowError:  # an int beyond any float: not close to a float
        return False


def ratio_hint(expected: float, actual: float, known) -> tuple[str, str] | None:
    """The first ``(mistake, hint)`` of ``known`` whose factor maps expected to actual."""
    if expected == 0:
        return None
    for factor, mistake, hint in known:
        if factor and close(actual, expected * factor, rel=2e-3):
            return mistake, hint
    return None


BITS_BYTES = ("bits vs bytes", "one byte is 8 bits; check which quantities are in bits and "
                               "which in bytes, and convert exactly once.")
DECIMAL_BINARY = ("10^9 vs 2^30", "network speeds use decimal prefixes (1 Gbit/s = 10^9 "
                                  "bit/s), cloud prices binary ones (1 GiB = 2^30 bytes).")


def unit_mistakes():
    """``(factor, mistake, hint)`` of the unit slips: bits for bytes, 10^9 for 2^30."""
    return [(8, *BITS_BYTES), (1 / 8, *BITS_BYTES),
            (2**30 / 10**9, *DECIMAL_BINARY), (10**9 / 2**30, *DECIMAL_BINARY),
            (1024 / 1000, *DECIMAL_BINARY), (1000 / 1024, *DECIMAL_BINARY)]


def rng_for(name: str) -> np.random.Generator:
    """The seeded random cases of one check: the same cases every run."""
    return np.random.default_rng([sum(map(ord, name)), 27])


# ---------------------------------------------------------------------------
# Tensors: a wrong answer that equals a known wrong formula names the mistake


def tensor_result(case, actual, expected, inputs_changed, candidates, default_hint,
                  atol=1e-6):
    """Fail unless ``actual`` equals ``expected``; name the mistake from ``candidates``."""
    if isinstance(actual, _Tensor) or hasattr(actual, "__array__") \
            or isinstance(actual, (list, tuple)):
        actual = as_tensor(actual, case, expected)
    else:
        raise Failure(case, expected=expected, actual=actual, mistake="not a tensor",
                      hint="return a torch tensor.")

    def same(a, b):
        return a.shape == b.shape and bool(_allclose(a.double(), b.double(), atol=atol,
                                                     rtol=DEFAULT_RTOL))
    if same(actual, expected):
        if inputs_changed:
            raise Failure(case, expected="your inputs left as they were",
                          actual="your function changed " + " and ".join(inputs_changed),
                          mistake="changed its inputs in place",
                          hint="build a new tensor (x = a + b) rather than updating an input "
                               "(a += b): the caller still needs the old values.")
        return actual
    for name, wrong, why in candidates:
        if same(actual, wrong):
            raise Failure(case, expected=expected, actual=actual, mistake=name, hint=why,
                          atol=atol)
    if actual.shape != expected.shape:
        raise Failure(case, expected=expected, actual=actual, mistake="wrong shape",
                      hint=f"return a tensor of shape {tuple(expected.shape)}.")
    raise Failure(case, expected=expected, actual=actual, mistake="wrong value",
                  hint=default_hint, atol=atol)


def call_shaped(fn, case, like: torch.Tensor, *args):
    """The student's piece inside a simulator: called on copies, its tensor converted
    to ``like``'s dtype and required to have ``like``'s shape."""
    return shaped(call_tensors(fn, case, *args)[0], case, like)


def shaped(out, case, like: torch.Tensor) -> torch.Tensor:
    """``out`` as a tensor like ``like``: its dtype, and its shape or a failure."""
    out = as_tensor(out, case, like)
    if out.shape != like.shape:
        raise Failure(case, expected=like, actual=out, mistake="wrong shape",
                      hint=f"return a tensor of shape {tuple(like.shape)}.")
    return out


def call_tensors(fn, case, *args):
    """Call ``fn`` on copies; also say which inputs it changed in place."""
    copies = [a.clone() if isinstance(a, _Tensor) else a for a in args]
    out = call(fn, case, *copies)
    changed = [i for i, (a, c) in enumerate(zip(args, copies))
               if isinstance(a, _Tensor) and not _equal(a, c)]
    return out, changed
