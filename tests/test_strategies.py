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
    per_node = nodes._activation_bytes[(4, 3, 32, 32)]
    monkeypatch.setattr(engine, "ACTIVATION_BUDGET", 3 * per_node)
    assert nodes.chunk_size(X) == 3


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
