"""Workbook 4: FedAvg's server step, plain and weighted by the clients' data."""

from __future__ import annotations

import torch

from ..compression import quantize as package_quantize
from ..federated import run_fedavg
from .display import short
from .harness import (Failure, _allclose, as_tensor, call_shaped, call_tensors, each, seeded,
                      stages, tensor_result)
from .reference import server_step as reference_step  # taken now: rebinding it later changes nothing


def _fedavg_case(fn, server, clients, label):
    case = f"fedavg(server_params={short(server)}, client_params={short(clients)}), {label}"
    out, changed = call_tensors(fn, case, server, clients)
    m = len(clients)
    candidates = [
        ("replacing instead of averaging", clients[-1], "the new server model is the average "
                                                        "of all clients' models, not one of them."),
        ("replacing instead of averaging", clients[0], "the new server model is the average "
                                                       "of all clients' models, not one of them."),
        ("summing instead of averaging", clients.sum(0), "divide the sum by the number of "
                                                         "clients: take the mean over dim 0."),
        ("counting the server as a client", (server + clients.sum(0)) / (m + 1),
         "the old server model was every client's starting point; it is not averaged in."),
        ("parameters treated as updates", server + clients.mean(0),
         "the clients send their new parameters, not updates: do not add them to the server's."),
        ("averaging over the wrong dimension", clients.mean(1),
         "client_params is (m, P), one row per client: average over dim 0."),
        ("returned the old server model", server, "the server replaces its model by the "
                                                  "clients' average.")]
    names = ["server_params", "client_params"]
    return tensor_result(case, out, clients.mean(0), [names[i] for i in changed], candidates,
                         "the new server model is client_params.mean(dim=0).")


def _compare_runs(ours, reference, what):
    """Fail at the first round whose test loss differs, else on the final server model."""
    for r, (a, b) in enumerate(zip(ours.test_loss, reference.test_loss)):
        if abs(a - b) > 1e-5 * max(1.0, abs(b)):
            raise Failure(f"{what}: the server model's test loss after round {r}",
                          expected=b, actual=a, mistake="wrong value",
                          hint="the server model differs from the one dmlbook.federated."
                               "run_fedavg computes there.")
    diff = float((ours.server - reference.server).abs().max())
    if diff > 1e-5:
        raise Failure(f"{what}: the final server model", expected=reference.server,
                      actual=ours.server, mistake="wrong value",
                      hint=f"it differs by up to {diff:.3g} from run_fedavg's.")
    return diff


def fedavg(fn, *, time_limit_s=None):
    """Check ``fn(server_params (P,), client_params (m, P)) -> new server params (P,)``.

    FedAvg where the clients send their new parameters: the server takes their average.
    """
    hand = [(torch.tensor([0., 0., 0.]), torch.tensor([[1., 2., 3.], [3., 4., 5.]]),
             "two clients"),
            (torch.tensor([10., 10.]), torch.tensor([[1., 1.], [2., 2.], [6., 0.]]),
             "three clients"),
            (torch.tensor([5., -5., 1., 0.]), torch.tensor([[1., 2., 3., 4.]]), "one client")]

    def random_cases(fn):
        rng, gen = seeded("fedavg")
        for k in range(15):
            m, P = 1 + k % 8, int(rng.integers(1, 12))  # every count of clients 1 .. 8
            server, clients = torch.randn(P, generator=gen), torch.randn((m, P), generator=gen)
            _fedavg_case(fn, server, clients, f"random case {k + 1} of 15 ({m} clients)")
            _fedavg_case(fn, server, clients.flip(0), f"random case {k + 1}, clients reversed")
        return "15 seeded random cases, clients in any order; inputs unchanged"

    def simulator(fn):
        def aggregate(server, payloads, n_examples):
            return _fedavg_case(fn, server, payloads, "a round of run_fedavg")

        kw = dict(n_clients=4, rounds=3, local_steps=2, lr=0.1, batch_size=32, seed=0,
                  send="parameters", model="logreg", progress=False)
        diff = _compare_runs(run_fedavg(aggregate=aggregate, **kw), run_fedavg(**kw),
                             "3 rounds of FedAvg (4 clients, 2 local steps) with your step")
        return (f"3 rounds of dmlbook.federated.run_fedavg with your step as the server's "
                f"equal its own (max difference {diff:.1e})")

    return stages("fedavg", fn, each(_fedavg_case, hand), random_cases, simulator,
                  time_limit_s=time_limit_s)


