"""run_dpsgd's contract, one test per behaviour that `make mutants` found unguarded.

The mutation run of dpsgd.py (benchmarks/README.md, "Mutation testing") left
these without a test: the exact refusal of each argument (its name and what it
accepts), the node-step product and its bound, and the defaults of the
signature, which the API reference shows as the documentation of each argument.
"""

import inspect
import time
import re

import numpy as np
import pytest

import dmlbook.dpsgd as dpsgd
from dmlbook.faults import Faults
from dmlbook.dpsgd import run_dpsgd


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_nodes=1), "n_nodes must be a whole number >= 2 and <= 4,096, got 1"),
    (dict(rounds=0), "rounds must be a whole number >= 1 and <= 100,000, got 0"),
    (dict(lr=-0.1), "lr must be a finite number > 0 and <= 1e+30, got -0.1"),
    (dict(local_steps=0), "local_steps must be a whole number >= 1 and <= 100,000, got 0"),
    (dict(n_nodes=1000, rounds=5001, local_steps=2),
     "rounds must keep n_nodes x rounds x local_steps (MAX_NODE_STEPS) <= 10,000,000, "
     "got 10,002,000"),
    (dict(eval_every=0), "eval_every must be a whole number >= 1 and <= 100,000, got 0"),
    (dict(final_allreduce="tree"),
     "final_allreduce must be one of None, 'naive', 'ring', got 'tree'"),
    (dict(n_nodes=999, rounds=100, eval_every=1),
     "eval_every must keep (n_nodes + 1) x evaluations <= 100,000 (MAX_NODE_EVALS), "
     "got 101,000 (eval_every=1)"),
    (dict(order="mix-then-step"),
     "order must be one of 'step-then-mix', 'mix-and-step', got 'mix-then-step'"),
    (dict(counts_only="yes"), "counts_only must be one of False, True, got 'yes'"),
    (dict(final_allreduce="ring", faults=Faults(drop_prob=0.1)),
     "final_allreduce must be None or 'naive' when faults are given (the ring all-reduce "
     "here models reliable nodes only)"),
])
def test_run_dpsgd_refuses_each_argument_by_name(monkeypatch, kwargs, message):
    monkeypatch.setattr(dpsgd, "prepare", lambda *a, **k: pytest.fail("not refused up front"))
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        run_dpsgd(**kwargs)


def test_run_dpsgd_accepts_two_nodes_and_the_node_step_bound(monkeypatch):
    run = run_dpsgd(n_nodes=2, topology="complete", rounds=1, progress=False)
    assert run.nodes.n == 2
    monkeypatch.setattr(dpsgd, "MAX_NODE_STEPS", 4 * 3 * 2)
    run = run_dpsgd(n_nodes=4, topology="ring", rounds=3, local_steps=2, progress=False)
    assert run.history.rounds[-1] == 3
    with pytest.raises(ValueError, match=r"got 32$"):
        run_dpsgd(n_nodes=4, topology="ring", rounds=4, local_steps=2)


def test_run_dpsgd_defaults():
    defaults = {name: p.default for name, p in inspect.signature(run_dpsgd).parameters.items()}
    assert defaults == dict(
        n_nodes=16, topology="regular", degree=None, rounds=50, lr=0.1, batch_size=32,
        local_steps=1, model="mlp", dataset=None, split="iid", alpha=0.5, shards_per_node=2,
        faults=None, final_allreduce=None, eval_every=1, seed=0, device="cpu", progress=None,
        order="step-then-mix", counts_only=False, round_fn=None)


@pytest.mark.parametrize("kwargs", [
    dict(round_fn="not a function"), dict(local_steps=2), dict(order="mix-and-step"),
    dict(faults=Faults(drop_prob=0.1)),
])
def test_round_fn_needs_one_local_step_the_sheets_order_and_no_faults(monkeypatch, kwargs):
    monkeypatch.setattr(dpsgd, "prepare", lambda *a, **k: pytest.fail("not refused up front"))
    kwargs = {"round_fn": lambda params, W, grads, lr: params, **kwargs}
    with pytest.raises(ValueError, match=r"^round_fn must be None, or a function with "
                                         r"local_steps=1, order='step-then-mix' and no faults$"):
        run_dpsgd(**kwargs)


def test_round_fn_runs_with_the_sheets_settings():
    seen = []

    def round_fn(params, W, grads, lr):
        seen.append(lr)
        return params - lr * grads

    run_dpsgd(n_nodes=4, topology="ring", rounds=2, lr=0.25, round_fn=round_fn, progress=False)
    assert seen == [0.25, 0.25]


def test_the_final_all_reduce_is_recorded_as_the_round_after_the_last():
    res = run_dpsgd(n_nodes=6, degree=2, rounds=3, final_allreduce="naive", eval_every=3,
                    progress=False)
    assert res.ledger.per_round().tolist() == [0, 12, 12, 12, 30]
    assert res.ledger.per_round(delivered_only=True).tolist() == [0, 12, 12, 12, 30]
    assert res.history.as_arrays()["round"].tolist() == [0, 3, 4]


