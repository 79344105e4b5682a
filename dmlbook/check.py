"""Checks for the workbook: a student's function, tested and run in the simulators.

Each check takes the student's function and returns a :class:`CheckResult`
(``passed``, ``feedback``); in a notebook the result shows itself as a short
report: the case that failed, the expected and the actual value, and a hint
that names the likely mistake (bits vs bytes, 10^9 vs 2^30, directed vs
undirected edges, ...). A check runs three kinds of tests, in this order,
and stops at the first failure:

1. hand-worked cases (the sheet's numbers among them);
2. properties every correct answer has (rounding, linearity, symmetry, ...);
3. a run of the student's function inside the package's simulators: the
   ring steps in data-parallel training, FedAvg's aggregation in FedAvg, the
   gossip merge in gossip averaging, the D-PSGD round in D-PSGD, the message
   count and the cloud bill against the messages and bytes a run recorded.

The ring all-reduce sends its messages through :func:`send`, so that the
check can count them and see where they went.
"""

from __future__ import annotations

import contextlib
import functools
import html
import math
import numbers
from dataclasses import dataclass

import numpy as np
import torch

from .ledger import Ledger
from .units import GIB

# ---------------------------------------------------------------------------
# Results and failures


@dataclass
class CheckResult:
    """What a check found. ``mistake`` names the likely mistake class (None if passed)."""

    name: str
    passed: bool
    feedback: str
    mistake: str | None = None

    def __repr__(self) -> str:
        return self.feedback

    def _repr_html_(self) -> str:
        colour, border = ("#e8f5e9", "#2e7d32") if self.passed else ("#fff3e0", "#ef6c00")
        return (f'<div class="dmlbook-check" style="background:{colour};'
                f'border-left:4px solid {border};padding:0.5em 1em;">'
                f'<pre style="white-space:pre-wrap;margin:0;background:none;">'
                f'{html.escape(self.feedback)}</pre></div>')


class _Failure(Exception):
    """One failed case: what was tried, what was expected, what came back, and why."""

    def __init__(self, case: str, *, expected=None, actual=None, mistake: str = "wrong value",
                 hint: str = "", show_values: bool = True):
        super().__init__(case)
        self.case, self.expected, self.actual = case, expected, actual
        self.mistake, self.hint, self.show_values = mistake, hint, show_values


def _short(value) -> str:
    """A value as the report shows it: tensors rounded and cut short."""
    if isinstance(value, torch.Tensor):
        with torch.no_grad():
            text = np.array2string(value.detach().cpu().double().numpy(), precision=4,
                                   threshold=12, edgeitems=3, suppress_small=True)
        text = " ".join(text.split())  # one line
        return f"tensor of shape {tuple(value.shape)}: {text}"
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:.10g}"
    if isinstance(value, (list, tuple)) and len(value) > 6:
        return f"{type(value).__name__} of length {len(value)}"
    return repr(value)


def _report_failure(name: str, failure: _Failure, done: list[str]) -> str:
    lines = [f"✗ {name}: not yet.", f"Case: {failure.case}"]
    if failure.show_values:
        lines += [f"  expected: {_short(failure.expected)}",
                  f"  got:      {_short(failure.actual)}"]
    if failure.hint:
        lines.append(f"Hint ({failure.mistake}): {failure.hint}")
    if done:
        lines.append("Already passed: " + "; ".join(done) + ".")
    return "\n".join(lines)


def _run(name: str, fn, stages) -> CheckResult:
    """Run ``stages`` (label, function) in order; stop at the first failure."""
    if not callable(fn):
        return CheckResult(name, False, f"✗ {name}: pass your function itself, e.g. "
                           f"check.{name}(my_function), not {_short(fn)}.", "not a function")
    done: list[str] = []
    for label, stage in stages:
        try:
            summary = stage(fn)
        except _Failure as failure:
            return CheckResult(name, False, _report_failure(name, failure, done),
                               failure.mistake)
        except Exception as err:  # e.g. a result the simulator cannot use
            failure = _Failure(f"the {label} stage", mistake="an error", show_values=False,
                               hint=f"running your function there raised "
                                    f"{type(err).__name__}: {err}")
            return CheckResult(name, False, _report_failure(name, failure, done), "an error")
        done.append(summary or label)
    return CheckResult(name, True, f"✓ {name}: passed. " + "; ".join(done) + ".")


def _call(fn, case: str, *args):
    """Call the student's function; an exception or a missing return becomes a failure."""
    try:
        out = fn(*args)
    except Exception as err:  # the student's code: any error is feedback, not a crash
        raise _Failure(case, mistake="an error", show_values=False,
                       hint=f"your function raised {type(err).__name__}: {err}") from None
    if out is None or out is Ellipsis:
        raise _Failure(case, expected="a value", actual=out, mistake="an empty stub",
                       hint="your function returned nothing: replace `...` by the body "
                            "and `return` the result.")
    return out


def _args(names, values) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in zip(names, values))


# ---------------------------------------------------------------------------
# Numbers: a wrong answer's ratio to the right one often names the mistake


def _close(a, b, rel=1e-9) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)


def _ratio_hint(expected: float, actual: float, known) -> tuple[str, str] | None:
    """The first ``(mistake, hint)`` of ``known`` whose factor maps expected to actual."""
    if expected == 0:
        return None
    for factor, mistake, hint in known:
        if factor and _close(actual, expected * factor, rel=2e-3):
            return mistake, hint
    return None


_BITS_BYTES = ("bits vs bytes", "one byte is 8 bits; check which quantities are in bits and "
                                "which in bytes, and convert exactly once.")
_DECIMAL_BINARY = ("10^9 vs 2^30", "network speeds use decimal prefixes (1 Gbit/s = 10^9 "
                                   "bit/s), cloud prices binary ones (1 GiB = 2^30 bytes).")


