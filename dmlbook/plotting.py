"""The shared figure style, and the figures the chapters draw."""

from __future__ import annotations

import matplotlib

from matplotlib.figure import Figure
import numpy as np

from . import bandwidth, costs
from .units import MBIT

COLORS = {"download": "#1f77b4", "upload": "#d62728", "fl": "#d62728",
          "dl": "#2ca02c", "accent": "#ff7f0e", "band": "#9ecae1", "grey": "#7f7f7f"}

matplotlib.rcParams.update({
    "figure.figsize": (6.4, 3.8), "figure.dpi": 100, "savefig.dpi": 100,
    "axes.spines.top": False, "axes.spines.right": False,
    "axes.grid": True, "grid.alpha": 0.3, "font.size": 10, "legend.frameon": False,
})


def _show_figures_in_ipython() -> None:
    """Let IPython display a plain Figure (as PNG) when a cell ends with it.

    pyplot's inline backend registers this only when pyplot is imported;
    the book's figures never touch pyplot, so it is registered here.
    """
    try:
        from IPython import get_ipython
        from IPython.core.pylabtools import select_figure_formats
    except ImportError:  # pragma: no cover - IPython is a dependency of the book
        return
    shell = get_ipython()
    if shell is not None:
        select_figure_formats(shell, {"png"})


_show_figures_in_ipython()


def figure(*, nrows: int = 1, ncols: int = 1, figsize=None, **kw):
    """A new figure and axes in the book's style.

    The figure is a plain :class:`matplotlib.figure.Figure`, never registered
    with pyplot: the inline backend closes pyplot's figures after every widget
    message, which blanked the widgets' figures in JupyterLab. A cell shows it
    by ending with it (``fig``).
    """
    fig = Figure(figsize=figsize or matplotlib.rcParams["figure.figsize"],
                 layout="constrained")
    return fig, fig.subplots(nrows=nrows, ncols=ncols, **kw)


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
    ax.set_xlabel("server upload speed (Mbit/s)")
    ax.set_ylabel("participants supported")
    ax.set_title(f"{n_params:,} params × {bits_per_param} bit, {time_limit_s:g} s limit")
    ax.legend()
    return fig


def plot_cumulative_cost(n_params: int, *, rounds: int, clients_per_round: int,
                         usd_per_gib: float, bytes_per_param: float = 4,
                         upload_usd_per_gib: float = 0.0, variants: bool = True):
    """Dollars billed after each round: the sheet's case and its variants."""
    fig, ax = figure()
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
    ax.legend()
    return fig


def plot_node_curves(history, nodes=(0, 1), *, ax=None, title: str | None = None,
                     metric: str = "test_loss"):
    """Two nodes' test-loss curves over the band of all nodes.

    The light band spans all nodes (min to max), the darker one the middle
    80 %; the dashed line is the average model; a final all-reduce round, if
    any, is marked.
    """
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
    for node, color in zip(nodes, (COLORS["upload"], COLORS["dl"])):
        ax.plot(rounds, values[:, node], color=color, lw=1.4, label=f"node {node}")
    avg = h["avg_loss"] if metric == "test_loss" else h["avg_acc"]
    ax.plot(rounds, avg, "--", color="black", lw=1, label="average model")
    for r, label in history.labels.items():
        ax.axvline(r - 0.5, color=COLORS["grey"], ls=":", lw=1)
        ax.annotate(label, (r - 0.5, ax.get_ylim()[1]), ha="right", va="top",
                    fontsize=8, color=COLORS["grey"], rotation=90)
    ax.set_xlabel("D-PSGD step")
    ax.set_ylabel("test loss" if metric == "test_loss" else "test accuracy")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


def plot_topologies(results: dict, *, baseline=None):
    """Consensus distance and mean test loss per step, one line per topology."""
    fig, (ax1, ax2) = figure(ncols=2, figsize=(9, 3.6))
    for name, result in results.items():
        h = result.history.as_arrays()
        ax1.semilogy(h["round"][1:], h["consensus"][1:], label=name)
        ax2.plot(h["round"], h["test_loss"].mean(1), label=name)
    if baseline is not None:
        ax2.plot(baseline.steps, baseline.test_loss, "k--", lw=1, label="centralized SGD")
    ax1.set_xlabel("D-PSGD step")
    ax1.set_ylabel("consensus distance")
    ax2.set_xlabel("D-PSGD step")
    ax2.set_ylabel("mean test loss of the nodes")
    ax1.legend(fontsize=8)
    ax2.legend(fontsize=8)
    return fig


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
    for (label, values), color in zip(measured.items(), ("#d62728", "#ff7f0e", "#9467bd",
                                                           "#2ca02c")):
        ax.plot(n, formulas[label] / M, "-", color=color, lw=1, alpha=0.7)
        ax.plot(n, np.asarray(values) / M, "o", color=color, label=label)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("workers n")
    ax.set_ylabel("bytes sent per round\n(in model sizes)")
    ax.set_title("markers: counted by the ledger; lines: closed form")
    ax.legend(fontsize=8)
    return fig


