"""_ext/pagespeed.py: the page keeps only the widget state it shows (no build needed)."""

import json
import re
import sys
from types import SimpleNamespace

import pytest

from book_helpers import ROOT

sys.path.insert(0, str(ROOT / "_ext"))
import pagespeed  # noqa: E402 - Sphinx's extension folder, added above


def _model(name, **state):
    return {"model_name": name, "model_module": "@jupyter-widgets/controls",
            "model_module_version": "2.0.0", "state": state}


STATE = {
    "box": _model("VBoxModel", children=["IPY_MODEL_dd", "IPY_MODEL_stack"],
                  layout="IPY_MODEL_lay", _dom_classes=["dmlbook-explorer"]),
    "dd": _model("DropdownModel", layout="IPY_MODEL_lay"),
    "stack": _model("StackModel", children=["IPY_MODEL_html"]),
    "html": _model("HTMLModel", value="<img src='data:...'>"),
    "lay": _model("LayoutModel"),
    "link": _model("DirectionalLinkModel", source=["IPY_MODEL_dd", "index"],
                   target=["IPY_MODEL_stack", "selected_index"]),
    "live": _model("VBoxModel", children=["IPY_MODEL_livehtml"],
                   _dom_classes=["dmlbook-live-panel"]),
    "livehtml": _model("HTMLModel", value="a big PNG"),
    "orphan": _model("FloatProgressModel"),
}


def _view(model_id):
    return ('<script type="application/vnd.jupyter.widget-view+json">'
            + json.dumps({"version_major": 2, "version_minor": 0, "model_id": model_id})
            + "</script>")


def test_only_the_shown_models_and_their_links_stay():
    keep = pagespeed.shown_models(STATE, ["box", "live"])
    assert keep == {"box", "dd", "stack", "html", "lay", "link"}


MANAGER = [SimpleNamespace(attributes={"defer": "defer"}, filename=f)
           for f in pagespeed.WIDGET_SCRIPTS]


def _js_tag(script):
    return f'<script defer="defer" src="../_static/{script.filename}?v=1234"></script>'


def _page(state, *views):
    bundle = {"version_major": 2, "version_minor": 0, "state": state}
    state_script = SimpleNamespace(attributes={"type": pagespeed.WIDGET_STATE,
                                               "body": json.dumps(bundle)})
    other = SimpleNamespace(attributes={}, filename="_static/x.js")
    return other, {"script_files": [other, *MANAGER, state_script], "js_tag": _js_tag,
                   "body": "<p>text</p>" + "".join(views)}


def test_the_state_leaves_the_page_and_loads_after_it_with_the_manager(tmp_path):
    other, context = _page(STATE, _view("box"), "<p>live:</p>", _view("live"))
    app = SimpleNamespace(outdir=str(tmp_path))
    pagespeed.slim_widgets(app, "chapters/x", "page.html", context, None)
    assert context["script_files"] == [other]  # neither state nor manager in <head>
    body = context["body"]
    assert body.startswith("<p>text</p>") and _view("box") in body and _view("live") not in body
    assert pagespeed.WIDGET_STATE not in body and "a big PNG" not in body
    # One loader at the end: the state script, then RequireJS, then the manager.
    loader = body.split("<script>")[-1]
    assert body.count("<script>") == 1 and "DOMContentLoaded" in loader
    assert "s.async=false" in loader  # dynamic scripts run in the order they were added
    sources = json.loads(re.search(r"(\[[^\]]*\])\.forEach", loader).group(1))
    state_file, digest = sources[0].split("?v=")
    assert state_file == "x.widgets.js" and len(digest) == 8
    assert sources[1:] == [f"../_static/{f}?v=1234" for f in pagespeed.WIDGET_SCRIPTS]
    # The state script adds the JSON element the manager reads, with the shown models only.
    script = (tmp_path / "chapters" / "x.widgets.js").read_text()
    assert f's.type="{pagespeed.WIDGET_STATE}"' in script
    saved = pagespeed.read_state_script(script)
    assert saved["version_major"] == 2
    assert set(saved["state"]) == {"box", "dd", "stack", "html", "lay", "link"}


def test_the_state_file_name_changes_with_its_content(tmp_path):
    bundle = {"version_major": 2, "version_minor": 0, "state": {"box": STATE["box"]}}
    first = pagespeed.write_state_script(tmp_path, "chapters/x", bundle)
    again = pagespeed.write_state_script(tmp_path, "chapters/x", bundle)
    bundle["state"]["dd"] = STATE["dd"]
    changed = pagespeed.write_state_script(tmp_path, "chapters/x", bundle)
    assert first == again != changed
    written = (tmp_path / "chapters" / "x.widgets.js").read_text()
    assert pagespeed.read_state_script(written) == bundle


def test_only_a_state_script_is_read_as_one():
    with pytest.raises(ValueError, match="not a widget-state script"):
        pagespeed.read_state_script("alert(1)")


def test_a_page_that_shows_no_widget_loads_no_manager(tmp_path):
    other, context = _page(STATE, _view("live"))
    pagespeed.slim_widgets(SimpleNamespace(outdir=str(tmp_path)), "chapters/x", "page.html",
                           context, None)
    assert context["script_files"] == [other]
    assert "<script>" not in context["body"] and not list(tmp_path.rglob("*.widgets.js"))


def test_article_images_load_lazily_unless_they_say_otherwise():
    context = {"body": '<img alt="a" src="a.png"/><p><img src="b.png"></p>'
                       '<img loading="eager" src="c.png"/><image href="d.svg"/>'}
    pagespeed.lazy_images(None, "chapters/x", "page.html", context, None)
    assert context["body"] == ('<img loading="lazy" alt="a" src="a.png"/><p>'
                               '<img loading="lazy" src="b.png"></p>'
                               '<img loading="eager" src="c.png"/><image href="d.svg"/>')


def test_a_page_without_widget_state_loads_no_manager(tmp_path):
    """The handout edition drops the state (_ext/handout.py): the manager goes too."""
    other, context = _page(STATE, _view("box"))
    context["script_files"] = context["script_files"][:-1]  # no state script
    body = context["body"]
    pagespeed.slim_widgets(SimpleNamespace(outdir=str(tmp_path)), "chapters/x", "page.html",
                           context, None)
    assert context["script_files"] == [other] and context["body"] == body
