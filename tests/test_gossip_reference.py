"""Differential test: dmlbook.gossip against a plain reference written in this file.

The reference re-implements, with explicit loops, one Python float or one
``nn.Module`` per node and a plain ``heapq`` event loop, what the docstrings of
:mod:`dmlbook.gossip` document; every observable output of the simulator is
then compared with it. Documented rules it follows:

* Each node wakes first at ``uniform(0, delta)`` (learning: plus ``sgd_time``,
  the end of its first step); its next wake is ``delta * (1 + jitter * U(-1, 1))``
  after it sends (learning: plus ``sgd_time``). Events run in time order, ties
  in the order they were scheduled; the run covers times ``< until`` (or
  ``< cycles * delta``).
* A message takes ``delay`` seconds, is lost with probability ``drop_prob``
  and counts as delivered only if it is not lost and arrives before the end
  (a push-pull reply already on its way still lands after the end).
* Peers: ``"uniform"`` over the other nodes, or ``"balanced"``: the ``k``-th
  message of node ``i`` goes to ``(i + s_k) mod n``, ``s_k`` in ``1 .. n - 1``
  from a stream every node shares.
* The ledger holds one row per message: the cycle ``floor(arrival / delta)``
  of its arrival, sender, receiver, bytes (8 for a float64, 4 per float32
  parameter of a model) and whether it was delivered.
* Averaging: push-pull ``d = (x_i - x_j) / 2``, ``x_j += d``, reply ``d``,
  ``x_i -= d`` (or the caller's handlers); push ``x_j = (x_i + x_j) / 2``.
  Cycle ``k`` is the state at ``k * delta``; the last one holds the final values.
* Learning: a step is one SGD step on a mini-batch drawn with replacement
  from the node's own examples (``NodeData.node_batch_indices``); the node
  then sends its model; a receiver sets ``x <- merge(x, m.x)``, by default
  ``(m.x + x) / 2``. Every node is evaluated every ``eval_every`` seconds from
  0 to ``until``, before the events of that instant. ``batch_steps`` changes
  nothing (the reference steps one node at a time).
* The centralized baseline takes as many steps as all nodes together.

Random draws come from the streams the code uses, in its order: averaging
``default_rng([seed, 1])``, learning ``default_rng([seed, 2])``, balanced shifts
``default_rng([seed, 99])``, mini-batches ``torch.Generator().manual_seed(seed)``.
Per send: the peer (uniform sampling only), then the loss draw (always, even
when ``drop_prob`` is 0), then the next wake's jitter draw (always); a push-pull
reply draws only its loss.
"""

import copy
import heapq
import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dmlbook import gossip
from dmlbook.data import load_digits, split
from dmlbook.engine import NodeData
from dmlbook.models import make_model

FLOAT64_BYTES, FLOAT32_BYTES = 8, 4


# --- building blocks of the reference ---------------------------------------

class EventLoop:
    """A heap of (time, scheduling order, event): ties run in scheduling order."""

    def __init__(self):
        self.heap, self.order = [], itertools.count()

    def push(self, time, *event):
        heapq.heappush(self.heap, (time, next(self.order), event))

    def next_time(self):
        return self.heap[0][0] if self.heap else math.inf

    def pop(self):
        time, _, event = heapq.heappop(self.heap)
        return (time, *event)


def peer_picker(n, sampling, rng, seed):
    """``pick(i)``: the receiver of node ``i``'s next message."""
    shift_stream = np.random.default_rng([seed, 99])
    shifts, sent = [], [0] * n

    def pick(i):
        k = sent[i]
        sent[i] += 1
        if sampling == "balanced":
            while len(shifts) <= k:  # the k-th shift is shared by every node
                shifts.append(int(shift_stream.integers(1, n)))
            return (i + shifts[k]) % n
        other = int(rng.integers(n - 1))  # one of the n - 1 other nodes
        return other if other < i else other + 1

    return pick


def next_wake(t, rng, delta, jitter):
    return t + delta * (1 + jitter * rng.uniform(-1, 1))


def is_lost(rng, drop_prob):
    return rng.random() < drop_prob  # drawn for every message


def ledger_rows(ledger):
    """The simulator's ledger as a list of (round, sender, receiver, bytes, delivered)."""
    c = ledger.columns()
    return list(zip(*(c[f].tolist() for f in ("round", "sender", "receiver", "nbytes",
                                               "delivered"))))


