"""Differential test: :func:`dmlbook.allreduce.train_data_parallel` against a plain reference.

The reference below is a second implementation of synchronous data-parallel SGD, written
from the documented rules (the docstrings of :mod:`dmlbook.allreduce`,
:mod:`dmlbook.faults` and :mod:`dmlbook.collectives`), one worker and one message at a
time, with Python lists and for-loops instead of stacked tensors. It shares with the
package only the documented public building blocks: the digits
(:func:`dmlbook.data.load_digits`), the split (:func:`dmlbook.data.split`), the model
(:func:`dmlbook.models.make_model`) and the workers' mini-batches (``NodeData.batch``
with one ``seeded_generator(seed)``). The rules it follows:

* **Setup.** Everything is seeded with ``seed``: the digits' test set, the split, the
  model's initial weights, the batches. Node ``n`` is the parameter server (``"ps"``).
* **A round.** Every worker, crashed or not, draws a batch (one draw for all ``n``
  workers a round); a live worker's gradient is the mean cross-entropy of its batch at
  its own copy of the model.
* **Crashes** (``crash_at={node: r}``): from round ``r`` on the node takes no step,
  sends nothing, and messages to it are lost. A crashed member holds a round up until
  it has been missed for ``detect_rounds`` rounds (``ring_rebuild_rounds`` for the
  ring); then the scheme goes on without it.
* **Message loss**: stream ``k`` of round ``r`` is ``default_rng([fault_seed, r, k])``,
  one draw per message of that stream in the order the messages are sent; a message is
  lost when its draw is below ``drop_prob``. Streams: 11 gradients up to the server,
  12 models down from it, 13 the naive all-to-all, 100 + step each ring step.
* **"ps"**: the server averages the gradients that arrived (its own too, after a
  failover), steps its model and sends it to each live worker; a lost reply leaves the
  worker's copy unchanged. A crashed server is replaced (``failover``) by the
  lowest-numbered live worker after ``failover_rounds`` rounds without it, starting
  from that worker's own copy.
* **"naive"**: each live member sends its gradient to every other member; each averages
  its own and those that reached it.
* **"ring"**: chunks as ``torch.tensor_split`` cuts them; ``m - 1`` reduce-scatter steps
  (member ``k`` sends chunk ``k - s`` to its successor, who adds it) and ``m - 1``
  all-gather steps (chunk ``k + 1 - s``, which the successor takes); a chunk that does
  not arrive stalls the round; the sum is divided by the ring's members.
* **Reported model**: the server's for ``"ps"``, else the first live member's.
  **Every worker crashed**: the run ends before that round.

Expected values come only from this reference; nothing is copied from a run.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from dmlbook.allreduce import (max_parameter_difference, setup_summary, traffic_per_round,
                               traffic_vs_workers, train_data_parallel)
from dmlbook.data import load_digits, split
from dmlbook.engine import NodeData, seeded_generator
from dmlbook.faults import Faults
from dmlbook.models import make_model

# train_data_parallel's documented defaults: a config leaves out what it does not change,
# so that a changed default shows up as a difference from the reference.
DEFAULTS = dict(n_workers=4, rounds=20, lr=0.1, batch_size=32, model="mlp", dataset=None,
                split="iid", seed=0, detect_rounds=0, ring_rebuild_rounds=3, failover=False,
                failover_rounds=1)
STREAM_UP, STREAM_DOWN, STREAM_NAIVE, STREAM_RING = 11, 12, 13, 100  # faults' docstring
LEDGER_FIELDS = ("round", "sender", "receiver", "nbytes", "delivered")
FLOAT_BYTES = 4


# ----------------------------------------------------------------------------- reference


class ReferenceModel:
    """A ``make_model`` model as a function of one flat vector (in ``parameters()`` order)."""

    def __init__(self, name: str, seed: int, digits):
        self.module = make_model(name, seed=seed, n_features=digits.n_features,
                                 num_classes=digits.num_classes)
        self.shapes = [(name, p.shape) for name, p in self.module.named_parameters()]
        self.initial = torch.cat([p.detach().reshape(-1) for p in self.module.parameters()])

    def logits(self, flat, X):
        weights, start = {}, 0
        for name, shape in self.shapes:
            size = shape.numel()
            weights[name] = flat[start:start + size].view(shape)
            start += size
        return functional_call(self.module, weights, (X,))

    def gradient(self, flat, X, y):
        flat = flat.detach().clone().requires_grad_()
        (grad,) = torch.autograd.grad(F.cross_entropy(self.logits(flat, X), y), flat)
        return grad

    def evaluate(self, flat, X, y):
        with torch.no_grad():
            logits = self.logits(flat, X)
            return (float(F.cross_entropy(logits, y)),
                    float((logits.argmax(1) == y).float().mean()))


def survives_loss(fault_seed, drop_prob, round, stream, count):
    """Per message of one stream of one round: True unless it is lost (one draw each)."""
    if drop_prob == 0 or count == 0:
        return [True] * count
    draws = np.random.default_rng([fault_seed, round, stream]).random(count)
    return [bool(u >= drop_prob) for u in draws]


def chunk_bounds(P, m):
    """torch.tensor_split's m chunks of P entries: the first P % m one longer."""
    bounds, start = [], 0
    for i in range(m):
        size = P // m + (1 if i < P % m else 0)
        bounds.append((start, start + size))
        start += size
    return bounds


