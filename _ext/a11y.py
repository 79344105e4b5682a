"""Accessibility fixes for what the theme and Sphinx write (WCAG 2.1 AA, checked by axe-core).

- Header buttons: templates in ``_ext/templates`` override two pydata-sphinx-theme
  components whose accessible names did not contain their visible text
  (axe rule label-content-name-mismatch).
- Citation lists: docutils writes ``<div role="list">`` around the bibliography
  entries, whose children are not list items (axe rule aria-required-children);
  the role, and the deprecated ``doc-biblioentry`` role, are dropped.
- Link colours with enough contrast on tinted admonition backgrounds live in
  ``_static/dmlbook.css``.
"""

from pathlib import Path

TEMPLATES = Path(__file__).with_name("templates")

ROLE_FIXES = (('<div role="list" class="citation-list">', '<div class="citation-list">'),
              (' role="doc-biblioentry"', ""))


def add_templates(app, config):
    # First in the list: these override the theme's own components, which
    # pydata-sphinx-theme puts on the template path by their bare file names.
    config.templates_path.insert(0, str(TEMPLATES))


def fix_roles(app, pagename, templatename, context, doctree):
    body = context.get("body")
    if body:
        for old, new in ROLE_FIXES:
            body = body.replace(old, new)
        context["body"] = body


def setup(app):
    app.connect("config-inited", add_templates)
    app.connect("html-page-context", fix_roles)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
