"""Workbook 5: gossip's event handlers: the push-only merge, and push-pull's two handlers."""

from __future__ import annotations

import numpy as np
import torch

from ..gossip import gossip_average, gossip_learning
from .display import short
from .harness import (Failure, _allclose, as_float, call, call_tensors, close, each, rng_for,
                      seeded, shaped, stages, tensor_result)
from .reference import gossip_merge as reference_merge  # taken now: rebinding it changes nothing


def _merge_case(fn, local, received, label):
    case = f"gossip_merge(x_local={short(local)}, x_received={short(received)}), {label}"
    out, changed = call_tensors(fn, case, local, received)
    # x_local is the node's own: updating it in place is fine; x_received is the network's.
    changed_received = ["x_received"] if 1 in changed else []
    candidates = [
        ("replacing instead of averaging", received, "keep half of your own model: average "
                                                     "the received model with it."),
        ("ignoring the received model", local, "the received model must be averaged in."),
        ("summing instead of averaging", local + received, "divide the sum by 2."),
        ("operator precedence", local + received / 2, "write (x_local + x_received) / 2."),
        ("operator precedence", local / 2 + received, "write (x_local + x_received) / 2.")]
    expected = ((local.double() + received.double()) / 2).to(local.dtype)
    got = tensor_result(case, out, expected, changed_received, candidates,
                        "the merge is the plain average (x_local + x_received) / 2.",
                        atol=1e-12)
    dtype = _dtype_of(out)
    if dtype is not None and dtype != local.dtype:  # a tensor or a NumPy array
        raise Failure(case, expected=f"a {local.dtype} tensor", actual=f"a {dtype} "
                      f"{'tensor' if isinstance(out, torch.Tensor) else type(out).__name__}",
                      mistake="wrong dtype", hint="keep the model's dtype.")
    # float64 to float64's precision: a merge done in float32 and cast back is not one.
    if local.dtype == torch.float64 and not _allclose(got, expected, rtol=1e-12, atol=1e-12):
        raise Failure(case, expected=expected, actual=got, mistake="lost precision",
                      hint="average in the model's own dtype: a float64 model in float64.",
                      rtol=1e-12, atol=1e-12)


def _dtype_of(out):
    """The torch dtype of a tensor or a NumPy array or scalar; None for anything else."""
    if isinstance(out, torch.Tensor):
        return out.dtype
    if isinstance(out, (np.ndarray, np.generic)):
        try:
            return torch.from_numpy(np.empty(0, dtype=out.dtype)).dtype
        except TypeError:  # no torch dtype: tensor_result has refused it already
            return None
    return None


