"""Time and peak memory of runs at the documented bounds (#27.3), outside `make test`.

``dmlbook.units`` promises that a run at a bound finishes on a 2-core laptop
in minutes and within about 1 GiB. Each case below runs in a fresh process
(peak resident memory from ``ru_maxrss``; CPU seconds of the whole process,
start-up included, which a busy machine inflates less than wall-clock
seconds) and prints one table row; the table
in benchmarks/README.md is this script's output.

    python benchmarks/bounds.py            # every case (several minutes on 2 cores)
    python benchmarks/bounds.py --quick    # one round of each all-reduce only

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
    "train_data_parallel('ring'), 1,024 workers x 100 rounds, counts_only": ("""
run = train_data_parallel("ring", n_workers=1024, rounds=100, dataset=data, progress=False,
                          counts_only=True)
out["seconds"] = time.perf_counter() - start
""", False),
}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    print(f"# load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores, "
          f"{args.threads} torch threads")
    print(f"| {'case':<70} | {'seconds':>8} | {'CPU s':>8} | {'peak GiB':>8} |")
    print(f"|{'-' * 72}|{'-' * 9}:|{'-' * 9}:|{'-' * 9}:|")
    for name, (code, quick) in CASES.items():
        if args.quick and not quick:
            continue
        out = run_case(PRELUDE + code, args.threads, data_bytes=False)
        if "error" in out:
            print(f"| {name:<70} | failed: {out['error']} |", flush=True)
            continue
        print(f"| {name:<70} | {out['seconds']:8.1f} | {out['cpu_s']:8.1f} | "
              f"{out['peak_GiB']:8.2f} |", flush=True)


if __name__ == "__main__":
    main()
