"""One description of a chapter's "Try it" panel, and its two faces.

A :class:`PanelSpec` lists the controls (label, unit, bounds) and one
``compute(**values) -> Result`` (a table and a :class:`matplotlib.figure.Figure`).
From it come

* :class:`LivePanel`, the free panel for a running kernel: any value within the
  documented bounds; calculators answer on every change, training panels on
  **Run** (busy state, button disabled, result marked out of date when a control
  changes). Bad input is answered with a message in the student's terms; any
  exception is caught.
* :func:`static_explorer`, for the HTML site: a few values per control,
  computed at build time by the same ``compute``, switched in the browser with
  no kernel by linking each dropdown's ``index`` to a ``Stack``'s
  ``selected_index`` (``jsdlink``: the link runs in the browser); it lives in
  :mod:`dmlbook.static_explorer` (not re-exported here: that module builds on this one).

Figures are never pyplot figures: JupyterLab's inline backend closes every open
pyplot figure after each widget message, which blanked the panels' figures. The
figure is rendered to PNG here and shown with its table in one ``HTML`` value.
"""

from __future__ import annotations

import base64
import html
import io
import math
import traceback
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import ipywidgets as W
import numpy as np
from matplotlib.figure import Figure

from .units import check_int, check_number

# Figures are drawn at the book's 100 dpi size (one inch shown as 100 CSS pixels)
# and rendered with 2 device pixels per CSS pixel, as the chapters' figures
# (dmlbook/plotting.py): sharp on high-density screens; a 256-colour palette
# keeps a precomputed grid of them small.
CSS_DPI = 100
RENDER_DPI = 2 * CSS_DPI
# A live panel redraws on every change: at one device pixel per CSS pixel (the
# resolution of Jupyter's own inline figures) it draws in about 15% less time.
LIVE_DPI = 100
# ... and encodes its PNG with zlib's fastest level (the explorers keep 6: smaller pages).
LIVE_COMPRESS_LEVEL = 1
# The sharpest rendering figure_png draws (a 6 x 4 inch figure is 8.6 M pixels).
MAX_DPI = 600
LABEL_STYLE = {"description_width": "initial"}
STALE_CSS = (".dmlbook-stale { opacity: 0.45; filter: grayscale(0.6); "
             "transition: opacity 0.2s; }")
HOW_TO_GO_LIVE = ("For any other value, open this chapter live: the rocket button at the top "
                  "of the page (Binder), or <code>make lab</code> on your machine.")


class InputError(ValueError):
    """A value a student typed that the panel does not accept; the message says why."""


# ---------------------------------------------------------------- controls


def _fmt(value: float) -> str:
    """A number as a student would type it: 10000 -> '10,000', 0.03 -> '0.03'."""
    if isinstance(value, int) or float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.6g}"


