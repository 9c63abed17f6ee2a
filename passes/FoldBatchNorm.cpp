//===- FoldBatchNorm.cpp - fold BatchNormalization into linear ops ---------===//
//
// BN(y) = y * s + t with s = scale / sqrt(var + eps), t = B - mean * s, per
// output channel. After Conv, ConvTranspose, Gemm or a 2-D MatMul, the linear
// op's weights are scaled by s along the output channel and t joins the bias.
// Exact in real arithmetic (reparam-math.md §1). New weights are new
// initializers: the old ones may be shared.
//
// A BN whose only user is a linear op folds forward instead (section 2):
// W'[o,i] = W[o,i] * s[i], b' = b + sum W[o,i,...] * t[i]. A zero-padding
// conv saw zeros where the folded one sees t/s: a constant map on the border
// rows and columns corrects that (2-D, static shape, and only when the
// output is not larger than the input, so the Add costs no more than the BN).
//
// A BN before an AveragePool without padding (or count_include_pad=0), or
// before a MaxPool when every scale is positive, moves after the pool: the
// pool averages (or picks) within a channel, which commutes with the
// channel's affine map. With lower-unfolded, a BN that folds nowhere becomes
// a 1x1 depthwise Conv on NCHW tensors (one op that runtimes run like a BN
// and that the conv merges can take) or Mul and Add otherwise.
//
//===----------------------------------------------------------------------===//

#include "refold/Passes/Explain.h"
#include "refold/Passes/Passes.h"
#include "refold/Transforms/ConvForms.h"
#include "refold/Transforms/LinearFold.h"
#include "refold/Transforms/WeightUtils.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include <cmath>

namespace refold {
#define GEN_PASS_DEF_FOLDBATCHNORM
#include "refold/Passes/Passes.h.inc"
} // namespace refold

using namespace mlir;
using namespace refold;
using namespace refold::ir;

namespace {

FailureOr<ChannelAffine> batchNormAffine(BatchNormalizationOp bn, PatternRewriter &rewriter) {
  std::string why;
  auto affine = refold::batchNormAffine(bn, why);
  if (failed(affine))
    return rewriter.notifyMatchFailure(bn, why);
  return affine;
}

struct FoldIntoLinear : OpRewritePattern<BatchNormalizationOp> {
  // Folding backward into the producer is preferred: it never needs padding checks.
  explicit FoldIntoLinear(MLIRContext *ctx) : OpRewritePattern(ctx, /*benefit=*/2) {}
  LogicalResult matchAndRewrite(BatchNormalizationOp bn, PatternRewriter &rewriter) const override {
    auto affine = batchNormAffine(bn, rewriter);
    if (failed(affine))
      return failure();
    return foldChannelAffine(rewriter, bn, bn.getX(), affine->scale, affine->shift);
  }
};

/// BN(x) feeding a Conv, a Gemm's A or a 2-D MatMul's A.
struct FoldIntoFollowing : OpRewritePattern<BatchNormalizationOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(BatchNormalizationOp bn, PatternRewriter &rewriter) const override {
    if (!bn->hasOneUse())
      return rewriter.notifyMatchFailure(bn, "the output has several users");
    auto affine = batchNormAffine(bn, rewriter);
    if (failed(affine))
      return failure();
    return foldAffineIntoFollowing(rewriter, bn, bn.getX(), affine->scale, affine->shift);
  }
};

/// Transpose -> BN -> Transpose back, normalizing the last axis of x (BN over
/// token embeddings, UPDP's replacement for LayerNorm in a ViT), feeding a
/// MatMul with a constant B: folds into the MatMul like a BN before a Linear.
struct FoldTokenBatchNorm : OpRewritePattern<BatchNormalizationOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(BatchNormalizationOp bn, PatternRewriter &rewriter) const override {
    auto before = bn.getX().getDefiningOp<TransposeOp>();
    if (!before || !bn->hasOneUse())
      return rewriter.notifyMatchFailure(bn, "not Transpose -> BN with one user");
    auto after = dyn_cast<TransposeOp>(*bn->getUsers().begin());
    if (!after || !after->hasOneUse() || !before->hasOneUse())
      return rewriter.notifyMatchFailure(bn, "not Transpose -> BN -> Transpose, each with one user");
    if (!before.getPerm() || !after.getPerm())
      return rewriter.notifyMatchFailure(bn, "the transposes have no explicit permutation");
    ArrayRef<int64_t> p1 = *before.getPerm(), p2 = *after.getPerm();
    int64_t rank = p1.size();
    if (rank < 2 || (int64_t)p2.size() != rank || p1[1] != rank - 1)
      return rewriter.notifyMatchFailure(bn, "the BN does not normalize the last axis of x");
    for (int64_t i = 0; i < rank; ++i)
      if (p1[p2[i]] != i)
        return rewriter.notifyMatchFailure(bn, "the second Transpose does not undo the first");
    auto matmul = dyn_cast<MatMulOp>(*after->getUsers().begin());
    if (!matmul || matmul.getA() != after.getTransposed())
      return rewriter.notifyMatchFailure(bn, "the normalized tensor is not a MatMul's A");
    if (after.getTransposed().getType() != before.getData().getType())
      return rewriter.notifyMatchFailure(bn, "the transposes change the type");
    auto affine = batchNormAffine(bn, rewriter);
    if (failed(affine))
      return failure();
    if (failed(foldAffineIntoMatMul(rewriter, bn, before.getData(), matmul, affine->scale,
                                    affine->shift)))
      return failure();
    rewriter.eraseOp(after);
    rewriter.eraseOp(bn);
    rewriter.eraseOp(before);
    return success();
  }
};

