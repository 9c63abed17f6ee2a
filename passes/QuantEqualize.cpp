//===- QuantEqualize.cpp - cross-layer equalization before quantization -----===//
//
// Per-tensor activation scales and per-tensor weight scales both suffer when
// one channel's values dwarf the others'. Between two convs joined by a Relu
// (or nothing) the channel scale can move from one to the other without
// changing the function (quantization.md: the DFQ algorithm); equalizing
// the weight ranges of each channel pair leaves no channel for a single
// scale to crush.
//
//===----------------------------------------------------------------------===//

#include "refold/Dialect/ONNX/ONNXOps.h"
#include "refold/Passes/Passes.h"
#include "refold/Transforms/WeightUtils.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

#include <cmath>

namespace refold {
#define GEN_PASS_DEF_QUANTEQUALIZE
#include "refold/Passes/Passes.h.inc"
} // namespace refold

using namespace mlir;
using namespace refold;
using namespace refold::ir;

namespace {

struct Pair {
  ConvOp first, second;
};

struct QuantEqualizePass : refold::impl::QuantEqualizeBase<QuantEqualizePass> {
  using QuantEqualizeBase::QuantEqualizeBase;

  /// The conv feeding `second` through a Relu or directly, when nothing
  /// else reads the path. Either may be grouped (depthwise -> pointwise,
  /// pointwise -> depthwise): a channel's scale moves from the first conv's
  /// output channel to the second's weights reading it.
  static std::optional<Pair> pairOf(ConvOp second) {
    Value x = second.getX();
    if (!x.hasOneUse())
      return std::nullopt;
    if (Operation *def = x.getDefiningOp(); weights::isReluLike(def)) {
      x = def->getOperand(0);
      if (!x.hasOneUse())
        return std::nullopt;
    }
    auto first = x.getDefiningOp<ConvOp>();
    if (!first)
      return std::nullopt;
    return Pair{first, second};
  }

  /// Rescales one pair; the largest |log s| applied (0: nothing to do).
  double equalize(Pair pair) {
    auto w1 = weights::getConstantF32(pair.first.getW());
    auto w2 = weights::getConstantF32(pair.second.getW());
    if (!w1 || !w2 || w1->rank() < 2 || w2->rank() < 2)
      return 0;
    Value bias = pair.first.getB();
    std::optional<weights::F32Tensor> b1;
    if (!isNoneValue(bias)) {
      b1 = weights::getConstantF32(bias);
      if (!b1 || b1->rank() != 1)
        return 0;
    }
    int64_t channels = w1->dim(0);
    // The second conv's weight is [O, C / groups, taps...]: input channel c
    // is read by the output channels of its group, at c % (C / groups).
    int64_t groups = pair.second.getGroup().value_or(1), inPerGroup = w2->dim(1);
    if (groups < 1 || inPerGroup * groups != channels || w2->dim(0) % groups)
      return 0;
    int64_t outPerGroup = w2->dim(0) / groups;
    int64_t inner1 = w1->size() / channels, taps = w2->size() / (w2->dim(0) * inPerGroup);
    auto channelOf = [&](int64_t i) {
      int64_t o = i / (inPerGroup * taps), local = (i / taps) % inPerGroup;
      return (o / outPerGroup) * inPerGroup + local;
    };
    std::vector<float> r1(channels, 0), r2(channels, 0);
    for (int64_t i = 0; i < w1->size(); ++i)
      r1[i / inner1] = std::max(r1[i / inner1], std::fabs(w1->data[i]));
    for (int64_t i = 0; i < w2->size(); ++i) {
      int64_t c = channelOf(i);
      r2[c] = std::max(r2[c], std::fabs(w2->data[i]));
    }
    std::vector<float> s(channels, 1.0f);
    double moved = 0;
    for (int64_t c = 0; c < channels; ++c) {
      if (r1[c] > 0 && r2[c] > 0 && std::isfinite(r1[c] / r2[c]))
        s[c] = std::sqrt(r1[c] / r2[c]);
      moved = std::max(moved, std::fabs(std::log(double(s[c]))));
    }
    if (moved < 1e-3)
      return 0;
    for (int64_t i = 0; i < w1->size(); ++i)
      w1->data[i] /= s[i / inner1];
    for (int64_t i = 0; i < w2->size(); ++i)
      w2->data[i] *= s[channelOf(i)];
    OpBuilder b(pair.first);
    Location loc = pair.first.getLoc();
    auto named = [](Value v, StringRef fallback) {
      std::string n = weights::nameOf(v);
      return n.empty() ? fallback.str() : n;
    };
    pair.first->setOperand(1, weights::createInitializer(
                                  b, loc, named(pair.first.getW(), "weight"), *w1));
    if (auto stats = weights::getOutputStats(pair.first)) {
      if (int64_t(stats->mean.size()) == channels) {
        for (int64_t c = 0; c < channels; ++c) {
          stats->mean[c] /= s[c];
          stats->std[c] /= s[c];
        }
        weights::setOutputStats(pair.first, *stats);
      }
    }
    if (b1) {
      for (int64_t c = 0; c < channels; ++c)
        b1->data[c] /= s[c];
      pair.first->setOperand(2, weights::createInitializer(b, loc, named(bias, "bias"), *b1));
    }
    pair.second->setOperand(1, weights::createInitializer(
                                   b, loc, named(pair.second.getW(), "weight"), *w2));
    return moved;
  }

  void runOnOperation() override {
    SmallVector<Pair> pairs;
    getOperation().walk([&](ConvOp conv) {
      if (auto pair = pairOf(conv))
        pairs.push_back(*pair);
    });
    llvm::DenseSet<Operation *> touched;
    for (unsigned round = 0; round < maxRounds; ++round) {
      double moved = 0;
      for (Pair pair : pairs) {
        double m = equalize(pair);
        if (m > 0)
          touched.insert(pair.second);
        moved = std::max(moved, m);
      }
      if (moved < 1e-3)
        break;
    }
    numPairs += touched.size();
    // The replaced weights are dead now.
    getOperation().walk([](InitializerOp init) {
      if (init->use_empty())
        init->erase();
    });
  }
};

} // namespace
