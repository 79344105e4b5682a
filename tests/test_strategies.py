"""Every way the engine batches the forward pass gives the reference (vmap) results.

Issue #28: the strategies of :mod:`dmlbook.stacked` differ only in kernels, so
each simulator must end with the same models, to float rounding, whichever
one runs; and processing the nodes in chunks changes nothing.
"""

import numpy as np
import pytest
import torch

from dmlbook import stacked
from dmlbook.allreduce import train_data_parallel
from dmlbook.dpsgd import run_dpsgd
from dmlbook.engine import Nodes
from dmlbook.federated import run_fedavg
from dmlbook.gossip import gossip_learning
from dmlbook.models import LeNet, make_model

OTHERS = ("layers", "loop")
TOL = dict(rtol=1e-4, atol=1e-5)


def under(strategy, fn, *args, **kw):
    with stacked.use_strategy(strategy):
        return fn(*args, **kw)


@pytest.mark.parametrize("model", ["cnn", "mlp"])
@pytest.mark.parametrize("strategy", OTHERS)
def test_dpsgd_same_models(model, strategy):
    kw = dict(n_nodes=6, rounds=3, degree=2, model=model, seed=1, progress=False)
    ref = under("vmap", run_dpsgd, **kw)
    got = under(strategy, run_dpsgd, **kw)
    assert got.nodes.strategy == strategy and ref.nodes.strategy == "vmap"
    torch.testing.assert_close(got.nodes.params, ref.nodes.params, **TOL)
    np.testing.assert_allclose(got.history.test_acc, ref.history.test_acc, atol=1e-6)


@pytest.mark.parametrize("strategy", OTHERS)
def test_fedavg_same_server(strategy):
    kw = dict(n_clients=4, rounds=2, local_steps=2, model="cnn", seed=2, progress=False)
    ref, got = under("vmap", run_fedavg, **kw), under(strategy, run_fedavg, **kw)
    torch.testing.assert_close(got.server, ref.server, **TOL)
    np.testing.assert_allclose(got.test_loss, ref.test_loss, rtol=1e-5)


@pytest.mark.parametrize("strategy", OTHERS)
def test_gossip_learning_same_models(strategy):
    kw = dict(n_nodes=8, model="cnn", until=3.0, delay=0.5, seed=3, progress=False)
    ref, got = under("vmap", gossip_learning, **kw), under(strategy, gossip_learning, **kw)
    torch.testing.assert_close(got.params, ref.params, **TOL)


@pytest.mark.parametrize("scheme", ["ps", "naive", "ring"])
@pytest.mark.parametrize("strategy", OTHERS)
def test_data_parallel_same_models(scheme, strategy):
    kw = dict(n_workers=4, rounds=3, model="cnn", seed=4, progress=False)
    ref = under("vmap", train_data_parallel, scheme, **kw)
    got = under(strategy, train_data_parallel, scheme, **kw)
    torch.testing.assert_close(got.worker_params, ref.worker_params, **TOL)


def lenet_nodes(n, **kw):
    torch.manual_seed(0)
    nodes = Nodes(LeNet(), n, **kw)
    nodes.params += 0.01 * torch.randn_like(nodes.params)
    return nodes


def test_lenet_gradients_agree_across_strategies_and_chunks():
    n, B = 3, 2
    X, y = torch.randn(n, B, 3, 32, 32), torch.randint(0, 10, (n, B))
    ref_loss, ref_grad = lenet_nodes(n, strategy="vmap").losses_and_gradients(X, y)
    for strategy in ("layers", "loop"):
        for chunk in (None, 2):
            nodes = lenet_nodes(n, strategy=strategy, chunk=chunk)
            loss, grad = nodes.losses_and_gradients(X, y)
            torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("strategy", ["vmap", "layers", "loop"])
