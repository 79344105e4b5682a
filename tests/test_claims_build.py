"""A false claim fails the -W build, and the log names it (issue 13, item 1).

A throw-away Jupyter Book in a temporary folder: one chapter whose hidden cell
calls ``dmlbook.claims.claim``. With a true condition it builds; with a false
one the build fails and its log carries the claim's sentence.

A claim about trainings is checked over seeds (issue 21, item 1): a chapter
whose claim holds on seed 0 (so ``claim`` on that one run passes) but fails on
another seed fails the build through ``claim_seeds``, and the log names the
failing seed.
"""

from __future__ import annotations

import os
import subprocess
import textwrap

import pytest

from book_helpers import ROOT, jupyter_book

CONFIG = """\
title: claims test
only_build_toc_files: true
execute:
  execute_notebooks: force
  timeout: 120
  allow_errors: false
sphinx:
  config:
    nb_execution_show_tb: true
"""
TOC = "format: jb-book\nroot: intro\nchapters:\n  - file: chapter\n"
CHAPTER = """\
---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
    format_version: 0.13
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# A chapter

```{{code-cell}} ipython3
:tags: [remove-cell]
{cell}
```

The measurement beats the prediction.
"""
SENTENCE = "the measurement beats the prediction"
ONE_RUN = """\
from dmlbook.claims import claim
measured, predicted = 3, 2
claim("{sentence}", measured {op} predicted, measured=measured, predicted=predicted)"""
# Two methods' scores in one "training" per seed: A beats B on seeds 0, 2, 3, 5, not on 1, 4.
RUN = """\
import numpy as np
def run(seed):
    rng = np.random.default_rng(seed)
    return float(rng.normal()), float(rng.normal())"""
SEEDS_SENTENCE = "method A beats method B"
OVER_SEEDS = RUN + """
from dmlbook.claims import claim, claim_seeds
a, b = run(0)
claim("{sentence}", a > b, a=a, b=b)  # the single run made: it holds
runs = [run(seed) for seed in range({n_seeds})]
claim_seeds("{sentence}", [a > b for a, b in runs], runs=runs)"""


def build_tiny_book(tmp_path, op: str, cell: str | None = None) -> subprocess.CompletedProcess:
    book = tmp_path / f"book_{'true' if op == '>' else 'false'}{'_cell' if cell else ''}"
    book.mkdir()
    cell = cell or ONE_RUN.format(sentence=SENTENCE, op=op)
    (book / "_config.yml").write_text(CONFIG)
    (book / "_toc.yml").write_text(TOC)
    (book / "intro.md").write_text("# Intro\n\nA book of one chapter.\n")
    (book / "chapter.md").write_text(textwrap.dedent(CHAPTER).format(cell=cell))
    # The chapter's kernel imports this checkout's dmlbook.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    return subprocess.run([jupyter_book(), "build", str(book), "--all", "-W", "-n",
                           "--keep-going"], cwd=book, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.parametrize("op, builds", [(">", True), ("<", False)])
def test_a_false_claim_fails_the_build(tmp_path, op, builds):
    done = build_tiny_book(tmp_path, op)
    log = done.stdout + done.stderr
    if builds:
        assert done.returncode == 0, f"the book with a true claim did not build:\n{log[-3000:]}"
    else:
        assert done.returncode != 0, "a false claim did not fail the build"
        assert "ClaimError" in log and SENTENCE in log, f"the log does not name the claim:\n" \
                                                        f"{log[-3000:]}"


def test_a_claim_true_on_seed_zero_but_false_on_another_seed_fails_the_build(tmp_path):
    namespace: dict = {}
    exec(RUN, namespace)
    holds = [a > b for a, b in map(namespace["run"], range(5))]
    assert holds[0] and not all(holds), "the scenario must hold on seed 0 and fail elsewhere"
    done = build_tiny_book(tmp_path, "<", OVER_SEEDS.format(sentence=SEEDS_SENTENCE, n_seeds=5))
    log = done.stdout + done.stderr
    assert done.returncode != 0, "a claim false on seed 1 did not fail the build"
    assert "ClaimError" in log and SEEDS_SENTENCE in log, f"the log does not name the claim:\n" \
                                                          f"{log[-3000:]}"
    failing = [i for i, h in enumerate(holds) if not h]
    assert f"fails at seed index(es) {failing}" in log, log[-3000:]
