"""Workbook 3: the ring all-reduce, its messages, and the data that went through them."""

from __future__ import annotations

import collections
import functools

import numpy as np
import torch

from ..allreduce import train_data_parallel
from ..messages import allreduce_messages
from .display import short
from .harness import Failure, _allclose, _equal, as_int, call, each, rng_for, stages
from .network import recording
from .reference import ring_allreduce as reference_ring  # taken now: rebinding it changes nothing

#: What the marking network adds to every value it carries (exact in float32).
MARK = 1 / 64


def _inputs(n: int, P: int, seed: int, integer: bool = True):
    gen = torch.Generator().manual_seed(seed)
    if integer:  # small whole numbers: every sum is exact
        grads = torch.randint(-9, 10, (n, P), generator=gen).float()
    else:
        grads = torch.randn((n, P), generator=gen)
    return grads, [list(torch.tensor_split(grads[i], n)) for i in range(n)]


def run_ring(fn, chunks, case, transform=None):
    """The student's ring on copies of ``chunks``: its output and its messages."""
    copies = [[c.clone() for c in node] for node in chunks]
    with recording(transform) as net:
        out = call(fn, case, copies)
    n = len(chunks)
    if not isinstance(out, (list, tuple)) or len(out) != n or any(
            not isinstance(node, (list, tuple)) or len(node) != n for node in out):
        raise Failure(case, expected=f"a list of {n} lists of {n} tensors (node i's chunks)",
                      actual=short(out), mistake="wrong shape",
                      hint="return every node's chunks: out[i][j] is node i's chunk j.")
    result = []
    for i in range(n):
        row = []
        for j in range(n):
            got = out[i][j]
            if not isinstance(got, torch.Tensor) or got.shape != chunks[i][j].shape \
                    or got.device.type == "meta":
                raise Failure(case, expected=f"a tensor of shape {tuple(chunks[i][j].shape)}",
                              actual=short(got), mistake="wrong shape",
                              hint=f"out[{i}][{j}] must be node {i}'s copy of chunk {j}.")
            row.append(torch.Tensor.as_subclass(got, torch.Tensor).detach()
                       .to("cpu", torch.float32))
        result.append(row)
    return result, list(net.messages)


def _steps_off_by_one(n: int, sent: int) -> tuple[str, str] | None:
    """The named mistake if ``sent`` is the count of a phase or two one step short or
    one step too long (n messages a step, n - 1 steps a phase)."""
    if sent in (2 * n * (n - 2), n * (2 * n - 3), 2 * n * n, n * (2 * n - 1)):
        return ("off by one in the number of steps",
                f"each phase takes n - 1 = {n - 1} steps of n messages: "
                f"{2 * n * (n - 1)} messages in all, you sent {sent}.")
    return None


def _no_messages(n: int) -> tuple[str, str]:
    steps = 2 * n * (n - 1)
    return ("messages", f"a ring all-reduce sends 2 (n - 1) messages per node: {steps}. Send "
                        f"every value a node uses with send(src, dst, tensor); reading another "
                        f"node's chunks directly is not allowed.")


def _sums_by_sender(messages, n: int) -> list[list[tuple[float, float]]]:
    sums = [[] for _ in range(n)]
    for m in messages:
        sums[m.src % n].append((m.total, m.moment))
    return sums


def _sent_as_reference(chunks, messages) -> bool:
    """Whether each node sent what the reference ring's node sends, in the same order."""
    n = len(chunks)
    with recording() as net:
        reference_ring(chunks)  # it works on copies
    ours, theirs = _sums_by_sender(messages, n), _sums_by_sender(net.messages, n)
    return all(len(a) == len(b) and np.allclose(a, b, rtol=1e-5, atol=1e-4)
               for a, b in zip(ours, theirs))


