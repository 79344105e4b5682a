"""What an evaluation costs (models.evaluation_cost, check_evaluation_work).

A node's evaluation on the test set counts once towards MAX_NODE_EVALS (and
MAX_GOSSIP_NODE_EVALS) per started MACS_PER_NODE_EVAL multiply-accumulates of its
forward pass over the whole set, so that a run of a large model, or on a large test
set, evaluated at the bound takes about as long as one of the digits MLP (units.py).
Each simulator that takes a caller's data set refuses, after building its model, a
run whose counted evaluations pass the bound. (run_decentralized_exchange takes only
the book's digits models on the digits, each evaluation counting one.)
"""

import re

import pytest
import torch

from dmlbook import allreduce, centralized, dpsgd, federated, gossip
from dmlbook.data import Dataset, load_digits
from dmlbook.models import (LeNet, check_evaluation_work, evaluation_cost, forward_macs, mlp,
                            small_cnn)
from dmlbook.units import MACS_PER_NODE_EVAL, MAX_GOSSIP_NODE_EVALS, MAX_NODE_EVALS

MLP_MACS = 64 * 32 + 32 * 10  # per example


def test_an_evaluation_counts_once_per_started_2_25_multiply_accumulates():
    assert MACS_PER_NODE_EVAL == 2**25
    digits = load_digits()
    assert len(digits.y_test) == 359
    assert evaluation_cost(forward_macs(mlp(), digits.X_test[:2]), 359) == 1
    assert evaluation_cost(forward_macs(small_cnn(), digits.X_test[:2]), 359) == 1
    assert evaluation_cost(MLP_MACS, 14_169) == 1  # 33,552,192
    assert evaluation_cost(MLP_MACS, 14_170) == 2  # 33,554,560
    assert evaluation_cost(1, MACS_PER_NODE_EVAL) == 1
    assert evaluation_cost(1, MACS_PER_NODE_EVAL + 1) == 2
    assert evaluation_cost(0, 359) == 1
    # The sheet's LeNet on 200 CIFAR-shaped images: 2,146,432,000, 64 evaluations.
    assert evaluation_cost(forward_macs(LeNet(), torch.zeros(2, 3, 32, 32)), 200) == 64


def test_the_bound_holds_at_the_bound_and_refuses_one_more():
    X = torch.zeros(30_000, 64)  # 71,040,000 multiply-accumulates: 3 evaluations
    assert check_evaluation_work("eval_every", MAX_NODE_EVALS // 3, mlp(), X, "evals") == 3
    with pytest.raises(ValueError, match="^" + re.escape(
            "eval_every must keep evals x 3 (MAX_NODE_EVALS; an evaluation of this model "
            "on the 30,000 test examples is 71,040,000 multiply-accumulates and counts as 3 "
            "evaluations, one per started 33,554,432) <= 100,000, got 100,002") + "$"):
        check_evaluation_work("eval_every", MAX_NODE_EVALS // 3 + 1, mlp(), X, "evals")
    two = torch.zeros(14_170, 64)  # the smallest test set on which the MLP counts 2
    assert check_evaluation_work("rounds", MAX_NODE_EVALS // 2, mlp(), two, "evals") == 2
    with pytest.raises(ValueError, match=r"^rounds must keep evals x 2 .* got 100,002$"):
        check_evaluation_work("rounds", MAX_NODE_EVALS // 2 + 1, mlp(), two, "evals")
    with pytest.raises(ValueError, match=r"^until must keep n x 3 \(MAX_GOSSIP_NODE_EVALS; "):
        check_evaluation_work("until", MAX_GOSSIP_NODE_EVALS // 3 + 1, mlp(), X, "n",
                              maximum=MAX_GOSSIP_NODE_EVALS, bound="MAX_GOSSIP_NODE_EVALS")


def test_an_evaluation_that_counts_one_is_left_to_the_callers_count_checks():
    # Each simulator bounds its evaluations (or rounds) before building the model.
    X = torch.zeros(359, 64)
    assert check_evaluation_work("rounds", MAX_NODE_EVALS + 1, mlp(), X, "evals") == 1


def big_test_set():
    """The digits' training set with a test set of 30,000 (zero) images: each of
    the MLP's evaluations on it counts 3."""
    digits = load_digits()
    return Dataset(digits.X_train, digits.y_train, torch.zeros(30_000, 64),
                   torch.zeros(30_000, dtype=torch.long), num_classes=10)


# Each simulator: a run of the MLP whose evaluations the count checks alone admit
# (and whose steps fit MAX_NODE_STEPS), refused because each evaluation counts 3.
REFUSED = [
    (lambda d: dpsgd.run_dpsgd(n_nodes=100, topology="ring", rounds=500, eval_every=1,
                               dataset=d, progress=False),
     "eval_every", "(n_nodes + 1) x evaluations (eval_every=1) x 3 (MAX_NODE_EVALS", 151_803),
    (lambda d: federated.run_fedavg(n_clients=2, rounds=40_000, local_steps=1, dataset=d,
                                    progress=False),
     "rounds", "rounds + 1 evaluations of the server's model x 3 (MAX_NODE_EVALS", 120_003),
    (lambda d: allreduce.train_data_parallel("ps", n_workers=2, rounds=40_000, dataset=d,
                                             progress=False),
     "rounds", "rounds + 1 evaluations of the reported model x 3 (MAX_NODE_EVALS", 120_003),
    (lambda d: gossip.gossip_learning(n_nodes=100, until=500, eval_every=1, dataset=d,
                                      progress=False),
     "eval_every", "n_nodes x evaluations (eval_every=1) x 3 (MAX_GOSSIP_NODE_EVALS", 150_300),
    (lambda d: centralized.train_centralized(steps=50_000, eval_every=1, dataset=d),
     "eval_every", "evaluations (1 + steps / eval_every, rounded up) x 3 (MAX_NODE_EVALS",
     150_003),
]


@pytest.mark.parametrize("run, name, what, got", REFUSED, ids=[
    "dpsgd", "fedavg", "data-parallel", "gossip", "centralized"])
def test_each_simulator_counts_an_evaluations_cost(run, name, what, got, monkeypatch):
    # Were the check missing, the run would start (and take minutes): its first
    # step after the checks raises instead.
    def started(*args, **kwargs):
        raise RuntimeError("the run started")

    for module in (dpsgd, federated, allreduce, gossip):
        monkeypatch.setattr(module, "Nodes", started)
    monkeypatch.setattr(centralized, "CentralizedResult", started)
    with pytest.raises(ValueError, match="^" + re.escape(f"{name} must keep {what}")
                       + r".*" + re.escape(f"got {got:,}") + "$"):
        run(big_test_set())


def test_a_run_on_the_digits_is_not_refused_for_its_evaluations(monkeypatch):
    # The same runs on the digits' own 359 test images (each evaluation counts 1)
    # pass every check and start.
    def started(*args, **kwargs):
        raise RuntimeError("the run started")

    for module in (dpsgd, federated, allreduce, gossip):
        monkeypatch.setattr(module, "Nodes", started)
    monkeypatch.setattr(centralized, "CentralizedResult", started)
    for run, *_ in REFUSED:
        with pytest.raises(RuntimeError, match="the run started"):
            run(load_digits())
