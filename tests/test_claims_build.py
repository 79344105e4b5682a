"""A false claim fails the -W build, and the log names it (issue 13, item 1).

A throw-away Jupyter Book in a temporary folder: one chapter whose hidden cell
calls ``dmlbook.claims.claim``. With a true condition it builds; with a false
one the build fails and its log carries the claim's sentence.
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
from dmlbook.claims import claim
measured, predicted = 3, 2
claim("{sentence}", measured {op} predicted, measured=measured, predicted=predicted)
```

The measurement beats the prediction.
"""
SENTENCE = "the measurement beats the prediction"


def build_tiny_book(tmp_path, op: str) -> subprocess.CompletedProcess:
    book = tmp_path / f"book_{'true' if op == '>' else 'false'}"
    book.mkdir()
    (book / "_config.yml").write_text(CONFIG)
    (book / "_toc.yml").write_text(TOC)
    (book / "intro.md").write_text("# Intro\n\nA book of one chapter.\n")
    (book / "chapter.md").write_text(textwrap.dedent(CHAPTER.format(sentence=SENTENCE, op=op)))
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
