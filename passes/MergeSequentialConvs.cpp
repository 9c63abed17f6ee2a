//===- MergeSequentialConvs.cpp - conv -> conv with nothing between ---------===//
//
// conv2(conv1(x)) with no nonlinearity between is one conv (reparam-math.md
// section 4): K[o,c] = sum_m W2[o,m] (*) W1[m,c] (the kernels composed, size
// k1 + k2 - 1), b = b2 + sum_{m,h,w} W2[o,m,h,w] b1[m], with conv1's padding
// and conv2's stride. 1x1 -> kxk, kxk -> 1x1, kxk -> kxk, depthwise ->
// pointwise (dense), grouped -> grouped (same groups stay grouped). An
// AveragePool that counts padded zeros is a depthwise conv here. UPDP places
// all padding on the first conv of a pruned block precisely so that this is
// exact.
//
// Exact only when conv1 has stride 1 and conv2 does not zero-pad: border
// outputs would see b1 where the original saw zeros. When conv1 is an
// unpadded 1x1 (the DBB 1x1 -> kxk and 1x1 -> AvgPool branches), what the
// merged conv sees there is the constant b1, so a constant map on the border
// rows and columns corrects it (static spatial shape needed).
//
// Whether a merge pays is decided by a cost model (MACs plus memory traffic,
// see docs/passes.md) over the whole chain conv1 -> conv2 -> ... that would
// merge, so an expanding 1x1 -> depthwise -> projecting 1x1 merges even
// though its first step alone does not pay; a merged branch of an Add whose
// sibling conv on the same input has a kernel at least as large costs
// nothing, it will be absorbed (onnx-merge-parallel).
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
#include "llvm/ADT/SmallPtrSet.h"

namespace refold {
#define GEN_PASS_DEF_MERGESEQUENTIALCONVS
#include "refold/Passes/Passes.h.inc"
} // namespace refold

using namespace mlir;
using namespace refold;
using namespace refold::ir;
using weights::F32Tensor;

namespace {

bool isConvLike(Operation *op) { return isa_and_nonnull<ConvOp, AveragePoolOp>(op); }

double macsOf(const ConvForm &c, Value out) {
  return weights::staticElements(out) * c.weight.dim(1) * c.kh() * c.kw();
}

/// What a chain of convs costs run one by one (MACs, bytes).
std::pair<double, double> chainCost(ArrayRef<ConvForm> chain) {
  double macs = 0, bytes = 0;
  for (const ConvForm &c : chain) {
    Value out = c.op->getResult(0);
    macs += macsOf(c, out);
    bytes += 4.0 * (weights::staticElements(c.input) + weights::staticElements(out) +
                    c.weight.size());
  }
  return {macs, bytes};
}

/// The single conv that the chain merges into: (kh, kw, group).
std::array<int64_t, 3> mergedGeometry(ArrayRef<ConvForm> chain) {
  int64_t kh = 1, kw = 1;
  for (const ConvForm &c : chain)
    kh += c.kh() - 1, kw += c.kw() - 1;
  bool sameGroups = llvm::all_of(chain, [&](const ConvForm &c) { return c.group == chain[0].group; });
  return {kh, kw, sameGroups ? chain[0].group : 1};
}

/// Whether `value` is summed, in the linear region it belongs to (sums,
/// differences and per-channel maps, any order), with a conv of `input`
/// whose kernel covers (kh, kw) and whose stride is `stride`: the merged
/// conv then disappears into it (onnx-merge-parallel).
bool absorbedBySibling(Value value, Value input, int64_t kh, int64_t kw,
                       std::array<int64_t, 2> stride) {
  std::string ignored;
  auto isRegionOp = [&](Operation *op, Value operand) {
    if (isa<AddOp, SubOp>(op))
      return true; // a sum of branches, or a branch plus a constant
    auto map = readChannelMap(op, ignored);
    return succeeded(map) && map->input == operand;
  };
  // Up to the outermost sum of the region.
  Operation *root = nullptr;
  Value current = value;
  while (current.hasOneUse()) {
    Operation *user = *current.getUsers().begin();
    if (!isRegionOp(user, current))
      break;
    if (isa<AddOp, SubOp>(user))
      root = user;
    current = user->getResult(0);
  }
  if (!root)
    return false;
  // Down through the region's other branches.
  SmallVector<Value> worklist(root->getOperands());
  SmallPtrSet<Operation *, 16> seen;
  while (!worklist.empty()) {
    Value v = worklist.pop_back_val();
    Operation *def = v.getDefiningOp();
    if (v == value || !def || !seen.insert(def).second)
      continue;
    if (isConvLike(def)) {
      auto sibling = readConvForm(def, ignored);
      if (succeeded(sibling) && sibling->input == input && sibling->kh() >= kh &&
          sibling->kw() >= kw && sibling->stride == stride)
        return true;
      continue;
    }
    if (v.hasOneUse() && (isa<AddOp, SubOp, BatchNormalizationOp>(def) ||
                          succeeded(readChannelMap(def, ignored))))
      worklist.append(def->operand_begin(), def->operand_end());
  }
  return false;
}

struct MergeConvs : OpRewritePattern<ConvOp> {
  MergeConvs(MLIRContext *ctx, StringRef policy, double bytesWeight)
      : OpRewritePattern(ctx), policy(policy.str()), bytesWeight(bytesWeight) {}