def gossip_merge(fn, *, time_limit_s=None):
    """Check ``fn(x_local, x_received) -> new local model`` (tensors of one shape).

    The passive thread of gossip learning: on receiving a model, average it in.
    Updating ``x_local`` in place is allowed; ``x_received`` must stay as it is.
    """
    hand = [(torch.tensor([0., 4.]), torch.tensor([2., 0.]), "two numbers"),
            (torch.tensor([1., -3., 5.]), torch.tensor([3., 1., 5.]), "three numbers"),
            (torch.tensor([[1., 2.], [3., 4.]]), torch.tensor([[5., 6.], [7., 8.]]),
             "a 2 x 2 weight matrix")]

    def random_cases(fn):
        rng, gen = seeded("gossip_merge")
        for k in range(20):
            shape = tuple(int(s) for s in rng.integers(1, 6, int(rng.integers(1, 3))))
            dtype = (torch.float32, torch.float64)[k % 2]
            a = torch.randn(shape, generator=gen, dtype=dtype) * float(rng.uniform(0.1, 100))
            b = torch.randn(shape, generator=gen, dtype=dtype)
            _merge_case(fn, a, b, f"random case {k + 1} of 20 ({dtype})")
        _merge_case(fn, b, a, "the last two models the other way round")
        _merge_case(fn, a, a.clone(), "a model merged with itself stays the same")
        return "20 seeded random float32 and float64 models; the message left unchanged"

    def simulator(fn):
        def merge(own, received):
            # Not on copies: the node's own model may be updated in place.
            case = "gossip learning: a node merges a model that arrived"
            return shaped(call(fn, case, own, received.clone()), case, own)

        kw = dict(n_nodes=8, model="logreg", until=3.0, delay=0.9, eval_every=3.0,
                  batch_size=8, seed=3, progress=False)
        ours = gossip_learning(merge=merge, **kw)
        reference = gossip_learning(merge=reference_merge, **kw)
        diff = float((ours.params - reference.params).abs().max())
        if diff > 1e-5:
            node = int((ours.params - reference.params).abs().max(1).values.argmax())
            raise Failure(f"gossip learning of 8 nodes for 3 s with your merge: node {node}",
                          expected=reference.params[node], actual=ours.params[node],
                          mistake="wrong value", hint="the models differ from those of "
                          "dmlbook.gossip.gossip_learning with the sheet's merge.")
        drift = gossip_average(np.arange(16.0), cycles=10, protocol="push", seed=3).total
        return (f"inside dmlbook.gossip.gossip_learning (8 nodes, "
                f"{ours.ledger.totals().sent} messages) your merge gives the sheet's models. "
                f"Push-only does not keep the sum: in push-only averaging of 0 .. 15 it went "
                f"from {drift[0]:.0f} to {drift[-1]:.1f} in 10 cycles")

    return stages("gossip_merge", fn, each(_merge_case, hand), random_cases, simulator,
                  time_limit_s=time_limit_s)


def _handlers(on_push, on_reply):
    """The student's handlers with their values checked and made floats."""
    def push(x_mine, x_received):
        case = f"on_push(x_mine={x_mine!r}, x_received={x_received!r})"
        out = call(on_push, case, x_mine, x_received)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise Failure(case, expected="a pair (new value, reply)", actual=out,
                          mistake="wrong shape", hint="return (x_new, reply).")
        return (as_float(out[0], case, "a number", "the new value"),
                as_float(out[1], case, "a number", "the reply"))

    def reply(x_mine, answer):
        case = f"on_reply(x_mine={x_mine!r}, reply={answer!r})"
        return as_float(call(on_reply, case, x_mine, answer), case, "a number", "the new value")
    return push, reply


def _exchange(push, reply, x_i, x_j, between=0.0):
    """i pushes x_i to j; ``between`` is added to i before the reply arrives."""
    new_j, answer = push(x_j, x_i)
    return reply(x_i + between, answer), new_j


