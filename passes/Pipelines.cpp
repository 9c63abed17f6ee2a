//===- Pipelines.cpp - the -O pipelines of the refold driver ---------------===//

#include "refold/Passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/PassManager.h"

void refold::buildRefoldPipeline(mlir::OpPassManager &pm, OptLevel level) {
  if (level == OptLevel::O0)
    return; // a pure round-trip
  auto &graph = pm.nest<mlir::func::FuncOp>();
  graph.addPass(createCleanup());
  graph.addPass(createFoldConstants());
  graph.addPass(createFoldBatchNorm());
  graph.addPass(createFoldAffine());
  if (level == OptLevel::O2)
    graph.addPass(createMergeParallelBranches());
  // Weights and placeholders the rewrites left unused.
  graph.addPass(createCleanup());
}
