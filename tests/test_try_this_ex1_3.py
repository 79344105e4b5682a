"""Each Try-this answer of exercises 1-3 quotes numbers that the named explorer shows.

The explorers' precomputed states are read from the widgets themselves (the
HTML each dropdown position shows on the static site), and the numbers are
worked by hand here, so a change to the model, the panel or the scenario that
moves an answer breaks this test.
"""

import html
import re

import pytest

from dmlbook import explore
from dmlbook.dp_study import SCENARIO, failure_case


def _states(key):
    """``{(first value, second value): html}`` of the static explorer of ``key``."""
    spec = explore.SPECS[key]
    (first, first_values), (second, second_values) = spec.grid.items()
    outer = explore.explorer(key).children[2]
    return {(a, b): outer.children[i].children[j].value
            for i, a in enumerate(first_values)
            for j, b in enumerate(second_values[a] if isinstance(second_values, dict)
                                  else second_values)}


def _cell(state_html, row):
    """The text of the table cell after the cell that reads ``row``."""
    found = re.search(rf"<td>{re.escape(html.escape(row))}</td><td><b>(.*?)</b></td>",
                      state_html)
    assert found, f"no row {row!r} in the explorer's state"
    return html.unescape(found.group(1))


@pytest.fixture(scope="module")
def ex1():
    return _states("ex1")


@pytest.fixture(scope="module")
def ex2():
    return _states("ex2")


@pytest.fixture(scope="module")
def ex3_time():
    return _states("ex3_time")


def test_ex1_try1_sixteen_bits_doubles_n_max(ex1):
    # 60 s * 1e8 bit/s / (85,098 * 16 bit) = 4,406.7 -> 4,406 = 2 * 2,203
    assert _cell(ex1[(100, 16)], "n_max") == "4,406"
    assert _cell(ex1[(100, 32)], "n_max") == "2,203"


def test_ex1_try2_symmetric_plan_ties(ex1):
    # 60 s * 1e9 bit/s / 2,723,136 bit = 22,033.4 on both links
    assert _cell(ex1[(1000, 32)], "binding link") == "a tie: both links allow 22,033 participants"


def test_ex1_try3_the_live_panel_accepts_a_measured_step():
    # Live only: the time limit goes down to 1 ms, so a step of about 15 ms can be set.
    control = explore.SPECS["ex1"].control("time_limit_s")
    assert control.low <= 0.001
    rows = dict(explore.fl_bandwidth_result(**{**explore.SHEET_EX1, "time_limit_s": 0.0148}).rows)
    assert rows["n_max"] == "0"  # one copy takes 27.2 ms at 100 Mbit/s


def test_ex2_try_answers(ex2):
    # One round: 200 * 19,802,176 B * $0.03 / 2**30 B = $0.11065
    assert _cell(ex2[(4, 0.03)], "one round costs") == "$0.1107"
    assert _cell(ex2[(4, 0.03)], "FL download bill") == "$110.65"
    assert _cell(ex2[(1, 0.03)], "FL download bill") == "$27.66"  # a quarter
    assert _cell(ex2[(4, 0.09)], "FL download bill") == "$331.96"  # three times


def test_ex3_try1_to_3_round_times(ex3_time):
    # alpha = 1 ms, beta = 8 ns/B, M = 340,392 B; n = 16:
    #   one server (n + 1) alpha + 2 n M beta = 17 ms + 87.1 ms = 104.1 ms
    #   naive (n - 1)(alpha + M beta) = 15 * 3.723 ms = 55.8 ms
    #   ring 2 (n - 1)(alpha + M beta / n) = 30 * 1.170 ms = 35.1 ms
    one = ex3_time[(16, 1)]
    assert _cell(one, "parameter server (one server)").startswith("104.1 ms per round")
    assert _cell(one, "naive all-reduce").startswith("55.8 ms per round")
    assert _cell(one, "ring all-reduce").startswith("35.1 ms per round")
    assert _cell(one, "fastest") == "ring all-reduce"
    # k = 16 servers: push = pull = 16 alpha + M beta = 18.72 ms -> 37.4 ms
    assert _cell(ex3_time[(16, 16)], "parameter server (16 servers)").startswith("37.4 ms")
    # n = 64, one server: 65 ms + 348.6 ms; naive 63 * 3.723 ms; ring 126 * (1 + M beta / 64)
    many = ex3_time[(64, 1)]
    assert _cell(many, "parameter server (one server)").startswith("413.6 ms")
    assert _cell(many, "naive all-reduce").startswith("234.6 ms")
    assert _cell(many, "ring all-reduce").startswith("131.4 ms")


def test_ex3_try4_failure_explorer_runs_the_chapters_seed_0_cases():
    states = _states("ex3_failures")
    for failure, label in (("server", "PS (one server), the server crashes, no failover"),
                           ("failover", "PS (one server), the server crashes, failover")):
        run = failure_case(label, seed=0)
        shown = states[(failure, "ps")]
        assert _cell(shown, "final test accuracy") == f"{run.test_acc[-1]:.3f}"
        assert _cell(shown, "rounds that updated the model") == \
            f"{sum(run.updated[1:])} of {SCENARIO.fail_rounds}"
        assert f"learning rate {SCENARIO.lr:g}" in _cell(shown, "assumed (as in the chapter)")
    # Without failover nothing updates after the crash; with it, all but the wait.
    dead = _cell(states[("server", "ps")], "rounds that updated the model")
    assert dead == f"{SCENARIO.crash_round - 1} of {SCENARIO.fail_rounds}"
