"""Exercise 4: federated learning sends gradients (or updates); DL sends parameters.

* :func:`fedsgd_round` — one FedSGD round from a common model, with clients
  sending their gradients or their new parameters.
* :func:`run_fedavg` — FedAvg (several local steps per round) where clients
  send their update (new minus old parameters) or their parameters, either
  possibly compressed (:mod:`dmlbook.compression`).
* :func:`run_decentralized_exchange` — nodes on a graph with *different*
  models, averaging either their neighbours' gradients or their neighbours'
  parameters (D-PSGD).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from . import compression
from .engine import (History, Nodes, mix, prepare, progress_bar,
                     seeded_generator)
from .ledger import Ledger, check_run_messages
from .models import check_evaluation_work, check_training_work, make_model
from .topology import Topology, resolve_topology
from .units import (MAX_LR, MAX_NODE_EVALS, MAX_NODES, MAX_SEED, MAX_NODE_STEPS, MAX_ROUNDS,
                    check_batch_size, check_choice, check_diverged, check_int, check_number,
                    check_product, check_seed)

SEND_DL = ("parameters", "gradients")
# The tag of the stream that samples FedAvg's cohorts: numpy.random.default_rng([seed,
# COHORT_STREAM]), whose seed sequence mixes both into a stream of its own. A torch
# generator cannot give one: it keeps only the low 32 bits of its seed, so every other
# seed is some run's batch stream (the earlier 2**40 + seed was this run's own).
COHORT_STREAM = 3


def cohort_stream(seed: int) -> np.random.Generator:
    """The stream a FedAvg run of ``seed`` draws its cohorts from, apart from its
    batches' (so the batches of a run with cohorts are those of one without)."""
    return np.random.default_rng([check_seed(seed), COHORT_STREAM])


def draw_cohort(stream: np.random.Generator, n_clients: int, cohort_size: int) -> torch.Tensor:
    """One round's cohort: ``cohort_size`` distinct clients of ``n_clients``, each
    set equally likely, in increasing order."""
    return torch.from_numpy(np.sort(stream.choice(n_clients, cohort_size, replace=False)))


def fedsgd_round(server: torch.Tensor, nodes: Nodes, X, y, *, lr: float,
                 send: str = "gradients") -> torch.Tensor:
    """One FedSGD round from the common model ``server``: the new server model.

    ``"gradients"``: clients send ``g_i``; the server steps ``x - lr * mean(g_i)``.
    ``"parameters"``: clients step themselves and send ``x - lr * g_i``; the
    server averages them. Both give the same model.
    """
    send = check_choice("send", send, ("gradients", "parameters"))
    lr = float(check_number("lr", lr, maximum=MAX_LR))
    if not isinstance(nodes, Nodes) or not isinstance(server, torch.Tensor) \
            or server.shape != nodes.params.shape[1:]:
        raise ValueError("server must be a tensor of one model's parameters and nodes "
                         "a dmlbook.engine.Nodes of that model")
    nodes.params = server.expand(nodes.n, -1).clone()
    g = nodes.gradients(X, y)
    if send == "gradients":
        return server - lr * g.mean(0)
    return (nodes.params - lr * g).mean(0)


@dataclass
class FLResult:
    """A federated run: test accuracy and loss per round, bytes, payload samples."""

    rounds: list[int] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    rel_error: list[float] = field(default_factory=list)  # compressed vs raw payload
    step_error: list[float] = field(default_factory=list)  # server model vs uncompressed, per step
    # One client's compression error relative to its own step, mean over clients:
    # the error the server's step would have without averaging.
    client_step_error: list[float] = field(default_factory=list)
    ledger: Ledger = field(default_factory=Ledger)
    payloads: dict[str, torch.Tensor] = field(default_factory=dict)
    server: torch.Tensor | None = None

    @property
    def upload_bytes(self) -> int:
        """Bytes the clients sent to the server (the compressed payloads)."""
        c = self.ledger.columns()
        return int(c["nbytes"][c["receiver"] == self.ledger.n_nodes - 1].sum())


