"""FedAvg's bookkeeping without a per-client loop gives the per-client numbers (#28.2).

``compression.compress_rows`` and ``relative_errors`` treat all rows at
once; each row must come out as :func:`compression.compress` and
:func:`compression.relative_error` give it on its own.
"""

import numpy as np
import pytest
import torch

from dmlbook import compression, federated

SETTINGS = [("none", None), ("quantize", 8), ("quantize", 4), ("quantize", 1), ("topk", 0.1),
            ("topk", 0.01), ("topk", None), ("quantize_per_tensor", 4), ("topk_keep", 0.1),
            ("topk_keep", 0.01)]
SIZES = [6, 3, 40, 1]


def rows():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(7, 50, generator=g) * torch.logspace(-3, 1, 50)
    X[1] = 0.0              # a zero row: no range, top-k of ties
    X[2] = 0.25             # a constant row
    X[3, :6] = 3e38         # a range wider than float32 holds
    X[3, 6:] = -3e38
    return X


@pytest.mark.parametrize("method, level", SETTINGS)
def test_rows_as_one_by_one(method, level):
    X = rows()
    reference = torch.linspace(-1, 1, 50)
    values, nbytes = compression.compress_rows(X, method, level, sizes=SIZES,
                                               reference=reference)
    for i, row in enumerate(X):
        one = compression.compress(row, method, level, sizes=SIZES, reference=reference)
        if method.startswith("topk") and i == 1:  # ties: any zero entries may be "kept"
            assert nbytes[i] == one.nbytes
            continue
        torch.testing.assert_close(values[i], one.values, rtol=0, atol=0)
        assert nbytes[i] == one.nbytes


def test_relative_errors_as_one_by_one():
    X = rows()
    X_hat = compression.compress_rows(X, "quantize", 4)[0]
    X_hat[1] = 0.0
    got = compression.relative_errors(X, X_hat)
    want = [compression.relative_error(a, b) for a, b in zip(X, X_hat)]
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)


@pytest.mark.parametrize("bad", [dict(method="quantize", level=17),
                                 dict(method="topk", level=2.0),
                                 dict(method="none", level=3)])
def test_rows_check_the_level(bad):
    with pytest.raises(ValueError, match="level"):
        compression.compress_rows(rows(), **bad)


@pytest.mark.parametrize("method, level", [("none", None), ("quantize", 4), ("topk_keep", 0.1)])
def test_fedavg_bookkeeping_is_the_per_client_loop(method, level, monkeypatch):
    """The whole run with the vectorised bookkeeping against one with the old loops."""
    kw = dict(n_clients=5, rounds=3, local_steps=2, method=method, level=level,
              send="parameters" if method == "topk_keep" else "update", progress=False)
    fast = federated.run_fedavg(**kw)

    def by_rows(X, method="none", level=None, *, sizes=None, reference=None):
        parts = [compression.compress(r, method, level, sizes=sizes, reference=reference)
                 for r in X]
        return torch.stack([p.values for p in parts]), [p.nbytes for p in parts]

    def errors(X, X_hat):
        return torch.tensor([compression.relative_error(a, b) for a, b in zip(X, X_hat)])

    monkeypatch.setattr(compression, "compress_rows", by_rows)
    monkeypatch.setattr(compression, "relative_errors", errors)
    slow = federated.run_fedavg(**kw)
    torch.testing.assert_close(fast.server, slow.server, rtol=0, atol=0)
    np.testing.assert_allclose(fast.rel_error, slow.rel_error, rtol=1e-6)
    np.testing.assert_allclose(fast.step_error, slow.step_error, rtol=1e-6)
    assert fast.ledger.columns()["nbytes"].tolist() == slow.ledger.columns()["nbytes"].tolist()
