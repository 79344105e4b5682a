"""Decentralized parallel SGD (D-PSGD, Lian et al. 2017) on the stacked engine.

Each round every node takes ``local_steps`` SGD steps on its own data, sends
its model to all its neighbours, and replaces its model by the weighted
average of its own and the ones it received (mixing matrix ``W``). That order,
``"step-then-mix"``, is the sheet's. Lian et al.'s Algorithm 1,
``"mix-and-step"``, computes the gradient at the node's current model, mixes
the *current* models, and applies the gradient to the mixed model:
``x_i <- sum_j W_ij x_j - lr * g_i(x_i)``. Optionally the run ends with one
all-reduce (naive or ring), after which every node holds the average of all
models.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from . import data as data_mod
from .collectives import naive_allreduce, ring_allreduce_models
from .engine import (History, Nodes, gossip, prepare, progress_bar,
                     seeded_generator)
from .models import check_evaluation_work, check_training_work
from .faults import Faults, check_faults
from .ledger import Ledger, check_run_messages
from .topology import Topology, resolve_topology
from .units import (MAX_LR, MAX_NODE_EVALS, MAX_NODES, MAX_NODE_STEPS,
                    MAX_ROUNDS, check_batch_size, check_choice,
                    check_diverged, check_int, check_number, check_product, check_seed)

ORDERS = ("step-then-mix", "mix-and-step")
FINAL_ALLREDUCES = (None, "naive", "ring")


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
              order: str = "step-then-mix", counts_only: bool = False,
              round_fn=None) -> RunResult:
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
        final_allreduce: ``None``, ``"naive"`` or ``"ring"``: one all-reduce
            after the last round. The ring cuts each model into ``n_nodes``
            chunks and sends ``2 n (n - 1)`` messages of one chunk each
            (reduce-scatter, then all-gather),
            :func:`~dmlbook.collectives.ring_allreduce_models`.
        eval_every: evaluate every node on the test set every this many rounds.
        seed: seed of the model, the split, the graph and the batches.
        device: ``"cpu"`` (default) or ``"cuda"``.
        progress: show a progress bar (``None``: automatic, ``False``: never).
        order: ``"step-then-mix"`` (the sheet's order, the default) or
            ``"mix-and-step"`` (Lian et al. 2017, Algorithm 1); see the module
            docstring. With ``local_steps > 1``, mix-and-step adds the change of
            all local steps, taken from the current model, to the mixed model.
        counts_only: keep a counts-only ledger (:class:`~dmlbook.ledger.Ledger`)
            for large runs: the same totals and counts, no per-message records;
            needed when the run's messages would pass
            :data:`~dmlbook.units.MAX_LEDGER_RECORDS`, which is checked before
            the first round.
        round_fn: ``round_fn(params, W, grads, lr) -> new params`` computes each
            round instead of the package's step and mix (one local step, the
            sheet's order, no faults; the messages are recorded as for the
            package's exchange). The workbook's check passes a student's here.

    Bounds: ``n_nodes`` <= :data:`~dmlbook.units.MAX_NODES`, ``rounds`` and
    ``local_steps`` <= :data:`~dmlbook.units.MAX_ROUNDS`, ``n_nodes * rounds *
    local_steps`` <= :data:`~dmlbook.units.MAX_NODE_STEPS` (a step of a large
    model or batch counting as several: :func:`~dmlbook.models.step_cost`), and the nodes
    and their average evaluated at most :data:`~dmlbook.units.MAX_NODE_EVALS`
    times in all (``eval_every`` sets how often; an evaluation of a large model
    or test set counting as several: :func:`~dmlbook.models.evaluation_cost`), and the run's messages
    (``rounds`` x the graph's directed edges + the final all-reduce's) at most
    :data:`~dmlbook.units.MAX_RUN_MESSAGES`. Models that stop
    being finite end the run with "diverged at round r; try a smaller lr".
    """
    n_nodes = check_int("n_nodes", n_nodes, minimum=2, maximum=MAX_NODES)
    rounds = check_int("rounds", rounds, maximum=MAX_ROUNDS)
    lr = float(check_number("lr", lr, maximum=MAX_LR))
    batch_size = check_batch_size(batch_size, n_nodes)
    local_steps = check_int("local_steps", local_steps, maximum=MAX_ROUNDS)
    check_product("rounds", n_nodes * rounds * local_steps, MAX_NODE_STEPS,
                  "n_nodes x rounds x local_steps (MAX_NODE_STEPS)")
    eval_every = check_int("eval_every", eval_every, maximum=MAX_ROUNDS)
    seed = check_seed(seed)
    final_allreduce = check_choice("final_allreduce", final_allreduce, FINAL_ALLREDUCES)
    # Evaluated: round 0, every eval_every-th round, the last, after the final
    # all-reduce; each time every node and their average.
    evaluations = (n_nodes + 1) * (1 + rounds // eval_every + (rounds % eval_every != 0)
                                   + (final_allreduce is not None))
    if evaluations > MAX_NODE_EVALS:
        raise ValueError(f"eval_every must keep (n_nodes + 1) x evaluations <= "
                         f"{MAX_NODE_EVALS:,} (MAX_NODE_EVALS), got {evaluations:,} "
                         f"(eval_every={eval_every})")
    order = check_choice("order", order, ORDERS)
    counts_only = check_choice("counts_only", counts_only, (False, True))
    faults = check_faults(faults, n_nodes)
    if round_fn is not None and (not callable(round_fn) or local_steps != 1
                                 or order != "step-then-mix" or not faults.none):
        raise ValueError("round_fn must be None, or a function with local_steps=1, "
                         "order='step-then-mix' and no faults")
    if final_allreduce == "ring" and not faults.none:
        raise ValueError("final_allreduce must be None or 'naive' when faults are given "
                         "(the ring all-reduce here models reliable nodes only)")
    topology = resolve_topology(topology, n_nodes, degree=degree, seed=seed)
    final_messages = {None: 0, "naive": 1, "ring": 2}[final_allreduce] * n_nodes * (n_nodes - 1)
    check_run_messages("rounds", rounds * len(topology.src_np) + final_messages,
                       "rounds x messages a round (+ the final all-reduce's)",
                       counts_only=counts_only)
    setup = prepare(model, n_nodes, dataset=dataset, split=split, seed=seed, alpha=alpha,
                    shards_per_node=shards_per_node, device=device)
    check_training_work("rounds", n_nodes * rounds * local_steps, setup.module,
                        setup.dataset.X_train, batch_size, "n_nodes x rounds x local_steps")
    check_evaluation_work("eval_every", evaluations, setup.module, setup.X_test,
                          f"(n_nodes + 1) x evaluations (eval_every={eval_every})")
    module, node_data, X_test, y_test = setup.module, setup.node_data, setup.X_test, setup.y_test
    nodes = Nodes(module, n_nodes, device=device)
    history = History(ledger=Ledger(n_nodes, counts_only=counts_only))
    generator = seeded_generator(seed)

    eval_seconds = eval_cpu_seconds = 0.0

    def record(r):
        nonlocal eval_seconds, eval_cpu_seconds
        t, cpu = time.perf_counter(), time.thread_time()
        history.record(r, nodes, X_test, y_test)
        eval_seconds += time.perf_counter() - t
        eval_cpu_seconds += time.thread_time() - cpu

    record(0)
    start, eval_seconds = time.perf_counter(), 0.0
    cpu_start, eval_cpu_seconds = time.thread_time(), 0.0
    bar = progress_bar(rounds, progress, "D-PSGD")
    for r in range(1, rounds + 1):
        active = faults.active(r, n_nodes)
        mask = torch.from_numpy(active).to(nodes.device, nodes.params.dtype)
        losses = None
        start_params = nodes.params.clone() if order == "mix-and-step" else None
        for _ in range(local_steps if round_fn is None else 0):
            X, y = node_data.batch(generator, batch_size, lazy=True)  # gathered slice by slice
            step_losses = nodes.sgd_step(X, y, lr, active=None if active.all() else mask)
            losses = step_losses if losses is None else losses
        if round_fn is not None:  # the whole round, step and mix, is round_fn's
            losses, grads = nodes.losses_and_gradients(*node_data.batch(generator, batch_size))
            nodes.params = _custom_round(round_fn, nodes.params, topology, grads, lr,
                                         round=r, ledger=history.ledger,
                                         nbytes=nodes.payload_bytes)
        history.train_loss.append(np.where(active, losses.cpu().numpy(), np.nan))
        if round_fn is None and order == "step-then-mix":
            gossip(nodes, topology, round=r, ledger=history.ledger, faults=faults,
                   active=active)
        elif round_fn is None:  # mix the models as they were before the step, then step
            change = nodes.params - start_params
            nodes.params = start_params
            gossip(nodes, topology, round=r, ledger=history.ledger, faults=faults,
                   active=active)
            nodes.params = nodes.params + change
        if r % eval_every == 0 or r == rounds:
            record(r)
        bar.update()
    bar.close()
    history.train_seconds = time.perf_counter() - start - eval_seconds
    history.train_cpu_seconds = time.thread_time() - cpu_start - eval_cpu_seconds
    if final_allreduce == "naive":
        naive_allreduce(nodes, round=rounds + 1, ledger=history.ledger, faults=faults)
    elif final_allreduce == "ring":
        ring_allreduce_models(nodes, round=rounds + 1, ledger=history.ledger)
    if final_allreduce is not None:
        record(rounds + 1)
        history.labels[rounds + 1] = f"{final_allreduce} all-reduce"
    return RunResult(history, topology, nodes, history.ledger)


def _custom_round(round_fn, params, topology, grads, lr, *, round, ledger, nbytes):
    """One round computed by ``round_fn(params, W, grads, lr)``; the exchange's
    messages recorded as :func:`~dmlbook.engine.mix` records them."""
    check_diverged(round, **{"what the nodes send": params})
    ledger.record(round, topology.src_np, topology.dst_np, nbytes, True)
    W = torch.as_tensor(topology.W, dtype=params.dtype, device=params.device)
    return round_fn(params.clone(), W, grads, lr)


def data_per_node(n_nodes: int, *, split: str = "iid", seed: int = 0, dataset=None,
                  alpha: float = 0.5, shards_per_node: int = 2) -> data_mod.SplitSummary:
    """Examples and distinct classes per node for the split a run with these arguments uses."""
    n_nodes = check_int("n_nodes", n_nodes, minimum=2)
    dataset = data_mod.dataset_or_digits(dataset, seed=seed)
    parts = data_mod.split(dataset.y_train, n_nodes, kind=split, seed=seed, alpha=alpha,
                           shards_per_node=shards_per_node)
    return data_mod.summarize_split(dataset.y_train.numpy(), parts)
