"""Binder's environment, rebuilt here: every chapter runs in it, within Binder's memory.

The test does what mybinder.org does with this repository, on this machine:

1. copies the repository (as Binder clones it) into the test's temporary folder;
2. creates a fresh venv there and installs ``binder/requirements.txt`` **alone**
   (not the book's requirements.txt, not constraints.txt);
3. runs ``binder/postBuild`` in it (installs dmlbook, sets JupyterLab to open
   the MyST chapters with jupytext);
4. checks that every third-party module imported by the chapters and by the
   dmlbook package is listed in ``binder/requirements.txt`` and imports there;
5. executes every ``chapters/*.md`` (jupytext + nbclient, a kernel of that
   venv, the book's cell time-out) and records each kernel's peak memory
   (the kernel and its children: the torch.distributed workers of ex3)
   against Binder's 2 GB.

One deviation, forced by this machine: Binder installs ``torch==X+cpu`` from
PyTorch's CPU index, which this machine cannot reach. The test maps it to
``torch==X`` and drops the ``--extra-index-url`` line; here ``torch==X`` is
the same CPU-only wheel (it lies on this machine's disk, found by pip's
configured find-links), so the packages the chapters run on are the same.

Under `make test` (two pytest-xdist workers) the kernels here run one torch
thread each (tests/conftest.py), where Binder's run two: the same numbers of
processes and the same data, one compute thread fewer.

It takes minutes: creating the venv and installing into it (pip's cache
makes a second run faster), then executing six chapters. Set
``DMLBOOK_BINDER_REPORT=path.json`` to keep the measurements.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import jupytext
import yaml

ROOT = Path(__file__).resolve().parents[1]
BINDER_MEMORY_BYTES = 2 * 2**30  # mybinder.org's limit: 2 GB (JupyterHub's G is 2**30)
CPU_INDEX = "download.pytorch.org/whl/cpu"
IGNORED_IN_COPY = shutil.ignore_patterns(".git", ".venv", "_build", "_vendor", ".pytest_cache",
                                         "__pycache__", "*.egg-info", ".whl",
                                         ".ipynb_checkpoints", ".jupyter_cache")

# Runs inside Binder's venv: executes each chapter and samples its kernel's memory.
EXECUTOR = r'''
import json, os, sys, threading, time
from pathlib import Path

import jupytext, nbformat
from nbclient import NotebookClient

sys.path.insert(0, TESTS_DIR)
from proc_tree import descendants  # the tests' own helper, standard library only

def tree(pid):
    return [pid, *sorted(descendants(pid))]

def memory(pids):
    rss = pss = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1]) * 1024
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1]) * 1024
        except OSError:
            pass
    return rss, pss

class Sampler(threading.Thread):
    def __init__(self, client):
        super().__init__(daemon=True)
        self.client, self.peak_rss, self.peak_pss, self.most_processes = client, 0, 0, 0
        self.done = threading.Event()
    def run(self):
        while not self.done.is_set():
            km = self.client.km
            process = getattr(getattr(km, "provisioner", None), "process", None)
            if process is not None:
                pids = tree(process.pid)
                rss, pss = memory(pids)
                self.peak_rss = max(self.peak_rss, rss)
                self.peak_pss = max(self.peak_pss, pss)
                self.most_processes = max(self.most_processes, len(pids))
            self.done.wait(0.1)

PROBE = ("import json, sys, dmlbook; print('PROBE' + json.dumps("
         "{'prefix': sys.prefix, 'dmlbook': dmlbook.__file__}))")

timeout = int(sys.argv[1])
results = []
for path in sys.argv[2:]:
    nb = jupytext.read(path)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(Path(path).parent)}})
    sampler = Sampler(client)
    started = time.monotonic()
    error = None
    with client.setup_kernel():
        sampler.start()
        try:
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
        except Exception as exc:  # reported to the test, which fails with it
            error = f"{type(exc).__name__}: {exc}"
        finally:
            sampler.done.set()
            sampler.join()
    seconds = time.monotonic() - started
    probe = {}
    for output in nb.cells[-1].get("outputs", []):
        text = output.get("text", "")
        if text.startswith("PROBE"):
            probe = json.loads(text[5:])
    results.append({"chapter": Path(path).stem, "seconds": round(seconds, 1),
                    "peak_rss_bytes": sampler.peak_rss, "peak_pss_bytes": sampler.peak_pss,
                    "most_processes": sampler.most_processes, "error": error, **probe})
    print(json.dumps(results[-1]), file=sys.stderr, flush=True)
print(json.dumps(results))
'''

# Runs inside Binder's venv: where each imported module comes from.
RESOLVER = r'''
import importlib.metadata, importlib.util, json, sys
dists = importlib.metadata.packages_distributions()
out = {}
for name in sys.argv[1:]:
    out[name] = {"found": importlib.util.find_spec(name) is not None,
                 "distributions": dists.get(name, [])}
print(json.dumps(out))
'''


def normalize(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_pins(path: Path) -> dict[str, str]:
    """``{normalized name: version}`` of the ``name==version`` lines of a requirements file."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line)
        if match:
            pins[normalize(match[1])] = match[2]
    return pins