def _step_case(fn, server, payloads, sizes, send, label):
    case = (f"server_step(server_params={short(server)}, payloads={short(payloads)}, "
            f"n_examples={short(sizes)}, send={send!r}), {label}")
    out, changed = call_tensors(fn, case, server, payloads, sizes, send)
    weights = sizes.double() / sizes.sum()
    weighted = (weights[:, None] * payloads.double()).sum(0).float()
    plain = payloads.mean(0)
    expected = server + weighted if send == "update" else weighted
    candidates = [
        ("forgot the weights", server + plain if send == "update" else plain,
         "weigh client k by n_k / sum(n): a client with more data counts more."),
        ("weights not normalised", (server if send == "update" else 0) + (
            sizes[:, None].float() * payloads).sum(0), "divide by the total sum(n_k)."),
        ("update treated as parameters", weighted,
         "an update is a change: add the weighted average to the server's model."),
        ("parameters treated as updates", server + weighted,
         "parameters are whole models: the weighted average is the new model itself."),
        ("weights inverted", (server if send == "update" else 0) + (
            (1 / sizes.double()) / (1 / sizes.double()).sum())[:, None].float().mul(
            payloads).sum(0), "weight n_k, not 1 / n_k: more data, more weight.")]
    candidates = [c for c in candidates if not _allclose(c[1], expected, atol=1e-6)]
    names = ["server_params", "payloads", "n_examples"]
    return tensor_result(case, out, expected, [names[i] for i in changed], candidates,
                         "new = weighted average of the payloads, weights n_k / sum(n); "
                         "for updates add it to the server's model.")


def server_step(fn, *, time_limit_s=None):
    """Check ``fn(server_params (P,), payloads (m, P), n_examples (m,), send)``: FedAvg's
    server step weighted by the clients' data, for ``send`` ``"update"`` or
    ``"parameters"``, alone and inside :func:`dmlbook.federated.run_fedavg`."""
    def hand_cases(fn):
        server = torch.tensor([1., 1.])
        payloads = torch.tensor([[3., 0.], [0., 3.]])
        sizes = torch.tensor([1, 2])
        for send in ("parameters", "update"):
            _step_case(fn, server, payloads, sizes, send, "two clients, one with twice the data")
        _step_case(fn, server, payloads, torch.tensor([5, 5]), "parameters",
                   "equal data: the plain average")
        return "3 hand-worked cases, updates and parameters"

    def random_cases(fn):
        rng, gen = seeded("server_step")
        for k in range(20):
            m, P = int(rng.integers(1, 9)), int(rng.integers(1, 12))
            send = ("update", "parameters")[k % 2]
            sizes = torch.from_numpy(rng.integers(1, 2000, m))
            _step_case(fn, torch.randn(P, generator=gen), torch.randn((m, P), generator=gen),
                       sizes, send, f"random case {k + 1} of 20 ({m} clients)")
        return "20 seeded random cases over clients, sizes, models and both sends"

    def simulator(fn):
        diffs = []
        for send in ("update", "parameters"):
            def student(server, payloads, n_examples, send=send):
                return call_shaped(fn, f"a round of run_fedavg(send={send!r}, "
                                   f"split='dirichlet')", server, server, payloads,
                                   n_examples, send)

            def reference(server, payloads, n_examples, send=send):
                return reference_step(server, payloads, n_examples, send)

            kw = dict(n_clients=5, rounds=2, local_steps=1, lr=0.1, batch_size=16, seed=1,
                      send=send, split="dirichlet", model="logreg", progress=False)
            ours = run_fedavg(aggregate=student, **kw)
            diffs.append(_compare_runs(ours, run_fedavg(aggregate=reference, **kw),
                                       f"2 rounds of FedAvg on uneven data, send={send!r}"))
        return (f"inside dmlbook.federated.run_fedavg on uneven (Dirichlet) data your step "
                f"trains the weighted FedAvg model, with updates and with parameters (max "
                f"difference {max(diffs):.1e})")

    return stages("server_step", fn, hand_cases, random_cases, simulator,
                  time_limit_s=time_limit_s)


