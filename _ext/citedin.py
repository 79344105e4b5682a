"""Back-references for the bibliography: which pages cite each work.

sphinxcontrib-bibtex lists the works but not where they are cited. The
directive ``{cited-in}`` (in bibliography.md) becomes a table: one row per
work of the bibliography files, in file order, with a link to every page that
cites it. The pages are those of the ``{cite}`` roles, which
sphinxcontrib-bibtex records while it reads each page; the table is filled in
when every page has been read.
"""

from __future__ import annotations

import codecs
import re

import latexcodec  # noqa: F401 (registers the ulatex codec)

from docutils import nodes
from sphinx.util.docutils import SphinxDirective


class cited_in_placeholder(nodes.General, nodes.Element):  # noqa: N801 (docutils style)
    pass


class CitedIn(SphinxDirective):
    has_content = False

    def run(self):
        return [cited_in_placeholder()]


def _plain(text: str) -> str:
    """BibTeX text as plain Unicode: accents decoded, braces dropped."""
    try:
        text = codecs.decode(text, "ulatex")  # latexcodec, a dependency of pybtex
    except (LookupError, ValueError, TypeError):
        pass
    return re.sub(r"[{}]", "", text)


def _short_entry(entry) -> str:
    authors = entry.persons.get("author", [])
    first = _plain(" ".join(authors[0].last_names)) if authors else "Anonymous"
    who = first if len(authors) == 1 else (f"{first} and {_plain(' '.join(authors[1].last_names))}"
                                           if len(authors) == 2 else f"{first} et al.")
    return f"{who} ({entry.fields.get('year', 'n.d.')}): {_plain(entry.fields.get('title', ''))}"


def fill_tables(app, doctree, fromdocname):
    placeholders = list(doctree.findall(cited_in_placeholder))
    if not placeholders:
        return
    domain = app.env.get_domain("cite")
    cited_by: dict[str, list[str]] = {}
    for ref in domain.citation_refs:
        for target in ref.targets:
            pages = cited_by.setdefault(target.key, [])
            if ref.docname not in pages:
                pages.append(ref.docname)
    order = list(app.env.found_docs)
    toc_order = {doc: i for i, doc in enumerate(_toc_order(app) or sorted(order))}
    table = nodes.table(classes=["dmlbook-table", "dmlbook-cited-in"])
    group = nodes.tgroup(cols=2)
    table += group
    group += [nodes.colspec(colwidth=3), nodes.colspec(colwidth=2)]
    head = nodes.thead()
    group += head
    head += nodes.row("", *[nodes.entry("", nodes.paragraph(text=t))
                            for t in ("Work", "Cited in")])
    body = nodes.tbody()
    group += body
    for bibfile in domain.bibdata.bibfiles.values():
        for key in bibfile.keys:
            entry = domain.bibdata.data.entries[key]
            cell = nodes.paragraph()
            pages = sorted(cited_by.get(key, []), key=lambda d: toc_order.get(d, 10**6))
            for i, doc in enumerate(pages):
                if i:
                    cell += nodes.Text(", ")
                title = app.env.titles[doc].astext() if doc in app.env.titles else doc
                cell += nodes.reference(
                    "", title, internal=True,
                    refuri=app.builder.get_relative_uri(fromdocname, doc))
            if not pages:
                cell += nodes.Text("(listed for completeness; not cited on a page)")
            body += nodes.row("", nodes.entry("", nodes.paragraph(text=_short_entry(entry))),
                              nodes.entry("", cell))
    n_works = len(body.children)
    count = nodes.paragraph(text=f"The bibliography lists {n_works} works; each row links "
                                 "to the pages that cite it.")
    for placeholder in placeholders:
        placeholder.replace_self([count.deepcopy(), table.deepcopy()])


def _toc_order(app) -> list[str]:
    """Documents in reading order (the root's toctree, depth first)."""
    env, seen = app.env, []

    def walk(doc):
        if doc in seen:
            return
        seen.append(doc)
        for child in env.toctree_includes.get(doc, []):
            walk(child)

    walk(app.config.root_doc)
    return seen


def setup(app):
    app.add_node(cited_in_placeholder)
    app.add_directive("cited-in", CitedIn)
    app.connect("doctree-resolved", fill_tables)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
