"""Data for the scaled-down runs, and ways to split it over nodes.

* :func:`load_digits` — scikit-learn's 8x8 handwritten digits (1,797 images,
  shipped inside scikit-learn: nothing is downloaded), with a held-out global
  test set.
* :func:`synthetic_logistic` — a linearly separable-ish two-class problem with
  a known true weight vector, for small, exactly checkable cases.
* :func:`split` — IID, label shards, or Dirichlet(alpha) partitions over nodes.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .units import (MAX_BATCH_SIZE, MAX_NODES, MAX_WIDTH, check_choice, check_fraction,
                    check_int, check_number, check_seed, check_tensor)

#: Examples :func:`synthetic_logistic` draws at most (x features: MAX_SYNTHETIC_VALUES).
MAX_SAMPLES = 1_000_000
#: Numbers (samples x features) :func:`synthetic_logistic` draws at most (256 MiB float64).
MAX_SYNTHETIC_VALUES = 2**25
#: Smallest Dirichlet concentration :func:`split` accepts (below it NumPy's
#: draws underflow to NaN).
MIN_ALPHA = 1e-3
#: Largest Dirichlet concentration (far beyond it the split is plain IID).
MAX_ALPHA = 1e6
#: Largest noise scale of the synthetic data.
MAX_NOISE = 1e6


@dataclass
class Dataset:
    """Training and held-out test tensors (features float32, labels int64).

    Checked when made: features are finite floating-point tensors (converted to
    float32) with one row per example and the same shape per example in both
    sets; labels are whole numbers (converted to int64) from 0 to
    ``num_classes - 1``, one per row; each set holds at least one example;
    ``num_classes`` is 2 to :data:`~dmlbook.units.MAX_WIDTH`.
    """

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int

    def __post_init__(self):
        self.num_classes = check_int("num_classes", self.num_classes, minimum=2,
                                     maximum=MAX_WIDTH)
        for part in ("train", "test"):
            X = check_tensor(f"X_{part}", getattr(self, f"X_{part}"))
            y = getattr(self, f"y_{part}")
            if X.ndim < 2 or X.shape[0] == 0:
                raise ValueError(f"X_{part} must hold at least one example (one row each, "
                                 f"at least two dimensions), got shape {tuple(X.shape)}")
            if (not isinstance(y, torch.Tensor) or y.dtype.is_floating_point
                    or y.dtype.is_complex or y.dtype == torch.bool or y.ndim != 1):
                raise ValueError(f"y_{part} must be a one-dimensional integer torch.Tensor, "
                                 f"got {getattr(y, 'dtype', type(y).__name__)} of shape "
                                 f"{tuple(getattr(y, 'shape', ()))}")
            if len(y) != X.shape[0]:
                raise ValueError(f"y_{part} must hold one label per row of X_{part} "
                                 f"({X.shape[0]}), got {len(y)}")
            if int(y.min()) < 0 or int(y.max()) >= self.num_classes:
                raise ValueError(f"y_{part} must hold labels 0 .. num_classes - 1 = "
                                 f"{self.num_classes - 1}, got {int(y.min())} .. {int(y.max())}")
            setattr(self, f"X_{part}", X.float())
            setattr(self, f"y_{part}", y.long())
        if self.X_train.shape[1:] != self.X_test.shape[1:]:
            raise ValueError(f"X_test must have X_train's shape per example "
                             f"{tuple(self.X_train.shape[1:])}, got {tuple(self.X_test.shape[1:])}")

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]


@lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 digits as (pixels 0..16, labels), read from scikit-learn's own file.

    The same file and parsing as ``sklearn.datasets.load_digits`` (tested), without
    importing scikit-learn: that import took 0.9 s in every kernel and worker process.
    """
    spec = importlib.util.find_spec("sklearn")  # finds the package; runs none of it
    if spec is None or spec.origin is None:
        raise ImportError("the digits ship with scikit-learn: pip install scikit-learn")
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    try:
        table = np.loadtxt(path, delimiter=",")
        pixels, labels = table[:, :-1], table[:, -1].astype(int)
    except OSError:  # a scikit-learn that keeps the file elsewhere: its own loader
        from sklearn.datasets import load_digits as sklearn_digits

        digits = sklearn_digits()
        pixels, labels = digits.data, digits.target
    pixels.flags.writeable = labels.flags.writeable = False  # shared by every caller
    return pixels, labels


