"""run_dpsgd against a plain reference written from the documented rules.

The reference keeps one parameter vector per node and loops over nodes and
messages one at a time. It follows what the docstrings say, and nothing of
the engine's stacking:

* data, model, graph and batches: ``load_digits(seed)``, ``split(seed, alpha,
  shards_per_node)``, ``make_model(seed)``, ``make_topology(seed)``, and one
  batch per node per local step from ``seeded_generator(seed)``
  (:meth:`NodeData.batch`), drawn for every node, taking part or not;
* faults (``dmlbook/faults.py``): a node crashed at round ``c`` is dead from
  round ``c`` on; a live node straggles in round ``r`` when draw ``i`` of
  ``default_rng([faults.seed, r, 1])`` is below ``straggler_prob``; the
  messages sent in round ``r``, in the graph's edge order, are lost when
  their draw of ``default_rng([faults.seed, r, 2])`` is below ``drop_prob``,
  and never reach a dead node;
* a node that takes part steps ``local_steps`` times and sends its model to
  each neighbour; a live node averages its own model and those that reached
  it with its row of ``W``, renormalised; a dead node's model stays; the
  round's train loss is the first local step's (NaN for a node that did not
  step);
* ``"mix-and-step"`` mixes the models as they were before the steps and adds
  each node's change to its mixed model;
* the naive final all-reduce (round ``rounds + 1``): every live node sends to
  every other, grouped by receiver; each live node averages what reached it.

Every field the run returns is compared: parameters, every history series,
and the whole ledger, column by column.
"""

import numpy as np
import pytest
import torch
from torch.func import functional_call

from dmlbook import data
from dmlbook.dpsgd import run_dpsgd
from dmlbook.engine import NodeData, seeded_generator
from dmlbook.faults import Faults
from dmlbook.models import make_model
from dmlbook.topology import make_topology


def _alive(faults, r, n):
    return np.array([r < faults.crash_at.get(i, np.inf) for i in range(n)])


def _takes_part(faults, r, n):
    """Alive, and not straggling this round."""
    alive = _alive(faults, r, n)
    if faults.straggler_prob == 0:
        return alive
    draws = np.random.default_rng([faults.seed, r, 1]).random(n)
    return alive & (draws >= faults.straggler_prob)


def _arrived(faults, r, receivers, n):
    """Which of the messages to ``receivers`` (in send order) arrive in round r."""
    ok = _alive(faults, r, n)[receivers]
    if faults.drop_prob > 0:
        ok &= np.random.default_rng([faults.seed, r, 2]).random(len(receivers)) \
            >= faults.drop_prob
    return ok


