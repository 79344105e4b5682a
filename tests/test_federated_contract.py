"""federated.py's contract, one test per behaviour that `make mutants` found unguarded.

From the first 36 mutants of a partial mutation run (benchmarks/README.md,
"Mutation testing"): FedSGD's two payloads computed as documented, its
refusals by name, and the cohorts' stream kept apart from every run's seed.
"""

import inspect
import re

import numpy as np
import pytest
import torch

from dmlbook import data, federated
from dmlbook.engine import NodeData, Nodes, seeded_generator
from dmlbook.models import make_model
from dmlbook.units import MAX_ROUNDS, MAX_SEED


def _setup():
    d = data.load_digits(seed=0)
    nodes = Nodes(make_model("mlp", seed=0), 4)
    batches = NodeData(d.X_train, d.y_train, data.split(d.y_train, 4, seed=0))
    X, y = batches.batch(seeded_generator(0), 8)
    return nodes.params[0].clone(), nodes, X, y


def test_fedsgd_round_computes_each_payload_as_documented():
    server, nodes, X, y = _setup()
    grads = Nodes(make_model("mlp", seed=0), 4).gradients(X, y)
    by_gradients = federated.fedsgd_round(server, nodes, X, y, lr=0.5)  # the default
    assert torch.equal(by_gradients, server - 0.5 * grads.mean(0))
    by_parameters = federated.fedsgd_round(server, nodes, X, y, lr=0.5, send="parameters")
    assert torch.equal(by_parameters, (server.expand(4, -1) - 0.5 * grads).mean(0))


def test_fedsgd_round_refusals_name_the_argument():
    server, nodes, X, y = _setup()
    with pytest.raises(ValueError, match=r"^send must be one of 'gradients', 'parameters', "
                                         r"got 'updates'$"):
        federated.fedsgd_round(server, nodes, X, y, lr=0.5, send="updates")
    with pytest.raises(ValueError, match=r"^lr must be a finite number > 0 and <= 1e\+30, got 0$"):
        federated.fedsgd_round(server, nodes, X, y, lr=0)
    message = (r"^server must be a tensor of one model's parameters and nodes a "
               r"dmlbook.engine.Nodes of that model$")
    for bad_server, bad_nodes in ((server, "nodes"), (server[:-1], nodes), ([1.0], nodes)):
        with pytest.raises(ValueError, match=message):
            federated.fedsgd_round(bad_server, bad_nodes, X, y, lr=0.5)


def test_the_cohort_stream_is_not_the_batch_stream():
    # It was torch's generator seeded 2**40 + seed, which keeps the low 32 bits:
    # the batch stream itself, so every first cohort was the batches' first draw.
    n, k = 20, 5
    for seed in (0, 1, 7, MAX_SEED):
        batches = seeded_generator(seed)
        same_draw = sorted(torch.randperm(n, generator=batches)[:k].tolist())
        assert federated.draw_cohort(federated.cohort_stream(seed), n, k).tolist() != same_draw
    assert federated.COHORT_STREAM == 3
    assert (federated.cohort_stream(5).random() ==
            np.random.default_rng([5, federated.COHORT_STREAM]).random())


def test_a_cohort_is_distinct_sorted_clients_every_set_equally_likely():
    stream = federated.cohort_stream(0)
    counts = {}
    for _ in range(6000):
        cohort = federated.draw_cohort(stream, 4, 2)
        assert cohort.dtype == torch.int64 and cohort[0] < cohort[1]
        counts[tuple(cohort.tolist())] = counts.get(tuple(cohort.tolist()), 0) + 1
    assert len(counts) == 6 and all(900 < c < 1100 for c in counts.values())  # 1,000 each


def _initial_models(**kw):
    run = federated.run_decentralized_exchange(rounds=1, n_nodes=5, degree=2, **kw)
    return run.history, run.nodes


def test_own_initial_models_are_distinct_and_none_is_the_common_one(monkeypatch):
    """init="own": every node its own random model, none of them the common start."""
    starts = {}
    original = federated.History.record

    def keep_round_0(self, r, nodes, *args, **kw):
        if r == 0:
            starts[id(self)] = nodes.params.clone()
        return original(self, r, nodes, *args, **kw)

    monkeypatch.setattr(federated.History, "record", keep_round_0)
    own_history, _ = _initial_models(init="own", seed=3)
    common_history, _ = _initial_models(init="common", seed=3)
    own, common = starts[id(own_history)], starts[id(common_history)]
    assert all(torch.equal(row, common[0]) for row in common)
    assert len({tuple(row.tolist()) for row in own}) == 5
    assert not any(torch.equal(row, common[0]) for row in own)


