"""The launcher's failure handling (issue #27, part 4), on plain processes standing in
for workers: a stalled rank is named, the rank that caused a failure is blamed, no
reaped worker's process group is ever signalled, and bad arguments or environments
are refused with a clear error before anything starts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from dmlbook import distributed
from dmlbook.distributed import launcher, net, workers
from dmlbook.distributed.config import DistributedRunError, DistributedStallError


def _spawn(tmp_path, scripts):
    """One shell process per rank (each in its own session, as the launcher starts
    workers), writing into ``rank{r}.log``."""
    procs, logs = [], []
    for rank, script in enumerate(scripts):
        log = tmp_path / f"rank{rank}.log"
        with open(log, "wb") as out:
            procs.append(subprocess.Popen(["sh", "-c", script], stdout=out,
                                          stderr=subprocess.STDOUT, start_new_session=True))
        logs.append(log)
    return procs, logs


def _wait_exited(procs, timeout_s=20):
    deadline = time.monotonic() + timeout_s
    while any(launcher._exit_code(p) is None for p in procs):
        assert time.monotonic() < deadline, "the stand-in workers did not exit"
        time.sleep(0.02)


def test_a_stopped_rank_is_named_within_the_stall_limit(tmp_path):
    assert launcher.STALL_S <= 30  # the default names a stalled rank within 30 s
    procs, logs = _spawn(tmp_path, ["echo rank 0: round 1/9; sleep 60"] * 3)
    try:
        os.kill(procs[1].pid, signal.SIGSTOP)
        start = time.monotonic()
        with pytest.raises(DistributedStallError) as info:
            launcher._watch(procs, logs, start=start, timeout_s=300, stall_s=1.0)
        assert 1.0 <= time.monotonic() - start < 10
        assert info.value.rank == 1
        assert str(info.value).startswith("rank 1 of 3 made no progress for 1 s")
        assert "stopped by a signal (process state T)" in str(info.value)
        assert all(p.returncode is not None for p in procs)  # all stopped and reaped
    finally:
        launcher._stop(procs)


def test_a_short_stop_is_not_a_stall(tmp_path):
    procs, logs = _spawn(tmp_path, ["sleep 1.5; exit 0"] * 2)
    try:
        os.kill(procs[0].pid, signal.SIGSTOP)
        time.sleep(0.3)
        os.kill(procs[0].pid, signal.SIGCONT)
        launcher._watch(procs, logs, start=time.monotonic(), timeout_s=60, stall_s=1.0)
    finally:
        launcher._stop(procs)


def test_the_rank_that_caused_the_failure_is_blamed_not_the_lowest(tmp_path):
    lost = "echo 'Connection closed by peer' >&2; exit 1"
    procs, logs = _spawn(tmp_path, [lost, "exit 1", lost])
    try:
        _wait_exited(procs)
        assert launcher._first_failure(procs, logs) == (1, 1)
    finally:
        launcher._stop(procs)
    # A rank killed by a signal comes before one that lost its peers.
    procs, logs = _spawn(tmp_path, [lost, lost, "sleep 60"])
    try:
        os.kill(procs[2].pid, signal.SIGKILL)
        _wait_exited(procs)
        with pytest.raises(DistributedRunError) as info:
            launcher._watch(procs, logs, start=time.monotonic(), timeout_s=60, stall_s=5)
        assert info.value.rank == 2 and info.value.exit_code == -signal.SIGKILL
        assert str(info.value).startswith("rank 2 of 3 failed after")
    finally:
        launcher._stop(procs)


def test_stop_never_signals_a_reaped_worker(tmp_path, monkeypatch):
    procs, _ = _spawn(tmp_path, ["exit 0", "sleep 60", "exit 3", "sleep 60"])
    _wait_exited([procs[0], procs[2]])
    procs[0].wait()  # reaped before the stop: its id may belong to anyone now
    calls = []
    real_killpg = os.killpg

    def recording_killpg(pgid, sig):
        calls.append((pgid, sig, {p.pid: p.returncode for p in procs}[pgid]))
        real_killpg(pgid, sig)

    monkeypatch.setattr(launcher.os, "killpg", recording_killpg)
    launcher._stop(procs)
    assert calls and all(returncode is None for _, _, returncode in calls), calls
    assert procs[0].pid not in {pgid for pgid, _, _ in calls}
    assert {pgid for pgid, sig, _ in calls if sig == signal.SIGKILL} == {
        p.pid for p in procs[1:]}
    assert [p.returncode for p in procs] == [0, -signal.SIGTERM, 3, -signal.SIGTERM]
    calls.clear()
    launcher._stop(procs)  # the failure path stops twice: the second does nothing
    assert calls == []


def test_exit_codes_are_read_without_reaping(tmp_path):
    procs, _ = _spawn(tmp_path, ["exit 7"])
    _wait_exited(procs)
    assert launcher._exit_code(procs[0]) == 7
    assert procs[0].returncode is None  # still ours until the stop reaps it
    launcher._stop(procs)
    assert procs[0].returncode == 7


def test_loopback_addresses_ipv4_and_ipv6():
    for host in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"):
        assert net.is_loopback(host), host
    for host in ("8.8.8.8", "2001:db8::1", "no-such-host.invalid", ""):
        assert not net.is_loopback(host), host


def test_ipv6_loopback_pins_gloo_to_the_loopback_interface(tmp_path, monkeypatch):
    try:
        net.listen("::1", 0).close()
    except (OSError, ValueError):
        pytest.skip("no IPv6 loopback on this machine")
    monkeypatch.delenv("GLOO_SOCKET_IFNAME", raising=False)
    seen = {}

    def capture(*args, env, **kwargs):
        seen.update(env)
        raise RuntimeError("captured")

    monkeypatch.setattr(launcher.subprocess, "Popen", capture)
    with pytest.raises(RuntimeError, match="captured"):
        launcher._launch(2, [], out_dir=tmp_path, timeout_s=10, stall_s=5,
                         master_addr="::1", master_port=0, interface=None)
    assert seen["GLOO_SOCKET_IFNAME"] == net.loopback_interface()


@pytest.mark.parametrize("bad", ["bogus0", "", 5])
def test_an_unknown_interface_is_refused(bad):
    with pytest.raises(ValueError, match="interface must be a network interface"):
        net.check_interface(bad)
    assert net.check_interface(net.loopback_interface()) == net.loopback_interface()


def test_a_non_empty_work_dir_is_refused_before_anything_starts(tmp_path, monkeypatch):
    (tmp_path / "data.pt").write_text("the user's own file")
    monkeypatch.setattr(launcher.subprocess, "Popen",
                        lambda *a, **k: pytest.fail("a worker started"))
    with pytest.raises(ValueError, match="work_dir must be a new or empty folder"):
        distributed.run_dpsgd_distributed(2, topology="complete", work_dir=tmp_path)
    assert (tmp_path / "data.pt").read_text() == "the user's own file"
    assert launcher._check_work_dir(tmp_path / "new") == tmp_path / "new"


@pytest.mark.parametrize("env, name", [
    ({"WORLD_SIZE": "four", "RANK": "0", "MASTER_PORT": "29500"}, "WORLD_SIZE"),
    ({"WORLD_SIZE": "1", "RANK": "0", "MASTER_PORT": "29500"}, "WORLD_SIZE"),
    ({"RANK": "0", "MASTER_PORT": "29500"}, "WORLD_SIZE"),
    ({"WORLD_SIZE": "2", "RANK": "0", "MASTER_PORT": "http"}, "MASTER_PORT"),
    ({"WORLD_SIZE": "2", "RANK": "0", "MASTER_PORT": "70000"}, "MASTER_PORT"),
    ({"WORLD_SIZE": "2", "RANK": "2", "MASTER_PORT": "29500"}, "RANK"),
])
def test_garbage_torchrun_environment_is_a_clear_error(env, name, monkeypatch):
    for key in ("WORLD_SIZE", "RANK", "MASTER_PORT", workers.LAUNCHER_PID_ENV):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValueError, match=rf"environment variable {name} must be a whole number"):
        workers.main([])


def test_the_package_runs_as_a_module():
    done = subprocess.run([sys.executable, "-m", "dmlbook.distributed", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "python -m dmlbook.distributed" in done.stdout and "--rounds" in done.stdout


def test_every_algorithm_has_a_worker():
    assert set(distributed.WORKERS) == set(distributed.ALGORITHMS)


def test_a_rank_killed_by_a_signal_is_blamed_even_if_it_lost_a_peer_too(tmp_path):
    # Rank 1 printed that a peer went away, then was killed by a signal; rank 0 exited
    # with 1 saying nothing. The signal comes first (then the rank that did not lose a
    # peer), so rank 1 is blamed, not rank 0 (a hand-made mutant of #27 got through).
    procs, logs = _spawn(tmp_path, ["exit 1",
                                    "echo 'Connection reset by peer' >&2; exec sleep 60"])
    try:
        deadline = time.monotonic() + 20
        while "Connection reset" not in logs[1].read_text():
            assert time.monotonic() < deadline, "rank 1 printed nothing"
            time.sleep(0.02)
        os.killpg(procs[1].pid, signal.SIGKILL)
        _wait_exited(procs)
        assert launcher._first_failure(procs, logs) == (1, -signal.SIGKILL)
    finally:
        launcher._stop(procs)
