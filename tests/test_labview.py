"""The notebook view for JupyterLab (dmlbook.labview) and the kernel's glued values (dmlbook.glued)."""

from pathlib import Path

import pytest

from dmlbook import glued, labview

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "chapters").glob("*.md")) + sorted((ROOT / "workbook").glob("*.md"))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_every_page_round_trips_and_keeps_no_sphinx_role(page):
    source = page.read_text(encoding="utf-8")
    shown = labview.to_lab(source, folder=page.parent)
    assert labview.to_book(shown) == source  # a save writes back the book's syntax
    for role in ("{glue", "{numref}`", "{doc}`", "{cite}`", "{literalinclude}"):
        assert role not in shown, f"{page.name}: {role} left for JupyterLab"


def test_roles_become_words_a_student_reads():
    source = ("{glue:text}`ex_n:,d` nodes, see {numref}`fig-a` and {doc}`Exercise 2 <ex2>`; "
              "after {cite}`lian2017dpsgd`. {glue:md}`ex_sentence`\n\n```{glue:math} ex_eq\n```\n")
    shown = labview.to_lab(source, captions={"fig-a": "Accuracy over rounds. Median of 5."})
    assert '{eval}`glued("ex_n", ",d", "text")`' in shown
    assert '{eval}`glued("ex_sentence", "", "md")`' in shown
    assert '{eval}`glued("ex_eq", "", "math")`' in shown
    assert "[the figure “Accuracy over rounds”]" in shown
    assert "[Exercise 2]" in shown and "[(Lian et al. 2017)]" in shown
    assert labview.to_book(shown) == source


def test_literalinclude_becomes_the_included_code():
    source = "```{literalinclude} ../dmlbook/check/reference.py\n:pyobject: participants\n```"
    shown = labview.to_lab(source, folder=ROOT / "workbook")
    assert "```python\ndef participants(" in shown and "return" in shown
    assert labview.to_book(shown) == source


def test_bibliography_names_with_accents():
    assert labview.bib_labels()["ormandi2013gossip"] == "Ormándi et al. 2013"


class _Publisher:
    def __init__(self):
        self.sent = []

    def publish(self, data, metadata=None, **kw):
        self.sent.append(data)


class _Shell:
    def __init__(self):
        self.display_pub, self.user_ns = _Publisher(), {}


def test_glued_values_are_recorded_and_formatted_as_the_book_does():
    shell = _Shell()
    assert glued.install(shell) and glued.install(shell)  # idempotent
    assert shell.user_ns["glued"] is glued.glued
    shell.display_pub.publish({glued.GLUE_PREFIX + "text/plain": "1234.5678"},
                              {"scrapbook": {"name": "t_x", "mime_prefix": glued.GLUE_PREFIX}})
    shell.display_pub.publish({glued.GLUE_PREFIX + "text/plain": "'a sentence'",
                               glued.GLUE_PREFIX + "text/markdown": "**a** sentence"},
                              {"scrapbook": {"name": "t_md", "mime_prefix": glued.GLUE_PREFIX}})
    assert len(shell.display_pub.sent) == 2  # still published
    assert repr(glued.glued("t_x", ",.1f")) == "1,234.6"
    assert repr(glued.glued("t_x", ".0f")) == "1235"
    assert glued.glued("t_md", "", "md")._repr_markdown_() == "**a** sentence"
    assert repr(glued.glued("t_never")) == glued.NOT_YET
    with pytest.raises(ValueError, match="kind"):
        glued.glued("t_x", "", "html")
