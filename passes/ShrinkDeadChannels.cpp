//===- ShrinkDeadChannels.cpp - remove all-zero conv output channels -------===//
//
// A conv output channel whose weights and bias are all zero (what structured
// channel pruning leaves behind) is zero everywhere. Removing it, together
// with the matching input channel of every consumer conv, is exact when the
// values flow to those convs only through ops that keep zero at zero (Relu,
// HardSwish, Clip with 0 in range): the consumer multiplied that channel by
// zero.
//
//===----------------------------------------------------------------------===//

#include "refold/Passes/Explain.h"
#include "refold/Passes/Passes.h"
#include "refold/Transforms/WeightUtils.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace refold {
#define GEN_PASS_DEF_SHRINKDEADCHANNELS
#include "refold/Passes/Passes.h.inc"
} // namespace refold

using namespace mlir;
using namespace refold;
using namespace refold::ir;
using weights::F32Tensor;

namespace {

/// Whether `op` maps a zero channel to a zero channel, channel by channel.
bool keepsZero(Operation *op) {
  if (isa<ReluOp, HardSwishOp>(op))
    return true;
  if (auto clip = dyn_cast<ClipOp>(op)) {
    auto lo = isNoneValue(clip.getMin()) ? std::optional<float>(-1) : weights::getScalarF32(clip.getMin());
    auto hi = isNoneValue(clip.getMax()) ? std::optional<float>(1) : weights::getScalarF32(clip.getMax());
    return lo && hi && *lo <= 0 && *hi >= 0;
  }
  return false;
}

/// `type` with dimension 1 set to `channels`, or null if it is not static there.
Type withChannels(Type type, int64_t channels) {
  auto ranked = dyn_cast<RankedTensorType>(type);
  if (!ranked || ranked.getRank() < 2 || ranked.isDynamicDim(1))
    return nullptr;
  SmallVector<int64_t> shape(ranked.getShape());
  shape[1] = channels;
  return RankedTensorType::get(shape, ranked.getElementType());
}

struct ShrinkConv : OpRewritePattern<ConvOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(ConvOp conv, PatternRewriter &rewriter) const override {
    if (conv.getGroup().value_or(1) != 1)
      return rewriter.notifyMatchFailure(conv, "a grouped conv");
    auto w = weights::getConstantF32(conv.getW());
    if (!w || w->rank() < 3)
      return rewriter.notifyMatchFailure(conv, "the weight is not a float32 constant");
    int64_t out = w->dim(0), perOut = w->size() / out;
    std::optional<F32Tensor> b;
    if (!isNoneValue(conv.getB()) && !(b = weights::getConstantF32(conv.getB())))
      return rewriter.notifyMatchFailure(conv, "the bias is not a float32 constant");
    SmallVector<int64_t> kept;
    for (int64_t o = 0; o < out; ++o) {
      bool dead = (!b || b->data[o] == 0.0f) &&
                  llvm::all_of(ArrayRef<float>(w->data).slice(o * perOut, perOut),
                               [](float v) { return v == 0.0f; });
      if (!dead)
        kept.push_back(o);
    }
    if ((int64_t)kept.size() == out)
      return rewriter.notifyMatchFailure(conv, "no output channel is all zero");
    if (kept.empty())
      return rewriter.notifyMatchFailure(conv, "every output channel is zero");

    // The ops between the conv and its consumers, and the consumers.
    SmallVector<Operation *> chain;
    Value v = conv.getY();
    while (v.hasOneUse() && keepsZero(*v.getUsers().begin())) {
      chain.push_back(*v.getUsers().begin());
      v = chain.back()->getResult(0);
    }
    if (v.use_empty())
      return rewriter.notifyMatchFailure(conv, "the channels reach no consumer");
    SmallVector<ConvOp> consumers;
    for (Operation *user : v.getUsers()) {
      auto next = dyn_cast<ConvOp>(user);
      if (!next || next.getX() != v || next.getGroup().value_or(1) != 1 ||
          !weights::getConstantF32(next.getW()))
        return rewriter.notifyMatchFailure(
            conv, "a consumer is not a dense conv with a constant weight (or the channels are "
                  "a graph output, or pass an op that does not keep zero at zero)");
      consumers.push_back(next);
    }
    int64_t keep = kept.size();
    for (Value value : {Value(conv.getY()), v})
      if (!withChannels(value.getType(), keep))
        return rewriter.notifyMatchFailure(conv, "the channel count is not static");
    for (Operation *op : chain)
      if (!withChannels(op->getResult(0).getType(), keep))
        return rewriter.notifyMatchFailure(conv, "the channel count is not static");

    std::string base = weights::nameOf(conv.getW());
    F32Tensor newW(w->shape);
    newW.shape[0] = keep;
    newW.data.resize(keep * perOut);
    F32Tensor newB(llvm::ArrayRef<int64_t>{keep});
    for (int64_t i = 0; i < keep; ++i) {
      std::copy_n(w->data.begin() + kept[i] * perOut, perOut, newW.data.begin() + i * perOut);
      newB.data[i] = b ? b->data[kept[i]] : 0.0f;
    }
    Value wv = weights::createInitializer(rewriter, conv.getLoc(), base + "_shrunk", newW);
    Value bv = weights::createInitializer(rewriter, conv.getLoc(), base + "_shrunk_bias", newB);
    rewriter.modifyOpInPlace(conv, [&] {
      conv.getWMutable().assign(wv);
      conv.getBMutable().assign(bv);
      conv->getResult(0).setType(withChannels(conv.getY().getType(), keep));
      conv->removeAttr(kValueInfoAttr);
    });
    for (Operation *op : chain)
      rewriter.modifyOpInPlace(op, [&] {
        op->getResult(0).setType(withChannels(op->getResult(0).getType(), keep));
        op->removeAttr(kValueInfoAttr);
      });
    for (ConvOp next : consumers) {
      auto nw = *weights::getConstantF32(next.getW());
      int64_t o2 = nw.dim(0), in = nw.dim(1), kernel = nw.size() / (o2 * in);
      F32Tensor shrunk(nw.shape);
      shrunk.shape[1] = keep;
      shrunk.data.resize(o2 * keep * kernel);
      for (int64_t o = 0; o < o2; ++o)
        for (int64_t i = 0; i < keep; ++i)
          std::copy_n(nw.data.begin() + (o * in + kept[i]) * kernel, kernel,
                      shrunk.data.begin() + (o * keep + i) * kernel);
      Value nv = weights::createInitializer(rewriter, next.getLoc(),
                                            weights::nameOf(next.getW()) + "_shrunk", shrunk);
      rewriter.modifyOpInPlace(next, [&] { next.getWMutable().assign(nv); });
    }
    return success();
  }
};

struct ShrinkDeadChannelsPass : refold::impl::ShrinkDeadChannelsBase<ShrinkDeadChannelsPass> {
  void runOnOperation() override {
    MLIRContext *ctx = &getContext();
    RewritePatternSet patterns(ctx);
    patterns.add<ShrinkConv>(ctx);
    if (failed(applyToCandidates<ConvOp>(getOperation(), std::move(patterns))))
      return signalPassFailure();
  }
};

} // namespace
