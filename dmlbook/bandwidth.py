"""Exercise 1: how many federated-learning clients a home connection supports.

The server sits behind a home connection with an asymmetric plan. In one
synchronous round every participant downloads the model from the server and
later uploads its new model to the server. Seen from the server:

* sending the model to ``n`` participants uses the server's **upload** link:
  ``n * model_bits / upload_bps`` seconds;
* receiving ``n`` models uses the server's **download** link:
  ``n * model_bits / download_bps`` seconds.

Each must fit into the time limit; the smaller of the two counts binds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from .units import (FLOAT32_BITS, MAX_BITS_PER_PARAM, MAX_BPS, MAX_COUNT, MAX_SECONDS,
                    MIN_BPS, MIN_SECONDS, check_int, check_number)

#: Clients (and server copies) of the broadcast calculators: the arithmetic stays exact.
MAX_CLIENTS = 10**9


def _bps(name, value):
    """A link speed: :data:`~dmlbook.units.MIN_BPS` to :data:`~dmlbook.units.MAX_BPS`."""
    return check_number(name, value, minimum=MIN_BPS, maximum=MAX_BPS)


def _seconds(name, value):
    """A duration: :data:`~dmlbook.units.MIN_SECONDS` to :data:`~dmlbook.units.MAX_SECONDS`."""
    return check_number(name, value, minimum=MIN_SECONDS, maximum=MAX_SECONDS)


@dataclass(frozen=True)
class ParticipantLimit:
    """How many participants each of the server's links supports.

    download: participants whose models the server's download link receives
        within the time limit (whole participants, rounded down).
    upload: participants the server's upload link sends the model to within
        the time limit (whole participants, rounded down).
    n_max: ``min(download, upload)``.
    bottleneck: ``"upload"`` or ``"download"``, the link that sets ``n_max``.
    model_bits: size of one model in bits.
    """

    download: int
    upload: int
    n_max: int
    bottleneck: str
    model_bits: int


@dataclass(frozen=True)
class TransferTimes:
    """Seconds the server's links are busy in one round with ``n`` participants.

    download_s: receiving every participant's model (server's download link).
    upload_s: sending the model to every participant (server's upload link).
    """

    download_s: float
    upload_s: float

    @property
    def slowest_s(self) -> float:
        return max(self.download_s, self.upload_s)


def model_bits(n_params: int, bits_per_param: int = FLOAT32_BITS) -> int:
    """Size of a model in bits: ``n_params * bits_per_param``.

    ``n_params`` up to :data:`~dmlbook.units.MAX_COUNT`, ``bits_per_param`` up
    to :data:`~dmlbook.units.MAX_BITS_PER_PARAM`.
    """
    n_params = check_int("n_params", n_params, maximum=MAX_COUNT)
    bits_per_param = check_int("bits_per_param", bits_per_param, maximum=MAX_BITS_PER_PARAM)
    return n_params * bits_per_param


def _participants_within(limit_s, link_bps, bits) -> int:
    # Exact rational arithmetic: 60 s * 1e9 bit/s / 2_723_136 bit must floor
    # to 22033, never to 22032 because of a rounding error. Fraction takes the
    # exact value of a Python number (the checks turned NumPy scalars into them).
    return math.floor(Fraction(limit_s) * Fraction(link_bps) / bits)


def max_participants(
    n_params: int,
    *,
    bits_per_param: int = FLOAT32_BITS,
    download_bps: float,
    upload_bps: float,
    time_limit_s: float,
) -> ParticipantLimit:
    """Largest number of synchronous FL participants the server's links support.

    Args:
        n_params: number of model parameters.
        bits_per_param: bits per parameter (32 for float32, 16, 8, ...).
        download_bps: the server's download speed in bits per second.
        upload_bps: the server's upload speed in bits per second.
        time_limit_s: the longest a round's transfer in either direction may
            take, in seconds.

    Speeds are :data:`~dmlbook.units.MIN_BPS` to :data:`~dmlbook.units.MAX_BPS`,
    the time limit :data:`~dmlbook.units.MIN_SECONDS` to
    :data:`~dmlbook.units.MAX_SECONDS` (so is every speed and duration below).

    Returns:
        A :class:`ParticipantLimit`. The sheet's case
        (85,098 params, 32 bits, 1 Gbit/s down, 100 Mbit/s up, 60 s)
        gives ``download=22033, upload=2203, n_max=2203, bottleneck="upload"``.
    """
    bits = model_bits(n_params, bits_per_param)
    download_bps = _bps("download_bps", download_bps)
    upload_bps = _bps("upload_bps", upload_bps)
    time_limit_s = _seconds("time_limit_s", time_limit_s)
    n_down = _participants_within(time_limit_s, download_bps, bits)
    n_up = _participants_within(time_limit_s, upload_bps, bits)
    bottleneck = "upload" if n_up <= n_down else "download"
    return ParticipantLimit(n_down, n_up, min(n_down, n_up), bottleneck, bits)


def transfer_times(
    n_params: int,
    n_participants: int,
    *,
    bits_per_param: int = FLOAT32_BITS,
    download_bps: float,
    upload_bps: float,
) -> TransferTimes:
    """Seconds each of the server's links needs for one round.

    Args:
        n_params: number of model parameters.
        n_participants: clients in the round.
        bits_per_param: bits per parameter.
        download_bps: the server's download speed in bits per second.
        upload_bps: the server's upload speed in bits per second.
    """
    bits = model_bits(n_params, bits_per_param)
    n = check_int("n_participants", n_participants, maximum=MAX_COUNT)
    download_bps = _bps("download_bps", download_bps)
    upload_bps = _bps("upload_bps", upload_bps)
    total_bits = n * bits
    return TransferTimes(total_bits / download_bps, total_bits / upload_bps)


# --- Exercise 1's further exercises: a CDN or broadcast tree, and local steps. ---


@dataclass(frozen=True)
class BroadcastLimit:
    """Participants when a CDN delivers the model and the server uploads few copies.

    n_max: participants supported (0 if even the server's copies do not fit).
    bottleneck: the link that sets ``n_max``: ``"download"`` (the server still
        receives every participant's model) or ``"upload"``.
    server_upload_s: seconds the server needs to upload its copies.
    """

    n_max: int
    bottleneck: str
    server_upload_s: float


def max_participants_with_cdn(
    n_params: int,
    *,
    bits_per_param: int = FLOAT32_BITS,
    download_bps: float,
    upload_bps: float,
    time_limit_s: float,
    server_copies: int = 1,
) -> BroadcastLimit:
    """Participants when a CDN (content delivery network) sends the model to the clients.

    The server uploads ``server_copies`` copies (1: to the CDN's origin) in
    seconds ``server_copies * model_bits / upload_bps``; the CDN's own links
    are assumed unlimited. The server still *receives* one model from each
    participant, so its download link limits ``n_max`` as before. The
    sheet's case gives ``n_max=22033`` with ``bottleneck="download"``.
    """
    bits = model_bits(n_params, bits_per_param)
    download_bps = _bps("download_bps", download_bps)
    upload_bps = _bps("upload_bps", upload_bps)
    time_limit_s = _seconds("time_limit_s", time_limit_s)
    copies = check_int("server_copies", server_copies, maximum=MAX_CLIENTS)
    upload_s = copies * bits / upload_bps
    if Fraction(copies * bits) > Fraction(time_limit_s) * Fraction(upload_bps):
        return BroadcastLimit(0, "upload", upload_s)
    return BroadcastLimit(_participants_within(time_limit_s, download_bps, bits),
                          "download", upload_s)


@dataclass(frozen=True)
class BroadcastTree:
    """A model broadcast down a tree in which every holder forwards it ``fanout`` times.

    levels: tree levels below the server needed to reach every client.
    reached: clients that hold the model after each level (cumulative).
    level_s: seconds one level takes: ``fanout * model_bits / upload_bps``.
    total_s: ``levels * level_s`` (no pipelining: a level starts when the
        one above has its whole copy).
    """

    levels: int
    reached: tuple[int, ...]
    level_s: float
    total_s: float


def broadcast_tree(n_clients: int, n_params: int, *, fanout: int, upload_bps: float,
                   bits_per_param: int = FLOAT32_BITS) -> BroadcastTree:
    """Time to send the model to ``n_clients`` down a tree of the given fan-out.

    The server sends the model to ``fanout`` clients; each client that has it
    forwards it to ``fanout`` new ones, all uploading at ``upload_bps`` bits/s.
    Level ``l`` adds ``fanout**l`` clients. At most :data:`MAX_CLIENTS` (10**9) clients.
    """
    n = check_int("n_clients", n_clients, maximum=MAX_CLIENTS)
    fanout = check_int("fanout", fanout, maximum=MAX_CLIENTS)
    if fanout < 2:
        raise ValueError(f"fanout must be at least 2 (a chain is not a tree), got {fanout}")
    bits = model_bits(n_params, bits_per_param)
    upload_bps = _bps("upload_bps", upload_bps)
    reached, level = [], 0
    while not reached or reached[-1] < n:
        level += 1
        reached.append(min(n, (reached[-1] if reached else 0) + fanout ** level))
    level_s = fanout * bits / upload_bps
    return BroadcastTree(level, tuple(reached), level_s, level * level_s)


def local_steps_to_fit(n_participants: int, n_params: int, *, step_s: float,
                       bits_per_param: int = FLOAT32_BITS, download_bps: float,
                       upload_bps: float) -> int:
    """Fewest local steps per round whose compute time covers the round's transfers.

    With ``K`` local steps of ``step_s`` seconds between communications, the
    transfers no longer dominate when ``K * step_s`` is at least the slower
    link's busy time for ``n_participants``: ``K = ceil(transfer_s / step_s)``,
    computed exactly. The sheet's 2,203 clients with 50 ms steps need 1,200.
    """
    bits = model_bits(n_params, bits_per_param)
    n = check_int("n_participants", n_participants, maximum=MAX_COUNT)
    step_s = _seconds("step_s", step_s)
    download_bps = _bps("download_bps", download_bps)
    upload_bps = _bps("upload_bps", upload_bps)
    slowest = max(Fraction(n * bits) / Fraction(download_bps),
                  Fraction(n * bits) / Fraction(upload_bps))
    # The step time as written (0.05, not the binary float just below it).
    return max(1, math.ceil(slowest / Fraction(str(float(step_s)))))
