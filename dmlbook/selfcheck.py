"""Self-checks: a student types an answer on the static site and gets feedback.

Each check is a small HTML form (a labelled input or a group of radio buttons,
a button, a live feedback line) with an inline script: no kernel and no CDN.
The answer comes from ``dmlbook`` itself, for example::

    selfcheck.numeric("ex1", "What is n_max?", answer=limit.n_max, unit="participants")

A cell that ends with the returned :class:`SelfCheck` shows the form (HTML
output). The feedback the script gives is computed in Python first
(:meth:`NumericCheck.feedback`, tested) and shipped as a table of "near
misses": the answer off by a unit factor (8 bits per byte, 1000, 1024,
2^30/10^9, ...) in either direction, and any known mistakes the chapter names.

The handout edition of the book (``make handout``) drops every self-check,
because the answer is in the page's source.

Predictions (:func:`predict_number`, :func:`predict_choice`, in
:mod:`dmlbook.predictions`) are self-checks asked before the evidence and graded
against the chapter's own run; the handout keeps their questions.
"""

from __future__ import annotations

import html as _html
import json
import math
import re
from dataclasses import dataclass, field
from numbers import Real

import numpy as np

__all__ = ["UNIT_FACTORS", "SelfCheck", "NumericCheck", "ChoiceCheck", "numeric", "choice",
           "for_exercise"]

# Unit factors that turn a right answer into a typical wrong one, each with the
# mistake it names. A typed value off by one of them (either way) gets this hint.
UNIT_FACTORS: tuple[tuple[float, str], ...] = (
    (8.0, "a factor of 8: bits against bytes (1 byte = 8 bits)"),
    (1000.0, "a factor of 1000: a unit prefix (kilo, mega, giga: 10^3 steps)"),
    (1024.0, "a factor of 1024: binary against decimal prefixes (KiB against kB)"),
    (2**30 / 1e9, "a factor of 2^30/10^9 = 1.074: GiB (2^30 B) against GB (10^9 B)"),
    (1e6, "a factor of 10^6: mega against one (Mbit/s against bit/s)"),
    (100.0, "a factor of 100: a percentage against a fraction (81 % is 0.81)"),
    (10.0, "a factor of 10: a decimal point, or the wrong link (100 Mbit/s against 1 Gbit/s)"),
)

_ID = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
# After normalisation (below) a typed number is ASCII: the same pattern in Python and JS.
_NUMBER = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$")

# How a typed answer is normalised, the same way in Python (parse_number) and in
# the browser (the script gets this table): separators are dropped, the digits of
# these blocks become 0-9, these points become ".", these signs "+" or "-". Any
# other character (another script's digits, say) makes the answer invalid, in both.
NORMALISE = {
    # spaces (incl. no-break and thin), thousands separators (ASCII, Arabic,
    # full-width), "_" and "$"
    "drop": " \t\n\r\f\v\u00a0\u2009\u202f\u3000,_$\u066c\uff0c",
    # first code point of each block of ten digits: ASCII, Arabic-Indic,
    # Extended Arabic-Indic (Persian, Urdu), full-width
    "digits": [0x30, 0x660, 0x6F0, 0xFF10],
    "points": ".\u066b\uff0e",
    "minus": "-\u2212\uff0d",
    "plus": "+\uff0b",
}
# Magnitudes a self-check accepts as its answer (and named mistakes): the unit
# factors (up to 10^6 either way) must stay finite and distinct from zero.
MIN_ANSWER, MAX_ANSWER = 1e-12, 1e15


def _check_id(check_id) -> str:
    if not isinstance(check_id, str) or not _ID.match(check_id):
        raise ValueError("check_id must be 1-40 characters, lower-case letters, digits and "
                         f"'-', starting with a letter (it names HTML ids); got {check_id!r}")
    return check_id


