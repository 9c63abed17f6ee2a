#!/usr/bin/env bash
# The torchvision zoo through refold's C: each model's C (of the -O2 model,
# batch pinned to 1) compiled by gcc and by clang (-O2, strict C99, -Werror)
# and compared with the interpreter at 1e-5 (scripts/check_c.sh). The
# models are exported by bench/export_torchvision.py (needs torch).
# usage: bench/c_zoo_check.sh [MODEL...]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${BENCH_OUT:-$ROOT/bench/out}/corpus"
source "$ROOT/bench/corpus_models.sh"
REFOLD_WITH_TORCH=1 "$ROOT/scripts/setup.sh" >/dev/null
mkdir -p "$OUT"
models=()
for m in ${*:-$ZOO}; do models+=("$(zoo_model "$m")"); done
PATH="$ROOT/build/bin:$PATH" CHECK_C_CONFIGS="gcc clang" \
  "$ROOT/scripts/check_c.sh" "$OUT/c_zoo_check" --dim batch=1 "${models[@]}"
