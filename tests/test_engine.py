import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dmlbook import data, engine
from dmlbook.collectives import naive_allreduce
from dmlbook.engine import (FlatModel, NodeData, Nodes, gossip, mixing_operator,
                            resolve_device, seeded_generator)
from dmlbook.faults import Faults
from dmlbook.ledger import Ledger
from dmlbook.models import make_model
from dmlbook.topology import make_topology


@pytest.fixture(scope="module")
def digits():
    return data.load_digits(seed=0)


def spread(nodes, seed=0):
    """Give every node a different model, so that mixing has work to do."""
    g = torch.Generator().manual_seed(seed)
    nodes.params = nodes.params + 0.1 * torch.randn(nodes.params.shape, generator=g)
    return nodes


def test_flat_model_round_trip():
    model = make_model("cnn", seed=0)
    flat = FlatModel(model)
    assert flat.n_params == sum(p.numel() for p in model.parameters())
    X = torch.randn(5, 64)
    assert torch.allclose(flat.forward(flat.initial, X), model(X), atol=1e-6)
    copy = flat.load_into(make_model("cnn", seed=9), flat.initial)
    assert torch.allclose(copy(X), model(X), atol=1e-6)


@pytest.mark.parametrize("name", ["logreg", "mlp", "cnn"])
def test_batched_gradients_equal_per_module_autograd(name, digits):
    nodes = spread(Nodes(make_model(name, seed=0), 5))
    parts = data.split(digits.y_train, 5, seed=0)
    X, y = NodeData(digits.X_train, digits.y_train, parts).batch(seeded_generator(0), 8)
    losses, grads = nodes.losses_and_gradients(X, y)
    for i in range(5):
        model = nodes.flat.load_into(make_model(name), nodes.params[i])
        loss = F.cross_entropy(model(X[i]), y[i])
        loss.backward()
        expected = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
        assert torch.allclose(grads[i], expected, atol=1e-6)
        assert losses[i].item() == pytest.approx(loss.item(), abs=1e-6)


def test_sgd_step_and_inactive_nodes(digits):
    nodes = Nodes(make_model("mlp", seed=0), 3)
    X = digits.X_train[:24].view(3, 8, 64)
    y = digits.y_train[:24].view(3, 8)
    before = nodes.params.clone()
    g = nodes.gradients(X, y)
    nodes.sgd_step(X, y, 0.5, active=torch.tensor([1.0, 0.0, 1.0]))
    assert torch.allclose(nodes.params[0], before[0] - 0.5 * g[0], atol=1e-6)
    assert torch.equal(nodes.params[1], before[1])


def test_evaluate_matches_the_module(digits):
    nodes = spread(Nodes(make_model("mlp", seed=0), 4))
    loss, acc = nodes.evaluate(digits.X_test, digits.y_test, chunk=3)
    model = nodes.flat.load_into(make_model("mlp"), nodes.params[2])
    with torch.no_grad():
        logits = model(digits.X_test)
    assert loss[2] == pytest.approx(F.cross_entropy(logits, digits.y_test).item(), abs=1e-5)
    assert acc[2] == pytest.approx((logits.argmax(1) == digits.y_test).float().mean().item())


def test_node_data_batches_come_from_each_nodes_own_examples(digits):
    parts = data.split(digits.y_train, 6, kind="shards", seed=0)
    nd = NodeData(digits.X_train, digits.y_train, parts)
    idx = nd.batch_indices(seeded_generator(0), 50)
    for i, part in enumerate(parts):
        lo, hi = int(nd.offsets[i]), int(nd.offsets[i] + nd.sizes[i])
        assert ((idx[i] >= lo) & (idx[i] < hi)).all()
        assert set(nd.y[idx[i]].tolist()) <= set(digits.y_train[part].tolist())
    with pytest.raises(ValueError, match="parts"):
        NodeData(digits.X_train, digits.y_train, [np.arange(3), np.array([], int)])


