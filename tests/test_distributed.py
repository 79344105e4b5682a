"""The launcher and the gloo workers: results equal the in-process engine, and
failures, time-outs and taken ports end in one clear error with no process left.

World sizes are small (2-4) and runs short: each test starts a few Python
processes that import torch, which takes seconds on the 2-core machine.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from dmlbook import distributed
from dmlbook.distributed import launcher as launcher_module
from dmlbook.distributed import (DistributedRunError, DistributedTimeoutError,
                                 max_world_size, run_dpsgd_distributed)
from dmlbook.dpsgd import run_dpsgd
from dmlbook.units import GIB
from proc_tree import descendants

LONG = distributed.MAX_DISTRIBUTED_ROUNDS  # rounds of a run that a test ends itself


def simulate(n, topology, degree, **kw):
    """The in-process engine's run; ``degree`` only where the graph uses it."""
    extra = {"degree": degree} if topology in distributed.DEGREE_GRAPHS else {}
    return run_dpsgd(n_nodes=n, topology=topology, progress=False, **extra, **kw)


@pytest.mark.parametrize("topology, degree", [("ring", 2), ("complete", 3)])
def test_four_processes_match_the_simulator(topology, degree):
    kw = dict(rounds=4, lr=0.1, batch_size=16, seed=0)
    real = run_dpsgd_distributed(4, topology=topology, degree=degree, **kw)
    sim = simulate(4, topology, degree, **kw)
    assert real.params.shape == sim.nodes.params.shape
    assert (real.params - sim.nodes.params).abs().max().item() < 1e-5
    assert real.ledger.totals() == sim.ledger.totals()
    assert real.ledger.totals().sent == 4 * 4 * degree


# --- Validation: every bad configuration is refused before a process starts. ---

@pytest.mark.parametrize("world_size, config, name", [
    (1, {}, "world_size"),
    (2.5, {}, "world_size"),
    ("4", {}, "world_size"),
    (distributed.MAX_WORLD_SIZE + 1, {}, "world_size"),
    (10**18, {}, "world_size"),
    (2, {"topology": "ring"}, "world_size=2 with topology='ring'"),
    (4, {"topology": "torus"}, "topology='torus'"),
    (4, {"topology": 5}, "topology"),
    (4, {"topology": "regular", "degree": 4}, "degree=4"),
    (4, {"rounds": 2.5}, "rounds"),
    (4, {"rounds": 0}, "rounds"),
    (4, {"rounds": 10**12}, "rounds"),
    (4, {"batch_size": 0}, "batch_size"),
    (4, {"batch_size": 10**9}, "batch_size"),
    (4, {"lr": float("nan")}, "lr"),
    (4, {"lr": "0.1"}, "lr"),
    (4, {"seed": -1}, "seed"),
    (4, {"model": "resnet"}, "model"),
    (4, {"split": "bogus"}, "split"),
    (4, {"algorithm": "gossip"}, "algorithm"),
    (4, {"timeout_s": 0}, "timeout_s"),
    (4, {"timeout_s": float("inf")}, "timeout_s"),
    (4, {"timeout_s": 10**9}, "timeout_s"),
    (4, {"master_port": 70000}, "master_port"),
    (4, {"batchsize": 8}, "batchsize"),
    (4, {"interface": "bogus0"}, "interface"),
    (4, {"stall_s": 0}, "stall_s"),
])
def test_bad_configuration_is_refused_before_spawning(world_size, config, name, monkeypatch):
    spawned = []
    monkeypatch.setattr(launcher_module.subprocess, "Popen",
                        lambda *a, **k: spawned.append(a) or pytest.fail("a worker started"))
    with pytest.raises(ValueError) as info:
        run_dpsgd_distributed(world_size, **config)
    assert name in str(info.value)
    assert spawned == []


