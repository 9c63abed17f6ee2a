#!/usr/bin/env bash
# ACNet ResNet-18, DBB ResNet-18 and MobileOne-S0 in training form:
# refold -O2 against onnxruntime (1e-5), conv counts against the deploy twin,
# and onnxruntime latency (1 thread) of original, refold output and deploy
# twin measured interleaved. Goal: refold within 2% of the twin.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${BENCH_OUT:-$ROOT/bench/out}/corpus"
REFOLD_WITH_TORCH=1 "$ROOT/scripts/setup.sh" >/dev/null
mkdir -p "$OUT"
for m in acnet dbb mobileone; do
  [ -f "$OUT/${m}_full_deploy.onnx" ] || /usr/bin/python3 "$ROOT/scripts/corpus/multibranch.py" "$OUT" --model $m 2>/dev/null
  "$ROOT/build/bin/refold" "$OUT/${m}_full_preserve.onnx" -o "$OUT/${m}_full.refold.onnx" --verify --quiet
  node "$ROOT/bench/ort_compare.js" "$OUT/${m}_full_preserve.onnx" "$OUT/${m}_full.refold.onnx" --tol 1e-5
  echo "$m convs: refold $("$ROOT/build/bin/refold" "$OUT/${m}_full.refold.onnx" --stats --quiet | awk '$1 == "Conv" {print $2}'), deploy twin $("$ROOT/build/bin/refold" "$OUT/${m}_full_deploy.onnx" --stats --quiet | awk '$1 == "Conv" {print $2}')"
  report=$(node "$ROOT/bench/ort_latency.js" "$OUT/${m}_full_preserve.onnx" "$OUT/${m}_full.refold.onnx" "$OUT/${m}_full_deploy.onnx" --runs 30)
  echo "$report"
  echo "$report" | awk -v m=$m '/refold/ {r=$3} /deploy/ {d=$3} /preserve/ {o=$3}
    END { printf "%s: refold / deploy twin %.3f (goal <= 1.02); original / refold %.2fx\n", m, r / d, o / r }'
done
