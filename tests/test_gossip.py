import numpy as np
import pytest

from dmlbook import data, gossip


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


def test_batched_steps_equal_sequential_ones():
    """The batching of simultaneous steps changes nothing but speed."""
    kw = dict(n_nodes=16, model="logreg", until=8, lr=0.3, progress=False)
    a = gossip.gossip_learning(delay=0.3, **kw)   # batches steps within 0.3 s
    assert a.steps.sum() > 0
    c = a.ledger.columns()
    assert len(c["round"]) == a.steps.sum()


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