def installable_here(binder_requirements: str) -> tuple[str, int]:
    """Binder's requirements with torch's CPU index mapped to this machine.

    ``torch==X+cpu`` becomes ``torch==X`` (this machine's CPU-only wheel) and
    the line naming PyTorch's CPU index goes; nothing else changes. Returns
    the text and how many lines were mapped.
    """
    lines, mapped = [], 0
    for line in binder_requirements.splitlines():
        if line.strip().startswith(("--extra-index-url", "--index-url")) and CPU_INDEX in line:
            mapped += 1
            continue
        new = re.sub(r"^(torch==[0-9][^+\s]*)\+cpu\b", r"\1", line)
        mapped += new != line
        lines.append(new)
    return "\n".join(lines) + "\n", mapped


def code_of(cell_source: str) -> str:
    """A cell's source as Python: IPython magics and shell lines become ``pass``."""
    return "\n".join("pass" if line.lstrip().startswith(("%", "!")) else line
                     for line in cell_source.splitlines())


def imported_modules(sources: dict[str, str]) -> dict[str, set[str]]:
    """``{top-level module: {where}}`` of every import in ``sources``."""
    found: dict[str, set[str]] = {}
    for where, source in sources.items():
        for node in ast.walk(ast.parse(source, filename=where)):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(where)
    return found


def third_party(modules: dict[str, set[str]]) -> dict[str, set[str]]:
    return {name: where for name, where in modules.items()
            if name not in sys.stdlib_module_names and name not in ("__future__", "dmlbook")}


def test_requirement_mapping_changes_only_torch():
    text = (ROOT / "binder" / "requirements.txt").read_text()
    here, mapped = installable_here(text)
    assert mapped == 2, "expected one torch==X+cpu line and one CPU index line to map"
    assert CPU_INDEX not in here
    pins_binder, pins_here = requirement_pins(ROOT / "binder" / "requirements.txt"), {}
    for line in here.splitlines():
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line.strip())
        if match:
            pins_here[normalize(match[1])] = match[2]
    assert pins_binder["torch"] == pins_here["torch"] + "+cpu"
    assert {k: v for k, v in pins_binder.items() if k != "torch"} == \
        {k: v for k, v in pins_here.items() if k != "torch"}


def test_binder_pins_equal_the_books():
    """Binder runs the versions the book is built and tested with."""
    binder = requirement_pins(ROOT / "binder" / "requirements.txt")
    book = requirement_pins(ROOT / "requirements.txt")
    book.update({k: v for k, v in requirement_pins(ROOT / "constraints.txt").items()
                 if k not in book})
    for name, version in binder.items():
        expected = book.get(name)
        assert expected is not None, f"{name} is in binder/requirements.txt but not pinned " \
                                     "in requirements.txt or constraints.txt"
        assert version.split("+")[0] == expected.split("+")[0], (name, version, expected)


def chapter_sources(repo: Path) -> dict[str, str]:
    sources = {}
    for chapter in sorted((repo / "chapters").glob("*.md")):
        nb = jupytext.read(chapter)
        sources[f"chapters/{chapter.name}"] = "\n".join(
            code_of(cell.source) for cell in nb.cells if cell.cell_type == "code")
    for module in sorted((repo / "dmlbook").glob("*.py")):
        sources[f"dmlbook/{module.name}"] = module.read_text()
    return sources


