//===- MergeParallelBranches.cpp - sum of branches on one input -> one conv ==//
//
// Add(branch_a(x), branch_b(x)) where each branch is a 2-D Conv of x, an
// AveragePool of x counting its zero padding (a depthwise conv with taps
// 1/(kh*kw)), x itself, or BatchNormalization(x), becomes one Conv of x whose kernel is the
// sum of the branch kernels, smaller kernels zero-padded into the centre of
// the largest and identity branches written as a kernel with one tap per
// channel (reparam-math.md §3, §5): RepVGG, ACNet, MobileOne blocks and
// residual identities around one conv. Chained Adds merge one at a time.
//
// Exact when every branch sees the same input, stride and output shape, the
// groups match (a grouped or depthwise branch joins a dense one as a dense
// kernel), and the centres align: each conv's padding, grown by half its
// kernel deficit, must equal the merged padding. Otherwise refused. A
// branch conv(x) + constant map (a border correction left by
// onnx-merge-sequential) merges too; the maps are summed into one Add.
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
  SmallVector<Operation *, 3> producers; // ops to erase once merged, consumers first
  // Conv branch (a Conv or an AveragePool counting its padding).
  std::optional<ConvForm> conv;
  // Identity branch: y = x * scale + shift per channel.
  std::vector<float> scale, shift;
  // A constant map added to the branch (a border correction), if any.
  std::optional<F32Tensor> offset;
  bool isConv() const { return conv.has_value(); }
};

int64_t channelsOf(Value v) {
  auto t = dyn_cast<RankedTensorType>(v.getType());
  if (!t || t.getRank() != 4 || t.isDynamicDim(1))
    return -1;
  return t.getDimSize(1);
}

