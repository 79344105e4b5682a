"""Predictions and self-checks in headless Chromium, offline, with no kernel (issues 23 and 27).

Two parts.

1. A throw-away Jupyter Book (seconds): one chapter whose hidden cells make
   predictions and a self-check exactly as chapters do, built twice: as the book
   and as the handout (DMLBOOK_HANDOUT=1). In Chromium, a right, a wrong and a
   unit-off prediction get the verdict and text that Python's logic gives, and
   the run's result is revealed; the browser and Python read the same digits the
   same way (Arabic-Indic and full-width accepted by both, other scripts refused
   by both); a mistake text with "<!--" and "</script>" neither breaks the script
   nor runs as markup. The handout keeps each question and drops answer and reveal.
2. The real built book (the session's build): every chapter asks at least two
   predictions, and each is tried right, wrong and off by a unit factor, using
   the answer in its own payload.
"""

from __future__ import annotations

import functools
import http.server
import json
import re
import subprocess
import threading

import pytest

from book_helpers import ROOT, chapter_docs
from dmlbook import predictions, selfcheck
from test_claims_build import CONFIG as CLAIMS_CONFIG
from test_claims_build import HEADER as CHAPTER_HEADER
from test_claims_build import build
from test_browser import CHROMIUM, LocalSite, browser, open_page, site  # noqa: F401 - fixtures

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium: install Debian's package (apt-get install chromium) "
           "to run the browser test; .ci/run does this")

HOSTILE = "<!-- </script><script>window.pwned = 1</script> <b>bold</b> &amp;"
# The checks of the tiny chapter, as a chapter cell writes them (and the test rebuilds them).
CHECKS = {
    "p-number": """predictions.predict_number(
    "p-number", "How many participants if uploads were as fast as downloads?",
    answer=22033, unit="participants", mistakes={2203: "the upload limit " + HOSTILE},
    reveal="The run gave 22,033 participants <b>not bold</b>.")""",
    "p-choice": """predictions.predict_choice(
    "p-choice", "Will the sum stay constant in push-only gossip?",
    [("Yes, exactly", False, "a push changes the receiver only."),
     ("No, it drifts", True, "each push replaces half of one model.")],
    reveal="The run's sum drifted by 3.1 %.")""",
    "s-digits": """selfcheck.numeric(
    "s-digits", "What is n_max?", answer=2203, unit="participants", rel_tolerance=0.0002,
    mistakes={22033: HOSTILE})""",
}
CONFIG = CLAIMS_CONFIG.replace("sphinx:\n", f"sphinx:\n  local_extensions:\n"
                                            f"    handout: {ROOT / '_ext'}\n")
HEADER = CHAPTER_HEADER + """
# Predictions

```{code-cell} ipython3
:tags: [remove-cell]
from dmlbook import predictions, selfcheck
"""


def chapter_md() -> str:
    cells = [HEADER + f"HOSTILE = {HOSTILE!r}\n```\n"]
    for name, code in CHECKS.items():
        tag = "dmlbook-prediction" if name.startswith("p-") else "dmlbook-selfcheck"
        cells.append(f"```{{code-cell}} ipython3\n:tags: [remove-input, {tag}]\n{code}\n```\n")
    return "\n".join(cells) + "\nThe evidence follows.\n"


def make(check_id: str):
    return eval(CHECKS[check_id], {"selfcheck": selfcheck, "predictions": predictions,
                                   "HOSTILE": HOSTILE})


