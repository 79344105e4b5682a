"""The handout reads whole (_ext/handout_edition.py) on a tiny book: seconds, no kernel.

tests/test_handout.py checks the same points on the whole built handout.
"""

import os
import subprocess
import sys

from book_helpers import ROOT
from test_handout import visible_text

sys.path.insert(0, str(ROOT / "_ext"))
import handout_edition as edition  # noqa: E402 - Sphinx's extension folder, added above

INDEX = """\
# Tiny book

Every answer here is computed and shown: the full edition's opening.

## How to use this book

Open the solutions, which are folded, and use the self-check.

## Units

Watch the units. The self-check of each chapter says so.

```{toctree}
chapter
week
```
"""

CHAPTER = """\
# A chapter

:::{exercise} The sheet's exercise
:label: ex-main
How many?
:::

:::{admonition} Beyond this point: the answer
:class: dmlbook-answers-below
Below.
:::

## Evidence

```{figure} pic.png
:name: fig-gone

A figure below the boundary.
```

## Summary

- A SUMMARY POINT.

:::{exercise} Use the panel
In the panel above, raise the loss to 0.3.
:::

:::{exercise} Look at a figure
As {numref}`fig-gone` shows, what happens at 16 nodes?
:::

:::{exercise} Stands alone
Double the model: how many now?
:::
"""

WEEK = """\
# The week

| scheme | answer |
|---|---|
| FL | 2,203 |
"""


def _build(tmp_path, mode):
    src = tmp_path / "src"
    if not src.exists():
        src.mkdir()
        (src / "conf.py").write_text(
            "import sys\n"
            f"sys.path.insert(0, {str(ROOT / '_ext')!r})\n"
            "extensions = ['myst_parser', 'sphinx_exercise', 'handout', 'handout_edition']\n"
            "myst_enable_extensions = ['colon_fence']\nnumfig = True\n")
        (src / "index.md").write_text(INDEX)
        (src / "chapter.md").write_text(CHAPTER)
        (src / "week.md").write_text(WEEK)
        (src / "pic.png").write_bytes(bytes.fromhex(
            "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
            "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"))
    out = tmp_path / f"out{mode}"
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-W", "-n", "-q", str(src), str(out)],
        env=dict(os.environ, DMLBOOK_HANDOUT=mode), capture_output=True, text=True,
        timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return {p: visible_text((out / f"{p}.html").read_text(encoding="utf-8"))
            for p in ("index", "chapter", "week")}


def test_the_handout_reads_whole_on_a_tiny_book(tmp_path):
    book, handout = _build(tmp_path, "0"), _build(tmp_path, "1")
    # Its own intro; nothing about the full edition's solutions or self-checks.
    assert edition.HANDOUT_INTRO in handout["index"] and edition.HANDOUT_INTRO not in book["index"]
    assert "the full edition's opening" not in handout["index"]
    rest = handout["index"].replace(edition.HANDOUT_INTRO, "")
    assert "self-check" not in rest and "folded" not in rest
    assert "Watch the units." in handout["index"]  # the rest of that paragraph stays
    # No "Summary" over exercises alone; prompts at removed parts left out.
    assert "Summary" in book["chapter"] and "Summary" not in handout["chapter"]
    assert "Exercises" in handout["chapter"] and "Stands alone" in handout["chapter"]
    assert "Use the panel" in book["chapter"] and "Use the panel" not in handout["chapter"]
    assert "Look at a figure" not in handout["chapter"] and "fig-gone" not in handout["chapter"]
    assert "The sheet’s exercise" in handout["chapter"]
    # The week page: marked for after the class, its answers gone.
    assert edition.WEEK_NOTE in handout["week"] and "2,203" not in handout["week"]
    assert "2,203" in book["week"]
