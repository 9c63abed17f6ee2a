//===- Cleanup.cpp - remove Identity, inference Dropout, dead code ---------===//

#include "refold/Passes/Explain.h"
#include "refold/Passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace refold {
#define GEN_PASS_DEF_CLEANUP
#include "refold/Passes/Passes.h.inc"
} // namespace refold

using namespace mlir;
using namespace refold;
using namespace refold::ir;

namespace {

/// Replacing a value by one of another type would change what users see;
/// Identity/Dropout may refine or forget a shape, so only same-type uses
/// are rewired.
static bool sameType(Value a, Value b) { return a.getType() == b.getType(); }

struct EraseIdentity : OpRewritePattern<IdentityOp> {
  EraseIdentity(MLIRContext *ctx, llvm::Statistic &count) : OpRewritePattern(ctx), count(count) {}
  LogicalResult matchAndRewrite(IdentityOp op, PatternRewriter &rewriter) const override {
    if (!sameType(op.getInput(), op.getOutput()))
      return rewriter.notifyMatchFailure(op, "input and output types differ");
    rewriter.replaceOp(op, op.getInput());
    ++count;
    return success();
  }
  llvm::Statistic &count;
};

struct EraseInferenceDropout : OpRewritePattern<DropoutOp> {
  EraseInferenceDropout(MLIRContext *ctx, llvm::Statistic &count)
      : OpRewritePattern(ctx), count(count) {}
  LogicalResult matchAndRewrite(DropoutOp op, PatternRewriter &rewriter) const override {
    if (!op.getMask().use_empty())
      return rewriter.notifyMatchFailure(op, "the mask output is used");
    if (!isNoneValue(op.getTrainingMode())) {
      DenseElementsAttr mode;
      if (!matchPattern(op.getTrainingMode(), m_Constant(&mode)))
        return rewriter.notifyMatchFailure(op, "training_mode is not a constant");
      if (mode.getNumElements() != 1 || !mode.getElementType().isInteger(1) ||
          mode.getSplatValue<bool>())
        return rewriter.notifyMatchFailure(op, "training_mode is not constant false");
    }
    if (!sameType(op.getData(), op.getOutput()))
      return rewriter.notifyMatchFailure(op, "input and output types differ");
    rewriter.replaceAllUsesWith(op.getOutput(), op.getData());
    rewriter.eraseOp(op);
    ++count;
    return success();
  }
  llvm::Statistic &count;
};

struct CleanupPass : refold::impl::CleanupBase<CleanupPass> {
  void runOnOperation() override {
    MLIRContext *ctx = &getContext();
    RewritePatternSet patterns(ctx);
    patterns.add<EraseIdentity>(ctx, numIdentity);
    patterns.add<EraseInferenceDropout>(ctx, numDropout);
    // Only the candidates are visited, so the driver never folds or hoists
    // initializers and constants.
    if (failed(applyToCandidates<IdentityOp, DropoutOp>(getOperation(), std::move(patterns))))
      return signalPassFailure();
    eraseDeadOps();
  }

  /// Erases side-effect-free ops without uses. The body is in dataflow
  /// order, so walking it backwards frees producers after their consumers.
  void eraseDeadOps() {
    Block &body = getOperation().getBody().front();
    for (Operation &op : llvm::make_early_inc_range(llvm::reverse(body))) {
      if (op.hasTrait<OpTrait::IsTerminator>() || op.getNumResults() == 0 ||
          !isOpTriviallyDead(&op))
        continue;
      op.erase();
      ++numDead;
    }
  }
};

} // namespace
