"""The workbook's checks: each passes its reference solution and catches typical mistakes.

Every wrong solution below is one a student could plausibly write; the check
must fail it and its feedback must name the mistake class.
"""

import math
import re

import pytest
import torch

from dmlbook import check, reference
from dmlbook.bandwidth import max_participants
from dmlbook.check import send
from dmlbook.costs import fl_download_cost
from dmlbook.messages import dpsgd_messages


@pytest.mark.parametrize("name", check.CHECKS)
def test_every_check_passes_its_reference_solution(name):
    result = getattr(check, name)(*check.reference_args(name))
    assert result.passed, result.feedback
    assert result.feedback.startswith(f"✓ {name}: passed")
    assert result.mistake is None
    assert "✓" in result._repr_html_()
    assert "background:#e8f5e9;" in result._repr_html_()  # the passed colour


def test_reference_solutions_agree_with_the_package():
    for n_params, bits, link, t in [(85098, 32, 10**9, 60), (85098, 32, 10**8, 60),
                                    (4_950_544, 16, 3 * 10**7, 7)]:
        limit = max_participants(n_params, bits_per_param=bits, download_bps=link,
                                 upload_bps=link, time_limit_s=t)
        assert reference.participants(n_params, bits, link, t) == limit.n_max
    assert reference.download_cost(4_950_544, 1000, 200, 0.03, 4) == pytest.approx(
        fl_download_cost(4_950_544, rounds=1000, clients_per_round=200, usd_per_gib=0.03))
    assert reference.download_cost(4_950_544, 1000, 200, 0.03, 4) == pytest.approx(110.65,
                                                                                   abs=0.005)
    assert reference.dpsgd_messages(128, 8, 50) == dpsgd_messages(
        128, 8, 50, final_allreduce=None) == 51_200


def test_send_counts_messages_and_copies():
    with check._recording() as net:
        x = torch.ones(3)
        y = send(0, 1, x)
        y += 1
    assert torch.equal(x, torch.ones(3))  # the receiver's copy is its own
    assert [(m.src, m.dst, m.nbytes) for m in net.messages] == [(0, 1, 12)]
    with pytest.raises(TypeError, match="torch tensor"):
        send(0, 1, [1.0])


def test_torch_distributed_all_reduce_agrees_with_the_reference_ring():
    result = check.ring_allreduce(reference.ring_allreduce, torch_distributed=True)
    assert result.passed, result.feedback
    # gloo sums in its own order: the difference is rounding, within the check's 1e-5.
    found = re.search(r", and torch\.distributed's all_reduce in 4 gloo processes \(max "
                      r"difference (\d\.\de[-+]\d\d)\)\.$", result.feedback)
    assert found and float(found.group(1)) <= 1e-5, result.feedback


# --- wrong solutions -------------------------------------------------------------------