def _text(name: str, value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value.strip()


def _finite(name: str, value, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return float(value)


def _magnitude(name: str, value) -> float:
    """A finite answer whose size lets every unit factor stay finite and non-zero."""
    value = _finite(name, value)
    if not MIN_ANSWER <= abs(value) <= MAX_ANSWER:
        raise ValueError(f"{name} must be between {MIN_ANSWER:g} and {MAX_ANSWER:g} in size "
                         f"(so that the unit factors around it stay finite), got {value!r}")
    return value


def _named_mistakes(mistakes, answer: float, rel_tolerance: float) -> tuple:
    """Checked ``{value: message}`` as ``((value, message), ...)``; none may count as right."""
    if mistakes is not None and not isinstance(mistakes, dict):
        raise ValueError(f"mistakes must be a dict {{value: message}}, got {mistakes!r}")
    named = tuple((_magnitude("mistakes value", v), _text("mistakes message", m))
                  for v, m in (mistakes or {}).items())
    for value, _ in named:
        if _close(value, answer, rel_tolerance):
            raise ValueError(f"mistakes value {value!r} is within rel_tolerance of the answer "
                             f"{answer!r}: it would be judged right")
    return named


def _normalise(typed: str) -> str:
    out = []
    for ch in str(typed):
        code = ord(ch)
        block = next((b for b in NORMALISE["digits"] if b <= code < b + 10), None)
        if ch in NORMALISE["drop"]:
            continue
        if block is not None:
            out.append(chr(0x30 + code - block))
        elif ch in NORMALISE["points"]:
            out.append(".")
        elif ch in NORMALISE["minus"]:
            out.append("-")
        elif ch in NORMALISE["plus"]:
            out.append("+")
        else:
            out.append(ch)
    return "".join(out)


def parse_number(typed: str) -> float | None:
    """The number a student typed, or None. Accepts ``2,203``, ``2 203``, ``2.2e3``, ``$110.65``.

    Commas and spaces are read as thousands separators (the book writes 2,203).
    Arabic-Indic, Persian and full-width digits are read as 0-9 (:data:`NORMALISE`,
    shared with the browser's script); other scripts' digits are refused, in both.
    """
    cleaned = _normalise(typed)
    if not _NUMBER.match(cleaned):
        return None
    value = float(cleaned)
    return value if math.isfinite(value) else None


def _close(value: float, target: float, rel_tolerance: float) -> bool:
    return abs(value - target) <= rel_tolerance * abs(target) + 1e-12


def script_json(payload) -> str:
    """``payload`` as JSON that is safe inside an inline ``<script>``.

    "</script>" would end the element early and "<!--" can make the HTML parser
    swallow the closing tag, so every "<", ">" and "&" is written as a JSON
    escape (the value in JavaScript is unchanged); non-ASCII is escaped too.
    """
    return (json.dumps(payload, ensure_ascii=True).replace("<", "\\u003c")
            .replace(">", "\\u003e").replace("&", "\\u0026"))


def _script(check_id: str, payload: dict, body: str) -> str:
    data = script_json(payload)
    return (f"<script>(function () {{\n  var form = document.getElementById({json.dumps(check_id)});"
            f"\n  var data = {data};\n{body}}})();</script>")


@dataclass(frozen=True)
class SelfCheck:
    """A rendered self-check: ``html`` is the form and its script.

    ``logic`` (a :class:`NumericCheck` or :class:`ChoiceCheck`) gives the same
    feedback in Python as the script does in the browser.
    """

    check_id: str
    html: str = field(repr=False)  # the answer is in it: keep it out of text/plain outputs
    logic: object = field(default=None, repr=False)

    def _repr_html_(self) -> str:
        return self.html


# The browser's twin of parse_number: the same NORMALISE table and pattern.
PARSE_JS = """  function parse(s) {
    var n = data.norm, c = "";
    for (var ch of String(s)) {
      var code = ch.codePointAt(0), block = -1;
      for (var b = 0; b < n.digits.length; b++)
        if (code >= n.digits[b] && code < n.digits[b] + 10) block = n.digits[b];
      if (n.drop.indexOf(ch) >= 0) continue;
      if (block >= 0) c += String.fromCharCode(48 + code - block);
      else if (n.points.indexOf(ch) >= 0) c += ".";
      else if (n.minus.indexOf(ch) >= 0) c += "-";
      else if (n.plus.indexOf(ch) >= 0) c += "+";
      else c += ch;
    }
    if (!/^[+-]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][+-]?[0-9]+)?$/.test(c)) return null;
    var v = parseFloat(c);
    return isFinite(v) ? v : null;
  }
"""

def numeric_js(after: str = "") -> str:
    """The script body of a numeric form: parse, grade, show; then the JS statements ``after``
    (with ``verdict`` in scope), which a prediction uses to reveal the run."""
    return ("""  var input = form.querySelector("input"), out = form.querySelector("[role=status]");
""" + PARSE_JS + """  function close(v, t) { return Math.abs(v - t) <= data.tol * Math.abs(t) + 1e-12; }
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
""" + after + """  });
""")


_NUMERIC_JS = numeric_js()

_CHOICE_JS = """  var out = form.querySelector("[role=status]");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var picked = form.querySelector("input[type=radio]:checked");
    if (!picked) { form.dataset.verdict = "invalid"; out.textContent = data.invalid; return; }
    var option = data.options[Number(picked.value)];
    form.dataset.verdict = option[0] ? "right" : "wrong";
    out.textContent = (option[0] ? "Right. " : "Not quite. ") + option[1];
  });
"""


@dataclass(frozen=True)
class NumericCheck:
    """The logic of a numeric self-check, shared by Python (tests) and its script."""

    answer: float
    unit: str
    rel_tolerance: float = 0.005
    mistakes: tuple[tuple[float, str], ...] = ()
    factors: tuple[tuple[float, str], ...] = field(default=UNIT_FACTORS)

    def near_misses(self) -> list[tuple[float, str]]:
        """(value, message) of every typical wrong answer, the named mistakes first."""
        misses = [(float(v), f"Not quite: {m}") for v, m in self.mistakes]
        for factor, why in self.factors:
            for value, direction in ((self.answer * factor, "too large"),
                                     (self.answer / factor, "too small")):
                if math.isfinite(value) and value != 0 \
                        and not _close(value, self.answer, self.rel_tolerance):
                    misses.append((value, f"Close: your answer is {direction} by {why}. "
                                          "Check your units."))
        return misses

    def feedback(self, typed) -> tuple[str, str]:
        """(verdict, message) for what a student typed: right, off, wrong or invalid."""
        value = parse_number(typed)
        if value is None:
            return "invalid", self.invalid_message
        if _close(value, self.answer, self.rel_tolerance):
            return "right", self.right_message
        for miss, message in self.near_misses():
            if _close(value, miss, self.rel_tolerance):
                return "off", message
        return "wrong", self.wrong_message

    @property
    def right_message(self) -> str:
        return f"Right: {self.answer:,.6g} {self.unit}. Open the solution to compare your steps."

    @property
    def wrong_message(self) -> str:
        return ("Not quite, and not off by a simple unit factor either. Recheck the "
                "formula, then try again or open the solution.")

    @property
    def invalid_message(self) -> str:
        return "Type a number, for example 1234.5 or 1,234.5."


def numeric(check_id: str, question: str, *, answer: float, unit: str,
            rel_tolerance: float = 0.005, mistakes: dict | None = None,
            label: str | None = None) -> SelfCheck:
    """A self-check where the student types a number.

    ``answer`` is the right value in ``unit`` (e.g. ``"participants"``,
    ``"US dollars"``); a typed value within ``rel_tolerance`` of it (relative,
    default 0.5 %) is right. ``mistakes`` maps known wrong values to the
    mistake they reveal (e.g. the download limit instead of the upload limit).
    Values off by a unit factor (:data:`UNIT_FACTORS`) get a hint naming it.
    """
    check_id = _check_id(check_id)
    question = _text("question", question)
    unit = _text("unit", unit)
    answer = _magnitude("answer", answer)  # non-zero: a relative tolerance needs a scale
    rel_tolerance = _finite("rel_tolerance", rel_tolerance, positive=True)
    if rel_tolerance >= 0.02:
        raise ValueError("rel_tolerance must be < 0.02, so that 1000 and 1024 stay apart; "
                         f"got {rel_tolerance!r}")
    named = _named_mistakes(mistakes, answer, rel_tolerance)
    logic = NumericCheck(answer, unit, rel_tolerance, named)
    label = _text("label", label) if label is not None else f"Your answer ({unit})"
    payload = {"answer": answer, "tol": rel_tolerance, "misses": logic.near_misses(),
               "norm": NORMALISE,
               "right": logic.right_message, "wrong": logic.wrong_message,
               "invalid": logic.invalid_message}
    e = _html.escape
    form = (
        f'<form class="dmlbook-selfcheck" id="{check_id}" data-dmlbook-selfcheck="numeric" '
        f'aria-labelledby="{check_id}-title">\n'
        f'<p class="dmlbook-selfcheck-title" id="{check_id}-title"><strong>Check yourself.'
        f'</strong> {e(question)}</p>\n'
        f'<label for="{check_id}-input">{e(label)}</label>\n'
        f'<input id="{check_id}-input" name="answer" type="text" inputmode="decimal" '
        f'autocomplete="off" spellcheck="false">\n'
        f'<button type="submit" class="dmlbook-selfcheck-button">Check</button>\n'
        f'<p class="dmlbook-selfcheck-feedback" role="status" aria-live="polite"></p>\n'
        f'</form>\n')
    return SelfCheck(check_id, form + _script(check_id, payload, _NUMERIC_JS), logic)


@dataclass(frozen=True)
class ChoiceCheck:
    """The logic of a multiple-choice self-check."""

    options: tuple[tuple[str, bool, str], ...]

    def feedback(self, index) -> tuple[str, str]:
        """(verdict, message) for the option picked (its index), or invalid."""
        if isinstance(index, bool) or not isinstance(index, int) \
                or not 0 <= index < len(self.options):
            return "invalid", "Pick one of the options first."
        _, correct, why = self.options[index]
        return ("right", "Right. " + why) if correct else ("wrong", "Not quite. " + why)


def _options(options) -> list[tuple[str, bool, str]]:
    """Checked ``(text, correct, explanation)`` triples, exactly one correct."""
    try:
        # A NumPy bool stands for its Python bool (other values are refused below).
        options = [(str(t), bool(c) if type(c).__name__ == "bool" else c, str(w))
                   for t, c, w in options]
    except (TypeError, ValueError):
        raise ValueError("options must be a list of (text, correct, explanation) triples, "
                         f"got {options!r}") from None
    if not 2 <= len(options) <= 8:
        raise ValueError(f"options must hold 2 to 8 choices, got {len(options)}")
    for text, correct, why in options:
        _text("option text", text), _text("option explanation", why)
        if not isinstance(correct, (bool, np.bool_)):
            raise ValueError(f"option correct must be True or False, got {correct!r}")
    options = [(t, bool(c), w) for t, c, w in options]  # NumPy's bool_ too (a comparison)
    if sum(c for _, c, _ in options) != 1:
        raise ValueError("options must have exactly one correct choice, got "
                         f"{sum(c for _, c, _ in options)}")
    return options


def choice(check_id: str, question: str, options) -> SelfCheck:
    """A multiple-choice self-check: radio buttons in a labelled group.

    ``options`` is a list of ``(text, correct, explanation)``; exactly one is
    correct. The explanation of the picked option is the feedback.
    """
    check_id = _check_id(check_id)
    question = _text("question", question)
    options = _options(options)
    e = _html.escape
    radios = "".join(
        f'<div><input type="radio" id="{check_id}-{i}" name="{check_id}" value="{i}">'
        f'<label for="{check_id}-{i}">{e(text)}</label></div>\n'
        for i, (text, _, _) in enumerate(options))
    form = (
        f'<form class="dmlbook-selfcheck" id="{check_id}" data-dmlbook-selfcheck="choice">\n'
        f'<fieldset><legend><strong>Check yourself.</strong> {e(question)}</legend>\n'
        f'{radios}</fieldset>\n'
        f'<button type="submit" class="dmlbook-selfcheck-button">Check</button>\n'
        f'<p class="dmlbook-selfcheck-feedback" role="status" aria-live="polite"></p>\n'
        f'</form>\n')
    logic = ChoiceCheck(tuple(options))
    payload = {"options": [[c, w] for _, c, w in options], "invalid": logic.feedback(-1)[1]}
    return SelfCheck(check_id, form + _script(check_id, payload, _CHOICE_JS), logic)


def for_exercise(exercise: int) -> SelfCheck:
    """The self-check of the sheet's exercise 1-6, its answer computed by ``dmlbook``.

    Exercises 1, 2 and 6 ask for a number (participants, US dollars, messages);
    3, 4 and 5 ask for an explanation, so their check is multiple choice. The
    sheet's settings come from :data:`dmlbook.sheet.SHEET`.
    """
    from .sheet import SHEET as s, exercise as _registered

    exercise = _registered(exercise).number
    if exercise == 1:
        from . import bandwidth
        from .models import LeNet, count_parameters

        limit = bandwidth.max_participants(
            count_parameters(LeNet()), bits_per_param=s.bits_per_param,
            download_bps=s.download_bps, upload_bps=s.upload_bps,
            time_limit_s=s.time_limit_s)
        return numeric(
            "selfcheck-ex1", "How many participants can the server serve at once "
            "(n_max, a whole number)?", answer=limit.n_max, unit="participants",
            rel_tolerance=0.0002,  # a whole number: 2,203 is right, 2,204 is not
            mistakes={limit.download: "that is what the download link allows; "
                      "which of the two links fills up first?"},
            label="Your n_max (participants)")
    if exercise == 2:
        from . import costs
        from .models import WordLSTM, count_parameters

        usd = costs.fl_download_cost(count_parameters(WordLSTM()), rounds=s.lstm_rounds,
                                     clients_per_round=s.lstm_clients_per_round,
                                     usd_per_gib=s.usd_per_gib)
        return numeric(
            "selfcheck-ex2", "How much would you have saved on download costs, in US "
            "dollars (two decimals)?", answer=usd, unit="US dollars",
            mistakes={usd / 4: "a 32-bit parameter takes 4 bytes, not 1."},
            label="Your saving (US dollars)")
    if exercise == 6:
        from . import messages

        n, degree, steps = s.dpsgd_nodes, s.dpsgd_degree, s.dpsgd_steps
        total = messages.dpsgd_messages(n, degree, steps)
        return numeric(
            "selfcheck-ex6", f"How many messages do the {steps} D-PSGD steps and the final "
            "naive all-reduce send in total?", answer=total, unit="messages",
            rel_tolerance=1e-5,  # a count: only the exact number is right
            mistakes={
                messages.dpsgd_messages(n, degree, steps, final_allreduce=None):
                    "that counts the D-PSGD steps only; add the final all-reduce.",
                steps * n * degree // 2 + messages.allreduce_messages(n):
                    "a message goes each way along an edge: count directed edges.",
                steps * n * degree + n * n:
                    "in the all-reduce a node sends to the n - 1 others, not to itself.",
                messages.dpsgd_messages(n, degree, steps, final_allreduce="ring"):
                    "that is a ring all-reduce; the sheet asks for the naive one.",
            }, label="Your total (messages)")
    questions = {
        3: ("selfcheck-ex3", "In a parameter server, whose network link limits communication?",
            [("The server's link", True,
              "Every round it receives one gradient from each of the n workers and sends "
              "the model back to each: 2n model-sized messages through one link."),
             ("Each worker's link", False,
              "A worker sends one gradient and receives one model per round, whatever n is."),
             ("No link: the traffic is spread evenly", False,
              "That describes a ring all-reduce, where every node sends and receives "
              "about 2 models' worth per round.")]),
        4: ("selfcheck-ex4", "Why do decentralized nodes send parameters rather than gradients?",
            [("Parameters are smaller than gradients", False,
              "A gradient has exactly one entry per parameter: both are the same size."),
             ("Their models differ, so another node's gradient was computed for a "
              "different model", True,
              "Without a server, no two nodes start a step from the same model, so "
              "averaging parameters is what pulls the models together."),
             ("Gradients reveal training data, parameters do not", False,
              "Both can leak information about the data; privacy is not the reason here.")]),
        5: ("selfcheck-ex5", "In gossip learning as on the sheet, what does a node's passive "
            "thread do when a model arrives?",
            [("It takes an SGD step and sends its model to a random peer", False,
              "That is the active thread's work, done every Δ."),
             ("It replaces its own model by the one it received", False,
              "Then the node would throw away what it learned; it merges instead."),
             ("It averages the received model with its own", True,
              "x ← (x_received + x) / 2, the same merge as gossip averaging.")]),
    }
    check_id, question, options = questions[exercise]
    return choice(check_id, question, options)
