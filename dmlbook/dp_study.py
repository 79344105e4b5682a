"""Exercise 3's one scenario and its runs over several seeds.

:data:`SCENARIO` holds every setting of the chapter (the equivalence runs, the
failure runs and their assumed timeouts, message loss, and the alpha-beta
example); the chapter, its live panels and its precomputed explorers read it.
The functions below run :func:`dmlbook.allreduce.train_data_parallel` for
each seed and summarise what holds over the seeds.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import numpy as np

from .comm_model import SCHEMES
from .sheet import SHEET
from .units import MAX_ROUNDS, check_int, check_seed

__all__ = ["Ex3Scenario", "SCENARIO", "FAILURE_CASES", "FAILURES", "failure_run",
           "failure_case", "data_parallel_round",
           "softmax_gradient", "digits_numpy",
           "equivalence_runs", "failure_runs", "lossy_runs", "stalls"]


@dataclass(frozen=True)
class Ex3Scenario:
    """Every setting of exercise 3's chapter, in one place."""

    seeds: tuple = (0, 1, 2)
    lr: float = 0.3  # trains the digits MLP in a few rounds (0.1 barely moves it in 20)
    batch_size: int = 32
    # "The same algorithm": three schemes from the same seed.
    equal_workers: int = 4
    equal_rounds: int = 10
    # Failures: one crash, under assumed timeouts (rounds, not seconds).
    fail_workers: int = 8
    fail_rounds: int = 30
    crash_round: int = 10
    detect_rounds: int = 2  # PS and naive all-reduce wait this long for a dead worker
    ring_rebuild_rounds: int = 5  # the ring needs this long to re-form without it
    failover_rounds: int = 2  # a worker takes over a dead server after this long
    # Message loss.
    drop_prob: float = 0.01
    loss_rounds: int = 20
    # The alpha-beta example: exercise 1's LeNet on 16 workers.
    ab_workers: int = 16
    ab_params: int = SHEET.lenet_params
    link_bps: float = 1e9
    alpha_s: float = 1e-3

    @property
    def assumptions(self) -> dict:
        """The assumed timeouts, as keyword arguments of ``train_data_parallel``."""
        return dict(detect_rounds=self.detect_rounds,
                    ring_rebuild_rounds=self.ring_rebuild_rounds,
                    failover_rounds=self.failover_rounds)

    def describe_assumptions(self) -> str:
        return (f"learning rate {self.lr:g}; a dead worker is waited for "
                f"{self.detect_rounds} rounds (PS, naive), the ring is rebuilt after "
                f"{self.ring_rebuild_rounds}, a worker takes over a dead server after "
                f"{self.failover_rounds}")

    def as_dict(self) -> dict:
        return asdict(self)


SCENARIO = Ex3Scenario()

def data_parallel_round(params: np.ndarray, grads: np.ndarray, lr: float) -> np.ndarray:
    """One synchronous data-parallel step, written out: ``x - lr * mean_i g_i``.

    ``params`` (P,) is the model every worker holds, ``grads`` (n, P) one
    gradient per worker. A parameter server and an all-reduce both compute
    exactly this; they differ in who adds the gradients up.
    """
    grads = np.asarray(grads, dtype=float)
    if grads.ndim != 2 or grads.shape[1] != np.shape(params)[0]:
        raise ValueError(f"grads must be (n_workers, {np.shape(params)[0]}), got {grads.shape}")
    return np.asarray(params, dtype=float) - lr * grads.mean(axis=0)


