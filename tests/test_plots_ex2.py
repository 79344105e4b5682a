"""Exercise 2's figure at the bound of its rounds (issue #27 part 3)."""

from __future__ import annotations

import tracemalloc

import matplotlib.pyplot as plt
import numpy as np
import pytest

from dmlbook import costs
from dmlbook.plotting import ex2, plot_cumulative_cost

CASE = dict(n_params=4_950_544, clients_per_round=200, usd_per_gib=0.03)


def _lines(fig):
    return [(line.get_label(), line.get_xdata(), line.get_ydata()) for line in fig.axes[0].lines]


def test_every_round_is_drawn_up_to_the_points_bound():
    fig = plot_cumulative_cost(rounds=1000, **CASE)
    curve = costs.fl_cumulative_cost(rounds=1000, **CASE)
    label, x, y = _lines(fig)[0]
    assert list(x) == list(range(1, 1001))
    assert np.array_equal(y, curve)  # the same numbers, not close ones
    assert label.endswith(f"${curve[-1]:,.2f}")
    plt.close(fig)


def test_the_largest_curve_is_drawn_through_evenly_spaced_rounds_within_little_memory():
    # At MAX_CURVE_ROUNDS the figure held 10 million points a curve: 1.9 GiB.
    rounds = costs.MAX_CURVE_ROUNDS
    tracemalloc.start()
    try:
        fig = plot_cumulative_cost(rounds=rounds, **CASE)
        fig.canvas.draw()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20, f"{peak:,} B"
    full = costs.fl_cumulative_cost(rounds=rounds, **CASE)  # 80 MB: the reference
    for label, x, y in _lines(fig):
        assert len(x) <= ex2.MAX_CURVE_POINTS and x[0] == 1 and x[-1] == rounds
        assert np.all(np.diff(x) > 0)
        if label.startswith("FL, downloads billed"):
            assert np.array_equal(y, full[x - 1])
            assert label.endswith(f"${full[-1]:,.2f}")
    plt.close(fig)
    with pytest.raises(ValueError, match=r"^rounds must be a whole number >= 1 and "
                                         r"<= 10,000,000, got 10000001"):
        plot_cumulative_cost(rounds=rounds + 1, **CASE)
