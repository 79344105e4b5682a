"""The workbook's longer tasks (issue #23, item 2): each check passes the reference,
rejects typical wrong solutions and names the failing property."""

import numpy as np
import pytest
import torch

from dmlbook import check
from dmlbook.bandwidth import max_participants
from dmlbook.check import reference
from dmlbook.topology import make_topology, mixing_matrix


def test_references_agree_with_the_package():
    limit = max_participants(85098, bits_per_param=32, download_bps=10**9, upload_bps=10**8,
                             time_limit_s=60)
    assert reference.binding_link(85098, 32, 10**9, 10**8, 60) == (limit.n_max, "upload")
    topology = make_topology("erdos_renyi", 12, p=0.3, seed=2)
    A = np.array((topology.W > 0) & ~np.eye(12, dtype=bool), dtype=float)
    assert np.allclose(reference.metropolis_weights(A), mixing_matrix(topology.graph))
    sizes = torch.tensor([3, 3])
    payloads = torch.tensor([[1., 2.], [3., 4.]])
    assert torch.equal(reference.server_step(torch.zeros(2), payloads, sizes, "parameters"),
                       reference.fedavg(torch.zeros(2), payloads))


# --- wrong solutions ------------------------------------------------------------------------

WRONG = []  # (check, the functions it takes, the mistake it must name)


def wrong(name, mistake, *others):
    """Register the decorated function (and ``others`` after it) as a wrong solution."""
    def register(fn):
        WRONG.append((name, (fn, *others), mistake))
        return fn
    return register



@wrong("binding_link", "max instead of min")
def binding_max(n_params, bits, down, up, t):
    n_down = reference.participants(n_params, bits, down, t)
    n_up = reference.participants(n_params, bits, up, t)
    return max(n_down, n_up), "upload" if n_up >= n_down else "download"


@wrong("binding_link", "links added")
def binding_sum(n_params, bits, down, up, t):
    n, link = reference.binding_link(n_params, bits, down, up, t)
    return (reference.participants(n_params, bits, down, t)
            + reference.participants(n_params, bits, up, t)), link


@wrong("binding_link", "wrong link")
def binding_names_swapped(n_params, bits, down, up, t):
    n, link = reference.binding_link(n_params, bits, down, up, t)
    return n, {"upload": "download", "download": "upload"}[link]


@wrong("binding_link", "wrong link")
def binding_tie_download(n_params, bits, down, up, t):
    n_down = reference.participants(n_params, bits, down, t)
    n_up = reference.participants(n_params, bits, up, t)
    return min(n_down, n_up), "upload" if n_up < n_down else "download"


@wrong("cumulative_bill", "not cumulative")
def bill_per_round(ledger, server, rounds, usd_per_gib):
    return list(np.diff([0.0] + reference.cumulative_bill(ledger, server, rounds, usd_per_gib)))


@wrong("cumulative_bill", "wrong value")
def bill_every_sender(ledger, server, rounds, usd_per_gib):
    return list(np.cumsum(np.bincount(ledger["round"], weights=ledger["nbytes"],
                                      minlength=rounds + 1)[1:rounds + 1] / 2**30 * usd_per_gib))


@wrong("cumulative_bill", "10^9 vs 2^30")
def bill_decimal(ledger, server, rounds, usd_per_gib):
    return [b * 2**30 / 10**9 for b in reference.cumulative_bill(ledger, server, rounds,
                                                                   usd_per_gib)]


@wrong("cumulative_bill", "wrong value")
def bill_uploads(ledger, server, rounds, usd_per_gib):
    swapped = dict(ledger, sender=ledger["receiver"])
    return reference.cumulative_bill(swapped, server, rounds, usd_per_gib)


@wrong("ring_messages", "one phase only")
def ring_messages_one_phase(n_nodes):
    return n_nodes * (n_nodes - 1)


@wrong("ring_messages", "per node, not in all")
def ring_messages_per_node(n_nodes):
    return 2 * (n_nodes - 1)


@wrong("ring_messages", "off by one in the steps")
def ring_messages_n_steps(n_nodes):
    return 2 * n_nodes * n_nodes


@wrong("ring_messages", "not a whole number")
def ring_messages_float(n_nodes):
    return 2.0 * n_nodes * (n_nodes - 1)


@wrong("quantize", "2**bits steps")
def quantize_too_many_steps(x, bits):
    lo, step = x.min(), (x.max() - x.min()) / 2**bits
    return lo + torch.round((x - lo) / step) * step


@wrong("quantize", "floor instead of round")
def quantize_floor(x, bits):
    lo, step = x.min(), (x.max() - x.min()) / (2**bits - 1)
    return lo + torch.floor((x - lo) / step) * step


