#!/usr/bin/env bash
# RepVGG-A0 in training form: onnxruntime latency (1 thread) of the original,
# of refold -O2's output and of the deploy twin, measured interleaved in one
# run. Goal: refold's output within 2% of the deploy twin.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${BENCH_OUT:-$ROOT/bench/out}/corpus"
REFOLD_WITH_TORCH=1 "$ROOT/scripts/setup.sh" >/dev/null
mkdir -p "$OUT"
[ -f "$OUT/repvgg_a0_deploy.onnx" ] || /usr/bin/python3 "$ROOT/scripts/corpus/repvgg.py" "$OUT" --variant a0 2>/dev/null
for m in repvgg_a0 repvgg_a0_preserve; do
  "$ROOT/build/bin/refold" "$OUT/$m.onnx" -o "$OUT/$m.refold.onnx" --verify
  node "$ROOT/bench/ort_compare.js" "$OUT/$m.onnx" "$OUT/$m.refold.onnx" --tol 1e-5
done
report=$(node "$ROOT/bench/ort_latency.js" "$OUT/repvgg_a0.onnx" "$OUT/repvgg_a0.refold.onnx" \
  "$OUT/repvgg_a0_preserve.refold.onnx" "$OUT/repvgg_a0_deploy.onnx" --runs 40)
echo "$report"
echo "$report" | awk '/repvgg_a0.refold/ {r=$3} /repvgg_a0_deploy/ {d=$3} /^repvgg_a0.onnx/ {o=$3}
  END { printf "refold / deploy twin: %.3f (goal <= 1.02); original / refold: %.2fx\n", r / d, o / r }'
