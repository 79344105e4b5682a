"""Exercise 5's figures: gossip averaging and gossip learning."""

from __future__ import annotations

import numpy as np

from .style import COLORS, book_figure, line_colors, new_or_given, series_style

# Line styles and markers for the gossip figures, whose lines can overlap.
GOSSIP_LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1)))
GOSSIP_MARKERS = ("o", "s", "^", "D", "v")


def _gossip_style(j: int) -> dict:
    return series_style(j, colors=line_colors(), linestyles=GOSSIP_LINESTYLES,
                        markers=GOSSIP_MARKERS)


@book_figure
def plot_variance(results: dict, *, ax=None, quantity: str = "variance"):
    """Per cycle of gossip averaging, one line per setting (distinct styles and markers).

    ``quantity="variance"``: the variance of the nodes' values (log scale);
    ``"mean"``: their mean, against the true mean (the first cycle's).
    Returns the figure; with ``ax`` given, draws into it.
    """
    fig, ax = new_or_given(ax)
    for j, (label, res) in enumerate(results.items()):
        s = _gossip_style(j)
        y = (np.maximum(res.variance, 1e-30) if quantity == "variance" else res.mean)
        ax.plot(res.cycle, y, ls=s["linestyle"], marker=s["marker"], ms=3, color=s["color"],
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


def baseline_times(result, baseline) -> np.ndarray:
    """Simulated time at which the gossip network had taken as many SGD steps in
    all as centralized SGD had at each of its evaluations (its x-axis in time)."""
    h = result.as_arrays()
    total = h["mean_steps"] * result.n_nodes
    return np.interp(np.asarray(baseline.steps, dtype=float), total, h["time"])


@book_figure
def plot_gossip_accuracy(result, *, ax=None, baseline=None, title: str | None = None,
                         others=()):
    """Every node's test accuracy over simulated time: band, median, and a baseline.

    ``baseline`` (centralized SGD with as many steps in all) is drawn as its
    trajectory, each evaluation at the simulated time when the network had taken
    as many steps. ``others``: ``(result, baseline)`` pairs of further seeds,
    drawn as thin lines (median, and baseline dashed).
    """
    h = result.as_arrays()
    fig, ax = new_or_given(ax)
    acc = h["test_acc"]
    ax.fill_between(h["time"], acc.min(1), acc.max(1), color=COLORS["band"], alpha=0.4,
                    lw=0, label=f"all {acc.shape[1]} nodes (min–max)")
    seeds = f", {1 + len(others)} seeds" if others else ""
    ax.plot(h["time"], np.median(acc, 1), color=COLORS["download"],
            label=f"median node{seeds}")
    if baseline is not None:
        ax.plot(baseline_times(result, baseline), baseline.test_acc, color="black", ls="--",
                lw=1, label=f"centralized SGD, as many steps in all{seeds}")
    for other, other_base in others:
        ho = other.as_arrays()
        ax.plot(ho["time"], np.median(ho["test_acc"], 1), color=COLORS["download"], lw=0.8,
                alpha=0.7)
        if other_base is not None:
            ax.plot(baseline_times(other, other_base), other_base.test_acc, color="black",
                    ls="--", lw=0.6, alpha=0.7)
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("test accuracy")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right")
    return fig


@book_figure
def plot_load_histograms(loads: dict, prediction: np.ndarray, *, ax=None):
    """Share of (node, cycle) pairs with k messages received, against the binomial prediction."""
    fig, ax = new_or_given(ax)
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
    return fig


@book_figure
def plot_progress(results: dict, *, ax=None, x: str = "time"):
    """Median test accuracy, one line per setting (distinct styles and markers),
    against simulated time (``x="time"``) or the mean SGD steps per node (``"steps"``).

    A value may be a list of results, one per seed: the first is drawn with
    markers, the others as thin lines of the same style."""
    fig, ax = new_or_given(ax)
    for j, (label, runs) in enumerate(results.items()):
        runs = runs if isinstance(runs, (list, tuple)) else [runs]
        s = _gossip_style(j)
        for k, res in enumerate(runs):
            h = res.as_arrays()
            style = (dict(ls=s["linestyle"], marker=s["marker"], ms=3, markevery=3,
                          label=label if len(runs) == 1 else f"{label} ({len(runs)} seeds)")
                     if k == 0 else dict(ls=s["linestyle"], lw=0.7, alpha=0.7))
            ax.plot(h["time"] if x == "time" else h["mean_steps"],
                    np.median(h["test_acc"], 1), color=s["color"], **style)
    ax.set_xlabel("simulated time (s)" if x == "time" else "SGD steps per node (mean)")
    ax.set_ylabel("median test accuracy")
    ax.legend(fontsize=8)
    return fig
