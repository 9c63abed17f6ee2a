//===- Cleanup.cpp - remove no-op nodes, duplicates and dead code ----------===//
//
// Identity, inference Dropout, Reshape to the same static shape, Transpose
// by the identity permutation or undoing another Transpose, Pad by zero and
// Cast to the same type are no-ops; two nodes of the same kind with the same inputs and
// attributes compute the same value (names aside) and one is kept; nodes
// without users go. Generic nodes other than Cast are left alone (a custom op
// may be random or stateful).
//
//===----------------------------------------------------------------------===//

#include "refold/Passes/Explain.h"
#include "refold/Passes/Passes.h"
#include "refold/Transforms/WeightUtils.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/IR/TypeUtilities.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include <map>

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

struct EraseNoOpReshape : OpRewritePattern<ReshapeOp> {
  EraseNoOpReshape(MLIRContext *ctx, llvm::Statistic &count)
      : OpRewritePattern(ctx), count(count) {}
  LogicalResult matchAndRewrite(ReshapeOp op, PatternRewriter &rewriter) const override {
    auto type = dyn_cast<RankedTensorType>(op.getData().getType());
    if (!type || !type.hasStaticShape() || type != op.getReshaped().getType())
      return rewriter.notifyMatchFailure(op, "the shapes are not the same static shape");
    rewriter.replaceOp(op, op.getData());
    ++count;
    return success();
  }
  llvm::Statistic &count;
};

struct EraseNoOpTranspose : OpRewritePattern<TransposeOp> {
  EraseNoOpTranspose(MLIRContext *ctx, llvm::Statistic &count)
      : OpRewritePattern(ctx), count(count) {}
  LogicalResult matchAndRewrite(TransposeOp op, PatternRewriter &rewriter) const override {
    if (!op.getPerm())
      return rewriter.notifyMatchFailure(op, "no explicit permutation (reverses the axes)");
    ArrayRef<int64_t> perm = *op.getPerm();
    Value source = op.getData();
    bool identity = llvm::all_of(llvm::enumerate(perm),
                                 [](auto p) { return p.value() == (int64_t)p.index(); });
    if (!identity) {
      // Transpose(Transpose(x, p1), p2) with p1[p2[i]] == i is x.
      auto inner = op.getData().getDefiningOp<TransposeOp>();
      if (!inner || !inner.getPerm() || inner.getPerm()->size() != perm.size())
        return rewriter.notifyMatchFailure(op, "not the identity permutation");
      for (size_t i = 0; i < perm.size(); ++i)
        if ((*inner.getPerm())[perm[i]] != (int64_t)i)
          return rewriter.notifyMatchFailure(op, "does not undo the Transpose before it");
      source = inner.getData();
    }
    if (!sameType(source, op.getTransposed()))
      return rewriter.notifyMatchFailure(op, "input and output types differ");
    rewriter.replaceOp(op, source);
    ++count;
    return success();
  }
  llvm::Statistic &count;
};

/// Exporters emit Pad by all-zero pads (torch's AvgPool2d at opset 13). Its
/// result type may know less than its input (the pads were computed), which
/// is fine unless the value is a graph output, whose type is the interface.
struct EraseNoOpPad : OpRewritePattern<PadOp> {
  EraseNoOpPad(MLIRContext *ctx, llvm::Statistic &count) : OpRewritePattern(ctx), count(count) {}
  LogicalResult matchAndRewrite(PadOp op, PatternRewriter &rewriter) const override {
    auto pads = weights::getConstantInts(op.getPads());
    if (!pads || llvm::any_of(*pads, [](int64_t p) { return p != 0; }))
      return rewriter.notifyMatchFailure(op, "pads are not constant zeros");
    if (!sameType(op.getData(), op.getOutput()) &&
        (failed(verifyCompatibleShape(op.getData().getType(), op.getOutput().getType())) ||
         llvm::any_of(op->getUsers(),
                      [](Operation *user) { return user->hasTrait<OpTrait::IsTerminator>(); })))
      return rewriter.notifyMatchFailure(op, "a graph output whose type would change");
    rewriter.replaceOp(op, op.getData());
    ++count;
    return success();
  }
  llvm::Statistic &count;
};

struct EraseNoOpCast : OpRewritePattern<NodeOp> {
  EraseNoOpCast(MLIRContext *ctx, llvm::Statistic &count) : OpRewritePattern(ctx), count(count) {}
  LogicalResult matchAndRewrite(NodeOp op, PatternRewriter &rewriter) const override {
    if (op.getOpType() != "Cast" || (op.getDomain() && !op.getDomain()->empty()) ||
        op->getNumOperands() != 1 || op->getNumResults() != 1)
      return rewriter.notifyMatchFailure(op, "not a Cast");
    auto in = dyn_cast<TensorType>(op->getOperand(0).getType());
    if (!in || in != op->getResult(0).getType())
      return rewriter.notifyMatchFailure(op, "the Cast changes the type");
    rewriter.replaceOp(op, op->getOperand(0));
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
    patterns.add<EraseNoOpReshape, EraseNoOpTranspose, EraseNoOpPad, EraseNoOpCast>(ctx, numNoOp);
    // Only the candidates are visited, so the driver never folds or hoists
    // initializers and constants.
    if (failed(applyToCandidates<IdentityOp, DropoutOp, ReshapeOp, TransposeOp, PadOp, NodeOp>(
            getOperation(), std::move(patterns))))
      return signalPassFailure();
    eraseDuplicates();
    eraseDeadOps();
  }

  /// Keeps the first of several typed nodes with the same kind, inputs,
  /// attributes (names and doc strings aside) and result types. A duplicate
  /// that is itself a graph output stays: outputs keep their own names.
  void eraseDuplicates() {
    Block &body = getOperation().getBody().front();
    std::map<std::vector<const void *>, Operation *> seen;
    for (Operation &op : llvm::make_early_inc_range(body)) {
      if (isa<NodeOp, InitializerOp, DropoutOp, NoneOp>(op) || op.getNumRegions() ||
          op.getNumResults() == 0 || op.hasTrait<OpTrait::IsTerminator>() ||
          !isMemoryEffectFree(&op))
        continue;
      std::vector<const void *> key{op.getName().getAsOpaquePointer()};
      for (Value operand : op.getOperands())
        key.push_back(operand.getAsOpaquePointer());
      for (Type type : op.getResultTypes())
        key.push_back(type.getAsOpaquePointer());
      for (NamedAttribute attr : op.getAttrs()) {
        StringRef name = attr.getName().getValue();
        if (name == kNodeNameAttr || name == kOutputNamesAttr || name == kDocStringAttr ||
            name == kValueInfoAttr)
          continue;
        key.push_back(attr.getName().getAsOpaquePointer());
        key.push_back(attr.getValue().getAsOpaquePointer());
      }
      auto [it, inserted] = seen.try_emplace(std::move(key), &op);
      if (inserted)
        continue;
      bool isGraphOutput = llvm::any_of(op.getUsers(), [](Operation *user) {
        return user->hasTrait<OpTrait::IsTerminator>();
      });
      if (isGraphOutput)
        continue;
      op.replaceAllUsesWith(it->second);
      op.erase();
      ++numDuplicates;
    }
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
