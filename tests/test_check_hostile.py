"""A ✓ means right (issue #27, part 1): wrong solutions that fooled the checks before,
more of the same kinds, and a student's function that misbehaves in the kernel."""

import gc
import math
import random
import sys
import time
import weakref

import numpy as np
import pytest
import torch

import dmlbook.reference
from dmlbook import check
from dmlbook.check import network, reference
from dmlbook.check.ex2_download_cost import REL_TOL
from dmlbook.check.harness import MAX_OUTPUT_CHARS, TIME_LIMIT_S, WAIT_FACTOR


# --- comparisons on the package's side ---------------------------------------------------


class AlwaysEqual(int):
    """An int whose == is always true (and != always false)."""

    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __hash__ = int.__hash__


def messages_always_equal(n_nodes, degree, steps):
    return AlwaysEqual(0)


def participants_lookup(n_params, bits_per_param, link_bps, time_limit_s):
    known = {(85098, 32, 10**9, 60): 22033, (85098, 32, 10**8, 60): 2203,
             (85098, 16, 10**8, 60): 4406}
    return known.get((n_params, bits_per_param, link_bps, time_limit_s), AlwaysEqual(1))


def cost_lookup(n_params, rounds, clients_per_round, usd_per_gib, bytes_per_param):
    known = {args: reference.download_cost(*args) for args in [
        (4_950_544, 1000, 200, 0.03, 4), (2**28, 1, 1, 1.0, 4), (1000, 10, 5, 0.09, 2)]}
    if (n_params, rounds, clients_per_round, usd_per_gib, bytes_per_param) in known:
        return known[(n_params, rounds, clients_per_round, usd_per_gib, bytes_per_param)]
    return rounds * clients_per_round * 4_950_544 * 4 / 2**30 * usd_per_gib  # ignores two


def cost_one_percent_off(*args):
    return reference.download_cost(*args) * 1.01


def cost_slightly_off(*args):
    return reference.download_cost(*args) * (1 + 1000 * REL_TOL)


def cost_string(*args):
    return str(reference.download_cost(*args))


def cost_complex(*args):
    return complex(reference.download_cost(*args), 0)


def cost_huge(*args):
    return 10**400


def participants_huge(*args):
    return 10**400


def participants_numpy(n_params, bits_per_param, link_bps, time_limit_s):
    return np.int64(link_bps) * np.int64(time_limit_s) // (np.int64(n_params) * bits_per_param)


def participants_zero_d_tensor(*args):
    return torch.tensor(reference.participants(*args))


def messages_numpy(n_nodes, degree, steps):
    return np.int64(n_nodes) * np.int64(degree) * np.int64(steps)


def cost_numpy(*args):
    return np.float64(reference.download_cost(*args))


def ring_around_the_messages(chunks):
    """The right 2 n (n - 1) sends to the right nodes, but the sums taken directly."""
    n = len(chunks)
    for step in range(n - 1):
        for k in range(n):
            check.send(k, (k + 1) % n, chunks[k][(k - step) % n])
    for step in range(n - 1):
        for k in range(n):
            check.send(k, (k + 1) % n, chunks[k][(k + 1 - step) % n])
    total = [sum(chunks[i][j] for i in range(n)) for j in range(n)]
    return [[t.clone() for t in total] for _ in range(n)]


def ring_reads_senders_chunk(chunks):
    """Sends each message, but adds the sender's own chunk instead of what arrived."""
    n = len(chunks)
    chunks = [[c.clone() for c in node] for node in chunks]
    for step in range(n - 1):
        sent = [(k, (k - step) % n) for k in range(n)]
        payloads = [chunks[k][c].clone() for k, c in sent]
        for (k, c), p in zip(sent, payloads):
            check.send(k, (k + 1) % n, p)
        for (k, c), p in zip(sent, payloads):
            chunks[(k + 1) % n][c] = chunks[(k + 1) % n][c] + p
    for step in range(n - 1):
        sent = [(k, (k + 1 - step) % n) for k in range(n)]
        payloads = [chunks[k][c].clone() for k, c in sent]
        for (k, c), p in zip(sent, payloads):
            check.send(k, (k + 1) % n, p)
            chunks[(k + 1) % n][c] = p
    return chunks


def _ring_steps(chunks, first_chunk, add):
    """n - 1 steps in which node k sends chunk first_chunk(k, step) to k + 1, which
    adds it (``add``) or keeps it; chunks are updated in place."""
    n = len(chunks)
    for step in range(n - 1):
        outgoing = [(k, first_chunk(k, step) % n) for k in range(n)]
        arrived = [check.send(k, (k + 1) % n, chunks[k][c]) for k, c in outgoing]
        for (k, c), payload in zip(outgoing, arrived):
            if add:
                chunks[(k + 1) % n][c] += payload
            else:
                chunks[(k + 1) % n][c] = payload
    return chunks


