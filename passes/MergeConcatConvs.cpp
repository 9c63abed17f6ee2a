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

struct Branch {
  mutable ConvOp op; // op handles are values; accessors are not const
  F32Tensor weight;  // [O, C, kh, kw]
  std::vector<float> bias;
  std::array<int64_t, 2> stride{1, 1};
  std::array<int64_t, 4> pads{0, 0, 0, 0};
};

std::optional<Branch> readBranch(Value value) {
  auto conv = value.getDefiningOp<ConvOp>();
  if (!conv || !conv->hasOneUse() || conv.getGroup().value_or(1) != 1)
    return std::nullopt;
  if ((conv.getAutoPad() && *conv.getAutoPad() != "NOTSET") ||
      (conv.getDilations() && llvm::any_of(*conv.getDilations(), [](int64_t d) { return d != 1; })))
    return std::nullopt;
  auto w = weights::getConstantF32(conv.getW());
  if (!w || w->rank() != 4)
    return std::nullopt;
  Branch branch{conv, *w, std::vector<float>(w->dim(0), 0.0f)};
  if (!isNoneValue(conv.getB())) {
    auto b = weights::getConstantF32(conv.getB());
    if (!b || b->size() != w->dim(0))
      return std::nullopt;
    branch.bias = b->data;
  }
  if (auto s = conv.getStrides())
    branch.stride = {(*s)[0], (*s)[1]};
  if (auto p = conv.getPads())
    branch.pads = {(*p)[0], (*p)[1], (*p)[2], (*p)[3]};
  return branch;
}

/// The padding of `b` grown to a kh x kw kernel, if the deficit is even.
std::optional<std::array<int64_t, 4>> centred(const Branch &b, int64_t kh, int64_t kw) {
  int64_t dh = kh - b.weight.dim(2), dw = kw - b.weight.dim(3);
  if (dh % 2 || dw % 2)
    return std::nullopt;
  return std::array<int64_t, 4>{b.pads[0] + dh / 2, b.pads[1] + dw / 2, b.pads[2] + dh / 2,
                                b.pads[3] + dw / 2};
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
  auto pads = centred(run.front(), kh, kw);
  if (!pads)
    return failure();
  for (const Branch &b : run)
    if (b.op.getX() != run.front().op.getX() || b.stride != run.front().stride ||
        b.weight.dim(1) != in || centred(b, kh, kw) != pads)
      return failure();
  // Cost: padding a small kernel into a large one adds MACs; reading x once
  // and writing no separate branch outputs saves traffic (4 MACs per byte).
  double spatial = weights::staticElements(run.front().op.getY()) / run.front().weight.dim(0);
  double macsBefore = 0, bytesBefore = 0;
  for (const Branch &b : run) {
    macsBefore += double(b.weight.size()) * spatial;
    bytesBefore +=
        4 * (weights::staticElements(b.op.getX()) + 2 * weights::staticElements(b.op.getY()));
  }
  double macsAfter = double(out) * in * kh * kw * spatial;
  double bytesAfter = 4 * (weights::staticElements(run.front().op.getX()) + out * spatial);
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
  auto firstType = cast<RankedTensorType>(run.front().op.getType());
  SmallVector<int64_t> shape(firstType.getShape());
  shape[1] = out;
  std::string base = weights::nameOf(run.front().op.getY());
  if (base.empty())
    base = "concat";
  Value w = weights::createInitializer(rewriter, loc, base + "_stacked_weight", weight);
  Value bv = weights::createInitializer(rewriter, loc, base + "_stacked_bias", bias);
  OperationState state(loc, ConvOp::getOperationName());
  state.addOperands({run.front().op.getX(), w, bv});
  state.addTypes(RankedTensorType::get(shape, firstType.getElementType()));
  state.addAttribute("kernel_shape", rewriter.getDenseI64ArrayAttr({kh, kw}));
  state.addAttribute("pads", rewriter.getDenseI64ArrayAttr(*pads));
  if (run.front().stride != std::array<int64_t, 2>{1, 1})
    state.addAttribute("strides", rewriter.getDenseI64ArrayAttr(run.front().stride));
  if (auto name = run.front().op->getAttr(kNodeNameAttr))
    state.addAttribute(kNodeNameAttr, name);
  return rewriter.create(state)->getResult(0);
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
          if (!next || next->op.getX() != first->op.getX() || next->op == first->op)
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
