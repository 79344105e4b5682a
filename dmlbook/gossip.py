"""Exercise 5: gossip averaging and gossip learning, as event-driven simulations.

Time is continuous. A priority queue holds timed events; each node runs

* an **active thread**: wait ``delta`` (with ``jitter``), [take an SGD step
  that lasts ``sgd_time``], pick a peer, send;
* a **passive thread**: on receiving a message, aggregate it.

Messages take ``delay`` seconds and are lost with probability ``drop_prob``;
a message counts as delivered only if it is not lost and arrives before the
run ends (``until``, or ``cycles * delta``). Peers are picked ``"uniform"``-ly at random, or ``"balanced"``: the ``k``-th
message of node ``i`` goes to ``(i + s_k) mod n`` with a shift ``s_k`` drawn
from a seed all nodes share, so that each node is picked exactly once per
``k``. Every message goes through the ledger, with the *cycle* (``floor(time /
delta)``) of its arrival as its round; records are written in batches.
"""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from .centralized import train_centralized
from .engine import Nodes, prepare, progress_bar
from .models import check_evaluation_work, check_training_work
from .faults import lost
from .ledger import Ledger
from .units import (MAX_GOSSIP_EVENTS, MAX_GOSSIP_NODE_EVALS, MAX_GOSSIP_STEPS, MAX_LR,
                    MAX_NODES, MAX_ROUNDS, check_batch_size, check_choice, check_diverged,
                    check_int, check_number, check_probability, check_seed)

SAMPLING = ("uniform", "balanced")
PROTOCOLS = ("push-pull", "push")
#: Longest gossip period Δ, in seconds (a million seconds: about 11.6 days).
MAX_PERIOD_S = 1e6
#: Largest magnitude of a value gossip_average averages (its square, the
#: variance, stays a finite float64 over MAX_NODES nodes).
MAX_GOSSIP_VALUE = 1e150
# The closed forms of a node's load under uniform peers live with the other counts.
from .messages import (MAX_LOAD_K, MAX_LOAD_NODES, load_quantile,  # noqa: E402,F401
                       uniform_load_prediction)


class _LedgerBuffer:
    """Messages collected in lists and written to a :class:`Ledger` in batches.

    One ``Ledger.record`` call per message costs a chunk of five arrays per
    message; a batch of ``size`` messages costs one chunk.
    """

    def __init__(self, ledger: Ledger, nbytes: int, size: int = 4096):
        self.ledger, self.nbytes, self.size = ledger, nbytes, size
        self.rows: tuple[list, list, list, list] = ([], [], [], [])

    def add(self, round: int, sender: int, receiver: int, delivered: bool) -> None:
        for column, value in zip(self.rows, (round, sender, receiver, delivered)):
            column.append(value)
        if len(self.rows[0]) >= self.size:
            self.flush()

    def flush(self) -> None:
        rounds, senders, receivers, delivered = self.rows
        if rounds:
            self.ledger.record(np.array(rounds, dtype=np.int64), np.array(senders),
                               np.array(receivers), self.nbytes,
                               np.array(delivered, dtype=bool))
            self.rows = ([], [], [], [])


class PeerSampler:
    """Who node ``i`` sends its next message to."""

    def __init__(self, n: int, sampling: str, rng: np.random.Generator, shared_seed: int):
        self.n, self.sampling, self.rng = n, check_choice("sampling", sampling, SAMPLING), rng
        self.sent = np.zeros(n, dtype=np.int64)
        self._shifts = np.random.default_rng([shared_seed, 99])
        self._shift_list: list[int] = []

    def _shift(self, k: int) -> int:
        while len(self._shift_list) <= k:
            self._shift_list.append(int(self._shifts.integers(1, self.n)))
        return self._shift_list[k]

    def next(self, i: int) -> int:
        k = self.sent[i]
        self.sent[i] += 1
        if self.sampling == "balanced":
            return (i + self._shift(k)) % self.n
        peer = int(self.rng.integers(self.n - 1))
        return peer + (peer >= i)  # uniform over the others