def participants_bytes(n_params, bits_per_param, link_bps, time_limit_s):
    return int(link_bps * time_limit_s // (n_params * bits_per_param / 8))


def participants_round(n_params, bits_per_param, link_bps, time_limit_s):
    return round(link_bps * time_limit_s / (n_params * bits_per_param))


def participants_float(n_params, bits_per_param, link_bps, time_limit_s):
    return link_bps * time_limit_s / (n_params * bits_per_param)


def participants_ceil(n_params, bits_per_param, link_bps, time_limit_s):
    return math.ceil(link_bps * time_limit_s / (n_params * bits_per_param))


def participants_gibit(n_params, bits_per_param, link_bps, time_limit_s):
    gbit_per_s = link_bps / 10**9
    return int(gbit_per_s * 2**30 * time_limit_s // (n_params * bits_per_param))


def participants_no_time(n_params, bits_per_param, link_bps, time_limit_s):
    return int(link_bps // (n_params * bits_per_param))


def cost_decimal(n_params, rounds, clients_per_round, usd_per_gib, bytes_per_param):
    return rounds * clients_per_round * n_params * bytes_per_param / 10**9 * usd_per_gib


def cost_bits(n_params, rounds, clients_per_round, usd_per_gib, bytes_per_param):
    return rounds * clients_per_round * n_params * bytes_per_param * 8 / 2**30 * usd_per_gib


def cost_one_round(n_params, rounds, clients_per_round, usd_per_gib, bytes_per_param):
    return clients_per_round * n_params * bytes_per_param / 2**30 * usd_per_gib


def cost_with_uploads(n_params, rounds, clients_per_round, usd_per_gib, bytes_per_param):
    return 2 * rounds * clients_per_round * n_params * bytes_per_param / 2**30 * usd_per_gib


def cost_mib(n_params, rounds, clients_per_round, usd_per_gib, bytes_per_param):
    return rounds * clients_per_round * n_params * bytes_per_param / 2**20 * usd_per_gib


def ring_chunk_off_by_one(chunks):
    """Reduce-scatter sends chunk (k - s - 1) instead of (k - s)."""
    n = len(chunks)
    chunks = [[c.clone() for c in node] for node in chunks]
    for step in range(n - 1):
        sent = [(k, (k - step - 1) % n) for k in range(n)]
        received = [send(k, (k + 1) % n, chunks[k][c]) for k, c in sent]
        for (k, c), payload in zip(sent, received):
            chunks[(k + 1) % n][c] = chunks[(k + 1) % n][c] + payload
    for step in range(n - 1):
        sent = [(k, (k + 1 - step) % n) for k in range(n)]
        received = [send(k, (k + 1) % n, chunks[k][c]) for k, c in sent]
        for (k, c), payload in zip(sent, received):
            chunks[(k + 1) % n][c] = payload
    return chunks


def ring_without_all_gather(chunks):
    n = len(chunks)
    chunks = [[c.clone() for c in node] for node in chunks]
    for step in range(n - 1):
        sent = [(k, (k - step) % n) for k in range(n)]
        received = [send(k, (k + 1) % n, chunks[k][c]) for k, c in sent]
        for (k, c), payload in zip(sent, received):
            chunks[(k + 1) % n][c] = chunks[(k + 1) % n][c] + payload
    return chunks


def ring_averaging(chunks):
    n = len(chunks)
    return [[c / n for c in node] for node in reference.ring_allreduce(chunks)]


def ring_one_step_short(chunks):
    """Both phases loop over range(n - 2)."""
    n = len(chunks)
    chunks = [[c.clone() for c in node] for node in chunks]
    for step in range(n - 2):
        sent = [(k, (k - step) % n) for k in range(n)]
        received = [send(k, (k + 1) % n, chunks[k][c]) for k, c in sent]
        for (k, c), payload in zip(sent, received):
            chunks[(k + 1) % n][c] = chunks[(k + 1) % n][c] + payload
    for step in range(n - 2):
        sent = [(k, (k + 1 - step) % n) for k in range(n)]
        received = [send(k, (k + 1) % n, chunks[k][c]) for k, c in sent]
        for (k, c), payload in zip(sent, received):
            chunks[(k + 1) % n][c] = payload
    return chunks


def ring_without_messages(chunks):
    n = len(chunks)
    total = [sum(chunks[i][j] for i in range(n)) for j in range(n)]
    return [[t.clone() for t in total] for _ in range(n)]


def ring_naive(chunks):
    n = len(chunks)
    out = [[c.clone() for c in node] for node in chunks]
    for i in range(n):
        for j in range(n):
            if i != j:
                for c in range(n):
                    out[j][c] = out[j][c] + send(i, j, chunks[i][c])
    return out


def ring_backwards(chunks):
    """A correct ring, but every node sends to its predecessor."""
    n = len(chunks)
    mirrored = [chunks[(-k) % n] for k in range(n)]
    with check._recording() as net:
        out = reference.ring_allreduce(mirrored)
    for m in net.messages:
        send((-m.src) % n, (-m.dst) % n, torch.zeros(m.numel))
    return [out[(-k) % n] for k in range(n)]


def fedavg_last_client(server_params, client_params):
    return client_params[-1]


def fedavg_sum(server_params, client_params):
    return client_params.sum(dim=0)


def fedavg_as_updates(server_params, client_params):
    return server_params + client_params.mean(dim=0)


def fedavg_with_server(server_params, client_params):
    return torch.cat([server_params[None], client_params]).mean(dim=0)


def fedavg_wrong_dim(server_params, client_params):
    return client_params.mean(dim=1)


def fedavg_in_place(server_params, client_params):
    server_params.copy_(client_params.mean(dim=0))
    return server_params


def merge_replace(x_local, x_received):
    return x_received


def merge_keep(x_local, x_received):
    return x_local


def merge_sum(x_local, x_received):
    return x_local + x_received


def merge_precedence(x_local, x_received):
    return x_local + x_received / 2


def merge_in_place(x_local, x_received):
    x_received += x_local
    x_received /= 2
    return x_received


def messages_undirected(n_nodes, degree, steps):
    return n_nodes * degree // 2 * steps


def messages_with_allreduce(n_nodes, degree, steps):
    return n_nodes * degree * steps + n_nodes * (n_nodes - 1)


def messages_steps_plus_one(n_nodes, degree, steps):
    return n_nodes * degree * (steps + 1)


def messages_complete_graph(n_nodes, degree, steps):
    return n_nodes * (n_nodes - 1) * steps


def messages_float(n_nodes, degree, steps):
    return float(n_nodes * degree * steps)


def round_mix_first(params, W, grads, lr):
    return W @ params - lr * grads


def round_no_mix(params, W, grads, lr):
    return params - lr * grads


def round_transposed(params, W, grads, lr):
    return W.T @ (params - lr * grads)


def round_ascent(params, W, grads, lr):
    return W @ (params + lr * grads)


def round_in_place(params, W, grads, lr):
    params -= lr * grads
    return W @ params


def round_global_average(params, W, grads, lr):
    return (params - lr * grads).mean(0, keepdim=True).expand_as(params)


WRONG = [
    ("participants", participants_bytes, "bits vs bytes"),
    ("participants", participants_round, "rounding"),
    ("participants", participants_float, "rounding"),
    ("participants", participants_ceil, "rounding"),
    ("participants", participants_gibit, "10^9 vs 2^30"),
    ("participants", participants_no_time, "forgot the time limit"),
    ("download_cost", cost_decimal, "10^9 vs 2^30"),
    ("download_cost", cost_bits, "bits vs bytes"),
    ("download_cost", cost_one_round, "forgot the rounds"),
    ("download_cost", cost_with_uploads, "uploads are free"),
    ("download_cost", cost_mib, "GiB vs MiB"),
    ("ring_allreduce", ring_chunk_off_by_one, "off by one in the ring's chunk index"),
    ("ring_allreduce", ring_without_all_gather, "missing all-gather"),
    ("ring_allreduce", ring_averaging, "averaging instead of summing"),
    # On 2 nodes one step short is no step at all: nothing was sent, and that is what is
    # named (test_check_ex3_contract.py names each step count on 3 nodes).
    ("ring_allreduce", ring_one_step_short, "messages"),
    ("ring_allreduce", ring_without_messages, "messages"),
    ("ring_allreduce", ring_naive, "not a ring"),
    ("ring_allreduce", ring_backwards, "ring direction"),
    ("fedavg", fedavg_last_client, "replacing instead of averaging"),
    ("fedavg", fedavg_sum, "summing instead of averaging"),
    ("fedavg", fedavg_as_updates, "parameters treated as updates"),
    ("fedavg", fedavg_with_server, "counting the server as a client"),
    ("fedavg", fedavg_wrong_dim, "averaging over the wrong dimension"),
    ("fedavg", fedavg_in_place, "changed its inputs in place"),
    ("gossip_merge", merge_replace, "replacing instead of averaging"),
    ("gossip_merge", merge_keep, "ignoring the received model"),
    ("gossip_merge", merge_sum, "summing instead of averaging"),
    ("gossip_merge", merge_precedence, "operator precedence"),
    ("gossip_merge", merge_in_place, "changed its inputs in place"),
    ("dpsgd_messages", messages_undirected, "directed vs undirected edges"),
    ("dpsgd_messages", messages_with_allreduce, "included the all-reduce"),
    ("dpsgd_messages", messages_steps_plus_one, "off by one in the steps"),
    ("dpsgd_messages", messages_complete_graph, "complete graph"),
    ("dpsgd_messages", messages_float, "not a whole number"),
    ("dpsgd_round", round_mix_first, "mixing before stepping"),
    ("dpsgd_round", round_no_mix, "forgot to mix"),
    ("dpsgd_round", round_transposed, "W transposed"),
    ("dpsgd_round", round_ascent, "gradient ascent"),
    ("dpsgd_round", round_in_place, "changed its inputs in place"),
    ("dpsgd_round", round_global_average, "all-reduce instead of neighbours"),
]


@pytest.mark.parametrize("name, wrong, mistake", WRONG, ids=[w[1].__name__ for w in WRONG])
def test_checks_name_the_mistake_of_a_wrong_solution(name, wrong, mistake):
    result = getattr(check, name)(wrong)
    assert not result.passed
    assert result.mistake == mistake, result.feedback
    assert f"Hint ({mistake})" in result.feedback
    assert result.feedback.startswith(f"✗ {name}: not yet.")
    assert "Case:" in result.feedback


def test_at_least_three_named_mistakes_per_check():
    for name in ("participants", "download_cost", "ring_allreduce", "fedavg", "gossip_merge",
                 "dpsgd_messages", "dpsgd_round"):
        assert len({m for n, _, m in WRONG if n == name}) >= 3, name


def stub(*args):
    ...


def crashes(*args):
    raise ZeroDivisionError("division by zero")


@pytest.mark.parametrize("name", check.CHECKS)
def test_an_empty_stub_and_an_error_get_friendly_feedback(name):
    arity = len(check.CHECKS[name])
    empty = getattr(check, name)(*[stub] * arity)
    assert not empty.passed and empty.mistake == "an empty stub"
    assert "replace `...`" in empty.feedback
    error = getattr(check, name)(*[crashes] * arity)
    assert not error.passed and error.mistake == "an error"
    assert "ZeroDivisionError: division by zero" in error.feedback
    assert "Traceback" not in error.feedback


def test_a_non_function_is_refused_politely():
    result = check.fedavg(42)
    assert not result.passed and result.feedback == (
        "✗ fedavg: pass your function itself, e.g. check.fedavg(my_function), not 42.")


def test_report_shows_case_expected_and_actual():
    result = check.participants(participants_bytes)
    assert "expected: 22033" in result.feedback
    assert "got:      176267" in result.feedback
    html = result._repr_html_()
    assert "✗ participants" in html and "fff3e0" in html
