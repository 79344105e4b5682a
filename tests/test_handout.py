"""The handout edition (make handout): the book without solutions and self-check answers.

It is built exactly as `make handout` builds it (DMLBOOK_HANDOUT=1, its own
output folder, every chapter executed: the cells below the spoiler boundary
still define glued numbers that the exercises kept above use). The test then
reads every text file of the handout site and checks that none of the sheet's
answers and no solution text appears, while the normal book still has them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from book_helpers import HTML_DIR, ROOT, _Text, chapter_docs, jupyter_book

HANDOUT = ROOT / "_build" / "handout"
HANDOUT_HTML = HANDOUT / "html"
# The sheet's answers as the book may write them: exercise 1 (2,203 and the
# download limit 22,033), exercise 2 ($110.65) and exercise 6 (67,456 messages).
ANSWERS = ["2203", "2,203", "22033", "22,033", "110.65", "67456", "67,456",
           # ... and as LaTeX writes them in glued equations.
           "2{,}203", "22{,}033", "67{,}456"]
TEXT_SUFFIXES = {".html", ".js", ".txt", ".md", ".ipynb", ".json", ".py"}


def answer_pattern(answer: str) -> re.Pattern:
    # Not part of a longer number (no digit, comma or decimal digit around it).
    return re.compile(rf"(?<![\d,.]){re.escape(answer)}(?![\d]|[,.]\d)")


def build_handout() -> subprocess.CompletedProcess:
    """`make handout`: the build with DMLBOOK_HANDOUT=1, moved to _build/handout/html."""
    shutil.rmtree(HANDOUT, ignore_errors=True)
    env = dict(os.environ, DMLBOOK_HANDOUT="1")
    done = subprocess.run(
        [jupyter_book(), "build", str(ROOT), "--all", "-W", "-n", "--keep-going",
         "--path-output", str(HANDOUT)], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=900)
    if done.returncode == 0:
        (HANDOUT / "_build" / "html").rename(HANDOUT_HTML)
        shutil.rmtree(HANDOUT / "_build")
    return done


@pytest.fixture(scope="module")
def handout():
    done = build_handout()
    assert done.returncode == 0, f"the handout did not build:\n{done.stdout[-3000:]}" \
                                 f"\n{done.stderr[-3000:]}"
    return HANDOUT_HTML


def site_text_files(html_dir: Path) -> dict[str, str]:
    return {str(p.relative_to(html_dir)): p.read_text(encoding="utf-8", errors="replace")
            for p in html_dir.rglob("*") if p.is_file() and p.suffix in TEXT_SUFFIXES
            and "vendor" not in p.parts and "@jupyter-widgets" not in p.parts}


def visible_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return re.sub(r"\s+", " ", " ".join(parser.parts))


def solution_sentences(doc: str) -> list[str]:
    """Sentences (40+ characters) of the normal book's solutions on page ``doc``."""
    html = (HTML_DIR / f"{doc}.html").read_text(encoding="utf-8")
    sentences = []
    for block in re.findall(r'<div class="solution[^"]*"[^>]*>(.*?)</section>\s*</div>',
                            html, flags=re.S):
        text = visible_text(block)
        sentences += [s.strip() for s in re.split(r"(?<=[.!?])\s", text)
                      if len(s.strip()) >= 40]
    return sentences


def test_handout_has_no_answers(handout):
    files = site_text_files(handout)
    assert any(name.startswith("chapters/") for name in files)
    found = {(name, a) for name, text in files.items() for a in ANSWERS
             if answer_pattern(a).search(text)}
    assert found == set(), f"answers in the handout: {sorted(found)}"


def test_handout_has_no_solutions_or_self_checks(handout):
    for name, text in site_text_files(handout).items():
        if not name.endswith(".html"):
            continue
        assert 'class="solution' not in text, f"a solution in {name}"
        assert "data-dmlbook-selfcheck" not in text, f"a self-check in {name}"
    assert not (handout / "_sources").exists(), "the page sources (with solutions) were copied"


