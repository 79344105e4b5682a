"""The message ledger: one record per message a simulated node sends.

Every count of messages or bytes a chapter shows is read from a ledger, never
computed from a formula; tests check the ledger against the formulas.
Records are stored column-wise in compact NumPy arrays (:data:`DTYPES`:
int32 round, sender, receiver and bytes, bool delivered: 17 bytes per
message, :data:`RECORD_BYTES`), so that a round of thousands of messages is
recorded with one call.

For large runs, ``Ledger(n_nodes, counts_only=True)`` keeps no records, only
the counts every summary needs: totals, messages per round and messages and
bytes per node. Its :meth:`~Ledger.totals`, :meth:`~Ledger.per_round` and
:meth:`~Ledger.per_node` equal a full ledger's; what needs single messages
(:meth:`~Ledger.columns`, :meth:`~Ledger.received_matrix`, ``per_node`` over a
range of rounds) raises a ``ValueError``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .units import MAX_LEDGER_RECORDS, MAX_NODES, MAX_ROUNDS, MAX_RUN_MESSAGES, check_int


def check_run_messages(name: str, messages: int, what: str, *,
                       counts_only: bool | None = None) -> int:
    """Refuse, before a run starts, ``messages`` above what it may send.

    At most :data:`~dmlbook.units.MAX_RUN_MESSAGES` in any run, and at most
    :data:`~dmlbook.units.MAX_LEDGER_RECORDS` in a run that keeps every record
    (``counts_only`` False, or None for a run that has no counts-only option;
    False adds the hint to pass ``counts_only=True``). ``name`` is the
    caller's parameter to blame and ``what`` says how ``messages`` was counted
    ("rounds x messages a round").
    """
    if messages > MAX_RUN_MESSAGES:
        raise ValueError(f"{name} must keep {what} <= {MAX_RUN_MESSAGES:,} "
                         f"(MAX_RUN_MESSAGES), got {messages:,}")
    if not counts_only and messages > MAX_LEDGER_RECORDS:
        hint = "" if counts_only is None else "; pass counts_only=True to keep counts only"
        raise ValueError(f"{name} must keep {what} <= {MAX_LEDGER_RECORDS:,} "
                         f"(MAX_LEDGER_RECORDS) for a full ledger, got {messages:,}{hint}")
    return messages


#: Storage type of each column.
DTYPES = {"round": np.int32, "sender": np.int32, "receiver": np.int32,
          "nbytes": np.int32, "delivered": np.bool_}
#: Bytes one message's record takes.
RECORD_BYTES = sum(np.dtype(t).itemsize for t in DTYPES.values())
#: Largest round number a record holds: ten times a run's rounds
#: (:data:`~dmlbook.units.MAX_ROUNDS`), room for a final all-reduce and for
#: gossip's arrivals after ``until``. :meth:`Ledger.per_round` is one entry per
#: round, so this keeps it within 8 MB (it was the int32 maximum, whose
#: ``per_round()`` asked for 16 GiB; issue #27).
MAX_ROUND = 10 * MAX_ROUNDS
#: Largest message size (bytes) a record holds.
MAX_NBYTES = np.iinfo(np.int32).max
#: Largest node id + 1 a ledger holds (ids of a parameter server are ``n``).
MAX_LEDGER_NODES = 2 * MAX_NODES


#: Records a summary reads at a time: its temporary arrays stay within tens of MB.
BLOCK_RECORDS = 2**22


def _blocks(length: int):
    """Slices of at most :data:`BLOCK_RECORDS` records covering ``0 .. length``."""
    return [slice(start, min(start + BLOCK_RECORDS, length))
            for start in range(0, length, BLOCK_RECORDS)]


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


def _column(name: str, values, upper: int | None) -> np.ndarray:
    """``values`` as a checked integer array, ready to be stored as ``DTYPES[name]``."""
    arr = np.asarray(values)
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        if arr.dtype.kind == "f" and arr.size and np.isfinite(arr).all() \
                and (arr == np.round(arr)).all():
            arr = arr.astype(np.int64)
        elif arr.size:
            raise ValueError(f"{name} must be whole numbers, got {arr.dtype} values")
    if arr.size:
        lo, hi = arr.min(), arr.max()
        if lo < 0 or (upper is not None and hi > upper):
            bound = "" if upper is None else f" and <= {upper:,}"
            raise ValueError(f"{name} must be whole numbers >= 0{bound}, got {lo} .. {hi}")
    return arr


class Ledger:
    """Append-only record of messages: round, sender, receiver, bytes, delivered.

    Args:
        n_nodes: nodes of the run (ids ``0 .. n_nodes - 1``), at most
            :data:`MAX_LEDGER_NODES`; ``None`` learns it from the records.
        counts_only: keep counts, not records (see the module's docstring);
            needs ``n_nodes``.
    """

    FIELDS = ("round", "sender", "receiver", "nbytes", "delivered")

    def __init__(self, n_nodes: int | None = None, *, counts_only: bool = False):
        self.n_nodes = (None if n_nodes is None
                        else check_int("n_nodes", n_nodes, maximum=MAX_LEDGER_NODES))
        if not isinstance(counts_only, bool):
            raise ValueError(f"counts_only must be True or False, got {counts_only!r}")
        if counts_only and self.n_nodes is None:
            raise ValueError("n_nodes must be given for a counts_only ledger")
        self.counts_only = counts_only
        self._chunks: list[tuple[np.ndarray, ...]] = []
        self._cache: dict[str, np.ndarray] | None = None
        self._length = 0
        if counts_only:
            n = self.n_nodes
            # [sent, delivered] messages per round; per node: messages and bytes
            # sent (by sender), received and lost (by receiver).
            self._per_round = np.zeros((2, 0), np.int64)
            self._rounds = 0  # rounds in use: the store may be longer
            self._per_node = {(what, nb): np.zeros(n, np.int64)
                              for what in ("sent", "received", "lost") for nb in (False, True)}
            self._totals = np.zeros(4, np.int64)

    @property
    def nbytes(self) -> int:
        """Bytes the stored records take (0 for a counts-only ledger's records)."""
        return sum(col.nbytes for chunk in self._chunks for col in chunk)

    def record(self, round, sender, receiver, nbytes, delivered=True) -> None:
        """Record one message or many (array arguments broadcast together).

        Rounds and sizes are whole numbers from 0 to :data:`MAX_ROUND` and
        :data:`MAX_NBYTES`; node ids from 0 to ``n_nodes - 1``.
        """
        node_bound = (self.n_nodes or MAX_LEDGER_NODES) - 1
        sender = np.atleast_1d(_column("sender", sender, node_bound))
        receiver = np.atleast_1d(_column("receiver", receiver, node_bound))
        round = _column("round", round, MAX_ROUND)
        nbytes = _column("nbytes", nbytes, MAX_NBYTES)
        delivered = np.asarray(delivered)
        if delivered.dtype != bool:
            raise ValueError(f"delivered must be booleans, got {delivered.dtype} values")
        try:
            cols = np.broadcast_arrays(round, sender, receiver, nbytes, delivered)
        except ValueError:
            raise ValueError("round, sender, receiver, nbytes and delivered must "
                             "broadcast to one length") from None
        size = cols[1].size
        if cols[1].ndim != 1:
            raise ValueError("round, sender, receiver, nbytes and delivered must be "
                             "scalars or one-dimensional")
        if not size:
            return
        if self.counts_only:  # in blocks: a block's masks and weights at a time
            for block in _blocks(size):
                self._count(*(c[block] for c in cols))
            return
        if self._length + size > MAX_LEDGER_RECORDS:
            raise ValueError(f"a ledger holds at most MAX_LEDGER_RECORDS = "
                             f"{MAX_LEDGER_RECORDS:,} records: use Ledger(n, counts_only=True)")
        self._chunks.append(tuple(np.ascontiguousarray(c, dtype=DTYPES[f])
                                  for f, c in zip(self.FIELDS, cols)))
        self._length += size
        self._cache = None

    def _grow_rounds(self, top: int) -> None:
        """Make room for rounds ``0 .. top - 1``; the store at least doubles (amortised)."""
        if top > self._per_round.shape[1]:
            size = min(MAX_ROUND + 1, max(top, 2 * self._per_round.shape[1]))
            grown = np.zeros((2, size), np.int64)
            grown[:, :self._per_round.shape[1]] = self._per_round
            self._per_round = grown
        self._rounds = max(self._rounds, top)

    def _count(self, round, sender, receiver, nbytes, delivered) -> None:
        n = self.n_nodes
        self._grow_rounds(int(round.max()) + 1)
        top = self._rounds
        self._per_round[0, :top] += np.bincount(round, minlength=top)
        self._per_round[1, :top] += np.bincount(round[delivered], minlength=top)
        weights = nbytes.astype(np.int64)
        for what, node, mask in (("sent", sender, slice(None)),
                                 ("received", receiver, delivered),
                                 ("lost", receiver, ~delivered)):
            self._per_node[what, False] += np.bincount(node[mask], minlength=n)
            self._per_node[what, True] += np.bincount(
                node[mask], weights=weights[mask], minlength=n).astype(np.int64)
        self._totals += [len(sender), int(delivered.sum()), int(weights.sum()),
                         int(weights[delivered].sum())]
        self._length += len(sender)

    def extend(self, other: "Ledger") -> None:
        """Append every record (or, in counts-only mode, every count) of ``other``."""
        if not isinstance(other, Ledger):
            raise ValueError(f"other must be a Ledger, got {type(other).__name__}")
        if not len(other):
            return
        if other.counts_only:
            if not self.counts_only or other.n_nodes > self.n_nodes:
                raise ValueError("a counts_only ledger extends only a counts_only ledger "
                                 "with at least as many nodes")
            m = other._rounds
            self._grow_rounds(m)
            self._per_round[:, :m] += other._per_round[:, :m]
            for key, counts in other._per_node.items():
                self._per_node[key][:len(counts)] += counts
            self._totals += other._totals
            self._length += other._length
            return
        cols = other.columns()
        self.record(cols["round"], cols["sender"], cols["receiver"], cols["nbytes"],
                    cols["delivered"])

    def _need_records(self, what: str) -> None:
        if self.counts_only:
            raise ValueError(f"{what} needs per-message records; this ledger is counts_only")

    def columns(self) -> dict[str, np.ndarray]:
        """All records as one array per field (dtypes: :data:`DTYPES`)."""
        self._need_records("columns()")
        if self._cache is None:
            # One field at a time, each field's chunks let go as soon as it is
            # joined: the copy in flight is one column (4 of the 17 bytes of a
            # record), not every record twice.
            fields = [list(parts) for parts in zip(*self._chunks)] if self._chunks \
                else [[np.zeros(0, DTYPES[f])] for f in self.FIELDS]
            self._chunks = []
            joined = []
            for i in range(len(self.FIELDS)):
                parts, fields[i] = fields[i], None
                joined.append(parts[0] if len(parts) == 1 else np.concatenate(parts))
                del parts
            self._cache = dict(zip(self.FIELDS, joined))
            self._chunks = [tuple(joined)] if self._length else []
        return self._cache

    def __len__(self) -> int:
        return self._length

    def totals(self) -> LedgerTotals:
        if self.counts_only:
            return LedgerTotals(*(int(t) for t in self._totals))
        c = self.columns()
        return LedgerTotals(len(c["round"]), int(c["delivered"].sum()),
                            int(c["nbytes"].sum(dtype=np.int64)),
                            int(np.sum(c["nbytes"], where=c["delivered"], dtype=np.int64)))

    def _nodes(self) -> int:
        c = self.columns()
        seen = int(max(c["sender"].max(initial=-1), c["receiver"].max(initial=-1))) + 1
        return max(self.n_nodes or 0, seen)

    def per_node(self, what: str = "sent", *, nbytes: bool = False,
                 rounds: slice | None = None) -> np.ndarray:
        """Messages (or bytes) per node: ``"sent"``, ``"received"`` (delivered) or ``"lost"``."""
        if what not in ("sent", "received", "lost"):
            raise ValueError(f"what must be one of 'sent', 'received', 'lost', got {what!r}")
        if rounds is not None and not isinstance(rounds, slice):
            raise ValueError(f"rounds must be a slice or None, got {rounds!r}")
        if self.counts_only:
            if rounds is not None:
                self._need_records("per_node(rounds=...)")
            return self._per_node[what, bool(nbytes)].copy()
        c = self.columns()
        n = self._nodes()
        if rounds is not None:
            wanted = np.zeros(int(c["round"].max(initial=-1)) + 1, bool)
            wanted[rounds] = True
        counts = np.zeros(n, np.int64)
        for block in _blocks(len(c["round"])):
            mask = np.ones(block.stop - block.start, bool) if rounds is None \
                else wanted[c["round"][block]]
            if what == "received":
                mask &= c["delivered"][block]
            elif what == "lost":
                mask &= ~c["delivered"][block]
            node = (c["sender"] if what == "sent" else c["receiver"])[block][mask]
            # A block's byte sums stay below 2**53: exact in float64.
            weights = c["nbytes"][block][mask].astype(np.float64) if nbytes else None
            counts += np.bincount(node, weights=weights, minlength=n).astype(np.int64)
        return counts

    def per_round(self, *, delivered_only: bool = False) -> np.ndarray:
        """Messages per round (index = round number)."""
        if self.counts_only:
            return self._per_round[1 if delivered_only else 0, :self._rounds].copy()
        c = self.columns()
        counts = np.zeros(int(c["round"].max(initial=-1)) + 1, np.int64)
        for block in _blocks(len(c["round"])):
            rounds = c["round"][block]
            if delivered_only:
                rounds = rounds[c["delivered"][block]]
            counts += np.bincount(rounds, minlength=len(counts))
        return counts

    def received_matrix(self, round: int) -> np.ndarray:
        """``M[dst, src]``: messages delivered from ``src`` to ``dst`` in ``round``."""
        self._need_records("received_matrix()")
        round = check_int("round", round, minimum=0, maximum=MAX_ROUND)
        c = self.columns()
        n = self._nodes()
        mask = (c["round"] == round) & c["delivered"]
        M = np.zeros((n, n), dtype=np.int64)
        np.add.at(M, (c["receiver"][mask], c["sender"][mask]), 1)
        return M
