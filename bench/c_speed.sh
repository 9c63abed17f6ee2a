#!/usr/bin/env bash
# refold's C against onnxruntime, one thread each. For each model: refold
# -O2 writes the ONNX that onnxruntime runs (all graph optimizations) and
# the C (gcc -O3 -march=native; compile time and peak memory printed);
# bench/c_timer.c times the C. The two are measured in alternating rounds
# (--rounds, each --runs runs) and the medians of the rounds compared.
# Goals: C/onnxruntime <= 1.25 on every model, <= 1.0 on the conv nets.
# usage: bench/c_speed.sh [MODEL...] [--runs N] [--rounds N]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${BENCH_OUT:-$ROOT/bench/out}/corpus"
REFOLD="${REFOLD:-$ROOT/build/bin/refold}"
CC="${CC:-gcc}"
RUNS=10 ROUNDS=5
source "$ROOT/bench/corpus_models.sh"
# name:kind:source; conv nets must reach 1.0, the rest 1.25.
MODELS="resnet18:conv:zoo:resnet18 resnet50:conv:zoo:resnet50 mobilenet_v2:conv:zoo:mobilenet_v2
        repvgg_a0:conv:corpus:repvgg:a0 mobileone_s0:conv:corpus:multibranch:mobileone
        updp_mobilenetv2:conv:corpus:updp:mobilenetv2 deit_tiny:vit:zoo:deit_tiny"
selected=()
while [ $# -gt 0 ]; do
  case "$1" in --runs) RUNS="$2"; shift 2 ;; --rounds) ROUNDS="$2"; shift 2 ;; *) selected+=("$1"); shift ;; esac
done
wanted() { [ ${#selected[@]} -eq 0 ] && return 0; for s in "${selected[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }
REFOLD_WITH_TORCH=1 "$ROOT/scripts/setup.sh" >/dev/null
mkdir -p "$OUT"
median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR]=$1} END {print v[int((NR + 1) / 2)]}'; }
missed=()
printf '%-17s %9s %9s %11s %11s %9s %9s %8s  %s\n' model "cc s" "cc MB" "arena KB" "bound KB" "C ms" "ort ms" "C/ort" goal
for entry in $MODELS; do
  name=${entry%%:*} rest=${entry#*:}; kind=${rest%%:*} rest=${rest#*:}
  wanted "$name" || continue
  if [ "${rest%%:*}" = zoo ]; then src=$(zoo_model "${rest#zoo:}")
  else src="$(corpus_base "${rest#corpus:}")_preserve.onnx"; fi
  work="$OUT/c_$name"; mkdir -p "$work"
  "$REFOLD" "$src" -o "$work/refold.onnx" --quiet
  arena=$("$REFOLD" "$src" -o "$work/model.c" --c-prefix model --dim batch=1 --dim N=1 | grep "C arena")
  a=$(echo "$arena" | awk '{print $4}') lb=$(echo "$arena" | awk '{gsub(/,/, "", $8); print $8}')
  cc=$( { /usr/bin/time -f "%e %M" "$CC" -std=c99 -O3 -march=native -I "$work" -o "$work/timer" \
          "$work/model.c" "$ROOT/bench/c_timer.c" -lm; } 2>&1 | tail -1)
  c_times="" o_times=""
  for _ in $(seq "$ROUNDS"); do
    c_times+=" $("$work/timer" "$RUNS")"
    o_times+=" $(node "$ROOT/bench/ort_latency.js" "$work/refold.onnx" --runs "$RUNS" | awk '{print $3}')"
  done
  c=$(echo "$c_times" | median) o=$(echo "$o_times" | median)
  ratio=$(awk -v c="$c" -v o="$o" 'BEGIN {printf "%.2f", c / o}')
  goal=$([ "$kind" = conv ] && echo 1.0 || echo 1.25)
  verdict=$(awk -v r="$ratio" -v g="$goal" 'BEGIN {print (r <= g) ? "met (<= " g ")" : "MISSED (> " g ")"}')
  [[ "$verdict" == MISSED* ]] && missed+=("$name")
  printf '%-17s %9s %9d %11d %11d %9.2f %9.2f %8s  %s\n' "$name" "${cc% *}" "$(( ${cc#* } / 1024 ))" \
    "$((a / 1024))" "$((lb / 1024))" "$c" "$o" "$ratio" "$verdict"
done
if [ ${#missed[@]} -gt 0 ]; then
  echo "speed goal missed: ${missed[*]}"
  exit 1
fi
echo "speed goal met on every model"
