"""The repository around the book: what the Makefile creates stays out of the book.

`make mutants` and `make bench-peers-env` create their own virtual environments at the
repository root (.venv-mutants, .venv-peers). Sphinx reads every file under the root that
_config.yml does not exclude, so a package's licence text inside one of them became a
page "not included in any toctree" and failed the next `make book` (seen on 5 December
2026, after `make mutants`).
"""

import re
from pathlib import Path

import yaml
from sphinx.util.matching import get_matching_files

ROOT = Path(__file__).resolve().parents[1]


def test_every_virtual_environment_the_makefile_creates_is_outside_the_book(tmp_path):
    makefile = (ROOT / "Makefile").read_text()
    venvs = re.findall(r"^\w*VENV\s*:=\s*(\S+)", makefile, flags=re.M)
    assert {".venv", ".venv-mutants", ".venv-peers"} <= set(venvs)
    # A tree with a page of the book and pages inside each venv, read as Sphinx reads
    # the source folder (get_matching_files prunes excluded folders).
    pages = ["chapters/ex1_fl_bandwidth.md"] + [
        f"{venv}/{page}" for venv in venvs
        for page in ("lib/python3.11/site-packages/x-1.0.dist-info/AUTHORS.rst",
                     "README.md", "share/notes.ipynb")]
    for page in pages:
        (tmp_path / page).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / page).write_text("text")
    patterns = yaml.safe_load((ROOT / "_config.yml").read_text())["exclude_patterns"]
    read = set(get_matching_files(tmp_path, include_patterns=["**"],
                                  exclude_patterns=patterns))
    assert read == {"chapters/ex1_fl_bandwidth.md"}
