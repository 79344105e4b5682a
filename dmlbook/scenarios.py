"""The scenarios of exercises 4-6, and their runs, each trained once.

Each chapter has one scenario: its settings in one place. The chapter's
runs, its Try-this answers, the live panel's defaults and the static explorer
(:mod:`dmlbook.explore`) read it; the runs are cached per settings and seed,
so that the page and its explorer show the same run, trained once per build.
"""

from __future__ import annotations

from .sheet import SHEET

#: Runs kept per exercise; a live panel's further runs push out the oldest.
MAX_CACHED_RUNS = 64


def _once(cache: dict, key, make):
    """``make()`` on one torch thread, the first time ``key`` is asked for; then its result.

    Exercises 4-6 train each run once: the chapter, its Try-this answers and
    the static explorer read the same cached run.
    """
    from . import pinned_threads

    if key not in cache:
        with pinned_threads(1):
            value = make()
        while len(cache) >= MAX_CACHED_RUNS:
            cache.pop(next(iter(cache)))  # the oldest
        cache[key] = value
    return cache[key]


#: Exercise 4's scenario: the chapter's FedAvg runs, the panel's defaults and the explorer.
EX4_SCENARIO = dict(n_clients=10, rounds=30, local_steps=5, lr=0.1, batch_size=32)
_EX4_ROWS: dict = {}


def compression_rows(method, level, rounds=EX4_SCENARIO["rounds"], *, seed=0) -> list[dict]:
    """:func:`dmlbook.federated.compression_table` rows of one setting (updates, parameters).

    Cached per (method, level, rounds, seed): the chapter's table, its
    Try-this answers and the explorer show the same runs, trained once.
    """
    from . import federated

    kw = {**EX4_SCENARIO, "rounds": rounds}
    return _once(_EX4_ROWS, (method, level, rounds, seed),
                 lambda: federated.compression_table(((method, level),), seed=seed, **kw))


#: Exercise 5's scenario for Δ, the SGD time, loss and sampling: the chapter's
#: runs of these, the panel's defaults and the explorer (which shares its runs).
EX5_SCENARIO = dict(n_nodes=32, until=30.0, delta=1.0, delay=0.1, lr=0.5, batch_size=8)
_EX5_RUNS: dict = {}
_EX5_DEFAULTS = dict(drop_prob=0.0, sampling="uniform", sgd_time=0.0, jitter=0.1)


def gossip_run(*, seed=0, **settings):
    """:func:`dmlbook.gossip.gossip_learning` at :data:`EX5_SCENARIO` with ``settings``.

    Cached per settings and seed: the chapter's figures, its Try-this answers
    and the explorer show the same runs, simulated once.
    """
    from . import gossip

    kw = {**EX5_SCENARIO, **_EX5_DEFAULTS, **settings}
    return _once(_EX5_RUNS, (tuple(sorted(kw.items())), seed),
                 lambda: gossip.gossip_learning(**kw, seed=seed, progress=False))


#: Exercise 6's scenario: the sheet's 128 nodes, degree 8 and 50 steps, and the
#: chapter's training settings. The panel's defaults and the explorer use it.
EX6_SCENARIO = dict(n_nodes=SHEET.dpsgd_nodes, degree=SHEET.dpsgd_degree,
                    rounds=SHEET.dpsgd_steps, lr=0.5, batch_size=32)
_EX6_RUNS: dict = {}


def dpsgd_run(*, seed=0, **settings):
    """:func:`dmlbook.dpsgd.run_dpsgd` at :data:`EX6_SCENARIO` with ``settings``,
    ending with a naive all-reduce. Cached per settings and seed: the chapter's
    runs, its Try-this answers and the explorer show the same runs, trained once.
    """
    from . import dpsgd

    kw = {**EX6_SCENARIO, "split": "iid", "final_allreduce": "naive", **settings}
    return _once(_EX6_RUNS, (tuple(sorted(kw.items())), seed),
                 lambda: dpsgd.run_dpsgd(**kw, seed=seed, progress=False))
