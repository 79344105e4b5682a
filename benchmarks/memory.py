"""Peak memory and time of the large runs the ledger and the naive all-reduce must survive.

Each case runs in a fresh process, so that its peak resident memory (ru_maxrss)
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
                progress=False)
out["seconds"] = time.perf_counter() - start
out["records"] = len(run.ledger)
out["ledger_bytes"] = run.ledger.nbytes
""",
    "D-PSGD 4,096 nodes x 50 rounds + naive all-reduce, counts-only ledger": """
start = time.perf_counter()
run = run_dpsgd(n_nodes=4096, rounds=50, eval_every=50, final_allreduce="naive",
                progress=False, counts_only=True)
out["seconds"] = time.perf_counter() - start
out["records"] = len(run.ledger)
out["ledger_bytes"] = run.ledger.nbytes
""",
}

PRELUDE = """
import json, resource, time
import torch
torch.set_num_threads(1)
from dmlbook.dpsgd import run_dpsgd
from dmlbook.engine import Nodes, naive_allreduce
from dmlbook.ledger import Ledger, RECORD_BYTES
from dmlbook.models import make_model
out = {"record_bytes": RECORD_BYTES}
"""
EPILOGUE = """
out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def main() -> None:
    for name, body in CASES.items():
        proc = subprocess.run([sys.executable, "-c", PRELUDE + body + EPILOGUE],
                              capture_output=True, text=True, check=True)
        print(f"{name}: {json.loads(proc.stdout.strip().splitlines()[-1])}", flush=True)


if __name__ == "__main__":
    main()
