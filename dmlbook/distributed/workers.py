"""The workers: one process per rank, started by the launcher or by ``torchrun``.

:func:`main` is one worker's entry point (``python -m dmlbook.distributed``):
it reads ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` from
the environment (``env://``), joins the gloo process group and runs
:data:`WORKERS`\\ ``[algorithm]``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import sys
from dataclasses import asdict
from pathlib import Path

import torch
import torch.distributed as dist

from .. import configure_threads
from ..engine import FlatModel, seeded_generator
from ..ledger import Ledger
from ..units import check_number
from .config import DistributedConfig, build_run, check_config
from .net import is_loopback, loopback_interface

#: Environment variable through which the launcher tells its workers its process id.
LAUNCHER_PID_ENV = "DMLBOOK_LAUNCHER_PID"
#: Largest TCP port.
MAX_PORT = 2**16 - 1


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


def _die_with_launcher() -> None:
    """In a worker: exit when the launcher that started it dies (Linux), even by SIGKILL.

    Set here rather than in a ``preexec_fn``, which is unsafe in a threaded
    launcher such as a Jupyter kernel.
    """
    launcher = os.environ.get(LAUNCHER_PID_ENV)
    if not launcher:
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != int(launcher):  # it died before the line above
        sys.exit("the launcher of this worker has exited")


def _env_int(name: str, *, minimum: int, maximum: int | None = None) -> int:
    """A whole number from the environment variable ``name`` (set by torchrun or the
    launcher); a ``ValueError`` naming the variable if it is missing or not one."""
    raw = os.environ.get(name)
    bounds = f"[{minimum}, {maximum}]" if maximum is not None else f">= {minimum}"
    try:
        value = int(raw.strip())
    except (AttributeError, ValueError):
        value = None
    if value is None or value < minimum or (maximum is not None and value > maximum):
        raise ValueError(f"environment variable {name} must be a whole number {bounds} "
                         f"(torchrun and the launcher set it), got {raw!r}")
    return value


def main(argv=None) -> None:
    """Entry point of one worker, under torchrun or :func:`run_dpsgd_distributed`."""
    parser = argparse.ArgumentParser(
        prog="python -m dmlbook.distributed",
        description="One worker of a D-PSGD (or all-reduce SGD) run on gloo processes.")
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
    world = _env_int("WORLD_SIZE", minimum=2)
    _env_int("RANK", minimum=0, maximum=world - 1)
    _env_int("MASTER_PORT", minimum=1, maximum=MAX_PORT)
    # Checked before joining the group: a bad flag fails fast on every host.
    config = check_config(DistributedConfig(**args), world)
    dataset = None
    if data_file:
        from ..data import Dataset

        dataset = Dataset(**torch.load(data_file))
    if "GLOO_SOCKET_IFNAME" not in os.environ and is_loopback(
            os.environ.get("MASTER_ADDR", "127.0.0.1")):
        # All ranks are on this machine: gloo listens on loopback only.
        os.environ["GLOO_SOCKET_IFNAME"] = loopback_interface()
    configure_threads(1)  # the worker is a main program: one thread per rank
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
    if os.environ.get(LAUNCHER_PID_ENV):
        # Started by run_dpsgd_distributed, whose result files are written and
        # closed: skip the interpreter's teardown (0.4 s and more per process).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
