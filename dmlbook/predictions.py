"""Predictions: the reader commits to a guess before the evidence, graded against the run.

A chapter computes a value in a hidden cell, asks for a prediction above the
figure or table that shows it, and the static page grades the guess with no
kernel against that value (the build's own run), then reveals what the run
showed::

    ```{code-cell} ipython3
    :tags: [remove-input, dmlbook-prediction]
    selfcheck.predict_number(
        "ex1-predict-download", "How many participants could the server serve if "
        "uploads were as fast as downloads?", answer=limit.download, unit="participants",
        reveal=f"The run gives {limit.download:,} participants: ...")
    ```

Both kinds are forms of class ``dmlbook-prediction`` (plus the self-check
classes). A number is right within ``rel_tolerance`` (10 % by default: a
prediction, not a calculation); a value off by a unit factor gets the same hint
as a self-check (:data:`dmlbook.selfcheck.UNIT_FACTORS`). After any valid
submission the reveal is shown (as text: it is never parsed as HTML).

The handout edition keeps the question (and a choice's options) and drops the
answer and the reveal: the form carries its handout version in an HTML comment
that starts with :data:`HANDOUT_MARK`, which ``_ext/handout.py`` puts in the
form's place.
"""

from __future__ import annotations

import html as _html
from dataclasses import dataclass

from .selfcheck import (NORMALISE, PARSE_JS, ChoiceCheck, NumericCheck, SelfCheck, _check_id,
                        _close, _finite, _magnitude, _options, _script, _text)

__all__ = ["HANDOUT_MARK", "MAX_PREDICTION_TOLERANCE", "NumberPrediction", "ChoicePrediction",
           "predict_number", "predict_choice"]

HANDOUT_MARK = "dmlbook-handout-version"
# A prediction is a guess: up to 50 % off may count as right, no more.
MAX_PREDICTION_TOLERANCE = 0.5
_MAX_REVEAL = 2000  # characters


@dataclass(frozen=True)
class NumberPrediction(NumericCheck):
    """The logic of a numeric prediction, shared by Python (tests) and its script."""

    reveal: str = ""

    @property
    def right_message(self) -> str:
        return (f"Your prediction is within {self.rel_tolerance:.0%} of what the run gave: "
                f"{self.answer:,.6g} {self.unit}.")

    @property
    def wrong_message(self) -> str:
        return (f"The run disagrees: your prediction is more than {self.rel_tolerance:.0%} off, "
                "and not by a simple unit factor.")


@dataclass(frozen=True)
class ChoicePrediction(ChoiceCheck):
    """The logic of a multiple-choice prediction."""

    reveal: str = ""

    def feedback(self, index) -> tuple[str, str]:
        verdict, message = super().feedback(index)
        if verdict == "invalid":
            return verdict, message
        _, _, why = self.options[index]
        return verdict, ("Your prediction matches the run. " if verdict == "right"
                         else "The run went the other way. ") + why


_REVEAL_JS = """  var reveal = form.querySelector(".dmlbook-prediction-reveal");
  function show(verdict) {
    if (verdict === "invalid") return;
    reveal.textContent = "What the run showed: " + data.reveal;
    reveal.hidden = false;
    form.dataset.revealed = "true";
  }
"""

_NUMBER_JS = """  var input = form.querySelector("input"), out = form.querySelector("[role=status]");
""" + PARSE_JS + _REVEAL_JS + """  function close(v, t) { return Math.abs(v - t) <= data.tol * Math.abs(t) + 1e-12; }
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var v = parse(input.value), verdict = "wrong", text = data.wrong;
    if (v === null) { verdict = "invalid"; text = data.invalid; }
    else if (close(v, data.answer)) { verdict = "right"; text = data.right; }
    else {
      for (var i = 0; i < data.misses.length; i++) {
        if (close(v, data.misses[i][0])) { verdict = "off"; text = data.misses[i][1]; break; }
      }
    }
    form.dataset.verdict = verdict;
    out.textContent = text;
    show(verdict);
  });
"""

_CHOICE_JS = """  var out = form.querySelector("[role=status]");
""" + _REVEAL_JS + """  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var picked = form.querySelector("input[type=radio]:checked");
    if (!picked) { form.dataset.verdict = "invalid"; out.textContent = data.invalid; return; }
    var option = data.options[Number(picked.value)];
    form.dataset.verdict = option[0] ? "right" : "wrong";
    out.textContent = (option[0] ? "Your prediction matches the run. "
                       : "The run went the other way. ") + option[1];
    show(form.dataset.verdict);
  });
"""


def _reveal(reveal) -> str:
    reveal = _text("reveal", reveal)
    if len(reveal) > _MAX_REVEAL:
        raise ValueError(f"reveal must be at most {_MAX_REVEAL} characters, got {len(reveal)}")
    return reveal


def _title(check_id: str, question: str, handout: bool = False) -> str:
    classes = "" if handout else "dmlbook-selfcheck-title "
    return (f'<p class="{classes}dmlbook-prediction-question" id="{check_id}-title">'
            f'<strong>Predict first.</strong> {_html.escape(question)}</p>\n')


def _handout(inner: str) -> str:
    # ``inner`` is built from escaped text only: it cannot hold "-->" or "--!>", so the
    # comment ends where the handout version does.
    return f'<!--{HANDOUT_MARK}\n<div class="dmlbook-prediction-handout">\n{inner}</div>\n-->\n'


