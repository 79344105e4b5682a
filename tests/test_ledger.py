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
