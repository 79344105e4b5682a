"""Workbook 6's checks: the cases they try and the failures no pinned feedback reaches.

test_check_feedback.py pins the feedback of the wrong solutions in
test_check*.py. The mutation sample of check/ex6_dpsgd.py (benchmarks/README.md,
"Mutation testing") found what those never reach: the cases each stage draws,
the label of each hand-worked case, the named mistakes no pinned solution makes,
and the simulator stages' failures.
"""

import networkx as nx
import numpy as np
import torch

from check_helpers import calls_of, lines
from dmlbook import check
from dmlbook.check import reference as R


# ---------------------------------------------------------------------------
# dpsgd_messages


def messages(n, degree, steps):
    return n * degree * steps


def test_dpsgd_messages_cases_are_the_sheets_the_hand_worked_the_random_and_the_runs():
    calls = calls_of(check.dpsgd_messages, messages)
    assert calls[:5] == [(128, 8, 50), (4, 2, 1), (10, 3, 7), (16, 15, 3), (12, 4, 0)]
    randoms = calls[5:45]
    assert len(set(randoms)) == 40
    assert all(2 <= n < 10**5 and 1 <= d < min(n, 200) + 1 and n * d % 2 == 0
               and 0 <= s < 10**4 for n, d, s in randoms)
    assert max(n for n, _, _ in randoms) > 9 * 10**4 and max(d for _, d, _ in randoms) > 150
    assert max(s for _, _, s in randoms) > 9000
    assert calls[45:] == [(8, 4, 3), (10, 3, 2), (6, 2, 4)]  # run_dpsgd's three runs


def test_dpsgd_messages_each_hand_case_is_labelled_for_what_it_holds():
    none = lines(check.dpsgd_messages(lambda n, d, s: messages(n, d, s) if s else 1))
    assert none[1] == "Case: dpsgd_messages(n_nodes=12, degree=4, steps=0), no steps: no messages"
    complete = lines(check.dpsgd_messages(
        lambda n, d, s: messages(n, d, s) if d != n - 1 else 1))
    assert complete[1].endswith("), 3 steps on the complete graph of 16 nodes")


def test_dpsgd_messages_the_other_named_mistakes():
    cases = [(lambda n, d, s: 2 * messages(n, d, s), "directed vs undirected edges",
              "n * degree already counts each edge twice (once from each end)."),
             (lambda n, d, s: n * d * (s - 1), "off by one in the steps",
              "count exactly `steps` exchanges."),
             (lambda n, d, s: n * d, "forgot the steps", "every step sends again.")]
    for fn, mistake, hint in cases:
        got = lines(check.dpsgd_messages(fn))
        assert got[1] == ("Case: dpsgd_messages(n_nodes=128, degree=8, steps=50), the sheet's "
                          "case (before its all-reduce)")
        assert got[-1] == f"Hint ({mistake}): {hint}"


def test_dpsgd_messages_random_and_simulator_stages_name_their_case():
    big = lines(check.dpsgd_messages(lambda n, d, s: messages(n, d, s) if n < 50000 else 0))
    assert big[1] == ("Case: dpsgd_messages(n_nodes=55689, degree=2, steps=4195), random case "
                      "1 of 40")
    runs = ((8, 4, 3), (10, 3, 2), (6, 2, 4))
    ledger = lines(check.dpsgd_messages(
        lambda n, d, s: messages(n, d, s) if (n, d, s) not in runs else 0))
    assert ledger[1:4] == ["Case: dpsgd_messages(n_nodes=8, degree=4, steps=3), messages "
                           "run_dpsgd recorded in its ledger", "  expected: 96", "  got:      0"]


# ---------------------------------------------------------------------------
# dpsgd_round


def test_dpsgd_round_cases_are_the_hand_worked_the_random_and_the_runs():
    calls = calls_of(check.dpsgd_round, R.dpsgd_round)
    hand = [(p.tolist(), W.tolist(), g.tolist(), lr) for p, W, g, lr in calls[:3]]
    assert hand == [
        ([[1., 2.], [3., 4.], [5., 6.]], [[0.5, 0.5, 0.], [0.25, 0.5, 0.25], [0., 0.75, 0.25]],
         [[2., 0.], [0., 2.], [4., -2.]], 0.5),
        ([[0.], [8.]], [[0.5, 0.5], [0.5, 0.5]], [[1.], [3.]], 1.0),
        ([[1., 1., 1.], [2., 2., 2.]], [[1., 0.], [0., 1.]], [[1., 0., -1.], [0., 2., 0.]], 0.1)]
    randoms = calls[3:15]
    assert {lr for *_, lr in randoms} == {0.0, 0.05, 0.3, 1.0}
    assert min(p.shape[0] for p, *_ in randoms) == 2 and max(p.shape[0] for p, *_ in randoms) == 8
    for p, W, g, _ in randoms:
        n, P = p.shape
        assert 2 <= n <= 8 and 1 <= P <= 7 and W.shape == (n, n) and g.shape == (n, P)
        assert torch.allclose(W.sum(1), torch.ones(n)) and (W > 0).all()
        assert not torch.allclose(W, W.T)  # row-stochastic, not symmetric
    runs = calls[15:]
    assert len(runs) == 3 and all(p.shape == (8, 2410) for p, *_ in runs)


