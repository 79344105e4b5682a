"""Exercise 6: how many messages D-PSGD and a final all-reduce send.

In one D-PSGD step every node sends its model to each of its neighbours, so
a step costs one message per directed edge: the sum of all degrees,
``n_nodes * degree`` for average degree ``degree``. A naive all-reduce is
D-PSGD on the complete graph: ``n_nodes * (n_nodes - 1)`` messages. A ring
all-reduce sends ``2 (n_nodes - 1)`` smaller messages per node.
"""

from __future__ import annotations

import math

import numpy as np

from .units import MAX_COUNT, check_choice, check_int, check_number, check_probability

ALLREDUCE_MESSAGES = (None, "naive", "ring")


def allreduce_messages(n_nodes: int, kind: str = "naive") -> int:
    """Messages of one all-reduce: ``n(n-1)`` naive, ``2n(n-1)`` ring (each 1/n of a model).

    ``n_nodes`` from 2 to :data:`~dmlbook.units.MAX_COUNT`.
    """
    n_nodes = check_int("n_nodes", n_nodes, minimum=2, maximum=MAX_COUNT)
    kind = check_choice("kind", kind, ("naive", "ring"))
    return n_nodes * (n_nodes - 1) * (1 if kind == "naive" else 2)


def dpsgd_messages(n_nodes: int, degree: float, steps: int, *,
                   final_allreduce: str | None = "naive") -> int:
    """Messages of ``steps`` D-PSGD steps, plus one final all-reduce.

    Args:
        n_nodes: nodes in the graph.
        degree: average degree (``n_nodes * degree`` must be a whole, even
            number: it is twice the number of edges).
        steps: D-PSGD steps; each sends one message per directed edge.
        final_allreduce: ``"naive"`` (every node to every other), ``"ring"``,
            or ``None`` for no all-reduce.

    The sheet's case, 128 nodes of average degree 8, 50 steps and a naive
    all-reduce: ``50 * 128 * 8 + 128 * 127 = 67,456``. ``n_nodes`` and
    ``steps`` are at most :data:`~dmlbook.units.MAX_COUNT`.
    """
    n_nodes = check_int("n_nodes", n_nodes, minimum=2, maximum=MAX_COUNT)
    degree = check_number("degree", degree, maximum=MAX_COUNT)
    steps = check_int("steps", steps, minimum=0, maximum=MAX_COUNT)
    final_allreduce = check_choice("final_allreduce", final_allreduce, ALLREDUCE_MESSAGES)
    directed_edges = n_nodes * degree
    if directed_edges != int(directed_edges) or int(directed_edges) % 2:
        raise ValueError(f"degree must make n_nodes * degree a whole even number "
                         f"(twice the edges), got {n_nodes} * {degree}")
    if degree > n_nodes - 1:
        raise ValueError(f"degree must be at most n_nodes - 1 = {n_nodes - 1}, got {degree}")
    total = steps * int(directed_edges)
    if final_allreduce is not None:
        total += allreduce_messages(n_nodes, final_allreduce)
    return total


def allreduce_bytes(n_nodes: int, model_bytes: int, kind: str = "naive") -> int:
    """Bytes of one all-reduce of models of ``model_bytes`` bytes.

    Naive: ``n (n - 1)`` whole models. Ring: ``2 (n - 1)`` steps in which the
    ``n`` nodes together send one whole model's worth (each one chunk of about
    ``1/n`` of a model): ``2 (n - 1) * model_bytes``.
    """
    n_nodes = check_int("n_nodes", n_nodes, minimum=2)
    model_bytes = check_int("model_bytes", model_bytes)
    kind = check_choice("kind", kind, ("naive", "ring"))
    if kind == "naive":
        return n_nodes * (n_nodes - 1) * model_bytes
    return 2 * (n_nodes - 1) * model_bytes


def dpsgd_bytes(n_nodes: int, degree: float, steps: int, model_bytes: int, *,
                final_allreduce: str | None = "naive") -> int:
    """Bytes of ``steps`` D-PSGD steps (one whole model per message) and one all-reduce.

    The messages are those of :func:`dpsgd_messages`; a D-PSGD message carries
    a whole model, a ring all-reduce message one chunk (see :func:`allreduce_bytes`).
    """
    model_bytes = check_int("model_bytes", model_bytes)
    step_messages = dpsgd_messages(n_nodes, degree, steps, final_allreduce=None)
    total = step_messages * model_bytes
    if final_allreduce is not None:
        total += allreduce_bytes(n_nodes, model_bytes, final_allreduce)
    return total


# Documented upper bounds of the load helpers' counts.
MAX_LOAD_NODES = 10**12
MAX_LOAD_K = 10_000


def uniform_load_prediction(n_nodes: int, max_k: int) -> np.ndarray:
    """P(a node receives k messages in a cycle), ``k = 0 .. max_k``, for uniform peers.

    Each of the other ``n - 1`` nodes sends once per cycle and picks this node
    with probability ``1 / (n - 1)``: Binomial(n - 1, 1 / (n - 1)), about
    Poisson(1) — so ``(1 - 1/(n-1))^(n-1)``, about 37 %, receive nothing.
    ``k > n - 1`` has probability 0. Bounds: ``2 <= n_nodes <= 10**12``,
    ``0 <= max_k <= 10_000``; computed in log space, so that large ``n`` neither
    overflows nor loses the small probabilities.
    """
    n = check_int("n_nodes", n_nodes, minimum=2)
    max_k = check_int("max_k", max_k, minimum=0)
    if n > MAX_LOAD_NODES:
        raise ValueError(f"n_nodes must be at most {MAX_LOAD_NODES:,}, got {n:,}")
    if max_k > MAX_LOAD_K:
        raise ValueError(f"max_k must be at most {MAX_LOAD_K:,}, got {max_k:,}")
    senders = n - 1
    if senders == 1:  # two nodes: the other one always picks this one
        return (np.arange(max_k + 1) == 1).astype(np.float64)
    log_p, log_q = -math.log(senders), math.log1p(-1 / senders)
    probs = np.zeros(max_k + 1)
    for k in range(min(max_k, senders) + 1):
        log_comb = (math.lgamma(senders + 1) - math.lgamma(k + 1)
                    - math.lgamma(senders - k + 1))
        probs[k] = math.exp(log_comb + k * log_p + (senders - k) * log_q)
    return probs


def load_quantile(n_nodes: int, share: float) -> int:
    """The smallest ``k`` such that a node receives at most ``k`` messages in a
    cycle with probability >= ``share`` (uniform peers): the capacity, in
    messages per cycle, that covers that share of (node, cycle) pairs."""
    share = check_probability("share", share)
    probs = uniform_load_prediction(n_nodes, min(MAX_LOAD_K, n_nodes - 1))
    # A little slack for rounding: the cumulative sum may end at 1 - 1e-16.
    return int(np.searchsorted(np.cumsum(probs), share - 1e-12))
