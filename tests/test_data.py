import warnings

import numpy as np
import pytest
import torch

from dmlbook import data


def test_digits_shapes_and_held_out_test_set():
    d = data.load_digits(seed=0)
    assert d.X_train.shape[1] == 64 and d.num_classes == 10
    assert len(d.y_train) + len(d.y_test) == 1_797
    assert len(d.y_test) == 359
    assert 0 <= float(d.X_train.min()) and float(d.X_train.max()) <= 1
    # Train and test are disjoint: no test image appears among training images.
    train = {tuple(r.tolist()) for r in d.X_train}
    assert sum(tuple(r.tolist()) in train for r in d.X_test) < 10  # digits has a few duplicates


def test_digits_are_scikit_learns_digits():
    # Read from scikit-learn's file without importing scikit-learn: the same arrays.
    from sklearn.datasets import load_digits as sk_load_digits

    sk = sk_load_digits()
    pixels, labels = data._digits_arrays()
    np.testing.assert_array_equal(pixels, sk.data)
    np.testing.assert_array_equal(labels, sk.target)
    d = data.load_digits(seed=0)
    all_X = torch.cat([d.X_train, d.X_test])
    assert torch.equal(torch.sort(all_X.sum(1)).values,
                       torch.sort(torch.tensor(sk.data / 16.0, dtype=torch.float32).sum(1)).values)


def test_digits_is_seeded():
    a, b, c = data.load_digits(seed=1), data.load_digits(seed=1), data.load_digits(seed=2)
    assert torch.equal(a.y_test, b.y_test) and not torch.equal(a.y_test, c.y_test)


def test_lenet_batch():
    X, y = data.digits_lenet_batch(32, seed=0)
    assert X.shape == (32, 3, 32, 32) and y.shape == (32,)
    assert torch.equal(X[:, 0], X[:, 2])
    with pytest.raises(ValueError, match="batch_size"):
        data.digits_lenet_batch(100_000)


def test_synthetic_logistic_is_learnable_and_seeded():
    d = data.synthetic_logistic(500, 5, noise=0.1, seed=0)
    assert d.X_train.shape == (400, 5) and d.num_classes == 2
    assert set(d.y_train.unique().tolist()) == {0, 1}
    assert torch.equal(d.X_test, data.synthetic_logistic(500, 5, noise=0.1, seed=0).X_test)


def test_synthetic_logistic_at_the_smallest_noise_warns_of_nothing():
    # noise 5e-324 sends exp() past float64's range: p is then exactly 0 or 1.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = data.synthetic_logistic(200, 3, noise=5e-324, seed=0)
    labels = torch.cat([d.y_test, d.y_train])
    assert set(labels.tolist()) == {0, 1} and not torch.isnan(d.X_train).any()


def _covers_once(parts, n):
    joined = np.concatenate(parts)
    return len(joined) == n and len(np.unique(joined)) == n


@pytest.mark.parametrize("kind", data.SPLITS)
def test_splits_cover_every_example_once(kind):
    y = data.load_digits().y_train
    parts = data.split(y, 16, kind=kind, seed=0)
    assert len(parts) == 16 and _covers_once(parts, len(y))
    assert all(len(p) > 0 for p in parts)
    again = data.split(y, 16, kind=kind, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))


def test_iid_split_is_balanced():
    parts = data.split(torch.arange(100) % 10, 8, kind="iid")
    assert sorted({len(p) for p in parts}) == [12, 13]


def test_shards_split_has_few_labels_per_node():
    y = data.load_digits().y_train
    parts = data.split(y, 20, kind="shards", shards_per_node=2, seed=0)
    labels = [len(np.unique(y.numpy()[p])) for p in parts]
    assert max(labels) <= 4 and np.mean(labels) <= 2.5


def test_dirichlet_concentration_controls_skew():
    y = data.load_digits().y_train.numpy()

    def mean_labels(alpha):
        parts = data.split(y, 20, kind="dirichlet", alpha=alpha, seed=0)
        return np.mean([len(np.unique(y[p])) for p in parts])

    assert mean_labels(0.05) < mean_labels(100.0)
    assert mean_labels(100.0) >= 9


@pytest.mark.parametrize("kw, param", [
    ({"n_nodes": 0}, "n_nodes"), ({"n_nodes": 10_000}, "n_nodes"),
    ({"kind": "random"}, "kind"), ({"seed": -1}, "seed"),
    ({"kind": "dirichlet", "alpha": 0}, "alpha"),
    ({"kind": "shards", "shards_per_node": 0}, "shards_per_node"),
])
def test_split_rejects_bad_input(kw, param):
    y = data.load_digits().y_train
    with pytest.raises(ValueError, match=param):
        data.split(y, **{"n_nodes": 4, **kw})


@pytest.mark.parametrize("call, param", [
    (lambda: data.load_digits(test_fraction=1.0), "test_fraction"),
    (lambda: data.load_digits(test_fraction=float("nan")), "test_fraction"),
    (lambda: data.synthetic_logistic(1), "n_samples"),
    (lambda: data.synthetic_logistic(noise=0), "noise"),
])
def test_loaders_reject_bad_input(call, param):
    with pytest.raises(ValueError, match=param):
        call()
