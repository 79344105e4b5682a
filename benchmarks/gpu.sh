#!/usr/bin/env bash
# The GPU figures of benchmarks/README.md (issues #24.4 and #28.4), in one run on a
# machine with a CUDA device, from the repository root:
#
#     bash benchmarks/gpu.sh [out-dir]
#
# It uses the python3 that holds torch there (no .venv), the package from this
# tree, and, when PFL_SITE names a folder holding pfl and its pure-Python
# dependencies, pfl. Each part has a time limit so that one slow part cannot
# use up the machine's lease.
out=${1:-.}
export PYTHONPATH="$PWD${PFL_SITE:+:$PFL_SITE}" PYTHONUNBUFFERED=1 TQDM_DISABLE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
echo "== engine: D-PSGD MLP at 128 nodes (a, c), LeNet steps, 10,000 nodes x 100 rounds"
timeout 240 python3 benchmarks/engine.py --device cuda --skip-loop --repeats 3 \
    --large-nodes 10000 --large-rounds 100 --lenet-nodes 10 128 1000 2>&1 | tee "$out/engine.txt"
for strategy in auto vmap; do
    echo "== LeNet cohorts, strategy $strategy"
    timeout 150 python3 benchmarks/cohorts.py --device cuda --strategy "$strategy" --rounds 3 \
        2>&1 | tee "$out/cohorts-$strategy.txt"
done
if [ -n "$PFL_SITE" ] && python3 -c "import pfl.model.pytorch, pfl.algorithm" 2>/dev/null; then
    echo "pfl imports"
else
    echo "pfl does not import here"; python3 -c "import pfl.model.pytorch, pfl.algorithm" 2>&1 | tail -2
fi
