"""Workbook 3's checks: the cases they try and the failures no pinned feedback reaches.

test_check_feedback.py pins the feedback of the wrong solutions in
test_check*.py. The mutation sample of check/ex3_ring_allreduce.py
(benchmarks/README.md, "Mutation testing") found what those never reach: the
cases each stage draws, a message that carries too much, a reply that is not a
list of chunks, and the three ways the simulator stage can fail.
"""

import pytest
import torch

from check_helpers import calls_of, lines
from dmlbook import check
from dmlbook.check import ex3_ring_allreduce, reference
from dmlbook.check.harness import Failure


# ---------------------------------------------------------------------------
# ring_messages


def test_ring_messages_cases_are_the_hand_worked_the_random_and_the_runs():
    calls = [n for (n,) in calls_of(check.ring_messages, reference.ring_messages)]
    assert len(calls) == 3 + 30 + 1
    assert calls[:3] == [4, 2, 128]
    randoms = calls[3:33]
    assert all(2 <= n < 10**6 for n in randoms) and max(randoms) > 9 * 10**5
    assert len(set(randoms)) == 30
    assert calls[33] == 5  # train_data_parallel's ring on 5 workers


def test_ring_messages_other_wrong_counts_get_the_formula():
    result = check.ring_messages(lambda n: n * n)
    assert result.mistake == "wrong value"
    assert result.feedback.splitlines()[1:] == [
        "Case: ring_messages(n_nodes=4), four nodes", "  expected: 24", "  got:      16",
        "Hint (wrong value): 2 phases x (n - 1) steps x n messages."]


def test_ring_messages_a_failing_random_ring_is_named():
    result = check.ring_messages(lambda n: 2 * n * (n - 1) if n < 1000 else 0)
    assert result.feedback.splitlines()[1].startswith("Case: ring_messages(n_nodes=")
    assert result.feedback.splitlines()[1] == ("Case: ring_messages(n_nodes=927407), random "
                                               "case 1 of 30")
    big = check.ring_messages(lambda n: 2 * n * (n - 1) if n != 128 else 0)
    assert big.feedback.splitlines()[1] == "Case: ring_messages(n_nodes=128), 128 nodes"


def test_ring_messages_simulator_stage_counts_the_runs_messages():
    result = check.ring_messages(lambda n: 0 if n == 5 else 2 * n * (n - 1))
    assert result.feedback.splitlines()[1:4] == [
        "Case: ring_messages(n_nodes=5), the messages of 2 rounds of train_data_parallel's "
        "ring / 2", "  expected: 40", "  got:      0"]


# ---------------------------------------------------------------------------
# ring_allreduce: the cases


def test_ring_allreduce_cases_are_the_hand_worked_the_random_the_marked_and_the_runs():
    calls = calls_of(check.ring_allreduce, reference.ring_allreduce)
    shapes = [[c.numel() for c in chunks[0]] for (chunks,) in calls]
    assert shapes[:4] == [[2, 2], [2, 2, 2], [3, 3, 2, 2], [5, 5, 5, 4, 4]]
    whole = [all(torch.equal(c, c.round()) for node in chunks for c in node)
             for (chunks,) in calls[:4]]
    assert whole == [True, True, True, False]  # the fourth: random numbers
    randoms = shapes[4:16]
    assert {len(s) for s in randoms} >= {2, 8} and all(2 <= len(s) <= 8 for s in randoms)
    assert all(len(s) <= sum(s) < 6 * len(s) for s in randoms)
    marked_n = len(shapes[16])
    assert 3 <= marked_n <= 6 and sum(shapes[16]) == 3 * marked_n + 1
    assert shapes[17] == [3, 2]  # the second marked case: 2 nodes, 5 numbers
    assert len(calls) == 18 + 3  # then one ring per round of train_data_parallel
    assert {len(s) for s in shapes[18:]} == {4}


def test_ring_allreduce_inputs_are_small_whole_numbers_or_gaussian():
    grads, chunks = ex3_ring_allreduce._inputs(3, 7, seed=5)
    assert grads.shape == (3, 7) and torch.equal(grads, grads.round())
    assert [c.numel() for c in chunks[0]] == [3, 2, 2]
    assert all(torch.equal(torch.cat(chunks[i]), grads[i]) for i in range(3))
    many, _ = ex3_ring_allreduce._inputs(4, 500, seed=0)
    assert many.min() == -9 and many.max() == 9  # the whole range, both ends
    gaussian, _ = ex3_ring_allreduce._inputs(2, 500, seed=0, integer=False)
    assert not torch.equal(gaussian, gaussian.round()) and 0.8 < gaussian.std() < 1.2


