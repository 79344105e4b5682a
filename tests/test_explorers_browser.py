"""The static explorers of the built site, in headless Chromium, offline, with no kernel.

On every chapter page each precomputed explorer's two dropdowns are changed,
with the keyboard and by choosing an option. The visible table and figure must
switch to the ones precomputed for that combination: the test recomputes them
with dmlbook directly (every combination of the calculators; the first switch of
each training explorer). The expected result is the one the selected options
NAME: the option's text is mapped to its grid value, so options whose labels no
longer match the results behind them fail. No console errors, and no request
leaves the site.
The book is built once per session by the fixture the other book tests use.
"""

from __future__ import annotations

import base64
import html
import io
import re
from pathlib import Path

import numpy as np
import pytest

from book_helpers import HTML_DIR, ROOT, chapter_docs
from dmlbook import explore
from dmlbook.sheet import EXERCISES
from test_browser import CHROMIUM, browser, open_page, site  # noqa: F401 - fixtures

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium: install Debian's package (apt-get install chromium) "
           "to run the browser test; .ci/run does this")

# Each chapter's explorers, in page order, from the exercise registry.
EXPLORERS = {e.chapter_name: list(e.panels) for e in EXERCISES}
SCREENSHOTS = ROOT / "_build" / "screenshots"


def _cells(leaf_html: str) -> list[str]:
    return [html.unescape(re.sub(r"<[^>]+>", "", c))
            for c in re.findall(r"<td>(.*?)</td>", leaf_html)]


def _expected(spec, i: int, j: int) -> tuple[str, str]:
    """``spec.evaluate`` of the grid point (i, j): what the explorer must show there."""
    (first, first_values), (second, second_values) = spec.grid.items()
    a = first_values[i]
    b = (second_values[a] if isinstance(second_values, dict) else second_values)[j]
    typed = {**spec.defaults(), first: a, second: b}
    typed = {k: (v if not hasattr(spec.control(k), "low") else str(v)) for k, v in typed.items()}
    return spec.evaluate(typed)


def _grid_point(spec, first_text: str, second_text: str) -> tuple[int, int]:
    """The grid indices of the values the two selected options NAME (not their positions).

    The labels are computed here from the spec, independently of the explorer, so
    an explorer whose options no longer match the results behind them fails.
    """
    (first, first_values), (second, second_values) = spec.grid.items()
    first_labels = [spec.control(first).format(v) for v in first_values]
    assert first_text in first_labels, f"{spec.key}: option {first_text!r} is no grid value"
    i = first_labels.index(first_text)
    if isinstance(second_values, dict):
        second_labels = list(spec.grid_labels[second])
    else:
        second_labels = [spec.control(second).format(v) for v in second_values]
    assert second_text in second_labels, f"{spec.key}: option {second_text!r} is no grid value"
    return i, second_labels.index(second_text)


def _selected(select) -> str:
    # ipywidgets writes an option's spaces as no-break spaces; the grid's labels have plain ones.
    return select.evaluate("s => s.options[s.selectedIndex].text").replace("\xa0", " ")


def _visible(explorer) -> dict:
    return explorer.evaluate("""e => {
      const shown = [...e.querySelectorAll('.dmlbook-result, .dmlbook-error')]
        .filter(x => x.offsetParent !== null && x.getBoundingClientRect().height > 0);
      if (shown.length !== 1) return {count: shown.length};
      const x = shown[0], img = x.querySelector('img');
      return {count: 1, error: x.classList.contains('dmlbook-error') ? x.textContent : null,
              cells: [...x.querySelectorAll('td')].map(td => td.textContent),
              src: img ? img.src : null, alt: img ? img.alt : null,
              loaded: img ? img.complete && img.naturalWidth > 0 : null};
    }""")


def _not_blank(src: str) -> bool:
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
                        .convert("L"))
    return pixels.std() > 10 and (pixels < 160).mean() > 0.002


def _check_shown(shown, spec, i, j, recompute: bool):
    assert shown["count"] == 1, f"{spec.key} ({i}, {j}): {shown['count']} results visible"
    if shown["error"] is None:
        assert shown["loaded"] and _not_blank(shown["src"]), f"{spec.key} ({i}, {j})"
        assert len(shown["alt"]) > 40, shown["alt"]  # the figure described in words
    if recompute:
        status, expected = _expected(spec, i, j)
        if status == "ok":
            assert shown["error"] is None and shown["cells"] == _cells(expected), spec.key
        else:
            assert shown["error"] == "Not computed: " + expected