def push_pull(on_push, on_reply, *, time_limit_s=None):
    """Check ``(on_push, on_reply)``: push-pull gossip averaging's two handlers.

    ``on_push(x_mine, x_received) -> (x_new, reply)`` runs at the node a value
    arrives at; ``on_reply(x_mine, reply) -> x_new`` at the sender when the
    reply arrives. An exchange must average the pair and never change the sum,
    even when the sender's value changed while the reply was on its way.
    """
    def hand_cases(handlers):
        push, reply = _handlers(*handlers)
        for x_i, x_j, between, label in [(4.0, 0.0, 0.0, "one exchange: both end at 2"),
                                         (-1.0, 5.0, 0.0, "one exchange: both end at 2"),
                                         (4.0, 0.0, 6.0, "node i's value grew by 6 while "
                                                         "the reply travelled")]:
            new_i, new_j = _exchange(push, reply, x_i, x_j, between)
            case = (f"node i = {x_i} pushes to node j = {x_j}"
                    + (f"; before the reply, i receives +{between}" if between else "")
                    + f": {label}")
            if not close(new_i + new_j, x_i + x_j + between, rel=1e-12):
                raise Failure(case + ": the pair's sum", expected=x_i + x_j + between,
                              actual=new_i + new_j, mistake="sum not preserved",
                              hint="reply with the amount j took, d = (x_i - x_j) / 2, and "
                                   "let i subtract it: i's new value is x_mine - d, whatever "
                                   "x_mine is by then." if between else
                                   "what j gains, i must lose.")
            if not between and not (close(new_i, (x_i + x_j) / 2) and close(new_j,
                                                                             (x_i + x_j) / 2)):
                raise Failure(case, expected=((x_i + x_j) / 2,) * 2, actual=(new_i, new_j),
                              mistake="not averaging", hint="after one exchange without delay "
                                                            "both hold the pair's average.")
        return "3 hand-worked exchanges, one with a reply that arrives late"

    def random_cases(handlers):
        push, reply = _handlers(*handlers)
        rng = rng_for("push_pull")
        for k in range(30):
            x_i, x_j = (float(v) for v in rng.normal(0, 10 ** rng.uniform(-2, 3), 2))
            between = float(rng.normal(0, 5)) if k % 2 else 0.0
            new_i, new_j = _exchange(push, reply, x_i, x_j, between)
            case = (f"random exchange {k + 1} of 30: x_i={x_i:.6g}, x_j={x_j:.6g}, "
                    f"i changed by {between:.6g} meanwhile")
            if not close(new_i + new_j, x_i + x_j + between, rel=1e-9, abs_tol=1e-9):
                raise Failure(case + ": the pair's sum", expected=x_i + x_j + between,
                              actual=new_i + new_j, mistake="sum not preserved",
                              hint="what j gains, i must lose.")
            # j's handler cannot know of i's change: j ends at the pair's average, and
            # with the sum kept that fixes i's value too.
            if not close(new_j, (x_i + x_j) / 2, rel=1e-9, abs_tol=1e-9):
                raise Failure(case + ": node j's new value", expected=(x_i + x_j) / 2,
                              actual=new_j, mistake="not averaging",
                              hint="the node a value arrives at moves to the pair's average.")
        return "30 seeded random exchanges keep the sum and average the pair"

    def simulator(handlers):
        push, reply = _handlers(*handlers)
        values = np.random.default_rng(5).normal(10, 4, 32)
        kw = dict(cycles=12, delay=0.3, seed=2, protocol="push-pull")
        ours = gossip_average(values, handlers=(push, reply), **kw)
        theirs = gossip_average(values, **kw)
        scale = 1e-9 * np.abs(values).sum()
        if abs(ours.values.sum() - values.sum()) > scale:
            # Mass in flight (a reply on its way) is in no node's value: compare per cycle
            # with the package's run, which keeps the sum once every reply has landed.
            cycle = next((c for c, (a, b) in enumerate(zip(ours.total, theirs.total))
                          if abs(a - b) > scale), len(ours.total) - 1)
            raise Failure(f"push-pull averaging of 32 nodes with a 0.3 s delay: the sum "
                          f"over all nodes, first off after cycle {cycle}",
                          expected=theirs.total[cycle], actual=ours.total[cycle],
                          mistake="sum not preserved", hint="replies arrive late here: "
                          "the sender must subtract the reply, not take it as its value.")
        diff = float(np.abs(ours.values - theirs.values).max())
        if diff > 1e-9 * np.abs(values).max():
            node = int(np.abs(ours.values - theirs.values).argmax())
            raise Failure(f"push-pull averaging of 32 nodes for 12 cycles: node {node}",
                          expected=theirs.values[node], actual=ours.values[node],
                          mistake="wrong value",
                          hint="the values differ from dmlbook.gossip.gossip_average's.")
        return (f"inside dmlbook.gossip.gossip_average (32 nodes, 0.3 s delay) the sum stayed "
                f"{values.sum():.6g} in every cycle and the variance fell from "
                f"{ours.variance[0]:.3g} to {ours.variance[-1]:.2g}")

    return stages("push_pull", (on_push, on_reply), hand_cases, random_cases, simulator,
                  time_limit_s=time_limit_s)
