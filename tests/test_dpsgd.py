import numpy as np
import pytest
import torch

from dmlbook import data
from dmlbook.centralized import train_centralized
from dmlbook.dpsgd import run_dpsgd
from dmlbook.engine import NodeData, seeded_generator
from dmlbook.faults import Faults
from dmlbook.models import make_model
from dmlbook.topology import make_topology


def test_engine_equals_a_plain_loop_of_modules():
    """The stacked engine computes exactly what one nn.Module per node computes."""
    n, rounds, lr, bs = 6, 4, 0.2, 8
    res = run_dpsgd(n_nodes=n, topology="regular", degree=2, rounds=rounds, lr=lr,
                    batch_size=bs, progress=False)
    digits = data.load_digits(seed=0)
    topo = make_topology("regular", n, degree=2, seed=0)
    nd = NodeData(digits.X_train, digits.y_train, data.split(digits.y_train, n, seed=0))
    models = [make_model("mlp", seed=0) for _ in range(n)]
    opts = [torch.optim.SGD(m.parameters(), lr=lr) for m in models]
    gen = seeded_generator(0)
    for _ in range(rounds):
        X, y = nd.batch(gen, bs)
        for i in range(n):
            opts[i].zero_grad()
            torch.nn.functional.cross_entropy(models[i](X[i]), y[i]).backward()
            opts[i].step()
        vecs = torch.stack([torch.nn.utils.parameters_to_vector(m.parameters()) for m in models])
        mixed = torch.tensor(topo.W, dtype=torch.float32) @ vecs.detach()
        for i in range(n):
            torch.nn.utils.vector_to_parameters(mixed[i], models[i].parameters())
    assert torch.allclose(res.nodes.params, mixed, atol=1e-5)


def test_history_shapes_and_learning():
    res = run_dpsgd(n_nodes=16, degree=4, rounds=30, lr=0.3, eval_every=10, progress=False)
    h = res.history.as_arrays()
    assert list(h["round"]) == [0, 10, 20, 30]
    assert h["test_loss"].shape == (4, 16) and h["train_loss"].shape == (30, 16)
    assert h["test_acc"][-1].mean() > h["test_acc"][0].mean() + 0.3
    assert len(res.history.table()) == 4 * 16
    assert res.history.train_seconds > 0


def test_message_count_with_final_allreduce():
    res = run_dpsgd(n_nodes=16, degree=4, rounds=5, final_allreduce="naive",
                    eval_every=5, progress=False)
    assert res.messages == 5 * 16 * 4 + 16 * 15
    h = res.history.as_arrays()
    assert res.history.labels == {6: "naive all-reduce"}
    assert np.ptp(h["test_loss"][-1]) < 1e-5  # every node has the same model


def test_runs_are_reproducible():
    kw = dict(n_nodes=8, degree=2, rounds=5, split="dirichlet", progress=False)
    a, b = run_dpsgd(**kw, seed=1), run_dpsgd(**kw, seed=1)
    assert torch.equal(a.nodes.params, b.nodes.params)
    assert not torch.equal(a.nodes.params, run_dpsgd(**kw, seed=2).nodes.params)


def test_faults_in_a_run():
    faults = Faults(crash_at={0: 3}, drop_prob=0.2, straggler_prob=0.2, seed=0)
    res = run_dpsgd(n_nodes=8, degree=4, rounds=6, faults=faults, progress=False)
    totals = res.ledger.totals()
    assert totals.delivered < totals.sent < 6 * 8 * 4
    assert res.ledger.per_node("sent", rounds=slice(3, 7))[0] == 0
    h = res.history.as_arrays()
    assert np.isnan(h["train_loss"][2:, 0]).all()  # the crashed node stopped stepping
    assert np.isnan(h["train_loss"]).sum() > 4     # stragglers skipped some steps too
    assert np.all(h["test_loss"][3:, 0] == h["test_loss"][3, 0])  # and stays frozen


@pytest.mark.parametrize("kw, param", [
    ({"n_nodes": 1}, "n_nodes"), ({"rounds": 0}, "rounds"), ({"lr": -1}, "lr"),
    ({"batch_size": 0}, "batch_size"), ({"local_steps": 0}, "local_steps"),
    ({"final_allreduce": "tree"}, "final_allreduce"),
    ({"order": "mix-then-step"}, "order"),
    ({"final_allreduce": "ring", "faults": Faults(drop_prob=0.1)}, "final_allreduce"),
    ({"topology": "hypercube"}, "topology"),
    ({"split": "sorted"}, "kind"), ({"model": "resnet"}, "model"), ({"seed": -1}, "seed"),
    ({"topology": make_topology("ring", 5)}, "topology"), ({"device": "tpu"}, "device"),
])
def test_bad_input(kw, param):
    with pytest.raises(ValueError, match=param):
        run_dpsgd(**{"n_nodes": 8, "degree": 2, "rounds": 1, "progress": False, **kw})


