import math

import numpy as np
import pytest
import torch

from dmlbook import data, engine, gossip
from dmlbook.ledger import Ledger


VALUES = np.random.default_rng(1).normal(5.0, 2.0, size=64)


@pytest.mark.parametrize("kw", [{}, {"delay": 0.4}, {"jitter": 0.5, "sampling": "balanced"}])
def test_averaging_preserves_the_sum_and_converges(kw):
    res = gossip.gossip_average(VALUES, cycles=30, seed=0, **kw)
    assert res.total[0] == pytest.approx(VALUES.sum())
    assert res.total[-1] == pytest.approx(VALUES.sum(), abs=1e-9)
    assert np.allclose(res.values, VALUES.mean(), atol=1e-6)
    assert res.variance[-1] < 1e-10 * res.variance[0]
    # Without delay the variance falls every single cycle.
    if not kw:
        assert np.all(np.diff(res.variance[:15]) < 0)


def test_lost_messages_break_the_sum():
    res = gossip.gossip_average(VALUES, cycles=30, drop_prob=0.2, seed=0)
    assert abs(res.total[-1] - VALUES.sum()) > 1e-3
    assert res.ledger.totals().lost > 0


def test_one_exchange_without_delay_averages_the_pair():
    res = gossip.gossip_average([0.0, 4.0], cycles=1, jitter=0.0, seed=0)
    assert list(res.values) == [2.0, 2.0]
    # 2 pushes and 2 replies in the first cycle (each node woke once).
    assert res.ledger.totals().sent == 4


def test_event_queue_orders_by_time_then_insertion():
    q = gossip.EventQueue()
    q.push(2.0, "a", 0)
    q.push(1.0, "b", 1)
    q.push(1.0, "c", 2)
    assert [q.pop().kind for _ in range(3)] == ["b", "c", "a"]


def test_balanced_sampler_picks_each_node_once_per_round():
    s = gossip.PeerSampler(10, "balanced", np.random.default_rng(0), shared_seed=3)
    for _ in range(5):
        picks = [s.next(i) for i in range(10)]
        assert sorted(picks) == list(range(10)) and all(p != i for i, p in enumerate(picks))
    u = gossip.PeerSampler(10, "uniform", np.random.default_rng(0), shared_seed=3)
    assert all(u.next(3) != 3 for _ in range(200))


def test_load_prediction():
    p = gossip.uniform_load_prediction(128, 10)
    assert p[0] == pytest.approx((126 / 127) ** 127)
    assert 0.36 < p[0] < 0.37 and 0.07 < 1 - p[:3].sum() < 0.09
    assert p.sum() == pytest.approx(1.0, abs=1e-6)


def test_load_prediction_by_hand_and_at_the_edges():
    # 3 nodes: the 2 others pick this one with probability 1/2 each.
    assert gossip.uniform_load_prediction(3, 3) == pytest.approx([0.25, 0.5, 0.25, 0.0])
    # 2 nodes: the other one always picks this one.
    assert gossip.uniform_load_prediction(2, 4).tolist() == [0.0, 1.0, 0.0, 0.0, 0.0]
    big = gossip.uniform_load_prediction(10**6, 200)
    assert np.all(np.isfinite(big)) and big[0] == pytest.approx(math.exp(-1), rel=1e-5)
    assert big.sum() == pytest.approx(1.0, abs=1e-9)
    for kw, name in [({"n_nodes": 10**13, "max_k": 1}, "n_nodes"),
                     ({"n_nodes": 8, "max_k": 10**6}, "max_k"),
                     ({"n_nodes": 1, "max_k": 1}, "n_nodes")]:
        with pytest.raises(ValueError, match=name):
            gossip.uniform_load_prediction(**kw)
    # Capacity that covers a share of (node, cycle) pairs: 3 nodes, P(K <= 1) = 0.75.
    assert gossip.load_quantile(3, 0.75) == 1 and gossip.load_quantile(3, 0.76) == 2
    assert gossip.load_quantile(2, 0.5) == 1 and gossip.load_quantile(3, 0.0) == 0
    with pytest.raises(ValueError, match="share"):
        gossip.load_quantile(8, 1.5)

def test_load_histogram_matches_the_binomial_prediction():
    res = gossip.gossip_learning(n_nodes=128, model="logreg", until=40, delay=0.05,
                                 lr=0.1, seed=0, progress=False)
    load = gossip.received_per_cycle(res.ledger, 128, 39)
    share = np.bincount(load.ravel(), minlength=4)[:4] / load.size
    assert np.allclose(share, gossip.uniform_load_prediction(128, 3), atol=0.02)
    # Every node sent about one message per cycle.
    assert abs(res.ledger.totals().sent / (128 * 40) - 1) < 0.05


