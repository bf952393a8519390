#!/usr/bin/env bash
# One prepared GPU benchmark: random-weight bert-base / MiniLM-L6 / GPT-2 shapes at seq 128,
# batch 256, torch CUDA fp32 / bf16 / fp16 (SDPA): model-only forward vs recfeat end to end
# (tokenisation overlapped with GPU work) vs sentence-transformers encode when installed.
# Installs nothing from the network; everything runs under `timeout`; the table prints last.
#
#   bash benchmarks/gpu.sh             # on the GPU machine (< 5 minutes)
#   bash benchmarks/gpu.sh --dry-run   # any machine: CPU, tiny sizes, checks the code paths
#   COMPILE=1 bash benchmarks/gpu.sh   # also time torch.compile (bf16), slower start
set -euo pipefail
cd "$(dirname "$0")/.."

DRY=""
if [[ "${1:-}" == "--dry-run" ]]; then DRY="--dry-run"; fi
# The whole run must leave room to rerun it once inside a 10-minute slot.
LIMIT="${GPU_BENCH_TIMEOUT:-270}"
if [[ -n "${PYTHON:-}" ]]; then PY="$PYTHON"
elif [[ -x .venv/bin/python ]]; then PY=.venv/bin/python
else PY=python3; fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 RECFEAT_PROGRESS=0 RECFEAT_LOAD_PLUGINS=""
export TOKENIZERS_PARALLELISM=true
export RECFEAT_CACHE_DIR="${RECFEAT_CACHE_DIR:-${TMPDIR:-/tmp}/recfeat-bench-cache}"

echo "gpu.sh: python $("$PY" -c 'import sys; print(sys.version.split()[0])'), $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null || echo 'no nvidia-smi')"

if ! "$PY" -c "import recfeat.bench.backends" 2>/dev/null; then
    echo "gpu.sh: installing recfeat (editable, no deps, no network)"
    if ! timeout 120 "$PY" -m pip install --no-deps --no-build-isolation -q -e . ; then
        # No setuptools/wheel there: expose the package-dir mapping with symlinks instead.
        echo "gpu.sh: pip install failed; using a symlinked source tree on PYTHONPATH"
        SHIM="$(mktemp -d)"; mkdir "$SHIM/recfeat"
        for f in core/*; do ln -s "$PWD/$f" "$SHIM/recfeat/$(basename "$f")"; done
        ln -s "$PWD/plugins" "$SHIM/recfeat/plugins"; ln -s "$PWD/exporters" "$SHIM/recfeat/exporters"
        export PYTHONPATH="$SHIM${PYTHONPATH:+:$PYTHONPATH}"
    fi
fi

ARGS=($DRY)
if [[ "${COMPILE:-0}" == "1" ]]; then ARGS+=(--compile); fi
OUT="${GPU_BENCH_OUT:-benchmarks/results/gpu}"
if [[ -n "$DRY" ]]; then OUT="${GPU_BENCH_OUT:-$(mktemp -d)/gpu-dry-run}"; fi
timeout --kill-after=10 "$LIMIT" "$PY" benchmarks/bench_gpu.py "${ARGS[@]}" --out "$OUT"
