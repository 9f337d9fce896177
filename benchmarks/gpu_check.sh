#!/usr/bin/env bash
# GPU readiness check, for a CUDA machine with no network and no model weights (see
# benchmarks/gpu_check.py for what is checked). Installs this working tree into the machine's
# Python without fetching anything, keeps every cache in a temporary folder, and prints one
# PASS / FAIL / SKIP line per check and the number of failures (also the exit code).
#
#   bash benchmarks/gpu_check.sh                       # on the GPU machine, from the repository root
#   GPU_CHECK_DEVICE=cpu bash benchmarks/gpu_check.sh  # the same checks on a CPU (tests the script)
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
scratch=$(mktemp -d)
export HF_HUB_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE PYTHONUNBUFFERED=1 \
       COLLM_BENCH_CACHE="$scratch/stages" COLLM_BENCH_DATA="$scratch/data" COLLM_BENCH_MODELS="$scratch/models"
# No dependency is fetched: the machine's torch, transformers and peft are the ones checked.
if ! $PY -m pip install -q --no-deps --no-build-isolation --no-index -e . >"$scratch/pip.log" 2>&1; then
  echo "FAIL install: $(tail -n 1 "$scratch/pip.log")"
  exit 1
fi
echo "PASS install: collm-bench from $(pwd) ($($PY -c 'import transformers, peft; print("transformers", transformers.__version__, "peft", peft.__version__)'))"
$PY benchmarks/gpu_check.py