def test_centralized_mlp_baseline_reaches_90_percent():
    result = train_centralized(model="mlp", steps=1500, lr=0.1, eval_every=500)
    assert result.test_acc[-1] >= 0.90
    assert result.steps == [0, 500, 1000, 1500]


def test_mix_and_step_is_lian_et_al_algorithm_1():
    """x <- W x - lr * g(x): gradient at the current model, applied after mixing."""
    n, rounds, lr, bs = 6, 4, 0.2, 8
    res = run_dpsgd(n_nodes=n, topology="regular", degree=2, rounds=rounds, lr=lr,
                    batch_size=bs, order="mix-and-step", progress=False)
    digits = data.load_digits(seed=0)
    topo = make_topology("regular", n, degree=2, seed=0)
    nd = NodeData(digits.X_train, digits.y_train, data.split(digits.y_train, n, seed=0))
    models = [make_model("mlp", seed=0) for _ in range(n)]
    W = torch.tensor(topo.W, dtype=torch.float32)
    gen = seeded_generator(0)
    for _ in range(rounds):
        X, y = nd.batch(gen, bs)
        grads = []
        for i in range(n):
            models[i].zero_grad()
            torch.nn.functional.cross_entropy(models[i](X[i]), y[i]).backward()
            grads.append(torch.cat([p.grad.reshape(-1) for p in models[i].parameters()]))
        x = torch.stack([torch.nn.utils.parameters_to_vector(m.parameters()) for m in models])
        new = W @ x.detach() - lr * torch.stack(grads)
        for i in range(n):
            torch.nn.utils.vector_to_parameters(new[i], models[i].parameters())
    assert torch.allclose(res.nodes.params, new, atol=1e-5)
    other = run_dpsgd(n_nodes=n, topology="regular", degree=2, rounds=rounds, lr=lr,
                      batch_size=bs, progress=False)
    assert not torch.allclose(other.nodes.params, new, atol=1e-4)  # the orders differ
    assert res.messages == other.messages == rounds * n * 2