def _unit_mistakes():
    return [(8, *_BITS_BYTES), (1 / 8, *_BITS_BYTES),
            (2**30 / 10**9, *_DECIMAL_BINARY), (10**9 / 2**30, *_DECIMAL_BINARY),
            (1024 / 1000, *_DECIMAL_BINARY), (1000 / 1024, *_DECIMAL_BINARY)]


# ---------------------------------------------------------------------------
# Exercise 1: participants


_PARTICIPANT_ARGS = ("n_params", "bits_per_param", "link_bps", "time_limit_s")


def _participants_expected(n_params, bits, link_bps, time_s) -> int:
    from fractions import Fraction

    return math.floor(Fraction(link_bps) * Fraction(time_s) / (n_params * bits))


def _participants_case(fn, args, label=""):
    case = f"participants({_args(_PARTICIPANT_ARGS, args)})" + (f", {label}" if label else "")
    expected = _participants_expected(*args)
    actual = _call(fn, case, *args)
    if isinstance(actual, bool) or not isinstance(actual, numbers.Real):
        raise _Failure(case, expected=expected, actual=actual, mistake="not a number",
                       hint="return the number of participants as an int.")
    if actual == expected:
        if isinstance(actual, numbers.Integral):
            return
        raise _Failure(case, expected=expected, actual=actual, mistake="not a whole number",
                       hint="participants come in whole numbers: return an int (int(...)).")
    n_params, bits, link_bps, time_s = args
    if not isinstance(actual, numbers.Integral) and math.isfinite(actual) and (
            math.floor(actual) == expected or round(actual) == expected):
        raise _Failure(case, expected=expected, actual=actual, mistake="rounding",
                       hint="a participant gets the whole model in time or not at all: "
                            "return a whole number, rounded down (int(... // ...)).")
    if not math.isfinite(actual):
        raise _Failure(case, expected=expected, actual=actual, mistake="not a number",
                       hint="return a finite whole number.")
    if abs(actual - expected) == 1:
        raise _Failure(case, expected=expected, actual=actual, mistake="rounding",
                       hint="off by one: round down (floor), not up or to the nearest; "
                            "a model that fits exactly still counts.")
    known = _unit_mistakes() + [
        (1 / time_s, "forgot the time limit",
         "the link moves link_bps * time_limit_s bits within the limit."),
        (time_s, "seconds", "multiply the rate by the time limit, do not divide by it."),
        (bits, "forgot bits per parameter", "a model is n_params * bits_per_param bits."),
        (1 / bits, "forgot bits per parameter", "a model is n_params * bits_per_param bits.")]
    found = _ratio_hint(expected, actual, known)
    if found is None and actual > 0 and expected > 0 and _close(
            actual, (n_params * bits) / (link_bps * time_s), rel=2e-3):
        found = ("fraction upside down", "participants = link_bps * time_limit_s / model bits.")
    mistake, hint = found or ("wrong value", "n participants fit when n * n_params * "
                                             "bits_per_param <= link_bps * time_limit_s.")
    raise _Failure(case, expected=expected, actual=actual, mistake=mistake, hint=hint)


def participants(fn) -> CheckResult:
    """Check ``fn(n_params, bits_per_param, link_bps, time_limit_s) -> int``.

    The number of participants one link serves: each needs one whole model.
    """
    hand = [((85098, 32, 10**9, 60), "the sheet's download link (1 Gbit/s)"),
            ((85098, 32, 10**8, 60), "the sheet's upload link (100 Mbit/s)"),
            ((85098, 16, 10**8, 60), "16-bit parameters"),
            ((1000, 8, 16_000, 1), "a model that fits exactly twice"),
            ((10**6, 32, 10**6, 1), "a model too big for the link: 0")]

    def hand_cases(fn):
        for args, label in hand:
            _participants_case(fn, args, label)
        return f"{len(hand)} hand-worked cases"

    def properties(fn):
        rng = np.random.default_rng(0)
        for _ in range(30):
            args = (int(rng.integers(1, 10**7)), int(rng.choice([8, 16, 32, 64])),
                    int(rng.choice([10**6, 10**7, 10**8, 10**9])) * int(rng.integers(1, 10)),
                    int(rng.integers(1, 600)))
            _participants_case(fn, args, "a random case")
        return "30 random cases rounded down correctly"

    def simulator(fn):
        from .bandwidth import transfer_times

        for (n_params, bits, link_bps, time_s), label in hand[:3]:
            n = _call(fn, label, n_params, bits, link_bps, time_s)
            at = transfer_times(n_params, max(n, 1), bits_per_param=bits,
                                download_bps=link_bps, upload_bps=link_bps).upload_s
            over = transfer_times(n_params, n + 1, bits_per_param=bits,
                                  download_bps=link_bps, upload_bps=link_bps).upload_s
            if not (at <= time_s < over):
                raise _Failure(f"dmlbook.bandwidth.transfer_times with your {n} participants, "
                               f"{label}", expected=f"<= {time_s} s, and > {time_s} s for one more",
                               actual=f"{at:.6g} s, and {over:.6g} s for one more",
                               mistake="wrong value", hint="the count must fill the link.")
        return "dmlbook.bandwidth's transfer times agree (one more participant would not fit)"

    return _run("participants", fn, [("hand", hand_cases), ("properties", properties),
                                     ("simulator", simulator)])


# ---------------------------------------------------------------------------
# Exercise 2: download cost


_COST_ARGS = ("n_params", "rounds", "clients_per_round", "usd_per_gib", "bytes_per_param")


def _cost_expected(n_params, rounds, clients, usd_per_gib, bytes_per_param) -> float:
    return rounds * clients * n_params * bytes_per_param / GIB * usd_per_gib


