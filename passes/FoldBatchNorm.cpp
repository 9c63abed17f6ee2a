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

/// Per-channel scale and shift of an inference-mode BatchNormalization.
struct Affine {
  std::vector<float> scale, shift;
};

FailureOr<Affine> batchNormAffine(BatchNormalizationOp bn, PatternRewriter &rewriter) {
  auto gamma = weights::getConstantF32(bn.getScale());
  auto beta = weights::getConstantF32(bn.getB());
  auto mean = weights::getConstantF32(bn.getInputMean());
  auto var = weights::getConstantF32(bn.getInputVar());
  if (!gamma || !beta || !mean || !var)
    return rewriter.notifyMatchFailure(bn, "parameters are not float32 constants");
  int64_t n = gamma->size();
  if (beta->size() != n || mean->size() != n || var->size() != n)
    return rewriter.notifyMatchFailure(bn, "parameters differ in length");
  double eps = bn.getEpsilon() ? bn.getEpsilon()->convertToDouble() : 1e-5;
  Affine affine;
  for (int64_t c = 0; c < n; ++c) {
    double s = gamma->data[c] / std::sqrt(double(var->data[c]) + eps);
    affine.scale.push_back(float(s));
    affine.shift.push_back(float(beta->data[c] - mean->data[c] * s));
  }
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

std::string hintFor(Value v, StringRef suffix) {
  std::string name = weights::nameOf(v);
  return (name.empty() ? std::string("weight") : name) + suffix.str();
}

/// BN(x) feeding a Conv (without padding), a Gemm's A or a 2-D MatMul's A.
struct FoldIntoFollowing : OpRewritePattern<BatchNormalizationOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(BatchNormalizationOp bn, PatternRewriter &rewriter) const override {
    if (!bn->hasOneUse())
      return rewriter.notifyMatchFailure(bn, "the output has several users");
    Operation *user = *bn->getUsers().begin();
    auto affine = batchNormAffine(bn, rewriter);
    if (failed(affine))
      return failure();
    const std::vector<float> &s = affine->scale, &t = affine->shift;
    int64_t channels = s.size();
    if (auto conv = dyn_cast<ConvOp>(user)) {
      if (conv.getX() != bn.getY())
        return rewriter.notifyMatchFailure(bn, "the BN output is not the conv's input");
      if (conv.getAutoPad() && *conv.getAutoPad() != "NOTSET" && *conv.getAutoPad() != "VALID")
        return rewriter.notifyMatchFailure(bn, "the following conv pads (auto_pad)");
      bool padded = conv.getPads() && llvm::any_of(*conv.getPads(), [](int64_t p) { return p; });
      std::optional<weights::F32Tensor> borderMap;
      if (padded) {
        // Padded zeros would have to become -t/s: correct the border instead.
        std::string why;
        auto form = readConvForm(conv, why);
        if (failed(form))
          return rewriter.notifyMatchFailure(bn, "the following conv zero-pads and " + why);
        auto inShape = staticSpatialShape(conv.getX()), outShape = staticSpatialShape(conv.getY());
        if (!inShape || !outShape)
          return rewriter.notifyMatchFailure(
              bn, "the following conv zero-pads and the spatial shape is not static");
        if (weights::staticElements(conv.getY()) > weights::staticElements(conv.getX()))
          return rewriter.notifyMatchFailure(
              bn, "the following conv zero-pads and its border correction would cost more "
                  "than the BatchNormalization");
        if ((int64_t)t.size() != form->inChannels())
          return rewriter.notifyMatchFailure(bn, "channel count differs from the conv's input");
        borderMap = borderCorrection(form->weight, form->group, t, form->stride, form->pads,
                                     (*inShape)[0], (*inShape)[1], (*outShape)[0],
                                     (*outShape)[1]);
      }
      auto w = weights::getConstantF32(conv.getW());
      if (!w || w->rank() < 3)
        return rewriter.notifyMatchFailure(bn, "the following conv's weight is not constant");
      int64_t out = w->dim(0), inPerGroup = w->dim(1), group = conv.getGroup().value_or(1);
      if (inPerGroup * group != channels)
        return rewriter.notifyMatchFailure(bn, "channel count differs from the conv's input");
      std::vector<float> bias(out, 0.0f);
      if (!isNoneValue(conv.getB())) {
        auto b = weights::getConstantF32(conv.getB());
        if (!b || b->size() != out)
          return rewriter.notifyMatchFailure(bn, "the following conv's bias is not constant");
        bias = b->data;
      }
      int64_t kernel = w->size() / (out * inPerGroup), outPerGroup = out / group;
      weights::F32Tensor newW = *w;
      for (int64_t o = 0; o < out; ++o)
        for (int64_t j = 0; j < inPerGroup; ++j) {
          int64_t i = (o / outPerGroup) * inPerGroup + j;
          for (int64_t k = 0; k < kernel; ++k) {
            float &v = newW.data[(o * inPerGroup + j) * kernel + k];
            bias[o] += v * t[i];
            v *= s[i];
          }
        }
      weights::F32Tensor newB(llvm::ArrayRef<int64_t>{out});
      newB.data = bias;
      Value wv = weights::createInitializer(rewriter, conv.getLoc(),
                                            hintFor(conv.getW(), "_folded"), newW);
      Value bv = weights::createInitializer(rewriter, conv.getLoc(),
                                            hintFor(conv.getW(), "_folded_bias"), newB);
      rewriter.modifyOpInPlace(conv, [&] {
        conv.getXMutable().assign(bn.getX());
        conv.getWMutable().assign(wv);
        conv.getBMutable().assign(bv);
      });
      if (borderMap) {
        rewriter.setInsertionPointAfter(conv);
        Value corrected = createAddConstant(rewriter, conv.getLoc(), conv.getY(), *borderMap,
                                            weights::nameOf(conv.getY()), conv);
        rewriter.replaceAllUsesExcept(conv.getY(), corrected, corrected.getDefiningOp());
        conv->removeAttr(kOutputNamesAttr);
      }
      rewriter.eraseOp(bn);
      return success();
    }
    // Gemm (no transA) or 2-D MatMul: the BN channels are A's columns, B's rows.
    Value a, b, c;
    float alpha = 1, beta = 1;
    bool transB = false;
    if (auto gemm = dyn_cast<GemmOp>(user)) {
      if (gemm.getA() != bn.getY() || gemm.getTransA().value_or(0))
        return rewriter.notifyMatchFailure(bn, "the BN output is not the Gemm's untransposed A");
      a = gemm.getA(), b = gemm.getB(), c = gemm.getC();
      alpha = gemm.getAlpha() ? gemm.getAlpha()->convertToFloat() : 1.0f;
      beta = gemm.getBeta() ? gemm.getBeta()->convertToFloat() : 1.0f;
      transB = gemm.getTransB().value_or(0) != 0;
    } else if (auto matmul = dyn_cast<MatMulOp>(user)) {
      auto type = dyn_cast<RankedTensorType>(matmul.getA().getType());
      if (matmul.getA() != bn.getY() || !type || type.getRank() != 2)
        return rewriter.notifyMatchFailure(bn, "the BN output is not a 2-D MatMul's A");
      a = matmul.getA(), b = matmul.getB();
    } else {
      return rewriter.notifyMatchFailure(bn, "the user is not a Conv, Gemm or MatMul");
    }
    auto w = weights::getConstantF32(b);
    if (!w || w->rank() != 2)
      return rewriter.notifyMatchFailure(bn, "B is not a 2-D float32 constant");
    int64_t k = transB ? w->dim(1) : w->dim(0), n = transB ? w->dim(0) : w->dim(1);
    if (k != channels)
      return rewriter.notifyMatchFailure(bn, "channel count differs from B's rows");
    std::optional<weights::F32Tensor> cValue;
    if (c && !isNoneValue(c)) {
      cValue = weights::getConstantF32(c);
      if (!cValue || !(cValue->size() == 1 || (cValue->size() == n && cValue->shape.back() == n)))
        return rewriter.notifyMatchFailure(bn, "C is not a constant row vector or scalar");
    }
    // Y = alpha (A s + t) B + beta C = alpha A (s B) + (alpha t B + beta C).
    weights::F32Tensor newW = *w;
    weights::F32Tensor newC(llvm::ArrayRef<int64_t>{n});
    for (int64_t col = 0; col < n; ++col) {
      double bias = cValue ? beta * cValue->data[cValue->size() == 1 ? 0 : col] : 0.0;
      for (int64_t r = 0; r < k; ++r) {
        float &v = newW.data[transB ? col * k + r : r * n + col];
        bias += alpha * double(v) * t[r];
        v *= s[r];
      }
      newC.data[col] = float(bias);
    }
    Value wv = weights::createInitializer(rewriter, user->getLoc(), hintFor(b, "_folded"), newW);
    Value cv =
        weights::createInitializer(rewriter, user->getLoc(), hintFor(b, "_folded_bias"), newC);
    auto gemm = rewriter.create<GemmOp>(
        user->getLoc(), user->getResult(0).getType(), bn.getX(), wv, cv,
        alpha == 1.0f ? FloatAttr() : rewriter.getF32FloatAttr(alpha), FloatAttr(), IntegerAttr(),
        transB ? rewriter.getI64IntegerAttr(1) : IntegerAttr());
    for (StringRef attr : {kNodeNameAttr, kOutputNamesAttr})
      if (auto value = user->getAttr(attr))
        gemm->setAttr(attr, value);
    rewriter.replaceOp(user, gemm->getResults());
    rewriter.eraseOp(bn);
    return success();
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

struct FoldBatchNormPass : refold::impl::FoldBatchNormBase<FoldBatchNormPass> {
  void runOnOperation() override {
    MLIRContext *ctx = &getContext();
    RewritePatternSet patterns(ctx);
    patterns.add<FoldIntoLinear, FoldIntoFollowing, FoldTokenBatchNorm>(ctx);
    if (failed(applyToCandidates<BatchNormalizationOp>(getOperation(), std::move(patterns))))
      return signalPassFailure();
  }
};

} // namespace
