//===- Pipelines.cpp - the -O pipelines of the refold driver ---------------===//

#include "refold/Passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/PassManager.h"

void refold::buildRefoldPipeline(mlir::OpPassManager &pm, OptLevel level,
                                 const PipelineOptions &options) {
  if (level == OptLevel::O0)
    return; // a pure round-trip
  auto &prepare = pm.nest<mlir::func::FuncOp>();
  prepare.addPass(createCleanup());
  prepare.addPass(createFoldConstants());
  // Shapes the exporter computed at run time are constants now.
  pm.addPass(createInferShapes());
  auto &graph = pm.nest<mlir::func::FuncOp>();
  graph.addPass(createCleanup());
  // The last BN fold turns what is left into per-channel scale/shift ops.
  FoldBatchNormOptions lastBatchNormFold;
  lastBatchNormFold.lowerUnfolded = true;
  graph.addPass(level == OptLevel::O1 ? createFoldBatchNorm(lastBatchNormFold)
                                      : createFoldBatchNorm());
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
    graph.addPass(createFoldBatchNorm(lastBatchNormFold));
    graph.addPass(createFoldAffine());
    graph.addPass(createShrinkDeadChannels());
  }
  // Weights and placeholders the rewrites left unused.
  graph.addPass(createCleanup());
}