class Reference:
    """One model vector per node, and the loops of the documented algorithm."""

    def __init__(self, *, n_nodes, kind, degree, split, alpha, shards_per_node, seed):
        self.digits = data.load_digits(seed=seed)
        parts = data.split(self.digits.y_train, n_nodes, kind=split, seed=seed, alpha=alpha,
                           shards_per_node=shards_per_node)
        self.node_data = NodeData(self.digits.X_train, self.digits.y_train, parts)
        self.topology = make_topology(kind, n_nodes, degree=degree, seed=seed)
        self.module = make_model("mlp", seed=seed)
        start = torch.nn.utils.parameters_to_vector(self.module.parameters()).detach()
        self.x = [start.clone() for _ in range(n_nodes)]
        self.n = n_nodes
        self.nbytes = 4 * start.numel()
        self.ledger = []  # (round, sender, receiver, nbytes, delivered)
        self.rows = {"round": [], "test_loss": [], "test_acc": [], "avg_loss": [],
                     "avg_acc": [], "consensus": [], "train_loss": []}

    def _named(self, vector):
        out, at = {}, 0
        for name, p in self.module.named_parameters():
            out[name] = vector[at:at + p.numel()].view_as(p)
            at += p.numel()
        return out

    def loss(self, vector, X, y):
        logits = functional_call(self.module, self._named(vector), (X,))
        return torch.nn.functional.cross_entropy(logits, y)

    def sgd_step(self, i, X, y, lr):
        vector = self.x[i].clone().requires_grad_()
        loss = self.loss(vector, X, y)
        (grad,) = torch.autograd.grad(loss, vector)
        self.x[i] = (vector - lr * grad).detach()
        return float(loss.detach())

    def evaluate(self, vector):
        X, y = self.digits.X_test, self.digits.y_test
        with torch.no_grad():
            logits = functional_call(self.module, self._named(vector), (X,))
            loss = torch.nn.functional.cross_entropy(logits, y)
            return float(loss), float((logits.argmax(1) == y).float().mean())

    def record(self, r):
        per_node = [self.evaluate(v) for v in self.x]
        mean = torch.stack(self.x).mean(0)
        avg_loss, avg_acc = self.evaluate(mean)
        self.rows["round"].append(r)
        self.rows["test_loss"].append([loss for loss, _ in per_node])
        self.rows["test_acc"].append([acc for _, acc in per_node])
        self.rows["avg_loss"].append(avg_loss)
        self.rows["avg_acc"].append(avg_acc)
        self.rows["consensus"].append(float(np.mean([float((v - mean).norm())
                                                     for v in self.x])))

    def mix(self, models, r, faults, takes_part):
        """Each taking-part node sends along its out-edges; each live node averages."""
        W = self.topology.W
        sent = [(j, i) for j, i in zip(self.topology.src_np, self.topology.dst_np)
                if takes_part[j]]
        arrived = _arrived(faults, r, np.array([i for _, i in sent], dtype=np.int64), self.n)
        self.ledger += [(r, j, i, self.nbytes, bool(ok)) for (j, i), ok in zip(sent, arrived)]
        alive = _alive(faults, r, self.n)
        mixed = []
        for i in range(self.n):
            if not alive[i]:
                mixed.append(models[i])
                continue
            total, weight = W[i, i] * models[i].double(), W[i, i]
            for (j, receiver), ok in zip(sent, arrived):
                if receiver == i and ok:
                    total, weight = total + W[i, j] * models[j].double(), weight + W[i, j]
            mixed.append((total / weight).float())
        return mixed

    def naive_allreduce(self, r, faults):
        alive = _alive(faults, r, self.n)
        sent = [(j, i) for i in range(self.n) for j in range(self.n) if j != i and alive[j]]
        arrived = _arrived(faults, r, np.array([i for _, i in sent], dtype=np.int64), self.n)
        self.ledger += [(r, j, i, self.nbytes, bool(ok)) for (j, i), ok in zip(sent, arrived)]
        mixed = []
        for i in range(self.n):
            got = [self.x[i]] + [self.x[j] for (j, receiver), ok in zip(sent, arrived)
                                 if receiver == i and ok]
            mixed.append(torch.stack(got).mean(0) if alive[i] else self.x[i])
        self.x = mixed

    def run(self, *, rounds, lr, batch_size, local_steps, faults, order, eval_every,
            final_allreduce, seed):
        generator = seeded_generator(seed)
        self.record(0)
        for r in range(1, rounds + 1):
            takes_part = _takes_part(faults, r, self.n)
            before = [v.clone() for v in self.x]
            first_loss = np.full(self.n, np.nan)
            for step in range(local_steps):
                X, y = self.node_data.batch(generator, batch_size)  # every node draws
                for i in range(self.n):
                    if takes_part[i]:
                        loss = self.sgd_step(i, X[i], y[i], lr)
                        first_loss[i] = loss if step == 0 else first_loss[i]
            self.rows["train_loss"].append(first_loss)
            if order == "step-then-mix":
                self.x = self.mix(self.x, r, faults, takes_part)
            else:
                mixed = self.mix(before, r, faults, takes_part)
                self.x = [m + (v - b) for m, v, b in zip(mixed, self.x, before)]
            if r % eval_every == 0 or r == rounds:
                self.record(r)
        if final_allreduce == "naive":
            self.naive_allreduce(rounds + 1, faults)
            self.record(rounds + 1)


