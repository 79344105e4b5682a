"""train_data_parallel's contract, one test per behaviour that `make mutants` found unguarded.

From a partial mutation run of allreduce.py (benchmarks/README.md, "Mutation
testing"): the exact refusal of each argument, zero accepted where a count
of rounds may be zero, the signature's defaults and the result's ``final``.
"""

import inspect
import re

import pytest
import torch

from dmlbook import allreduce
from dmlbook.allreduce import train_data_parallel
from dmlbook.faults import Faults


@pytest.mark.parametrize("kwargs, message", [
    (dict(scheme="tree"), "scheme must be one of 'ps', 'naive', 'ring', got 'tree'"),
    (dict(n_workers=0), "n_workers must be a whole number >= 1 and <= 4,096, got 0"),
    (dict(rounds=0), "rounds must be a whole number >= 1 and <= 100,000, got 0"),
    (dict(n_workers=4096, rounds=2442),
     "rounds must keep n_workers x rounds (MAX_NODE_STEPS) <= 10,000,000, got 10,002,432"),
    (dict(lr=0), "lr must be a finite number > 0 and <= 1e+30, got 0"),
    (dict(detect_rounds=-1), "detect_rounds must be a whole number >= 0 and <= 100,000, got -1"),
    (dict(ring_rebuild_rounds=-1),
     "ring_rebuild_rounds must be a whole number >= 0 and <= 100,000, got -1"),
    (dict(failover_rounds=-1),
     "failover_rounds must be a whole number >= 0 and <= 100,000, got -1"),
    (dict(failover="yes"), "failover must be True or False, got 'yes'"),
    (dict(counts_only="yes"), "counts_only must be one of False, True, got 'yes'"),
    (dict(faults=Faults(straggler_prob=0.1)),
     "faults.straggler_prob must be 0 for train_data_parallel: a synchronous round only "
     "waits for a straggler, and this simulator counts rounds, not seconds (got 0.1)"),
])
def test_train_data_parallel_refuses_each_argument_by_name(monkeypatch, kwargs, message):
    monkeypatch.setattr(allreduce, "prepare", lambda *a, **k: pytest.fail("not refused up front"))
    kwargs = {"scheme": "ps", **kwargs}
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        train_data_parallel(kwargs.pop("scheme"), **kwargs)


def test_zero_waiting_rounds_are_accepted_and_final_is_the_last_model():
    run = train_data_parallel("ring", n_workers=3, rounds=2, detect_rounds=0,
                              ring_rebuild_rounds=0, failover_rounds=0, progress=False)
    assert run.rounds == [0, 1, 2] and run.stopped is None
    assert torch.equal(run.final, run.params[-1]) and not torch.equal(run.final, run.params[-2])


def test_train_data_parallel_defaults():
    defaults = {name: p.default for name, p in
                inspect.signature(train_data_parallel).parameters.items() if name != "scheme"}
    assert defaults == dict(
        n_workers=4, rounds=20, lr=0.1, batch_size=32, model="mlp", dataset=None, split="iid",
        faults=None, detect_rounds=0, ring_rebuild_rounds=3, failover=False, failover_rounds=1,
        seed=0, device="cpu", progress=None, allreduce=None, counts_only=False)


def test_failover_waits_failover_rounds_after_the_crash():
    """Crash at round 4, 3 rounds of waiting (4, 5, 6): worker 0 serves from round 7."""
    from dmlbook.faults import Faults
    res = train_data_parallel("ps", n_workers=4, rounds=9, failover=True, failover_rounds=3,
                              faults=Faults(crash_at={4: 4}), progress=False)
    assert res.failover_round == 7
    assert res.updated[4:] == [False, False, False, True, True, True]


def test_divergence_names_the_workers_models():
    with pytest.raises(ValueError, match=r"^diverged at round 2; try a smaller lr "
                                         r"\(the workers' models: no longer finite\)$"):
        train_data_parallel("ps", n_workers=3, rounds=3, lr=1e29, progress=False)


def test_a_ring_takes_the_allreduce_it_is_given():
    from dmlbook.collectives import ring_allreduce
    calls = []

    def spy(*args, **kw):
        calls.append(1)
        return ring_allreduce(*args, **kw)

    given = train_data_parallel("ring", n_workers=3, rounds=2, allreduce=spy, progress=False)
    default = train_data_parallel("ring", n_workers=3, rounds=2, progress=False)
    assert len(calls) == 2 and torch.equal(given.params[-1], default.params[-1])
    with pytest.raises(ValueError, match=r"^allreduce must be None, or a function with "
                                         r"scheme='ring' and no faults$"):
        train_data_parallel("ring", n_workers=3, rounds=2, allreduce="ring", progress=False)