def run_fedavg(*, n_clients: int = 10, rounds: int = 30, local_steps: int = 5,
               lr: float = 0.1, batch_size: int = 32, send: str = "update",
               method: str = "none", level=None, model="mlp", dataset=None,
               split: str = "iid", sample_round: int | None = None, seed: int = 0,
               progress: bool | None = None, aggregate=None, device="cpu",
               cohort_size: int | None = None, local_epochs: int | None = None) -> FLResult:
    """FedAvg; the server is node ``n_clients``.

    Bounds: ``cohort x rounds x local_steps`` (or ``local_epochs`` x the
    batches of a pass) <= :data:`~dmlbook.units.MAX_NODE_STEPS` (a step of a
    large model or batch counting as several: :func:`~dmlbook.models.step_cost`), the
    server's model evaluated ``rounds + 1`` times, each counted as
    :func:`~dmlbook.models.evaluation_cost` evaluations (more than one only for a
    large model or test set), at most :data:`~dmlbook.units.MAX_NODE_EVALS`, and the
    run's ``2 x cohort x rounds`` messages <=
    :data:`~dmlbook.units.MAX_LEDGER_RECORDS` (its ledger keeps every record),
    both checked before the first round.

    Each round: the server sends its model to every client of the round's
    cohort (``cohort_size=None``: every client); each takes ``local_steps``
    SGD steps at learning rate ``lr`` on batches of ``batch_size`` of its own
    examples (or ``local_epochs`` passes over its data, see below); each
    sends back its ``"update"`` (new minus received parameters) or its
    ``"parameters"``, compressed with ``method`` at ``level``; the server
    adds the mean update, or takes the mean model.
    ``sample_round`` keeps that round's raw updates and parameters in
    ``payloads`` (for histograms). ``rel_error`` is the payloads' relative
    compression error; ``step_error`` the error of the new server model
    relative to the step it should have taken; ``client_step_error`` one
    client's compression error relative to its own update, averaged over the
    clients (what averaging the ten payloads reduces to ``step_error``).
    ``"topk_keep"`` fills the entries a client did not send with the server's
    own values (its current model for parameters, zero for an update).
    ``aggregate(server, payloads, n_examples)``, if given, is the server's
    step instead of the plain mean: the new model from the old one, the
    ``(n_clients, P)`` payloads as received and each client's number of
    training examples (the workbook's checks pass a student's step here).
    ``device`` is ``"cpu"`` (default) or ``"cuda"``: where the clients train.

    ``cohort_size`` (clients, 1 to ``n_clients``): each round the server samples
    that many distinct clients, uniformly without replacement, from a random
    stream of its own (seeded by ``seed``); only they receive the model,
    train and upload, so the ledger holds ``2 * cohort_size`` messages a
    round, and the server averages their payloads only (``aggregate`` gets
    the cohort's rows and sizes). The engine trains the cohort as one
    ``Nodes`` of ``cohort_size`` rows. ``None`` (the default) is every client
    every round, with the same results as before this option existed.

    ``local_epochs`` (optional): instead of ``local_steps`` batches drawn
    with replacement, each client goes ``local_epochs`` times over its own
    examples in a fresh shuffled order, in batches of ``batch_size``
    (:meth:`dmlbook.engine.NodeData.epoch_indices`: a client whose number of
    examples is not a multiple of ``batch_size`` fills its last batch from
    the start of that pass); ``local_steps`` is then not used.
    """
    n = check_int("n_clients", n_clients, maximum=MAX_NODES)
    k = n if cohort_size is None else check_cohort_size(cohort_size, n)
    rounds = check_int("rounds", rounds, maximum=MAX_ROUNDS)
    local_steps = check_int("local_steps", local_steps, maximum=MAX_ROUNDS)
    if local_epochs is not None:
        local_epochs = check_int("local_epochs", local_epochs, maximum=MAX_ROUNDS)
    check_product("rounds", k * rounds * (local_epochs or local_steps), MAX_NODE_STEPS,
                  "cohort x rounds x local steps or epochs (MAX_NODE_STEPS)")
    check_run_messages("rounds", rounds * 2 * k, "rounds x 2 x cohort messages (down and up)")
    lr = float(check_number("lr", lr, maximum=MAX_LR))
    batch_size = check_batch_size(batch_size, k)
    send = check_choice("send", send, ("update", "parameters"))
    method = check_choice("method", method, compression.METHODS)
    level = compression.check_level(method, level)
    if sample_round is not None:
        sample_round = check_int("sample_round", sample_round, maximum=rounds)
    if aggregate is not None and not callable(aggregate):
        raise ValueError(f"aggregate must be None or a function, got {type(aggregate).__name__}")
    setup = prepare(model, n, dataset=dataset, split=split, seed=seed, device=device)
    module, node_data, X_test, y_test = setup.module, setup.node_data, setup.X_test, setup.y_test
    if local_epochs is not None:  # the steps of a pass: the largest client's batches
        steps = local_epochs * -(-int(node_data.sizes.max()) // batch_size)
        check_product("local_epochs", k * rounds * steps, MAX_NODE_STEPS,
                      "cohort x rounds x local_epochs x batches per pass (MAX_NODE_STEPS)")
        check_training_work("local_epochs", k * rounds * steps, module, setup.dataset.X_train,
                            batch_size, "cohort x rounds x local_epochs x batches per pass")
    else:
        check_training_work("rounds", k * rounds * local_steps, module, setup.dataset.X_train,
                            batch_size, "cohort x rounds x local_steps")
    check_evaluation_work("rounds", rounds + 1, module, X_test,
                          "rounds + 1 evaluations of the server's model")
    clients = Nodes(module, k, device=device)
    server = clients.params[0].clone()
    result = FLResult(ledger=Ledger(n + 1))
    generator = seeded_generator(seed)
    cohorts = cohort_stream(seed)
    everyone = torch.arange(n)

    def record(r):
        loss, acc = clients.evaluate(X_test, y_test, params=server[None])
        result.rounds.append(r)
        result.test_loss.append(float(loss[0]))
        result.test_acc.append(float(acc[0]))

    record(0)
    bar = progress_bar(rounds, progress, "FedAvg")
    for r in range(1, rounds + 1):
        cohort = everyone if k == n else draw_cohort(cohorts, n, k)
        result.ledger.record(r, n, cohort.numpy(), clients.payload_bytes)
        clients.params = server.expand(k, -1).clone()
        local_training(clients, node_data, None if k == n else cohort, generator,
                       batch_size=batch_size, lr=lr, local_steps=local_steps,
                       local_epochs=local_epochs)
        check_diverged(r, **{"the clients' models": clients.params})
        updates = clients.params - server
        raw = updates if send == "update" else clients.params
        if r == sample_round:
            result.payloads = {"update": updates.clone(), "parameters": clients.params.clone()}
        if method == "none":  # sent as it is: no copy, and no error to measure
            sent, nbytes = raw, clients.payload_bytes
            result.rel_error.append(0.0)
            result.client_step_error.append(0.0)
        else:
            sent, nbytes = compression.compress_rows(
                raw, method, level, sizes=clients.flat.sizes,
                reference=server if send == "parameters" else None)
            result.rel_error.append(float(compression.relative_errors(raw, sent).double().mean()))
            result.client_step_error.append(float(
                ((sent - raw).norm(dim=1) / updates.norm(dim=1).clamp_min(1e-30)).mean()))
        result.ledger.record(r, cohort.numpy(), n, nbytes)
        exact = clients.params.mean(0)
        if aggregate is None:
            new = server + sent.mean(0) if send == "update" else sent.mean(0)
        else:
            new = aggregate(server.clone(), sent.clone(), node_data.sizes[cohort].clone())
        result.step_error.append(float((new - exact).norm() / (exact - server).norm()))
        server = new
        check_diverged(r, **{"the server's model": server})
        record(r)
        bar.update()
    bar.close()
    result.server = server
    return result


def check_cohort_size(cohort_size, n_clients: int) -> int:
    """``cohort_size`` if it is a whole number from 1 to ``n_clients``; else a ``ValueError``."""
    if isinstance(cohort_size, bool) or not isinstance(cohort_size, (int, np.integer)) \
            or not 1 <= cohort_size <= n_clients:
        raise ValueError(f"cohort_size must be None or a whole number of clients from 1 to "
                         f"n_clients ({n_clients}), got {cohort_size!r}")
    return int(cohort_size)


def local_training(clients: Nodes, node_data, cohort, generator, *, batch_size: int,
                   lr: float, local_steps: int, local_epochs: int | None) -> None:
    """The clients' local SGD of one round, all of them in each batched step.

    ``cohort`` (client ids, one per row of ``clients``; ``None``: row ``i`` is
    client ``i``) picks whose examples each row trains on. ``local_steps``
    batches drawn with replacement, or ``local_epochs`` shuffled passes.
    """
    if local_epochs is None:
        for _ in range(local_steps):
            clients.sgd_step(*node_data.batch(generator, batch_size, cohort), lr)
        return
    rows = torch.arange(node_data.n) if cohort is None else cohort
    for _ in range(local_epochs):
        idx, active = node_data.epoch_indices(generator, batch_size, rows)
        idx, active = idx.to(node_data.X.device), active.to(clients.params.device)
        for step_idx, step_active in zip(idx, active):
            X, y = node_data.X[step_idx], node_data.y[step_idx]
            clients.sgd_step(X, y, lr, None if bool(step_active.all()) else step_active)


@dataclass
class ExchangeResult:
    """A decentralized run with different initial models."""

    history: History
    topology: Topology
    nodes: Nodes


INITS = ("own", "common")


def run_decentralized_exchange(*, send: str = "parameters", n_nodes: int = 16,
                               topology: Topology | str = "regular", degree: int | None = None,
                               rounds: int = 40, lr: float = 0.1, batch_size: int = 32,
                               model: str = "mlp", split: str = "iid", init: str = "own",
                               seed: int = 0, progress: bool | None = None) -> ExchangeResult:
    """Nodes on a graph exchange gradients or parameters.

    ``"parameters"`` is D-PSGD: step, then average neighbours' models.
    ``"gradients"``: each node averages its neighbours' gradients (same
    weights ``W``) and steps its own model with that average. ``degree``
    (default 4) is for ``"regular"`` and ``"random"`` graphs only.
    ``init="own"``: every node starts from its own random model;
    ``"common"``: all start from the same one, so any distance between the
    models grows during training. Every node and their average are evaluated
    after every round: ``(n_nodes + 1) x (rounds + 1)`` <=
    :data:`~dmlbook.units.MAX_NODE_EVALS`, and the run's messages <=
    :data:`~dmlbook.units.MAX_LEDGER_RECORDS` (its ledger keeps every record).
    """
    send = check_choice("send", send, SEND_DL)
    init = check_choice("init", init, INITS)
    n = check_int("n_nodes", n_nodes, minimum=2, maximum=MAX_NODES)
    rounds = check_int("rounds", rounds, maximum=MAX_ROUNDS)
    check_product("rounds", n * rounds, MAX_NODE_STEPS, "n_nodes x rounds (MAX_NODE_STEPS)")
    lr = float(check_number("lr", lr, maximum=MAX_LR))
    batch_size = check_batch_size(batch_size, n)
    model = check_choice("model", model, ("logreg", "mlp", "cnn"))
    seed = check_seed(seed)
    topology = resolve_topology(topology, n, degree=degree, seed=seed, default_degree=4)
    check_run_messages("rounds", rounds * len(topology.src_np), "rounds x messages a round")
    check_product("rounds", (n + 1) * (rounds + 1), MAX_NODE_EVALS,
                  "(n_nodes + 1) x (rounds + 1) evaluations (MAX_NODE_EVALS)")
    setup = prepare(model, n, split=split, seed=seed)
    check_training_work("rounds", n * rounds, setup.module, setup.dataset.X_train,
                        batch_size, "n_nodes x rounds")
    module, node_data, X_test, y_test = setup.module, setup.node_data, setup.X_test, setup.y_test
    nodes = Nodes(module, n)
    if init == "own":
        nodes.params = torch.stack([
            torch.nn.utils.parameters_to_vector(make_model(model, seed=(seed + 1 + i) % (MAX_SEED + 1)).parameters())
            for i in range(n)]).detach()
    history = History(ledger=Ledger(n))
    generator = seeded_generator(seed)
    history.record(0, nodes, X_test, y_test)
    bar = progress_bar(rounds, progress, f"exchange {send}")
    for r in range(1, rounds + 1):
        X, y = node_data.batch(generator, batch_size)
        if send == "parameters":
            nodes.sgd_step(X, y, lr)
            nodes.params = mix(nodes.params, topology, round=r, ledger=history.ledger,
                               nbytes=nodes.payload_bytes)
        else:
            g = nodes.gradients(X, y)
            g = mix(g, topology, round=r, ledger=history.ledger, nbytes=nodes.payload_bytes)
            nodes.params = nodes.params - lr * g
        history.record(r, nodes, X_test, y_test)
        bar.update()
    bar.close()
    return ExchangeResult(history, topology, nodes)


COMPRESSIONS = (("none", None), ("quantize", 8), ("quantize", 4), ("topk", 0.1), ("topk", 0.01))
# Fairer ways to send parameters: a range per tensor; unsent entries keep the server's value.
FAIR_COMPRESSIONS = (("quantize_per_tensor", 4), ("topk_keep", 0.1), ("topk_keep", 0.01))


def compression_table(settings=COMPRESSIONS, *, sends=("update", "parameters"),
                      **fedavg_kw) -> list[dict]:
    """FedAvg with each compression setting, for each of ``sends``.

    One row per (method, level, send): mean relative payload error, mean error
    of the server's step, of one client's step, bytes uploaded, final test
    accuracy, and the run.
    """
    rows = []
    for method, level in settings:
        for send in sends:
            send = check_choice("sends", send, ("update", "parameters"))
            run = run_fedavg(send=send, method=method, level=level,
                             **{"progress": False, **fedavg_kw})
            rows.append({"method": method, "level": level, "send": send,
                         "rel_error": float(np.mean(run.rel_error)),
                         "step_error": float(np.mean(run.step_error)),
                         "client_step_error": float(np.mean(run.client_step_error)),
                         "upload_bytes": run.upload_bytes,
                         "accuracy": run.test_acc[-1], "run": run})
    return rows


def describe(method: str, level) -> str:
    """``"8-bit quantization"``, ``"top-1%"``, ``"no compression"``, ...

    The fair parameter baselines say so: ``"4-bit per tensor"``,
    ``"top-10%, rest kept"``.
    """
    method = check_choice("method", method, compression.METHODS)
    if method != "none":
        level = check_number("level", level)
    if method == "quantize":
        return f"{level:g}-bit quantization"
    if method == "quantize_per_tensor":
        return f"{level:g}-bit per tensor"
    if method == "topk":
        return f"top-{level:.0%}"
    if method == "topk_keep":
        return f"top-{level:.0%}, rest kept"
    return "no compression"
