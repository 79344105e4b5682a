"""Time and peak memory of runs at the documented bounds (#27.3), outside `make test`.

``dmlbook.units`` promises that a run at a bound finishes on a 2-core laptop
in minutes and within about 1 GiB. Each case below runs in a fresh process
(peak resident memory from ``ru_maxrss``; CPU seconds of the whole process,
start-up included, which a busy machine inflates less than wall-clock
seconds) and prints one table row; the table
in benchmarks/README.md is this script's output.

    python benchmarks/bounds.py            # every case (several minutes on 2 cores)
    python benchmarks/bounds.py --quick    # the all-reduces' single rounds and the cheap cases
    python benchmarks/bounds.py --case gossip   # the cases whose name contains "gossip"
    python benchmarks/bounds.py --case gossip --case naive   # either

The data-parallel runs train the MLP (64-32-10, 2,410 parameters) on 20,000
synthetic examples of 64 features, since the digits have 1,438.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cohorts import run_case  # noqa: E402

PRELUDE = """
from dmlbook.allreduce import train_data_parallel
from dmlbook.data import synthetic_logistic
from dmlbook.dpsgd import run_dpsgd
data = synthetic_logistic(20_000, 64, seed=0)
start = time.perf_counter()
"""

# CIFAR-shaped random images for the LeNet cases (1,024 to train on, 200 to test).
IMAGES = """
import torch
from dmlbook.data import Dataset
g = torch.Generator().manual_seed(0)
images = Dataset(torch.randn(1024, 3, 32, 32, generator=g), torch.randint(0, 10, (1024,), generator=g),
                 torch.randn(200, 3, 32, 32, generator=g), torch.randint(0, 10, (200,), generator=g),
                 num_classes=10)
"""

CASES = {  # name: (code, in --quick)
    "train_data_parallel('naive'), 4,096 workers, 1 round": ("""
run = train_data_parallel("naive", n_workers=4096, rounds=1, dataset=data, progress=False)
out["seconds"] = time.perf_counter() - start
""", True),
    "train_data_parallel('ring'), 2,048 workers, 1 round": ("""
run = train_data_parallel("ring", n_workers=2048, rounds=1, dataset=data, progress=False)
out["seconds"] = time.perf_counter() - start
""", True),
    "run_dpsgd(final_allreduce='ring'), 2,048 nodes, 1 round": ("""
run = run_dpsgd(n_nodes=2048, rounds=1, eval_every=1, final_allreduce="ring", dataset=data,
                progress=False)
out["seconds"] = time.perf_counter() - start
""", False),
    "train_data_parallel('ring') at MAX_RING_STEPS: 1,024 workers, counts_only": ("""
from dmlbook.units import MAX_RING_STEPS
rounds = MAX_RING_STEPS // (2 * 1023)
run = train_data_parallel("ring", n_workers=1024, rounds=rounds, dataset=data, progress=False,
                          counts_only=True)
assert run.ledger.totals().sent == rounds * 2 * 1024 * 1023
out["seconds"] = time.perf_counter() - start
""", False),
    "train_data_parallel('naive') at MAX_RUN_MESSAGES: 4,096 workers x 119 rounds, counts_only": ("""
from dmlbook.units import MAX_NODES, MAX_RUN_MESSAGES
n = MAX_NODES
rounds = MAX_RUN_MESSAGES // (n * (n - 1))
run = train_data_parallel("naive", n_workers=n, rounds=rounds, dataset=data, progress=False,
                          counts_only=True)
assert run.ledger.totals().sent == rounds * n * (n - 1) <= MAX_RUN_MESSAGES
out["seconds"] = time.perf_counter() - start
""", False),
    "train_data_parallel('ring') at MAX_RUN_MESSAGES: 4,096 workers x 59 rounds, counts_only": ("""
