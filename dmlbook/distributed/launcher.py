"""The launcher: starts one worker process per rank on this machine and watches them.

:func:`run_dpsgd_distributed` checks the whole configuration, hosts the
rendezvous store on 127.0.0.1, starts one process per rank (each in its own
process group), polls them all together, and on the first failure, stall or
time-out stops every process and raises one :class:`DistributedRunError`
naming the rank, its exit code and the tail of its output.
"""

from __future__ import annotations

import datetime
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, fields
from pathlib import Path

import torch
import torch.distributed as dist

from ..ledger import Ledger
from ..units import MIB, check_int, check_number
from .config import (MAX_TIMEOUT_S, MAX_WORLD_SIZE, WORKER_MEMORY_BYTES, DistributedConfig,
                     DistributedResult, DistributedRunError, DistributedStallError,
                     DistributedTimeoutError, build_run, check_config, make_run_topology)
from .net import check_interface, is_loopback, listen, loopback_interface
from .workers import LAUNCHER_PID_ENV

#: Characters of a failed worker's output quoted in the error.
OUTPUT_TAIL_CHARS = 2_000
#: Seconds between two polls of the workers, and a stopped worker's grace
#: period between SIGTERM and SIGKILL.
POLL_INTERVAL_S = 0.05
STOP_GRACE_S = 2.0
#: Default seconds a worker may stay stopped (SIGSTOP, a debugger) or stuck in the
#: kernel (an uninterruptible read) before the run is stopped and the rank named.
STALL_S = 20.0
#: Process states (Linux ``/proc/PID/stat``) of a worker that makes no progress:
#: stopped by a signal, stopped by a debugger, waiting uninterruptibly in the kernel.
STALLED_STATES = {"T": "stopped by a signal", "t": "stopped by a debugger",
                  "D": "stuck in an uninterruptible wait in the kernel"}


def max_world_size(available_bytes: int | None = None) -> int:
    """Most workers this machine can hold: :data:`MAX_WORLD_SIZE`, or fewer when
    ``available_bytes`` (default: the kernel's ``MemAvailable``) is short."""
    if available_bytes is None:
        available_bytes = _available_memory_bytes()
    if available_bytes is None:
        return MAX_WORLD_SIZE
    return max(0, min(MAX_WORLD_SIZE, int(available_bytes // WORKER_MEMORY_BYTES)))


def _available_memory_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - OUTPUT_TAIL_CHARS))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name} (exit code {code})"
        except ValueError:
            return f"killed by signal {-code} (exit code {code})"
    return f"exit code {code}"


