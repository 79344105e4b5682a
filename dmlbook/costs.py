"""Exercise 2: what federated learning's downloads cost in the cloud.

A cloud provider bills the bytes that leave it (egress): every time a
participating client downloads the model. Uploads into the cloud are free.
Decentralized learning exchanges the same kind of models between peers over
their own flat-rate connections, so no cloud bill arises.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .units import (GIB, MAX_BITS_PER_PARAM, MAX_BYTES_PER_PARAM, MAX_COUNT, MAX_USD,
                    MAX_USD_PER_GIB, check_int, check_number)


def _count(name, value):
    return check_int(name, value, maximum=MAX_COUNT)


def _bytes_per_param(value):
    return check_number("bytes_per_param", value, maximum=MAX_BYTES_PER_PARAM)


def _price(name, value, allow_zero=False):
    return check_number(name, value, allow_zero=allow_zero, maximum=MAX_USD_PER_GIB)


#: Counts of the exact bill (parameters, rounds, clients): exact integer arithmetic.
MAX_EXACT_COUNT = 10**12
#: Sizes of the word LSTM (vocabulary, embedding, hidden, projection).
MAX_LSTM_SIZE = 10**6

#: Rounds of a cumulative cost curve (one float64 per round: 80 MB).
MAX_CURVE_ROUNDS = 10_000_000


def fl_download_bytes(n_params: int, *, rounds: int, clients_per_round: int,
                      bytes_per_param: int = 4) -> int:
    """Bytes the cloud sends: one model to each participating client per round.

    Counts are whole numbers up to :data:`~dmlbook.units.MAX_COUNT`;
    ``bytes_per_param`` up to :data:`~dmlbook.units.MAX_BYTES_PER_PARAM`.
    """
    n_params = _count("n_params", n_params)
    rounds = _count("rounds", rounds)
    clients_per_round = _count("clients_per_round", clients_per_round)
    bytes_per_param = _bytes_per_param(bytes_per_param)
    return rounds * clients_per_round * n_params * bytes_per_param


def fl_download_cost(n_params: int, *, rounds: int, clients_per_round: int,
                     usd_per_gib: float, bytes_per_param: float = 4) -> float:
    """US dollars a cloud bills for FL's model downloads.

    Args:
        n_params: number of model parameters.
        rounds: training rounds.
        clients_per_round: clients that download the model each round.
        usd_per_gib: egress price in US dollars per GiB (2**30 bytes); must be > 0
            and at most :data:`~dmlbook.units.MAX_USD_PER_GIB`.
        bytes_per_param: bytes per parameter (4 for float32, 2 for 16 bits).

    The sheet's case (4,950,544 params, 1000 rounds, 200 clients,
    0.03 $/GiB, 4 bytes) gives 110.65 dollars.
    """
    n_bytes = fl_download_bytes(n_params, rounds=rounds,
                                clients_per_round=clients_per_round,
                                bytes_per_param=bytes_per_param)
    usd_per_gib = _price("usd_per_gib", usd_per_gib)
    return n_bytes / GIB * usd_per_gib


def fl_cumulative_cost(n_params: int, *, rounds: int, clients_per_round: int,
                       usd_per_gib: float, bytes_per_param: float = 4,
                       upload_usd_per_gib: float = 0.0) -> np.ndarray:
    """Dollars billed after each round, an array of length ``rounds``.

    ``upload_usd_per_gib`` (default 0, as the sheet assumes) prices the
    clients' uploads into the cloud too. ``rounds`` is at most
    :data:`MAX_CURVE_ROUNDS` (one array entry per round).
    """
    rounds = check_int("rounds", rounds, maximum=MAX_CURVE_ROUNDS)
    per_round = fl_download_cost(n_params, rounds=1,
                                 clients_per_round=clients_per_round,
                                 usd_per_gib=usd_per_gib,
                                 bytes_per_param=bytes_per_param)
    upload_usd_per_gib = _price("upload_usd_per_gib", upload_usd_per_gib, allow_zero=True)
    per_round += (fl_download_bytes(n_params, rounds=1,
                                    clients_per_round=clients_per_round,
                                    bytes_per_param=bytes_per_param)
                  / GIB * upload_usd_per_gib)
    return per_round * np.arange(1, rounds + 1)


def dl_download_cost(n_params: int, *, rounds: int, nodes: int, degree: int,
                     usd_per_gib: float = 0.0, bytes_per_param: float = 4) -> float:
    """US dollars decentralized learning pays for the models its nodes receive.

    Each round every node receives one model from each of its ``degree``
    neighbours over its own connection. Under the sheet's assumptions that
    traffic rides on flat-rate home connections, so the marginal price is
    ``usd_per_gib = 0`` and so is the cost. A positive price models a metered
    connection.
    """
    n_bytes = dl_download_bytes(n_params, rounds=rounds, nodes=nodes,
                                degree=degree, bytes_per_param=bytes_per_param)
    usd_per_gib = _price("usd_per_gib", usd_per_gib, allow_zero=True)
    return n_bytes / GIB * usd_per_gib


def dl_download_bytes(n_params: int, *, rounds: int, nodes: int, degree: int,
                      bytes_per_param: float = 4) -> int:
    """Bytes all nodes receive in decentralized learning (degree models each per round)."""
    n_params = _count("n_params", n_params)
    rounds = _count("rounds", rounds)
    nodes = check_int("nodes", nodes, minimum=2, maximum=MAX_COUNT)
    degree = _count("degree", degree)
    if degree >= nodes:
        raise ValueError(f"degree must be below nodes = {nodes} (a node's neighbours are the "
                         f"other nodes), got {degree}")
    bytes_per_param = _bytes_per_param(bytes_per_param)
    return rounds * nodes * degree * n_params * bytes_per_param


@dataclass(frozen=True)
class CostComparison:
    """FL's cloud bill against decentralized learning's, in US dollars."""

    fl_usd: float
    dl_usd: float
    fl_bytes: float
    dl_bytes: float

    @property
    def saving_usd(self) -> float:
        return self.fl_usd - self.dl_usd

    @property
    def dl_over_fl_traffic(self) -> float:
        """DL's model transfers against FL's, like for like: FL's downloads *and* uploads."""
        return self.dl_bytes / (2 * self.fl_bytes)