from dmlbook.units import MAX_NODES, MAX_RUN_MESSAGES
n = MAX_NODES
rounds = MAX_RUN_MESSAGES // (2 * n * (n - 1))
run = train_data_parallel("ring", n_workers=n, rounds=rounds, dataset=data, progress=False,
                          counts_only=True)
assert run.ledger.totals().sent == rounds * 2 * n * (n - 1) <= MAX_RUN_MESSAGES
out["seconds"] = time.perf_counter() - start
""", False),
    "train_data_parallel('ps') at MAX_NODE_STEPS: 4,096 workers x 2,441 rounds, counts_only": ("""
from dmlbook.units import MAX_NODES, MAX_NODE_STEPS
rounds = MAX_NODE_STEPS // MAX_NODES
run = train_data_parallel("ps", n_workers=MAX_NODES, rounds=rounds, dataset=data, progress=False,
                          counts_only=True)
assert run.ledger.totals().sent == rounds * 2 * MAX_NODES
out["seconds"] = time.perf_counter() - start
""", False),
    "run_dpsgd at MAX_NODE_STEPS: ring of 1,000 nodes x 10,000 rounds, counts_only": ("""
from dmlbook.units import MAX_NODE_STEPS
rounds = MAX_NODE_STEPS // 1000
run = run_dpsgd(n_nodes=1000, topology="ring", rounds=rounds, eval_every=rounds, progress=False,
                counts_only=True)
assert run.ledger.totals().sent == rounds * 2000
out["seconds"] = time.perf_counter() - start
""", False),
    "run_dpsgd at MAX_RUN_MESSAGES: complete graph of 1,000 nodes x 2,002 rounds, counts_only": ("""
from dmlbook.units import MAX_RUN_MESSAGES
rounds = MAX_RUN_MESSAGES // (1000 * 999)
run = run_dpsgd(n_nodes=1000, topology="complete", rounds=rounds, eval_every=rounds,
                progress=False, counts_only=True)
assert run.ledger.totals().sent == rounds * 999_000 <= MAX_RUN_MESSAGES
out["seconds"] = time.perf_counter() - start
""", False),
    "run_dpsgd at MAX_NODE_EVALS: 999 nodes x 99 rounds, evaluated every round": ("""
from dmlbook.units import MAX_NODE_EVALS
run = run_dpsgd(n_nodes=999, rounds=99, eval_every=1, progress=False)
assert len(run.history.rounds) * 1000 == MAX_NODE_EVALS
out["seconds"] = time.perf_counter() - start
""", False),
    "run_fedavg at MAX_LEDGER_RECORDS: 4,096 clients x 2,048 rounds of 1 local step": ("""
from dmlbook.federated import run_fedavg
from dmlbook.units import MAX_LEDGER_RECORDS
run = run_fedavg(n_clients=4096, rounds=2048, local_steps=1, dataset=data, progress=False)
assert len(run.ledger) == 2 * 4096 * 2048 == MAX_LEDGER_RECORDS
out["seconds"] = time.perf_counter() - start
""", False),
    "run_decentralized_exchange at MAX_NODE_EVALS: 999 nodes x 99 rounds": ("""
from dmlbook.federated import run_decentralized_exchange
from dmlbook.units import MAX_NODE_EVALS
run = run_decentralized_exchange(n_nodes=999, rounds=99, progress=False)
assert len(run.history.rounds) * 1000 == MAX_NODE_EVALS
out["seconds"] = time.perf_counter() - start
""", False),
    "Nodes: 5 x 19,999,960 parameters (MAX_STACKED_PARAMS = 10**8, a 64-266,666-10 MLP), run_dpsgd 1 round": ("""
