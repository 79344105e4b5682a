"""Workbook 4's checks: the cases they try and the failures no pinned feedback reaches.

test_check_feedback.py pins the feedback of the wrong solutions in
test_check*.py. The mutation sample of check/ex4_fedavg.py (benchmarks/README.md,
"Mutation testing") found what those never reach: the cases each stage draws,
the label of each hand-worked case, the mistakes only some inputs can show, and
the simulator stages' failures.
"""

import torch

from check_helpers import calls_of, lines
from dmlbook import check
from dmlbook.check import reference as R


# ---------------------------------------------------------------------------
# fedavg


def test_fedavg_cases_are_the_hand_worked_the_random_and_the_runs():
    calls = calls_of(check.fedavg, R.fedavg)
    hand = [(s.tolist(), c.tolist()) for s, c in calls[:3]]
    assert hand == [([0., 0., 0.], [[1., 2., 3.], [3., 4., 5.]]),
                    ([10., 10.], [[1., 1.], [2., 2.], [6., 0.]]),
                    ([5., -5., 1., 0.], [[1., 2., 3., 4.]])]
    randoms = calls[3:33]
    for (s, c), (s2, c2) in zip(randoms[::2], randoms[1::2]):  # each, then reversed
        assert torch.equal(s, s2) and torch.equal(c.flip(0), c2)
    shapes = [tuple(c.shape) for _, c in randoms[::2]]
    assert [m for m, _ in shapes] == [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7]
    assert all(1 <= P <= 11 for _, P in shapes) and len({P for _, P in shapes}) >= 6
    runs = calls[33:]
    assert len(runs) == 3 and all(tuple(c.shape) == (4, 650) for _, c in runs)


def test_fedavg_each_hand_case_is_labelled_for_what_it_holds():
    one = lines(check.fedavg(lambda s, c: c.mean(0) if len(c) > 1 else c[0] + 1))
    assert one[1] == ("Case: fedavg(server_params=tensor of shape (4,): [ 5. -5. 1. 0.], "
                      "client_params=tensor of shape (1, 4): [1. 2. 3. 4.]), one client")
    three = lines(check.fedavg(lambda s, c: c.mean(0) if len(c) != 3 else c[0] + 1))
    assert three[1].endswith("), three clients")
    assert three[-1] == "Hint (wrong value): the new server model is client_params.mean(dim=0)."


def test_fedavg_mistakes_the_pinned_solutions_do_not_make():
    first = lines(check.fedavg(lambda s, c: c[0].clone()))
    assert first[-1] == ("Hint (replacing instead of averaging): the new server model is the "
                         "average of all clients' models, not one of them.")
    old = lines(check.fedavg(lambda s, c: s.clone()))
    assert old[-1] == ("Hint (returned the old server model): the server replaces its model "
                       "by the clients' average.")
    short = lines(check.fedavg(lambda s, c: c.mean(0)[:-1]))
    assert short[2:] == ["  expected: tensor of shape (3,): [2. 3. 4.]",
                         "  got:      tensor of shape (2,): [2. 3.]",
                         "Hint (wrong shape): return a tensor of shape (3,)."]


def test_fedavg_a_failing_random_case_and_its_reversed_twin_are_named():
    forward = lines(check.fedavg(lambda s, c: c.mean(0) if len(c) < 8 else c[0]))
    assert forward[1].endswith(", random case 8 of 15 (8 clients)")
    # Right in the clients' order only: the reversed case catches it.
    order = lines(check.fedavg(
        lambda s, c: c.mean(0) if len(c) < 3 or bool(c[0, 0] <= c[-1, 0]) else c[0]))
    assert order[1].endswith(", random case 3, clients reversed")


def test_fedavg_simulator_stage_shows_where_a_long_model_differs():
    def off_in_the_last_parameter(s, c):
        out = c.mean(0)
        if c.shape[1] >= 100:  # only inside run_fedavg (the logistic regression)
            out[-1] += 3e-5
        return out

    got = lines(check.fedavg(off_in_the_last_parameter))
    assert got[1].endswith("), a round of run_fedavg")
    # The first 8 of 650 entries agree: the report starts at the one that differs, and
    # shows enough digits to see the difference.
    assert got[2] == "  expected: tensor of shape (650,), from entry 649: [-0.03161048]"
    assert got[3] == "  got:      tensor of shape (650,), from entry 649: [-0.03158048]"
    assert got[-1] == ("Already passed: 3 hand-worked cases; 15 seeded random cases, clients "
                       "in any order; inputs unchanged.")


# ---------------------------------------------------------------------------
# server_step