# ---------------------------------------------------------------------------
# ring_allreduce: failures the pinned wrong solutions do not reach


def test_a_reply_that_is_not_a_list_of_chunks():
    got = lines(check.ring_allreduce(lambda chunks: torch.zeros(4)))
    assert got[1] == ("Case: ring_allreduce on 2 nodes, 4 numbers each cut into 2 chunks of "
                      "sizes [2, 2], small whole numbers")
    assert got[2] == "  expected: a list of 2 lists of 2 tensors (node i's chunks)"
    assert got[-1] == ("Hint (wrong shape): return every node's chunks: out[i][j] is node "
                       "i's chunk j.")
    nested_wrong = lines(check.ring_allreduce(lambda chunks: [[1.0, 2.0]] * len(chunks)))
    assert nested_wrong[2:4] == ["  expected: a tensor of shape (2,)", "  got:      1"]
    assert nested_wrong[-1] == "Hint (wrong shape): out[0][0] must be node 0's copy of chunk 0."
    one_row_short = lines(check.ring_allreduce(lambda chunks: [chunks[0]]))
    assert one_row_short[-1].startswith("Hint (wrong shape): return every node's chunks")


def ring_sending_whole_models(chunks):
    """The right ring, but every message carries the sender's whole vector."""
    n = len(chunks)
    for k in range(n):
        for _ in range(2 * (n - 1)):
            check.send(k, (k + 1) % n, torch.cat(chunks[k]))
    total = [sum(chunks[i][j] for i in range(n)) for j in range(n)]
    return [[t.clone() for t in total] for _ in range(n)]


def test_a_message_carrying_more_than_one_chunk():
    got = lines(check.ring_allreduce(ring_sending_whole_models))
    assert got[1:4] == [
        "Case: ring_allreduce on 2 nodes, 4 numbers each cut into 2 chunks of sizes [2, 2], "
        "small whole numbers: message size", "  expected: one chunk (<= 2 numbers)",
        "  got:      4 numbers"]
    assert got[-1] == ("Hint (not a ring): each message of a ring all-reduce carries one "
                       "chunk, 1/n of the model.")


def sends_backwards(chunks, steps):
    """``steps`` rounds in which node k sends chunk 0 to k - 1: the wrong way from n = 3
    (on 2 nodes the predecessor is the successor)."""
    n = len(chunks)
    for _ in range(steps):
        for k in range(n):
            check.send(k, (k - 1) % n, chunks[k][0])


def total_everywhere(chunks):
    n = len(chunks)
    total = [sum(chunks[i][j] for i in range(n)) for j in range(n)]
    return [[t.clone() for t in total] for _ in range(n)]


def test_right_sums_with_messages_the_wrong_way():
    def backwards(chunks):
        sends_backwards(chunks, 2 * (len(chunks) - 1))
        return total_everywhere(chunks)

    got = lines(check.ring_allreduce(backwards))
    assert got[1:4] == [
        "Case: ring_allreduce on 3 nodes, 6 numbers each cut into 3 chunks of sizes "
        "[2, 2, 2], small whole numbers: where the messages went",
        "  expected: node 0 sends to node 1", "  got:      node 0 sent to node 2"]
    assert got[-1] == ("Hint (ring direction): in a ring node k only sends to its "
                       "successor (k + 1) % n.")


def test_wrong_sums_after_messages_the_wrong_way_are_named_ring_direction():
    def backwards_and_wrong(chunks):
        if len(chunks) == 2:
            return reference.ring_allreduce(chunks)
        sends_backwards(chunks, 1)
        return [[c.clone() for c in chunks[0]] for _ in chunks]

    got = lines(check.ring_allreduce(backwards_and_wrong))
    assert got[1].endswith("small whole numbers: node 0's result")
    assert got[-1] == ("Hint (ring direction): node 0 sent to node 2: in a ring node k only "
                       "sends to its successor (k + 1) % n.")


