//===- FoldBatchNorm.cpp - fold BatchNormalization into linear ops ---------===//
//
// BN(y) = y * s + t with s = scale / sqrt(var + eps), t = B - mean * s, per
// output channel. After Conv, ConvTranspose, Gemm or a 2-D MatMul, the linear
// op's weights are scaled by s along the output channel and t joins the bias.
// Exact in real arithmetic (reparam-math.md §1). New weights are new
// initializers: the old ones may be shared.
//
//===----------------------------------------------------------------------===//

#include "refold/Passes/Passes.h"
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
using weights::F32Tensor;

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

/// The new op computes what `bn` computed: it takes the BN's output names.
void adoptOutputNames(Operation *newOp, Operation *bn) {
  if (auto names = bn->getAttr(kOutputNamesAttr))
    newOp->setAttr(kOutputNamesAttr, names);
  else
    newOp->removeAttr(kOutputNamesAttr);
  newOp->removeAttr(kValueInfoAttr);
  newOp->getResult(0).setType(bn->getResult(0).getType());
}

std::string hint(Value v, StringRef suffix) {
  std::string name = weights::nameOf(v);
  return (name.empty() ? std::string("weight") : name) + suffix.str();
}

/// Conv or ConvTranspose followed by BatchNormalization.
template <typename ConvLike>
struct FoldIntoConv : OpRewritePattern<BatchNormalizationOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(BatchNormalizationOp bn, PatternRewriter &rewriter) const override {
    auto conv = bn.getX().getDefiningOp<ConvLike>();
    if (!conv)
      return rewriter.notifyMatchFailure(bn, "input is not produced by " +
                                                 ConvLike::getOperationName());
    if (!conv->hasOneUse())
      return rewriter.notifyMatchFailure(bn, "the convolution's output has other users");
    auto w = weights::getConstantF32(conv.getW());
    if (!w || w->rank() < 3)
      return rewriter.notifyMatchFailure(bn, "the weight is not a float32 constant");
    bool hasBias = !isNoneValue(conv.getB());
    std::optional<F32Tensor> b;
    if (hasBias && !(b = weights::getConstantF32(conv.getB())))
      return rewriter.notifyMatchFailure(bn, "the bias is not a float32 constant");
    auto affine = batchNormAffine(bn, rewriter);
    if (failed(affine))
      return failure();
    constexpr bool transposed = std::is_same_v<ConvLike, ConvTransposeOp>;
    int64_t group = conv.getGroup().value_or(1);
    int64_t outChannels = transposed ? w->dim(1) * group : w->dim(0);
    if ((int64_t)affine->scale.size() != outChannels)
      return rewriter.notifyMatchFailure(bn, "channel count differs from the convolution's");
    if (b && b->size() != outChannels)
      return rewriter.notifyMatchFailure(bn, "bias size differs from the output channels");

    F32Tensor newW = *w;
    int64_t kernel = 1;
    for (int64_t i = 2; i < w->rank(); ++i)
      kernel *= w->dim(i);
    if (!transposed) {
      for (int64_t o = 0; o < outChannels; ++o)
        for (int64_t j = 0, n = w->dim(1) * kernel; j < n; ++j)
          newW.data[o * n + j] *= affine->scale[o];
    } else {
      // Weight [I, O/g, k...]: row i of group i / (I/g) feeds output channel
      // group * (O/g) + j.
      int64_t inPerGroup = w->dim(0) / group, outPerGroup = w->dim(1);
      for (int64_t i = 0; i < w->dim(0); ++i)
        for (int64_t j = 0; j < outPerGroup; ++j) {
          float s = affine->scale[(i / inPerGroup) * outPerGroup + j];
          float *p = newW.data.data() + (i * outPerGroup + j) * kernel;
          for (int64_t k = 0; k < kernel; ++k)
            p[k] *= s;
        }
    }
    F32Tensor newB(llvm::ArrayRef<int64_t>{outChannels});
    for (int64_t o = 0; o < outChannels; ++o)
      newB.data[o] = (b ? b->data[o] * affine->scale[o] : 0.0f) + affine->shift[o];

    Operation *folded = rewriter.clone(*conv);
    folded->setOperand(1, weights::createInitializer(rewriter, conv.getLoc(),
                                                      hint(conv.getW(), "_bn"), newW));
    folded->setOperand(2, weights::createInitializer(rewriter, conv.getLoc(),
                                                      hint(conv.getW(), "_bn_bias"), newB));
    adoptOutputNames(folded, bn);
    rewriter.replaceOp(bn, folded->getResults());
    rewriter.eraseOp(conv);
    return success();
  }
};