def test_exchange_draws_its_batches_from_its_seed_only():
    """Two runs of one seed agree, whatever the global torch RNG did in between."""
    kw = dict(rounds=3, n_nodes=4, degree=2, seed=5)
    torch.manual_seed(1)
    first = federated.run_decentralized_exchange(**kw).nodes.params
    torch.manual_seed(2)
    torch.rand(100)
    second = federated.run_decentralized_exchange(**kw).nodes.params
    assert torch.equal(first, second)


@pytest.mark.parametrize("method, level, text", [
    ("none", None, "no compression"), ("quantize", 8, "8-bit quantization"),
    ("quantize_per_tensor", 4, "4-bit per tensor"), ("topk", 0.01, "top-1%"),
    ("topk_keep", 0.1, "top-10%, rest kept")])
def test_describe_names_each_method_and_level(method, level, text):
    assert federated.describe(method, level) == text


@pytest.mark.parametrize("kw, message", [
    (dict(n_nodes=1), r"^n_nodes must be a whole number >= 2 and <= 4,096, got 1$"),
    (dict(rounds=0), r"^rounds must be a whole number >= 1"),
    (dict(lr=0), r"^lr must be a finite number > 0"),
    (dict(batch_size=0), r"^batch_size must be"),
    (dict(model="lenet"), r"^model must be one of 'logreg', 'mlp', 'cnn', got 'lenet'$"),
    (dict(init="random"), r"^init must be one of 'own', 'common', got 'random'$"),
    (dict(send="updates"), r"^send must be one of"),
    (dict(seed=-1), r"^seed must be"),
])
def test_exchange_refusals_name_the_argument(kw, message):
    with pytest.raises(ValueError, match=message):
        federated.run_decentralized_exchange(**kw)


def test_progress_bars_name_the_run_and_count_its_rounds(monkeypatch):
    bars = []
    monkeypatch.setattr(federated, "progress_bar",
                        lambda total, enabled, desc: bars.append((total, desc)) or _Bar())
    federated.run_fedavg(n_clients=3, rounds=2, local_steps=1)
    federated.run_decentralized_exchange(n_nodes=4, degree=2, rounds=3, send="gradients")
    assert bars == [(2, "FedAvg"), (3, "exchange gradients")]


class _Bar:
    def update(self, k=1):
        pass

    def close(self):
        pass


@pytest.mark.parametrize("kw, message", [
    (dict(n_clients=4096, rounds=100, local_steps=100),
     r"^rounds must keep cohort x rounds x local steps or epochs \(MAX_NODE_STEPS\) "
     r"<= 10,000,000, got 40,960,000$"),
    (dict(rounds=0), r"^rounds must be a whole number >= 1 and <= 100,000, got 0$"),
    (dict(n_clients=0), r"^n_clients must be a whole number >= 1 and <= 4,096, got 0$"),
    (dict(lr=-0.1), r"^lr must be a finite number > 0 and <= 1e\+30, got -0.1$"),
])
def test_fedavg_refusals_word_for_word(kw, message):
    with pytest.raises(ValueError, match=message):
        federated.run_fedavg(**kw)


def test_exchange_rounds_are_refused_by_name():
    with pytest.raises(ValueError, match=r"^rounds must be a whole number >= 1 and <= 100,000, "
                                         r"got 100001$"):
        federated.run_decentralized_exchange(rounds=100_001)


def test_compression_table_rows_are_the_runs_they_hold():
    kw = dict(n_clients=3, rounds=2, local_steps=1, seed=4)
    rows = federated.compression_table((("quantize", 4),), sends=("update",), **kw)
    [row] = rows
    run = row["run"]
    again = federated.run_fedavg(send="update", method="quantize", level=4, **kw)
    assert torch.equal(run.server, again.server)
    assert (row["method"], row["level"], row["send"]) == ("quantize", 4, "update")
    assert row["upload_bytes"] == run.upload_bytes > 0
    assert row["accuracy"] == run.test_acc[-1]
    assert row["rel_error"] == pytest.approx(sum(run.rel_error) / len(run.rel_error))
    assert row["step_error"] == pytest.approx(sum(run.step_error) / len(run.step_error))


def test_compressions_are_the_settings_the_ex4_chapter_discusses():
    """The chapter's claims and its prose name these five settings, in this order."""
    named = [federated.describe(method, level) for method, level in federated.COMPRESSIONS]
    assert named == ["no compression", "8-bit quantization", "4-bit quantization",
                     "top-10%", "top-1%"]
    text = open("chapters/ex4_gradients_vs_parameters.md").read()
    for words in ("8-bit", "4-bit", "top-10%", "top-1%"):
        assert words in text