def test_dpsgd_round_each_hand_case_is_labelled_for_what_it_holds():
    two = lines(check.dpsgd_round(lambda p, W, g, lr: R.dpsgd_round(p, W, g, lr)
                                  if p.shape != (2, 1) else p.clone()))
    assert two[1].endswith("lr=1.0), 2 nodes averaging fully")
    identity = lines(check.dpsgd_round(
        lambda p, W, g, lr: R.dpsgd_round(p, W, g, lr)
        if not torch.equal(W, torch.eye(len(W))) else p.clone()))
    assert identity[1].endswith("lr=0.1), W = I: plain local SGD")
    assert identity[-1] == ("Hint (forgot the step): each node first takes its SGD step: "
                            "params - lr * grads.")


def test_dpsgd_round_element_wise_product_on_a_square_case():
    got = lines(check.dpsgd_round(lambda p, W, g, lr: W * (p - lr * g) if W.shape == p.shape
                                  else R.dpsgd_round(p, W, g, lr)))
    assert got[1].endswith("), random case 7 of 12 (7 nodes, lr = 0.05)")
    assert got[-2] == "Hint (element-wise product): mixing is a matrix product: W @ x."


def test_dpsgd_round_simulator_stage_names_the_node_that_differs():
    got = lines(check.dpsgd_round(
        lambda p, W, g, lr: R.dpsgd_round(p, W, g, lr) + (1e-3 if p.shape[1] > 100 else 0)))
    assert got[1] == "Case: 3 rounds of D-PSGD (8 nodes, degree 4) with your round: node 5"
    assert got[-2] == ("Hint (wrong value): the parameters differ by up to 0.00434 from "
                       "dmlbook.dpsgd.run_dpsgd's.")


# ---------------------------------------------------------------------------
# metropolis_weights


def test_metropolis_weights_cases_are_the_hand_worked_the_random_and_the_runs():
    calls = [A for (A,) in calls_of(check.metropolis_weights, R.metropolis_weights)]
    assert np.array_equal(calls[0], nx.to_numpy_array(nx.star_graph(4)))
    assert np.array_equal(calls[1], nx.to_numpy_array(nx.path_graph(3)))
    randoms = calls[2:14]
    assert all(3 <= len(A) <= 15 for A in randoms) and len({len(A) for A in randoms}) >= 5
    for A in randoms:
        degrees = A.sum(1)
        assert np.array_equal(A, A.T) and degrees.max() == len(A) - 1  # a star's centre
        assert nx.is_connected(nx.from_numpy_array(A))
    assert any(A.sum(1).max() > A.sum(1).min() + 1 and np.sort(A.sum(1))[-2] > 1
               for A in randoms)  # extra edges: uneven beyond the star
    centres = [int(A.sum(1).argmax()) for A in randoms]
    assert len(set(centres)) > 3  # relabelled: the centre is not always node 0
    assert len(calls) == 15 and len(calls[14]) == 10  # the graph of the D-PSGD run


def test_metropolis_weights_each_stage_names_its_graph():
    path = lines(check.metropolis_weights(
        lambda A: R.metropolis_weights(A) if len(A) != 3 else np.eye(3)))
    assert path[1] == "Case: metropolis_weights on a path of 3 nodes (3 nodes, degrees [1, 2, 1])"
    uneven = lines(check.metropolis_weights(
        lambda A: R.metropolis_weights(A) if len(A) <= 5 else np.eye(len(A))))
    assert uneven[1] == ("Case: metropolis_weights on random uneven graph 2 of 12 (6 nodes, "
                         "degrees [2, 1, 2, 5, 3, 3])")
    run = lines(check.metropolis_weights(
        lambda A: R.metropolis_weights(A) if len(A) != 10 else np.eye(len(A))))
    assert run[1] == ("Case: metropolis_weights on the graph of the D-PSGD run (10 nodes, "
                      "degrees [3, 2, 2, 2, 6, 2, 2, 3, 9, 3])")


def test_the_labels_of_a_3_regular_graph_and_of_a_round_inside_run_dpsgd():
    regular = lines(check.dpsgd_messages(
        lambda n, d, s: messages(n, d, s) if (n, d, s) != (10, 3, 7) else 0))
    assert regular[1] == ("Case: dpsgd_messages(n_nodes=10, degree=3, steps=7), 7 steps on a "
                          "3-regular graph")
    short = lines(check.dpsgd_round(
        lambda p, W, g, lr: R.dpsgd_round(p, W, g, lr) if p.shape[1] < 100 else p[:, :-1]))
    assert short[1] == "Case: a round of run_dpsgd"
    assert short[-2] == "Hint (wrong shape): return a tensor of shape (8, 2410)."


def test_a_metropolis_run_that_differs_shows_the_node_furthest_off(monkeypatch):
    # W passes the graph stages within 1e-9, so a run with it differs only if the
    # simulator does: the run is replaced by one whose node 6 drifts.
    from dmlbook.check import ex6_dpsgd

    real = ex6_dpsgd.run_dpsgd
    calls = []

    def drifting(**kw):
        result = real(**kw)
        calls.append(result)
        if len(calls) == 1:  # the run with the student's W
            result.nodes.params[6, 3] += 0.5
            result.nodes.params[2, 0] += 2e-6  # within the stage's tolerance
        return result

    monkeypatch.setattr(ex6_dpsgd, "run_dpsgd", drifting)
    feedback = lines(check.metropolis_weights(R.metropolis_weights))
    assert feedback[1] == ("Case: 5 rounds of D-PSGD on an uneven graph of 10 nodes with your "
                           "W: node 6's model")
    assert len(calls) == 2
    assert feedback[2].split(": ", 1)[1] != feedback[3].split(": ", 1)[1]
