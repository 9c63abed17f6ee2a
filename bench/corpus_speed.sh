#!/usr/bin/env bash
# The reparameterization corpus at full size (generated, seeded, randomized
# BN statistics) and torchvision zoo models: for each, refold -O2 with
# --verify, onnxruntime agreement (1e-5), conv counts, and onnxruntime
# latency (1 thread, all graph optimizations) of the original, refold's
# output and the deploy twin, measured interleaved in one run.
# Goals: refold within 2% of the twin; never slower than the original.
# The never-slower check: a model whose refold output measures more than 2%
# slower than its original is measured again, interleaved, with 3x the runs;
# if it is still slower the line says SLOWER and the script exits 1.
# usage: bench/corpus_speed.sh [MODEL...]   (default: all; --runs N)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${BENCH_OUT:-$ROOT/bench/out}/corpus"
REFOLD="${REFOLD:-$ROOT/build/bin/refold}"
RUNS=20
source "$ROOT/bench/corpus_models.sh"
selected=()
while [ $# -gt 0 ]; do
  case "$1" in --runs) RUNS="$2"; shift 2 ;; *) selected+=("$1"); shift ;; esac
done
wanted() { [ ${#selected[@]} -eq 0 ] && return 0; for s in "${selected[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }
REFOLD_WITH_TORCH=1 "$ROOT/scripts/setup.sh" >/dev/null
mkdir -p "$OUT"
convs() { "$REFOLD" "$1" -O0 -o /dev/null --stats --quiet | awk '$1 == "Conv" {print $2; f=1} END {if (!f) print 0}'; }
median() { echo "$1" | awk -v m="$(basename "$2")" '$1 == m":" {print $3}'; }
slower=()
# never_slower ORIGINAL REFOLD ORIG_MS REFOLD_MS: prints the verdict, re-measuring a
# suspected slowdown with more runs before calling it one.
never_slower() {
  local o="$3" r="$4"
  if awk -v o="$o" -v r="$r" 'BEGIN {exit !(r > o * 1.02)}'; then
    local again; again=$(node "$ROOT/bench/ort_latency.js" "$1" "$2" --runs $((RUNS * 3)))
    o=$(median "$again" "$1") r=$(median "$again" "$2")
    if awk -v o="$o" -v r="$r" 'BEGIN {exit !(r > o * 1.02)}'; then
      echo "SLOWER ($o vs $r ms at $((RUNS * 3)) runs)"; return
    fi
    echo "ok (re-measured: $o vs $r ms)"; return
  fi
  echo ok
}

printf '%-12s %18s %10s %9s %9s %9s %12s %12s  %s\n' model "convs orig/out/twin" "rel.err" "orig ms" "refold ms" "twin ms" "refold/twin" "orig/refold" "never slower"
for entry in $CORPUS; do
  model=${entry#*:}
  wanted "$model" || continue
  base=$(corpus_base "$entry")
  "$REFOLD" "${base}_preserve.onnx" -o "$base.refold.onnx" --verify --quiet
  err=$(node "$ROOT/bench/ort_compare.js" "${base}_preserve.onnx" "$base.refold.onnx" --tol 1e-5 | awk '{print $NF}')
  report=$(node "$ROOT/bench/ort_latency.js" "${base}_preserve.onnx" "$base.refold.onnx" "${base}_deploy.onnx" --runs "$RUNS")
  o=$(median "$report" "${base}_preserve.onnx") r=$(median "$report" "$base.refold.onnx") d=$(median "$report" "${base}_deploy.onnx")
  verdict=$(never_slower "${base}_preserve.onnx" "$base.refold.onnx" "$o" "$r")
  [[ "$verdict" == SLOWER* ]] && slower+=("$model")
  printf '%-12s %18s %10s %9s %9s %9s %12s %12s  %s\n' "$model" \
    "$(convs "${base}_preserve.onnx")/$(convs "$base.refold.onnx")/$(convs "${base}_deploy.onnx")" \
    "$err" "$o" "$r" "$d" "$(awk -v r="$r" -v d="$d" 'BEGIN {printf "%.3f", r / d}')" \
    "$(awk -v r="$r" -v o="$o" 'BEGIN {printf "%.2fx", o / r}')" \
    "$verdict"
done
for model in $ZOO; do
  wanted "$model" || continue
  base=$(zoo_model "$model"); base=${base%.onnx}
  "$REFOLD" "$base.onnx" -o "$base.refold.onnx" --verify --quiet
  err=$(node "$ROOT/bench/ort_compare.js" "$base.onnx" "$base.refold.onnx" --tol 1e-5 | awk '{print $NF}')
  report=$(node "$ROOT/bench/ort_latency.js" "$base.onnx" "$base.refold.onnx" --runs "$RUNS")
  o=$(median "$report" "$base.onnx") r=$(median "$report" "$base.refold.onnx")
  verdict=$(never_slower "$base.onnx" "$base.refold.onnx" "$o" "$r")
  [[ "$verdict" == SLOWER* ]] && slower+=("$model")
  printf '%-12s %18s %10s %9s %9s %9s %12s %12s  %s\n' "$model" "$(convs "$base.onnx")/$(convs "$base.refold.onnx")/-" \
    "$err" "$o" "$r" - - "$(awk -v r="$r" -v o="$o" 'BEGIN {printf "%.2fx", o / r}')" \
    "$verdict"
done
if [ ${#slower[@]} -gt 0 ]; then
  echo "never-slower check failed: ${slower[*]}"
  exit 1
fi
echo "never-slower check: refold's output is at least as fast as every original measured"