  /// Reads conv1 -> conv2 or says why they cannot merge (beyond cost).
  LogicalResult readPair(Operation *second, ConvForm &c1, ConvForm &c2, std::string &why) const {
    // The structural checks first: reading a form copies its weight, and
    // most convs of a network follow a Relu, not a conv.
    if (auto conv = dyn_cast<ConvOp>(second)) {
      Operation *producer = conv.getX().getDefiningOp();
      if (!isConvLike(producer))
        return why = "input is not produced by onnx.Conv or onnx.AveragePool", failure();
      if (!producer->hasOneUse())
        return why = "the first conv's output has other users", failure();
    }
    auto f2 = readConvForm(second, why);
    if (failed(f2))
      return failure();
    Operation *first = f2->input.getDefiningOp();
    if (!isConvLike(first))
      return why = "input is not produced by onnx.Conv or onnx.AveragePool", failure();
    if (!first->hasOneUse())
      return why = "the first conv's output has other users", failure();
    auto f1 = readConvForm(first, why);
    if (failed(f1))
      return failure();
    if (!f1->isUnitStride())
      return why = "the first conv has a stride", failure();
    if (f2->inChannels() != f1->outChannels())
      return why = "channel counts do not chain", failure();
    c1 = std::move(*f1), c2 = std::move(*f2);
    return success();
  }

  /// Whether conv2 pads and what that needs: "" when exact without a
  /// correction, "border" when a border correction is needed, else refusal.
  static std::string borderRule(const ConvForm &c1, const ConvForm &c2) {
    if (c2.isUnpadded())
      return "";
    bool pointwise = c1.kh() == 1 && c1.kw() == 1 && c1.isUnpadded();
    if (!pointwise)
      return "the second conv zero-pads after a conv that is not an unpadded 1x1: border "
             "outputs would differ (padding must be on the first conv)";
    if (llvm::all_of(c1.bias, [](float b) { return b == 0.0f; }))
      return ""; // zero maps to zero
    if (!staticSpatialShape(c1.input) || !staticSpatialShape(c2.op->getResult(0)))
      return "the second conv zero-pads after a biased 1x1 and the spatial shape is not static "
             "(no border correction)";
    return "border";
  }

  LogicalResult matchAndRewrite(ConvOp conv2Op, PatternRewriter &rewriter) const override {
    return mergeInto(conv2Op, rewriter);
  }

  LogicalResult mergeInto(Operation *conv2Op, PatternRewriter &rewriter) const {
    if (policy == "never")
      return rewriter.notifyMatchFailure(conv2Op, "merge policy is never");
    ConvForm c1, c2;
    std::string why;
    if (failed(readPair(conv2Op, c1, c2, why)))
      return rewriter.notifyMatchFailure(conv2Op, why);
    std::string border = borderRule(c1, c2);
    if (!border.empty() && border != "border")
      return rewriter.notifyMatchFailure(conv2Op, border);
    bool needsCorrection = border == "border";

    if (policy == "profitable" && !pays(c1, c2, needsCorrection))
      return rewriter.notifyMatchFailure(conv2Op, "the merged conv would cost more");

    auto [kh, kw, group] = mergedGeometry({c1, c2});
    // Compose densely; equal groups keep their block structure.
    F32Tensor w1 = expandGroups(c1.weight, c1.group), w2 = expandGroups(c2.weight, c2.group);
    int64_t in = w1.dim(1), mid = w1.dim(0), out = w2.dim(0);
    F32Tensor dense({out, in, kh, kw});
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
                  dense.data[((o * in + c) * kh + ah + bh) * kw + aw + bw] +=
                      a * w1.data[((m * in + c) * w1.dim(2) + bh) * w1.dim(3) + bw];
          }
    F32Tensor weight = dense;
    if (group > 1) {
      int64_t inPerGroup = in / group, outPerGroup = out / group, kernel = kh * kw;
      weight = F32Tensor({out, inPerGroup, kh, kw});
      for (int64_t o = 0; o < out; ++o)
        std::copy_n(dense.data.begin() + (o * in + (o / outPerGroup) * inPerGroup) * kernel,
                    inPerGroup * kernel, weight.data.begin() + o * inPerGroup * kernel);
    }
    std::vector<float> bias(out);
    for (int64_t o = 0; o < out; ++o) {
      double sum = c2.bias[o];
      for (int64_t m = 0; m < mid; ++m) {
        double taps = 0;
        for (int64_t k = 0; k < w2.dim(2) * w2.dim(3); ++k)
          taps += w2.data[(o * mid + m) * w2.dim(2) * w2.dim(3) + k];
        sum += taps * c1.bias[m];
      }
      bias[o] = float(sum);
    }
    std::array<int64_t, 4> pads;
    for (int i = 0; i < 4; ++i)
      pads[i] = c1.pads[i] + c2.pads[i];

