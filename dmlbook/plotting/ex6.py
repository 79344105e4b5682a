"""Exercise 6's figures: D-PSGD's node curves and topologies."""

from __future__ import annotations

import numpy as np

from .style import COLORS, LINE_STYLES, MARKERS, book_figure, new_or_given, series_style


@book_figure
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
    fig, ax = new_or_given(ax)
    ax.fill_between(rounds, values.min(1), values.max(1), color=COLORS["band"],
                    alpha=0.35, lw=0, label=f"all {values.shape[1]} nodes (min–max)")
    lo, hi = np.percentile(values, [10, 90], axis=1)
    ax.fill_between(rounds, lo, hi, color=COLORS["band"], alpha=0.8, lw=0,
                    label="middle 80% of nodes")
    every = max(1, len(rounds) // 12)
    for i, node in zip(range(2), nodes):  # two nodes: solid with circles, dashed with squares
        s = series_style(i, colors=(COLORS["upload"], COLORS["dl"]))
        ax.plot(rounds, values[:, node], color=s["color"], lw=1.4, ls=s["linestyle"],
                marker=s["marker"], ms=3.5, markevery=every, label=f"node {node}")
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
    return fig


@book_figure
def plot_topologies(results: dict, *, baseline=None, ax=None):
    """Consensus distance and mean test loss per step, one line per topology.

    ``ax``: two Axes to draw into (default: a new figure of two panels).
    """
    fig, (ax1, ax2) = new_or_given(ax, ncols=2, figsize=(9, 3.6))
    for i, (name, result) in enumerate(results.items()):
        h = result.history.as_arrays()
        every = max(1, len(h["round"]) // 10)
        s = series_style(i, linestyles=LINE_STYLES[:4], markers=MARKERS[:4])
        style = dict(color=s["color"], ls=s["linestyle"], marker=s["marker"], ms=4,
                     markevery=every, label=name)
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
