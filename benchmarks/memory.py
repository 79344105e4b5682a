"""Peak memory and time of the large runs the ledger and the naive all-reduce must survive.

The digits have only 1,438 training examples, so the 4,096-node runs train
on 20,000 synthetic examples of 64 features (the same MLP shape). Each case
runs in a fresh process, so that its peak resident memory (ru_maxrss)
is its own. Run: ``python benchmarks/memory.py`` (about a minute).
"""

from __future__ import annotations

import json
import subprocess
import sys

CASES = {
    "import (baseline)": "",
    "naive all-reduce, 4,096 nodes": """
nodes = Nodes(make_model("mlp"), 4096)
ledger = Ledger(4096)
start = time.perf_counter()
naive_allreduce(nodes, round=1, ledger=ledger)
out["seconds"] = time.perf_counter() - start
out["records"] = len(ledger)
out["ledger_bytes"] = ledger.nbytes
""",
    "D-PSGD 4,096 nodes x 50 rounds + naive all-reduce, full ledger": """
start = time.perf_counter()
run = run_dpsgd(n_nodes=4096, rounds=50, eval_every=50, final_allreduce="naive",
                dataset=synthetic_logistic(20_000, 64, seed=0), progress=False)
out["seconds"] = time.perf_counter() - start
out["records"] = len(run.ledger)
out["ledger_bytes"] = run.ledger.nbytes
""",
    "D-PSGD 4,096 nodes x 50 rounds + naive all-reduce, counts-only ledger": """
start = time.perf_counter()
run = run_dpsgd(n_nodes=4096, rounds=50, eval_every=50, final_allreduce="naive",
                dataset=synthetic_logistic(20_000, 64, seed=0), progress=False,
                counts_only=True)
out["seconds"] = time.perf_counter() - start
out["records"] = len(run.ledger)
out["ledger_bytes"] = run.ledger.nbytes
""",
}

PRELUDE = """
import json, resource, time
import torch
torch.set_num_threads(1)
from dmlbook.data import synthetic_logistic
from dmlbook.dpsgd import run_dpsgd
from dmlbook.collectives import naive_allreduce
from dmlbook.engine import Nodes
from dmlbook.ledger import Ledger, RECORD_BYTES
from dmlbook.models import make_model
out = {"record_bytes": RECORD_BYTES}
"""
EPILOGUE = """
out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def main(only: str = "") -> None:
    for name, body in CASES.items():
        if only not in name:
            continue
        proc = subprocess.run([sys.executable, "-c", PRELUDE + body + EPILOGUE],
                              capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"{name} failed:\n{proc.stderr[-2000:]}")
        print(f"{name}: {json.loads(proc.stdout.strip().splitlines()[-1])}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "")