def test_server_step_cases_are_the_hand_worked_the_random_and_the_runs():
    calls = calls_of(check.server_step, R.server_step)
    hand = [(s.tolist(), p.tolist(), n.tolist(), send) for s, p, n, send in calls[:3]]
    assert hand == [([1., 1.], [[3., 0.], [0., 3.]], [1, 2], "parameters"),
                    ([1., 1.], [[3., 0.], [0., 3.]], [1, 2], "update"),
                    ([1., 1.], [[3., 0.], [0., 3.]], [5, 5], "parameters")]
    randoms = calls[3:23]
    assert [send for *_, send in randoms] == ["update", "parameters"] * 10
    sizes = torch.cat([n for _, _, n, _ in randoms])
    assert sizes.min() >= 1 and sizes.max() < 2000 and sizes.max() > 1800
    assert {len(n) for _, _, n, _ in randoms} >= {1, 8}
    assert all(1 <= p.shape[1] <= 11 for _, p, _, _ in randoms)
    runs = calls[23:]
    assert len(runs) == 4 and [send for *_, send in runs] == ["update"] * 2 + ["parameters"] * 2
    assert all(tuple(p.shape) == (5, 650) for _, p, _, _ in runs)


def test_server_step_equal_data_case_and_named_mistakes():
    equal = lines(check.server_step(
        lambda s, p, n, send: R.server_step(s, p, n, send) if n[0] != n[-1] else s))
    assert equal[1].endswith(", send='parameters'), equal data: the plain average")
    inverted = lines(check.server_step(lambda s, p, n, send: (s if send == "update" else 0) + (
        (1 / n.double()) / (1 / n.double()).sum())[:, None].float().mul(p).sum(0)))
    assert inverted[-1] == ("Hint (weights inverted): weight n_k, not 1 / n_k: more data, more "
                            "weight.")
    not_normalised = lines(check.server_step(
        lambda s, p, n, send: R.server_step(s, p, n, send) if send == "parameters"
        else s + (n[:, None].float() * p).sum(0)))
    assert not_normalised[1].endswith(", send='update'), two clients, one with twice the data")
    assert not_normalised[-1] == "Hint (weights not normalised): divide by the total sum(n_k)."
    zeros = lines(check.server_step(lambda s, p, n, send: torch.zeros_like(s)))
    assert zeros[-1] == ("Hint (wrong value): new = weighted average of the payloads, weights "
                         "n_k / sum(n); for updates add it to the server's model.")


def test_server_step_simulator_stage_compares_the_trained_models():
    def off_inside_training(s, p, n, send):
        return R.server_step(s, p, n, send) + (1e-3 if p.shape[1] > 100 else 0.0)

    got = lines(check.server_step(off_inside_training))
    assert got[1] == "Case: 2 rounds of FedAvg on uneven data, send='update': the final server model"
    assert got[-2] == "Hint (wrong value): it differs by up to 0.002 from run_fedavg's."
    only_parameters = lines(check.server_step(
        lambda s, p, n, send: off_inside_training(s, p, n, send) if send == "parameters"
        else R.server_step(s, p, n, send)))
    assert only_parameters[1] == ("Case: 2 rounds of FedAvg on uneven data, send='parameters': "
                                  "the final server model")


def test_a_run_whose_test_loss_differs_is_named_at_that_round():
    # Far off: the test loss already differs after the first round.
    got = lines(check.fedavg(lambda s, c: c.mean(0) + (1.0 if c.shape[1] > 100 else 0.0)))
    assert got[1].endswith("), a round of run_fedavg")
    got = lines(check.server_step(
        lambda s, p, n, send: R.server_step(s, p, n, send) * (3.0 if p.shape[1] > 100 else 1.0)))
    assert got[1] == ("Case: 2 rounds of FedAvg on uneven data, send='update': the server "
                      "model's test loss after round 1")
    assert got[-2] == ("Hint (wrong value): the server model differs from the one "
                       "dmlbook.federated.run_fedavg computes there.")


# ---------------------------------------------------------------------------
# quantize


def test_quantize_cases_are_the_hand_worked_the_random_and_the_runs():
    calls = calls_of(check.quantize, R.quantize)
    hand = [(x.tolist(), bits) for x, bits in calls[:4]]
    assert hand == [([0., 1., 2., 3.], 2), ([0., 0.4000000059604645, 0.6000000238418579, 3.], 1),
                    ([-1., -0.20000000298023224, 0.699999988079071, 2.], 2), ([5., 5., 5.], 3)]
    randoms, wide = calls[4:24], calls[24:40]
    assert [bits for _, bits in randoms] == [1 + k % 8 for k in range(20)]
    assert sorted(bits for _, bits in wide) == sorted(list(range(9, 17)) * 2)  # each twice
    assert all(2 <= len(x) < 200 for x, _ in randoms + wide)
    spreads = [float(x.std()) for x, _ in randoms]
    assert min(spreads) < 0.01 and max(spreads) > 10  # scales 10^-3 .. 10^2
    runs = calls[40:]
    assert {bits for _, bits in runs} == {4} and all(len(x) == 650 for x, _ in runs)
    assert len(runs) == 2 * 2 * 4  # 2 rounds x 4 clients, for updates and for parameters