/// Gemm followed by BatchNormalization (channels = Gemm's output columns).
struct FoldIntoGemm : OpRewritePattern<BatchNormalizationOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(BatchNormalizationOp bn, PatternRewriter &rewriter) const override {
    auto gemm = bn.getX().getDefiningOp<GemmOp>();
    if (!gemm)
      return rewriter.notifyMatchFailure(bn, "input is not produced by onnx.Gemm");
    if (!gemm->hasOneUse())
      return rewriter.notifyMatchFailure(bn, "the Gemm's output has other users");
    auto w = weights::getConstantF32(gemm.getB());
    if (!w || w->rank() != 2)
      return rewriter.notifyMatchFailure(bn, "B is not a 2-D float32 constant");
    auto affine = batchNormAffine(bn, rewriter);
    if (failed(affine))
      return failure();
    bool transB = gemm.getTransB().value_or(0) != 0;
    int64_t n = transB ? w->dim(0) : w->dim(1), k = transB ? w->dim(1) : w->dim(0);
    if ((int64_t)affine->scale.size() != n)
      return rewriter.notifyMatchFailure(bn, "channel count differs from the Gemm's columns");
    float alpha = gemm.getAlpha() ? gemm.getAlpha()->convertToFloat() : 1.0f;
    float beta = gemm.getBeta() ? gemm.getBeta()->convertToFloat() : 1.0f;
    std::optional<F32Tensor> c;
    if (!isNoneValue(gemm.getC())) {
      c = weights::getConstantF32(gemm.getC());
      // Only a C that is the same for every row folds into a per-column bias.
      if (!c || !(c->size() == 1 || (c->size() == n && c->shape.back() == n)))
        return rewriter.notifyMatchFailure(bn, "C is not a constant row vector or scalar");
    }
    F32Tensor newW = *w;
    for (int64_t col = 0; col < n; ++col)
      for (int64_t r = 0; r < k; ++r)
        newW.data[transB ? col * k + r : r * n + col] *= alpha * affine->scale[col];
    F32Tensor newC(llvm::ArrayRef<int64_t>{n});
    for (int64_t col = 0; col < n; ++col) {
      float cv = c ? c->data[c->size() == 1 ? 0 : col] * beta : 0.0f;
      newC.data[col] = cv * affine->scale[col] + affine->shift[col];
    }
    Operation *folded = rewriter.clone(*gemm);
    folded->setOperand(1, weights::createInitializer(rewriter, gemm.getLoc(),
                                                      hint(gemm.getB(), "_bn"), newW));
    folded->setOperand(2, weights::createInitializer(rewriter, gemm.getLoc(),
                                                      hint(gemm.getB(), "_bn_bias"), newC));
    // alpha and beta are now inside B and C.
    folded->removeAttr("alpha");
    folded->removeAttr("beta");
    adoptOutputNames(folded, bn);
    rewriter.replaceOp(bn, folded->getResults());
    rewriter.eraseOp(gemm);
    return success();
  }
};

/// A 2-D MatMul with a constant right operand followed by BatchNormalization
/// becomes one Gemm with the BN in its weights and bias.
struct FoldIntoMatMul : OpRewritePattern<BatchNormalizationOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(BatchNormalizationOp bn, PatternRewriter &rewriter) const override {
    auto matmul = bn.getX().getDefiningOp<MatMulOp>();
    if (!matmul)
      return rewriter.notifyMatchFailure(bn, "input is not produced by onnx.MatMul");
    if (!matmul->hasOneUse())
      return rewriter.notifyMatchFailure(bn, "the MatMul's output has other users");
    auto aType = dyn_cast<RankedTensorType>(matmul.getA().getType());
    // BN normalizes axis 1; that is MatMul's output column axis only in 2-D.
    if (!aType || aType.getRank() != 2)
      return rewriter.notifyMatchFailure(bn, "the MatMul is not 2-D");
    auto w = weights::getConstantF32(matmul.getB());
    if (!w || w->rank() != 2)
      return rewriter.notifyMatchFailure(bn, "B is not a 2-D float32 constant");
    auto affine = batchNormAffine(bn, rewriter);
    if (failed(affine))
      return failure();
    int64_t k = w->dim(0), n = w->dim(1);
    if ((int64_t)affine->scale.size() != n)
      return rewriter.notifyMatchFailure(bn, "channel count differs from the MatMul's columns");
    F32Tensor newW = *w;
    for (int64_t r = 0; r < k; ++r)
      for (int64_t col = 0; col < n; ++col)
        newW.data[r * n + col] *= affine->scale[col];
    F32Tensor newC(llvm::ArrayRef<int64_t>{n});
    newC.data = affine->shift;
    Value wv = weights::createInitializer(rewriter, matmul.getLoc(), hint(matmul.getB(), "_bn"), newW);
    Value cv = weights::createInitializer(rewriter, matmul.getLoc(),
                                          hint(matmul.getB(), "_bn_bias"), newC);
    auto gemm = rewriter.create<GemmOp>(matmul.getLoc(), bn.getType(), matmul.getA(), wv, cv,
                                        FloatAttr(), FloatAttr(), IntegerAttr(), IntegerAttr());
    if (auto name = matmul->getAttr(kNodeNameAttr))
      gemm->setAttr(kNodeNameAttr, name);
    adoptOutputNames(gemm, bn);
    rewriter.replaceOp(bn, gemm->getResults());
    rewriter.eraseOp(matmul);
    return success();
  }
};

struct FoldBatchNormPass : refold::impl::FoldBatchNormBase<FoldBatchNormPass> {
  void runOnOperation() override {
    MLIRContext *ctx = &getContext();
    RewritePatternSet patterns(ctx);
    patterns.add<FoldIntoConv<ConvOp>, FoldIntoConv<ConvTransposeOp>, FoldIntoGemm,
                 FoldIntoMatMul>(ctx);
    SmallVector<Operation *> candidates;
    getOperation().walk([&](BatchNormalizationOp bn) { candidates.push_back(bn); });
    GreedyRewriteConfig config;
    config.strictMode = GreedyRewriteStrictness::ExistingOps;
    if (failed(applyOpPatternsAndFold(candidates, std::move(patterns), config)))
      return signalPassFailure();
  }
};

} // namespace
