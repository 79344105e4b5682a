"""The message ledger: one record per message a simulated node sends.

Every count of messages or bytes a chapter shows is read from a ledger, never
computed from a formula; tests check the ledger against the formulas.
Records are stored column-wise in NumPy arrays, so that a round of thousands
of messages is recorded with one call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .units import check_int


@dataclass(frozen=True)
class LedgerTotals:
    """Totals of a ledger: messages and bytes, sent and delivered."""

    sent: int
    delivered: int
    bytes_sent: int
    bytes_delivered: int

    @property
    def lost(self) -> int:
        return self.sent - self.delivered


class Ledger:
    """Append-only record of messages: round, sender, receiver, bytes, delivered."""

    FIELDS = ("round", "sender", "receiver", "nbytes", "delivered")

    def __init__(self, n_nodes: int | None = None):
        self.n_nodes = None if n_nodes is None else check_int("n_nodes", n_nodes)
        self._chunks: list[tuple[np.ndarray, ...]] = []
        self._cache: dict[str, np.ndarray] | None = None

    def record(self, round, sender, receiver, nbytes, delivered=True) -> None:
        """Record one message or many (array arguments broadcast together)."""
        sender = np.atleast_1d(np.asarray(sender, dtype=np.int64))
        receiver = np.atleast_1d(np.asarray(receiver, dtype=np.int64))
        size = max(len(sender), len(receiver))
        cols = (np.broadcast_to(np.asarray(round, dtype=np.int64), size),
                np.broadcast_to(sender, size), np.broadcast_to(receiver, size),
                np.broadcast_to(np.asarray(nbytes, dtype=np.int64), size),
                np.broadcast_to(np.asarray(delivered, dtype=bool), size))
        if size:
            self._chunks.append(tuple(np.array(c) for c in cols))
            self._cache = None

    def extend(self, other: "Ledger") -> None:
        """Append every record of ``other``."""
        if len(other):
            cols = other.columns()
            self._chunks.append(tuple(cols[f] for f in self.FIELDS))
            self._cache = None

    def columns(self) -> dict[str, np.ndarray]:
        """All records as one array per field."""
        if self._cache is None:
            if self._chunks:
                joined = [np.concatenate(parts) for parts in zip(*self._chunks)]
            else:
                joined = [np.zeros(0, np.int64)] * 4 + [np.zeros(0, bool)]
            self._cache = dict(zip(self.FIELDS, joined))
            self._chunks = [tuple(joined)] if self._chunks else []
        return self._cache

    def __len__(self) -> int:
        return sum(len(chunk[0]) for chunk in self._chunks)

    def totals(self) -> LedgerTotals:
        c = self.columns()
        return LedgerTotals(len(c["round"]), int(c["delivered"].sum()),
                            int(c["nbytes"].sum()), int(c["nbytes"][c["delivered"]].sum()))

    def _nodes(self) -> int:
        c = self.columns()
        seen = int(max(c["sender"].max(initial=-1), c["receiver"].max(initial=-1))) + 1
        return max(self.n_nodes or 0, seen)

    def per_node(self, what: str = "sent", *, nbytes: bool = False,
                 rounds: slice | None = None) -> np.ndarray:
        """Messages (or bytes) per node: ``"sent"``, ``"received"`` (delivered) or ``"lost"``."""
        c = self.columns()
        mask = np.ones(len(c["round"]), bool) if rounds is None else np.isin(
            c["round"], np.arange(*rounds.indices(int(c["round"].max(initial=-1)) + 1)))
        if what == "sent":
            node = c["sender"]
        elif what == "received":
            node, mask = c["receiver"], mask & c["delivered"]
        elif what == "lost":
            node, mask = c["receiver"], mask & ~c["delivered"]
        else:
            raise ValueError(f"what must be one of 'sent', 'received', 'lost', got {what!r}")
        weights = c["nbytes"][mask] if nbytes else None
        return np.bincount(node[mask], weights=weights, minlength=self._nodes()).astype(np.int64)

    def per_round(self, *, delivered_only: bool = False) -> np.ndarray:
        """Messages per round (index = round number)."""
        c = self.columns()
        mask = c["delivered"] if delivered_only else slice(None)
        return np.bincount(c["round"][mask], minlength=int(c["round"].max(initial=-1)) + 1)

    def received_matrix(self, round: int) -> np.ndarray:
        """``M[dst, src]``: messages delivered from ``src`` to ``dst`` in ``round``."""
        c = self.columns()
        n = self._nodes()
        mask = (c["round"] == round) & c["delivered"]
        M = np.zeros((n, n), dtype=np.int64)
        np.add.at(M, (c["receiver"][mask], c["sender"][mask]), 1)
        return M
