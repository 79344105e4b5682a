"""The book's figure style: palette, series styles, the style context and new figures.

Nothing here changes matplotlib's global settings: :data:`STYLE` is applied
by :func:`book_style`, a context that every figure function of the book
enters (:func:`book_figure`), so that a student's own figures in the same
kernel keep matplotlib's defaults.
"""

from __future__ import annotations

import functools
import math
import numbers
from contextlib import contextmanager

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

# The Okabe-Ito palette (Okabe & Ito, "Color Universal Design", 2008): its eight
# colours stay apart for readers with any common colour-vision deficiency.
OKABE_ITO = {"black": "#000000", "orange": "#E69F00", "sky blue": "#56B4E9",
             "bluish green": "#009E73", "yellow": "#F0E442", "blue": "#0072B2",
             "vermillion": "#D55E00", "reddish purple": "#CC79A7"}
# The book's colours by meaning (the keys chapters use), all from Okabe-Ito;
# "band" is for filled areas, "grey" for reference lines.
COLORS = {"download": OKABE_ITO["blue"], "upload": OKABE_ITO["vermillion"],
          "fl": OKABE_ITO["vermillion"], "dl": OKABE_ITO["bluish green"],
          "accent": OKABE_ITO["orange"], "band": OKABE_ITO["sky blue"], "grey": "#7f7f7f"}
# Lines that may overlap differ in line style and marker too, not only in colour:
# the i-th series of a figure uses the i-th entry of each (see series_style).
LINE_COLORS = [OKABE_ITO[c] for c in ("blue", "vermillion", "bluish green", "orange",
                                      "reddish purple", "sky blue", "black", "yellow")]
LINE_STYLES = ["-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 1)), (0, (8, 2)),
               (0, (3, 1, 3, 3))]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]

#: The book's matplotlib settings, applied only inside :func:`book_style`.
STYLE = {
    "figure.figsize": (6.4, 3.8), "figure.dpi": 100, "savefig.dpi": 100,
    "axes.spines.top": False, "axes.spines.right": False,
    "axes.grid": True, "grid.alpha": 0.3, "font.size": 10, "legend.frameon": False,
    # Lines drawn without an explicit style cycle through colour AND line style.
    "axes.prop_cycle": (matplotlib.cycler(color=LINE_COLORS)
                        + matplotlib.cycler(linestyle=LINE_STYLES)),
}


@contextmanager
def book_style():
    """A context in which new figures, axes, lines and legends take the book's style.

    matplotlib reads its settings when an artist is created, so a figure made
    (and drawn on) inside the context keeps the style when shown later.
    """
    with matplotlib.rc_context(STYLE):
        yield


class BookAxes(Axes):
    """The axes of :func:`figure`: a legend added later, outside :func:`book_style`
    (by a chapter's own cell), still takes the book's style."""

    def legend(self, *args, **kwargs):
        with book_style():
            return super().legend(*args, **kwargs)


def book_figure(function):
    """Run a figure function inside :func:`book_style` (a decorator)."""

    @functools.wraps(function)
    def styled(*args, **kwargs):
        with book_style():
            return function(*args, **kwargs)

    return styled