def test_every_chapter_runs_in_binders_environment(tmp_path):
    started = time.monotonic()
    repo = tmp_path / "repo"
    shutil.copytree(ROOT, repo, ignore=IGNORED_IN_COPY, symlinks=True)
    chapters = sorted((repo / "chapters").glob("*.md"))
    assert chapters, "no chapters/*.md to run"

    # 1. A fresh venv with binder/requirements.txt alone (torch mapped, see above).
    requirements, mapped = installable_here((repo / "binder" / "requirements.txt").read_text())
    assert mapped == 2
    (tmp_path / "requirements-here.txt").write_text(requirements)
    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PIP_NO_CACHE_DIR", "PYTHONHOME")}
    env.update(VIRTUAL_ENV=str(venv), PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
               # Kernels are found in the venv only, as on Binder (no user-level kernel).
               JUPYTER_DATA_DIR=str(tmp_path / "jupyter-data"),
               JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
               MPLCONFIGDIR=str(tmp_path / "mpl"))

    def run(*cmd, **kw):
        done = subprocess.run([str(c) for c in cmd], cwd=repo, env=env, text=True,
                              capture_output=True, **kw)
        assert done.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n" \
                                     f"{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
        return done.stdout

    run(sys.executable, "-m", "venv", venv)
    run(python, "-m", "pip", "install", "--quiet", "-r", tmp_path / "requirements-here.txt")
    installed_at = time.monotonic()

    # 2. Binder's postBuild, from the repository root as Binder runs it.
    run("bash", "binder/postBuild")
    settings = venv / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    assert json.loads(settings.read_text()) == \
        json.loads((repo / "binder" / "overrides.json").read_text())
    set_up_at = time.monotonic()

    # 3. Everything the chapters and the package import is listed, and imports there.
    modules = third_party(imported_modules(chapter_sources(repo)))
    assert {"torch", "numpy", "matplotlib"} <= set(modules)  # the parse found the imports
    resolved = json.loads(run(python, "-c", RESOLVER, *sorted(modules)))
    listed = set(requirement_pins(repo / "binder" / "requirements.txt"))
    for name, where in sorted(modules.items()):
        info = resolved[name]
        assert info["found"], f"{name} (imported by {sorted(where)}) is not installed by " \
                              "binder/requirements.txt"
        dists = {normalize(d) for d in info["distributions"]}
        assert dists & listed, f"{name} (imported by {sorted(where)}) comes from " \
                               f"{sorted(dists)}, which binder/requirements.txt does not list"

    # 4. Every chapter, executed with a kernel of that venv.
    timeout = int(yaml.safe_load((repo / "_config.yml").read_text())["execute"]["timeout"])
    executor = EXECUTOR.replace("TESTS_DIR", repr(str(Path(__file__).parent)), 1)
    out = run(python, "-c", executor, timeout, *chapters, timeout=3600)
    results = json.loads(out.strip().splitlines()[-1])
    finished_at = time.monotonic()

    report = {"install_s": round(installed_at - started, 1),
              "postbuild_s": round(set_up_at - installed_at, 1),
              "chapters_s": round(finished_at - set_up_at, 1),
              "binder_limit_bytes": BINDER_MEMORY_BYTES, "chapters": results}
    print(json.dumps(report, indent=1))
    if os.environ.get("DMLBOOK_BINDER_REPORT"):
        Path(os.environ["DMLBOOK_BINDER_REPORT"]).write_text(json.dumps(report, indent=1))

    assert [r["chapter"] for r in results] == [c.stem for c in chapters]
    for r in results:
        assert r["error"] is None, f"{r['chapter']} failed in Binder's environment: {r['error']}"
        assert Path(r["prefix"]) == venv, f"{r['chapter']} ran in {r['prefix']}, not the venv"
        assert Path(r["dmlbook"]).is_relative_to(repo), r["dmlbook"]
        # Shared pages (torch's libraries in ex3's worker processes) count once:
        # proportional set size, as the container's memory limit charges them.
        assert 0 < r["peak_pss_bytes"] < BINDER_MEMORY_BYTES, \
            f"{r['chapter']}: peak {r['peak_pss_bytes'] / 2**20:.0f} MiB of Binder's 2 GB"
