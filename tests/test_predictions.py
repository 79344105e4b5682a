"""Predictions (issue 23, item 1): the logic, the HTML, bad input and the handout version."""

import html.parser
import json
import re

import pytest

from dmlbook import predictions


def _data(check):
    return json.loads(re.search(r"var data = (\{.*\});", check.html).group(1))


class _Tags(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.comments = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_comment(self, data):
        self.comments.append(data)


def _parse(markup):
    parser = _Tags()
    parser.feed(markup)
    return parser


def number(**kwargs):
    args = dict(check_id="ex1-predict", question="How many participants at equal links?",
                answer=22033, unit="participants", reveal="The run gives 22,033 participants.")
    return predictions.predict_number(**(args | kwargs))


def test_number_grades_a_guess_within_ten_percent():
    logic = number().logic
    assert logic.feedback("22,033")[0] == "right"
    assert logic.feedback("20000")[0] == "right"  # 9 % off: a prediction, not a calculation
    assert logic.feedback("24300")[0] == "wrong"  # 10.3 % off
    verdict, message = logic.feedback(str(22033 * 8))
    assert verdict == "off" and "bits against bytes" in message and "too large" in message
    verdict, message = logic.feedback("220.33")
    assert verdict == "off" and "percentage against a fraction" in message
    assert logic.feedback("twenty")[0] == "invalid"
    assert "22,033" in logic.right_message and "10%" in logic.wrong_message
    assert logic.reveal == "The run gives 22,033 participants."


def test_named_mistakes_and_tolerance():
    logic = number(mistakes={2203: "that is the upload limit"}, rel_tolerance=0.2).logic
    assert logic.feedback("2203") == ("off", "Not quite: that is the upload limit")
    assert logic.feedback("26000")[0] == "right"
    with pytest.raises(ValueError, match="mistakes"):
        number(mistakes={21000: "too close"})


def test_number_html_is_a_labelled_prediction_form_with_its_payload():
    check = number()
    parsed = _parse(check.html)
    forms = [a for t, a in parsed.tags if t == "form"]
    assert len(forms) == 1
    classes = forms[0]["class"].split()
    assert "dmlbook-prediction" in classes and "dmlbook-selfcheck" in classes
    assert forms[0]["data-dmlbook-prediction"] == "number"
    inputs = [a for t, a in parsed.tags if t == "input"]
    labels = [a for t, a in parsed.tags if t == "label"]
    assert len(inputs) == 1 and labels[0]["for"] == inputs[0]["id"]
    reveal = [a for t, a in parsed.tags if "dmlbook-prediction-reveal" in a.get("class", "")]
    assert len(reveal) == 1 and "hidden" in reveal[0]
    data = _data(check)
    assert data["answer"] == 22033 and data["tol"] == 0.1
    assert data["reveal"] == "The run gives 22,033 participants."
    # The reveal is in the script only: nothing a reader sees before submitting.
    visible = re.sub(r"<script>.*</script>|<!--.*?-->", "", check.html, flags=re.S)
    assert "22,033" not in visible and "22033" not in visible


def test_the_handout_version_has_the_question_and_no_answer():
    check = number(question="How many <participants>?")
    parsed = _parse(check.html)
    assert len(parsed.comments) == 1
    comment = parsed.comments[0]
    assert comment.startswith(predictions.HANDOUT_MARK)
    assert "How many &lt;participants&gt;?" in comment
    assert "22033" not in comment and "22,033" not in comment and "run gives" not in comment
    assert "data-dmlbook" not in comment


def test_choice_prediction():
    options = [("It stays constant", False, "push-only gossip loses and duplicates mass."),
               ("It drifts", True, "each push changes only the receiver.")]
    check = predictions.predict_choice("ex5-predict-sum", "Will the sum stay constant?",
                                     options, reveal="The run's sum drifted by 4 %.")
    logic = check.logic
    assert logic.feedback(1) == ("right", "Your prediction matches the run. each push "
                                          "changes only the receiver.")
    assert logic.feedback(0)[0] == "wrong" and logic.feedback(0)[1].startswith("The run went")
    assert logic.feedback(None)[0] == "invalid"
    parsed = _parse(check.html)
    form = next(a for t, a in parsed.tags if t == "form")
    assert "dmlbook-prediction" in form["class"].split()
    assert form["data-dmlbook-prediction"] == "choice"
    assert len([a for t, a in parsed.tags if t == "input" and a["type"] == "radio"
                and not a["id"].endswith(("-handout-0", "-handout-1"))]) == 2
    assert _data(check)["reveal"] == "The run's sum drifted by 4 %."
    comment = parsed.comments[0]
    assert "It stays constant" in comment and "It drifts" in comment  # options kept
    assert "drifted by 4" not in comment and "receiver" not in comment and "true" not in comment


@pytest.mark.parametrize("kwargs, name", [
    (dict(check_id="Bad id"), "check_id"), (dict(question=" "), "question"),
    (dict(unit=""), "unit"), (dict(reveal=""), "reveal"), (dict(reveal="x" * 2001), "reveal"),
    (dict(reveal=None), "reveal"), (dict(answer=float("inf")), "answer"),
    (dict(answer=0), "answer"), (dict(answer=1e305), "answer"), (dict(answer=True), "answer"),
    (dict(rel_tolerance=0), "rel_tolerance"), (dict(rel_tolerance=0.6), "rel_tolerance"),
    (dict(mistakes=[1]), "mistakes"), (dict(label=""), "label"),
])
def test_number_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=name):
        number(**kwargs)


@pytest.mark.parametrize("kwargs, name", [
    (dict(options=[("a", True, "x")]), "2 to 8"), (dict(reveal=" "), "reveal"),
    (dict(options=[("a", True, "x"), ("b", True, "y")]), "exactly one"),
])
def test_choice_bad_input(kwargs, name):
    args = dict(check_id="ex5-p", question="q?",
                options=[("a", True, "x"), ("b", False, "y")], reveal="r") | kwargs
    with pytest.raises(ValueError, match=name):
        predictions.predict_choice(**args)


def test_repr_keeps_the_answer_out_of_text_outputs():
    """A notebook stores text/plain beside the HTML: it must not carry the answer."""
    assert "22033" not in repr(number())