def test_balanced_sampling_evens_the_load():
    kw = dict(n_nodes=64, model="logreg", until=20, delay=0.05, lr=0.1, jitter=0.0,
              seed=0, progress=False)
    uniform = gossip.received_per_cycle(gossip.gossip_learning(**kw).ledger, 64, 19)
    balanced = gossip.received_per_cycle(
        gossip.gossip_learning(sampling="balanced", **kw).ledger, 64, 19)
    assert balanced.max() < uniform.max()
    assert (balanced == 0).mean() < 0.5 * (uniform == 0).mean()


def test_gossip_learning_beats_the_initial_model():
    d = data.synthetic_logistic(500, 10, noise=0.3, seed=0)
    res = gossip.gossip_learning(n_nodes=200, model="logreg", dataset=d, until=20,
                                 delay=0.1, lr=0.5, batch_size=2, progress=False)
    h = res.as_arrays()
    assert np.median(h["test_acc"][-1]) > np.median(h["test_acc"][0]) + 0.1
    assert np.median(h["test_loss"][-1]) < 0.8 * np.median(h["test_loss"][0])
    mlp = gossip.gossip_learning(n_nodes=64, until=20, delay=0.1, lr=0.5, progress=False)
    acc = mlp.as_arrays()["test_acc"]
    assert np.median(acc[-1]) > np.median(acc[0]) + 0.3
    assert mlp.steps.min() >= 18  # about one step per Δ = 1 s


def test_sgd_time_and_delta_slow_progress():
    kw = dict(n_nodes=32, until=10, delay=0.1, progress=False)
    fast = gossip.gossip_learning(delta=0.5, **kw).steps.sum()
    slow = gossip.gossip_learning(delta=1.0, sgd_time=1.0, **kw).steps.sum()
    assert fast > 3.5 * slow


@pytest.mark.parametrize("timing", [
    dict(delay=0.3),
    # A delay longer than a node's shortest period (0.3 x 0.8 s), and evaluations
    # between steps: a batch must end before a member's next step and at an evaluation.
    dict(delay=1.0, delta=0.3, jitter=0.2, sgd_time=0.01, eval_every=0.35),
])
def test_batched_steps_equal_sequential_ones(timing):
    """The batching of steps that cannot influence each other changes nothing but speed."""
    kw = dict(n_nodes=16, model="logreg", until=8, lr=0.3, progress=False, **timing)
    batched = gossip.gossip_learning(**kw)   # batches steps within 0.3 s
    one_by_one = gossip.gossip_learning(batch_steps=False, **kw)
    assert batched.steps.sum() > 100
    assert np.array_equal(batched.steps, one_by_one.steps)
    assert torch.allclose(batched.params, one_by_one.params, atol=1e-6, rtol=0)
    a, b = batched.ledger.columns(), one_by_one.ledger.columns()
    assert all(np.array_equal(a[f], b[f]) for f in Ledger.FIELDS)
    assert len(a["round"]) == batched.steps.sum()
    assert batched.times == one_by_one.times
    np.testing.assert_allclose(batched.test_loss, one_by_one.test_loss, rtol=0, atol=1e-6)
    assert batched.mean_steps == one_by_one.mean_steps


def test_push_pull_theory_and_measured_factor():
    assert gossip.push_pull_variance_factor() == pytest.approx(0.5 * math.exp(-0.5))
    res = gossip.gossip_average(VALUES, cycles=12, seed=0)
    factor = gossip.variance_factor_per_cycle(res, 10)
    assert factor == pytest.approx((res.variance[10] / res.variance[0]) ** 0.1)
    assert 0.2 < factor < 0.4  # near the theory's 0.303 for uniform peers
    with pytest.raises(ValueError, match="cycles"):
        gossip.variance_factor_per_cycle(res, 13)


def test_one_push_only_exchange_by_hand():
    """Two nodes with 0 and 4, each pushes once (no reply): the sum is not kept."""
    res = gossip.gossip_average([0.0, 4.0], cycles=1, jitter=0.0, seed=0, protocol="push")
    first_sender = res.ledger.columns()["sender"][0]
    # First 0 -> node 1: (0 + 4) / 2 = 2; then 2 -> node 0: (2 + 0) / 2 = 1.
    # Or first 4 -> node 0: 2; then 2 -> node 1: (2 + 4) / 2 = 3.
    expected = [1.0, 2.0] if first_sender == 0 else [2.0, 3.0]
    assert list(res.values) == expected
    assert res.ledger.totals().sent == 2  # two pushes, no replies


