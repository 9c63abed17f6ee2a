#!/usr/bin/env bash
# refold -O0 on a torch-exported ResNet-50 (~100 MB): wall time, peak RSS
# (goal: < 2 s and < 3x the model size), byte-identical reruns, and identical
# onnxruntime outputs for the original and the round-tripped model.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${BENCH_OUT:-$ROOT/bench/out}"
REFOLD="$ROOT/build/bin/refold"
REFOLD_WITH_TORCH=1 "$ROOT/scripts/setup.sh" >/dev/null
mkdir -p "$OUT"
MODEL="$OUT/resnet50.onnx"
[ -f "$MODEL" ] || /usr/bin/python3 "$ROOT/bench/export_torchvision.py" resnet50 "$MODEL"

/usr/bin/python3 - "$REFOLD" "$MODEL" "$OUT" <<'PY'
import os, subprocess, sys, time
refold, model, out = sys.argv[1:]
size = os.path.getsize(model)
runs = []
for i in range(3):
    target = os.path.join(out, f"resnet50.rt{i % 2}.onnx")
    start = time.perf_counter()
    proc = subprocess.Popen([refold, "-O0", model, "-o", target])
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        sys.exit("refold failed")
    runs.append((wall, usage.ru_maxrss * 1024))
wall = min(r[0] for r in runs)
rss = max(r[1] for r in runs)
a = open(os.path.join(out, "resnet50.rt0.onnx"), "rb").read()
b = open(os.path.join(out, "resnet50.rt1.onnx"), "rb").read()
print(f"model: {size / 2**20:.1f} MiB")
print(f"refold -O0: wall {wall:.2f} s (best of 3; goal < 2 s), peak RSS {rss / 2**20:.0f} MiB = "
      f"{rss / size:.2f}x the model (goal < 3x)")
print(f"rerun byte-identical: {'yes' if a == b else 'NO'}")
sys.exit(0 if a == b else 1)
PY
node "$ROOT/bench/ort_compare.js" "$MODEL" "$OUT/resnet50.rt0.onnx"
