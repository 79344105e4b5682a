"""Many nodes in one process: stacked parameters, batched steps, mixing.

All nodes' parameters live in one tensor ``params`` of shape ``(n, P)``, one
flat row per node. One SGD step for all nodes is one forward pass for all
rows and one backward pass (how the forward pass is batched depends on the
model: :mod:`dmlbook.stacked`), and mixing is one sparse matrix product ``W @ params``, so a round
costs a handful of tensor operations whatever the number of nodes. Every message goes through a
:class:`~dmlbook.ledger.Ledger`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from . import data as data_mod
from . import heap, mixing, stacked
from .ledger import Ledger
from .models import model_for
from .units import (MAX_BATCH_SIZE, MAX_LR, MAX_NODES, MAX_STACKED_PARAMS,
                    check_batch_size, check_diverged, check_int, check_number, check_product,
                    check_seed)
# Mixing moved to its own module; the simulators and tests import it from here too.
from .mixing import gossip, mix, mixing_operator, resolve_device  # noqa: E402,F401


class FlatModel:
    """A model's forward pass as a function of one flat parameter vector."""

    def __init__(self, model: nn.Module):
        self.module = copy.deepcopy(model).to("meta")
        self.names, self.shapes, self.sizes = [], [], []
        for name, p in model.named_parameters():
            self.names.append(name)
            self.shapes.append(p.shape)
            self.sizes.append(p.numel())
        self.n_params = sum(self.sizes)
        self.initial = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        out, start = {}, 0
        for name, shape, size in zip(self.names, self.shapes, self.sizes):
            out[name] = flat[start:start + size].view(shape)
            start += size
        return out

    def forward(self, flat: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        return functional_call(self.module, self.unflatten(flat), (X,))

    def loss(self, flat: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.forward(flat, X), y)

    def load_into(self, model: nn.Module, flat: torch.Tensor) -> nn.Module:
        """Copy ``flat`` into a real module's parameters."""
        if flat.shape != (self.n_params,):
            raise ValueError(f"flat must hold the model's {self.n_params:,} parameters, "
                             f"got shape {tuple(flat.shape)}")
        torch.nn.utils.vector_to_parameters(flat.detach().clone(), model.parameters())
        return model


class NodeData:
    """Every node's training examples, concatenated, with per-node offsets.

    ``batch`` draws one mini-batch per node, with replacement from the
    node's own examples, for all nodes at once.
    """

    def __init__(self, X: torch.Tensor, y: torch.Tensor, parts, device="cpu"):
        parts = [np.asarray(p, dtype=np.int64) for p in parts]
        if any(len(p) == 0 for p in parts):
            raise ValueError("parts must give every node at least one example")
        if any(p.min() < 0 or p.max() >= len(y) for p in parts):  # no wrap-around
            raise ValueError(f"parts must hold example indices in 0 .. {len(y) - 1}")
        order = torch.from_numpy(np.concatenate(parts))
        dev = resolve_device(device)
        self.X, self.y = X[order].to(dev), y[order].to(dev)
        self.sizes = torch.tensor([len(p) for p in parts])
        self.offsets = torch.cumsum(self.sizes, 0) - self.sizes
        self.n = len(parts)

    def _indices(self, u: torch.Tensor, nodes) -> torch.Tensor:
        """Uniform draws ``u`` in [0, 1) -> indices of examples of ``nodes``."""
        sizes, offsets = self.sizes[nodes], self.offsets[nodes]
        return offsets[..., None] + (u * sizes[..., None]).long().clamp_max(sizes[..., None] - 1)

    def batch_indices(self, generator: torch.Generator, batch_size: int,
                      nodes: torch.Tensor | None = None) -> torch.Tensor:
        """``(n, batch_size)`` indices into ``X``: row ``i`` from node ``i``'s examples.

        ``nodes`` (node ids, ``(k,)``) draws for those nodes only: ``(k,
        batch_size)`` indices, row ``j`` from node ``nodes[j]``'s examples.
        ``batch_size`` is at most :data:`~dmlbook.units.MAX_BATCH_SIZE`, and
        rows times ``batch_size`` at most
        :data:`~dmlbook.units.MAX_EXAMPLES_PER_STEP`.
        """
        rows = self.n if nodes is None else len(nodes)
        batch_size = check_batch_size(batch_size, rows)
        u = torch.rand((rows, batch_size), generator=generator, dtype=torch.float64)
        return self._indices(u, slice(None) if nodes is None else nodes)

    def node_batch_indices(self, node: int, generator: torch.Generator,
                           batch_size: int) -> torch.Tensor:
        """``(batch_size,)`` indices into ``X`` from node ``node``'s examples."""
        batch_size = check_int("batch_size", batch_size, maximum=MAX_BATCH_SIZE)
        u = torch.rand(batch_size, generator=generator, dtype=torch.float64)
        return self._indices(u, node)

    def epoch_indices(self, generator: torch.Generator, batch_size: int,
                      nodes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One pass over each of ``nodes``' examples, shuffled, in batches of ``batch_size``.

        Returns indices into ``X`` ``(steps, k, batch_size)`` and a mask
        ``(steps, k)`` of the nodes that still have a batch at that step:
        node ``nodes[j]`` with ``m`` examples takes ``ceil(m / batch_size)``
        steps, each example once; where ``m`` is not a multiple of
        ``batch_size``, its last batch is filled up from the start of the
        same shuffled order (so every batch has ``batch_size`` examples).
        ``steps`` is the largest node's number of batches.
        """
        batch_size = check_batch_size(batch_size, len(nodes))
        sizes, offsets = self.sizes[nodes], self.offsets[nodes]
        width = int(sizes.max())
        u = torch.rand((len(nodes), width), generator=generator, dtype=torch.float64)
        u[torch.arange(width) >= sizes[:, None]] = 2.0  # past a node's examples: sorted last
        order = u.argsort(1)  # row j: a permutation of 0 .. sizes[j] - 1, then the padding
        steps = -(-width // batch_size)
        # Position p = step * batch_size + j of node j's pass, wrapped around its size.
        pos = torch.arange(steps * batch_size)[None, :] % sizes[:, None]  # (k, steps * B)
        idx = offsets[:, None] + order.gather(1, pos)
        active = torch.arange(steps)[:, None] * batch_size < sizes[None, :]
        return idx.view(len(nodes), steps, batch_size).transpose(0, 1), active

    def batch(self, generator: torch.Generator, batch_size: int,
              nodes: torch.Tensor | None = None, *, lazy: bool = False):
        """One mini-batch per node (or per node of ``nodes``): ``X (k, B, ...)``, ``y (k, B)``.

        ``lazy=True`` returns ``X`` as a :class:`GatheredRows`, which copies a
        slice of nodes' examples only when :meth:`Nodes.sgd_step` takes that
        slice: the same draws, without the whole ``(k, B, ...)`` batch in memory.
        """
        idx = self.batch_indices(generator, batch_size, nodes).to(self.X.device)
        X = GatheredRows(self.X, idx)
        return (X if lazy else X[:]), self.y.index_select(0, idx.reshape(-1)).view(idx.shape)


class GatheredRows:
    """``X[idx]`` for indices ``idx (k, B)``, gathered a slice of rows at a time.

    ``rows[s]`` for a slice ``s`` of the ``k`` rows is the tensor
    ``(len(s), B, ...)``; ``shape`` is the whole batch's.
    """

    def __init__(self, source: torch.Tensor, idx: torch.Tensor):
        self.source, self.idx = source, idx
        self.shape = torch.Size((*idx.shape, *source.shape[1:]))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: slice) -> torch.Tensor:
        if not isinstance(rows, slice):
            raise TypeError("GatheredRows takes a slice of rows")
        idx = self.idx[rows]
        flat = idx.reshape(-1)  # index_select copies rows faster than advanced indexing
        return self.source.index_select(0, flat).view(*idx.shape, *self.source.shape[1:])


# Bytes of tensors saved for the backward pass above which one step goes in chunks of nodes.
# 64 MiB: D-PSGD on 1,024 LeNet nodes peaks at 1.02 GiB (1.21 GiB at 256 MiB, where
# glibc keeps the freed chunks of the larger slices), and no slower (benchmarks/README.md).
ACTIVATION_BUDGET = 64 * 2**20


class Nodes:
    """``n`` copies of one model, held as stacked flat parameters ``(n, P)``.

    ``strategy`` says how the forward pass is batched over the nodes (one of
    :data:`dmlbook.stacked.STRATEGIES`; ``None``: the default, ``"auto"``
    unless :func:`dmlbook.stacked.use_strategy` says otherwise); ``chunk``
    caps the nodes per forward and backward pass (``None``: by memory).

    ``n`` is at most :data:`~dmlbook.units.MAX_NODES`, and ``n`` times the
    model's parameters at most :data:`~dmlbook.units.MAX_STACKED_PARAMS`.
    """

    def __init__(self, model: nn.Module, n: int, *, device="cpu", strategy: str | None = None,
                 chunk: int | None = None):
        n = check_int("n", n, maximum=MAX_NODES)
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.device = resolve_device(device)
        n_params = sum(p.numel() for p in model.parameters())
        check_product("n", n * n_params, MAX_STACKED_PARAMS,
                      "nodes x model parameters (MAX_STACKED_PARAMS)")
        self.flat = FlatModel(model)
        self.n = n
        self.params = self.flat.initial.to(self.device).repeat(n, 1)
        self.strategy = stacked.resolve(model, strategy)
        self._forward = stacked.Forward(self.flat, self.strategy)
        self.chunk = None if chunk is None else check_int("chunk", chunk, maximum=MAX_NODES)
        self._activation_bytes: dict[tuple, int] = {}
        # Long runs fragment glibc's heap on a busy machine; trim it now and then.
        self._trimmer = heap.Trimmer()

    @property
    def payload_bytes(self) -> int:
        """Bytes of one model on the wire (float32)."""
        return self.flat.n_params * self.params.element_size()

    def losses_and_gradients(self, X: torch.Tensor, y: torch.Tensor):
        """Per-node batch losses ``(n,)`` and gradients ``(n, P)``.

        The nodes' losses are independent, so the gradient of their *sum*
        with respect to the stacked parameters is, row by row, each node's
        own gradient: one batched forward and one backward serve all nodes.
        Where the activations of all nodes would pass :data:`ACTIVATION_BUDGET`
        bytes, the nodes go through in chunks (:meth:`chunk_size`), with the
        same results. On a CPU, models with convolutions spread their nodes
        over torch's threads (:func:`dmlbook.stacked.for_rows_in_threads`).
        """
        self._trimmer.tick()
        slices, threads = self._row_plan(X)
        if len(slices) == 1:
            return self._losses_and_gradients(self.params, X[:], y)
        losses = torch.empty(self.n, device=self.params.device)
        grads = torch.empty_like(self.params)

        def work(rows):
            losses[rows], grads[rows] = self._losses_and_gradients(
                self.params[rows], X[rows], y[rows])

        stacked.for_rows_in_threads(work, slices, threads)
        return losses, grads

    def _row_plan(self, X: torch.Tensor) -> tuple[list[slice], int]:
        """Slices of the nodes that together cover them once, and the threads to run them on.

        As many nodes a slice as keep their saved activations within
        :data:`ACTIVATION_BUDGET` (:meth:`chunk_size`); on a CPU with the
        ``"layers"`` strategy, the slices are spread over torch's threads
        (:func:`dmlbook.stacked.for_rows_in_threads`), each thread holding one
        slice's activations at a time, so the budget is shared between them.
        """
        chunk = self.chunk_size(X)
        threads = stacked.threads_for(self.strategy, self.device)
        if threads > 1:
            chunk = max(1, chunk // threads)  # chunk <= n: never above ceil(n / threads)
        return [slice(s, s + chunk) for s in range(0, self.n, chunk)], threads

    def _losses_and_gradients(self, params, X, y):
        params = params.detach().requires_grad_()
        logits = self._forward(params, X)
        losses = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
        losses = losses.view(len(params), -1).mean(1)
        (g,) = torch.autograd.grad(losses.sum(), params)
        return losses.detach(), g

    def chunk_size(self, X: torch.Tensor) -> int:
        """How many nodes go through one forward and backward pass on batches like ``X``.

        ``chunk`` when given to the constructor; else as many as keep the
        tensors saved for the backward pass, plus the two copies of their
        gradients that the backward pass makes (the layers' and the flat
        rows'), under :data:`ACTIVATION_BUDGET` (measured once per batch
        shape on one node).
        """
        if self.chunk is not None:
            return min(self.n, self.chunk)
        per_node = self._saved_bytes(X) + 2 * self.payload_bytes
        return max(1, min(self.n, ACTIVATION_BUDGET // per_node))

    def _saved_bytes(self, X: torch.Tensor) -> int:
        """Bytes one node's forward pass on its batch ``X[0]`` saves for the backward pass."""
        key = tuple(X.shape[1:])
        if key not in self._activation_bytes:
            saved = []

            def pack(t):
                saved.append(t.numel() * t.element_size())
                return t

            with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                params = self.params[:1].detach().requires_grad_()
                self._forward(params, X[:1]).sum()
            self._activation_bytes[key] = max(1, sum(saved))
        return self._activation_bytes[key]

    def forward(self, params: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        """Logits ``(k, B, classes)`` of models ``params`` ``(k, P)`` on their inputs ``X (k, B, ...)``."""
        return self._forward(params, X)

    def gradients(self, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-node gradients ``(n, P)`` on per-node batches ``X (n, B, ...)``."""
        return self.losses_and_gradients(X, y)[1]

    def sgd_step(self, X, y, lr: float, active: torch.Tensor | None = None) -> torch.Tensor:
        """One SGD step on every (active) node; returns the batch losses before it.

        ``X`` is a tensor ``(n, B, ...)`` or a :class:`GatheredRows`, whose
        slices are gathered as each slice of nodes steps.
        """
        lr = float(check_number("lr", lr, maximum=MAX_LR))
        self._trimmer.tick()
        losses = torch.empty(self.n, device=self.params.device)

        # Each slice of nodes steps as soon as its gradients are known: a node's
        # gradient depends on its own row only, and no (n, P) gradient is held.
        slices, threads = self._row_plan(X)

        def work(rows):
            # With threads, a slice's graph must not see another slice's update:
            # a view of self.params would share its version counter.
            params = self.params[rows].clone() if threads > 1 else self.params[rows]
            losses[rows], g = self._losses_and_gradients(params, X[rows], y[rows])
            if active is not None:
                g *= active[rows, None]
            self.params[rows].sub_(g, alpha=lr)

        stacked.for_rows_in_threads(work, slices, threads)
        return losses

    @torch.no_grad()
    def evaluate(self, X: torch.Tensor, y: torch.Tensor, *, chunk: int = 256,
                 params: torch.Tensor | None = None):
        """Each node's loss and accuracy on one shared set: two ``(n,)`` arrays.

        ``params`` (``(k, P)``) evaluates other models instead, e.g. the average.
        At most ``chunk`` nodes go through at once, fewer where their
        activations on the whole set would pass :data:`ACTIVATION_BUDGET`; a
        model whose activations on the whole set pass it alone is evaluated
        one node at a time on slices of the set.
        """
        params = self.params if params is None else params
        m = len(y)
        per_example = self._saved_bytes(X[None, :1]) if m else 1
        threads = stacked.threads_for(self.strategy, self.device)
        if per_example * m * threads > ACTIVATION_BUDGET:
            size = max(1, ACTIVATION_BUDGET // (per_example * threads))
            return self._evaluate_in_slices(params, X, y, size, threads)
        k = len(params)
        # Each thread holds one chunk's activations at a time: the budget is shared.
        chunk = max(1, min(chunk, -(-k // threads),
                           ACTIVATION_BUDGET // max(1, per_example * m * threads)))
        losses = torch.empty(k, device=params.device)
        accs = torch.empty(k, device=params.device)

        def work(rows):
            with torch.no_grad():  # grad mode is per thread
                logits = self._forward.shared(params[rows], X)
                losses[rows] = F.cross_entropy(logits.transpose(1, 2), y.expand(len(logits), -1),
                                               reduction="none").mean(1)
                accs[rows] = (logits.argmax(-1) == y).float().mean(1)

        stacked.for_rows_in_threads(work, [slice(s, s + chunk) for s in range(0, k, chunk)],
                                    threads)
        return losses.cpu().numpy(), accs.cpu().numpy()

    def _evaluate_in_slices(self, params, X, y, size: int, threads: int = 1):
        """One node at a time on slices of ``size`` examples; nodes spread over ``threads``."""
        m = len(y)
        losses, accs = np.zeros(len(params)), np.zeros(len(params))

        def work(rows):
            with torch.no_grad():  # grad mode is per thread
                i = rows.start
                loss_sum = correct = 0.0
                for start in range(0, m, size):
                    logits = self._forward.shared(params[i:i + 1], X[start:start + size])[0]
                    part = y[start:start + size]
                    loss_sum += float(F.cross_entropy(logits, part, reduction="sum"))
                    correct += float((logits.argmax(-1) == part).sum())
                losses[i], accs[i] = loss_sum / m, correct / m

        stacked.for_rows_in_threads(work, [slice(i, i + 1) for i in range(len(params))], threads)
        return losses.astype(np.float32), accs.astype(np.float32)

    def mean(self) -> torch.Tensor:
        return self.params.mean(0)

    def consensus_distance(self) -> float:
        """Mean Euclidean distance of the nodes' models to their average."""
        mean = self.mean()
        rows = max(1, mixing.COPY_BUDGET // (4 * self.params.shape[1]))  # no (n, P) copy
        return float(torch.cat([(self.params[s:s + rows] - mean).norm(dim=1)
                                for s in range(0, self.n, rows)]).mean())


@dataclass
class History:
    """Per-round records of a run. Row ``k`` of the ``(R, n)`` arrays is round ``rounds[k]``.

    Round 0 is the initial model; round ``r`` is the state after ``r`` rounds.
    ``train_loss[r-1, i]`` is node ``i``'s mini-batch loss in round ``r``
    (NaN when it took no step).
    """

    rounds: list[int] = field(default_factory=list)
    test_loss: list[np.ndarray] = field(default_factory=list)
    test_acc: list[np.ndarray] = field(default_factory=list)
    avg_loss: list[float] = field(default_factory=list)  # the nodes' average model
    avg_acc: list[float] = field(default_factory=list)
    consensus: list[float] = field(default_factory=list)
    train_loss: list[np.ndarray] = field(default_factory=list)
    ledger: Ledger = field(default_factory=Ledger)
    labels: dict[int, str] = field(default_factory=dict)
    train_seconds: float = 0.0  # wall-clock of the rounds' steps and exchanges (no evaluation)
    # The same in CPU seconds of the calling thread: all of the work when torch
    # runs on one thread, and a busy machine inflates it far less than wall-clock.
    train_cpu_seconds: float = 0.0

    def as_arrays(self) -> dict[str, np.ndarray]:
        """The records as NumPy arrays, ready to plot."""
        return {"round": np.array(self.rounds), "test_loss": np.array(self.test_loss),
                "test_acc": np.array(self.test_acc), "consensus": np.array(self.consensus),
                "avg_loss": np.array(self.avg_loss), "avg_acc": np.array(self.avg_acc),
                "train_loss": np.array(self.train_loss)}

    def record(self, round: int, nodes: "Nodes", X_test, y_test) -> None:
        """Evaluate every node and the average model on the test set.

        Models that are no longer finite stop the run: "diverged at round r".
        """
        check_diverged(round, **{"the models": nodes.params})
        loss, acc = nodes.evaluate(X_test, y_test)
        avg_loss, avg_acc = nodes.evaluate(X_test, y_test, params=nodes.mean()[None])
        self.rounds.append(round)
        self.test_loss.append(loss)
        self.test_acc.append(acc)
        self.avg_loss.append(float(avg_loss[0]))
        self.avg_acc.append(float(avg_acc[0]))
        self.consensus.append(nodes.consensus_distance())

    def table(self) -> list[dict]:
        """One row per (round, node): round, node, test_loss, test_acc."""
        return [{"round": r, "node": i, "test_loss": float(loss[i]), "test_acc": float(acc[i])}
                for r, loss, acc in zip(self.rounds, self.test_loss, self.test_acc)
                for i in range(len(loss))]


class Setup(NamedTuple):
    """What :func:`prepare` builds for a run: the model, the data set, every node's
    training data, and the test tensors (on the run's device)."""

    module: nn.Module
    dataset: "data_mod.Dataset"
    node_data: NodeData
    X_test: torch.Tensor
    y_test: torch.Tensor


def prepare(model, n_nodes, *, dataset=None, split="iid", seed=0, alpha=0.5,
            shards_per_node=2, device="cpu") -> Setup:
    """Model, dataset, per-node data and test tensors for a run of any algorithm.

    ``model`` is a name (sized for the dataset, initialised from ``seed``) or a
    module; ``dataset`` defaults to the digits; ``split`` etc. go to
    :func:`dmlbook.data.split`.
    """
    n_nodes = check_int("n_nodes", n_nodes, maximum=MAX_NODES)
    seed = check_seed(seed)
    if dataset is not None and not isinstance(dataset, data_mod.Dataset):
        raise ValueError(f"dataset must be a dmlbook.data.Dataset or None, "
                         f"got {type(dataset).__name__}")
    dataset = data_mod.dataset_or_digits(dataset, seed=seed)
    module = model_for(model, dataset, seed=seed)
    parts = data_mod.split(dataset.y_train, n_nodes, kind=split, seed=seed,
                           alpha=alpha, shards_per_node=shards_per_node)
    node_data = NodeData(dataset.X_train, dataset.y_train, parts, device=device)
    dev = resolve_device(device)
    return Setup(module, dataset, node_data, dataset.X_test.to(dev), dataset.y_test.to(dev))


def progress_bar(total: int, enabled: bool | None, desc: str):
    """A ``tqdm.auto`` bar (notebook or terminal); silent when disabled or under TQDM_DISABLE."""
    import os

    from tqdm.auto import tqdm

    if enabled is not None and not isinstance(enabled, bool):
        raise ValueError(f"progress must be True, False or None, got {enabled!r}")
    # Read at every call (tqdm itself reads TQDM_* only once, when imported).
    silenced = os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true", "yes")
    return tqdm(total=total, desc=desc, disable=(enabled is False or silenced), leave=False)


def seeded_generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(check_seed(seed))
