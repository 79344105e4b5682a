"""The built site as a reader sees it: every page in headless Chromium, offline.

The site is served on 127.0.0.1 and every request to any other host is
blocked, so the test proves that math, widgets and images need no internet.
It uses Debian's Chromium (``apt-get install chromium``, which `.ci/run`
does); Playwright's own browser download is never used.

Every page is also checked for accessibility with axe-core (WCAG 2.0 and 2.1,
levels A and AA; fetched by scripts/fetch_vendor.sh into _vendor/): no serious
or critical violation. The counts per page land in _build/axe/. Solutions,
widgets and self-checks are used with the keyboard, and every figure must have
a number, a caption and alt text that describes it.
"""

import functools
import http.server
import json
import re
import shutil
import threading
from pathlib import Path

import pytest
import yaml

from book_helpers import HTML_DIR, ROOT, chapter_docs

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOTS = ROOT / "_build" / "screenshots"
AXE_JS = ROOT / "_vendor" / "axe-core" / "axe.min.js"
AXE_REPORTS = ROOT / "_build" / "axe"
FIGURE_REPORTS = ROOT / "_build" / "figures"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
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


class LocalSite(http.server.ThreadingHTTPServer):
    """The built site on loopback, for Chromium.

    Its handler answers one request per connection, so a page opens a connection
    for each of its ~35 files, six at a time. With the socket module's default
    queue of 5 pending connections, a busy test process can leave a connection
    unaccepted; the kernel then drops it and Chromium retries after 1, 3, 7, ...
    s. That is the likeliest cause of the page that did not paint in 60 s in a
    CI run (2026-12-05); it did not recur here in 84 loads beside four busy loops.
    """
    request_queue_size = 128


@pytest.fixture(scope="module")
def site(built_book):
    assert built_book.returncode == 0, "the book did not build"
    handler = functools.partial(_QuietHandler, directory=str(HTML_DIR))
    server = LocalSite(("127.0.0.1", 0), handler)
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


def block_offsite(page, base: str) -> list[str]:
    """Let ``page`` load only URLs under ``base``; the list collects the blocked ones."""
    blocked: list[str] = []

    def offline(route):
        if route.request.url.startswith(base):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page.route("**/*", offline)
    return blocked


def open_page(browser, url, base):
    """Open ``url`` offline; return the page, console errors, failed and blocked requests."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors, failed = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
    blocked = block_offsite(page, base)
    page.goto(url, wait_until="networkidle")
    # MathJax loads deferred and typesets asynchronously: wait until it is done.
    page.evaluate(MATHJAX_DONE)
    load_lazy_images(page)
    return page, errors, failed, blocked


# Figures load lazily (_ext/pagespeed.py): a reader's scrolling fetches them.
# Tests that look at every figure of a page fetch them all, as printing does.
LAZY_IMAGES_LOADED = """async () => {
  const lazy = [...document.images].filter(i => i.loading === 'lazy');
  lazy.forEach(i => { i.loading = 'eager'; });
  await Promise.all(lazy.map(i => i.complete ? null : new Promise(done => {
    i.addEventListener('load', done); i.addEventListener('error', done);
    setTimeout(done, 30000);
  })));
  return lazy.length;
}"""


def load_lazy_images(page) -> int:
    """Fetch every lazily loaded image of ``page`` now; return how many there were."""
    return page.evaluate(LAZY_IMAGES_LOADED)


MATHJAX_DONE = """async () => {
  if (!document.querySelector('.math')) return;
  for (let i = 0; i < 300 && !(window.MathJax && MathJax.startup
                               && MathJax.startup.promise); i++)
    await new Promise(r => setTimeout(r, 100));
  await MathJax.startup.promise;
}"""


def all_docs() -> list[str]:
    """Every page of the table of contents, in order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]


PAGES = [doc for doc in all_docs() if doc not in chapter_docs()]


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
        check_accessibility(page, doc)
    finally:
        page.close()


def check_accessibility(page, doc, reports: Path = AXE_REPORTS, mode: str = "light"):
    """axe-core with the WCAG 2.0/2.1 A and AA rules: no serious or critical violation."""
    assert AXE_JS.is_file(), "axe-core is missing: run scripts/fetch_vendor.sh (make does)"
    page.add_script_tag(path=str(AXE_JS))
    result = page.evaluate("""tags => axe.run(document, {
        runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})""", WCAG_TAGS)
    violations = [{"rule": v["id"], "impact": v["impact"], "nodes": len(v["nodes"]),
                   "targets": [n["target"] for n in v["nodes"]][:5]}
                  for v in result["violations"]]
    reports.mkdir(parents=True, exist_ok=True)
    (reports / f"{doc.replace('/', '_')}.json").write_text(json.dumps(violations, indent=1))
    severe = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert severe == [], f"accessibility violations on {doc} ({mode} mode): {severe}"


def check_chapter(page, doc):
    # The solution starts folded, and the keyboard opens it (Tab to it, then Enter).
    solution = page.locator(".solution.dropdown").first
    assert solution.count() == 1
    body = solution.locator("> :not(.admonition-title)").first
    assert not body.is_visible(), f"solution of {doc} is open before a click"
    toggle = solution.locator(".toggle-button").first
    toggle.focus()
    assert toggle.evaluate("b => document.activeElement === b"), f"{doc}: toggle not focusable"
    page.keyboard.press("Enter")
    page.wait_for_timeout(300)
    assert body.is_visible(), f"solution of {doc} did not open with the keyboard"
    # Every widget control can take the keyboard's focus.
    # (Only the controls a reader can see: the kernel-only panel is hidden here.)
    unfocusable = page.evaluate("""[...document.querySelectorAll(
        '.jupyter-widgets input, .jupyter-widgets select, .jupyter-widgets button,'
        + ' .jupyter-widgets textarea')].filter(e => e.offsetParent !== null)
        .filter(e => { e.focus();
        return document.activeElement !== e && !e.disabled; }).map(e => e.outerHTML)""")
    assert unfocusable == [], f"widget controls on {doc} that the keyboard cannot reach"
    # The widget shows its default state: rendered controls with values in them.
    widgets = page.locator(".jupyter-widgets")
    assert widgets.count() > 0, f"no widget rendered on {doc}"
    values = page.evaluate("[...document.querySelectorAll('.jupyter-widgets input,"
                           " .jupyter-widgets select')].filter(e => e.offsetParent !== null)"
                           ".map(e => e.value)")
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


