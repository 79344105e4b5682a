"""What a distributed run is: its configuration, its bounds, its result and its errors.

Shared by the launcher (:mod:`.launcher`) and the workers (:mod:`.workers`):
everything here is derived from the configuration and the seed, so that every
process builds the same model, data split, graph and batch sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..engine import FlatModel, prepare
from ..ledger import Ledger
from ..topology import GRAPHS, Topology, make_topology
from ..units import MIB, check_choice, check_int, check_number

#: Most processes :func:`~dmlbook.distributed.run_dpsgd_distributed` starts on one machine.
MAX_WORLD_SIZE = 32
#: Resident memory of one worker process in bytes (torch + gloo + the digits;
#: measured about 340 MiB), used to size the world to the free memory.
WORKER_MEMORY_BYTES = 400 * MIB
# The bounds of a run on real processes. They differ from the simulator's
# (dmlbook.units.MAX_ROUNDS, MAX_BATCH_SIZE, MAX_SEED), hence their own names:
# a gloo round costs milliseconds, not microseconds, and a worker's seed is a
# torch seed (up to 2**63 - 1).
#: Rounds of one distributed run.
MAX_DISTRIBUTED_ROUNDS = 10_000
#: Examples in one worker's mini-batch.
MAX_DISTRIBUTED_BATCH_SIZE = 4_096
#: A distributed run's seed (torch's ``manual_seed`` takes up to 2**63 - 1).
MAX_DISTRIBUTED_SEED = 2**63 - 1
#: Longest run :func:`~dmlbook.distributed.run_dpsgd_distributed` waits for, in seconds (one day).
MAX_TIMEOUT_S = 86_400.0
#: Kinds of graph whose shape depends on ``degree``; the others ignore it.
DEGREE_GRAPHS = ("regular", "random")
MODELS = ("logreg", "mlp", "cnn")
SPLITS = ("iid", "shards", "dirichlet")
#: What the workers run: D-PSGD, or data-parallel SGD with ``dist.all_reduce``.
ALGORITHMS = ("dpsgd", "allreduce")


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


class DistributedStallError(DistributedRunError):
    """A worker made no progress for ``stall_s`` seconds (stopped by a signal, held by
    a debugger, or stuck in the kernel); ``rank`` names it. Every worker was stopped."""


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


def check_config(config: DistributedConfig, world_size: int) -> DistributedConfig:
    """The checked copy of ``config`` for ``world_size`` processes.

    Every field's type and range is checked (counts have upper bounds:
    :data:`MAX_DISTRIBUTED_ROUNDS`, :data:`MAX_DISTRIBUTED_BATCH_SIZE`), and the
    graph is built once so that a ``world_size`` the topology cannot have (a ring
    of 2) is rejected here, with a ``ValueError`` naming the parameter.
    """
    algorithm = check_choice("algorithm", config.algorithm, ALGORITHMS)
    rounds = check_int("rounds", config.rounds)
    if rounds > MAX_DISTRIBUTED_ROUNDS:
        raise ValueError(f"rounds must be a whole number in [1, {MAX_DISTRIBUTED_ROUNDS}], "
                         f"got {rounds}")
    batch_size = check_int("batch_size", config.batch_size)
    if batch_size > MAX_DISTRIBUTED_BATCH_SIZE:
        raise ValueError(f"batch_size must be a whole number in "
                         f"[1, {MAX_DISTRIBUTED_BATCH_SIZE}], got {batch_size}")
    lr = float(check_number("lr", config.lr))
    seed = check_int("seed", config.seed, minimum=0)
    if seed > MAX_DISTRIBUTED_SEED:
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
    setup = prepare(config.model, world_size, dataset=dataset, split=config.split,
                    seed=config.seed)
    return topology, FlatModel(setup.module), setup.node_data