def test_handout_keeps_every_exercise_and_the_note(handout, built_book):
    assert built_book.returncode == 0, "the book did not build"
    for doc in chapter_docs():
        book_html = (HTML_DIR / f"{doc}.html").read_text(encoding="utf-8")
        handout_html = (handout / f"{doc}.html").read_text(encoding="utf-8")
        blocks = re.findall(r'<div class="exercise.*?</section>\s*</div>', book_html, flags=re.S)
        titles = [visible_text(t).strip() for t in re.findall(
            r'<div class="exercise[^"]*"[^>]*>\s*<p class="admonition-title">(.*?)</p>',
            book_html, flags=re.S)]
        assert titles, f"no exercise in the book's {doc}"
        # The handout edition drops the exercises that point at a part it removes (a
        # panel, a widget, a figure: issue #25, item 8); every other one must stay.
        def points_at_removed(block):
            targets = re.findall(r'href="#([\w-]+)"', block)
            return bool(_edition().POINTERS.search(visible_text(block))) or any(
                f'id="{t}"' not in handout_html for t in targets if t.startswith("fig-"))

        pointing = {visible_text(t).strip() for block in blocks if points_at_removed(block)
                    for t in re.findall(r'<p class="admonition-title">(.*?)</p>', block,
                                        flags=re.S)[:1]}
        titles = [t for t in titles if t not in pointing]
        assert titles, f"no exercise of the book's {doc} is kept in the handout"
        for title in titles:
            assert title in visible_text(handout_html), f"{doc}: {title!r} not in the handout"
        assert "dmlbook-handout-note" in handout_html, f"{doc}: no handout note"
        # No sentence of the book's solutions made it into the handout.
        handout_text = visible_text(handout_html)
        leaked = [s for s in solution_sentences(doc) if s in handout_text]
        assert leaked == [], f"{doc}: solution text in the handout: {leaked[:3]}"


def test_the_book_still_has_the_answers_and_solutions(built_book):
    assert built_book.returncode == 0, "the book did not build"
    files = site_text_files(HTML_DIR)
    for answer in ["2,203", "110.65", "67,456"]:
        assert any(answer_pattern(answer).search(t) for t in files.values()), answer
    for doc in chapter_docs():
        assert solution_sentences(doc), f"no solution text found in the book's {doc}"
        assert "data-dmlbook-selfcheck" in files[f"{doc}.html"], f"no self-check on {doc}"



# ---- Issue 23, item 5: a handout that leaks nothing ------------------------------------
#
# Beyond the sheet's answers above: no number that the book shows only in its
# solutions, no prediction's answer or reveal, and no solution phrase appears
# anywhere in the handout, learning objectives and overviews included; and those
# two are phrased as questions.

# Phrases that give an exercise's answer away (regular expressions, case-insensitive).
SOLUTION_PHRASES = {
    "ex1": [r"upload link (?:binds|fills(?: up)? first|is the bottleneck)"],
    "ex2": [r"(?<![\d.])111 ?\$|\$ ?111(?![\d.,])"],
    "ex3": [r"server'?s link is the bottleneck"],
    "ex4": [r"cent(?:er|re)d (?:on|around) zero", r"compress(?:es)? (?:far )?better",
            r"easily compressible"],
    "ex5": [r"\(\s*m\.x\s*\+\s*x\s*\)\s*/\s*2"],
    "ex6": [r"128\s*[×x*]\s*127", r"50\s*[×x*]\s*128\s*[×x*]\s*8"],
}
NUMBER = re.compile(r"(?<![\w.,])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\w])|(?<![\w.,])\d+\.\d+(?![\w])"
                    r"|(?<![\w.,])\d{3,}(?![\w.,])")


def _numbers(text: str) -> set[str]:
    """Distinctive numbers in ``text``, without commas: 4+ digits, or 3+ with a decimal point.

    LaTeX's thousands separators (``2{,}203``, ``2\\,203``) read as commas; years are left out.
    """
    text = text.replace("{,}", ",").replace("\\,", ",")
    found = set()
    for match in NUMBER.findall(text):
        plain = match.replace(",", "")
        digits = plain.replace(".", "").lstrip("0")
        if (len(digits) >= 4 or ("." in plain and len(digits) >= 3)) \
                and not re.fullmatch(r"(19|20)\d\d", plain):
            found.add(plain)
    return found


def _blocks(html: str, pattern: str) -> list[str]:
    return [visible_text(b) for b in re.findall(pattern, html, flags=re.S)]