def test_chunks_give_identical_results(strategy):
    """Each node's gradient is computed by the same kernels in a chunk as in one pass."""
    model = make_model("cnn", seed=0)
    X, y = torch.randn(5, 8, 64), torch.randint(0, 10, (5, 8))
    whole = Nodes(model, 5, strategy=strategy).losses_and_gradients(X, y)
    chunked = Nodes(model, 5, strategy=strategy, chunk=2)
    assert chunked.chunk_size(X) == 2
    parts = chunked.losses_and_gradients(X, y)
    torch.testing.assert_close(parts[0], whole[0], rtol=0, atol=1e-7)
    torch.testing.assert_close(parts[1], whole[1], rtol=0, atol=1e-7)


def test_activation_budget_sets_the_chunk(monkeypatch):
    from dmlbook import engine
    nodes = lenet_nodes(8, strategy="layers")
    X = torch.randn(8, 4, 3, 32, 32)
    assert nodes.chunk_size(X) == 8
    # A node's saved activations and two copies of its gradient count against the budget.
    per_node = nodes._activation_bytes[(4, 3, 32, 32)] + 2 * nodes.payload_bytes
    monkeypatch.setattr(engine, "ACTIVATION_BUDGET", 3 * per_node)
    assert nodes.chunk_size(X) == 3
    monkeypatch.setattr(engine, "ACTIVATION_BUDGET", 3 * per_node - 1)
    assert nodes.chunk_size(X) == 2


def test_auto_rule_and_override():
    assert Nodes(make_model("mlp"), 2).strategy == "vmap"
    assert Nodes(make_model("cnn"), 2).strategy == "layers"
    assert Nodes(LeNet(), 2).strategy == "layers"
    with stacked.use_strategy("loop"):
        assert Nodes(LeNet(), 2).strategy == "loop"
    assert Nodes(LeNet(), 2, strategy="vmap").strategy == "vmap"
    bn = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    assert Nodes(bn, 2).strategy == "loop"
    with pytest.raises(ValueError, match="strategy 'layers'"):
        Nodes(bn, 2, strategy="layers")
    with pytest.raises(ValueError, match="strategy"):
        Nodes(LeNet(), 2, strategy="grouped")


@pytest.fixture
def torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("chunk", [None, 2])
def test_nodes_spread_over_threads_give_the_single_threaded_results(torch_threads, chunk):
    """On a CPU, "layers" gives each thread whole nodes; every node's result is unchanged."""
    n, B = 5, 3
    X, y = torch.randn(n, B, 3, 32, 32), torch.randint(0, 10, (n, B))
    torch.set_num_threads(1)
    assert stacked.threads_for("layers", torch.device("cpu")) == 1
    ref = lenet_nodes(n, chunk=chunk)
    ref_loss, ref_grad = ref.losses_and_gradients(X, y)
    ref_eval = ref.evaluate(X[0], y[0])
    torch.set_num_threads(2)
    assert stacked.threads_for("layers", torch.device("cpu")) == 2
    nodes = lenet_nodes(n, chunk=chunk)
    calls = []
    original = stacked.for_rows_in_threads

    def spy(work, slices, threads):
        calls.append((len(slices), threads))
        return original(work, slices, threads)

    stacked.for_rows_in_threads = spy
    try:
        loss, grad = nodes.losses_and_gradients(X, y)
        acc_loss, acc = nodes.evaluate(X[0], y[0])
    finally:
        stacked.for_rows_in_threads = original
    assert calls and all(threads == 2 and k >= 2 for k, threads in calls)
    torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(acc_loss, ref_eval[0], rtol=1e-5)
    np.testing.assert_array_equal(acc, ref_eval[1])
    assert torch.get_num_threads() == 2  # restored after the step


def test_threaded_steps_are_deterministic(torch_threads):
    torch.set_num_threads(2)
    X, y = torch.randn(6, 4, 3, 32, 32), torch.randint(0, 10, (6, 4))
    first, second = lenet_nodes(6), lenet_nodes(6)
    for _ in range(2):
        first.sgd_step(X, y, 0.05)
        second.sgd_step(X, y, 0.05)
    assert torch.equal(first.params, second.params)


