"""Gossip's contract, one test per behaviour that `make mutants` found unguarded.

The mutation run of gossip.py (benchmarks/README.md, "Mutation testing")
left these without a test.
"""

import re

import numpy as np
import pytest

from dmlbook import gossip
from dmlbook.gossip import PeerSampler


@pytest.mark.parametrize("sampling", ["uniform", "balanced"])
def test_peer_sampler_counts_each_nodes_messages(sampling):
    sampler = PeerSampler(6, sampling, np.random.default_rng(0), shared_seed=3)
    for i, times in enumerate([0, 1, 2, 5, 1, 3]):
        for _ in range(times):
            sampler.next(i)
    assert sampler.sent.tolist() == [0, 1, 2, 5, 1, 3]


def test_balanced_sampler_gives_every_node_one_kth_message():
    # The k-th message of every node goes to a different node: one each.
    n = 7
    sampler = PeerSampler(n, "balanced", np.random.default_rng(0), shared_seed=1)
    for _ in range(12):
        receivers = sorted(sampler.next(i) for i in range(n))
        assert receivers == list(range(n))


def test_peer_sampler_names_sampling():
    with pytest.raises(ValueError, match=r"^sampling must be one of 'uniform', 'balanced', "
                                         r"got 'round robin'$"):
        PeerSampler(4, "round robin", np.random.default_rng(0), shared_seed=0)


def test_event_queue_keeps_ties_in_scheduling_order_and_its_defaults():
    queue = gossip.EventQueue()
    for node in range(5):
        queue.push(2.0, "send", node)
    queue.push(1.0, "first", 9, payload="x", sender=4)
    first = queue.pop()
    assert (first.kind, first.node, first.payload, first.sender) == ("first", 9, "x", 4)
    events = [queue.pop() for _ in range(5)]
    assert [e.node for e in events] == [0, 1, 2, 3, 4]
    assert {(e.payload, e.sender) for e in events} == {(None, -1)}


def test_event_queue_accepts_time_zero_and_refuses_what_breaks_the_heap():
    queue = gossip.EventQueue()
    queue.push(0.0, "start", 0)
    assert queue.peek_time() == 0.0
    for time in (-1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match=rf"^time must be a finite number >= 0, got {time!r}$"):
            queue.push(time, "send", 0)
    assert len(queue) == 1


