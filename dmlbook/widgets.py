"""The frame every chapter's widget uses.

A widget maps a few controls to a computed result. Bad input never shows a
traceback: the ``ValueError`` a :mod:`dmlbook` function raises is shown as a
short message in place of the result.
"""

from __future__ import annotations

import html
from typing import Callable

import ipywidgets as W
import matplotlib.pyplot as plt
from IPython.display import HTML, display


def render(compute: Callable, values: dict):
    """Call ``compute(**values)``; return ``("ok", result)`` or ``("error", message)``."""
    try:
        return "ok", compute(**values)
    except ValueError as err:
        return "error", str(err)


def error_html(message: str) -> str:
    """The message box a widget shows for bad input."""
    return ('<div class="dmlbook-error" style="color:#8a1c1c;background:#fdecea;'
            'padding:0.5em;border-left:4px solid #c62828">'
            f"<b>Input not accepted:</b> {html.escape(message)}</div>")


class Panel(W.VBox):
    """Controls above an output area that ``compute`` refills on every change.

    ``compute`` takes the controls' values as keyword arguments and returns an
    HTML string, a matplotlib figure, or a tuple of those.
    """

    def __init__(self, compute: Callable, controls: dict[str, W.ValueWidget]):
        self.compute = compute
        self.controls = controls
        self.output = W.Output()
        box = W.HBox if len(controls) <= 2 else W.GridBox
        layout = {} if box is W.HBox else {"layout": W.Layout(
            grid_template_columns="repeat(2, minmax(260px, 1fr))")}
        super().__init__([box(list(controls.values()), **layout), self.output])
        for control in controls.values():
            control.observe(self.refresh, names="value")
        self.refresh()

    def values(self) -> dict:
        return {name: control.value for name, control in self.controls.items()}

    def refresh(self, _change=None):
        status, result = render(self.compute, self.values())
        self.output.clear_output(wait=True)
        with self.output:
            if status == "error":
                display(HTML(error_html(result)))
                return
            for item in result if isinstance(result, tuple) else (result,):
                if isinstance(item, str):
                    display(HTML(item))
                else:
                    display(item)
                    plt.close(item)


def int_box(description: str, value: int, **kw) -> W.IntText:
    return W.IntText(value=value, description=description,
                     style={"description_width": "initial"}, **kw)


def float_box(description: str, value: float, **kw) -> W.FloatText:
    return W.FloatText(value=value, description=description,
                       style={"description_width": "initial"}, **kw)


def choice(description: str, options, value) -> W.Dropdown:
    return W.Dropdown(options=options, value=value, description=description,
                      style={"description_width": "initial"})


def table_html(rows: list[tuple[str, str]], caption: str | None = None) -> str:
    """A two-column HTML table of (label, value) rows."""
    head = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    body = "".join(f"<tr><td>{html.escape(k)}</td><td><b>{html.escape(v)}</b></td></tr>"
                   for k, v in rows)
    return f'<table class="dmlbook-table">{head}{body}</table>'
