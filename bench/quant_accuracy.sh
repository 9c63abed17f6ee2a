#!/usr/bin/env bash
# What int8 costs on models with trained weights (scripts/corpus/trained.py:
# denoisers trained on scikit-image's photos, judged by PSNR on photos they
# were not trained on). For each model: the float -O2 model, refold's
# default int8 (per-channel weights, uint8 activations) and, as the
# baseline, the settings of onnxruntime's quantizer by default (one scale
# per weight tensor, int8 activations, MinMax), each calibrated on the same
# 64 training patches and run in refold's interpreter on 256 evaluation
# patches. Prints PSNR against the clean patches and the output SQNR
# against float. Goals: refold's PSNR within 0.5 dB of float, and its SQNR
# at least 3 dB above the baseline's wherever the baseline loses more than
# 0.1 dB of PSNR (and never below it).
# usage: bench/quant_accuracy.sh [MODEL...]   (repvgg mbv2 resnet vovnet)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${BENCH_OUT:-$ROOT/bench/out}/corpus"
REFOLD="${REFOLD:-$ROOT/build/bin/refold}"
MODELS=("$@")
[ ${#MODELS[@]} -gt 0 ] || MODELS=(repvgg mbv2 resnet vovnet)
REFOLD_WITH_TORCH=1 "$ROOT/scripts/setup.sh" >/dev/null
mkdir -p "$OUT"
missed=()
printf '%-8s %9s %9s %9s %11s %11s  %s\n' model "float dB" "int8 dB" "base dB" "int8 SQNR" "base SQNR" goal
for m in "${MODELS[@]}"; do
  base="$OUT/trained_$m"
  [ -f "${base}_preserve.onnx" ] ||
    /usr/bin/python3 "$ROOT/scripts/corpus/trained.py" "$OUT" --model "$m" >/dev/null
  work="$OUT/qacc_$m"; rm -rf "$work"; mkdir -p "$work"
  "$REFOLD" "${base}_preserve.onnx" -o "$work/float.onnx" --quiet
  "$REFOLD" "${base}_preserve.onnx" -o "$work/int8.onnx" --quiet --quantize=int8 \
    --calibration="${base}_calib.npy"
  "$REFOLD" "${base}_preserve.onnx" -o "$work/base.onnx" --quiet --quantize=int8 \
    --calibration="${base}_calib.npy" --weights=per-tensor --activations=int8 --equalize=false
  for v in float int8 base; do
    "$REFOLD" run "$work/$v.onnx" --input noisy="${base}_eval_x.npy" -o "$work/run_$v" --quiet
  done
  line=$(/usr/bin/python3 - "$work" "${base}_eval_y.npy" "$m" <<'EOF'
import sys
import numpy as np
import onnx
from onnx import numpy_helper
work, clean_path, name = sys.argv[1:]
clean = np.load(clean_path)
out = {v: numpy_helper.to_array(onnx.load_tensor(f"{work}/run_{v}/denoised.pb")) for v in ("float", "int8", "base")}
psnr = {v: 10 * np.log10(1.0 / np.mean((o - clean) ** 2)) for v, o in out.items()}
def sqnr(v):
    f = out["float"].astype(np.float64)
    return 10 * np.log10(np.sum(f ** 2) / np.sum((f - out[v]) ** 2))
s_int8, s_base = sqnr("int8"), sqnr("base")
ok = psnr["float"] - psnr["int8"] <= 0.5 and s_int8 >= s_base - 0.05
if psnr["float"] - psnr["base"] > 0.1:
    ok = ok and s_int8 >= s_base + 3
verdict = "met" if ok else "MISSED"
print(f"{name:8s} {psnr['float']:9.2f} {psnr['int8']:9.2f} {psnr['base']:9.2f} {s_int8:11.1f} {s_base:11.1f}  {verdict}")
EOF
)
  echo "$line"
  [[ "$line" == *MISSED ]] && missed+=("$m")
done
if [ ${#missed[@]} -gt 0 ]; then
  echo "accuracy goal missed: ${missed[*]}"
  exit 1
fi
echo "accuracy goal met on every model"
