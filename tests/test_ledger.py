import numpy as np
import pytest

from dmlbook.ledger import Ledger


def test_records_and_totals():
    L = Ledger(4)
    L.record(1, 0, [1, 2, 3], 100)               # one sender, three receivers
    L.record(2, [1, 2], [0, 0], 50, [True, False])
    assert len(L) == 5
    t = L.totals()
    assert (t.sent, t.delivered, t.lost) == (5, 4, 1)
    assert (t.bytes_sent, t.bytes_delivered) == (400, 350)
    assert list(L.per_node("sent")) == [3, 1, 1, 0]
    assert list(L.per_node("received")) == [1, 1, 1, 1]
    assert list(L.per_node("lost")) == [1, 0, 0, 0]
    assert list(L.per_node("sent", nbytes=True)) == [300, 50, 50, 0]
    assert list(L.per_round()) == [0, 3, 2]
    assert list(L.per_round(delivered_only=True)) == [0, 3, 1]
    assert L.received_matrix(2)[0, 1] == 1 and L.received_matrix(2)[0, 2] == 0


def test_rounds_window_and_extend():
    L = Ledger(3)
    for r in range(1, 4):
        L.record(r, [0, 1], [1, 2], 8)
    assert list(L.per_node("sent", rounds=slice(2, 4))) == [2, 2, 0]
    other = Ledger(3)
    other.extend(L)
    other.record(9, 2, 0, 8)
    assert other.totals().sent == 7 and L.totals().sent == 6


def test_empty_ledger_and_bad_input():
    L = Ledger()
    assert L.totals().sent == 0 and len(L.per_round()) == 0
    L.record(0, np.array([], int), np.array([], int), 8)
    assert len(L) == 0
    with pytest.raises(ValueError, match="what"):
        L.per_node("dropped")
    with pytest.raises(ValueError, match="n_nodes"):
        Ledger(0)


def test_compact_records():
    from dmlbook import ledger

    assert ledger.RECORD_BYTES == 4 + 4 + 4 + 4 + 1
    L = Ledger(4)
    L.record(1, np.arange(3), 3, 100)
    assert L.nbytes == 3 * ledger.RECORD_BYTES
    with pytest.raises(ValueError, match="receiver"):
        L.record(1, 0, 4, 100)       # no node 4 in a 4-node ledger
    with pytest.raises(ValueError, match="nbytes"):
        L.record(1, 0, 1, 2**40)     # bigger than one record holds


def test_counts_only_mode_gives_the_same_counts():
    rng = np.random.default_rng(0)
    full, counts = Ledger(6), Ledger(6, counts_only=True)
    for r in (1, 2, 2, 5):
        sender = rng.integers(0, 6, 20)
        receiver = rng.integers(0, 6, 20)
        ok = rng.random(20) < 0.7
        for L in (full, counts):
            L.record(r, sender, receiver, 40 + r, ok)
    assert len(counts) == len(full) == 80
    assert counts.totals() == full.totals()
    for delivered_only in (False, True):
        assert list(counts.per_round(delivered_only=delivered_only)) == \
            list(full.per_round(delivered_only=delivered_only))
    for what in ("sent", "received", "lost"):
        for nbytes in (False, True):
            assert list(counts.per_node(what, nbytes=nbytes)) == \
                list(full.per_node(what, nbytes=nbytes))
    assert counts.nbytes == 0
    both = Ledger(6, counts_only=True)
    both.extend(counts)
    both.extend(full)
    assert both.totals().sent == 160 and list(both.per_round()) == [0, 40, 80, 0, 0, 40]
    for needs_records in (counts.columns, lambda: counts.received_matrix(1),
                          lambda: counts.per_node("sent", rounds=slice(1, 2))):
        with pytest.raises(ValueError, match="counts_only"):
            needs_records()


def test_dpsgd_counts_only_matches_full_ledger():
    from dmlbook.dpsgd import run_dpsgd

    kw = dict(n_nodes=6, degree=2, rounds=3, final_allreduce="naive", progress=False)
    full = run_dpsgd(**kw).ledger
    counts = run_dpsgd(counts_only=True, **kw).ledger
    assert counts.totals() == full.totals()
    assert list(counts.per_round()) == list(full.per_round()) == [0, 12, 12, 12, 30]