def test_gossip_without_faults_is_multiplication_by_W():
    topo = make_topology("regular", 12, degree=4)
    nodes = spread(Nodes(make_model("logreg"), 12))
    x = nodes.params.clone()
    ledger = Ledger(12)
    gossip(nodes, topo, round=1, ledger=ledger)
    assert torch.allclose(nodes.params, torch.tensor(topo.W, dtype=torch.float32) @ x, atol=1e-6)
    # Doubly stochastic W preserves the average.
    assert torch.allclose(nodes.params.mean(0), x.mean(0), atol=1e-6)
    assert ledger.totals().sent == 12 * 4 == topo.n_edges
    assert (ledger.per_node("sent") == 4).all() and (ledger.per_node("received") == 4).all()
    assert ledger.totals().bytes_sent == 48 * nodes.payload_bytes == 48 * 650 * 4


def test_gossip_averages_over_what_arrived():
    topo = make_topology("ring", 6)
    nodes = spread(Nodes(make_model("logreg"), 6))
    x = nodes.params.clone()
    ledger = Ledger(6)
    faults = Faults(drop_prob=0.5, seed=3)
    gossip(nodes, topo, round=1, ledger=ledger, faults=faults)
    M = ledger.received_matrix(1)
    assert 0 < ledger.totals().delivered < ledger.totals().sent == 12
    for i in range(6):
        got = [j for j in range(6) if M[i, j]]
        weights = [topo.W[i, i]] + [topo.W[i, j] for j in got]
        expected = (topo.W[i, i] * x[i] + sum(topo.W[i, j] * x[j] for j in got)) / sum(weights)
        assert torch.allclose(nodes.params[i], expected.float(), atol=1e-6)


def test_crashed_nodes_neither_send_nor_change():
    topo = make_topology("complete", 5)
    nodes = spread(Nodes(make_model("logreg"), 5))
    x = nodes.params.clone()
    ledger = Ledger(5)
    gossip(nodes, topo, round=3, ledger=ledger, faults=Faults(crash_at={1: 2}))
    assert torch.equal(nodes.params[1], x[1])
    assert ledger.per_node("sent")[1] == 0
    assert ledger.totals().sent == 16 and ledger.totals().delivered == 12
    live = [0, 2, 3, 4]
    # Survivors average among themselves only (Metropolis weights 1/5 each, renormalised).
    assert torch.allclose(nodes.params[0], x[live].mean(0), atol=1e-6)


def test_mixing_operator_is_cached_and_stochastic():
    topo = make_topology("torus", 16)
    W = mixing_operator(topo)
    assert mixing_operator(topo) is W
    dense = W.to_dense()
    assert torch.allclose(dense.sum(1), torch.ones(16))
    keep = torch.zeros(topo.n_edges, dtype=torch.bool)
    lonely = mixing_operator(topo, keep=keep).to_dense()
    assert torch.allclose(lonely, torch.eye(16))


def test_mixing_operator_is_dense_for_a_large_dense_graph_with_the_same_numbers(monkeypatch):
    from dmlbook import mixing
    complete = make_topology("complete", 512)  # 512**2 = DENSE_MIN_ENTRIES entries, all nonzero
    sparse_graph = make_topology("regular", 4096, degree=8, seed=0)
    x = torch.randn(512, 7, generator=torch.Generator().manual_seed(0))
    keep = torch.rand(complete.n_edges, generator=torch.Generator().manual_seed(1)) < 0.5
    alive = np.arange(512) % 3 > 0
    dense_W = mixing_operator(complete)
    dense_faulty = mixing_operator(complete, keep=keep, alive=alive)
    assert dense_W.layout == dense_faulty.layout == torch.strided
    assert mixing_operator(sparse_graph).layout == torch.sparse_csr
    monkeypatch.setattr(mixing, "DENSE_MIN_ENTRIES", 512**2 + 1)  # the sparse path, for reference
    reference = make_topology("complete", 512)
    sparse_W = mixing_operator(reference)
    sparse_faulty = mixing_operator(reference, keep=keep, alive=alive)
    assert sparse_W.layout == sparse_faulty.layout == torch.sparse_csr
    assert torch.allclose(dense_W @ x, sparse_W @ x, atol=1e-6)
    assert torch.allclose(dense_faulty @ x, sparse_faulty @ x, atol=1e-6)
    assert torch.allclose(dense_W.sum(1), torch.ones(512))


