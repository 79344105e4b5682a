"""First paint on a slow link: nothing the first screen does not need competes with it.

myst-nb writes, into the ``<head>`` of every page with widgets, RequireJS and the
3.6 MB widget manager as blocking scripts, and the saved state of every widget the
kernel held, as one inline JSON script. The browser paints nothing until all of it
has arrived: 6.7 s at 10 Mbit/s for a chapter. Here

- the state keeps only the models a page shows: those reachable from a widget
  view in the page (the static explorers) and the links between them. The live
  "Try it" panels, which the static site hides (they need a kernel), and
  widgets that no output shows, are dropped, with their views;
- the state leaves the page for a script beside it (``<page>.widgets.js``,
  a script rather than JSON so that a page opened from disk loads it too), and
  RequireJS and the widget manager leave ``<head>``. A small script at the end
  of the article loads the three, in that order, once the page has parsed (the
  manager renders at once if the page has loaded, else on its ``load`` event).
  A page left with no state (the handout edition drops it) loads neither.
  Deferred scripts start downloading with the page and share the link with its
  stylesheets; these start after them. The explorers' precomputed figures
  (up to 680 kB of a chapter) no longer download with the text above them;
- figures in the article load lazily (``loading="lazy"``): a figure below the
  first screen downloads as the reader scrolls towards it, not before the first
  paint. Chromium fetches them when the page prints;
- the search scripts that pydata-sphinx-theme puts into every page's ``<head>``
  (searchtools.js, language_data.js and the 74 kB searchindex.js) load with
  ``defer``: the search field needs them only after the page has parsed.

It also marks the kernels this build starts (``DMLBOOK_STATIC_BUILD=1``), so that
:mod:`dmlbook.progress` draws no progress bars into the pages.

tests/test_delivery_browser.py measures the first paint of every chapter over a
throttled link.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
from pathlib import Path

WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_SCRIPTS = ("vendor/requirejs/require.js", "vendor/html-manager/dist/embed-amd.js")
HIDDEN_CLASS = "dmlbook-live-panel"
VIEW_RE = re.compile(r'<script type="application/vnd\.jupyter\.widget-view\+json">'
                     r'(.*?)</script>', re.S)
REF_RE = re.compile(r"IPY_MODEL_(\w+)")
SRC_RE = re.compile(r'src="([^"]+)"')
IMG_RE = re.compile(r"<img (?![^>]*\bloading=)")
STATE_FILE_SUFFIX = ".widgets.js"
# Loads the state and the manager in order (async=false), after the page has parsed.
LOADER = ('<script>document.addEventListener("DOMContentLoaded",function(){{{sources}'
          '.forEach(function(src){{var s=document.createElement("script");s.src=src;'
          's.async=false;document.head.appendChild(s);}});}});</script>')
# The state script adds the JSON script element that the manager reads.
STATE_SCRIPT = ('(function(){{var s=document.createElement("script");s.type="{type}";'
                's.textContent=JSON.stringify({state});document.body.appendChild(s);}})();\n')
SEARCH_SCRIPTS = re.compile(r'<script src="([^"]*(?:_static/searchtools\.js|'
                            r'_static/language_data\.js|searchindex\.js))"></script>')


def _refs(model: dict) -> set[str]:
    return set(REF_RE.findall(json.dumps(model.get("state", {}))))


def _closure(state: dict, roots) -> set[str]:
    seen, todo = set(), [r for r in roots if r in state]
    while todo:
        mid = todo.pop()
        if mid not in seen:
            seen.add(mid)
            todo.extend(r for r in _refs(state[mid]) if r in state and r not in seen)
    return seen


def shown_models(state: dict, view_ids: list[str]) -> set[str]:
    """The models the page shows: reachable from its visible views, plus the links among them."""
    roots = [m for m in view_ids if m in state
             and HIDDEN_CLASS not in state[m].get("state", {}).get("_dom_classes", [])]
    keep = _closure(state, roots)
    # Links (jslink, jsdlink) are referenced by no view: keep those whose ends are kept.
    for mid, model in state.items():
        refs = _refs(model)
        if mid not in keep and refs and "Link" in model.get("model_name", "") and refs <= keep:
            keep.add(mid)
    return keep


def slim_widgets(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    body = context.get("body")
    if not scripts or body is None:
        return
    manager = [s for s in scripts if _filename(s) in WIDGET_SCRIPTS]
    scripts[:] = [s for s in scripts if s not in manager]
    states = [s for s in scripts if getattr(s, "attributes", {}).get("type") == WIDGET_STATE]
    if not states:  # e.g. the handout edition, which drops the state: nothing to render
        return
    for script in states:
        scripts.remove(script)
    bundle = json.loads(states[0].attributes["body"].replace("<\\/", "</"))
    state = bundle["state"]
    views = [json.loads(m.group(1))["model_id"] for m in VIEW_RE.finditer(body)]
    keep = shown_models(state, views)

    def view(match):
        return match.group(0) if json.loads(match.group(1))["model_id"] in keep else ""

    body = VIEW_RE.sub(view, body)
    bundle["state"] = {mid: model for mid, model in state.items() if mid in keep}
    if bundle["state"]:
        state_src = write_state_script(app.outdir, pagename, bundle)
        sources = [state_src] + [SRC_RE.search(context["js_tag"](s)).group(1) for s in manager]
        body += LOADER.format(sources=json.dumps(sources))
    context["body"] = body


def _filename(script) -> str:
    return str(getattr(script, "filename", script) or "")


def write_state_script(outdir, pagename: str, bundle: dict) -> str:
    """Write ``bundle`` as ``<page>.widgets.js`` beside the page; return its URL from the page.

    The URL carries a digest of the content, so a browser never pairs a page with
    the state of an older build.
    """
    text = STATE_SCRIPT.format(type=WIDGET_STATE,
                               state=json.dumps(bundle, separators=(",", ":")))
    path = Path(outdir) / f"{pagename}{STATE_FILE_SUFFIX}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{posixpath.basename(pagename)}{STATE_FILE_SUFFIX}?v={digest}"


def read_state_script(text: str) -> dict:
    """The bundle that :func:`write_state_script` wrote as ``text`` (its inverse)."""
    head, tail = STATE_SCRIPT.format(type=WIDGET_STATE, state="\0").split("\0")
    if not (text.startswith(head) and text.endswith(tail)):
        raise ValueError("text is not a widget-state script written by write_state_script")
    return json.loads(text[len(head):len(text) - len(tail)])


def lazy_images(app, pagename, templatename, context, doctree):
    """Every image in the article loads lazily, unless it already says how to load."""
    body = context.get("body")
    if body:
        context["body"] = IMG_RE.sub('<img loading="lazy" ', body)


def defer_search_scripts(app, exception):
    """Every page's search scripts with ``defer`` (they keep their order)."""
    if exception is not None or getattr(app.builder, "format", "") != "html":
        return
    for path in Path(app.outdir).rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        new = SEARCH_SCRIPTS.sub(r'<script defer src="\1"></script>', text)
        if new != text:
            path.write_text(new, encoding="utf-8")


def mark_static_build(app, config):
    """Kernels started by this build inherit it: dmlbook.progress shows no bars there."""
    os.environ["DMLBOOK_STATIC_BUILD"] = "1"


def setup(app):
    app.connect("config-inited", mark_static_build)
    # After myst-nb (500) adds the page's scripts, and after the handout edition
    # (900) drops the whole state of its pages (nothing is moved there).
    app.connect("html-page-context", slim_widgets, priority=950)
    app.connect("html-page-context", lazy_images, priority=960)
    app.connect("build-finished", defer_search_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