    Value result = conv2Op->getResult(0);
    std::string base = weights::nameOf(result);
    Value merged = createConv(rewriter, conv2Op->getLoc(), c1.input, weight, bias, group,
                              c2.stride, pads, result.getType(), base, conv2Op,
                              needsCorrection ? nullptr : conv2Op);
    if (needsCorrection) {
      auto inShape = *staticSpatialShape(c1.input);
      auto outShape = *staticSpatialShape(result);
      F32Tensor map = borderCorrection(c2.weight, c2.group, c1.bias, c2.stride, c2.pads,
                                       inShape[0], inShape[1], outShape[0], outShape[1]);
      merged = createAddConstant(rewriter, conv2Op->getLoc(), merged, map, base, conv2Op);
    } else if (auto stats = weights::getOutputStats(conv2Op)) {
      weights::setOutputStats(merged.getDefiningOp(), *stats); // the same output
    }
    rewriter.replaceOp(conv2Op, merged);
    rewriter.eraseOp(c1.op);
    if (c1.pad && c1.pad->use_empty())
      rewriter.eraseOp(c1.pad);
    if (c2.pad && c2.pad->use_empty())
      rewriter.eraseOp(c2.pad);
    return success();
  }

  /// The cost model: the merge pays when some chain conv1 -> conv2 -> ...
  /// merged into one conv costs less than its convs run one by one.
  bool pays(const ConvForm &c1, const ConvForm &c2, bool correction) const {
    SmallVector<ConvForm> chain{c1, c2};
    for (;;) {
      auto [kh, kw, group] = mergedGeometry(chain);
      const ConvForm &last = chain.back();
      Value out = last.op->getResult(0);
      double outElems = weights::staticElements(out);
      double extraBytes = correction ? 4.0 * 3 * outElems : 0;
      auto [macsBefore, bytesBefore] = chainCost(chain);
      double macsAfter = outElems * (c1.inChannels() / group) * kh * kw;
      double bytesAfter = 4.0 * (weights::staticElements(c1.input) + outElems +
                                 double(last.outChannels()) * c1.inChannels() / group * kh * kw) +
                          extraBytes;
      if (absorbedBySibling(out, c1.input, kh, kw, last.stride))
        macsAfter = 0, bytesAfter = extraBytes;
      if (macsAfter + bytesWeight * bytesAfter < macsBefore + bytesWeight * bytesBefore)
        return true;
      // Look one conv further: would the longer chain pay?
      if (!out.hasOneUse() || !last.isUnitStride() || chain.size() >= 4)
        return false;
      Operation *next = *out.getUsers().begin();
      std::string ignored;
      if (!isConvLike(next))
        return false;
      auto form = readConvForm(next, ignored);
      if (failed(form) || form->input != out || form->inChannels() != last.outChannels() ||
          (!form->isUnpadded() && !(kh == 1 && kw == 1)))
        return false;
      chain.push_back(std::move(*form));
    }
  }

  std::string policy;
  double bytesWeight;
};

/// An AveragePool after a conv merges like a depthwise conv.
struct MergeConvPool : OpRewritePattern<AveragePoolOp> {
  MergeConvPool(MLIRContext *ctx, const MergeConvs &convs) : OpRewritePattern(ctx), convs(convs) {}
  LogicalResult matchAndRewrite(AveragePoolOp pool, PatternRewriter &rewriter) const override {
    return convs.mergeInto(pool, rewriter);
  }
  const MergeConvs &convs;
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
    MergeConvs convs(ctx, mergePolicy, bytesWeight);
    RewritePatternSet patterns(ctx);
    patterns.add<MergeConvs>(ctx, mergePolicy, bytesWeight);
    patterns.add<MergeConvPool>(ctx, convs);
    if (failed(applyToCandidates<ConvOp, AveragePoolOp>(getOperation(), std::move(patterns))))
      return signalPassFailure();
  }
};

} // namespace
