"""Workbook 2: what the cloud bills for FL's downloads, by formula and from a ledger."""

from __future__ import annotations

import numpy as np

from ..costs import fl_cumulative_cost
from ..federated import run_fedavg
from ..sheet import SHEET
from ..units import GIB
from .display import args_text
from .harness import (Failure, as_float, call, close, each, ratio_hint, rng_for, stages,
                      unit_mistakes)

_ARGS = ("n_params", "rounds", "clients_per_round", "usd_per_gib", "bytes_per_param")
#: Relative tolerance of a cost: rounding only, never a wrong constant.
REL_TOL = 1e-6


def _expected(n_params, rounds, clients, usd_per_gib, bytes_per_param) -> float:
    return rounds * clients * n_params * bytes_per_param / GIB * usd_per_gib


def _case(fn, args, label="", expected=None):
    """``expected``: a function of no arguments (default: the formula), called after the
    student's: the answer is never on the stack while their function runs."""
    case = f"download_cost({args_text(_ARGS, args)})" + (f", {label}" if label else "")
    out = call(fn, case, *args)
    expected = _expected(*args) if expected is None else expected()
    actual = as_float(out, case, expected, "the cost in US dollars")
    if close(actual, expected, rel=REL_TOL):
        return actual
    n_params, rounds, clients, usd, bpp = args
    known = unit_mistakes() + [
        (1024, "GiB vs MiB", "the price is per GiB: 2^30 bytes, not 2^20."),
        (1 / 1024, "GiB vs TiB", "the price is per GiB: 2^30 bytes, not 2^40."),
        (2, "uploads are free", "only the downloads from the cloud are billed, once per "
                                "client per round."),
        (1 / rounds, "forgot the rounds", "every round, every participating client "
                                          "downloads the model again."),
        (1 / clients, "forgot the clients", "each participating client downloads its own "
                                            "copy of the model."),
        (1 / bpp, "forgot bytes per parameter", "a model is n_params * bytes_per_param "
                                                "bytes.")]
    mistake, hint = ratio_hint(expected, actual, known) or (
        "wrong value", "cost = rounds * clients * n_params * bytes_per_param / 2^30 * price.")
    raise Failure(case, expected=expected, actual=actual, mistake=mistake, hint=hint)


def download_cost(fn, *, time_limit_s=None):
    """Check ``fn(n_params, rounds, clients_per_round, usd_per_gib, bytes_per_param) -> float``.

    US dollars a cloud bills for FL's model downloads (the price is per GiB).
    """
    hand = [((SHEET.lstm_params, SHEET.lstm_rounds, SHEET.lstm_clients_per_round,
              SHEET.usd_per_gib, SHEET.lstm_bytes_per_param),
             f"the sheet's case (about {SHEET.ex2_usd} $)"),
            ((2**28, 1, 1, 1.0, 4), "one GiB at 1 $/GiB: 1 $"),
            ((1000, 10, 5, 0.09, 2), "16-bit parameters")]

    def random_cases(fn):
        rng = rng_for("download_cost")
        for k in range(40):
            args = (int(rng.integers(1, 10**9)), int(rng.integers(1, 10**4)),
                    int(rng.integers(1, 10**4)), float(rng.choice([0.01, 0.03, 0.09, 0.12])
                                                       * rng.uniform(0.5, 2)),
                    int(rng.choice([1, 2, 4, 8])))
            _case(fn, args, f"random case {k + 1} of 40")
        return "40 seeded random cases over every parameter"

    def simulator(fn):
        n_clients, rounds, price = 3, 2, 0.03
        fed = run_fedavg(n_clients=n_clients, rounds=rounds, local_steps=1, model="logreg",
                         progress=False)

        def billed():  # the server's downloads
            c = fed.ledger.columns()
            return int(c["nbytes"][c["sender"] == n_clients].sum())
        _case(fn, (fed.server.numel(), rounds, n_clients, price, 4),
              "a FedAvg run's downloads, read from its ledger",
              expected=lambda: billed() / GIB * price)
        return (f"a FedAvg run ({rounds} rounds, {n_clients} clients) billed from its "
                f"ledger ({billed():,} bytes downloaded) agrees")

    return stages("download_cost", fn, each(_case, hand), random_cases, simulator,
                  time_limit_s=time_limit_s)


def _random_ledger(rng, n_nodes, rounds, messages):
    return {"round": rng.integers(1, rounds + 1, messages),
            "sender": rng.integers(0, n_nodes, messages),
            "receiver": rng.integers(0, n_nodes, messages),
            "nbytes": rng.integers(1, 10**9, messages)}


def _bill_expected(ledger, server, rounds, usd_per_gib) -> np.ndarray:
    per_round = np.zeros(rounds)
    for r, s, b in zip(ledger["round"], ledger["sender"], ledger["nbytes"]):
        if s == server and 1 <= r <= rounds:
            per_round[r - 1] += b
    return np.cumsum(per_round) / GIB * usd_per_gib