def _cost_case(fn, args, label="", expected=None):
    case = f"download_cost({_args(_COST_ARGS, args)})" + (f", {label}" if label else "")
    expected = _cost_expected(*args) if expected is None else expected
    actual = _call(fn, case, *args)
    if isinstance(actual, bool) or not isinstance(actual, numbers.Real):
        try:
            actual = float(actual)  # a 0-d tensor or array is fine
        except (TypeError, ValueError):
            raise _Failure(case, expected=expected, actual=actual, mistake="not a number",
                           hint="return the cost in US dollars as a float.") from None
    if _close(actual, expected, rel=1e-6):
        return
    n_params, rounds, clients, usd, bpp = args
    known = _unit_mistakes() + [
        (1024, "GiB vs MiB", "the price is per GiB: 2^30 bytes, not 2^20."),
        (1 / 1024, "GiB vs MiB", "the price is per GiB: 2^30 bytes, not 2^40."),
        (2, "uploads are free", "only the downloads from the cloud are billed, once per "
                                "client per round."),
        (1 / rounds, "forgot the rounds", "every round, every participating client "
                                          "downloads the model again."),
        (1 / clients, "forgot the clients", "each participating client downloads its own "
                                            "copy of the model."),
        (1 / bpp, "forgot bytes per parameter", "a model is n_params * bytes_per_param "
                                                "bytes.")]
    mistake, hint = _ratio_hint(expected, actual, known) or (
        "wrong value", "cost = rounds * clients * n_params * bytes_per_param / 2^30 * price.")
    raise _Failure(case, expected=expected, actual=actual, mistake=mistake, hint=hint)


def download_cost(fn) -> CheckResult:
    """Check ``fn(n_params, rounds, clients_per_round, usd_per_gib, bytes_per_param) -> float``.

    US dollars a cloud bills for FL's model downloads (the price is per GiB).
    """
    hand = [((4_950_544, 1000, 200, 0.03, 4), "the sheet's case (about 110.65 $)"),
            ((2**28, 1, 1, 1.0, 4), "one GiB at 1 $/GiB: 1 $"),
            ((1000, 10, 5, 0.09, 2), "16-bit parameters")]

    def hand_cases(fn):
        for args, label in hand:
            _cost_case(fn, args, label)
        return f"{len(hand)} hand-worked cases"

    def properties(fn):
        base = (1_000_000, 10, 20, 0.05, 4)
        one = _call(fn, "the base case", *base)
        for i, name in ((1, "rounds"), (2, "clients_per_round"), (3, "usd_per_gib")):
            doubled = list(base)
            doubled[i] *= 2
            _cost_case(fn, tuple(doubled), f"twice the {name}: twice the cost",
                       expected=2 * float(one))
        return "the cost doubles with the rounds, the clients and the price"

    def simulator(fn):
        from .federated import run_fedavg

        n_clients, rounds, price = 3, 2, 0.03
        run = run_fedavg(n_clients=n_clients, rounds=rounds, local_steps=1, model="logreg",
                         progress=False)
        c = run.ledger.columns()
        billed = c["nbytes"][c["sender"] == n_clients].sum()  # the server's downloads
        n_params = run.server.numel()
        _cost_case(fn, (n_params, rounds, n_clients, price, 4),
                   "a FedAvg run's downloads, read from its ledger",
                   expected=float(billed) / GIB * price)
        return (f"a FedAvg run ({rounds} rounds, {n_clients} clients) billed from its "
                f"ledger ({int(billed):,} bytes downloaded) agrees")

    return _run("download_cost", fn, [("hand", hand_cases), ("properties", properties),
                                      ("simulator", simulator)])


# ---------------------------------------------------------------------------
# Exercise 3: ring all-reduce, and the network its messages travel on


@dataclass
class Message:
    """One message of the workbook's network: who sent how many bytes to whom."""

    src: int
    dst: int
    nbytes: int
    numel: int


class Network:
    """Records every message sent with :func:`send` while it is active."""

    def __init__(self):
        self.messages: list[Message] = []

    def send(self, src: int, dst: int, tensor: torch.Tensor) -> torch.Tensor:
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"send(src, dst, tensor) sends a torch tensor, got {_short(tensor)}")
        self.messages.append(Message(int(src), int(dst), tensor.numel() * tensor.element_size(),
                                     tensor.numel()))
        return tensor.detach().clone()


_network = Network()  # the default network, outside any check


def send(src: int, dst: int, tensor: torch.Tensor) -> torch.Tensor:
    """Send ``tensor`` from node ``src`` to node ``dst``; returns the copy ``dst`` receives.

    Every call is one message. The copy is independent of ``tensor``: the
    receiver may change it without touching the sender's data.
    """
    return _network.send(src, dst, tensor)


@contextlib.contextmanager
def _recording():
    global _network
    previous, _network = _network, Network()
    try:
        yield _network
    finally:
        _network = previous


def _ring_inputs(n: int, P: int, seed: int, integer: bool = True):
    gen = torch.Generator().manual_seed(seed)
    if integer:  # small whole numbers: every sum is exact
        grads = torch.randint(-9, 10, (n, P), generator=gen).float()
    else:
        grads = torch.randn((n, P), generator=gen)
    return grads, [list(torch.tensor_split(grads[i], n)) for i in range(n)]


def _run_ring(fn, chunks, case):
    """The student's ring on copies of ``chunks``: its output and its messages."""
    copies = [[c.clone() for c in node] for node in chunks]
    with _recording() as net:
        out = _call(fn, case, copies)
    n = len(chunks)
    if not isinstance(out, (list, tuple)) or len(out) != n or any(
            not isinstance(node, (list, tuple)) or len(node) != n for node in out):
        raise _Failure(case, expected=f"a list of {n} lists of {n} tensors (node i's chunks)",
                       actual=_short(out), mistake="wrong shape",
                       hint="return every node's chunks: out[i][j] is node i's chunk j.")
    for i in range(n):
        for j in range(n):
            got = out[i][j]
            if not isinstance(got, torch.Tensor) or got.shape != chunks[i][j].shape:
                raise _Failure(case, expected=f"a tensor of shape {tuple(chunks[i][j].shape)}",
                               actual=_short(got), mistake="wrong shape",
                               hint=f"out[{i}][{j}] must be node {i}'s copy of chunk {j}.")
    return out, net.messages


