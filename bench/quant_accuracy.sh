#!/usr/bin/env bash
# What int8 costs on models with trained weights (scripts/corpus/trained.py:
# denoisers trained on scikit-image's photos, judged by PSNR on photos they
# were not trained on, and a classifier of patches of those photos, judged by
# top-1 on the parts it was not trained on). For each model, each variant
# quantized from the training-form ONNX and run in refold's interpreter on
# the evaluation inputs; the task metric (PSNR against the clean patches, or
# top-1 % and agreement with float's top-1), output SQNR against float:
#   float     the float -O2 model
#   int8      refold's defaults (per-channel weights, uint8 activations,
#             equalization, percentile ranges, bias correction, GPTQ
#             rounding, range search), calibrated on 64 training inputs
#   base      onnxruntime's quantizer by default (one scale per weight tensor,
#             int8 activations, MinMax, nearest rounding, no equalization or
#             bias correction)
#   df        refold data-free (no calibration data; --input-range=-0.5,1.5,
#             what noisy [0, 1] images span; 0,1 for the classifier's clean
#             patches)
#   df-base   data-free with the baseline's settings
# Then the calibration methods side by side (int8 SQNR, range search off),
# which the default method is chosen by.
# Goals: int8 PSNR within 0.5 dB of float (top-1 within 0.5 points and
# agreement >= 99 % for the classifier), its SQNR at least 3 dB above the
# baseline's wherever the baseline loses anything (more than 0.1 dB of PSNR,
# or any top-1 point), and never below it; data-free within 1 dB (1 point)
# of float on the MobileNetV2-style models.
# usage: bench/quant_accuracy.sh [MODEL...]   (repvgg mbv2 resnet vovnet mbv2cls)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${BENCH_OUT:-$ROOT/bench/out}/corpus"
REFOLD="${REFOLD:-$ROOT/build/bin/refold}"
MODELS=("$@")
[ ${#MODELS[@]} -gt 0 ] || MODELS=(repvgg mbv2 resnet vovnet mbv2cls)
REFOLD_WITH_TORCH=1 "$ROOT/scripts/setup.sh" >/dev/null
mkdir -p "$OUT"
DF_BASELINE=(--weights=per-tensor --activations=int8 --equalize=false --bias-correction=false)
BASELINE=("${DF_BASELINE[@]}" --weight-rounding=nearest --calibration-method=minmax --range-search-budget=0)
METHODS=(minmax percentile entropy mse)
missed=()
summary=()
printf '%-8s %-7s %9s %9s %9s %9s %9s %10s %10s %10s  %s\n' model metric float int8 base \
  df df-base "int8 SQNR" "base SQNR" "df SQNR" goal
for m in "${MODELS[@]}"; do
  base="$OUT/trained_$m"
  [ -f "${base}_preserve.onnx" ] ||
    /usr/bin/python3 "$ROOT/scripts/corpus/trained.py" "$OUT" --model "$m" >/dev/null
  work="$OUT/qacc_$m"; rm -rf "$work"; mkdir -p "$work"
  calib=(--calibration="${base}_calib.npy")
  q=(--quiet --quantize=int8)
  DATAFREE=(--input-range=-0.5,1.5)
  [ "$m" != mbv2cls ] || DATAFREE=(--input-range=0,1)
  read -r input output < <(/usr/bin/python3 -c "import onnx, sys; g = onnx.load(sys.argv[1]).graph; \
print(g.input[0].name, g.output[0].name)" "${base}_preserve.onnx")
  "$REFOLD" "${base}_preserve.onnx" -o "$work/float.onnx" --quiet
  "$REFOLD" "${base}_preserve.onnx" -o "$work/int8.onnx" "${q[@]}" "${calib[@]}" \
    --weight-rounding=gptq
  "$REFOLD" "${base}_preserve.onnx" -o "$work/base.onnx" "${q[@]}" "${calib[@]}" "${BASELINE[@]}"
  "$REFOLD" "${base}_preserve.onnx" -o "$work/df.onnx" "${q[@]}" "${DATAFREE[@]}" 2>/dev/null
  "$REFOLD" "${base}_preserve.onnx" -o "$work/dfbase.onnx" "${q[@]}" "${DATAFREE[@]}" \
    "${DF_BASELINE[@]}" 2>/dev/null
  variants=(float int8 base df dfbase)
  for method in "${METHODS[@]}"; do
    "$REFOLD" "${base}_preserve.onnx" -o "$work/m_$method.onnx" "${q[@]}" "${calib[@]}" \
      --calibration-method="$method" --weight-rounding=gptq --range-search-budget=0
    variants+=("m_$method")
  done
  for v in "${variants[@]}"; do
    "$REFOLD" run "$work/$v.onnx" --input "$input=${base}_eval_x.npy" -o "$work/run_$v" --quiet
  done
  line=$(/usr/bin/python3 - "$work" "${base}_eval_y.npy" "$m" "${METHODS[*]}" "$output" <<'PY'
import sys
import numpy as np
import onnx
from onnx import numpy_helper
work, truth_path, name, methods, output = sys.argv[1:]
methods = methods.split()
truth = np.load(truth_path)
classifier = truth.ndim == 1
names = ["float", "int8", "base", "df", "dfbase"] + ["m_" + m for m in methods]
out = {v: numpy_helper.to_array(onnx.load_tensor(f"{work}/run_{v}/{output}.pb")) for v in names}
if classifier:
    metric = {v: 100 * np.mean(o.argmax(1) == truth) for v, o in out.items()}
    agree = {v: 100 * np.mean(o.argmax(1) == out["float"].argmax(1)) for v, o in out.items()}
    loses = lambda v, tol: metric["float"] - metric[v] > tol
    ok = not loses("int8", 0.5) and agree["int8"] >= 99
    base_loses = loses("base", 0)
else:
    metric = {v: 10 * np.log10(1.0 / np.mean((o - truth) ** 2)) for v, o in out.items()}
    loses = lambda v, tol: metric["float"] - metric[v] > tol
    ok = not loses("int8", 0.5)
    base_loses = loses("base", 0.1)
def sqnr(v):
    f = out["float"].astype(np.float64)
    return 10 * np.log10(np.sum(f ** 2) / np.sum((f - out[v]) ** 2))
s = {v: sqnr(v) for v in names if v != "float"}
ok = ok and s["int8"] >= s["base"] - 0.05
if base_loses:
    ok = ok and s["int8"] >= s["base"] + 3
if name.startswith("mbv2"):
    ok = ok and not loses("df", 1.0)
verdict = "met" if ok else "MISSED"
unit = "top-1 %" if classifier else "PSNR dB"
print(f"{name:8s} {unit:7s} {metric['float']:9.2f} {metric['int8']:9.2f} {metric['base']:9.2f} "
      f"{metric['df']:9.2f} {metric['dfbase']:9.2f} {s['int8']:10.1f} {s['base']:10.1f} {s['df']:10.1f}  "
      f"{verdict}" + (f" (top-1 agreement: int8 {agree['int8']:.1f} %, base {agree['base']:.1f} %, "
                      f"df {agree['df']:.1f} %)" if classifier else ""))
print("methods " + " ".join(f"{m}={s['m_' + m]:.2f}" for m in methods))
PY
)
  echo "${line%%$'\n'*}"
  summary+=("$m ${line#*$'\n'}")
  [[ "${line%%$'\n'*}" == *MISSED* ]] && missed+=("$m")
done
echo
echo "calibration methods, int8 output SQNR (dB) against float:"
for entry in "${summary[@]}"; do
  echo "  $entry"
done
if [ ${#missed[@]} -gt 0 ]; then
  echo "accuracy goal missed: ${missed[*]}"
  exit 1
fi
echo "accuracy goal met on every model"
