"""The self-check forms: feedback logic, HTML, and bad input."""

import html.parser
import json
import re

import pytest

from dmlbook import bandwidth, costs, selfcheck, units
from dmlbook.models import LeNet, WordLSTM, count_parameters
from dmlbook.sheet import EXERCISES


@pytest.fixture(scope="module")
def ex1_check():
    limit = bandwidth.max_participants(count_parameters(LeNet()), download_bps=units.GBIT,
                                       upload_bps=100 * units.MBIT, time_limit_s=60)
    return limit, selfcheck.NumericCheck(limit.n_max, "participants", 0.0002,
                                         ((limit.download, "the download limit"),))


def test_sheet_answer_is_right_in_any_spelling(ex1_check):
    limit, check = ex1_check
    assert limit.n_max == 2203
    for typed in ["2203", "2,203", " 2 203 ", "2.203e3", "2203.0"]:
        assert check.feedback(typed)[0] == "right", typed


def test_unit_factor_mistakes_are_named(ex1_check):
    _, check = ex1_check
    verdict, message = check.feedback(str(2203 * 8))
    assert verdict == "off" and "bits against bytes" in message and "too large" in message
    verdict, message = check.feedback(str(2203 / 8))
    assert verdict == "off" and "too small" in message
    verdict, message = check.feedback("22033")
    assert verdict == "off" and "download limit" in message  # the named mistake wins
    assert check.feedback(str(2203 * 1024))[1] != check.feedback(str(2203 * 1000))[1]


def test_wrong_and_invalid(ex1_check):
    _, check = ex1_check
    assert check.feedback("1500")[0] == "wrong"
    assert check.feedback("2210")[0] == "wrong"  # outside the tolerance, not a unit factor
    for typed in ["", "abc", "22o3", "1.2.3", "--5"]:
        assert check.feedback(typed)[0] == "invalid", typed


def test_gib_against_gb_in_the_cost():
    usd = costs.fl_download_cost(count_parameters(WordLSTM()), rounds=1000,
                                 clients_per_round=200, usd_per_gib=0.03)
    check = selfcheck.NumericCheck(usd, "US dollars")
    assert check.feedback("110.65")[0] == "right"
    assert check.feedback("$110.6")[0] == "right"
    verdict, message = check.feedback(f"{usd * 2**30 / 1e9:.2f}")
    assert verdict == "off" and "GiB" in message
    verdict, message = check.feedback(f"{usd * 8:.2f}")
    assert verdict == "off" and "bits against bytes" in message


