"""Workbook 2's checks: the feedback each kind of wrong answer gets, word for word.

As for workbook 1 (test_check_ex1_contract.py): each wrong solution is one a
student writes; the test pins the case it is caught on, the named mistake and
the hint under it, and the summary a right solution gets.
"""

import numpy as np
import pytest
import torch

from check_helpers import calls_of
from dmlbook import check
from dmlbook.check import ex2_download_cost

GIB = 2**30
SHEET_CASE = ("Case: download_cost(n_params=4950544, rounds=1000, clients_per_round=200, "
              "usd_per_gib=0.03, bytes_per_param=4), the sheet's case (about 110.65 $)")


def cost(n, rounds, clients, usd, bpp):
    return rounds * clients * n * bpp / GIB * usd


COSTS = [
    ("per MiB", lambda *a: cost(*a) * 1024, "GiB vs MiB",
     "the price is per GiB: 2^30 bytes, not 2^20."),
    ("per TiB", lambda *a: cost(*a) / 1024, "GiB vs TiB",
     "the price is per GiB: 2^30 bytes, not 2^40."),
    ("uploads billed", lambda *a: cost(*a) * 2, "uploads are free",
     "only the downloads from the cloud are billed, once per client per round."),
    ("one round", lambda n, r, c, u, b: cost(n, r, c, u, b) / r, "forgot the rounds",
     "every round, every participating client downloads the model again."),
    ("one client", lambda n, r, c, u, b: cost(n, r, c, u, b) / c, "forgot the clients",
     "each participating client downloads its own copy of the model."),
    ("one byte a parameter", lambda n, r, c, u, b: cost(n, r, c, u, b) / b,
     "forgot bytes per parameter", "a model is n_params * bytes_per_param bytes."),
    ("bits", lambda *a: cost(*a) * 8, "bits vs bytes",
     "one byte is 8 bits; check which quantities are in bits and which in bytes, and "
     "convert exactly once."),
    ("per 10^9 bytes", lambda *a: cost(*a) * GIB / 10**9, "10^9 vs 2^30",
     "network speeds use decimal prefixes (1 Gbit/s = 10^9 bit/s), cloud prices binary "
     "ones (1 GiB = 2^30 bytes)."),
    ("unrelated", lambda *a: 1.0, "wrong value",
     "cost = rounds * clients * n_params * bytes_per_param / 2^30 * price."),
    ("off by more than float32 rounding", lambda *a: cost(*a) * (1 + 1e-5), "wrong value",
     "cost = rounds * clients * n_params * bytes_per_param / 2^30 * price."),
]


@pytest.mark.parametrize("label, fn, mistake, hint", COSTS, ids=[c[0] for c in COSTS])
def test_download_cost_names_the_mistake_and_its_hint(label, fn, mistake, hint):
    result = check.download_cost(fn)
    assert not result.passed and result.mistake == mistake
    lines = result.feedback.splitlines()
    assert lines[:2] == ["✗ download_cost: not yet.", SHEET_CASE]
    assert lines[2] == f"  expected: {cost(4950544, 1000, 200, 0.03, 4):.10g}"
    assert lines[-1] == f"Hint ({mistake}): {hint}"


def test_download_cost_summary_of_a_pass():
    result = check.download_cost(lambda *a: cost(*a) * (1 + 1e-12))  # rounding only
    assert result.passed, result.feedback
    assert result.feedback == (
        "✓ download_cost: passed. 3 hand-worked cases; 40 seeded random cases over every "
        "parameter; a FedAvg run (2 rounds, 3 clients) billed from its ledger (15,600 bytes "
        "downloaded) agrees.")


