"""What a step costs (models.forward_macs, step_cost, check_training_work).

A node-step counts once towards MAX_NODE_STEPS (and MAX_GOSSIP_STEPS) per started
MACS_PER_NODE_STEP multiply-accumulates of its forward pass on its batch, so that a run
of a large model, or on large batches, at the bound takes about as long as one of the
digits MLP (units.py). Each simulator refuses, after building its model, a run whose
counted steps pass the bound.
"""

import re

import pytest
import torch
from torch import nn

from dmlbook import allreduce, centralized, dpsgd, federated, gossip
from dmlbook.models import (LeNet, check_training_work, forward_macs, logistic_regression, mlp,
                            small_cnn, step_cost)
from dmlbook.units import MACS_PER_NODE_STEP, MAX_GOSSIP_STEPS, MAX_NODE_STEPS


def test_forward_macs_of_the_books_models_by_hand():
    digits = torch.zeros(2, 64)
    assert forward_macs(logistic_regression(), digits) == 64 * 10
    assert forward_macs(mlp(), digits) == 64 * 32 + 32 * 10
    # small_cnn: a 3x3 convolution of 1 to 8 channels at 8x8 positions, then 128 -> 10.
    assert forward_macs(small_cnn(), digits) == 8 * 8 * 8 * 9 + 128 * 10
    lenet = LeNet()
    images = torch.zeros(3, 3, 32, 32)
    # Three 5x5 convolutions at 32x32, 15x15 and 7x7 (pools in between), then 576 -> 10.
    assert forward_macs(lenet, images) == (32 * 32 * 32 * 3 * 25 + 15 * 15 * 32 * 32 * 25
                                           + 7 * 7 * 64 * 32 * 25 + 576 * 10) == 10_732_160
    assert forward_macs(lenet, images) == forward_macs(lenet, images[:1])  # per example


def test_a_product_written_in_forward_counts_nothing_and_a_step_counts_at_least_one():
    class Raw(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(64, 10))

        def forward(self, x):
            return x @ self.w

    assert forward_macs(Raw(), torch.zeros(2, 64)) == 0
    assert step_cost(0, 32) == 1


def test_grouped_and_1d_convolutions_count_their_own_products():
    grouped = nn.Sequential(nn.Unflatten(1, (4, 16)), nn.Conv1d(4, 8, 3, groups=2))
    # 8 channels x 14 positions, each over 2 input channels of the group x 3 taps.
    assert forward_macs(grouped, torch.zeros(2, 64)) == 8 * 14 * 2 * 3


def test_a_step_counts_once_per_started_mebi_multiply_accumulates():
    assert MACS_PER_NODE_STEP == 2**20
    assert step_cost(2368, 32) == 1
    assert step_cost(2368, 442) == 1  # 1,046,656
    assert step_cost(2368, 443) == 2  # 1,049,024
    assert step_cost(1, MACS_PER_NODE_STEP) == 1
    assert step_cost(1, MACS_PER_NODE_STEP + 1) == 2
    assert step_cost(forward_macs(LeNet(), torch.zeros(2, 3, 32, 32)), 32) == 328


def test_the_bound_holds_at_the_bound_and_refuses_one_more():
    X = torch.zeros(2, 64)
    cost = step_cost(2368, 4096)
    assert cost == 10
    assert check_training_work("rounds", MAX_NODE_STEPS // cost, mlp(), X, 4096, "steps") == 10
    with pytest.raises(ValueError, match=re.escape(
            f"rounds must keep steps x 10 (MAX_NODE_STEPS; a step of this model on 4,096 "
            f"examples is 9,699,328 multiply-accumulates and counts as 10 node-steps, one "
            f"per started 1,048,576) <= 10,000,000, got 10,000,010")):
        check_training_work("rounds", MAX_NODE_STEPS // cost + 1, mlp(), X, 4096, "steps")
    with pytest.raises(ValueError, match=r"^until must keep n x 10 \(MAX_GOSSIP_STEPS; "):
        check_training_work("until", MAX_GOSSIP_STEPS // 10 + 1, mlp(), X, 4096, "n",
                            maximum=MAX_GOSSIP_STEPS, bound="MAX_GOSSIP_STEPS")


def test_counting_leaves_the_model_and_the_random_state_as_they_were():
    model = mlp()
    before = [p.clone() for p in model.parameters()]
    X = torch.randn(2, 64)
    state = torch.random.get_rng_state()
    forward_macs(model, X)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert not model._forward_hooks and all(not m._forward_hooks for m in model.modules())


# Each simulator: a run of the MLP on large batches that MAX_NODE_STEPS alone admits,
# refused because each of its steps counts as 10 (batch 4,096) or 148 (65,536).
REFUSED = [
    (lambda: dpsgd.run_dpsgd(n_nodes=100, topology="ring", rounds=10_001, batch_size=4096,
                             eval_every=10_001, progress=False),
     "rounds", "n_nodes x rounds x local_steps x 10 (MAX_NODE_STEPS"),
    (lambda: federated.run_fedavg(n_clients=100, rounds=10_001, local_steps=1,
                                  batch_size=4096, progress=False),
     "rounds", "cohort x rounds x local_steps x 10 (MAX_NODE_STEPS"),
    (lambda: federated.run_fedavg(n_clients=11, rounds=100_000, local_epochs=1,
                                  batch_size=4096, progress=False),
     "local_epochs", "cohort x rounds x local_epochs x batches per pass x 10 (MAX_NODE_STEPS"),
    (lambda: federated.run_decentralized_exchange(n_nodes=16, rounds=5_000, batch_size=65_536,
                                                  progress=False),
     "rounds", "n_nodes x rounds x 148 (MAX_NODE_STEPS"),
    (lambda: allreduce.train_data_parallel("ps", n_workers=100, rounds=10_001,
                                           batch_size=4096, progress=False),
     "rounds", "n_workers x rounds x 10 (MAX_NODE_STEPS"),
    (lambda: gossip.gossip_learning(n_nodes=100, until=2_500, batch_size=4096,
                                    eval_every=2_500, progress=False),
     "until", "n_nodes x until / delta x 10 (MAX_GOSSIP_STEPS"),
    (lambda: centralized.train_centralized(steps=70_000, batch_size=65_536),
     "steps", "steps x 148 (MAX_NODE_STEPS"),
]


@pytest.mark.parametrize("run, name, what", REFUSED, ids=[
    "dpsgd", "fedavg", "fedavg-epochs", "exchange", "data-parallel", "gossip", "centralized"])
def test_each_simulator_counts_a_steps_cost(run, name, what, monkeypatch):
    # Were the check missing, the run would start (and take hours): its first step
    # after the checks raises instead.
    def started(*args, **kwargs):
        raise RuntimeError("the run started")

    for module in (dpsgd, federated, allreduce, gossip):
        monkeypatch.setattr(module, "Nodes", started)
    monkeypatch.setattr(centralized, "CentralizedResult", started)
    with pytest.raises(ValueError, match="^" + re.escape(f"{name} must keep {what}")):
        run()
