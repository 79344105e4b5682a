"""The built site as a reader sees it: every page in headless Chromium, offline.

The site is served on 127.0.0.1 and every request to any other host is
blocked, so the test proves that math, widgets and images need no internet.
It uses Debian's Chromium (``apt-get install chromium``, which `.ci/run`
does); Playwright's own browser download is never used.
"""

import functools
import http.server
import shutil
import threading
from pathlib import Path

import pytest

from book_helpers import HTML_DIR, ROOT, chapter_docs

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOTS = ROOT / "_build" / "screenshots"
# The flags this workplace's closed network needs (no background connections).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium: install Debian's package (apt-get install chromium) "
           "to run the browser test; .ci/run does this")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site(built_book):
    assert built_book.returncode == 0, "the book did not build"
    handler = functools.partial(_QuietHandler, directory=str(HTML_DIR))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def open_page(browser, url, base):
    """Open ``url`` offline; return the page, console errors, failed and blocked requests."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors, failed, blocked = [], [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)

    def offline(route):
        if route.request.url.startswith(base):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page.route("**/*", offline)
    page.goto(url, wait_until="networkidle")
    # MathJax loads deferred and typesets asynchronously: wait until it is done.
    page.evaluate(MATHJAX_DONE)
    return page, errors, failed, blocked


MATHJAX_DONE = """async () => {
  if (!document.querySelector('.math')) return;
  for (let i = 0; i < 300 && !(window.MathJax && MathJax.startup
                               && MathJax.startup.promise); i++)
    await new Promise(r => setTimeout(r, 100));
  await MathJax.startup.promise;
}"""


PAGES = ["intro", "bibliography", "status"]


@pytest.mark.parametrize("doc", PAGES + chapter_docs())
def test_page_in_a_browser(browser, site, doc):
    page, errors, failed, blocked = open_page(browser, f"{site}/{doc}.html", site)
    try:
        assert errors == [], f"console errors on {doc}: {errors}"
        assert failed == [], f"failed requests on {doc}: {failed}"
        assert blocked == [], f"{doc} tried to reach the internet: {blocked}"
        # Every image loaded.
        broken = page.evaluate("[...document.images].filter(i => !i.complete"
                               " || i.naturalWidth === 0).map(i => i.src)")
        assert broken == [], f"images not loaded on {doc}: {broken}"
        # Math was typeset by MathJax wherever the page has math.
        has_math = page.locator(".math").count() > 0
        if has_math:
            assert page.locator("mjx-container").count() > 0, f"math not rendered on {doc}"
            assert page.locator("mjx-merror").count() == 0, f"MathJax errors on {doc}"
        if doc.startswith("chapters/"):
            check_chapter(page, doc)
    finally:
        page.close()


def check_chapter(page, doc):
    # The solution starts folded, and a click opens it.
    solution = page.locator(".solution.dropdown").first
    assert solution.count() == 1
    body = solution.locator("> :not(.admonition-title)").first
    assert not body.is_visible(), f"solution of {doc} is open before a click"
    solution.locator(".toggle-button").first.click()
    page.wait_for_timeout(300)
    assert body.is_visible(), f"solution of {doc} did not open on a click"
    # The widget shows its default state: rendered controls with values in them.
    widgets = page.locator(".jupyter-widgets")
    assert widgets.count() > 0, f"no widget rendered on {doc}"
    values = page.evaluate("[...document.querySelectorAll('.jupyter-widgets input,"
                           " .jupyter-widgets select')].map(e => e.value)")
    assert values and all(v != "" for v in values), f"empty widget controls on {doc}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{Path(doc).name}.png"), full_page=True)


def test_downloads_are_offered(site, built_book):
    """Every chapter offers its executed notebook and its MyST source."""
    import json

    for doc in chapter_docs():
        html = (HTML_DIR / f"{doc}.html").read_text(encoding="utf-8")
        name = Path(doc).name
        assert f"_sources/chapters/{name}.ipynb" in html and f"_sources/chapters/{name}.md" in html
        nb = json.loads((HTML_DIR / "_sources" / "chapters" / f"{name}.ipynb").read_text())
        outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c["outputs"]]
        assert any("image/png" in o.get("data", {}) for o in outputs), f"{name}.ipynb not executed"
        assert (HTML_DIR / "_sources" / "chapters" / f"{name}.md").is_file()