@pytest.mark.parametrize("kwargs, message", [
    (dict(delta=0), "delta must be a finite number > 0 and <= 1e+06, got 0"),
    (dict(delta=1e6 + 1), "delta must be a finite number > 0 and <= 1e+06, got 1000001.0"),
    (dict(jitter=1.5), "jitter must be a probability in [0, 1], got 1.5"),
    # The longest delay is the run's length, cycles x delta (4 x 2 s).
    (dict(cycles=4, delta=2.0, delay=8.5), "delay must be a finite number >= 0 and <= 8, got 8.5"),
    (dict(drop_prob=-0.1), "drop_prob must be a probability in [0, 1], got -0.1"),
    (dict(sampling="every"), "sampling must be one of 'uniform', 'balanced', got 'every'"),
])
def test_gossip_average_names_each_shared_argument(kwargs, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        gossip.gossip_average([1.0, 2.0, 3.0], **kwargs)


def test_gossip_learning_names_n_nodes():
    with pytest.raises(ValueError, match=r"^n_nodes must be a whole number >= 2 and <= 4,096, "
                                         r"got 1$"):
        gossip.gossip_learning(n_nodes=1)


def test_gossip_average_accepts_a_delay_of_its_whole_run():
    # The delay may be as long as the run: cycles x delta.
    gossip.gossip_average([1.0, 2.0, 3.0], cycles=4, delta=2.0, delay=8.0)


def test_averaging_runs_cycles_times_delta_seconds():
    """4 nodes, no jitter, delta 2 s, 3 cycles: 6 s, 3 wakes a node, a push and a reply each."""
    run = gossip.gossip_average([1.0, 2.0, 3.0, 4.0], cycles=3, delta=2.0, jitter=0.0)
    assert run.ledger.totals().sent == 3 * 4 * 2
    assert gossip.received_per_cycle(run.ledger, 4, 0).shape == (0, 4)  # zero cycles: allowed


def test_handlers_are_for_push_pull_only():
    with pytest.raises(ValueError, match=r"^handlers must be None, or \(on_push, on_reply\) "
                                         r"with protocol='push-pull'$"):
        gossip.gossip_average([1.0, 2.0], protocol="push", handlers=(min, max))


def test_averaging_reports_every_cycle_from_zero():
    run = gossip.gossip_average([1.0, 2.0, 3.0], cycles=4)
    assert run.cycle.tolist() == [0, 1, 2, 3, 4] and len(run.mean) == len(run.variance) == 5


def test_push_pull_takes_a_pair_of_handlers():
    def on_push(x_j, x_i):
        d = (x_i - x_j) / 2
        return x_j + d, d

    given = gossip.gossip_average([1.0, 5.0, 9.0], cycles=3, handlers=(on_push, lambda x, d: x - d))
    assert given.total == pytest.approx([15.0] * 4)
    assert given.variance[-1] < given.variance[0]


def test_gossip_learning_refuses_too_many_evaluations_word_for_word():
    with pytest.raises(ValueError, match=r"^eval_every must keep until / eval_every <= 100,000, "
                                         r"got 0\.0001$"):
        gossip.gossip_learning(n_nodes=4, until=30, eval_every=1e-4, progress=False)


def test_variance_factor_refuses_what_is_not_an_averaging_run():
    with pytest.raises(ValueError, match=r"^result must be an AveragingResult of gossip_average, "
                                         r"got \[1, 2\]$"):
        gossip.variance_factor_per_cycle([1, 2])


def test_centralized_baseline_trains_the_mlp_by_default():
    run = gossip.gossip_learning(n_nodes=3, until=2, eval_every=2, progress=False)
    baseline = gossip.centralized_baseline(run)
    again = gossip.centralized_baseline(run, model="mlp", lr=0.1, batch_size=8, seed=0)
    assert baseline.steps[-1] == again.steps[-1] == int(run.steps.sum())
    assert baseline.test_loss == again.test_loss


class _Started(Exception):
    """Raised by the first call after a run's checks: the run was accepted."""


def _stop(*args, **kwargs):
    raise _Started


def test_gossip_average_accepts_exactly_max_gossip_events(monkeypatch):
    monkeypatch.setattr(gossip, "PeerSampler", _stop)
    with pytest.raises(_Started):  # 2,000 nodes x 1,000 cycles = MAX_GOSSIP_EVENTS
        gossip.gossip_average(list(range(2000)), cycles=1000)
    with pytest.raises(ValueError, match=r"^cycles must keep nodes x cycles <= 2,000,000 "):
        gossip.gossip_average(list(range(2000)), cycles=1001)


def test_gossip_learning_until_is_bounded_by_max_rounds_periods(monkeypatch):
    monkeypatch.setattr(gossip, "prepare", _stop)
    kw = dict(n_nodes=2, delta=2.0, progress=False)
    with pytest.raises(_Started):  # 75,000 periods of 2 s
        gossip.gossip_learning(until=150_000, eval_every=150_000, **kw)
    with pytest.raises(ValueError, match=r"^until must be a finite number > 0 and <= 200000"):
        gossip.gossip_learning(until=200_001, eval_every=200_001, **kw)


def test_gossip_learning_names_sgd_time():
    with pytest.raises(ValueError, match=r"^sgd_time must be a finite number >= 0"):
        gossip.gossip_learning(sgd_time=-1.0, progress=False)


def test_gossip_average_refuses_values_word_for_word_and_takes_max_nodes(monkeypatch):
    with pytest.raises(ValueError, match=r"^values must be a list of 2 to 4096 finite "
                                         r"numbers, one per node, got shape \(2, 2\)$"):
        gossip.gossip_average([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(ValueError, match="^" + re.escape(
            f"values must be at most {gossip.MAX_GOSSIP_VALUE:g} in magnitude (their variance "
            f"must stay a finite float), got 1e+300") + "$"):
        gossip.gossip_average([1.0, 1e300])
    monkeypatch.setattr(gossip, "PeerSampler", _stop)
    with pytest.raises(_Started):
        gossip.gossip_average(list(range(gossip.MAX_NODES)), cycles=1)


def test_variance_factor_per_cycle_measures_ten_cycles_by_default():
    run = gossip.gossip_average(list(range(16)), cycles=12, seed=3)
    assert gossip.variance_factor_per_cycle(run) == gossip.variance_factor_per_cycle(run, 10)
    assert gossip.variance_factor_per_cycle(run) != gossip.variance_factor_per_cycle(run, 11)


def test_gossip_learning_counts_the_classes_of_every_node():
    run = gossip.gossip_learning(n_nodes=6, until=2.0, split="shards", progress=False)
    bounds = np.concatenate([[0], np.cumsum(run.examples_per_node)])
    assert len(run.classes_per_node) == 6
    from dmlbook.engine import prepare

    node_data = prepare("mlp", 6, split="shards", seed=0).node_data
    labels = node_data.y.numpy()
    expected = [len(np.unique(labels[a:b])) for a, b in zip(bounds[:-1], bounds[1:])]
    assert run.classes_per_node.tolist() == expected


def test_gossip_learning_refuses_batch_steps_word_for_word():
    with pytest.raises(ValueError, match=r"^batch_steps must be True or False, got 'yes'$"):
        gossip.gossip_learning(batch_steps="yes", progress=False)


def test_gossip_average_and_its_factor_refuse_cycles_word_for_word():
    with pytest.raises(ValueError, match=r"^cycles must be a whole number >= 1 and <= 100,000, "
                                         r"got 0$"):
        gossip.gossip_average([1.0, 2.0], cycles=0)
    run = gossip.gossip_average([1.0, 2.0, 4.0], cycles=3)
    with pytest.raises(ValueError, match=r"^cycles must be below the 4 cycles recorded, got 4$"):
        gossip.variance_factor_per_cycle(run, 4)
    agreed = gossip.gossip_average([2.0, 2.0, 2.0], cycles=3)
    with pytest.raises(ValueError, match=r"^result's values agree from the start \(variance 0\)"):
        gossip.variance_factor_per_cycle(agreed, 2)


def test_a_gossip_learning_result_starts_at_zero_seconds():
    assert gossip.GossipLearningResult().wall_seconds == 0.0


def test_gossip_learning_batches_its_steps_by_default(monkeypatch):
    # Steps that cannot influence each other (within the delay) go through one
    # forward pass by default; batch_steps=False takes one pass a step.
    kw = dict(n_nodes=16, model="logreg", until=4, lr=0.3, delay=0.3, progress=False)
    passes = []
    forward = gossip.Nodes.forward

    def counted(self, params, X):
        passes.append(len(params))
        return forward(self, params, X)

    monkeypatch.setattr(gossip.Nodes, "forward", counted)
    run = gossip.gossip_learning(**kw)
    assert sum(passes) == run.steps.sum() > len(passes)  # several steps a pass
    passes.clear()
    run = gossip.gossip_learning(batch_steps=False, **kw)
    assert len(passes) == sum(passes) == run.steps.sum()


def test_a_message_is_recorded_in_the_cycle_it_arrives():
    # With a delay of one whole cycle nothing arrives in cycle 0.
    late = gossip.gossip_average(list(range(8)), cycles=4, delay=1.0, seed=0)
    assert late.ledger.columns()["round"].min() == 1
    now = gossip.gossip_average(list(range(8)), cycles=4, delay=0.0, seed=0)
    assert now.ledger.columns()["round"].min() == 0


def test_gossip_average_of_seed_0_is_pinned():
    # A seeded run gives the same peers and numbers in every build. The peers come
    # from the run's one stream after the wake-up times: a sampler of its own seeded
    # like the run's stream repeats its draws (receivers [3, 7, 7, 4, 7, 5, 4, 1]).
    run = gossip.gossip_average(list(range(8)), cycles=2, seed=0)
    assert run.ledger.columns()["receiver"][:8].tolist() == [0, 7, 6, 4, 0, 5, 0, 1]
    assert run.variance[-1] == pytest.approx(0.03984, abs=5e-6)


def test_the_variance_is_the_population_variance():
    assert gossip.gossip_average([0.0, 2.0], cycles=1).variance[0] == 1.0
    assert gossip.gossip_average([1.0, 2.0, 6.0], cycles=1).variance[0] == pytest.approx(14 / 3)


def test_gossip_learning_draws_a_loss_for_every_message_it_sends(monkeypatch):
    # Including one that would arrive after `until`: the draws after it are those
    # of a longer run.
    calls = []
    lost = gossip.lost

    def counted(rng, p):
        calls.append(p)
        return lost(rng, p)

    monkeypatch.setattr(gossip, "lost", counted)
    run = gossip.gossip_learning(n_nodes=8, until=3.0, delay=0.5, drop_prob=0.5, eval_every=1.0,
                                 seed=0, model="logreg", progress=False)
    assert len(calls) == run.steps.sum() > len(run.ledger.columns()["round"][
        run.ledger.columns()["delivered"]])


def test_gossip_learnings_wall_seconds_include_preparing_the_run(slow_down):
    slow_down(gossip, "prepare", 0.5)
    run = gossip.gossip_learning(n_nodes=4, until=1.0, eval_every=1.0, model="logreg",
                                 progress=False)
    assert run.wall_seconds >= 0.5


def test_a_nodes_first_step_ends_sgd_time_after_it_wakes():
    # Woken within the first delta (1 s), each node's first step takes sgd_time = 2 s:
    # none ends before until = 2 s, so nothing is sent.
    run = gossip.gossip_learning(n_nodes=4, until=2.0, sgd_time=2.0, eval_every=1.0, seed=0,
                                 model="logreg", progress=False)
    assert run.steps.sum() == 0 and len(run.ledger.columns()["round"]) == 0
    sooner = gossip.gossip_learning(n_nodes=4, until=2.0, sgd_time=0.5, eval_every=1.0, seed=0,
                                    model="logreg", progress=False)
    assert sooner.steps.sum() >= 4


def test_an_unfinished_result_has_no_steps_and_no_baseline():
    assert gossip.GossipLearningResult().steps is None
    with pytest.raises(ValueError, match=r"^result must be a finished GossipLearningResult$"):
        gossip.centralized_baseline(gossip.GossipLearningResult())


def test_gossip_learnings_progress_bar_counts_its_evaluations(monkeypatch):
    totals = []
    progress_bar = gossip.progress_bar

    def spy(total, enabled, desc):
        totals.append(total)
        return progress_bar(total, False, desc)

    monkeypatch.setattr(gossip, "progress_bar", spy)
    gossip.gossip_learning(n_nodes=4, until=4.0, eval_every=0.5, model="logreg", progress=False)
    assert totals == [8]


def test_balanced_peers_are_the_node_plus_the_rounds_shared_shift():
    # Round k of the balanced sampler: node i sends to (i + s_k) mod n, with s_k in
    # 1 .. n-1 drawn from numpy.random.default_rng([seed, 99]), the same for all.
    n, seed = 7, 4
    sampler = PeerSampler(n, "balanced", np.random.default_rng(0), seed)
    shifts = np.random.default_rng([seed, 99])
    for _ in range(3):
        s = int(shifts.integers(1, n))
        assert [sampler.next(i) for i in range(n)] == [(i + s) % n for i in range(n)]


def test_a_delay_as_long_as_the_run_is_accepted():
    run = gossip.gossip_learning(n_nodes=4, until=2.0, delay=2.0, eval_every=1.0, model="logreg",
                                 progress=False)
    assert run.steps.sum() > 0 and not run.ledger.columns()["delivered"].any()
    with pytest.raises(ValueError, match=r"^delay must be at most until \(2\.0 s\), got 2\.5$"):
        gossip.gossip_learning(n_nodes=4, until=2.0, delay=2.5, progress=False)


def test_the_centralized_baseline_is_evaluated_twenty_times_and_at_the_start():
    run = gossip.gossip_learning(n_nodes=8, until=5.0, eval_every=5.0, model="logreg",
                                 progress=False)
    steps = int(run.steps.sum())
    assert steps >= 40
    base = gossip.centralized_baseline(run, model="logreg")
    every = steps // 20
    expected = list(range(0, steps + 1, every))
    assert base.steps == expected + ([steps] if expected[-1] != steps else [])


@pytest.mark.parametrize("call, message", [
    (lambda: gossip.gossip_average(["a", "b"]),
     "values must be a list of finite numbers, one per node"),
    (lambda: gossip.gossip_average(list(range(4096)), cycles=489),
     "cycles must keep nodes x cycles <= 2,000,000 (MAX_GOSSIP_EVENTS), got 2,002,944"),
    (lambda: gossip.gossip_learning(n_nodes=1000, until=100.0, eval_every=1.0, progress=False),
     "eval_every must keep n_nodes x evaluations (until / eval_every + 1) <= 100,000 "
     "(MAX_GOSSIP_NODE_EVALS), got 101,000 (eval_every=1.0)"),
    (lambda: gossip.gossip_learning(n_nodes=4, until=2.0, merge=3, progress=False),
     "merge must be None or a function, got int"),
    (lambda: gossip.EventQueue().push(float("nan"), "wake", 0),
     "time must be a finite number >= 0, got nan"),
    (lambda: gossip.gossip_average([1.0]),
     "values must be a list of 2 to 4096 finite numbers, one per node, got shape (1,)"),
    (lambda: gossip.gossip_average([1e300, 0.0]),
     "values must be at most 1e+150 in magnitude (their variance must stay a finite float), "
     "got 1e+300"),
    (lambda: gossip.gossip_average([1.0, 2.0], protocol="push", handlers=(min, max)),
     "handlers must be None, or (on_push, on_reply) with protocol='push-pull'"),
    (lambda: gossip.variance_factor_per_cycle(3),
     "result must be an AveragingResult of gossip_average, got 3"),
    (lambda: gossip.variance_factor_per_cycle(gossip.gossip_average([1.0, 1.0], cycles=2)),
     "result's values agree from the start (variance 0): there is no variance to shrink, "
     "so no factor per cycle"),
    (lambda: gossip.variance_factor_per_cycle(gossip.gossip_average([0.0, 1.0], cycles=2),
                                              cycles=3),
     "cycles must be below the 3 cycles recorded, got 3"),
    (lambda: gossip.gossip_learning(n_nodes=1000, until=251.0, progress=False),
     "until must keep n_nodes x until / delta <= 250,000 (MAX_GOSSIP_STEPS), got 251,000"),
    (lambda: gossip.gossip_learning(n_nodes=4, until=10.0, eval_every=1e-5, progress=False),
     "eval_every must keep until / eval_every <= 100,000, got 1e-05"),
    (lambda: gossip.received_per_cycle([], 4, 2),
     "ledger must be a dmlbook.ledger.Ledger, got list"),
    (lambda: gossip.centralized_baseline(gossip.GossipLearningResult(steps=np.zeros(4, int))),
     "result's nodes must have taken 1 to 100,000 SGD steps together (the baseline takes as "
     "many), got 0"),
])
def test_gossip_refusals_word_for_word(call, message):
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        call()


def test_the_centralized_baseline_trains_with_the_seed_it_is_given():
    from dmlbook.centralized import train_centralized

    run = gossip.gossip_learning(n_nodes=8, until=5.0, eval_every=5.0, model="logreg",
                                 progress=False)
    steps = int(run.steps.sum())
    direct = train_centralized(model="logreg", steps=steps, lr=0.1, batch_size=8,
                               eval_every=max(1, steps // 20), seed=1)
    assert gossip.centralized_baseline(run, model="logreg", seed=1).test_loss == direct.test_loss
    assert gossip.centralized_baseline(run, model="logreg").test_loss != direct.test_loss


def test_gossip_average_scales_with_its_cycle_length():
    # Periods are delta x (1 + jitter x U(-1, 1)): doubling delta (no delay) only
    # doubles every time, so cycle k's snapshot (at k x delta) is the same.
    values = list(range(16))
    one = gossip.gossip_average(values, cycles=6, delta=1.0, seed=3)
    two = gossip.gossip_average(values, cycles=6, delta=2.0, seed=3)
    assert len(two.variance) == 7
    assert np.array_equal(one.variance, two.variance)
    assert one.variance[-1] < one.variance[0] / 10


def test_mean_steps_is_the_mean_over_the_nodes():
    run = gossip.gossip_learning(n_nodes=8, until=2.0, eval_every=0.5, seed=0, model="logreg",
                                 progress=False)
    assert run.mean_steps[1] == 0.875  # 7 of 8 nodes had stepped once by 0.5 s
    assert run.mean_steps[-1] == run.steps.mean()


def test_received_per_cycle_counts_by_receiver():
    from dmlbook.ledger import Ledger

    ledger = Ledger(3)
    ledger.record(np.array([0, 0, 1]), np.array([0, 0, 2]), np.array([1, 2, 1]), 8,
                  np.array([True, True, True]))
    assert gossip.received_per_cycle(ledger, 3, 2).tolist() == [[0, 1, 1], [0, 1, 0]]
