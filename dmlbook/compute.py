"""Measured compute: how long one local SGD step really takes on this machine."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .units import MAX_LR, check_int, check_number

#: Timed and warm-up steps :func:`time_sgd_step` takes at most.
MAX_REPEATS = 10_000


@dataclass(frozen=True)
class StepTiming:
    """Wall-clock seconds of one SGD step (forward, backward, update)."""

    median_s: float
    min_s: float
    repeats: int
    batch_size: int
    threads: int


def sgd_step(model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, lr: float) -> float:
    """One plain SGD step on cross-entropy; returns the loss before the step."""
    lr = float(check_number("lr", lr, maximum=MAX_LR))
    model.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(X), y)
    loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= lr * p.grad
    return float(loss.detach())


def time_calls(fn, repeats: int, *, warmup: int = 1) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls of ``fn()``, after ``warmup`` uncounted ones.

    The package's one timing loop (``time.perf_counter`` around each call).
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def time_sgd_step(model: nn.Module, X: torch.Tensor, y: torch.Tensor, *,
                  lr: float = 0.01, repeats: int = 20, warmup: int = 3) -> StepTiming:
    """Time ``repeats`` SGD steps of ``model`` on the mini-batch ``(X, y)``.

    The first ``warmup`` steps are not counted (allocator and kernel warm-up).
    Returns the median and the fastest step in seconds.
    """
    lr = float(check_number("lr", lr, maximum=MAX_LR))
    repeats = check_int("repeats", repeats, maximum=MAX_REPEATS)
    warmup = check_int("warmup", warmup, minimum=0, maximum=MAX_REPEATS)
    times = time_calls(lambda: sgd_step(model, X, y, lr=lr), repeats, warmup=warmup)
    return StepTiming(statistics.median(times), min(times), repeats, len(y),
                      torch.get_num_threads())