def test_ring_allreduce_ending_averages_and_counts_chunks():
    n, rounds = 10, 3
    plain = run_dpsgd(n_nodes=n, degree=4, rounds=rounds, eval_every=rounds, progress=False)
    ring = run_dpsgd(n_nodes=n, degree=4, rounds=rounds, final_allreduce="ring",
                     eval_every=rounds, progress=False)
    mean = plain.nodes.params.mean(0)
    assert torch.allclose(ring.nodes.params, mean.expand(n, -1), atol=1e-6)
    c = ring.ledger.columns()
    last = c["round"] == rounds + 1
    assert last.sum() == 2 * n * (n - 1)
    model_bytes = ring.nodes.payload_bytes
    # Each message is one of n chunks (tensor_split sizes differ by at most one entry).
    assert set(c["nbytes"][last]) <= {model_bytes // n // 4 * 4, (model_bytes // n // 4 + 1) * 4}
    assert c["nbytes"][last].sum() == 2 * (n - 1) * model_bytes
    assert ring.history.labels == {rounds + 1: "ring all-reduce"}


def test_data_per_node_of_the_sheets_split():
    from dmlbook.dpsgd import data_per_node

    d = data_per_node(128, split="iid", seed=0)
    assert d.n_train == 1438 and d.n_classes == 10
    assert (d.min_examples, d.max_examples) == (1438 // 128, 1438 // 128 + 1)
    assert 1 <= d.min_classes <= d.max_classes <= 10
    shards = data_per_node(16, split="shards", seed=0)
    assert shards.max_classes <= 4


@pytest.mark.parametrize("final_allreduce, messages", [(None, 3 * 8), ("naive", 3 * 8 + 12),
                                                       ("ring", 3 * 8 + 24)])
def test_ledger_records_are_counted_before_the_first_round(monkeypatch, final_allreduce,
                                                           messages):
    # A ring of 4 nodes sends 8 messages a round. At the bound the run goes
    # through and records exactly that many; one record fewer allowed and it is
    # refused up front (it used to die mid-run on the ledger), unless counts_only.
    import dmlbook.dpsgd as dpsgd
    import dmlbook.ledger as ledger

    kw = dict(n_nodes=4, topology="ring", rounds=3, final_allreduce=final_allreduce,
              progress=False)
    monkeypatch.setattr(ledger, "MAX_LEDGER_RECORDS", messages)
    assert len(run_dpsgd(**kw).ledger) == messages
    monkeypatch.setattr(ledger, "MAX_LEDGER_RECORDS", messages - 1)
    monkeypatch.setattr(dpsgd, "prepare", lambda *a, **k: pytest.fail("not refused up front"))
    with pytest.raises(ValueError, match=r"^rounds must keep rounds x messages a round .* <= "
                                         rf"{messages - 1:,} \(MAX_LEDGER_RECORDS\).*"
                                         "counts_only=True"):
        run_dpsgd(**kw)
    monkeypatch.undo()
    monkeypatch.setattr(ledger, "MAX_LEDGER_RECORDS", messages - 1)
    assert run_dpsgd(counts_only=True, **kw).ledger.totals().sent == messages


def test_max_ledger_records_holds_one_naive_round_of_max_nodes():
    from dmlbook.units import MAX_LEDGER_RECORDS, MAX_NODES

    assert MAX_LEDGER_RECORDS == 2**24
    assert MAX_NODES * (MAX_NODES - 1) <= MAX_LEDGER_RECORDS < 2 * MAX_NODES * (MAX_NODES - 1)


def test_dpsgd_run_messages_are_bounded_up_front(monkeypatch):
    # Issue #27: the complete graph of 1,000 nodes may run 2,002 rounds of
    # 999,000 messages (MAX_RUN_MESSAGES), not the 10,000 MAX_NODE_STEPS allows.
    import dmlbook.dpsgd as dpsgd
    import dmlbook.ledger as ledger
    from dmlbook.units import MAX_RUN_MESSAGES

    prepare = dpsgd.prepare
    monkeypatch.setattr(dpsgd, "prepare", lambda *a, **k: pytest.fail("not refused up front"))
    with pytest.raises(ValueError, match=r"^rounds must keep rounds x messages a round \(\+ the "
                                         rf"final all-reduce's\) <= {MAX_RUN_MESSAGES:,} "
                                         rf"\(MAX_RUN_MESSAGES\), got {2003 * 999_000:,}$"):
        run_dpsgd(n_nodes=1000, topology="complete", rounds=2003, eval_every=2003,
                  counts_only=True)
    # A ring of 4 nodes: 8 messages a round, 24 for the final ring all-reduce.
    kw = dict(n_nodes=4, topology="ring", rounds=3, final_allreduce="ring", counts_only=True,
              progress=False)
    monkeypatch.setattr(ledger, "MAX_RUN_MESSAGES", 3 * 8 + 24 - 1)
    with pytest.raises(ValueError, match=r"got 48$"):
        run_dpsgd(**kw)
    monkeypatch.setattr(ledger, "MAX_RUN_MESSAGES", 3 * 8 + 24)
    monkeypatch.setattr(dpsgd, "prepare", prepare)
    assert run_dpsgd(**kw).ledger.totals().sent == 48


def test_dpsgd_evaluations_are_bounded_up_front(monkeypatch):
    import dmlbook.dpsgd as dpsgd
    from dmlbook.units import MAX_NODE_EVALS

    assert dpsgd.MAX_NODE_EVALS == MAX_NODE_EVALS == 100_000
    prepare = dpsgd.prepare
    monkeypatch.setattr(dpsgd, "prepare", lambda *a, **k: pytest.fail("not refused up front"))
    # 999 nodes x 100 rounds is within MAX_NODE_STEPS; evaluated every round,
    # 1,000 x 101 = 101,000 node evaluations (above about 1 GiB): refused.
    with pytest.raises(ValueError, match=r"^eval_every must keep \(n_nodes \+ 1\) x evaluations "
                                         r"<= 100,000 \(MAX_NODE_EVALS\), got 101,000"):
        run_dpsgd(n_nodes=999, rounds=100, eval_every=1, progress=False)
    # Rounds 0, 2, 4, 5 and the final all-reduce's 6: 5 evaluations of 4 nodes + the average.
    monkeypatch.setattr(dpsgd, "prepare", prepare)
    kw = dict(n_nodes=4, topology="ring", rounds=5, eval_every=2, final_allreduce="naive",
              progress=False)
    monkeypatch.setattr(dpsgd, "MAX_NODE_EVALS", 25)
    assert run_dpsgd(**kw).history.rounds == [0, 2, 4, 5, 6]
    monkeypatch.setattr(dpsgd, "MAX_NODE_EVALS", 24)
    monkeypatch.setattr(dpsgd, "prepare", lambda *a, **k: pytest.fail("not refused up front"))
    with pytest.raises(ValueError, match=r"^eval_every must keep .* got 25 "):
        run_dpsgd(**kw)
