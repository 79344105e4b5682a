"""The same D-PSGD loop on real processes: torch.distributed with the gloo backend.

One process per node. Each process builds the same model, data split, graph
and batch sequence as the in-process engine (everything is derived from the
seed), takes its local SGD step, and exchanges its model with its neighbours
by point-to-point ``isend``/``irecv``. On one machine :func:`run_dpsgd_distributed`
starts the processes itself on 127.0.0.1; across machines, start this module
with ``torchrun`` (it reads ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and
``MASTER_PORT``)::

    torchrun --nnodes=2 --nproc-per-node=4 --rdzv-endpoint=HOST:29500 \\
        -m dmlbook.distributed --rounds 20 --topology ring
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch.func import grad

from .engine import FlatModel, prepare, seeded_generator
from .ledger import Ledger
from .topology import Topology, make_topology
from .units import check_int, check_number


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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_run(config: DistributedConfig, world_size: int, dataset=None):
    """The pieces every worker (and the in-process engine) derives from the seed."""
    topology = make_topology(config.topology, world_size, degree=config.degree,
                             seed=config.seed)
    module, _, node_data, _, _ = prepare(config.model, world_size, dataset=dataset,
                                         split=config.split, seed=config.seed)
    return topology, FlatModel(module), node_data


def dpsgd_worker(rank: int, world_size: int, config: DistributedConfig,
                 dataset=None) -> tuple[torch.Tensor, Ledger]:
    """One node's D-PSGD loop; the process group must already be initialised."""
    topology, flat, node_data = build_run(config, world_size, dataset)
    generator = seeded_generator(config.seed)
    grad_fn = grad(flat.loss)
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
        x = x - config.lr * grad_fn(x, node_data.X[idx], node_data.y[idx])
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
    return x, ledger


def allreduce_worker(rank: int, world_size: int, config: DistributedConfig, dataset=None):
    """Data-parallel SGD: average the gradients with ``dist.all_reduce``, step.

    Returns the parameters after every round, ``(rounds + 1, P)``, and an
    empty ledger: gloo's own messages are not visible from Python.
    """
    _, flat, node_data = build_run(config, world_size, dataset)
    generator = seeded_generator(config.seed)
    grad_fn = grad(flat.loss)
    x = flat.initial.clone()
    snapshots = [x.clone()]
    for _ in range(config.rounds):
        idx = node_data.batch_indices(generator, config.batch_size)[rank]
        g = grad_fn(x, node_data.X[idx], node_data.y[idx])
        dist.all_reduce(g, op=dist.ReduceOp.SUM)
        x = x - config.lr * g / world_size
        snapshots.append(x.clone())
    return torch.stack(snapshots), Ledger(world_size)


WORKERS = {"dpsgd": dpsgd_worker, "allreduce": allreduce_worker}


@dataclass
class DistributedResult:
    """Final parameters ``(world_size, P)`` and the merged ledger of all processes.

    For ``algorithm="allreduce"``, ``snapshots`` holds rank 0's parameters
    after every round, ``(rounds + 1, P)``.
    """

    params: torch.Tensor
    ledger: Ledger
    topology: Topology
    snapshots: torch.Tensor | None = None


def run_dpsgd_distributed(world_size: int = 4, *, timeout_s: float = 300,
                          **config) -> DistributedResult:
    """Run D-PSGD as ``world_size`` gloo processes on 127.0.0.1 and collect the result.

    The processes are started exactly as ``torchrun`` would start them: this
    module's :func:`main`, with ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and
    ``MASTER_PORT`` in the environment.
    """
    world_size = check_int("world_size", world_size, minimum=2)
    cfg = DistributedConfig(**config)
    if cfg.algorithm not in WORKERS:
        raise ValueError(f"algorithm must be one of {', '.join(WORKERS)}, got {cfg.algorithm!r}")
    check_int("rounds", cfg.rounds)
    check_number("lr", cfg.lr)
    args = [f"--{k.replace('_', '-')}={v}" for k, v in asdict(cfg).items()]
    with tempfile.TemporaryDirectory() as out_dir:
        # The workers read the data from here rather than each importing
        # scikit-learn to load it: about 80 MB less memory per process.
        from .data import load_digits

        data_file = Path(out_dir) / "data.pt"
        torch.save(vars(load_digits(seed=cfg.seed)), data_file)
        args.append(f"--data-file={data_file}")
        env = {**os.environ, "WORLD_SIZE": str(world_size), "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": str(free_port()), "OMP_NUM_THREADS": "1"}
        procs = [subprocess.Popen(
            [sys.executable, "-m", "dmlbook.distributed", f"--out-dir={out_dir}", *args],
            env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank)},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for rank in range(world_size)]
        outputs = [proc.communicate(timeout=timeout_s)[0] for proc in procs]
        failed = [(r, out) for r, (proc, out) in enumerate(zip(procs, outputs)) if proc.returncode]
        if failed:
            rank, out = failed[0]
            raise RuntimeError(f"worker {rank} of {world_size} failed:\n{out[-3000:]}")
        parts = [torch.load(Path(out_dir) / f"rank{r}.pt") for r in range(world_size)]
    ledger = Ledger(world_size)
    for part in parts:
        c = {k: v.numpy() for k, v in part["ledger"].items()}
        ledger.record(c["round"], c["sender"], c["receiver"], c["nbytes"], c["delivered"])
    topology = make_topology(cfg.topology, world_size, degree=cfg.degree, seed=cfg.seed)
    snapshots = parts[0].get("snapshots")
    return DistributedResult(torch.stack([p["params"] for p in parts]), ledger, topology,
                             snapshots)


def main(argv=None) -> None:
    """Entry point of one worker, under torchrun or :func:`run_dpsgd_distributed`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, value in asdict(DistributedConfig()).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument("--out-dir", default=None,
                        help="write each rank's final parameters and ledger here")
    parser.add_argument("--data-file", default=None,
                        help="a saved Dataset (default: load the digits)")
    args = vars(parser.parse_args(argv))
    out_dir = args.pop("out_dir")
    data_file = args.pop("data_file")
    dataset = None
    if data_file:
        from .data import Dataset

        dataset = Dataset(**torch.load(data_file))
    torch.set_num_threads(1)
    dist.init_process_group("gloo")  # env:// rendezvous
    try:
        rank, world = dist.get_rank(), dist.get_world_size()
        config = DistributedConfig(**args)
        if config.algorithm not in WORKERS:
            raise ValueError(f"algorithm must be one of {', '.join(WORKERS)}, got {config.algorithm!r}")
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


if __name__ == "__main__":
    main()
