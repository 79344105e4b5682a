"""Workbook 6: D-PSGD's messages, its round, and Metropolis weights for an uneven graph."""

from __future__ import annotations

import networkx as nx
import numpy as np
import torch

from ..dpsgd import run_dpsgd
from ..sheet import SHEET
from ..topology import Topology, mixing_matrix
from .display import args_text, short
from .harness import (Failure, as_int, call, call_shaped, call_tensors, each, ratio_hint,
                      rng_for, seeded, stages, tensor_result)

_MESSAGE_ARGS = ("n_nodes", "degree", "steps")


def _messages_case(fn, args, label, expected=None):
    """``expected``: a function of no arguments (default: the formula), called after the
    student's: the answer is never on the stack while their function runs."""
    case = f"dpsgd_messages({args_text(_MESSAGE_ARGS, args)}), {label}"
    n, degree, steps = args
    out = call(fn, case, *args)
    expected = n * degree * steps if expected is None else expected()
    actual = as_int(out, case, expected, "the number of messages")
    if actual == expected:
        return actual
    allreduce = n * (n - 1)
    if expected and actual - expected == allreduce:
        raise Failure(case, expected=expected, actual=actual, mistake="included the all-reduce",
                      hint=f"count only the D-PSGD steps; the final all-reduce's "
                           f"n (n - 1) = {allreduce} messages are not asked for here.")
    known = [
        (1 / 2, "directed vs undirected edges",
         "every edge carries two messages per step, one each way: n * degree, not n * degree / 2."),
        (2, "directed vs undirected edges",
         "n * degree already counts each edge twice (once from each end)."),
        ((steps + 1) / steps if steps else 0, "off by one in the steps",
         "count exactly `steps` exchanges."),
        ((steps - 1) / steps if steps > 1 else 0, "off by one in the steps",
         "count exactly `steps` exchanges."),
        (1 / steps if steps > 1 else 0, "forgot the steps", "every step sends again."),
        ((n - 1) / degree, "complete graph", "D-PSGD sends to the neighbours only: "
                                             "degree messages per node per step, not n - 1.")]
    mistake, hint = ratio_hint(expected, actual, known) or (
        "wrong value", "each step, each node sends one message to each of its neighbours.")
    raise Failure(case, expected=expected, actual=actual, mistake=mistake, hint=hint)


def dpsgd_messages(fn, *, time_limit_s=None):
    """Check ``fn(n_nodes, degree, steps) -> int``: D-PSGD's messages, no all-reduce."""
    hand = [((SHEET.dpsgd_nodes, SHEET.dpsgd_degree, SHEET.dpsgd_steps),
             "the sheet's case (before its all-reduce)"),
            ((4, 2, 1), "one step on a ring of 4 nodes"),
            ((10, 3, 7), "7 steps on a 3-regular graph"),
            ((16, 15, 3), "3 steps on the complete graph of 16 nodes"),
            ((12, 4, 0), "no steps: no messages")]

    def random_cases(fn):
        rng = rng_for("dpsgd_messages")
        for k in range(40):
            n = int(rng.integers(2, 10**5))
            degree = int(rng.integers(1, min(n, 200)))
            if n * degree % 2:
                degree -= 1 if degree > 1 else -1
            _messages_case(fn, (n, degree, int(rng.integers(0, 10**4))),
                           f"random case {k + 1} of 40")
        return "40 seeded random graphs and step counts"

    def simulator(fn):
        counted = []
        for n, degree, steps in ((8, 4, 3), (10, 3, 2), (6, 2, 4)):
            ran = run_dpsgd(n_nodes=n, topology="regular", degree=degree, rounds=steps,
                            model="logreg", eval_every=steps, progress=False)
            _messages_case(fn, (n, degree, steps), "messages run_dpsgd recorded in its ledger",
                           expected=lambda: ran.messages)
            counted.append(ran.messages)
        return (f"the counts equal the messages run_dpsgd sent in 3 runs "
                f"({', '.join(map(str, counted))})")

    return stages("dpsgd_messages", fn, each(_messages_case, hand), random_cases, simulator,
                  time_limit_s=time_limit_s)


