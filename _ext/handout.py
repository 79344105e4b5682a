"""The handout edition: the book without its answers, for a lecturer to publish before class.

Active only when the environment variable ``DMLBOOK_HANDOUT`` is ``1`` (``make
handout`` sets it); otherwise this extension does nothing. Then, in every page:

- every sphinx-exercise solution is dropped (plain and gated);
- every self-check is dropped (``dmlbook.selfcheck``: its answer is in the page);
- every prediction (``dmlbook.predictions``) keeps its question, and a choice its
  options: the form, its answer and what the run showed are replaced by the
  handout version the form carries in an HTML comment;
- in a page with a spoiler boundary (the admonition of class
  ``dmlbook-answers-below``), only what lies above the boundary is kept, plus
  every ``{exercise}`` block below it (with the heading of its section), and the
  boundary becomes a short note saying what was left out;
- in the workbook pages, the folded reference solutions (dropdowns) are dropped;
- the saved state of the widgets (the "Try it" panels, below the boundary) is
  not written into the pages: it holds the panels' outputs, answers included.

The filtering runs on each page's doctree before Sphinx collects labels, images
and the search index, so nothing dropped reaches the site. References into
dropped parts become plain text instead of failing the ``-n -W`` build. The
pages' sources and notebooks (which hold the solutions) are not copied, and the
download and launch buttons are off.
"""

from __future__ import annotations

import os
import re

from docutils import nodes
from sphinx.transforms import SphinxTransform

BOUNDARY_CLASS = "dmlbook-answers-below"
SELFCHECK_TAG = "tag_dmlbook-selfcheck"
SELFCHECK_MARK = "data-dmlbook-selfcheck"
PREDICTION_MARK = "data-dmlbook-prediction"
# dmlbook.predictions.HANDOUT_MARK: the question-only version of a prediction.
PREDICTION_HANDOUT = re.compile(r"<!--dmlbook-handout-version\n(.*?)\n-->", re.S)
HANDOUT_NOTE = ("Handout edition: the solutions, and the sections that compute and explain "
                "them, are left out. The exercises of those sections follow.")


def handout_mode() -> bool:
    return os.environ.get("DMLBOOK_HANDOUT", "") == "1"


def _type(node) -> str:
    return type(node).__name__


def _is_solution(node) -> bool:
    return _type(node) in {"solution_node", "solution_start_node", "solution_end_node"}


def _is_exercise(node) -> bool:
    return _type(node) in {"exercise_node", "exercise_enumerable_node"}


def _is_selfcheck(node) -> bool:
    if not isinstance(node, nodes.Element):
        return False
    if SELFCHECK_TAG in node.get("classes", []):
        return True
    return isinstance(node, nodes.raw) and SELFCHECK_MARK in node.astext()


def _is_prediction(node) -> bool:
    return isinstance(node, nodes.raw) and PREDICTION_MARK in node.astext()


def _keep_question(node: nodes.raw) -> None:
    """A prediction: only its handout version (the question, no answer) stays."""
    found = PREDICTION_HANDOUT.search(node.astext())
    if found is None:
        node.parent.remove(node)
    else:
        node.replace_self(nodes.raw("", found.group(1), format="html"))


def _is_dropdown(node) -> bool:
    return (_type(node) == "dropdown_main"
            or (isinstance(node, nodes.Element) and "dropdown" in node.get("classes", [])))


def _is_boundary(node) -> bool:
    return isinstance(node, nodes.Element) and BOUNDARY_CLASS in node.get("classes", [])


def _contains(node, test) -> bool:
    return any(True for _ in node.findall(test))


def _keep_exercises_only(section: nodes.Element) -> bool:
    """Prune a part below the boundary to its exercises; False if nothing is left."""
    kept = False
    for child in list(section.children):
        if isinstance(child, nodes.title) and isinstance(section, nodes.section):
            continue
        if _is_exercise(child):
            kept = True
        elif isinstance(child, nodes.Element) and _contains(child, _is_exercise):
            kept = _keep_exercises_only(child) or kept
        elif isinstance(child, nodes.target):
            continue  # labels of kept sections stay resolvable
        else:
            section.remove(child)
    return kept


