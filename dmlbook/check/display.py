"""How a check shows a value: short, and where a wrong result first differs.

A report keeps only short texts (:func:`short`), never the student's result
itself. A failed tensor is shown from the first row and entry where it
differs from the expected one (:func:`shown_pair`), searched in views and
blocks up to :data:`MAX_ROWS_COMPARED` rows and :data:`MAX_ENTRIES_COMPARED`
entries, so a large result is never copied whole.
"""

from __future__ import annotations

import reprlib
import sys

import numpy as np
import torch

#: Characters of a value shown in a report.
MAX_VALUE_CHARS = 300

# Taken when this module loads: rebinding them in the kernel changes no report.
_Tensor, _as_subclass = torch.Tensor, torch.Tensor.as_subclass

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = MAX_VALUE_CHARS
_repr.maxlist = _repr.maxtuple = 6


#: Rows of two results, and entries in all, compared to find where they first differ: a
#: report shows the values from there. Beyond either bound it shows the start.
MAX_ROWS_COMPARED = 10_000
MAX_ENTRIES_COMPARED = 10**6
#: Entries compared at once: the double copies a comparison makes stay small.
_BLOCK = 4096


#: The tolerance a report's search for the first difference uses where the failed
#: comparison names none (``torch.isclose``'s ``rtol`` and ``atol``).
DEFAULT_RTOL = DEFAULT_ATOL = 1e-6


def _first_in(a, b, budget: int, rtol: float, atol: float) -> tuple[int | None, int]:
    """The first entry where the 1-D tensors ``a`` and ``b`` differ beyond the tolerance
    (None if none within ``budget`` entries) and how many entries were compared."""
    limit = min(a.numel(), budget)
    for start in range(0, limit, _BLOCK):
        end = min(start + _BLOCK, limit)
        differs = ~torch.isclose(a[start:end].double(), b[start:end].double(), rtol=rtol,
                                 atol=atol, equal_nan=True)
        where = differs.nonzero()
        if len(where):
            return start + int(where[0]), end
    return None, limit


def _first_difference(expected, actual, rtol: float = DEFAULT_RTOL,
                      atol: float = DEFAULT_ATOL) -> tuple[int | None, int]:
    """Where two equal-shaped real tensors first differ beyond ``rtol`` and ``atol``
    (the failed comparison's tolerance): (row or None, entry within it).

    A row is ``x[i]`` flattened. Views and blocks only, at most MAX_ROWS_COMPARED rows
    and MAX_ENTRIES_COMPARED entries in all; (None, 0) when they agree, or cannot be
    compared (other shapes, devices or kinds), or the bounds are reached first."""
    try:
        if not (isinstance(expected, _Tensor) and isinstance(actual, _Tensor)) \
                or expected.dim() == 0 or expected.shape != actual.shape \
                or expected.device != actual.device or expected.is_complex() \
                or actual.is_complex():
            return None, 0
        with torch.no_grad():
            expected, actual = expected.detach(), _as_subclass(actual, _Tensor).detach()
            if expected.dim() == 1:
                entry, _ = _first_in(expected, actual, MAX_ENTRIES_COMPARED, rtol, atol)
                return None, entry or 0
            budget = MAX_ENTRIES_COMPARED
            for i in range(min(expected.shape[0], MAX_ROWS_COMPARED)):
                entry, used = _first_in(expected[i].reshape(-1), actual[i].reshape(-1), budget,
                                       rtol, atol)
                if entry is not None:
                    return i, entry
                budget -= used
                if budget <= 0:
                    break
    except Exception:  # a tensor torch cannot compare here (meta, sparse, ...)
        pass
    return None, 0


def _an(name: str) -> str:
    return f"an {name}" if name[:1].lower() in "aeiou" else f"a {name}"


def short(value, row: int | None = None, start: int = 0, precision: int = 4,
          suppress_small: bool = True) -> str:
    """A value as the report shows it: at most a few hundred characters, whatever its size.

    A tensor shows 8 numbers: of ``row`` (``x[row]`` flattened; the first row if None),
    from entry ``start``: where it first differs from what was expected, to ``precision``
    digits, numbers far smaller than the largest shown as 0 if ``suppress_small``."""
    if isinstance(value, str):
        return value if len(value) <= MAX_VALUE_CHARS else value[:MAX_VALUE_CHARS] + " ..."
    try:
        if isinstance(value, _Tensor):
            if value.numel() == 0:
                return f"tensor of shape {tuple(value.shape)}: []"
            with torch.no_grad():
                head = _as_subclass(value, _Tensor).detach()
                where = ""
                if row is not None and head.dim() > 1:
                    head, where = head[row].reshape(-1), f", row {row}"
                while head.dim() > 1:  # views only: a large result is never copied
                    head = head[0]
                head = head.reshape(-1)
                # From the first difference only where the first 8 would not show it.
                start = start if 8 <= start < head.numel() else 0
                where += f", from entry {start}" if start else ""
                shown = head[start:start + 8].cpu().double()
            text = np.array2string(shown.numpy(), precision=precision,
                                   suppress_small=suppress_small)
            # "..." marks what is not shown: of the row named, or of the whole tensor.
            more = " ..." if start + shown.numel() < (head.numel() if where else value.numel()) \
                else ""
            return (f"tensor of shape {tuple(value.shape)}{where}: "
                    f"{' '.join(text.split())}{more}")
        if isinstance(value, float):
            return f"{value:.10g}"
        if isinstance(value, int) and abs(value) > 10**30:
            try:
                return f"an int of {len(str(abs(value))):,} digits"
            except ValueError:  # beyond Python's limit on converting an int to text
                return f"an int of more than {sys.get_int_max_str_digits():,} digits"
        if isinstance(value, (list, tuple)) and len(value) > 6:
            return f"{type(value).__name__} of length {len(value)}"
        text = _repr.repr(value)
    except Exception:  # a value that cannot be shown (a meta tensor, a failing __len__)
        text = _an(type(value).__name__)
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + " ..."


def args_text(names, values) -> str:
    """A call's arguments as a report shows them: ``name=value, ...``, each value short."""
    return ", ".join(f"{k}={short(v)}" for k, v in zip(names, values))


def shown_pair(expected, actual, rtol: float = DEFAULT_RTOL,
               atol: float = DEFAULT_ATOL) -> tuple[str, str]:
    """``expected`` and ``actual`` as a report shows them: from where they first differ
    beyond ``rtol`` and ``atol`` (the tolerance of the comparison that failed), with 8
    digits where 4 would look equal, small numbers in full (1e-09, not 0) where 8
    would too, and 17 decimals where even those would (a difference beyond any
    check's tolerance, 1e-12 or more, shows by then)."""
    row, start = _first_difference(expected, actual, rtol, atol)
    shown = short(expected, row, start), short(actual, row, start)
    for precision, suppress_small in ((8, True), (8, False), (17, False)):
        if shown[0] == shown[1] and isinstance(expected, _Tensor):
            shown = (short(expected, row, start, precision, suppress_small),
                     short(actual, row, start, precision, suppress_small))
    return shown