def test_only_layers_on_a_cpu_uses_threads(torch_threads):
    torch.set_num_threads(2)
    cpu = torch.device("cpu")
    assert stacked.threads_for("vmap", cpu) == 1  # one batched kernel
    assert stacked.threads_for("loop", cpu) == 1  # swaps the module's parameters: one thread
    assert stacked.threads_for("layers", torch.device("meta")) == 1


def test_rows_in_threads_covers_every_slice_once_and_restores_threads(torch_threads):
    torch.set_num_threads(2)
    seen, inner = [], []

    def work(rows):
        seen.append(rows.start)
        inner.append(torch.get_num_threads())

    slices = [slice(i, i + 1) for i in range(7)]
    stacked.for_rows_in_threads(work, slices, 2)
    assert sorted(seen) == list(range(7))
    assert inner == [1] * 7  # each thread runs its kernels on one intra-op thread
    assert torch.get_num_threads() == 2
    with pytest.raises(ZeroDivisionError):
        stacked.for_rows_in_threads(lambda rows: 1 / 0, slices, 2)
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("channels_last", [False, True])
def test_channel_sum_lrn_is_torchs_local_response_norm(size, channels_last):
    """The layers strategy's LRN: torch's formula, values and input gradients."""
    lrn = torch.nn.LocalResponseNorm(size, alpha=0.3, beta=0.75, k=1.5)
    x = torch.randn(4, 7, 5, 6, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    ours = stacked._ChannelSumLRN(lrn)(x)
    torch.testing.assert_close(ours, lrn(x))
    grad_out = torch.randn_like(ours)
    (ours_grad,) = torch.autograd.grad(ours, x, grad_out)
    (ref_grad,) = torch.autograd.grad(lrn(x), x, grad_out)
    torch.testing.assert_close(ours_grad, ref_grad)
    narrow = torch.randn(2, 2, 3, 3, dtype=torch.float64)  # a window wider than the channels
    torch.testing.assert_close(stacked._ChannelSumLRN(lrn)(narrow), lrn(narrow))


def test_layers_runs_lenet_channels_last_with_the_slice_lrn():
    """On a CPU the merged batch reaches every layer channels-last (pooling ~10x faster)."""
    nodes = lenet_nodes(2, strategy="layers")
    module = nodes._forward.module
    assert sum(isinstance(m, stacked._ChannelSumLRN) for m in module.modules()) == 2
    assert not any(isinstance(m, torch.nn.LocalResponseNorm) for m in module.modules())
    seen = []
    hooks = [m.register_forward_pre_hook(lambda m, a: seen.append(
        a[0].is_contiguous(memory_format=torch.channels_last)))
        for m in module.features]
    try:
        nodes.losses_and_gradients(torch.randn(2, 3, 3, 32, 32), torch.randint(0, 10, (2, 3)))
    finally:
        for hook in hooks:
            hook.remove()
    assert seen and len(seen) % len(module.features) == 0 and all(seen)


class _ViewFlatten(torch.nn.Module):
    """A conv net that flattens with .view(), which a channels-last tensor refuses."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.pool = torch.nn.MaxPool2d(2)
        self.fc = torch.nn.Linear(4 * 3 * 3, 10)

    def forward(self, x):
        h = self.pool(torch.relu(self.conv(x)))
        return self.fc(h.view(h.size(0), -1))


def test_layers_falls_back_to_nchw_for_a_forward_that_flattens_with_view():
    X, y = torch.randn(3, 2, 3, 8, 8), torch.randint(0, 10, (3, 2))
    ref_loss, ref_grad = Nodes(_ViewFlatten(), 3, strategy="vmap").losses_and_gradients(X, y)
    nodes = Nodes(_ViewFlatten(), 3, strategy="layers")
    assert nodes._forward.channels_last
    loss, grad = nodes.losses_and_gradients(X, y)
    assert not nodes._forward.channels_last  # remembered: later calls go straight to NCHW
    torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(nodes.losses_and_gradients(X, y)[1], grad)


@pytest.mark.parametrize("budget", [None, 2_000_000])
def test_evaluation_in_slices_spreads_nodes_over_threads(torch_threads, monkeypatch, budget):
    """LeNet's activations on a test set beyond the budget: slices of the set, one
    node per call, the nodes spread over the threads, each slice x threads within
    the budget, and the single-threaded numbers."""
    from dmlbook import engine
    X, y = torch.randn(20, 3, 32, 32), torch.randint(0, 10, (20,))
    torch.set_num_threads(1)
    ref = lenet_nodes(4).evaluate(X, y)
    torch.set_num_threads(2)
    if budget:
        monkeypatch.setattr(engine, "ACTIVATION_BUDGET", budget)
    nodes = lenet_nodes(4)
    seen, calls = [], []
    shared = nodes._forward.shared
    monkeypatch.setattr(nodes._forward, "shared",
                        lambda p, X: seen.append((len(p), len(X))) or shared(p, X))
    original = stacked.for_rows_in_threads
    monkeypatch.setattr(stacked, "for_rows_in_threads", lambda work, slices, threads: (
        calls.append(threads), original(work, slices, threads))[1])
    loss, acc = nodes.evaluate(X, y)
    per_example = nodes._saved_bytes(X[None, :1])
    assert calls == [2]
    assert all(k * m * per_example * 2 <= engine.ACTIVATION_BUDGET for k, m in seen), seen
    assert (max(m for _, m in seen) < len(y)) == bool(budget)
    np.testing.assert_allclose(loss, ref[0], rtol=1e-5)
    np.testing.assert_array_equal(acc, ref[1])


def test_threads_share_the_nodes_in_as_few_slices_as_the_budget_allows(torch_threads, monkeypatch):
    """With room in the budget, each thread takes one slice; a tight budget splits further."""
    from dmlbook import engine
    torch.set_num_threads(2)
    nodes = lenet_nodes(6)
    X = torch.randn(6, 2, 3, 32, 32)
    slices, threads = nodes._row_plan(X)
    assert threads == 2 and nodes.chunk_size(X) == 6
    assert [(s.start, s.stop) for s in slices] == [(0, 3), (3, 6)]
    # A budget of 2 nodes is shared by the 2 threads: one node a slice.
    per_node = nodes._activation_bytes[(2, 3, 32, 32)] + 2 * nodes.payload_bytes
    monkeypatch.setattr(engine, "ACTIVATION_BUDGET", 2 * per_node)
    assert [(s.start, s.stop) for s in nodes._row_plan(X)[0]] == [(k, k + 1) for k in range(6)]


def test_evaluation_goes_in_slices_when_the_threads_together_pass_the_budget(
        torch_threads, monkeypatch):
    """Each thread holds its own activations: two threads need twice one node's bytes."""
    from dmlbook import engine
    torch.set_num_threads(2)
    nodes = lenet_nodes(4)
    X, y = torch.randn(6, 3, 32, 32), torch.randint(0, 10, (6,))
    nodes.evaluate(X, y)  # measures the activations once
    per_example = nodes._saved_bytes(X[None, :1])
    sliced = []
    monkeypatch.setattr(nodes, "_evaluate_in_slices",
                        lambda *a, **k: sliced.append(a[3]) or (np.zeros(4), np.zeros(4)))
    monkeypatch.setattr(engine, "ACTIVATION_BUDGET", 2 * per_example * 6)
    nodes.evaluate(X, y)
    assert sliced == []  # 6 examples on 2 threads fit exactly
    monkeypatch.setattr(engine, "ACTIVATION_BUDGET", 2 * per_example * 6 - 1)
    nodes.evaluate(X, y)
    assert sliced == [5]  # then at most 5 examples a slice per thread