@wrong("quantize", "codes instead of values")
def quantize_codes(x, bits):
    lo, step = x.min(), (x.max() - x.min()) / (2**bits - 1)
    return torch.round((x - lo) / step)


@wrong("quantize", "changed its inputs in place")
def quantize_in_place(x, bits):
    lo, step = x.min(), (x.max() - x.min()) / (2**bits - 1)
    return x.sub_(lo).div_(step).round_().mul_(step).add_(lo)


@wrong("server_step", "forgot the weights")
def step_unweighted(server_params, payloads, n_examples, send):
    average = payloads.mean(0)
    return server_params + average if send == "update" else average


@wrong("server_step", "weights not normalised")
def step_not_normalised(server_params, payloads, n_examples, send):
    total = (n_examples[:, None] * payloads).sum(0)
    return server_params + total if send == "update" else total


@wrong("server_step", "update treated as parameters")
def step_always_parameters(server_params, payloads, n_examples, send):
    return reference.server_step(server_params, payloads, n_examples, "parameters")


@wrong("server_step", "parameters treated as updates")
def step_always_update(server_params, payloads, n_examples, send):
    return reference.server_step(server_params, payloads, n_examples, "update")


@wrong("server_step", "changed its inputs in place")
def step_in_place(server_params, payloads, n_examples, send):
    payloads *= (n_examples / n_examples.sum())[:, None]
    average = payloads.sum(0)
    return server_params + average if send == "update" else average


def reply_takes_value(x_mine, reply):
    return reply


@wrong("push_pull", "sum not preserved", reply_takes_value)
def push_both_average(x_mine, x_received):
    average = (x_mine + x_received) / 2
    return average, average


@wrong("push_pull", "sum not preserved", reference.on_reply)
def push_wrong_sign(x_mine, x_received):
    d = (x_received - x_mine) / 2
    return x_mine + d, -d


@wrong("push_pull", "not averaging", reference.on_reply)
def push_keeps_all(x_mine, x_received):
    return x_mine + x_received, x_received


@wrong("metropolis_weights", "min instead of max")
def metropolis_min(adjacency):
    A = np.asarray(adjacency, float)
    d = A.sum(1)
    W = A / (1 + np.minimum(d[:, None], d[None, :]))
    np.fill_diagonal(W, 1 - W.sum(1))
    return W


@wrong("metropolis_weights", "uniform weights")
def metropolis_uniform(adjacency):
    A = np.asarray(adjacency, float) + np.eye(len(adjacency))
    return A / A.sum(1, keepdims=True)


@wrong("metropolis_weights", "forgot the self-weight")
def metropolis_no_self(adjacency):
    A = np.asarray(adjacency, float)
    d = A.sum(1)
    return A / (1 + np.maximum(d[:, None], d[None, :]))


@wrong("metropolis_weights", "wrong value")
def metropolis_plain_degree(adjacency):
    A = np.asarray(adjacency, float)
    d = A.sum(1)
    W = A / np.maximum(d[:, None], d[None, :])
    np.fill_diagonal(W, 1 - W.sum(1))
    return W




@pytest.mark.parametrize("name, fns, mistake", WRONG, ids=[w[1][0].__name__ for w in WRONG])
def test_a_task_check_names_the_mistake(name, fns, mistake):
    result = getattr(check, name)(*fns)
    assert not result.passed, result.feedback
    assert result.mistake == mistake, result.feedback
    assert result.feedback.startswith(f"✗ {name}: not yet.") and "Case:" in result.feedback


def test_push_pull_names_the_cycle_where_the_sum_changed():
    def push_both_average_late(x_mine, x_received):  # right without delay, wrong with it
        d = (x_received - x_mine) / 2
        return x_mine + d, x_mine + d

    result = check.push_pull(push_both_average_late, reply_takes_value)
    assert not result.passed and result.mistake == "sum not preserved"
    assert "reply" in result.feedback


def test_the_gossip_merge_check_does_not_demand_a_constant_sum():
    result = check.gossip_merge(reference.gossip_merge)
    assert result.passed and "Push-only does not keep the sum" in result.feedback


def test_a_push_pull_check_failing_inside_the_simulator_names_a_cycle(monkeypatch):
    """A pair of handlers right in every exchange alone, yet wrong in the run: a reply
    counted twice when the same node has several replies on their way."""
    state = {"calls": 0}

    def on_reply(x_mine, reply):
        state["calls"] += 1
        return x_mine - reply * (2 if state["calls"] == 60 else 1)

    result = check.push_pull(reference.on_push, on_reply)
    assert not result.passed and "first off after cycle" in result.feedback


def test_solutions_show_in_jupyterlab_as_code():
    shown = check.solution("push_pull")
    assert "def on_push" in shown._repr_markdown_() and "def on_reply" in repr(shown)
    with pytest.raises(ValueError, match="name must be one of"):
        check.solution("nothing")
