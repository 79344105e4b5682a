"""How the engine runs one model's forward pass for many nodes at once.

Every strategy computes ``logits[i] = model(params[i], X[i])`` for each row
``i`` of the stacked parameters ``params`` ``(k, P)`` and per-node inputs
``X`` ``(k, B, ...)``; they differ only in which kernels do the work, so they
agree to float rounding (tests/test_strategies.py):

* ``"vmap"`` — ``torch.func.vmap`` of ``functional_call`` over the rows. One
  batched matrix product per linear layer: the fastest for MLPs. A
  convolution with per-node weights becomes one *grouped* convolution, which
  the CPU build of torch runs slower than the same convolutions one by one.
* ``"layers"`` — the model's own ``forward`` on all nodes' examples merged into
  one batch ``(k * B, ...)``: layers without parameters (ReLU, pooling,
  normalisation of one example, flatten) run once for all nodes, each linear
  layer is one ``baddbmm`` over the nodes, and each convolution runs node by
  node with the ordinary (fast) kernel on views of the stacked weights. On a
  CPU the merged batch is kept channels-last (the convolutions cost the same,
  max-pooling is ~10x faster; a model whose forward flattens with ``.view()``
  falls back to the default layout), and on every device a local response
  normalisation sums its channel window from shifted slices instead of
  torch's 3-d average pool (2x faster on a CPU); together 1.5x on LeNet's
  step (benchmarks/README.md). For
  models whose parameters all sit in ``nn.Linear`` and ``nn.Conv2d`` layers,
  and whose forward treats examples independently.
* ``"loop"`` — the model once per node, on views of its row: the per-client
  loop, for any model.

On a CPU, the ``"layers"`` strategy also spreads a step's
nodes over threads (:func:`for_rows_in_threads`): each of torch's intra-op
threads takes whole nodes, one thread per kernel, instead of every kernel
being split over all threads. A small convolution (a batch of 32 images)
splits badly, so whole nodes per thread is what makes the engine beat a
per-client loop on LeNet (benchmarks/README.md). Each node's result is
computed by the same single-threaded kernels whatever the thread, so runs
stay deterministic.

``"auto"`` (the default) picks by rule: ``"vmap"`` for models without
convolutions, ``"layers"`` for models with convolutions that it supports, else
``"loop"``. Measured on this project's 2-core CPU (benchmarks/README.md):
``"layers"`` beats both the vmapped grouped convolution and the per-client
loop on the sheet's LeNet, while ``vmap`` is the fastest for the MLPs.
:func:`use_strategy` overrides the choice for the engines built inside it.
"""

from __future__ import annotations

import contextlib
import copy
import threading
from concurrent.futures import ThreadPoolExecutor

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from .units import check_choice

STRATEGIES = ("auto", "vmap", "layers", "loop")
_default = ["auto"]


@contextlib.contextmanager
def use_strategy(strategy: str):
    """Engines (:class:`~dmlbook.engine.Nodes`) built inside use ``strategy``.

    ``strategy`` is one of :data:`STRATEGIES`; ``"auto"`` restores the rule.
    """
    strategy = check_choice("strategy", strategy, STRATEGIES)
    before = _default[0]
    _default[0] = strategy
    try:
        yield strategy
    finally:
        _default[0] = before


def _has_conv(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.conv._ConvNd) for m in model.modules())


def _layers_supported(model: nn.Module) -> bool:
    """True when every parameter belongs to an ``nn.Linear`` or a 2-d convolution."""
    for module in model.modules():
        own = list(module.parameters(recurse=False))
        if own and not isinstance(module, (nn.Linear, nn.Conv2d)):
            return False
        if isinstance(module, nn.Conv2d) and (module.padding_mode != "zeros"
                                              or isinstance(module.padding, str)):
            return False
    return True


