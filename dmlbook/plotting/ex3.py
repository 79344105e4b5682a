"""Exercise 3's figures: parameter server against all-reduce (traffic, time, failures)."""

from __future__ import annotations

import numpy as np

from .style import COLORS, book_figure, new_or_given, plain_log_ticks, series_style


@book_figure
def plot_traffic_vs_workers(worker_counts, measured: dict, model_bytes: float, *, ax=None):
    """Bytes a node sends per round against n: ledger (markers) and closed form (lines).

    Every node receives as much as it sends in all three schemes.
    """
    from ..allreduce import TRAFFIC_SERIES, per_node_round_bytes

    M = model_bytes
    formulas = {label: np.array([per_node_round_bytes(scheme, k, M)[role]
                                 for k in worker_counts])
                for label, (scheme, role) in TRAFFIC_SERIES.items()}
    n = np.asarray(worker_counts, dtype=float)
    fig, ax = new_or_given(ax)
    for i, (label, values) in enumerate(measured.items()):
        style = series_style(i)
        ax.plot(n, formulas[label] / M, ls=style["linestyle"], color=style["color"], lw=1,
                alpha=0.7)
        ax.plot(n, np.asarray(values) / M, style["marker"], color=style["color"], label=label,
                mfc="none" if i % 2 else style["color"])
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("workers n")
    ax.set_ylabel("bytes sent per round\n(in model sizes)")
    ax.set_title("markers: counted by the ledger; lines: closed form")
    ax.legend(fontsize=8)
    return fig


@book_figure
def plot_compute_profile(profile, *, ax=None):
    """Measured compute per round: one worker's gradient against the server's averaging."""
    n = np.asarray(profile.worker_counts, dtype=float)
    fig, ax = new_or_given(ax)
    ax.loglog(n, np.asarray(profile.worker_gradient_s) * 1e3, label="one worker's gradient",
              **series_style(3))
    ax.loglog(n, np.asarray(profile.server_aggregate_s) * 1e3,
              label="server: average n gradients and step", **series_style(0))
    ax.set_xscale("log", base=2)
    ax.set_xlabel("workers n")
    ax.set_ylabel("measured time (ms, median)")
    ax.set_title("compute per round, one CPU thread")
    ax.legend(fontsize=8)
    return fig


@book_figure
def plot_round_times(n_params: int, link_bps: float, *, max_workers: int = 256,
                     mark: int | None = None, latency_s: float = 0.0,
                     layout: str = "constrained", ax=None):
    """Communication time per round of each scheme against the number of workers.

    ``latency_s`` (alpha, per message) adds the alpha-beta model's latency term.
    ``layout``: see :func:`figure` (the live panel passes ``"fixed"``).
    """
    from ..allreduce import SCHEME_NAMES, round_time_s

    n = np.unique(np.geomspace(2, max_workers, 60).astype(int))
    fig, ax = new_or_given(ax, layout=layout)
    for i, (scheme, name) in enumerate(SCHEME_NAMES.items()):
        style = series_style(i)
        t = [round_time_s(scheme, int(k), n_params, link_bps, latency_s=latency_s) for k in n]
        ax.loglog(n, t, label=name, ls=style["linestyle"], color=style["color"],
                  marker=style["marker"], markevery=8, ms=4)
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


@book_figure
def plot_round_time_vs_model_size(n_workers: int, link_bps: float, latency_s: float, *,
                                  mark_params: int | None = None, ax=None):
    """Alpha-beta time per round of each scheme against the model size, crossover marked."""
    from ..allreduce import SCHEME_NAMES, ring_beats_naive_above_params, round_time_s

    sizes = np.unique(np.geomspace(100, 1e8, 80).astype(int))
    fig, ax = new_or_given(ax)
    for i, (scheme, name) in enumerate(SCHEME_NAMES.items()):
        style = series_style(i)
        t = [round_time_s(scheme, n_workers, int(p), link_bps, latency_s=latency_s)
             for p in sizes]
        ax.loglog(sizes, t, label=name, ls=style["linestyle"], color=style["color"],
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


def _case_line(ax, i: int, rounds, acc, label: str) -> None:
    """Failure case ``i``'s accuracy line: its own style, markers every 4th round,
    staggered and alternately hollow, so that cases that coincide stay visible."""
    style = series_style(i)
    ax.plot(rounds, acc, label=label, lw=1.4, ls=style["linestyle"], marker=style["marker"],
            color=style["color"], ms=5, markevery=(i % 4, 4),
            mfc="none" if i % 2 else style["color"])


def _mark_crash(ax, crash_round: int) -> None:
    ax.axvline(crash_round - 0.5, color=COLORS["grey"], ls=":", lw=1)
    ax.annotate("crash", (crash_round - 0.5, 0.02), ha="right", fontsize=8,
                color=COLORS["grey"], rotation=90)


@book_figure
def plot_failures(runs: dict, *, crash_round: int, ax=None):
    """Test accuracy over rounds for each failure scenario.

    Each run has its own line style and marker (every 4th round, staggered),
    so runs that coincide stay visible.
    """
    fig, ax = new_or_given(ax, figsize=(6.4, 4.2))
    for i, (label, result) in enumerate(runs.items()):
        _case_line(ax, i, result.rounds, result.test_acc, label)
    _mark_crash(ax, crash_round)
    ax.set_xlabel("round")
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=7, loc="lower right")
    return fig


@book_figure
def plot_failure_run(result, *, crash_round: int | None, title: str, ax=None):
    """Exercise 3's failure panel: test accuracy per round, rounds without update shaded."""
    fig, ax = new_or_given(ax)
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


@book_figure
def plot_failures_over_seeds(runs: dict, *, crash_round: int, ax=None):
    """Exercise 3's failure runs over seeds: ``{case: [run per seed]}``; the median test
    accuracy per case (line) and the range over the seeds (band)."""
    fig, ax = new_or_given(ax, figsize=(6.4, 4.2))
    for i, (label, results) in enumerate(runs.items()):
        acc = np.array([r.test_acc for r in results])
        rounds = results[0].rounds
        ax.fill_between(rounds, acc.min(0), acc.max(0), color=series_style(i)["color"],
                        alpha=0.15, lw=0)
        _case_line(ax, i, rounds, np.median(acc, 0), label)
    _mark_crash(ax, crash_round)
    ax.set_xlabel("round")
    ax.set_ylabel(f"test accuracy (median, band: range over {len(acc)} seeds)")
    ax.legend(fontsize=7, loc="lower right")
    return fig
