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
        titles = [visible_text(t).strip() for t in re.findall(
            r'<div class="exercise[^"]*"[^>]*>\s*<p class="admonition-title">(.*?)</p>',
            book_html, flags=re.S)]
        assert titles, f"no exercise in the book's {doc}"
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