from torch import nn
from dmlbook.units import MAX_STACKED_PARAMS
H = (MAX_STACKED_PARAMS // 5 - 10) // 75  # 64-H-10: 75 H + 10 parameters
torch.manual_seed(0)
wide = nn.Sequential(nn.Linear(64, H), nn.ReLU(), nn.Linear(H, 10))
assert 5 * sum(p.numel() for p in wide.parameters()) == 5 * 19_999_960 <= MAX_STACKED_PARAMS
start = time.perf_counter()
run = run_dpsgd(n_nodes=5, topology="ring", rounds=1, model=wide, progress=False)
out["seconds"] = time.perf_counter() - start
""", False),
    "run_dpsgd full ledger at MAX_LEDGER_RECORDS (complete 1,000, 16 rounds) + summaries": ("""
from dmlbook.units import MAX_LEDGER_RECORDS
start = time.perf_counter()
run = run_dpsgd(n_nodes=1000, topology="complete", rounds=16, eval_every=16, progress=False)
assert 16 * 999_000 == len(run.ledger) <= MAX_LEDGER_RECORDS
run.ledger.columns(); run.ledger.totals(); run.ledger.per_node("received", nbytes=True)
run.ledger.per_round()
out["seconds"] = time.perf_counter() - start
""", False),
    "the same run with counts_only=True (its peak without the records)": ("""
start = time.perf_counter()
run = run_dpsgd(n_nodes=1000, topology="complete", rounds=16, eval_every=16, progress=False,
                counts_only=True)
assert run.ledger.totals().sent == 16 * 999_000
out["seconds"] = time.perf_counter() - start
""", False),
    "gossip_learning at MAX_GOSSIP_NODE_EVALS (1,000 nodes x 100 evaluations, ~1 cycle)": ("""
from dmlbook.gossip import gossip_learning
from dmlbook.units import MAX_GOSSIP_NODE_EVALS
start = time.perf_counter()
# until / eval_every + 1 = 100 evaluations of 1,000 nodes within one cycle
# (delta = 1 s): the evaluations, not the events (about 1,000 steps).
run = gossip_learning(n_nodes=1000, until=99 / 128, eval_every=1 / 128, progress=False)
assert len(run.times) * 1000 == MAX_GOSSIP_NODE_EVALS
out["seconds"] = time.perf_counter() - start
""", False),
    "gossip_learning at MAX_GOSSIP_STEPS (1,000 nodes, delay 0: one node a step)": ("""
from dmlbook.gossip import gossip_learning
from dmlbook.units import MAX_GOSSIP_STEPS
start = time.perf_counter()
run = gossip_learning(n_nodes=1000, until=MAX_GOSSIP_STEPS / 1000, eval_every=MAX_GOSSIP_STEPS / 1000,
                      delay=0.0, progress=False)
out["seconds"] = time.perf_counter() - start
out["steps"] = float(run.mean_steps[-1] * 1000)
""", False),
    "run_dpsgd of the sheet's LeNet at MAX_NODE_STEPS, each step counted as 328: 128 x 238": (IMAGES + """
from dmlbook.models import LeNet, forward_macs, step_cost
from dmlbook.units import MAX_NODE_STEPS
cost = step_cost(forward_macs(LeNet(), images.X_train[:2]), 32)
rounds = MAX_NODE_STEPS // (128 * cost)
assert (cost, rounds) == (328, 238)
start = time.perf_counter()
run = run_dpsgd(n_nodes=128, degree=8, rounds=rounds, eval_every=rounds, model=LeNet(),
                dataset=images, batch_size=32, lr=0.05, progress=False)
out["seconds"] = time.perf_counter() - start
""", False),
    "run_dpsgd of LeNet at MAX_NODE_EVALS, each evaluation counted as 64: 16 x 97": (IMAGES + """
from dmlbook.models import LeNet, evaluation_cost, forward_macs
from dmlbook.units import MAX_NODE_EVALS
cost = evaluation_cost(forward_macs(LeNet(), images.X_test[:2]), 200)
rounds = MAX_NODE_EVALS // (16 * cost) - 1  # 15 nodes and their average, rounds + 1 times
assert (cost, rounds, 16 * (rounds + 1) * cost) == (64, 96, 99_328)
try:  # one round more passes the bound
    run_dpsgd(n_nodes=15, degree=4, rounds=rounds + 1, model=LeNet(), dataset=images)
    raise AssertionError("not refused")
except ValueError as error:
    assert "MAX_NODE_EVALS; an evaluation" in str(error), error
start = time.perf_counter()
run = run_dpsgd(n_nodes=15, degree=4, rounds=rounds, eval_every=1, model=LeNet(),
                dataset=images, batch_size=32, lr=0.05, progress=False)
out["seconds"] = time.perf_counter() - start
out["evaluation_seconds"] = out["seconds"] - run.history.train_seconds
""", False),
    "gossip_average at MAX_GOSSIP_EVENTS (4,096 nodes x 488 cycles)": ("""
from dmlbook.gossip import gossip_average
from dmlbook.units import MAX_GOSSIP_EVENTS
start = time.perf_counter()
run = gossip_average(list(range(4096)), cycles=MAX_GOSSIP_EVENTS // 4096)
out["seconds"] = time.perf_counter() - start
""", False),
    "plot_cumulative_cost at MAX_CURVE_ROUNDS, drawn to a PNG": ("""
import io
from dmlbook.costs import MAX_CURVE_ROUNDS
from dmlbook.plotting import plot_cumulative_cost
start = time.perf_counter()
fig = plot_cumulative_cost(4_950_544, rounds=MAX_CURVE_ROUNDS, clients_per_round=200,
                           usd_per_gib=0.03)
fig.savefig(io.BytesIO(), format="png")
out["seconds"] = time.perf_counter() - start
""", True),
    "Ledger at MAX_ROUND, counts-only and full: record + per_round()": ("""
from dmlbook.ledger import MAX_ROUND, Ledger
start = time.perf_counter()
for counts_only in (True, False):
    ledger = Ledger(4, counts_only=counts_only)
    ledger.record(MAX_ROUND, 0, 1, 8)
    assert ledger.per_round()[MAX_ROUND] == 1
out["seconds"] = time.perf_counter() - start
""", True),
    "compute_profile: 64 worker counts (MAX_WORKER_COUNTS) of 4,096, 100 repeats": ("""
from dmlbook.allreduce import compute_profile
start = time.perf_counter()
compute_profile((4096,) * 64, repeats=100)
out["seconds"] = time.perf_counter() - start
""", False),
    "traffic_vs_workers((1,438, 1,438), rounds=1): the digits' largest count, three schemes": ("""
from dmlbook.allreduce import traffic_vs_workers
start = time.perf_counter()
traffic_vs_workers((1438, 1438), rounds=1)
out["seconds"] = time.perf_counter() - start
""", False),
}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--case", action="append", default=[],
                        help="only the cases whose name contains this (may be repeated)")
    args = parser.parse_args(argv)
    print(f"# load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores, "
          f"{args.threads} torch threads")
    print(f"| {'case':<70} | {'seconds':>8} | {'CPU s':>8} | {'peak GiB':>8} | load |")
    print(f"|{'-' * 72}|{'-' * 9}:|{'-' * 9}:|{'-' * 9}:|-----:|")
    for name, (code, quick) in CASES.items():
        if args.quick and not quick or args.case and not any(c in name for c in args.case):
            continue
        out = run_case(PRELUDE + code, args.threads, data_bytes=False)
        if "error" in out:
            print(f"| {name:<70} | failed: {out['error']} |", flush=True)
            continue
        print(f"| {name:<70} | {out['seconds']:8.1f} | {out['cpu_s']:8.1f} | "
              f"{out['peak_GiB']:8.2f} | {os.getloadavg()[0]:4.1f} |", flush=True)
        if "evaluation_seconds" in out:
            print(f"| {'  of which evaluating':<70} | {out['evaluation_seconds']:8.1f} | | | |",
                  flush=True)


if __name__ == "__main__":
    main()
