//===- ShrinkDeadChannels.cpp - remove all-zero conv output channels -------===//
//
// A conv output channel whose weights are all zero (what structured channel
// pruning leaves behind) is its bias everywhere: a constant. It flows to the
// consumer convs through channel-by-channel ops (Relu, Sigmoid, HardSwish,
// Clip, BatchNormalization, Mul/Add/Sub/Div by per-channel constants), which
// map the constant to another constant c. Removing the channel, with the
// matching input channel of every consumer, is exact when c is zero (the
// consumer multiplied it by zero) or when no consumer zero-pads (c times the
// consumer's taps joins its bias). The ops in between lose the channel too.
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

#include <algorithm>
#include <cmath>
#include <functional>

namespace refold {
#define GEN_PASS_DEF_SHRINKDEADCHANNELS
#include "refold/Passes/Passes.h.inc"
} // namespace refold

using namespace mlir;
using namespace refold;
using namespace refold::ir;
using weights::F32Tensor;

namespace {

/// A channel-by-channel op between the conv and its consumers: what it does
/// to a constant channel, and its per-channel operands (sliced with the
/// channels).
struct ChannelStep {
  Operation *op;
  std::function<float(float, int64_t)> apply;
  SmallVector<unsigned> perChannelOperands;
  bool depthwise = false; // a 1x1 depthwise conv: its group is the channel count
};

std::optional<ChannelStep> channelStep(Operation *op, Value input, int64_t channels) {
  auto type = dyn_cast<RankedTensorType>(input.getType());
  if (!type || op->getNumResults() < 1 || op->getResult(0).getType() != input.getType())
    return std::nullopt;
  if (isa<ReluOp>(op))
    return ChannelStep{op, [](float v, int64_t) { return std::max(v, 0.0f); }, {}};
  if (isa<SigmoidOp>(op))
    return ChannelStep{op, [](float v, int64_t) { return 1.0f / (1.0f + std::exp(-v)); }, {}};
  if (isa<HardSwishOp>(op))
    return ChannelStep{
        op, [](float v, int64_t) { return v * std::clamp(v / 6.0f + 0.5f, 0.0f, 1.0f); }, {}};
  if (auto clip = dyn_cast<ClipOp>(op)) {
    auto lo = isNoneValue(clip.getMin()) ? std::optional<float>(-INFINITY)
                                         : weights::getScalarF32(clip.getMin());
    auto hi = isNoneValue(clip.getMax()) ? std::optional<float>(INFINITY)
                                         : weights::getScalarF32(clip.getMax());
    if (!lo || !hi || clip.getInput() != input)
      return std::nullopt;
    float l = *lo, h = *hi;
    return ChannelStep{op, [l, h](float v, int64_t) { return std::min(std::max(v, l), h); }, {}};
  }
  if (auto bn = dyn_cast<BatchNormalizationOp>(op)) {
    if (bn.getX() != input || op->getNumResults() != 1)
      return std::nullopt;
    std::string why;
    auto affine = batchNormAffine(bn, why);
    if (failed(affine) || (int64_t)affine->scale.size() != channels)
      return std::nullopt;
    std::vector<float> scale = affine->scale, shift = affine->shift;
    return ChannelStep{op, [scale, shift](float v, int64_t c) { return v * scale[c] + shift[c]; },
                       {1, 2, 3, 4}};
  }
  if (auto conv = dyn_cast<ConvOp>(op)) {
    // A lowered BatchNormalization: 1x1 depthwise, unpadded, stride 1.
    auto w = weights::getConstantF32(conv.getW());
    std::optional<F32Tensor> b;
    if (conv.getX() != input || conv.getGroup().value_or(1) != channels || !w ||
        w->size() != channels || (!isNoneValue(conv.getB()) &&
                                  (!(b = weights::getConstantF32(conv.getB())) ||
                                   b->size() != channels)))
      return std::nullopt;
    bool padded = padsInput(conv.getPads(), conv.getAutoPad());
    bool strided = conv.getStrides() && llvm::any_of(*conv.getStrides(), [](int64_t s) { return s != 1; });
    if (padded || strided)
      return std::nullopt;
    std::vector<float> scale = w->data, shift = b ? b->data : std::vector<float>(channels, 0.0f);
    SmallVector<unsigned> operands{1};
    if (b)
      operands.push_back(2);
    return ChannelStep{op, [scale, shift](float v, int64_t c) { return v * scale[c] + shift[c]; },
                       operands, /*depthwise=*/true};
  }
  if (isa<MulOp, AddOp, SubOp, DivOp>(op)) {
    unsigned side = op->getOperand(0) == input ? 1 : 0;
    if (op->getOperand(1 - side) != input)
      return std::nullopt;
    auto values = weights::channelValues(op->getOperand(side), type.getRank(), channels);
    if (!values)
      return std::nullopt;
    std::vector<float> k = *values;
    bool inputFirst = side == 1;
    std::function<float(float, int64_t)> apply;
    if (isa<MulOp>(op))
      apply = [k](float v, int64_t c) { return v * k[c]; };
    else if (isa<AddOp>(op))
      apply = [k](float v, int64_t c) { return v + k[c]; };
    else if (isa<SubOp>(op))
      apply = [k, inputFirst](float v, int64_t c) { return inputFirst ? v - k[c] : k[c] - v; };
    else
      apply = [k, inputFirst](float v, int64_t c) { return inputFirst ? v / k[c] : k[c] / v; };
    return ChannelStep{op, apply, {side}};
  }
  return std::nullopt;
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
    if (b && b->size() != out)
      return rewriter.notifyMatchFailure(conv, "the bias does not match the output channels");
    // Channels whose weights are all zero are constant: their bias.
    SmallVector<int64_t> constant;
    for (int64_t o = 0; o < out; ++o)
      if (llvm::all_of(ArrayRef<float>(w->data).slice(o * perOut, perOut),
                       [](float v) { return v == 0.0f; }))
        constant.push_back(o);
    if (constant.empty())
      return rewriter.notifyMatchFailure(conv, "no output channel has all-zero weights");

    // The channel-by-channel ops between the conv and its consumers, and the
    // value each constant channel has when it reaches them.
    SmallVector<ChannelStep> chain;
    Value v = conv.getY();
    while (v.hasOneUse()) {
      auto step = channelStep(*v.getUsers().begin(), v, out);
      if (!step)
        break;
      chain.push_back(*step);
      v = step->op->getResult(0);
    }
    if (v.use_empty())
      return rewriter.notifyMatchFailure(conv, "the channels reach no consumer");
    SmallVector<ConvOp> consumers;
    bool consumerPads = false;
    for (Operation *user : v.getUsers()) {
      auto next = dyn_cast<ConvOp>(user);
      if (!next || next.getX() != v || next.getGroup().value_or(1) != 1 ||
          !weights::getConstantF32(next.getW()) ||
          (!isNoneValue(next.getB()) && !weights::getConstantF32(next.getB())))
        return rewriter.notifyMatchFailure(
            conv, "a consumer is not a dense conv with constant weights (or the channels are "
                  "a graph output, or pass an op that is not channel by channel)");
      consumerPads |= padsInput(next.getPads(), next.getAutoPad());
      consumers.push_back(next);
    }
    // A constant channel that reaches the consumers as c != 0 becomes part of
    // their bias; a zero-padding consumer would see c inside and 0 outside
    // the image, so only channels that arrive as zero go then.
    llvm::DenseMap<int64_t, float> arriving;
    SmallVector<int64_t> removed;
    for (int64_t o : constant) {
      float value = b ? b->data[o] : 0.0f;
      for (const ChannelStep &step : chain)
        value = step.apply(value, o);
      if (!std::isfinite(value) || (value != 0.0f && consumerPads))
        continue;
      arriving[o] = value;
      removed.push_back(o);
    }
    if (removed.empty())
      return rewriter.notifyMatchFailure(
          conv, "the constant channels are not zero where a zero-padding consumer reads them");
    if ((int64_t)removed.size() == out)
      return rewriter.notifyMatchFailure(conv, "every output channel would go");
    SmallVector<int64_t> kept;
    for (int64_t o = 0; o < out; ++o)
      if (!arriving.count(o))
        kept.push_back(o);
    int64_t keep = kept.size();
    for (Value value : {Value(conv.getY()), v})
      if (!withChannels(value.getType(), keep))
        return rewriter.notifyMatchFailure(conv, "the channel count is not static");
    for (const ChannelStep &step : chain)
      if (!withChannels(step.op->getResult(0).getType(), keep))
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
    auto stats = weights::getOutputStats(conv);
    rewriter.modifyOpInPlace(conv, [&] {
      conv->removeAttr(weights::kOutputStatsAttr);
      if (stats && int64_t(stats->mean.size()) == w->dim(0)) {
        weights::ChannelStats subset;
        for (int64_t i = 0; i < keep; ++i) {
          subset.mean.push_back(stats->mean[kept[i]]);
          subset.std.push_back(stats->std[kept[i]]);
        }
        weights::setOutputStats(conv, subset);
      }
      conv.getWMutable().assign(wv);
      conv.getBMutable().assign(bv);
      conv->getResult(0).setType(withChannels(conv.getY().getType(), keep));
      conv->removeAttr(kValueInfoAttr);
    });
    llvm::DenseMap<Value, Value> slicedConstants; // BN's scale and B may be one tensor
    for (const ChannelStep &step : chain) {
      Operation *op = step.op;
      for (unsigned index : step.perChannelOperands) {
        if (Value done = slicedConstants.lookup(op->getOperand(index))) {
          rewriter.modifyOpInPlace(op, [&] { op->setOperand(index, done); });
          continue;
        }
        auto values = *weights::getConstantF32(op->getOperand(index));
        if (values.size() != out)
          continue; // a scalar stays
        F32Tensor sliced = values;
        for (int64_t d = 0; d < sliced.rank(); ++d)
          if (sliced.shape[d] == out)
            sliced.shape[d] = keep;
        sliced.data.resize(keep);
        for (int64_t i = 0; i < keep; ++i)
          sliced.data[i] = values.data[kept[i]];
        Value nv = weights::createInitializer(
            rewriter, op->getLoc(), weights::nameOf(op->getOperand(index)) + "_shrunk", sliced);
        slicedConstants[op->getOperand(index)] = nv;
        rewriter.modifyOpInPlace(op, [&] { op->setOperand(index, nv); });
      }
      rewriter.modifyOpInPlace(op, [&] {
        op->getResult(0).setType(withChannels(op->getResult(0).getType(), keep));
        op->removeAttr(kValueInfoAttr);
        if (step.depthwise)
          op->setAttr("group", rewriter.getI64IntegerAttr(keep));
      });
    }
    for (ConvOp next : consumers) {
      auto nw = *weights::getConstantF32(next.getW());
      int64_t o2 = nw.dim(0), in = nw.dim(1), kernel = nw.size() / (o2 * in);
      F32Tensor shrunk(nw.shape);
      shrunk.shape[1] = keep;
      shrunk.data.resize(o2 * keep * kernel);
      F32Tensor bias(llvm::ArrayRef<int64_t>{o2});
      if (!isNoneValue(next.getB()))
        bias = *weights::getConstantF32(next.getB());
      for (int64_t o = 0; o < o2; ++o) {
        for (int64_t i = 0; i < keep; ++i)
          std::copy_n(nw.data.begin() + (o * in + kept[i]) * kernel, kernel,
                      shrunk.data.begin() + (o * keep + i) * kernel);
        double extra = 0;
        for (auto [c, value] : arriving)
          for (int64_t k = 0; k < kernel; ++k)
            extra += double(nw.data[(o * in + c) * kernel + k]) * value;
        bias.data[o] += float(extra);
      }
      std::string name = weights::nameOf(next.getW());
      Value nv = weights::createInitializer(rewriter, next.getLoc(), name + "_shrunk", shrunk);
      bool biasChanges = llvm::any_of(arriving, [](auto entry) { return entry.second != 0.0f; });
      Value nb = biasChanges ? weights::createInitializer(rewriter, next.getLoc(),
                                                          name + "_shrunk_bias", bias)
                             : next.getB();
      rewriter.modifyOpInPlace(next, [&] {
        next.getWMutable().assign(nv);
        next.getBMutable().assign(nb);
      });
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
