"""The whole book, built cold under -W, and what its pages say.

These tests run the same build as `make book`; the first one builds,
the others read the HTML it produced.
"""

import re

import pytest

from book_helpers import HTML_DIR, chapter_docs, page_html, page_text


def test_book_builds_without_warnings(built_book):
    log = built_book.stdout + built_book.stderr
    warnings = [line for line in log.splitlines()
                if re.search(r"(WARNING|ERROR):", line) and "IPKernelApp" not in line]
    assert built_book.returncode == 0, log[-5000:]
    assert warnings == []
    assert (HTML_DIR / "index.html").exists()


def test_every_chapter_was_built_and_executed(built_book):
    docs = chapter_docs()
    assert len(docs) >= 2
    for doc in docs:
        html = page_html(doc)
        assert "cell_output" in html, f"{doc} shows no executed output"
        assert "Traceback" not in page_text(doc), doc


@pytest.mark.parametrize("doc, answers", [
    ("chapters/ex1_fl_bandwidth", ["2,203", "22,033", "85,098", "2,723,136"]),
    ("chapters/ex2_fl_costs", ["110.65", "4,950,544", "19,802,176", "221.31"]),
    ("chapters/ex3_allreduce", ["parameter server", "torch.distributed", "single point of failure"]),
    ("chapters/ex4_gradients_vs_parameters", ["FedSGD", "consensus distance", "top-10%"]),
    ("chapters/ex5_gossip", ["active thread", "passive thread", "36.6%"]),
    ("chapters/ex6_dpsgd", ["67,456", "51,200", "16,256"]),
])
def test_chapter_pages_show_their_answers(built_book, doc, answers):
    text = page_text(doc)
    for answer in answers:
        assert answer in text, f"{answer} not on {doc}"


def test_exercises_come_with_gated_solutions(built_book):
    for doc in chapter_docs():
        html = page_html(doc)
        exercise = re.search(r'class="exercise admonition"', html)
        solution = re.search(r'class="solution dropdown admonition"', html)
        assert exercise and solution, doc
        # The solution follows its exercise directly, folded into a dropdown.
        assert exercise.start() < solution.start(), doc
        assert "cell docutils container" not in html[exercise.start():solution.start()], doc


def test_chapters_include_package_code_and_citations(built_book):
    for doc in chapter_docs():
        html = page_html(doc)
        assert 'class="highlight-python' in html or 'highlight-default' in html
        assert "bibliography.html#id" in html or "bibliography.html#" in html, doc


def test_intro_and_bibliography(built_book):
    intro = page_text("intro")
    for phrase in ("Mbit/s", "GiB", "85,098", "4,950,544", "Prerequisites", "Notation",
                   "Try it", "panel", "self-check"):
        assert phrase in intro, phrase
    # The handout edition keeps the introduction: it gives away none of the answers.
    for answer in ("2,203", "22,033", "110.65", "67,456"):
        assert answer not in intro, answer
    bib = page_text("bibliography")
    for author in ("LeCun", "Lian", "McMahan", "Ormándi"):
        assert author in bib, author


def test_widget_pages_have_a_static_figure(built_book):
    for doc in chapter_docs():
        html = page_html(doc)
        assert "application/vnd.jupyter.widget-view+json" in html or "jupyter-widgets" in html, doc
        assert html.count("<img") >= 2, doc


def test_launch_buttons_use_the_repository_setting(built_book):
    html = page_html("chapters/ex1_fl_bandwidth")
    assert "mybinder.org/v2/gh/dmlbook/dmlbook/main" in html
