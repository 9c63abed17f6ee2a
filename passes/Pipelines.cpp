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
  if (level == OptLevel::O1) {
    graph.addPass(createFoldBatchNorm(lastBatchNormFold));
    graph.addPass(createFoldAffine());
  }
  if (level == OptLevel::O2) {
    // One round of folds and merges, repeated until nothing changes: each
    // merge may enable another (a merged sum becomes a conv that a scale
    // folds into and a residual sum absorbs), in whatever order they occur.
    mlir::OpPassManager round(mlir::func::FuncOp::getOperationName());
    round.addPass(createFoldBatchNorm());
    round.addPass(createFoldAffine());
    // Linear merges first: a channels-last Linear becomes a 1x1 conv that the
    // conv merges can then fuse with its neighbours.
    MergeLinearOptions linear;
    linear.mergePolicy = options.mergePolicy;
    round.addPass(createMergeLinear(linear));
    // Sequential merges before parallel ones: a merged 1x1 -> 3x3 branch can
    // then join the sum it belongs to (DBB, UPDP blocks with residuals).
    MergeSequentialConvsOptions sequential;
    sequential.mergePolicy = options.mergePolicy;
    round.addPass(createMergeSequentialConvs(sequential));
    round.addPass(createMergeParallelBranches());
    MergeConcatConvsOptions concat;
    concat.mergePolicy = options.mergePolicy;
    round.addPass(createMergeConcatConvs(concat));
    round.addPass(createCleanup());
    FixedPointOptions fixedPoint;
    llvm::raw_string_ostream os(fixedPoint.pipeline);
    llvm::interleave(
        round.getPasses(), os, [&](mlir::Pass &pass) { pass.printAsTextualPipeline(os); }, ",");
    os.flush();
    fixedPoint.maxRounds = options.maxRounds;
    graph.addPass(createFixedPoint(fixedPoint));
    // What folds nowhere becomes per-channel scale/shift ops.
    graph.addPass(createFoldBatchNorm(lastBatchNormFold));
    graph.addPass(createFoldAffine());
    graph.addPass(createShrinkDeadChannels());
  }
  // Weights and placeholders the rewrites left unused.
  graph.addPass(createCleanup());
}
