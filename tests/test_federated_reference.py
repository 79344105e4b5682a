"""federated.py against a plain reference implementation written here from its docstrings.

The reference keeps one ``torch.nn.Module`` per client (or node), made by
:func:`dmlbook.models.make_model`, and trains it with ``torch.optim.SGD`` in
explicit for-loops. It reuses only the documented public building blocks:
the digits and their split (:mod:`dmlbook.data`), the batch stream
(:func:`dmlbook.engine.seeded_generator`), the graph of a decentralized run
(:func:`dmlbook.topology.make_graph`) and the compressors
(:func:`dmlbook.compression.compress`). It uses nothing of the simulators'
own machinery (``Nodes``, ``local_training``, ``mix``); ``Nodes`` appears only
as the input that ``fedsgd_round`` and ``local_training`` themselves take.

The rules it follows, as documented (and, for the order of random draws, as
read in the code):

* Setup: the digits split with ``seed``, the model initialised from
  ``seed``, the training examples split over the clients with ``seed``.
* FedAvg, each round ``r = 1 .. rounds``: the cohort (every client, with no
  draw, or ``cohort_size`` distinct clients drawn from
  ``numpy.random.default_rng([seed, 3])``, sorted); the server's model goes
  down to each of them, each takes ``local_steps`` SGD steps on batches drawn
  with replacement (one ``torch.rand((cohort, batch), float64)`` of the
  batch stream per step, client ``j`` of the cohort on row ``j``), or
  ``local_epochs`` shuffled passes (one ``torch.rand((cohort, largest
  client), float64)`` per pass: each client's order is the argsort of its
  first ``m`` draws, its last batch filled from the start of that order);
  each sends its update or parameters through ``compression.compress``; the
  server takes the mean (or ``aggregate``'s model). Test loss and accuracy
  of the server's model at round 0 and after every round.
* D-PSGD and its gradient twin: one batch per node per round from the batch
  stream; Metropolis weights ``1 / (1 + max(d_i, d_j))`` per edge.

Every observable output is compared with the reference's: final models, each
per-round series and every column of the ledger.
"""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dmlbook import compression, data, federated
from dmlbook.engine import NodeData, Nodes, seeded_generator
from dmlbook.models import make_model
from dmlbook.topology import make_graph

ATOL = 1e-5  # per-client modules and the batched engine differ by float rounding only
# With quantization, an entry that float rounding puts on either side of a code boundary
# moves by one code: a 13- to 15-bit code of a parameter range of ~2 is up to 2.5e-4,
# a third or a quarter of that once averaged over the cohort. (Here the two agree to the
# bit, but another BLAS may round differently.) Default 8-bit codes would move by ~1e-2.
ATOL_QUANTIZED = 1e-4


# --------------------------------------------------------------------------- helpers


def flat(module):
    return torch.nn.utils.parameters_to_vector(module.parameters()).detach().clone()


def module_with(template, vector):
    """A fresh copy of ``template`` holding the flat parameters ``vector``."""
    module = copy.deepcopy(template)
    torch.nn.utils.vector_to_parameters(vector.detach().clone(), module.parameters())
    return module


def evaluate(module, X, y):
    """Mean cross-entropy and accuracy of one model on the whole test set."""
    with torch.no_grad():
        logits = module(X)
        return float(F.cross_entropy(logits, y)), float((logits.argmax(1) == y).float().mean())


def sgd_step(module, optimizer, X, y):
    optimizer.zero_grad()
    F.cross_entropy(module(X), y).backward()
    optimizer.step()


def client_examples(dataset, parts):
    """Each client's own training examples, in the order of its sorted indices."""
    return [(dataset.X_train[torch.as_tensor(p)], dataset.y_train[torch.as_tensor(p)])
            for p in parts]


def draw_batch_positions(generator, sizes, batch_size):
    """One batch per row, with replacement: positions into each row's own examples."""
    u = torch.rand((len(sizes), batch_size), generator=generator, dtype=torch.float64)
    return [torch.clamp((u[j] * m).long(), max=m - 1) for j, m in enumerate(sizes)]


def draw_epoch_orders(generator, sizes):
    """One shuffled pass per row: a permutation of each row's own examples."""
    u = torch.rand((len(sizes), max(sizes)), generator=generator, dtype=torch.float64)
    return [u[j, :m].argsort() for j, m in enumerate(sizes)]


