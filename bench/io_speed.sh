#!/usr/bin/env bash
# Large-model I/O: `refold -O2` on a torchvision ResNet-50 (~100 MB) against
# onnxruntime's whole offline optimization of the same file (load, basic
# graph optimizations, write: bench/ort_offline_optimize.js), both as the
# processes a build step runs, interleaved; medians of wall time and peak RSS.
# Goals: refold <= 0.3x onnxruntime's time, peak RSS <= 1.5x the model size.
#   bench/io_speed.sh [--runs N] [--large]
# --large also times refold -O2 on a 2.3 GB model with external data (needs
# ~7 GB of disk under bench/out).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${BENCH_OUT:-$ROOT/bench/out}"
RUNS=7
LARGE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="$2"; shift 2 ;;
    --large) LARGE=1; shift ;;
    *) echo "usage: bench/io_speed.sh [--runs N] [--large]" >&2; exit 2 ;;
  esac
done
REFOLD_WITH_TORCH=1 "$ROOT/scripts/setup.sh" >/dev/null
mkdir -p "$OUT/io"
MODEL="$OUT/resnet50.onnx"
[ -f "$MODEL" ] || /usr/bin/python3 "$ROOT/bench/export_torchvision.py" resnet50 "$MODEL"

/usr/bin/python3 - "$ROOT" "$MODEL" "$OUT/io" "$RUNS" <<'PY'
import os, statistics, subprocess, sys, time
root, model, out, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
size = os.path.getsize(model)
commands = {
    "refold": [f"{root}/build/bin/refold", "-O2", "--quiet", model, "-o", f"{out}/refold.onnx"],
    "onnxruntime": ["node", f"{root}/bench/ort_offline_optimize.js", model, f"{out}/ort.onnx"],
}
def measure(cmd):
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        sys.exit(f"failed: {' '.join(cmd)}")
    return time.perf_counter() - start, usage.ru_maxrss * 1024
results = {name: [] for name in commands}
for name, cmd in commands.items():  # warm the page cache
    measure(cmd)
for _ in range(runs):
    for name, cmd in commands.items():
        results[name].append(measure(cmd))
wall = {n: statistics.median(t for t, _ in r) for n, r in results.items()}
rss = {n: statistics.median(m for _, m in r) for n, r in results.items()}
print(f"ResNet-50 ({size / 2**20:.1f} MiB), median of {runs} interleaved runs:")
for n in commands:
    print(f"  {n:12s} wall {wall[n]:.3f} s, peak RSS {rss[n] / 2**20:.0f} MiB ({rss[n] / size:.2f}x the model)")
print(f"refold / onnxruntime time: {wall['refold'] / wall['onnxruntime']:.2f} (goal <= 0.3)")
print(f"refold peak RSS / model size: {rss['refold'] / size:.2f} (goal <= 1.5)")
PY

if [ "$LARGE" = 1 ]; then
  LARGE_DIR="$OUT/io/large"
  rm -rf "$LARGE_DIR" && mkdir -p "$LARGE_DIR/in" "$LARGE_DIR/out"
  /usr/bin/python3 "$ROOT/bench/make_large_model.py" "$LARGE_DIR/in/large.onnx"
  /usr/bin/python3 - "$ROOT/build/bin/refold" "$LARGE_DIR" <<'PY'
import os, subprocess, sys, time
refold, d = sys.argv[1:]
size = sum(os.path.getsize(os.path.join(d, "in", f)) for f in os.listdir(os.path.join(d, "in")))
start = time.perf_counter()
proc = subprocess.Popen([refold, "-O2", "--quiet", f"{d}/in/large.onnx", "-o", f"{d}/out/large.onnx"])
_, status, usage = os.wait4(proc.pid, 0)
wall = time.perf_counter() - start
if status != 0:
    sys.exit("refold failed on the large model")
print(f"2.3 GB external-data model ({size / 2**30:.2f} GiB): refold -O2 wall {wall:.2f} s, "
      f"peak RSS {usage.ru_maxrss / 2**20:.2f} GiB ({usage.ru_maxrss * 1024 / size:.2f}x)")
PY
  rm -rf "$LARGE_DIR"
fi
