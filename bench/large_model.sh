#!/usr/bin/env bash
# A model over 2 GiB: it can only exist with external data. refold must read
# it, write it back with external data on its own, and onnxruntime must give
# identical outputs for both. Needs ~8 GiB of disk under bench/out.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${BENCH_OUT:-$ROOT/bench/out}/large"
"$ROOT/scripts/setup.sh" >/dev/null
rm -rf "$OUT" && mkdir -p "$OUT/in" "$OUT/out"
/usr/bin/python3 "$ROOT/bench/make_large_model.py" "$OUT/in/large.onnx"
ls -la "$OUT/in"
start=$(date +%s.%N)
"$ROOT/build/bin/refold" -O0 "$OUT/in/large.onnx" -o "$OUT/out/large.onnx"
end=$(date +%s.%N)
ls -la "$OUT/out"
echo "refold -O0 on a $(du -sh "$OUT/in" | cut -f1) model: $(echo "$end - $start" | awk '{print $1 - $3}') s"
node "$ROOT/bench/ort_compare.js" "$OUT/in/large.onnx" "$OUT/out/large.onnx"
rm -rf "$OUT"
