#!/usr/bin/env bash
# A model over 2 GiB: it can only exist with external data. refold must read
# it, write it back with external data on its own, and onnxruntime must give
# identical outputs for both. Needs ~8 GiB of disk under bench/out.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${BENCH_OUT:-$ROOT/bench/out}/large"
"$ROOT/scripts/setup.sh" >/dev/null
rm -rf "$OUT" && mkdir -p "$OUT/in" "$OUT/out"
/usr/bin/python3 - "$OUT/in/large.onnx" <<'PY'
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
n = 190_000_000  # 3 x 760 MB of float32 weights: 2.28 GB in all
rng = np.random.default_rng(0)
inits = [numpy_helper.from_array(rng.standard_normal(n, dtype=np.float32), f"w{i}") for i in range(3)]
nodes = [helper.make_node("Add", ["x", "w0"], ["a"]), helper.make_node("Add", ["a", "w1"], ["b"]),
         helper.make_node("Add", ["b", "w2"], ["y"])]
graph = helper.make_graph(nodes, "large", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n])], inits)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
onnx.save_model(model, sys.argv[1], save_as_external_data=True, location="large.onnx.data")
PY
ls -la "$OUT/in"
start=$(date +%s.%N)
"$ROOT/build/bin/refold" -O0 "$OUT/in/large.onnx" -o "$OUT/out/large.onnx"
end=$(date +%s.%N)
ls -la "$OUT/out"
echo "refold -O0 on a $(du -sh "$OUT/in" | cut -f1) model: $(echo "$end - $start" | awk '{print $1 - $3}') s"
node "$ROOT/bench/ort_compare.js" "$OUT/in/large.onnx" "$OUT/out/large.onnx"
rm -rf "$OUT"
