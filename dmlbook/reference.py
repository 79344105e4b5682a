"""Reference solutions of the workbook's exercises.

The workbook (``workbook/*.md``) asks students to write these functions
themselves; :mod:`dmlbook.check` tests a student's version against hand-worked
cases, properties, and a run inside the package's simulators. Each solution
here is the plain textbook answer, short enough to read in a folded dropdown.
Tests check each one against the package's own implementation.
"""

from __future__ import annotations


def participants(n_params, bits_per_param, link_bps, time_limit_s) -> int:
    """Participants one link serves within the time limit (Exercise 1).

    Every participant needs one whole model, ``n_params * bits_per_param``
    bits; the link moves ``link_bps * time_limit_s`` bits in the time limit.
    A participant either gets the whole model in time or not: round down.
    """
    model_bits = n_params * bits_per_param
    return int(link_bps * time_limit_s // model_bits)


def download_cost(n_params, rounds, clients_per_round, usd_per_gib, bytes_per_param) -> float:
    """US dollars the cloud bills for FL's model downloads (Exercise 2).

    Every round each participating client downloads one model of
    ``n_params * bytes_per_param`` bytes; the price is per GiB, 2**30 bytes.
    """
    model_bytes = n_params * bytes_per_param
    total_bytes = rounds * clients_per_round * model_bytes
    return total_bytes / 2**30 * usd_per_gib


def ring_allreduce(chunks):
    """Ring all-reduce of ``chunks[i][j]``, node i's chunk j (Exercise 3).

    Reduce-scatter: in step ``s`` (``0 .. n-2``) node ``k`` sends its running
    sum of chunk ``(k - s) % n`` to node ``(k + 1) % n``, which adds it to its
    own copy. Afterwards node ``k`` holds the full sum of chunk ``(k + 1) % n``.
    All-gather: in step ``s`` node ``k`` sends chunk ``(k + 1 - s) % n`` (the
    finished one it holds) to its successor, which keeps it.
    """
    from dmlbook.check import send  # every message goes through the workbook's network

    n = len(chunks)
    chunks = [[chunk.clone() for chunk in node] for node in chunks]
    for step in range(n - 1):  # reduce-scatter
        # All nodes send at once: every message is taken before anyone adds.
        sent = [(k, (k - step) % n) for k in range(n)]
        received = [send(k, (k + 1) % n, chunks[k][c]) for k, c in sent]
        for (k, c), payload in zip(sent, received):
            chunks[(k + 1) % n][c] = chunks[(k + 1) % n][c] + payload
    for step in range(n - 1):  # all-gather
        sent = [(k, (k + 1 - step) % n) for k in range(n)]
        received = [send(k, (k + 1) % n, chunks[k][c]) for k, c in sent]
        for (k, c), payload in zip(sent, received):
            chunks[(k + 1) % n][c] = payload
    return chunks


def fedavg(server_params, client_params):
    """FedAvg's server step when clients send their parameters (Exercise 4).

    ``client_params`` is ``(m, P)``, one row per client. The new server model
    is their average; the old server model only served as every client's start.
    """
    return client_params.mean(dim=0)


def gossip_merge(x_local, x_received):
    """Gossip learning's passive thread: average the received model in (Exercise 5)."""
    return (x_local + x_received) / 2


def dpsgd_messages(n_nodes, degree, steps) -> int:
    """Messages of ``steps`` D-PSGD steps, without the final all-reduce (Exercise 6).

    Each step every node sends its model to each neighbour: one message per
    directed edge, ``n_nodes * degree`` per step.
    """
    return int(n_nodes * degree * steps)


def dpsgd_round(params, W, grads, lr):
    """One D-PSGD round in the sheet's order: local SGD step, then mixing (Exercise 6).

    ``params`` and ``grads`` are ``(n, P)``; ``W[i, j]`` is the weight node
    ``i`` gives to node ``j``'s model (each row sums to 1).
    """
    stepped = params - lr * grads   # every node steps on its own gradient
    return W @ stepped              # then averages its neighbours' new models


__all__ = ["participants", "download_cost", "ring_allreduce", "fedavg", "gossip_merge",
           "dpsgd_messages", "dpsgd_round"]