# --- reference: gossip averaging ---------------------------------------------

def reference_average(values, *, cycles=20, delta=1.0, jitter=0.1, delay=0.0, drop_prob=0.0,
                      sampling="uniform", seed=0, protocol="push-pull", handlers=None):
    """Cycle snapshots, final values and ledger rows of a gossip averaging run."""
    x = [float(v) for v in values]
    n, end = len(x), cycles * delta
    rng = np.random.default_rng([seed, 1])
    pick = peer_picker(n, sampling, rng, seed)
    events, rows = EventLoop(), []
    for i in range(n):
        events.push(rng.uniform(0, delta), "wake", i, None, None)

    def send(t, sender, receiver, kind, payload):
        arrival = t + delay
        delivered = not is_lost(rng, drop_prob) and (kind == "reply" or arrival < end)
        rows.append((int(arrival // delta), sender, receiver, FLOAT64_BYTES, delivered))
        if delivered:
            events.push(arrival, kind, receiver, payload, sender)

    def on_reply(i, d):
        x[i] = handlers[1](x[i], d) if handlers else x[i] - d

    snapshots = [list(x)]
    while events.next_time() < end:
        t, kind, i, payload, sender = events.pop()
        while len(snapshots) * delta <= t:  # cycle k: the state just before k * delta
            snapshots.append(list(x))
        if kind == "wake":
            send(t, i, pick(i), "push", x[i])
            events.push(next_wake(t, rng, delta, jitter), "wake", i, None, None)
        elif kind == "push" and protocol == "push":
            x[i] = (payload + x[i]) / 2
        elif kind == "push":
            if handlers:
                x[i], reply = handlers[0](x[i], payload)
            else:
                reply = (payload - x[i]) / 2
                x[i] += reply
            send(t, i, sender, "reply", reply)
        else:
            on_reply(i, payload)
    while len(snapshots) < cycles:  # the cycles with no event left before the end
        snapshots.append(list(x))
    while events.heap:  # replies on their way still land; nothing new starts
        t, kind, i, payload, sender = events.pop()
        if kind == "reply":
            on_reply(i, payload)
    snapshots.append(list(x))
    return snapshots, x, rows


def population_stats(snapshot):
    n = len(snapshot)
    total = sum(snapshot)
    mean = total / n
    return mean, sum((v - mean) ** 2 for v in snapshot) / n, total


def scaled_push(x_j, x_i):
    """Handlers that are not the built-in rule: moves 30 % of the gap, replies 30 %."""
    d = 0.3 * (x_i - x_j)
    return x_j + d, d


def damped_reply(x_i, d):
    return x_i - 0.9 * d


AVERAGING_CONFIGS = {
    "push-pull-uniform-delay-loss": dict(cycles=12, delta=2.0, jitter=0.4, delay=1.3,
                                         drop_prob=0.2, sampling="uniform", seed=7,
                                         protocol="push-pull"),
    "push-balanced-delay-loss": dict(cycles=10, delta=0.5, jitter=0.2, delay=0.45,
                                     drop_prob=0.15, sampling="balanced", seed=3,
                                     protocol="push"),
    "handlers-balanced": dict(cycles=9, delta=1.5, jitter=0.6, delay=0.7, drop_prob=0.25,
                              sampling="balanced", seed=5, protocol="push-pull",
                              handlers=(scaled_push, damped_reply)),
    "full-jitter-two-nodes": dict(cycles=15, delta=1.0, jitter=1.0, delay=0.9,
                                  drop_prob=0.1, sampling="uniform", seed=11,
                                  protocol="push-pull"),
    "defaults": dict(),
}


@pytest.mark.parametrize("name", AVERAGING_CONFIGS)
def test_gossip_average_matches_reference(name):
    config = AVERAGING_CONFIGS[name]
    n = 2 if name == "full-jitter-two-nodes" else 6
    values = np.random.default_rng(42).normal(size=n) * 10
    result = gossip.gossip_average(values.tolist(), **config)
    snapshots, final, rows = reference_average(values, **config)
    cycles = config.get("cycles", 20)

    assert np.array_equal(result.cycle, np.arange(cycles + 1))
    assert result.values.tolist() == final  # float64 arithmetic, same order: exact
    stats = np.array([population_stats(s) for s in snapshots])
    np.testing.assert_allclose(result.mean, stats[:, 0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(result.variance, stats[:, 1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(result.total, stats[:, 2], rtol=1e-12, atol=1e-12)
    assert ledger_rows(result.ledger) == rows
    expected = np.zeros((cycles, n), dtype=np.int64)
    for round_, _, receiver, _, delivered in rows:
        if delivered and round_ < cycles:
            expected[round_, receiver] += 1
    assert np.array_equal(gossip.received_per_cycle(result.ledger, n, cycles), expected)
    assert np.array_equal(gossip.received_per_cycle(result.ledger, n, cycles - 1),
                          expected[:-1])


def test_averaging_configs_reach_the_boundaries_they_are_meant_to():
    """Guards the configurations: losses, pushes cut off by the end and late replies occur."""
    values = np.random.default_rng(42).normal(size=6) * 10
    _, _, rows = reference_average(values, **AVERAGING_CONFIGS["push-pull-uniform-delay-loss"])
    cycles = AVERAGING_CONFIGS["push-pull-uniform-delay-loss"]["cycles"]
    late = [r for r in rows if r[0] >= cycles]
    assert any(r[4] for r in late), "a reply that lands after the end"
    assert any(not r[4] for r in late), "a push cut off by the end"
    assert any(not r[4] for r in rows if r[0] < cycles), "a message lost in flight"


def test_a_cycle_with_no_event_holds_the_values_before_a_late_reply_lands():
    """Seed 189: no event falls in the last cycle [2, 3), and a reply sent at 1.5 to
    2 s lands after the end (delay 1.5 s). Cycle 2 is the state at 2 s, without it."""
    config = dict(cycles=3, delta=1.0, jitter=1.0, delay=1.5, seed=189)
    snapshots, final, rows = reference_average([0.0, 10.0], **config)
    assert any(r[0] >= 3 and r[4] for r in rows), "a reply lands after the end"
    assert snapshots[2] != final, "the late reply changes the values"
    result = gossip.gossip_average([0.0, 10.0], **config)
    np.testing.assert_array_equal(result.variance,
                                  [population_stats(s)[1] for s in snapshots])


# --- reference: gossip learning ----------------------------------------------

def flat(model):
    return torch.nn.utils.parameters_to_vector(model.parameters()).detach().clone()


def set_flat(model, vector):
    torch.nn.utils.vector_to_parameters(vector.detach().clone(), model.parameters())


def sgd_step(model, X, y, lr):
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(X), y).backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= lr * p.grad


@torch.no_grad()
def evaluate(model, X, y):
    logits = model(X)
    return float(F.cross_entropy(logits, y)), float((logits.argmax(1) == y).float().mean())


def average_merge(own, received):
    return (received + own) / 2


def reference_learning(*, n_nodes=128, split_kind="iid", until=30.0, delta=1.0, jitter=0.1,
                       sgd_time=0.0, delay=0.0, drop_prob=0.0, sampling="uniform", lr=0.1,
                       batch_size=8, eval_every=1.0, seed=0, merge=None):
    """Every observable of a gossip learning run of the digits MLP, one node at a time."""
    merge = merge or average_merge
    dataset = load_digits(seed=seed)
    parts = split(dataset.y_train, n_nodes, kind=split_kind, seed=seed)
    data = NodeData(dataset.X_train, dataset.y_train, parts)
    initial = make_model("mlp", seed=seed, n_features=64, num_classes=10)
    models = [copy.deepcopy(initial) for _ in range(n_nodes)]
    n_params = sum(p.numel() for p in initial.parameters())
    rng = np.random.default_rng([seed, 2])
    batches = torch.Generator().manual_seed(seed)
    pick = peer_picker(n_nodes, sampling, rng, seed)
    events = EventLoop()
    for i in range(n_nodes):
        events.push(rng.uniform(0, delta) + sgd_time, "step", i, None)
    out = dict(times=[], test_loss=[], test_acc=[], mean_steps=[], rows=[], step_times=[])
    steps = [0] * n_nodes
    next_eval = 0.0
    while True:
        # Evaluations at an instant come before the events of that instant.
        while next_eval <= min(events.next_time(), until):
            scores = np.array([evaluate(m, dataset.X_test, dataset.y_test) for m in models])
            out["times"].append(next_eval)
            out["test_loss"].append(scores[:, 0])
            out["test_acc"].append(scores[:, 1])
            out["mean_steps"].append(sum(steps) / n_nodes)
            next_eval += eval_every
        if events.next_time() >= until:
            break
        t, kind, i, payload = events.pop()
        if kind == "receive":
            set_flat(models[i], merge(flat(models[i]), payload))
            continue
        idx = data.node_batch_indices(i, batches, batch_size)
        sgd_step(models[i], data.X[idx], data.y[idx], lr)
        steps[i] += 1
        out["step_times"].append((t, i))
        peer = pick(i)
        arrival = t + delay
        delivered = not is_lost(rng, drop_prob) and arrival < until
        out["rows"].append((int(arrival // delta), i, peer, n_params * FLOAT32_BYTES,
                            delivered))
        if delivered:
            events.push(arrival, "receive", peer, flat(models[i]))
        events.push(next_wake(t, rng, delta, jitter) + sgd_time, "step", i, None)
    out["steps"] = steps
    out["params"] = torch.stack([flat(m) for m in models])
    out["n_params"] = n_params
    out["examples"] = [len(p) for p in parts]
    out["classes"] = [len(np.unique(dataset.y_train.numpy()[p])) for p in parts]
    return out


def three_quarters_received(own, received):
    """A merge that is not the average and not symmetric in its arguments."""
    return 0.25 * own + 0.75 * received


# The batched configurations evaluate between steps too: a batch ends at the
# next evaluation (test_batched_evaluation_sees_only_earlier_steps).
LEARNING_CONFIGS = {
    "shards-uniform-batched": dict(n_nodes=5, split="shards", until=3.0, delta=0.5,
                                   jitter=0.3, sgd_time=0.1, delay=0.2, drop_prob=0.3,
                                   sampling="uniform", lr=0.2, batch_size=4, eval_every=0.75,
                                   seed=7, batch_steps=True),
    "dirichlet-balanced-one-at-a-time": dict(n_nodes=4, split="dirichlet", until=3.0,
                                             delta=0.4, jitter=0.2, sgd_time=0.05, delay=0.3,
                                             drop_prob=0.2, sampling="balanced", lr=0.05,
                                             batch_size=6, eval_every=0.75, seed=3,
                                             batch_steps=False, merge=three_quarters_received),
    "balanced-batched-merge": dict(n_nodes=4, split="iid", until=2.5, delta=0.5, jitter=0.5,
                                   sgd_time=0.02, delay=0.2, drop_prob=0.4,
                                   sampling="balanced", lr=0.3, batch_size=3, eval_every=0.45,
                                   seed=9, batch_steps=True, merge=three_quarters_received),
    # Only the size is set; 4 nodes for 3 s is the smallest run whose outcome
    # depends on the default jitter (see the guard below).
    "defaults": dict(n_nodes=4, until=3.0),
}


def reference_for(config):
    """The reference run of a simulator configuration (which batch_steps must not change)."""
    ref_config = {k: v for k, v in config.items() if k != "batch_steps"}
    if "split" in ref_config:
        ref_config["split_kind"] = ref_config.pop("split")
    return reference_learning(**ref_config)


def assert_same_series(sim, ref):
    assert sim.times == ref["times"]
    assert sim.mean_steps == pytest.approx(ref["mean_steps"], abs=1e-12)
    np.testing.assert_allclose(np.array(sim.test_loss), np.array(ref["test_loss"]), atol=1e-5)
    np.testing.assert_allclose(np.array(sim.test_acc), np.array(ref["test_acc"]), atol=1e-6)


def assert_same_run(sim, ref):
    assert sim.steps.tolist() == ref["steps"]
    torch.testing.assert_close(sim.params, ref["params"], atol=1e-5, rtol=0)
    assert ledger_rows(sim.ledger) == ref["rows"]


@pytest.mark.parametrize("name", LEARNING_CONFIGS)
def test_gossip_learning_matches_reference(name):
    config = LEARNING_CONFIGS[name]
    sim = gossip.gossip_learning(progress=False, **config)
    ref = reference_for(config)
    assert sim.n_nodes == config["n_nodes"] and sim.delta == config.get("delta", 1.0)
    assert_same_series(sim, ref)
    assert_same_run(sim, ref)
    assert sim.n_params == ref["n_params"]
    assert sim.examples_per_node.tolist() == ref["examples"]
    assert sim.classes_per_node.tolist() == ref["classes"]
    arrays = sim.as_arrays()
    assert np.array_equal(arrays["time"], np.array(ref["times"]))
    assert np.array_equal(arrays["mean_steps"], np.array(ref["mean_steps"]))


def test_learning_configs_reach_the_boundaries_they_are_meant_to():
    """Guards the configurations: late and lost messages occur, and batches of steps form."""
    config = LEARNING_CONFIGS["shards-uniform-batched"]
    ref = reference_for(config)
    late = [r for r in ref["rows"] if r[0] * config["delta"] >= config["until"]]
    assert late and not any(r[4] for r in late), "messages cut off by the end"
    assert any(not r[4] for r in ref["rows"] if r not in late), "a message lost in flight"
    assert ref["times"] == [0.0, 0.75, 1.5, 2.25, config["until"]], "evaluations up to until"
    # Steps of distinct nodes within ``delay`` of each other: the simulator batches them.
    pairs = zip(ref["step_times"], ref["step_times"][1:])
    assert any(b[0] - a[0] < config["delay"] and a[1] != b[1] for a, b in pairs)


def test_defaults_config_depends_on_the_defaults():
    """Guards the "defaults" configurations: a changed default would change their outcome."""
    n_nodes, until = LEARNING_CONFIGS["defaults"]["n_nodes"], LEARNING_CONFIGS["defaults"]["until"]
    ref = reference_learning(n_nodes=n_nodes, until=until)
    for changed in (dict(jitter=0.2), dict(eval_every=0.5), dict(lr=0.05)):
        other = reference_learning(n_nodes=n_nodes, until=until, **changed)
        assert (other["rows"], other["times"]) != (ref["rows"], ref["times"]) \
            or not torch.equal(other["params"], ref["params"]), changed
    values = np.random.default_rng(42).normal(size=6) * 10
    assert reference_average(values)[1] != reference_average(values, jitter=0.2)[1]


def test_batched_evaluation_sees_only_earlier_steps():
    """An evaluation inside a batch's window sees the steps before it only (it once
    saw the batch's later steps too)."""
    config = dict(LEARNING_CONFIGS["shards-uniform-batched"], eval_every=0.7)
    sim = gossip.gossip_learning(progress=False, **config)
    ref = reference_for(config)
    assert_same_run(sim, ref)
    assert_same_series(sim, ref)


def test_batched_steps_with_delay_beyond_a_period_keep_time_order():
    config = dict(n_nodes=4, until=2.0, delta=0.3, jitter=0.2, delay=1.0, seed=3,
                  eval_every=2.0, batch_steps=True)
    assert_same_run(gossip.gossip_learning(progress=False, **config), reference_for(config))


# --- reference: the centralized baseline -------------------------------------

def reference_centralized(total_steps, *, lr, batch_size, seed):
    """Plain SGD on all training data, evaluated at step 0, every eval_every and the last."""
    dataset = load_digits(seed=seed)
    model = make_model("mlp", seed=seed, n_features=64, num_classes=10)
    generator = torch.Generator().manual_seed(seed)
    eval_every = max(1, total_steps // 20)
    history = [(0, *evaluate(model, dataset.X_test, dataset.y_test))]
    for step in range(1, total_steps + 1):
        idx = torch.randint(len(dataset.y_train), (batch_size,), generator=generator)
        sgd_step(model, dataset.X_train[idx], dataset.y_train[idx], lr)
        if step % eval_every == 0 or step == total_steps:
            history.append((step, *evaluate(model, dataset.X_test, dataset.y_test)))
    return history, flat(model)


@pytest.fixture(scope="module")
def baseline_run():
    return gossip.gossip_learning(n_nodes=6, until=4.5, delta=0.5, seed=2, progress=False)


@pytest.mark.parametrize("kwargs, expected", [
    (dict(lr=0.07, batch_size=5, seed=4), dict(lr=0.07, batch_size=5, seed=4)),
    (dict(), dict(lr=0.1, batch_size=8, seed=0)),  # the documented defaults
])
def test_centralized_baseline_matches_reference(kwargs, expected, baseline_run):
    run = baseline_run
    total = int(run.steps.sum())
    assert total >= 40  # eval_every = total // 20 is then 2 or more
    baseline = gossip.centralized_baseline(run, **kwargs)
    history, params = reference_centralized(total, **expected)
    assert baseline.steps == [h[0] for h in history]
    np.testing.assert_allclose(baseline.test_loss, [h[1] for h in history], atol=1e-5)
    np.testing.assert_allclose(baseline.test_acc, [h[2] for h in history], atol=1e-6)
    torch.testing.assert_close(flat(baseline.model), params, atol=1e-5, rtol=0)