class ReferenceRun:
    """One run of the reference: state kept in plain lists, one method per scheme."""

    def __init__(self, scheme, options, faults):
        self.scheme, self.o = scheme, options
        self.crash_at = faults.get("crash_at", {})
        self.drop_prob = faults.get("drop_prob", 0.0)
        self.fault_seed = faults.get("seed", 0)
        self.n = n = options["n_workers"]
        self.total_nodes = n + (scheme == "ps")
        digits = options["dataset"] or load_digits(seed=options["seed"])
        self.X_test, self.y_test = digits.X_test, digits.y_test
        parts = split(digits.y_train, n, kind=options["split"], seed=options["seed"])
        self.node_data = NodeData(digits.X_train, digits.y_train, parts)
        self.model = ReferenceModel(options["model"], options["seed"], digits)
        self.nbytes = FLOAT_BYTES * self.model.initial.numel()
        self.copies = [self.model.initial.clone() for _ in range(n)]
        self.server_model = self.model.initial.clone()
        self.server = n if scheme == "ps" else None
        self.members = list(range(n))
        self.ledger = []  # (round, sender, receiver, bytes, delivered), in sending order
        self.failover_round = None
        self.stopped_round = None
        self.stale_takeover = False  # a new server whose own copy was behind the old one's
        self.rounds, self.test_loss, self.test_acc, self.params, self.updated = [], [], [], [], []

    def alive(self, round):
        return [round < self.crash_at.get(node, float("inf"))
                for node in range(self.total_nodes)]

    def send(self, round, stream, messages, alive):
        """Record messages ``(sender, receiver, bytes)``; return whether each arrived."""
        survived = survives_loss(self.fault_seed, self.drop_prob, round, stream, len(messages))
        arrived = []
        for (sender, receiver, nbytes), ok in zip(messages, survived):
            arrived.append(alive[receiver] and ok)
            self.ledger.append((round, sender, receiver, nbytes, arrived[-1]))
        return arrived

    def reported(self, alive):
        if self.scheme == "ps":
            return self.server_model
        live = [w for w in self.members if alive[w]] or self.members
        return self.copies[live[0]]

    def record(self, round, updated, alive):
        model = self.reported(alive)
        loss, acc = self.model.evaluate(model, self.X_test, self.y_test)
        self.rounds.append(round)
        self.test_loss.append(loss)
        self.test_acc.append(acc)
        self.params.append(model.clone())
        self.updated.append(updated)

    def run(self):
        o = self.o
        timeout = o["ring_rebuild_rounds"] if self.scheme == "ring" else o["detect_rounds"]
        waited, self.server_waited = 0, 0
        generator = seeded_generator(o["seed"])
        self.record(0, False, [True] * self.total_nodes)
        for r in range(1, o["rounds"] + 1):
            alive = self.alive(r)
            if not any(alive[:self.n]):
                self.stopped_round = r
                break
            X, y = self.node_data.batch(generator, o["batch_size"])  # every worker draws
            grads = {w: self.model.gradient(self.copies[w], X[w], y[w])
                     for w in range(self.n) if alive[w]}
            if any(not alive[w] for w in self.members) and waited >= timeout:
                self.members, waited = [w for w in self.members if alive[w]], 0
            waiting = any(not alive[w] for w in self.members)
            step = {"ps": self.ps_round, "naive": self.naive_round, "ring": self.ring_round}
            updated = step[self.scheme](r, alive, grads, waiting)
            waited = waited + 1 if waiting else 0
            self.record(r, updated, alive)
        return self

    def ps_round(self, r, alive, grads, waiting):
        sending = [w for w in self.members if alive[w]]
        if (not alive[self.server] and self.o["failover"]
                and self.server_waited >= self.o["failover_rounds"]):
            self.server, self.server_waited, self.failover_round = sending[0], 0, r
            self.stale_takeover = not torch.equal(self.copies[sending[0]], self.server_model)
            self.server_model = self.copies[sending[0]].clone()  # its own copy
        others = [w for w in sending if w != self.server]
        up = self.send(r, STREAM_UP, [(w, self.server, self.nbytes) for w in others], alive)
        if not alive[self.server]:
            self.server_waited += 1
            return False
        if waiting:
            return False
        arrived = [w for w, ok in zip(others, up) if ok]
        arrived += [w for w in sending if w == self.server]  # a worker-server's own gradient
        if not arrived:
            return False
        mean = sum(grads[w] for w in arrived) / len(arrived)
        self.server_model = self.server_model - self.o["lr"] * mean
        if self.server < self.n:
            self.copies[self.server] = self.server_model.clone()
        down = self.send(r, STREAM_DOWN, [(self.server, w, self.nbytes) for w in others], alive)
        for w, ok in zip(others, down):
            if ok:  # a lost reply: the worker keeps its copy
                self.copies[w] = self.server_model.clone()
        return True

    def naive_round(self, r, alive, grads, waiting):
        sending = [w for w in self.members if alive[w]]
        messages = [(s, d, self.nbytes) for s in sending for d in self.members if d != s]
        arrived = self.send(r, STREAM_NAIVE, messages, alive)
        if waiting:
            return False
        new = {}
        for w in sending:
            received = [grads[w]] + [grads[s] for (s, d, _), ok in zip(messages, arrived)
                                     if d == w and ok]
            new[w] = self.copies[w] - self.o["lr"] * (sum(received) / len(received))
        for w, model in new.items():
            self.copies[w] = model
        return True

    def ring_round(self, r, alive, grads, waiting):
        summed = self.ring_sum(r, alive, grads)
        if summed is None:
            return False
        for w in self.members:
            self.copies[w] = self.copies[w] - self.o["lr"] * summed / len(self.members)
        return True

    def ring_sum(self, r, alive, grads):
        """The members' summed gradient, chunk by chunk around the ring; None if it stalls."""
        ring, m = self.members, len(self.members)
        if m == 1:
            return grads[ring[0]].clone()
        bounds = chunk_bounds(len(self.model.initial), m)
        held = [[grads[w][a:b].clone() if alive[w] else None for a, b in bounds] for w in ring]
        step = 0
        for phase in ("reduce-scatter", "all-gather"):
            for s in range(m - 1):
                survived = survives_loss(self.fault_seed, self.drop_prob, r,
                                         STREAM_RING + step, m)
                step += 1
                sends, stalled = [], False
                for k in range(m):
                    c = (k - s) % m if phase == "reduce-scatter" else (k + 1 - s) % m
                    sender, receiver = ring[k], ring[(k + 1) % m]
                    ok = alive[sender] and alive[receiver] and survived[k]
                    if alive[sender]:  # a dead member sends nothing, but is waited for
                        a, b = bounds[c]
                        self.ledger.append((r, sender, receiver, FLOAT_BYTES * (b - a), ok))
                    stalled |= not ok
                    sends.append((k, c))
                if stalled:
                    return None
                payloads = [held[k][c] for k, c in sends]  # all send at once
                for (k, c), payload in zip(sends, payloads):
                    to = (k + 1) % m
                    held[to][c] = held[to][c] + payload if phase == "reduce-scatter" else payload
        return torch.cat(held[0])


