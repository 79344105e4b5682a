"""The ledger's contract, one test per behaviour that `make mutants` found unguarded.

The mutation run of ledger.py (benchmarks/README.md, "Mutation testing")
left these without a test: the error that names each argument, whole-number
floats (accepted) against fractional ones (refused), the bounds of node ids
and of records, ``extend`` in counts-only mode, the node count of a ledger
that learns it from its records, and the defaults of the summaries.
"""

import dataclasses

import numpy as np
import pytest

from dmlbook import ledger as ledger_module
from dmlbook.ledger import MAX_LEDGER_NODES, MAX_NBYTES, MAX_ROUND, Ledger, LedgerTotals
from dmlbook.units import MAX_NODES


@pytest.mark.parametrize("field", ["round", "sender", "receiver", "nbytes"])
def test_whole_number_floats_are_stored_and_fractions_refused(field):
    args = dict(round=1, sender=0, receiver=1, nbytes=8)
    args[field] = np.array([1.0, 1.0])
    ledger = Ledger(3)
    ledger.record(**args)
    assert ledger.columns()[field].tolist() == [1, 1]
    args[field] = 1.5  # one value
    with pytest.raises(ValueError, match=rf"^{field} must be whole numbers, got float64 values$"):
        Ledger(3).record(**args)
    args[field] = np.array([1.0, 1.5])
    with pytest.raises(ValueError, match=rf"^{field} must be whole numbers, got float64 values$"):
        Ledger(3).record(**args)


@pytest.mark.parametrize("field, value, bound", [
    ("sender", 3, "2"), ("receiver", -1, "2"), ("round", MAX_ROUND + 1, f"{MAX_ROUND:,}"),
    ("nbytes", MAX_NBYTES + 1, f"{MAX_NBYTES:,}")])
def test_out_of_range_values_name_their_field_and_bound(field, value, bound):
    args = dict(round=1, sender=0, receiver=1, nbytes=8)
    args[field] = value
    with pytest.raises(ValueError, match=rf"^{field} must be whole numbers >= 0 and <= {bound}, "
                                         rf"got {value} \.\. {value}$"):
        Ledger(3).record(**args)


def test_record_argument_errors():
    ledger = Ledger(3)
    with pytest.raises(ValueError, match=r"^delivered must be booleans, got int64 values$"):
        ledger.record(1, 0, 1, 8, delivered=1)
    with pytest.raises(ValueError, match=r"^round, sender, receiver, nbytes and delivered must "
                                         r"broadcast to one length$"):
        ledger.record(1, [0, 1], [1, 2, 0], 8)
    with pytest.raises(ValueError, match=r"^round, sender, receiver, nbytes and delivered must "
                                         r"be scalars or one-dimensional$"):
        ledger.record(1, [[0, 1]], 2, 8)


def test_constructor_errors_and_the_node_bound():
    assert Ledger(MAX_LEDGER_NODES).n_nodes == MAX_LEDGER_NODES == 2 * MAX_NODES
    with pytest.raises(ValueError, match=r"^n_nodes "):
        Ledger(MAX_LEDGER_NODES + 1)
    with pytest.raises(ValueError, match=r"^counts_only must be True or False, got 'yes'$"):
        Ledger(3, counts_only="yes")
    with pytest.raises(ValueError, match=r"^n_nodes must be given for a counts_only ledger$"):
        Ledger(counts_only=True)


def test_records_up_to_the_bound_and_not_one_more(monkeypatch):
    monkeypatch.setattr(ledger_module, "MAX_LEDGER_RECORDS", 4)
    ledger = Ledger(3)
    ledger.record(1, [0, 1], [1, 2], 8)
    ledger.record(2, [0, 1], [1, 2], 8)  # 4 records: at the bound
    assert len(ledger) == 4
    with pytest.raises(ValueError, match=r"^a ledger holds at most MAX_LEDGER_RECORDS = 4 "
                                         r"records: use Ledger\(n, counts_only=True\)$"):
        ledger.record(3, 0, 1, 8)


def counts_ledger(n, messages):
    ledger = Ledger(n, counts_only=True)
    for round, sender, receiver in messages:
        ledger.record(round, sender, receiver, 8)
    return ledger


def test_counts_only_extend_adds_counts_and_refuses_what_it_cannot_hold():
    a = counts_ledger(3, [(1, 0, 1), (2, 1, 2)])
    b = counts_ledger(2, [(1, 1, 0)])
    a.extend(b)
    a.extend(b)
    assert len(a) == 4 and a.totals() == LedgerTotals(4, 4, 32, 32)
    assert a.per_round().tolist() == [0, 3, 1]
    wider = counts_ledger(4, [(1, 3, 0)])
    message = (r"^a counts_only ledger extends only a counts_only ledger with at least as "
               r"many nodes$")
    with pytest.raises(ValueError, match=message):
        a.extend(wider)
    with pytest.raises(ValueError, match=message):
        Ledger(3).extend(b)
    with pytest.raises(ValueError, match=r"^other must be a Ledger, got dict$"):
        a.extend({})


def test_an_empty_counts_only_ledger_has_no_rounds():
    assert Ledger(3, counts_only=True).per_round().tolist() == []


