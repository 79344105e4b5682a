"""scripts/glue_snapshot.py: every glued value of a build, and the comparison of two."""

import json
import subprocess
import sys

from book_helpers import ROOT

SCRIPT = ROOT / "scripts" / "glue_snapshot.py"


def _glue(name, text):
    return {"output_type": "display_data",
            "metadata": {"scrapbook": {"name": name,
                                       "mime_prefix": "application/papermill.record/"}},
            "data": {"text/plain": text}}


def _build(root, values, in_notebook=()):
    folder = root / "jupyter_execute" / "chapters"
    folder.mkdir(parents=True)
    (folder / "ex1.glue.json").write_text(json.dumps({k: _glue(k, v) for k, v in values.items()}))
    cells = [{"cell_type": "code", "outputs": [_glue(k, v) for k, v in in_notebook]}]
    (folder / "ex1.ipynb").write_text(json.dumps({"cells": cells}))
    return root


def _run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True,
                          text=True, timeout=60)


def test_snapshot_reads_glue_files_and_notebook_outputs_and_compares(tmp_path):
    before = _build(tmp_path / "a", {"n": "2203", "usd": "110.65"}, [("old", "['x']")])
    after = _build(tmp_path / "b", {"n": "2203", "usd": "110.66"}, [("old", "['x']")])
    for build in (before, after):
        done = _run(build, "-o", build / "glue.json")
        assert done.returncode == 0, done.stderr
    snap = json.loads((before / "glue.json").read_text())
    assert snap == {"chapters/ex1:n": "2203", "chapters/ex1:old": "['x']",
                    "chapters/ex1:usd": "110.65"}
    done = _run("--compare", before / "glue.json", after / "glue.json")
    assert done.returncode == 0
    assert done.stdout.splitlines()[0] == "2 identical, 1 different, 0 only before, 0 only after"
    assert "different: chapters/ex1:usd: '110.65' -> '110.66'" in done.stdout


def test_an_empty_build_is_an_error(tmp_path):
    (tmp_path / "jupyter_execute").mkdir()
    done = _run(tmp_path)
    assert done.returncode == 1 and "no glued values" in done.stderr
