//===- FoldBatchNorm.cpp - fold BatchNormalization into linear ops ---------===//
//
// BN(y) = y * s + t with s = scale / sqrt(var + eps), t = B - mean * s, per
// output channel. After Conv, ConvTranspose, Gemm or a 2-D MatMul, the linear
// op's weights are scaled by s along the output channel and t joins the bias.
// Exact in real arithmetic (reparam-math.md §1). New weights are new
// initializers: the old ones may be shared.
//
//===----------------------------------------------------------------------===//

#include "refold/Passes/Explain.h"
#include "refold/Passes/Passes.h"
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
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(BatchNormalizationOp bn, PatternRewriter &rewriter) const override {
    auto affine = batchNormAffine(bn, rewriter);
    if (failed(affine))
      return failure();
    return foldChannelAffine(rewriter, bn, bn.getX(), affine->scale, affine->shift);
  }
};

struct FoldBatchNormPass : refold::impl::FoldBatchNormBase<FoldBatchNormPass> {
  void runOnOperation() override {
    MLIRContext *ctx = &getContext();
    RewritePatternSet patterns(ctx);
    patterns.add<FoldIntoLinear>(ctx);
    if (failed(applyToCandidates<BatchNormalizationOp>(getOperation(), std::move(patterns))))
      return signalPassFailure();
  }
};

} // namespace