# Right except on one part of one parameter's range: only the random cases see it,
# and the feedback names the first seeded case that falls there.
RANGES = [
    ("eight bytes a parameter", lambda n, r, c, u, b: b == 8, 5),
    ("half a billion parameters or more", lambda n, r, c, u, b: n >= 5 * 10**8, 1),
    ("more than 5,000 rounds", lambda n, r, c, u, b: r > 5000, 3),
    ("more than 5,000 clients", lambda n, r, c, u, b: c > 5000, 3),
    ("a price above 0.15 $/GiB", lambda n, r, c, u, b: 0.15 < u < 0.5, 3),
    ("a price below 0.01 $/GiB", lambda n, r, c, u, b: u < 0.01, 20),
]


@pytest.mark.parametrize("label, wrong_here, k", RANGES, ids=[r[0] for r in RANGES])
def test_download_cost_random_cases_cover_every_parameter(label, wrong_here, k):
    result = check.download_cost(
        lambda *a: 0.5 * cost(*a) if wrong_here(*a) else cost(*a))
    assert not result.passed
    case = result.feedback.splitlines()[1]
    assert case.startswith("Case: download_cost(") and case.endswith(f", random case {k} of 40")


def test_download_cost_cases_are_the_sheets_the_hand_worked_and_the_random_ones():
    calls = calls_of(check.download_cost, cost)
    assert len(calls) == 3 + 40 + 1
    assert calls[:3] == [(4950544, 1000, 200, 0.03, 4), (2**28, 1, 1, 1.0, 4),
                         (1000, 10, 5, 0.09, 2)]
    assert cost(*calls[1]) == 1.0  # "one GiB at 1 $/GiB: 1 $"
    randoms = calls[3:43]
    n, rounds, clients, usd, bpp = (list(col) for col in zip(*randoms))
    assert all(isinstance(v, int) for v in n + rounds + clients + bpp)
    assert 1 <= min(n) and max(n) < 10**9 and max(n) > 9 * 10**8
    assert 1 <= min(rounds) and max(rounds) < 10**4 and max(rounds) > 9 * 10**3
    assert 1 <= min(clients) and max(clients) < 10**4 and max(clients) > 9 * 10**3
    assert 0.005 <= min(usd) < 0.01 and 0.2 < max(usd) <= 0.24
    assert set(bpp) == {1, 2, 4, 8}
    assert len(set(randoms)) == 40
    assert calls[43] == (650, 2, 3, 0.03, 4)  # the FedAvg run's logistic regression


def test_download_cost_simulator_stage_bills_the_runs_ledger():
    # Right on every hand and random case, wrong only on the FedAvg run's numbers.
    def wrong_on_the_run(n, r, c, u, b):
        return 0.0 if (r, c, u) == (2, 3, 0.03) else cost(n, r, c, u, b)

    result = check.download_cost(wrong_on_the_run)
    assert not result.passed
    assert result.feedback.splitlines()[1] == (
        "Case: download_cost(n_params=650, rounds=2, clients_per_round=3, usd_per_gib=0.03, "
        "bytes_per_param=4), a FedAvg run's downloads, read from its ledger")
    assert result.feedback.splitlines()[2] == f"  expected: {15600 / GIB * 0.03:.10g}"


def test_download_cost_tolerance_is_float32_rounding_only():
    # float32 carries about 7 digits: a cost computed in it is right, and 1e-5 off is not.
    assert ex2_download_cost.REL_TOL == 1e-6
    assert check.download_cost(lambda *a: cost(*a) * (1 + 1e-7)).passed
    assert not check.download_cost(lambda *a: cost(*a) * (1 + 1e-5)).passed


def test_a_cost_and_a_bill_computed_in_float32_pass():
    def cost_in_float32(n_params, rounds, clients, usd_per_gib, bytes_per_param):
        return torch.tensor(rounds * clients * n_params * bytes_per_param) / 2**30 * usd_per_gib

    def bill_in_float32(ledger, server, rounds, usd_per_gib):
        mine = torch.from_numpy(ledger["sender"] == server)
        per_round = torch.zeros(rounds + 1)
        per_round.index_add_(0, torch.from_numpy(ledger["round"])[mine],
                             torch.from_numpy(ledger["nbytes"])[mine].float())
        return torch.cumsum(per_round[1:] / 2**30 * usd_per_gib, 0)

    assert check.download_cost(cost_in_float32).passed
    assert check.cumulative_bill(bill_in_float32).passed