def solution_numbers(doc: str) -> set[str]:
    """Numbers the book's solutions of ``doc`` show that its exercise statements do not."""
    html = (HTML_DIR / f"{doc}.html").read_text(encoding="utf-8")
    solutions = " ".join(_blocks(
        html, r'<div class="solution[^"]*"[^>]*>(.*?)</section>\s*</div>'))
    return _numbers(solutions) - given_numbers()


def given_numbers() -> set[str]:
    """Numbers the sheet gives: in any chapter's exercise statement, or in the introduction."""
    given = visible_text((HTML_DIR / "intro.html").read_text(encoding="utf-8"))
    for doc in chapter_docs():
        html = (HTML_DIR / f"{doc}.html").read_text(encoding="utf-8")
        given += " ".join(_blocks(html, r'<div class="exercise[^"]*"[^>]*>(.*?)</section>\s*</div>'))
    return _numbers(given)


def prediction_payloads(doc: str) -> list[dict]:
    import json

    html = (HTML_DIR / f"{doc}.html").read_text(encoding="utf-8")
    payloads = []
    for form in re.findall(r'<form class="[^"]*dmlbook-prediction[^"]*"(.*?)</script>', html,
                           flags=re.S):
        found = re.search(r"var data = (\{.*?\});\n", form, flags=re.S)
        if found:
            payloads.append(json.loads(found.group(1)))
    return payloads


def _number_forms(value: float) -> set[str]:
    if float(value).is_integer():
        return {f"{value:.0f}"}
    return {f"{value:.2f}", f"{value:.3g}"}


def leaked_values(doc: str) -> set[str]:
    """What the handout must not show, from ``doc``'s normal build: answers and reveals."""
    values = solution_numbers(doc)
    for data in prediction_payloads(doc):
        if "answer" in data:
            values |= _numbers(" ".join(_number_forms(data["answer"])))
    return values - given_numbers()


BUILD_TIMINGS = re.compile(r"<table[^>]*>(?:(?!</table>).)*Run Time \(s\)(?:(?!</table>).)*</table>",
                           flags=re.S)


def without_build_timings(html: str) -> str:
    """``html`` without the status page's table of execution times (``{nb-exec-table}``).

    Its seconds change from build to build (a chapter's 1.09 s once matched a
    number of ex1's solution); they are the build's, not the book's content.
    """
    return BUILD_TIMINGS.sub("", html)


def test_only_the_build_timings_table_is_left_out():
    timings = ('<table class="table"><tr><th><p>Run Time (s)</p></th></tr>'
               '<tr><td><p>1.09</p></td></tr></table>')
    answer = '<table class="table"><tr><td><p>2,203</p></td></tr></table>'
    kept = without_build_timings(f"<p>a</p>{answer}{timings}<p>b</p>{answer}")
    assert kept == f"<p>a</p>{answer}<p>b</p>{answer}"


def test_handout_leaks_no_solution_number_prediction_or_phrase(handout, built_book):
    assert built_book.returncode == 0, "the book did not build"
    files = {name: without_build_timings(text) for name, text in site_text_files(handout).items()
             if name.endswith(".html")}
    handout_numbers = {name: _numbers(visible_text(text)) | _numbers(text)
                       for name, text in files.items()}
    leaks = []
    for doc in chapter_docs():
        for value in sorted(leaked_values(doc)):
            leaks += [(doc, value, name) for name, found in handout_numbers.items()
                      if value in found]
        for data in prediction_payloads(doc):
            reveal = data.get("reveal", "")
            leaks += [(doc, "reveal " + reveal[:40], name) for name, text in files.items()
                      if len(reveal) >= 20 and reveal in text]
    assert leaks == [], f"answers of the book in the handout (chapter, value, page): {leaks}"
    phrases = [(key, p) for key, ps in SOLUTION_PHRASES.items() for p in ps]
    found = [(key, p, name) for key, p in phrases for name, text in files.items()
             if re.search(p, visible_text(text), flags=re.I)]
    assert found == [], f"solution phrases in the handout (exercise, phrase, page): {found}"