@pytest.mark.parametrize("call, what", [
    (lambda l: l.columns(), r"columns\(\)"),
    (lambda l: l.per_node(rounds=slice(0, 1)), r"per_node\(rounds=\.\.\.\)"),
    (lambda l: l.received_matrix(1), r"received_matrix\(\)")])
def test_what_needs_records_says_so(call, what):
    with pytest.raises(ValueError, match=rf"^{what} needs per-message records; this ledger is "
                                         rf"counts_only$"):
        call(counts_ledger(3, [(1, 0, 1)]))


def test_nodes_learned_from_the_records_or_given():
    assert Ledger().per_node().tolist() == []  # nothing recorded, no nodes
    learned = Ledger()
    learned.record(1, 0, 2, 8)
    assert learned.per_node("received").tolist() == [0, 0, 1]
    given = Ledger(10)
    given.record(1, 0, 1, 8)
    assert len(given.per_node()) == 10
    assert Ledger(3).per_node(rounds=slice(0, 2)).tolist() == [0, 0, 0]


def test_summary_defaults_and_argument_errors():
    ledger = Ledger(3)
    ledger.record(1, [0, 0, 1], [1, 2, 2], 8, delivered=np.array([True, False, True]))
    assert ledger.per_node().tolist() == ledger.per_node("sent").tolist() == [2, 1, 0]
    with pytest.raises(ValueError, match=r"^what must be one of 'sent', 'received', 'lost', "
                                         r"got 'kept'$"):
        ledger.per_node("kept")
    with pytest.raises(ValueError, match=r"^rounds must be a slice or None, got 3$"):
        ledger.per_node(rounds=3)


def test_received_matrix_of_round_zero():
    ledger = Ledger(2)
    ledger.record(0, 1, 0, 8)
    assert ledger.received_matrix(0).tolist() == [[0, 1], [0, 0]]


def test_totals_are_immutable():
    totals = Ledger(2).totals()
    with pytest.raises(dataclasses.FrozenInstanceError):
        totals.sent = 5


def test_check_run_messages_bounds_every_run_and_full_ledgers(monkeypatch):
    from dmlbook.ledger import check_run_messages
    from dmlbook.units import MAX_LEDGER_RECORDS, MAX_RUN_MESSAGES

    what = "rounds x 6 messages a round"
    assert check_run_messages("rounds", MAX_RUN_MESSAGES, what, counts_only=True) == MAX_RUN_MESSAGES
    for counts_only in (True, False, None):
        with pytest.raises(ValueError, match=rf"^rounds must keep {what} <= "
                                             rf"{MAX_RUN_MESSAGES:,} \(MAX_RUN_MESSAGES\), "
                                             rf"got {MAX_RUN_MESSAGES + 1:,}$"):
            check_run_messages("rounds", MAX_RUN_MESSAGES + 1, what, counts_only=counts_only)
    # A full ledger: MAX_LEDGER_RECORDS, with the counts-only hint only for a
    # caller that has that option (False), none for one that has not (None).
    assert check_run_messages("n", MAX_LEDGER_RECORDS, what, counts_only=False) == MAX_LEDGER_RECORDS
    assert check_run_messages("n", MAX_LEDGER_RECORDS, what) == MAX_LEDGER_RECORDS
    assert check_run_messages("n", MAX_LEDGER_RECORDS + 1, what, counts_only=True)
    refused = rf"^n must keep {what} <= {MAX_LEDGER_RECORDS:,} \(MAX_LEDGER_RECORDS\) for a " \
              rf"full ledger, got {MAX_LEDGER_RECORDS + 1:,}"
    with pytest.raises(ValueError, match=refused + "; pass counts_only=True to keep counts only$"):
        check_run_messages("n", MAX_LEDGER_RECORDS + 1, what, counts_only=False)
    with pytest.raises(ValueError, match=refused + "$"):
        check_run_messages("n", MAX_LEDGER_RECORDS + 1, what)


def test_max_run_messages_is_the_documented_number_of_rounds():
    # units.py's comment: 119 naive rounds of MAX_NODES workers, or 2,002
    # D-PSGD rounds on the complete graph of 1,000 nodes, at the bound.
    from dmlbook.units import MAX_NODES, MAX_RUN_MESSAGES

    assert MAX_RUN_MESSAGES // (MAX_NODES * (MAX_NODES - 1)) == 119
    assert MAX_RUN_MESSAGES // (1000 * 999) == 2002


def test_counts_only_record_counts_a_long_call_block_by_block(monkeypatch):
    # One call of 11 records in blocks of 3 (issue #27: a naive round of 4,096
    # workers is 16.8 M records in one call; counted at once, its masks and
    # weights took 0.4 GiB): the same counts as a full ledger.
    monkeypatch.setattr(ledger_module, "BLOCK_RECORDS", 3)
    rng = np.random.default_rng(0)
    args = (rng.integers(0, 4, 11), rng.integers(0, 5, 11), rng.integers(0, 5, 11),
            rng.integers(1, 100, 11), rng.random(11) < 0.7)
    full, counts = Ledger(5), Ledger(5, counts_only=True)
    full.record(*args)
    counts.record(*args)
    assert counts.totals() == full.totals()
    assert np.array_equal(counts.per_round(), full.per_round())
    for what in ("sent", "received", "lost"):
        for nbytes in (False, True):
            assert np.array_equal(counts.per_node(what, nbytes=nbytes),
                                  full.per_node(what, nbytes=nbytes))
