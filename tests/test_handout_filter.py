"""The handout filter (_ext/handout.py) on one page, in a plain Sphinx build: seconds, no kernel.

tests/test_handout.py builds the whole handout edition; this one checks the
filter's rules on a page written to exercise each of them.
"""

import os
import subprocess
import sys

from book_helpers import ROOT
from test_handout import visible_text

TINY_PAGE = """\
# A chapter

## The exercise

:::{exercise} Count the things
:label: ex-tiny
How many things are there?
:::

<div data-dmlbook-selfcheck="numeric">SELFCHECK 4242</div>

::::{solution} ex-tiny
:class: dropdown
SOLUTION TEXT: there are 4242 things.
::::

:::{admonition} In 30 seconds
:class: dmlbook-in-30-seconds
SUMMARY30 there are 4242 things.
:::

:::{admonition} In 30 seconds
IN30TITLE only the title marks this one.
:::

:::{admonition} Beyond this point: the answer, shown and tested
:class: dmlbook-answers-below
The sections below compute the answer.
:::

## Show it

EVIDENCE 4242, as {numref}`fig-tiny` shows.

```{figure} pic.png
:name: fig-tiny

A figure below the boundary.
```

## More exercises

Intro text of the section, dropped.

:::{exercise} A new one
:label: ex-new
Count the other things.
:::

```{solution-start} ex-new
:class: dropdown
```
GATED SOLUTION 4242
```{solution-end}
```

## Summary

SUMMARY 4242
"""


def test_handout_transform_on_a_tiny_book(tmp_path):
    """The handout filter on one page, in a plain Sphinx build (seconds, no execution)."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT / '_ext')!r})\n"
        "extensions = ['myst_parser', 'sphinx_exercise', 'handout']\n"
        "myst_enable_extensions = ['colon_fence']\nnumfig = True\n")
    (src / "index.md").write_text("# Tiny\n\nSee {numref}`fig-tiny`.\n\n"
                                  "```{toctree}\nchapter\n```\n")
    (src / "chapter.md").write_text(TINY_PAGE)
    # A 1x1 PNG: the figure needs a file.
    (src / "pic.png").write_bytes(bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"))
    results = {}
    for mode in ("0", "1"):
        out = tmp_path / f"out{mode}"
        done = subprocess.run(
            [sys.executable, "-m", "sphinx", "-b", "html", "-W", "-n", "-q", str(src),
             str(out)], env=dict(os.environ, DMLBOOK_HANDOUT=mode), capture_output=True,
            text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        results[mode] = visible_text((out / "chapter.html").read_text(encoding="utf-8"))
    book, handout_text = results["0"], results["1"]
    for marker in ["SOLUTION TEXT", "SELFCHECK", "EVIDENCE", "GATED SOLUTION", "SUMMARY",
                   "SUMMARY30", "IN30TITLE",
                   "Intro text of the section", "4242"]:
        assert marker in book, marker
        assert marker not in handout_text, marker
    for kept in ["Count the things", "How many things are there?", "More exercises",
                 "A new one", "Count the other things.", "Handout edition"]:
        assert kept in handout_text, kept
    assert "Show it" not in handout_text and "Summary" not in handout_text