def _quantize_case(fn, x, bits, label):
    case = f"quantize(x={short(x)}, bits={bits}), {label}"
    out, changed = call_tensors(fn, case, x, bits)
    lo, hi = x.min(), x.max()
    candidates = [
        ("2**bits steps", lo + torch.round((x - lo) / ((hi - lo) / 2**bits)) * (hi - lo) / 2**bits,
         "2**bits levels from min to max make 2**bits - 1 steps between them."),
        ("floor instead of round", lo + torch.floor((x - lo) / ((hi - lo) / (2**bits - 1)))
         * (hi - lo) / (2**bits - 1), "go to the nearest level: round, not floor."),
        ("codes instead of values", torch.round((x - lo) / ((hi - lo) / (2**bits - 1))),
         "return what the receiver reconstructs: min + code * step, not the code."),
        ("range from zero", torch.round(x / (hi.abs().max(lo.abs()) / (2**bits - 1)))
         * (hi.abs().max(lo.abs()) / (2**bits - 1)), "the levels span min .. max of x.")]
    expected = package_quantize(x, bits).values
    candidates = [c for c in candidates if not _allclose(c[1], expected, atol=1e-6)]
    atol = float(hi - lo) * 1e-6 + 1e-7
    expected = _either_level_at_a_tie(out, x, bits, expected, atol)
    return tensor_result(case, out, expected, ["x"] if changed else [], candidates,
                         "levels lo + k * step, k = 0 .. 2**bits - 1, step = (max - min) / "
                         "(2**bits - 1); each entry to the nearest level.", atol=atol)


def _either_level_at_a_tie(out, x, bits, expected, atol):
    """``expected``, with the student's level taken where ``x`` lies within float32's
    rounding of the midpoint between two levels: there either level is the nearest,
    depending on how the arithmetic rounds (at 16 bits a level is 1/65,535 of the range)."""
    try:
        got = as_tensor(out, "", expected)
    except Failure:
        return expected  # tensor_result names what is wrong with it
    lo, hi = x.min(), x.max()
    if got.shape != expected.shape or hi == lo:
        return expected
    step = (hi - lo) / (2**bits - 1)
    slack = 8 * torch.finfo(torch.float32).eps * float(max(lo.abs(), hi.abs(), step))
    code = (x - lo) / step
    at_tie = ((code - code.floor()) - 0.5).abs() * step <= slack
    below, above = lo + code.floor() * step, lo + code.ceil() * step
    on_a_level = ((got - below).abs() <= atol) | ((got - above).abs() <= atol)
    return torch.where(at_tie & on_a_level, got, expected)


def quantize(fn, *, time_limit_s=None):
    """Check ``fn(x (P,), bits) -> reconstruction (P,)``, min-max uniform quantization,
    against :func:`dmlbook.compression.quantize`; then FedAvg whose server averages the
    clients' quantized updates or parameters, and the two step errors compared."""
    hand = [(torch.tensor([0., 1., 2., 3.]), 2, "four values on the four levels of 2 bits"),
            (torch.tensor([0., 0.4, 0.6, 3.]), 1, "1 bit: each entry to min or max"),
            (torch.tensor([-1., -0.2, 0.7, 2.]), 2, "a range that does not start at 0"),
            (torch.tensor([5., 5., 5.]), 3, "all equal: nothing to quantize")]

    def random_cases(fn):
        rng, gen = seeded("quantize")
        for k in range(20):
            P, bits = int(rng.integers(2, 200)), 1 + k % 8  # every width 1 .. 8 bits
            x = torch.randn(P, generator=gen) * float(10 ** rng.uniform(-3, 2)) \
                + float(rng.normal(0, 5))
            _quantize_case(fn, x, bits, f"random case {k + 1} of 36")
        for k in range(20, 36):  # 9 to 16 bits, each twice: codes past a byte
            P, bits = int(rng.integers(2, 200)), 9 + k % 8
            x = torch.randn(P, generator=gen) * float(10 ** rng.uniform(-1, 1))
            _quantize_case(fn, x, bits, f"random case {k + 1} of 36")
        return "36 seeded random vectors, every width from 1 to 16 bits"

    def simulator(fn):
        errors = {}
        for send in ("update", "parameters"):
            def aggregate(server, payloads, n_examples, send=send):
                sent = torch.stack([_quantize_case(fn, row, 4, f"client {k}'s {send}, 4 bits")
                                    for k, row in enumerate(payloads)])
                return server + sent.mean(0) if send == "update" else sent.mean(0)

            kw = dict(n_clients=4, rounds=2, local_steps=2, model="logreg", send=send,
                      progress=False)
            errors[send] = float(torch.tensor(run_fedavg(aggregate=aggregate, **kw)
                                              .step_error).mean())
        return (f"inside dmlbook.federated.run_fedavg with 4-bit payloads the server's step "
                f"is off by {errors['update']:.2g} of its length when clients send updates, "
                f"{errors['parameters']:.2g} when they send parameters")

    return stages("quantize", fn, each(_quantize_case, hand, "4 hand-worked cases"),
                  random_cases, simulator, time_limit_s=time_limit_s)