def resolve(model: nn.Module, strategy: str | None = None) -> str:
    """The strategy the engine uses for ``model``: ``strategy`` or the rule of ``"auto"``."""
    strategy = check_choice("strategy", _default[0] if strategy is None else strategy,
                            STRATEGIES)
    if strategy == "layers" and not _layers_supported(model):
        raise ValueError("strategy 'layers' needs a model whose parameters all belong to "
                         "nn.Linear and nn.Conv2d layers (zero padding); use 'vmap' or 'loop'")
    if strategy != "auto":
        return strategy
    if not _has_conv(model):
        return "vmap"
    return "layers" if _layers_supported(model) else "loop"


_pool: list[ThreadPoolExecutor] = []
_pool_lock = threading.Lock()


def threads_for(strategy: str, device: torch.device) -> int:
    """Threads that share a step's nodes: torch's intra-op threads for the
    per-node convolution strategies on a CPU, else 1 (one batched kernel)."""
    if device.type != "cpu" or strategy != "layers":  # "loop" swaps the module's parameters
        return 1
    return max(1, torch.get_num_threads())


def for_rows_in_threads(work, slices: list[slice], threads: int) -> None:
    """Call ``work(rows)`` for every slice of rows, spread over ``threads`` threads.

    Each thread takes every ``threads``-th slice and runs its kernels on one
    intra-op thread; torch's thread count is restored afterwards. With one
    thread or one slice, the calls run here, in order. ``work`` writes its
    results into preallocated rows, so the order of the calls does not matter.
    """
    if threads <= 1 or len(slices) <= 1:
        for rows in slices:
            work(rows)
        return
    threads = min(threads, len(slices))
    with _pool_lock:
        if not _pool or _pool[0]._max_workers < threads:
            _pool[:] = [ThreadPoolExecutor(max_workers=threads,
                                           thread_name_prefix="dmlbook-nodes")]
        pool = _pool[0]

    def share(first):
        torch.set_num_threads(1)
        for rows in slices[first::threads]:
            work(rows)

    before = torch.get_num_threads()
    try:
        for future in [pool.submit(share, i) for i in range(threads)]:
            future.result()
    finally:
        torch.set_num_threads(before)


class _Store(threading.local):
    """The stacked weights of the forward pass under way, one set per thread."""

    def __init__(self):
        self.tensors: dict[str, torch.Tensor] = {}


class _StackedLinear(nn.Module):
    """``nn.Linear`` with one weight per node, on the nodes' merged batch."""

    def __init__(self, name: str, store: _Store):
        super().__init__()
        self.name, self.store = name, store

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.store.tensors[self.name + "weight"]  # (k, out, in)
        bias = self.store.tensors.get(self.name + "bias")
        k = weight.shape[0]
        rows = x.reshape(k, -1, x.shape[-1])
        if bias is None:
            out = torch.bmm(rows, weight.transpose(1, 2))
        else:
            out = torch.baddbmm(bias[:, None, :], rows, weight.transpose(1, 2))
        return out.reshape(*x.shape[:-1], weight.shape[1])


