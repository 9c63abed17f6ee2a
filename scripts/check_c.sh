#!/usr/bin/env bash
# Checks refold's C output against the interpreter: for each model, the
# interpreter's outputs on seeded random inputs, then the C of the -O2 model
# compiled and run five ways (gcc, clang, gcc with the scalar micro-kernel
# -DRF_SCALAR, and gcc for ARM64 run under qemu-user, with the vector and
# the scalar micro-kernel; AVX2 and AVX-512 builds on request), each
# compared with
# `refold run --compare` at 1e-5 (max abs difference / max |output|, with a
# floor of 1e-3 for outputs near zero). Every build uses
# -std=c99 -Wall -Wextra -Werror -pedantic.
# usage: scripts/check_c.sh WORKDIR [--dim NAME=VALUE]... MODEL...
set -uo pipefail
REFOLD="${REFOLD:-refold}"
work="$1"; shift
dims=()
models=()
while [ $# -gt 0 ]; do
  case "$1" in --dim) dims+=(--dim "$2"); shift 2 ;; *) models+=("$1"); shift ;; esac
done
strict="-O2 -Wall -Wextra -Werror -pedantic"
configs=("gcc|gcc|$strict|"
         "clang|clang-19|$strict|"
         "scalar|gcc|$strict -DRF_SCALAR|"
         "arm64|aarch64-linux-gnu-gcc|$strict|qemu-aarch64 -L /usr/aarch64-linux-gnu"
         "arm64-scalar|aarch64-linux-gnu-gcc|$strict -DRF_SCALAR|qemu-aarch64 -L /usr/aarch64-linux-gnu")
# The kernels' wider vector paths, for x86-64 CPUs that have them: run only
# when named in CHECK_C_CONFIGS.
extra=("avx2|gcc|$strict -march=x86-64-v3|"
       "avx512|gcc|$strict -march=x86-64-v4|"
       "avx512-clang|clang-19|$strict -march=x86-64-v4|")
# CHECK_C_CONFIGS="gcc clang" keeps only those.
if [ -n "${CHECK_C_CONFIGS:-}" ]; then
  kept=(); for c in "${configs[@]}" "${extra[@]}"; do for want in $CHECK_C_CONFIGS; do [ "${c%%|*}" = "$want" ] && kept+=("$c"); done; done
  configs=("${kept[@]}")
fi
mkdir -p "$work"
total=0 passed=0
for model in "${models[@]}"; do
  name=$(basename "$model")
  ref="$work/$name.interpreter"
  if ! "$REFOLD" run "$model" -o "$ref" --seed 7 "${dims[@]}" --quiet > "$work/$name.log" 2>&1; then
    echo "$name: the interpreter failed: $(head -1 "$work/$name.log")"
    total=$((total + 1)); continue
  fi
  for config in "${configs[@]}"; do
    IFS='|' read -r label cc flags under <<< "$config"
    total=$((total + 1))
    out=$("$REFOLD" run "$model" --engine=c --cc "$cc" --cflags "$flags" --run-under "$under" \
          -o "$work/$name.$label" --seed 7 "${dims[@]}" --quiet --compare "$ref" 2>&1)
    if [ $? -eq 0 ]; then
      passed=$((passed + 1))
      echo "$name $label: ok, $(echo "$out" | grep -o 'max relative error [^ ]*' | sort -t' ' -k4 -g | tail -1)"
    else
      echo "$name $label: FAILED: $(echo "$out" | tail -1)"
    fi
  done
done
echo "c-output: $passed/$total runs match the interpreter"
[ "$passed" -eq "$total" ]
