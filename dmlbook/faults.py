"""Faults a simulated network can suffer, and what each one means.

* **crash**: ``crash_at={node: r}`` — from round ``r`` on the node does
  nothing: it takes no step, sends nothing, and messages sent to it are lost.
  Its model stays frozen at what it was before round ``r``.
* **message loss**: each message is lost independently with probability
  ``drop_prob``; the sender does not know.
* **stragglers**: in each round each live node is, with probability
  ``straggler_prob``, too slow to take part: it skips its local step and sends
  nothing that round, but still receives and averages what reaches it.

Every random draw of a fault is made here, from a named stream (``STREAM_*``
below): stream ``k`` of round ``r`` is ``numpy.random.default_rng([seed, r, k])``,
so that, e.g., a lost gradient says nothing about its reply, and a straggler
nothing about a lost message. The event-driven gossip simulator draws each
message's loss from its own run's stream, in event order (:func:`lost`).

A node always averages over the models it actually received, plus its own,
with its mixing weights renormalised over those. Nothing raises: the ledger
records every message as sent, and whether it was delivered. Node ids in
``crash_at`` are checked against the run's nodes (:meth:`Faults.check_nodes`):
a crash of a node the run does not have is a ``ValueError``, not a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .units import MAX_NODES, MAX_ROUNDS, check_int, check_probability, check_seed

# The named random streams of the faults (the third entry of each draw's seed).
#: Stragglers (:meth:`Faults.active`).
STREAM_STRAGGLERS = 1
#: Message loss in a gossip exchange and in the naive all-reduce of D-PSGD
#: (:meth:`Faults.delivered`).
STREAM_LOSS = 2
#: Message loss of data-parallel training (:meth:`Faults.arrives`): gradients
#: up to the server, models down from it, the naive all-to-all, and each ring
#: step (``STREAM_RING + step``).
STREAM_UP, STREAM_DOWN, STREAM_NAIVE, STREAM_RING = 11, 12, 13, 100


@dataclass
class Faults:
    """A reproducible fault pattern: every draw is a function of (seed, round)."""

    crash_at: dict[int, int] = field(default_factory=dict)
    drop_prob: float = 0.0
    straggler_prob: float = 0.0
    seed: int = 0

    def __post_init__(self):
        self.drop_prob = check_probability("drop_prob", self.drop_prob)
        self.straggler_prob = check_probability("straggler_prob", self.straggler_prob)
        self.seed = check_seed(self.seed)
        if not isinstance(self.crash_at, dict):
            raise ValueError(f"crash_at must be a dict {{node: round}}, got {self.crash_at!r}")
        self.crash_at = {check_int("crash_at node", k, minimum=0, maximum=MAX_NODES):
                         check_int("crash_at round", v, minimum=0, maximum=MAX_ROUNDS + 1)
                         for k, v in self.crash_at.items()}

    def check_nodes(self, n: int) -> "Faults":
        """``self``, if every node in ``crash_at`` is one of ``0 .. n - 1``."""
        bad = sorted(node for node in self.crash_at if node >= n)
        if bad:
            raise ValueError(f"crash_at node must be a node id in 0 .. {n - 1}, got {bad[0]}")
        return self

    @property
    def none(self) -> bool:
        return not self.crash_at and self.drop_prob == 0 and self.straggler_prob == 0

    def _rng(self, round: int, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, round, stream])

    def alive(self, round: int, n: int) -> np.ndarray:
        """Boolean mask of the nodes that have not crashed by ``round``."""
        self.check_nodes(n)
        mask = np.ones(n, bool)
        for node, r in self.crash_at.items():
            if round >= r:
                mask[node] = False
        return mask

    def active(self, round: int, n: int) -> np.ndarray:
        """Nodes that step and send in ``round``: alive and not straggling."""
        alive = self.alive(round, n)
        if self.straggler_prob == 0:
            return alive
        return alive & (self._rng(round, STREAM_STRAGGLERS).random(n) >= self.straggler_prob)

    def delivered(self, round: int, receivers: np.ndarray, n: int) -> np.ndarray:
        """Which of the messages sent to ``receivers`` in ``round`` arrive."""
        receivers = np.asarray(receivers)
        ok = self.alive(round, n)[receivers]
        if self.drop_prob > 0:
            ok &= self._rng(round, STREAM_LOSS).random(len(receivers)) >= self.drop_prob
        return ok

    def arrives(self, round: int, receivers, alive: np.ndarray, stream: int) -> np.ndarray:
        """Which messages to ``receivers`` arrive: receiver in ``alive``, message not lost.

        The losses are drawn from the named ``stream`` of ``round``.
        """
        receivers = np.asarray(receivers, dtype=np.int64)
        ok = alive[receivers].copy()
        if self.drop_prob > 0 and len(receivers):
            ok &= self._rng(round, stream).random(len(receivers)) >= self.drop_prob
        return ok



NO_FAULTS = Faults()


def lost(rng: np.random.Generator, drop_prob: float) -> bool:
    """Whether one message is lost: one draw from ``rng``, a run's own stream.

    For event-driven simulations, whose messages are drawn in event order.
    """
    return bool(rng.random() < drop_prob)


def check_faults(faults, n: int) -> Faults:
    """``faults`` (``None``: no faults), checked to be a :class:`Faults` on ``n`` nodes."""
    if faults is None:
        return NO_FAULTS
    if not isinstance(faults, Faults):
        raise ValueError(f"faults must be a dmlbook.faults.Faults or None, "
                         f"got {type(faults).__name__}")
    return faults.check_nodes(n)
