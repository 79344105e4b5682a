"""The collectives: every all-reduce of the package, in one place.

* :func:`naive_allreduce` — every live node sends its model to every other;
  each averages what reached it (``n (n - 1)`` messages).
* :func:`ring_allreduce` — the sum of some nodes' vectors by reduce-scatter
  and all-gather around a ring (``2 m (m - 1)`` chunk messages for ``m``
  members); exercise 3 shows it.
* :func:`ring_allreduce_models` — every node's model replaced by the average
  of all, with a ring all-reduce (D-PSGD's optional final all-reduce).
* :func:`naive_messages`, :func:`naive_means` — the data-parallel naive
  all-reduce's messages and each receiver's mean, for all members at once.

Each step of a collective is a few tensor operations over all members, and
the ledger is recorded from index arrays (#27.3): no Python loop over nodes.

Each records every message in a :class:`~dmlbook.ledger.Ledger`; message loss
and crashes come from :class:`~dmlbook.faults.Faults`. ``nodes`` is the
engine's :class:`~dmlbook.engine.Nodes` (stacked parameters ``(n, P)``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from .faults import NO_FAULTS, STREAM_RING, Faults
from .ledger import Ledger
from .units import check_diverged

if TYPE_CHECKING:  # the engine's node stack; only its type is needed here
    from .engine import Nodes

__all__ = ["naive_allreduce", "naive_means", "naive_messages", "ring_allreduce",
           "ring_allreduce_models"]


def naive_allreduce(nodes: Nodes, *, round: int, ledger: Ledger,
                    faults: Faults = NO_FAULTS) -> None:
    """Every live node sends its model to every other node; all take the average.

    ``n (n - 1)`` messages without faults. A node averages the models that
    reached it, its own included: D-PSGD's exchange on the complete graph,
    whose Metropolis weights are all ``1/n``. Every live node sends (an
    all-reduce waits for stragglers); crashed nodes keep their model.

    No graph is built: without faults every node gets the exact mean; with
    faults an ``n x n`` 0/1 matrix of what arrived averages it. Messages are
    recorded grouped by receiver, like :func:`~dmlbook.engine.mix` on the complete
    graph.
    """
    n = nodes.n
    check_diverged(round, **{"the models": nodes.params})
    receiver = np.repeat(np.arange(n, dtype=np.int32), n - 1)
    sender = np.tile(np.arange(n - 1, dtype=np.int32), n)
    sender += sender >= receiver  # everyone but the receiver, in order
    if faults.none:
        ledger.record(round, sender, receiver, nodes.payload_bytes, True)
        nodes.params = nodes.params.mean(0, keepdim=True).expand(n, -1).clone()
        return
    alive = faults.alive(round, n)
    sent = alive[sender]
    sender, receiver = sender[sent], receiver[sent]
    delivered = faults.delivered(round, receiver, n)
    ledger.record(round, sender, receiver, nodes.payload_bytes, delivered)
    arrived = torch.eye(n, dtype=nodes.params.dtype, device=nodes.params.device)
    arrived[torch.from_numpy(receiver[delivered]).long(),
            torch.from_numpy(sender[delivered]).long()] = 1
    averaged = (arrived @ nodes.params) / arrived.sum(1, keepdim=True)
    keep = torch.from_numpy(alive).to(nodes.params.device)[:, None]
    nodes.params = torch.where(keep, averaged, nodes.params)


def ring_allreduce(grads: torch.Tensor, ring: list[int], *, round: int, ledger: Ledger,
                   alive: np.ndarray, faults: Faults = NO_FAULTS) -> torch.Tensor | None:
    """Sum ``grads[ring]`` by reduce-scatter + all-gather; ``None`` if the ring stalls.

    ``grads`` is ``(n, P)``; members are worker ids in ring order. A chunk
    that does not arrive (dead receiver or sender, or a lost message) stalls
    the ring: the members notice and abandon the round after that step.

    Each step is one tensor operation for all members at once: the members'
    copies of the ``m`` chunks (``torch.tensor_split``'s, zero-padded to one
    length) form an ``(m, m, c)`` tensor, and member ``k`` adds (or, in the
    all-gather, takes) what member ``k - 1`` sends, in the same order of
    additions as one member at a time would.
    """
    m = len(ring)
    if m == 1:
        return grads[ring[0]].clone()
    P = grads.shape[1]
    sizes = torch.tensor([len(c) for c in torch.tensor_split(torch.empty(P), m)])
    starts = torch.cumsum(sizes, 0) - sizes
    width = max(1, int(sizes.max()))
    offsets = torch.arange(width)
    index = torch.where(offsets < sizes[:, None], starts[:, None] + offsets, P)  # P: a zero
    padded = torch.cat([grads[torch.as_tensor(ring)], grads.new_zeros(m, 1)], 1)
    chunks = padded[:, index]  # (member, chunk, width)
    nbytes = (sizes * grads.element_size()).numpy()
    members = np.arange(m)
    ring_ids = np.asarray(ring, dtype=np.int64)
    senders, receivers = ring_ids, np.roll(ring_ids, -1)
    live = alive[senders]
    k = torch.arange(m, device=grads.device)
    step = 0
    for phase in ("reduce-scatter", "all-gather"):
        for s in range(m - 1):
            offset = -s if phase == "reduce-scatter" else 1 - s
            c = (members + offset) % m
            delivered = live & faults.arrives(round, receivers, alive, STREAM_RING + step)
            step += 1
            ledger.record(round, senders[live], receivers[live], nbytes[c][live],
                          delivered[live])
            if not delivered.all():
                return None  # a chunk never arrives: the ring stalls
            ct = torch.from_numpy(c).to(grads.device)
            payload = chunks[k, ct]
            to = (k + 1) % m
            chunks[to, ct] = chunks[to, ct] + payload if phase == "reduce-scatter" else payload
    return chunks[0].reshape(-1)[(offsets < sizes[:, None]).reshape(-1)]


def naive_messages(sending: np.ndarray, members: np.ndarray):
    """Senders and receivers of a naive all-reduce: each sender to every other member, in order.

    ``sending`` are the members that send (each one of ``members``).
    """
    grid = np.broadcast_to(members, (len(sending), len(members)))
    dst = grid[grid != sending[:, None]]
    return np.repeat(sending, len(members) - 1), dst


def naive_means(grads: torch.Tensor, sending: np.ndarray, src: np.ndarray, dst: np.ndarray,
                 ok: np.ndarray) -> torch.Tensor:
    """Each sender's mean of its own gradient and those that reached it: ``(len(sending), P)``.

    Every member sends to every other, so a receiver's sum is the sum over
    all senders less the messages lost on the way to it: one sum, and one
    ``index_add`` over the lost messages (in blocks, to bound memory).
    """
    total = grads[torch.from_numpy(sending)].sum(0)
    row = np.full(int(sending.max()) + 1, -1, dtype=np.int64)
    row[sending] = np.arange(len(sending))
    lost = np.flatnonzero(~ok)
    sums = total.expand(len(sending), -1).clone()
    counts = torch.full((len(sending), 1), float(len(sending)), dtype=grads.dtype)
    block = max(1, 2**22 // max(1, grads.shape[1]))
    for start in range(0, len(lost), block):
        part = lost[start:start + block]
        rows = torch.from_numpy(row[dst[part]])
        sums.index_add_(0, rows, grads[torch.from_numpy(src[part])], alpha=-1)
        counts.index_add_(0, rows, torch.full((len(part), 1), -1.0, dtype=grads.dtype))
    return sums / counts


def ring_allreduce_models(nodes: Nodes, *, round: int, ledger: Ledger) -> None:
    """Replace every node's model by the average of all, with a ring all-reduce.

    Node ``i`` passes chunks to node ``i + 1``: ``n - 1`` reduce-scatter steps
    and ``n - 1`` all-gather steps, each node sending one chunk (about
    ``1/n`` of a model) per step: ``2 n (n - 1)`` messages, ``2 (n - 1)``
    models' worth of bytes in all. Every message goes into ``ledger``. Faults
    are not modelled here (the sheet's nodes are reliable).
    """
    n = nodes.n
    total = ring_allreduce(nodes.params, list(range(n)), round=round, ledger=ledger,
                           alive=np.ones(n, dtype=bool))
    nodes.params = (total / n).expand(n, -1).clone()
