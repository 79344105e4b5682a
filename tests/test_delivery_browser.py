"""The built site as readers meet it: a phone, dark mode, a slow link, print (issue 25).

In headless Chromium, offline, against the built book (the fixture the other book
tests use):

- at 390 px with touch, tapping ☰ opens the book's navigation and tapping
  "On this page" the page's contents; at 1280 px ☰ collapses the sidebar;
- axe-core (WCAG 2.0/2.1 A and AA) finds no serious or critical violation on
  any page in dark mode (tests/test_browser.py checks light mode);
- every chapter paints its first content within 1.5 s over a 10 Mbit/s link
  (Chrome's network emulation; the numbers land in _build/first_paint.json);
- figures below the first screen load as the reader scrolls to them, and
  printing loads them all;
- every figure is rendered at two or more device pixels per CSS pixel and shown
  at 90 % or more of its size at 1280 px (its 8-point text stays at 10 CSS px);
- the explorers fit a phone (label above its control) and align their controls;
- the week table fits at 1280 px and on a phone;
- printing wraps code and outputs and drops controls and forms;
- screenshots of every page at 390 and 1280 px, light and dark, in
  _build/screenshots/delivery/.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from book_helpers import ROOT, chapter_docs, page_html
from test_browser import (CHROMIUM, MATHJAX_DONE, all_docs, block_offsite, browser,  # noqa: F401
                          check_accessibility, load_lazy_images, site)  # noqa: F401 - fixtures

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium: install Debian's package (apt-get install chromium) "
           "to run the browser test; .ci/run does this")

SHOTS = ROOT / "_build" / "screenshots" / "delivery"
AXE_DARK = ROOT / "_build" / "axe-dark"
FIRST_PAINT = ROOT / "_build" / "first_paint.json"
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 900}
# 10 Mbit/s down, 5 up, 40 ms round trip: a phone on a fair mobile link.
LINK = {"offline": False, "latency": 40, "downloadThroughput": 10e6 / 8,
        "uploadThroughput": 5e6 / 8}
FIRST_PAINT_BUDGET_S = 1.5
MIN_DEVICE_PIXELS = 2.0   # per CSS pixel, for every figure
MIN_SHOWN_FRACTION = 0.9  # of a figure's 100-dpi size, at 1280 px


def _open(browser, url, base, *, viewport=LAPTOP, dark=False, touch=False):
    context = browser.new_context(viewport=viewport, has_touch=touch, is_mobile=touch,
                                  color_scheme="dark" if dark else "light")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    blocked = block_offsite(page, base)
    page.goto(url, wait_until="networkidle")
    page.evaluate(MATHJAX_DONE)
    load_lazy_images(page)
    page.errors, page.blocked = errors, blocked
    return page


def _theme(page) -> str:
    return page.evaluate("document.documentElement.dataset.theme")


def _visible_toggle(page, selector):
    toggles = page.locator(selector)
    for i in range(toggles.count()):
        if toggles.nth(i).is_visible():
            return toggles.nth(i)
    raise AssertionError(f"no visible {selector}")


@pytest.mark.parametrize("doc", ["intro", chapter_docs()[0]])
def test_phone_menu_and_contents_open_when_tapped(browser, site, doc):
    page = _open(browser, f"{site}/{doc}.html", site, viewport=PHONE, touch=True)
    try:
        _visible_toggle(page, ".primary-toggle").tap()
        dialog = page.locator("#pst-primary-sidebar-modal")
        dialog.wait_for(state="visible", timeout=3000)
        hrefs = dialog.evaluate("d => [...d.querySelectorAll('a.reference')].map(a => a.href)")
        assert sum("/chapters/" in h for h in hrefs) >= 6, "the menu does not list the chapters"
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"menu_{Path(doc).name}_390.png"))
        page.keyboard.press("Escape")
        dialog.wait_for(state="hidden", timeout=3000)
        if doc != "intro":
            _visible_toggle(page, ".secondary-toggle").tap()
            contents = page.locator("#pst-secondary-sidebar-modal")
            contents.wait_for(state="visible", timeout=3000)
            assert contents.locator("a").count() >= 3, "'On this page' lists no sections"
            page.screenshot(path=str(SHOTS / f"contents_{Path(doc).name}_390.png"))
            page.keyboard.press("Escape")
        assert page.errors == [] and page.blocked == []
    finally:
        page.context.close()


def test_laptop_menu_collapses_the_sidebar(browser, site):
    page = _open(browser, f"{site}/{chapter_docs()[0]}.html", site)
    try:
        sidebar = page.locator("#pst-primary-sidebar")
        assert sidebar.is_visible()
        _visible_toggle(page, ".primary-toggle").click()
        page.wait_for_timeout(600)
        assert not sidebar.is_visible() or sidebar.evaluate(
            "s => getComputedStyle(s).visibility === 'hidden'"), "☰ did not collapse the sidebar"
        _visible_toggle(page, ".primary-toggle").click()
        page.wait_for_timeout(600)
        assert sidebar.evaluate("s => getComputedStyle(s).visibility !== 'hidden'")
    finally:
        page.context.close()


def test_intro_lists_the_chapters_workbook_and_week(browser, site):
    page = _open(browser, f"{site}/intro.html", site, viewport=PHONE, touch=True)
    try:
        hrefs = page.evaluate("[...document.querySelectorAll('article a')]"
                              ".map(a => a.getAttribute('href'))")
        for doc in chapter_docs() + ["week"]:
            assert any(h and h.split("#")[0].endswith(f"{doc}.html") for h in hrefs), doc
        assert any(h and "workbook/" in h for h in hrefs), "no link to the workbook"
    finally:
        page.context.close()


@pytest.mark.parametrize("doc", all_docs())
def test_page_in_dark_mode_has_no_serious_accessibility_violation(browser, site, doc):
    page = _open(browser, f"{site}/{doc}.html", site, dark=True)
    try:
        assert _theme(page) == "dark", "the theme did not follow the dark colour scheme"
        check_accessibility(page, doc, AXE_DARK, "dark")
        # Outputs, self-checks and explorers have their own dark colours.
        light = page.evaluate("""() => [...document.querySelectorAll(
            '.dmlbook-explorer, form.dmlbook-selfcheck, .cell_output .output')]
            .filter(e => e.offsetParent !== null).map(e => {
              const c = getComputedStyle(e).backgroundColor.match(/\\d+(\\.\\d+)?/g).map(Number);
              return (c.length < 4 || c[3] > 0) && c[0] + c[1] + c[2] > 600 ? e.className : null;
            }).filter(Boolean)""")
        assert light == [], f"{doc}: light boxes on the dark page: {light[:5]}"
    finally:
        page.context.close()


def _first_paint_s(browser, url, base) -> float:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    block_offsite(page, base)
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    cdp.send("Network.emulateNetworkConditions", LINK)
    try:
        page.goto(url, wait_until="commit", timeout=120_000)
        try:
            page.wait_for_function("performance.getEntriesByName('first-contentful-paint')"
                                   ".length > 0", timeout=STALL_S * 1000, polling=50)
        except PlaywrightTimeout:
            # Say what the page was waiting for: a page that never paints is a failure.
            raise Stalled(f"{url}: no first paint in {STALL_S} s: "
                          f"{page.evaluate(STALLED_JS)}") from None
        return page.evaluate("performance.getEntriesByName('first-contentful-paint')[0]"
                             ".startTime") / 1000
    finally:
        context.close()


STALL_S = 30
# Twice in five fresh-clone runs (CI once, here once, 2026-12-05) one load of the
# hundreds the test makes fetched nothing at all in 60 s: every stylesheet of
# the page pending, no resource loaded, the document still loading. That is
# the test's plumbing (route interception beside CDP's network emulation), not
# the page, whose other loads painted in about 1 s. In a loop of 560 loads beside
# load 5 to 11 (session 12), one stalled the same way with 4 files fetched. A load
# that stalls is made again, at most MAX_STALLS times a test; each stall is recorded.
MAX_STALLS = 3


class Stalled(AssertionError):
    """A load that painted nothing within STALL_S seconds."""


STALLED_JS = """() => ({state: document.readyState,
  loaded: performance.getEntriesByType('resource').map(r => r.name.split('/').pop()),
  stylesheets: [...document.querySelectorAll('link[rel=stylesheet]')]
    .map(l => l.href.split('/').pop() + (l.sheet ? '' : ' (pending)'))})"""


def test_every_chapter_paints_within_budget_on_a_slow_link(browser, site):
    measured, stalls = {}, []
    for doc in chapter_docs() + ["intro"]:
        loads = []
        while len(loads) < 3:  # the best of three: load adds to a paint, never takes from it
            try:
                loads.append(_first_paint_s(browser, f"{site}/{doc}.html", site))
            except Stalled as stall:
                # A stalled load is made again; a page that never paints stalls every
                # time, and fails once MAX_STALLS loads of the run have stalled.
                stalls.append(str(stall))
                assert len(stalls) <= MAX_STALLS, f"loads that painted nothing: {stalls}"
        measured[doc] = round(min(loads), 3)
    FIRST_PAINT.parent.mkdir(parents=True, exist_ok=True)
    FIRST_PAINT.write_text(json.dumps({"link": LINK, "first_contentful_paint_s": measured,
                                       "stalled_loads": stalls}, indent=1))
    slow = {d: t for d, t in measured.items() if t > FIRST_PAINT_BUDGET_S}
    assert slow == {}, f"first paint over {FIRST_PAINT_BUDGET_S} s at 10 Mbit/s: {slow}"


LAZY_FIGURES_JS = """() => [...document.querySelectorAll('article img[loading=lazy]')]
  .filter(i => i.offsetParent !== null).map(i => i.complete && i.naturalWidth > 0)"""


def _most_figures() -> str:
    return max(chapter_docs(), key=lambda d: page_html(d).count('<img loading="lazy"'))


def test_figures_load_as_the_reader_scrolls_and_all_of_them_print(browser, site):
    """Figures below the first screen wait for the reader (_ext/pagespeed.py)."""
    url = f"{site}/{_most_figures()}.html"
    context = browser.new_context(viewport=PHONE)
    try:
        page = context.new_page()
        block_offsite(page, site)
        page.goto(url, wait_until="networkidle")
        loaded = page.evaluate(LAZY_FIGURES_JS)
        assert len(loaded) >= 3 and not loaded[-1], \
            f"the last figure loaded before the reader scrolled to it: {loaded}"
        page.locator("article img[loading=lazy]").last.scroll_into_view_if_needed()
        page.wait_for_function(f"() => ({LAZY_FIGURES_JS})().pop()", timeout=30_000)
        # Printing fetches every figure, scrolled to or not.
        printed = context.new_page()
        block_offsite(printed, site)
        printed.goto(url, wait_until="networkidle")
        assert not all(printed.evaluate(LAZY_FIGURES_JS))
        printed.pdf()
        assert all(printed.evaluate(LAZY_FIGURES_JS)), "a figure is missing from the print"
    finally:
        context.close()


FIGURE_SIZES_JS = """() => [...document.querySelectorAll('article.bd-article img')]
  .filter(img => img.offsetParent !== null && !/\\.svg(\\?|$)/.test(img.currentSrc))
  .map(img => ({src: (img.getAttribute('src') || '').slice(0, 60),
                natural: img.naturalWidth, shown: img.getBoundingClientRect().width,
                declared: Number(img.getAttribute('width')) || null}))"""


@pytest.mark.parametrize("doc", all_docs())
def test_figures_are_sharp_and_readable(browser, site, doc):
    page = _open(browser, f"{site}/{doc}.html", site)
    try:
        images = page.evaluate(FIGURE_SIZES_JS)
    finally:
        page.context.close()
    problems = []
    for img in images:
        # The figure's size at 100 dpi: the width the page declares for it (half its pixels).
        size = img["declared"] or img["natural"] / MIN_DEVICE_PIXELS
        if img["natural"] < MIN_DEVICE_PIXELS * img["shown"] - 1:
            problems.append(f"{img['src']}: {img['natural']} px shown at {img['shown']:.0f}")
        if img["shown"] < MIN_SHOWN_FRACTION * size - 1:
            problems.append(f"{img['src']}: shown at {img['shown']:.0f} of {size:.0f} CSS px")
    assert problems == [], f"figures on {doc}: {problems}"


EXPLORER_LAYOUT_JS = """() => [...document.querySelectorAll('.dmlbook-explorer')].map(e => {
  const rows = [...e.querySelectorAll('.widget-dropdown')].map(d => {
    const l = d.querySelector('label').getBoundingClientRect();
    const s = d.querySelector('select').getBoundingClientRect();
    return {labelBottom: l.bottom, labelRight: l.right, selectTop: s.top, selectLeft: s.left,
            selectWidth: s.width};
  });
  return {rows, right: e.getBoundingClientRect().right,
          overflow: e.scrollWidth > e.clientWidth + 8};
})"""


@pytest.mark.parametrize("doc", chapter_docs())
def test_explorers_fit_a_phone_and_align_on_a_laptop(browser, site, doc):
    page = _open(browser, f"{site}/{doc}.html", site, viewport=PHONE, touch=True)
    try:
        for explorer in page.evaluate(EXPLORER_LAYOUT_JS):
            assert not explorer["overflow"] and explorer["right"] <= PHONE["width"]
            for row in explorer["rows"]:
                assert row["labelBottom"] <= row["selectTop"] + 1, "label beside its control"
                assert row["selectWidth"] >= 250, f"a squeezed control: {row}"
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    finally:
        page.context.close()
    page = _open(browser, f"{site}/{doc}.html", site)
    try:
        for explorer in page.evaluate(EXPLORER_LAYOUT_JS):
            lefts = {round(r["selectLeft"]) for r in explorer["rows"]}
            assert len(lefts) == 1, f"{doc}: the explorer's controls are not aligned: {lefts}"
    finally:
        page.context.close()


TABLE_FIT_JS = """() => [...document.querySelectorAll('article.bd-article table')].map(t => {
  const box = t.closest('.pst-scrollable-table-container, .table-wrapper') || t.parentElement;
  const cells = [...t.querySelectorAll('td')].map(c => c.getBoundingClientRect().width);
  return {width: t.getBoundingClientRect().width, room: box.clientWidth,
          narrowest: Math.min(...cells), height: t.getBoundingClientRect().height};
})"""


def test_week_table_fits_a_laptop_and_reads_on_a_phone(browser, site):
    page = _open(browser, f"{site}/week.html", site)
    try:
        tables = page.evaluate(TABLE_FIT_JS)
        assert tables, "no table on the week page"
        for t in tables:
            assert t["width"] <= t["room"] + 1, f"a table wider than the page at 1280 px: {t}"
    finally:
        page.context.close()
    page = _open(browser, f"{site}/week.html", site, viewport=PHONE, touch=True)
    try:
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        for t in page.evaluate(TABLE_FIT_JS):
            assert t["width"] <= t["room"] + 1 and t["narrowest"] >= 120, \
                f"a table a phone cannot read: {t}"
    finally:
        page.context.close()


def test_print_wraps_code_and_drops_controls(browser, site):
    page = _open(browser, f"{site}/{chapter_docs()[0]}.html", site)
    try:
        page.emulate_media(media="print")
        shown = page.evaluate("""() => ({
          controls: [...document.querySelectorAll(
              'article select, article button, article input, article form')]
              .filter(e => e.offsetParent !== null).length,
          unwrapped: [...document.querySelectorAll('article pre')]
              .filter(p => !getComputedStyle(p).whiteSpace.startsWith('pre-wrap')).length,
          overflowing: [...document.querySelectorAll('article pre')]
              .filter(p => p.scrollWidth > p.clientWidth + 1).length})""")
        assert shown == {"controls": 0, "unwrapped": 0, "overflowing": 0}, shown
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.pdf(path=str(SHOTS / "print_ex1.pdf"))
    finally:
        page.context.close()


@pytest.mark.parametrize("doc", all_docs())
def test_screenshots_of_every_page(browser, site, doc):
    """Every page at 390 and 1280 px, light and dark, for a person to look at."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for viewport in (PHONE, LAPTOP):
        for dark in (False, True):
            page = _open(browser, f"{site}/{doc}.html", site, viewport=viewport, dark=dark,
                         touch=viewport is PHONE)
            try:
                page.wait_for_timeout(300)
                name = f"{doc.replace('/', '_')}_{viewport['width']}_{_theme(page)}.png"
                page.screenshot(path=str(SHOTS / name), full_page=True)
                assert page.errors == [], page.errors
                assert page.evaluate("document.documentElement.scrollWidth") <= \
                    viewport["width"], f"{doc} scrolls sideways at {viewport['width']} px"
            finally:
                page.context.close()