def test_a_round_fn_runs_records_its_messages_as_delivered():
    res = run_dpsgd(n_nodes=6, topology="ring", rounds=2, model="logreg", eval_every=2,
                    progress=False, round_fn=lambda params, W, grads, lr: W @ (params - lr * grads))
    assert res.ledger.per_round(delivered_only=True).tolist() == [0, 12, 12]


def test_train_seconds_leave_out_every_evaluation(monkeypatch):
    # A clock that moves only while the nodes are evaluated, one second (of wall-clock
    # and CPU) an evaluation: the training time must leave out all five evaluations
    # after round 0 (0 s), not only the last (4 s), nor add them (10 s).
    from dmlbook.engine import History

    class Clock:
        now = 0.0

        def perf_counter(self):
            return self.now

        thread_time = perf_counter

    clock, real = Clock(), History.record

    def evaluation_taking_a_second(self, *args, **kwargs):
        clock.now += 1.0
        return real(self, *args, **kwargs)

    monkeypatch.setattr(dpsgd, "time", clock)
    monkeypatch.setattr(History, "record", evaluation_taking_a_second)
    res = run_dpsgd(n_nodes=4, topology="ring", rounds=5, model="logreg", eval_every=1,
                    progress=False)
    assert (res.history.train_seconds, res.history.train_cpu_seconds) == (0.0, 0.0)


def test_data_per_node_names_n_nodes_and_uses_the_runs_defaults():
    from dmlbook.dpsgd import data_per_node

    with pytest.raises(ValueError, match="^n_nodes must be a whole number >= 2"):
        data_per_node(1)
    assert data_per_node(8) == data_per_node(8, split="iid")
    assert data_per_node(8) != data_per_node(8, split="shards")
    assert data_per_node(8, split="shards") == data_per_node(8, split="shards",
                                                             shards_per_node=2, seed=0)
    assert data_per_node(8, split="shards") != data_per_node(8, split="shards",
                                                             shards_per_node=3)
    assert data_per_node(8, split="dirichlet") == data_per_node(8, split="dirichlet", seed=0)
    assert data_per_node(8, split="dirichlet") != data_per_node(8, split="dirichlet", seed=1)


def test_a_rounds_train_loss_is_at_the_model_it_starts_from():
    # With several local steps, round r's mini-batch loss is the first step's
    # (the model the round starts from), so it does not depend on local_steps.
    one = run_dpsgd(n_nodes=4, rounds=1, topology="ring", local_steps=1, progress=False)
    two = run_dpsgd(n_nodes=4, rounds=1, topology="ring", local_steps=2, progress=False)
    assert np.array_equal(one.history.train_loss[0], two.history.train_loss[0])
    assert not np.array_equal(one.history.test_loss[-1], two.history.test_loss[-1])


def test_train_seconds_leave_out_the_final_all_reduce(slow_down):
    slow_down(dpsgd, "naive_allreduce", 1.5)
    run = run_dpsgd(n_nodes=4, rounds=1, topology="ring", final_allreduce="naive",
                    progress=False)
    assert run.history.train_seconds < 1.5


def test_data_per_node_splits_with_the_seed_it_is_given():
    from dmlbook import data

    digits = data.load_digits(seed=3)
    parts = data.split(digits.y_train, 8, kind="dirichlet", seed=3)
    summary = dpsgd.data_per_node(8, split="dirichlet", seed=3)
    assert summary == data.summarize_split(digits.y_train.numpy(), parts)
    assert summary != dpsgd.data_per_node(8, split="dirichlet", seed=0)


def test_run_dpsgd_draws_its_graph_with_the_runs_seed():
    from dmlbook.topology import resolve_topology

    run = run_dpsgd(n_nodes=8, degree=3, rounds=1, seed=1, progress=False)
    graph = resolve_topology("regular", 8, degree=3, seed=1)
    assert np.array_equal(run.topology.W, graph.W)
    assert not np.array_equal(run.topology.W, resolve_topology("regular", 8, degree=3, seed=0).W)


def test_shards_per_node_reaches_the_split():
    kw = dict(n_nodes=4, rounds=2, topology="ring", split="shards", progress=False)
    one = run_dpsgd(shards_per_node=1, **kw)
    four = run_dpsgd(shards_per_node=4, **kw)
    assert not np.array_equal(one.history.train_loss[0], four.history.train_loss[0])


def test_train_cpu_seconds_leave_out_the_evaluations_cpu_not_their_wall_clock(slow_down):
    # An evaluation that waits (wall-clock, no CPU) must not be subtracted from
    # the CPU seconds: they would go negative.
    from dmlbook import engine

    slow_down(engine.History, "record", 0.2)
    run = run_dpsgd(n_nodes=4, rounds=2, topology="ring", progress=False)
    assert 0 <= run.history.train_cpu_seconds


def test_messages_counts_what_was_sent_lost_or_not():
    from dmlbook.faults import Faults

    run = run_dpsgd(n_nodes=6, rounds=3, topology="ring", progress=False,
                    faults=Faults(drop_prob=0.3, seed=1))
    totals = run.ledger.totals()
    assert run.messages == totals.sent == 3 * 6 * 2  # a ring: two neighbours each
    assert totals.delivered < totals.sent