CASES = {
    "sheet order, every fault, shards": dict(
        n_nodes=6, kind="regular", degree=2, rounds=4, lr=0.3, batch_size=5, local_steps=2,
        split="shards", alpha=0.5, shards_per_node=3, order="step-then-mix", eval_every=3,
        final_allreduce="naive", seed=3,
        faults=Faults(crash_at={1: 2, 4: 4}, drop_prob=0.3, straggler_prob=0.25, seed=5)),
    "Lian et al.'s order, dirichlet, crash in round 1": dict(
        n_nodes=5, kind="erdos_renyi", degree=None, rounds=3, lr=0.2, batch_size=4,
        local_steps=3, split="dirichlet", alpha=0.3, shards_per_node=2, order="mix-and-step",
        eval_every=2, final_allreduce=None, seed=7,
        faults=Faults(crash_at={0: 1}, drop_prob=0.4, straggler_prob=0.0, seed=2)),
    "a crash in the final all-reduce's round only": dict(
        n_nodes=4, kind="ring", degree=None, rounds=2, lr=0.1, batch_size=3, local_steps=1,
        split="iid", alpha=0.5, shards_per_node=2, order="step-then-mix", eval_every=1,
        final_allreduce="naive", seed=11,
        faults=Faults(crash_at={2: 3}, drop_prob=0.5, straggler_prob=0.5, seed=11)),
    "no faults, iid": dict(
        n_nodes=5, kind="complete", degree=None, rounds=3, lr=0.25, batch_size=6,
        local_steps=2, split="iid", alpha=0.5, shards_per_node=2, order="mix-and-step",
        eval_every=5, final_allreduce="naive", seed=4, faults=Faults()),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_run_dpsgd_equals_the_plain_reference(case):
    reference = Reference(n_nodes=case["n_nodes"], kind=case["kind"], degree=case["degree"],
                          split=case["split"], alpha=case["alpha"],
                          shards_per_node=case["shards_per_node"], seed=case["seed"])
    reference.run(rounds=case["rounds"], lr=case["lr"], batch_size=case["batch_size"],
                  local_steps=case["local_steps"], faults=case["faults"], order=case["order"],
                  eval_every=case["eval_every"], final_allreduce=case["final_allreduce"],
                  seed=case["seed"])
    run = run_dpsgd(n_nodes=case["n_nodes"], topology=case["kind"], degree=case["degree"],
                    rounds=case["rounds"], lr=case["lr"], batch_size=case["batch_size"],
                    local_steps=case["local_steps"], split=case["split"], alpha=case["alpha"],
                    shards_per_node=case["shards_per_node"], faults=case["faults"],
                    final_allreduce=case["final_allreduce"], eval_every=case["eval_every"],
                    seed=case["seed"], order=case["order"], progress=False)

    np.testing.assert_array_equal(run.topology.W, reference.topology.W)
    torch.testing.assert_close(run.nodes.params, torch.stack(reference.x), rtol=0, atol=2e-5)
    history = run.history.as_arrays()
    assert history["round"].tolist() == reference.rows["round"]
    for name in ("test_loss", "test_acc", "avg_loss", "avg_acc", "consensus", "train_loss"):
        np.testing.assert_allclose(history[name], np.array(reference.rows[name]),
                                   rtol=0, atol=2e-5, err_msg=name)
    columns = run.ledger.columns()
    expected = np.array(reference.ledger, dtype=np.int64).reshape(-1, 5)
    for k, name in enumerate(("round", "sender", "receiver", "nbytes", "delivered")):
        np.testing.assert_array_equal(columns[name].astype(np.int64), expected[:, k],
                                      err_msg=name)


def test_the_cases_exercise_every_fault():
    """Each fault the reference models happens in some case: a test of nothing guards nothing."""
    happened = {"crash": 0, "straggle": 0, "loss": 0}
    for case in CASES.values():
        faults, n = case["faults"], case["n_nodes"]
        for r in range(1, case["rounds"] + 1):
            alive, part = _alive(faults, r, n), _takes_part(faults, r, n)
            happened["crash"] += int((~alive).sum())
            happened["straggle"] += int((alive & ~part).sum())
            if faults.drop_prob:
                draws = np.random.default_rng([faults.seed, r, 2]).random(4 * n)
                happened["loss"] += int((draws < faults.drop_prob).sum())
    assert min(happened.values()) > 0, happened
