"""Communication graphs and their mixing matrices.

A decentralized algorithm averages each node's model with its neighbours'
models using a mixing matrix ``W``: ``W[i, j] > 0`` only if ``j`` is ``i``
itself or a neighbour of ``i``, and every row sums to 1. If every column sums
to 1 too (``W`` is *doubly stochastic*), repeated mixing converges to the
exact average; how fast depends on the spectral gap ``1 - |lambda_2|``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import torch

from .units import (MAX_GRAPH_EDGES, MAX_NODES, check_choice, check_int, check_number,
                    check_probability, check_seed)

GRAPHS = ("ring", "torus", "regular", "random", "erdos_renyi", "star", "complete")
WEIGHTS = ("metropolis", "uniform")
#: The kinds that use ``degree``, and ``p``; the others reject them.
USES_DEGREE = ("regular", "random")
USES_P = ("erdos_renyi",)
DEFAULT_DEGREE = 8
DEFAULT_P = 0.1


def _fixed_degree(kind: str, n: int) -> int | None:
    """The degree every node has in a graph of ``kind`` that does not take one."""
    return {"ring": 2, "torus": 4, "complete": n - 1}.get(kind)


def _check_edges(edges: float, kind: str) -> None:
    if edges > MAX_GRAPH_EDGES:
        raise ValueError(f"n must keep a {kind} graph at <= {MAX_GRAPH_EDGES:,} edges "
                         f"(MAX_GRAPH_EDGES), got {edges:,.0f} edges")


def _torus_shape(n: int) -> tuple[int, int]:
    rows = max(r for r in range(1, math.isqrt(n) + 1) if n % r == 0)
    if rows < 3:
        raise ValueError(f"n must factor as rows x cols with both >= 3 for a torus, got {n}")
    return rows, n // rows


def make_graph(kind: str, n: int, *, degree: int | None = None, p: float | None = None,
               seed: int = 0) -> nx.Graph:
    """A connected, undirected graph on nodes ``0 .. n-1``.

    Args:
        kind: ``"ring"``, ``"torus"`` (2-D, as square as ``n`` allows),
            ``"regular"`` (random ``degree``-regular), ``"random"`` (uniformly
            random with ``n * degree / 2`` edges: average degree ``degree``,
            degrees vary; redrawn until connected), ``"erdos_renyi"``
            (edge probability ``p``; redrawn until connected), ``"star"``
            (node 0 in the centre) or ``"complete"``.
        n: number of nodes, 2 to :data:`~dmlbook.units.MAX_NODES`; the graph
            may have at most :data:`~dmlbook.units.MAX_GRAPH_EDGES` edges.
        degree: degree of a random regular graph, average degree of a
            ``"random"`` one (``n * degree`` must be even); default 8. Other
            kinds reject it, unless it is the degree their nodes have anyway
            (2 for a ring, 4 for a torus, ``n - 1`` for a complete graph).
        p: edge probability of an Erdős–Rényi graph (default 0.1); other
            kinds reject it.
        seed: seed of the random graphs (0 to :data:`~dmlbook.units.MAX_SEED`).
    """
    kind = check_choice("kind", kind, GRAPHS)
    n = check_int("n", n, minimum=2, maximum=MAX_NODES)
    seed = check_seed(seed)
    if degree is not None and kind not in USES_DEGREE:
        fixed = _fixed_degree(kind, n)
        if fixed is None or isinstance(degree, bool) or degree != fixed:
            raise ValueError(f"degree is used only by 'regular' and 'random' graphs; a {kind} "
                             f"graph would ignore degree={degree!r}: leave it out")
    if p is not None and kind not in USES_P:
        raise ValueError(f"p is used only by 'erdos_renyi' graphs; a {kind} graph would "
                         f"ignore p={p!r}: leave it out")
    degree = DEFAULT_DEGREE if degree is None else degree
    p = DEFAULT_P if p is None else p
    if kind == "ring":
        if n < 3:
            raise ValueError(f"n must be >= 3 for a ring (n_nodes >= 3), got {n}")
        graph = nx.cycle_graph(n)
    elif kind == "torus":
        rows, cols = _torus_shape(n)
        graph = nx.convert_node_labels_to_integers(
            nx.grid_2d_graph(rows, cols, periodic=True), ordering="sorted")
    elif kind == "regular":
        degree = check_int("degree", degree, maximum=MAX_NODES)
        if degree >= n or (n * degree) % 2:
            raise ValueError(f"degree must be < n with n * degree even, got degree={degree}, n={n}")
        _check_edges(n * degree / 2, kind)
        graph = _connected(lambda s: nx.random_regular_graph(degree, n, seed=s), seed)
    elif kind == "random":
        degree = check_number("degree", degree, maximum=MAX_NODES)
        edges = n * degree / 2
        if edges != int(edges) or degree >= n - 1:
            raise ValueError(f"degree must be < n - 1 with n * degree even, got degree={degree}, n={n}")
        _check_edges(edges, kind)
        graph = _connected(lambda s: nx.gnm_random_graph(n, int(edges), seed=s), seed)
    elif kind == "erdos_renyi":
        p = check_probability("p", p)
        if p == 0:
            raise ValueError("p must be a probability in (0, 1] for a connected graph, got 0")
        _check_edges(p * n * (n - 1) / 2, kind)
        graph = _connected(lambda s: nx.erdos_renyi_graph(n, p, seed=s), seed)
    elif kind == "star":
        graph = nx.star_graph(n - 1)
    else:
        _check_edges(n * (n - 1) / 2, kind)
        graph = nx.complete_graph(n)
    return graph


def _connected(draw, seed: int, tries: int = 100) -> nx.Graph:
    for attempt in range(tries):
        graph = draw(seed + attempt * 7919)
        if nx.is_connected(graph):
            return graph
    raise ValueError(f"no connected graph in {tries} draws: raise degree or p")


def _refuse_multigraph(graph) -> None:
    # A MultiGraph (what nx.configuration_model returns) counts a doubled edge
    # twice: its weights would be summed and rows of W would no longer add up to 1.
    if isinstance(graph, nx.MultiGraph):
        raise ValueError(f"graph must be a simple networkx.Graph, got a {type(graph).__name__}; "
                         "collapse parallel edges and drop self-loops first, e.g. "
                         "nx.Graph(graph) and graph.remove_edges_from(nx.selfloop_edges(graph))")


def mixing_matrix(graph: nx.Graph, weights: str = "metropolis") -> np.ndarray:
    """Dense ``n x n`` mixing matrix of ``graph``.

    ``"metropolis"`` (Metropolis–Hastings): ``W[i, j] = 1 / (1 + max(d_i, d_j))``
    for each edge, the rest of the row on the diagonal; symmetric and doubly
    stochastic on every graph. ``"uniform"``: each node weighs itself and its
    neighbours equally, ``1 / (d_i + 1)``; rows sum to 1, columns only on
    regular graphs.
    """
    weights = check_choice("weights", weights, WEIGHTS)
    if not isinstance(graph, nx.Graph):
        raise ValueError(f"graph must be a networkx.Graph, got {type(graph).__name__}")
    _refuse_multigraph(graph)
    n = check_int("graph's number of nodes", graph.number_of_nodes(), maximum=MAX_NODES)
    if sorted(graph.nodes()) != list(range(n)):
        raise ValueError("graph must have nodes labelled 0 .. n-1")
    deg = np.array([graph.degree(i) for i in range(n)], dtype=np.float64)
    W = np.zeros((n, n))
    for i, j in graph.edges():
        if weights == "metropolis":
            W[i, j] = W[j, i] = 1.0 / (1.0 + max(deg[i], deg[j]))
        else:
            W[i, j], W[j, i] = 1.0 / (deg[i] + 1), 1.0 / (deg[j] + 1)
    W[np.diag_indices(n)] = 1.0 - W.sum(axis=1)
    return W


def _check_square(W) -> np.ndarray:
    try:
        W = np.asarray(W, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("W must be a square matrix of finite numbers") from None
    if W.ndim != 2 or W.shape[0] != W.shape[1] or W.size == 0:
        raise ValueError(f"W must be a non-empty square matrix, got shape {W.shape}")
    if W.shape[0] > MAX_NODES:
        raise ValueError(f"W must have at most MAX_NODES = {MAX_NODES} rows, got {W.shape[0]}")
    if not np.isfinite(W).all():
        raise ValueError("W must be a square matrix of finite numbers")
    return W


def is_doubly_stochastic(W: np.ndarray, tol: float = 1e-9) -> bool:
    """Non-negative, and every row and every column sums to 1."""
    W = _check_square(W)
    tol = check_number("tol", tol, maximum=1.0)
    return bool((W >= -tol).all() and np.allclose(W.sum(0), 1, atol=tol)
                and np.allclose(W.sum(1), 1, atol=tol))


def spectral_gap(W: np.ndarray) -> float:
    """``1 - |lambda_2|``: one minus the second-largest eigenvalue modulus of ``W``."""
    moduli = np.sort(np.abs(np.linalg.eigvals(_check_square(W))))[::-1]
    return float(1.0 - moduli[1]) if len(moduli) > 1 else 1.0


@dataclass
class Topology:
    """A graph and its mixing weights, as edge lists the engine can use.

    ``src[e] -> dst[e]`` is one directed message with weight ``weight[e]``
    (``W[dst, src]``); ``self_weight[i]`` is ``W[i, i]``. Each undirected
    edge appears twice, once per direction.
    """

    graph: nx.Graph
    W: np.ndarray
    kind: str = "custom"
    src: torch.Tensor = field(init=False)
    dst: torch.Tensor = field(init=False)
    src_np: np.ndarray = field(init=False, repr=False)
    dst_np: np.ndarray = field(init=False, repr=False)
    weight: torch.Tensor = field(init=False)
    self_weight: torch.Tensor = field(init=False)

    def __post_init__(self):
        _refuse_multigraph(self.graph)
        edges = np.array([(i, j) for i, j in self.graph.edges()], dtype=np.int64).reshape(-1, 2)
        src = np.concatenate([edges[:, 0], edges[:, 1]])
        dst = np.concatenate([edges[:, 1], edges[:, 0]])
        order = np.lexsort((src, dst))  # grouped by receiver
        self.src_np, self.dst_np = src[order], dst[order]
        self.src = torch.from_numpy(self.src_np)
        self.dst = torch.from_numpy(self.dst_np)
        self.weight = torch.tensor(self.W[dst[order], src[order]], dtype=torch.float32)
        self.self_weight = torch.tensor(np.diag(self.W).copy(), dtype=torch.float32)

    @property
    def n(self) -> int:
        return self.graph.number_of_nodes()

    @property
    def n_edges(self) -> int:
        """Directed edges: messages per round when every node sends to every neighbour."""
        return len(self.src)

    @property
    def degrees(self) -> np.ndarray:
        return np.array([self.graph.degree(i) for i in range(self.n)])

    @property
    def doubly_stochastic(self) -> bool:
        return is_doubly_stochastic(self.W)

    @property
    def spectral_gap(self) -> float:
        return spectral_gap(self.W)

    def neighbors(self, i: int) -> list[int]:
        return sorted(self.graph.neighbors(i))


def make_topology(kind: str, n: int, *, degree: int | None = None, p: float | None = None,
                  seed: int = 0, weights: str = "metropolis") -> Topology:
    """:func:`make_graph` plus :func:`mixing_matrix`, as a :class:`Topology`."""
    weights = check_choice("weights", weights, WEIGHTS)
    graph = make_graph(kind, n, degree=degree, p=p, seed=seed)
    return Topology(graph, mixing_matrix(graph, weights), kind=kind)


def from_graph(graph: nx.Graph, weights: str = "metropolis") -> Topology:
    """A :class:`Topology` of any connected graph whose nodes are ``0 .. n-1``.

    At most :data:`~dmlbook.units.MAX_NODES` nodes and
    :data:`~dmlbook.units.MAX_GRAPH_EDGES` edges.
    """
    if not isinstance(graph, nx.Graph) or graph.is_directed():
        raise ValueError(f"graph must be an undirected networkx.Graph, got {type(graph).__name__}")
    _refuse_multigraph(graph)
    n = check_int("graph's number of nodes", graph.number_of_nodes(), minimum=2,
                  maximum=MAX_NODES)
    _check_edges(graph.number_of_edges(), "custom")
    if sorted(graph.nodes()) != list(range(n)):
        raise ValueError("graph must have nodes labelled 0 .. n-1")
    if nx.number_of_selfloops(graph) or not nx.is_connected(graph):
        raise ValueError("graph must be connected, without self-loops")
    return Topology(graph, mixing_matrix(graph, weights))


def resolve_topology(topology, n_nodes: int, *, degree=None, seed: int = 0,
                     default_degree: int = DEFAULT_DEGREE) -> Topology:
    """The :class:`Topology` an entry point runs on, checked against ``n_nodes``.

    ``topology`` is a :class:`Topology` with ``n_nodes`` nodes (then
    ``degree`` must be left out: it would be ignored) or a graph kind of
    :func:`make_graph`, built with ``degree`` (``default_degree`` when it is
    left out, for the kinds that use one) and ``seed``.
    """
    if isinstance(topology, Topology):
        if degree is not None:
            raise ValueError(f"degree is ignored when topology is a Topology; leave it out, "
                             f"got degree={degree!r}")
        if topology.n != n_nodes:
            raise ValueError(f"topology must have n_nodes={n_nodes} nodes, got {topology.n}")
        return topology
    if not isinstance(topology, str):
        raise ValueError(f"topology must be a Topology or one of "
                         f"{', '.join(map(repr, GRAPHS))}, got {topology!r} "
                         f"({type(topology).__name__})")
    kind = check_choice("topology", topology, GRAPHS)
    if degree is None and kind in USES_DEGREE:
        degree = default_degree
    return make_topology(kind, n_nodes, degree=degree, seed=seed)
