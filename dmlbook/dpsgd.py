"""Decentralized parallel SGD (D-PSGD, Lian et al. 2017) on the stacked engine.

Each round every node takes ``local_steps`` SGD steps on its own data, sends
its model to all its neighbours, and replaces its model by the weighted
average of its own and the ones it received (mixing matrix ``W``). Optionally
the run ends with one naive all-reduce, after which every node holds the
average of all models.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from .engine import (History, Nodes, check_batch_size, gossip, naive_allreduce, prepare,
                     progress_bar, seeded_generator)
from .faults import Faults, check_faults
from .ledger import Ledger
from .topology import Topology, resolve_topology
from .units import (MAX_NODE_STEPS, MAX_NODES, MAX_ROUNDS, check_choice, check_int,
                    check_number, check_product, check_seed)


@dataclass
class RunResult:
    """What a decentralized run returns: its history, topology, final nodes and ledger."""

    history: History
    topology: Topology
    nodes: Nodes
    ledger: Ledger

    @property
    def messages(self) -> int:
        return self.ledger.totals().sent


def run_dpsgd(*, n_nodes: int = 16, topology: Topology | str = "regular",
              degree: int | None = None,
              rounds: int = 50, lr: float = 0.1, batch_size: int = 32, local_steps: int = 1,
              model="mlp", dataset=None, split: str = "iid", alpha: float = 0.5,
              shards_per_node: int = 2, faults: Faults | None = None,
              final_allreduce: str | None = None, eval_every: int = 1, seed: int = 0,
              device="cpu", progress: bool | None = None,
              counts_only: bool = False) -> RunResult:
    """Train with D-PSGD on ``n_nodes`` simulated nodes.

    Args:
        n_nodes: number of nodes.
        topology: a :class:`Topology`, or a graph kind for :func:`make_topology`
            (``"ring"``, ``"torus"``, ``"regular"``, ``"erdos_renyi"``,
            ``"star"``, ``"complete"``) with ``degree`` (default 8; only for
            ``"regular"`` and ``"random"``).
        rounds: D-PSGD rounds (local steps + one exchange each).
        lr: learning rate; batch_size: examples per local step.
        model: ``"logreg"``, ``"mlp"``, ``"cnn"``, or an ``nn.Module`` (its
            initial weights are every node's starting point).
        dataset: a :class:`~dmlbook.data.Dataset` (default: digits).
        split: ``"iid"``, ``"shards"`` or ``"dirichlet"`` (see :func:`dmlbook.data.split`).
        faults: crashes, message loss and stragglers (:class:`~dmlbook.faults.Faults`).
        final_allreduce: ``None`` or ``"naive"``: one all-reduce after the last round.
        eval_every: evaluate every node on the test set every this many rounds.
        seed: seed of the model, the split, the graph and the batches.
        device: ``"cpu"`` (default) or ``"cuda"``.
        progress: show a progress bar (``None``: automatic, ``False``: never).
        counts_only: keep a counts-only ledger (:class:`~dmlbook.ledger.Ledger`)
            for large runs: the same totals and counts, no per-message records.

    Bounds: ``n_nodes`` <= :data:`~dmlbook.units.MAX_NODES`, ``rounds`` and
    ``local_steps`` <= :data:`~dmlbook.units.MAX_ROUNDS`, ``n_nodes * rounds *
    local_steps`` <= :data:`~dmlbook.units.MAX_NODE_STEPS`. Models that stop
    being finite end the run with "diverged at round r; try a smaller lr".
    """
    n_nodes = check_int("n_nodes", n_nodes, minimum=2, maximum=MAX_NODES)
    rounds = check_int("rounds", rounds, maximum=MAX_ROUNDS)
    lr = check_number("lr", lr)
    batch_size = check_batch_size(batch_size, n_nodes)
    local_steps = check_int("local_steps", local_steps, maximum=MAX_ROUNDS)
    check_product("rounds", n_nodes * rounds * local_steps, MAX_NODE_STEPS,
                  "n_nodes x rounds x local_steps (MAX_NODE_STEPS)")
    eval_every = check_int("eval_every", eval_every, maximum=MAX_ROUNDS)
    seed = check_seed(seed)
    check_choice("final_allreduce", final_allreduce, (None, "naive"))
    check_choice("counts_only", counts_only, (False, True))
    faults = check_faults(faults, n_nodes)
    topology = resolve_topology(topology, n_nodes, degree=degree, seed=seed)
    module, _, node_data, X_test, y_test = prepare(
        model, n_nodes, dataset=dataset, split=split, seed=seed, alpha=alpha,
        shards_per_node=shards_per_node, device=device)
    nodes = Nodes(module, n_nodes, device=device)
    history = History(ledger=Ledger(n_nodes, counts_only=counts_only))
    generator = seeded_generator(seed)

    eval_seconds = 0.0

    def record(r):
        nonlocal eval_seconds
        t = time.perf_counter()
        history.record(r, nodes, X_test, y_test)
        eval_seconds += time.perf_counter() - t

    record(0)
    start, eval_seconds = time.perf_counter(), 0.0
    bar = progress_bar(rounds, progress, "D-PSGD")
    for r in range(1, rounds + 1):
        active = faults.active(r, n_nodes)
        mask = torch.from_numpy(active).to(nodes.device, nodes.params.dtype)
        losses = None
        for _ in range(local_steps):
            X, y = node_data.batch(generator, batch_size)
            step_losses = nodes.sgd_step(X, y, lr, active=None if active.all() else mask)
            losses = step_losses if losses is None else losses
        history.train_loss.append(np.where(active, losses.cpu().numpy(), np.nan))
        gossip(nodes, topology, round=r, ledger=history.ledger, faults=faults, active=active)
        if r % eval_every == 0 or r == rounds:
            record(r)
        bar.update()
    bar.close()
    history.train_seconds = time.perf_counter() - start - eval_seconds
    if final_allreduce == "naive":
        naive_allreduce(nodes, round=rounds + 1, ledger=history.ledger, faults=faults)
        record(rounds + 1)
        history.labels[rounds + 1] = "all-reduce"
    return RunResult(history, topology, nodes, history.ledger)
