import numpy as np
import pytest

from dmlbook.ledger import RECORD_BYTES, Ledger


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


def _traced_peak(fn):
    """Peak bytes NumPy allocated while ``fn()`` ran (tracemalloc sees NumPy's buffers)."""
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("counts_only", [False, True])
def test_the_largest_round_is_accepted_and_its_per_round_is_small(counts_only):
    # Issue #27: at the int32 maximum, a counts-only record asked for 32 GiB and
    # per_round() for 16 GiB. MAX_ROUND is now 10 x MAX_ROUNDS: 8 MB a column.
    from dmlbook.ledger import MAX_ROUND
    from dmlbook.units import MAX_ROUNDS

    assert MAX_ROUND == 10 * MAX_ROUNDS
    L = Ledger(4, counts_only=counts_only)

    def fill():
        L.record(MAX_ROUND, 0, 1, 8)
        L.record(3, 1, 2, 8, False)
        per_round = L.per_round()
        assert len(per_round) == MAX_ROUND + 1
        assert per_round[MAX_ROUND] == per_round[3] == 1 and per_round.sum() == 2
        assert L.per_round(delivered_only=True)[3] == 0

    assert _traced_peak(fill) < 4 * 8 * (MAX_ROUND + 1) + 2**20
    with pytest.raises(ValueError, match=r"round must be whole numbers >= 0 and <= 1,000,000"):
        L.record(MAX_ROUND + 1, 0, 1, 8)
    if not counts_only:
        assert L.received_matrix(MAX_ROUND)[1, 0] == 1
        with pytest.raises(ValueError, match="round must be a whole number"):
            L.received_matrix(MAX_ROUND + 1)


def test_counts_only_rounds_one_at_a_time_grow_the_store_amortised():
    L = Ledger(3, counts_only=True)
    for r in range(5000):
        L.record(r, 0, 1, 4, r % 2 == 0)
    assert list(L.per_round()[:4]) == [1, 1, 1, 1] and len(L.per_round()) == 5000
    assert list(L.per_round(delivered_only=True)[:4]) == [1, 0, 1, 0]
    # Doubled ahead of need (8,192 columns), not grown one column (and one copy) a round.
    assert 5000 < L._per_round.shape[1] <= 2 * 5000
    other = Ledger(3, counts_only=True)
    other.extend(L)
    assert np.array_equal(other.per_round(), L.per_round())


def test_columns_join_one_field_at_a_time():
    # Joining every field at once held every record twice (2.5 GiB at the
    # D-PSGD bound); one field at a time holds one column more.
    def fill_and_join():
        L = Ledger(100)
        for r in range(20):
            L.record(r, np.arange(50_000) % 100, (np.arange(50_000) + 1) % 100, 8)
        records = 20 * 50_000 * RECORD_BYTES
        c = L.columns()
        assert len(c["round"]) == 1_000_000 and c["round"][-1] == 19
        return records

    import tracemalloc

    tracemalloc.start()
    try:
        records = fill_and_join()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < records * (1 + 5 / 17), f"peak {peak:,} B for {records:,} B of records"


@pytest.mark.parametrize("block", [7, 1000, 2**22])
def test_summaries_read_in_blocks_give_the_whole_ledgers_counts(monkeypatch, block):
    from dmlbook import ledger as ledger_mod

    monkeypatch.setattr(ledger_mod, "BLOCK_RECORDS", block)
    rng = np.random.default_rng(0)
    n, m = 9, 500
    cols = dict(round=rng.integers(0, 12, m), sender=rng.integers(0, n, m),
                receiver=rng.integers(0, n, m), nbytes=rng.integers(0, 2**31 - 1, m),
                delivered=rng.random(m) < 0.7)
    L = Ledger(n)
    for part in np.array_split(np.arange(m), 5):
        L.record(*(cols[f][part] for f in Ledger.FIELDS))
    d = cols["delivered"]
    assert L.totals().bytes_sent == int(cols["nbytes"].sum())
    assert L.totals().bytes_delivered == int(cols["nbytes"][d].sum())
    assert list(L.per_round()) == list(np.bincount(cols["round"]))
    assert list(L.per_round(delivered_only=True)) == list(np.bincount(cols["round"][d],
                                                                         minlength=12))
    window = (cols["round"] >= 3) & (cols["round"] < 9)
    for what, node, mask in (("sent", "sender", np.ones(m, bool)), ("received", "receiver", d),
                             ("lost", "receiver", ~d)):
        for rounds, keep in ((None, mask), (slice(3, 9), mask & window)):
            expected = [int(cols["nbytes"][keep & (cols[node] == i)].sum()) for i in range(n)]
            assert list(L.per_node(what, nbytes=True, rounds=rounds)) == expected, (what, rounds)
            assert list(L.per_node(what, rounds=rounds)) == \
                list(np.bincount(cols[node][keep], minlength=n))
