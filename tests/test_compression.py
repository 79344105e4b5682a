"""Exercise 4's compression (dmlbook.compression): 8-bit quantization, top-k, their bytes."""

import pytest
import torch

from dmlbook import compression


def test_quantize_hand_worked():
    x = torch.tensor([0.0, 1.0, 2.0, 3.0])
    c = compression.quantize(x, bits=2)  # levels 0, 1, 2, 3 exactly
    assert torch.equal(c.values, x) and c.nbytes == 1 + 8
    c = compression.quantize(torch.tensor([0.0, 0.4, 1.0]), bits=1)
    assert torch.allclose(c.values, torch.tensor([0.0, 0.0, 1.0]))
    assert compression.quantize(torch.ones(10), 8).values.equal(torch.ones(10))


def test_topk_hand_worked():
    x = torch.tensor([0.1, -5.0, 0.2, 3.0, 0.0])
    c = compression.top_k(x, 0.4)
    assert torch.equal(c.values, torch.tensor([0.0, -5.0, 0.0, 3.0, 0.0]))
    assert c.nbytes == 2 * 8
    assert compression.relative_error(x, c.values) == pytest.approx(
        float(torch.tensor([0.1, 0.2]).norm() / x.norm()))


def test_compress_none_and_rows():
    X = torch.randn(3, 100)
    values, nbytes = compression.compress_rows(X, "none")
    assert torch.equal(values, X) and nbytes == [400] * 3
    values, nbytes = compression.compress_rows(X, "quantize", 8)
    assert nbytes == [108] * 3 and compression.relative_error(X, values) < 0.01


def test_quantize_per_tensor_hand_worked():
    # Two tensors of very different scales: one range each keeps both exact at 1 bit.
    x = torch.tensor([0.0, 100.0, 0.0, 0.01])
    c = compression.quantize_per_tensor(x, bits=1, sizes=[2, 2])
    assert torch.equal(c.values, x) and c.nbytes == 2 * (1 + 8)
    whole = compression.quantize(x, bits=1)
    assert whole.values[3] == 0.0  # one range for both loses the small tensor
    assert compression.quantize_per_tensor(x, 8).nbytes == compression.quantize(x, 8).nbytes


def test_top_k_keep_fills_unsent_entries_from_the_receiver():
    x = torch.tensor([0.1, -5.0, 0.2, 3.0, 0.0])
    ref = torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0])
    c = compression.top_k_keep(x, 0.4, ref)
    assert torch.equal(c.values, torch.tensor([1.0, -5.0, 1.0, 3.0, 1.0]))
    assert c.nbytes == compression.top_k(x, 0.4).nbytes == 2 * 8
    assert torch.equal(compression.top_k_keep(x, 0.4).values, compression.top_k(x, 0.4).values)


@pytest.mark.parametrize("method, level", [
    ("none", None), ("quantize", 8), ("quantize", 4), ("quantize", 3), ("topk", 0.1),
    ("topk", 0.01), ("topk_keep", 0.1), ("quantize_per_tensor", 8)])
@pytest.mark.parametrize("n", [1, 7, 2410, 85_098])
def test_compressed_bytes_is_what_compress_sends(method, level, n):
    x = torch.randn(n, generator=torch.Generator().manual_seed(n))
    assert compression.compressed_bytes(n, method, level) == compression.compress(
        x, method, level).nbytes


def test_compressed_bytes_lenet_by_hand():
    assert compression.compressed_bytes(85_098) == 340_392
    assert compression.compressed_bytes(85_098, "quantize", 8) == 85_098 + 8
    assert compression.compressed_bytes(85_098, "topk", 0.01) == 851 * 8
    assert compression.compressed_bytes(85_098, "quantize_per_tensor", 8, n_tensors=10) \
        == 85_098 + 80


@pytest.mark.parametrize("call, param", [
    (lambda: compression.quantize(torch.ones(3), 0), "bits"),
    (lambda: compression.quantize(torch.ones(3), 17), "bits"),
    (lambda: compression.quantize(torch.ones(3), 4.5), "bits"),
    (lambda: compression.top_k(torch.ones(3), 0), "fraction"),
    (lambda: compression.top_k(torch.ones(3), 1.5), "fraction"),
    (lambda: compression.compress(torch.ones(3), "zip"), "method"),
    (lambda: compression.entry_stats(torch.ones(3), near_zero=-1), "near_zero"),
    (lambda: compression.quantize_per_tensor(torch.ones(4), 4, [2, 3]), "sizes"),
    (lambda: compression.top_k_keep(torch.ones(4), 0.5, torch.ones(3)), "reference"),
    (lambda: compression.compressed_bytes(0), "n_entries"),
    (lambda: compression.compressed_bytes(10, "quantize", 2.5), "level"),
    (lambda: compression.compressed_bytes(10, "gzip"), "method"),
])
def test_bad_input(call, param):
    with pytest.raises(ValueError, match=param):
        call()