def test_fair_compressions_are_the_chapters_fairer_parameter_baselines():
    named = [federated.describe(method, level)
             for method, level in federated.FAIR_COMPRESSIONS]
    assert named == ["4-bit per tensor", "top-10%, rest kept", "top-1%, rest kept"]
    with pytest.raises(ValueError, match=r"^level must be a finite number > 0, got '8'"):
        federated.describe("quantize", "8")


def test_fedavg_records_every_round_and_names_a_bad_method():
    run = federated.run_fedavg(n_clients=3, rounds=3, local_steps=1)
    assert run.rounds == [0, 1, 2, 3] and len(run.test_acc) == 4
    with pytest.raises(ValueError, match=r"^method must be one of 'none', 'quantize', 'topk', "
                                         r"'quantize_per_tensor', 'topk_keep', got 'zip'$"):
        federated.run_fedavg(method="zip")


def test_local_epochs_count_whole_batches_against_the_bound(monkeypatch):
    """20 digit clients hold 71 or 72 examples: 3 batches of 32 a pass, not 2.25."""
    def no_training(*args, **kw):
        raise AssertionError("the run was not refused")

    monkeypatch.setattr(federated, "Nodes", no_training)
    with pytest.raises(ValueError, match=r"^local_epochs must keep cohort x rounds x "
                                         r"local_epochs x batches per pass \(MAX_NODE_STEPS\) "
                                         r"<= 10,000,000, got 12,000,000$"):
        federated.run_fedavg(n_clients=20, rounds=100_000, local_epochs=2, batch_size=32)


def test_gradient_exchange_descends():
    """Each node steps against its averaged gradient: the average model's test loss falls."""
    run = federated.run_decentralized_exchange(send="gradients", init="common", n_nodes=6,
                                               degree=2, rounds=10, lr=0.1)
    loss = run.history.as_arrays()["avg_loss"]
    assert loss[-1] < loss[0] - 0.02


def test_exchange_signature_defaults():
    import inspect
    defaults = {name: p.default for name, p in
                inspect.signature(federated.run_decentralized_exchange).parameters.items()}
    assert defaults == dict(send="parameters", n_nodes=16, topology="regular", degree=None,
                            rounds=40, lr=0.1, batch_size=32, model="mlp", split="iid",
                            init="own", seed=0, progress=None)


def test_compression_table_sends_updates_and_parameters_by_default():
    rows = federated.compression_table((("none", None),), n_clients=2, rounds=1, local_steps=1)
    assert [row["send"] for row in rows] == ["update", "parameters"]


def test_cohorts_are_drawn_round_by_round_from_the_runs_cohort_stream():
    # Round r's cohort: the r-th draw of k distinct clients from
    # numpy.random.default_rng([seed, 3]), sorted.
    n, k, seed = 20, 5, 7
    run = federated.run_fedavg(n_clients=n, cohort_size=k, rounds=4, local_steps=1, seed=seed,
                               progress=False)
    stream = np.random.default_rng([seed, 3])
    c = run.ledger.columns()
    for r in range(1, 5):
        drawn = sorted(stream.choice(n, k, replace=False).tolist())
        down = (c["round"] == r) & (c["sender"] == n)
        assert sorted(c["receiver"][down].tolist()) == drawn


def test_exchange_node_steps_are_refused_before_its_evaluations():
    with pytest.raises(ValueError, match=r"^rounds must keep n_nodes x rounds \(MAX_NODE_STEPS\) "
                                         r"<= 10,000,000, got 409,600,000$"):
        federated.run_decentralized_exchange(n_nodes=4096, rounds=100_000)


def test_run_fedavg_defaults_and_a_results_empty_server():
    defaults = {name: p.default
                for name, p in inspect.signature(federated.run_fedavg).parameters.items()}
    assert (defaults["n_clients"], defaults["rounds"], defaults["local_steps"]) == (10, 30, 5)
    assert federated.FLResult().server is None


def test_own_models_at_the_largest_seed_wrap_to_seeds_0_and_1(monkeypatch):
    # Node i starts from make_model(seed=(seed + 1 + i) mod 2**32): at MAX_SEED, 0, 1, ...
    from dmlbook.models import make_model

    starts = []
    original = federated.History.record

    def keep_round_0(self, r, nodes, *args, **kw):
        if r == 0:
            starts.append(nodes.params.clone())
        return original(self, r, nodes, *args, **kw)

    monkeypatch.setattr(federated.History, "record", keep_round_0)
    _initial_models(init="own", seed=MAX_SEED, progress=False)
    for i in range(3):
        own = torch.nn.utils.parameters_to_vector(make_model("mlp", seed=i).parameters())
        assert torch.equal(starts[0][i], own)