@dataclass(order=True)
class Event:
    time: float
    seq: int
    kind: str = field(compare=False)
    node: int = field(compare=False)
    payload: object = field(compare=False, default=None)
    sender: int = field(compare=False, default=-1)


class EventQueue:
    """Timed events in time order (ties in the order they were scheduled)."""

    def __init__(self):
        self._heap: list[Event] = []
        self._seq = 0

    def push(self, time, kind, node, payload=None, sender=-1):
        # NaN compares false with everything and would break the heap's order.
        if not 0 <= time < math.inf:
            raise ValueError(f"time must be a finite number >= 0, got {time!r}")
        heapq.heappush(self._heap, Event(time, self._seq, kind, node, payload, sender))
        self._seq += 1

    def pop(self) -> Event:
        return heapq.heappop(self._heap)

    def __len__(self):
        return len(self._heap)

    def peek(self) -> Event | None:
        """The next event, left in the queue."""
        return self._heap[0] if self._heap else None

    def peek_time(self) -> float:
        return self._heap[0].time if self._heap else math.inf


def _check_common(n, delta, jitter, delay, drop_prob, sampling, *, periods):
    """The arguments both protocols share, each checked once.

    ``periods`` bounds the run's length in periods Δ: the delay is at most that long.
    """
    n = check_int("n_nodes", n, minimum=2, maximum=MAX_NODES)
    delta = check_number("delta", delta, maximum=MAX_PERIOD_S)
    jitter = check_probability("jitter", jitter)
    delay = check_number("delay", delay, allow_zero=True, maximum=periods * delta)
    drop_prob = check_probability("drop_prob", drop_prob)
    sampling = check_choice("sampling", sampling, SAMPLING)
    return n, delta, jitter, delay, drop_prob, sampling


def _period(rng, delta, jitter):
    return delta * (1 + jitter * rng.uniform(-1, 1))


@dataclass
class AveragingResult:
    """Per cycle (``cycle[k] * delta`` seconds): mean, variance and sum of the values."""

    cycle: np.ndarray
    mean: np.ndarray
    variance: np.ndarray
    total: np.ndarray
    values: np.ndarray
    ledger: Ledger


