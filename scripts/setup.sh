#!/usr/bin/env bash
# Installs everything refold needs to build and test on Debian 12, then builds it.
# (clang-19, the ARM64 cross compiler and qemu-user test the emitted C.)
# Idempotent: packages already present are not reinstalled, the build is incremental.
#   scripts/setup.sh            install + configure + build
#   scripts/setup.sh --no-build install only
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${REFOLD_BUILD_DIR:-$ROOT/build}"

PKGS=(cmake ninja-build make g++ lld
      llvm-19-dev llvm-19-tools libmlir-19-dev mlir-19-tools
      libonnx-dev libprotobuf-dev protobuf-compiler libeigen3-dev
      libonnx-testdata python3-onnx python3-numpy nodejs npm
      clang-19 libclang-rt-19-dev gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)
# The benchmarks export torchvision models; they are not needed for the tests.
# The trained quantization corpus takes its photos from scikit-image.
if [ "${REFOLD_WITH_TORCH:-0}" = 1 ]; then PKGS+=(python3-torch python3-torchvision python3-skimage); fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node/npm may come from elsewhere than Debian (e.g. a preinstalled toolchain).
if command -v node >/dev/null && command -v npm >/dev/null; then
  tmp=(); for p in "${missing[@]}"; do [[ "$p" == nodejs || "$p" == npm ]] || tmp+=("$p"); done
  missing=("${tmp[@]+"${tmp[@]}"}")
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# onnxruntime (independent oracle for the tests) and protobufjs (reads TensorProto .pb in Node).
# onnxruntime-node's install script downloads extra binaries; the CPU binary ships in the package.
NPM_DIR="$ROOT/.deps/npm"
if [ ! -f "$NPM_DIR/node_modules/onnxruntime-node/package.json" ] || \
   [ ! -f "$NPM_DIR/node_modules/protobufjs/package.json" ]; then
  echo "setup: installing onnxruntime-node and protobufjs from npm"
  mkdir -p "$NPM_DIR"
  (cd "$NPM_DIR" && [ -f package.json ] || echo '{"name":"refold-test-deps","private":true}' > package.json)
  npm install --silent --ignore-scripts --no-audit --no-fund --prefix "$NPM_DIR" \
      onnxruntime-node@1.30.0 protobufjs@7.4.0 >/dev/null
fi

[ "${1:-}" = "--no-build" ] && exit 0

LINKER=()
if command -v ld.lld >/dev/null; then
  LINKER=(-DLLVM_USE_LINKER=lld)
fi
if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -G Ninja -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release "${LINKER[@]}" >/dev/null
fi
cmake --build "$BUILD"
