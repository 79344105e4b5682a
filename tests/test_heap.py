import platform
import subprocess
import sys
import textwrap

import pytest
import torch

from dmlbook import heap
from dmlbook.engine import Nodes
from dmlbook.models import make_model

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="malloc_trim is glibc's")
def test_trim_is_available_with_glibc():
    assert heap.available()
    assert heap.trim() is True


@pytest.mark.skipif(not GLIBC, reason="malloc_trim is glibc's")
def test_trim_hands_the_free_middle_of_the_heap_back():
    # A fragmented heap in a fresh process: 4,000 blocks of 64 KiB (below glibc's
    # mmap threshold, so on the heap), every 16th kept. free() cannot give the
    # gaps back, since they are not at the heap's top; trim() can.
    code = textwrap.dedent("""
        import ctypes
        from dmlbook import heap
        libc = ctypes.CDLL(None)
        libc.malloc.restype = ctypes.c_void_p
        libc.free.argtypes = [ctypes.c_void_p]
        def rss_anon_kib():
            for line in open("/proc/self/status"):
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
        blocks = [libc.malloc(64 * 1024) for _ in range(4000)]
        for b in blocks:
            ctypes.memset(b, 1, 64 * 1024)
        for i, b in enumerate(blocks):
            if i % 16:
                libc.free(b)
        before = rss_anon_kib()
        heap.trim()
        print(before, rss_anon_kib())
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    before, after = map(int, out.split())
    freed_mib = 4000 * 15 / 16 * 64 / 1024  # 234 MiB of gaps
    assert before - after > 0.8 * freed_mib * 1024, (before, after)


def _nodes(n=3):
    torch.manual_seed(0)
    return Nodes(make_model("mlp"), n)


def _batch(n=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 8, 64, generator=g), torch.randint(0, 10, (n, 8), generator=g)


def test_the_engine_trims_once_every_trim_every_calls(monkeypatch):
    trims = []
    monkeypatch.setattr(heap, "trim", lambda: trims.append(1) or True)
    nodes = _nodes()
    X, y = _batch()
    every = heap.TRIM_EVERY_CALLS
    for _ in range(every - 1):
        nodes.sgd_step(X, y, 0.1)
    assert trims == []
    nodes.sgd_step(X, y, 0.1)
    assert len(trims) == 1
    # Gradient computations count too (gradients() is one call).
    for _ in range(every - 1):
        nodes.gradients(X, y)
    nodes.losses_and_gradients(X, y)
    assert len(trims) == 2


def test_trimming_changes_no_result(monkeypatch):
    X, y = _batch()
    runs = []
    for every in (1, 10**9):
        nodes = _nodes()
        nodes._trimmer = heap.Trimmer(every)
        for _ in range(5):
            nodes.sgd_step(X, y, 0.1)
        runs.append(nodes.params.clone())
    assert torch.equal(runs[0], runs[1])


@pytest.mark.parametrize("every", [0, -1, True, 1.5, "32"])
def test_trimmer_refuses_a_count_that_is_not_a_positive_whole_number(every):
    with pytest.raises(ValueError, match=r"^every must be a whole number of calls >= 1, got "):
        heap.Trimmer(every)


def test_trim_without_glibc_does_nothing(monkeypatch):
    monkeypatch.setattr(heap, "_MALLOC_TRIM", None)
    assert not heap.available()
    assert heap.trim() is False
