"""Workbook 5's checks: the cases they try and the failures no pinned feedback reaches.

test_check_feedback.py pins the feedback of the wrong solutions in
test_check*.py. The mutation sample of check/ex5_gossip_merge.py
(benchmarks/README.md, "Mutation testing") found what those never reach: the
cases each stage draws, the label of each hand-worked case, a result of the
wrong dtype, handlers that return the wrong kind of value, and the simulator
stages' failures. It also found that the random exchanges checked only the sum:
a push handler that skipped the exchange for large values passed.
"""

import itertools

import torch

from check_helpers import lines
from dmlbook import check
from dmlbook.check import reference as R


def average(a, b):
    return (a + b) / 2


# ---------------------------------------------------------------------------
# gossip_merge


def test_gossip_merge_cases_are_the_hand_worked_the_random_the_twins_and_the_runs():
    calls = []

    def spy(local, received):
        calls.append((local.clone(), received.clone()))
        return average(local, received)

    assert check.gossip_merge(spy).passed
    hand = [(a.tolist(), b.tolist()) for a, b in calls[:3]]
    assert hand == [([0., 4.], [2., 0.]), ([1., -3., 5.], [3., 1., 5.]),
                    ([[1., 2.], [3., 4.]], [[5., 6.], [7., 8.]])]
    randoms = calls[3:23]
    assert [a.dtype for a, _ in randoms] == [torch.float32, torch.float64] * 10
    assert {a.dim() for a, _ in randoms} == {1, 2}
    assert all(1 <= n <= 5 for a, _ in randoms for n in a.shape)
    scales = [float(a.std() / b.std()) for a, b in randoms if a.numel() > 3]
    assert min(scales) < 15 and max(scales) > 100  # the local model scaled by 0.1 .. 100
    last_local, last_received = randoms[-1]
    other_way, with_itself = calls[23], calls[24]
    assert torch.equal(other_way[0], last_received) and torch.equal(other_way[1], last_local)
    assert torch.equal(with_itself[0], last_local) and torch.equal(with_itself[1], last_local)
    runs = calls[25:]
    # 27 messages sent in 3 s of gossip learning, 19 of them delivered (merged) by then.
    assert len(runs) == 19 and all(a.shape == (650,) for a, _ in runs)


def test_gossip_merge_each_hand_case_is_labelled_for_what_it_holds():
    three = lines(check.gossip_merge(lambda a, b: average(a, b) if a.numel() != 3 else a))
    assert three[1].endswith("), three numbers")
    matrix = lines(check.gossip_merge(lambda a, b: average(a, b) if a.dim() == 1 else b))
    assert matrix[1].endswith("), a 2 x 2 weight matrix")
    assert matrix[2:4] == ["  expected: tensor of shape (2, 2), row 0: [3. 4.]",
                           "  got:      tensor of shape (2, 2), row 0: [5. 6.]"]


def test_gossip_merge_the_other_mistakes():
    dtype = lines(check.gossip_merge(lambda a, b: average(a.double(), b.double())))
    assert dtype[2:] == ["  expected: a torch.float32 tensor", "  got:      a torch.float64 tensor",
                         "Hint (wrong dtype): keep the model's dtype."]
    halved_local = lines(check.gossip_merge(lambda a, b: a / 2 + b))
    assert halved_local[-1] == "Hint (operator precedence): write (x_local + x_received) / 2."
    with_itself = lines(check.gossip_merge(
        lambda a, b: average(a, b) if not torch.equal(a, b) else a * 0))
    assert with_itself[1].endswith("), a model merged with itself stays the same")
    assert with_itself[-2] == ("Hint (wrong value): the merge is the plain average "
                               "(x_local + x_received) / 2.")


def test_gossip_merge_simulator_stage_names_the_node_that_differs():
    got = lines(check.gossip_merge(lambda a, b: average(a, b) if a.numel() < 100 else a.clone()))
    assert got[1] == "Case: gossip learning of 8 nodes for 3 s with your merge: node 7"
    assert got[-2] == ("Hint (wrong value): the models differ from those of "
                       "dmlbook.gossip.gossip_learning with the sheet's merge.")


# ---------------------------------------------------------------------------
# push_pull


def test_push_pull_random_exchanges_alternate_a_late_change_over_every_scale():
    pushes, replies = [], []

    def on_push(x_mine, x_received):
        pushes.append((x_mine, x_received))
        return R.on_push(x_mine, x_received)

    def on_reply(x_mine, reply):
        replies.append((x_mine, reply))
        return R.on_reply(x_mine, reply)

    assert check.push_pull(on_push, on_reply).passed
    assert pushes[:3] == [(0.0, 4.0), (5.0, -1.0), (0.0, 4.0)]
    assert [x for x, _ in replies[:3]] == [4.0, -1.0, 10.0]  # i's value grew by 6
    random_pushes, random_replies = pushes[3:33], replies[3:33]
    changed = [abs(x - sent) > 0 for (_, sent), (x, _) in zip(random_pushes, random_replies)]
    assert changed == [False, True] * 15
    sizes = [abs(sent) for _, sent in random_pushes]
    assert min(sizes) < 0.1 and max(sizes) > 100  # 10^-2 .. 10^3
    assert len(pushes) > 33 + 32  # then the 32 nodes of gossip_average, 12 cycles