/// Reads `value` as a branch; a failure reason otherwise.
FailureOr<Branch> readBranch(Value value, std::string &why, bool asIdentity = false) {
  Branch branch;
  Operation *def = asIdentity ? nullptr : value.getDefiningOp();
  if (isa_and_nonnull<ConvOp, AveragePoolOp>(def)) {
    if (!def->hasOneUse())
      return why = "a branch conv has other users", failure();
    auto form = readConvForm(def, why);
    if (failed(form))
      return failure();
    branch.input = form->input;
    branch.producers.push_back(def);
    if (form->pad)
      branch.producers.push_back(form->pad);
    branch.conv = std::move(*form);
    return branch;
  }
  // conv(x) + constant map: a conv branch carrying its border correction.
  if (auto add = dyn_cast_or_null<AddOp>(def); add && add->hasOneUse()) {
    for (int side = 0; side < 2; ++side) {
      auto map = weights::getConstantF32(add->getOperand(side));
      Operation *convOp = add->getOperand(1 - side).getDefiningOp();
      if (!map || !isa_and_nonnull<ConvOp, AveragePoolOp>(convOp))
        continue;
      auto inner = readBranch(add->getOperand(1 - side), why);
      if (failed(inner))
        return failure();
      if (map->rank() != 4 || map->dim(0) != 1 ||
          map->size() != weights::staticElements(add.getC()))
        return why = "a branch adds a constant that is not one [1, C, H, W] map", failure();
      inner->offset = std::move(*map);
      inner->producers.insert(inner->producers.begin(), add);
      return inner;
    }
  }
  if (auto bn = dyn_cast_or_null<BatchNormalizationOp>(def)) {
    if (!bn->hasOneUse())
      return why = "a branch BatchNormalization has other users", failure();
    std::string reason;
    auto affine = batchNormAffine(bn, reason);
    if (failed(affine))
      return why = "a branch BatchNormalization: " + reason, failure();
    branch.scale = affine->scale;
    branch.shift = affine->shift;
    branch.input = bn.getX();
    branch.producers.push_back(bn);
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
    // Each operand is read as a conv/BN branch first; an operand that is
    // itself a conv output may still be the identity around the other
    // branch (a residual whose input comes from a conv).
    std::string why;
    FailureOr<Branch> a = failure(), b = failure();
    for (auto [aIdentity, bIdentity] : {std::pair{false, false}, {false, true}, {true, false}}) {
      std::string attemptWhy;
      auto ra = readBranch(add.getA(), attemptWhy, aIdentity);
      FailureOr<Branch> rb = failure();
      if (succeeded(ra))
        rb = readBranch(add.getB(), attemptWhy, bIdentity);
      if (succeeded(ra) && succeeded(rb) && !ra->isConv() && !rb->isConv())
        attemptWhy = "no branch is a convolution";
      else if (succeeded(ra) && succeeded(rb) &&
               ra->input != rb->input)
        attemptWhy = "the branches read different inputs";
      else if (succeeded(ra) && succeeded(rb)) {
        a = std::move(ra), b = std::move(rb);
        break;
      }
      if (why.empty())
        why = attemptWhy;
    }
    if (failed(a) || failed(b))
      return rewriter.notifyMatchFailure(add, why);
    // Identity branches read their operand itself; a conv reads its input.
    Branch &convBranch = a->isConv() ? *a : *b;
    Branch &other = a->isConv() ? *b : *a;
    ConvForm &conv = *convBranch.conv;
    if (add.getType() != conv.op->getResult(0).getType())
      return rewriter.notifyMatchFailure(add, "the sum's type differs from the branch output");

    int64_t outChannels = conv.outChannels(), group = conv.group;
    int64_t kh = conv.kh(), kw = conv.kw();
    if (other.isConv()) {
      ConvForm &second = *other.conv;
      if (second.stride != conv.stride || second.outChannels() != outChannels ||
          second.inChannels() != conv.inChannels())
        return rewriter.notifyMatchFailure(add, "the convs differ in stride or channels");
      if (second.group != group) {
        // A grouped branch joins a dense one as a dense kernel with zeros off
        // its groups; two different groupings would both grow.
        if (second.group != 1 && group != 1)
          return rewriter.notifyMatchFailure(add, "the convs have mismatched groups");
        conv.weight = expandGroups(conv.weight, conv.group);
        second.weight = expandGroups(second.weight, second.group);
        conv.group = second.group = group = 1;
      }
      kh = std::max(kh, second.kh());
      kw = std::max(kw, second.kw());
    } else {
      if (!conv.isUnitStride())
        return rewriter.notifyMatchFailure(add, "an identity branch needs stride 1");
      if (outChannels != (int64_t)other.scale.size() || outChannels != channelsOf(other.input))
        return rewriter.notifyMatchFailure(add, "an identity branch needs equal channels");
    }
    int64_t inPerGroup = conv.weight.dim(1);

    // The merged padding: each conv's padding grown by half its kernel
    // deficit (an even deficit keeps the kernel centres aligned).
    auto centred = conv.centredPads(kh, kw);
    if (!centred)
      return rewriter.notifyMatchFailure(add, "kernel centres do not align (odd size difference)");
    std::array<int64_t, 4> pads = *centred;
    if (other.isConv()) {
      auto otherPads = other.conv->centredPads(kh, kw);
      if (!otherPads)
        return rewriter.notifyMatchFailure(add,
                                           "kernel centres do not align (odd size difference)");
      if (*otherPads != pads)
        return rewriter.notifyMatchFailure(add, "the convs' paddings do not align their centres");
    } else {
      // Same output size as the input, and the identity tap inside the kernel.
      if (pads[0] + pads[2] != kh - 1 || pads[1] + pads[3] != kw - 1 || pads[0] < 0 || pads[1] < 0)
        return rewriter.notifyMatchFailure(add,
                                           "the conv's padding does not keep the spatial size");
    }
    if (llvm::any_of(pads, [](int64_t p) { return p < 0; }))
      return rewriter.notifyMatchFailure(add, "the merged padding would be negative");
    if (a->offset && b->offset && a->offset->shape != b->offset->shape)
      return rewriter.notifyMatchFailure(add, "the branches' constant maps differ in shape");

    F32Tensor weight({outChannels, inPerGroup, kh, kw});
    std::vector<float> bias(outChannels, 0.0f);
    auto addConv = [&](const ConvForm &c) {
      const F32Tensor &w = c.weight;
      int64_t oh = (kh - w.dim(2)) / 2, ow = (kw - w.dim(3)) / 2;
      for (int64_t o = 0; o < outChannels; ++o)
        for (int64_t i = 0; i < inPerGroup; ++i)
          for (int64_t y = 0; y < w.dim(2); ++y)
            for (int64_t x = 0; x < w.dim(3); ++x)
              weight.data[((o * inPerGroup + i) * kh + y + oh) * kw + x + ow] +=
                  w.data[((o * inPerGroup + i) * w.dim(2) + y) * w.dim(3) + x];
      for (int64_t o = 0; o < outChannels; ++o)
        bias[o] += c.bias[o];
    };
    addConv(conv);
    if (other.isConv()) {
      addConv(*other.conv);
    } else {
      // y[c] += x[c] * scale[c]: tap (c, c mod C/g) at the padding offset.
      for (int64_t c = 0; c < outChannels; ++c) {
        weight.data[((c * inPerGroup + c % inPerGroup) * kh + pads[0]) * kw + pads[1]] +=
            other.scale[c];
        bias[c] += other.shift[c];
      }
    }
    std::optional<F32Tensor> offset;
    for (Branch *br : {&*a, &*b})
      if (br->offset) {
        if (!offset)
          offset = *br->offset;
        else
          for (int64_t i = 0; i < offset->size(); ++i)
            offset->data[i] += br->offset->data[i];
      }

    std::string base = weights::nameOf(add.getC());
    Value result = createConv(rewriter, add.getLoc(), convBranch.input, weight, bias, group,
                              conv.stride, pads, add.getType(), base, conv.op,
                              offset ? nullptr : add.getOperation());
    if (offset)
      result = createAddConstant(rewriter, add.getLoc(), result, *offset, base, add);
    rewriter.replaceOp(add, result);
    // Producers are listed consumer first.
    for (Branch *br : {&*a, &*b})
      for (Operation *producer : br->producers)
        if (producer->use_empty())
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