def _exit_code(proc: subprocess.Popen) -> int | None:
    """``proc``'s exit code (negative: the signal), or ``None`` while it runs.

    The child is not reaped (``WNOWAIT``): its process id, which is also its
    process group's id, stays ours until :func:`_stop` reaps it, so that no
    signal to the group can ever reach an unrelated process that reused the id.
    """
    if proc.returncode is not None:
        return proc.returncode
    try:
        info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except (AttributeError, ChildProcessError):  # no waitid here: reap as before
        return proc.poll()
    if info is None:
        return None
    return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    """``sig`` to ``proc``'s process group; only while ``proc`` is not reaped."""
    if proc.returncode is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM every running worker's process group, then SIGKILL each group; reap all.

    Groups are signalled only while their leader is not reaped (running or a
    zombie), so a worker's own children go too, and a reaped worker's id is
    never signalled. Calling it again after it returned does nothing.
    """
    pending = [proc for proc in procs if proc.returncode is None]
    if not pending:
        return
    running = [proc for proc in pending if _exit_code(proc) is None]
    for proc in running:
        _signal_group(proc, signal.SIGTERM)
        _signal_group(proc, signal.SIGCONT)  # a stopped worker must run to end
    deadline = time.monotonic() + STOP_GRACE_S
    while running and time.monotonic() < deadline:
        running = [proc for proc in running if _exit_code(proc) is None]
        if running:
            time.sleep(POLL_INTERVAL_S)
    for proc in pending:
        _signal_group(proc, signal.SIGKILL)
    for proc in pending:
        try:
            proc.wait(timeout=10.0)
        except subprocess.TimeoutExpired:  # stuck in the kernel: nothing more to do
            pass


#: Phrases in the output of a worker that failed because a peer went away.
PEER_LOST_MARKERS = ("Connection closed by peer", "Connection reset by peer",
                     "remote worker crashing", "Broken pipe")


def _first_failure(procs, logs):
    """The failed rank to blame among those found failed in one poll, or ``None``.

    Every worker is polled. A worker killed by a signal comes first, then one
    whose output does not say that a peer went away (its peers fail after it
    with a lost connection), then the lowest rank.
    """
    codes = [_exit_code(proc) for proc in procs]
    failed = [rank for rank, code in enumerate(codes) if code not in (None, 0)]
    if not failed:
        return None

    def blame(rank):
        lost_peer = any(m in _tail(logs[rank]) for m in PEER_LOST_MARKERS)
        return (codes[rank] >= 0, lost_peer, rank)

    rank = min(failed, key=blame)
    return rank, codes[rank]


def _state(proc: subprocess.Popen) -> str | None:
    """``proc``'s process state letter from ``/proc`` (Linux), or ``None``."""
    try:
        with open(f"/proc/{proc.pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0].decode()
    except (OSError, IndexError):
        return None


class _StallWatch:
    """Which ranks have been in a :data:`STALLED_STATES` state, without a break,
    for ``stall_s`` seconds."""

    def __init__(self, n: int, stall_s: float):
        self.stall_s = stall_s
        self.since: list[float | None] = [None] * n

    def stalled(self, procs, now: float):
        """``(rank, state)`` of the rank stalled longest past ``stall_s``, or ``None``."""
        worst = None
        for rank, proc in enumerate(procs):
            state = _state(proc)
            if state not in STALLED_STATES:
                self.since[rank] = None
                continue
            if self.since[rank] is None:
                self.since[rank] = now
            if now - self.since[rank] >= self.stall_s and (
                    worst is None or self.since[rank] < self.since[worst[0]]):
                worst = (rank, state)
        return worst


def _watch(procs, logs, *, start: float, timeout_s: float, stall_s: float) -> None:
    """Poll the workers until all exited with 0; raise on a failure, stall or time-out.

    The caller stops the workers (:func:`_stop`) on every exit path.
    """
    world_size = len(procs)
    stalls = _StallWatch(world_size, stall_s)

    def fail(error, rank: int, what: str, exit_code=None):
        tail = _tail(logs[rank])
        _stop(procs)
        raise error(f"{what} Last output of rank {rank}:\n{tail.rstrip()}", rank=rank,
                    exit_code=exit_code, output_tail=tail)

    while True:
        failure = _first_failure(procs, logs)
        if failure is not None:
            rank, code = failure
            fail(DistributedRunError, rank,
                 f"rank {rank} of {world_size} failed after {time.monotonic() - start:.1f} s: "
                 f"{_describe_exit(code)}; the other ranks were stopped.", code)
        if all(_exit_code(proc) == 0 for proc in procs):
            return
        now = time.monotonic()
        stall = stalls.stalled(procs, now)
        if stall is not None:
            rank, state = stall
            fail(DistributedStallError, rank,
                 f"rank {rank} of {world_size} made no progress for {stall_s:g} s: it was "
                 f"{STALLED_STATES[state]} (process state {state}); every rank was stopped.")
        if now - start > timeout_s:
            running = [r for r, proc in enumerate(procs) if _exit_code(proc) is None]
            fail(DistributedTimeoutError, running[0],
                 f"the run took longer than timeout_s={timeout_s:g} s; rank(s) "
                 f"{', '.join(map(str, running))} of {world_size} still running were stopped.")
        time.sleep(POLL_INTERVAL_S)


def _check_work_dir(work_dir) -> Path | None:
    """``work_dir`` as a path, if it is a new or empty folder (or None)."""
    if work_dir is None:
        return None
    if not isinstance(work_dir, (str, os.PathLike)) or not str(work_dir):
        raise ValueError(f"work_dir must be a folder path or None, got {work_dir!r}")
    path = Path(work_dir)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ValueError(f"work_dir must be a new or empty folder (the run writes data.pt, "
                         f"rank*.log and rank*.pt there), got {str(path)!r}, which "
                         f"{'is not a folder' if not path.is_dir() else 'is not empty'}")
    return path


def run_dpsgd_distributed(world_size: int = 4, *, timeout_s: float = 300,
                          stall_s: float = STALL_S, master_addr: str = "127.0.0.1",
                          master_port: int = 0, interface: str | None = None,
                          work_dir: str | Path | None = None, **config) -> DistributedResult:
    """Run D-PSGD (or all-reduce SGD) as ``world_size`` gloo processes and collect the result.

    The processes are started as ``torchrun`` starts them: this module's
    :func:`main`, with ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and
    ``MASTER_PORT`` in the environment, and the rendezvous store hosted by
    the launcher.

    Args:
        world_size: processes, 2 .. :func:`max_world_size` (at most
            :data:`MAX_WORLD_SIZE`, fewer when free memory is short at
            :data:`WORKER_MEMORY_BYTES` each).
        timeout_s: seconds the whole run may take (at most one day); then
            every worker is stopped and :class:`DistributedTimeoutError` raised.
        stall_s: seconds a worker may stay stopped (SIGSTOP, a debugger) or stuck
            in the kernel before every worker is stopped and
            :class:`DistributedStallError` names it (Linux; default
            :data:`STALL_S`), whatever ``timeout_s`` is.
        master_addr: address the rendezvous store listens on (loopback by
            default: nothing else on the network can reach it).
        master_port: its port; ``0`` picks a free one. A taken port is an
            ``OSError`` that says so, before any worker starts.
        interface: network interface gloo binds to (``GLOO_SOCKET_IFNAME``);
            default: the environment's ``GLOO_SOCKET_IFNAME``, else loopback
            when ``master_addr`` is a loopback address (``127.0.0.1``, ``::1``,
            ``localhost``). A name that is not an interface of this machine is
            a ``ValueError``.
        work_dir: a new or empty folder for the workers' logs (``rank{r}.log``),
            data and results (a folder with anything in it is refused, so that
            nothing of the caller's is overwritten); default: a temporary
            directory, removed afterwards.
        **config: the fields of :class:`DistributedConfig`.

    Raises:
        ValueError: a bad parameter, before any process starts.
        DistributedRunError: a worker failed; every other was stopped.
        DistributedStallError: a worker made no progress for ``stall_s``.
        DistributedTimeoutError: the run took longer than ``timeout_s``.
    """
    unknown = sorted(set(config) - {f.name for f in fields(DistributedConfig)})
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(unknown)}; accepted: "
                         f"{', '.join(f.name for f in fields(DistributedConfig))}")
    world_size = check_int("world_size", world_size, minimum=2)
    limit = max_world_size()
    if world_size > limit:
        raise ValueError(f"world_size must be a whole number in [2, {limit}] on this machine "
                         f"(at most {MAX_WORLD_SIZE}, and about {WORKER_MEMORY_BYTES // MIB} MiB "
                         f"of free memory per process), got {world_size}")
    timeout_s = float(check_number("timeout_s", timeout_s))
    if timeout_s > MAX_TIMEOUT_S:
        raise ValueError(f"timeout_s must be a number of seconds in (0, {MAX_TIMEOUT_S:g}], "
                         f"got {timeout_s!r}")
    stall_s = float(check_number("stall_s", stall_s))
    if stall_s > MAX_TIMEOUT_S:
        raise ValueError(f"stall_s must be a number of seconds in (0, {MAX_TIMEOUT_S:g}], "
                         f"got {stall_s!r}")
    if not isinstance(master_addr, str) or not master_addr:
        raise ValueError(f"master_addr must be a host name or address, got {master_addr!r}")
    interface = check_interface(interface)
    work_dir = _check_work_dir(work_dir)
    cfg = check_config(DistributedConfig(**config), world_size)

    from ..data import load_digits

    dataset = load_digits(seed=cfg.seed)
    # Building every rank's data here catches a split the world cannot have
    # (too many shards) before any process starts.
    build_run(cfg, world_size, dataset)
    args = [f"--{k.replace('_', '-')}={v}" for k, v in asdict(cfg).items()]
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = Path(work_dir) if work_dir is not None else Path(tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        # The workers read the launcher's data set from here, so that every
        # rank trains on exactly the tensors the launcher checked above.
        data_file = out_dir / "data.pt"
        torch.save(vars(dataset), data_file)
        parts = _launch(world_size, args + [f"--data-file={data_file}", f"--out-dir={out_dir}",
                                            f"--timeout-s={timeout_s}"],
                        out_dir=out_dir, timeout_s=timeout_s, stall_s=stall_s,
                        master_addr=master_addr, master_port=master_port,
                        interface=interface)
    ledger = Ledger(world_size)
    for part in parts:
        c = {k: v.numpy() for k, v in part["ledger"].items()}
        ledger.record(c["round"], c["sender"], c["receiver"], c["nbytes"], c["delivered"])
    topology = make_run_topology(cfg, world_size) if cfg.algorithm == "dpsgd" else None
    snapshots = parts[0].get("snapshots")
    return DistributedResult(torch.stack([p["params"] for p in parts]), ledger, topology,
                             snapshots)


def _launch(world_size, args, *, out_dir, timeout_s, stall_s, master_addr, master_port,
            interface):
    """Host the store, start the ranks, watch them together; stop all on any exit path."""
    listener = listen(master_addr, master_port)
    port = listener.getsockname()[1]
    # The store takes the listening socket over (and closes it): it never
    # binds a socket of its own, which would listen on every interface.
    store = dist.TCPStore(master_addr, port, world_size, True,
                          timeout=datetime.timedelta(seconds=timeout_s),
                          wait_for_workers=False, master_listen_fd=listener.detach())
    env = {**os.environ, "WORLD_SIZE": str(world_size), "LOCAL_WORLD_SIZE": str(world_size),
           "MASTER_ADDR": master_addr, "MASTER_PORT": str(port),
           "TORCHELASTIC_USE_AGENT_STORE": "True", "OMP_NUM_THREADS": "1",
           "PYTHONUNBUFFERED": "1", LAUNCHER_PID_ENV: str(os.getpid())}
    if interface is not None:
        env["GLOO_SOCKET_IFNAME"] = interface
    elif "GLOO_SOCKET_IFNAME" not in env and is_loopback(master_addr):
        env["GLOO_SOCKET_IFNAME"] = loopback_interface()
    procs: list[subprocess.Popen] = []
    logs = [out_dir / f"rank{rank}.log" for rank in range(world_size)]
    start = time.monotonic()
    try:
        for rank in range(world_size):
            with open(logs[rank], "wb") as log:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "dmlbook.distributed", *args],
                    env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank)},
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True))
        _watch(procs, logs, start=start, timeout_s=timeout_s, stall_s=stall_s)
        return [torch.load(out_dir / f"rank{r}.pt") for r in range(world_size)]
    finally:
        # Every exit path, KeyboardInterrupt included, leaves no worker behind.
        _stop(procs)
        del store