def test_an_explorer_works_from_the_files_on_disk(browser, built_book):  # noqa: F811
    """`make book` points at file://.../index.html: a page opened from disk, with no
    server, loads its widget state (``<page>.widgets.js``, _ext/pagespeed.py)."""
    assert built_book.returncode == 0, "the book did not build"
    doc = chapter_docs()[0]
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto((HTML_DIR / f"{doc}.html").as_uri(), wait_until="load")
        page.wait_for_function("document.querySelectorAll('.dmlbook-explorer select')"
                               ".length > 0", timeout=60_000)
        explorer = page.locator(".dmlbook-explorer").first
        explorer.scroll_into_view_if_needed()
        shown = _visible(explorer)
        assert shown["count"] == 1 and shown["loaded"], shown
        assert errors == [], errors
    finally:
        page.close()


@pytest.mark.parametrize("doc", chapter_docs())
def test_static_explorers_switch_without_a_kernel(browser, site, doc):  # noqa: F811
    name = Path(doc).name
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page, errors, failed, blocked = open_page(browser, f"{site}/{doc}.html", site)
    try:
        explorers = page.locator(".dmlbook-explorer")
        assert explorers.count() == len(EXPLORERS[name]), doc
        assert page.locator(".dmlbook-live-panel:visible").count() == 0, \
            "the kernel-only panel is shown on the static site"
        for index, key in enumerate(EXPLORERS[name]):
            spec = explore.SPECS[key]
            calculator = not spec.training
            explorer = explorers.nth(index)
            explorer.scroll_into_view_if_needed()
            # "Precomputed" is said once, in the explorer's note, not in every label.
            assert explorer.inner_text().lower().count("precomputed") == 1
            assert "make lab" in explorer.inner_text() and "rocket" in explorer.inner_text()
            first, second = explorer.locator("select").nth(0), explorer.locator("select").nth(1)
            # Each dropdown has a visible label, tied to it (for=id), naming its control.
            for select, control in ((first, list(spec.grid)[0]), (second, list(spec.grid)[1])):
                label = explorer.locator(f"label[for='{select.get_attribute('id')}']")
                assert label.is_visible() and spec.control(control).label in label.inner_text()
            n_first = first.locator("option").count()
            n_second = second.locator("option").count()
            # It opens at the sheet's values (the controls' defaults) where the grid has them.
            (name_a, values_a), _ = spec.grid.items()
            if spec.control(name_a).default in values_a:
                assert _selected(first) == spec.control(name_a).format(
                    spec.control(name_a).default), f"{key} does not open at the sheet's value"
            shown = _visible(explorer)
            _check_shown(shown, spec, *_grid_point(spec, _selected(first), _selected(second)),
                         recompute=calculator)
            seen = {shown.get("src") or shown.get("error")}
            if index == 0:
                explorer.screenshot(path=str(SCREENSHOTS / f"explorer_{name}_before.png"))
            # Keyboard: the first dropdown steps with an arrow key (up from the last option).
            before = first.evaluate("s => s.selectedIndex")
            first.focus()
            page.keyboard.press("ArrowDown" if before + 1 < n_first else "ArrowUp")
            page.wait_for_timeout(150)
            assert first.evaluate("s => s.selectedIndex") != before, \
                f"{key}: the arrow key did nothing"
            shown = _visible(explorer)
            # The result must be the one the selected options name (by text, not position).
            _check_shown(shown, spec, *_grid_point(spec, _selected(first), _selected(second)),
                         recompute=True)
            seen.add(shown.get("src") or shown.get("error"))
            if index == 0:
                explorer.screenshot(path=str(SCREENSHOTS / f"explorer_{name}_after.png"))
            # Every combination, chosen with the dropdowns.
            for i in range(n_first):
                first.select_option(index=i)
                for j in range(n_second):
                    second.select_option(index=j)
                    page.wait_for_timeout(30)
                    shown = _visible(explorer)
                    point = _grid_point(spec, _selected(first), _selected(second))
                    _check_shown(shown, spec, *point, recompute=calculator)
                    seen.add(shown.get("src") or shown.get("error"))
            # Every grid point shows its own result: as many as the explorer holds distinct
            # ones (two settings of a training panel can give the same message or run).
            distinct = n_first * n_second
            if not calculator:
                box = explore.explorer(key)
                distinct = len({leaf.value for inner in box.children[2].children
                                for leaf in inner.children})
            assert len(seen) == distinct, f"{key}: results do not switch"
        assert errors == [], f"console errors on {doc}: {errors}"
        assert failed == [] and blocked == [], (failed, blocked)
    finally:
        page.close()