def test_push_pull_handlers_that_return_the_wrong_kind_of_value():
    single = lines(check.push_pull(lambda m, r: m, R.on_reply))
    assert single[1:] == ["Case: on_push(x_mine=0.0, x_received=4.0)",
                          "  expected: a pair (new value, reply)", "  got:      0",
                          "Hint (wrong shape): return (x_new, reply)."]
    text = lines(check.push_pull(lambda m, r: ("x", 1.0), R.on_reply))
    assert text[2:] == ["  expected: a number", "  got:      x",
                        "Hint (not a number): return the new value as a float."]
    reply_text = lines(check.push_pull(lambda m, r: (R.on_push(m, r)[0], "x"), R.on_reply))
    assert reply_text[-1] == "Hint (not a number): return the reply as a float."
    on_reply_text = lines(check.push_pull(R.on_push, lambda m, a: "x"))
    assert on_reply_text[1:] == ["Case: on_reply(x_mine=4.0, reply=2.0)", "  expected: a number",
                                 "  got:      x",
                                 "Hint (not a number): return the new value as a float."]


def test_push_pull_random_exchanges_check_the_average_not_only_the_sum():
    # No exchange at all for large values keeps the sum: only the average shows it.
    got = lines(check.push_pull(
        lambda m, r: R.on_push(m, r) if abs(r) < 500 else (m, 0.0), R.on_reply))
    assert got[1:] == [
        "Case: random exchange 13 of 30: x_i=1526.05, x_j=-79.58, i changed by 0 meanwhile: "
        "node j's new value", "  expected: 723.2374672", "  got:      -79.5799614",
        "Hint (not averaging): the node a value arrives at moves to the pair's average.",
        "Already passed: 3 hand-worked exchanges, one with a reply that arrives late."]
    lost = lines(check.push_pull(
        lambda m, r: R.on_push(m, r) if abs(r) < 500 else (m, 1.0), R.on_reply))
    assert lost[1].startswith("Case: random exchange 13 of 30: ")
    assert lost[1].endswith(": the pair's sum")
    assert lost[-2] == "Hint (sum not preserved): what j gains, i must lose."


def test_push_pull_simulator_stage_the_sum_and_the_values():
    calls = itertools.count()

    def reply_forgets_later(x_mine, reply):
        return R.on_reply(x_mine, reply) if next(calls) < 40 else x_mine

    got = lines(check.push_pull(R.on_push, reply_forgets_later))
    assert got[1:4] == ["Case: push-pull averaging of 32 nodes with a 0.3 s delay: the sum over "
                        "all nodes, first off after cycle 1", "  expected: 288.6216324",
                        "  got:      286.0501671"]
    assert got[-2] == ("Hint (sum not preserved): replies arrive late here: the sender must "
                       "subtract the reply, not take it as its value.")
    pushes = itertools.count()

    def push_stops_later(x_mine, x_received):
        return R.on_push(x_mine, x_received) if next(pushes) < 40 else (x_mine, 0.0)

    got = lines(check.push_pull(push_stops_later, R.on_reply))
    assert got[1:4] == ["Case: push-pull averaging of 32 nodes for 12 cycles: node 15",
                        "  expected: 9.043736146", "  got:      3.07146063"]
    assert got[-2] == ("Hint (wrong value): the values differ from "
                       "dmlbook.gossip.gossip_average's.")


def test_a_lost_sum_with_a_late_change_shows_the_sum_with_the_change():
    got = lines(check.push_pull(
        lambda m, x: (m, 1.0) if -3 < x < -2.5 else R.on_push(m, x), R.on_reply))
    assert got[1:5] == [
        "Case: random exchange 2 of 30: x_i=-2.77481, x_j=-8.11893, i changed by -1.0951 "
        "meanwhile: the pair's sum", "  expected: -11.98883905", "  got:      -12.98883905",
        "Hint (sum not preserved): what j gains, i must lose."]


def test_gossip_merge_the_twin_cases_are_labelled():
    def wrong_on_call(k):
        calls = itertools.count()

        def merge(local, received):  # a model merged with itself is its own average
            return average(local, received) if next(calls) != k else local * 0
        return merge

    other_way = lines(check.gossip_merge(wrong_on_call(23)))  # 3 hand + 20 random first
    assert other_way[1].endswith("), the last two models the other way round")
    itself = lines(check.gossip_merge(wrong_on_call(24)))
    assert itself[1].endswith("), a model merged with itself stays the same")
