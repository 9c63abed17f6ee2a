#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs the whole test suite:
# the lit tests, including the round-trip over ONNX's 1072 backend test models.
#   scripts/test.sh [lit args...]     e.g. scripts/test.sh --filter Errors
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${REFOLD_BUILD_DIR:-$ROOT/build}"
"$ROOT/scripts/setup.sh" || { echo "setup failed"; exit 1; }

LIT=/usr/lib/llvm-19/build/utils/lit/lit.py
log="$(mktemp)"
python3 "$LIT" -sv "$BUILD/test" "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
count() { awk -v re="$1" '$0 ~ re { gsub(/[^0-9]/, " "); split($0, f, " "); n += f[1] } END { print n + 0 }' "$log"; }
passed=$(count '^ +Passed *:')
failed=$(count '^ +(Failed|Unresolved|Timed Out) *:')
rm -f "$log"
echo "$passed passed, $failed failed"
exit "$status"
