//===- Pipelines.cpp - the -O pipelines of the refold driver ---------------===//

#include "refold/Passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/PassManager.h"

void refold::buildRefoldPipeline(mlir::OpPassManager &pm, OptLevel level,
                                 const PipelineOptions &options) {
  if (level == OptLevel::O0)
    return; // a pure round-trip
  auto &graph = pm.nest<mlir::func::FuncOp>();
  graph.addPass(createCleanup());
  graph.addPass(createFoldConstants());
  graph.addPass(createFoldBatchNorm());
  graph.addPass(createFoldAffine());
  if (level == OptLevel::O2) {
    // Sequential merges first: a merged 1x1 -> 3x3 branch can then join the
    // parallel sum it belongs to (DBB, UPDP blocks with residuals).
    MergeSequentialConvsOptions sequential;
    sequential.mergePolicy = options.mergePolicy;
    // Linear merges first: a channels-last Linear becomes a 1x1 conv that the
    // sequential merge can then fuse with its neighbours.
    MergeLinearOptions linear;
    linear.mergePolicy = options.mergePolicy;
    graph.addPass(createMergeLinear(linear));
    graph.addPass(createMergeSequentialConvs(sequential));
    graph.addPass(createMergeParallelBranches());
    MergeConcatConvsOptions concat;
    concat.mergePolicy = options.mergePolicy;
    graph.addPass(createMergeConcatConvs(concat));
    // A BatchNormalization after a merged sum now follows a conv.
    graph.addPass(createFoldBatchNorm());
    graph.addPass(createFoldAffine());
    graph.addPass(createShrinkDeadChannels());
  }
  // Weights and placeholders the rewrites left unused.
  graph.addPass(createCleanup());
}
