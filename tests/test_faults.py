import numpy as np
import pytest

from dmlbook.faults import (STREAM_DOWN, STREAM_LOSS, STREAM_NAIVE, STREAM_RING, STREAM_STRAGGLERS,
                            STREAM_UP, Faults, lost)


def test_crash_from_round():
    f = Faults(crash_at={2: 5})
    assert f.alive(4, 4).all()
    assert list(f.alive(5, 4)) == [True, True, False, True]
    # Messages to a crashed node are lost.
    assert list(f.delivered(6, np.array([0, 2, 3]), 4)) == [True, False, True]


def test_loss_rate_and_reproducibility():
    f = Faults(drop_prob=0.3, seed=1)
    receivers = np.zeros(20_000, int)
    ok = f.delivered(1, receivers, 2)
    assert abs(1 - ok.mean() - 0.3) < 0.02
    assert np.array_equal(ok, Faults(drop_prob=0.3, seed=1).delivered(1, receivers, 2))
    assert not np.array_equal(ok, f.delivered(2, receivers, 2))


def test_stragglers_skip_but_stay_alive():
    f = Faults(straggler_prob=0.5, seed=0)
    active = np.array([f.active(r, 1000) for r in range(1, 4)])
    assert 0.4 < 1 - active.mean() < 0.6
    assert f.alive(3, 1000).all()


def test_no_faults():
    assert Faults().none and not Faults(drop_prob=0.1).none


@pytest.mark.parametrize("kw, param", [
    ({"drop_prob": 1.5}, "drop_prob"), ({"drop_prob": float("nan")}, "drop_prob"),
    ({"straggler_prob": -0.1}, "straggler_prob"), ({"seed": -1}, "seed"),
    ({"crash_at": [1, 2]}, "crash_at"), ({"crash_at": {0: -1}}, "crash_at round"),
])
def test_bad_input(kw, param):
    with pytest.raises(ValueError, match=param):
        Faults(**kw)


def test_crashes_of_nodes_the_run_does_not_have_are_errors_not_no_ops():
    from dmlbook.faults import Faults

    f = Faults(crash_at={9: 1})
    with pytest.raises(ValueError, match=r"crash_at node must be a node id in 0 \.\. 7, got 9"):
        f.alive(1, 8)
    assert list(f.alive(1, 10)) == [True] * 9 + [False]
    assert f.check_nodes(10) is f


def test_upward_and_downward_losses_are_independent_streams():
    faults = Faults(drop_prob=0.5, seed=0)
    alive = np.ones(65, bool)
    up = faults.arrives(1, np.full(64, 64), alive, STREAM_UP)
    down = faults.arrives(1, np.arange(64), alive, STREAM_DOWN)
    assert not np.array_equal(up, down)
    # Reproducible: the same draw for the same (seed, round, stream).
    assert np.array_equal(up, faults.arrives(1, np.full(64, 64), alive, STREAM_UP))


def test_every_named_stream_is_its_own():
    streams = [STREAM_STRAGGLERS, STREAM_LOSS, STREAM_UP, STREAM_DOWN, STREAM_NAIVE,
               STREAM_RING]
    assert len(set(streams)) == len(streams)
    # The ring's per-step streams (STREAM_RING + step) never reach another name.
    assert max(streams[:-1]) < STREAM_RING


def test_arrives_keeps_dead_receivers_out_and_draws_nothing_without_loss():
    alive = np.array([True, False, True])
    assert Faults().arrives(3, [0, 1, 2], alive, STREAM_NAIVE).tolist() == [True, False, True]
    assert Faults(drop_prob=1.0).arrives(3, [0, 2], alive, STREAM_NAIVE).tolist() == [False,
                                                                                        False]


def test_lost_draws_once_from_the_runs_stream():
    a, b = np.random.default_rng(7), np.random.default_rng(7)
    draws = [lost(a, 0.3) for _ in range(50)]
    assert draws == [bool(x < 0.3) for x in b.random(50)]