# ---------------------------------------------------------------------------
# cumulative_bill


def bill(ledger, server, rounds, usd, *, cumulative=True, factor=1.0, sender=None):
    sent = ledger["sender"] == (server if sender is None else sender)
    per_round = np.bincount(ledger["round"][sent], weights=ledger["nbytes"][sent],
                            minlength=rounds + 1)[1:rounds + 1] / GIB * usd * factor
    return list(np.cumsum(per_round) if cumulative else per_round)


HAND = "Case: 5 messages over 3 rounds, the server is node 0, 1 $/GiB"
BILLS = [
    ("one number", lambda L, s, r, u: 5.0, "wrong shape",
     "return a list with one cumulative bill per round.", HAND,
     ["  expected: array([1., 3., 3.])", "  got:      5"]),
    ("one round short", lambda L, s, r, u: bill(L, s, r, u)[:-1], "wrong shape",
     "one entry per round 1 .. rounds, the bill so far.", HAND,
     ["  expected: 3 numbers, one per round", "  got:      2 numbers"]),
    ("text", lambda L, s, r, u: ["x"] * r, "not a number", "return the bill as a float.",
     HAND + ": the bill after round 1", ["  expected: 1", "  got:      x"]),
    ("per round", lambda L, s, r, u: bill(L, s, r, u, cumulative=False), "not cumulative",
     "each entry is the bill so far: add the rounds before it.",
     HAND + ": the bill after round 2", ["  expected: 3", "  got:      2"]),
    ("wrong after round 1", lambda L, s, r, u: bill(L, s, r, u)[:1] + [5.0] * (r - 1),
     "wrong value", "add up the bytes the server sent in each round, price them per GiB, and "
     "keep a running total.", HAND + ": the bill after round 2",
     ["  expected: 3", "  got:      5"]),
    ("round 1 off by the bill of the run", lambda L, s, r, u: [-2.0] + bill(L, s, r, u)[1:],
     "wrong value", "add up the bytes the server sent in each round, price them per GiB, and "
     "keep a running total.", HAND + ": the bill after round 1",
     ["  expected: 1", "  got:      -2"]),
    ("bits", lambda L, s, r, u: bill(L, s, r, u, factor=8), "bits vs bytes",
     "one byte is 8 bits; check which quantities are in bits and which in bytes, and "
     "convert exactly once.", HAND + ": the bill after round 1",
     ["  expected: 1", "  got:      8"]),
    ("every sender", lambda L, s, r, u: bill(L, s, r, u, sender=L["sender"]), "wrong value",
     "add up the bytes the server sent in each round, price them per GiB, and keep a "
     "running total.", HAND + ": the bill after round 1",
     ["  expected: 1", "  got:      1.5"]),
    ("always node 0", lambda L, s, r, u: bill(L, s, r, u, sender=0), "wrong value",
     "add up the bytes the server sent in each round, price them per GiB, and keep a "
     "running total.", "Case: random ledger 1 of 20 (242 messages, 20 nodes, server 14, "
     "30 rounds, 0.1025 $/GiB): the bill after round 1", ["  expected: 0"]),
]


@pytest.mark.parametrize("label, fn, mistake, hint, case, shown", BILLS,
                         ids=[b[0] for b in BILLS])
def test_cumulative_bill_names_the_mistake_and_its_hint(label, fn, mistake, hint, case,
                                                        shown):
    result = check.cumulative_bill(fn)
    assert not result.passed and result.mistake == mistake
    lines = result.feedback.splitlines()
    assert lines[:2] == ["✗ cumulative_bill: not yet.", case]
    assert lines[2:2 + len(shown)] == shown
    assert f"Hint ({mistake}): {hint}" in lines


