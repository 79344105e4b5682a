"""Exercise 2's figure: FL's cumulative cloud bill."""

from __future__ import annotations

import numpy as np

from .. import costs
from .style import COLORS, book_figure, new_or_given


@book_figure
def plot_cumulative_cost(n_params: int, *, rounds: int, clients_per_round: int,
                         usd_per_gib: float, bytes_per_param: float = 4,
                         upload_usd_per_gib: float = 0.0, variants: bool = True,
                         layout: str = "constrained", ax=None):
    """Dollars billed after each round: the sheet's case and its variants.

    ``layout``: see :func:`figure` (the live panel passes ``"fixed"``).
    """
    fig, ax = new_or_given(ax, layout=layout)
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