/// BN -> pool becomes pool -> BN (the BN then sees fewer elements and may
/// meet a linear op).
struct MoveAfterPool : OpRewritePattern<BatchNormalizationOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(BatchNormalizationOp bn, PatternRewriter &rewriter) const override {
    if (!bn->hasOneUse())
      return rewriter.notifyMatchFailure(bn, "the output has several users");
    Operation *pool = *bn->getUsers().begin();
    auto affine = batchNormAffine(bn, rewriter);
    if (failed(affine))
      return failure();
    if (auto avg = dyn_cast<AveragePoolOp>(pool)) {
      if (padsInput(avg.getPads(), avg.getAutoPad()) && avg.getCountIncludePad().value_or(0))
        return rewriter.notifyMatchFailure(
            bn, "the AveragePool averages padded zeros (count_include_pad=1)");
    } else if (auto max = dyn_cast<MaxPoolOp>(pool)) {
      if (!isNoneValue(max.getIndices()) && !max.getIndices().use_empty())
        return rewriter.notifyMatchFailure(bn, "the MaxPool's indices are used");
      if (llvm::any_of(affine->scale, [](float s) { return !(s > 0); }))
        return rewriter.notifyMatchFailure(bn, "a non-positive scale reverses the max");
    } else {
      return rewriter.notifyMatchFailure(bn, "the user is not an AveragePool or MaxPool");
    }
    Value pooled = pool->getResult(0);
    auto inType = dyn_cast<RankedTensorType>(bn.getX().getType());
    auto outType = dyn_cast<RankedTensorType>(pooled.getType());
    if (!inType || !outType || inType.getRank() != outType.getRank())
      return rewriter.notifyMatchFailure(bn, "the ranks are not known");
    rewriter.modifyOpInPlace(pool, [&] { pool->setOperand(0, bn.getX()); });
    rewriter.setInsertionPointAfter(pool);
    auto moved = cast<BatchNormalizationOp>(rewriter.clone(*bn));
    moved->setOperand(0, pooled);
    moved.getY().setType(outType);
    for (StringRef attr : {kOutputNamesAttr})
      if (auto value = pool->getAttr(attr)) {
        moved->setAttr(attr, value);
        pool->removeAttr(attr);
      }
    rewriter.replaceAllUsesExcept(pooled, moved.getY(), moved);
    rewriter.eraseOp(bn);
    return success();
  }
};

/// A BN left over: a 1x1 depthwise Conv on a rank-4 tensor, else Mul + Add
/// by [C, 1, ...] constants.
struct LowerUnfolded : OpRewritePattern<BatchNormalizationOp> {
  explicit LowerUnfolded(MLIRContext *ctx) : OpRewritePattern(ctx, /*benefit=*/0) {}
  LogicalResult matchAndRewrite(BatchNormalizationOp bn, PatternRewriter &rewriter) const override {
    auto type = dyn_cast<RankedTensorType>(bn.getX().getType());
    if (!type || type.getRank() < 2 || !type.getElementType().isF32())
      return rewriter.notifyMatchFailure(bn, "the input is not a ranked float32 tensor");
    auto affine = batchNormAffine(bn, rewriter);
    if (failed(affine))
      return failure();
    int64_t channels = affine->scale.size();
    if (!ShapedType::isDynamic(type.getDimSize(1)) && type.getDimSize(1) != channels)
      return rewriter.notifyMatchFailure(bn, "channel count differs from the input's");
    std::string name = weights::nameOf(bn.getY());
    if (name.empty())
      name = "batchnorm";
    Location loc = bn.getLoc();
    Value result;
    if (type.getRank() == 4) {
      weights::F32Tensor weight(llvm::ArrayRef<int64_t>{channels, 1, 1, 1});
      weight.data = affine->scale;
      result = createConv(rewriter, loc, bn.getX(), weight, affine->shift, channels, {1, 1},
                          {0, 0, 0, 0}, bn.getY().getType(), name, bn, bn);
      if (auto stats = weights::batchNormOutputStats(bn))
        weights::setOutputStats(result.getDefiningOp(), *stats);
    } else {
      SmallVector<int64_t> shape{channels};
      shape.append(type.getRank() - 2, 1);
      weights::F32Tensor scale(shape), shift(shape);
      scale.data = affine->scale;
      shift.data = affine->shift;
      Value s = weights::createInitializer(rewriter, loc, name + "_scale", scale);
      Value t = weights::createInitializer(rewriter, loc, name + "_shift", shift);
      Value scaled = rewriter.create<MulOp>(loc, bn.getY().getType(), bn.getX(), s);
      auto add = rewriter.create<AddOp>(loc, bn.getY().getType(), scaled, t);
      for (StringRef attr : {kNodeNameAttr, kOutputNamesAttr})
        if (auto value = bn->getAttr(attr))
          add->setAttr(attr, value);
      result = add;
    }
    rewriter.replaceOp(bn, result);
    return success();
  }
};

struct FoldBatchNormPass : refold::impl::FoldBatchNormBase<FoldBatchNormPass> {
  using FoldBatchNormBase::FoldBatchNormBase;
  void runOnOperation() override {
    MLIRContext *ctx = &getContext();
    RewritePatternSet patterns(ctx);
    patterns.add<FoldIntoLinear, FoldIntoFollowing, FoldTokenBatchNorm, MoveAfterPool>(ctx);
    if (lowerUnfolded)
      patterns.add<LowerUnfolded>(ctx);
    if (failed(applyToCandidates<BatchNormalizationOp>(getOperation(), std::move(patterns))))
      return signalPassFailure();
  }
};

} // namespace
