import numpy as np
import pytest
import torch

from dmlbook import allreduce
from dmlbook.allreduce import train_data_parallel
from dmlbook.distributed import run_dpsgd_distributed
from dmlbook.faults import Faults


@pytest.fixture(scope="module")
def runs():
    return {s: train_data_parallel(s, n_workers=5, rounds=6, lr=0.3, progress=False)
            for s in allreduce.SCHEMES}


def test_three_schemes_compute_the_same_parameters(runs):
    diff = allreduce.max_parameter_difference(*runs.values())
    assert diff.shape == (7,) and diff.max() < 1e-5
    assert not torch.equal(runs["ps"].params[0], runs["ps"].params[-1])  # it did train
    assert all(r.updated[1:] == [True] * 6 for r in runs.values())


def test_schemes_equal_centralized_sgd_on_the_union_of_batches(runs):
    """One round = one SGD step on the workers' batches together (equal-size batches)."""
    from dmlbook import data
    from dmlbook.engine import FlatModel, NodeData, seeded_generator
    from dmlbook.models import make_model

    d = data.load_digits(seed=0)
    nd = NodeData(d.X_train, d.y_train, data.split(d.y_train, 5, seed=0))
    flat = FlatModel(make_model("mlp", seed=0))
    x = flat.initial.clone().requires_grad_()
    X, y = nd.batch(seeded_generator(0), 32)
    loss = flat.loss(x, X.flatten(0, 1), y.flatten())
    (g,) = torch.autograd.grad(loss, x)
    assert torch.allclose(runs["ring"].params[1], x.detach() - 0.3 * g, atol=1e-6)


def test_torch_distributed_all_reduce_agrees():
    real = run_dpsgd_distributed(4, algorithm="allreduce", rounds=3, lr=0.3, batch_size=32)
    ours = train_data_parallel("ring", n_workers=4, rounds=3, lr=0.3, progress=False)
    assert real.snapshots.shape == (4, ours.params[0].numel())
    assert (real.snapshots - torch.stack(ours.params)).abs().max() < 1e-5
    # Every process ends with the same parameters.
    assert (real.params - real.params[0]).abs().max() == 0


@pytest.mark.parametrize("n", [2, 3, 4, 7])
def test_ledger_counts_equal_the_formulas(n):
    rounds = 2
    for scheme in allreduce.SCHEMES:
        res = train_data_parallel(scheme, n_workers=n, rounds=rounds, progress=False)
        M = res.params[0].numel() * 4
        sent = res.ledger.per_node("sent", nbytes=True) / rounds
        received = res.ledger.per_node("received", nbytes=True) / rounds
        formula = allreduce.per_node_round_bytes(scheme, n, M)
        totals = res.ledger.totals()
        if scheme == "ps":
            assert sent[n] == received[n] == formula["server"] == n * M
            assert set(sent[:n]) == set(received[:n]) == {M}
            assert totals.sent == rounds * 2 * n
        elif scheme == "naive":
            assert set(sent) == set(received) == {(n - 1) * M}
            assert totals.sent == rounds * n * (n - 1)
        else:
            # 2(n-1) chunk messages per node; in total each step moves one whole model.
            assert totals.sent == rounds * 2 * n * (n - 1)
            assert totals.bytes_sent == rounds * 2 * (n - 1) * M
            chunk = -(-res.params[0].numel() // n) * 4
            assert np.all(np.abs(sent - formula["worker"]) <= 2 * chunk)
            assert np.all(np.abs(received - sent) <= 2 * chunk)
        traffic = allreduce.traffic_per_round(res)
        assert traffic["worker"] == sent[:n].max()


def test_busiest_link_and_round_time():
    M = 85_098 * 4
    assert allreduce.busiest_link_bytes("ps", 16, M) == 32 * M
    assert allreduce.busiest_link_bytes("naive", 16, M) == 15 * M
    assert allreduce.busiest_link_bytes("ring", 16, M) == pytest.approx(30 / 16 * M)
    # Hand-worked: 16 workers, ring, 1 Gbit/s: 1.875 * 340,392 B * 8 / 1e9 s.
    assert allreduce.round_time_s("ring", 16, 85_098, 1e9) == pytest.approx(
        1.875 * 340_392 * 8 / 1e9)
    with pytest.raises(ValueError, match="link_bps"):
        allreduce.round_time_s("ring", 16, 85_098, 0)
    with pytest.raises(ValueError, match="scheme"):
        allreduce.busiest_link_bytes("tree", 4, 1.0)


def test_worker_crash_parameter_server_goes_on_with_the_rest():
    res = train_data_parallel("ps", n_workers=4, rounds=8, faults=Faults(crash_at={2: 4}),
                              progress=False)
    assert all(res.updated[1:])
    per_round = res.ledger.per_round()
    assert list(per_round[1:4]) == [8] * 3 and list(per_round[4:]) == [6] * 5
    assert res.test_acc[-1] > res.test_acc[3]


def test_server_crash_stops_training():
    res = train_data_parallel("ps", n_workers=4, rounds=8, faults=Faults(crash_at={4: 4}),
                              progress=False)
    assert res.updated[1:4] == [True] * 3 and not any(res.updated[4:])
    assert all(torch.equal(p, res.params[3]) for p in res.params[4:])
    # The workers still send their gradients; none arrives.
    assert res.ledger.totals().lost == 4 * 5


def test_ring_stalls_until_rebuilt():
    res = train_data_parallel("ring", n_workers=4, rounds=10, ring_rebuild_rounds=3,
                              faults=Faults(crash_at={1: 4}), progress=False)
    assert res.updated[1:] == [True] * 3 + [False] * 3 + [True] * 4
    # After the rebuild the ring has 3 members: 2 * 3 * 2 chunk messages per round.
    assert res.ledger.per_round()[-1] == 12


def test_naive_allreduce_survives_a_worker_crash():
    res = train_data_parallel("naive", n_workers=4, rounds=6, faults=Faults(crash_at={0: 2}),
                              progress=False)
    assert all(res.updated[1:])
    assert res.ledger.per_round()[-1] == 3 * 3  # live workers still send to all others


@pytest.mark.parametrize("kw, param", [
    ({"scheme": "tree"}, "scheme"), ({"n_workers": 0}, "n_workers"), ({"rounds": 0}, "rounds"),
    ({"lr": float("nan")}, "lr"), ({"ring_rebuild_rounds": -1}, "ring_rebuild_rounds"),
    ({"batch_size": 1.5}, "batch_size"),
])
def test_bad_input(kw, param):
    kwargs = {"scheme": "ps", "n_workers": 2, "rounds": 1, "progress": False, **kw}
    scheme = kwargs.pop("scheme")
    with pytest.raises(ValueError, match=param):
        train_data_parallel(scheme, **kwargs)
