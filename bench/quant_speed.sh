#!/usr/bin/env bash
# int8 against float in onnxruntime (one thread, all graph optimizations):
# for each model, refold -O2 writes the float deploy model and refold
# --quantize=int8 the QDQ model (calibrated on random samples: speed does
# not depend on the weights); both are timed interleaved. Prints the
# latency ratio int8 / float (goal <= 0.6 on a CPU with AVX-512 VNNI), the
# Conv/Gemm/MatMul nodes onnxruntime still runs in float after its QDQ
# fusion (goal: none) and the model size ratio.
# usage: bench/quant_speed.sh [MODEL...] [--runs N] [--activations uint8|int8]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${BENCH_OUT:-$ROOT/bench/out}/corpus"
REFOLD="${REFOLD:-$ROOT/build/bin/refold}"
RUNS=20 ACT=uint8
source "$ROOT/bench/corpus_models.sh"
MODELS="resnet18:zoo:resnet18 resnet50:zoo:resnet50 mobilenet_v2:zoo:mobilenet_v2 repvgg_a0:corpus:repvgg:a0"
selected=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="$2"; shift 2 ;;
    --activations) ACT="$2"; shift 2 ;;
    *) selected+=("$1"); shift ;;
  esac
done
wanted() { [ ${#selected[@]} -eq 0 ] && return 0; for s in "${selected[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }
REFOLD_WITH_TORCH=1 "$ROOT/scripts/setup.sh" >/dev/null
mkdir -p "$OUT"
missed=()
printf '%-14s %10s %10s %10s %12s %10s  %s\n' model "float ms" "int8 ms" "int8/float" "float convs" "size" goal
for entry in $MODELS; do
  name=${entry%%:*} rest=${entry#*:}
  wanted "$name" || continue
  if [ "${rest%%:*}" = zoo ]; then src=$(zoo_model "${rest#zoo:}")
  else src="$(corpus_base "${rest#corpus:}")_preserve.onnx"; fi
  work="$OUT/q_$name"; mkdir -p "$work"
  random_calibration "$src" "$work/calib.npy"
  "$REFOLD" "$src" -o "$work/float.onnx" --quiet --dim batch=1 --dim N=1
  "$REFOLD" "$src" -o "$work/int8.onnx" --quiet --dim batch=1 --dim N=1 --quantize=int8 \
    --calibration="$work/calib.npy" --activations="$ACT"
  times=$(node "$ROOT/bench/ort_latency.js" "$work/float.onnx" "$work/int8.onnx" --runs "$RUNS")
  f=$(echo "$times" | awk '/^float.onnx/ {print $3}') q=$(echo "$times" | awk '/^int8.onnx/ {print $3}')
  # Nodes onnxruntime runs as float Conv/Gemm/MatMul (FusedConv included).
  float_nodes=$(node "$ROOT/bench/ort_profile.js" "$work/int8.onnx" --runs 1 --top 0 |
                awk '$1 ~ /^(Conv|FusedConv|Gemm|FusedGemm|MatMul|FusedMatMul)$/ {n += $(NF - 1)} END {print n + 0}')
  ratio=$(awk -v a="$q" -v b="$f" 'BEGIN {printf "%.2f", a / b}')
  size=$(awk -v a="$(stat -c %s "$work/int8.onnx")" -v b="$(stat -c %s "$work/float.onnx")" 'BEGIN {printf "%.2f", a / b}')
  verdict=$(awk -v r="$ratio" -v n="$float_nodes" 'BEGIN {print (r <= 0.6 && n == 0) ? "met (<= 0.6, none float)" : "MISSED"}')
  [[ "$verdict" == MISSED* ]] && missed+=("$name")
  printf '%-14s %10.2f %10.2f %10s %12d %10s  %s\n' "$name" "$f" "$q" "$ratio" "$float_nodes" "${size}x" "$verdict"
done
if [ ${#missed[@]} -gt 0 ]; then
  echo "int8 speed goal missed: ${missed[*]}"
  exit 1
fi
echo "int8 speed goal met on every model"