def _round_case(fn, params, W, grads, lr, label):
    stepped = params - lr * grads
    case = (f"dpsgd_round(params={short(params)}, W={short(W)}, grads={short(grads)}, "
            f"lr={lr}), {label}")
    out, changed = call_tensors(fn, case, params, W, grads, lr)
    candidates = [
        ("mixing before stepping", W @ params - lr * grads,
         "the sheet's order: first the local SGD step, then average the stepped models "
         "(W @ (params - lr * grads))."),
        ("forgot to mix", stepped, "after the step each node averages its neighbours' models: "
                                   "multiply by W."),
        ("forgot the step", W @ params, "each node first takes its SGD step: params - lr * grads."),
        ("W transposed", W.T @ stepped, "W[i, j] is the weight node i gives to node j: row i "
                                        "makes node i's new model, so W @ x, not W.T @ x."),
        ("gradient ascent", W @ (params + lr * grads), "a descent step subtracts lr * grads."),
        ("all-reduce instead of neighbours", stepped.mean(0).expand_as(stepped),
         "each node averages its neighbours' models with the weights W, not all nodes' models."),
        ("element-wise product", W * stepped if W.shape == stepped.shape else stepped[:0],
         "mixing is a matrix product: W @ x.")]
    names = ["params", "W", "grads", "lr"]
    return tensor_result(case, out, W @ stepped, [names[i] for i in changed], candidates,
                         "new params = W @ (params - lr * grads).", atol=1e-5)


def dpsgd_round(fn, *, time_limit_s=None):
    """Check ``fn(params (n, P), W (n, n), grads (n, P), lr) -> new params (n, P)``.

    The sheet's order: every node steps on its own gradient, then mixes.
    """
    W3 = torch.tensor([[0.5, 0.5, 0.0], [0.25, 0.5, 0.25], [0.0, 0.75, 0.25]])
    hand = [(torch.tensor([[1., 2.], [3., 4.], [5., 6.]]), W3,
             torch.tensor([[2., 0.], [0., 2.], [4., -2.]]), 0.5,
             "3 nodes, a row-stochastic W that is not symmetric"),
            (torch.tensor([[0.], [8.]]), torch.tensor([[0.5, 0.5], [0.5, 0.5]]),
             torch.tensor([[1.], [3.]]), 1.0, "2 nodes averaging fully"),
            (torch.tensor([[1., 1., 1.], [2., 2., 2.]]), torch.eye(2),
             torch.tensor([[1., 0., -1.], [0., 2., 0.]]), 0.1, "W = I: plain local SGD")]

    def random_cases(fn):
        rng, gen = seeded("dpsgd_round")
        for k in range(12):
            n, P = int(rng.integers(2, 9)), int(rng.integers(1, 8))
            W = torch.rand((n, n), generator=gen)
            W = W / W.sum(1, keepdim=True)
            lr = float(rng.choice([0.0, 0.05, 0.3, 1.0]))
            _round_case(fn, torch.randn((n, P), generator=gen), W,
                        torch.randn((n, P), generator=gen), lr,
                        f"random case {k + 1} of 12 ({n} nodes, lr = {lr})")
        return "12 seeded random rounds; inputs unchanged"

    def simulator(fn):
        def round_fn(params, W, grads, lr):
            return call_shaped(fn, "a round of run_dpsgd", params, params, W, grads, lr)

        kw = dict(n_nodes=8, topology="regular", degree=4, rounds=3, lr=0.1, batch_size=32,
                  seed=0, progress=False)
        ours, reference = run_dpsgd(round_fn=round_fn, **kw), run_dpsgd(**kw)
        diff = (ours.nodes.params - reference.nodes.params).abs().max(1).values
        if float(diff.max()) > 1e-5:
            node = int(diff.argmax())
            raise Failure(f"3 rounds of D-PSGD (8 nodes, degree 4) with your round: node {node}",
                          expected=reference.nodes.params[node], actual=ours.nodes.params[node],
                          mistake="wrong value", hint=f"the parameters differ by up to "
                          f"{float(diff.max()):.3g} from dmlbook.dpsgd.run_dpsgd's.")
        return (f"3 rounds of dmlbook.dpsgd.run_dpsgd on 8 nodes with your round equal its own "
                f"(max difference {float(diff.max()):.1e})")

    return stages("dpsgd_round", fn, each(_round_case, hand), random_cases, simulator,
                  time_limit_s=time_limit_s)