def setup(model, n, *, dataset, split, seed):
    """The run's data, initial model and each client's examples (documented: all from seed)."""
    dataset = data.load_digits(seed=seed) if dataset is None else dataset
    template = make_model(model, seed=seed, n_features=dataset.n_features,
                          num_classes=dataset.num_classes)
    parts = data.split(dataset.y_train, n, kind=split, seed=seed)
    return dataset, template, client_examples(dataset, parts)


# --------------------------------------------------------------------------- FedAvg reference


def reference_cohorts(seed, n, k, rounds):
    """The cohort of each round: everyone (no draw) or k sorted distinct clients."""
    stream = np.random.default_rng([seed, 3])
    if k == n:
        return [list(range(n))] * rounds
    return [sorted(stream.choice(n, k, replace=False).tolist()) for _ in range(rounds)]


def train_cohort(template, server, examples, cohort, generator, *, lr, batch_size,
                 local_steps, local_epochs):
    """The cohort's local SGD from the server's model: one module per client."""
    modules = [module_with(template, server) for _ in cohort]
    optimizers = [torch.optim.SGD(m.parameters(), lr=lr) for m in modules]
    sizes = [len(examples[c][1]) for c in cohort]
    if local_epochs is None:
        for _ in range(local_steps):  # one draw for the whole cohort per step
            positions = draw_batch_positions(generator, sizes, batch_size)
            for j, c in enumerate(cohort):
                X, y = examples[c]
                sgd_step(modules[j], optimizers[j], X[positions[j]], y[positions[j]])
    else:
        for _ in range(local_epochs):
            orders = draw_epoch_orders(generator, sizes)
            for j, c in enumerate(cohort):
                X, y = examples[c]
                m = sizes[j]
                for start in range(0, m, batch_size):  # ceil(m / B) batches, wrapped
                    pos = orders[j][torch.arange(start, start + batch_size) % m]
                    sgd_step(modules[j], optimizers[j], X[pos], y[pos])
    return torch.stack([flat(m) for m in modules])


def reference_fedavg(*, n_clients=10, rounds=30, local_steps=5, lr=0.1, batch_size=32,
                     send="update", method="none", level=None, model="mlp", dataset=None,
                     split="iid", sample_round=None, seed=0, aggregate=None,
                     cohort_size=None, local_epochs=None):
    """FedAvg as run_fedavg's docstring describes it (defaults: its signature's)."""
    n, k = n_clients, n_clients if cohort_size is None else cohort_size
    dataset, template, examples = setup(model, n, dataset=dataset, split=split, seed=seed)
    sizes = [p.numel() for p in template.parameters()]
    model_bytes = 4 * sum(sizes)
    generator = seeded_generator(seed)
    server = flat(template)
    out = {"rounds": [], "test_loss": [], "test_acc": [], "rel_error": [], "step_error": [],
           "client_step_error": [], "ledger": [], "payloads": {}}

    def record(r):
        loss, acc = evaluate(module_with(template, server), dataset.X_test, dataset.y_test)
        out["rounds"].append(r)
        out["test_loss"].append(loss)
        out["test_acc"].append(acc)

    record(0)
    for r, cohort in enumerate(reference_cohorts(seed, n, k, rounds), start=1):
        out["ledger"] += [(r, n, c, model_bytes, True) for c in cohort]  # the model goes down
        params = train_cohort(template, server, examples, cohort, generator, lr=lr,
                              batch_size=batch_size, local_steps=local_steps,
                              local_epochs=local_epochs)
        updates = params - server
        raw = updates if send == "update" else params
        if r == sample_round:
            out["payloads"] = {"update": updates, "parameters": params}
        packed = [compression.compress(row, method, level, sizes=sizes,
                                       reference=server if send == "parameters" else None)
                  for row in raw]
        sent = torch.stack([p.values for p in packed])
        out["ledger"] += [(r, c, n, p.nbytes, True) for c, p in zip(cohort, packed)]
        out["rel_error"].append(np.mean([compression.relative_error(a, b)
                                         for a, b in zip(raw, sent)]))
        out["client_step_error"].append(np.mean([
            float((b - a).norm() / u.norm()) for a, b, u in zip(raw, sent, updates)]))
        if aggregate is not None:
            n_examples = torch.tensor([len(examples[c][1]) for c in cohort])
            new = aggregate(server.clone(), sent.clone(), n_examples)
        elif send == "update":
            new = server + sent.mean(0)
        else:
            new = sent.mean(0)
        exact = params.mean(0)  # where the uncompressed mean would have gone
        out["step_error"].append(float((new - exact).norm() / (exact - server).norm()))
        server = new
        record(r)
    out["server"] = server
    return out