def test_the_leak_test_guards_something(built_book):
    """The book itself shows what the handout must hide: the test is not vacuous."""
    assert built_book.returncode == 0, "the book did not build"
    assert any(leaked_values(doc) for doc in chapter_docs())
    book = " ".join(visible_text((HTML_DIR / f"{doc}.html").read_text(encoding="utf-8"))
                    for doc in chapter_docs())
    assert any(re.search(p, book, flags=re.I) for ps in SOLUTION_PHRASES.values() for p in ps)


def _objectives(html: str) -> list[str]:
    blocks = re.findall(r'<p class="admonition-title">Learning objectives[^<]*</p>(.*?)</div>', html,
                        flags=re.S)
    return [visible_text(li).strip() for block in blocks
            for li in re.findall(r"<li>(.*?)</li>", block, flags=re.S)]


def _overview(html: str) -> str:
    found = re.search(r'<section id="overview">(.*?)</section>', html, flags=re.S)
    return visible_text(found.group(1)) if found else ""


def test_objectives_and_overviews_are_questions_in_the_handout(handout):
    problems = []
    for doc in chapter_docs():
        html = (handout / f"{doc}.html").read_text(encoding="utf-8")
        objectives = _objectives(html)
        if not objectives:
            problems.append(f"{doc}: no learning objectives")
        problems += [f"{doc}: objective is not a question: {o!r}" for o in objectives
                     if not o.endswith("?")]
        overview = _overview(html)
        if "?" not in overview:
            problems.append(f"{doc}: the overview asks no question")
    assert problems == [], "\n".join(problems)


# ---------------------------------------------------------------- it reads whole (item 8)

def _edition():
    """_ext/handout_edition.py, the handout's rules (its texts and patterns)."""
    import sys

    sys.path.insert(0, str(ROOT / "_ext"))
    import handout_edition

    return handout_edition


def _handout_text(handout, doc: str) -> str:
    return visible_text((handout / f"{doc}.html").read_text(encoding="utf-8"))


def _article(html: str) -> str:
    found = re.search(r'<article class="bd-article"[^>]*>(.*?)</article>', html, flags=re.S)
    return found.group(1) if found else html


def test_handout_has_its_own_intro(handout):
    edition = _edition()
    text = _handout_text(handout, "intro")
    assert edition.HANDOUT_INTRO in text
    # Nothing that describes the full edition's solutions, self-checks or panels.
    rest = visible_text(_article((handout / "intro.html").read_text(encoding="utf-8")))
    assert not edition.FULL_EDITION_WORDS.search(rest.replace(edition.HANDOUT_INTRO, "")), \
        "the intro describes the full edition"


def test_handout_has_no_summary_heading_over_exercises_alone(handout):
    for doc in chapter_docs():
        article = _article((handout / f"{doc}.html").read_text(encoding="utf-8"))
        for title, body in re.findall(r"<h2>(.*?)</h2>(.*?)(?=<h2>|$)", article, flags=re.S):
            title = visible_text(title).strip().rstrip("#").strip()
            if title.lower().startswith("summary"):
                without = re.sub(r'<div class="exercise.*?</section>\s*</div>', "", body,
                                 flags=re.S)
                assert visible_text(without).strip(), f"{doc}: a Summary heading with no summary"


def test_handout_prompts_point_at_nothing_removed(handout):
    edition = _edition()
    for doc in chapter_docs():
        article = _article((handout / f"{doc}.html").read_text(encoding="utf-8"))
        below = article.split("dmlbook-handout-note", 1)[-1]
        for block in re.findall(r'<div class="exercise.*?</section>\s*</div>', below, flags=re.S):
            text = visible_text(block)
            assert not edition.POINTERS.search(text), f"{doc}: an exercise points at a " \
                                                      f"removed part: {text[:200]!r}"
            assert not re.search(r"\bfig-[a-z0-9-]+", text), f"{doc}: a raw figure label"


def test_handout_marks_the_week_after_the_class(handout):
    edition = _edition()
    html = (handout / "week.html").read_text(encoding="utf-8")
    assert edition.WEEK_NOTE in visible_text(html)
    assert "<table" not in _article(html), "the week table (the answers) is in the handout"


def test_handout_has_no_repository_button(handout):
    import yaml

    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    for name, text in site_text_files(handout).items():
        if name.endswith(".html"):
            assert url not in text, f"{name} links to the repository (which holds the solutions)"
