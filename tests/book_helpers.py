"""Building the book once per test session, and reading its HTML as text."""

from __future__ import annotations

import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
HTML_DIR = ROOT / "_build" / "html"


def jupyter_book() -> str:
    return str(Path(sys.executable).with_name("jupyter-book"))


def build_book() -> subprocess.CompletedProcess:
    """A cold build of the whole book, exactly as `make book` runs it."""
    return subprocess.run(
        [jupyter_book(), "build", str(ROOT), "--all", "-W", "-n", "--keep-going"],
        cwd=ROOT, capture_output=True, text=True, timeout=900)


def chapter_docs() -> list[str]:
    """Document names of the chapters, in table-of-contents order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [c["file"] for part in toc["parts"] for c in part["chapters"]
            if c["file"].startswith("chapters/")]


class _Text(HTMLParser):
    SKIP = {"script", "style"}

    def __init__(self):
        super().__init__()
        self.parts, self._skip = [], 0

    def handle_starttag(self, tag, attrs):
        self._skip += tag in self.SKIP

    def handle_endtag(self, tag):
        self._skip -= tag in self.SKIP and self._skip > 0

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def page_text(doc: str) -> str:
    """The visible text of a built page, whitespace collapsed."""
    parser = _Text()
    parser.feed((HTML_DIR / f"{doc}.html").read_text(encoding="utf-8"))
    return re.sub(r"\s+", " ", " ".join(parser.parts))


def page_html(doc: str) -> str:
    return (HTML_DIR / f"{doc}.html").read_text(encoding="utf-8")


def page_widget_state(doc: str) -> dict:
    """The widget state a built page loads: its static explorers' models.

    _ext/pagespeed.py writes it beside the page as ``<page>.widgets.js``, a
    script that hands the manager the JSON; the page's loader names the file.
    """
    sys.path.insert(0, str(ROOT / "_ext"))
    import pagespeed  # Sphinx's extension folder, added above

    loader = re.search(r'\["([^"?]+\.widgets\.js)\?v=\w+"', page_html(doc))
    assert loader, f"{doc} loads no widget state (no static explorer)"
    script = (HTML_DIR / doc).parent.joinpath(loader.group(1)).read_text(encoding="utf-8")
    return pagespeed.read_state_script(script)
