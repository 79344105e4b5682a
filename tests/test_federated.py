import numpy as np
import pytest

from dmlbook import compression, data, federated
from dmlbook.engine import NodeData, Nodes, seeded_generator
from dmlbook.models import make_model


def test_fedsgd_gradients_and_parameters_give_the_same_model():
    d = data.load_digits(seed=0)
    nd = NodeData(d.X_train, d.y_train, data.split(d.y_train, 8, seed=0))
    X, y = nd.batch(seeded_generator(0), 16)
    clients = Nodes(make_model("mlp", seed=0), 8)
    x0 = clients.params[0].clone()
    a = federated.fedsgd_round(x0, clients, X, y, lr=0.2, send="gradients")
    b = federated.fedsgd_round(x0, clients, X, y, lr=0.2, send="parameters")
    assert (a - b).abs().max() < 1e-6 and (a - x0).abs().max() > 1e-3


def test_fedavg_update_and_parameters_give_the_same_model():
    kw = dict(n_clients=6, rounds=8, local_steps=3, lr=0.1, progress=False)
    a = federated.run_fedavg(send="update", **kw)
    b = federated.run_fedavg(send="parameters", **kw)
    assert (a.server - b.server).abs().max() < 1e-5
    assert a.test_acc[-1] > a.test_acc[0] + 0.3
    # Ledger: each round one model down to each client and one payload up from each.
    assert a.ledger.totals().sent == 8 * 2 * 6
    assert a.upload_bytes == 8 * 6 * 2410 * 4


def test_decentralized_gradient_exchange_never_reaches_consensus():
    kw = dict(n_nodes=12, degree=4, rounds=40, lr=0.5, progress=False)
    params = federated.run_decentralized_exchange(send="parameters", **kw).history.as_arrays()
    grads = federated.run_decentralized_exchange(send="gradients", **kw).history.as_arrays()
    assert params["consensus"][0] == grads["consensus"][0] > 1  # different starting models
    assert params["consensus"][-1] < 0.1 * params["consensus"][0]
    assert grads["consensus"][-1] > 0.9 * grads["consensus"][0]
    assert grads["consensus"][-1] > 10 * params["consensus"][-1]
    assert params["test_acc"][-1].mean() > grads["test_acc"][-1].mean() + 0.2


@pytest.mark.parametrize("method, level", [("quantize", 4), ("topk", 0.1), ("topk", 0.01)])
def test_compressed_updates_beat_compressed_parameters_at_the_same_budget(method, level):
    kw = dict(n_clients=10, rounds=30, local_steps=5, lr=0.1, method=method, level=level,
              progress=False)
    upd = federated.run_fedavg(send="update", **kw)
    par = federated.run_fedavg(send="parameters", **kw)
    assert upd.upload_bytes == par.upload_bytes
    assert upd.test_acc[-1] > par.test_acc[-1] + 0.1
    assert np.mean(upd.step_error) < np.mean(par.step_error)


def test_updates_are_centred_and_mostly_near_zero():
    run = federated.run_fedavg(n_clients=10, rounds=12, sample_round=10, progress=False)
    u = compression.entry_stats(run.payloads["update"])
    p = compression.entry_stats(run.payloads["parameters"])
    assert abs(u.mean) < 1e-3 and u.std < 0.1 * p.std
    assert u.near_zero > 0.3 > p.near_zero


@pytest.mark.parametrize("call, param", [
    (lambda: federated.run_fedavg(send="gradients", rounds=1), "send"),
    (lambda: federated.run_fedavg(method="zip", rounds=1), "method"),
    (lambda: federated.run_fedavg(local_steps=0), "local_steps"),
    (lambda: federated.run_decentralized_exchange(send="updates"), "send"),
    (lambda: federated.run_decentralized_exchange(init="random"), "init"),
    (lambda: federated.compression_table((("none", None),), sends=("grads",)), "sends"),
])
def test_bad_input(call, param):
    with pytest.raises(ValueError, match=param):
        call()


def test_common_initialisation_starts_together_and_gradient_exchange_drifts():
    kw = dict(n_nodes=12, degree=4, rounds=30, lr=0.5, init="common", progress=False)
    grads = federated.run_decentralized_exchange(send="gradients", **kw).history.as_arrays()
    params = federated.run_decentralized_exchange(send="parameters", **kw).history.as_arrays()
    assert grads["consensus"][0] < 1e-5 and params["consensus"][0] < 1e-5
    assert grads["consensus"][-1] > 2 * params["consensus"][-1] > 0