@dataclass(frozen=True)
class Number:
    """A numeric control: typed into a box, accepted within ``[low, high]``.

    ``why`` says where the bounds come from (shown in the panel).
    """

    name: str
    label: str
    unit: str
    default: float
    low: float
    high: float
    integer: bool = False
    why: str = ""

    @property
    def text(self) -> str:
        """The label shown beside the box, unit included."""
        return f"{self.label} ({self.unit})" if self.unit else self.label

    def bounds_text(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        kind = "a whole number" if self.integer else "a number"
        return f"{kind} from {_fmt(self.low)} to {_fmt(self.high)}{unit}"

    def format(self, value) -> str:
        return _fmt(value) if self.integer else f"{value:g}"

    def parse(self, typed) -> float | int:
        """The value of ``typed`` (a string or a number); :class:`InputError` if not accepted."""
        shown = str(typed).strip()
        reject = (f"{self.text}: “{shown}” is not accepted. "
                  f"Enter {self.bounds_text()}.")
        if isinstance(typed, bool):
            raise InputError(reject)
        try:
            value = float(shown.replace(",", "").replace("_", "").replace("−", "-"))
        except ValueError:
            raise InputError(f"{self.text}: “{shown}” is not a number. "
                             f"Enter {self.bounds_text()}.") from None
        if not math.isfinite(value):
            raise InputError(reject)
        if self.integer:
            if not value.is_integer():
                raise InputError(f"{self.text}: “{shown}” is not a whole number. "
                                 f"Enter {self.bounds_text()}.")
            value = int(value)
        if not self.low <= value <= self.high:
            side = "below" if value < self.low else "above"
            bound = self.low if value < self.low else self.high
            unit = f" {self.unit}" if self.unit else ""
            raise InputError(f"{self.text}: “{shown}” is {side} the bound "
                             f"{_fmt(bound)}{unit}. Enter {self.bounds_text()}.")
        return value


@dataclass(frozen=True)
class Choice:
    """A choice among a few options, each ``(label shown, value passed)``."""

    name: str
    label: str
    options: tuple
    default: Any
    unit: str = ""

    @property
    def text(self) -> str:
        return f"{self.label} ({self.unit})" if self.unit else self.label

    def format(self, value) -> str:
        return next(lab for lab, v in self.options if v == value)

    def parse(self, value):
        if value not in [v for _, v in self.options]:
            raise InputError(f"{self.text}: “{value}” is not one of the options "
                             f"({', '.join(lab for lab, _ in self.options)}).")
        return value


# ---------------------------------------------------------------- results


@dataclass
class Result:
    """What a panel shows: table rows ``(label, value)``, a figure, and its alt text."""

    rows: list
    figure: Figure
    alt: str


def figure_png(fig: Figure, *, dpi: int = RENDER_DPI, compress_level: int = 6) -> bytes:
    """The figure as a palette PNG (256 colours) rendered at ``dpi``.

    Drawn on an Agg canvas and encoded once (``savefig`` would encode a PNG that
    is then decoded again to reduce its colours). ``compress_level`` 1 to 9:
    lower is faster, higher smaller (the static explorers keep the default).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    compress_level = check_int("compress_level", compress_level, minimum=0, maximum=9)
    dpi = check_number("dpi", dpi, maximum=MAX_DPI)
    old_dpi, old_canvas = fig.dpi, fig.canvas
    canvas = FigureCanvasAgg(fig)
    fig.dpi = dpi
    try:
        canvas.draw()
        rgba = np.asarray(canvas.buffer_rgba())
        image = Image.fromarray(rgba[..., :3])  # a copy: the canvas can go
    finally:
        fig.dpi = old_dpi
        fig.set_canvas(old_canvas)
    out = io.BytesIO()
    image.quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(
        out, format="png", compress_level=compress_level)
    return out.getvalue()


def table_html(rows, caption: str | None = None) -> str:
    """A two-column HTML table of (label, value) rows."""
    head = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    body = "".join(f"<tr><td>{html.escape(str(k))}</td><td><b>{html.escape(str(v))}</b></td></tr>"
                   for k, v in rows)
    return f'<table class="dmlbook-table">{head}{body}</table>'


def result_html(result: Result, *, dpi: int = RENDER_DPI, compress_level: int = 6) -> str:
    """Table and figure as one HTML fragment (the figure inline, a PNG as :func:`figure_png`)."""
    png = figure_png(result.figure, dpi=dpi, compress_level=compress_level)
    width, height = (round(x * CSS_DPI) for x in result.figure.get_size_inches())
    src = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return (f'<div class="dmlbook-result">{table_html(result.rows)}'
            f'<img class="dmlbook-figure" src="{src}" width="{width}" height="{height}" '
            f'style="max-width:100%;height:auto" alt="{html.escape(result.alt)}"></div>')


def error_html(message: str) -> str:
    """The message box a panel shows instead of a result."""
    return ('<div class="dmlbook-error" role="alert" style="color:#7a1616;background:#fdecea;'
            'padding:0.5em;border-left:4px solid #c62828">'
            f"<b>Not computed:</b> {html.escape(message)}</div>")


# ---------------------------------------------------------------- description


@dataclass
class PanelSpec:
    """One chapter's panel: controls, the computation, and the static grid.

    Args:
        title: what the panel explores, shown above it.
        controls: :class:`Number` and :class:`Choice` controls, in display order.
        compute: ``compute(**values) -> Result``; values as parsed by the controls.
        training: computed on **Run** (True) or on every change (False).
        check: optional ``check(values)`` raising :class:`InputError` for values
            that are each within bounds but do not fit together.
        depends: ``{control: (other, adapt)}``: ``adapt(other's value)`` gives
            the control's description (label, bounds) for that value, or None
            when the control is not used.
        grid: ``{control: values}`` for the static explorer (two controls);
            a value list may be a dict keyed by the first control's value, for a
            dependent control; ``grid_labels`` then names the options.
    """

    key: str
    title: str
    controls: tuple
    compute: Callable[..., Result]
    training: bool = False
    check: Callable[[dict], None] | None = None
    depends: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)
    grid_labels: dict = field(default_factory=dict)
    height_px: int = 560

    def control(self, name: str):
        """The control called ``name``; a ``ValueError`` lists the panel's controls."""
        for c in self.controls:
            if c.name == name:
                return c
        raise ValueError(f"name must be a control of panel {self.key!r} "
                         f"({', '.join(c.name for c in self.controls)}), got {name!r}")

    def defaults(self) -> dict:
        return {c.name: c.default for c in self.controls}

    def described(self, values: dict) -> dict:
        """Each control's description for the given values (dependent ones adapted)."""
        out = {c.name: c for c in self.controls}
        for name, (other, adapt) in self.depends.items():
            out[name] = adapt(values[other])
        return out

    def parse(self, typed: dict) -> dict:
        """Parsed values of all controls; :class:`InputError` names the first bad one."""
        values = {}
        for c in self.controls:
            if c.name not in self.depends:
                values[c.name] = c.parse(typed[c.name])
        for name, (other, adapt) in self.depends.items():
            described = adapt(values[other])
            values[name] = None if described is None else described.parse(typed[name])
        if self.check is not None:
            self.check(values)
        return values

    def evaluate(self, typed: dict, *, dpi: int = RENDER_DPI,
                 compress_level: int = 6) -> tuple[str, str]:
        """``("ok", html)`` or ``("error", message)``; never raises.

        ``dpi`` and ``compress_level``: the figure's PNG (the static explorers
        keep the sharper, smaller default; a live panel passes :data:`LIVE_DPI`
        and :data:`LIVE_COMPRESS_LEVEL`).
        """
        try:
            return "ok", result_html(self.compute(**self.parse(typed)), dpi=dpi,
                                     compress_level=compress_level)
        except InputError as err:
            return "error", str(err)
        except Exception as err:  # noqa: BLE001 - any failure becomes a message
            shown = ", ".join(f"{c.text} = {typed.get(c.name)}" for c in self.controls)
            last = traceback.extract_tb(err.__traceback__)[-1]
            return "error", (f"the computation failed for {shown}: {err} "
                             f"({type(err).__name__} in {last.name}). "
                             "Try other values; the bounds are listed above.")

    def bounds_html(self) -> str:
        items = []
        for c in self.controls:
            if isinstance(c, Number) and c.name not in self.depends:
                why = f" ({c.why})" if c.why else ""
                items.append(f"<li>{html.escape(c.text)}: {c.bounds_text()}{html.escape(why)}</li>")
        for name, (other, adapt) in self.depends.items():
            for _, value in self.control(other).options:
                c = adapt(value)
                if c is not None:
                    items.append(f"<li>{html.escape(c.text)}, with {html.escape(other)} "
                                 f"{html.escape(str(value))}: {c.bounds_text()}</li>")
        return ("<details class='dmlbook-bounds'><summary>Accepted values</summary><ul>"
                + "".join(items) + "</ul></details>")


# ---------------------------------------------------------------- live face


class LivePanel(W.VBox):
    """The free panel: any value within the bounds, computed in the kernel."""

    def __init__(self, spec: PanelSpec, **defaults):
        self.spec = spec
        for name, value in defaults.items():  # names the bad keyword, never a TraitError
            base = spec.control(name)
            if isinstance(base, Choice) and not any(
                    value == option for _, option in base.options):
                raise ValueError(f"{name} must be one of "
                                 f"{', '.join(repr(o) for _, o in base.options)}, got {value!r}")
        typed = {**spec.defaults(), **defaults}
        described = spec.described(typed)
        self.controls: dict[str, W.ValueWidget] = {}
        for name, c in described.items():
            self.controls[name] = self._make(spec.control(name), c, typed[name])
        self.output = W.HTML(layout=W.Layout(height=f"{spec.height_px}px", overflow="auto",
                                             width="100%"))
        self.output.add_class("dmlbook-output")
        self.status = W.HTML()
        self.computations = 0
        # JupyterLab does not load the book's CSS: the panel brings the rule that
        # dims a result the controls no longer match (class dmlbook-stale).
        children = [W.HTML(f"<style>{STALE_CSS}</style><b>{html.escape(spec.title)}</b>"),
                    W.GridBox(list(self.controls.values()), layout=W.Layout(
                        grid_template_columns="repeat(2, minmax(280px, 1fr))")),
                    W.HTML(spec.bounds_html())]
        if spec.training:
            self.run_button = W.Button(description="Run", button_style="primary",
                                       icon="play", tooltip="train with these values")
            self.run_button.on_click(self.run)
            children.append(W.HBox([self.run_button, self.status]))
            self.status.value = "Press <b>Run</b> to train with these values."
        else:
            self.run_button = None
            children.append(self.status)
        children.append(self.output)
        super().__init__(children)
        self.add_class("dmlbook-live-panel")
        for name, widget in self.controls.items():
            widget.observe(lambda change, name=name: self._changed(name), names="value")
        if not spec.training:
            self.update()

    @staticmethod
    def _make(base, c, value):
        if isinstance(base, Choice):
            return W.Dropdown(options=list(base.options), value=value, description=base.text,
                              style=LABEL_STYLE, layout=W.Layout(width="auto"))
        box = W.Text(value="" if c is None else c.format(value), continuous_update=False,
                     description=base.text if c is None else c.text, style=LABEL_STYLE,
                     disabled=c is None, layout=W.Layout(width="auto"))
        return box

    def typed(self) -> dict:
        return {name: w.value for name, w in self.controls.items()}

    def _changed(self, name: str):
        for dependent, (other, adapt) in self.spec.depends.items():
            if other == name:
                self._adapt(dependent, adapt(self.controls[name].value))
        if self.spec.training:
            self.status.value = ("<b>Out of date:</b> the result below is for the values of "
                                 "the last run. Press <b>Run</b> to train with these values.")
            self.output.add_class("dmlbook-stale")
        else:
            self.update()

    def _adapt(self, name: str, c):
        box = self.controls[name]
        with self.hold_trait_notifications():
            if c is None:
                box.description = f"{self.spec.control(name).label} (not used)"
                box.disabled, box.value = True, ""
            else:
                box.description, box.disabled = c.text, False
                box.value = c.format(c.default)

    def update(self):
        """Compute from the controls' values; table and figure arrive in one update."""
        self.computations += 1
        status, shown = self.spec.evaluate(self.typed(), dpi=LIVE_DPI,
                                           compress_level=LIVE_COMPRESS_LEVEL)
        self.output.value = shown if status == "ok" else error_html(shown)
        self.output.remove_class("dmlbook-stale")
        return status

    def run(self, _button=None):
        """Train with the shown values: busy state, button disabled until done."""
        self.run_button.disabled = True
        self.run_button.description = "Running…"
        self.status.value = "<b>Training…</b> the kernel is busy; this takes a few seconds."
        try:
            status = self.update()
            self.status.value = ("Result for the values above." if status == "ok"
                                 else "Not computed: see the message below.")
        finally:
            self.run_button.description = "Run"
            self.run_button.disabled = False