# --------------------------------------------------------------------------- comparisons


def ledger_rows(ledger):
    c = ledger.columns()
    return list(zip(*(c[name].tolist() for name in ("round", "sender", "receiver", "nbytes",
                                                    "delivered"))))


def assert_series(got, want, name, atol=ATOL, rtol=1e-6):
    assert len(got) == len(want), name
    np.testing.assert_allclose(np.asarray(got, float), np.asarray(want, float), atol=atol,
                               rtol=rtol, err_msg=name)


def assert_same_fedavg(run, ref, n_clients, method="none"):
    atol = ATOL_QUANTIZED if method.startswith("quantize") else ATOL
    assert run.rounds == ref["rounds"]
    torch.testing.assert_close(run.server, ref["server"], atol=atol, rtol=0)
    assert_series(run.test_loss, ref["test_loss"], "test_loss", atol=atol)
    assert_series(run.test_acc, ref["test_acc"], "test_acc", atol=1e-6, rtol=0)
    # Compression errors: a value at a quantization boundary may round either way.
    assert_series(run.rel_error, ref["rel_error"], "rel_error", atol=1e-6, rtol=1e-3)
    assert_series(run.client_step_error, ref["client_step_error"], "client_step_error",
                  atol=1e-6, rtol=1e-3)
    # Without compression the step error is float rounding alone: small, not equal.
    assert_series(run.step_error, ref["step_error"], "step_error", atol=1e-4, rtol=1e-3)
    assert ledger_rows(run.ledger) == ref["ledger"]
    assert run.ledger.n_nodes == n_clients + 1  # the server is node n_clients
    ups = [row for row in ref["ledger"] if row[2] == n_clients]
    assert run.upload_bytes == sum(row[3] for row in ups)
    assert run.payloads.keys() == ref["payloads"].keys()
    for key in ref["payloads"]:
        torch.testing.assert_close(run.payloads[key], ref["payloads"][key], atol=atol, rtol=0)


def weighted_by_examples(server, payloads, n_examples):
    """A server step other than the plain mean: updates weighted by each client's data."""
    w = n_examples.double() / n_examples.sum()
    return server + (w[:, None] * payloads.double()).sum(0).float()


# Small runs in which every parameter differs from its default and matters:
# seeds 3 and 7, cohorts smaller than the clients, several local steps, non-iid
# splits, every compression method at a level other than its default.
FEDAVG_CONFIGS = {
    "defaults": dict(rounds=2),
    "all-clients": dict(n_clients=6, rounds=3, local_steps=3, lr=0.05, batch_size=5,
                        sample_round=2, seed=7),
    "cohort-quantize-parameters": dict(n_clients=8, cohort_size=3, rounds=4, local_steps=2,
                                       lr=0.2, batch_size=6, send="parameters",
                                       method="quantize", level=14, split="shards",
                                       sample_round=3, seed=3),
    "epochs-topk-dirichlet": dict(n_clients=7, cohort_size=4, rounds=3, local_epochs=2,
                                  batch_size=40, lr=0.08, method="topk", level=0.05,
                                  split="dirichlet", seed=7, sample_round=1),
    "per-tensor-parameters": dict(n_clients=5, cohort_size=4, rounds=3, local_steps=2,
                                  lr=0.15, batch_size=7, send="parameters",
                                  method="quantize_per_tensor", level=15, seed=3),
    "topk-keep-parameters": dict(n_clients=5, rounds=3, local_steps=2, lr=0.15, batch_size=7,
                                 send="parameters", method="topk_keep", level=0.2, seed=7),
    "topk-keep-update": dict(n_clients=5, cohort_size=2, rounds=3, local_steps=2, lr=0.15,
                             batch_size=7, method="topk_keep", level=0.03, seed=3),
    "logreg-own-data-aggregate": dict(n_clients=4, cohort_size=3, rounds=3, local_steps=2,
                                      lr=0.3, batch_size=9, model="logreg", split="shards",
                                      dataset=data.load_digits(test_fraction=0.3, seed=11),
                                      aggregate=weighted_by_examples, method="topk",
                                      level=0.3, seed=7),  # aggregate gets what was sent
}