def test_compression_table_runs_show_no_bars_and_fedavg_divergence_names_the_models(
        monkeypatch):
    shown, real = [], federated.progress_bar

    def spy(total, enabled, desc):
        shown.append(enabled)
        return real(total, enabled, desc)

    monkeypatch.setattr(federated, "progress_bar", spy)
    federated.compression_table((("none", None),), sends=("update",), n_clients=2, rounds=1,
                                local_steps=1)
    assert shown == [False]
    with pytest.raises(ValueError, match=r"^diverged at round 1; try a smaller lr "
                                         r"\(the clients' models: no longer finite\)$"):
        federated.run_fedavg(n_clients=2, rounds=3, local_steps=5, lr=1e30, progress=False)


@pytest.mark.parametrize("local_steps", [0, MAX_ROUNDS + 1, 2.5])
def test_run_fedavg_refuses_local_steps_by_their_name(local_steps):
    with pytest.raises(ValueError, match=r"^local_steps must "):
        federated.run_fedavg(n_clients=2, rounds=1, local_steps=local_steps, progress=False)


def test_a_result_made_empty_has_no_payloads():
    result = federated.FLResult()
    assert result.payloads == {} and isinstance(result.payloads, dict)
    assert result.payloads is not federated.FLResult().payloads  # not shared between results


def test_run_fedavg_refuses_a_sample_round_past_the_last_by_its_name():
    with pytest.raises(ValueError, match=r"^sample_round must be .*5$"):
        federated.run_fedavg(n_clients=2, rounds=2, sample_round=5, progress=False)


def test_compression_tables_accuracy_is_the_last_rounds():
    rows = federated.compression_table(settings=(("quantize", 4),), sends=("update",),
                                       n_clients=4, rounds=4, local_steps=2, lr=1.0)
    (row,) = rows
    assert row["accuracy"] == row["run"].test_acc[-1] != max(row["run"].test_acc)


@pytest.mark.parametrize("call, message", [
    (lambda: federated.run_fedavg(n_clients=4, rounds=1, aggregate=3, progress=False),
     "aggregate must be None or a function, got int"),
    (lambda: federated.run_fedavg(n_clients=4, rounds=1, cohort_size=5, progress=False),
     "cohort_size must be None or a whole number of clients from 1 to n_clients (4), got 5"),
    (lambda: federated.run_fedavg(n_clients=4, rounds=1, cohort_size=1.5, progress=False),
     "cohort_size must be None or a whole number of clients from 1 to n_clients (4), got 1.5"),
])
def test_run_fedavg_refusals_word_for_word(call, message):
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        call()


def test_local_epochs_with_a_cohort_train_the_cohorts_data(monkeypatch):
    rows_trained = []
    epoch_indices = NodeData.epoch_indices

    def spy(self, generator, batch_size, *args, **kwargs):
        nodes = kwargs["nodes"] if "nodes" in kwargs else args[0]
        rows_trained.append(sorted(nodes.tolist()))
        return epoch_indices(self, generator, batch_size, *args, **kwargs)

    monkeypatch.setattr(NodeData, "epoch_indices", spy)
    run = federated.run_fedavg(n_clients=6, cohort_size=2, rounds=2, local_epochs=1,
                               progress=False)
    c = run.ledger.columns()
    cohorts = [sorted(c["receiver"][(c["round"] == r) & (c["sender"] == 6)].tolist())
               for r in (1, 2)]
    assert rows_trained == cohorts


def test_compression_tables_step_error_is_the_mean_over_rounds():
    (row,) = federated.compression_table(settings=(("quantize", 4),), sends=("update",),
                                         n_clients=4, rounds=4, local_steps=2, lr=1.0)
    errors = row["run"].step_error
    assert row["step_error"] == pytest.approx(float(np.mean(errors)))
    assert len(set(errors)) > 1


def test_the_batch_bound_counts_the_clients_that_train_together():
    """A round trains only its cohort: a batch too large for every client at once is
    fine for two, and refused, naming batch_size, when all of them train."""
    kw = dict(n_clients=1024, batch_size=2048, rounds=1, local_steps=1, progress=False)
    run = federated.run_fedavg(cohort_size=2, **kw)
    assert run.rounds == [0, 1]
    with pytest.raises(ValueError, match="^batch_size"):
        federated.run_fedavg(**kw)
