"""Every Try-this answer of exercises 4-6 quotes numbers that its explorer shows.

The static explorer's precomputed states travel in the page's widget state
(``application/vnd.jupyter.widget-state+json``, which the page loads from
``<page>.widgets.js``). For each Try-this question
that the explorer can answer, the numbers of the kinds its panel displays
(accuracies with three decimals, message counts with thousands separators,
shares in percent with one decimal), as they appear in the question and its
solution, must each appear in that state. A question that needs the live
panel must say so in its title.
"""

from __future__ import annotations

import re

import pytest

from book_helpers import page_text, page_widget_state

ACCURACY = r"(?<![\d.])[01]\.\d{3}(?!\d)"
COUNT = r"(?<![\d.,])\d{1,3}(?:,\d{3})+(?![\d,])"
PERCENT = r"(?<![\d.])\d{1,2}\.\d%"

EX4, EX5, EX6 = ("chapters/ex4_gradients_vs_parameters", "chapters/ex5_gossip",
                 "chapters/ex6_dpsgd")
# (page, Try-this number) -> the kinds of numbers its explorer shows and the answer quotes.
FROM_EXPLORER = {
    (EX4, 1): (ACCURACY,), (EX4, 2): (ACCURACY,),
    (EX5, 1): (ACCURACY, COUNT), (EX5, 2): (ACCURACY, PERCENT),
    (EX6, 1): (COUNT,), (EX6, 2): (COUNT,),
}
LIVE_ONLY = {(EX4, 3), (EX5, 3), (EX6, 3)}
LAST = 3  # each chapter has three Try-this questions


def widget_state(doc: str) -> str:
    """Every text of the page's widget state, as the explorer shows it (unescaped)."""
    return "\n".join(_texts(page_widget_state(doc)))


def _texts(value):
    if isinstance(value, dict):
        return [t for v in value.values() for t in _texts(v)]
    if isinstance(value, list):
        return [t for v in value for t in _texts(v)]
    return [value] if isinstance(value, str) else []


def try_this_text(text: str, number: int) -> str:
    """A Try-this question and its solution: from its title "Try this N:" to the next."""
    start = text.find(f"Try this {number}:")
    assert start >= 0, f"no 'Try this {number}:' on the page"
    end = (text.find(f"Try this {number + 1}:", start) if number < LAST
           else text.find("More exercises", start))
    return text[start:end if end > start else None]


def numbers_in(text: str, kinds) -> list[str]:
    return [n for kind in kinds for n in re.findall(kind, text)]


def test_number_patterns_find_what_the_panels_print():
    text = "accuracy 0.911 and 0.1, 29,056 messages, 36.6% idle, 2,203 and 1.5e-3"
    assert numbers_in(text, (ACCURACY,)) == ["0.911"]
    assert numbers_in(text, (COUNT,)) == ["29,056", "2,203"]
    assert numbers_in(text, (PERCENT,)) == ["36.6%"]


@pytest.mark.parametrize("doc, number", sorted(FROM_EXPLORER))
def test_try_this_numbers_are_in_the_explorer(built_book, doc, number):
    state = widget_state(doc)
    text = try_this_text(page_text(doc), number)
    quoted = numbers_in(text, FROM_EXPLORER[doc, number])
    assert quoted, f"{doc} Try this {number} quotes no number that its explorer shows"
    missing = [n for n in quoted if n not in state]
    assert not missing, (f"{doc} Try this {number} quotes {missing}, which its explorer "
                         "does not show")


@pytest.mark.parametrize("doc, number", sorted(LIVE_ONLY))
def test_live_only_questions_say_so(built_book, doc, number):
    text = try_this_text(page_text(doc), number)
    assert re.search(r"live panel|no panel", text), \
        f"{doc} Try this {number} does not say that it needs the live panel"


def test_try_this_window_stops_at_the_next_question():
    text = "Try this 1: a. 0.911 Try this 2: b. 0.100 Try this 3: c. More exercises d"
    assert numbers_in(try_this_text(text, 1), (ACCURACY,)) == ["0.911"]
    assert try_this_text(text, 3) == "Try this 3: c. "