def test_averaging_shrinks_the_quantization_error_of_the_step():
    run = federated.run_fedavg(n_clients=10, rounds=5, send="parameters", method="quantize",
                               level=8, progress=False)
    # Independent rounding errors of ten clients partly cancel in the mean.
    assert np.mean(run.step_error) < 0.7 * np.mean(run.client_step_error)


def test_fair_parameter_baselines_run_and_count_bytes():
    kw = dict(n_clients=4, rounds=3, send="parameters", progress=False)
    keep = federated.run_fedavg(method="topk_keep", level=0.1, **kw)
    zero = federated.run_fedavg(method="topk", level=0.1, **kw)
    assert keep.upload_bytes == zero.upload_bytes == 3 * 4 * 241 * 8
    assert np.mean(keep.step_error) < np.mean(zero.step_error)
    per_tensor = federated.run_fedavg(method="quantize_per_tensor", level=4, **kw)
    n_tensors = len(Nodes(make_model("mlp", seed=0), 1).flat.sizes)
    assert per_tensor.upload_bytes == 3 * 4 * (2410 // 2 + 8 * n_tensors)


def test_fedavg_messages_are_bounded_up_front(monkeypatch):
    # Issue #27: 4,096 clients x 2,441 rounds was within MAX_NODE_STEPS, but its
    # 20 M messages passed MAX_LEDGER_RECORDS in round 2,049, after 5 minutes.
    from dmlbook import ledger

    prepare = federated.prepare
    monkeypatch.setattr(federated, "prepare", lambda *a, **k: pytest.fail("not refused up front"))
    with pytest.raises(ValueError, match=r"^rounds must keep rounds x 2 x cohort messages \(down "
                                         r"and up\) <= 16,777,216 \(MAX_LEDGER_RECORDS\) for a "
                                         r"full ledger, got 19,996,672$"):
        federated.run_fedavg(n_clients=4096, rounds=2441, local_steps=1)
    kw = dict(n_clients=6, cohort_size=3, rounds=2, local_steps=1, progress=False)
    monkeypatch.setattr(ledger, "MAX_LEDGER_RECORDS", 2 * 3 * 2 - 1)
    with pytest.raises(ValueError, match=r"got 12$"):
        federated.run_fedavg(**kw)
    monkeypatch.setattr(ledger, "MAX_LEDGER_RECORDS", 2 * 3 * 2)
    monkeypatch.setattr(federated, "prepare", prepare)
    assert len(federated.run_fedavg(**kw).ledger) == 12


def test_exchange_messages_and_evaluations_are_bounded_up_front(monkeypatch):
    from dmlbook import ledger

    prepare = federated.prepare
    monkeypatch.setattr(federated, "prepare", lambda *a, **k: pytest.fail("not refused up front"))
    # 999 nodes x 100 rounds: 1,000 x 101 evaluations.
    with pytest.raises(ValueError, match=r"^rounds must keep \(n_nodes \+ 1\) x \(rounds \+ 1\) "
                                         r"evaluations \(MAX_NODE_EVALS\) <= 100,000, "
                                         r"got 101,000$"):
        federated.run_decentralized_exchange(n_nodes=999, rounds=100)
    # A ring of 4 nodes: 8 messages and 5 evaluations a round, 5 more at round 0.
    kw = dict(n_nodes=4, topology="ring", rounds=3, progress=False)
    monkeypatch.setattr(ledger, "MAX_LEDGER_RECORDS", 23)
    with pytest.raises(ValueError, match=r"^rounds must keep rounds x messages a round <= 23 "
                                         r"\(MAX_LEDGER_RECORDS\) for a full ledger, got 24$"):
        federated.run_decentralized_exchange(**kw)
    monkeypatch.setattr(ledger, "MAX_LEDGER_RECORDS", 24)
    monkeypatch.setattr(federated, "MAX_NODE_EVALS", 19)
    with pytest.raises(ValueError, match=r"got 20$"):
        federated.run_decentralized_exchange(**kw)
    monkeypatch.setattr(federated, "MAX_NODE_EVALS", 20)
    monkeypatch.setattr(federated, "prepare", prepare)
    run = federated.run_decentralized_exchange(**kw)
    assert len(run.history.ledger) == 24 and run.history.rounds == [0, 1, 2, 3]
