"""Exercise 3: a parameter server and two all-reduces, as one algorithm.

All three run *synchronous* data-parallel SGD: each worker computes a gradient
on its own mini-batch, the gradients are averaged, and every worker ends the
round with the same new parameters. They differ only in who sends what to
whom:

* ``"ps"`` — a **parameter server** (node ``n``): every worker sends its
  gradient to the server, which averages them, takes the step, and sends the
  new parameters back to every worker.
* ``"naive"`` — a **naive all-reduce**: every worker sends its gradient to
  every other worker; each averages what it has and steps itself.
* ``"ring"`` — a **ring all-reduce**: gradients are cut into ``n`` chunks;
  in ``n - 1`` reduce-scatter steps each worker passes one partially summed
  chunk to its successor, and in ``n - 1`` all-gather steps the finished
  chunks travel round the ring.

Each worker holds its own copy of the model. Without faults all copies are
equal after every round, so every worker holds the latest model.

Faults follow :mod:`dmlbook.faults`, with these stated assumptions (all
adjustable, none of them a result):

* **A worker crashes.** A synchronous scheme waits for it. The parameter
  server and the naive all-reduce notice after ``detect_rounds`` rounds
  without progress (default 0: at once) and go on without it. A ring stalls,
  because the chunks the dead member should pass on never arrive, and is
  rebuilt without it after ``ring_rebuild_rounds`` rounds.
* **The server crashes.** Without ``failover`` training stops: the workers'
  gradients reach nobody. With ``failover`` the lowest-numbered live worker
  takes over after ``failover_rounds`` rounds without progress, starting from
  the model it holds (the latest one, unless its last reply was lost); it
  then computes its own gradient locally and serves the others.
* **Message loss** (``drop_prob``): every message is lost independently; the
  upward (to the server) and downward (from it) messages, the naive
  all-to-all and each ring step draw from their own random streams. The
  server averages the gradients that arrived; a worker whose reply is lost
  keeps the model it had (and computes its next gradient on it). A naive
  worker averages the gradients that reached it, so copies can drift apart.
  A lost ring chunk stalls that round: no worker updates.
* **Stragglers** are not modelled (a synchronous round only waits for them,
  and this simulator counts rounds, not seconds): ``straggler_prob > 0`` is
  rejected with a ``ValueError``.
* **Every worker crashed**: the run ends at that round, and
  :attr:`DataParallelResult.stopped` says so.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

import numpy as np
import torch

# The time model lives in dmlbook.comm_model (one home); re-exported here for callers.
from .comm_model import (SCHEME_NAMES, SCHEMES, busiest_link_bytes,  # noqa: F401
                         messages_on_busiest_link, per_node_round_bytes,
                         ring_beats_naive_above_params, round_time_s)
from .engine import Nodes, prepare, progress_bar, seeded_generator
from .models import check_evaluation_work, check_training_work
from . import pinned_threads
from .collectives import naive_means, naive_messages, ring_allreduce
from .compute import time_calls
from .data import summarize_split
from .faults import STREAM_DOWN, STREAM_NAIVE, STREAM_UP, Faults, check_faults
from .ledger import Ledger, check_run_messages
from .units import (MAX_LR, MAX_NODES, MAX_NODE_STEPS, MAX_RING_STEPS,
                    MAX_ROUNDS, MAX_STACKED_PARAMS, MAX_SWEEP_WORKER_ROUNDS, MAX_WORKER_COUNTS,
                    check_batch_size, check_choice, check_diverged, check_int, check_number,
                    check_product, check_seed)

@dataclass
class DataParallelResult:
    """Per-round records of a data-parallel run.

    ``params[k]`` is the model after round ``rounds[k]`` (the server's for
    ``"ps"``, the first live member's otherwise); ``updated[k]`` says whether
    that round took a training step. (A worker that takes over as server in a
    round that waits for a crashed worker changes the model without a step:
    the round is not counted as updated.) ``worker_params`` is every worker's copy at the
    end, ``(n_workers, P)``. ``stopped`` is ``None``, or why the run ended
    early. ``failover_round`` is the round a worker took over as server.
    """

    scheme: str
    n_workers: int
    rounds: list[int] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    params: list[torch.Tensor] = field(default_factory=list)
    updated: list[bool] = field(default_factory=list)
    ledger: Ledger = field(default_factory=Ledger)
    server: int | None = None      # the server's node id (``"ps"`` only)
    worker_params: torch.Tensor | None = None
    stopped: str | None = None
    failover_round: int | None = None

    @property
    def final(self) -> torch.Tensor:
        return self.params[-1]


def train_data_parallel(scheme: str, *, n_workers: int = 4, rounds: int = 20, lr: float = 0.1,
                        batch_size: int = 32, model="mlp", dataset=None, split: str = "iid",
                        faults: Faults | None = None, detect_rounds: int = 0,
                        ring_rebuild_rounds: int = 3, failover: bool = False,
                        failover_rounds: int = 1, seed: int = 0, device="cpu",
                        progress: bool | None = None, allreduce=None,
                        counts_only: bool = False) -> DataParallelResult:
    """Synchronous data-parallel SGD with one of :data:`SCHEMES`.

    Args:
        scheme: ``"ps"``, ``"naive"`` or ``"ring"``.
        n_workers: workers (the parameter server is one more node, id ``n_workers``).
        rounds: training rounds (``n_workers x rounds`` <= ``MAX_NODE_STEPS``,
            a step of a large model or batch counting as several (``models.step_cost``);
            the reported model's ``rounds + 1`` evaluations, each counted as
            ``models.evaluation_cost`` (more than one only for a large model or
            test set), at most ``MAX_NODE_EVALS``;
            for ``"ring"`` also ``rounds x 2 (n_workers - 1)`` ring steps <=
            ``MAX_RING_STEPS``; the run's messages <= ``MAX_RUN_MESSAGES``);
            lr: learning rate; batch_size: per worker.
        model, dataset, split, seed, device: as in :func:`dmlbook.dpsgd.run_dpsgd`.
        faults: :class:`~dmlbook.faults.Faults` over node ids ``0 .. n_workers``
            (the last one is the server); ``straggler_prob`` must be 0.
        detect_rounds: rounds the parameter server and the naive all-reduce
            wait for a crashed worker before going on without it (an assumed
            failure-detection timeout, in rounds).
        ring_rebuild_rounds: rounds a stalled ring waits before it is rebuilt
            without its crashed members (an assumption, in rounds).
        failover: ``"ps"`` only: whether a worker takes over a crashed server.
        failover_rounds: rounds without progress before the takeover.
        allreduce: ``"ring"`` only, without faults: a function called like
            :func:`~dmlbook.collectives.ring_allreduce` (``grads, ring, *, round,
            ledger, alive, faults``) that returns the members' summed gradient and
            records its messages; the workbook's check passes the student's ring here.
            ``None``: the package's own ring.
        counts_only: keep a counts-only ledger (:class:`~dmlbook.ledger.Ledger`):
            needed when the run's messages would pass ``MAX_LEDGER_RECORDS``,
            which is checked before the first round.
    """
    scheme = check_choice("scheme", scheme, SCHEMES)
    n = check_int("n_workers", n_workers, maximum=MAX_NODES)
    rounds = check_int("rounds", rounds, maximum=MAX_ROUNDS)
    check_product("rounds", n * rounds, MAX_NODE_STEPS, "n_workers x rounds (MAX_NODE_STEPS)")
    lr = float(check_number("lr", lr, maximum=MAX_LR))
    batch_size = check_batch_size(batch_size, n)
    detect_rounds = check_int("detect_rounds", detect_rounds, minimum=0, maximum=MAX_ROUNDS)
    ring_rebuild_rounds = check_int("ring_rebuild_rounds", ring_rebuild_rounds, minimum=0,
                                    maximum=MAX_ROUNDS)
    failover_rounds = check_int("failover_rounds", failover_rounds, minimum=0,
                                maximum=MAX_ROUNDS)
    if not isinstance(failover, (bool, np.bool_)):
        raise ValueError(f"failover must be True or False, got {failover!r}")
    seed = check_seed(seed)
    check_choice("counts_only", counts_only, (False, True))
    if scheme == "ring":
        check_product("rounds", rounds * 2 * (n - 1), MAX_RING_STEPS,
                      "rounds x 2 (n_workers - 1) ring steps (MAX_RING_STEPS)")
    per_round = {"ps": 2 * n, "naive": n * (n - 1), "ring": 2 * n * (n - 1)}[scheme]
    check_run_messages("rounds", rounds * per_round, f"rounds x {per_round:,} messages a round",
                       counts_only=counts_only)
    total_nodes = n + (scheme == "ps")
    faults = check_faults(faults, total_nodes)
    if allreduce is not None and (scheme != "ring" or not faults.none or not callable(allreduce)):
        raise ValueError("allreduce must be None, or a function with scheme='ring' and no faults")
    ring_sum = ring_allreduce if allreduce is None else allreduce
    if faults.straggler_prob > 0:
        raise ValueError("faults.straggler_prob must be 0 for train_data_parallel: a "
                         "synchronous round only waits for a straggler, and this simulator "
                         f"counts rounds, not seconds (got {faults.straggler_prob})")
    setup = prepare(model, n, dataset=dataset, split=split, seed=seed, device=device)
    check_training_work("rounds", n * rounds, setup.module, setup.dataset.X_train,
                        batch_size, "n_workers x rounds")
    check_evaluation_work("rounds", rounds + 1, setup.module, setup.X_test,
                          "rounds + 1 evaluations of the reported model")
    module, node_data, X_test, y_test = setup.module, setup.node_data, setup.X_test, setup.y_test
    workers = Nodes(module, n, device=device)
    server = n if scheme == "ps" else None
    result = DataParallelResult(scheme, n, ledger=Ledger(total_nodes, counts_only=counts_only),
                                server=server)
    model_params = workers.params[0].clone()  # the server's copy ("ps")
    nbytes = workers.payload_bytes
    generator = seeded_generator(seed)
    # members: the workers the scheme still waits for (the ring's order for "ring").
    members, waited, server_waited = list(range(n)), 0, 0
    timeout = ring_rebuild_rounds if scheme == "ring" else detect_rounds

    def reported():
        if scheme == "ps":
            return model_params
        live_members = [w for w in members if alive[w]] or members
        return workers.params[live_members[0]]

    def record(r, updated):
        current = reported()
        loss, acc = workers.evaluate(X_test, y_test, params=current[None])
        result.rounds.append(r)
        result.test_loss.append(float(loss[0]))
        result.test_acc.append(float(acc[0]))
        result.params.append(current.clone())
        result.updated.append(updated)

    alive = np.ones(total_nodes, bool)
    record(0, False)
    bar = progress_bar(rounds, progress, SCHEME_NAMES[scheme])
    for r in range(1, rounds + 1):
        alive = faults.alive(r, total_nodes)
        if not alive[:n].any():
            result.stopped = f"every worker had crashed by round {r}; the run ends there"
            break
        X, y = node_data.batch(generator, batch_size)
        grads = workers.gradients(X, y)
        # A crashed member holds the round up until the timeout; then it is left out.
        if any(not alive[w] for w in members) and waited >= timeout:
            members, waited = [w for w in members if alive[w]], 0
        waiting = any(not alive[w] for w in members)
        sending = np.array([w for w in members if alive[w]], dtype=np.int64)
        updated = False
        if scheme == "ps":
            if not alive[server] and failover and server_waited >= failover_rounds:
                server, server_waited = int(sending[0]), 0  # a worker takes over
                model_params = workers.params[server].clone()
                result.server, result.failover_round = server, r
            others = sending[sending != server]
            up = faults.arrives(r, np.full(len(others), server), alive, STREAM_UP)
            result.ledger.record(r, others, server, nbytes, up)
            if not alive[server]:
                server_waited += 1
            elif not waiting:
                arrived = np.concatenate([others[up], sending[sending == server]])
                if len(arrived):
                    model_params -= lr * grads[arrived].mean(0)
                    if server < n:
                        workers.params[server] = model_params
                    down = faults.arrives(r, others, alive, STREAM_DOWN)
                    result.ledger.record(r, server, others, nbytes, down)
                    workers.params[others[down]] = model_params  # a lost reply: no change
                    updated = True
        elif scheme == "naive":
            # int32 ids: half the memory of the n (n - 1) messages' arrays
            src, dst = naive_messages(sending.astype(np.int32), np.asarray(members, np.int32))
            ok = faults.arrives(r, dst, alive, STREAM_NAIVE)
            result.ledger.record(r, src, dst, nbytes, ok)
            if not waiting:
                workers.params[sending] -= lr * naive_means(grads, sending, src, dst, ok)
                updated = True
        else:
            summed = ring_sum(grads, members, round=r, ledger=result.ledger,
                                     alive=alive, faults=faults)
            if summed is not None:
                workers.params[members] -= lr * summed / len(members)
                updated = True
        waited = waited + 1 if waiting else 0
        check_diverged(r, **{"the workers' models": workers.params})
        record(r, updated)
        bar.update()
    bar.close()
    result.worker_params = workers.params.clone()
    return result


def max_parameter_difference(*results) -> np.ndarray:
    """Per round, the largest absolute difference between the runs' parameters."""
    if not results or not all(isinstance(r, DataParallelResult) for r in results) \
            or len({len(r.params) for r in results}) != 1:
        raise ValueError("results must be one or more DataParallelResult of equally many rounds")
    stacked = torch.stack([torch.stack(res.params) for res in results])  # (runs, R, P)
    return (stacked.max(0).values - stacked.min(0).values).amax(1).cpu().numpy()


def traffic_per_round(result: DataParallelResult, what: str = "sent") -> dict[str, float]:
    """Bytes per round from the ledger (``what``: ``"sent"`` or ``"received"``).

    ``"worker"`` is the busiest worker; ``"server"`` the parameter server.
    """
    if not isinstance(result, DataParallelResult) or len(result.rounds) < 2:
        raise ValueError("result must be a DataParallelResult of at least one round")
    rounds = len(result.rounds) - 1
    per_node = result.ledger.per_node(what, nbytes=True) / rounds
    out = {"worker": float(per_node[:result.n_workers].max())}
    if result.server is not None:
        out["server"] = float(per_node[result.server])
    return out


def _worker_counts(worker_counts, maximum: int = MAX_NODES) -> list[int]:
    """1 to MAX_WORKER_COUNTS worker counts, each a whole number from 1 to ``maximum``."""
    if isinstance(worker_counts, (str, bytes)) or not hasattr(worker_counts, "__len__") \
            or not 1 <= len(worker_counts) <= MAX_WORKER_COUNTS:
        raise ValueError(f"worker_counts must be a sequence of 1 to {MAX_WORKER_COUNTS} worker "
                         f"counts (MAX_WORKER_COUNTS), got {_short(worker_counts)}")
    return [check_int("worker_counts", k, maximum=min(maximum, MAX_NODES))
            for k in worker_counts]


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}... ({type(value).__name__})"


# The nodes whose traffic the chapter plots: label -> (scheme, role).
TRAFFIC_SERIES = {"PS server": ("ps", "server"), "PS worker": ("ps", "worker"),
                  "naive worker": ("naive", "worker"), "ring worker": ("ring", "worker")}


def traffic_vs_workers(worker_counts=(2, 4, 8, 16, 32), *, rounds: int = 2, seed: int = 0):
    """Measured bytes each node sends per round, for each scheme and each n.

    Returns ``{label: [bytes per round for each n]}`` and the model size in bytes.
    At most :data:`~dmlbook.units.MAX_WORKER_COUNTS` worker counts, each at
    most the digits' 1,438 training examples (one a worker), and their sum x
    ``rounds`` at most :data:`~dmlbook.units.MAX_SWEEP_WORKER_ROUNDS`. The runs keep counts-only
    ledgers (the per-node bytes are all this needs).
    """
    from .data import load_digits

    # The runs train on the digits: a worker needs one training example at least.
    worker_counts = _worker_counts(worker_counts, len(load_digits(seed=seed).y_train))
    rounds = check_int("rounds", rounds, maximum=MAX_ROUNDS)
    check_product("worker_counts", sum(worker_counts) * rounds, MAX_SWEEP_WORKER_ROUNDS,
                  "the sum of worker counts x rounds (MAX_SWEEP_WORKER_ROUNDS)")
    table: dict[str, list[float]] = {label: [] for label in TRAFFIC_SERIES}
    model_bytes = None
    for n in worker_counts:
        for scheme in SCHEMES:
            res = train_data_parallel(scheme, n_workers=n, rounds=rounds, seed=seed,
                                      progress=False, counts_only=True)
            traffic = traffic_per_round(res)
            model_bytes = res.params[0].numel() * res.params[0].element_size()
            for label, (series_scheme, role) in TRAFFIC_SERIES.items():
                if series_scheme == scheme:
                    table[label].append(traffic[role])
    return table, model_bytes


@dataclass(frozen=True)
class ComputeProfile:
    """Measured seconds (medians) of the compute in one round, for each worker count.

    ``worker_gradient_s[k]``: one worker's gradient on its batch (it does not
    depend on n). ``server_aggregate_s[k]``: the parameter server averaging
    ``n`` gradients and taking the step, which a naive all-reduce worker does too.
    """

    worker_counts: tuple[int, ...]
    worker_gradient_s: tuple[float, ...]
    server_aggregate_s: tuple[float, ...]


def _median_seconds(fn, repeats: int) -> float:
    return statistics.median(time_calls(fn, repeats, warmup=1))


def compute_profile(worker_counts=(2, 8, 32, 128, 512), *, model="mlp", batch_size: int = 32,
                    repeats: int = 15, seed: int = 0) -> ComputeProfile:
    """Time where a round's compute goes: a worker's gradient against the server's averaging.

    Both are timed on this machine, on one CPU thread, with the model of
    :func:`train_data_parallel`; the gradients averaged are real ones, repeated.
    At most :data:`~dmlbook.units.MAX_WORKER_COUNTS` worker counts, each at
    most :data:`~dmlbook.units.MAX_NODES` and at most
    :data:`~dmlbook.units.MAX_STACKED_PARAMS` / the model's parameters; at
    most 100 repeats.
    """
    counts = tuple(_worker_counts(worker_counts))
    repeats = check_int("repeats", repeats)
    if repeats > 100:
        raise ValueError(f"repeats must be at most 100, got {repeats}")
    setup = prepare(model, 1, seed=seed)
    n_params = sum(p.numel() for p in setup.module.parameters())
    check_product("worker_counts", max(counts) * n_params, MAX_STACKED_PARAMS,
                  "the largest worker count x model parameters (MAX_STACKED_PARAMS)")
    worker = Nodes(setup.module, 1)
    X, y = setup.node_data.batch(seeded_generator(seed), check_int("batch_size", batch_size))
    with pinned_threads(1):
        grad_s = _median_seconds(lambda: worker.gradients(X, y), repeats)
        grad = worker.gradients(X, y)
        params = worker.params[0].clone()
        agg = []
        for k in counts:
            grads = grad.expand(k, -1).contiguous()
            agg.append(_median_seconds(lambda: params.sub(grads.mean(0), alpha=0.1), repeats))
    return ComputeProfile(counts, tuple([grad_s] * len(counts)), tuple(agg))


def setup_summary(n_workers: int, *, model="mlp", split: str = "iid", seed: int = 0) -> dict:
    """What a :func:`train_data_parallel` run trains on: model size and each worker's data.

    Returns ``{"model", "n_params", "train", "test", "examples_min", "examples_max",
    "classes_min", "classes_max"}`` (examples and classes per worker).
    """
    n = check_int("n_workers", n_workers, maximum=MAX_NODES)
    setup = prepare(model, n, split=split, seed=seed)
    module, node_data, X_test = setup.module, setup.node_data, setup.X_test
    parts = [range(o, o + s) for o, s in zip(node_data.offsets.tolist(),
                                             node_data.sizes.tolist())]
    split_ = summarize_split(node_data.y.cpu().numpy(), parts)
    return {"model": type(module).__name__ if not isinstance(model, str) else model,
            "n_params": sum(p.numel() for p in module.parameters()),
            "train": split_.n_train, "test": len(X_test),
            "examples_min": split_.min_examples, "examples_max": split_.max_examples,
            "classes_min": split_.min_classes, "classes_max": split_.max_classes}
