//===- MergeParallelBranches.cpp - sum of branches on one input -> one conv ==//
//
// Add(branch_a(x), branch_b(x)) where each branch is a 2-D Conv of x, x
// itself, or BatchNormalization(x), becomes one Conv of x whose kernel is the
// sum of the branch kernels, smaller kernels zero-padded into the centre of
// the largest and identity branches written as a kernel with one tap per
// channel (reparam-math.md §3, §5): RepVGG, ACNet, MobileOne blocks and
// residual identities around one conv. Chained Adds merge one at a time.
//
// Exact when every branch sees the same input, stride, group and output
// shape, and the centres align: each conv's padding, grown by half its
// kernel deficit, must equal the merged padding. Otherwise refused.
//
//===----------------------------------------------------------------------===//

#include "refold/Passes/Explain.h"
#include "refold/Passes/Passes.h"
#include "refold/Transforms/WeightUtils.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include <cmath>

namespace refold {
#define GEN_PASS_DEF_MERGEPARALLELBRANCHES
#include "refold/Passes/Passes.h.inc"
} // namespace refold

using namespace mlir;
using namespace refold;
using namespace refold::ir;
using weights::F32Tensor;

namespace {

/// One summand of the Add, as a function of its input x.
struct Branch {
  Value input;
  Operation *producer = nullptr; // Conv or BatchNormalization to erase; null for x
  // Conv branch.
  std::optional<F32Tensor> weight; // [O, C/g, kh, kw]
  std::vector<float> bias;
  int64_t group = 1;
  std::array<int64_t, 2> stride{1, 1};
  std::array<int64_t, 4> pads{0, 0, 0, 0}; // top, left, bottom, right
  // Identity branch: y = x * scale + shift per channel.
  std::vector<float> scale, shift;
  bool isConv() const { return weight.has_value(); }
};

int64_t channelsOf(Value v) {
  auto t = dyn_cast<RankedTensorType>(v.getType());
  if (!t || t.getRank() != 4 || t.isDynamicDim(1))
    return -1;
  return t.getDimSize(1);
}

/// Reads `value` as a branch; a failure reason otherwise.
FailureOr<Branch> readBranch(Value value, std::string &why) {
  Branch branch;
  Operation *def = value.getDefiningOp();
  if (auto conv = dyn_cast_or_null<ConvOp>(def)) {
    if (!conv->hasOneUse())
      return why = "a branch conv has other users", failure();
    auto w = weights::getConstantF32(conv.getW());
    if (!w || w->rank() != 4)
      return why = "a branch conv is not 2-D with a float32 constant weight", failure();
    if (conv.getAutoPad() && *conv.getAutoPad() != "NOTSET")
      return why = "a branch conv uses auto_pad", failure();
    if (auto d = conv.getDilations(); d && llvm::any_of(*d, [](int64_t v) { return v != 1; }))
      return why = "a branch conv is dilated", failure();
    branch.bias.assign(w->dim(0), 0.0f);
    if (!isNoneValue(conv.getB())) {
      auto b = weights::getConstantF32(conv.getB());
      if (!b || b->size() != w->dim(0))
        return why = "a branch conv's bias is not a float32 constant", failure();
      branch.bias = b->data;
    }
    branch.weight = std::move(w);
    branch.group = conv.getGroup().value_or(1);
    if (auto s = conv.getStrides())
      branch.stride = {(*s)[0], (*s)[1]};
    if (auto p = conv.getPads())
      branch.pads = {(*p)[0], (*p)[1], (*p)[2], (*p)[3]};
    branch.input = conv.getX();
    branch.producer = conv;
    return branch;
  }
  if (auto bn = dyn_cast_or_null<BatchNormalizationOp>(def)) {
    if (!bn->hasOneUse())
      return why = "a branch BatchNormalization has other users", failure();
    auto gamma = weights::getConstantF32(bn.getScale());
    auto beta = weights::getConstantF32(bn.getB());
    auto mean = weights::getConstantF32(bn.getInputMean());
    auto var = weights::getConstantF32(bn.getInputVar());
    if (!gamma || !beta || !mean || !var)
      return why = "a branch BatchNormalization has non-constant parameters", failure();
    double eps = bn.getEpsilon() ? bn.getEpsilon()->convertToDouble() : 1e-5;
    for (int64_t c = 0; c < gamma->size(); ++c) {
      double s = gamma->data[c] / std::sqrt(double(var->data[c]) + eps);
      branch.scale.push_back(float(s));
      branch.shift.push_back(float(beta->data[c] - mean->data[c] * s));
    }
    branch.input = bn.getX();
    branch.producer = bn;
    return branch;
  }
  // The input itself: an identity branch.
  int64_t channels = channelsOf(value);
  if (channels < 0)
    return why = "an identity branch has no static channel count", failure();
  branch.scale.assign(channels, 1.0f);
  branch.shift.assign(channels, 0.0f);
  branch.input = value;
  return branch;
}

struct MergeAdd : OpRewritePattern<AddOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(AddOp add, PatternRewriter &rewriter) const override {
    std::string why;
    auto a = readBranch(add.getA(), why);
    if (failed(a))
      return rewriter.notifyMatchFailure(add, why);
    auto b = readBranch(add.getB(), why);
    if (failed(b))
      return rewriter.notifyMatchFailure(add, why);
    if (!a->isConv() && !b->isConv())
      return rewriter.notifyMatchFailure(add, "no branch is a convolution");
    // Identity branches read their operand itself; a conv reads its input.
    Branch &conv = a->isConv() ? *a : *b;
    Branch &other = a->isConv() ? *b : *a;
    if (conv.input != other.input)
      return rewriter.notifyMatchFailure(add, "the branches read different inputs");
    if (add.getType() != cast<ConvOp>(conv.producer).getType())
      return rewriter.notifyMatchFailure(add, "the sum's type differs from the branch output");

