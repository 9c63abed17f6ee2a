//===- MergeSequentialConvs.cpp - conv -> conv with nothing between ---------===//
//
// conv2(conv1(x)) with no nonlinearity between is one conv (reparam-math.md
// section 4): K[o,c] = sum_m W2[o,m] (*) W1[m,c] (the kernels composed, size
// k1 + k2 - 1), b = b2 + sum_{m,h,w} W2[o,m,h,w] b1[m], with conv1's padding
// and conv2's stride. 1x1 -> kxk, kxk -> 1x1, kxk -> kxk, depthwise ->
// pointwise (the result is dense). UPDP places all padding on the first conv
// of a pruned block precisely so that this is exact.
//
// Exact only when conv1 has stride 1 and conv2 does not zero-pad (border
// outputs would see 0 where the original saw conv1's bias), except for a 1x1
// conv1 without padding and with a zero bias, which maps zero to zero.
// Whether a merge pays is decided by a cost model (MACs plus memory traffic,
// see docs/passes.md) unless the policy says always or never.
//
//===----------------------------------------------------------------------===//

#include "refold/Passes/Explain.h"
#include "refold/Passes/Passes.h"
#include "refold/Transforms/WeightUtils.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace refold {
#define GEN_PASS_DEF_MERGESEQUENTIALCONVS
#include "refold/Passes/Passes.h.inc"
} // namespace refold

using namespace mlir;
using namespace refold;
using namespace refold::ir;
using weights::F32Tensor;

namespace {

/// A 2-D conv with constant weights, its weight expanded to dense [O, C, kh, kw].
struct DenseConv {
  ConvOp op;
  F32Tensor weight;
  std::vector<float> bias;
  std::array<int64_t, 2> stride{1, 1};
  std::array<int64_t, 4> pads{0, 0, 0, 0};
};

FailureOr<DenseConv> readConv(ConvOp conv, std::string &why) {
  auto w = weights::getConstantF32(conv.getW());
  if (!w || w->rank() != 4)
    return why = "a conv is not 2-D with a float32 constant weight", failure();
  if (conv.getAutoPad() && *conv.getAutoPad() != "NOTSET")
    return why = "a conv uses auto_pad", failure();
  if (auto d = conv.getDilations(); d && llvm::any_of(*d, [](int64_t v) { return v != 1; }))
    return why = "a conv is dilated", failure();
  DenseConv dense;
  dense.op = conv;
  int64_t group = conv.getGroup().value_or(1);
  int64_t out = w->dim(0), inPerGroup = w->dim(1), kh = w->dim(2), kw = w->dim(3);
  int64_t in = inPerGroup * group, outPerGroup = out / group;
  dense.weight = F32Tensor({out, in, kh, kw});
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < inPerGroup; ++i)
      for (int64_t k = 0; k < kh * kw; ++k)
        dense.weight.data[(o * in + (o / outPerGroup) * inPerGroup + i) * kh * kw + k] =
            w->data[(o * inPerGroup + i) * kh * kw + k];
  dense.bias.assign(out, 0.0f);
  if (!isNoneValue(conv.getB())) {
    auto b = weights::getConstantF32(conv.getB());
    if (!b || b->size() != out)
      return why = "a conv's bias is not a float32 constant", failure();
    dense.bias = b->data;
  }
  if (auto s = conv.getStrides())
    dense.stride = {(*s)[0], (*s)[1]};
  if (auto p = conv.getPads())
    dense.pads = {(*p)[0], (*p)[1], (*p)[2], (*p)[3]};
  return dense;
}

struct MergeConvs : OpRewritePattern<ConvOp> {
  MergeConvs(MLIRContext *ctx, StringRef policy, double bytesWeight)
      : OpRewritePattern(ctx), policy(policy.str()), bytesWeight(bytesWeight) {}