def ring_in_place(chunks):
    """A right ring that adds what arrives in place, in the chunks it was given."""
    _ring_steps(chunks, lambda k, s: k - s, add=True)
    return _ring_steps(chunks, lambda k, s: k + 1 - s, add=False)


def ring_other_convention(chunks):
    """A right ring whose node k finishes chunk k (not k + 1)."""
    mine = [[c.clone() for c in node] for node in chunks]
    _ring_steps(mine, lambda k, s: k - s - 1, add=True)
    return _ring_steps(mine, lambda k, s: k - s, add=False)


def merge_wrong_on_float64(x_local, x_received):
    if x_local.dtype == torch.float64:
        return x_local
    return (x_local + x_received) / 2


def merge_in_place_local(x_local, x_received):
    x_local += x_received
    x_local /= 2
    return x_local


def merge_numpy(x_local, x_received):
    return (x_local.numpy() + x_received.numpy()) / 2


WRONG = [
    ("dpsgd_messages", messages_always_equal),
    ("participants", participants_lookup),
    ("download_cost", cost_lookup),
    ("download_cost", cost_one_percent_off),
    ("download_cost", cost_slightly_off),
    ("download_cost", cost_string),
    ("download_cost", cost_complex),
    ("download_cost", cost_huge),
    ("participants", participants_huge),
    ("ring_allreduce", ring_around_the_messages),
    ("ring_allreduce", ring_reads_senders_chunk),
    ("gossip_merge", merge_wrong_on_float64),
]

RIGHT = [
    ("participants", participants_numpy),
    ("participants", participants_zero_d_tensor),
    ("dpsgd_messages", messages_numpy),
    ("download_cost", cost_numpy),
    ("ring_allreduce", ring_in_place),
    ("ring_allreduce", ring_other_convention),
    ("gossip_merge", merge_in_place_local),
    ("gossip_merge", merge_numpy),
]


@pytest.mark.parametrize("name, wrong", WRONG, ids=[w.__name__ for _, w in WRONG])
def test_a_wrong_solution_never_passes(name, wrong):
    result = getattr(check, name)(wrong)
    assert not result.passed, result.feedback
    assert result.mistake != "the check's error", result.feedback
    assert result.feedback.startswith(f"✗ {name}: not yet.") and "Case:" in result.feedback


@pytest.mark.parametrize("name, right", RIGHT, ids=[r.__name__ for _, r in RIGHT])
def test_a_right_solution_always_passes(name, right):
    result = getattr(check, name)(right)
    assert result.passed, result.feedback


def test_a_huge_number_is_a_wrong_value_not_an_error():
    result = check.download_cost(cost_huge)
    assert result.mistake == "not a number" and "raised" not in result.feedback


def test_the_ring_check_names_data_that_went_around_the_messages():
    result = check.ring_allreduce(ring_around_the_messages)
    assert result.mistake == "messages" and "send" in result.feedback


def test_a_failing_random_case_is_named():
    result = check.download_cost(cost_lookup)
    assert "random case 1 of 40" in result.feedback and "n_params=" in result.feedback


def test_rebinding_the_reference_in_the_kernel_changes_no_verdict(monkeypatch):
    monkeypatch.setattr(dmlbook.reference, "gossip_merge", merge_wrong_on_float64,
                        raising=False)
    monkeypatch.setattr(reference, "gossip_merge", merge_wrong_on_float64)
    monkeypatch.setattr(torch, "allclose", lambda *a, **k: True)
    assert not check.gossip_merge(merge_wrong_on_float64).passed


# --- isolation ---------------------------------------------------------------------------


def loops_forever(*args):
    while True:
        pass


def loops_and_swallows(*args):
    while True:
        try:
            time.sleep(0.01)
        except Exception:
            pass


def test_an_endless_loop_stops_at_the_time_limit_and_the_kernel_goes_on():
    assert TIME_LIMIT_S == 10.0
    start = time.perf_counter()
    result = check.participants(loops_forever, time_limit_s=1)
    assert time.perf_counter() - start < WAIT_FACTOR * 1 + 2  # 1 s of CPU, or 6 s of waiting
    assert not result.passed and result.mistake == "time limit"
    assert "did not return within 1 s" in result.feedback
    assert check.participants(reference.participants).passed  # the kernel is usable
    start = time.perf_counter()
    swallowed = check.fedavg(loops_and_swallows, time_limit_s=1)  # sleeps: the wall limit
    assert not swallowed.passed and swallowed.mistake == "time limit"
    assert time.perf_counter() - start < WAIT_FACTOR * 1 + 2


def test_ctrl_c_still_interrupts_a_check():
    def interrupted(*args):
        raise KeyboardInterrupt

    dtype = torch.get_default_dtype()
    with pytest.raises(KeyboardInterrupt):
        check.participants(interrupted)
    assert torch.get_default_dtype() == dtype


