"""LeNet-sized cohorts (#24.3, #28.3): seconds per round and peak memory.

The sheet's LeNet (85,098 parameters, 3x32x32 inputs) on CIFAR-10-shaped
synthetic data (nothing is downloaded), every case in a fresh process so that
its peak resident memory (``ru_maxrss``) is its own:

* D-PSGD at 128 and 1,024 LeNet nodes (random 8-regular graph, 8 examples a
  node, batch 32);
* FedAvg with 1,000 LeNet clients in one round (pfl's shape: 50 points a
  client, one local epoch at batch 10, i.e. 5 steps).

The engine takes the nodes through each step in chunks where their saved
activations would pass ``dmlbook.engine.ACTIVATION_BUDGET``.

    python benchmarks/cohorts.py            # all cases (minutes on 2 cores)
    python benchmarks/cohorts.py --quick    # 128 nodes only
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SETUP = """
import json, resource, sys, time, torch
sys.path.insert(0, {root!r})
torch.set_num_threads({threads})
from dmlbook import stacked
from dmlbook.data import Dataset
DEVICE, STRATEGY = {device!r}, {strategy!r}
stacked.use_strategy(STRATEGY).__enter__()

def sync():
    if DEVICE != "cpu":
        torch.cuda.synchronize()
from dmlbook.models import LeNet

def cifar_shaped(n_train, n_test=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    return Dataset(torch.randn(n_train, 3, 32, 32, generator=g),
                   torch.randint(0, 10, (n_train,), generator=g),
                   torch.randn(n_test, 3, 32, 32, generator=g),
                   torch.randint(0, 10, (n_test,), generator=g), num_classes=10)

def lenet():
    torch.manual_seed(0)
    return LeNet()
out = {{}}
"""

DPSGD = """
from dmlbook.dpsgd import run_dpsgd
data = cifar_shaped({n} * 8)
run = run_dpsgd(n_nodes={n}, degree=8, rounds={{rounds}}, eval_every={{rounds}}, model=lenet(),
                dataset=data, batch_size=32, lr=0.05, progress=False, device=DEVICE)
out["seconds_per_round"] = run.history.train_seconds / {{rounds}}
out["strategy"] = run.nodes.strategy
"""

CASES = {
    "D-PSGD, 128 LeNet nodes": DPSGD.format(n=128),
    "D-PSGD, 1,024 LeNet nodes": DPSGD.format(n=1024),
    "FedAvg, 1,000 LeNet clients (50 points, 5 steps of 10)": """
from dmlbook.federated import run_fedavg
data = cifar_shaped(1000 * 50)
start = time.perf_counter()
run = run_fedavg(n_clients=1000, rounds={rounds}, local_steps=5, batch_size=10, lr=0.05,
                 model=lenet(), dataset=data, progress=False, device=DEVICE)
sync()
out["seconds_per_round"] = (time.perf_counter() - start) / {rounds}
""",
}

DATA = """
out["data_GiB"] = data.X_train.numel() * 4 / 2**30
"""
FOOTER = """
usage = resource.getrusage(resource.RUSAGE_SELF)
out["peak_GiB"] = usage.ru_maxrss / 2**20
out["cpu_s"] = usage.ru_utime + usage.ru_stime  # the whole process, start-up included
if DEVICE != "cpu":
    out["gpu_peak_GiB"] = torch.cuda.max_memory_allocated() / 2**30
print(json.dumps(out))
"""


def run_case(body: str, threads: int, *, data_bytes: bool = True, device: str = "cpu",
             strategy: str = "auto") -> dict:
    """Run ``body`` after :data:`SETUP` in a fresh process; its ``out`` dict plus ``peak_GiB``."""
    code = SETUP.format(root=str(ROOT), threads=threads, device=device, strategy=strategy) + body + (DATA if data_bytes else "") \
        + FOOTER
    env = {**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if proc.returncode:
        lines = proc.stderr.strip().splitlines()
        return {"error": lines[-1] if lines else f"exit status {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the 128-node case")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--strategy", default="auto", help="the engine's strategy (stacked.py)")
    args = parser.parse_args(argv)
    print(f"# load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores, "
          f"{args.threads} torch threads, {args.rounds} round(s) a case, device {args.device}, "
          f"strategy {args.strategy}")
    print(f"{'case':<58} {'s/round':>9} {'peak GiB':>9} {'data GiB':>9} {'CPU s':>7}")
    for name, body in CASES.items():
        if args.quick and "128" not in name:
            continue
        out = run_case(body.format(rounds=args.rounds), args.threads, device=args.device,
                       strategy=args.strategy)
        if "error" in out:
            print(f"{name:<58} failed: {out['error']}", flush=True)
            continue
        print(f"{name:<58} {out['seconds_per_round']:9.2f} {out['peak_GiB']:9.2f} {out['data_GiB']:9.2f} {out['cpu_s']:7.1f}"
              + (f"  ({out['strategy']})" if "strategy" in out else "")
              + (f"  GPU peak {out['gpu_peak_GiB']:.2f} GiB" if "gpu_peak_GiB" in out else ""),
              flush=True)


if __name__ == "__main__":
    main()
