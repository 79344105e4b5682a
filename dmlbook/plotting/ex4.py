"""Exercise 4's figures: gradients or parameters, compressed or not."""

from __future__ import annotations

from .style import (COLORS, LINE_STYLES, MARKERS, book_figure, new_or_given, separate_labels,
                    series_style)

# Four runs at most, each with its own colour, line style and marker.
_EXCHANGE_COLORS = (COLORS["dl"], COLORS["upload"], COLORS["download"], COLORS["accent"])
# Updates as large hollow circles, so that a parameter square at the same point shows inside.
_COMPRESSION_MARKER = {"update": dict(ms=11, mfc="none", mew=1.8),
                       "parameters": dict(ms=6), "fair": dict(ms=7)}


@book_figure
def plot_entry_histograms(payloads: dict, *, near_zero: float = 1e-3, bins: int = 80,
                          ax=None):
    """Histograms of the entries of FL updates and of the parameters, side by side.

    ``ax``: two Axes to draw into (default: a new figure of two panels).
    """
    fig, axes = new_or_given(ax, ncols=2, figsize=(9, 3.4))
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


@book_figure
def plot_compression(rows: list[dict], *, ax=None):
    """Final accuracy against uploaded bytes, updates vs parameters per setting.

    Rows with a fair parameter baseline (``"quantize_per_tensor"``,
    ``"topk_keep"``) get their own marker and legend entry.
    """
    from ..federated import describe

    fig, ax = new_or_given(ax, figsize=(6.4, 5.0))
    kinds = {"update": ("o", COLORS["dl"], "clients send updates"),
             "parameters": ("s", COLORS["upload"], "clients send parameters (naive)"),
             "fair": ("^", COLORS["download"], "clients send parameters (fair baseline)")}
    used, labels = set(), []
    for row in rows:
        fair = row["send"] == "parameters" and row["method"] in ("quantize_per_tensor",
                                                                 "topk_keep")
        kind = "fair" if fair else row["send"]
        used.add(kind)
        marker, color, _ = kinds[kind]
        ax.plot(row["upload_bytes"] / 2**20, row["accuracy"], marker, color=color,
                **_COMPRESSION_MARKER[kind])
        if "acc_range" in row:  # the range over seeds, as a vertical bar
            ax.vlines(row["upload_bytes"] / 2**20, *row["acc_range"], color=color, lw=1.5)
        # Labels above the update markers, below the parameter markers, left of
        # the fair ones: they share their byte counts, so they would overlap.
        offset = {"update": (0, 6), "parameters": (4, -11), "fair": (-6, -3)}[kind]
        ha = {"update": "center", "parameters": "left", "fair": "right"}[kind]
        labels.append(ax.annotate(
            describe(row["method"], row["level"]).replace(" quantization", ""),
            (row["upload_bytes"] / 2**20, row["accuracy"]), fontsize=8,
            xytext=offset, textcoords="offset points", ha=ha))
    for kind, (marker, color, label) in kinds.items():
        if kind in used:
            ax.plot([], [], marker, color=color, label=label, **_COMPRESSION_MARKER[kind])
    ax.set_xscale("log")
    ax.margins(x=0.2)  # room for the labels of the rightmost markers
    ax.set_ylim(top=max(1.0, ax.get_ylim()[1]))  # room for the labels above the top row
    ax.set_xlabel("bytes uploaded by all clients (MiB)")
    ax.set_ylabel("final test accuracy")
    ax.legend(fontsize=8)
    separate_labels(fig, labels)
    return fig


@book_figure
def plot_exchange(results: dict, *, ax=None):
    """Consensus distance and mean test accuracy: exchanging gradients vs parameters.

    Up to four runs, each with its own colour, line style and marker. A value
    may be a list of runs, one per seed: the first is drawn with markers, the
    others as thin lines of the same style. ``ax``: two Axes to draw into
    (default: a new figure of two panels).
    """
    fig, (ax1, ax2) = new_or_given(ax, ncols=2, figsize=(9, 3.4))
    for i, (name, runs) in zip(range(len(_EXCHANGE_COLORS)), results.items()):
        runs = runs if isinstance(runs, (list, tuple)) else [runs]
        s = series_style(i, colors=_EXCHANGE_COLORS, linestyles=LINE_STYLES[:4],
                         markers=MARKERS[:4])
        for j, result in enumerate(runs):
            h = result.history.as_arrays()
            every = max(1, len(h["round"]) // 10)
            style = dict(color=s["color"], ls=s["linestyle"], marker=s["marker"], ms=4,
                         markevery=every, label=name if len(runs) == 1 else
                         f"{name} ({len(runs)} seeds)")
            if j:
                style = dict(color=s["color"], ls=s["linestyle"], lw=0.8, alpha=0.7)
            ax1.semilogy(h["round"], h["consensus"], **style)
            ax2.plot(h["round"], h["test_acc"].mean(1), **style)
    ax1.set_xlabel("round")
    ax1.set_ylabel("consensus distance")
    ax2.set_xlabel("round")
    ax2.set_ylabel("mean test accuracy of the nodes")
    ax1.legend(fontsize=8)
    return fig