@pytest.mark.parametrize("config", FEDAVG_CONFIGS.values(), ids=FEDAVG_CONFIGS.keys())
def test_run_fedavg_matches_the_reference(config):
    run = federated.run_fedavg(progress=False, **config)
    ref = reference_fedavg(**config)
    assert_same_fedavg(run, ref, config.get("n_clients", 10), config.get("method", "none"))


# --------------------------------------------------------------------------- the pieces


def test_cohort_stream_draws_sorted_distinct_clients_round_after_round():
    stream = federated.cohort_stream(7)
    want = reference_cohorts(7, 12, 5, rounds=4)
    for cohort in want:
        got = federated.draw_cohort(stream, 12, 5)
        assert got.dtype == torch.int64 and got.tolist() == cohort


@pytest.mark.parametrize("local_epochs", [None, 2])
def test_local_training_trains_each_row_on_its_clients_data(local_epochs):
    """Rows 0, 1, 2 are clients 4, 1, 5 (an unsorted cohort) of different sizes."""
    d = data.load_digits(seed=3)
    parts = data.split(d.y_train, 6, kind="dirichlet", seed=3)
    cohort = [4, 1, 5]
    template = make_model("mlp", seed=3)
    clients = Nodes(template, len(cohort))
    start = clients.params[0].clone()
    kw = dict(batch_size=30, lr=0.2, local_steps=3, local_epochs=local_epochs)
    federated.local_training(clients, NodeData(d.X_train, d.y_train, parts),
                             torch.tensor(cohort), seeded_generator(3), **kw)
    want = train_cohort(template, start, client_examples(d, parts), cohort,
                        seeded_generator(3), **kw)
    torch.testing.assert_close(clients.params, want, atol=ATOL, rtol=0)
    assert (clients.params - start).abs().max() > 1e-3  # they did train


@pytest.mark.parametrize("send", ["gradients", "parameters"])
def test_fedsgd_round_matches_per_client_gradients(send):
    d = data.load_digits(seed=3)
    parts = data.split(d.y_train, 5, kind="shards", seed=3)
    examples = client_examples(d, parts)
    positions = draw_batch_positions(seeded_generator(3), [len(y) for _, y in examples], 6)
    X = torch.stack([x[p] for (x, _), p in zip(examples, positions)])
    y = torch.stack([t[p] for (_, t), p in zip(examples, positions)])
    template = make_model("mlp", seed=3)
    server = flat(template)
    nodes = Nodes(make_model("mlp", seed=9), 5)  # other models: reset to the server's
    new = federated.fedsgd_round(server, nodes, X, y, lr=0.4, send=send)
    grads = []
    for Xi, yi in zip(X, y):
        module = module_with(template, server)
        F.cross_entropy(module(Xi), yi).backward()
        grads.append(torch.cat([p.grad.reshape(-1) for p in module.parameters()]))
    want = server - 0.4 * torch.stack(grads).mean(0)
    torch.testing.assert_close(new, want, atol=1e-6, rtol=0)
    assert (new - server).abs().max() > 1e-3


# --------------------------------------------------------------------------- D-PSGD reference


def metropolis(graph, n):
    W = np.zeros((n, n))
    for i, j in graph.edges():
        W[i, j] = W[j, i] = 1.0 / (1 + max(graph.degree(i), graph.degree(j)))
    W[np.diag_indices(n)] = 1.0 - W.sum(1)
    return W