def test_mixing_operator_stays_sparse_below_the_fill(monkeypatch):
    from dmlbook import mixing
    monkeypatch.setattr(mixing, "DENSE_MIN_ENTRIES", 1)
    # A 6-regular graph of 64 nodes fills 7 / 64 < 1/8 of its matrix; 8-regular, 9 / 64.
    assert mixing_operator(make_topology("regular", 64, degree=6, seed=0)).layout == torch.sparse_csr
    assert mixing_operator(make_topology("regular", 64, degree=8, seed=0)).layout == torch.strided


def test_device_argument():
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(ValueError, match="device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device must be 'cpu'"):
            Nodes(make_model("logreg"), 2, device="cuda")


def test_nodes_rejects_bad_n():
    with pytest.raises(ValueError, match="n must be"):
        Nodes(make_model("logreg"), 0)


def test_progress_bar_shows_in_a_terminal_and_is_silent_in_tests(capsys, monkeypatch):
    from dmlbook.dpsgd import run_dpsgd
    from dmlbook.engine import progress_bar

    run_dpsgd(n_nodes=4, degree=2, rounds=3, progress=None)  # TQDM_DISABLE from conftest
    assert capsys.readouterr().err == ""
    monkeypatch.delenv("TQDM_DISABLE")
    bar = progress_bar(3, None, "D-PSGD")
    for _ in range(3):
        bar.update()
    bar.close()
    assert "D-PSGD" in capsys.readouterr().err
    run_dpsgd(n_nodes=4, degree=2, rounds=3, progress=False)
    assert capsys.readouterr().err == ""


# --- pinned bookkeeping rules (hand-worked values) ---------------------------

def test_consensus_distance_is_the_mean_of_the_distances_not_the_max():
    nodes = Nodes(make_model("logreg"), 3)
    P = nodes.params.shape[1]
    rows = torch.zeros(3, P)
    rows[2, 0] = 3.0  # average (1, 0, ...): distances 1, 1, 2
    nodes.params = rows
    assert nodes.consensus_distance() == pytest.approx(4 / 3)  # max would be 2


def test_prepare_returns_the_test_set_not_the_train_set():
    from dmlbook.engine import prepare

    module, dataset, node_data, X_test, y_test = prepare("logreg", 4, seed=0)
    assert len(dataset.y_test) == round(0.2 * 1797) == 359
    assert torch.equal(X_test, dataset.X_test) and torch.equal(y_test, dataset.y_test)
    # Every training example is dealt to exactly one node; no test example is.
    assert len(node_data.y) == 1797 - 359 == len(dataset.y_train)


def test_divergence_stops_the_exchange():
    nodes = Nodes(make_model("logreg"), 4)
    nodes.params[1, 0] = float("nan")
    with pytest.raises(ValueError, match="diverged at round 5; try a smaller lr"):
        gossip(nodes, make_topology("ring", 4), round=5, ledger=Ledger(4))
    with pytest.raises(ValueError, match="diverged at round 6"):
        naive_allreduce(nodes, round=6, ledger=Ledger(4))


def test_memory_bounds_are_checked_before_allocating():
    with pytest.raises(ValueError, match="MAX_STACKED_PARAMS"):
        Nodes(make_model("mlp", hidden=16_384), 4096)
    with pytest.raises(ValueError, match="n must be a whole number >= 1 and <= 4,096"):
        Nodes(make_model("logreg"), 10**18)
    node_data = NodeData(torch.zeros(8, 2), torch.zeros(8, dtype=torch.long),
                         [np.arange(4), np.arange(4, 8)])
    with pytest.raises(ValueError, match="batch_size"):
        node_data.batch(seeded_generator(0), 10**9)


