#!/usr/bin/env bash
# The interpreter against onnxruntime (1 thread, all graph optimizations) on
# torch-exported models with random weights and randomized BatchNorm
# statistics: max relative error (goal <= 1e-4) and single-thread latency
# ratio (goal for ResNet-50: <= 3x), both measured in the same run.
#   bench/interpreter_vs_ort.sh [model ...]   (default: resnet50 mobilenet_v3_large convnext_tiny deit_tiny)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${BENCH_OUT:-$ROOT/bench/out}"
REFOLD_WITH_TORCH=1 "$ROOT/scripts/setup.sh" >/dev/null
mkdir -p "$OUT"
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(resnet50 mobilenet_v3_large convnext_tiny deit_tiny)
printf "%-20s %14s %14s %14s %8s\n" model "max rel error" "interpreter" "onnxruntime" ratio
status=0
for m in "${models[@]}"; do
  onnx="$OUT/$m.onnx"
  [ -f "$onnx" ] || /usr/bin/python3 "$ROOT/bench/export_torchvision.py" "$m" "$onnx" 2>/dev/null
  dir="$OUT/$m.run"
  interp=$("$ROOT/build/bin/refold" run "$onnx" -o "$dir" --time-runs 5 --quiet | sed -n 's/interpreter: median \([0-9.]*\) ms.*/\1/p')
  report=$(node "$ROOT/bench/ort_check_run.js" "$onnx" "$dir" --time 10) || status=1
  err=$(echo "$report" | sed -n 's/.*max relative error vs onnxruntime \(.*\)/\1/p' | sort -g | tail -1)
  ort=$(echo "$report" | sed -n 's/onnxruntime: median \([0-9.]*\) ms.*/\1/p')
  ratio=$(awk -v a="$interp" -v b="$ort" 'BEGIN { printf "%.2fx", a / b }')
  printf "%-20s %14s %11s ms %11s ms %8s\n" "$m" "$err" "$interp" "$ort" "$ratio"
done
exit $status