def _exercise_number(doc: str) -> int:
    return int(re.search(r"ex(\d)_", doc).group(1))


@pytest.mark.parametrize("doc", chapter_docs())
def test_selfcheck_in_a_browser(browser, site, doc):
    """The chapter's self-check works offline: right, off by a unit factor, wrong."""
    from dmlbook import selfcheck

    check = selfcheck.for_exercise(_exercise_number(doc))
    page, errors, _, _ = open_page(browser, f"{site}/{doc}.html", site)
    try:
        form = page.locator(f"form#{check.check_id}")
        assert form.count() == 1, f"no self-check on {doc}"
        feedback = form.locator("[role=status]")

        def verdict():
            page.wait_for_timeout(50)
            return form.get_attribute("data-verdict"), feedback.inner_text()

        if isinstance(check.logic, selfcheck.NumericCheck):
            answer = check.logic.answer
            box = form.locator("input")
            for typed, expected in [(f"{answer:,.2f}", "right"), (f"{answer * 8:.2f}", "off"),
                                    (f"{answer * 1.37:.2f}", "wrong"), ("twelve", "invalid")]:
                box.fill(typed)
                box.press("Enter")  # the keyboard submits the form
                got, text = verdict()
                assert got == expected, f"{doc}: typed {typed!r}, got {got} ({text!r})"
                assert (got, text) == check.logic.feedback(typed), "script and Python differ"
        else:
            options = check.logic.options
            right = next(i for i, (_, correct, _) in enumerate(options) if correct)
            wrong = (right + 1) % len(options)
            for index, expected in [(wrong, "wrong"), (right, "right")]:
                form.locator(f"input[value='{index}']").check()
                form.locator("button").focus()
                page.keyboard.press("Enter")
                got, text = verdict()
                assert (got, text) == check.logic.feedback(index) and got == expected, doc
        assert errors == [], f"console errors on {doc}: {errors}"
    finally:
        page.close()


# For each image of the page's article: its caption, number and alt text, and a
# hash of its pixels, so that one figure shown twice is found even when one copy
# is a file and the other a data URL (a widget's static view).
FIGURES_JS = """() => {
  const article = document.querySelector('article.bd-article') || document.body;
  function pixels(img) {
    try {
      const canvas = document.createElement('canvas');
      canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
      canvas.getContext('2d').drawImage(img, 0, 0);
      const data = canvas.toDataURL('image/png');
      let h = 0;
      for (let i = 0; i < data.length; i++) h = (h * 31 + data.charCodeAt(i)) | 0;
      return img.naturalWidth + 'x' + img.naturalHeight + ':' + h;
    } catch (e) { return img.currentSrc; }
  }
  // Images a reader can see: the kernel-only panel is hidden on the static site.
  return [...article.querySelectorAll('img')].filter(img => img.offsetParent !== null)
      .map(img => {
    const figure = img.closest('figure');
    const caption = figure && figure.querySelector('figcaption');
    return {src: img.getAttribute('src') || '', alt: img.getAttribute('alt'),
            pixels: pixels(img), panel: !!img.closest('.jupyter-widgets'),
            number: !!(caption && caption.querySelector('.caption-number')),
            caption: caption ? (caption.innerText || caption.textContent).trim() : ''};
  });
}"""
PATH_LIKE = re.compile(r"(^|[\\/])[^ ]*\.(png|jpe?g|svg|gif)$|_build|jupyter_execute", re.I)


@pytest.mark.parametrize("doc", all_docs())
def test_figures_are_numbered_captioned_and_described(browser, site, doc):
    """Every figure has a number, a caption and alt text that is not a file path; none twice."""
    page, _, _, _ = open_page(browser, f"{site}/{doc}.html", site)
    try:
        images = page.evaluate(FIGURES_JS)
    finally:
        page.close()
    problems = []
    for i, img in enumerate(images, 1):
        name = f"image {i} ({img['caption'][:40] or img['src'][-40:]!r})"
        # A "Try it" panel's picture changes with its controls: it is described by
        # its alt text and the panel's table, not numbered like the chapter's figures.
        if not img["panel"] and (not img["number"] or not img["caption"]):
            problems.append(f"{name}: no numbered caption")
        alt = (img["alt"] or "").strip()
        if len(alt) < 10 or PATH_LIKE.search(alt):
            problems.append(f"{name}: alt text {alt!r} does not describe it")
    hashes = [img["pixels"] for img in images]
    duplicates = [i for i, h in enumerate(hashes, 1) if hashes.count(h) > 1]
    if duplicates:
        problems.append(f"the same picture shown more than once: images {duplicates}")
    FIGURE_REPORTS.mkdir(parents=True, exist_ok=True)
    (FIGURE_REPORTS / f"{doc.replace('/', '_')}.json").write_text(json.dumps(
        {"images": len(images), "numbered_and_captioned": sum(
            bool(img["number"] and img["caption"]) for img in images),
         "problems": problems}, indent=1))
    assert problems == [], f"figures on {doc}: {problems}"
