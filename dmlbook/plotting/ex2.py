"""Exercise 2's figure: FL's cumulative cloud bill."""

from __future__ import annotations

import numpy as np

from .. import costs
from ..units import check_int
from .style import COLORS, book_figure, new_or_given

#: Points a curve of :func:`plot_cumulative_cost` holds at most (a run of
#: MAX_CURVE_ROUNDS rounds held 10 million a curve: 1.9 GiB; issue #27).
MAX_CURVE_POINTS = 10_000


@book_figure
def plot_cumulative_cost(n_params: int, *, rounds: int, clients_per_round: int,
                         usd_per_gib: float, bytes_per_param: float = 4,
                         upload_usd_per_gib: float = 0.0, variants: bool = True,
                         layout: str = "constrained", ax=None):
    """Dollars billed after each round: the sheet's case and its variants.

    ``rounds`` is at most :data:`~dmlbook.costs.MAX_CURVE_ROUNDS`; beyond
    :data:`MAX_CURVE_POINTS` rounds the (straight) lines are drawn through
    that many evenly spaced rounds.

    ``layout``: see :func:`figure` (the live panel passes ``"fixed"``).
    """
    rounds = check_int("rounds", rounds, maximum=costs.MAX_CURVE_ROUNDS)
    fig, ax = new_or_given(ax, layout=layout)
    # The bills grow by the same amount every round: straight lines, drawn
    # through every round up to MAX_CURVE_POINTS rounds and through that many
    # evenly spaced ones (the first and the last included) beyond.
    x = np.arange(1, rounds + 1) if rounds <= MAX_CURVE_POINTS else np.unique(
        np.linspace(1, rounds, MAX_CURVE_POINTS).round().astype(np.int64))
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
        # fl_cumulative_cost is (bill of one round) x round: the same numbers at x.
        y = costs.fl_cumulative_cost(n_params, **{**base, "rounds": 1}, **kw)[0] * x
        ax.plot(x, y, color=color, ls=ls, label=f"{label}: ${y[-1]:,.2f}")
    ax.plot(x, np.zeros_like(x, dtype=float), color=COLORS["dl"],
            label="DL over flat-rate links: $0.00")
    ax.set_xlabel("round")
    ax.set_ylabel("cumulative cloud bill (US$)")
    ax.legend(loc="upper left")  # above the rising bills; no "best" search
    return fig
