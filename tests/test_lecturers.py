"""What a lecturer needs (issue 23, item 4; issue 21, item 4): licence, lecturers' page, departures.

The common mistakes on the lecturers' page are generated from the self-checks and
the workbook's checks; these tests feed the generator check sources of both
layouts (a package with one module per page, or one module) and see each
mistake come out under its exercise.
"""

from __future__ import annotations

import re
import textwrap
import tomllib

import pytest
import yaml

from book_helpers import ROOT
from dmlbook import lecturers, selfcheck
from dmlbook.sheet import EXERCISES

DEPARTURE_LABELS = ["departure-t-round", "departure-regular-graph", "departure-lenet",
                    "departure-lstm", "departure-seeds", "departure-scaled-down",
                    "departure-gossip-variant", "departure-dpsgd-order",
                    "departure-fl-gradients", "departure-failures", "departure-one-server",
                    "departure-dl-costs"]


def test_licence_names_code_and_text_licences_and_pyproject_names_it():
    text = (ROOT / "LICENSE").read_text()
    assert "MIT License" in text and "Permission is hereby granted" in text
    assert "CC BY 4.0" in text and "creativecommons.org/licenses/by/4.0" in text
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]


def test_toc_and_intro_reach_the_new_pages():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    assert "lecturers" in files and "departures" in files
    intro = (ROOT / "intro.md").read_text()
    assert "{doc}`lecturers`" in intro or "{ref}`lecturers`" in intro
    assert "{ref}`departures`" in intro or "{doc}`departures`" in intro
    assert "workbook" in intro.lower()


def test_departures_page_has_its_stable_labels():
    text = (ROOT / "departures.md").read_text()
    labels = re.findall(r"^\((departure-[a-z-]+)\)=$", text, flags=re.M)
    assert labels == DEPARTURE_LABELS
    for label in labels:  # each label heads a section with a reason
        section = text.split(f"({label})=", 1)[1].split("\n(departure-", 1)[0]
        assert section.lstrip().startswith("## ") and ("Why" in section or "why" in section)


def test_lecturers_page_states_the_sheet_and_the_plan():
    text = (ROOT / "lecturers.md").read_text()
    assert "Week 13" in text and "19.05.2025" in text
    assert "make handout" in text and "repository:" in text and "url:" in text
    assert "dmlbook-answers-below" in text  # the handout leaves mistakes and marking out
    assert text.index("dmlbook-answers-below") < text.index("## Common mistakes") \
        < text.index("## Marking guide")
    for number in (3, 4, 5):
        assert f"**Exercise {number}:" in text


def test_session_plan_is_ninety_minutes_of_named_parts():
    assert lecturers.session_minutes() == 90
    assert all(m > 0 and part and len(what) > 20 for m, part, what in lecturers.SESSION_PLAN)


def test_every_exercise_has_generated_mistakes():
    found = lecturers.common_mistakes()
    assert sorted(found) == [e.number for e in EXERCISES]
    for number, mistakes in found.items():
        assert mistakes, number
        assert all(m.exercise == number and m.name and m.hint for m in mistakes)


def test_selfcheck_mistakes_come_from_the_checks():
    ex1 = lecturers.selfcheck_mistakes(1)
    assert [m.hint for m in ex1] == [msg for _, msg in selfcheck.for_exercise(1).logic.mistakes]
    assert "22,033" in ex1[0].name
    ex3 = lecturers.selfcheck_mistakes(3)
    wrong = [t for t, correct, _ in selfcheck.for_exercise(3).logic.options if not correct]
    assert [m.name for m in ex3] == [f"picks “{t}”" for t in wrong]


PAGE_MODULE = '''
from .harness import Failure

def _hint(x):
    known = [(8, "bits vs bytes", "a byte holds eight bits, so divide."),
             ("swapped links", x, "the upload link is the slow one here.")]
    return "rounding", "round down: a participant gets the model in time or not."

def check(fn):
    raise Failure("case", mistake="max instead of min", hint=f"take the smaller of {fn} and 2.")
    raise Failure("case", mistake="wrong value", hint="generic and left out of the list.")
    names = ("usd_per_gib", "bytes_per_param")
'''


def test_workbook_mistakes_from_a_package_of_page_modules(tmp_path):
    package = tmp_path / "check"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "ex1_participants.py").write_text(textwrap.dedent(PAGE_MODULE))
    found = lecturers.workbook_mistakes(package)
    assert [(m.exercise, m.name) for m in found] == [
        (1, "bits vs bytes"), (1, "swapped links"), (1, "rounding"), (1, "max instead of min")]
    assert found[-1].hint == "take the smaller of … and 2."


def test_workbook_mistakes_from_one_module_by_function_name(tmp_path):
    module = tmp_path / "check.py"
    module.write_text(textwrap.dedent('''
        def _cost_case(fn):
            raise _Failure("c", mistake="forgot the rounds", hint="every round downloads again.")

        def gossip_merge(fn):
            raise _Failure("c", mistake="sum not preserved", hint="an exchange moves mass only.")

        def unrelated(fn):
            raise _Failure("c", mistake="stray", hint="belongs to no exercise at all.")
    '''))
    found = {(m.exercise, m.name) for m in lecturers.workbook_mistakes(module)}
    assert found == {(2, "forgot the rounds"), (5, "sum not preserved")}


@pytest.mark.parametrize("text, shown", [("a * b_c", "a \\* b\\_c"), ("<x>", "\\<x\\>"),
                                         ("`code`", "\\`code\\`"), ("plain.", "plain.")])
def test_markdown_text_escapes_markup(text, shown):
    assert lecturers.markdown_text(text) == shown
