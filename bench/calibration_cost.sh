#!/usr/bin/env bash
# What calibration costs: wall time and peak memory (RSS) of
# refold --quantize=int8 on N random samples. Memory must not grow with the
# number of samples: the small model is calibrated on 10 and on 1,000
# samples, ResNet-50 on 100 (the issue's figure) and on 10.
# usage: bench/calibration_cost.sh [--skip-resnet50]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${BENCH_OUT:-$ROOT/bench/out}/corpus"
REFOLD="${REFOLD:-$ROOT/build/bin/refold}"
SKIP50=0
[ "${1:-}" = --skip-resnet50 ] && SKIP50=1
source "$ROOT/bench/corpus_models.sh"
REFOLD_WITH_TORCH=1 "$ROOT/scripts/setup.sh" >/dev/null
work="$OUT/calibration_cost"; mkdir -p "$work"

# samples FILE N C H W: N random samples as one .npy
samples() {
  /usr/bin/python3 -c "
import numpy as np, sys
n, c, h, w = (int(v) for v in sys.argv[2:])
np.random.seed(0); np.save(sys.argv[1], np.random.randn(n, c, h, w).astype(np.float32))" "$@"
}
# measure MODEL NPY: seconds and peak RSS (MB) of calibrating, quantizing and exporting
measure() {
  /usr/bin/time -f "%e %M" "$REFOLD" "$1" -o "$work/out.onnx" --quiet --dim batch=1 --dim N=1 \
    --quantize=int8 --calibration="$2" 2>&1 >/dev/null | tail -1
}
printf '%-22s %8s %10s %10s\n' model samples "seconds" "peak MB"
small="$ROOT/examples/repvgg_block.onnxtxt"
declare -A peak
for n in 10 1000; do
  samples "$work/small_$n.npy" "$n" 4 16 16
  read -r s kb <<<"$(measure "$small" "$work/small_$n.npy")"
  peak[$n]=$kb
  printf '%-22s %8d %10.2f %10.1f\n' repvgg_block "$n" "$s" "$(awk -v k="$kb" 'BEGIN {print k / 1024}')"
done
# The .npy of 1,000 samples itself is 4 MB: allow that much beyond the 10-sample peak.
grow=$(( peak[1000] - peak[10] ))
if [ $SKIP50 = 0 ]; then
  src=$(zoo_model resnet50)
  for n in 10 100; do
    samples "$work/r50_$n.npy" "$n" 3 224 224
    read -r s kb <<<"$(measure "$src" "$work/r50_$n.npy")"
    printf '%-22s %8d %10.2f %10.1f\n' resnet50 "$n" "$s" "$(awk -v k="$kb" 'BEGIN {print k / 1024}')"
  done
fi
echo "peak memory, 1000 samples against 10: $(awk -v g="$grow" 'BEGIN {printf "%+.1f", g / 1024}') MB (the 1,000-sample .npy is 4.0 MB)"
if [ "$grow" -gt $(( 8 * 1024 )) ]; then
  echo "calibration memory grows with the number of samples"
  exit 1
fi