def test_max_parameter_difference_refuses_runs_of_other_lengths():
    short = train_data_parallel("ps", n_workers=2, rounds=1, progress=False)
    longer = train_data_parallel("ps", n_workers=2, rounds=2, progress=False)
    assert allreduce.max_parameter_difference(longer, longer).tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match=r"^results must be one or more DataParallelResult "
                                         r"of equally many rounds$"):
        allreduce.max_parameter_difference(short, longer)
    for bad in [(), ("ps",), (short, 3)]:  # nothing, or not a run
        with pytest.raises(ValueError, match=r"^results must be one or more"):
            allreduce.max_parameter_difference(*bad)


def test_setup_summary_describes_the_runs_seed_0_by_default():
    """The ex3 chapter describes its seed-0 runs with setup_summary(n) (200 workers: the
    classes each worker holds depend on the seed)."""
    assert allreduce.setup_summary(200) == allreduce.setup_summary(200, seed=0)
    assert allreduce.setup_summary(200) != allreduce.setup_summary(200, seed=1)


def test_traffic_per_round_refuses_a_run_without_rounds():
    with pytest.raises(ValueError, match=r"^result must be a DataParallelResult of at least "
                                         r"one round$"):
        allreduce.traffic_per_round("ps")


@pytest.mark.parametrize("length, shown", [(78, "'" + "x" * 78 + "'"),  # 80 characters: whole
                                           (79, "'" + "x" * 59 + "... (str)")])
def test_worker_counts_refusal_shows_a_long_value_shortened(length, shown):
    with pytest.raises(ValueError) as refused:
        allreduce.traffic_vs_workers("x" * length)
    assert str(refused.value) == ("worker_counts must be a sequence of 1 to 64 worker counts "
                                  f"(MAX_WORKER_COUNTS), got {shown}")


def test_sweeps_signature_defaults():
    """The API page shows these defaults (the ex3 chapter passes its own counts)."""
    def defaults(fn):
        return {name: p.default for name, p in inspect.signature(fn).parameters.items()}
    assert defaults(allreduce.traffic_vs_workers)["worker_counts"] == (2, 4, 8, 16, 32)
    profile = defaults(allreduce.compute_profile)
    assert profile["worker_counts"] == (2, 8, 32, 128, 512) and profile["batch_size"] == 32


def test_a_worker_crashed_in_round_1_is_waited_for_detect_rounds_rounds():
    # Waiting starts at zero: rounds 1 and 2 wait for worker 0, round 3 leaves it out.
    res = train_data_parallel("naive", n_workers=4, rounds=4, detect_rounds=2,
                              faults=Faults(crash_at={0: 1}), progress=False)
    assert res.updated[1:] == [False, False, True, True]


def test_setup_summary_keys_and_compute_profiles_repeats_refusal():
    assert list(allreduce.setup_summary(4)) == [
        "model", "n_params", "train", "test", "examples_min", "examples_max",
        "classes_min", "classes_max"]
    with pytest.raises(ValueError, match=r"^repeats must be at most 100, got 101$"):
        allreduce.compute_profile((2,), repeats=101)


def test_results_made_without_a_ledger_get_an_empty_one():
    from dmlbook.federated import FLResult
    from dmlbook.ledger import Ledger

    for result in (allreduce.DataParallelResult("ps", 2), FLResult()):
        assert isinstance(result.ledger, Ledger) and result.ledger.totals().sent == 0
    assert allreduce.DataParallelResult("ps", 2).ledger is not \
        allreduce.DataParallelResult("ps", 2).ledger


def test_traffic_vs_workers_runs_show_no_bars_of_their_own(monkeypatch):
    shown = []
    real = allreduce.progress_bar

    def spy(total, enabled, desc):
        shown.append(enabled)
        return real(total, enabled, desc)

    monkeypatch.setattr(allreduce, "progress_bar", spy)
    allreduce.traffic_vs_workers((2,), rounds=1)
    assert shown and set(shown) == {False}


def test_setup_summary_names_the_model_by_its_name_or_its_class():
    from dmlbook.models import mlp

    assert allreduce.setup_summary(4)["model"] == "mlp"
    assert allreduce.setup_summary(4, model=mlp())["model"] == "Sequential"


