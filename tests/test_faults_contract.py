"""The fault model's contract, one test per behaviour that `make mutants` found unguarded.

The mutation run of faults.py (benchmarks/README.md, "Mutation testing")
left these behaviours without a test: the error that names each parameter,
the inclusive bounds of ``crash_at``, receivers that are not node ids, a
crashed receiver staying silent when messages can also be lost, every node
straggling at probability 1, and ``check_faults``.
"""

import numpy as np
import pytest

from dmlbook.faults import Faults, check_faults
from dmlbook.units import MAX_ROUNDS


@pytest.mark.parametrize("kw, message", [
    (dict(drop_prob=2.0), r"^drop_prob "),
    (dict(straggler_prob=-0.5), r"^straggler_prob "),
    (dict(crash_at=[1]), r"^crash_at must be a dict \{node: round\}, got \[1\]$"),
    (dict(crash_at={-1: 0}), r"^crash_at node "),
    (dict(crash_at={0: -1}), r"^crash_at round "),
    (dict(crash_at={0: MAX_ROUNDS + 2}), r"^crash_at round "),
])
def test_each_bad_fault_names_its_parameter(kw, message):
    with pytest.raises(ValueError, match=message):
        Faults(**kw)


def test_crash_rounds_are_inclusive_from_zero_to_never():
    # Round 0 crashes a node before it does anything; MAX_ROUNDS + 1 means never.
    assert Faults(crash_at={0: 0}).alive(0, 2).tolist() == [False, True]
    never = Faults(crash_at={1: MAX_ROUNDS + 1})
    assert never.alive(MAX_ROUNDS, 2).tolist() == [True, True]


def test_crashed_node_ids_must_exist():
    faults = Faults(crash_at={3: 1})
    assert faults.check_nodes(4) is faults
    with pytest.raises(ValueError, match=r"^crash_at node must be a node id in 0 \.\. 2, got 3$"):
        faults.check_nodes(3)


@pytest.mark.parametrize("receivers", [[4], [-1], [0.0, 1.0], [[0, 1]]])
def test_receivers_must_be_node_ids(receivers):
    with pytest.raises(ValueError, match=r"^receivers must be node ids in 0 \.\. 3, got"):
        Faults().delivered(1, np.array(receivers), 4)


def test_a_crashed_receiver_gets_nothing_even_where_messages_can_be_lost():
    faults = Faults(crash_at={1: 0}, drop_prob=1e-12)
    assert faults.delivered(1, np.array([0, 1]), 2).tolist() == [True, False]
    alive = faults.alive(1, 2)
    assert faults.arrives(1, [0, 1], alive, stream=11).tolist() == [True, False]


def test_every_node_straggles_at_probability_one():
    assert not Faults(straggler_prob=1.0).active(3, 50).any()
    assert Faults(straggler_prob=0.0).active(3, 50).all()


def test_check_faults():
    none = check_faults(None, 4)
    assert isinstance(none, Faults) and none.none
    faults = Faults(drop_prob=0.5)
    assert check_faults(faults, 4) is faults
    with pytest.raises(ValueError, match=r"^faults must be a dmlbook\.faults\.Faults or None, "
                                         r"got str$"):
        check_faults("none", 4)
    with pytest.raises(ValueError, match=r"^crash_at node must be a node id in 0 \.\. 1"):
        check_faults(Faults(crash_at={2: 1}), 2)


def test_none_means_no_fault_of_any_kind():
    # Faults.none lets the simulators take their fault-free paths: a straggler
    # alone must keep them off those (it sends nothing in its round).
    assert Faults().none
    assert not Faults(straggler_prob=0.5).none
    assert not Faults(drop_prob=0.5).none
    assert not Faults(crash_at={0: 1}).none


def test_lost_draws_once_even_when_nothing_is_lost():
    # One draw a message whatever drop_prob is, so that the draws after it (a
    # gossip run's peers and wake-ups share the stream) do not depend on it.
    from dmlbook.faults import lost

    rng, reference = np.random.default_rng(0), np.random.default_rng(0)
    assert lost(rng, 0.0) is False
    reference.random()
    assert rng.random() == reference.random()


def test_check_nodes_names_the_smallest_missing_node():
    with pytest.raises(ValueError, match=r"^crash_at node must be a node id in 0 \.\. 3, got 5$"):
        Faults(crash_at={7: 1, 5: 1}).check_nodes(4)


def test_a_node_steps_until_its_crash_round_and_gets_nothing_from_it_on():
    faults = Faults(crash_at={0: 2, 1: 2})
    assert faults.active(1, 3)[0] and not faults.active(2, 3)[0]
    assert faults.delivered(1, np.array([1]), 3).tolist() == [True]
    assert faults.delivered(2, np.array([1]), 3).tolist() == [False]


def test_a_rounds_losses_come_from_its_own_documented_stream():
    # Stream k of round r: numpy.random.default_rng([seed, r, k]).
    from dmlbook.faults import STREAM_LOSS

    faults = Faults(drop_prob=0.5, seed=4)
    draws = np.random.default_rng([4, 3, STREAM_LOSS]).random(8)
    assert faults.delivered(3, np.arange(8), 8).tolist() == (draws >= 0.5).tolist()


def test_the_largest_node_id_may_crash():
    # MAX_NODES is the parameter server's id in the largest "ps" run.
    from dmlbook.units import MAX_NODES

    assert Faults(crash_at={MAX_NODES: 1}).crash_at == {MAX_NODES: 1}


def test_a_lone_message_can_be_lost():
    from dmlbook.faults import STREAM_UP

    alive = np.ones(2, bool)
    assert Faults(drop_prob=1.0).arrives(1, [0], alive, STREAM_UP).tolist() == [False]
    assert Faults(drop_prob=1.0).arrives(1, [0, 1], alive, STREAM_UP).tolist() == [False, False]