def test_cumulative_bill_summary_of_a_pass():
    result = check.cumulative_bill(bill)
    assert result.passed, result.feedback
    assert result.feedback == (
        "✓ cumulative_bill: passed. 2 hand-worked ledgers (uploads and other nodes' messages "
        "are not billed); 20 seeded random ledgers; the ledger of a FedAvg run (4 clients, "
        "3 rounds) gives dmlbook.costs.fl_cumulative_cost's bill, 8.72e-07 $.")


def test_cumulative_bill_an_empty_ledger_bills_nothing():
    # Right whenever there are messages, wrong on none: only the empty hand case sees it.
    result = check.cumulative_bill(
        lambda L, s, r, u: bill(L, s, r, u) if len(L["round"]) else [1.0] * r)
    assert result.feedback.splitlines()[1] == (
        "Case: no messages at all: the bill after round 1")


def test_cumulative_bill_simulator_stage_reads_a_fedavg_ledger():
    # Right at every price but the run's (0.03 $/GiB): only the simulator stage sees it.
    def wrong_on_the_run(L, s, r, u):
        right = bill(L, s, r, u)
        return [2 * x for x in right] if u == 0.03 else right

    result = check.cumulative_bill(wrong_on_the_run)
    assert result.feedback.splitlines()[1] == (
        "Case: the ledger of dmlbook.federated.run_fedavg (4 clients, 3 rounds, the server "
        "is node 4): the bill after round 1")


def test_cumulative_bill_cases_are_the_hand_worked_the_random_and_the_runs():
    calls = calls_of(check.cumulative_bill, bill)
    assert len(calls) == 2 + 20 + 1
    (first, server, rounds, usd), (empty, *empty_args) = calls[:2]
    assert {k: list(v) for k, v in first.items()} == {
        "round": [1, 1, 2, 2, 3], "sender": [0, 2, 0, 1, 2], "receiver": [2, 0, 1, 0, 0],
        "nbytes": [2**30, 2**29, 2**31, 2**30, 2**30]}
    assert (server, rounds, usd) == (0, 3, 1.0)
    assert all(len(v) == 0 for v in empty.values()) and empty_args == [0, 2, 0.5]
    randoms = calls[2:22]
    servers = [s for _, s, _, _ in randoms]
    assert 0 in servers  # node 0 is not always the server, but can be
    assert 1 in [r for _, _, r, _ in randoms]  # a run of a single round
    assert all(0.01 <= u <= 0.2 for _, _, _, u in randoms)
    for ledger, s, r, _ in randoms:
        n_nodes = max(ledger["sender"].max(), ledger["receiver"].max()) + 1
        assert s < 30 and n_nodes <= 30 and ledger["round"].max() <= r < 40
    ledger, server, rounds, usd = calls[22]
    assert (server, rounds, usd) == (4, 3, 0.03)
    assert set(ledger["sender"]) == set(range(5))  # the server (4) and its 4 clients


def test_cumulative_bill_random_ledgers_differ_in_every_part():
    rng = np.random.default_rng(0)
    ledger = ex2_download_cost._random_ledger(rng, n_nodes=5, rounds=7, messages=400)
    assert set(ledger) == {"round", "sender", "receiver", "nbytes"}
    assert set(ledger["round"]) == set(range(1, 8))
    assert set(ledger["sender"]) == set(ledger["receiver"]) == set(range(5))
    assert ledger["nbytes"].min() >= 1 and ledger["nbytes"].max() > 10**8
    assert all(len(v) == 400 for v in ledger.values())


def test_cumulative_bill_expected_bills_only_the_server_within_the_rounds():
    ledger = {"round": np.array([1, 2, 2, 3, 4]), "sender": np.array([1, 1, 0, 1, 1]),
              "receiver": np.zeros(5, int), "nbytes": np.array([GIB, GIB, GIB, 2 * GIB, GIB])}
    got = ex2_download_cost._bill_expected(ledger, server=1, rounds=3, usd_per_gib=0.5)
    assert list(got) == [0.5, 1.0, 2.0]