def _ring_diagnosis(chunks, out, messages) -> tuple[str, str]:
    n = len(chunks)
    total = [sum(chunks[i][j] for i in range(n)) for j in range(n)]
    ok = [[torch.allclose(out[i][j], total[j], atol=1e-5) for j in range(n)] for i in range(n)]
    steps = 2 * n * (n - 1)
    if all(torch.allclose(out[i][j], total[j] / n, atol=1e-5)
           for i in range(n) for j in range(n)):
        return ("averaging instead of summing",
                "the all-reduce returns the sum of the chunks; the training loop divides by n.")
    wrong_way = [m for m in messages if m.dst != (m.src + 1) % n]
    if wrong_way:
        m = wrong_way[0]
        return ("ring direction", f"node {m.src} sent to node {m.dst}: in a ring node k only "
                                  f"sends to its successor (k + 1) % n.")
    if all(ok[k][(k + 1) % n] for k in range(n)) and len(messages) <= n * (n - 1):
        return ("missing all-gather", "after reduce-scatter node k holds only the finished "
                                      "chunk (k + 1) % n; n - 1 all-gather steps pass the "
                                      "finished chunks round the ring.")
    if len(messages) in (2 * n * (n - 2), n * (2 * n - 3), 2 * n * n, n * (2 * n - 1)):
        return ("off by one in the number of steps",
                f"each phase takes n - 1 = {n - 1} steps of n messages: "
                f"{steps} messages in all, you sent {len(messages)}.")
    return ("off by one in the ring's chunk index",
            "in reduce-scatter step s node k sends chunk (k - s) % n, the chunk it received and "
            "added to in the step before; in all-gather step s it sends chunk (k + 1 - s) % n.")


def _ring_case(fn, n, P, seed, label, integer=True):
    grads, chunks = _ring_inputs(n, P, seed, integer)
    case = (f"ring_allreduce on {n} nodes, {P} numbers each cut into {n} chunks of sizes "
            f"{[c.numel() for c in chunks[0]]}, {label}")
    out, messages = _run_ring(fn, chunks, case)
    total = grads.sum(0)
    for i in range(n):
        got = torch.cat(list(out[i]))
        if not torch.allclose(got, total, atol=1e-4, rtol=1e-5):
            mistake, hint = _ring_diagnosis(chunks, out, messages)
            raise _Failure(case + f": node {i}'s result", expected=total, actual=got,
                           mistake=mistake, hint=hint)
    steps = 2 * n * (n - 1)
    chunk_numels = sorted(c.numel() for c in chunks[0])
    if len(messages) != steps:
        mistake, hint = ("messages", f"a ring all-reduce sends 2 (n - 1) messages per node: "
                                     f"{steps}. Send every value a node uses with send(src, dst, "
                                     f"tensor); reading another node's chunks directly is not "
                                     f"allowed.")
        if len(messages) == n * n * (n - 1):
            mistake, hint = ("not a ring", "every node sent every chunk to every other node: a "
                                           "naive all-reduce. In a ring node k only sends to "
                                           "(k + 1) % n, one chunk per step.")
        raise _Failure(case + ": messages sent", expected=steps, actual=len(messages),
                       mistake=mistake, hint=hint)
    wrong_way = [m for m in messages if m.dst != (m.src + 1) % n]
    if wrong_way:
        m = wrong_way[0]
        raise _Failure(case + ": where the messages went",
                       expected=f"node {m.src} sends to node {(m.src + 1) % n}",
                       actual=f"node {m.src} sent to node {m.dst}", mistake="ring direction",
                       hint="in a ring node k only sends to its successor (k + 1) % n.")
    too_big = [m for m in messages if m.numel > chunk_numels[-1]]
    if too_big:
        raise _Failure(case + ": message size", expected=f"one chunk (<= {chunk_numels[-1]} "
                       f"numbers)", actual=f"{too_big[0].numel} numbers", mistake="not a ring",
                       hint="each message of a ring all-reduce carries one chunk, 1/n of the model.")
    return messages


def _ring_training(fn, *, n_workers, rounds, lr, batch_size, seed):
    """Data-parallel SGD whose gradients are summed by ``fn``: parameters per round, ledger."""
    from .engine import Nodes, prepare, seeded_generator

    module, _, node_data, _, _ = prepare("mlp", n_workers, seed=seed)
    workers = Nodes(module, n_workers)
    generator = seeded_generator(seed)
    params = workers.params[0].clone()
    trajectory, ledger = [params.clone()], Ledger(n_workers)
    for r in range(1, rounds + 1):
        grads = workers.gradients(*node_data.batch(generator, batch_size))
        chunks = [list(torch.tensor_split(grads[w], n_workers)) for w in range(n_workers)]
        out, messages = _run_ring(fn, chunks, f"round {r} of data-parallel training")
        for m in messages:
            ledger.record(r, m.src, m.dst, m.nbytes)
        summed = torch.cat(list(out[0]))
        params = params - lr * summed / n_workers
        workers.params[:] = params
        trajectory.append(params.clone())
    return torch.stack(trajectory), ledger


@functools.lru_cache(maxsize=2)
def _gloo_allreduce_snapshots(n_workers, rounds, lr, batch_size, seed):
    """Parameters per round of data-parallel SGD whose gradients torch.distributed's
    all_reduce (gloo, one process per worker) sums."""
    from .distributed import run_dpsgd_distributed

    return run_dpsgd_distributed(n_workers, algorithm="allreduce", rounds=rounds, lr=lr,
                                 batch_size=batch_size, seed=seed).snapshots