_TAIL = ('<p class="dmlbook-selfcheck-feedback" role="status" aria-live="polite"></p>\n'
         '<p class="dmlbook-prediction-reveal" aria-live="polite" hidden></p>\n</form>\n')


def predict_number(check_id: str, question: str, *, answer: float, unit: str, reveal: str,
                   rel_tolerance: float = 0.1, mistakes: dict | None = None,
                   label: str | None = None) -> SelfCheck:
    """A prediction the reader types as a number, graded against ``answer`` (the run's).

    ``answer`` is the value the chapter's own run produced, in ``unit``; a typed
    value within ``rel_tolerance`` of it (relative, default 10 %, at most 50 %)
    counts as right. ``mistakes`` maps typical wrong values to what they reveal,
    as in :func:`dmlbook.selfcheck.numeric`. ``reveal`` is plain text saying
    what the run showed; the page shows it after the reader submits.
    """
    check_id = _check_id(check_id)
    question = _text("question", question)
    unit = _text("unit", unit)
    reveal = _reveal(reveal)
    answer = _magnitude("answer", answer)
    rel_tolerance = _finite("rel_tolerance", rel_tolerance, positive=True)
    if rel_tolerance > MAX_PREDICTION_TOLERANCE:
        raise ValueError(f"rel_tolerance must be at most {MAX_PREDICTION_TOLERANCE} (a "
                         f"prediction within 50 %), got {rel_tolerance!r}")
    if mistakes is not None and not isinstance(mistakes, dict):
        raise ValueError(f"mistakes must be a dict {{value: message}}, got {mistakes!r}")
    named = tuple((_magnitude("mistakes value", v), _text("mistakes message", m))
                  for v, m in (mistakes or {}).items())
    for value, _ in named:
        if _close(value, answer, rel_tolerance):
            raise ValueError(f"mistakes value {value!r} is within rel_tolerance of the answer "
                             f"{answer!r}: it would be judged right")
    logic = NumberPrediction(answer, unit, rel_tolerance, named, reveal=reveal)
    label = _text("label", label) if label is not None else f"Your prediction ({unit})"
    e = _html.escape
    payload = {"answer": answer, "tol": rel_tolerance, "misses": logic.near_misses(),
               "norm": NORMALISE, "right": logic.right_message, "wrong": logic.wrong_message,
               "invalid": logic.invalid_message, "reveal": reveal}
    handout = _handout(_title(check_id + "-handout", question, handout=True)
                       + f"<p>{e(label)}: ____________ (write it down before you read on)</p>\n")
    form = (
        f'<form class="dmlbook-selfcheck dmlbook-prediction" id="{check_id}" '
        f'data-dmlbook-selfcheck="prediction" data-dmlbook-prediction="number" '
        f'aria-labelledby="{check_id}-title">\n{handout}{_title(check_id, question)}'
        f'<label for="{check_id}-input">{e(label)}</label>\n'
        f'<input id="{check_id}-input" name="prediction" type="text" inputmode="decimal" '
        f'autocomplete="off" spellcheck="false">\n'
        f'<button type="submit" class="dmlbook-selfcheck-button">Check my prediction</button>\n'
        f'{_TAIL}')
    return SelfCheck(check_id, form + _script(check_id, payload, _NUMBER_JS), logic)


def predict_choice(check_id: str, question: str, options, *, reveal: str) -> SelfCheck:
    """A prediction the reader picks among ``options``, graded against what the run showed.

    ``options`` is a list of ``(text, correct, explanation)`` as for
    :func:`dmlbook.selfcheck.choice`: exactly one is correct, and it must be the
    one the chapter's run bears out (compute ``correct`` from the run). ``reveal``
    is plain text saying what the run showed; it is shown after a pick.
    """
    check_id = _check_id(check_id)
    question = _text("question", question)
    options = _options(options)
    reveal = _reveal(reveal)
    e = _html.escape

    def radios(prefix: str) -> str:
        return "".join(
            f'<div><input type="radio" id="{prefix}-{i}" name="{prefix}" value="{i}">'
            f'<label for="{prefix}-{i}">{e(text)}</label></div>\n'
            for i, (text, _, _) in enumerate(options))

    handout = _handout(_title(check_id + "-handout", question, handout=True)
                       + f"<fieldset><legend>Your prediction</legend>\n"
                         f"{radios(check_id + '-handout')}</fieldset>\n")
    form = (
        f'<form class="dmlbook-selfcheck dmlbook-prediction" id="{check_id}" '
        f'data-dmlbook-selfcheck="prediction" data-dmlbook-prediction="choice" '
        f'aria-labelledby="{check_id}-title">\n{handout}{_title(check_id, question)}'
        f'<fieldset><legend>Your prediction</legend>\n{radios(check_id)}</fieldset>\n'
        f'<button type="submit" class="dmlbook-selfcheck-button">Check my prediction</button>\n'
        f'{_TAIL}')
    logic = ChoicePrediction(tuple(options), reveal=reveal)
    payload = {"options": [[c, w] for _, c, w in options], "invalid": logic.feedback(-1)[1],
               "reveal": reveal}
    return SelfCheck(check_id, form + _script(check_id, payload, _CHOICE_JS), logic)

