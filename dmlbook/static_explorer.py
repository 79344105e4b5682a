"""The static face of a "Try it" panel: the precomputed explorer of the HTML site.

:func:`static_explorer` builds, from a :class:`~dmlbook.widgets.PanelSpec`, two
dropdowns over ``spec.grid`` that switch, in the browser and with no kernel,
between results computed at build time by the same ``compute`` as the live
panel (``jsdlink``: each dropdown's ``index`` drives a ``Stack``'s
``selected_index``). Every result shares its axes limits with the others, and
the dropdowns open at the sheet's values.
"""

from __future__ import annotations

import html

import ipywidgets as W
from matplotlib.figure import Figure

from .widgets import (HOW_TO_GO_LIVE, LABEL_STYLE, Choice, PanelSpec, error_html,
                      result_html)


def _start_index(values, default) -> int:
    """Where a dropdown opens: at the sheet's value (the control's default) when offered."""
    for i, value in enumerate(values):
        if value == default:
            return i
    return 0


def share_axes_limits(figures: list[Figure]) -> None:
    """Give the i-th axes of every figure the same x and y limits: the union of theirs.

    An explorer's results then compare by eye: switching a dropdown moves the
    lines, not the axes. Figures with a different number of axes are left alone;
    so is an axis whose scale differs between the figures.
    """
    if len(figures) < 2 or len({len(f.axes) for f in figures}) != 1:
        return
    for k in range(len(figures[0].axes)):
        axes = [f.axes[k] for f in figures]
        for axis in ("x", "y"):
            if len({getattr(a, f"get_{axis}scale")() for a in axes}) != 1:
                continue
            limits = [getattr(a, f"get_{axis}lim")() for a in axes]
            inverted = limits[0][0] > limits[0][1]
            low = min(min(lim) for lim in limits)
            high = max(max(lim) for lim in limits)
            for a in axes:
                getattr(a, f"set_{axis}lim")((high, low) if inverted else (low, high))


def _grid_results(spec: PanelSpec, first, first_values, second, second_values):
    """``[[(status, Result or message)]]`` for every grid point, axes shared across them."""
    dependent = isinstance(second_values, dict)
    results = []
    for a in first_values:
        row = []
        for b in (second_values[a] if dependent else second_values):
            typed = {**spec.defaults(), first: a, second: b}
            typed = {k: (v if isinstance(spec.control(k), Choice) else str(v))
                     for k, v in typed.items()}
            try:
                row.append(("ok", spec.compute(**spec.parse(typed))))
            except Exception:  # noqa: BLE001 - evaluate() words the message, as live
                row.append(spec.evaluate(typed))
        results.append(row)
    share_axes_limits([r.figure for row in results for status, r in row if status == "ok"])
    return results


def static_explorer(spec: PanelSpec) -> W.VBox:
    """Two dropdowns over ``spec.grid``, switching precomputed results without a kernel.

    Each result is ``spec.compute`` of the defaults with the grid's values (the
    code path of the live panel), drawn at :data:`RENDER_DPI` with the same axes
    limits in every result. Both dropdowns open at the sheet's values (the
    controls' defaults) where the grid offers them.
    """
    (first, first_values), (second, second_values) = spec.grid.items()
    dependent = isinstance(second_values, dict)
    n_second = len(next(iter(second_values.values()))) if dependent else len(second_values)
    first_c = spec.control(first)
    start_first = _start_index(first_values, spec.control(first).default)
    first_dd = W.Dropdown(options=[(first_c.format(v), i) for i, v in enumerate(first_values)],
                          value=start_first, description=first_c.text,
                          style=LABEL_STYLE, layout=W.Layout(width="100%", max_width="640px"))
    if dependent:
        labels = spec.grid_labels[second]
        second_text = spec.control(second).label
        second_row = second_values[first_values[start_first]]
    else:
        labels = [spec.control(second).format(v) for v in second_values]
        second_text = spec.control(second).text
        second_row = second_values
    start_second = _start_index(second_row, spec.control(second).default)
    second_dd = W.Dropdown(options=[(lab, i) for i, lab in enumerate(labels)],
                           value=start_second, description=second_text, style=LABEL_STYLE,
                           layout=W.Layout(width="100%", max_width="640px"))
    pages, links = [], []
    for row in _grid_results(spec, first, first_values, second, second_values):
        inner = [W.HTML(result_html(shown) if status == "ok" else error_html(shown))
                 for status, shown in row]
        stack = W.Stack(inner, selected_index=start_second)
        links.append(W.jsdlink((second_dd, "index"), (stack, "selected_index")))
        pages.append(stack)
    outer = W.Stack(pages, selected_index=start_first)
    links.append(W.jsdlink((first_dd, "index"), (outer, "selected_index")))
    fixed = [c for c in spec.controls if c.name not in spec.grid]
    others = ", ".join(f"{c.text} {c.format(c.default)}" for c in fixed
                       if c.name not in spec.depends)
    note = W.HTML(
        f"<p class='dmlbook-precomputed'><b>Precomputed explorer: {html.escape(spec.title)}</b> "
        f"These two controls switch between {len(first_values) * n_second} results computed "
        f"when the book was built (other values fixed: {html.escape(others)}). "
        f"{HOW_TO_GO_LIVE}</p>")
    box = W.VBox([note, W.VBox([first_dd, second_dd]), outer])
    box.add_class("dmlbook-explorer")
    box.links = links  # the browser-side links (kept for inspection)
    return box
