"""The week in one table: who sends what, how much, and where it jams.

One row per scheme of the week (FL, parameter server, naive and ring
all-reduce, gossip learning, D-PSGD) for one scenario: ``n_nodes`` nodes, a
model of ``n_params`` parameters at ``bits_per_param`` bits, and (for D-PSGD)
a graph of average degree ``degree``. The counts are the closed forms of
:mod:`dmlbook.messages` and :mod:`dmlbook.allreduce`, which the tests of those
modules check against what the simulators actually send.

"Per round" means one synchronous round (FL, PS, all-reduce), one D-PSGD step,
or one gossip cycle (every node wakes up once, after a wait Δ). Every scheme
here sends as much as it receives at each node; gossip only on average.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import allreduce, messages
from .sheet import SHEET
from .units import BITS_PER_BYTE, FLOAT32_BITS, check_int

__all__ = ["Scenario", "SchemeTraffic", "week_table"]


@dataclass(frozen=True)
class Scenario:
    """The setting the table compares the schemes in."""

    n_nodes: int = SHEET.dpsgd_nodes  # as on the sheet's exercise 6
    n_params: int = SHEET.lenet_params  # LeNet, as on the sheet's exercise 1
    bits_per_param: int = FLOAT32_BITS
    degree: int = SHEET.dpsgd_degree  # D-PSGD's average degree, as on the sheet's exercise 6

    def __post_init__(self):
        check_int("n_nodes", self.n_nodes, minimum=2)
        check_int("n_params", self.n_params)
        check_int("bits_per_param", self.bits_per_param)
        check_int("degree", self.degree)
        if self.degree > self.n_nodes - 1:
            raise ValueError(f"degree must be at most n_nodes - 1 = {self.n_nodes - 1}, "
                             f"got {self.degree}")
        if self.n_nodes * self.degree % 2:
            raise ValueError("n_nodes * degree must be even (twice the number of edges), "
                             f"got {self.n_nodes} * {self.degree}")

    @property
    def model_bytes(self) -> float:
        """Bytes of one model (or one gradient) on the wire."""
        return self.n_params * self.bits_per_param / BITS_PER_BYTE


@dataclass(frozen=True)
class SchemeTraffic:
    """One row: the traffic of one scheme, per node and per round, each way.

    ``messages`` and ``bytes`` map a role (``"server"``, ``"client"``,
    ``"worker"``, ``"node"``) to what one node in that role sends per round
    (and receives: the same). ``busiest`` names the role with the most bytes.
    """

    key: str
    name: str
    chapter: str
    messages: dict
    bytes: dict

    @property
    def busiest(self) -> str:
        return max(self.bytes, key=self.bytes.get)

    @property
    def busiest_bytes(self) -> float:
        return self.bytes[self.busiest]


def week_table(scenario: Scenario | None = None) -> list[SchemeTraffic]:
    """The six rows of the table for ``scenario`` (default: 128 nodes, LeNet, degree 8)."""
    if scenario is None:
        scenario = Scenario()
    if not isinstance(scenario, Scenario):
        raise ValueError(f"scenario must be a week.Scenario, got {scenario!r}")
    n, model = scenario.n_nodes, scenario.model_bytes
    ps = allreduce.per_node_round_bytes("ps", n, model)
    naive = allreduce.per_node_round_bytes("naive", n, model)
    ring = allreduce.per_node_round_bytes("ring", n, model)
    dpsgd_per_node = messages.dpsgd_messages(n, scenario.degree, 1, final_allreduce=None) // n
    return [
        # A synchronous FL round with every node as a client: the server sends
        # the model to each and receives one update from each (exercise 1).
        SchemeTraffic("fl", "Federated learning", "chapters/ex1_fl_bandwidth",
                      {"server": n, "client": 1},
                      {"server": ps["server"], "client": ps["worker"]}),
        SchemeTraffic("ps", "Parameter server", "chapters/ex3_allreduce",
                      {"server": n, "worker": 1},
                      {"server": ps["server"], "worker": ps["worker"]}),
        SchemeTraffic("naive", "Naive all-reduce", "chapters/ex3_allreduce",
                      {"worker": messages.allreduce_messages(n, "naive") // n},
                      {"worker": naive["worker"]}),
        SchemeTraffic("ring", "Ring all-reduce", "chapters/ex3_allreduce",
                      {"worker": messages.allreduce_messages(n, "ring") // n},
                      {"worker": ring["worker"]}),
        # Push gossip: every node sends its model to one random peer per cycle.
        SchemeTraffic("gossip", "Gossip learning", "chapters/ex5_gossip",
                      {"node": 1}, {"node": model}),
        SchemeTraffic("dpsgd", "D-PSGD", "chapters/ex6_dpsgd",
                      {"node": dpsgd_per_node}, {"node": dpsgd_per_node * model}),
    ]