def ring_allreduce(fn, *, torch_distributed: bool = False) -> CheckResult:
    """Check ``fn(chunks)``, a ring all-reduce; ``chunks[i][j]`` is node i's chunk j.

    ``fn`` returns every node's chunks after the all-reduce (each the sum
    over the nodes) and sends every message with :func:`send`. The check
    counts the messages (``2 n (n - 1)``, each to the successor, each one
    chunk), then sums the gradients of data-parallel training with ``fn`` and
    compares the parameters with :func:`dmlbook.allreduce.train_data_parallel`'s
    ring, which the test suite checks against ``torch.distributed``'s
    all_reduce. With ``torch_distributed=True`` it also compares them with a
    fresh run of ``all_reduce`` in 4 gloo processes (about a minute).
    """
    cases = [(2, 4, 0, "small whole numbers"), (3, 6, 1, "small whole numbers"),
             (4, 10, 2, "chunks of unequal sizes"), (5, 23, 3, "random numbers")]

    def hand_cases(fn):
        for n, P, seed, label in cases:
            _ring_case(fn, n, P, seed, label, integer=label != "random numbers")
        return (f"{len(cases)} cases with 2 to 5 nodes, each with 2 (n - 1) messages of one chunk "
                f"to the successor")

    def properties(fn):
        _, chunks = _ring_inputs(4, 8, 7)
        out, _ = _run_ring(fn, chunks, "4 nodes: every node ends with the same chunks")
        for i in range(1, 4):
            for j in range(4):
                if not torch.equal(out[i][j], out[0][j]):
                    raise _Failure(f"4 nodes: node {i}'s chunk {j} against node 0's",
                                   expected=out[0][j], actual=out[i][j], mistake="nodes disagree",
                                   hint="after the all-gather every node holds the same chunks.")
        return "every node ends with the same chunks"

    def simulator(fn):
        from .allreduce import train_data_parallel

        kw = dict(n_workers=4, rounds=3, lr=0.3, batch_size=32, seed=0)
        ours, ledger = _ring_training(fn, **kw)
        engine = train_data_parallel("ring", progress=False, **kw)
        reference = torch.stack(engine.params)
        diff = float((ours - reference).abs().max())
        if diff > 1e-5:
            raise _Failure("3 rounds of data-parallel SGD (4 workers) with your ring",
                           expected=reference[-1], actual=ours[-1], mistake="wrong value",
                           hint=f"the parameters differ by up to {diff:.3g} from the engine's "
                                f"ring all-reduce.")
        if ledger.totals() != engine.ledger.totals():
            raise _Failure("3 rounds of data-parallel SGD: messages and bytes",
                           expected=engine.ledger.totals(), actual=ledger.totals(),
                           mistake="messages", hint="the engine's ring sends one chunk per "
                                                    "message, 2 (n - 1) per node per round.")
        summary = (f"3 rounds of data-parallel SGD with your ring equal the engine's ring "
                   f"(max difference {diff:.1e}, the same {ledger.totals().sent} messages and "
                   f"{ledger.totals().bytes_sent:,} bytes)")
        if torch_distributed:
            real = _gloo_allreduce_snapshots(4, 3, 0.3, 32, 0)
            real_diff = float((ours - real).abs().max())
            if real_diff > 1e-5:
                raise _Failure("3 rounds against torch.distributed's all_reduce (gloo)",
                               expected=real[-1], actual=ours[-1], mistake="wrong value",
                               hint=f"the parameters differ by up to {real_diff:.3g}.")
            summary += (f", and torch.distributed's all_reduce in 4 gloo processes "
                        f"(max difference {real_diff:.1e})")
        return summary

    return _run("ring_allreduce", fn, [("hand", hand_cases), ("properties", properties),
                                       ("simulator", simulator)])


# ---------------------------------------------------------------------------
# Tensors: a wrong answer that equals a known wrong formula names the mistake


def _tensor_result(case, actual, expected, inputs_changed, candidates, default_hint):
    """Fail unless ``actual`` equals ``expected``; name the mistake from ``candidates``."""
    if not isinstance(actual, torch.Tensor):
        try:
            actual = torch.as_tensor(actual, dtype=expected.dtype)
        except (TypeError, ValueError, RuntimeError):
            raise _Failure(case, expected=expected, actual=actual, mistake="not a tensor",
                           hint="return a torch tensor.") from None
    if actual.shape != expected.shape:
        hint = f"return a tensor of shape {tuple(expected.shape)}."
        mistake = "wrong shape"
        for name, wrong, why in candidates:
            if wrong.shape == actual.shape and torch.allclose(actual.double(), wrong.double(),
                                                               atol=1e-6):
                mistake, hint = name, why
                break
        raise _Failure(case, expected=expected, actual=actual, mistake=mistake, hint=hint)
    if torch.allclose(actual.double(), expected.double(), atol=1e-6, rtol=1e-6):
        if inputs_changed:
            raise _Failure(case, expected="your inputs left as they were",
                           actual="your function changed " + " and ".join(inputs_changed),
                           mistake="changed its inputs in place",
                           hint="build a new tensor (x = a + b) rather than updating an input "
                                "(a += b): the caller still needs the old values.")
        return
    for name, wrong, why in candidates:
        if wrong.shape == actual.shape and torch.allclose(actual.double(), wrong.double(),
                                                           atol=1e-6):
            raise _Failure(case, expected=expected, actual=actual, mistake=name, hint=why)
    raise _Failure(case, expected=expected, actual=actual, mistake="wrong value",
                   hint=default_hint)


def _call_tensors(fn, case, *args):
    """Call ``fn`` on copies; also say which inputs it changed in place."""
    copies = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
    out = _call(fn, case, *copies)
    changed = [i for i, (a, c) in enumerate(zip(args, copies))
               if isinstance(a, torch.Tensor) and not torch.equal(a, c)]
    return out, changed