def load_digits(*, test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """scikit-learn's digits, pixels scaled to [0, 1], split into train and test.

    Args:
        test_fraction: share of the 1,797 images held out as the global test set.
        seed: seed of the shuffle that picks the test set.
    """
    test_fraction = check_fraction("test_fraction", test_fraction)
    seed = check_seed(seed)
    pixels, labels = _digits_arrays()
    X = torch.tensor(pixels / 16.0, dtype=torch.float32)
    y = torch.tensor(labels, dtype=torch.int64)
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(y)))
    n_test = int(round(test_fraction * len(y)))
    if not 0 < n_test < len(y):
        raise ValueError(f"test_fraction must hold out at least one of the {len(y):,} images "
                         f"and train on at least one, got {test_fraction!r} "
                         f"({n_test:,} test images)")
    test, train = order[:n_test], order[n_test:]
    return Dataset(X[train], y[train], X[test], y[test], num_classes=10)


def digits_lenet_batch(batch_size: int = 32, *, seed: int = 0):
    """A real mini-batch of digits shaped for :class:`~dmlbook.models.LeNet`.

    The 8x8 images are upscaled bilinearly to 32x32 and repeated over 3
    channels. Returns ``(X, y)`` with X of shape (batch_size, 3, 32, 32).
    """
    batch_size = check_int("batch_size", batch_size, maximum=MAX_BATCH_SIZE)
    seed = check_seed(seed)
    data = load_digits(seed=seed)
    if batch_size > len(data.y_train):
        raise ValueError(f"batch_size must be at most {len(data.y_train)}, got {batch_size}")
    rows = torch.from_numpy(np.random.default_rng(seed).choice(
        len(data.y_train), batch_size, replace=False))
    images = data.X_train[rows].reshape(-1, 1, 8, 8)
    X = F.interpolate(images, size=(32, 32), mode="bilinear", align_corners=False)
    return X.repeat(1, 3, 1, 1).contiguous(), data.y_train[rows]


def synthetic_logistic(n_samples: int = 1000, n_features: int = 10, *,
                       noise: float = 0.5, test_fraction: float = 0.2,
                       seed: int = 0) -> Dataset:
    """Two classes from a logistic model with a known weight vector.

    Features are standard normal; ``P(y=1|x) = sigmoid(x @ w / noise)`` with
    ``w`` a random unit vector. Labels are int64 in {0, 1}. ``test_fraction``
    of the samples (at least one, and at least one left to train on) are the
    test set. ``n_samples`` is at most :data:`MAX_SAMPLES`, ``n_features`` at
    most :data:`~dmlbook.units.MAX_WIDTH`, their product at most
    :data:`MAX_SYNTHETIC_VALUES`.
    """
    n_samples = check_int("n_samples", n_samples, minimum=2, maximum=MAX_SAMPLES)
    n_features = check_int("n_features", n_features, maximum=MAX_WIDTH)
    if n_samples * n_features > MAX_SYNTHETIC_VALUES:
        raise ValueError(f"n_samples x n_features must be <= {MAX_SYNTHETIC_VALUES:,} "
                         f"(MAX_SYNTHETIC_VALUES), got {n_samples * n_features:,}")
    noise = check_number("noise", noise, maximum=MAX_NOISE)
    test_fraction = check_fraction("test_fraction", test_fraction)
    seed = check_seed(seed)
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(n_features)
    w /= np.linalg.norm(w)
    X = rng.standard_normal((n_samples, n_features))
    with np.errstate(over="ignore"):  # exp(+big) is inf, so p is 0: the right limit
        p = 1.0 / (1.0 + np.exp(-(X @ w) / noise))
    y = (rng.random(n_samples) < p).astype(np.int64)
    n_test = min(n_samples - 1, max(1, int(round(test_fraction * n_samples))))
    Xt = torch.tensor(X, dtype=torch.float32)
    yt = torch.tensor(y)
    return Dataset(Xt[n_test:], yt[n_test:], Xt[:n_test], yt[:n_test], num_classes=2)


SPLITS = ("iid", "shards", "dirichlet")


