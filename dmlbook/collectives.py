"""The collectives: every all-reduce of the package, in one place.

* :func:`naive_allreduce` — every live node sends its model to every other;
  each averages what reached it (``n (n - 1)`` messages).
* :func:`ring_allreduce` — the sum of some nodes' vectors by reduce-scatter
  and all-gather around a ring (``2 m (m - 1)`` chunk messages for ``m``
  members); exercise 3 shows it.
* :func:`ring_allreduce_models` — every node's model replaced by the average
  of all, with a ring all-reduce (D-PSGD's optional final all-reduce).

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

__all__ = ["naive_allreduce", "ring_allreduce", "ring_allreduce_models"]


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
    """
    m = len(ring)
    if m == 1:
        return grads[ring[0]].clone()
    # chunks[k][c]: member k's current copy of chunk c.
    chunks = [list(torch.tensor_split(grads[w].clone(), m)) for w in ring]
    step = 0
    for phase in ("reduce-scatter", "all-gather"):
        for s in range(m - 1):
            # Every member sends at once; use the state from before this step.
            offset = -s if phase == "reduce-scatter" else 1 - s
            outgoing = [(k, (k + offset) % m) for k in range(m)]
            payloads = [chunks[k][c].clone() for k, c in outgoing]
            senders = np.array([ring[k] for k, _ in outgoing])
            receivers = np.array([ring[(k + 1) % m] for k, _ in outgoing])
            live = alive[senders]
            delivered = live & faults.arrives(round, receivers, alive, STREAM_RING + step)
            step += 1
            ledger.record(round, senders[live], receivers[live],
                          [payloads[i].numel() * payloads[i].element_size()
                           for i in np.flatnonzero(live)], delivered[live])
            if not delivered.all():
                return None  # a chunk never arrives: the ring stalls
            for (k, c), payload in zip(outgoing, payloads):
                if phase == "reduce-scatter":
                    chunks[(k + 1) % m][c] = chunks[(k + 1) % m][c] + payload
                else:
                    chunks[(k + 1) % m][c] = payload
    return torch.cat(chunks[0])


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
