import networkx as nx
import pytest

from dmlbook import messages
from dmlbook.dpsgd import run_dpsgd
from dmlbook.topology import from_graph, make_topology


def test_sheet_case():
    assert messages.dpsgd_messages(128, 8, 50) == 67_456
    assert messages.dpsgd_messages(128, 8, 50, final_allreduce=None) == 51_200
    assert messages.allreduce_messages(128) == 16_256


def test_hand_worked_cases():
    # A ring of 4 (degree 2), 3 steps: 3 * 8 = 24, plus 4 * 3 = 12.
    assert messages.dpsgd_messages(4, 2, 3) == 36
    assert messages.dpsgd_messages(4, 2, 0) == 12
    assert messages.dpsgd_messages(4, 2, 3, final_allreduce="ring") == 24 + 2 * 4 * 3
    # Average degree 2.5 on 4 nodes: 5 edges, 10 messages per step.
    assert messages.dpsgd_messages(4, 2.5, 2, final_allreduce=None) == 20


def test_ledger_of_the_sheets_run_counts_the_same():
    run = run_dpsgd(n_nodes=128, topology="regular", degree=8, rounds=50,
                    final_allreduce="naive", eval_every=50, progress=False)
    assert run.ledger.totals().sent == messages.dpsgd_messages(128, 8, 50) == 67_456
    per_round = run.ledger.per_round()
    assert set(per_round[1:51]) == {1024} and per_round[51] == 128 * 127


@pytest.mark.parametrize("n, degree, steps", [(10, 4, 7), (30, 3, 5), (16, 15, 2)])
def test_ledger_matches_formula_for_other_sizes(n, degree, steps):
    kind = "complete" if degree == n - 1 else "regular"
    run = run_dpsgd(n_nodes=n, topology=kind, degree=degree, rounds=steps,
                    final_allreduce="naive", eval_every=steps, progress=False)
    assert run.messages == messages.dpsgd_messages(n, degree, steps)
    plain = run_dpsgd(n_nodes=n, topology=kind, degree=degree, rounds=steps,
                      eval_every=steps, progress=False)
    assert plain.messages == messages.dpsgd_messages(n, degree, steps, final_allreduce=None)


def test_graph_with_degree_8_only_on_average():
    topo = make_topology("random", 128, degree=8, seed=3)
    assert topo.degrees.mean() == 8 and topo.degrees.min() < 8 < topo.degrees.max()
    run = run_dpsgd(n_nodes=128, topology=topo, rounds=50, final_allreduce="naive",
                    eval_every=50, progress=False)
    assert run.messages == 67_456
    star = from_graph(nx.star_graph(9))  # degrees 9 and 1: average 1.8
    run = run_dpsgd(n_nodes=10, topology=star, rounds=4, eval_every=4, progress=False)
    assert run.messages == messages.dpsgd_messages(10, 1.8, 4, final_allreduce=None) == 72


def test_losses_equal_after_the_allreduce():
    run = run_dpsgd(n_nodes=32, degree=4, rounds=10, split="shards",
                    final_allreduce="naive", progress=False)
    h = run.history.as_arrays()
    assert h["test_loss"][10].std() > 1e-3           # different models before
    assert h["test_loss"][11].max() - h["test_loss"][11].min() < 1e-5  # one model after
    assert h["test_loss"][11][0] == pytest.approx(h["avg_loss"][10], abs=1e-5)


@pytest.mark.parametrize("args, kw, param", [
    ((1, 8, 50), {}, "n_nodes"), ((128, 0, 50), {}, "degree"), ((128, 8, -1), {}, "steps"),
    ((128, 8, 50), {"final_allreduce": "tree"}, "final_allreduce"),
    ((5, 3, 1), {}, "degree"),          # 15 directed edges: not even
    ((5, 2.1, 1), {}, "degree"),        # not whole
    ((5, 6, 1), {}, "degree"),          # more neighbours than nodes
    ((128, True, 50), {}, "degree"), ((128, 8, "50"), {}, "steps"),
])
def test_bad_input(args, kw, param):
    with pytest.raises(ValueError, match=param):
        messages.dpsgd_messages(*args, **kw)


def test_sheet_case_with_a_ring_allreduce():
    assert messages.allreduce_messages(128, "ring") == 32_512
    assert messages.dpsgd_messages(128, 8, 50, final_allreduce="ring") == 83_712
    # Bytes: the ring sends 2 (n - 1) models' worth, the naive one n (n - 1) models.
    assert messages.allreduce_bytes(128, 100, "naive") == 16_256 * 100
    assert messages.allreduce_bytes(128, 128, "ring") == 32_512 * 1  # chunks of 1 byte
    assert messages.dpsgd_bytes(128, 8, 50, 10, final_allreduce="ring") == (51_200 + 254) * 10
    assert messages.dpsgd_bytes(4, 2, 3, 7, final_allreduce=None) == 24 * 7


def test_ledger_of_the_sheets_run_with_a_ring_allreduce():
    run = run_dpsgd(n_nodes=128, topology="regular", degree=8, rounds=50,
                    final_allreduce="ring", eval_every=50, progress=False)
    per_round = run.ledger.per_round()
    assert run.messages == messages.dpsgd_messages(128, 8, 50, final_allreduce="ring") == 83_712
    assert per_round[51] == 32_512
    model_bytes = run.nodes.payload_bytes
    assert run.ledger.totals().bytes_sent == messages.dpsgd_bytes(
        128, 8, 50, model_bytes, final_allreduce="ring")
    c = run.ledger.columns()
    ring = c["round"] == 51
    assert c["nbytes"][ring].max() <= model_bytes / 128 + 4  # each about 1/128 of a model


@pytest.mark.parametrize("call, param", [
    (lambda: messages.allreduce_bytes(128, 0), "model_bytes"),
    (lambda: messages.allreduce_bytes(128, 10, "tree"), "kind"),
    (lambda: messages.allreduce_bytes(1, 10), "n_nodes"),
    (lambda: messages.dpsgd_bytes(128, 8, 50, 2.5), "model_bytes"),
])
def test_bytes_bad_input(call, param):
    with pytest.raises(ValueError, match=param):
        call()