# ---------------------------------------------------------------------------
# Exercise 4: FedAvg's aggregation


def _fedavg_case(fn, server, clients, label):
    case = f"fedavg(server_params={_short(server)}, client_params={_short(clients)}), {label}"
    out, changed = _call_tensors(fn, case, server, clients)
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
    _tensor_result(case, out, clients.mean(0), [names[i] for i in changed], candidates,
                   "the new server model is client_params.mean(dim=0).")


def fedavg(fn) -> CheckResult:
    """Check ``fn(server_params (P,), client_params (m, P)) -> new server params (P,)``.

    FedAvg where the clients send their new parameters: the server takes their average.
    """
    hand = [(torch.tensor([0., 0., 0.]), torch.tensor([[1., 2., 3.], [3., 4., 5.]]),
             "two clients"),
            (torch.tensor([10., 10.]), torch.tensor([[1., 1.], [2., 2.], [6., 0.]]),
             "three clients"),
            (torch.tensor([5., -5., 1., 0.]), torch.tensor([[1., 2., 3., 4.]]), "one client")]

    def hand_cases(fn):
        for server, clients, label in hand:
            _fedavg_case(fn, server, clients, label)
        return f"{len(hand)} hand-worked cases"

    def properties(fn):
        gen = torch.Generator().manual_seed(0)
        server, clients = torch.randn(7, generator=gen), torch.randn((5, 7), generator=gen)
        _fedavg_case(fn, server, clients, "5 random clients")
        _fedavg_case(fn, server, clients.flip(0), "the same clients in another order")
        return "random clients in any order; inputs unchanged"

    def simulator(fn):
        from .engine import Nodes, prepare, seeded_generator
        from .federated import run_fedavg

        kw = dict(n_clients=4, rounds=3, local_steps=2, lr=0.1, batch_size=32, seed=0)
        module, _, node_data, _, _ = prepare("mlp", kw["n_clients"], seed=0)
        clients = Nodes(module, kw["n_clients"])
        server = clients.params[0].clone()
        generator = seeded_generator(0)
        for r in range(1, kw["rounds"] + 1):
            clients.params = server.expand(kw["n_clients"], -1).clone()
            for _ in range(kw["local_steps"]):
                clients.sgd_step(*node_data.batch(generator, kw["batch_size"]), kw["lr"])
            server = torch.as_tensor(_call(fn, f"round {r} of FedAvg", server.clone(),
                                           clients.params.clone()))
        reference = run_fedavg(send="parameters", progress=False, **kw).server
        diff = float((server - reference).abs().max()) if server.shape == reference.shape \
            else math.inf
        if diff > 1e-5:
            raise _Failure("3 rounds of FedAvg (4 clients, 2 local steps) with your aggregation",
                           expected=reference, actual=server, mistake="wrong value",
                           hint="the server model differs from dmlbook.federated.run_fedavg's.")
        return (f"3 rounds of FedAvg with your aggregation equal dmlbook.federated.run_fedavg "
                f"(max difference {diff:.1e})")

    return _run("fedavg", fn, [("hand", hand_cases), ("properties", properties),
                               ("simulator", simulator)])


# ---------------------------------------------------------------------------
# Exercise 5: gossip learning's merge


def _merge_case(fn, local, received, label):
    case = f"gossip_merge(x_local={_short(local)}, x_received={_short(received)}), {label}"
    out, changed = _call_tensors(fn, case, local, received)
    changed_received = ["x_received"] if 1 in changed else []
    candidates = [
        ("replacing instead of averaging", received, "keep half of your own model: average "
                                                     "the received model with it."),
        ("ignoring the received model", local, "the received model must be averaged in."),
        ("summing instead of averaging", local + received, "divide the sum by 2."),
        ("operator precedence", local + received / 2, "write (x_local + x_received) / 2."),
        ("operator precedence", local / 2 + received, "write (x_local + x_received) / 2.")]
    _tensor_result(case, out, (local + received) / 2, changed_received, candidates,
                   "the merge is the plain average (x_local + x_received) / 2.")


def _gossip_averaging(merge, values: torch.Tensor, cycles: int, seed: int):
    """Pairwise gossip averaging where both nodes of an exchange apply ``merge``.

    Every cycle each node, in random order, sends its model to a peer
    (``PeerSampler``) and gets the peer's back; both merge. Returns the final
    models, the largest change of the sum over all exchanges, and the ledger.
    """
    from .gossip import PeerSampler

    n = len(values)
    rng = np.random.default_rng(seed)
    sampler = PeerSampler(n, "uniform", rng, seed)
    x = values.clone()
    ledger, total, drift = Ledger(n), values.sum(0), 0.0
    nbytes = values[0].numel() * values.element_size()
    for cycle in range(cycles):
        for i in rng.permutation(n):
            j = sampler.next(int(i))
            ledger.record(cycle, [i, j], [j, i], nbytes)
            xi, xj = x[i].clone(), x[j].clone()
            x[j] = torch.as_tensor(_call(merge, f"cycle {cycle}: node {j} merges node {i}'s "
                                                f"model", xj, xi.clone()))
            x[i] = torch.as_tensor(_call(merge, f"cycle {cycle}: node {i} merges node {j}'s "
                                                f"reply", xi, xj.clone()))
            drift = max(drift, float((x.sum(0) - total).abs().max()))
    return x, drift, ledger


