"""Offline assets and small fixes to the pages' scripts.

Copies the fetched JavaScript (MathJax, widget manager) into the built site.

scripts/fetch_vendor.sh puts them in _vendor/. They are copied to
_static/vendor/ of the HTML output here, rather than listed in
html_static_path, because Jupyter Book adds every .js file found in a static
path to every page.
"""

from pathlib import Path

from sphinx.errors import ExtensionError
from sphinx.util.fileutil import copy_asset

REQUIRED = ("mathjax/es5/tex-chtml.js", "html-manager/dist/embed-amd.js",
            "requirejs/require.js")
# The folders of _vendor/ that the site serves; axe-core is for the test only.
SITE_FOLDERS = ("mathjax", "html-manager", "requirejs")


def _source(app) -> Path:
    return Path(app.srcdir) / "_vendor"


def check_assets(app):
    missing = [f for f in REQUIRED if not (_source(app) / f).is_file()]
    if missing and app.builder.format == "html":
        raise ExtensionError(
            f"missing offline assets {missing}: run scripts/fetch_vendor.sh (make does)")


def copy_assets(app, exception):
    if exception is None and app.builder.format == "html":
        out = Path(app.outdir)
        for folder in SITE_FOLDERS:
            copy_asset(str(_source(app) / folder), str(out / "_static" / "vendor" / folder))
        # Loaded through RequireJS, the widget manager asks for its icon fonts
        # at <page folder>/@jupyter-widgets/html-manager/dist/: put them there.
        fonts = [f for f in (_source(app) / "html-manager" / "dist").iterdir()
                 if f.suffix in {".woff", ".woff2", ".ttf", ".eot", ".svg"}]
        for folder in {page.parent for page in out.rglob("*.html")
                       if "_static" not in page.parts}:
            target = folder / "@jupyter-widgets" / "html-manager" / "dist"
            target.mkdir(parents=True, exist_ok=True)
            for font in fonts:
                copy_asset(str(font), str(target))




def drop_duplicate_scripts(app, pagename, templatename, context, doctree):
    """Keep one copy of each inline script.

    sphinx-thebe and sphinx-togglebutton register their inline configuration
    twice in a Jupyter Book build; the second ``const THEBE_JS_URL`` is a
    JavaScript error in every page.
    """
    seen, unique = set(), []
    for script in context.get("script_files", []):
        # Inline scripts come with filename None or "": the same thing.
        key = (str(getattr(script, "filename", script) or ""),
               tuple(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    # In place: later handlers (MathJax, myst-nb widgets) append to this same list.
    context["script_files"][:] = unique


# pydata-sphinx-theme reads the colour mode from localStorage or "" and logs a
# console error for "" (every first visit): start from "auto" instead.
DEFAULT_MODE = ('if (!document.documentElement.dataset.mode) '
                '{ document.documentElement.dataset.mode = "auto"; }')


# The widgets' HTML manager (1.x) typesets labels with MathJax 2's API,
# MathJax.Hub.Queue, which MathJax 3 lacks: every widget logged an error.
# Map it onto MathJax 3. Inline scripts run before the deferred MathJax file,
# so this extends Sphinx's MathJax configuration object.
MATHJAX2_SHIM = """(function () {
  var queue = function (job) {
    if (window.MathJax && MathJax.typesetPromise) {
      MathJax.typesetPromise(job && job[2] ? [job[2]] : undefined).catch(function () {});
    }
  };
  var mj = window.MathJax = window.MathJax || {};
  mj.Hub = {Queue: queue};
  mj.startup = mj.startup || {};
  mj.startup.ready = function () {
    MathJax.startup.defaultReady();
    MathJax.Hub = {Queue: queue};
  };
})();"""


def setup(app):
    app.add_js_file(None, body=DEFAULT_MODE, priority=1)
    app.add_js_file(None, body=MATHJAX2_SHIM, priority=900)
    app.connect("builder-inited", check_assets)
    app.connect("build-finished", copy_assets)
    # Early: html-page-context stops at the first handler that returns a template.
    app.connect("html-page-context", drop_duplicate_scripts, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