def softmax_gradient(W: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Gradient of the mean cross-entropy of a linear softmax model ``X @ W`` (no bias)."""
    logits = X @ W
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1.0
    return X.T @ p / len(y)


def digits_numpy(seed: int = 0):
    """The digits' train and test split as NumPy arrays: ``X_train, y_train, X_test, y_test``."""
    from .data import load_digits

    d = load_digits(seed=check_seed(seed))
    return (d.X_train.numpy().astype(float), d.y_train.numpy(),
            d.X_test.numpy().astype(float), d.y_test.numpy())


def _seeds(seeds, scenario: Ex3Scenario) -> tuple:
    seeds = scenario.seeds if seeds is None else tuple(seeds)
    if not 1 <= len(seeds) <= 20:
        raise ValueError(f"seeds must hold 1 to 20 seeds, got {len(seeds)}")
    return tuple(check_seed(s) for s in seeds)


def equivalence_runs(scenario: Ex3Scenario = SCENARIO, seeds=None) -> list[dict]:
    """Per seed, ``{scheme: result}`` of the three schemes from that seed."""
    from .allreduce import train_data_parallel

    return [{s: train_data_parallel(s, n_workers=scenario.equal_workers,
                                    rounds=scenario.equal_rounds, lr=scenario.lr,
                                    batch_size=scenario.batch_size, seed=seed, progress=False)
             for s in SCHEMES} for seed in _seeds(seeds, scenario)]


# label: (scheme, failure); failure is "none", "worker" (the last one crashes),
# "server" (the one server crashes) or "failover" (it crashes and a worker takes over).
FAILURE_CASES = {
    "no failure": ("ps", "none"),
    "PS (one server), a worker crashes": ("ps", "worker"),
    "naive all-reduce, a worker crashes": ("naive", "worker"),
    "ring all-reduce, a worker crashes": ("ring", "worker"),
    "PS (one server), the server crashes, no failover": ("ps", "server"),
    "PS (one server), the server crashes, failover": ("ps", "failover"),
}
FAILURES = ("none", "worker", "server", "failover")


@functools.lru_cache(maxsize=64)
def failure_run(scheme: str, failure: str, n_workers: int, rounds: int, crash_round: int,
                seed: int = 0, scenario: Ex3Scenario = SCENARIO):
    """One run with one crash under the scenario's assumptions (cached: the chapter's
    runs and its explorer share them; the result must not be changed)."""
    from .allreduce import train_data_parallel
    from .faults import Faults

    if failure not in FAILURES:
        raise ValueError(f"failure must be one of {FAILURES}, got {failure!r}")
    n = check_int("n_workers", n_workers)
    if failure in ("server", "failover") and scheme != "ps":
        raise ValueError(f"failure: {failure!r} needs a server; scheme {scheme!r} has none")
    node = {"none": None, "worker": n - 1, "server": n, "failover": n}[failure]
    crash = check_int("crash_round", crash_round)
    faults = Faults(crash_at={} if node is None else {node: crash})
    return train_data_parallel(scheme, n_workers=n, rounds=check_int("rounds", rounds,
                                                                     maximum=MAX_ROUNDS),
                               lr=scenario.lr, batch_size=scenario.batch_size, faults=faults,
                               failover=failure == "failover", seed=check_seed(seed),
                               progress=False, **scenario.assumptions)


def failure_case(label: str, scenario: Ex3Scenario = SCENARIO, *, seed: int = 0,
                 n_workers: int | None = None, rounds: int | None = None,
                 crash_round: int | None = None):
    """One failure run of :data:`FAILURE_CASES` under the scenario's assumptions."""
    if label not in FAILURE_CASES:
        raise ValueError(f"label must be one of {list(FAILURE_CASES)}, got {label!r}")
    scheme, failure = FAILURE_CASES[label]
    return failure_run(scheme, failure,
                       scenario.fail_workers if n_workers is None else n_workers,
                       scenario.fail_rounds if rounds is None else rounds,
                       scenario.crash_round if crash_round is None else crash_round,
                       seed, scenario)


def failure_runs(scenario: Ex3Scenario = SCENARIO, seeds=None) -> dict[str, list]:
    """``{label: [result per seed]}`` for every case of :data:`FAILURE_CASES`."""
    from .progress import steps

    seeds = _seeds(seeds, scenario)
    jobs = [(label, s) for s in seeds for label in FAILURE_CASES]
    out = {label: [] for label in FAILURE_CASES}
    for label, s in steps(jobs, "failure runs (case x seed)"):
        out[label].append(failure_case(label, scenario, seed=s))
    return out


def lossy_runs(scenario: Ex3Scenario = SCENARIO, seeds=None) -> dict[str, list]:
    """``{scheme: [result per seed]}`` with each message lost with ``drop_prob``."""
    from .allreduce import train_data_parallel
    from .faults import Faults

    seeds = _seeds(seeds, scenario)
    return {s: [train_data_parallel(s, n_workers=scenario.fail_workers,
                                    rounds=scenario.loss_rounds, lr=scenario.lr,
                                    batch_size=scenario.batch_size, seed=seed, progress=False,
                                    faults=Faults(drop_prob=scenario.drop_prob, seed=seed + 1))
                for seed in seeds] for s in SCHEMES}


def stalls(result) -> int:
    """Rounds in which the model did not change."""
    return result.updated[1:].count(False)
