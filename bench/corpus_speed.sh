#!/usr/bin/env bash
# The reparameterization corpus at full size (generated, seeded, randomized
# BN statistics) and torchvision zoo models: for each, refold -O2 with
# --verify, onnxruntime agreement (1e-5), conv counts, and onnxruntime
# latency (1 thread, all graph optimizations) of the original, refold's
# output and the deploy twin, measured interleaved in one run.
# Goals: refold within 2% of the twin; never slower than a zoo original.
# usage: bench/corpus_speed.sh [MODEL...]   (default: all; --runs N)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${BENCH_OUT:-$ROOT/bench/out}/corpus"
REFOLD="${REFOLD:-$ROOT/build/bin/refold}"
RUNS=20
CORPUS="repvgg:a0 multibranch:acnet multibranch:dbb multibranch:dbb_bnpad multibranch:mobileone updp:resnet34
        updp:mobilenetv2 updp:convnext_t updp:deit_tiny concat:vovnet27 concat:elan
        concat:kw_static concat:kw_dynamic"
ZOO="resnet18 resnet50 mobilenet_v2 mobilenet_v3_large efficientnet_b0 regnet_y_400mf
     shufflenet_v2_x1_0 googlenet densenet121 squeezenet1_0 convnext_tiny deit_tiny"
selected=()
while [ $# -gt 0 ]; do
  case "$1" in --runs) RUNS="$2"; shift 2 ;; *) selected+=("$1"); shift ;; esac
done
wanted() { [ ${#selected[@]} -eq 0 ] && return 0; for s in "${selected[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }
REFOLD_WITH_TORCH=1 "$ROOT/scripts/setup.sh" >/dev/null
mkdir -p "$OUT"
convs() { "$REFOLD" "$1" -O0 -o /dev/null --stats --quiet | awk '$1 == "Conv" {print $2; f=1} END {if (!f) print 0}'; }
median() { echo "$1" | awk -v m="$(basename "$2")" '$1 == m":" {print $3}'; }

printf '%-12s %18s %10s %9s %9s %9s %12s %14s\n' model "convs orig/out/twin" "rel.err" "orig ms" "refold ms" "twin ms" "refold/twin" "orig/refold"
for entry in $CORPUS; do
  script=${entry%%:*} model=${entry#*:}
  wanted "$model" || continue
  if [ "$script" = repvgg ]; then base="$OUT/repvgg_a0"; args=(--variant a0)
  else base="$OUT/${model}_full"; args=(--model "$model"); fi
  [ -f "${base}_deploy.onnx" ] || /usr/bin/python3 "$ROOT/scripts/corpus/$script.py" "$OUT" "${args[@]}" >/dev/null 2>&1
  "$REFOLD" "${base}_preserve.onnx" -o "$base.refold.onnx" --verify --quiet
  err=$(node "$ROOT/bench/ort_compare.js" "${base}_preserve.onnx" "$base.refold.onnx" --tol 1e-5 | awk '{print $NF}')
  report=$(node "$ROOT/bench/ort_latency.js" "${base}_preserve.onnx" "$base.refold.onnx" "${base}_deploy.onnx" --runs "$RUNS")
  o=$(median "$report" "${base}_preserve.onnx") r=$(median "$report" "$base.refold.onnx") d=$(median "$report" "${base}_deploy.onnx")
  printf '%-12s %18s %10s %9s %9s %9s %12s %14s\n' "$model" \
    "$(convs "${base}_preserve.onnx")/$(convs "$base.refold.onnx")/$(convs "${base}_deploy.onnx")" \
    "$err" "$o" "$r" "$d" "$(awk -v r="$r" -v d="$d" 'BEGIN {printf "%.3f", r / d}')" \
    "$(awk -v r="$r" -v o="$o" 'BEGIN {printf "%.2fx", o / r}')"
done
for model in $ZOO; do
  wanted "$model" || continue
  base="$OUT/zoo_$model"
  [ -f "$base.onnx" ] || /usr/bin/python3 "$ROOT/bench/export_torchvision.py" "$model" "$base.onnx" >/dev/null 2>&1
  "$REFOLD" "$base.onnx" -o "$base.refold.onnx" --verify --quiet
  err=$(node "$ROOT/bench/ort_compare.js" "$base.onnx" "$base.refold.onnx" --tol 1e-5 | awk '{print $NF}')
  report=$(node "$ROOT/bench/ort_latency.js" "$base.onnx" "$base.refold.onnx" --runs "$RUNS")
  o=$(median "$report" "$base.onnx") r=$(median "$report" "$base.refold.onnx")
  printf '%-12s %18s %10s %9s %9s %9s %12s %14s\n' "$model" "$(convs "$base.onnx")/$(convs "$base.refold.onnx")/-" \
    "$err" "$o" "$r" - - "$(awk -v r="$r" -v o="$o" 'BEGIN {printf "%.2fx", o / r}')"
done
