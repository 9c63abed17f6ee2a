#!/usr/bin/env bash
# How far refold's folds move each corpus and zoo model's output in
# onnxruntime, against what onnxruntime's own Conv+BN fusion moves it
# (bench/ort_drift.js: reference = the original with optimizations off).
# Goal: -O1 and -O2 at the level of a plain BN fold: at most 2x
# onnxruntime's fusion drift, or below 1e-6 (float32 summation noise);
# a model above both is a failed check (exit 1).
# REFOLD_BEFORE=path/to/older/refold adds that build's -O1 and -O2 columns.
# usage: bench/rounding_drift.sh [MODEL...]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${BENCH_OUT:-$ROOT/bench/out}/corpus"
REFOLD="${REFOLD:-$ROOT/build/bin/refold}"
BEFORE="${REFOLD_BEFORE:-}"
source "$ROOT/bench/corpus_models.sh"
REFOLD_WITH_TORCH=1 "$ROOT/scripts/setup.sh" >/dev/null
mkdir -p "$OUT"
wanted() { [ $# -lt 2 ] && return 0; local m=$1; shift; for s in "$@"; do [ "$s" = "$m" ] && return 0; done; return 1; }

printf '%-12s %11s %11s %11s' model ort-fusion "-O1" "-O2"
[ -n "$BEFORE" ] && printf ' %11s %11s' "before -O1" "before -O2"
printf '  %s\n' verdict
high=()
measure() { # NAME ORIGINAL
  local name=$1 orig=$2 tmp="$OUT/drift_$1" models=()
  for level in 1 2; do
    "$REFOLD" "$orig" -O$level -o "$tmp.O$level.onnx" --quiet; models+=("$tmp.O$level.onnx")
  done
  if [ -n "$BEFORE" ]; then
    for level in 1 2; do
      "$BEFORE" "$orig" -O$level -o "$tmp.before.O$level.onnx" --quiet; models+=("$tmp.before.O$level.onnx")
    done
  fi
  local drifts; drifts=$(node "$ROOT/bench/ort_drift.js" "$orig" "${models[@]}" | awk '{print $NF}' | tr '\n' ' ')
  read -r -a d <<< "$drifts"
  local verdict=ok
  for i in 1 2; do
    awk -v x="${d[$i]}" -v f="${d[0]}" 'BEGIN {exit !(x > 2 * f && x > 1e-6)}' && verdict=HIGH
  done
  [ "$verdict" = HIGH ] && high+=("$name")
  printf '%-12s' "$name"; for x in "${d[@]}"; do printf ' %11s' "$x"; done; printf '  %s\n' "$verdict"
}
for entry in $CORPUS; do
  wanted "${entry#*:}" "$@" || continue
  measure "${entry#*:}" "$(corpus_base "$entry")_preserve.onnx"
done
for model in $ZOO; do
  wanted "$model" "$@" || continue
  measure "$model" "$(zoo_model "$model")"
done
if [ ${#high[@]} -gt 0 ]; then
  echo "rounding drift above a plain BN fold's: ${high[*]}"
  exit 1
fi
echo "rounding drift check: every model within 2x of onnxruntime's own fusion drift (or below 1e-6)"
