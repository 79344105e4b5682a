"""Mixing: every node's row averaged with the rows its neighbours sent (D-PSGD, gossip).

One round of mixing is one matrix product ``W @ params`` (sparse; dense for a
large, dense graph) with the topology's mixing matrix ``W``
(:func:`mixing_operator`), renormalised over the
messages that arrived when faults drop some; every message goes through a
:class:`~dmlbook.ledger.Ledger`. :func:`gossip` mixes the engine's stacked
parameters in place, a block of columns at a time, so that a run holds one
``(n, P)`` copy of the models.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import torch

from .faults import NO_FAULTS, Faults
from .ledger import Ledger
from .topology import Topology
from .units import check_diverged

if TYPE_CHECKING:
    from .engine import Nodes

# Bytes of the temporary copies that mixing and the consensus distance make at a time.
COPY_BUDGET = 16 * 2**20
# A mixing matrix with at least this many entries, and at least this share of
# them nonzero, is kept dense: torch's sparse product is 4 to 6 times slower
# than the dense one on such a matrix (the complete graph of 1,000 nodes times
# 2,410 columns: 0.26 s against 0.06 s on 2 threads), and a graph of MAX_NODES
# nodes is 64 MiB dense. Smaller or sparser matrices (all of the book's) stay
# sparse.
DENSE_MIN_ENTRIES = 2**18
DENSE_MIN_FILL = 1 / 8


def resolve_device(device) -> torch.device:
    """``"cpu"`` (the default everywhere) or a CUDA device when one exists."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device must be 'cpu' on this machine (no CUDA), got {device!r}")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    return dev


def mixing_operator(topology: Topology, *, keep: torch.Tensor | None = None,
                    alive: np.ndarray | None = None, device="cpu") -> torch.Tensor:
    """The round's mixing matrix, ready for ``W @ params``.

    A sparse CSR tensor, or a dense one for a large and dense graph
    (:data:`DENSE_MIN_ENTRIES`, :data:`DENSE_MIN_FILL`): the same numbers up
    to the order of the additions.

    ``keep`` masks the directed edges whose message arrived; each row is then
    renormalised over what arrived. Rows of crashed nodes (``alive`` False)
    are the identity: their model stays as it is. Without ``keep`` and
    ``alive`` this is the topology's ``W`` itself, cached per device.
    """
    plain = keep is None and alive is None
    cache = topology.__dict__.setdefault("_csr_cache", {})
    if plain and device in cache:  # the hot path: one lookup per round
        return cache[device]
    dev = resolve_device(device)
    n = topology.n
    src, dst, w = topology.src, topology.dst, topology.weight
    if keep is not None:
        src, dst, w = src[keep], dst[keep], w[keep]
    diag = torch.arange(n)
    rows, cols = torch.cat([dst, diag]), torch.cat([src, diag])
    vals = torch.cat([w, topology.self_weight])
    if keep is not None:
        total = topology.self_weight.clone().index_add_(0, dst, w)
        vals = vals / total[rows]
    if alive is not None:
        alive_t = torch.from_numpy(np.asarray(alive))
        stays = alive_t[rows] | (rows == cols)
        vals = torch.where(alive_t[rows], vals, torch.ones_like(vals))[stays]
        rows, cols = rows[stays], cols[stays]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR is in beta"
        W = torch.sparse_coo_tensor(torch.stack([rows, cols]), vals, (n, n))
        W = W.coalesce()
        nonzero = W.values().numel()
        if n * n >= DENSE_MIN_ENTRIES and nonzero >= DENSE_MIN_FILL * n * n:
            W = W.to_dense().to(dev)
        else:
            W = W.to_sparse_csr().to(dev)
    if plain:
        cache[dev] = cache[device] = W
    return W


def mix(tensor: torch.Tensor, topology: Topology, *, round: int, ledger: Ledger,
        nbytes: int, faults: Faults = NO_FAULTS, active: np.ndarray | None = None,
        in_place: bool = False) -> torch.Tensor:
    """Send each node's row of ``tensor`` to its neighbours; return the mixed rows.

    Row ``i`` becomes ``(W_ii t_i + sum_j W_ij t_j) / (W_ii + sum_j W_ij)``
    over the ``j`` whose message reached ``i`` this round (without faults the
    denominator is 1: plain multiplication by ``W``). Rows of crashed nodes
    stay as they are. Every message goes into ``ledger`` with ``nbytes``.
    A ``tensor`` that is no longer finite stops the run: "diverged at round r".
    ``in_place=True`` may write the mixed rows into ``tensor`` itself, a
    block of columns at a time (the same numbers, without a second
    ``(n, P)``): the caller keeps the returned tensor, not ``tensor``.
    """
    check_diverged(round, **{"what the nodes send": tensor})
    n = topology.n
    src, dst = topology.src_np, topology.dst_np
    if active is None:
        active = faults.active(round, n)
    if faults.none:  # the common case: every message sent and delivered
        ledger.record(round, src, dst, nbytes, True)
        return _apply(mixing_operator(topology, device=tensor.device), tensor, in_place)
    sent = active[src]
    delivered = np.zeros_like(sent)
    delivered[sent] = faults.delivered(round, dst[sent], n)
    ledger.record(round, src[sent], dst[sent], nbytes, delivered[sent])
    if delivered.all():
        W = mixing_operator(topology, device=tensor.device)
    else:
        W = mixing_operator(topology, keep=torch.from_numpy(delivered),
                            alive=faults.alive(round, n), device=tensor.device)
    return _apply(W, tensor, in_place)


def _apply(W: torch.Tensor, tensor: torch.Tensor, in_place: bool) -> torch.Tensor:
    """``W @ tensor``; in place, one block of columns at a time (each column of
    the product depends on the same column of ``tensor`` only)."""
    cols = max(1, COPY_BUDGET // (tensor.element_size() * max(1, tensor.shape[0])))
    if not in_place or cols >= tensor.shape[1]:  # small: a new tensor, no copy back
        return W @ tensor
    for start in range(0, tensor.shape[1], cols):
        block = tensor[:, start:start + cols]
        block.copy_(W @ block.contiguous())
    return tensor


def gossip(nodes: Nodes, topology: Topology, *, round: int, ledger: Ledger,
           faults: Faults = NO_FAULTS, active: np.ndarray | None = None) -> None:
    """Every active node sends its model to each neighbour; each live node averages.

    See :func:`mix`: a node averages over the models it actually received.
    """
    nodes.params = mix(nodes.params, topology, round=round, ledger=ledger,
                       nbytes=nodes.payload_bytes, faults=faults, active=active, in_place=True)