class _StackedConv2d(nn.Module):
    """``nn.Conv2d`` with one weight per node: node by node, the ordinary kernel."""

    def __init__(self, conv: nn.Conv2d, name: str, store: _Store):
        super().__init__()
        self.name, self.store = name, store
        self.kw = dict(stride=conv.stride, padding=conv.padding, dilation=conv.dilation,
                       groups=conv.groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.store.tensors[self.name + "weight"].unbind(0)
        bias = self.store.tensors.get(self.name + "bias")
        biases = bias.unbind(0) if bias is not None else [None] * len(weights)
        inputs = x.chunk(len(weights))
        return torch.cat([F.conv2d(xi, w, b, **self.kw)
                          for xi, w, b in zip(inputs, weights, biases)])


class _ChannelSumLRN(nn.Module):
    """``nn.LocalResponseNorm`` on 4-d inputs, its channel window summed from shifted slices.

    The same formula as torch's ``local_response_norm`` (which averages
    through a 3-d average pool, 2x slower on a CPU): ``x / (k + alpha / size *
    sum of x**2 over the window)**beta``, equal to float rounding (tested).
    """

    def __init__(self, lrn: nn.LocalResponseNorm):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = lrn.size, lrn.alpha, lrn.beta, lrn.k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            return F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)
        channels = x.shape[1]
        squares = F.pad(x * x, (0, 0, 0, 0, self.size // 2, (self.size - 1) // 2))
        window = squares[:, :channels]
        for shift in range(1, self.size):
            window = window + squares[:, shift:shift + channels]
        return x / (window * (self.alpha / self.size) + self.k).pow(self.beta)


def _stacked_module(module: nn.Module, store: _Store) -> nn.Module:
    """A copy of ``module`` whose Linear and Conv2d layers read stacked weights from
    ``store``, and whose local response normalisations sum their window by slices."""
    copy_ = copy.deepcopy(module)

    def swap(parent: nn.Module, prefix: str):
        for child_name, child in parent.named_children():
            name = f"{prefix}{child_name}."
            if isinstance(child, nn.Linear):
                setattr(parent, child_name, _StackedLinear(name, store))
            elif isinstance(child, nn.Conv2d):
                setattr(parent, child_name, _StackedConv2d(child, name, store))
            elif isinstance(child, nn.LocalResponseNorm):
                setattr(parent, child_name, _ChannelSumLRN(child))
            else:
                swap(child, name)

    swap(copy_, "")
    return copy_


class Forward:
    """``logits = forward(params (k, P), X (k, B, ...))`` -> ``(k, B, classes)``, one strategy.

    ``shared(params, X)`` does the same with one input ``X (N, ...)`` for
    every row (evaluation on a common test set).
    """

    def __init__(self, flat, strategy: str):
        self.flat, self.strategy = flat, strategy
        if strategy == "vmap":
            self._per_node = vmap(flat.forward)
            self._shared = vmap(flat.forward, in_dims=(0, None))
        elif strategy == "layers":
            self.store = _Store()
            self.module = _stacked_module(flat.module, self.store)
            self.channels_last = True  # until a forward that needs NCHW (a .view()) says otherwise

    def _split(self, params: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each named tensor of every row, ``(k, *shape)``: views, gradients flow back."""
        k = params.shape[0]
        return {name: part.reshape(k, *shape) for name, shape, part in
                zip(self.flat.names, self.flat.shapes, params.split(self.flat.sizes, dim=1))}

    def __call__(self, params: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        if self.strategy == "vmap":
            return self._per_node(params, X)
        if self.strategy == "loop":
            return torch.stack([self.flat.forward(p, x)
                                for p, x in zip(params.unbind(0), X.unbind(0))])
        k, B = X.shape[:2]
        merged = X.reshape(k * B, *X.shape[2:])
        self.store.tensors = self._split(params)
        try:
            if self.channels_last and merged.dim() == 4 and merged.device.type == "cpu":
                # Channels-last on a CPU: the same convolutions, and pooling ~10x faster.
                try:
                    out = self.module(merged.contiguous(memory_format=torch.channels_last))
                except RuntimeError as error:
                    if "view" not in str(error):
                        raise
                    # A forward that flattens with .view() needs the default layout.
                    self.channels_last = False
                    out = self.module(merged)
            else:
                out = self.module(merged)
        finally:
            self.store.tensors = {}
        return out.reshape(k, B, *out.shape[1:])

    def shared(self, params: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        if self.strategy == "vmap":
            return self._shared(params, X)
        # One node at a time: the shared X need not be copied per node.
        if self.strategy == "layers":  # the stacked module reads this thread's store
            return torch.stack([self(params[i:i + 1], X[None])[0] for i in range(len(params))])
        return torch.stack([functional_call(self.flat.module, self.flat.unflatten(p), (X,))
                            for p in params.unbind(0)])
