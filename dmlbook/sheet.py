"""The exercise sheet in one place: its numbers and its exercises.

``SHEET`` holds every number of the week's exercise sheet (week 13,
"Distributed and Decentralized Machine Learning") that the package, the
chapters and the tests use; nothing else in ``dmlbook`` types them in again.

``EXERCISES`` is the registry of the book's exercises, one entry each: its
number, key, title, chapter, workbook page(s), live panels and self-check.
The table of contents, the tests and the week table read it, so that a
seventh exercise is its content plus one entry here.

This module imports nothing from the package: every layer may read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["SHEET", "Sheet", "Exercise", "EXERCISES", "exercise", "by_key", "keys",
           "numbers", "panel_keys"]


@dataclass(frozen=True)
class Sheet:
    """The numbers the sheet gives (its units in each name)."""

    # Exercise 1: a FL server at home, training LeNet.
    lenet_params: int = 85_098
    bits_per_param: int = 32
    download_bps: float = 1e9  # 1 Gbit/s
    upload_bps: float = 1e8  # 100 Mbit/s
    time_limit_s: float = 60.0
    step_time_s: float = 60.0  # one local gradient step
    # Exercise 1's answers, as the sheet prints them.
    ex1_download_participants: int = 22_033
    ex1_n_max: int = 2_203
    # Exercise 2: McMahan et al.'s word LSTM on a cloud provider.
    lstm_params: int = 4_950_544
    lstm_bytes_per_param: int = 4
    lstm_rounds: int = 1_000
    lstm_clients_per_round: int = 200
    usd_per_gib: float = 0.03
    ex2_usd: float = 110.65  # the sheet's answer, rounded to cents
    # Exercise 6: D-PSGD on 128 nodes, then a naive all-reduce.
    dpsgd_nodes: int = 128
    dpsgd_degree: int = 8
    dpsgd_steps: int = 50
    ex6_messages: int = 67_456  # 50 * 128 * 8 + 128 * 127

    @property
    def ex1(self) -> dict:
        """Exercise 1's setting as keyword arguments of ``bandwidth.max_participants``."""
        return dict(n_params=self.lenet_params, bits_per_param=self.bits_per_param,
                    download_bps=self.download_bps, upload_bps=self.upload_bps,
                    time_limit_s=self.time_limit_s)

    @property
    def ex2(self) -> dict:
        """Exercise 2's setting as keyword arguments of ``costs.fl_download_cost``."""
        return dict(n_params=self.lstm_params, rounds=self.lstm_rounds,
                    clients_per_round=self.lstm_clients_per_round,
                    usd_per_gib=self.usd_per_gib, bytes_per_param=self.lstm_bytes_per_param)

    @property
    def ex6(self) -> dict:
        """Exercise 6's setting as arguments of ``messages.dpsgd_messages``."""
        return dict(n_nodes=self.dpsgd_nodes, degree=self.dpsgd_degree,
                    steps=self.dpsgd_steps)


#: The sheet's numbers.
SHEET = Sheet()


@dataclass(frozen=True)
class Exercise:
    """One exercise of the book.

    ``chapter`` and ``workbook`` are document paths as in ``_toc.yml`` (no
    suffix); ``panels`` the keys of its live panels (``explore.SPECS``);
    ``selfcheck`` the id of its self-check (``selfcheck.for_exercise``).
    """

    number: int
    key: str
    title: str
    chapter: str
    workbook: tuple[str, ...]
    panels: tuple[str, ...]
    selfcheck: str

    @property
    def chapter_name(self) -> str:
        """The chapter's file name without folder and suffix (``"ex1_fl_bandwidth"``)."""
        return self.chapter.rsplit("/", 1)[-1]


def _exercise(number: int, title: str, chapter: str, workbook: str, panels=None) -> Exercise:
    key = f"ex{number}"
    return Exercise(number, key, title, f"chapters/{key}_{chapter}",
                    (f"workbook/{key}_{workbook}",), tuple(panels or (key,)),
                    f"selfcheck-{key}")


#: The exercises in the book's order.
EXERCISES: tuple[Exercise, ...] = (
    _exercise(1, "How many FL clients can a home connection serve?", "fl_bandwidth",
              "participants"),
    _exercise(2, "What do FL's downloads cost in the cloud?", "fl_costs", "download_cost"),
    _exercise(3, "Parameter server against all-reduce", "allreduce", "ring_allreduce",
              panels=("ex3_time", "ex3_failures")),
    _exercise(4, "Gradients or parameters?", "gradients_vs_parameters", "fedavg"),
    _exercise(5, "From gossip averaging to gossip learning", "gossip", "gossip_merge"),
    _exercise(6, "D-PSGD, message by message", "dpsgd", "dpsgd"),
)

_BY_NUMBER = MappingProxyType({e.number: e for e in EXERCISES})
_BY_KEY = MappingProxyType({e.key: e for e in EXERCISES})


def numbers() -> tuple[int, ...]:
    """The exercises' numbers, in order (1, ..., 6)."""
    return tuple(_BY_NUMBER)


def keys() -> tuple[str, ...]:
    """The exercises' keys, in order (``"ex1"``, ...)."""
    return tuple(_BY_KEY)


def panel_keys() -> tuple[str, ...]:
    """Every live panel's key, in the exercises' order."""
    return tuple(p for e in EXERCISES for p in e.panels)


def exercise(number) -> Exercise:
    """The exercise numbered ``number``; a ``ValueError`` names the valid ones."""
    import numbers as _numbers

    if (isinstance(number, _numbers.Integral) and not isinstance(number, bool)
            and int(number) in _BY_NUMBER):
        return _BY_NUMBER[int(number)]
    valid = ", ".join(str(n) for n in _BY_NUMBER)
    raise ValueError(f"exercise must be one of {valid}, got {number!r}")


def by_key(key) -> Exercise:
    """The exercise with key ``key`` (``"ex3"``); a ``ValueError`` names the valid ones."""
    if isinstance(key, str) and key in _BY_KEY:
        return _BY_KEY[key]
    raise ValueError(f"key must be one of {', '.join(_BY_KEY)}, got {key!r}")
