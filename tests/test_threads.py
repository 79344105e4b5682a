"""Torch's thread count: ``DMLBOOK_THREADS``, else at most 2, set by ``configure_threads``
where the package is the main program, never by an import."""

import json
import os
import subprocess
import sys

import pytest

import dmlbook

PROBE = ("import dmlbook, torch; dmlbook.configure_threads(); "
         "print(torch.get_num_threads(), torch.get_num_interop_threads())")
# Importing the package and its figures changes no global state.
IMPORT_PROBE = """
import json, os, matplotlib
rc = {k: str(v) for k, v in matplotlib.rcParams.items()}
import dmlbook, dmlbook.plotting, dmlbook.explore
omp = os.environ.get("OMP_NUM_THREADS")
import torch
changed = sorted(k for k, v in matplotlib.rcParams.items() if str(v) != rc[k])
print(json.dumps({"omp": omp, "rc_changed": changed, "threads": [torch.get_num_threads(),
                  torch.get_num_interop_threads()]}))
"""
TORCH_PROBE = ("import json, torch; "
               "print(json.dumps([torch.get_num_threads(), torch.get_num_interop_threads()]))")


def run_probe(probe=PROBE, **env_changes):
    env = {k: v for k, v in os.environ.items() if k not in ("DMLBOOK_THREADS", "OMP_NUM_THREADS")}
    env.update(env_changes)
    return subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                          text=True, timeout=120)


def test_importing_the_package_and_its_figures_changes_no_global_state():
    done = run_probe(IMPORT_PROBE)
    assert done.returncode == 0, done.stderr
    state = json.loads(done.stdout)
    plain = run_probe(TORCH_PROBE)
    assert plain.returncode == 0, plain.stderr
    assert state == {"omp": None, "rc_changed": [], "threads": json.loads(plain.stdout)}


def test_default_is_at_most_two_threads():
    done = run_probe()
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(min(2, dmlbook.available_cores())), "1"]


def test_environment_variable_sets_the_threads():
    done = run_probe(DMLBOOK_THREADS="1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "1"]


@pytest.mark.parametrize("raw", ["0", "-1", "abc", "2.5", "257", "1e3"])
def test_bad_thread_count_names_the_variable(raw):
    with pytest.raises(ValueError, match=rf"DMLBOOK_THREADS must be a whole number .*{raw!r}"):
        dmlbook.thread_count({"DMLBOOK_THREADS": raw})
    done = run_probe(DMLBOOK_THREADS=raw)
    assert done.returncode != 0 and "DMLBOOK_THREADS must be a whole number" in done.stderr


def test_thread_count_reads_the_environment():
    assert dmlbook.thread_count({"DMLBOOK_THREADS": " 3 "}) == 3
    assert dmlbook.thread_count({}) == min(2, dmlbook.available_cores())


@pytest.mark.parametrize("bad", [0, 257, 1.5, True, "2"])
def test_configure_threads_checks_its_argument(bad):
    with pytest.raises(ValueError, match="threads must be a whole number"):
        dmlbook.configure_threads(bad)