def test_push_only_averaging_lets_the_mean_drift():
    for seed in range(3):
        push = gossip.gossip_average(VALUES, cycles=40, seed=seed, protocol="push")
        pull = gossip.gossip_average(VALUES, cycles=40, seed=seed)
        assert push.variance[-1] < 1e-8 * push.variance[0]    # a consensus ...
        assert abs(push.mean[-1] - VALUES.mean()) > 1e-3      # ... on the wrong value
        assert pull.mean[-1] == pytest.approx(VALUES.mean(), abs=1e-9)


def test_averaging_push_arriving_after_the_end_is_not_delivered():
    # Δ = 1, delay 1, 2 cycles: pushes at u and u + 1 (u in [0, 1)) arrive at
    # u + 1 < 2 (delivered, answered at u + 2: the reply still lands) and
    # u + 2 >= 2 (not delivered). 4 pushes + 2 replies sent, 4 delivered.
    res = gossip.gossip_average([0.0, 4.0], cycles=2, jitter=0.0, delay=1.0, seed=0)
    t = res.ledger.totals()
    assert (t.sent, t.delivered) == (6, 4)
    assert res.values.sum() == 4.0


def test_learning_messages_after_until_are_not_delivered():
    # Δ = 1, no jitter, delay 1, until 3: each of 2 nodes sends at u, u + 1,
    # u + 2 (u in [0, 1)); arrivals u + 1 and u + 2 are before 3, u + 3 is not.
    kw = dict(n_nodes=2, model="logreg", until=3, delay=1.0, jitter=0.0, lr=0.1,
              progress=False)
    res = gossip.gossip_learning(**kw)
    t = res.ledger.totals()
    assert (t.sent, t.delivered) == (6, 4)
    c = res.ledger.columns()
    assert np.array_equal(c["round"][~c["delivered"]], [3, 3])
    assert res.ledger.per_node("received").tolist() == [2, 2]
    lost = gossip.gossip_learning(drop_prob=1.0, **kw).ledger.totals()
    assert (lost.sent, lost.delivered) == (6, 0)


def test_receive_merges_by_averaging_by_hand():
    """One step and one message: the receiver ends halfway between x0 and the sender."""
    kw = dict(n_nodes=2, model="logreg", until=0.5, jitter=0.0, lr=0.5, progress=False)
    # Wake times are uniform in [0, 1): find a seed with exactly one step before 0.5.
    seed = next(s for s in range(50)
                if gossip.gossip_learning(seed=s, **kw).steps.sum() == 1)
    res = gossip.gossip_learning(seed=seed, **kw)
    module = engine.prepare("logreg", 2, seed=seed)[0]
    x0 = engine.Nodes(module, 2).params[0]
    c = res.ledger.columns()
    sender, receiver = int(c["sender"][0]), int(c["receiver"][0])
    x_sent, x_received = res.params[sender], res.params[receiver]
    assert not torch.allclose(x_sent, x0)                  # the sender took its step
    # x <- (m.x + x) / 2 with x = x0 and m.x = x_sent.
    assert torch.allclose(x_received, (x_sent + x0) / 2, atol=1e-7, rtol=0)
    assert torch.equal(gossip.aggregate(torch.tensor([0.0, 2.0]), torch.tensor([4.0, 2.0])),
                       torch.tensor([2.0, 2.0]))


def test_ledger_records_messages_in_batches(monkeypatch):
    calls = []
    original = Ledger.record
    monkeypatch.setattr(Ledger, "record",
                        lambda self, *a, **k: (calls.append(1), original(self, *a, **k))[1])
    res = gossip.gossip_learning(n_nodes=32, model="logreg", until=10, delay=0.05,
                                 lr=0.1, progress=False)
    assert res.ledger.totals().sent > 250 and len(calls) == 1  # under 4,096: one batch
    avg = gossip.gossip_average(VALUES, cycles=100, seed=0)
    assert len(avg.ledger) > 4096 and len(calls) == 1 + math.ceil(len(avg.ledger) / 4096)


def test_result_describes_the_scale():
    d = data.synthetic_logistic(100, 5, seed=0)            # 80 training examples
    res = gossip.gossip_learning(n_nodes=8, model="logreg", dataset=d, until=3, lr=0.1,
                                 progress=False)
    assert res.n_params == res.params.shape[1] == 5 * 2 + 2   # weights and biases, 2 classes
    assert res.examples_per_node.tolist() == [10] * 8
    assert res.classes_per_node.min() >= 1 and res.classes_per_node.max() <= 2
    assert len(res.mean_steps) == len(res.times) and res.mean_steps[0] == 0
    assert res.mean_steps[-1] == pytest.approx(res.steps.mean())
    assert res.wall_seconds > 0

