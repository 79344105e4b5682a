"""The book's glued numbers in a live kernel (JupyterLab, Binder).

The book fills ``{glue:text}`name:fmt``` and its kin from the values a chapter
glues (``myst_nb.glue``) when the book is built. JupyterLab's MyST renderer
(jupyterlab-myst) knows no glue; it evaluates inline ``{eval}`` expressions in
the kernel instead. So the notebook view (:mod:`dmlbook.labview`) shows each glue
role as ``{eval}`glued("name", "fmt")```, and here, in the kernel, every value
that a cell glues is recorded as it is displayed; :func:`glued` formats it as
myst-nb does. Installed when ``dmlbook`` is imported in IPython.
"""

from __future__ import annotations

from typing import Any

GLUE_PREFIX = "application/papermill.record/"
KINDS = ("text", "md", "math")
# A text cell above the cell that glues its number: Run All reaches the text first.
NOT_YET = "(computed by a cell further down: run this text cell again)"
_values: dict[str, dict[str, Any]] = {}


def record(data: dict, metadata: dict | None) -> None:
    """Keep the mime bundle of a glued value (``myst_nb.glue`` marks it ``scrapbook``)."""
    scrap = (metadata or {}).get("scrapbook")
    if not isinstance(scrap, dict) or not isinstance(scrap.get("name"), str):
        return
    prefix = scrap.get("mime_prefix") or ""
    _values[scrap["name"]] = {key[len(prefix):]: value for key, value in (data or {}).items()
                              if key.startswith(prefix)}


def install(shell=None) -> bool:
    """Record glued values in this IPython kernel; False outside IPython. Idempotent."""
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:  # pragma: no cover - IPython comes with the kernel
            return False
        shell = get_ipython()
    publisher = getattr(shell, "display_pub", None)
    if publisher is None:
        return False
    if getattr(publisher, "_dmlbook_glue", False):
        return True
    publish = publisher.publish

    def publish_and_record(data, metadata=None, *args, **kwargs):
        record(data, metadata)
        return publish(data, metadata, *args, **kwargs)

    publisher.publish = publish_and_record
    publisher._dmlbook_glue = True
    # jupyterlab-myst evaluates {eval} expressions in the user's namespace.
    getattr(shell, "user_ns", {}).setdefault("glued", glued)
    return True


class Shown:
    """What an ``{eval}`` expression shows: plain text, Markdown or LaTeX."""

    def __init__(self, text: str, kind: str = "text"):
        self.text, self.kind = text, kind

    def __repr__(self) -> str:
        return self.text

    def _repr_markdown_(self):
        return self.text if self.kind == "md" else None

    def _repr_latex_(self):
        return self.text if self.kind == "math" else None


def glued(name: str, fmt: str = "", kind: str = "text") -> Shown:
    """The value glued as ``name``, formatted as the book shows it (``fmt``: a format spec)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be the non-empty name of a glued value, got {name!r}")
    data = _values.get(name)
    if data is None:
        return Shown(NOT_YET)
    if kind == "md" and "text/markdown" in data:
        return Shown(data["text/markdown"], "md")
    if kind == "math" and "text/latex" in data:
        return Shown(data["text/latex"], "math")
    from myst_nb.core.variables import format_plain_text

    return Shown(format_plain_text(data.get("text/plain", ""), fmt or "s"))
