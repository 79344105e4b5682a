"""Figures of exercises 4 and 5 that compare methods show the spread over seeds,
and ex5's centralized baseline is drawn as its trajectory, not as a constant."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from dmlbook.plotting import ex4, ex5


class FakeGossip:
    n_nodes = 4

    def __init__(self, shift=0.0):
        self.shift = shift

    def as_arrays(self):
        time = np.arange(6.0)
        acc = np.linspace(0.1, 0.8, 6)[:, None] + self.shift + np.zeros((6, 4))
        return {"time": time, "test_acc": acc, "mean_steps": time.copy()}


def test_baseline_is_placed_at_the_time_of_as_many_steps():
    base = SimpleNamespace(steps=[0, 4, 8, 20], test_acc=[0.1, 0.5, 0.6, 0.9])
    # 4 nodes take one step per second each: 4 steps in all per second.
    assert np.allclose(ex5.baseline_times(FakeGossip(), base), [0, 1, 2, 5])


def test_baseline_is_a_trajectory_and_other_seeds_are_drawn():
    base = SimpleNamespace(steps=[0, 4, 8, 20], test_acc=[0.1, 0.5, 0.6, 0.9])
    other = (FakeGossip(0.05), SimpleNamespace(steps=[0, 20], test_acc=[0.1, 0.7]))
    fig = ex5.plot_gossip_accuracy(FakeGossip(), baseline=base, others=[other])
    lines = fig.axes[0].get_lines()
    dashed = [ln for ln in lines if ln.get_color() == "black"]
    assert len(dashed) == 2  # seed 0's baseline and the other seed's, in black
    assert len(set(np.round(dashed[0].get_ydata(), 6))) > 1  # not a constant
    assert len(lines) == 4  # two medians, two baselines


def test_progress_draws_one_line_per_seed():
    fig = ex5.plot_progress({"a": [FakeGossip(), FakeGossip(0.1), FakeGossip(0.2)],
                             "b": FakeGossip()})
    assert len(fig.axes[0].get_lines()) == 4


def test_compression_shows_the_range_over_seeds():
    row = dict(method="quantize", level=8, send="update", upload_bytes=2**20,
               accuracy=0.9, acc_range=(0.85, 0.92))
    fig = ex4.plot_compression([row])
    segments = [c for c in fig.axes[0].collections if len(c.get_segments())]
    assert segments and np.allclose(segments[0].get_segments()[0][:, 1], [0.85, 0.92])