  LogicalResult matchAndRewrite(ConvOp conv2Op, PatternRewriter &rewriter) const override {
    if (policy == "never")
      return rewriter.notifyMatchFailure(conv2Op, "merge policy is never");
    auto conv1Op = conv2Op.getX().getDefiningOp<ConvOp>();
    if (!conv1Op)
      return rewriter.notifyMatchFailure(conv2Op, "input is not produced by onnx.Conv");
    if (!conv1Op->hasOneUse())
      return rewriter.notifyMatchFailure(conv2Op, "the first conv's output has other users");
    std::string why;
    auto c1 = readConv(conv1Op, why);
    if (failed(c1))
      return rewriter.notifyMatchFailure(conv2Op, why);
    auto c2 = readConv(conv2Op, why);
    if (failed(c2))
      return rewriter.notifyMatchFailure(conv2Op, why);
    if (c1->stride != std::array<int64_t, 2>{1, 1})
      return rewriter.notifyMatchFailure(conv2Op, "the first conv has a stride");
    const F32Tensor &w1 = c1->weight, &w2 = c2->weight;
    int64_t mid = w1.dim(0), in = w1.dim(1), out = w2.dim(0);
    if (w2.dim(1) != mid)
      return rewriter.notifyMatchFailure(conv2Op, "channel counts do not chain");
    bool conv2Pads = llvm::any_of(c2->pads, [](int64_t p) { return p != 0; });
    bool zeroPreserving = w1.dim(2) == 1 && w1.dim(3) == 1 &&
                          llvm::all_of(c1->pads, [](int64_t p) { return p == 0; }) &&
                          llvm::all_of(c1->bias, [](float b) { return b == 0.0f; });
    if (conv2Pads && !zeroPreserving)
      return rewriter.notifyMatchFailure(
          conv2Op, "the second conv zero-pads: border outputs would differ (padding must be on "
                   "the first conv, or the first conv 1x1 without bias)");

    int64_t kh = w1.dim(2) + w2.dim(2) - 1, kw = w1.dim(3) + w2.dim(3) - 1;
    // Cost: MACs plus weighted bytes moved, before and after.
    double out2 = weights::staticElements(conv2Op.getY()),
           out1 = weights::staticElements(conv1Op.getY());
    auto g1 = conv1Op.getGroup().value_or(1), g2 = conv2Op.getGroup().value_or(1);
    double macsBefore = out1 * (w1.size() / mid) / g1 + out2 * (w2.size() / out) / g2;
    double macsAfter = out2 * in * kh * kw;
    double bytesBefore = 4.0 * (weights::staticElements(conv1Op.getX()) + 2 * out1 + out2 +
                                w1.size() / g1 + w2.size() / g2);
    double bytesAfter =
        4.0 * (weights::staticElements(conv1Op.getX()) + out2 + double(out) * in * kh * kw);
    if (policy == "profitable" &&
        macsAfter + bytesWeight * bytesAfter >= macsBefore + bytesWeight * bytesBefore)
      return rewriter.notifyMatchFailure(conv2Op, "the merged conv would cost more");

    F32Tensor weight({out, in, kh, kw});
    for (int64_t o = 0; o < out; ++o)
      for (int64_t m = 0; m < mid; ++m)
        for (int64_t ah = 0; ah < w2.dim(2); ++ah)
          for (int64_t aw = 0; aw < w2.dim(3); ++aw) {
            float a = w2.data[((o * mid + m) * w2.dim(2) + ah) * w2.dim(3) + aw];
            if (a == 0.0f)
              continue;
            for (int64_t c = 0; c < in; ++c)
              for (int64_t bh = 0; bh < w1.dim(2); ++bh)
                for (int64_t bw = 0; bw < w1.dim(3); ++bw)
                  weight.data[((o * in + c) * kh + ah + bh) * kw + aw + bw] +=
                      a * w1.data[((m * in + c) * w1.dim(2) + bh) * w1.dim(3) + bw];
          }
    F32Tensor bias(llvm::ArrayRef<int64_t>{out});
    for (int64_t o = 0; o < out; ++o) {
      double sum = c2->bias[o];
      for (int64_t m = 0; m < mid; ++m) {
        double taps = 0;
        for (int64_t k = 0; k < w2.dim(2) * w2.dim(3); ++k)
          taps += w2.data[(o * mid + m) * w2.dim(2) * w2.dim(3) + k];
        sum += taps * c1->bias[m];
      }
      bias.data[o] = float(sum);
    }
    std::array<int64_t, 4> pads = conv2Pads ? c2->pads : c1->pads;

    std::string base = weights::nameOf(conv2Op.getY());
    if (base.empty())
      base = "merged";
    Value w = weights::createInitializer(rewriter, conv2Op.getLoc(), base + "_weight", weight);
    Value b = weights::createInitializer(rewriter, conv2Op.getLoc(), base + "_bias", bias);
    OperationState state(conv2Op.getLoc(), ConvOp::getOperationName());
    state.addOperands({conv1Op.getX(), w, b});
    state.addTypes(conv2Op.getType());
    state.addAttribute("kernel_shape", rewriter.getDenseI64ArrayAttr({kh, kw}));
    state.addAttribute("pads", rewriter.getDenseI64ArrayAttr(pads));
    if (c2->stride != std::array<int64_t, 2>{1, 1})
      state.addAttribute("strides", rewriter.getDenseI64ArrayAttr(c2->stride));
    for (StringRef attr : {kNodeNameAttr, kOutputNamesAttr})
      if (auto value = conv2Op->getAttr(attr))
        state.addAttribute(attr, value);
    Operation *merged = rewriter.create(state);
    rewriter.replaceOp(conv2Op, merged->getResults());
    rewriter.eraseOp(conv1Op);
    return success();
  }

  std::string policy;
  double bytesWeight;
};

struct MergeSequentialConvsPass : refold::impl::MergeSequentialConvsBase<MergeSequentialConvsPass> {
  using MergeSequentialConvsBase::MergeSequentialConvsBase;

  LogicalResult initialize(MLIRContext *) override {
    if (mergePolicy != "profitable" && mergePolicy != "always" && mergePolicy != "never")
      return emitError(UnknownLoc::get(&getContext()))
             << "merge-policy must be profitable, always or never, not '" << mergePolicy << "'";
    return success();
  }

  void runOnOperation() override {
    MLIRContext *ctx = &getContext();
    RewritePatternSet patterns(ctx);
    patterns.add<MergeConvs>(ctx, mergePolicy, bytesWeight);
    if (failed(applyToCandidates<ConvOp>(getOperation(), std::move(patterns))))
      return signalPassFailure();
  }
};

} // namespace
