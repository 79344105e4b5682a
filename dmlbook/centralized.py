"""Centralized SGD: the single-machine baseline every distributed run is compared with."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from . import data as data_mod
from .compute import sgd_step
from .models import check_evaluation_work, check_training_work, model_for
from .units import (MAX_LR, MAX_ROUNDS, check_batch_size, check_diverged, check_int,
                    check_number, check_seed)


@dataclass
class CentralizedResult:
    """Test loss and accuracy after each evaluation, and the wall-clock time."""

    steps: list[int] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    seconds: float = 0.0
    model: torch.nn.Module | None = None


def train_centralized(*, model="mlp", dataset=None, steps: int = 2000, lr: float = 0.1,
                      batch_size: int = 32, eval_every: int = 100,
                      seed: int = 0) -> CentralizedResult:
    """Plain mini-batch SGD on all training data, evaluated on the test set.

    Mini-batches are drawn with replacement, like each node's in the engine,
    so ``steps`` counts the same unit of work as one node-step there.
    ``steps`` is at most :data:`~dmlbook.units.MAX_ROUNDS`; ``batch_size`` at
    most :data:`~dmlbook.units.MAX_BATCH_SIZE`; and ``steps``, each counted as
    :func:`~dmlbook.models.step_cost` node-steps, at most
    :data:`~dmlbook.units.MAX_NODE_STEPS`; its evaluations (every ``eval_every``
    steps, the first and the last), each counted as
    :func:`~dmlbook.models.evaluation_cost` evaluations, at most
    :data:`~dmlbook.units.MAX_NODE_EVALS` where one counts more than one. A loss or model that is no
    longer finite stops the run: "diverged at round (step) r".
    """
    steps = check_int("steps", steps, maximum=MAX_ROUNDS)
    lr = float(check_number("lr", lr, maximum=MAX_LR))
    batch_size = check_batch_size(batch_size)
    eval_every = check_int("eval_every", eval_every, maximum=MAX_ROUNDS)
    seed = check_seed(seed)
    dataset = data_mod.dataset_or_digits(dataset, seed=seed)
    net = model_for(model, dataset, seed=seed)
    check_training_work("steps", steps, net, dataset.X_train, batch_size, "steps")
    check_evaluation_work("eval_every", 1 + steps // eval_every + (steps % eval_every != 0), net,
                          dataset.X_test, "evaluations (1 + steps / eval_every, rounded up)")
    generator = torch.Generator().manual_seed(seed)
    result = CentralizedResult(model=net)
    start = time.perf_counter()

    def evaluate(step):
        with torch.no_grad():
            logits = net(dataset.X_test)
            result.steps.append(step)
            result.test_loss.append(float(F.cross_entropy(logits, dataset.y_test)))
            check_diverged(step, **{"the model": logits})
            result.test_acc.append(float((logits.argmax(1) == dataset.y_test).float().mean()))

    evaluate(0)
    n = len(dataset.y_train)
    for step in range(1, steps + 1):
        idx = torch.randint(n, (batch_size,), generator=generator)
        loss = sgd_step(net, dataset.X_train[idx], dataset.y_train[idx], lr=lr)
        check_diverged(step, loss=loss)
        if step % eval_every == 0 or step == steps:
            evaluate(step)
    result.seconds = time.perf_counter() - start
    return result
