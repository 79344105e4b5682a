"""Self-checks that say what they mean (issue 27, part 2 "Self-checks" and part 5 verdicts).

- Python and the browser read the same digits (one table, NORMALISE); the
  browser's side is tested in tests/test_predictions_browser.py.
- A huge answer cannot make every wrong reply "off by a unit factor".
- A mistake text cannot break out of the inline script.
- The ex1 check accepts 2,203 only; the ex2 check names the unit slips the right way round.
"""

import json
import math
import re

import pytest

from dmlbook import costs, selfcheck
from dmlbook.models import WordLSTM, count_parameters


@pytest.mark.parametrize("typed, value", [
    ("2203", 2203), ("٢٢٠٣", 2203), ("۲۲۰۳", 2203), ("２２０３", 2203), ("２，２０３", 2203),
    ("٢٬٢٠٣", 2203), ("2\u202f203", 2203), ("2\u00a0203", 2203), ("2203٫5", 2203.5),
    ("２２０３．５", 2203.5), ("−2203", -2203), ("＋2203", 2203), ("$110.65", 110.65),
])
def test_digits_of_the_table_are_read(typed, value):
    assert selfcheck.parse_number(typed) == value


@pytest.mark.parametrize("typed", ["२२०३", "𝟐𝟐𝟎𝟑", "߂߂߀߃", "২২০৩", "2203\ufeff", "2203\x85",
                                   "1e400", "-1e999", "٢٢o٣"])
def test_other_scripts_and_overflow_are_refused(typed):
    """Python's float() reads these; the browser cannot, so neither may."""
    assert selfcheck.parse_number(typed) is None


def test_the_table_and_the_pattern_are_ascii_after_normalising():
    norm = selfcheck.NORMALISE
    for block in norm["digits"]:
        assert [selfcheck.parse_number(chr(block + d)) for d in range(10)] == list(range(10))
    assert selfcheck._NUMBER.pattern.count("\\d") == 0  # \d would match every script in Python


def test_a_huge_answer_is_refused_and_the_largest_allowed_stays_finite():
    with pytest.raises(ValueError, match="answer"):
        selfcheck.numeric("x", "q?", answer=1e305, unit="u")
    with pytest.raises(ValueError, match="answer"):
        selfcheck.numeric("x", "q?", answer=1e-300, unit="u")
    with pytest.raises(ValueError, match="mistakes value"):
        selfcheck.numeric("x", "q?", answer=5, unit="u", mistakes={1e300: "far off"})
    check = selfcheck.numeric("x", "q?", answer=selfcheck.MAX_ANSWER, unit="u")
    assert all(math.isfinite(v) and v != 0 for v, _ in check.logic.near_misses())
    assert check.logic.feedback("123")[0] == "wrong"
    assert check.logic.feedback("5e14")[0] == "wrong"
    assert check.logic.feedback(str(selfcheck.MAX_ANSWER * 8))[0] == "off"


def test_an_unbounded_answer_no_longer_makes_everything_a_unit_slip():
    """The bug itself: with answer 1e305, answer * 10^6 was inf and matched any reply."""
    logic = selfcheck.NumericCheck(1e305, "u")
    assert all(math.isfinite(v) for v, _ in logic.near_misses())
    assert logic.feedback("42")[0] == "wrong"


HOSTILE = "<!-- </script><script>alert(1)</script> & <b>"


def test_mistake_text_cannot_reach_the_script_as_markup():
    check = selfcheck.numeric("x", "q?", answer=10, unit="u", mistakes={3: HOSTILE})
    script = check.html.split("<script>", 1)[1]
    assert script.endswith("</script>") and script.count("</script>") == 1
    body = script[:-len("</script>")].lower()
    assert "<!--" not in body and "</script" not in body and "<script" not in body
    line = re.search(r"var data = (\{.*\});", check.html).group(1)
    assert not set(line) & {"<", ">", "&"}
    data = json.loads(line)
    assert ["3.0", "Not quite: " + HOSTILE] in [[repr(v), m] for v, m in data["misses"]]


def test_script_json_round_trips_and_holds_no_markup():
    payload = {"a": HOSTILE, "b": "\u2028\u2029é", "c": [1.5, None, True]}
    text = selfcheck.script_json(payload)
    assert not set(text) & {"<", ">", "&"} and text.isascii()
    assert json.loads(text) == payload


# ---- issue 27, part 5: the verdicts a student gets ------------------------------------


def test_ex1_accepts_2203_and_nothing_else_from_2192_to_2214():
    logic = selfcheck.for_exercise(1).logic
    verdicts = {n: logic.feedback(f"{n:,}")[0] for n in range(2192, 2215)}
    assert verdicts.pop(2203) == "right"
    assert set(verdicts.values()) == {"wrong"}, verdicts
    assert logic.feedback("2203.4")[0] == "right"  # rounding of the typed value only
    assert logic.feedback("2203.5")[0] == "wrong"
    assert logic.feedback("2202.5")[0] == "wrong"


def test_ex2_names_the_unit_slips_the_right_way_round():
    n = count_parameters(WordLSTM())
    usd = costs.fl_download_cost(n, rounds=1000, clients_per_round=200, usd_per_gib=0.03)
    one_byte = costs.fl_download_cost(n, rounds=1000, clients_per_round=200, usd_per_gib=0.03,
                                      bytes_per_param=1)
    logic = selfcheck.for_exercise(2).logic
    assert logic.feedback(f"{usd:.2f}")[0] == "right"
    # A parameter counted as one byte: the bill is a quarter, and the hint says 4 bytes.
    verdict, message = logic.feedback(f"{one_byte:.2f}")
    assert verdict == "off" and "4 bytes, not 1" in message
    # Four times the bill is not that slip (the old inverted table named it so).
    assert "4 bytes" not in logic.feedback(f"{usd * 4:.2f}")[1]
    # Bits instead of bytes: 8 times the bill, "too large".
    verdict, message = logic.feedback(f"{usd * 8:.2f}")
    assert verdict == "off" and "too large" in message and "bits against bytes" in message
    # GB (10^9 B) where the price is per GiB: more units, a larger bill, "too large".
    gb_bill = n * 4 * 1000 * 200 / 1e9 * 0.03
    verdict, message = logic.feedback(f"{gb_bill:.2f}")
    assert verdict == "off" and "too large" in message and "GiB" in message
    verdict, message = logic.feedback(f"{usd * 1e9 / 2**30:.2f}")
    assert verdict == "off" and "too small" in message and "GiB" in message