def gossip_average(values, *, cycles: int = 20, delta: float = 1.0, jitter: float = 0.1,
                   delay: float = 0.0, drop_prob: float = 0.0, sampling: str = "uniform",
                   seed: int = 0, protocol: str = "push-pull",
                   handlers=None) -> AveragingResult:
    """Gossip averaging of one number per node, ``"push-pull"`` or ``"push"``.

    Active thread of ``i``: every ``delta``, send ``x_i`` to a peer ``j``.
    Push-pull: ``j`` computes ``d = (x_i - x_j) / 2``, sets ``x_j += d`` and
    replies ``d``; on the reply ``i`` sets ``x_i -= d``. Each exchange moves
    ``d`` from one node to the other, so the sum never changes unless a reply
    is lost; without delay an exchange averages the pair. Push (the message
    pattern of gossip learning): ``j`` sets ``x_j = (x_i + x_j) / 2`` and
    nothing goes back, so the sum, and with it the mean, drifts.
    ``handlers``, push-pull only: a pair ``(on_push, on_reply)`` used instead
    of the rules above: ``x_j, reply = on_push(x_j, x_i)`` and
    ``x_i = on_reply(x_i, reply)`` (the workbook's check passes a student's here).
    """
    try:
        x = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("values must be a list of finite numbers, one per node") from None
    if x.ndim != 1 or not 2 <= len(x) <= MAX_NODES or not np.isfinite(x).all():
        raise ValueError(f"values must be a list of 2 to {MAX_NODES} finite numbers, "
                         f"one per node, got shape {x.shape}")
    if np.abs(x).max() > MAX_GOSSIP_VALUE:
        raise ValueError(f"values must be at most {MAX_GOSSIP_VALUE:g} in magnitude (their "
                         f"variance must stay a finite float), got {np.abs(x).max():g}")
    seed = check_seed(seed)
    cycles = check_int("cycles", cycles, maximum=MAX_ROUNDS)
    if len(x) * cycles > MAX_GOSSIP_EVENTS:
        raise ValueError(f"cycles must keep nodes x cycles <= {MAX_GOSSIP_EVENTS:,} "
                         f"(MAX_GOSSIP_EVENTS), got {len(x) * cycles:,}")
    n, delta, jitter, delay, drop_prob, sampling = _check_common(
        len(x), delta, jitter, delay, drop_prob, sampling, periods=cycles)
    protocol = check_choice("protocol", protocol, PROTOCOLS)
    if handlers is not None and (protocol != "push-pull" or not isinstance(handlers, tuple)
                                 or len(handlers) != 2 or not all(map(callable, handlers))):
        raise ValueError("handlers must be None, or (on_push, on_reply) with protocol='push-pull'")
    rng = np.random.default_rng([seed, 1])
    sampler = PeerSampler(n, sampling, rng, seed)
    queue, ledger = EventQueue(), Ledger(n)
    records = _LedgerBuffer(ledger, nbytes=8)  # one float64 per message
    for i in range(n):
        queue.push(rng.uniform(0, delta), "wake", i)
    snapshots = [x.copy()]
    end = cycles * delta

    def send(t, src, dst, kind, payload):
        arrival = t + delay
        ok = not lost(rng, drop_prob)
        # A push that arrives after the end is never answered: not delivered.
        # A reply already on its way still lands (see below).
        delivered = ok and (kind == "reply" or arrival < end)
        records.add(int(arrival // delta), src, dst, delivered)
        if delivered:
            queue.push(arrival, kind, dst, payload, sender=src)

    while queue.peek_time() < end:
        # Close the cycles that end before the next event.
        while len(snapshots) * delta <= queue.peek_time():
            snapshots.append(x.copy())
        ev = queue.pop()
        if ev.kind == "wake":
            send(ev.time, ev.node, sampler.next(ev.node), "push", x[ev.node])
            queue.push(ev.time + _period(rng, delta, jitter), "wake", ev.node)
        elif ev.kind == "push" and protocol == "push":
            x[ev.node] = (ev.payload + x[ev.node]) / 2
        elif handlers is not None and ev.kind == "push":
            x[ev.node], reply = handlers[0](float(x[ev.node]), float(ev.payload))
            send(ev.time, ev.node, ev.sender, "reply", reply)
        elif handlers is not None:
            x[ev.node] = handlers[1](float(x[ev.node]), ev.payload)
        elif ev.kind == "push":
            d = (ev.payload - x[ev.node]) / 2
            x[ev.node] += d
            send(ev.time, ev.node, ev.sender, "reply", d)
        else:  # reply
            x[ev.node] -= ev.payload
    # The cycles that ended with no event in them hold the values as they are
    # now, before any late reply lands.
    while len(snapshots) < cycles:
        snapshots.append(x.copy())
    # Replies already on their way still land (no new exchanges start), so
    # that the final values hold every unit of mass that was not lost.
    while len(queue):
        ev = queue.pop()
        if ev.kind == "reply" and handlers is not None:
            x[ev.node] = handlers[1](float(x[ev.node]), ev.payload)
        elif ev.kind == "reply":
            x[ev.node] -= ev.payload
    records.flush()
    while len(snapshots) <= cycles:
        snapshots.append(x.copy())
    snaps = np.array(snapshots)
    return AveragingResult(np.arange(cycles + 1), snaps.mean(1), snaps.var(1),
                           snaps.sum(1), x, ledger)


def push_pull_variance_factor() -> float:
    """Theory: push-pull averaging with uniform peers shrinks the expected variance
    by ``1 / (2 sqrt(e))``, about 0.30, per cycle (Jelasity, Montresor and
    Babaoglu, 2005)."""
    return 1 / (2 * math.sqrt(math.e))


def variance_factor_per_cycle(result: AveragingResult, cycles: int = 10) -> float:
    """Measured: the geometric mean of the variance ratio over the first ``cycles``
    cycles, ``(var[cycles] / var[0]) ** (1 / cycles)``."""
    if not isinstance(result, AveragingResult):
        raise ValueError(f"result must be an AveragingResult of gossip_average, got {result!r}")
    cycles = check_int("cycles", cycles)
    if result.variance[0] == 0:
        raise ValueError("result's values agree from the start (variance 0): there is no "
                         "variance to shrink, so no factor per cycle")
    if cycles >= len(result.variance):
        raise ValueError(f"cycles must be below the {len(result.variance)} cycles "
                         f"recorded, got {cycles}")
    return float((result.variance[cycles] / result.variance[0]) ** (1 / cycles))


@dataclass
class GossipLearningResult:
    """Per evaluation time: every node's test accuracy and loss, and the mean
    number of SGD steps a node had taken; the ledger; step counts; final models;
    the data each node held; the wall-clock seconds the simulation took."""

    times: list[float] = field(default_factory=list)
    test_acc: list[np.ndarray] = field(default_factory=list)
    test_loss: list[np.ndarray] = field(default_factory=list)
    mean_steps: list[float] = field(default_factory=list)
    ledger: Ledger = field(default_factory=Ledger)
    steps: np.ndarray | None = None  # SGD steps per node
    delta: float = 1.0
    n_nodes: int = 0
    params: torch.Tensor | None = None  # (n_nodes, n_params), at ``until``
    n_params: int = 0
    examples_per_node: np.ndarray | None = None
    classes_per_node: np.ndarray | None = None
    wall_seconds: float = 0.0

    def as_arrays(self):
        return {"time": np.array(self.times), "test_acc": np.array(self.test_acc),
                "test_loss": np.array(self.test_loss),
                "mean_steps": np.array(self.mean_steps)}


def aggregate(own: torch.Tensor, received: torch.Tensor) -> torch.Tensor:
    """The sheet's AGGREGATE: ``x <- (m.x + x) / 2``."""
    return (received + own) / 2


def gossip_learning(*, n_nodes: int = 128, model="mlp", dataset=None, split: str = "iid",
                    until: float = 30.0, delta: float = 1.0, jitter: float = 0.1,
                    sgd_time: float = 0.0, delay: float = 0.0, drop_prob: float = 0.0,
                    sampling: str = "uniform", lr: float = 0.1, batch_size: int = 8,
                    eval_every: float = 1.0, seed: int = 0,
                    progress: bool | None = None,
                    batch_steps: bool = True, merge=None) -> GossipLearningResult:
    """The sheet's gossip learning, simulated in continuous time.

    Active thread: loop { wait ``delta``; ``x <- SGD(x)`` (takes ``sgd_time``
    seconds); ``p <- random peer``; send(p, x) }. Passive thread: on receive
    ``m``: ``x <- (m.x + x) / 2``. Every node is evaluated on the test set
    every ``eval_every`` simulated seconds until ``until``, at most
    :data:`~dmlbook.units.MAX_GOSSIP_NODE_EVALS` node evaluations in all
    (``n_nodes`` x (``until / eval_every`` + 1), an evaluation of a large model
    or test set counting as several: :func:`~dmlbook.models.evaluation_cost`), and at most
    :data:`~dmlbook.units.MAX_GOSSIP_STEPS` SGD steps (``n_nodes`` x ``until /
    delta``, a step of a large model or batch counting as several:
    :func:`~dmlbook.models.step_cost`). A message counts as delivered only if it
    is not lost and arrives before ``until``.
    ``batch_steps=False`` computes one SGD step at a time instead of batching
    steps that cannot influence each other: slower, same parameters.
    ``merge(own, received)``, if given, is the passive thread's rule instead
    of :func:`aggregate` (the workbook's check passes a student's merge here).
    """
    n, delta, jitter, delay, drop_prob, sampling = _check_common(
        n_nodes, delta, jitter, delay, drop_prob, sampling, periods=MAX_ROUNDS)
    until = check_number("until", until, maximum=MAX_ROUNDS * delta)
    if n * until / delta > MAX_GOSSIP_STEPS:
        raise ValueError(f"until must keep n_nodes x until / delta <= {MAX_GOSSIP_STEPS:,} "
                         f"(MAX_GOSSIP_STEPS), got {n * until / delta:,.0f}")
    eval_every = check_number("eval_every", eval_every)
    if eval_every < until / MAX_ROUNDS:
        raise ValueError(f"eval_every must keep until / eval_every <= {MAX_ROUNDS:,}, "
                         f"got {eval_every!r}")
    evaluations = n * (math.floor(until / eval_every) + 1)
    if evaluations > MAX_GOSSIP_NODE_EVALS:
        raise ValueError(f"eval_every must keep n_nodes x evaluations (until / eval_every + 1) "
                         f"<= {MAX_GOSSIP_NODE_EVALS:,} (MAX_GOSSIP_NODE_EVALS), got {evaluations:,} "
                         f"(eval_every={eval_every!r})")
    if delay > until:
        raise ValueError(f"delay must be at most until ({until!r} s), got {delay!r}")
    sgd_time = check_number("sgd_time", sgd_time, allow_zero=True, maximum=until)
    batch_size = check_batch_size(batch_size, n)
    lr = float(check_number("lr", lr, maximum=MAX_LR))
    seed = check_seed(seed)
    if not isinstance(batch_steps, (bool, np.bool_)):
        raise ValueError(f"batch_steps must be True or False, got {batch_steps!r}")
    if merge is not None and not callable(merge):
        raise ValueError(f"merge must be None or a function, got {type(merge).__name__}")
    merge = aggregate if merge is None else merge
    started = time.perf_counter()
    setup = prepare(model, n, dataset=dataset, split=split, seed=seed)
    check_training_work("until", math.ceil(n * until / delta), setup.module,
                        setup.dataset.X_train, batch_size, "n_nodes x until / delta",
                        maximum=MAX_GOSSIP_STEPS, bound="MAX_GOSSIP_STEPS")
    check_evaluation_work("eval_every", evaluations, setup.module, setup.dataset.X_test,
                          f"n_nodes x evaluations (eval_every={eval_every!r})",
                          maximum=MAX_GOSSIP_NODE_EVALS, bound="MAX_GOSSIP_NODE_EVALS")
    module, dataset, node_data = setup.module, setup.dataset, setup.node_data
    nodes = Nodes(module, n)
    rng = np.random.default_rng([seed, 2])
    batch_gen = torch.Generator().manual_seed(seed)
    sampler = PeerSampler(n, sampling, rng, seed)
    queue = EventQueue()
    result = GossipLearningResult(ledger=Ledger(n), delta=delta, n_nodes=n)
    records = _LedgerBuffer(result.ledger, nbytes=nodes.payload_bytes)
    steps = np.zeros(n, dtype=np.int64)
    # A batch may span no longer than a message's delay (no member can hear from
    # another) nor than a node's shortest period (no member's next step can fall
    # before the batch's last): then the batch takes its steps, and their random
    # draws, in the order one step at a time takes them.
    window = min(delay, delta * (1 - jitter) + sgd_time) if batch_steps else 0.0
    # Waking up is implicit: a node's next event is the end of its SGD step,
    # ``delta`` (jittered) after its last send plus ``sgd_time``.
    for i in range(n):
        queue.push(rng.uniform(0, delta) + sgd_time, "step", i)

    def evaluate(t):
        check_diverged(int(t // delta), **{"the models": nodes.params})
        loss, acc = nodes.evaluate(dataset.X_test, dataset.y_test)
        result.times.append(t)
        result.test_loss.append(loss)
        result.test_acc.append(acc)
        result.mean_steps.append(float(steps.mean()))

    next_eval = 0.0
    bar = progress_bar(int(until / eval_every), progress, "gossip learning")
    while True:
        t_next = queue.peek_time()
        while next_eval <= min(t_next, until):
            evaluate(next_eval)
            next_eval += eval_every
            bar.update()
        if t_next >= until:
            break
        ev = queue.pop()
        if ev.kind == "receive":  # passive thread
            nodes.params[ev.node] = merge(nodes.params[ev.node], ev.payload)
            continue
        # Steps of distinct nodes that end within ``window`` of each other cannot
        # influence each other (their messages arrive ``delay`` later): compute
        # their gradients in one batch. Deliveries in between to other nodes
        # are applied in order; one to a node already in the batch ends it, and
        # so does the next evaluation (it sees the steps before it only).
        batch, members = [ev], {ev.node}
        while queue.peek_time() < min(ev.time + window, until, next_eval):
            head = queue.peek()
            if head.node in members:
                break
            queue.pop()
            if head.kind == "receive":
                nodes.params[head.node] = merge(nodes.params[head.node], head.payload)
            else:
                batch.append(head)
                members.add(head.node)
        ids = [b.node for b in batch]
        idx = torch.stack([node_data.node_batch_indices(i, batch_gen, batch_size) for i in ids])
        params = nodes.params[ids].detach().requires_grad_()
        logits = nodes.forward(params, node_data.X[idx])
        loss = torch.nn.functional.cross_entropy(
            logits.flatten(0, 1), node_data.y[idx].flatten(), reduction="none")
        loss = loss.view(len(ids), -1).mean(1).sum()
        nodes.params[ids] = params.detach() - lr * torch.autograd.grad(loss, params)[0]
        for b in batch:
            i = b.node
            steps[i] += 1
            peer = sampler.next(i)
            arrival = b.time + delay
            # Delivered: not lost, and there before the run ends.
            delivered = not lost(rng, drop_prob) and arrival < until
            records.add(int(arrival // delta), i, peer, delivered)
            if delivered:
                queue.push(arrival, "receive", peer, nodes.params[i].clone(), sender=i)
            queue.push(b.time + _period(rng, delta, jitter) + sgd_time, "step", i)
    bar.close()
    records.flush()
    result.steps = steps
    result.params = nodes.params.clone()
    result.n_params = nodes.flat.n_params
    result.examples_per_node = node_data.sizes.numpy().copy()
    bounds = np.concatenate([[0], np.cumsum(result.examples_per_node)])
    labels = node_data.y.cpu().numpy()
    result.classes_per_node = np.array([len(np.unique(labels[a:b]))
                                        for a, b in zip(bounds[:-1], bounds[1:])])
    result.wall_seconds = time.perf_counter() - started
    return result


def received_per_cycle(ledger: Ledger, n_nodes: int, cycles: int) -> np.ndarray:
    """``(cycles, n_nodes)``: messages each node received in each full cycle."""
    if not isinstance(ledger, Ledger):
        raise ValueError(f"ledger must be a dmlbook.ledger.Ledger, got {type(ledger).__name__}")
    n_nodes = check_int("n_nodes", n_nodes, maximum=MAX_NODES)
    cycles = check_int("cycles", cycles, minimum=0, maximum=MAX_ROUNDS)
    c = ledger.columns()
    mask = c["delivered"] & (c["round"] < cycles)
    counts = np.zeros((cycles, n_nodes), dtype=np.int64)
    np.add.at(counts, (c["round"][mask], c["receiver"][mask]), 1)
    return counts


def centralized_baseline(result: GossipLearningResult, *, model="mlp", dataset=None,
                         lr: float = 0.1, batch_size: int = 8, seed: int = 0):
    """Centralized SGD with as many gradient steps as all gossip nodes took together."""
    if not isinstance(result, GossipLearningResult) or result.steps is None:
        raise ValueError("result must be a finished GossipLearningResult")
    steps = int(result.steps.sum())
    if not 1 <= steps <= MAX_ROUNDS:
        raise ValueError(f"result's nodes must have taken 1 to {MAX_ROUNDS:,} SGD steps "
                         f"together (the baseline takes as many), got {steps:,}")
    return train_centralized(model=model, dataset=dataset, steps=steps, lr=lr,
                             batch_size=batch_size, eval_every=max(1, steps // 20), seed=seed)
