//===- CEngine.h - write, compile and run emitted C -------------*- C++ -*-===//
//
// What the driver and the node-test runner do with the emitter's output:
// write it beside a path, or compile it with a generated main() and run it
// (optionally under an emulator) on given inputs.
//
//===----------------------------------------------------------------------===//

#ifndef REFOLD_CEMITTER_CENGINE_H
#define REFOLD_CEMITTER_CENGINE_H

#include "refold/CEmitter/CEmitter.h"
#include "refold/Interpreter/Interpreter.h"

namespace refold::cemit {

/// The module's C (dimensions pinned on a copy).
llvm::Expected<EmittedC> emitForC(mlir::ModuleOp module, llvm::StringRef prefix,
                                         llvm::StringRef headerName,
                                         const llvm::StringMap<int64_t> &dims,
                                         bool fixedRequant = false);

/// Writes `cPath` and the header beside it, both or neither.
llvm::Expected<ArenaReport> writeC(mlir::ModuleOp module, llvm::StringRef cPath,
                                          llvm::StringRef prefix,
                                          const llvm::StringMap<int64_t> &dims,
                                          bool fixedRequant = false);

struct COptions {
  std::string cc;               // compiler; $CC or cc when empty
  std::string cflags = "-O2";   // extra flags
  unsigned timeRuns = 0;        // > 1: time this many runs
  std::string runUnder;         // e.g. "qemu-aarch64 -L /usr/aarch64-linux-gnu"
  bool fixedRequant = false;    // integer kernels requantize without float
};

/// Emits the module as C, compiles it with a generated main, runs it on
/// `inputs` (one per graph input; their shapes pin the symbolic dims) and
/// returns the outputs by name.
llvm::Expected<interp::TensorMap> runC(mlir::ModuleOp module, llvm::ArrayRef<interp::Tensor> inputs,
                                       const COptions &options, double *medianMs = nullptr);

} // namespace refold::cemit

#endif // REFOLD_CEMITTER_CENGINE_H
