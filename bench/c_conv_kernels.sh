#!/usr/bin/env bash
# The dense conv kernels of ckernels/ side by side on ResNet and MobileNet
# shapes (or the shapes given, each "CIN COUT SIZE KERNEL STRIDE"):
# rf_conv2d_direct against rf_conv2d_cvec, and for 3x3 stride-1 shapes
# rf_conv2d_winograd on the line below, best of --runs, with warm caches and
# with caches swept before every run, compiled with gcc -O3 -march=native.
# The emitter's choice between them (lib/CEmitter/LowerNN.cpp,
# cvecGeometry, useWinograd) rests on these numbers.
# usage: bench/c_conv_kernels.sh [--runs N] ["CIN COUT SIZE KERNEL STRIDE"]...
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CC="${CC:-gcc}"
RUNS=20
shapes=()
while [ $# -gt 0 ]; do
  case "$1" in --runs) RUNS="$2"; shift 2 ;; *) shapes+=("$1"); shift ;; esac
done
if [ ${#shapes[@]} -eq 0 ]; then
  shapes=("64 64 56 3 1" "128 128 28 3 1" "256 256 14 3 1" "512 512 7 3 1" "256 512 14 3 2"
          "3 64 224 7 2" "3 32 224 3 2" "16 96 112 1 1" "2048 512 7 1 1" "960 320 7 1 1" "96 576 14 1 1")
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$CC" -std=c99 -O3 -march=native -Wall -Wextra -I "$ROOT/ckernels" -o "$work/c_conv_kernels" \
  "$ROOT/bench/c_conv_kernels.c" -lm
printf '%5s %5s %4s %2s %2s %10s %10s %10s %10s %8s\n' cin cout size k s "direct ms" "cvec ms" \
  "direct cold" "cvec cold" "rel diff"
for shape in "${shapes[@]}"; do
  # shellcheck disable=SC2086
  "$work/c_conv_kernels" $shape "$RUNS"
done