def test_quantize_hand_labels_and_the_range_from_zero():
    equal = lines(check.quantize(lambda x, b: R.quantize(x, b) if x.max() > x.min() else x * 0))
    assert equal[1] == ("Case: quantize(x=tensor of shape (3,): [5. 5. 5.], bits=3), all equal: "
                        "nothing to quantize")
    assert equal[-1] == ("Hint (wrong value): levels lo + k * step, k = 0 .. 2**bits - 1, step = "
                         "(max - min) / (2**bits - 1); each entry to the nearest level.")
    from_zero = lines(check.quantize(
        lambda x, b: torch.round(x / (x.abs().max() / (2**b - 1))) * (x.abs().max() / (2**b - 1))))
    assert from_zero[1].endswith("bits=2), a range that does not start at 0")
    assert from_zero[-1] == "Hint (range from zero): the levels span min .. max of x."


def test_quantize_random_and_simulator_stages_name_their_case():
    three_bits = lines(check.quantize(lambda x, b: R.quantize(x, b) if b != 3 else x.clone()))
    assert three_bits[1].endswith(", bits=3), random case 3 of 36")
    in_training = lines(check.quantize(lambda x, b: R.quantize(x, b) if len(x) < 200 else x))
    assert in_training[1].endswith(", bits=4), client 0's update, 4 bits")
    parameters_only = lines(check.quantize(
        lambda x, b: x if len(x) == 650 and x.abs().max() > 0.05 else R.quantize(x, b)))
    assert parameters_only[1].endswith(", bits=4), client 0's parameters, 4 bits")


# ---------------------------------------------------------------------------
# Named mistakes on the inputs that tell them apart (found by the mutation sample)


def test_forgotten_weights_with_updates_are_named():
    got = lines(check.server_step(lambda s, p, n, send: s + p.mean(0) if send == "update"
                                  else R.server_step(s, p, n, send)))
    assert got[1].endswith(", send='update'), two clients, one with twice the data")
    assert got[2:] == ["  expected: tensor of shape (2,): [2. 3.]",
                       "  got:      tensor of shape (2,): [2.5 2.5]",
                       "Hint (forgot the weights): weigh client k by n_k / sum(n): a client "
                       "with more data counts more."]


def test_changing_the_clients_in_place_names_client_params():
    def adds_in_place(s, c):
        out = c.mean(0)
        c += 1
        return out

    got = lines(check.fedavg(adds_in_place))
    assert got[2:4] == ["  expected: your inputs left as they were",
                        "  got:      your function changed client_params"]


def test_codes_are_named_on_a_range_that_does_not_start_at_zero():
    def codes_unless_from_zero(x, bits):
        lo, hi = x.min(), x.max()
        if lo == 0:
            return R.quantize(x, bits)
        return torch.round((x - lo) / ((hi - lo) / (2**bits - 1)))

    got = lines(check.quantize(codes_unless_from_zero))
    assert got[1].endswith("bits=2), a range that does not start at 0")
    assert got[-1] == ("Hint (codes instead of values): return what the receiver "
                       "reconstructs: min + code * step, not the code.")


def test_a_range_from_zero_is_named_at_three_bits_too():
    def from_zero_at_three_bits(x, bits):
        if bits != 3:
            return R.quantize(x, bits)
        step = x.abs().max() / (2**bits - 1)
        return torch.round(x / step) * step

    got = lines(check.quantize(from_zero_at_three_bits))
    assert got[1].endswith(", bits=3), random case 3 of 36")
    assert got[-2] == "Hint (range from zero): the levels span min .. max of x."


def test_too_many_steps_are_named_on_a_range_that_does_not_start_at_zero():
    def steps_unless_from_zero(x, bits):
        lo, hi = x.min(), x.max()
        if lo == 0:
            return R.quantize(x, bits)
        return lo + torch.round((x - lo) / ((hi - lo) / 2**bits)) * (hi - lo) / 2**bits

    got = lines(check.quantize(steps_unless_from_zero))
    assert got[1].endswith("bits=2), a range that does not start at 0")
    assert got[-1] == ("Hint (2**bits steps): 2**bits levels from min to max make 2**bits - 1 "
                       "steps between them.")


def test_server_step_names_each_input_changed_in_place():
    def changes(name):
        def step(s, p, n, send):
            out = R.server_step(s, p, n, send)
            {"server_params": s, "payloads": p, "n_examples": n}[name].add_(1)
            return out
        return step

    for name in ("server_params", "payloads", "n_examples"):
        got = lines(check.server_step(changes(name)))
        assert got[3] == f"  got:      your function changed {name}"
