"""Torch's thread count: ``DMLBOOK_THREADS``, else at most 2, set when dmlbook is imported."""

import os
import subprocess
import sys

import pytest

import dmlbook

PROBE = "import dmlbook, torch; print(torch.get_num_threads(), torch.get_num_interop_threads())"


def run_probe(**env_changes):
    env = {k: v for k, v in os.environ.items() if k not in ("DMLBOOK_THREADS", "OMP_NUM_THREADS")}
    env.update(env_changes)
    return subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                          text=True, timeout=120)


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
