import networkx as nx
import numpy as np
import pytest

from dmlbook import topology as T


def _kw(kind, degree, p=None):
    """degree and p only for the kinds that use them (the others reject them)."""
    kw = {"degree": degree} if kind in T.USES_DEGREE else {}
    if p is not None and kind in T.USES_P:
        kw["p"] = p
    return kw


@pytest.mark.parametrize("kind, n, degrees", [
    ("ring", 10, {2}), ("torus", 16, {4}), ("regular", 128, {8}), ("star", 6, {1, 5}),
    ("complete", 7, {6}),
])
def test_graph_shapes(kind, n, degrees):
    g = T.make_graph(kind, n, **_kw(kind, 8))
    assert g.number_of_nodes() == n and nx.is_connected(g)
    assert {d for _, d in g.degree()} == degrees


def test_torus_is_as_square_as_possible():
    g = T.make_graph("torus", 128)
    assert g.number_of_edges() == 2 * 128  # 8 x 16 torus: every node has degree 4


def test_erdos_renyi_is_connected_and_seeded():
    a = T.make_graph("erdos_renyi", 50, p=0.1, seed=1)
    b = T.make_graph("erdos_renyi", 50, p=0.1, seed=1)
    assert nx.is_connected(a) and sorted(a.edges()) == sorted(b.edges())


@pytest.mark.parametrize("kind", T.GRAPHS)
def test_metropolis_is_doubly_stochastic_everywhere(kind):
    g = T.make_graph(kind, 16, **_kw(kind, 4, p=0.3))
    W = T.mixing_matrix(g, "metropolis")
    assert T.is_doubly_stochastic(W) and np.allclose(W, W.T)
    # Zero exactly where there is no edge.
    A = nx.to_numpy_array(g, nodelist=range(16)) + np.eye(16)
    assert np.all((W > 0) <= (A > 0))


def test_uniform_weights_are_row_stochastic_and_doubly_only_on_regular_graphs():
    star = T.mixing_matrix(T.make_graph("star", 6), "uniform")
    assert np.allclose(star.sum(1), 1) and not T.is_doubly_stochastic(star)
    ring = T.mixing_matrix(T.make_graph("ring", 6), "uniform")
    assert T.is_doubly_stochastic(ring) and np.allclose(ring[0, [5, 0, 1]], 1 / 3)


def test_spectral_gap_orders_topologies():
    gaps = {k: T.make_topology(k, 64, **_kw(k, 8)).spectral_gap
            for k in ("ring", "torus", "regular", "complete")}
    assert gaps["ring"] < gaps["torus"] < gaps["regular"] < gaps["complete"]
    assert gaps["complete"] == pytest.approx(1.0)
    # Hand-computed: a ring of n with weights 1/3 has lambda_2 = (1 + 2 cos(2 pi / n)) / 3.
    ring = T.make_topology("ring", 10)
    assert ring.spectral_gap == pytest.approx(1 - (1 + 2 * np.cos(2 * np.pi / 10)) / 3)


def test_topology_edge_lists_match_W():
    topo = T.make_topology("regular", 20, degree=4)
    assert topo.n_edges == 20 * 4
    W = np.diag(topo.self_weight.numpy()).astype(float)
    W[topo.dst.numpy(), topo.src.numpy()] = topo.weight.numpy()
    assert np.allclose(W, topo.W, atol=1e-7)
    assert topo.neighbors(0) == sorted(topo.graph.neighbors(0))
    assert list(topo.degrees) == [4] * 20


@pytest.mark.parametrize("call, param", [
    (lambda: T.make_graph("hypercube", 8), "kind"),
    (lambda: T.make_graph("ring", 1), "n"),
    (lambda: T.make_graph("ring", 2), "n"),
    (lambda: T.make_graph("regular", 9, degree=3), "degree"),
    (lambda: T.make_graph("regular", 8, degree=8), "degree"),
    (lambda: T.make_graph("torus", 14), "n"),
    (lambda: T.make_graph("erdos_renyi", 10, p=0), "p"),
    (lambda: T.make_graph("erdos_renyi", 10, p=1.5), "p"),
    (lambda: T.mixing_matrix(nx.cycle_graph(4), "max-degree"), "weights"),
    (lambda: T.from_graph(nx.relabel_nodes(nx.cycle_graph(3), {0: 5})), "graph"),
])
def test_bad_input(call, param):
    with pytest.raises(ValueError, match=param):
        call()
