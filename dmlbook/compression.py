"""Exercise 4: compressing what nodes send — 8-bit quantization and top-k.

Each compressor takes one flat float32 vector and returns what the receiver
reconstructs, together with the bytes that actually travel:

* ``"quantize"`` — uniform quantization to ``level`` bits per entry between the
  vector's minimum and maximum; sends the codes plus two float32 numbers
  (offset and step).
* ``"topk"`` — keeps the ``level`` fraction of entries largest in magnitude;
  sends each kept value (float32) with its index (int32); the receiver puts
  zeros where nothing was sent.
* ``"none"`` — the vector as float32.

Two fairer baselines for sending *parameters* (a weight vector is made of
tensors of very different scales, and the receiver already holds a model):

* ``"quantize_per_tensor"`` — the same quantization with one min–max range per
  tensor (layer weight or bias) instead of one for the whole vector; sends
  two float32 numbers per tensor.
* ``"topk_keep"`` — top-k as above, but the receiver keeps its own value
  (``reference``) for every entry not sent. For an update the receiver's own
  value is 0, so this is plain top-k.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .units import MAX_COUNT, MAX_STACKED_PARAMS, check_choice, check_int, check_number, check_tensor

METHODS = ("none", "quantize", "topk", "quantize_per_tensor", "topk_keep")
BYTES_PER_KEPT_ENTRY = 4 + 4  # a float32 value and its int32 index
#: Quantization levels: 1 to 16 bits per entry.
MAX_QUANT_BITS = 16
#: Largest "near zero" threshold of the statistics (any float32 magnitude is below it).
MAX_NEAR_ZERO = 1e300


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
    return Compressed(out, k * BYTES_PER_KEPT_ENTRY)


def quantize_per_tensor(x: torch.Tensor, bits: int = 8, sizes=None) -> Compressed:
    """:func:`quantize` applied to each tensor of ``x`` separately.

    ``sizes`` are the lengths of the consecutive tensors that make up ``x``
    (for a model, :attr:`dmlbook.engine.FlatModel.sizes`); ``None`` means one
    tensor. Each tensor gets its own offset and step (8 bytes).
    """
    sizes = [x.numel()] if sizes is None else [int(s) for s in sizes]
    if any(s < 1 for s in sizes) or sum(sizes) != x.numel():
        raise ValueError(f"sizes must be positive and add up to the vector's "
                         f"{x.numel()} entries, got {sum(sizes)}")
    parts = [quantize(part, bits) for part in torch.split(x, sizes)]
    return Compressed(torch.cat([p.values for p in parts]), sum(p.nbytes for p in parts))


def top_k_keep(x: torch.Tensor, fraction: float = 0.01,
               reference: torch.Tensor | None = None) -> Compressed:
    """:func:`top_k`, but entries not sent keep the receiver's ``reference`` value.

    ``reference=None`` means the receiver holds zeros: plain :func:`top_k`.
    """
    sent = top_k(x, fraction)
    if reference is None:
        return sent
    reference = check_tensor("reference", reference)
    if reference.shape != x.shape:
        raise ValueError(f"reference must have the shape of x {tuple(x.shape)}, "
                         f"got {tuple(reference.shape)}")
    k = sent.nbytes // BYTES_PER_KEPT_ENTRY
    kept = torch.zeros_like(x, dtype=torch.bool)
    kept[x.abs().topk(k).indices] = True
    return Compressed(torch.where(kept, x, reference), sent.nbytes)


def compressed_bytes(n_entries: int, method: str = "none", level=None, *,
                     n_tensors: int = 1) -> int:
    """Bytes on the wire for one vector of ``n_entries`` float32 entries.

    The closed form of what :func:`compress` sends: float32 is 4 bytes per
    entry; ``bits``-bit quantization ``ceil(n * bits / 8)`` bytes of codes plus
    8 bytes (offset and step) per tensor (``n_tensors`` for per-tensor
    quantization, whose codes are counted per tensor: exact when every
    tensor's ``size * bits`` is a multiple of 8); top-k 8 bytes per kept entry.
    """
    n_entries = check_int("n_entries", n_entries, maximum=MAX_COUNT)
    n_tensors = check_int("n_tensors", n_tensors, maximum=n_entries)
    method = check_choice("method", method, METHODS)
    level = check_level(method, level)
    if method in ("quantize", "quantize_per_tensor"):
        if method == "quantize":
            n_tensors = 1
        return math.ceil(n_entries * level / 8) + 8 * n_tensors
    if method in ("topk", "topk_keep"):
        return max(1, int(round(level * n_entries))) * BYTES_PER_KEPT_ENTRY
    return 4 * n_entries


def check_level(method: str, level):
    """``level`` checked for ``method`` (its default for ``None``), named ``level``.

    Quantization takes whole bits from 1 to 16 (default 8), top-k a fraction
    in (0, 1] (default 0.01), ``"none"`` only ``None``.
    """
    method = check_choice("method", method, METHODS)
    if method == "none":
        if level is not None:
            raise ValueError(f"level must be None for method 'none', got {level!r}")
        return None
    if method in ("quantize", "quantize_per_tensor"):
        return 8 if level is None else check_int("level (bits)", level, maximum=MAX_QUANT_BITS)
    if level is None:
        return 0.01
    return float(check_number("level (top-k's fraction, in (0, 1])", level, maximum=1))


def compress(x: torch.Tensor, method: str = "none", level: float | None = None, *,
             sizes=None, reference: torch.Tensor | None = None) -> Compressed:
    """Compress one vector: ``method`` in :data:`METHODS`; ``level`` is bits or a fraction.

    ``sizes`` (tensor lengths) is used by ``"quantize_per_tensor"``,
    ``reference`` (the receiver's own vector) by ``"topk_keep"``.
    """
    method = check_choice("method", method, METHODS)
    x = check_tensor("x", x)
    level = check_level(method, level)
    if method == "quantize":
        return quantize(x, level)
    if method == "quantize_per_tensor":
        return quantize_per_tensor(x, level, sizes)
    if method == "topk":
        return top_k(x, level)
    if method == "topk_keep":
        return top_k_keep(x, level, reference)
    return Compressed(x.clone(), x.numel() * x.element_size())


def compress_rows(X: torch.Tensor, method: str = "none", level=None, *, sizes=None,
                  reference: torch.Tensor | None = None) -> tuple[torch.Tensor, list[int]]:
    """Compress each row of ``X`` separately: reconstructions and bytes per row.

    ``reference`` is one vector, the receiver's, shared by every row. All rows
    at once, with the arithmetic of :func:`compress` on one row.
    """
    X = check_tensor("X", X)
    if X.ndim != 2 or X.numel() > MAX_STACKED_PARAMS:
        raise ValueError(f"X must be a matrix (one row per node) of at most "
                         f"{MAX_STACKED_PARAMS:,} entries, got shape {tuple(X.shape)}")
    method = check_choice("method", method, METHODS)
    level = check_level(method, level)
    if method == "none":
        return X.clone(), [X.shape[1] * X.element_size()] * len(X)
    if method == "quantize":
        values, nbytes = _quantize_rows(X, 8 if level is None else level)
    elif method == "quantize_per_tensor":
        bits = 8 if level is None else level
        check_int("bits", bits, maximum=MAX_QUANT_BITS)
        sizes = [X.shape[1]] if sizes is None else [int(s) for s in sizes]
        if any(s < 1 for s in sizes) or sum(sizes) != X.shape[1]:
            raise ValueError(f"sizes must be positive and add up to the vector's "
                             f"{X.shape[1]} entries, got {sum(sizes)}")
        parts = [_quantize_rows(part, bits) for part in X.split(sizes, dim=1)]
        values, nbytes = torch.cat([p[0] for p in parts], 1), sum(p[1] for p in parts)
    else:
        values, nbytes = _top_k_rows(X, 0.01 if level is None else level,
                                     reference if method == "topk_keep" else None)
    return values, [nbytes] * len(X)


def _quantize_rows(X: torch.Tensor, bits: int) -> tuple[torch.Tensor, int]:
    """:func:`quantize` of every row at once: the same arithmetic, broadcast over rows."""
    bits = check_int("bits", bits, maximum=MAX_QUANT_BITS)
    nbytes = math.ceil(X.shape[1] * bits / 8) + 8
    if X.shape[1] == 0:
        return X.clone(), 8
    lo, hi = X.min(1, keepdim=True).values, X.max(1, keepdim=True).values
    wide = ~(hi - lo).isfinite().squeeze(1)
    step = (hi - lo) / (2**bits - 1)
    flat = step == 0
    codes = torch.round((X - lo) / torch.where(flat, torch.ones_like(step), step))
    values = torch.where(flat, X, lo + codes * step)
    for i in wide.nonzero().flatten().tolist():  # ranges float32 cannot hold: one by one
        values[i] = quantize(X[i], bits).values
    return values, nbytes


def _top_k_rows(X: torch.Tensor, fraction, reference) -> tuple[torch.Tensor, int]:
    """:func:`top_k` (or :func:`top_k_keep` with ``reference``) of every row at once."""
    fraction = check_number("fraction", fraction)
    if fraction > 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if X.shape[1] == 0:
        return X.clone(), 0
    k = max(1, int(round(fraction * X.shape[1])))
    idx = X.abs().topk(k, dim=1).indices
    if reference is None:
        return torch.zeros_like(X).scatter_(1, idx, X.gather(1, idx)), k * BYTES_PER_KEPT_ENTRY
    if reference.shape != X.shape[1:]:
        raise ValueError(f"reference must have the shape of x {tuple(X.shape[1:])}, "
                         f"got {tuple(reference.shape)}")
    kept = torch.zeros_like(X, dtype=torch.bool).scatter_(1, idx, True)
    return torch.where(kept, X, reference), k * BYTES_PER_KEPT_ENTRY


def relative_errors(X: torch.Tensor, X_hat: torch.Tensor) -> torch.Tensor:
    """:func:`relative_error` of each row of ``X`` against the same row of ``X_hat``: ``(n,)``."""
    X, X_hat = check_tensor("X", X), check_tensor("X_hat", X_hat)
    if X.ndim != 2 or X.shape != X_hat.shape:
        raise ValueError(f"X_hat must have X's shape (a matrix), got {tuple(X_hat.shape)} "
                         f"and {tuple(X.shape)}")
    norm, diff = X.norm(dim=1), (X - X_hat).norm(dim=1)
    if not (bool(norm.isfinite().all()) and bool(diff.isfinite().all())):
        norm, diff = X.double().norm(dim=1), (X.double() - X_hat.double()).norm(dim=1)
    return torch.where(norm > 0, diff / torch.where(norm > 0, norm, 1), diff)


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
    near_zero = float(check_number("near_zero", near_zero, maximum=MAX_NEAR_ZERO))
    x = check_tensor("x", x, allow_empty=False)
    if x.numel() == 1 or not bool(x.float().std().isfinite()):
        x = x.double()  # one entry has no spread; float32 extremes overflow
        std = float(x.std()) if x.numel() > 1 else 0.0
        return EntryStats(float(x.mean()), std, float((x.abs() < near_zero).double().mean()),
                          near_zero)
    x = x.flatten().float()
    return EntryStats(float(x.mean()), float(x.std()),
                      float((x.abs() < near_zero).float().mean()), near_zero)