@pytest.mark.parametrize("budget, slices", [(None, False), (2_000_000, False), (100_000, True)])
def test_evaluation_stays_within_the_activation_budget(digits, monkeypatch, budget, slices):
    # A wide model's activations on the whole test set (5 nodes x 178,956 hidden
    # units x 359 images: 1.3 GB) made a run of 2**26 stacked parameters peak at 3.3 GiB.
    # Evaluation now takes fewer nodes at once, or one node on slices of the set.
    import dmlbook.engine as engine

    nodes = spread(Nodes(make_model("mlp", seed=0), 5))
    expected = nodes.evaluate(digits.X_test, digits.y_test)
    if budget is not None:
        monkeypatch.setattr(engine, "ACTIVATION_BUDGET", budget)
    seen = []
    shared = nodes._forward.shared
    monkeypatch.setattr(nodes._forward, "shared",
                        lambda p, X: seen.append((len(p), len(X))) or shared(p, X))
    loss, acc = nodes.evaluate(digits.X_test, digits.y_test)
    per_example = nodes._saved_bytes(digits.X_test[None, :1])
    limit = engine.ACTIVATION_BUDGET
    assert all(k * m * per_example <= limit for k, m in seen), (seen, per_example)
    assert (max(m for _, m in seen) < len(digits.y_test)) == slices
    np.testing.assert_allclose(loss, expected[0], rtol=1e-5)
    np.testing.assert_array_equal(acc, expected[1])
    assert loss.dtype == expected[0].dtype and acc.dtype == expected[1].dtype


def test_stacked_parameters_are_accepted_at_the_bound_and_refused_above():
    # 2**28 peaked at 4.6 GiB with four (n, P) copies; the engine now holds one.
    from dmlbook.units import MAX_STACKED_PARAMS

    assert MAX_STACKED_PARAMS == 10**8

    def model(n_params):
        m = torch.nn.Module()
        m.w = torch.nn.Parameter(torch.zeros(n_params))
        return m

    assert Nodes(model(10**5), 1000).params.shape == (1000, 10**5)  # exactly 10**8
    with pytest.raises(ValueError, match=r"^n must keep nodes x model parameters "
                                         r"\(MAX_STACKED_PARAMS\) <= 100,000,000, "
                                         r"got 100,000,001$"):
        Nodes(model(5_882_353), 17)  # 17 x 5,882,353 = 10**8 + 1


def test_sgd_step_in_slices_gives_the_one_pass_models():
    """A step taken slice by slice (no (n, P) gradient held) lands where one pass does."""
    model = make_model("mlp", seed=0)
    X, y = torch.randn(7, 8, 64), torch.randint(0, 10, (7, 8))
    active = torch.tensor([1, 0, 1, 1, 0, 1, 1], dtype=torch.float32)
    whole, sliced = Nodes(model, 7), Nodes(model, 7, chunk=3)
    for nodes in (whole, sliced):
        nodes.params += 0.01 * torch.arange(7.0)[:, None]
    assert len(sliced._row_plan(X)[0]) == 3
    loss_whole = whole.sgd_step(X, y, 0.5, active=active)
    loss_sliced = sliced.sgd_step(X, y, 0.5, active=active)
    torch.testing.assert_close(loss_sliced, loss_whole, rtol=0, atol=1e-7)
    torch.testing.assert_close(sliced.params, whole.params, rtol=0, atol=1e-7)
    assert torch.equal(sliced.params[1], whole.params[1])  # inactive: unchanged


@pytest.mark.parametrize("faulty", [False, True])
def test_mixing_in_place_by_column_blocks_gives_the_same_numbers(monkeypatch, faulty):
    from dmlbook import engine, mixing
    from dmlbook.topology import make_topology
    topology = make_topology("regular", 12, degree=4, seed=0)
    faults = Faults(drop_prob=0.3, crash_at={2: 1}, seed=1) if faulty else mixing.NO_FAULTS
    tensor = torch.randn(12, 101)
    expected = engine.mix(tensor, topology, round=1, ledger=Ledger(12), nbytes=4, faults=faults)
    monkeypatch.setattr(mixing, "COPY_BUDGET", 12 * 4 * 10)  # blocks of 10 columns
    mixed = engine.mix(tensor, topology, round=1, ledger=Ledger(12), nbytes=4, faults=faults,
                       in_place=True)
    assert mixed is tensor
    assert torch.equal(tensor, expected)


