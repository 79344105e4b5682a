"""Exercise 1's figures: how many FL participants a home connection serves."""

from __future__ import annotations

import numpy as np

from .. import bandwidth
from ..units import MBIT
from .style import COLORS, book_figure, new_or_given, plain_log_ticks


@book_figure
def plot_nmax_vs_upload(n_params: int, *, bits_per_param: int = 32,
                        download_bps: float, time_limit_s: float,
                        mark_upload_bps: float | None = None, ax=None):
    """n_max against the server's upload speed (log-log), the download limit dashed."""
    uploads = np.logspace(0, 4, 200) * MBIT  # 1 Mbit/s .. 10 Gbit/s
    limits = [bandwidth.max_participants(n_params, bits_per_param=bits_per_param,
                                         download_bps=download_bps, upload_bps=u,
                                         time_limit_s=time_limit_s) for u in uploads]
    fig, ax = new_or_given(ax)
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


@book_figure
def plot_nmax_panel(*, n_params: int, bits_per_param: int, download_bps: float,
                    upload_bps: float, time_limit_s: float, ax=None):
    """Exercise 1's panel: n_max against the upload speed, the chosen plan marked.

    Speeds in bits per second, the limit in seconds.
    """
    uploads = np.logspace(0, 4, 120) * MBIT  # 1 Mbit/s .. 10 Gbit/s
    bits = bandwidth.model_bits(n_params, bits_per_param)
    n_up = np.floor(time_limit_s * uploads / bits)
    n_down = np.floor(time_limit_s * download_bps / bits)
    fig, ax = new_or_given(ax, layout="fixed")  # a live panel: redrawn on every change
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