def _cut_below(boundary: nodes.Element) -> None:
    """Drop everything after ``boundary`` in document order, except exercises."""
    node = boundary
    while node.parent is not None:
        parent = node.parent
        after = parent.children[parent.index(node) + 1:]
        for sibling in list(after):
            if _is_exercise(sibling):
                continue
            if isinstance(sibling, nodes.Element) and _contains(sibling, _is_exercise):
                _keep_exercises_only(sibling)
            else:
                parent.remove(sibling)
        node = parent
    note = nodes.note("", nodes.paragraph(text=HANDOUT_NOTE), classes=["dmlbook-handout-note"])
    boundary.replace_self(note)


def _drop_gated_solution(start) -> None:
    """A gated solution (solution-start ... solution-end): drop it and what lies between."""
    parent = start.parent
    index = parent.index(start)
    while index < len(parent.children):
        child = parent.children[index]
        parent.remove(child)
        if _type(child) == "solution_end_node":
            break


class DropAnswers(SphinxTransform):
    """Remove solutions, self-checks and everything below the spoiler boundary."""

    # After sphinx-exercise merges gated directives (10), before Sphinx collects
    # the page's labels (850) and the doctree-read event (880).
    default_priority = 800

    def apply(self, **kwargs) -> None:
        if not handout_mode():
            return
        doc = self.document
        for start in list(doc.findall(lambda n: _type(n) == "solution_start_node")):
            if start.parent is not None:
                _drop_gated_solution(start)
        for node in list(doc.findall(_is_prediction)):
            if node.parent is not None:
                _keep_question(node)
        for node in list(doc.findall(lambda n: _is_solution(n) or _is_selfcheck(n))):
            if node.parent is not None:
                node.parent.remove(node)
        if self.env.docname.startswith("workbook/"):
            for node in list(doc.findall(_is_dropdown)):
                if node.parent is not None:
                    node.parent.remove(node)
        boundaries = list(doc.findall(_is_boundary))
        if boundaries:
            _cut_below(boundaries[0])
            for extra in boundaries[1:]:
                if extra.parent is not None:
                    extra.parent.remove(extra)
        _forget_dropped_targets(doc)


def _forget_dropped_targets(doc) -> None:
    """Unregister the labels of dropped nodes, so Sphinx does not collect them."""
    present = {i for node in doc.findall(nodes.Element) for i in node["ids"]}
    for name, node_id in list(doc.nameids.items()):
        if node_id is not None and node_id not in present:
            del doc.nameids[name]
            doc.nametypes.pop(name, None)
    for node_id in [i for i in doc.ids if i not in present]:
        del doc.ids[node_id]


WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def drop_widget_state(app, pagename, templatename, context, doctree):
    """The page's saved widget state holds every panel's output, answers included.

    The panels sit below the boundary, so the handout shows none of them; their
    state, which myst-nb adds to the page as an inline script, is dropped too.
    """
    if not handout_mode():
        return
    scripts = context.get("script_files", [])
    scripts[:] = [s for s in scripts
                  if getattr(s, "attributes", {}).get("type") != WIDGET_STATE]


def keep_missing_references_as_text(app, env, node, contnode):
    """In the handout, a reference into a dropped part reads as its plain text."""
    if handout_mode() and node.get("reftype") in {"ref", "numref", "doc", "eq", "solution"}:
        return contnode
    return None


def configure(app, config):
    if not handout_mode():
        return
    config.html_copy_source = False
    config.html_show_sourcelink = False
    if config.html_title:
        config.html_title = f"{config.html_title} (handout)"
    if config.html_theme == "sphinx_book_theme":  # the book's theme has these buttons
        options = dict(config.html_theme_options or {})
        options.update(use_download_button=False, launch_buttons={})
        config.html_theme_options = options


def setup(app):
    app.connect("config-inited", configure)
    app.add_transform(DropAnswers)
    app.connect("missing-reference", keep_missing_references_as_text)
    # After myst-nb adds the page's scripts (default priority 500).
    app.connect("html-page-context", drop_widget_state, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
