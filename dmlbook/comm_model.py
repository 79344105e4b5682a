"""The book's one communication model: alpha-beta, one-port, full duplex.

Stated once, used by exercises 2, 3 and 6 and by the week table:

* **beta** (``beta_s_per_byte = 8 / link_bps``): every node has one link that
  carries ``link_bps`` bits per second *in each direction at once* (full
  duplex). ``B`` bytes through one direction of a link take ``B * beta``.
* **alpha** (``alpha_s``): every message costs its **sender** ``alpha``
  seconds before its bytes flow (software overhead and latency).
* **One-port**: a node sends one message at a time, so a node that sends
  ``m`` messages of ``b`` bytes is busy for ``m * (alpha + b * beta)``.
  Messages that *different* senders send to one receiver overlap their alphas,
  but their bytes queue on the receiver's incoming link.

A round is a sequence of phases; a phase lasts as long as its busiest node
(as sender, or as receiver on its incoming link). The schemes, for ``n``
workers and a model (or gradient) of ``M`` bytes:

* **parameter server with ``k`` servers** (Li et al. 2014 shard the
  parameters by key range over a server group; ``k = 1`` is the single
  server). Push: each worker sends ``k`` pieces of ``M/k`` (``k alpha + M
  beta``) while each server's incoming link carries ``n M / k`` (``alpha + n M
  beta / k``). Pull: each server sends ``n`` pieces of ``M/k`` (``n alpha + n
  M beta / k``) while each worker's incoming link carries ``M``. For ``k = 1``:
  ``(n + 1) alpha + 2 n M beta``.
* **naive all-reduce**: each worker sends its gradient to the ``n - 1`` others
  and receives theirs at the same time: ``(n - 1)(alpha + M beta)``, so a naive
  worker pays ``n - 1`` alphas.
* **ring all-reduce** (Patarasuk & Yuan 2009; Thakur et al. 2005):
  ``2 (n - 1)`` steps, each one message of ``M / n`` to the successor while
  receiving one from the predecessor: ``2 (n - 1)(alpha + M beta / n)``.

Nothing here overlaps push and pull of different chunks (as BytePS does), and
nothing models contention inside the network: only the nodes' own links.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .units import (MAX_BPS, MAX_BYTES_PER_PARAM, MAX_COUNT, check_choice, check_int,
                    check_number)

__all__ = ["SCHEMES", "SCHEME_NAMES", "Network", "Phase", "RoundTime", "STATEMENT",
           "round_time", "round_time_s", "ps_round", "naive_allreduce_round",
           "ring_allreduce_round", "ring_beats_naive_above_params", "bytes_sent_per_node",
           "messages_sent_per_node", "busiest_link_bytes", "messages_on_busiest_link",
           "per_node_round_bytes", "scheme_name"]

SCHEMES = ("ps", "naive", "ring")
SCHEME_NAMES = {"ps": "parameter server (one server)", "naive": "naive all-reduce",
                "ring": "ring all-reduce"}
MAX_SECONDS_PER_MESSAGE = 3600

STATEMENT = ("α is the cost of one message at its sender, and a node sends one message at "
             "a time (one-port); β = 8 / link speed is the time per byte through one "
             "direction of a node's link, and a link carries both directions at once "
             "(full duplex). A node that sends m messages of b bytes is busy for "
             "m (α + bβ).")


def scheme_name(scheme: str, servers: int = 1) -> str:
    """The scheme's name, with the parameter server's number of servers."""
    scheme = check_choice("scheme", scheme, SCHEMES)
    if scheme != "ps":
        return SCHEME_NAMES[scheme]
    return SCHEME_NAMES["ps"] if servers == 1 else f"parameter server ({servers} servers)"


@dataclass(frozen=True)
class Network:
    """Every node's link: ``link_bps`` bits/s each way, ``alpha_s`` per message sent."""

    link_bps: float
    alpha_s: float = 0.0

    def __post_init__(self):
        check_number("link_bps", self.link_bps, maximum=MAX_BPS)
        check_number("latency_s", self.alpha_s, allow_zero=True, maximum=MAX_SECONDS_PER_MESSAGE)

    @property
    def beta_s_per_byte(self) -> float:
        return 8 / self.link_bps