def test_compute_profile_times_only_the_average_and_the_step(monkeypatch):
    # The server's aggregate is timed on gradients already stacked: building the
    # k x P stack is not the server's work.
    timed = []
    monkeypatch.setattr(allreduce, "_median_seconds", lambda fn, repeats: timed.append(fn) or 1.0)
    allreduce.compute_profile(worker_counts=(2, 8), repeats=1)
    assert len(timed) == 3  # one gradient, then one aggregate per worker count
    for aggregate in timed[1:]:
        with torch.profiler.profile() as prof:
            aggregate()
        ops = {event.name for event in prof.events()}
        assert "aten::mean" in ops
        assert not ops & {"aten::expand", "aten::contiguous", "aten::clone"}, ops


def test_a_rebuilt_ring_averages_over_its_live_members():
    # Worker 3 crashes in round 2; the ring is rebuilt at once and the naive
    # all-reduce leaves it out at once: both average the three live gradients.
    faults = Faults(crash_at={3: 2})
    kw = dict(n_workers=4, rounds=4, faults=faults, progress=False)
    ring = train_data_parallel("ring", ring_rebuild_rounds=0, **kw)
    naive = train_data_parallel("naive", detect_rounds=0, **kw)
    assert allreduce.max_parameter_difference(ring, naive).max() < 1e-6


def test_a_new_server_starts_from_its_own_copy_of_the_model(monkeypatch):
    # At failover the worker that takes over keeps the model it last received (a
    # lost reply leaves it behind the dead server's) and applies the round's
    # arrived gradients to it: its own among them.
    starts, grads = [], []

    class Spy(allreduce.Nodes):
        def gradients(self, X, y):  # called once a round, at its start
            starts.append(self.params.clone())
            grads.append(super().gradients(X, y).clone())
            return grads[-1]

    monkeypatch.setattr(allreduce, "Nodes", Spy)
    faults = Faults(crash_at={4: 2}, drop_prob=0.5, seed=0)
    run = train_data_parallel("ps", n_workers=4, rounds=3, failover=True, failover_rounds=1,
                              faults=faults, lr=0.1, progress=False)
    r, server = run.failover_round, run.server
    assert (r, server) == (3, 0)
    c = run.ledger.columns()
    up = (c["round"] == r) & (c["receiver"] == server) & c["delivered"]
    arrived = sorted(c["sender"][up].tolist() + [server])
    own_copy = starts[r - 1][server]
    assert not torch.allclose(own_copy, run.params[r - 1])  # behind the dead server's
    assert torch.allclose(run.params[r], own_copy - 0.1 * grads[r - 1][arrived].mean(0))


def test_the_reported_model_is_a_live_workers():
    # Worker 0 crashes in round 3 and is still waited for (detect_rounds=1): the
    # model reported is the first live member's, not the crashed one's frozen copy.
    run = train_data_parallel("naive", n_workers=4, rounds=3, detect_rounds=1,
                              faults=Faults(crash_at={0: 3}, drop_prob=0.3, seed=0),
                              progress=False)
    assert torch.equal(run.params[-1], run.worker_params[1])
    assert not torch.equal(run.params[-1], run.worker_params[0])


def test_traffic_names_the_server_that_took_over():
    run = train_data_parallel("ps", n_workers=4, rounds=4, faults=Faults(crash_at={4: 2}),
                              failover=True, failover_rounds=0, progress=False)
    assert run.server == 0
    per_node = run.ledger.per_node("sent", nbytes=True)
    rounds = len(run.rounds) - 1
    assert allreduce.traffic_per_round(run)["server"] == per_node[0] / rounds


def test_max_parameter_difference_is_the_largest_entry():
    a = allreduce.DataParallelResult("ps", 2, params=[torch.tensor([0.0, 0.0]),
                                                      torch.tensor([1.0, 2.0])])
    b = allreduce.DataParallelResult("ps", 2, params=[torch.tensor([0.5, 0.0]),
                                                      torch.tensor([1.0, -1.0])])
    assert allreduce.max_parameter_difference(a, b).tolist() == [0.5, 3.0]


def test_traffic_per_round_refuses_a_run_that_trained_no_round():
    """Every worker crashed in round 1: the run holds round 0 only, and no round's traffic."""
    from dmlbook.faults import Faults

    run = allreduce.train_data_parallel("ps", n_workers=2, rounds=2, progress=False,
                                        faults=Faults(crash_at={0: 1, 1: 1}))
    assert run.rounds == [0] and run.stopped
    with pytest.raises(ValueError, match="^result must be a DataParallelResult of at least "
                                         "one round$"):
        allreduce.traffic_per_round(run)