def reference_exchange(*, send="parameters", n_nodes=16, topology="regular", degree=None,
                       rounds=40, lr=0.1, batch_size=32, model="mlp", split="iid",
                       init="own", seed=0):
    """Each node its own module; one batch each a round; mix models or gradients by W."""
    n = n_nodes
    dataset, template, examples = setup(model, n, dataset=None, split=split, seed=seed)
    uses_degree = topology in ("regular", "random")
    graph = make_graph(topology, n, seed=seed,
                       degree=(degree or 4) if uses_degree else degree)
    W = torch.tensor(metropolis(graph, n), dtype=torch.float64)
    if init == "own":  # node i from seed + 1 + i: none is the common model
        params = torch.stack([flat(make_model(model, seed=seed + 1 + i)) for i in range(n)])
    else:
        params = flat(template).repeat(n, 1)
    payload = 4 * params.shape[1]
    generator = seeded_generator(seed)
    out = {"test_loss": [], "test_acc": [], "avg_loss": [], "avg_acc": [], "consensus": [],
           "ledger": []}

    def record():
        scores = [evaluate(module_with(template, p), dataset.X_test, dataset.y_test)
                  for p in params]
        out["test_loss"].append([s[0] for s in scores])
        out["test_acc"].append([s[1] for s in scores])
        mean = params.mean(0)
        loss, acc = evaluate(module_with(template, mean), dataset.X_test, dataset.y_test)
        out["avg_loss"].append(loss)
        out["avg_acc"].append(acc)
        out["consensus"].append(float((params - mean).norm(dim=1).mean()))

    def mixed(rows):
        return (W @ rows.double()).float()

    record()
    for r in range(1, rounds + 1):
        positions = draw_batch_positions(generator, [len(y) for _, y in examples], batch_size)
        grads = []
        for i, (X, y) in enumerate(examples):
            module = module_with(template, params[i])
            F.cross_entropy(module(X[positions[i]]), y[positions[i]]).backward()
            grads.append(torch.cat([p.grad.reshape(-1) for p in module.parameters()]))
        grads = torch.stack(grads)
        params = mixed(params - lr * grads) if send == "parameters" else params - lr * mixed(grads)
        out["ledger"] += sorted((r, i, j, payload, True) for i, j in graph.edges()) + \
            sorted((r, j, i, payload, True) for i, j in graph.edges())
        record()
    out["params"], out["W"] = params, W
    return out


EXCHANGE_CONFIGS = {
    "defaults": dict(rounds=2),
    "parameters": dict(n_nodes=6, degree=2, rounds=3, lr=0.3, batch_size=5, split="shards",
                       seed=7),
    "gradients-ring": dict(send="gradients", n_nodes=7, topology="ring", rounds=3, lr=0.25,
                           batch_size=6, split="dirichlet", seed=3),
    "common-logreg": dict(n_nodes=6, topology="random", degree=3, rounds=3, lr=0.2,
                          batch_size=4, model="logreg", init="common", seed=3),
}


@pytest.mark.parametrize("config", EXCHANGE_CONFIGS.values(), ids=EXCHANGE_CONFIGS.keys())
def test_run_decentralized_exchange_matches_the_reference(config):
    run = federated.run_decentralized_exchange(progress=False, **config)
    ref = reference_exchange(**config)
    rounds = config["rounds"]
    np.testing.assert_allclose(run.topology.W, ref["W"].numpy(), atol=1e-12)
    torch.testing.assert_close(run.nodes.params, ref["params"], atol=ATOL, rtol=0)
    h = run.history
    assert h.rounds == list(range(rounds + 1))
    for name in ("test_loss", "avg_loss", "consensus"):
        assert_series(np.ravel(getattr(h, name)), np.ravel(ref[name]), name)
    for name in ("test_acc", "avg_acc"):
        assert_series(np.ravel(getattr(h, name)), np.ravel(ref[name]), name, atol=1e-6, rtol=0)
    assert h.train_loss == [] and h.labels == {}  # records neither
    # Messages: one per directed edge a round, in any order within the round.
    assert sorted(ledger_rows(h.ledger)) == sorted(ref["ledger"])
    assert h.ledger.n_nodes == config.get("n_nodes", 16)


# --------------------------------------------------------------------------- the table


def test_compression_table_rows_match_reference_runs():
    settings = (("quantize", 13), ("topk", 0.04))
    kw = dict(n_clients=4, cohort_size=3, rounds=2, local_steps=2, lr=0.2, batch_size=6,
              seed=7)
    rows = federated.compression_table(settings, sends=("parameters", "update"), **kw)
    assert [(r["method"], r["level"], r["send"]) for r in rows] == [
        (m, lvl, s) for m, lvl in settings for s in ("parameters", "update")]
    for row in rows:
        ref = reference_fedavg(send=row["send"], method=row["method"], level=row["level"], **kw)
        assert_same_fedavg(row["run"], ref, kw["n_clients"], row["method"])
        upload = sum(rec[3] for rec in ref["ledger"] if rec[2] == kw["n_clients"])
        assert row["upload_bytes"] == upload
        assert row["accuracy"] == pytest.approx(ref["test_acc"][-1], abs=1e-6)
        for name in ("rel_error", "step_error", "client_step_error"):
            assert row[name] == pytest.approx(np.mean(ref[name]), rel=1e-3, abs=1e-6), name
