"""The workbook's notebooks: empty stubs, and every check passes with the solutions.

Each page is converted with jupytext, its stubs are replaced by the reference
solutions (``dmlbook.check.reference``), and the notebook is executed by a real
Jupyter kernel (nbclient), as a student would run it.
"""

import ast
import inspect
import os
import re
from pathlib import Path

import jupytext
import pytest
import yaml
from nbclient import NotebookClient

from dmlbook import check
from dmlbook.check import reference
from dmlbook.sheet import EXERCISES

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "workbook").glob("ex*.md"))


def stub_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code" and "stub" in c.metadata.get("tags", [])]


def stub_name(cell) -> str:
    return re.search(r"^def (\w+)\(", cell.source, re.M).group(1)


def checks_on(text):
    return re.findall(r"^check\.(\w+)\(([\w, ]+)\)$", text, re.M)


def test_one_page_per_exercise_in_their_own_part_of_the_book():
    assert [f"workbook/{p.stem}" for p in PAGES] == [w for e in EXERCISES for w in e.workbook]
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    captions = [part["caption"] for part in toc["parts"]]
    workbook = toc["parts"][captions.index("Workbook")]["chapters"]
    assert [c["file"] for c in workbook] == [f"workbook/{p.stem}" for p in PAGES]


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_page_has_stubs_checks_and_folded_solutions(page):
    text = page.read_text()
    nb = jupytext.read(page)
    assert nb.metadata["mystnb"]["execution_mode"] == "off"  # the build does not run stubs
    stubs = stub_cells(nb)
    for cell in stubs:
        name = stub_name(cell)
        func = ast.parse(cell.source).body[0]
        docstring, body = func.body[0], func.body[1:]
        assert isinstance(docstring.value, ast.Constant) and "Returns:" in docstring.value.value
        assert len(body) == 1 and body[0].value.value is Ellipsis, f"{name} is not a stub"
        assert f":pyobject: {name}" in text  # the folded solution shows the reference
        assert hasattr(reference, name)
    assert ":class: dropdown" in text and "../dmlbook/reference.py" not in text
    checks = checks_on(text)
    # A warm-up and at least one longer task on every page.
    assert len(checks) >= 2, checks
    for name, args in checks:
        assert name in check.CHECKS
        assert tuple(a.strip() for a in args.split(",")) == check.CHECKS[name]
        assert f'check.solution("{name}")' in text  # JupyterLab shows it without MyST


def test_every_check_has_a_page():
    pages = {name for page in PAGES for name, _ in checks_on(page.read_text())}
    stubs = {stub_name(c) for page in PAGES for c in stub_cells(jupytext.read(page))}
    assert pages == set(check.CHECKS)
    assert stubs == {n for names in check.CHECKS.values() for n in names}


def test_the_first_page_says_how_the_checks_judge():
    text = PAGES[0].read_text()
    for phrase in ("time limit of 10 s", "Ctrl-C", "sys.exit", "restored", "cannot undo"):
        assert phrase in text


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_page_runs_and_every_check_passes_with_the_reference_solutions(page):
    nb = jupytext.read(page)
    for cell in stub_cells(nb):
        cell.source = inspect.getsource(getattr(reference, stub_name(cell)))
    client = NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(page.parent)}})
    # The kernel imports this checkout's dmlbook.
    python_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    client.execute(env={**os.environ, "PYTHONPATH": python_path, "TQDM_DISABLE": "1"})
    reports = []
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.startswith("check."):
            results = [o for o in cell.outputs if o.output_type == "execute_result"]
            assert len(results) == 1, cell.source
            reports.append(results[0].data["text/plain"])
            assert "dmlbook-check" in results[0].data["text/html"]
    assert reports and all(r.startswith("✓") and "passed" in r for r in reports), reports
