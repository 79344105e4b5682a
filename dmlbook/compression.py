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

from .units import check_choice, check_int, check_number

METHODS = ("none", "quantize", "topk")


@dataclass(frozen=True)
class Compressed:
    """The receiver's reconstruction and the bytes on the wire."""

    values: torch.Tensor
    nbytes: int


def quantize(x: torch.Tensor, bits: int = 8) -> Compressed:
    """Uniform quantization of ``x`` to ``bits`` bits per entry (1 to 16)."""
    bits = check_int("bits", bits)
    if bits > 16:
        raise ValueError(f"bits must be a whole number from 1 to 16, got {bits}")
    lo, hi = x.min(), x.max()
    levels = 2**bits - 1
    step = (hi - lo) / levels
    if step == 0:
        return Compressed(x.clone(), math.ceil(x.numel() * bits / 8) + 8)
    codes = torch.round((x - lo) / step)
    return Compressed(lo + codes * step, math.ceil(x.numel() * bits / 8) + 8)


def top_k(x: torch.Tensor, fraction: float = 0.01) -> Compressed:
    """Keep the ``fraction`` of entries with the largest magnitude (at least one)."""
    fraction = check_number("fraction", fraction)
    if fraction > 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    k = max(1, int(round(fraction * x.numel())))
    idx = x.abs().topk(k).indices
    out = torch.zeros_like(x)
    out[idx] = x[idx]
    return Compressed(out, k * (4 + 4))


def compress(x: torch.Tensor, method: str = "none", level: float | None = None) -> Compressed:
    """Compress one vector: ``method`` in :data:`METHODS`; ``level`` is bits or a fraction."""
    method = check_choice("method", method, METHODS)
    if method == "quantize":
        return quantize(x, 8 if level is None else level)
    if method == "topk":
        return top_k(x, 0.01 if level is None else level)
    return Compressed(x.clone(), x.numel() * x.element_size())


def compress_rows(X: torch.Tensor, method: str = "none", level=None) -> tuple[torch.Tensor, list[int]]:
    """Compress each row of ``X`` separately: reconstructions and bytes per row."""
    parts = [compress(row, method, level) for row in X]
    return torch.stack([p.values for p in parts]), [p.nbytes for p in parts]


def relative_error(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """``||x - x_hat|| / ||x||`` (0 for a zero vector reproduced exactly)."""
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
    near_zero = check_number("near_zero", near_zero)
    x = x.flatten().float()
    return EntryStats(float(x.mean()), float(x.std()),
                      float((x.abs() < near_zero).float().mean()), near_zero)
