"""Reference solutions of the workbook's exercises.

The workbook (``workbook/*.md``) asks students to write these functions
themselves; :mod:`dmlbook.check` tests a student's version against hand-worked
cases, seeded random cases, and a run inside the package's simulators. Each
solution here is the plain textbook answer, short enough to read in a folded
dropdown. Tests check each one against the package's own implementation.
"""

from __future__ import annotations

import numpy as np


def participants(n_params, bits_per_param, link_bps, time_limit_s) -> int:
    """Participants one link serves within the time limit (Exercise 1).

    Every participant needs one whole model, ``n_params * bits_per_param``
    bits; the link moves ``link_bps * time_limit_s`` bits in the time limit.
    A participant either gets the whole model in time or not: round down.
    """
    model_bits = n_params * bits_per_param
    return int(link_bps * time_limit_s // model_bits)


def binding_link(n_params, bits_per_param, download_bps, upload_bps, time_limit_s):
    """Participants both server links serve, and the link that sets it (Exercise 1).

    The server's download link receives every participant's model, its
    upload link sends the model to every participant; each link serves
    :func:`participants` many. The smaller number is the answer; its link is
    the binding one (``"upload"`` on a tie).
    """
    n_down = participants(n_params, bits_per_param, download_bps, time_limit_s)
    n_up = participants(n_params, bits_per_param, upload_bps, time_limit_s)
    if n_up <= n_down:
        return n_up, "upload"
    return n_down, "download"


def download_cost(n_params, rounds, clients_per_round, usd_per_gib, bytes_per_param) -> float:
    """US dollars the cloud bills for FL's model downloads (Exercise 2).

    Every round each participating client downloads one model of
    ``n_params * bytes_per_param`` bytes; the price is per GiB, 2**30 bytes.
    """
    model_bytes = n_params * bytes_per_param
    total_bytes = rounds * clients_per_round * model_bytes
    return total_bytes / 2**30 * usd_per_gib


def cumulative_bill(ledger, server, rounds, usd_per_gib):
    """Dollars billed after each round 1 .. rounds, read from a run's messages (Exercise 2).

    ``ledger`` holds one array per field, one entry per message: ``"round"``,
    ``"sender"``, ``"receiver"``, ``"nbytes"``. The cloud bills what leaves
    it: the bytes the server sends, at ``usd_per_gib`` per 2**30 bytes.
    """
    billed = np.zeros(rounds + 1)
    from_server = ledger["sender"] == server
    np.add.at(billed, ledger["round"][from_server], ledger["nbytes"][from_server])
    dollars = billed[1:] / 2**30 * usd_per_gib
    return list(np.cumsum(dollars))


def ring_allreduce(chunks):
    """Ring all-reduce of ``chunks[i][j]``, node i's chunk j (Exercise 3).

    Reduce-scatter: in step ``s`` (``0 .. n-2``) node ``k`` sends its running
    sum of chunk ``(k - s) % n`` to node ``(k + 1) % n``, which adds it to its
    own copy. Afterwards node ``k`` holds the full sum of chunk ``(k + 1) % n``.
    All-gather: in step ``s`` node ``k`` sends chunk ``(k + 1 - s) % n`` (the
    finished one it holds) to its successor, which keeps it.
    """
    from dmlbook.check.network import send  # every message goes through the workbook's network

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


def server_step(server_params, payloads, n_examples, send):
    """FedAvg's server step, weighted by the clients' data (Exercise 4).

    ``payloads`` is ``(m, P)``: each client's new parameters
    (``send == "parameters"``) or its update, new minus received parameters
    (``send == "update"``). Client k counts with weight ``n_k / sum(n)``.
    """
    weights = n_examples / n_examples.sum()
    average = (weights[:, None] * payloads).sum(dim=0)
    if send == "update":
        return server_params + average
    return average


def gossip_merge(x_local, x_received):
    """Gossip learning's passive thread: average the received model in (Exercise 5)."""
    return (x_local + x_received) / 2


def on_push(x_mine, x_received):
    """Push-pull gossip averaging, the receiver of a push (Exercise 5).

    Move half the difference to this node and send that amount back: the
    pair's sum stays the same even if the sender's value changed meanwhile.
    Returns the new value and the reply.
    """
    d = (x_received - x_mine) / 2
    return x_mine + d, d


def on_reply(x_mine, reply):
    """Push-pull gossip averaging, the sender when the reply arrives (Exercise 5)."""
    return x_mine - reply


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


def metropolis_weights(adjacency):
    """The Metropolis-Hastings mixing matrix of an undirected graph (Exercise 6).

    ``adjacency[i, j]`` is 1 for an edge, 0 otherwise. Neighbours ``i, j`` get
    ``1 / (1 + max(d_i, d_j))``; each node keeps the rest of its row, so every
    row and every column sums to 1 and ``W`` is symmetric.
    """
    A = np.asarray(adjacency, dtype=float)
    degree = A.sum(axis=1)
    W = A / (1 + np.maximum(degree[:, None], degree[None, :]))
    np.fill_diagonal(W, 1 - W.sum(axis=1))
    return W


__all__ = ["participants", "binding_link", "download_cost", "cumulative_bill",
           "ring_allreduce", "fedavg", "server_step", "gossip_merge", "on_push", "on_reply",
           "dpsgd_messages", "dpsgd_round", "metropolis_weights"]
