"""Exercise 3: a parameter server and two all-reduces, as one algorithm.

All three run synchronous data-parallel SGD: each worker computes a gradient
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

Faults follow :mod:`dmlbook.faults`: a crashed worker simply stops sending;
the server averages what reached it; a crashed server ends training (nobody
else holds the model); a ring with a crashed member stalls, because the
chunks it should pass on never arrive, until the ring is rebuilt without it
after ``ring_rebuild_rounds`` rounds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from .engine import Nodes, check_batch_size, prepare, progress_bar, seeded_generator
from .faults import Faults, check_faults
from .ledger import Ledger
from .units import (MAX_BPS, MAX_BYTES_PER_PARAM, MAX_COUNT, MAX_NODE_STEPS, MAX_NODES,
                    MAX_ROUNDS, check_choice, check_diverged, check_int, check_number,
                    check_product, check_seed)

SCHEMES = ("ps", "naive", "ring")
SCHEME_NAMES = {"ps": "parameter server", "naive": "naive all-reduce", "ring": "ring all-reduce"}


@dataclass
class DataParallelResult:
    """Per-round records of a data-parallel run.

    ``params[k]`` is the model after round ``rounds[k]`` (the server's for
    ``"ps"``, the first live worker's otherwise); ``updated[k]`` says whether
    that round changed the model.
    """

    scheme: str
    n_workers: int
    rounds: list[int] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    params: list[torch.Tensor] = field(default_factory=list)
    updated: list[bool] = field(default_factory=list)
    ledger: Ledger = field(default_factory=Ledger)
    gradient_seconds: float = 0.0  # compute: the workers' gradient steps
    server: int | None = None      # the server's node id (``"ps"`` only)

    @property
    def final(self) -> torch.Tensor:
        return self.params[-1]


def _ring_allreduce(grads: torch.Tensor, ring: list[int], *, round: int, ledger: Ledger,
                    alive: np.ndarray) -> torch.Tensor | None:
    """Sum ``grads[ring]`` by reduce-scatter + all-gather; ``None`` if the ring stalls.

    ``grads`` is ``(n, P)``; members are worker ids in ring order.
    """
    m = len(ring)
    if m == 1:
        return grads[ring[0]].clone()
    # chunks[k][c]: member k's current copy of chunk c.
    chunks = [list(torch.tensor_split(grads[w].clone(), m)) for w in ring]
    for phase in ("reduce-scatter", "all-gather"):
        for s in range(m - 1):
            # Every member sends at once; use the state from before this step.
            offset = -s if phase == "reduce-scatter" else 1 - s
            outgoing = [(k, (k + offset) % m) for k in range(m)]
            payloads = [chunks[k][c].clone() for k, c in outgoing]
            senders = [ring[k] for k, _ in outgoing]
            receivers = [ring[(k + 1) % m] for k, _ in outgoing]
            live = [bool(alive[w]) for w in senders]
            delivered = [bool(alive[r]) and ok for r, ok in zip(receivers, live)]
            sent = [i for i in range(m) if live[i]]
            ledger.record(round, [senders[i] for i in sent], [receivers[i] for i in sent],
                          [payloads[i].numel() * payloads[i].element_size() for i in sent],
                          [delivered[i] for i in sent])
            if not all(delivered):
                return None  # a chunk never arrives: the ring stalls
            for (k, c), payload in zip(outgoing, payloads):
                if phase == "reduce-scatter":
                    chunks[(k + 1) % m][c] = chunks[(k + 1) % m][c] + payload
                else:
                    chunks[(k + 1) % m][c] = payload
    return torch.cat(chunks[0])


def train_data_parallel(scheme: str, *, n_workers: int = 4, rounds: int = 20, lr: float = 0.1,
                        batch_size: int = 32, model="mlp", dataset=None, split: str = "iid",
                        faults: Faults | None = None, ring_rebuild_rounds: int = 3,
                        seed: int = 0, device="cpu",
                        progress: bool | None = None) -> DataParallelResult:
    """Synchronous data-parallel SGD with one of :data:`SCHEMES`.

    Args:
        scheme: ``"ps"``, ``"naive"`` or ``"ring"``.
        n_workers: workers (the parameter server is one more node, id ``n_workers``).
        rounds: training rounds; lr: learning rate; batch_size: per worker.
        model, dataset, split, seed, device: as in :func:`dmlbook.dpsgd.run_dpsgd`.
        faults: :class:`~dmlbook.faults.Faults` over node ids ``0 .. n_workers``
            (the last one is the server).
        ring_rebuild_rounds: rounds a stalled ring waits before it is rebuilt
            without its crashed members.
    """
    scheme = check_choice("scheme", scheme, SCHEMES)
    n = check_int("n_workers", n_workers, maximum=MAX_NODES)
    rounds = check_int("rounds", rounds, maximum=MAX_ROUNDS)
    check_product("rounds", n * rounds, MAX_NODE_STEPS, "n_workers x rounds (MAX_NODE_STEPS)")
    lr = check_number("lr", lr)
    batch_size = check_batch_size(batch_size, n)
    ring_rebuild_rounds = check_int("ring_rebuild_rounds", ring_rebuild_rounds, minimum=0,
                                    maximum=MAX_ROUNDS)
    seed = check_seed(seed)
    faults = check_faults(faults, n + (scheme == "ps"))
    module, _, node_data, X_test, y_test = prepare(
        model, n, dataset=dataset, split=split, seed=seed, device=device)
    workers = Nodes(module, n, device=device)
    server = n if scheme == "ps" else None
    total_nodes = n + (scheme == "ps")
    result = DataParallelResult(scheme, n, ledger=Ledger(total_nodes), server=server)
    model_params = workers.params[0].clone()  # the model (the server's copy for "ps")
    nbytes = workers.payload_bytes
    generator = seeded_generator(seed)
    ring, stalled = list(range(n)), 0

    def record(r, updated):
        loss, acc = workers.evaluate(X_test, y_test, params=model_params[None])
        result.rounds.append(r)
        result.test_loss.append(float(loss[0]))
        result.test_acc.append(float(acc[0]))
        result.params.append(model_params.clone())
        result.updated.append(updated)

    record(0, False)
    bar = progress_bar(rounds, progress, SCHEME_NAMES[scheme])
    for r in range(1, rounds + 1):
        alive = faults.alive(r, total_nodes)
        X, y = node_data.batch(generator, batch_size)
        start = time.perf_counter()
        grads = workers.gradients(X, y)
        result.gradient_seconds += time.perf_counter() - start
        live = np.flatnonzero(alive[:n])
        updated = False
        if scheme == "ps":
            ok = faults.delivered(r, np.full(len(live), n), total_nodes)
            result.ledger.record(r, live, n, nbytes, ok)
            if alive[n] and ok.any():
                model_params -= lr * grads[live[ok]].mean(0)
                back = faults.delivered(r, live, total_nodes)
                result.ledger.record(r, n, live, nbytes, back)
                updated = True
        elif scheme == "naive":
            src, dst = np.nonzero(~np.eye(n, dtype=bool))
            src, dst = src[alive[src]], dst[alive[src]]
            ok = faults.delivered(r, dst, total_nodes)
            result.ledger.record(r, src, dst, nbytes, ok)
            # Every live worker averages its own gradient and those that reached it;
            # the first live worker's view is the model (all agree without loss).
            if len(live):
                first = live[0]
                got = np.concatenate([[first], src[ok & (dst == first)]])
                model_params -= lr * grads[got].mean(0)
                updated = True
        else:
            if any(not alive[w] for w in ring) and stalled >= ring_rebuild_rounds:
                ring, stalled = [w for w in ring if alive[w]], 0
            summed = _ring_allreduce(grads, ring, round=r, ledger=result.ledger, alive=alive)
            if summed is None:
                stalled += 1
            elif ring:
                model_params -= lr * summed / len(ring)
                updated = True
        workers.params[:] = model_params
        check_diverged(r, **{"the model": model_params})
        record(r, updated)
        bar.update()
    bar.close()
    return result


def max_parameter_difference(*results) -> np.ndarray:
    """Per round, the largest absolute difference between the runs' parameters."""
    if not results or not all(isinstance(r, DataParallelResult) for r in results) \
            or len({len(r.params) for r in results}) != 1:
        raise ValueError("results must be one or more DataParallelResult of equally many rounds")
    stacked = torch.stack([torch.stack(res.params) for res in results])  # (runs, R, P)
    return (stacked.max(0).values - stacked.min(0).values).amax(1).cpu().numpy()


def busiest_link_bytes(scheme: str, n_workers: int, model_bytes: float) -> float:
    """Bytes on the busiest link in one round, summed over the round's sequential phases.

    ``"ps"``: the server receives ``n`` gradients, then sends ``n`` models: ``2 n M``.
    ``"naive"``: each worker sends ``n - 1`` gradients at once: ``(n - 1) M``.
    ``"ring"``: ``2 (n - 1)`` steps of one chunk each: ``2 (n - 1) M / n``.
    """
    scheme = check_choice("scheme", scheme, SCHEMES)
    n = check_int("n_workers", n_workers, maximum=MAX_COUNT)
    model_bytes = check_number("model_bytes", model_bytes, maximum=MAX_COUNT)
    return {"ps": 2 * n * model_bytes, "naive": (n - 1) * model_bytes,
            "ring": 2 * (n - 1) * model_bytes / n}[scheme]


def round_time_s(scheme: str, n_workers: int, n_params: int, link_bps: float, *,
                 bytes_per_param: float = 4) -> float:
    """Seconds one round's communication takes when every link carries ``link_bps`` bits/s."""
    n_params = check_int("n_params", n_params, maximum=MAX_COUNT)
    link_bps = check_number("link_bps", link_bps, maximum=MAX_BPS)
    bytes_per_param = check_number("bytes_per_param", bytes_per_param,
                                   maximum=MAX_BYTES_PER_PARAM)
    return busiest_link_bytes(scheme, n_workers, n_params * bytes_per_param) * 8 / link_bps


def per_node_round_bytes(scheme: str, n_workers: int, model_bytes: float) -> dict[str, float]:
    """Closed form of the bytes one node sends per round: ``{"server"|"worker": bytes}``."""
    scheme = check_choice("scheme", scheme, SCHEMES)
    n = check_int("n_workers", n_workers, maximum=MAX_COUNT)
    M = check_number("model_bytes", model_bytes, maximum=MAX_COUNT)
    if scheme == "ps":
        return {"server": n * M, "worker": M}
    if scheme == "naive":
        return {"worker": (n - 1) * M}
    return {"worker": 2 * (n - 1) * M / n}


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


# The nodes whose traffic the chapter plots: label -> (scheme, role).
TRAFFIC_SERIES = {"PS server": ("ps", "server"), "PS worker": ("ps", "worker"),
                  "naive worker": ("naive", "worker"), "ring worker": ("ring", "worker")}


def traffic_vs_workers(worker_counts=(2, 4, 8, 16, 32), *, rounds: int = 2, seed: int = 0):
    """Measured bytes each node sends per round, for each scheme and each n.

    Returns ``{label: [bytes per round for each n]}`` and the model size in bytes.
    """
    if isinstance(worker_counts, (str, bytes)) or not hasattr(worker_counts, "__len__") \
            or not 1 <= len(worker_counts) <= 64:
        raise ValueError(f"worker_counts must be a sequence of 1 to 64 worker counts, "
                         f"got {worker_counts!r}")
    worker_counts = [check_int("worker_counts", k, maximum=MAX_NODES) for k in worker_counts]
    rounds = check_int("rounds", rounds, maximum=MAX_ROUNDS)
    table: dict[str, list[float]] = {label: [] for label in TRAFFIC_SERIES}
    model_bytes = None
    for n in worker_counts:
        for scheme in SCHEMES:
            res = train_data_parallel(scheme, n_workers=n, rounds=rounds, seed=seed,
                                      progress=False)
            traffic = traffic_per_round(res)
            model_bytes = res.params[0].numel() * res.params[0].element_size()
            for label, (series_scheme, role) in TRAFFIC_SERIES.items():
                if series_scheme == scheme:
                    table[label].append(traffic[role])
    return table, model_bytes