def test_world_size_is_bounded_by_memory():
    per = distributed.WORKER_MEMORY_BYTES
    assert max_world_size(available_bytes=2 * per) == 2
    assert max_world_size(available_bytes=5 * per + per // 2) == 5
    assert max_world_size(available_bytes=10**6 * GIB) == distributed.MAX_WORLD_SIZE
    assert max_world_size(available_bytes=0) == 0


def test_allreduce_needs_no_graph():
    """Two all-reduce workers are fine although a ring of 2 does not exist."""
    cfg = distributed.check_config(distributed.DistributedConfig(algorithm="allreduce",
                                                                 rounds=2.0), 2)
    assert cfg.rounds == 2 and type(cfg.rounds) is int  # the checked value is passed on


# --- Failures: one error, named rank, nothing left running. ---

def _children_running_dmlbook() -> dict[int, int]:
    """``{pid: rank}`` of this process's worker children (read from /proc)."""
    found = {}
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid != me:
                continue
            if b"dmlbook.distributed" not in (entry / "cmdline").read_bytes():
                continue
            env = dict(item.split(b"=", 1) for item in
                       (entry / "environ").read_bytes().split(b"\0") if b"=" in item)
            found[int(entry.name)] = int(env[b"RANK"])
        except (OSError, ValueError, IndexError, KeyError):
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_for(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def _all_training(work_dir: Path, world_size: int) -> bool:
    logs = [work_dir / f"rank{r}.log" for r in range(world_size)]
    return all(log.exists() and "round 1/" in log.read_text() for log in logs)


class Run(threading.Thread):
    """The launcher in a thread, so that the test can act on its workers."""

    def __init__(self, *args, **kwargs):
        super().__init__(daemon=True)
        self.args, self.kwargs = args, kwargs
        self.error = None
        self.result = None
        self.ended_at = None

    def run(self):
        try:
            self.result = run_dpsgd_distributed(*self.args, **self.kwargs)
        except BaseException as exc:  # handed to the test thread
            self.error = exc
        self.ended_at = time.monotonic()


def test_killed_rank_is_named_and_nothing_is_left(tmp_path):
    world = 3
    run = Run(world, topology="ring", rounds=LONG, timeout_s=120,
              work_dir=tmp_path)
    run.start()
    _wait_for(lambda: _all_training(tmp_path, world), 60, "every rank to train")
    workers = _children_running_dmlbook()
    assert sorted(workers.values()) == list(range(world))
    victim = next(pid for pid, rank in workers.items() if rank == 1)
    killed_at = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    run.join(30)
    assert not run.is_alive()
    assert run.ended_at - killed_at < 10
    error = run.error
    assert isinstance(error, DistributedRunError), repr(error)
    assert error.rank == 1 and error.exit_code == -signal.SIGKILL
    message = str(error)
    assert message.startswith(f"rank 1 of {world} failed after ")
    assert "killed by signal SIGKILL (exit code -9)" in message
    assert "the other ranks were stopped" in message
    assert "rank 1: round 1/" in message  # the tail of its output
    for pid in workers:
        assert not _alive(pid), f"worker {pid} (rank {workers[pid]}) is still running"
        assert not _group_exists(pid), f"process group {pid} still has processes"


def test_time_out_stops_every_worker(tmp_path):
    run = Run(2, topology="complete", rounds=LONG, timeout_s=4.0,
              work_dir=tmp_path)
    started = time.monotonic()
    run.start()
    workers = _wait_for(lambda: len(_children_running_dmlbook()) == 2
                        and _children_running_dmlbook(), 10, "the workers")
    run.join(60)
    assert not run.is_alive()
    error = run.error
    assert isinstance(error, DistributedTimeoutError), repr(error)
    assert isinstance(error, TimeoutError)
    assert "took longer than timeout_s=4 s" in str(error)
    # Ended at the time-out plus the stop, not after the whole run.
    assert 4.0 <= run.ended_at - started < 4.0 + 2 * distributed.STOP_GRACE_S + 5
    for pid in workers:
        assert not _alive(pid)
        assert not _group_exists(pid)


def test_taken_port_is_a_clear_error_and_starts_nothing():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(OSError, match=rf"cannot listen on 127.0.0.1:{port} .*"
                                          r"the port is taken by another program"):
            run_dpsgd_distributed(3, topology="ring", rounds=2, master_port=port)
        assert time.monotonic() - started < 30
    assert _children_running_dmlbook() == {}


def test_keyboard_interrupt_leaves_no_worker(tmp_path, monkeypatch):
    """Ctrl-C in the launcher's polling loop: the workers go with it."""
    seen = {}
    real_sleep = time.sleep

    def interrupt_once_training(seconds):
        if not seen and _all_training(tmp_path, 2):
            seen.update(_children_running_dmlbook())
            raise KeyboardInterrupt
        real_sleep(seconds)

    monkeypatch.setattr(launcher_module.time, "sleep", interrupt_once_training)
    with pytest.raises(KeyboardInterrupt):
        run_dpsgd_distributed(2, topology="complete", rounds=LONG,
                              timeout_s=120, work_dir=tmp_path)
    assert len(seen) == 2
    for pid in seen:
        assert not _alive(pid)
        assert not _group_exists(pid)


def test_workers_die_with_a_killed_launcher(tmp_path):
    """Even SIGKILL of the launcher, which runs no clean-up, leaves no worker."""
    code = ("import sys; from dmlbook.distributed import run_dpsgd_distributed as run; "
            "run(2, topology='complete', rounds=10000, timeout_s=120, work_dir=sys.argv[1])")
    launcher = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)],
                                start_new_session=True)
    try:
        _wait_for(lambda: _all_training(tmp_path, 2), 60, "every rank to train")
        workers = descendants(launcher.pid)
        assert len(workers) == 2
        os.kill(launcher.pid, signal.SIGKILL)
        launcher.wait()
        _wait_for(lambda: not any(_alive(pid) for pid in workers), 10,
                  "the workers to exit after their launcher")
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()