    const F32Tensor &w1 = *conv.weight;
    int64_t outChannels = w1.dim(0), inPerGroup = w1.dim(1), group = conv.group;
    int64_t kh = w1.dim(2), kw = w1.dim(3);
    if (other.isConv()) {
      if (other.group != group || other.stride != conv.stride ||
          other.weight->dim(0) != outChannels || other.weight->dim(1) != inPerGroup)
        return rewriter.notifyMatchFailure(add, "the convs differ in group, stride or channels");
      kh = std::max(kh, other.weight->dim(2));
      kw = std::max(kw, other.weight->dim(3));
    } else {
      if (conv.stride != std::array<int64_t, 2>{1, 1})
        return rewriter.notifyMatchFailure(add, "an identity branch needs stride 1");
      if (outChannels != (int64_t)other.scale.size() || outChannels != channelsOf(other.input))
        return rewriter.notifyMatchFailure(add, "an identity branch needs equal channels");
    }

    // The merged padding: each conv's padding grown by half its kernel deficit.
    auto merged = [&](const Branch &br, std::array<int64_t, 4> &pads) -> bool {
      int64_t dh = kh - br.weight->dim(2), dw = kw - br.weight->dim(3);
      if (dh % 2 || dw % 2)
        return false; // an even deficit keeps the kernel centres aligned
      pads = {br.pads[0] + dh / 2, br.pads[1] + dw / 2, br.pads[2] + dh / 2, br.pads[3] + dw / 2};
      return true;
    };
    std::array<int64_t, 4> pads, otherPads;
    if (!merged(conv, pads))
      return rewriter.notifyMatchFailure(add, "kernel centres do not align (odd size difference)");
    if (other.isConv()) {
      if (!merged(other, otherPads))
        return rewriter.notifyMatchFailure(add,
                                           "kernel centres do not align (odd size difference)");
      if (otherPads != pads)
        return rewriter.notifyMatchFailure(add, "the convs' paddings do not align their centres");
    } else {
      // Same output size as the input, and the identity tap inside the kernel.
      if (pads[0] + pads[2] != kh - 1 || pads[1] + pads[3] != kw - 1 || pads[0] < 0 || pads[1] < 0)
        return rewriter.notifyMatchFailure(add,
                                           "the conv's padding does not keep the spatial size");
    }
    if (llvm::any_of(pads, [](int64_t p) { return p < 0; }))
      return rewriter.notifyMatchFailure(add, "the merged padding would be negative");

