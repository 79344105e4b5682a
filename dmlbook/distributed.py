"""The same D-PSGD loop on real processes: torch.distributed with the gloo backend.

One process per node. Each process builds the same model, data split, graph
and batch sequence as the in-process engine (everything is derived from the
seed), takes its local SGD step, and exchanges its model with its neighbours
by point-to-point ``isend``/``irecv``.

On one machine :func:`run_dpsgd_distributed` is the launcher: it checks the
whole configuration, hosts the rendezvous store on 127.0.0.1, starts one
process per rank (each in its own process group), polls them all together,
and on the first failure or time-out stops every process and raises one
:class:`DistributedRunError` naming the rank, its exit code and the tail of
its output. Nothing listens on any address but loopback unless the caller
names one.

Across machines, start this module with ``torchrun`` on every host (it reads
``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``)::

    torchrun --nnodes=2 --nproc-per-node=2 --node-rank=0 --rdzv-backend=c10d \\
        --rdzv-id=run1 --rdzv-endpoint=HOST0:29500 \\
        -m dmlbook.distributed --rounds 20 --topology ring --out-dir=results
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.distributed as dist

from .engine import FlatModel, prepare, seeded_generator
from .ledger import Ledger
from .topology import GRAPHS, Topology, make_topology
from .units import MIB, check_choice, check_int, check_number

#: Most processes :func:`run_dpsgd_distributed` starts on one machine.
MAX_WORLD_SIZE = 32
#: Resident memory of one worker process in bytes (torch + gloo + the digits;
#: measured about 340 MiB), used to size the world to the free memory.
WORKER_MEMORY_BYTES = 400 * MIB
#: Upper bounds of the counts in :class:`DistributedConfig`.
MAX_ROUNDS = 10_000
MAX_BATCH_SIZE = 4_096
MAX_SEED = 2**63 - 1
#: Longest run :func:`run_dpsgd_distributed` waits for, in seconds (one day).
MAX_TIMEOUT_S = 86_400.0
#: Kinds of graph whose shape depends on ``degree``; the others ignore it.
DEGREE_GRAPHS = ("regular", "random")
MODELS = ("logreg", "mlp", "cnn")
SPLITS = ("iid", "shards", "dirichlet")
#: Characters of a failed worker's output quoted in the error.
OUTPUT_TAIL_CHARS = 2_000
#: Seconds between two polls of the workers, and a stopped worker's grace
#: period between SIGTERM and SIGKILL.
POLL_INTERVAL_S = 0.05
STOP_GRACE_S = 2.0


@dataclass
class DistributedConfig:
    """Everything a worker needs to rebuild the run; plain values, so it pickles."""

    rounds: int = 5
    topology: str = "ring"
    degree: int = 2
    lr: float = 0.1
    batch_size: int = 16
    model: str = "mlp"
    split: str = "iid"
    seed: int = 0
    algorithm: str = "dpsgd"  # or "allreduce": data-parallel SGD with dist.all_reduce


class DistributedRunError(RuntimeError):
    """A worker failed: ``rank``, its ``exit_code`` (negative: killed by that
    signal) and the last characters of its output, ``output_tail``."""

    def __init__(self, message: str, *, rank: int, exit_code: int | None, output_tail: str):
        super().__init__(message)
        self.rank = rank
        self.exit_code = exit_code
        self.output_tail = output_tail


class DistributedTimeoutError(DistributedRunError, TimeoutError):
    """The run did not finish within ``timeout_s``; every worker was stopped."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


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