def compare_download_costs(n_params: int, *, rounds: int, clients_per_round: int,
                           usd_per_gib: float, bytes_per_param: float = 4,
                           dl_degree: int = 8, dl_usd_per_gib: float = 0.0
                           ) -> CostComparison:
    """FL's cloud download bill against DL with the same nodes and rounds.

    DL is run with ``clients_per_round`` nodes, each receiving ``dl_degree``
    models per round, priced at ``dl_usd_per_gib`` (0: flat-rate connections).
    """
    clients = _count("clients_per_round", clients_per_round)
    dl_degree = _count("dl_degree", dl_degree)
    if dl_degree >= clients:  # DL's nodes are the clients: at most clients - 1 neighbours
        raise ValueError(f"dl_degree must be below clients_per_round = {clients} (DL runs on "
                         f"that many nodes), got {dl_degree}")
    dl_usd_per_gib = _price("dl_usd_per_gib", dl_usd_per_gib, allow_zero=True)
    fl = fl_download_cost(n_params, rounds=rounds, clients_per_round=clients_per_round,
                          usd_per_gib=usd_per_gib, bytes_per_param=bytes_per_param)
    fl_bytes = fl_download_bytes(n_params, rounds=rounds,
                                 clients_per_round=clients_per_round,
                                 bytes_per_param=bytes_per_param)
    dl = dl_download_cost(n_params, rounds=rounds, nodes=clients_per_round,
                          degree=dl_degree, usd_per_gib=dl_usd_per_gib,
                          bytes_per_param=bytes_per_param)
    dl_bytes = dl_download_bytes(n_params, rounds=rounds, nodes=clients_per_round,
                                 degree=dl_degree, bytes_per_param=bytes_per_param)
    return CostComparison(fl, dl, fl_bytes, dl_bytes)


