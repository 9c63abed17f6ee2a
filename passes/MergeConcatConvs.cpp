//===- MergeConcatConvs.cpp - parallel convs concatenated -> one conv -------===//
//
// Concat(conv_a(x), conv_b(x), ...) along channels is one conv whose filters
// are the branches' filters stacked (reparam-math.md section 7): DBB's
// depth-concat, VoVNet/ELAN split layers. Smaller kernels are zero-padded
// into the centre of the largest, as for summed branches. Runs of adjacent
// Concat inputs that qualify merge; other inputs stay where they are.
//
// Exact when the convs read the same input with the same stride, are not
// grouped or dilated, and their centres align (padding grown by half the
// kernel deficit is the same for all). Otherwise refused.
//
//===----------------------------------------------------------------------===//

#include "refold/Passes/Explain.h"
#include "refold/Passes/Passes.h"
#include "refold/Transforms/ConvForms.h"
#include "refold/Transforms/WeightUtils.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/PatternMatch.h"

namespace refold {
#define GEN_PASS_DEF_MERGECONCATCONVS
#include "refold/Passes/Passes.h.inc"
} // namespace refold

using namespace mlir;
using namespace refold;
using namespace refold::ir;
using weights::F32Tensor;

namespace {

/// A dense 2-D conv of the concat, read through the shared ConvForm reader.
using Branch = ConvForm;

std::optional<Branch> readBranch(Value value) {
  auto conv = value.getDefiningOp<ConvOp>();
  if (!conv || !conv->hasOneUse() || conv.getGroup().value_or(1) != 1)
    return std::nullopt;
  std::string ignored;
  auto form = readConvForm(conv, ignored);
  if (failed(form))
    return std::nullopt;
  return std::move(*form);
}

/// One conv for `run` (all compatible), or failure.
FailureOr<Value> mergeRun(ArrayRef<Branch> run, PatternRewriter &rewriter, Location loc,
                          StringRef policy) {
  int64_t kh = 0, kw = 0, out = 0, in = run.front().weight.dim(1);
  for (const Branch &b : run) {
    kh = std::max(kh, b.weight.dim(2));
    kw = std::max(kw, b.weight.dim(3));
    out += b.weight.dim(0);
  }
  auto pads = run.front().centredPads(kh, kw);
  if (!pads)
    return failure();
  for (const Branch &b : run)
    if (b.input != run.front().input || b.stride != run.front().stride ||
        b.weight.dim(1) != in || b.centredPads(kh, kw) != pads)
      return failure();
  // Cost: padding a small kernel into a large one adds MACs; reading x once
  // and writing no separate branch outputs saves traffic (4 MACs per byte).
  double spatial = weights::staticElements(run.front().op->getResult(0)) / run.front().weight.dim(0);
  double macsBefore = 0, bytesBefore = 0;
  for (const Branch &b : run) {
    macsBefore += double(b.weight.size()) * spatial;
    bytesBefore +=
        4 * (weights::staticElements(b.input) + 2 * weights::staticElements(b.op->getResult(0)));
  }
  double macsAfter = double(out) * in * kh * kw * spatial;
  double bytesAfter = 4 * (weights::staticElements(run.front().input) + out * spatial);
  if (policy == "never" ||
      (policy == "profitable" && macsAfter + 4 * bytesAfter >= macsBefore + 4 * bytesBefore))
    return failure();
  F32Tensor weight(llvm::ArrayRef<int64_t>{out, in, kh, kw});
  F32Tensor bias(llvm::ArrayRef<int64_t>{out});
  int64_t o0 = 0;
  for (const Branch &b : run) {
    const F32Tensor &w = b.weight;
    int64_t oh = (kh - w.dim(2)) / 2, ow = (kw - w.dim(3)) / 2;
    for (int64_t o = 0; o < w.dim(0); ++o) {
      bias.data[o0 + o] = b.bias[o];
      for (int64_t i = 0; i < in; ++i)
        for (int64_t y = 0; y < w.dim(2); ++y)
          for (int64_t x = 0; x < w.dim(3); ++x)
            weight.data[(((o0 + o) * in + i) * kh + y + oh) * kw + x + ow] =
                w.data[((o * in + i) * w.dim(2) + y) * w.dim(3) + x];
    }
    o0 += w.dim(0);
  }
  auto firstType = cast<RankedTensorType>(run.front().op->getResult(0).getType());
  SmallVector<int64_t> shape(firstType.getShape());
  shape[1] = out;
  std::string base = weights::nameOf(run.front().op->getResult(0));
  if (base.empty())
    base = "concat";
  Value w = weights::createInitializer(rewriter, loc, base + "_stacked_weight", weight);
  Value bv = weights::createInitializer(rewriter, loc, base + "_stacked_bias", bias);
  OperationState state(loc, ConvOp::getOperationName());
  state.addOperands({run.front().input, w, bv});
  state.addTypes(RankedTensorType::get(shape, firstType.getElementType()));
  state.addAttribute("kernel_shape", rewriter.getDenseI64ArrayAttr({kh, kw}));
  state.addAttribute("pads", rewriter.getDenseI64ArrayAttr(*pads));
  if (run.front().stride != std::array<int64_t, 2>{1, 1})
    state.addAttribute("strides", rewriter.getDenseI64ArrayAttr(run.front().stride));
  if (auto name = run.front().op->getAttr(kNodeNameAttr))
    state.addAttribute(kNodeNameAttr, name);
  Operation *conv = rewriter.create(state);
  // The stacked output's statistics, when every branch has them.
  weights::ChannelStats stacked;
  for (const Branch &b : run) {
    auto stats = weights::getOutputStats(b.op);
    if (!stats) {
      stacked.mean.clear();
      break;
    }
    stacked.mean.insert(stacked.mean.end(), stats->mean.begin(), stats->mean.end());
    stacked.std.insert(stacked.std.end(), stats->std.begin(), stats->std.end());
  }
  if (!stacked.mean.empty() && int64_t(stacked.mean.size()) == out)
    weights::setOutputStats(conv, stacked);
  return conv->getResult(0);
}

struct MergeConcat : OpRewritePattern<ConcatOp> {
  MergeConcat(MLIRContext *ctx, StringRef policy) : OpRewritePattern(ctx), policy(policy.str()) {}
  std::string policy;

