"""_ext/pagespeed.py: the page keeps only the widget state it shows (no build needed)."""

import json
import sys
from types import SimpleNamespace

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


def test_the_page_moves_the_state_to_its_end_and_drops_hidden_views():
    bundle = {"version_major": 2, "version_minor": 0, "state": STATE}
    state_script = SimpleNamespace(attributes={"type": pagespeed.WIDGET_STATE,
                                               "body": json.dumps(bundle)})
    other = SimpleNamespace(attributes={}, filename="_static/x.js")
    context = {"script_files": [other, state_script],
               "body": f"<p>text</p>{_view('box')}<p>live:</p>{_view('live')}"}
    pagespeed.slim_widgets(None, "chapters/x", "page.html", context, None)
    assert context["script_files"] == [other]  # nothing left in <head>
    body = context["body"]
    assert body.startswith("<p>text</p>") and _view("box") in body and _view("live") not in body
    saved = json.loads(body.split(f'<script type="{pagespeed.WIDGET_STATE}">')[1]
                       .split("</script>")[0])
    assert set(saved["state"]) == {"box", "dd", "stack", "html", "lay", "link"}
    assert "a big PNG" not in body