def check_config(config: DistributedConfig, world_size: int) -> DistributedConfig:
    """The checked copy of ``config`` for ``world_size`` processes.

    Every field's type and range is checked (counts have upper bounds:
    :data:`MAX_ROUNDS`, :data:`MAX_BATCH_SIZE`), and the graph is built once
    so that a ``world_size`` the topology cannot have (a ring of 2) is
    rejected here, with a ``ValueError`` naming the parameter.
    """
    algorithm = check_choice("algorithm", config.algorithm, tuple(WORKERS))
    rounds = check_int("rounds", config.rounds)
    if rounds > MAX_ROUNDS:
        raise ValueError(f"rounds must be a whole number in [1, {MAX_ROUNDS}], got {rounds}")
    batch_size = check_int("batch_size", config.batch_size)
    if batch_size > MAX_BATCH_SIZE:
        raise ValueError(f"batch_size must be a whole number in [1, {MAX_BATCH_SIZE}], "
                         f"got {batch_size}")
    lr = float(check_number("lr", config.lr))
    seed = check_int("seed", config.seed, minimum=0)
    if seed > MAX_SEED:
        raise ValueError(f"seed must be a whole number in [0, 2**63 - 1], got {seed}")
    model = check_choice("model", config.model, MODELS)
    split = check_choice("split", config.split, SPLITS)
    kind = check_choice("topology", config.topology, GRAPHS)
    degree = check_int("degree", config.degree)
    checked = DistributedConfig(rounds=rounds, topology=kind, degree=degree, lr=lr,
                                batch_size=batch_size, model=model, split=split, seed=seed,
                                algorithm=algorithm)
    if algorithm == "dpsgd":
        try:
            make_run_topology(checked, world_size)
        except ValueError as exc:
            raise ValueError(f"world_size={world_size} with topology={kind!r}"
                             f"{f' and degree={degree}' if kind in DEGREE_GRAPHS else ''}"
                             f" cannot be built: {exc}") from exc
    return checked


def make_run_topology(config: DistributedConfig, world_size: int) -> Topology:
    """The run's graph; ``degree`` is passed only to the kinds that use it."""
    extra = {"degree": config.degree} if config.topology in DEGREE_GRAPHS else {}
    return make_topology(config.topology, world_size, seed=config.seed, **extra)


def build_run(config: DistributedConfig, world_size: int, dataset=None):
    """The pieces every worker (and the in-process engine) derives from the seed.

    The topology is ``None`` for ``algorithm="allreduce"``, which has no graph.
    """
    topology = make_run_topology(config, world_size) if config.algorithm == "dpsgd" else None
    module, _, node_data, _, _ = prepare(config.model, world_size, dataset=dataset,
                                         split=config.split, seed=config.seed)
    return topology, FlatModel(module), node_data