def exits(*args):
    sys.exit(3)


def changes_the_kernel_to(threads: int):
    """A right D-PSGD round that leaves every setting of the kernel changed."""
    def changes_the_kernel(params, W, grads, lr):
        torch.set_default_dtype(torch.float64)
        torch.set_grad_enabled(False)
        torch.manual_seed(123)
        np.random.seed(123)
        random.seed(123)
        torch.set_num_threads(threads)
        return W @ (params - lr * grads)
    return changes_the_kernel


def test_sys_exit_is_feedback():
    result = check.participants(exits)
    assert not result.passed and "sys.exit(3)" in result.feedback
    # The function returned nothing: there is no value to set against the expected one.
    assert "expected:" not in result.feedback and "got:" not in result.feedback


def test_the_kernel_state_is_restored():
    torch.manual_seed(7)
    np.random.seed(7)
    random.seed(7)
    before = (torch.get_default_dtype(), torch.is_grad_enabled(), torch.get_rng_state(),
              np.random.get_state()[1].copy(), random.getstate(), torch.get_num_threads())
    # Another thread count than the kernel's, whatever that is (1 under make test).
    result = check.dpsgd_round(changes_the_kernel_to(1 if torch.get_num_threads() > 1 else 2))
    assert result.passed, result.feedback  # the check itself ran in float32, with grads
    after = (torch.get_default_dtype(), torch.is_grad_enabled(), torch.get_rng_state(),
             np.random.get_state()[1], random.getstate(), torch.get_num_threads())
    assert after[0] == before[0] and after[1] == before[1] and after[4] == before[4]
    assert torch.equal(after[2], before[2]) and np.array_equal(after[3], before[3])
    assert after[5] == before[5]


def test_a_kernel_in_float64_gets_the_same_verdict():
    torch.set_default_dtype(torch.float64)
    try:
        assert check.dpsgd_round(reference.dpsgd_round).passed
    finally:
        torch.set_default_dtype(torch.float32)


def test_printed_output_is_captured_and_cut(capsys):
    def chatty(*args):
        print("x" * 10**6)
        return reference.participants(*args)

    result = check.participants(chatty)
    assert result.passed
    assert len(result.feedback) < 2 * MAX_OUTPUT_CHARS + 1000
    assert "Your function printed (first 600 of" in result.feedback
    assert capsys.readouterr().out == ""


def test_an_error_while_judging_is_the_checks(monkeypatch):
    from dmlbook.check import ex1_participants

    # A library function in the simulator's place: it raises in the check's own code,
    # with no frame of code from outside the package and its libraries.
    monkeypatch.setattr(ex1_participants, "transfer_times", math.factorial)
    result = check.participants(reference.participants)
    assert not result.passed and result.mistake == "the check's error"
    assert "not yours" in result.feedback and "TypeError" in result.feedback


def test_an_error_raised_by_what_the_function_returned_is_the_students():
    class Pair(list):
        def __getitem__(self, index):
            raise IndexError("my pair is broken")

    result = check.binding_link(lambda *args: Pair(reference.binding_link(*args)))
    assert (result.passed, result.mistake) == (False, "an error")
    assert result.feedback == ("✗ binding_link: not yet. The check could not read what your "
                               "function returned: your code raised IndexError: my pair is "
                               "broken")


def test_a_report_does_not_keep_a_large_result():
    kept = []

    def big(server_params, client_params):
        out = torch.zeros(5_000_000)  # 20 MB, the wrong shape
        kept.append(weakref.ref(out))
        return out

    result = check.fedavg(big)
    assert not result.passed and result.mistake == "wrong shape"
    assert len(result.feedback) < 2000
    gc.collect()
    assert kept and all(ref() is None for ref in kept)


def test_send_outside_a_check_keeps_a_bounded_history():
    free = network._free
    before = free.count
    for _ in range(network.MAX_FREE_MESSAGES + 500):
        check.send(0, 1, torch.ones(2))
    assert len(free.messages) == network.MAX_FREE_MESSAGES
    assert free.count == before + network.MAX_FREE_MESSAGES + 500


def test_a_runaway_sender_is_stopped_inside_a_check(monkeypatch):
    monkeypatch.setattr(network, "MAX_CHECK_MESSAGES", 1000)

    def floods(chunks):
        while True:
            check.send(0, 1, chunks[0][0])

    result = check.ring_allreduce(floods, time_limit_s=3)
    assert not result.passed and result.mistake in ("messages", "time limit")


@pytest.mark.parametrize("name", list(check.CHECKS))
def test_each_check_answers_within_two_seconds_of_cpu(name):
    args = check.reference_args(name)
    getattr(check, name)(*args)  # warm: the data set and the models are loaded once
    start = time.process_time()
    result = getattr(check, name)(*args)
    assert result.passed, result.feedback
    assert time.process_time() - start <= 2.0
    assert not math.isnan(result.seconds)
