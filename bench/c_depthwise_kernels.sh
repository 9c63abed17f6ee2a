#!/usr/bin/env bash
# The 3x3 depthwise kernels of ckernels/conv.h on MobileNetV2 and
# MobileOne shapes (or the shapes given, each "CHANNELS SIZE STRIDE"):
# stride 1 on the flat kernel, stride 2 on rf_conv2d_depthwise, Relu6 fused,
# best of --runs, compiled with gcc -O3 -march=native; the checksum tells
# two builds of the kernels apart. In-network numbers beside onnxruntime's:
# bench/c_profile.py and bench/ort_profile.js.
# usage: bench/c_depthwise_kernels.sh [--runs N] ["CHANNELS SIZE STRIDE"]...
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CC="${CC:-gcc}"
RUNS=100
shapes=()
while [ $# -gt 0 ]; do
  case "$1" in --runs) RUNS="$2"; shift 2 ;; *) shapes+=("$1"); shift ;; esac
done
if [ ${#shapes[@]} -eq 0 ]; then
  shapes=("48 56 1" "128 28 1" "256 28 1" "512 14 1" "576 14 1" "960 7 1"
          "96 112 2" "144 56 2" "192 28 2" "576 14 2")
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$CC" -std=c99 -O3 -march=native -Wall -Wextra -I "$ROOT/ckernels" -o "$work/c_depthwise_kernels" \
  "$ROOT/bench/c_depthwise_kernels.c" -lm
printf '%5s %4s %2s %10s %18s\n' chan size s "ms" checksum
for shape in "${shapes[@]}"; do
  # shellcheck disable=SC2086
  "$work/c_depthwise_kernels" $shape "$RUNS"
done