def _gradient(flat: FlatModel, x: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """One node's gradient of its batch loss at ``x``, by plain autograd.

    Not ``torch.func.grad``: its first call imports ``torch._dynamo``, 1.2 s of
    CPU in every worker process, for the same numbers.
    """
    with torch.enable_grad():  # also when called under torch.no_grad()
        x = x.detach().requires_grad_()
        (g,) = torch.autograd.grad(flat.loss(x, X, y), x)
    return g


def _report_progress(rank: int, r: int, rounds: int, x: torch.Tensor) -> None:
    """Print a progress line now and then; stop a run whose parameters blew up."""
    if not torch.isfinite(x).all():
        raise ValueError(f"diverged at round {r} (rank {rank}): the parameters are not "
                         f"finite; try a smaller lr")
    if r in (1, rounds) or r % max(1, rounds // 10) == 0:
        print(f"rank {rank}: round {r}/{rounds}", flush=True)


def dpsgd_worker(rank: int, world_size: int, config: DistributedConfig,
                 dataset=None) -> tuple[torch.Tensor, Ledger]:
    """One node's D-PSGD loop; the process group must already be initialised."""
    topology, flat, node_data = build_run(config, world_size, dataset)
    generator = seeded_generator(config.seed)
    x = flat.initial.clone()
    neighbours = topology.neighbors(rank)
    in_edges = (topology.dst == rank).nonzero().flatten()
    weights = {int(topology.src[e]): topology.weight[e] for e in in_edges}
    ledger = Ledger(world_size)
    nbytes = x.numel() * x.element_size()
    for r in range(1, config.rounds + 1):
        # Every process draws all nodes' batches and keeps its own row, so the
        # batches equal the in-process engine's exactly.
        idx = node_data.batch_indices(generator, config.batch_size)[rank]
        x = x - config.lr * _gradient(flat, x, node_data.X[idx], node_data.y[idx])
        received = {j: torch.empty_like(x) for j in neighbours}
        requests = [dist.isend(x, j) for j in neighbours]
        requests += [dist.irecv(received[j], j) for j in neighbours]
        for request in requests:
            request.wait()
        ledger.record(r, rank, neighbours, nbytes, True)
        mixed = topology.self_weight[rank] * x
        for j in neighbours:
            mixed = mixed + weights[j] * received[j]
        x = mixed
        _report_progress(rank, r, config.rounds, x)
    return x, ledger


def allreduce_worker(rank: int, world_size: int, config: DistributedConfig, dataset=None):
    """Data-parallel SGD: average the gradients with ``dist.all_reduce``, step.

    Returns the parameters after every round, ``(rounds + 1, P)``, and an
    empty ledger: gloo's own messages are not visible from Python.
    """
    _, flat, node_data = build_run(config, world_size, dataset)
    generator = seeded_generator(config.seed)
    x = flat.initial.clone()
    snapshots = [x.clone()]
    for r in range(1, config.rounds + 1):
        idx = node_data.batch_indices(generator, config.batch_size)[rank]
        g = _gradient(flat, x, node_data.X[idx], node_data.y[idx])
        dist.all_reduce(g, op=dist.ReduceOp.SUM)
        x = x - config.lr * g / world_size
        snapshots.append(x.clone())
        _report_progress(rank, r, config.rounds, x)
    return torch.stack(snapshots), Ledger(world_size)


WORKERS = {"dpsgd": dpsgd_worker, "allreduce": allreduce_worker}


@dataclass
class DistributedResult:
    """Final parameters ``(world_size, P)`` and the merged ledger of all processes.

    ``topology`` is the run's graph (``None`` for ``algorithm="allreduce"``).
    For ``algorithm="allreduce"``, ``snapshots`` holds rank 0's parameters
    after every round, ``(rounds + 1, P)``.
    """

    params: torch.Tensor
    ledger: Ledger
    topology: Topology | None
    snapshots: torch.Tensor | None = None


def loopback_interface() -> str:
    """Name of this machine's loopback network interface (``lo`` on Linux)."""
    iff_loopback = 0x8
    for path in sorted(Path("/sys/class/net").glob("*/flags")):
        try:
            if int(path.read_text(), 16) & iff_loopback:
                return path.parent.name
        except (OSError, ValueError):
            continue
    return "lo"


def _is_loopback(host: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        return False


def _listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port`` only (never on every interface)."""
    port = int(port) if hasattr(port, "__index__") and not isinstance(port, bool) else port
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port < 2**16:
        raise ValueError(f"master_port must be a whole number in [0, 65535] (0: a free one), "
                         f"got {port!r}")
    try:
        address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except OSError as exc:
        raise ValueError(f"master_addr must be an address of this machine, got {host!r}: "
                         f"{exc}") from exc
    sock = socket.socket(address[0], socket.SOCK_STREAM)
    try:
        sock.bind(address[4])
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{port} for the rendezvous: "
                      f"{exc.strerror}; the port is taken by another program, pass another "
                      f"master_port, or master_port=0 for a free one") from exc
    sock.listen(128)
    return sock


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


def _die_with_launcher() -> None:
    """In a worker: exit when the launcher that started it dies (Linux), even by SIGKILL.

    Set here rather than in a ``preexec_fn``, which is unsafe in a threaded
    launcher such as a Jupyter kernel.
    """
    launcher = os.environ.get("DMLBOOK_LAUNCHER_PID")
    if not launcher:
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != int(launcher):  # it died before the line above
        sys.exit("the launcher of this worker has exited")


def _stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM every worker's process group, then SIGKILL what is left; reap all."""
    for sig, grace in ((signal.SIGTERM, STOP_GRACE_S), (signal.SIGKILL, 10.0)):
        for proc in procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace
        for proc in procs:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        if all(proc.poll() is not None for proc in procs):
            break
    for proc in procs:  # a worker's own children, if it made any
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
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
    codes = [proc.poll() for proc in procs]
    failed = [rank for rank, code in enumerate(codes) if code not in (None, 0)]
    if not failed:
        return None

    def blame(rank):
        lost_peer = any(m in _tail(logs[rank]) for m in PEER_LOST_MARKERS)
        return (codes[rank] >= 0, lost_peer, rank)

    rank = min(failed, key=blame)
    return rank, codes[rank]


def run_dpsgd_distributed(world_size: int = 4, *, timeout_s: float = 300,
                          master_addr: str = "127.0.0.1", master_port: int = 0,
                          interface: str | None = None, work_dir: str | Path | None = None,
                          **config) -> DistributedResult:
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
        master_addr: address the rendezvous store listens on (loopback by
            default: nothing else on the network can reach it).
        master_port: its port; ``0`` picks a free one. A taken port is an
            ``OSError`` that says so, before any worker starts.
        interface: network interface gloo binds to (``GLOO_SOCKET_IFNAME``);
            default: the environment's ``GLOO_SOCKET_IFNAME``, else loopback
            when ``master_addr`` is a loopback address.
        work_dir: where the workers' logs (``rank{r}.log``) and results go;
            default: a temporary directory, removed afterwards.
        **config: the fields of :class:`DistributedConfig`.

    Raises:
        ValueError: a bad parameter, before any process starts.
        DistributedRunError: a worker failed; every other was stopped.
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
    if not isinstance(master_addr, str) or not master_addr:
        raise ValueError(f"master_addr must be a host name or address, got {master_addr!r}")
    if interface is not None and (not isinstance(interface, str) or not interface):
        raise ValueError(f"interface must be a network interface name or None, got {interface!r}")
    cfg = check_config(DistributedConfig(**config), world_size)

    from .data import load_digits

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
                        out_dir=out_dir, timeout_s=timeout_s, master_addr=master_addr,
                        master_port=master_port, interface=interface)
    ledger = Ledger(world_size)
    for part in parts:
        c = {k: v.numpy() for k, v in part["ledger"].items()}
        ledger.record(c["round"], c["sender"], c["receiver"], c["nbytes"], c["delivered"])
    topology = make_run_topology(cfg, world_size) if cfg.algorithm == "dpsgd" else None
    snapshots = parts[0].get("snapshots")
    return DistributedResult(torch.stack([p["params"] for p in parts]), ledger, topology,
                             snapshots)


def _launch(world_size, args, *, out_dir, timeout_s, master_addr, master_port, interface):
    """Host the store, start the ranks, poll them together; stop all on any exit path."""
    listener = _listen(master_addr, master_port)
    port = listener.getsockname()[1]
    # The store takes the listening socket over (and closes it): it never
    # binds a socket of its own, which would listen on every interface.
    store = dist.TCPStore(master_addr, port, world_size, True,
                          timeout=datetime.timedelta(seconds=timeout_s),
                          wait_for_workers=False, master_listen_fd=listener.detach())
    env = {**os.environ, "WORLD_SIZE": str(world_size), "LOCAL_WORLD_SIZE": str(world_size),
           "MASTER_ADDR": master_addr, "MASTER_PORT": str(port),
           "TORCHELASTIC_USE_AGENT_STORE": "True", "OMP_NUM_THREADS": "1",
           "PYTHONUNBUFFERED": "1", "DMLBOOK_LAUNCHER_PID": str(os.getpid())}
    if interface is not None:
        env["GLOO_SOCKET_IFNAME"] = interface
    elif "GLOO_SOCKET_IFNAME" not in env and _is_loopback(master_addr):
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
        while True:
            failure = _first_failure(procs, logs)
            if failure is not None:
                rank, code = failure
                tail = _tail(logs[rank])
                _stop(procs)
                raise DistributedRunError(
                    f"rank {rank} of {world_size} failed after "
                    f"{time.monotonic() - start:.1f} s: {_describe_exit(code)}; the other "
                    f"ranks were stopped. Last output of rank {rank}:\n{tail.rstrip()}",
                    rank=rank, exit_code=code, output_tail=tail)
            if all(proc.poll() == 0 for proc in procs):
                break
            if time.monotonic() - start > timeout_s:
                running = [r for r, proc in enumerate(procs) if proc.poll() is None]
                tail = _tail(logs[running[0]])
                _stop(procs)
                raise DistributedTimeoutError(
                    f"the run took longer than timeout_s={timeout_s:g} s; rank(s) "
                    f"{', '.join(map(str, running))} of {world_size} still running were "
                    f"stopped. Last output of rank {running[0]}:\n{tail.rstrip()}",
                    rank=running[0], exit_code=None, output_tail=tail)
            time.sleep(POLL_INTERVAL_S)
        return [torch.load(out_dir / f"rank{r}.pt") for r in range(world_size)]
    finally:
        # Every exit path, KeyboardInterrupt included, leaves no worker behind.
        _stop(procs)
        del store


def main(argv=None) -> None:
    """Entry point of one worker, under torchrun or :func:`run_dpsgd_distributed`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, value in asdict(DistributedConfig()).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument("--out-dir", default=None,
                        help="write each rank's final parameters and ledger here")
    parser.add_argument("--data-file", default=None,
                        help="a saved Dataset (default: load the digits)")
    parser.add_argument("--timeout-s", type=float, default=300.0,
                        help="seconds a collective may wait for the other ranks")
    args = vars(parser.parse_args(argv))
    _die_with_launcher()
    out_dir = args.pop("out_dir")
    data_file = args.pop("data_file")
    timeout_s = check_number("timeout_s", args.pop("timeout_s"))
    world = check_int("WORLD_SIZE", int(os.environ.get("WORLD_SIZE", "0")), minimum=2)
    # Checked before joining the group: a bad flag fails fast on every host.
    config = check_config(DistributedConfig(**args), world)
    dataset = None
    if data_file:
        from .data import Dataset

        dataset = Dataset(**torch.load(data_file))
    if "GLOO_SOCKET_IFNAME" not in os.environ and _is_loopback(
            os.environ.get("MASTER_ADDR", "127.0.0.1")):
        # All ranks are on this machine: gloo listens on loopback only.
        os.environ["GLOO_SOCKET_IFNAME"] = loopback_interface()
    torch.set_num_threads(1)
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=timeout_s))  # env://
    try:
        rank = dist.get_rank()
        x, ledger = WORKERS[config.algorithm](rank, world, config, dataset)
        saved = {"params": x}
        if x.dim() == 2:  # per-round snapshots
            saved = {"params": x[-1], "snapshots": x}
            x = x[-1]
        if out_dir:
            saved["ledger"] = {k: torch.from_numpy(v) for k, v in ledger.columns().items()}
            torch.save(saved, Path(out_dir) / f"rank{rank}.pt")
        sent = torch.tensor([ledger.totals().sent])
        dist.all_reduce(sent)  # also a barrier: every rank has finished
        if rank == 0:
            print(json.dumps({"world_size": world, "messages": int(sent),
                              "param_norm_rank0": float(x.norm())}))
    finally:
        dist.destroy_process_group()
    if os.environ.get("DMLBOOK_LAUNCHER_PID"):
        # Started by run_dpsgd_distributed, whose result files are written and
        # closed: skip the interpreter's teardown (0.4 s and more per process).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
