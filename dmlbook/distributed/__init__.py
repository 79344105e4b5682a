"""The same D-PSGD loop on real processes: torch.distributed with the gloo backend.

One process per node. Each process builds the same model, data split, graph
and batch sequence as the in-process engine (everything is derived from the
seed), takes its local SGD step, and exchanges its model with its neighbours
by point-to-point ``isend``/``irecv``.

Split the way ``torch.distributed.run`` splits it:

* :mod:`.config` — the run's configuration, bounds, result and errors;
* :mod:`.workers` — one rank's loop and its entry point :func:`main`
  (``python -m dmlbook.distributed``, via :mod:`.__main__`);
* :mod:`.launcher` — :func:`run_dpsgd_distributed`, which on one machine
  checks the whole configuration, hosts the rendezvous store on 127.0.0.1,
  starts one process per rank (each in its own process group), polls them
  all together, and on the first failure, stall or time-out stops every
  process and raises one :class:`DistributedRunError` naming the rank, its
  exit code and the tail of its output;
* :mod:`.net` — loopback, interfaces and the rendezvous socket. Nothing
  listens on any address but loopback unless the caller names one.

Across machines, start this package with ``torchrun`` on every host (it reads
``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``)::

    torchrun --nnodes=2 --nproc-per-node=2 --node-rank=0 --rdzv-backend=c10d \\
        --rdzv-id=run1 --rdzv-endpoint=HOST0:29500 \\
        -m dmlbook.distributed --rounds 20 --topology ring --out-dir=results
"""

from .config import (ALGORITHMS, DEGREE_GRAPHS, MAX_DISTRIBUTED_BATCH_SIZE,
                     MAX_DISTRIBUTED_ROUNDS, MAX_DISTRIBUTED_SEED, MAX_TIMEOUT_S,
                     MAX_WORLD_SIZE, MODELS, SPLITS, WORKER_MEMORY_BYTES, DistributedConfig,
                     DistributedResult, DistributedRunError, DistributedStallError,
                     DistributedTimeoutError, build_run, check_config, make_run_topology)
from .launcher import (OUTPUT_TAIL_CHARS, POLL_INTERVAL_S, STALL_S, STOP_GRACE_S,
                       max_world_size, run_dpsgd_distributed)
from .net import free_port, is_loopback, loopback_interface
from .workers import WORKERS, allreduce_worker, dpsgd_worker, main

__all__ = [
    "ALGORITHMS", "DEGREE_GRAPHS", "MAX_DISTRIBUTED_BATCH_SIZE", "MAX_DISTRIBUTED_ROUNDS",
    "MAX_DISTRIBUTED_SEED", "MAX_TIMEOUT_S", "MAX_WORLD_SIZE", "MODELS", "SPLITS",
    "WORKER_MEMORY_BYTES", "DistributedConfig", "DistributedResult", "DistributedRunError",
    "DistributedStallError", "DistributedTimeoutError", "build_run", "check_config",
    "make_run_topology", "OUTPUT_TAIL_CHARS", "POLL_INTERVAL_S", "STALL_S", "STOP_GRACE_S",
    "max_world_size", "run_dpsgd_distributed", "free_port", "is_loopback",
    "loopback_interface", "WORKERS", "allreduce_worker", "dpsgd_worker", "main",
]