def reference(scheme, kwargs, faults):
    return ReferenceRun(scheme, {**DEFAULTS, **kwargs}, faults).run()


def simulate(scheme, kwargs, faults, **extra):
    fault_arg = Faults(**faults) if faults else None
    return train_data_parallel(scheme, **kwargs, faults=fault_arg, progress=False, **extra)


def ledger_columns(rows):
    return {f: np.array([row[i] for row in rows]) for i, f in enumerate(LEDGER_FIELDS)}


def per_node(ref, what, nbytes):
    """Messages or bytes per node, as the ledger's ``per_node`` counts them."""
    counts = np.zeros(ref.total_nodes, np.int64)
    for _, sender, receiver, size, delivered in ref.ledger:
        if what == "sent" or (what == "received") == delivered:
            counts[sender if what == "sent" else receiver] += size if nbytes else 1
    return counts


# --------------------------------------------------------------------------- configurations

# A data set of one's own: 30 % of the digits held out, shuffled with another seed.
OWN_DIGITS = load_digits(test_fraction=0.3, seed=5)

# (scheme, keyword arguments other than faults, Faults fields, what the config must show)
CONFIGS = {
    "ps-shards": ("ps", dict(n_workers=4, rounds=4, lr=0.3, batch_size=16, split="shards",
                             seed=3), {}, set()),
    "naive-dirichlet": ("naive", dict(n_workers=3, rounds=4, lr=0.2, batch_size=8,
                                      split="dirichlet", seed=7), {}, set()),
    "ring-uneven-chunks": ("ring", dict(n_workers=4, rounds=3, lr=0.25, batch_size=12,
                                        seed=7), {}, set()),
    "ring-all-defaults": ("ring", dict(), {}, set()),
    "ps-worker-crash-loss": ("ps", dict(n_workers=4, rounds=5, lr=0.2, batch_size=16, seed=3,
                                        detect_rounds=1),
                             dict(crash_at={2: 3}, drop_prob=0.3, seed=5), {"lost", "stale"}),
    "ps-server-failover-stale": ("ps", dict(n_workers=4, rounds=5, lr=0.3, batch_size=8,
                                            seed=7, failover=True),
                                 dict(crash_at={4: 3}, drop_prob=0.4, seed=1),
                                 {"lost", "failover", "stale_takeover"}),
    # The takeover falls in a round that waits for crashed worker 3: the new server's own
    # (stale) copy becomes the reported model, though no step is taken.
    "ps-takeover-while-waiting": ("ps", dict(n_workers=4, rounds=4, seed=3, failover=True,
                                             detect_rounds=2),
                                  dict(crash_at={4: 2, 3: 3}, drop_prob=0.5, seed=0),
                                  {"lost", "failover", "stale_takeover"}),
    "ps-failover-twice-at-once": ("ps", dict(n_workers=4, rounds=5, lr=0.2, seed=3,
                                             failover=True, failover_rounds=0),
                                  dict(crash_at={4: 1, 0: 4}), {"failover"}),
    "ps-server-crash-no-failover": ("ps", dict(n_workers=3, rounds=4, seed=3),
                                    dict(crash_at={3: 2}), {"lost"}),
    "ps-every-worker-crashes": ("ps", dict(n_workers=3, rounds=4, seed=7),
                                dict(crash_at={0: 2, 1: 2, 2: 3}), {"stopped"}),
    "ps-crash-last-round": ("ps", dict(n_workers=3, rounds=4, seed=7, detect_rounds=2),
                            dict(crash_at={1: 4}), set()),
    # Worker 0 crashes while the others' copies have drifted apart: the reported model
    # is worker 1's during the round they wait for it, not 0's frozen copy.
    "naive-crash-loss": ("naive", dict(n_workers=4, rounds=5, lr=0.3, seed=3, detect_rounds=1),
                         dict(crash_at={0: 3}, drop_prob=0.25, seed=11),
                         {"lost", "stale", "frozen_first"}),
    "naive-logreg-own-digits": ("naive", dict(n_workers=3, rounds=3, lr=0.5, seed=7,
                                              model="logreg", dataset=OWN_DIGITS), {}, set()),
    "naive-crash-first-round": ("naive", dict(n_workers=3, rounds=3, seed=7),
                                dict(crash_at={0: 1}), set()),
    "naive-everyone-crashes": ("naive", dict(n_workers=3, rounds=5, seed=3),
                               dict(crash_at={0: 2, 1: 3, 2: 3}), {"stopped"}),
    "ring-crash-default-rebuild": ("ring", dict(n_workers=5, rounds=5, lr=0.2, seed=3),
                                   dict(crash_at={1: 2}), {"stale"}),
    "ring-crash-first-round": ("ring", dict(n_workers=4, rounds=4, seed=7,
                                            ring_rebuild_rounds=0),
                               dict(crash_at={0: 1}), set()),
    "ring-crash-last-round": ("ring", dict(n_workers=3, rounds=3, seed=3),
                              dict(crash_at={2: 3}), {"stale"}),
    "ring-loss": ("ring", dict(n_workers=3, rounds=5, lr=0.3, seed=7),
                  dict(drop_prob=0.08, seed=2), {"lost", "stale"}),
}


