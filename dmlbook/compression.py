"""Exercise 4: compressing what nodes send — 8-bit quantization and top-k.

Each compressor takes one flat float32 vector and returns what the receiver
reconstructs, together with the bytes that actually travel:

* ``"quantize"`` — uniform quantization to ``level`` bits per entry between the
  vector's minimum and maximum; sends the codes plus two float32 numbers
  (offset and step).
* ``"topk"`` — keeps the ``level`` fraction of entries largest in magnitude;
  sends each kept value (float32) with its index (int32).
* ``"none"`` — the vector as float32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .units import MAX_STACKED_PARAMS, check_choice, check_int, check_number, check_tensor

METHODS = ("none", "quantize", "topk")


@dataclass(frozen=True)
class Compressed:
    """The receiver's reconstruction and the bytes on the wire."""

    values: torch.Tensor
    nbytes: int


def quantize(x: torch.Tensor, bits: int = 8) -> Compressed:
    """Uniform quantization of ``x`` to ``bits`` bits per entry (1 to 16).

    ``x`` is a finite floating-point tensor; an empty one costs only the
    8-byte header. A range wider than float32 holds is quantized in float64.
    """
    bits = check_int("bits", bits)
    if bits > 16:
        raise ValueError(f"bits must be a whole number from 1 to 16, got {bits}")
    x = check_tensor("x", x)
    if x.numel() == 0:
        return Compressed(x.clone(), 8)
    if not bool((x.max() - x.min()).isfinite()):
        wide = quantize(x.double(), bits)
        return Compressed(wide.values.to(x.dtype), wide.nbytes)
    lo, hi = x.min(), x.max()
    levels = 2**bits - 1
    step = (hi - lo) / levels
    if step == 0:
        return Compressed(x.clone(), math.ceil(x.numel() * bits / 8) + 8)
    codes = torch.round((x - lo) / step)
    return Compressed(lo + codes * step, math.ceil(x.numel() * bits / 8) + 8)


def top_k(x: torch.Tensor, fraction: float = 0.01) -> Compressed:
    """Keep the ``fraction`` of entries with the largest magnitude (at least one).

    An empty ``x`` sends nothing (0 bytes).
    """
    fraction = check_number("fraction", fraction)
    if fraction > 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    x = check_tensor("x", x)
    if x.numel() == 0:
        return Compressed(x.clone(), 0)
    k = max(1, int(round(fraction * x.numel())))
    idx = x.abs().topk(k).indices
    out = torch.zeros_like(x)
    out[idx] = x[idx]
    return Compressed(out, k * (4 + 4))


def compress(x: torch.Tensor, method: str = "none", level: float | None = None) -> Compressed:
    """Compress one vector: ``method`` in :data:`METHODS`; ``level`` is bits or a fraction."""
    method = check_choice("method", method, METHODS)
    x = check_tensor("x", x)
    if method == "none" and level is not None:
        raise ValueError(f"level must be None for method 'none', got {level!r}")
    if method == "quantize" and level is not None:
        level = check_int("level (bits)", level, maximum=16)
    if method == "topk" and level is not None:
        level = check_number("level", level)
        if level > 1:
            raise ValueError(f"level is top-k's fraction: fraction must be in (0, 1], "
                             f"got {level!r}")
    if method == "quantize":
        return quantize(x, 8 if level is None else level)
    if method == "topk":
        return top_k(x, 0.01 if level is None else level)
    return Compressed(x.clone(), x.numel() * x.element_size())


def compress_rows(X: torch.Tensor, method: str = "none", level=None) -> tuple[torch.Tensor, list[int]]:
    """Compress each row of ``X`` separately: reconstructions and bytes per row."""
    X = check_tensor("X", X)
    if X.ndim != 2 or X.numel() > MAX_STACKED_PARAMS:
        raise ValueError(f"X must be a matrix (one row per node) of at most "
                         f"{MAX_STACKED_PARAMS:,} entries, got shape {tuple(X.shape)}")
    parts = [compress(row, method, level) for row in X]
    return torch.stack([p.values for p in parts]), [p.nbytes for p in parts]


def relative_error(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """``||x - x_hat|| / ||x||`` (0 for a zero vector reproduced exactly)."""
    x, x_hat = check_tensor("x", x), check_tensor("x_hat", x_hat)
    if x.shape != x_hat.shape:
        raise ValueError(f"x_hat must have x's shape {tuple(x.shape)}, got {tuple(x_hat.shape)}")
    if not (bool(x.norm().isfinite()) and bool((x - x_hat).norm().isfinite())):
        x, x_hat = x.double(), x_hat.double()  # norms of float32 extremes overflow
    norm = x.norm()
    diff = (x - x_hat).norm()
    return float(diff / norm) if norm > 0 else float(diff)


@dataclass(frozen=True)
class EntryStats:
    """Mean, standard deviation and share of entries with ``|x| < near_zero``."""

    mean: float
    std: float
    near_zero: float
    threshold: float


def entry_stats(x: torch.Tensor, near_zero: float = 1e-3) -> EntryStats:
    """Statistics of a vector's entries; ``near_zero`` is an absolute threshold."""
    near_zero = float(check_number("near_zero", near_zero, maximum=1e300))
    x = check_tensor("x", x, allow_empty=False)
    if x.numel() == 1 or not bool(x.float().std().isfinite()):
        x = x.double()  # one entry has no spread; float32 extremes overflow
        std = float(x.std()) if x.numel() > 1 else 0.0
        return EntryStats(float(x.mean()), std, float((x.abs() < near_zero).double().mean()),
                          near_zero)
    x = x.flatten().float()
    return EntryStats(float(x.mean()), float(x.std()),
                      float((x.abs() < near_zero).float().mean()), near_zero)
