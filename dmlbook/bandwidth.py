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
                    check_int, check_number)


def _bps(name, value):
    return check_number(name, value, maximum=MAX_BPS)


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

    Speeds are at most :data:`~dmlbook.units.MAX_BPS`, the time limit at most
    :data:`~dmlbook.units.MAX_SECONDS`.

    Returns:
        A :class:`ParticipantLimit`. The sheet's case
        (85,098 params, 32 bits, 1 Gbit/s down, 100 Mbit/s up, 60 s)
        gives ``download=22033, upload=2203, n_max=2203, bottleneck="upload"``.
    """
    bits = model_bits(n_params, bits_per_param)
    download_bps = _bps("download_bps", download_bps)
    upload_bps = _bps("upload_bps", upload_bps)
    time_limit_s = check_number("time_limit_s", time_limit_s, maximum=MAX_SECONDS)
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