def _whole(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def series_style(index: int, *, n_points: int | None = None, colors=None, linestyles=None,
                 markers=None) -> dict:
    """Keyword arguments for the ``index``-th line of a figure: colour, line style, marker.

    The one style helper of the book's figures. With ``n_points``, markers are
    thinned to about ten per line, so that dense lines stay readable.
    ``colors``, ``linestyles`` and ``markers`` replace the default sequences
    (:data:`LINE_COLORS`, :data:`LINE_STYLES`, :data:`MARKERS`) for a figure
    with its own; each wraps around. Pass the result to
    ``ax.plot(..., **series_style(i))``.
    """
    index = _whole("index", index, 0)
    colors = LINE_COLORS if colors is None else colors
    linestyles = LINE_STYLES if linestyles is None else linestyles
    markers = MARKERS if markers is None else markers
    style = {"color": colors[index % len(colors)],
             "linestyle": linestyles[index % len(linestyles)],
             "marker": markers[index % len(markers)]}
    if n_points is not None:
        style["markevery"] = max(1, _whole("n_points", n_points, 1) // 10)
    return style


def _show_figures_in_ipython() -> None:
    """Let IPython display a plain Figure (as PNG) when a cell ends with it.

    pyplot's inline backend registers this only when pyplot is imported;
    the book's figures never touch pyplot, so it is registered here.
    "retina": a PNG at twice the figure's dpi, shown at its 100 dpi size
    (IPython gives the output that width): sharp on high-density screens, at the
    resolution of the explorers' figures (dmlbook.widgets.RENDER_DPI).
    """
    try:
        from IPython import get_ipython
        from IPython.core.pylabtools import select_figure_formats
    except ImportError:  # pragma: no cover - IPython is a dependency of the book
        return
    shell = get_ipython()
    if shell is not None:
        select_figure_formats(shell, {"retina"})


_show_figures_in_ipython()


# Margins of a "fixed" layout, in inches: room for the tick labels (at most six
# characters, see plain_log_ticks), the axis labels and a one-line title.
FIXED_MARGINS_IN = {"left": 0.95, "right": 0.2, "bottom": 0.55, "top": 0.4}


# Two-panel figures, stacked: the book's column width, and each panel 0.95 of
# the side-by-side height (a stacked pair needs less room per panel).
STACKED_WIDTH_IN = 6.4
STACKED_HEIGHT_FACTOR = 1.9


@book_figure
def figure(*, nrows: int = 1, ncols: int = 1, figsize=None, layout: str = "constrained",
           stack: bool = True, **kw):
    """A new figure and axes in the book's style.

    The figure is a plain :class:`matplotlib.figure.Figure`, never registered
    with pyplot: the inline backend closes pyplot's figures after every widget
    message, which blanked the widgets' figures in JupyterLab. A cell shows it
    by ending with it (``fig``).

    ``layout="constrained"`` fits the margins to the labels at every draw;
    ``"fixed"`` uses :data:`FIXED_MARGINS_IN`, for the live panels' one-axes
    figures, redrawn on every change: the constrained layout was 40% of that.

    Two panels side by side (``ncols=2``) are stacked, one above the other, at
    the book's figure width (``stack=False`` keeps them side by side); the
    axes come back in the same order, so callers unpack them as before.
    """
    figsize = figsize or matplotlib.rcParams["figure.figsize"]
    if stack and layout == "constrained" and (nrows, ncols) == (1, 2):
        # Two panels side by side are shown shrunk to the page's column (their
        # 8-point text fell to about 6 px): one above the other, at the column's
        # width, keeps every label at its size.
        nrows, ncols = 2, 1
        figsize = (STACKED_WIDTH_IN, round(STACKED_HEIGHT_FACTOR * figsize[1], 2))
    if layout == "constrained":
        fig = Figure(figsize=figsize, layout="constrained")
    elif layout == "fixed":
        fig = Figure(figsize=figsize)
        (width, height), m = figsize, FIXED_MARGINS_IN
        fig.subplots_adjust(left=m["left"] / width, right=1 - m["right"] / width,
                            bottom=m["bottom"] / height, top=1 - m["top"] / height)
    else:
        raise ValueError(f"layout must be 'constrained' or 'fixed', got {layout!r}")
    kw["subplot_kw"] = {"axes_class": BookAxes, **kw.get("subplot_kw", {})}
    return fig, fig.subplots(nrows=nrows, ncols=ncols, **kw)


def _plain_number(value: float, _pos=None) -> str:
    """A tick label: 0.5, 1, 2,000, 10,000; outside [1e-4, 1e5) as 1e5, 2e-6."""
    if 1 <= value < 1e5:
        return f"{value:,.0f}"
    if 1e-4 <= value < 1:
        return f"{value:.3g}"
    exponent = math.floor(math.log10(value))
    mantissa = float(f"{value / 10**exponent:.3g}")
    if mantissa >= 10:  # 9.999e4 rounded up to 10e4
        mantissa, exponent = mantissa / 10, exponent + 1
    return f"{mantissa:g}e{exponent}"


class _DecadeLocator(LogLocator):
    """Major ticks at powers of ten; at 1, 2 and 5 times them when fewer than two fit."""

    def __init__(self):
        super().__init__(base=10, subs=(1.0,), numticks=8)

    def tick_values(self, vmin, vmax):
        ticks = super().tick_values(vmin, vmax)
        low, high = sorted((vmin, vmax))
        if sum(low <= t <= high for t in ticks) < 2:
            ticks = LogLocator(base=10, subs=(1.0, 2.0, 5.0),
                               numticks=8).tick_values(vmin, vmax)
        return ticks


def plain_log_ticks(ax, axis: str = "both") -> None:
    """Log-scale ticks at powers of ten, labelled as plain numbers (1, 10, 1,000).

    An axis that spans less than a decade gets ticks at 1, 2 and 5 times powers
    of ten instead. Plain labels read more easily than 10^k, and they are cheap:
    the default mathtext labels and minor ticks were most of a live panel's
    drawing time.
    """
    for which in (("x", "y") if axis == "both" else (axis,)):
        target = ax.xaxis if which == "x" else ax.yaxis
        target.set_major_locator(_DecadeLocator())
        target.set_major_formatter(FuncFormatter(_plain_number))
        target.set_minor_locator(NullLocator())


def new_or_given(ax, **figure_kw):
    """``(figure, ax)``: a new figure (:func:`figure`) when ``ax`` is None, else ``ax``'s.

    ``ax`` may be one Axes or, for a figure of several panels, a sequence of them.
    """
    if ax is None:
        return figure(**figure_kw)
    first = ax if not isinstance(ax, (list, tuple)) and not hasattr(ax, "flat") else (
        list(getattr(ax, "flat", ax))[0])
    return first.figure, ax


def line_colors() -> list:
    """The palette's distinct colours by meaning, the light band colour left out."""
    return list(dict.fromkeys(c for k, c in COLORS.items() if k != "band"))


MAX_LABEL_MOVES = 50


def separate_labels(fig, labels, *, gap_px: float = 2.0) -> int:
    """Move annotations apart until no two overlap; returns how many moves it took.

    Labels placed by offset (``textcoords="offset points"``) next to markers that
    share a byte count or an accuracy collided. The labels are placed one by one
    (in the order given); a label that overlaps one already placed moves down
    by the overlap plus ``gap_px``, until it overlaps none.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not labels:
        return 0
    canvas = FigureCanvasAgg(fig) if not hasattr(fig.canvas, "get_renderer") else fig.canvas
    canvas.draw()
    renderer = canvas.get_renderer()
    points_per_px = 72.0 / fig.dpi
    placed, moves = [], 0
    for label in labels:
        label.set_annotation_clip(False)
        for _ in range(MAX_LABEL_MOVES):
            box = label.get_window_extent(renderer)
            hit = next((p for p in placed if p.overlaps(box)), None)
            if hit is None:
                break
            x, y = label.xyann
            label.xyann = (x, y - (box.y1 - hit.y0 + gap_px) * points_per_px)
            moves += 1
        placed.append(label.get_window_extent(renderer))
    return moves
