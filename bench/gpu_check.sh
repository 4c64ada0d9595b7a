#!/usr/bin/env bash
# The sedic real-size bench on a CUDA GPU in fp16 (issue 15): the decoder service's GPU path
# (diffusers on CUDA, fp16, SDPA) and the edge encoder's learned-codec analysis in
# onnxruntime-gpu (CUDAExecutionProvider). Prints the same table as the CPU run.
#
#   bash bench/gpu_check.sh [extra bench_sedic.py options, e.g. --sizes 256,512,768 --reps 5]
#
# Weights: the random real-size ones `semlink weights synth` writes (generated into
# $SEMLINK_SYNTH_DIR, default ~/.cache/semlink/synth, when missing; ~7.4 GB).
# Exit status: 0 after the table; 2 when no CUDA GPU is present (nothing was measured).
#
# Lite's perceptual restorer (issue 31, recipe p) on the GPU instead of the sedic bench:
#   SEMLINK_GPU_TRAIN=out/train/perceptual-gpu SEMLINK_GPU_TRAIN_MINUTES=8 bash bench/gpu_check.sh
# trains (or resumes) that run with --device cuda for that long and prints steps per second;
# it needs BSDS500 beside the weights directory ($SEMLINK_WEIGHTS_DIR/../data/train/bsds500,
# by default ../shared/data/train/bsds500) and the LPIPS weights
# make install fetched. The same command continues the run on a later call.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}

if ! "$PY" - <<'PYEOF'
import sys
import torch
if not torch.cuda.is_available():
    sys.exit(1)
print(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}")
PYEOF
then
    echo "NO GPU: torch sees no CUDA device here (torch.cuda.is_available() is False)." >&2
    command -v nvidia-smi >/dev/null && nvidia-smi -L >&2 || echo "nvidia-smi: not found" >&2
    echo "Nothing was measured; run this on a machine with an NVIDIA GPU and its driver." >&2
    exit 2
fi

"$PY" - <<'PYEOF'
import onnxruntime as ort
providers = ort.get_available_providers()
print(f"onnxruntime {ort.__version__}: {', '.join(providers)}")
if "CUDAExecutionProvider" not in providers:
    print("WARNING: onnxruntime has no CUDAExecutionProvider: the edge analysis runs on the CPU")
PYEOF

if [ -n "${SEMLINK_GPU_TRAIN:-}" ]; then
    exec "$(dirname "$PY")/semlink" train perceptual --device cuda --out "$SEMLINK_GPU_TRAIN" \
        --minutes "${SEMLINK_GPU_TRAIN_MINUTES:-8}" "$@"
fi

ROOT=${SEMLINK_SYNTH_DIR:-$HOME/.cache/semlink/synth}
"$PY" -c "from pathlib import Path; from semlink.models.synth import cached; cached(Path('$ROOT'))"
ONNX="$ROOT/onnx"
SEMLINK_REFERENCE_MODELS="$ROOT/codecs" .venv/bin/semlink weights export-onnx "$ONNX"
export SEMLINK_EDGE_ONNX="$ONNX"
exec "$PY" bench/bench_sedic.py --root "$ROOT" --device cuda --fp16 --reps 5 --max-steps 20 "$@"