def test_consensus_distance_in_blocks(monkeypatch):
    from dmlbook import mixing
    nodes = Nodes(make_model("mlp", seed=0), 9)
    nodes.params += torch.randn_like(nodes.params)
    expected = float((nodes.params - nodes.params.mean(0)).norm(dim=1).mean())
    monkeypatch.setattr(mixing, "COPY_BUDGET", 4 * nodes.params.shape[1] * 2)  # 2 rows a block
    assert nodes.consensus_distance() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("chunk", [None, 2])
def test_lazy_batches_gather_the_same_examples_and_steps(digits, chunk):
    """``batch(lazy=True)`` draws what ``batch()`` draws; a step on it lands where one on
    the whole batch does, and it gathers only the slices the step takes."""
    from dmlbook.engine import GatheredRows, NodeData
    parts = [range(i * 20, i * 20 + 20) for i in range(5)]
    data = NodeData(digits.X_train, digits.y_train, parts)
    X, y = data.batch(seeded_generator(3), 6)
    lazy_X, lazy_y = data.batch(seeded_generator(3), 6, lazy=True)
    assert isinstance(lazy_X, GatheredRows) and lazy_X.shape == X.shape and len(lazy_X) == 5
    assert torch.equal(lazy_X[:], X) and torch.equal(lazy_X[1:4], X[1:4])
    assert torch.equal(lazy_y, y)
    model = make_model("mlp", seed=0)
    whole, lazy = Nodes(model, 5, chunk=chunk), Nodes(model, 5, chunk=chunk)
    taken = []
    original = GatheredRows.__getitem__
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(GatheredRows, "__getitem__",
                      lambda self, rows: taken.append(rows) or original(self, rows))
        torch.testing.assert_close(lazy.sgd_step(lazy_X, lazy_y, 0.5), whole.sgd_step(X, y, 0.5),
                                   rtol=0, atol=0)
    assert torch.equal(lazy.params, whole.params)
    if chunk:  # one gather per slice, never the whole batch
        assert taken == [slice(0, 2), slice(2, 4), slice(4, 6)]
    with pytest.raises(TypeError, match="slice"):
        lazy_X[0]


def test_run_dpsgd_gathers_its_batches_slice_by_slice(monkeypatch):
    """D-PSGD never holds the whole (n, B, ...) batch: each slice is gathered as it steps."""
    from dmlbook import engine
    from dmlbook.dpsgd import run_dpsgd
    from dmlbook.engine import GatheredRows
    plain = run_dpsgd(n_nodes=6, degree=2, rounds=2, progress=False)
    monkeypatch.setattr(engine, "ACTIVATION_BUDGET", 1)  # one node a slice
    taken = []
    original = GatheredRows.__getitem__
    monkeypatch.setattr(GatheredRows, "__getitem__",
                        lambda self, rows: taken.append(rows) or original(self, rows))
    sliced = run_dpsgd(n_nodes=6, degree=2, rounds=2, progress=False)
    assert taken and max((s.stop or 6) - (s.start or 0) for s in taken) == 1
    torch.testing.assert_close(sliced.nodes.params, plain.nodes.params, rtol=0, atol=1e-6)


@pytest.mark.parametrize("n, chunk, sizes", [(4, 2, [2, 2]), (5, 2, [2, 2, 1]), (5, None, [5])])
def test_a_step_holds_one_slice_of_nodes_at_a_time(n, chunk, sizes):
    """``chunk`` caps the nodes whose activations one forward and backward pass holds."""
    nodes = Nodes(make_model("mlp", seed=0), n, chunk=chunk)
    seen = []
    whole = nodes._losses_and_gradients

    def spy(params, X, y):
        seen.append(len(params))
        return whole(params, X, y)

    nodes._losses_and_gradients = spy
    nodes.losses_and_gradients(torch.randn(n, 3, 64), torch.randint(0, 10, (n, 3)))
    assert seen == sizes


def test_evaluation_takes_the_nodes_in_one_pass_when_they_fit():
    nodes = Nodes(make_model("mlp", seed=0), 6)
    seen = []
    shared = nodes._forward.shared

    def spy(params, X):
        seen.append(len(params))
        return shared(params, X)

    nodes._forward.shared = spy
    nodes.evaluate(torch.randn(20, 64), torch.randint(0, 10, (20,)))
    assert seen == [6]
    seen.clear()
    nodes.evaluate(torch.randn(20, 64), torch.randint(0, 10, (20,)), chunk=4)
    assert seen == [4, 2]



