import numpy as np
import pytest
import torch

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


def test_quantize_hand_worked():
    x = torch.tensor([0.0, 1.0, 2.0, 3.0])
    c = compression.quantize(x, bits=2)  # levels 0, 1, 2, 3 exactly
    assert torch.equal(c.values, x) and c.nbytes == 1 + 8
    c = compression.quantize(torch.tensor([0.0, 0.4, 1.0]), bits=1)
    assert torch.allclose(c.values, torch.tensor([0.0, 0.0, 1.0]))
    assert compression.quantize(torch.ones(10), 8).values.equal(torch.ones(10))


def test_topk_hand_worked():
    x = torch.tensor([0.1, -5.0, 0.2, 3.0, 0.0])
    c = compression.top_k(x, 0.4)
    assert torch.equal(c.values, torch.tensor([0.0, -5.0, 0.0, 3.0, 0.0]))
    assert c.nbytes == 2 * 8
    assert compression.relative_error(x, c.values) == pytest.approx(
        float(torch.tensor([0.1, 0.2]).norm() / x.norm()))


def test_compress_none_and_rows():
    X = torch.randn(3, 100)
    values, nbytes = compression.compress_rows(X, "none")
    assert torch.equal(values, X) and nbytes == [400] * 3
    values, nbytes = compression.compress_rows(X, "quantize", 8)
    assert nbytes == [108] * 3 and compression.relative_error(X, values) < 0.01


@pytest.mark.parametrize("call, param", [
    (lambda: compression.quantize(torch.ones(3), 0), "bits"),
    (lambda: compression.quantize(torch.ones(3), 17), "bits"),
    (lambda: compression.quantize(torch.ones(3), 4.5), "bits"),
    (lambda: compression.top_k(torch.ones(3), 0), "fraction"),
    (lambda: compression.top_k(torch.ones(3), 1.5), "fraction"),
    (lambda: compression.compress(torch.ones(3), "zip"), "method"),
    (lambda: compression.entry_stats(torch.ones(3), near_zero=-1), "near_zero"),
    (lambda: federated.run_fedavg(send="gradients", rounds=1), "send"),
    (lambda: federated.run_fedavg(method="zip", rounds=1), "method"),
    (lambda: federated.run_fedavg(local_steps=0), "local_steps"),
    (lambda: federated.run_decentralized_exchange(send="updates"), "send"),
    (lambda: federated.run_decentralized_exchange(init="random"), "init"),
    (lambda: compression.quantize_per_tensor(torch.ones(4), 4, [2, 3]), "sizes"),
    (lambda: compression.top_k_keep(torch.ones(4), 0.5, torch.ones(3)), "reference"),
    (lambda: compression.compressed_bytes(0), "n_entries"),
    (lambda: compression.compressed_bytes(10, "quantize", 2.5), "level"),
    (lambda: compression.compressed_bytes(10, "gzip"), "method"),
    (lambda: federated.compression_table((("none", None),), sends=("grads",)), "sends"),
])
def test_bad_input(call, param):
    with pytest.raises(ValueError, match=param):
        call()


def test_quantize_per_tensor_hand_worked():
    # Two tensors of very different scales: one range each keeps both exact at 1 bit.
    x = torch.tensor([0.0, 100.0, 0.0, 0.01])
    c = compression.quantize_per_tensor(x, bits=1, sizes=[2, 2])
    assert torch.equal(c.values, x) and c.nbytes == 2 * (1 + 8)
    whole = compression.quantize(x, bits=1)
    assert whole.values[3] == 0.0  # one range for both loses the small tensor
    assert compression.quantize_per_tensor(x, 8).nbytes == compression.quantize(x, 8).nbytes


def test_top_k_keep_fills_unsent_entries_from_the_receiver():
    x = torch.tensor([0.1, -5.0, 0.2, 3.0, 0.0])
    ref = torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0])
    c = compression.top_k_keep(x, 0.4, ref)
    assert torch.equal(c.values, torch.tensor([1.0, -5.0, 1.0, 3.0, 1.0]))
    assert c.nbytes == compression.top_k(x, 0.4).nbytes == 2 * 8
    assert torch.equal(compression.top_k_keep(x, 0.4).values, compression.top_k(x, 0.4).values)


@pytest.mark.parametrize("method, level", [
    ("none", None), ("quantize", 8), ("quantize", 4), ("quantize", 3), ("topk", 0.1),
    ("topk", 0.01), ("topk_keep", 0.1), ("quantize_per_tensor", 8)])
@pytest.mark.parametrize("n", [1, 7, 2410, 85_098])
def test_compressed_bytes_is_what_compress_sends(method, level, n):
    x = torch.randn(n, generator=torch.Generator().manual_seed(n))
    assert compression.compressed_bytes(n, method, level) == compression.compress(
        x, method, level).nbytes


def test_compressed_bytes_lenet_by_hand():
    assert compression.compressed_bytes(85_098) == 340_392
    assert compression.compressed_bytes(85_098, "quantize", 8) == 85_098 + 8
    assert compression.compressed_bytes(85_098, "topk", 0.01) == 851 * 8
    assert compression.compressed_bytes(85_098, "quantize_per_tensor", 8, n_tensors=10) \
        == 85_098 + 80


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