def test_a_marked_chunk_that_is_not_a_whole_number_of_marks():
    # Half of each value from the message, half read from the sender directly: right
    # on a plain network, half a mark per hop on the marking one.
    def half_around(chunks):
        n = len(chunks)
        mine = [[c.clone() for c in node] for node in chunks]
        for phase in ("reduce-scatter", "all-gather"):
            for step in range(n - 1):
                first = (lambda k: k - step) if phase == "reduce-scatter" \
                    else (lambda k: k + 1 - step)
                sent = [(k, first(k) % n) for k in range(n)]
                mixed = [0.5 * check.send(k, (k + 1) % n, mine[k][c]) + 0.5 * mine[k][c]
                         for k, c in sent]
                for (k, c), p in zip(sent, mixed):
                    dst = (k + 1) % n
                    mine[dst][c] = mine[dst][c] + p if phase == "reduce-scatter" else p
        return mine

    got = lines(check.ring_allreduce(half_around))
    assert got[1] == ("Case: ring_allreduce on 5 nodes (marked) on a network that adds "
                      "0.015625 to every value it carries: node 0's chunk 0")
    assert got[2] == "  expected: the sum plus a whole number of marks"
    assert got[-2] == ("Hint (messages): every value must arrive through send(): use what "
                       "send returns, not the sender's chunk.")


# ---------------------------------------------------------------------------
# ring_allreduce: the simulator stage


def _is_engine_call(chunks):
    return sum(c.numel() for c in chunks[0]) > 100  # the hand and random rings are smaller


def test_simulator_stage_nodes_that_disagree():
    def disagrees_in_training(chunks):
        out = reference.ring_allreduce(chunks)
        if _is_engine_call(chunks):
            out[1][0] = out[1][0] + 1e-3
        return out

    got = lines(check.ring_allreduce(disagrees_in_training))
    assert got[1] == ("Case: round 1 of data-parallel training: node 1's chunk 0 against "
                      "node 0's")
    assert got[-2] == ("Hint (nodes disagree): after the all-gather every node holds the "
                       "same chunks.")


def test_simulator_stage_parameters_that_drift_from_the_engines():
    def drifts_in_training(chunks):
        out = reference.ring_allreduce(chunks)
        if _is_engine_call(chunks):
            out = [[c + 1e-3 for c in node] for node in out]
        return out

    got = lines(check.ring_allreduce(drifts_in_training))
    assert got[1] == ("Case: round 1 of data-parallel SGD (4 workers) with your ring as "
                      "dmlbook.allreduce.train_data_parallel's all-reduce")
    assert got[-2].startswith("Hint (wrong value): the parameters differ by up to ")
    assert got[-2].endswith(" from the engine's ring all-reduce.")


def test_simulator_stage_messages_in_float64_cost_twice_the_bytes():
    # A likely slip: the right ring whose messages are sent as float64.
    def sends_float64(chunks):
        n = len(chunks)
        mine = [[c.clone() for c in node] for node in chunks]
        for step in range(n - 1):
            sent = [(k, (k - step) % n) for k in range(n)]
            got = [check.send(k, (k + 1) % n, mine[k][c].double()) for k, c in sent]
            for (k, c), p in zip(sent, got):
                mine[(k + 1) % n][c] = mine[(k + 1) % n][c] + p.float()
        for step in range(n - 1):
            sent = [(k, (k + 1 - step) % n) for k in range(n)]
            got = [check.send(k, (k + 1) % n, mine[k][c].double()) for k, c in sent]
            for (k, c), p in zip(sent, got):
                mine[(k + 1) % n][c] = p.float()
        return mine

    got = lines(check.ring_allreduce(sends_float64))
    assert got[1] == "Case: 3 rounds of data-parallel SGD: messages and bytes"
    assert got[-2] == ("Hint (messages): the engine's ring sends one chunk per message, "
                       "2 (n - 1) per node per round.")


def test_the_mark_is_exact_in_float32():
    assert ex3_ring_allreduce.MARK == 1 / 64
    assert torch.tensor(9.0) + ex3_ring_allreduce.MARK * 8 == 9.125


# ---------------------------------------------------------------------------
# The diagnosis of a wrong number of steps, and the labels of the later stages