@pytest.mark.parametrize("parts, message", [
    ([np.arange(3), np.array([], int)], r"^parts must give every node at least one example$"),
    ([np.array([0, -1])], r"^parts must hold example indices in 0 \.\. 9$"),  # no wrap-around
    ([np.array([10])], r"^parts must hold example indices in 0 \.\. 9$"),
])
def test_node_data_refuses_parts_outside_the_examples(parts, message):
    with pytest.raises(ValueError, match=message):
        NodeData(torch.zeros(10, 2), torch.zeros(10, dtype=torch.long), parts)


@pytest.mark.parametrize("value, silent", [("1", True), ("True", True), ("yes", True),
                                           ("0", False), ("", False)])
def test_tqdm_disable_silences_the_bars_as_tqdm_reads_it(monkeypatch, value, silent):
    from dmlbook.engine import progress_bar
    monkeypatch.setenv("TQDM_DISABLE", value)
    bar = progress_bar(3, None, "D-PSGD")
    assert bar.disable is silent and bar.leave is False  # a finished bar leaves no line
    bar.close()


def test_history_records_each_round_and_names_a_divergence():
    from dmlbook.engine import History
    nodes = Nodes(make_model("logreg", seed=0), 3)
    X, y = torch.randn(10, 64), torch.randint(0, 10, (10,))
    history = History()
    history.record(0, nodes, X, y)
    arrays = history.as_arrays()
    assert list(arrays) == ["round", "test_loss", "test_acc", "consensus", "avg_loss",
                            "avg_acc", "train_loss"]
    assert arrays["test_loss"].shape == (1, 3) and arrays["round"].tolist() == [0]
    assert [row["node"] for row in history.table()] == [0, 1, 2]
    assert list(history.table()[0]) == ["round", "node", "test_loss", "test_acc"]
    assert History().train_seconds == 0.0 == History().train_cpu_seconds
    nodes.params[1, 0] = float("inf")
    with pytest.raises(ValueError, match=r"^diverged at round 4; try a smaller lr "
                                         r"\(the models: no longer finite\)$"):
        history.record(4, nodes, X, y)


def test_gathered_rows_take_only_slices():
    from dmlbook.engine import GatheredRows
    rows = GatheredRows(torch.arange(6.0)[:, None], torch.tensor([[0, 1], [2, 3]]))
    assert rows[1:].tolist() == [[[2.0], [3.0]]]
    with pytest.raises(TypeError, match=r"^GatheredRows takes a slice of rows$"):
        rows[0]


def test_prepare_defaults_to_seed_0():
    from dmlbook.engine import prepare
    default, zero = prepare("mlp", 3), prepare("mlp", 3, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(default.module.parameters(),
                                                 zero.module.parameters()))
    assert torch.equal(default.node_data.y, zero.node_data.y)
    assert not torch.equal(prepare("mlp", 3, seed=1).node_data.y, zero.node_data.y)


def test_sgd_step_refuses_a_zero_lr_by_name():
    nodes = Nodes(make_model("mlp", seed=0), 2)
    with pytest.raises(ValueError, match=r"^lr must be a finite number > 0 and <= 1e\+30, got 0$"):
        nodes.sgd_step(torch.randn(2, 3, 64), torch.zeros(2, 3, dtype=torch.long), 0)


def test_node_data_refuses_a_device_it_cannot_use():
    with pytest.raises(ValueError, match=r"^device must be 'cpu' or 'cuda', got 'meta'$"):
        NodeData(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long), [np.arange(4)],
                 device="meta")


def test_prepare_defaults_to_a_dirichlet_alpha_of_one_half():
    from dmlbook.engine import prepare
    default = prepare("mlp", 4, split="dirichlet")
    half = prepare("mlp", 4, split="dirichlet", alpha=0.5)
    assert torch.equal(default.node_data.sizes, half.node_data.sizes)
    assert not torch.equal(prepare("mlp", 4, split="dirichlet", alpha=1.5).node_data.sizes,
                           half.node_data.sizes)