def config_params():
    return [pytest.param(*config, id=name) for name, config in CONFIGS.items()]


# ----------------------------------------------------------------------------------- tests


def assert_same_run(res, ref):
    """Every observable field of a full-ledger result equals the reference's."""
    assert res.n_workers == ref.n and res.scheme == ref.scheme
    assert res.rounds == ref.rounds
    assert res.updated == ref.updated
    np.testing.assert_allclose(res.test_loss, ref.test_loss, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(res.test_acc, ref.test_acc, atol=1e-6)
    assert len(res.params) == len(ref.params)
    for k, (got, want) in enumerate(zip(res.params, ref.params)):
        assert torch.allclose(got, want, atol=1e-5), f"reported model after round {k}"
    assert torch.allclose(res.final, ref.params[-1], atol=1e-5)
    assert torch.allclose(res.worker_params, torch.stack(ref.copies), atol=1e-5)
    assert res.server == ref.server and res.failover_round == ref.failover_round
    if ref.stopped_round is None:
        assert res.stopped is None
    else:
        assert res.stopped is not None and f"round {ref.stopped_round}" in res.stopped


def assert_same_ledger(res, ref):
    got, want = res.ledger.columns(), ledger_columns(ref.ledger)
    assert len(res.ledger) == len(ref.ledger)
    for name in LEDGER_FIELDS:
        np.testing.assert_array_equal(got[name], want[name], err_msg=f"ledger column {name}")


def assert_config_shows(ref, shows):
    """The config exercises what it is there for (else it would pin nothing)."""
    delivered = [row[4] for row in ref.ledger]
    if "lost" in shows:
        assert not all(delivered) and any(delivered)
    if "stale" in shows:  # some round did not update, or copies drifted apart
        copies = torch.stack(ref.copies)
        assert not all(ref.updated[1:]) or not torch.equal(copies.min(0).values,
                                                           copies.max(0).values)
    if "failover" in shows:
        assert ref.failover_round is not None and ref.server < ref.n
    if "stale_takeover" in shows:
        assert ref.stale_takeover
    if "frozen_first" in shows:  # a crashed member 0 still waited for, its copy not the others'
        waited_for = [k for k, r in enumerate(ref.rounds) if ref.crash_at.get(0, 0) <= r]
        assert waited_for and not torch.equal(ref.params[waited_for[0]], ref.copies[0])
    if "stopped" in shows:
        assert ref.stopped_round is not None


@pytest.mark.parametrize("scheme, kwargs, faults, shows", config_params())
def test_run_equals_the_reference(scheme, kwargs, faults, shows):
    ref = reference(scheme, kwargs, faults)
    assert_config_shows(ref, shows)
    res = simulate(scheme, kwargs, faults)
    assert_same_run(res, ref)
    assert_same_ledger(res, ref)
    rounds_run = len(ref.rounds) - 1
    for what in ("sent", "received"):
        expected = per_node(ref, what, nbytes=True) / rounds_run
        traffic = traffic_per_round(res, what)
        assert traffic["worker"] == pytest.approx(expected[:ref.n].max())
        if ref.server is None:
            assert "server" not in traffic
        else:  # the node serving at the end: a worker after a failover
            assert traffic["server"] == pytest.approx(expected[ref.server])


@pytest.mark.parametrize("name", ["ps-server-failover-stale", "naive-crash-loss", "ring-loss"])
def test_counts_only_run_equals_the_reference(name):
    scheme, kwargs, faults, _ = CONFIGS[name]
    ref = reference(scheme, kwargs, faults)
    res = simulate(scheme, kwargs, faults, counts_only=True)
    assert res.ledger.counts_only
    assert_same_run(res, ref)
    assert len(res.ledger) == len(ref.ledger)
    for what in ("sent", "received", "lost"):
        for nbytes in (False, True):
            np.testing.assert_array_equal(res.ledger.per_node(what, nbytes=nbytes),
                                          per_node(ref, what, nbytes), err_msg=what)
    rounds = np.array([row[0] for row in ref.ledger])
    delivered = np.array([row[4] for row in ref.ledger])
    np.testing.assert_array_equal(res.ledger.per_round(), np.bincount(rounds))
    np.testing.assert_array_equal(res.ledger.per_round(delivered_only=True),
                                  np.bincount(rounds[delivered], minlength=rounds.max() + 1))


def test_a_ring_passed_in_is_the_ring_used():
    """``allreduce``: the caller's function sums the gradients and records the messages."""
    scheme, kwargs, faults, _ = CONFIGS["ring-uneven-chunks"]
    ref = reference(scheme, kwargs, faults)
    calls = []

    def plain_ring(grads, ring, *, round, ledger, alive, faults):
        calls.append((round, list(ring)))
        ledger.record(round, ring[0], ring[-1], 1, True)  # one marker message a round
        return grads[ring].sum(0)

    res = simulate(scheme, kwargs, faults, allreduce=plain_ring)
    n, rounds = ref.n, len(ref.rounds) - 1
    assert calls == [(r, list(range(n))) for r in range(1, rounds + 1)]
    for got, want in zip(res.params, ref.params):
        assert torch.allclose(got, want, atol=1e-5)
    np.testing.assert_array_equal(res.ledger.columns()["round"], np.arange(1, rounds + 1))


@pytest.mark.parametrize("scheme", ["ps", "naive", "ring"])
def test_stragglers_are_refused(scheme):
    with pytest.raises(ValueError, match="straggler_prob"):
        simulate(scheme, dict(n_workers=3, rounds=2, seed=3), dict(straggler_prob=0.2))


def test_largest_parameter_difference_equals_the_reference():
    names = ["ps-worker-crash-loss", "naive-crash-loss", "ring-loss"]  # 5 rounds each
    refs = [reference(*CONFIGS[name][:3]) for name in names]
    results = [simulate(*CONFIGS[name][:3]) for name in names]
    stacked = torch.stack([torch.stack(ref.params) for ref in refs])  # (runs, rounds, P)
    expected = [float((stacked[:, k].max(0).values - stacked[:, k].min(0).values).abs().max())
                for k in range(stacked.shape[1])]
    got = max_parameter_difference(*results)
    assert got.shape == (len(expected),) and max(expected) > 0
    np.testing.assert_allclose(got, expected, atol=2e-5)


def test_traffic_vs_workers_equals_the_references_ledgers():
    worker_counts, rounds, seed = (2, 3), 2, 7
    table, model_bytes = traffic_vs_workers(worker_counts, rounds=rounds, seed=seed)
    expected = {"PS server": [], "PS worker": [], "naive worker": [], "ring worker": []}
    for n in worker_counts:
        for scheme in ("ps", "naive", "ring"):
            ref = reference(scheme, dict(n_workers=n, rounds=rounds, seed=seed), {})
            sent = per_node(ref, "sent", nbytes=True) / rounds
            label = {"ps": "PS worker", "naive": "naive worker", "ring": "ring worker"}[scheme]
            expected[label].append(sent[:n].max())
            if scheme == "ps":
                expected["PS server"].append(sent[n])
    assert model_bytes == ref.nbytes
    assert table.keys() == expected.keys()
    for label, values in expected.items():
        assert table[label] == pytest.approx(values), label


@pytest.mark.parametrize("n_workers, split_kind, seed",
                         [(4, "shards", 3), (5, "dirichlet", 7), (3, "iid", 7)])
def test_setup_summary_equals_the_reference(n_workers, split_kind, seed):
    digits = load_digits(seed=seed)
    y = digits.y_train.numpy()
    parts = split(digits.y_train, n_workers, kind=split_kind, seed=seed)
    sizes = [len(p) for p in parts]
    classes = [len(set(y[p].tolist())) for p in parts]
    expected = {"model": "mlp", "n_params": ReferenceModel("mlp", seed, digits).initial.numel(),
                "train": len(y), "test": len(digits.y_test),
                "examples_min": min(sizes), "examples_max": max(sizes),
                "classes_min": min(classes), "classes_max": max(classes)}
    assert setup_summary(n_workers, split=split_kind, seed=seed) == expected
