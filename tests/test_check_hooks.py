"""The simulators' hooks for a student's piece (issue #22, item 2): keyword-only, and
without them the results are bit-identical; with the package's own piece they agree."""

import inspect

import numpy as np
import pytest
import torch

from dmlbook import allreduce, collectives, dpsgd, federated, gossip
from dmlbook.check import reference


@pytest.mark.parametrize("fn, hook", [(allreduce.train_data_parallel, "allreduce"),
                                      (federated.run_fedavg, "aggregate"),
                                      (gossip.gossip_learning, "merge"),
                                      (gossip.gossip_average, "handlers"),
                                      (dpsgd.run_dpsgd, "round_fn")])
def test_hooks_are_keyword_only_and_default_to_none(fn, hook):
    parameter = inspect.signature(fn).parameters[hook]
    assert parameter.kind is inspect.Parameter.KEYWORD_ONLY and parameter.default is None


def test_train_data_parallel_with_its_own_ring_passed_is_bit_identical():
    kw = dict(n_workers=3, rounds=2, lr=0.2, batch_size=8, model="logreg", progress=False)
    plain = allreduce.train_data_parallel("ring", **kw)
    hooked = allreduce.train_data_parallel("ring", allreduce=collectives.ring_allreduce, **kw)
    assert all(torch.equal(a, b) for a, b in zip(plain.params, hooked.params))
    assert plain.ledger.totals() == hooked.ledger.totals()
    with pytest.raises(ValueError, match="allreduce"):
        allreduce.train_data_parallel("naive", allreduce=collectives.ring_allreduce, **kw)


def test_run_fedavg_with_the_plain_mean_passed_is_bit_identical():
    kw = dict(n_clients=3, rounds=2, local_steps=1, model="logreg", progress=False)
    for send in ("update", "parameters"):
        plain = federated.run_fedavg(send=send, **kw)

        def mean(server, payloads, n_examples, send=send):
            return server + payloads.mean(0) if send == "update" else payloads.mean(0)

        hooked = federated.run_fedavg(send=send, aggregate=mean, **kw)
        assert torch.equal(plain.server, hooked.server) and plain.test_loss == hooked.test_loss
    weighted = federated.run_fedavg(send="parameters", split="dirichlet", **kw, aggregate=(
        lambda s, p, n: reference.server_step(s, p, n, "parameters")))
    unweighted = federated.run_fedavg(send="parameters", split="dirichlet", **kw)
    assert not torch.equal(weighted.server, unweighted.server)  # the weights matter
    with pytest.raises(ValueError, match="aggregate"):
        federated.run_fedavg(aggregate=42, **kw)


def test_gossip_learning_with_the_sheets_merge_passed_is_bit_identical():
    kw = dict(n_nodes=6, model="logreg", until=3.0, delay=0.5, eval_every=3.0, progress=False)
    plain = gossip.gossip_learning(**kw)
    hooked = gossip.gossip_learning(merge=gossip.aggregate, **kw)
    assert torch.equal(plain.params, hooked.params)
    keep = gossip.gossip_learning(merge=lambda own, received: own, **kw)
    assert not torch.equal(plain.params, keep.params)


def test_gossip_average_with_the_reference_handlers_keeps_the_sum():
    values = np.arange(20.0)
    kw = dict(cycles=8, delay=0.4, seed=1)
    plain = gossip.gossip_average(values, **kw)
    hooked = gossip.gossip_average(values, handlers=(reference.on_push, reference.on_reply), **kw)
    assert np.allclose(plain.values, hooked.values, rtol=0, atol=1e-12)
    assert hooked.values.sum() == pytest.approx(values.sum(), abs=1e-9)
    with pytest.raises(ValueError, match="handlers"):
        gossip.gossip_average(values, protocol="push", handlers=(reference.on_push,
                                                                 reference.on_reply))


def test_run_dpsgd_with_the_reference_round_agrees():
    kw = dict(n_nodes=6, topology="ring", rounds=3, lr=0.1, model="logreg", eval_every=3,
              progress=False)
    plain = dpsgd.run_dpsgd(**kw)
    hooked = dpsgd.run_dpsgd(round_fn=reference.dpsgd_round, **kw)
    assert torch.allclose(plain.nodes.params, hooked.nodes.params, atol=1e-6)
    assert plain.ledger.totals() == hooked.ledger.totals()
    assert plain.history.train_loss[0].tolist() == hooked.history.train_loss[0].tolist()
    with pytest.raises(ValueError, match="round_fn"):
        dpsgd.run_dpsgd(round_fn=reference.dpsgd_round, local_steps=2, **kw)