    F32Tensor weight({outChannels, inPerGroup, kh, kw});
    std::vector<float> bias(outChannels, 0.0f);
    auto addConv = [&](const Branch &br) {
      const F32Tensor &w = *br.weight;
      int64_t oh = (kh - w.dim(2)) / 2, ow = (kw - w.dim(3)) / 2;
      for (int64_t o = 0; o < outChannels; ++o)
        for (int64_t i = 0; i < inPerGroup; ++i)
          for (int64_t y = 0; y < w.dim(2); ++y)
            for (int64_t x = 0; x < w.dim(3); ++x)
              weight.data[((o * inPerGroup + i) * kh + y + oh) * kw + x + ow] +=
                  w.data[((o * inPerGroup + i) * w.dim(2) + y) * w.dim(3) + x];
      for (int64_t o = 0; o < outChannels; ++o)
        bias[o] += br.bias[o];
    };
    addConv(conv);
    if (other.isConv()) {
      addConv(other);
    } else {
      // y[c] += x[c] * scale[c]: tap (c, c mod C/g) at the padding offset.
      for (int64_t c = 0; c < outChannels; ++c) {
        weight.data[((c * inPerGroup + c % inPerGroup) * kh + pads[0]) * kw + pads[1]] +=
            other.scale[c];
        bias[c] += other.shift[c];
      }
    }
    F32Tensor biasTensor(llvm::ArrayRef<int64_t>{outChannels});
    biasTensor.data = bias;

    auto first = cast<ConvOp>(conv.producer);
    std::string base = weights::nameOf(add.getC());
    if (base.empty())
      base = "merged";
    Value w = weights::createInitializer(rewriter, add.getLoc(), base + "_weight", weight);
    Value bv = weights::createInitializer(rewriter, add.getLoc(), base + "_bias", biasTensor);
    OperationState state(add.getLoc(), ConvOp::getOperationName());
    state.addOperands({conv.input, w, bv});
    state.addTypes(add.getType());
    state.addAttribute("kernel_shape", rewriter.getDenseI64ArrayAttr({kh, kw}));
    state.addAttribute("pads", rewriter.getDenseI64ArrayAttr(pads));
    if (conv.stride != std::array<int64_t, 2>{1, 1})
      state.addAttribute("strides", rewriter.getDenseI64ArrayAttr(conv.stride));
    if (group != 1)
      state.addAttribute("group", rewriter.getI64IntegerAttr(group));
    if (auto name = first->getAttr(kNodeNameAttr))
      state.addAttribute(kNodeNameAttr, name);
    if (auto names = add->getAttr(kOutputNamesAttr))
      state.addAttribute(kOutputNamesAttr, names);
    Operation *mergedConv = rewriter.create(state);
    rewriter.replaceOp(add, mergedConv->getResults());
    for (Operation *producer : {a->producer, b->producer})
      if (producer && producer->use_empty())
        rewriter.eraseOp(producer);
    return success();
  }
};

struct MergeParallelBranchesPass
    : refold::impl::MergeParallelBranchesBase<MergeParallelBranchesPass> {
  void runOnOperation() override {
    MLIRContext *ctx = &getContext();
    RewritePatternSet patterns(ctx);
    patterns.add<MergeAdd>(ctx);
    // A merged conv makes the next Add of a chain mergeable; that Add is
    // revisited because its operand changed. Only Adds are visited, so the
    // driver never folds or moves initializers.
    if (failed(applyToCandidates<AddOp>(getOperation(), std::move(patterns))))
      return signalPassFailure();
  }
};

} // namespace