# --- Exercise 2's further exercises: other prices and precisions, and budgets. ---


@dataclass(frozen=True)
class Bill:
    """A cloud egress bill: bytes sent, the same in GiB, and US dollars."""

    bytes: int
    gib: float
    usd: float


def fl_bill(n_params: int, *, rounds: int, clients_per_round: int, usd_per_gib: float,
            bits_per_param: int = 32) -> Bill:
    """FL's download bill with parameters of ``bits_per_param`` bits (32, 16, 8, 4 ...).

    Bytes are ``rounds * clients_per_round * ceil(n_params * bits_per_param / 8)``:
    a model of packed parameters, rounded up to whole bytes. Counts are
    bounded (each at most :data:`MAX_EXACT_COUNT`, 10**12) so the arithmetic stays exact.
    The sheet's case gives 110.65 dollars; 8 bits at 0.09 $/GiB gives 82.99.
    """
    n_params = check_int("n_params", n_params, maximum=MAX_EXACT_COUNT)
    rounds = check_int("rounds", rounds, maximum=MAX_EXACT_COUNT)
    clients = check_int("clients_per_round", clients_per_round, maximum=MAX_EXACT_COUNT)
    bits = check_int("bits_per_param", bits_per_param, maximum=MAX_BITS_PER_PARAM)
    usd_per_gib = _price("usd_per_gib", usd_per_gib)
    model_bytes = -(-n_params * bits // 8)
    total = rounds * clients * model_bytes
    return Bill(total, total / GIB, total / GIB * usd_per_gib)


def affordable_rounds(budget_usd: float, n_params: int, *, clients_per_round: int,
                      usd_per_gib: float, bits_per_param: int = 32) -> int:
    """Whole rounds of FL downloads that a budget in US dollars pays for.

    ``budget_usd`` is at most :data:`~dmlbook.units.MAX_USD`. Computed exactly
    (a tiny price gives a large whole number, never ``inf``).
    """
    budget_usd = check_number("budget_usd", budget_usd, maximum=MAX_USD)
    bill = fl_bill(n_params, rounds=1, clients_per_round=clients_per_round,
                   usd_per_gib=usd_per_gib, bits_per_param=bits_per_param)
    usd_per_gib = _price("usd_per_gib", usd_per_gib)  # checked by fl_bill: a plain number
    return math.floor(Fraction(budget_usd) * GIB / (bill.bytes * Fraction(usd_per_gib)))


def lstm_parameter_count(vocab: int = 10_000, embed: int = 192, hidden: int = 256, *,
                         projection: int | None = None, peepholes: bool = True) -> int:
    """Parameters of a word LSTM: input embedding, one LSTM layer, softmax output layer.

    The LSTM cell has one bias vector (TensorFlow 1's ``LSTMCell``) and, with
    ``peepholes``, three peephole vectors. With ``projection`` its output is
    projected to that many dimensions (an LSTMP cell, whose recurrent input is
    the projected output), and the output layer maps that to the vocabulary.
    McMahan et al.'s LSTM gives 4,950,544 without a projection; taking their
    "output embedding of dimension 192" literally (``projection=192``) gives
    4,294,160.
    """
    vocab, embed, hidden = (check_int(n, v, maximum=MAX_LSTM_SIZE) for n, v in
                            (("vocab", vocab), ("embed", embed), ("hidden", hidden)))
    out = hidden if projection is None else check_int("projection", projection,
                                                      maximum=MAX_LSTM_SIZE)
    if not isinstance(peepholes, bool):
        raise ValueError(f"peepholes must be True or False, got {peepholes!r}")
    cell = 4 * hidden * (embed + out) + 4 * hidden + (3 * hidden if peepholes else 0)
    proj = 0 if projection is None else hidden * out
    return vocab * embed + cell + proj + out * vocab + vocab
