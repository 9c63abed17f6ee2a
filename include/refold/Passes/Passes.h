//===- Passes.h - refold passes ---------------------------------*- C++ -*-===//

#ifndef REFOLD_PASSES_PASSES_H
#define REFOLD_PASSES_PASSES_H

#include "mlir/Pass/Pass.h"
#include "refold/Dialect/ONNX/ONNXOps.h"

namespace refold {

#define GEN_PASS_DECL
#include "refold/Passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "refold/Passes/Passes.h.inc"

/// Optimization levels of the `refold` driver.
enum class OptLevel { O0, O1, O2 };

/// Options of the -O pipelines.
struct PipelineOptions {
  /// profitable, always or never (sequential conv merges).
  std::string mergePolicy = "profitable";
  /// Bound on the -O2 fixed point's rounds.
  unsigned maxRounds = 10;
};

/// Adds the pipeline for `level` to `pm` (which runs on the module).
void buildRefoldPipeline(mlir::OpPassManager &pm, OptLevel level,
                         const PipelineOptions &options = {});

} // namespace refold

#endif // REFOLD_PASSES_PASSES_H