def test_flat_model_and_prepare_refusals_word_for_word():
    from dmlbook.engine import prepare
    model = make_model("mlp", seed=0)
    flat = FlatModel(model)
    with pytest.raises(ValueError, match=r"^flat must hold the model's 2,410 parameters, "
                                         r"got shape \(5,\)$"):
        flat.load_into(model, torch.zeros(5))
    with pytest.raises(ValueError, match=r"^dataset must be a dmlbook.data.Dataset or None, "
                                         r"got int$"):
        prepare("mlp", 2, dataset=5)


def test_evaluation_takes_at_most_256_nodes_at_once_by_default():
    nodes = Nodes(make_model("logreg", seed=0), 300)
    seen = []
    shared = nodes._forward.shared
    nodes._forward.shared = lambda params, X: seen.append(len(params)) or shared(params, X)
    nodes.evaluate(torch.randn(4, 64), torch.randint(0, 10, (4,)))
    assert seen == [256, 44]


def test_the_activation_budget_is_the_one_the_benchmarks_measured():
    """64 MiB: D-PSGD on 1,024 LeNet nodes peaks at 1.02 GiB (benchmarks/README.md)."""
    from dmlbook import engine
    assert engine.ACTIVATION_BUDGET == 64 * 2**20


def test_node_batch_indices_refuse_a_batch_by_name():
    nd = NodeData(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long), [np.arange(4)])
    with pytest.raises(ValueError, match=r"^batch_size must be a whole number >= 1 and "
                                         r"<= 65,536, got 0$"):
        nd.node_batch_indices(0, seeded_generator(0), 0)


def test_prepare_defaults_and_refusals():
    from dmlbook.engine import History, prepare
    default = prepare("mlp", 4, split="shards")
    two = prepare("mlp", 4, split="shards", shards_per_node=2)
    assert torch.equal(default.node_data.y, two.node_data.y)
    with pytest.raises(ValueError, match=r"^device must be 'cpu' or 'cuda', got 'meta'$"):
        prepare("mlp", 2, device="meta")
    assert History().labels == {}


def test_batches_draw_every_example_of_a_node_even_its_last():
    nd = NodeData(torch.arange(5.0)[:, None], torch.zeros(5, dtype=torch.long),
                  [np.arange(3), np.arange(3, 5)])
    idx = nd.batch_indices(seeded_generator(0), 200)
    assert set(idx[0].tolist()) == {0, 1, 2} and set(idx[1].tolist()) == {3, 4}
    assert set(nd.node_batch_indices(1, seeded_generator(1), 200).tolist()) == {3, 4}


@pytest.mark.parametrize("n, expected", [(5, [(0, 2), (2, 4), (4, 6)]), (4, [(0, 2), (2, 4)]),
                                         (1, [(0, 1)])])
def test_the_row_plan_splits_the_nodes_over_two_threads_in_whole_slices(monkeypatch, n,
                                                                        expected):
    # The budget admits every node in one slice, which two threads share: slices of
    # n // 2 nodes (at least one), whole numbers, covering each node once.
    from dmlbook import engine

    monkeypatch.setattr(engine.stacked, "threads_for", lambda strategy, device: 2)
    nodes = Nodes(make_model("logreg"), n)
    slices, threads = nodes._row_plan(torch.zeros(n, 4, 64))
    assert threads == 2
    assert [(s.start, s.stop) for s in slices] == expected
    assert all(isinstance(s.stop, int) for s in slices)


def test_prepare_puts_the_test_tensors_on_the_runs_device(monkeypatch):
    # No CUDA here: the "meta" device stands in for another device, so that test
    # tensors left on the CPU (a .to(None)) are seen.
    monkeypatch.setattr(engine, "resolve_device", lambda device: torch.device("meta"))
    setup = engine.prepare("mlp", 4, device="cuda")
    assert setup.X_test.device.type == setup.y_test.device.type == "meta"
    assert setup.X_test.shape == (359, 64) and setup.y_test.shape == (359,)
