"""The handout edition reads whole, not as the full book with holes (issue 25, item 8).

Runs only when ``DMLBOOK_HANDOUT=1`` (``make handout``), after ``handout.py`` has
dropped the answers (its transform runs at priority 800, this one at 810):

- the home page gets its own introduction: what the handout is, and when the
  full edition follows; the parts that describe the full edition (how to use
  its solutions, self-checks and panels) are left out;
- a section below the spoiler boundary that kept only exercises is titled
  "Exercises" (no "Summary" heading over exercises alone);
- an exercise kept below the boundary that points at something the handout
  left out (a panel, a widget, an explorer, a figure or table "above", a
  reference into a dropped part) is left out too;
- the week page, which states the answers, says that it follows after the class;
- no repository button (the repository holds the solutions).

tests/test_handout.py checks each point on the built handout.
"""

from __future__ import annotations

import os
import re

from docutils import nodes
from sphinx.transforms import SphinxTransform

HANDOUT_INTRO = (
    "This is the handout edition of the week's exercises, for the exercise class. It "
    "states the six exercises and the setting each needs, without their solutions: work "
    "them out on paper and bring your answers to the class. The full edition, with the "
    "worked solutions, the self-checks, the measurements behind every answer and the "
    "explorers, is published after the class.")
HANDOUT_HOW_TO = (
    "Each chapter states its exercise in a box, then the background it needs. Below a "
    "note saying what was left out follow the chapter's further exercises (Try this): "
    "they go beyond the sheet, for after you solved its exercise.")
WEEK_NOTE = ("After the class: the week in one table compares the six schemes side by side "
             "and states the exercises' answers, so it is published with the full edition "
             "after the class.")
# The home page's sections that describe the full edition (by their ids).
FULL_EDITION_SECTIONS = ("how-to-use-this-book",)
FULL_EDITION_WORDS = re.compile(r"self-check|solutions? (are|is) folded|Try it|panel", re.I)
# What an exercise may point at that the handout has left out.
POINTERS = re.compile(r"\b(panels?|widgets?|explorers?|sliders?|dropdowns?)\b|"
                      r"\b(figure|table|plot|chart|run|output) above\b|\babove\b.{0,40}\b(figure|table|panel)\b",
                      re.I)
BOUNDARY_NOTE_CLASS = "dmlbook-handout-note"


def handout_mode() -> bool:
    return os.environ.get("DMLBOOK_HANDOUT", "") == "1"


def _is_exercise(node) -> bool:
    return type(node).__name__ in {"exercise_node", "exercise_enumerable_node"}


def _after_note(doc) -> list:
    """The nodes after the handout note, in document order (below the boundary)."""
    notes = [n for n in doc.findall(nodes.Element) if BOUNDARY_NOTE_CLASS in n["classes"]]
    if not notes:
        return []
    after, seen = [], False
    for node in doc.findall(nodes.Element):
        if node is notes[0]:
            seen = True
        elif seen:
            after.append(node)
    return after


def _points_at_removed(exercise, present_ids: set) -> bool:
    if POINTERS.search(exercise.astext()):
        return True
    for ref in exercise.findall(lambda n: type(n).__name__ == "pending_xref"):
        if ref.get("reftype") == "numref" and ref.get("reftarget", "") not in present_ids:
            return True
    return False


def _cut_full_edition_sentences(para: nodes.paragraph) -> bool:
    """Cut a paragraph from the sentence that describes the full edition; False if none."""
    for index, child in enumerate(para.children):
        if not isinstance(child, nodes.Text):
            continue
        text = str(child)
        match = FULL_EDITION_WORDS.search(text)
        if match is None:
            continue
        start = max(text.rfind(". ", 0, match.start()), text.rfind(": ", 0, match.start()))
        kept = text[:start + 1] if start >= 0 else ""
        del para.children[index:]
        if kept.strip():
            para += nodes.Text(kept)
        return True
    return False


def _paragraph(text: str, classes=()) -> nodes.paragraph:
    return nodes.paragraph(text, text, classes=list(classes))


class HandoutReadsWhole(SphinxTransform):
    default_priority = 810

    def apply(self, **kwargs) -> None:
        if not handout_mode():
            return
        doc, docname = self.document, self.env.docname
        if docname == self.config.root_doc:
            self._intro(doc)
        elif docname == "week":
            self._week(doc)
        else:
            self._below_boundary(doc)

    def _intro(self, doc) -> None:
        title_section = next(iter(doc.findall(nodes.section)), None)
        if title_section is None:
            return
        for section in list(doc.findall(nodes.section)):
            if set(section["ids"]) & set(FULL_EDITION_SECTIONS) and section.parent is not None:
                body = [c for c in section.children if not isinstance(c, nodes.title)]
                for child in body:
                    section.remove(child)
                section += _paragraph(HANDOUT_HOW_TO)
        for para in list(doc.findall(nodes.paragraph)):
            if not FULL_EDITION_WORDS.search(para.astext()) or para.parent is None \
                    or HANDOUT_HOW_TO in para.astext():
                continue
            _cut_full_edition_sentences(para)
            if FULL_EDITION_WORDS.search(para.astext()) or not para.astext().strip():
                item = para.parent if isinstance(para.parent, nodes.list_item) else para
                item.parent.remove(item)
        # The opening paragraphs describe the full edition: the handout's own first.
        first = next((i for i, c in enumerate(title_section.children)
                      if isinstance(c, nodes.paragraph)), None)
        if first is not None:
            while first < len(title_section.children) and isinstance(
                    title_section.children[first], nodes.paragraph):
                title_section.remove(title_section.children[first])
            title_section.insert(first, _paragraph(HANDOUT_INTRO, ["dmlbook-handout-intro"]))

    def _week(self, doc) -> None:
        section = next(iter(doc.findall(nodes.section)), None)
        if section is None:
            return
        for child in [c for c in section.children if not isinstance(c, nodes.title)]:
            section.remove(child)
        section += nodes.note("", _paragraph(WEEK_NOTE), classes=["dmlbook-after-class"])

    def _below_boundary(self, doc) -> None:
        below = _after_note(doc)
        if not below:
            return
        present = {i for n in doc.findall(nodes.Element) for i in n["ids"]}
        for exercise in [n for n in below if _is_exercise(n)]:
            if exercise.parent is not None and _points_at_removed(exercise, present):
                exercise.parent.remove(exercise)
        for section in [n for n in below if isinstance(n, nodes.section)]:
            if section.parent is None:
                continue
            body = [c for c in section.children
                    if not isinstance(c, (nodes.title, nodes.target))]
            if not body:
                section.parent.remove(section)
            elif all(_is_exercise(c) or isinstance(c, nodes.section) for c in body) \
                    and any(_is_exercise(c) for c in body):
                title = section.next_node(nodes.title)
                if title is not None and "exercise" not in title.astext().lower():
                    title.children = [nodes.Text("Exercises")]


def no_repository_button(app, config) -> None:
    if not handout_mode() or config.html_theme != "sphinx_book_theme":
        return
    options = dict(config.html_theme_options or {})
    options.update(use_repository_button=False, use_issues_button=False,
                   use_edit_page_button=False)
    config.html_theme_options = options


def setup(app):
    app.connect("config-inited", no_repository_button)
    app.add_transform(HandoutReadsWhole)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