@pytest.mark.parametrize("kw, param", [
    ({"delta": 0}, "delta"), ({"jitter": 1.5}, "jitter"), ({"delay": -1}, "delay"),
    ({"drop_prob": 2}, "drop_prob"), ({"sampling": "greedy"}, "sampling"),
    ({"n_nodes": 1}, "n_nodes"), ({"until": 0}, "until"), ({"sgd_time": -1}, "sgd_time"),
    ({"lr": float("inf")}, "lr"),
])
def test_bad_input(kw, param):
    with pytest.raises(ValueError, match=param):
        gossip.gossip_learning(**{"n_nodes": 4, "until": 1, "progress": False, **kw})
    if param not in ("n_nodes", "until", "sgd_time", "lr"):
        with pytest.raises(ValueError, match=param):
            gossip.gossip_average([1.0, 2.0], **kw)


def test_gossip_learning_evaluations_are_bounded_up_front(monkeypatch):
    # Issue #27: at the smallest eval_every, 4,096 nodes x 100,001 evaluations
    # took about 20 hours and 3.1 GiB; at MAX_NODE_EVALS (1,000 x 1,000) the
    # heap passed 2 GiB. n_nodes x (until / eval_every + 1) is now at most
    # MAX_GOSSIP_NODE_EVALS.
    from dmlbook import units

    assert gossip.MAX_GOSSIP_NODE_EVALS == units.MAX_GOSSIP_NODE_EVALS == 100_000
    prepare = gossip.prepare
    monkeypatch.setattr(gossip, "prepare", lambda *a, **k: pytest.fail("not refused up front"))
    with pytest.raises(ValueError, match=r"^eval_every must keep n_nodes x evaluations .* "
                                         r"<= 100,000 \(MAX_GOSSIP_NODE_EVALS\), got 100,100"):
        gossip.gossip_learning(n_nodes=100, until=50.0, eval_every=0.05, progress=False)
    monkeypatch.setattr(gossip, "prepare", prepare)
    kw = dict(n_nodes=4, until=3.0, eval_every=0.75, progress=False)
    monkeypatch.setattr(gossip, "MAX_GOSSIP_NODE_EVALS", 4 * 5)  # times 0, 0.75, ..., 3.0
    result = gossip.gossip_learning(**kw)
    assert len(result.times) * 4 == 20 and result.times[-1] == 3.0
    monkeypatch.setattr(gossip, "MAX_GOSSIP_NODE_EVALS", 4 * 5 - 1)
    monkeypatch.setattr(gossip, "prepare", lambda *a, **k: pytest.fail("not refused up front"))
    with pytest.raises(ValueError, match=r"^eval_every must keep .* got 20 "):
        gossip.gossip_learning(**kw)


def test_gossip_learning_steps_are_bounded_up_front(monkeypatch):
    # Issue #27: at MAX_GOSSIP_EVENTS (2 million steps) a run took hours.
    from dmlbook import units

    assert gossip.MAX_GOSSIP_STEPS == units.MAX_GOSSIP_STEPS
    monkeypatch.setattr(gossip, "prepare", lambda *a, **k: pytest.fail("not refused up front"))
    n = 100
    at_bound = units.MAX_GOSSIP_STEPS / n  # until, with delta = 1
    with pytest.raises(ValueError, match=rf"^until must keep n_nodes x until / delta <= "
                                         rf"{units.MAX_GOSSIP_STEPS:,} \(MAX_GOSSIP_STEPS\)"):
        gossip.gossip_learning(n_nodes=n, until=at_bound + 1, eval_every=at_bound,
                               progress=False)
    monkeypatch.setattr(gossip, "MAX_GOSSIP_STEPS", 4 * 3)
    with pytest.raises(ValueError, match=r"got 16"):
        gossip.gossip_learning(n_nodes=4, until=4.0, eval_every=4.0, progress=False)
    monkeypatch.setattr(gossip, "prepare", lambda *a, **k: (_ for _ in ()).throw(
        RuntimeError("accepted")))
    with pytest.raises(RuntimeError, match="accepted"):  # at the bound: accepted
        gossip.gossip_learning(n_nodes=4, until=3.0, eval_every=3.0, progress=False)