@dataclass(frozen=True)
class Phase:
    """One phase of a round, as its busiest node sees it."""

    name: str
    busiest: str  # which node (and as sender or receiver) sets the phase's time
    alphas: int  # alphas on that node's critical path
    bytes: float  # bytes through that node's link, one after another

    def seconds(self, net: Network) -> float:
        return self.alphas * net.alpha_s + self.bytes * net.beta_s_per_byte


@dataclass(frozen=True)
class RoundTime:
    """One round of a scheme in the alpha-beta model: its phases and their sum."""

    scheme: str
    n_workers: int
    servers: int
    network: Network
    phases: tuple

    @property
    def seconds(self) -> float:
        return sum(p.seconds(self.network) for p in self.phases)

    @property
    def alphas(self) -> int:
        return sum(p.alphas for p in self.phases)

    @property
    def bytes(self) -> float:
        return sum(p.bytes for p in self.phases)

    @property
    def latency_s(self) -> float:
        return self.alphas * self.network.alpha_s

    @property
    def bandwidth_s(self) -> float:
        return self.bytes * self.network.beta_s_per_byte

    @property
    def name(self) -> str:
        return scheme_name(self.scheme, self.servers)


def _slowest(net: Network, *candidates: Phase) -> Phase:
    return max(candidates, key=lambda p: (p.seconds(net), p.bytes, p.alphas))


def _check(n_workers, model_bytes):
    n = check_int("n_workers", n_workers, maximum=MAX_COUNT)
    M = check_number("model_bytes", model_bytes, maximum=MAX_COUNT)
    return n, M


def ps_round(n_workers: int, model_bytes: float, net: Network, *, servers: int = 1) -> RoundTime:
    """A synchronous parameter-server round with ``servers`` servers, each holding 1/k of
    the model."""
    n, M = _check(n_workers, model_bytes)
    k = check_int("servers", servers, maximum=MAX_COUNT)
    push = _slowest(net, Phase("push", "a worker sending", k, M),
                    Phase("push", "a server receiving", 1, n * M / k))
    pull = _slowest(net, Phase("pull", "a server sending", n, n * M / k),
                    Phase("pull", "a worker receiving", 1, M))
    return RoundTime("ps", n, k, net, (push, pull))


def naive_allreduce_round(n_workers: int, model_bytes: float, net: Network) -> RoundTime:
    """Every worker sends its gradient to every other: ``n - 1`` messages of ``M``."""
    n, M = _check(n_workers, model_bytes)
    return RoundTime("naive", n, 1, net,
                     (Phase("all-to-all", "every worker", n - 1, (n - 1) * M),))


def ring_allreduce_round(n_workers: int, model_bytes: float, net: Network) -> RoundTime:
    """Reduce-scatter then all-gather: ``2 (n - 1)`` steps of one ``M / n`` chunk."""
    n, M = _check(n_workers, model_bytes)
    return RoundTime("ring", n, 1, net,
                     (Phase("reduce-scatter", "every worker", n - 1, (n - 1) * M / n),
                      Phase("all-gather", "every worker", n - 1, (n - 1) * M / n)))


def round_time(scheme: str, n_workers: int, model_bytes: float, net: Network, *,
               servers: int = 1) -> RoundTime:
    """The round of ``scheme`` ("ps", "naive", "ring"); ``servers`` only for "ps"."""
    scheme = check_choice("scheme", scheme, SCHEMES)
    if scheme == "ps":
        return ps_round(n_workers, model_bytes, net, servers=servers)
    if servers != 1:
        raise ValueError(f"servers: only the parameter server has servers; got {servers!r} "
                         f"for the {SCHEME_NAMES[scheme]}. Pass servers=1.")
    fn = naive_allreduce_round if scheme == "naive" else ring_allreduce_round
    return fn(n_workers, model_bytes, net)