def _bill_case(fn, ledger, server, rounds, usd, case, expected):
    """``expected``: a function of no arguments, called after the student's."""
    view = {k: v.copy() for k, v in ledger.items()}  # the student may not change the run's
    out = call(fn, case, view, server, rounds, usd)
    expected = expected()  # after the call: never on the stack while the function runs
    try:
        values = list(out)
    except Exception:
        raise Failure(case, expected=expected, actual=out, mistake="wrong shape",
                      hint="return a list with one cumulative bill per round.") from None
    if len(values) != rounds:
        raise Failure(case, expected=f"{rounds} numbers, one per round",
                      actual=f"{len(values)} numbers", mistake="wrong shape",
                      hint="one entry per round 1 .. rounds, the bill so far.")
    for r, (got, want) in enumerate(zip(values, expected), start=1):
        got = as_float(got, f"{case}: the bill after round {r}", want, "the bill")
        if not close(got, float(want), rel=REL_TOL):
            mistake, hint = "wrong value", ("add up the bytes the server sent in each round, "
                                            "price them per GiB, and keep a running total.")
            # Round r's bill alone instead of the bill so far (round 1 cannot tell). The
            # same tolerance as above: where the rounds before billed nothing, the two
            # are the same number, and a bill within it has passed.
            if r > 1 and close(got, float(want) - float(expected[r - 2]), rel=REL_TOL):
                mistake, hint = "not cumulative", "each entry is the bill so far: add the " \
                                                  "rounds before it."
            elif ratio_hint(float(want), got, unit_mistakes()):
                mistake, hint = ratio_hint(float(want), got, unit_mistakes())
            raise Failure(f"{case}: the bill after round {r}", expected=float(want),
                          actual=got, mistake=mistake, hint=hint)


def cumulative_bill(fn, *, time_limit_s=None):
    """Check ``fn(ledger, server, rounds, usd_per_gib) -> list`` of dollars billed after
    each round, the cloud billing the bytes node ``server`` sent (``ledger``: arrays
    ``"round"``, ``"sender"``, ``"receiver"``, ``"nbytes"``, one entry per message)."""
    def hand_cases(fn):
        ledger = {"round": np.array([1, 1, 2, 2, 3]), "sender": np.array([0, 2, 0, 1, 2]),
                  "receiver": np.array([2, 0, 1, 0, 0]),
                  "nbytes": np.array([2**30, 2**29, 2**31, 2**30, 2**30])}
        _bill_case(fn, ledger, 0, 3, 1.0, "5 messages over 3 rounds, the server is node 0, "
                   "1 $/GiB", lambda: np.array([1.0, 3.0, 3.0]))
        empty = {k: v[:0] for k, v in ledger.items()}
        _bill_case(fn, empty, 0, 2, 0.5, "no messages at all", lambda: np.array([0.0, 0.0]))
        return "2 hand-worked ledgers (uploads and other nodes' messages are not billed)"

    def random_cases(fn):
        rng = rng_for("cumulative_bill")
        for k in range(20):
            n, rounds = int(rng.integers(2, 30)), int(rng.integers(1, 40))
            ledger = _random_ledger(rng, n, rounds, int(rng.integers(0, 300)))
            server, usd = int(rng.integers(0, n)), float(rng.uniform(0.01, 0.2))
            _bill_case(fn, ledger, server, rounds, usd,
                       f"random ledger {k + 1} of 20 ({len(ledger['round'])} messages, "
                       f"{n} nodes, server {server}, {rounds} rounds, {usd:.4f} $/GiB)",
                       lambda: _bill_expected(ledger, server, rounds, usd))
        return "20 seeded random ledgers"

    def simulator(fn):
        rng = rng_for("cumulative_bill/fedavg")
        n, rounds = int(rng.integers(2, 5)), int(rng.integers(2, 4))
        fed = run_fedavg(n_clients=n, rounds=rounds, local_steps=1, model="logreg",
                         progress=False, seed=int(rng.integers(0, 100)))
        def expected():
            return fl_cumulative_cost(fed.server.numel(), rounds=rounds, clients_per_round=n,
                                      usd_per_gib=0.03)
        _bill_case(fn, fed.ledger.columns(), n, rounds, 0.03,
                   f"the ledger of dmlbook.federated.run_fedavg ({n} clients, {rounds} "
                   f"rounds, the server is node {n})", expected)
        return (f"the ledger of a FedAvg run ({n} clients, {rounds} rounds) gives "
                f"dmlbook.costs.fl_cumulative_cost's bill, {expected()[-1]:.3g} $")

    return stages("cumulative_bill", fn, hand_cases, random_cases, simulator,
                  time_limit_s=time_limit_s)
