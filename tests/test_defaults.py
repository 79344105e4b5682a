"""The public functions' defaults: a call that leaves an argument out gets the value
the docstrings, the chapters and the lecturers' page assume. A changed default
changes what a student's plain call computes, so it must be a deliberate change
here too. (run_dpsgd's are pinned in test_dpsgd_contract.py.)"""

import inspect

import pytest

from dmlbook import allreduce, centralized, dpsgd, federated, gossip

DEFAULTS = {
    gossip.gossip_average: dict(
        cycles=20, delta=1.0, jitter=0.1, delay=0.0, drop_prob=0.0, sampling="uniform",
        seed=0, protocol="push-pull", handlers=None),
    gossip.gossip_learning: dict(
        n_nodes=128, model="mlp", dataset=None, split="iid", until=30.0, delta=1.0,
        jitter=0.1, sgd_time=0.0, delay=0.0, drop_prob=0.0, sampling="uniform", lr=0.1,
        batch_size=8, eval_every=1.0, seed=0, progress=None, batch_steps=True, merge=None),
    gossip.centralized_baseline: dict(model="mlp", dataset=None, lr=0.1, batch_size=8, seed=0),
    gossip.variance_factor_per_cycle: dict(cycles=10),
    federated.run_fedavg: dict(
        n_clients=10, rounds=30, local_steps=5, lr=0.1, batch_size=32, send="update",
        method="none", level=None, model="mlp", dataset=None, split="iid", sample_round=None,
        seed=0, progress=None, aggregate=None, device="cpu", cohort_size=None,
        local_epochs=None),
    federated.run_decentralized_exchange: dict(
        send="parameters", n_nodes=16, topology="regular", degree=None, rounds=40, lr=0.1,
        batch_size=32, model="mlp", split="iid", init="own", seed=0, progress=None),
    allreduce.train_data_parallel: dict(
        n_workers=4, rounds=20, lr=0.1, batch_size=32, model="mlp", dataset=None,
        split="iid", faults=None, detect_rounds=0, ring_rebuild_rounds=3, failover=False,
        failover_rounds=1, seed=0, device="cpu", progress=None, allreduce=None,
        counts_only=False),
    allreduce.traffic_vs_workers: dict(worker_counts=(2, 4, 8, 16, 32), rounds=2, seed=0),
    allreduce.setup_summary: dict(model="mlp", split="iid", seed=0),
    allreduce.traffic_per_round: dict(what="sent"),
    centralized.train_centralized: dict(
        model="mlp", dataset=None, steps=2000, lr=0.1, batch_size=32, eval_every=100, seed=0),
    dpsgd.data_per_node: dict(split="iid", seed=0, dataset=None, alpha=0.5,
                              shards_per_node=2),
}


@pytest.mark.parametrize("function", DEFAULTS, ids=lambda f: f.__name__)
def test_defaults(function):
    found = {name: p.default for name, p in inspect.signature(function).parameters.items()
             if p.default is not inspect.Parameter.empty}
    assert found == DEFAULTS[function]


def test_an_unfinished_gossip_learning_result_has_no_models_yet():
    result = gossip.GossipLearningResult()
    assert result.params is None and result.steps is None


def test_a_short_runs_baseline_is_evaluated_after_every_step():
    """Fewer than 40 steps: every step (eval_every = max(1, steps // 20) = 1)."""
    run = gossip.gossip_learning(n_nodes=2, until=5, progress=False)
    steps = int(run.steps.sum())
    assert 2 <= steps < 40
    baseline = gossip.centralized_baseline(run)
    assert baseline.steps == list(range(steps + 1))


def test_variance_factor_names_cycles_when_it_refuses_them():
    result = gossip.gossip_average([0.0, 1.0, 5.0], cycles=4)
    with pytest.raises(ValueError, match=r"^cycles must"):
        gossip.variance_factor_per_cycle(result, cycles=0)


def test_received_per_cycle_names_cycles_when_it_refuses_them():
    result = gossip.gossip_average([0.0, 1.0, 5.0], cycles=4)
    with pytest.raises(ValueError, match=r"^cycles must"):
        gossip.received_per_cycle(result.ledger, 3, cycles=-1)