def gossip_merge(fn) -> CheckResult:
    """Check ``fn(x_local, x_received) -> new local model`` (tensors of one shape).

    The passive thread of gossip learning: on receiving a model, average it in.
    """
    hand = [(torch.tensor([0., 4.]), torch.tensor([2., 0.]), "two numbers"),
            (torch.tensor([1., -3., 5.]), torch.tensor([3., 1., 5.]), "three numbers"),
            (torch.tensor([[1., 2.], [3., 4.]]), torch.tensor([[5., 6.], [7., 8.]]),
             "a 2 x 2 weight matrix")]

    def hand_cases(fn):
        for local, received, label in hand:
            _merge_case(fn, local, received, label)
        return f"{len(hand)} hand-worked cases"

    def properties(fn):
        gen = torch.Generator().manual_seed(0)
        a, b = torch.randn(6, generator=gen), torch.randn(6, generator=gen)
        _merge_case(fn, a, b, "random models")
        _merge_case(fn, b, a, "the same two models the other way round")
        _merge_case(fn, a, a.clone(), "a model merged with itself stays the same")
        return "symmetric, a model merged with itself unchanged, the message unchanged"

    def simulator(fn):
        from .reference import gossip_merge as reference_merge

        values = torch.randn((16, 5), generator=torch.Generator().manual_seed(1),
                             dtype=torch.float64) * 3 + 2
        ours, drift, ledger = _gossip_averaging(fn, values, cycles=30, seed=0)
        scale = float(values.abs().sum(0).max())
        if drift > 1e-9 * scale:
            raise _Failure("gossip averaging of 16 nodes' models with your merge: the sum over "
                           "all nodes", expected=values.sum(0), actual=ours.sum(0),
                           mistake="sum not preserved", hint="an exchange must move mass "
                           "between the two nodes, never create or destroy it: average.")
        reference, _, _ = _gossip_averaging(reference_merge, values, cycles=30, seed=0)
        diff = float((ours - reference).abs().max())
        spread = float((ours - values.mean(0)).abs().max())
        if diff > 1e-9 or spread > 1e-6:
            raise _Failure("gossip averaging of 16 nodes for 30 cycles: the nodes' models",
                           expected=reference[0], actual=ours[0], mistake="no consensus",
                           hint="with the plain average every node converges to the mean.")
        return (f"gossip averaging of 16 nodes ({ledger.totals().sent} messages) with your merge "
                f"keeps the sum (largest change {drift:.1e}) and every node reaches the "
                f"average (within {spread:.1e})")

    return _run("gossip_merge", fn, [("hand", hand_cases), ("properties", properties),
                                     ("simulator", simulator)])


# ---------------------------------------------------------------------------
# Exercise 6: D-PSGD's messages and one D-PSGD round


_MESSAGE_ARGS = ("n_nodes", "degree", "steps")


def _messages_case(fn, args, label, expected=None):
    case = f"dpsgd_messages({_args(_MESSAGE_ARGS, args)}), {label}"
    n, degree, steps = args
    expected = n * degree * steps if expected is None else expected
    actual = _call(fn, case, *args)
    if isinstance(actual, bool) or not isinstance(actual, numbers.Real):
        raise _Failure(case, expected=expected, actual=actual, mistake="not a number",
                       hint="return the number of messages as an int.")
    if actual == expected:
        if not isinstance(actual, numbers.Integral):
            raise _Failure(case, expected=expected, actual=actual, mistake="not a whole number",
                           hint="messages come in whole numbers: return an int.")
        return
    allreduce = n * (n - 1)
    if expected and actual - expected == allreduce:
        raise _Failure(case, expected=expected, actual=actual, mistake="included the all-reduce",
                       hint=f"count only the D-PSGD steps; the final all-reduce's "
                            f"n (n - 1) = {allreduce} messages are not asked for here.")
    known = [
        (1 / 2, "directed vs undirected edges",
         "every edge carries two messages per step, one each way: n * degree, not n * degree / 2."),
        (2, "directed vs undirected edges",
         "n * degree already counts each edge twice (once from each end)."),
        ((steps + 1) / steps, "off by one in the steps", "count exactly `steps` exchanges."),
        ((steps - 1) / steps if steps > 1 else 0, "off by one in the steps",
         "count exactly `steps` exchanges."),
        (1 / steps if steps > 1 else 0, "forgot the steps", "every step sends again."),
        ((n - 1) / degree, "complete graph", "D-PSGD sends to the neighbours only: "
                                             "degree messages per node per step, not n - 1.")]
    mistake, hint = _ratio_hint(expected, actual, known) or (
        "wrong value", "each step, each node sends one message to each of its neighbours.")
    raise _Failure(case, expected=expected, actual=actual, mistake=mistake, hint=hint)


def dpsgd_messages(fn) -> CheckResult:
    """Check ``fn(n_nodes, degree, steps) -> int``: D-PSGD's messages, no all-reduce."""
    hand = [((128, 8, 50), "the sheet's case (before its all-reduce)"),
            ((4, 2, 1), "one step on a ring of 4 nodes"),
            ((10, 3, 7), "7 steps on a 3-regular graph"),
            ((16, 15, 3), "3 steps on the complete graph of 16 nodes")]

    def hand_cases(fn):
        for args, label in hand:
            _messages_case(fn, args, label)
        return f"{len(hand)} hand-worked cases"

    def properties(fn):
        _messages_case(fn, (12, 4, 0), "no steps: no messages")
        one = _call(fn, "(20, 6, 1)", 20, 6, 1)
        _messages_case(fn, (20, 6, 10), "ten steps: ten times one step's messages",
                       expected=10 * one if isinstance(one, numbers.Real) else None)
        return "no steps send nothing; the count grows linearly with the steps"

    def simulator(fn):
        from .dpsgd import run_dpsgd

        counted = []
        for n, degree, steps in ((8, 4, 3), (10, 3, 2), (6, 2, 4)):
            run = run_dpsgd(n_nodes=n, topology="regular", degree=degree, rounds=steps,
                            model="logreg", eval_every=steps, progress=False)
            _messages_case(fn, (n, degree, steps),
                           f"messages run_dpsgd recorded in its ledger", expected=run.messages)
            counted.append(run.messages)
        return (f"the counts equal the messages run_dpsgd sent in 3 runs "
                f"({', '.join(map(str, counted))})")

    return _run("dpsgd_messages", fn, [("hand", hand_cases), ("properties", properties),
                                       ("simulator", simulator)])