def test_divergence_is_reported_by_the_rank(tmp_path):
    # Both ranks diverge; whichever exits first is named.
    with pytest.raises(DistributedRunError, match=r"(?s)rank [01] of 2 failed.*exit code 1.*"
                                                  r"diverged at round \d+ \(rank [01]\).*"
                                                  r"smaller lr"):
        run_dpsgd_distributed(2, topology="complete", rounds=3, lr=1e30, timeout_s=120)
    assert _children_running_dmlbook() == {}


# --- Loopback by default. ---

def _listening_inodes() -> dict[int, str]:
    """``{socket inode: "address:port"}`` of every TCP socket in LISTEN state."""
    found = {}
    for table, family in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 6)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            local, state, inode = cols[1], cols[3], int(cols[9])
            if state != "0A":  # TCP_LISTEN
                continue
            hex_addr, hex_port = local.split(":")
            raw = bytes.fromhex(hex_addr)
            # /proc prints each 32-bit word in host (little-endian) order.
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            found[inode] = (str(ipaddress.ip_address(raw)), int(hex_port, 16))
    return found


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    except OSError:
        pass
    return inodes


def _is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def test_only_loopback_listens_during_a_run(tmp_path, monkeypatch):
    monkeypatch.delenv("GLOO_SOCKET_IFNAME", raising=False)
    world = 3
    run = Run(world, topology="ring", rounds=LONG, timeout_s=120,
              work_dir=tmp_path)
    run.start()
    try:
        _wait_for(lambda: _all_training(tmp_path, world), 60, "every rank to train")
        workers = _children_running_dmlbook()
        listening = _listening_inodes()
        owners = {"launcher": _socket_inodes(os.getpid())}
        owners.update({f"rank {rank}": _socket_inodes(pid) for pid, rank in workers.items()})
        ours = {(who, *listening[i]) for who, inodes in owners.items()
                for i in inodes if i in listening}
    finally:
        # End the long run: its job here was to be running while we looked.
        for pid in _children_running_dmlbook():
            os.kill(pid, signal.SIGKILL)
        run.join(30)
    assert isinstance(run.error, DistributedRunError)
    # The rendezvous store (in the launcher) and gloo (in every rank) listen...
    assert {who for who, _, _ in ours} >= {"launcher"} | {f"rank {r}" for r in range(world)}
    # ... and only on loopback.
    assert all(_is_loopback(address) for _, address, _ in ours), ours


# --- Two "machines": two torchrun node groups on 127.0.0.1. ---

def test_two_torchrun_nodes_match_the_simulator(tmp_path):
    """``--nnodes 2`` with c10d rendezvous: two node groups of 2 processes each,
    started as on two hosts (here both on 127.0.0.1)."""
    from dmlbook.data import load_digits

    kw = dict(rounds=4, lr=0.1, batch_size=16, seed=0)
    data_file = tmp_path / "data.pt"
    torch.save(vars(load_digits(seed=0)), data_file)
    port = distributed.free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    nodes = []
    try:
        for node_rank in (0, 1):
            cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2",
                   "--nproc-per-node=2", f"--node-rank={node_rank}", "--rdzv-backend=c10d",
                   f"--rdzv-endpoint=127.0.0.1:{port}", "--rdzv-id=dmlbook-test",
                   "--max-restarts=0", "--monitor-interval=0.5",
                   "-m", "dmlbook.distributed", "--topology=ring", "--rounds=4", "--lr=0.1",
                   "--batch-size=16", "--seed=0", f"--out-dir={tmp_path}",
                   f"--data-file={data_file}"]
            log = open(tmp_path / f"node{node_rank}.log", "wb")
            nodes.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True))
        for node in nodes:
            node.wait(timeout=120)
    finally:
        leftovers = set()
        for node in nodes:
            leftovers |= descendants(node.pid)
            if node.poll() is None:
                os.killpg(node.pid, signal.SIGKILL)
                node.wait()
        for pid in leftovers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    logs = "\n".join((tmp_path / f"node{r}.log").read_text() for r in (0, 1))
    assert [node.returncode for node in nodes] == [0, 0], logs
    params = torch.stack([torch.load(tmp_path / f"rank{r}.pt")["params"] for r in range(4)])
    sim = simulate(4, "ring", 2, **kw)
    assert (params - sim.nodes.params).abs().max().item() < 1e-5