def plot_failures(runs: dict, *, crash_round: int):
    """Test accuracy over rounds for each failure scenario."""
    fig, ax = figure(figsize=(7.5, 3.8))
    for label, result in runs.items():
        ax.plot(result.rounds, result.test_acc, label=label, lw=1.4)
    ax.axvline(crash_round - 0.5, color=COLORS["grey"], ls=":", lw=1)
    ax.annotate("crash", (crash_round - 0.5, 0.02), ha="right", fontsize=8,
                color=COLORS["grey"], rotation=90)
    ax.set_xlabel("round")
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=8, loc="lower right")
    return fig


def plot_round_times(n_params: int, link_bps: float, *, max_workers: int = 256,
                     mark: int | None = None):
    """Communication time per round of each scheme against the number of workers."""
    from .allreduce import SCHEME_NAMES, round_time_s

    n = np.unique(np.geomspace(2, max_workers, 60).astype(int))
    fig, ax = figure()
    for scheme, name in SCHEME_NAMES.items():
        t = [round_time_s(scheme, int(k), n_params, link_bps) for k in n]
        ax.loglog(n, t, label=name)
        if mark is not None:
            ax.plot(mark, round_time_s(scheme, mark, n_params, link_bps), "o", color="black",
                    ms=4)
    ax.set_xlabel("workers n")
    ax.set_ylabel("communication time per round (s)")
    ax.set_title(f"{n_params:,} params, links of {link_bps / 1e9:g} Gbit/s")
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


def plot_exchange(results: dict):
    """Consensus distance and mean test accuracy: exchanging gradients vs parameters."""
    fig, (ax1, ax2) = figure(ncols=2, figsize=(9, 3.4))
    for (name, result), color in zip(results.items(), (COLORS["dl"], COLORS["upload"])):
        h = result.history.as_arrays()
        ax1.semilogy(h["round"], h["consensus"], color=color, label=name)
        ax2.plot(h["round"], h["test_acc"].mean(1), color=color, label=name)
    ax1.set_xlabel("round")
    ax1.set_ylabel("consensus distance")
    ax2.set_xlabel("round")
    ax2.set_ylabel("mean test accuracy of the nodes")
    ax1.legend(fontsize=8)
    return fig


def plot_compression(rows: list[dict]):
    """Final accuracy against uploaded bytes, updates vs parameters per setting."""
    from .federated import describe

    fig, ax = figure()
    markers = {"update": ("o", COLORS["dl"]), "parameters": ("s", COLORS["upload"])}
    for row in rows:
        marker, color = markers[row["send"]]
        ax.plot(row["upload_bytes"] / 2**20, row["accuracy"], marker, color=color, ms=7)
        # Labels above the update markers, below the parameter markers: the
        # two share their byte counts, so side by side they would overlap.
        ax.annotate(describe(row["method"], row["level"]),
                    (row["upload_bytes"] / 2**20, row["accuracy"]), fontsize=7,
                    xytext=(4, 5 if row["send"] == "update" else -11),
                    textcoords="offset points")
    for send, (marker, color) in markers.items():
        ax.plot([], [], marker, color=color, label=f"clients send {send}")
    ax.set_xscale("log")
    ax.margins(x=0.2)  # room for the labels of the rightmost markers
    ax.set_xlabel("bytes uploaded by all clients (MiB)")
    ax.set_ylabel("final test accuracy")
    ax.legend(fontsize=8)
    return fig


def plot_variance(results: dict):
    """Variance of the nodes' values per cycle of gossip averaging (log scale)."""
    fig, ax = figure()
    for label, res in results.items():
        ax.semilogy(res.cycle, np.maximum(res.variance, 1e-30), marker=".", label=label)
    ax.set_xlabel("cycle (one period Δ)")
    ax.set_ylabel("variance of the node values")
    ax.set_ylim(bottom=1e-16)
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


def plot_progress(results: dict, *, ax=None):
    """Median test accuracy over simulated time, one line per setting."""
    if ax is None:
        _, ax = figure()
    for label, res in results.items():
        h = res.as_arrays()
        ax.plot(h["time"], np.median(h["test_acc"], 1), label=label)
    ax.set_xlabel("simulated time (s)")
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
    fig, ax = figure()
    ax.loglog(uploads / MBIT, np.maximum(np.minimum(n_up, n_down), 0.5),
              color=COLORS["upload"], label=r"$n_{\max}$")
    ax.axhline(max(n_down, 0.5), ls="--", color=COLORS["download"],
               label=f"download-link limit ({int(n_down):,})")
    mark = bandwidth.max_participants(n_params, bits_per_param=bits_per_param,
                                      download_bps=download_bps, upload_bps=upload_bps,
                                      time_limit_s=time_limit_s)
    ax.plot(upload_bps / MBIT, max(mark.n_max, 0.5), "o", color=COLORS["accent"],
            label=f"your plan: {upload_bps / MBIT:g} Mbit/s up → {mark.n_max:,}")
    ax.set_xlabel("server upload speed (Mbit/s)")
    ax.set_ylabel("participants supported")
    ax.set_title(f"{n_params:,} params × {bits_per_param} bit, {time_limit_s:g} s limit")
    ax.legend(fontsize=8)
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