  LogicalResult matchAndRewrite(ConcatOp concat, PatternRewriter &rewriter) const override {
    auto type = dyn_cast<RankedTensorType>(concat.getType());
    if (!type || type.getRank() != 4)
      return rewriter.notifyMatchFailure(concat, "not a 4-D concat");
    int64_t axis = concat.getAxis().value_or(0);
    if (axis != 1 && axis != -3)
      return rewriter.notifyMatchFailure(concat, "not a concat along channels");
    // Split the inputs into runs of mergeable convs on one input.
    SmallVector<Value> newInputs;
    SmallVector<Operation *> merged;
    bool changed = false;
    auto inputs = concat.getInputs();
    for (size_t i = 0; i < inputs.size();) {
      auto first = readBranch(inputs[i]);
      size_t j = i + 1;
      SmallVector<Branch> run;
      if (first) {
        run.push_back(*first);
        for (; j < inputs.size(); ++j) {
          auto next = readBranch(inputs[j]);
          if (!next || next->input != first->input || next->op == first->op)
            break;
          run.push_back(*next);
        }
      }
      if (run.size() >= 2) {
        auto conv = mergeRun(run, rewriter, concat.getLoc(), policy);
        if (succeeded(conv)) {
          newInputs.push_back(*conv);
          for (const Branch &b : run)
            merged.push_back(b.op);
          changed = true;
          i = j;
          continue;
        }
      }
      newInputs.push_back(inputs[i]);
      ++i;
    }
    if (!changed)
      return rewriter.notifyMatchFailure(
          concat, "no run of convs on one input with the same stride, aligned centres, no "
                  "groups, that is cheaper merged");
    Value result;
    if (newInputs.size() == 1) {
      result = newInputs.front();
      for (StringRef attr : {kOutputNamesAttr})
        if (auto value = concat->getAttr(attr))
          result.getDefiningOp()->setAttr(attr, value);
    } else {
      auto newConcat = rewriter.create<ConcatOp>(concat.getLoc(), concat.getType(), newInputs,
                                                 concat.getAxisAttr());
      for (StringRef attr : {kNodeNameAttr, kOutputNamesAttr})
        if (auto value = concat->getAttr(attr))
          newConcat->setAttr(attr, value);
      result = newConcat.getResult();
    }
    rewriter.replaceOp(concat, result);
    for (Operation *op : merged)
      rewriter.eraseOp(op);
    return success();
  }
};

struct MergeConcatConvsPass : refold::impl::MergeConcatConvsBase<MergeConcatConvsPass> {
  using MergeConcatConvsBase::MergeConcatConvsBase;
  void runOnOperation() override {
    MLIRContext *ctx = &getContext();
    RewritePatternSet patterns(ctx);
    patterns.add<MergeConcat>(ctx, mergePolicy);
    if (failed(applyToCandidates<ConcatOp>(getOperation(), std::move(patterns))))
      return signalPassFailure();
  }
};

} // namespace