def ring_with_steps(reduce_steps, gather_steps):
    """The reference ring with ``reduce_steps(n)`` and ``gather_steps(n)`` steps."""
    def ring(chunks):
        n = len(chunks)
        mine = [[c.clone() for c in node] for node in chunks]
        for step in range(reduce_steps(n)):
            sent = [(k, (k - step) % n) for k in range(n)]
            got = [check.send(k, (k + 1) % n, mine[k][c]) for k, c in sent]
            for (k, c), p in zip(sent, got):
                mine[(k + 1) % n][c] = mine[(k + 1) % n][c] + p
        for step in range(gather_steps(n)):
            sent = [(k, (k + 1 - step) % n) for k in range(n)]
            got = [check.send(k, (k + 1) % n, mine[k][c]) for k, c in sent]
            for (k, c), p in zip(sent, got):
                mine[(k + 1) % n][c] = p
        return mine
    return ring


def test_each_wrong_number_of_steps_is_named_with_the_count():
    # On 3 nodes the right count is 12: one short in both phases (6), one short in
    # reduce-scatter (9), one too many in both (18), one too many in all-gather (15).
    for reduce_steps, gather_steps, sent in [(lambda n: n - 2, lambda n: n - 2, 6),
                                             (lambda n: n - 2, lambda n: n - 1, 9),
                                             (lambda n: n, lambda n: n, 18),
                                             (lambda n: n - 1, lambda n: n, 15)]:
        def ring(chunks, _wrong=ring_with_steps(reduce_steps, gather_steps)):
            return reference.ring_allreduce(chunks) if len(chunks) == 2 else _wrong(chunks)

        got = lines(check.ring_allreduce(ring))
        assert got[1].startswith("Case: ring_allreduce on 3 nodes, ")
        assert got[-1] == ("Hint (off by one in the number of steps): each phase takes n - 1 = 2 "
                           f"steps of n messages: 12 messages in all, you sent {sent}.")


def test_a_failing_random_ring_is_named_by_its_number():
    got = lines(check.ring_allreduce(
        lambda chunks: reference.ring_allreduce(chunks) if len(chunks) < 8 else chunks))
    assert got[1].startswith("Case: ring_allreduce on 8 nodes, ")
    assert got[1].endswith(", random case 2 of 12: node 0's result")


def test_the_second_marked_case_has_two_nodes():
    def half_around_on_two(chunks):
        if len(chunks) != 2:
            return reference.ring_allreduce(chunks)
        received = [check.send(k, 1 - k, chunks[k][(k + 1) % 2]) for k in range(2)]
        mine = [[c.clone() for c in node] for node in chunks]
        for k in range(2):
            c = (k + 1) % 2
            mine[1 - k][c] = mine[1 - k][c] + 0.5 * received[k] + 0.5 * chunks[k][c]
        finished = [check.send(k, 1 - k, mine[k][k]) for k in range(2)]
        for k in range(2):
            mine[1 - k][k] = finished[k]
        return mine

    got = lines(check.ring_allreduce(half_around_on_two))
    assert got[1] == ("Case: ring_allreduce on 2 nodes (marked) on a network that adds 0.015625 "
                      "to every value it carries: node 0's chunk 0")


def test_a_wrong_shape_inside_training_names_the_round():
    def short_inside_training(chunks):
        out = reference.ring_allreduce(chunks)
        return out[:-1] if sum(c.numel() for c in chunks[0]) > 100 else out

    got = lines(check.ring_allreduce(short_inside_training))
    assert got[1] == "Case: round 1 of data-parallel training"
    assert got[-2] == ("Hint (wrong shape): return every node's chunks: out[i][j] is node i's "
                       "chunk j.")


def test_a_wrong_node_result_is_shown_from_where_it_differs_beyond_the_checks_tolerance():
    # Entries within the comparison's tolerance (atol 1e-4) are not where it "differs".
    def off_in_the_last_chunk(chunks):
        out = [[c.clone() for c in node] for node in reference.ring_allreduce(chunks)]
        out[0][0] = out[0][0] + 5e-5
        out[0][-1] = out[0][-1] + 1.0
        return out

    with pytest.raises(Failure) as caught:
        ex3_ring_allreduce._case(off_in_the_last_chunk, 3, 60, 7, "gaussian", integer=False)
    assert caught.value.case.endswith("node 0's result")
    assert caught.value.expected.startswith("tensor of shape (60,), from entry 40: ")
    assert caught.value.actual.startswith("tensor of shape (60,), from entry 40: ")