def _diagnosis(chunks, out, messages) -> tuple[str, str]:
    n = len(chunks)
    total = [sum(chunks[i][j] for i in range(n)) for j in range(n)]
    ok = [[_allclose(out[i][j], total[j], atol=1e-5) for j in range(n)] for i in range(n)]
    if all(_allclose(out[i][j], total[j] / n, atol=1e-5)
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
    if not messages:  # nothing sent: the result was computed around the network
        return _no_messages(n)
    if off_by_one := _steps_off_by_one(n, len(messages)):
        return off_by_one
    if _sent_as_reference(chunks, messages):
        return ("wrong value", "your messages are a right ring's, value for value: the chunk "
                               "indices and the additions are right. What you returned is not "
                               "what they delivered: return each node's chunks as the ring "
                               "left them, with nothing changed after it.")
    return ("off by one in the ring's chunk index",
            "in reduce-scatter step s node k sends chunk (k - s) % n, the chunk it received and "
            "added to in the step before; in all-gather step s it sends chunk (k + 1 - s) % n.")


def _case(fn, n, P, seed, label, integer=True):
    grads, chunks = _inputs(n, P, seed, integer)
    case = (f"ring_allreduce on {n} nodes, {P} numbers each cut into {n} chunks of sizes "
            f"{[c.numel() for c in chunks[0]]}, {label}")
    out, messages = run_ring(fn, chunks, case)
    total = grads.sum(0)
    for i in range(n):
        got = torch.cat(out[i])
        if not _allclose(got, total, atol=1e-4, rtol=1e-5):
            mistake, hint = _diagnosis(chunks, out, messages)
            raise Failure(case + f": node {i}'s result", expected=total, actual=got,
                          mistake=mistake, hint=hint, rtol=1e-5, atol=1e-4)
    return _ring_messages_checked(case, n, chunks, messages)


def _ring_messages_checked(case, n, chunks, messages):
    """``messages`` if they are a ring's: 2 n (n - 1), each to the successor, each one chunk."""
    steps = 2 * n * (n - 1)
    largest = max(c.numel() for c in chunks[0])
    if len(messages) != steps:
        mistake, hint = _no_messages(n)
        # On 3 nodes a naive all-reduce and a ring one step too long in each phase
        # both send 18: the naive one sends to other nodes than the successor.
        if len(messages) == n * n * (n - 1) and any(m.dst != (m.src + 1) % n
                                                    for m in messages):
            mistake, hint = ("not a ring", "every node sent every chunk to every other node: a "
                                           "naive all-reduce. In a ring node k only sends to "
                                           "(k + 1) % n, one chunk per step.")
        elif messages and (off_by_one := _steps_off_by_one(n, len(messages))):
            mistake, hint = off_by_one
        raise Failure(case + ": messages sent", expected=steps, actual=len(messages),
                      mistake=mistake, hint=hint)
    wrong_way = [m for m in messages if m.dst != (m.src + 1) % n]
    if wrong_way:
        m = wrong_way[0]
        raise Failure(case + ": where the messages went",
                      expected=f"node {m.src} sends to node {(m.src + 1) % n}",
                      actual=f"node {m.src} sent to node {m.dst}", mistake="ring direction",
                      hint="in a ring node k only sends to its successor (k + 1) % n.")
    # A sender is named as the direction check reads it: node -1 is node n - 1.
    sent_by = collections.Counter(m.src % n for m in messages)
    uneven = [k for k in range(n) if sent_by[k] != 2 * (n - 1)]
    if uneven:  # the count is right in all, so some node sent more than its share
        k = uneven[0]
        raise Failure(case + ": who sent the messages",
                      expected=f"every node sends 2 (n - 1) = {2 * (n - 1)}",
                      actual=f"node {k} sent {sent_by[k]}", mistake="not a ring",
                      hint="in a ring all-reduce every node sends one chunk in every step, "
                           "2 (n - 1) messages each, so that every link carries the same "
                           "share; a chain that starts every chunk at one node does not.")
    too_big = [m for m in messages if m.numel > largest]
    if too_big:
        raise Failure(case + ": message size", expected=f"one chunk (<= {largest} numbers)",
                      actual=f"{too_big[0].numel} numbers", mistake="not a ring",
                      hint="each message of a ring all-reduce carries one chunk, 1/n of the "
                           "model.")
    return messages


def _marked_case(fn, n, P, seed, label):
    """The network adds MARK to every value it carries. A chunk that travelled the ring
    carries n - 1 marks from reduce-scatter plus one per all-gather hop: node i's copy
    of a chunk has n - 1 + d marks, d its distance from the chunk's owner. A result
    computed around the messages has no marks."""
    grads, chunks = _inputs(n, P, seed)
    case = (f"ring_allreduce on {n} nodes ({label}) on a network that adds {MARK} to every "
            f"value it carries")
    out, messages = run_ring(fn, chunks, case, transform=lambda payload: payload + MARK)
    total = torch.tensor_split(grads.sum(0), n)
    for j in range(n):
        marks = []
        for i in range(n):
            extra = (out[i][j] - total[j]) / MARK
            whole = torch.round(extra)
            if out[i][j].numel() and (not _allclose(extra, whole, atol=1e-3)
                                      or whole.min() != whole.max()):
                raise Failure(case + f": node {i}'s chunk {j}", expected=f"the sum plus a "
                              f"whole number of marks", actual=out[i][j], mistake="messages",
                              hint="every value must arrive through send(): use what send "
                                   "returns, not the sender's chunk.")
            marks.append(int(whole.flatten()[0]) if out[i][j].numel() else n - 1)
        if sorted(marks) != list(range(n - 1, 2 * n - 1)) and out[0][j].numel():
            raise Failure(case + f": chunk {j}", expected=f"marks {n - 1} .. {2 * n - 2} "
                          f"(one node finishes the chunk, the others get it 1 .. {n - 1} "
                          f"hops later)", actual=f"marks {marks} at nodes 0 .. {n - 1}",
                          mistake="messages", hint="the data did not travel through the "
                          "messages you sent: add what send() returns in reduce-scatter, "
                          "and keep what it returns in all-gather.")
    # The ring's messages here too: a message sent to try the network is one too many.
    _ring_messages_checked(case, n, chunks, messages)


def _engine_allreduce(fn):
    """``fn`` as :func:`train_data_parallel`'s all-reduce: the gradients of the ring's
    members cut into chunks, the student's ring run on them, its messages recorded."""
    def allreduce(grads, ring, *, round, ledger, alive, faults):
        m = len(ring)
        chunks = [list(torch.tensor_split(grads[w].clone(), m)) for w in ring]
        out, messages = run_ring(fn, chunks, f"round {round} of data-parallel training")
        for k in range(1, m):
            for j in range(m):
                if not _equal(out[k][j], out[0][j]):
                    raise Failure(f"round {round} of data-parallel training: node {ring[k]}'s "
                                  f"chunk {j} against node {ring[0]}'s", expected=out[0][j],
                                  actual=out[k][j], mistake="nodes disagree",
                                  hint="after the all-gather every node holds the same chunks.")
        if messages:
            ledger.record(round, np.array([ring[msg.src % m] for msg in messages]),
                          np.array([ring[msg.dst % m] for msg in messages]),
                          np.array([msg.nbytes for msg in messages]))
        return torch.cat(out[0]).to(grads.dtype)
    return allreduce


@functools.lru_cache(maxsize=2)
def _gloo_snapshots(n_workers, rounds, lr, batch_size, seed):
    from ..distributed import run_dpsgd_distributed

    return run_dpsgd_distributed(n_workers, algorithm="allreduce", rounds=rounds, lr=lr,
                                 batch_size=batch_size, seed=seed).snapshots


def ring_allreduce(fn, *, torch_distributed: bool = False, time_limit_s=None):
    """Check ``fn(chunks)``, a ring all-reduce; ``chunks[i][j]`` is node i's chunk j.

    ``fn`` returns every node's chunks after the all-reduce (each the sum
    over the nodes) and sends every message with :func:`send`. The check
    counts the messages (``2 n (n - 1)``, each to the successor, each one
    chunk), runs the ring on a network that marks what it carries (so that
    data computed around the messages shows), then runs ``fn`` as the
    all-reduce of :func:`dmlbook.allreduce.train_data_parallel` and compares
    the parameters with its own ring's. With ``torch_distributed=True`` it
    also compares them with ``all_reduce`` in 4 gloo processes (about a
    minute; the time limit is lifted).
    """
    hand = each(_case, [(2, 4, 0, "small whole numbers"), (3, 6, 1, "small whole numbers"),
                        (4, 10, 2, "chunks of unequal sizes"),
                        (5, 23, 3, "random numbers", False)],
                "4 cases with 2 to 5 nodes, each with 2 (n - 1) messages of one chunk to the "
                "successor")

    def random_cases(fn):
        rng = rng_for("ring_allreduce")
        for k in range(12):
            n = int(rng.integers(2, 9))
            P = int(rng.integers(n, 6 * n))
            _case(fn, n, P, int(rng.integers(0, 10**6)), f"random case {k + 1} of 12")
        n = int(rng.integers(3, 7))
        _marked_case(fn, n, 3 * n + 1, int(rng.integers(0, 10**6)), "marked")
        _marked_case(fn, 2, 5, 11, "marked")
        return ("12 seeded random rings of 2 to 8 nodes; on a network that marks what it "
                "carries, every chunk arrived through your messages")

    def simulator(fn):
        kw = dict(n_workers=4, rounds=3, lr=0.3, batch_size=32, seed=0, progress=False)
        ours = train_data_parallel("ring", allreduce=_engine_allreduce(fn), **kw)
        engine = train_data_parallel("ring", **kw)
        for r, (a, b) in enumerate(zip(ours.params, engine.params)):
            diff = float((a - b).abs().max())
            if diff > 1e-5:
                raise Failure(f"round {r} of data-parallel SGD (4 workers) with your ring as "
                              f"dmlbook.allreduce.train_data_parallel's all-reduce",
                              expected=b, actual=a, mistake="wrong value",
                              hint=f"the parameters differ by up to {diff:.3g} from the "
                                   f"engine's ring all-reduce.")
        if ours.ledger.totals() != engine.ledger.totals():
            raise Failure("3 rounds of data-parallel SGD: messages and bytes",
                          expected=engine.ledger.totals(), actual=ours.ledger.totals(),
                          mistake="messages", hint="the engine's ring sends one chunk per "
                                                   "message, 2 (n - 1) per node per round.")
        totals = ours.ledger.totals()
        summary = (f"3 rounds of data-parallel SGD with your ring inside "
                   f"train_data_parallel equal its own ring (the same {totals.sent} messages "
                   f"and {totals.bytes_sent:,} bytes)")
        if torch_distributed:
            real = _gloo_snapshots(4, 3, 0.3, 32, 0)
            mine = torch.stack(ours.params)
            real_diff = float((mine - real).abs().max())
            if real_diff > 1e-5:
                raise Failure("3 rounds against torch.distributed's all_reduce (gloo)",
                              expected=real[-1], actual=mine[-1], mistake="wrong value",
                              hint=f"the parameters differ by up to {real_diff:.3g}.")
            summary += (f", and torch.distributed's all_reduce in 4 gloo processes "
                        f"(max difference {real_diff:.1e})")
        return summary

    return stages("ring_allreduce", fn, hand, random_cases, simulator,
                  time_limit_s=0 if torch_distributed else time_limit_s)


def _messages_case(fn, n, label, expected=None):
    """``expected``: a function of no arguments (default: the formula), called after the
    student's: the answer is never on the stack while their function runs."""
    case = f"ring_messages(n_nodes={n}), {label}"
    out = call(fn, case, n)
    expected = 2 * n * (n - 1) if expected is None else expected()
    actual = as_int(out, case, expected, "the number of messages")
    if actual == expected:
        return
    known = {n * (n - 1): ("one phase only", "reduce-scatter and all-gather each take n - 1 "
                                             "steps of n messages."),
             2 * (n - 1): ("per node, not in all", "every one of the n nodes sends "
                                                   "2 (n - 1) messages."),
             2 * n * n: ("off by one in the steps", "each phase has n - 1 steps, not n.")}
    mistake, hint = known.get(actual, ("wrong value", "2 phases x (n - 1) steps x n messages."))
    raise Failure(case, expected=expected, actual=actual, mistake=mistake, hint=hint)


def ring_messages(fn, *, time_limit_s=None):
    """Check ``fn(n_nodes) -> int``: the messages of one ring all-reduce, ``2 n (n - 1)``."""
    def random_cases(fn):
        rng = rng_for("ring_messages")
        for k in range(30):
            n = int(rng.integers(2, 10**6))
            _messages_case(fn, n, f"random case {k + 1} of 30",
                           lambda: allreduce_messages(n, "ring"))
        return "30 seeded random rings agree with dmlbook.messages.allreduce_messages"

    def simulator(fn):
        run = train_data_parallel("ring", n_workers=5, rounds=2, model="logreg",
                                  progress=False)
        _messages_case(fn, 5, "the messages of 2 rounds of train_data_parallel's ring / 2",
                       lambda: run.ledger.totals().sent // 2)
        return (f"train_data_parallel's ring on 5 workers sent {run.ledger.totals().sent} "
                f"messages in 2 rounds")

    return stages("ring_messages", fn, each(_messages_case, [(4, "four nodes"),
                                                             (2, "two nodes"),
                                                             (128, "128 nodes")]),
                  random_cases, simulator, time_limit_s=time_limit_s)