def _uneven_graph(rng, n):
    """A connected graph whose degrees differ: a star plus random extra edges."""
    graph = nx.star_graph(n - 1)
    for _ in range(int(rng.integers(0, n))):
        i, j = (int(v) for v in rng.choice(np.arange(1, n), 2, replace=False))
        graph.add_edge(i, j)
    perm = rng.permutation(n)
    return nx.relabel_nodes(graph, {i: int(perm[i]) for i in range(n)})


def _weights_case(fn, graph, label):
    n = graph.number_of_nodes()
    A = nx.to_numpy_array(graph, nodelist=range(n))
    degrees = A.sum(1).astype(int).tolist()
    shown = str(degrees) if n <= 16 else f"{min(degrees)} to {max(degrees)}"
    case = f"metropolis_weights on {label} ({n} nodes, degrees {shown})"
    out = call(fn, case, A.copy())
    expected = torch.from_numpy(mixing_matrix(graph, "metropolis"))  # after the call
    d = torch.from_numpy(A.sum(1))
    candidates = [
        ("min instead of max", None, "use the larger degree: 1 / (1 + max(d_i, d_j))."),
        ("forgot the self-weight", torch.from_numpy(A) / (1 + torch.maximum(d[:, None],
                                                                             d[None, :])),
         "each node keeps 1 - (its row's other weights) for itself, on the diagonal."),
        ("uniform weights", torch.from_numpy((A + np.eye(n)) / (1 + A.sum(1, keepdims=True))),
         "1 / (1 + d_i) per row is not symmetric on an uneven graph: use 1 / (1 + max(d_i, "
         "d_j)) for the edge i-j.")]
    low = torch.from_numpy(A) / (1 + torch.minimum(d[:, None], d[None, :]))
    low = low + torch.diag(1 - low.sum(1))
    candidates[0] = (candidates[0][0], low, candidates[0][2])
    W = tensor_result(case, out, expected, [], candidates,
                      "W[i, j] = 1 / (1 + max(d_i, d_j)) for neighbours, 0 for others, and "
                      "W[i, i] = 1 - the rest of row i.", atol=1e-9)
    return W


def metropolis_weights(fn, *, time_limit_s=None):
    """Check ``fn(adjacency (n, n) array) -> W (n, n)``: Metropolis-Hastings weights,
    then D-PSGD on an uneven graph with them inside :func:`run_dpsgd`."""
    hand = each(_weights_case, [(nx.star_graph(4), "a star of 5 nodes"),
                                (nx.path_graph(3), "a path of 3 nodes")],
                "a star and a path by hand")

    def random_cases(fn):
        rng = rng_for("metropolis_weights")
        for k in range(12):
            _weights_case(fn, _uneven_graph(rng, int(rng.integers(3, 16))),
                          f"random uneven graph {k + 1} of 12")
        return "12 seeded random uneven graphs: symmetric, doubly stochastic, zero off the graph"

    def simulator(fn):
        rng = rng_for("metropolis_weights/dpsgd")
        graph = _uneven_graph(rng, 10)
        W = _weights_case(fn, graph, "the graph of the D-PSGD run")
        kw = dict(n_nodes=10, rounds=5, lr=0.1, model="logreg", seed=1, eval_every=5,
                  progress=False)
        ours = run_dpsgd(topology=Topology(graph, W.double().numpy()), **kw)
        reference = run_dpsgd(topology=Topology(graph, mixing_matrix(graph)), **kw)
        spread = float((ours.nodes.params - ours.nodes.params.mean(0)).norm(dim=1).max())
        gaps = (ours.nodes.params - reference.nodes.params).abs().amax(1)
        if float(gaps.max()) > 1e-5:
            node = int(gaps.argmax())  # the node whose model is furthest off is shown
            raise Failure(f"5 rounds of D-PSGD on an uneven graph of 10 nodes with your W: "
                          f"node {node}'s model", expected=reference.nodes.params[node],
                          actual=ours.nodes.params[node], mistake="wrong value",
                          hint="the models differ from D-PSGD with dmlbook.topology's "
                          "Metropolis weights.", atol=1e-5)
        return (f"5 rounds of dmlbook.dpsgd.run_dpsgd on an uneven graph of 10 nodes (degrees "
                f"{min(dict(graph.degree()).values())} to {max(dict(graph.degree()).values())}) "
                f"with your W match dmlbook.topology's; largest distance to the average model "
                f"{spread:.3g}")

    return stages("metropolis_weights", fn, hand, random_cases, simulator,
                  time_limit_s=time_limit_s)