class _Forms(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _parse(markup):
    parser = _Forms()
    parser.feed(markup)
    return parser.tags


def test_numeric_html_is_labelled_and_carries_the_table():
    check = selfcheck.numeric("ex1-check", "What is n_max?", answer=2203, unit="participants",
                              mistakes={22033: "the download limit"})
    tags = _parse(check.html)
    assert check._repr_html_() == check.html
    inputs = [a for t, a in tags if t == "input"]
    labels = [a for t, a in tags if t == "label"]
    assert len(inputs) == 1 and labels[0]["for"] == inputs[0]["id"]
    assert any(t == "button" and a.get("type") == "submit" for t, a in tags)
    assert any(a.get("role") == "status" for _, a in tags)
    data = json.loads(re.search(r"var data = (\{.*\});", check.html).group(1))
    assert data["answer"] == 2203 and [22033, "Not quite: the download limit"] in data["misses"]
    assert len(data["misses"]) == 1 + 2 * len(selfcheck.UNIT_FACTORS)


def test_script_cannot_be_closed_by_the_text():
    check = selfcheck.numeric("x", "Is </script> safe?", answer=1, unit="u</script>")
    script = check.html.split("<script>", 1)[1]
    assert script.count("</script>") == 1 and script.endswith("</script>")


def test_choice_html_and_feedback():
    options = [("The server", True, "it sends and receives n models."),
               ("Each worker", False, "a worker sends one model per round.")]
    check = selfcheck.choice("ex3-check", "Where is the bottleneck?", options)
    tags = _parse(check.html)
    radios = [a for t, a in tags if t == "input" and a.get("type") == "radio"]
    assert len(radios) == 2 and len({r["name"] for r in radios}) == 1
    assert {a["for"] for t, a in tags if t == "label"} == {r["id"] for r in radios}
    assert ("fieldset", {}) in tags and ("legend", {}) in tags
    logic = selfcheck.ChoiceCheck(tuple(options))
    assert logic.feedback(0) == ("right", "Right. it sends and receives n models.")
    assert logic.feedback(1)[0] == "wrong"
    assert logic.feedback(5)[0] == "invalid" and logic.feedback(True)[0] == "invalid"


@pytest.mark.parametrize("kwargs, name", [
    (dict(check_id="Ex1"), "check_id"), (dict(check_id=""), "check_id"),
    (dict(check_id="a b"), "check_id"), (dict(question=""), "question"),
    (dict(unit=" "), "unit"), (dict(answer=float("nan")), "answer"),
    (dict(answer=0), "answer"), (dict(answer="2203"), "answer"), (dict(answer=True), "answer"),
    (dict(rel_tolerance=0), "rel_tolerance"), (dict(rel_tolerance=0.05), "rel_tolerance"),
    (dict(mistakes=[1, 2]), "mistakes"), (dict(mistakes={float("inf"): "x"}), "mistakes"),
    (dict(label=""), "label"),
])
def test_numeric_bad_input(kwargs, name):
    args = dict(check_id="ex1", question="q?", answer=2203, unit="participants") | kwargs
    with pytest.raises(ValueError, match=name):
        selfcheck.numeric(**args)


@pytest.mark.parametrize("options, name", [
    ([("a", True, "x")], "2 to 8"),
    ([("a", True, "x"), ("b", True, "y")], "exactly one"),
    ([("a", False, "x"), ("b", False, "y")], "exactly one"),
    ([("a", 1, "x"), ("b", False, "y")], "True or False"),
    ([("", True, "x"), ("b", False, "y")], "option text"),
    ([("a", True), ("b", False)], "triples"),
    (None, "triples"),
])
def test_choice_bad_input(options, name):
    with pytest.raises(ValueError, match=name):
        selfcheck.choice("ex3", "q?", options)


def _data(check):
    return json.loads(re.search(r"var data = (\{.*\});", check.html).group(1))


def test_the_sheets_checks():
    assert _data(selfcheck.for_exercise(1))["answer"] == 2203
    assert round(_data(selfcheck.for_exercise(2))["answer"], 2) == 110.65
    assert _data(selfcheck.for_exercise(6))["answer"] == 67456
    for exercise in (3, 4, 5):
        options = _data(selfcheck.for_exercise(exercise))["options"]
        assert [correct for correct, _ in options].count(True) == 1
    ids = [selfcheck.for_exercise(e.number).check_id for e in EXERCISES]
    assert ids == [e.selfcheck for e in EXERCISES]


def test_ex6_names_the_counting_mistakes():
    misses = dict(map(tuple, _data(selfcheck.for_exercise(6))["misses"]))
    assert "all-reduce" in misses[50 * 128 * 8]            # forgot the all-reduce
    assert "directed" in misses[50 * 128 * 4 + 128 * 127]  # counted undirected edges


@pytest.mark.parametrize("exercise", [0, 7, 1.0, True, "1", None])
def test_for_exercise_bad_input(exercise):
    with pytest.raises(ValueError, match="exercise"):
        selfcheck.for_exercise(exercise)


def test_a_mistake_equal_to_the_answer_is_refused():
    with pytest.raises(ValueError, match="mistakes"):
        selfcheck.numeric("x", "q?", answer=100, unit="u", mistakes={100.1: "same"})
