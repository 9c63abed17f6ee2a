#!/usr/bin/env bash
# Builds refold with AddressSanitizer and UndefinedBehaviorSanitizer (clang-19)
# in build-sanitize/ and runs the whole lit suite against it.
#   scripts/sanitize.sh [lit args...]
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${REFOLD_SANITIZE_BUILD_DIR:-$ROOT/build-sanitize}"
"$ROOT/scripts/setup.sh" --no-build || exit 1
if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -G Ninja -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_COMPILER=clang-19 -DCMAKE_CXX_COMPILER=clang++-19 -DLLVM_USE_LINKER=lld \
    -DREFOLD_SANITIZE=address,undefined >/dev/null || exit 1
fi
cmake --build "$BUILD" || exit 1
# Leaks of process-lifetime singletons (registries) are not errors here.
# LLVM's inline allocator code poisons memory when compiled with ASan, but
# Debian's MLIR libraries (not instrumented) never unpoison it.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:allow_user_poisoning=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
python3 /usr/lib/llvm-19/build/utils/lit/lit.py -sv "$BUILD/test" "$@"
