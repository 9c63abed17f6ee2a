//===- CEmitter.h - a model as a dependency-free C library ------*- C++ -*-===//
//
// Emits a function of the onnx dialect as C99: one .c with the kernels it
// uses (ckernels/), its weights pre-packed as static const data and a run
// function over one statically planned arena, and a .h declaring the API
// (docs/c-output.md).
//
//===----------------------------------------------------------------------===//

#ifndef REFOLD_CEMITTER_CEMITTER_H
#define REFOLD_CEMITTER_CEMITTER_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Error.h"

#include <functional>
#include <string>
#include <vector>

namespace refold::cemit {

struct EmitOptions {
  /// Prefix of every public name (P_run, P_WORKSPACE_SIZE, ...).
  std::string prefix = "model";
  /// The header's file name, as the .c includes it.
  std::string headerName = "model.h";
  /// Integer kernels requantize with an int32 multiplier and a shift
  /// (no float arithmetic) instead of a float scale.
  bool fixedRequant = false;
};

/// What the memory plan achieved, in bytes.
struct ArenaReport {
  uint64_t arenaBytes = 0;      // the planned arena (P_WORKSPACE_SIZE)
  uint64_t lowerBoundBytes = 0; // the most bytes live at any one step
  uint64_t perTensorBytes = 0;  // one buffer per intermediate tensor
  unsigned steps = 0;           // kernel calls in the run function
  /// Why layers of a quantized model stay float (for --explain).
  std::vector<std::string> notes;
};

struct EmittedC {
  std::string source, header;
  ArenaReport report;
};

/// Sizes a dynamic input dimension `dims` does not name: (input name, axis,
/// symbolic name or "", input rank) -> size.
using DefaultDimFn =
    std::function<int64_t(llvm::StringRef, int64_t, llvm::StringRef, int64_t)>;

/// Gives every symbolic input dimension the value `dims` names for it,
/// then folds constants and infers shapes so that every tensor's shape is
/// static. An unpinned dimension is an error naming it, unless `fallback`
/// sizes it.
llvm::Error pinDimensions(mlir::ModuleOp module, const llvm::StringMap<int64_t> &dims,
                          const DefaultDimFn &fallback = nullptr);

/// Emits `module`'s main function (shapes static: see pinDimensions). An op
/// or attribute the emitter cannot handle is an error naming the op and node.
llvm::Expected<EmittedC> emitC(mlir::ModuleOp module, const EmitOptions &options);

/// The op types the emitter has kernels for (some attribute combinations
/// of these are still refused, with an error naming them).
std::vector<std::string> supportedOps();

/// `stem` made a C identifier (letters, digits, underscores; no leading digit).
std::string cIdentifier(llvm::StringRef stem);

} // namespace refold::cemit

#endif // REFOLD_CEMITTER_CEMITTER_H