def _round_case(fn, params, W, grads, lr, label):
    case = (f"dpsgd_round(params={_short(params)}, W={_short(W)}, grads={_short(grads)}, "
            f"lr={lr}), {label}")
    out, changed = _call_tensors(fn, case, params, W, grads, lr)
    stepped = params - lr * grads
    candidates = [
        ("mixing before stepping", W @ params - lr * grads,
         "the sheet's order: first the local SGD step, then average the stepped models "
         "(W @ (params - lr * grads))."),
        ("forgot to mix", stepped, "after the step each node averages its neighbours' models: "
                                   "multiply by W."),
        ("forgot the step", W @ params, "each node first takes its SGD step: params - lr * grads."),
        ("W transposed", W.T @ stepped, "W[i, j] is the weight node i gives to node j: row i "
                                        "makes node i's new model, so W @ x, not W.T @ x."),
        ("gradient ascent", W @ (params + lr * grads), "a descent step subtracts lr * grads."),
        ("all-reduce instead of neighbours", stepped.mean(0).expand_as(stepped),
         "each node averages its neighbours' models with the weights W, not all nodes' models."),
        ("element-wise product", W * stepped if W.shape == stepped.shape else stepped[:0],
         "mixing is a matrix product: W @ x.")]
    names = ["params", "W", "grads", "lr"]
    _tensor_result(case, out, W @ stepped, [names[i] for i in changed], candidates,
                   "new params = W @ (params - lr * grads).")


def _dpsgd_with(fn, *, n_nodes, degree, rounds, lr, batch_size, seed):
    """D-PSGD whose rounds ``fn`` computes; the same batches as :func:`run_dpsgd`."""
    from .engine import Nodes, prepare, seeded_generator
    from .topology import make_topology

    topology = make_topology("regular", n_nodes, degree=degree, seed=seed)
    module, _, node_data, _, _ = prepare("mlp", n_nodes, seed=seed)
    nodes = Nodes(module, n_nodes)
    W = torch.tensor(topology.W, dtype=nodes.params.dtype)
    generator = seeded_generator(seed)
    for r in range(1, rounds + 1):
        grads = nodes.gradients(*node_data.batch(generator, batch_size))
        out = _call(fn, f"round {r} of D-PSGD", nodes.params.clone(), W.clone(), grads, lr)
        nodes.params = torch.as_tensor(out, dtype=nodes.params.dtype)
        if nodes.params.shape != grads.shape:
            raise _Failure(f"round {r} of D-PSGD", expected=f"shape {tuple(grads.shape)}",
                           actual=f"shape {tuple(nodes.params.shape)}", mistake="wrong shape",
                           hint="return one row of parameters per node.")
    return nodes.params


def dpsgd_round(fn) -> CheckResult:
    """Check ``fn(params (n, P), W (n, n), grads (n, P), lr) -> new params (n, P)``.

    The sheet's order: every node steps on its own gradient, then mixes.
    """
    W3 = torch.tensor([[0.5, 0.5, 0.0], [0.25, 0.5, 0.25], [0.0, 0.75, 0.25]])
    hand = [(torch.tensor([[1., 2.], [3., 4.], [5., 6.]]), W3,
             torch.tensor([[2., 0.], [0., 2.], [4., -2.]]), 0.5,
             "3 nodes, a row-stochastic W that is not symmetric"),
            (torch.tensor([[0.], [8.]]), torch.tensor([[0.5, 0.5], [0.5, 0.5]]),
             torch.tensor([[1.], [3.]]), 1.0, "2 nodes averaging fully"),
            (torch.tensor([[1., 1., 1.], [2., 2., 2.]]), torch.eye(2),
             torch.tensor([[1., 0., -1.], [0., 2., 0.]]), 0.1, "W = I: plain local SGD")]

    def hand_cases(fn):
        for params, W, grads, lr, label in hand:
            _round_case(fn, params, W, grads, lr, label)
        return f"{len(hand)} hand-worked cases"

    def properties(fn):
        from .topology import make_topology

        gen = torch.Generator().manual_seed(0)
        W = torch.tensor(make_topology("ring", 6, degree=2).W, dtype=torch.float32)
        params, grads = torch.randn((6, 4), generator=gen), torch.randn((6, 4), generator=gen)
        _round_case(fn, params, W, grads, 0.1, "6 nodes on a ring, random values")
        _round_case(fn, params, W, grads, 0.0, "lr = 0: only the mixing")
        return "a ring of 6 nodes, with and without a step; inputs unchanged"

    def simulator(fn):
        from .dpsgd import run_dpsgd

        kw = dict(n_nodes=8, degree=4, rounds=3, lr=0.1, batch_size=32, seed=0)
        ours = _dpsgd_with(fn, **kw)
        reference = run_dpsgd(topology="regular", progress=False, **kw).nodes.params
        diff = float((ours - reference).abs().max())
        if diff > 1e-5:
            raise _Failure("3 rounds of D-PSGD (8 nodes, degree 4) with your round: node 0",
                           expected=reference[0], actual=ours[0], mistake="wrong value",
                           hint=f"the parameters differ by up to {diff:.3g} from "
                                f"dmlbook.dpsgd.run_dpsgd's.")
        return (f"3 rounds of D-PSGD on 8 nodes with your round equal dmlbook.dpsgd.run_dpsgd "
                f"(max difference {diff:.1e})")

    return _run("dpsgd_round", fn, [("hand", hand_cases), ("properties", properties),
                                    ("simulator", simulator)])


CHECKS = ("participants", "download_cost", "ring_allreduce", "fedavg", "gossip_merge",
          "dpsgd_messages", "dpsgd_round")
