"""The shared figure style, and the figures the chapters draw."""

from __future__ import annotations

import math

import matplotlib

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator
import numpy as np

from . import bandwidth, costs
from .units import MBIT

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

matplotlib.rcParams.update({
    "figure.figsize": (6.4, 3.8), "figure.dpi": 100, "savefig.dpi": 100,
    "axes.spines.top": False, "axes.spines.right": False,
    "axes.grid": True, "grid.alpha": 0.3, "font.size": 10, "legend.frameon": False,
    # Lines drawn without an explicit style cycle through colour AND line style.
    "axes.prop_cycle": (matplotlib.cycler(color=LINE_COLORS)
                        + matplotlib.cycler(linestyle=LINE_STYLES)),
})


def series_style(index: int, *, n_points: int | None = None) -> dict:
    """Keyword arguments for the ``index``-th line of a figure: colour, line style, marker.

    With ``n_points``, markers are thinned to about ten per line, so that dense
    lines stay readable. Pass the result to ``ax.plot(..., **series_style(i))``.
    """
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ValueError(f"index must be an int >= 0, got {index!r}")
    style = {"color": LINE_COLORS[index % len(LINE_COLORS)],
             "linestyle": LINE_STYLES[index % len(LINE_STYLES)],
             "marker": MARKERS[index % len(MARKERS)]}
    if n_points is not None:
        if isinstance(n_points, bool) or not isinstance(n_points, int) or n_points < 1:
            raise ValueError(f"n_points must be an int >= 1, got {n_points!r}")
        style["markevery"] = max(1, n_points // 10)
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


def figure(*, nrows: int = 1, ncols: int = 1, figsize=None, layout: str = "constrained",
           **kw):
    """A new figure and axes in the book's style.

    The figure is a plain :class:`matplotlib.figure.Figure`, never registered
    with pyplot: the inline backend closes pyplot's figures after every widget
    message, which blanked the widgets' figures in JupyterLab. A cell shows it
    by ending with it (``fig``).

    ``layout="constrained"`` fits the margins to the labels at every draw;
    ``"fixed"`` uses :data:`FIXED_MARGINS_IN`, for the live panels' one-axes
    figures, redrawn on every change: the constrained layout was 40% of that.
    """
    figsize = figsize or matplotlib.rcParams["figure.figsize"]
    if layout == "constrained":
        fig = Figure(figsize=figsize, layout="constrained")
    elif layout == "fixed":
        fig = Figure(figsize=figsize)
        (width, height), m = figsize, FIXED_MARGINS_IN
        fig.subplots_adjust(left=m["left"] / width, right=1 - m["right"] / width,
                            bottom=m["bottom"] / height, top=1 - m["top"] / height)
    else:
        raise ValueError(f"layout must be 'constrained' or 'fixed', got {layout!r}")
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


def plot_nmax_vs_upload(n_params: int, *, bits_per_param: int = 32,
                        download_bps: float, time_limit_s: float,
                        mark_upload_bps: float | None = None):
    """n_max against the server's upload speed (log-log), the download limit dashed."""
    uploads = np.logspace(0, 4, 200) * MBIT  # 1 Mbit/s .. 10 Gbit/s
    limits = [bandwidth.max_participants(n_params, bits_per_param=bits_per_param,
                                         download_bps=download_bps, upload_bps=u,
                                         time_limit_s=time_limit_s) for u in uploads]
    fig, ax = figure()
    ax.loglog(uploads / MBIT, [max(lim.n_max, 0.5) for lim in limits],
              color=COLORS["upload"], label=r"$n_{\max}$")
    ax.axhline(limits[0].download, ls="--", color=COLORS["download"],
               label=f"download-link limit ({limits[0].download:,})")
    if mark_upload_bps is not None:
        mark = bandwidth.max_participants(n_params, bits_per_param=bits_per_param,
                                          download_bps=download_bps,
                                          upload_bps=mark_upload_bps,
                                          time_limit_s=time_limit_s)
        ax.plot(mark_upload_bps / MBIT, mark.n_max, "o", color=COLORS["accent"],
                label=f"sheet: {mark_upload_bps / MBIT:g} Mbit/s → {mark.n_max:,}")
    plain_log_ticks(ax)
    ax.set_xlabel("server upload speed (Mbit/s)")
    ax.set_ylabel("participants supported")
    ax.set_title(f"{n_params:,} params × {bits_per_param} bit, {time_limit_s:g} s limit")
    ax.legend()
    return fig


def plot_cumulative_cost(n_params: int, *, rounds: int, clients_per_round: int,
                         usd_per_gib: float, bytes_per_param: float = 4,
                         upload_usd_per_gib: float = 0.0, variants: bool = True,
                         layout: str = "constrained"):
    """Dollars billed after each round: the sheet's case and its variants.

    ``layout``: see :func:`figure` (the live panel passes ``"fixed"``).
    """
    fig, ax = figure(layout=layout)
    x = np.arange(1, rounds + 1)
    base = dict(rounds=rounds, clients_per_round=clients_per_round,
                usd_per_gib=usd_per_gib)
    cases = [("FL, downloads billed", dict(bytes_per_param=bytes_per_param,
                                             upload_usd_per_gib=upload_usd_per_gib),
              COLORS["fl"], "-")]
    if variants:
        cases += [("FL, uploads billed too", dict(bytes_per_param=bytes_per_param,
                                                  upload_usd_per_gib=usd_per_gib),
                   COLORS["accent"], "--"),
                  ("FL, 16-bit parameters", dict(bytes_per_param=bytes_per_param / 2),
                   COLORS["download"], ":")]
    for label, kw, color, ls in cases:
        y = costs.fl_cumulative_cost(n_params, **base, **kw)
        ax.plot(x, y, color=color, ls=ls, label=f"{label}: ${y[-1]:,.2f}")
    ax.plot(x, np.zeros_like(x, dtype=float), color=COLORS["dl"],
            label="DL over flat-rate links: $0.00")
    ax.set_xlabel("round")
    ax.set_ylabel("cumulative cloud bill (US$)")
    ax.legend(loc="upper left")  # above the rising bills; no "best" search
    return fig


def plot_node_curves(history, nodes=(0, 1), *, ax=None, title: str | None = None,
                     metric: str = "test_loss"):
    """Two nodes' test-loss curves over the band of all nodes.

    The light band spans all nodes (min to max), the darker one the middle
    80 %; the two nodes are solid with circles and dashed with squares; the
    dotted black line is the average model; a final all-reduce round, if any,
    is marked and named on the x-axis.
    """
    from matplotlib.ticker import MaxNLocator

    h = history.as_arrays()
    values = h[metric]
    rounds = h["round"]
    if ax is None:
        _, ax = figure()
    ax.fill_between(rounds, values.min(1), values.max(1), color=COLORS["band"],
                    alpha=0.35, lw=0, label=f"all {values.shape[1]} nodes (min–max)")
    lo, hi = np.percentile(values, [10, 90], axis=1)
    ax.fill_between(rounds, lo, hi, color=COLORS["band"], alpha=0.8, lw=0,
                    label="middle 80% of nodes")
    styles = (("-", "o"), ("--", "s"))
    every = max(1, len(rounds) // 12)
    for node, color, (ls, marker) in zip(nodes, (COLORS["upload"], COLORS["dl"]), styles):
        ax.plot(rounds, values[:, node], color=color, lw=1.4, ls=ls, marker=marker, ms=3.5,
                markevery=every, label=f"node {node}")
    avg = h["avg_loss"] if metric == "test_loss" else h["avg_acc"]
    ax.plot(rounds, avg, ":", color="black", lw=1.2, label="average model")
    for r, label in history.labels.items():
        ax.axvline(r - 0.5, color=COLORS["grey"], ls=":", lw=1)
    if history.labels:
        # The last round is not a D-PSGD step: name it on the x-axis.
        first = min(history.labels)
        # Leave room before the all-reduce tick for its two-line label.
        ticks = [t for t in MaxNLocator(nbins=6, integer=True).tick_values(0, first - 1)
                 if 0 <= t <= first - 1 - max(1, first // 8)]
        ax.set_xticks(ticks + sorted(history.labels),
                      [f"{t:g}" for t in ticks]
                      + [history.labels[r].replace(" ", "\n", 1) for r in sorted(history.labels)],
                      fontsize=8)
    ax.set_xlabel("D-PSGD step")
    ax.set_ylabel("test loss" if metric == "test_loss" else "test accuracy")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


def plot_topologies(results: dict, *, baseline=None):
    """Consensus distance and mean test loss per step, one line per topology."""
    fig, (ax1, ax2) = figure(ncols=2, figsize=(9, 3.6))
    for (name, result), (ls, marker) in zip(results.items(), _STYLES * len(results)):
        h = result.history.as_arrays()
        every = max(1, len(h["round"]) // 10)
        style = dict(ls=ls, marker=marker, ms=4, markevery=every, label=name)
        ax1.semilogy(h["round"][1:], h["consensus"][1:], **style)
        ax2.plot(h["round"], h["test_loss"].mean(1), **style)
    if baseline is not None:
        ax2.plot(baseline.steps, baseline.test_loss, "k--", lw=1, label="centralized SGD")
    ax1.set_xlabel("D-PSGD step")
    ax1.set_ylabel("consensus distance")
    ax2.set_xlabel("D-PSGD step")
    ax2.set_ylabel("mean test loss of the nodes")
    ax1.legend(fontsize=8)
    ax2.legend(fontsize=8)
    return fig


def _style(i: int) -> dict:
    """The ``i``-th series' colour, line style and marker (so no curve hides another)."""
    style = series_style(i)
    return {"ls": style["linestyle"], "marker": style["marker"], "color": style["color"]}


def plot_traffic_vs_workers(worker_counts, measured: dict, model_bytes: float):
    """Bytes a node sends per round against n: ledger (markers) and closed form (lines).

    Every node receives as much as it sends in all three schemes.
    """
    from .allreduce import TRAFFIC_SERIES, per_node_round_bytes

    M = model_bytes
    formulas = {label: np.array([per_node_round_bytes(scheme, k, M)[role]
                                 for k in worker_counts])
                for label, (scheme, role) in TRAFFIC_SERIES.items()}
    n = np.asarray(worker_counts, dtype=float)
    fig, ax = figure()
    for i, (label, values) in enumerate(measured.items()):
        style = _style(i)
        ax.plot(n, formulas[label] / M, ls=style["ls"], color=style["color"], lw=1, alpha=0.7)
        ax.plot(n, np.asarray(values) / M, style["marker"], color=style["color"], label=label,
                mfc="none" if i % 2 else style["color"])
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("workers n")
    ax.set_ylabel("bytes sent per round\n(in model sizes)")
    ax.set_title("markers: counted by the ledger; lines: closed form")
    ax.legend(fontsize=8)
    return fig


def plot_failures(runs: dict, *, crash_round: int):
    """Test accuracy over rounds for each failure scenario.

    Each run has its own line style and marker (every 4th round, staggered),
    so runs that coincide stay visible.
    """
    fig, ax = figure(figsize=(7.5, 4.2))
    for i, (label, result) in enumerate(runs.items()):
        style = _style(i)
        ax.plot(result.rounds, result.test_acc, label=label, lw=1.4, ls=style["ls"],
                marker=style["marker"], color=style["color"], ms=5,
                markevery=(i % 4, 4), mfc="none" if i % 2 else style["color"])
    ax.axvline(crash_round - 0.5, color=COLORS["grey"], ls=":", lw=1)
    ax.annotate("crash", (crash_round - 0.5, 0.02), ha="right", fontsize=8,
                color=COLORS["grey"], rotation=90)
    ax.set_xlabel("round")
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=7, loc="lower right")
    return fig


def plot_round_times(n_params: int, link_bps: float, *, max_workers: int = 256,
                     mark: int | None = None, latency_s: float = 0.0,
                     layout: str = "constrained"):
    """Communication time per round of each scheme against the number of workers.

    ``latency_s`` (alpha, per message) adds the alpha-beta model's latency term.
    ``layout``: see :func:`figure` (the live panel passes ``"fixed"``).
    """
    from .allreduce import SCHEME_NAMES, round_time_s

    n = np.unique(np.geomspace(2, max_workers, 60).astype(int))
    fig, ax = figure(layout=layout)
    for i, (scheme, name) in enumerate(SCHEME_NAMES.items()):
        style = _style(i)
        t = [round_time_s(scheme, int(k), n_params, link_bps, latency_s=latency_s) for k in n]
        ax.loglog(n, t, label=name, ls=style["ls"], color=style["color"], marker=style["marker"],
                  markevery=8, ms=4)
        if mark is not None:
            ax.plot(mark, round_time_s(scheme, mark, n_params, link_bps, latency_s=latency_s),
                    "o", color="black", ms=4)
    plain_log_ticks(ax)
    ax.set_xlabel("workers n")
    ax.set_ylabel("communication time per round (s)")
    title = f"{n_params:,} params, links of {link_bps / 1e9:g} Gbit/s"
    if latency_s:
        title += f", {latency_s * 1e3:g} ms per message"
    ax.set_title(title, y=1.0)  # a fixed place: no search for decorations above the axes
    ax.legend(fontsize=8, loc="upper left")  # above the rising lines; no "best" search
    return fig


def plot_round_time_vs_model_size(n_workers: int, link_bps: float, latency_s: float, *,
                                  mark_params: int | None = None):
    """Alpha-beta time per round of each scheme against the model size, crossover marked."""
    from .allreduce import SCHEME_NAMES, ring_beats_naive_above_params, round_time_s

    sizes = np.unique(np.geomspace(100, 1e8, 80).astype(int))
    fig, ax = figure()
    for i, (scheme, name) in enumerate(SCHEME_NAMES.items()):
        style = _style(i)
        t = [round_time_s(scheme, n_workers, int(p), link_bps, latency_s=latency_s)
             for p in sizes]
        ax.loglog(sizes, t, label=name, ls=style["ls"], color=style["color"],
                  marker=style["marker"], markevery=10, ms=4)
    star = ring_beats_naive_above_params(n_workers, link_bps, latency_s)
    if np.isfinite(star) and star > 0:
        ax.axvline(star, color=COLORS["grey"], ls=":", lw=1)
        ax.annotate(f"ring overtakes naive\nabove {star:,.0f} params ", (star, ax.get_ylim()[1]),
                    ha="right", va="top", fontsize=8, color=COLORS["grey"])
    if mark_params is not None:
        ax.axvline(mark_params, color="black", ls="--", lw=0.8)
        ax.annotate(f"{mark_params:,} params ", (mark_params, ax.get_ylim()[1]), ha="left",
                    va="top", fontsize=8, rotation=90)
    ax.set_xlabel("model size (parameters, 4 bytes each)")
    ax.set_ylabel("communication time per round (s)")
    ax.set_title(f"{n_workers} workers, {link_bps / 1e9:g} Gbit/s links, "
                 f"{latency_s * 1e3:g} ms per message")
    ax.legend(fontsize=8, loc="lower right")
    return fig


def plot_compute_profile(profile):
    """Measured compute per round: one worker's gradient against the server's averaging."""
    n = np.asarray(profile.worker_counts, dtype=float)
    fig, ax = figure()
    ax.loglog(n, np.asarray(profile.worker_gradient_s) * 1e3, label="one worker's gradient",
              **_style(3))
    ax.loglog(n, np.asarray(profile.server_aggregate_s) * 1e3,
              label="server: average n gradients and step", **_style(0))
    ax.set_xscale("log", base=2)
    ax.set_xlabel("workers n")
    ax.set_ylabel("measured time (ms, median)")
    ax.set_title("compute per round, one CPU thread")
    ax.legend(fontsize=8)
    return fig


def plot_entry_histograms(payloads: dict, *, near_zero: float = 1e-3, bins: int = 80):
    """Histograms of the entries of FL updates and of the parameters, side by side."""
    fig, axes = figure(ncols=2, figsize=(9, 3.4))
    for ax, (name, values), color in zip(axes, payloads.items(),
                                         (COLORS["dl"], COLORS["upload"])):
        x = values.flatten().numpy()
        ax.hist(x, bins=bins, color=color, alpha=0.8)
        ax.axvspan(-near_zero, near_zero, color=COLORS["grey"], alpha=0.25,
                   label=f"|x| < {near_zero:g}")
        ax.set_yscale("log")
        ax.set_title(f"{name} entries")
        ax.set_xlabel("value")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("count")
    return fig


_STYLES = (("-", "o"), ("--", "s"), ("-.", "^"), (":", "D"))


def plot_exchange(results: dict):
    """Consensus distance and mean test accuracy: exchanging gradients vs parameters.

    Up to four runs, each with its own colour, line style and marker.
    """
    fig, (ax1, ax2) = figure(ncols=2, figsize=(9, 3.4))
    colors = (COLORS["dl"], COLORS["upload"], COLORS["download"], COLORS["accent"])
    for (name, result), color, (ls, marker) in zip(results.items(), colors, _STYLES):
        h = result.history.as_arrays()
        every = max(1, len(h["round"]) // 10)
        style = dict(color=color, ls=ls, marker=marker, ms=4, markevery=every, label=name)
        ax1.semilogy(h["round"], h["consensus"], **style)
        ax2.plot(h["round"], h["test_acc"].mean(1), **style)
    ax1.set_xlabel("round")
    ax1.set_ylabel("consensus distance")
    ax2.set_xlabel("round")
    ax2.set_ylabel("mean test accuracy of the nodes")
    ax1.legend(fontsize=8)
    return fig


# Updates as large hollow circles, so that a parameter square at the same point shows inside.
_COMPRESSION_MARKER = {"update": dict(ms=11, mfc="none", mew=1.8),
                       "parameters": dict(ms=6), "fair": dict(ms=7)}


def plot_compression(rows: list[dict]):
    """Final accuracy against uploaded bytes, updates vs parameters per setting.

    Rows with a fair parameter baseline (``"quantize_per_tensor"``,
    ``"topk_keep"``) get their own marker and legend entry.
    """
    from .federated import describe

    fig, ax = figure()
    kinds = {"update": ("o", COLORS["dl"], "clients send updates"),
             "parameters": ("s", COLORS["upload"], "clients send parameters (naive)"),
             "fair": ("^", COLORS["download"], "clients send parameters (fair baseline)")}
    used = set()
    for row in rows:
        fair = row["send"] == "parameters" and row["method"] in ("quantize_per_tensor",
                                                                 "topk_keep")
        kind = "fair" if fair else row["send"]
        used.add(kind)
        marker, color, _ = kinds[kind]
        ax.plot(row["upload_bytes"] / 2**20, row["accuracy"], marker, color=color,
                **_COMPRESSION_MARKER[kind])
        # Labels above the update markers, below the parameter markers, left of
        # the fair ones: they share their byte counts, so they would overlap.
        offset = {"update": (0, 6), "parameters": (4, -11), "fair": (-6, -3)}[kind]
        ha = {"update": "center", "parameters": "left", "fair": "right"}[kind]
        ax.annotate(describe(row["method"], row["level"]).replace(" quantization", ""),
                    (row["upload_bytes"] / 2**20, row["accuracy"]), fontsize=7,
                    xytext=offset, textcoords="offset points", ha=ha)
    for kind, (marker, color, label) in kinds.items():
        if kind in used:
            ax.plot([], [], marker, color=color, label=label, **_COMPRESSION_MARKER[kind])
    ax.set_xscale("log")
    ax.margins(x=0.2)  # room for the labels of the rightmost markers
    ax.set_ylim(top=max(1.0, ax.get_ylim()[1]))  # room for the labels above the top row
    ax.set_xlabel("bytes uploaded by all clients (MiB)")
    ax.set_ylabel("final test accuracy")
    ax.legend(fontsize=8)
    return fig


def _line_colors() -> list:
    """The palette's distinct colours, the light band colour left out."""
    return list(dict.fromkeys(c for k, c in COLORS.items() if k != "band"))


# Line styles and markers for the gossip figures, whose lines can overlap.
_GOSSIP_STYLES = (("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"), ((0, (5, 1)), "v"))


def plot_variance(results: dict, *, ax=None, quantity: str = "variance"):
    """Per cycle of gossip averaging, one line per setting (distinct styles and markers).

    ``quantity="variance"``: the variance of the nodes' values (log scale);
    ``"mean"``: their mean, against the true mean (the first cycle's).
    Returns the figure (as before); with ``ax`` given, draws into it.
    """
    fig, ax = figure() if ax is None else (ax.figure, ax)
    colors = _line_colors()
    for j, (label, res) in enumerate(results.items()):
        ls, marker = _GOSSIP_STYLES[j % len(_GOSSIP_STYLES)]
        y = (np.maximum(res.variance, 1e-30) if quantity == "variance" else res.mean)
        ax.plot(res.cycle, y, ls=ls, marker=marker, ms=3, color=colors[j % len(colors)],
                label=label)
    ax.set_xlabel("cycle (one period Δ)")
    if quantity == "variance":
        ax.set_yscale("log")
        ax.set_ylabel("variance of the node values")
        ax.set_ylim(bottom=1e-16)
    else:
        first = next(iter(results.values()))
        ax.axhline(first.mean[0], color="black", lw=1, ls=(0, (1, 1)), label="true mean")
        ax.set_ylabel("mean of the node values")
    ax.legend(fontsize=8)
    return fig


def plot_gossip_accuracy(result, *, ax=None, baseline=None, title: str | None = None):
    """Every node's test accuracy over simulated time: band, median, and a baseline."""
    h = result.as_arrays()
    if ax is None:
        _, ax = figure()
    acc = h["test_acc"]
    ax.fill_between(h["time"], acc.min(1), acc.max(1), color=COLORS["band"], alpha=0.4,
                    lw=0, label=f"all {acc.shape[1]} nodes (min–max)")
    ax.plot(h["time"], np.median(acc, 1), color=COLORS["download"], label="median node")
    if baseline is not None:
        ax.axhline(baseline.test_acc[-1], color="black", ls="--", lw=1,
                   label=f"centralized SGD, same number of steps ({baseline.test_acc[-1]:.2f})")
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("test accuracy")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right")
    return ax


def plot_load_histograms(loads: dict, prediction: np.ndarray, *, ax=None):
    """Share of (node, cycle) pairs with k messages received, against the binomial prediction."""
    if ax is None:
        _, ax = figure()
    k_max = max(len(prediction) - 1, max(int(c.max()) for c in loads.values()))
    width = 0.8 / len(loads)
    for j, ((label, counts), color) in enumerate(zip(loads.items(),
                                                     (COLORS["upload"], COLORS["dl"]))):
        share = np.bincount(counts.ravel(), minlength=k_max + 1) / counts.size
        ax.bar(np.arange(k_max + 1) + (j - (len(loads) - 1) / 2) * width, share, width,
               color=color, alpha=0.8, label=label)
    ax.plot(np.arange(len(prediction)), prediction, "ko--", ms=4, lw=1,
            label="binomial prediction (uniform peers)")
    ax.set_xlabel("messages a node receives in one cycle")
    ax.set_ylabel("share of nodes × cycles")
    ax.legend(fontsize=8)
    return ax


def plot_progress(results: dict, *, ax=None, x: str = "time"):
    """Median test accuracy, one line per setting (distinct styles and markers),
    against simulated time (``x="time"``) or the mean SGD steps per node (``"steps"``)."""
    if ax is None:
        _, ax = figure()
    colors = _line_colors()
    for j, (label, res) in enumerate(results.items()):
        h = res.as_arrays()
        ls, marker = _GOSSIP_STYLES[j % len(_GOSSIP_STYLES)]
        ax.plot(h["time"] if x == "time" else h["mean_steps"], np.median(h["test_acc"], 1),
                ls=ls, marker=marker, ms=3, markevery=3, color=colors[j % len(colors)],
                label=label)
    ax.set_xlabel("simulated time (s)" if x == "time" else "SGD steps per node (mean)")
    ax.set_ylabel("median test accuracy")
    ax.legend(fontsize=8)
    return ax


def plot_nmax_panel(*, n_params: int, bits_per_param: int, download_bps: float,
                    upload_bps: float, time_limit_s: float):
    """Exercise 1's panel: n_max against the upload speed, the chosen plan marked.

    Speeds in bits per second, the limit in seconds.
    """
    uploads = np.logspace(0, 4, 120) * MBIT  # 1 Mbit/s .. 10 Gbit/s
    bits = bandwidth.model_bits(n_params, bits_per_param)
    n_up = np.floor(time_limit_s * uploads / bits)
    n_down = np.floor(time_limit_s * download_bps / bits)
    fig, ax = figure(layout="fixed")  # a live panel: redrawn on every change
    ax.loglog(uploads / MBIT, np.maximum(np.minimum(n_up, n_down), 0.5),
              color=COLORS["upload"], label="nₘₐₓ")  # plain text: mathtext is slow to redraw
    ax.axhline(max(n_down, 0.5), ls="--", color=COLORS["download"],
               label=f"download-link limit ({int(n_down):,})")
    mark = bandwidth.max_participants(n_params, bits_per_param=bits_per_param,
                                      download_bps=download_bps, upload_bps=upload_bps,
                                      time_limit_s=time_limit_s)
    ax.plot(upload_bps / MBIT, max(mark.n_max, 0.5), "o", color=COLORS["accent"],
            label=f"your plan: {upload_bps / MBIT:g} Mbit/s up → {mark.n_max:,}")
    # When no participant fits, every line lies on the 0.5 floor: keep a
    # readable axis (up to 10 at least) rather than a sliver around 0.5.
    low, high = ax.get_ylim()
    ax.set_ylim(low, max(high, 10))
    plain_log_ticks(ax)
    ax.set_xlabel("server upload speed (Mbit/s)")
    ax.set_ylabel("participants supported")
    ax.set_title(f"{n_params:,} params × {bits_per_param} bit, {time_limit_s:g} s limit",
                 y=1.0)  # a fixed place: no search for decorations above the axes
    # Below the rising curve; an explicit place, since the "best" search took
    # half of the panel's drawing time.
    ax.legend(fontsize=8, loc="lower right")
    return fig


def plot_failure_run(result, *, crash_round: int | None, title: str):
    """Exercise 3's failure panel: test accuracy per round, rounds without update shaded."""
    fig, ax = figure()
    ax.plot(result.rounds, result.test_acc, color=COLORS["download"], lw=1.6,
            label="test accuracy")
    stalled = [r for r, up in zip(result.rounds[1:], result.updated[1:]) if not up]
    for r in stalled:
        ax.axvspan(r - 0.5, r + 0.5, color=COLORS["grey"], alpha=0.25, lw=0)
    if stalled:
        ax.plot([], [], "s", color=COLORS["grey"], alpha=0.4, label="round without update")
    if crash_round is not None:
        ax.axvline(crash_round - 0.5, color=COLORS["upload"], ls=":", lw=1.2, label="crash")
    ax.set_ylim(0, 1)
    ax.set_xlabel("round")
    ax.set_ylabel("test accuracy")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return fig