def _build(folder, handout: bool) -> subprocess.CompletedProcess:
    folder.mkdir()
    (folder / "_config.yml").write_text(CONFIG)
    (folder / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n"
                                     "  - file: chapter\n")
    (folder / "intro.md").write_text("# Intro\n\nOne chapter.\n")
    (folder / "chapter.md").write_text(chapter_md())
    return build(folder, DMLBOOK_HANDOUT="1" if handout else "0")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny book and its handout, each served on 127.0.0.1: {"book": url, "handout": url}."""
    urls, servers = {}, []
    for kind in ("book", "handout"):
        folder = tmp_path_factory.mktemp("predictions") / kind
        done = _build(folder, handout=kind == "handout")
        assert done.returncode == 0, f"the tiny {kind} did not build:\n" \
                                     f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        handler = functools.partial(_Quiet, directory=str(folder / "_build" / "html"))
        server = LocalSite(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        urls[kind] = f"http://127.0.0.1:{server.server_address[1]}"
    yield urls
    for server in servers:
        server.shutdown()


# The tiny book runs the theme without the real book's fixes (_ext/a11y.py and
# _config.yml): these console messages come from the theme, not from the checks.
THEME_NOISE = ("Identifier 'THEBE_JS_URL' has already been declared", "Got invalid theme mode")


def _ours(errors: list[str]) -> list[str]:
    return [e for e in errors if not any(noise in e for noise in THEME_NOISE)]


def _submit_number(page, form, typed: str) -> tuple[str, str]:
    box = form.locator("input").first
    box.fill(typed)
    box.press("Enter")  # the keyboard submits the form
    page.wait_for_timeout(30)
    return form.get_attribute("data-verdict"), form.locator("[role=status]").inner_text()


def _submit_choice(page, form, index: int) -> tuple[str, str]:
    form.locator(f"input[value='{index}']").check()
    form.locator("button").focus()
    page.keyboard.press("Enter")
    page.wait_for_timeout(30)
    return form.get_attribute("data-verdict"), form.locator("[role=status]").inner_text()


def _reveal(form) -> str | None:
    reveal = form.locator(".dmlbook-prediction-reveal")
    return reveal.text_content() if reveal.is_visible() else None


# ---- 1. the tiny book ------------------------------------------------------------------


def test_number_prediction_right_wrong_and_unit_off(browser, tiny):  # noqa: F811
    check = make("p-number")
    page, errors, _, _ = open_page(browser, f"{tiny['book']}/chapter.html", tiny["book"])
    try:
        form = page.locator("form#p-number.dmlbook-prediction")
        assert form.count() == 1
        assert _reveal(form) is None, "the run's result shows before a prediction"
        assert _submit_number(page, form, "twenty") == check.logic.feedback("twenty")
        assert _reveal(form) is None, "an invalid entry revealed the result"
        for typed, expected in [("21,000", "right"), ("176264", "off"), ("41000", "wrong"),
                                ("220.33", "off"), ("2203", "off")]:
            got = _submit_number(page, form, typed)
            assert got[0] == expected, f"typed {typed!r}: {got}"
            assert got == check.logic.feedback(typed), f"script and Python differ on {typed!r}"
            assert _reveal(form) == ("What the run showed: The run gave 22,033 participants "
                                     "<b>not bold</b>."), "the reveal is not the run's text"
        # The reveal and the hostile mistake text are text, never markup.
        assert form.locator(".dmlbook-prediction-reveal b").count() == 0
        assert form.locator("[role=status] b").count() == 0
        assert page.evaluate("window.pwned") is None, "a mistake text ran as a script"
        assert _ours(errors) == [], errors
    finally:
        page.close()


def test_choice_prediction_wrong_then_right(browser, tiny):  # noqa: F811
    check = make("p-choice")
    page, errors, _, _ = open_page(browser, f"{tiny['book']}/chapter.html", tiny["book"])
    try:
        form = page.locator("form#p-choice.dmlbook-prediction")
        form.locator("button").click()
        assert form.get_attribute("data-verdict") == "invalid" and _reveal(form) is None
        for index, expected in [(0, "wrong"), (1, "right")]:
            got = _submit_choice(page, form, index)
            assert got == check.logic.feedback(index) and got[0] == expected, got
            assert _reveal(form) == "What the run showed: The run's sum drifted by 3.1 %."
        assert _ours(errors) == [], errors
    finally:
        page.close()


# What a student may type for 2,203, in other scripts and with odd spaces: the
# browser and Python must agree on each (both accept or both refuse, same text).
TYPED_DIGITS = ["٢٢٠٣", "۲۲۰۳", "２２０３", "２，２０３", "٢٬٢٠٣", "2\u202f203", "2\u00a0203",
                "2203٫0", "−2203", "२२०३", "𝟐𝟐𝟎𝟑", "߂߂߀߃", "2203\ufeff", "2203\x85", "1e400",
                "٢٢٠٣٣", "２２０３０"]


def test_browser_and_python_read_digits_alike(browser, tiny):  # noqa: F811
    check = make("s-digits")
    expected = {t: check.logic.feedback(t) for t in TYPED_DIGITS}
    # Python's side: which scripts it accepts (a test that the table means something).
    assert {t for t, (v, _) in expected.items() if v == "right"} == {
        "٢٢٠٣", "۲۲۰۳", "２２０３", "２，２０３", "٢٬٢٠٣", "2\u202f203", "2\u00a0203", "2203٫0"}
    assert {t for t, (v, _) in expected.items() if v == "invalid"} == {
        "२२०३", "𝟐𝟐𝟎𝟑", "߂߂߀߃", "2203\ufeff", "2203\x85", "1e400"}
    assert expected["٢٢٠٣٣"][0] == expected["２２０３０"][0] == "off"  # the download limit
    assert expected["−2203"][0] == "wrong"
    page, errors, _, _ = open_page(browser, f"{tiny['book']}/chapter.html", tiny["book"])
    try:
        form = page.locator("form#s-digits")
        for typed, want in expected.items():
            assert _submit_number(page, form, typed) == want, f"browser differs on {typed!r}"
        # The mistake text with "<!--" and "</script>" arrives whole, as text.
        assert _submit_number(page, form, "22033") == ("off", "Not quite: " + HOSTILE)
        assert page.evaluate("window.pwned") is None
        assert _ours(errors) == [], errors
    finally:
        page.close()


def test_the_handout_keeps_questions_and_drops_answers(browser, tiny):  # noqa: F811
    html = (tiny["handout"], "chapter.html")
    page, errors, _, _ = open_page(browser, f"{html[0]}/{html[1]}", html[0])
    try:
        text = page.locator("article, main, body").first.inner_text()
        source = page.content()
    finally:
        page.close()
    assert "How many participants if uploads were as fast as downloads?" in text
    assert "Will the sum stay constant in push-only gossip?" in text
    assert "Yes, exactly" in text and "No, it drifts" in text  # the options stay
    for leak in ["22033", "22,033", "drifted by 3.1", "What the run showed", "upload limit",
                 "each push replaces", "dmlbook-selfcheck", "data-dmlbook", "What is n_max?"]:
        assert leak not in source, f"the handout page holds {leak!r}"
    assert "dmlbook-prediction-handout" in source and _ours(errors) == []


# ---- 2. the real book ------------------------------------------------------------------

PAYLOAD = re.compile(r"var data = (\{.*?\});\n", re.S)
PREDICTIONS_JS = """() => [...document.querySelectorAll('form.dmlbook-prediction')].map(f => ({
  id: f.id, kind: f.dataset.dmlbookPrediction,
  script: f.nextElementSibling && f.nextElementSibling.tagName === 'SCRIPT'
          ? f.nextElementSibling.textContent : ''}))"""
MIN_PREDICTIONS = 2


def _close(v: float, t: float, tol: float) -> bool:
    return abs(v - t) <= tol * abs(t) + 1e-12


def _number_cases(data: dict) -> list[tuple[str, str, str]]:
    """(typed, verdict, feedback) for the right answer, a unit slip and a wrong guess."""
    answer, tol, misses = data["answer"], data["tol"], data["misses"]

    def expect(value):
        if _close(value, answer, tol):
            return "right", data["right"]
        hit = next((m for v, m in misses if _close(value, v, tol)), None)
        return ("off", hit) if hit else ("wrong", data["wrong"])

    cases = [(repr(answer), "right", data["right"])]
    off = answer * 8  # bits against bytes
    assert expect(off)[0] == "off", f"{answer} x 8 is not named as a unit slip"
    cases.append((repr(off), *expect(off)))
    wrong = next(answer * f for f in (1.7, 0.45, 2.9, 0.3, 4.6, 0.2) if
                 expect(answer * f)[0] == "wrong")
    cases.append((repr(wrong), "wrong", data["wrong"]))
    return cases


@pytest.mark.parametrize("doc", chapter_docs())
def test_every_chapter_asks_predictions_graded_without_a_kernel(browser, site, doc):  # noqa: F811
    page, errors, _, _ = open_page(browser, f"{site}/{doc}.html", site)
    try:
        found = page.evaluate(PREDICTIONS_JS)
        assert len(found) >= MIN_PREDICTIONS, \
            f"{doc} asks {len(found)} predictions (class dmlbook-prediction); needs " \
            f"{MIN_PREDICTIONS}"
        for item in found:
            form = page.locator(f"form#{item['id']}")
            payload = PAYLOAD.search(item["script"])
            assert payload, f"{doc}: prediction {item['id']} has no script with its data"
            data = json.loads(payload.group(1))
            assert data["reveal"].strip(), f"{doc}: {item['id']} reveals nothing"
            assert _reveal(form) is None, f"{doc}: {item['id']} shows the run before a guess"
            if item["kind"] == "number":
                for typed, verdict, text in _number_cases(data):
                    got = _submit_number(page, form, typed)
                    assert got == (verdict, text), f"{doc}: {item['id']} typed {typed}: {got}"
                    assert _reveal(form) == "What the run showed: " + data["reveal"]
            else:
                assert item["kind"] == "choice", item
                right = [i for i, (c, _) in enumerate(data["options"]) if c]
                assert len(right) == 1, f"{doc}: {item['id']} has no single right option"
                wrong = (right[0] + 1) % len(data["options"])
                for index, verdict in [(wrong, "wrong"), (right[0], "right")]:
                    got = _submit_choice(page, form, index)
                    assert got[0] == verdict, f"{doc}: {item['id']} option {index}: {got}"
                    assert got[1].endswith(data["options"][index][1])
                    assert _reveal(form) == "What the run showed: " + data["reveal"]
        assert errors == [], f"console errors on {doc}: {errors}"
    finally:
        page.close()