def round_time_s(scheme: str, n_workers: int, n_params: int, link_bps: float, *,
                 bytes_per_param: float = 4, latency_s: float = 0.0, servers: int = 1) -> float:
    """Seconds of one round's communication (see the module's statement of the model)."""
    n_params = check_int("n_params", n_params, maximum=MAX_COUNT)
    bytes_per_param = check_number("bytes_per_param", bytes_per_param,
                                   maximum=MAX_BYTES_PER_PARAM)
    net = Network(link_bps=link_bps, alpha_s=latency_s)
    return round_time(scheme, n_workers, n_params * bytes_per_param, net,
                      servers=servers).seconds


def busiest_link_bytes(scheme: str, n_workers: int, model_bytes: float, *,
                       servers: int = 1) -> float:
    """Bytes on the round's critical path: ``2nM`` (one server), ``(n-1)M``, ``2(n-1)M/n``."""
    net = Network(link_bps=1.0)  # alpha = 0: the critical path is the bytes alone
    return round_time(scheme, n_workers, model_bytes, net, servers=servers).bytes


def messages_on_busiest_link(scheme: str, n_workers: int, *, servers: int = 1) -> int:
    """Alphas on the critical path of a round of tiny messages.

    ``n + 1`` (one server), ``n - 1`` (naive), ``2 (n - 1)`` (ring).
    """
    net = Network(link_bps=MAX_BPS, alpha_s=1.0)
    return round_time(scheme, n_workers, 1.0, net, servers=servers).alphas


def ring_beats_naive_above_params(n_workers: int, link_bps: float, latency_s: float, *,
                                  bytes_per_param: float = 4) -> float:
    """Model size (parameters) above which the ring beats the naive all-reduce.

    Ring ``2(n-1)(alpha + M beta / n)`` against naive ``(n-1)(alpha + M beta)``:
    the ring wins when ``alpha < M beta (1 - 2/n)``. ``inf`` for ``n <= 2``, 0 without latency.
    """
    n = check_int("n_workers", n_workers, maximum=MAX_COUNT)
    net = Network(link_bps=link_bps, alpha_s=latency_s)
    bytes_per_param = check_number("bytes_per_param", bytes_per_param,
                                   maximum=MAX_BYTES_PER_PARAM)
    if n <= 2:
        return math.inf
    return net.alpha_s / net.beta_s_per_byte * n / (n - 2) / bytes_per_param


def bytes_sent_per_node(scheme: str, n_workers: int, model_bytes: float, *,
                        servers: int = 1) -> dict[str, float]:
    """Bytes one node sends per round, by role: ``{"server"|"worker": bytes}``."""
    scheme = check_choice("scheme", scheme, SCHEMES)
    n, M = _check(n_workers, model_bytes)
    k = check_int("servers", servers, maximum=MAX_COUNT)
    if scheme == "ps":
        return {"server": n * M / k, "worker": M}
    if k != 1:
        raise ValueError(f"servers: only the parameter server has servers; got {k}")
    return {"worker": (n - 1) * M} if scheme == "naive" else {"worker": 2 * (n - 1) * M / n}


def messages_sent_per_node(scheme: str, n_workers: int, *, servers: int = 1) -> dict[str, int]:
    """Messages one node sends per round, by role (a PS worker sends one piece per server)."""
    scheme = check_choice("scheme", scheme, SCHEMES)
    n = check_int("n_workers", n_workers, maximum=MAX_COUNT)
    k = check_int("servers", servers, maximum=MAX_COUNT)
    if scheme == "ps":
        return {"server": n, "worker": k}
    if k != 1:
        raise ValueError(f"servers: only the parameter server has servers; got {k}")
    return {"worker": n - 1} if scheme == "naive" else {"worker": 2 * (n - 1)}


def per_node_round_bytes(scheme: str, n_workers: int, model_bytes: float) -> dict[str, float]:
    """Bytes one node sends per round with one server (the simulators' setting)."""
    return bytes_sent_per_node(scheme, n_workers, model_bytes)
