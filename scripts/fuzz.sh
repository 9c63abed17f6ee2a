#!/usr/bin/env bash
# Builds refold's libFuzzer targets (fuzz/) with clang-19, AddressSanitizer
# and UndefinedBehaviorSanitizer in build-fuzz/, then runs each on a corpus
# seeded from the test models. A crash leaves its input in build-fuzz/crashes/.
#   scripts/fuzz.sh [--time SECONDS_PER_TARGET] [--runs N] [--seed S] [--fresh] [TARGET...]
# Targets: import-binary, import-text, optimize (default: all three).
# --fresh starts from the seeds alone (not the corpus earlier runs grew);
# with --seed and --runs that makes a run repeatable (the test suite's).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${REFOLD_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
TIME=30
RUNS=-1
SEED=0
FRESH=0
TARGETS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --time) TIME="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --seed) SEED="$2"; shift 2 ;;
    --fresh) FRESH=1; shift ;;
    import-binary|import-text|optimize) TARGETS+=("$1"); shift ;;
    *) echo "usage: scripts/fuzz.sh [--time S] [--runs N] [--seed S] [--fresh] [import-binary|import-text|optimize]..." >&2; exit 2 ;;
  esac
done
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(import-binary import-text optimize)

"$ROOT/scripts/setup.sh" --no-build
if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -G Ninja -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_COMPILER=clang-19 -DCMAKE_CXX_COMPILER=clang++-19 -DLLVM_USE_LINKER=lld \
    -DREFOLD_SANITIZE=address,undefined -DREFOLD_FUZZ=ON >/dev/null
fi
cmake --build "$BUILD" --target refold-fuzz-import-binary refold-fuzz-import-text refold-fuzz-optimize

# Seeds: the suite's small models, binary and textual, up to 16 KiB (inputs
# stay under -max_len; a sanitized run of a large model nears the 1 s limit).
SEEDS="$BUILD/seeds"
if [ ! -d "$SEEDS/binary" ]; then
  mkdir -p "$SEEDS/binary" "$SEEDS/text"
  find "$ROOT/test" "$ROOT/examples" -name '*.onnx' -size -16k -exec cp -t "$SEEDS/binary" {} +
  find "$ROOT/test" "$ROOT/examples" -name '*.onnxtxt' -size -16k -exec cp -t "$SEEDS/text" {} +
  # A sample of ONNX's backend node-test models (one per operator family).
  for m in /usr/share/libonnx-testdata/data/node/test_{conv,batchnorm,add,relu,gemm,matmul,concat,reshape,resize,split,pad,tile,range,loop,if,scan}*/model.onnx; do
    [ -f "$m" ] && [ "$(stat -c %s "$m")" -le 16384 ] && cp "$m" "$SEEDS/binary/$(basename "$(dirname "$m")").onnx"
  done
fi

mkdir -p "$BUILD/crashes"
status=0
for target in "${TARGETS[@]}"; do
  case "$target" in
    import-text) seeds="$SEEDS/text" ;;
    *) seeds="$SEEDS/binary" ;;
  esac
  corpus="$BUILD/corpus/$target"
  [ "$FRESH" = 1 ] && corpus="$(mktemp -d)"
  mkdir -p "$corpus"
  echo "fuzz: $target: at most ${TIME}s$( [ "$RUNS" -ge 0 ] && echo ", $RUNS inputs"), seed $SEED (corpus $corpus)"
  # An input slower than 1 s counts as a failure (-timeout), as does a leak.
  # ASan's default 256 MB quarantine of freed memory is recycled in 25 MB
  # batches, which took over a second at times on this VM (inside the
  # context's destructor of an input that runs in 0.1 s); 32 MB keeps each
  # recycling short and still spans several inputs' allocations.
  if ! ASAN_OPTIONS=detect_leaks=1:allow_user_poisoning=0:quarantine_size_mb=32 "$BUILD/bin/refold-fuzz-$target" "$corpus" "$seeds" \
      -max_total_time="$TIME" -runs="$RUNS" -seed="$SEED" -max_len=16384 -timeout=1 -rss_limit_mb=4096 \
      -artifact_prefix="$BUILD/crashes/$target-" -print_final_stats=1 2> "$BUILD/$target.log"; then
    status=1
    echo "fuzz: $target FAILED; see $BUILD/$target.log and $BUILD/crashes/"
  fi
  grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$BUILD/$target.log" | sed "s/^/  /" || true
  [ "$FRESH" = 1 ] && rm -rf "$corpus"
done
exit $status