def split(y: torch.Tensor, n_nodes: int, *, kind: str = "iid", seed: int = 0,
          shards_per_node: int = 2, alpha: float = 0.5) -> list[np.ndarray]:
    """Partition example indices over ``n_nodes`` nodes.

    Args:
        y: labels of the training set.
        n_nodes: number of nodes.
        kind: ``"iid"`` (a random equal split), ``"shards"`` (sort by label,
            cut into ``n_nodes * shards_per_node`` shards, deal each node
            ``shards_per_node`` of them), or ``"dirichlet"`` (each class's
            examples spread over nodes with Dirichlet(``alpha``) proportions).
        seed: seed of every random choice.
        shards_per_node: shards each node gets (``"shards"`` only).
        alpha: Dirichlet concentration, :data:`MIN_ALPHA` to :data:`MAX_ALPHA`
            (``"dirichlet"`` only).

    Returns:
        A list of ``n_nodes`` index arrays that together cover every example
        exactly once. Every node gets at least one example.
    """
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or y.dtype == bool:
        raise ValueError(f"y must be a one-dimensional array of integer labels, "
                         f"got {y.dtype} of shape {y.shape}")
    n_nodes = check_int("n_nodes", n_nodes, maximum=MAX_NODES)
    kind = check_choice("kind", kind, SPLITS)
    seed = check_seed(seed)
    if n_nodes > len(y):
        raise ValueError(f"n_nodes must be at most the number of examples ({len(y)}), got {n_nodes}")
    rng = np.random.default_rng(seed)
    if kind == "iid":
        return [np.sort(part) for part in np.array_split(rng.permutation(len(y)), n_nodes)]
    if kind == "shards":
        shards_per_node = check_int("shards_per_node", shards_per_node, maximum=len(y))
        n_shards = n_nodes * shards_per_node
        if n_shards > len(y):
            raise ValueError(f"n_nodes * shards_per_node must be at most {len(y)}, got {n_shards}")
        # A stable sort of a shuffled order: shards are label-pure, ties random.
        order = rng.permutation(len(y))
        order = order[np.argsort(y[order], kind="stable")]
        shards = np.array_split(order, n_shards)
        dealt = rng.permutation(n_shards).reshape(n_nodes, shards_per_node)
        return [np.sort(np.concatenate([shards[s] for s in row])) for row in dealt]
    alpha = check_number("alpha", alpha, maximum=MAX_ALPHA)
    if alpha < MIN_ALPHA:
        raise ValueError(f"alpha must be >= {MIN_ALPHA:g} (MIN_ALPHA), got {alpha!r}")
    owners = np.empty(len(y), dtype=np.int64)
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        shares = rng.dirichlet(np.full(n_nodes, alpha))
        cuts = (np.cumsum(shares)[:-1] * len(members)).astype(int)
        for node, part in enumerate(np.split(members, cuts)):
            owners[part] = node
    # A node left empty takes one example from the largest node.
    counts = np.bincount(owners, minlength=n_nodes)
    for node in np.flatnonzero(counts == 0):
        donor = int(np.argmax(np.bincount(owners, minlength=n_nodes)))
        owners[rng.choice(np.flatnonzero(owners == donor))] = node
    return [np.flatnonzero(owners == node) for node in range(n_nodes)]


def dataset_or_digits(dataset: Dataset | None, *, seed: int = 0) -> Dataset:
    """``dataset``, or the digits split with ``seed`` when it is ``None``."""
    if dataset is not None and not isinstance(dataset, Dataset):
        raise ValueError(f"dataset must be a dmlbook.data.Dataset or None, "
                         f"got {type(dataset).__name__}")
    return dataset if dataset is not None else load_digits(seed=seed)


@dataclass(frozen=True)
class SplitSummary:
    """How a split shares the training examples: sizes and classes per node."""

    n_train: int
    min_examples: int
    max_examples: int
    min_classes: int
    max_classes: int
    n_classes: int


def summarize_split(y, parts) -> SplitSummary:
    """The package's one summary of a split: examples and distinct classes per node.

    ``y`` holds the labels; ``parts`` one sequence of indices into ``y`` per node.
    """
    y = np.asarray(y)
    sizes = np.array([len(p) for p in parts])
    classes = np.array([len(np.unique(y[np.asarray(p, dtype=np.int64)])) for p in parts])
    return SplitSummary(len(y), int(sizes.min()), int(sizes.max()), int(classes.min()),
                        int(classes.max()), int(len(np.unique(y))))
