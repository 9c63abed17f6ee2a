//===- FoldAffine.cpp - fold per-channel constant arithmetic and Pad --------===//
//
// Mul, Add, Sub or Div by a constant that varies only along the channel axis,
// right after a Conv, ConvTranspose, Gemm or 2-D MatMul, is a per-channel
// affine map y * s + t: it folds into the linear op like a BatchNormalization
// (reparam-math.md section 2). The same map right before a Conv, Gemm or 2-D
// MatMul (its only user) folds forward like a BN does: exact for a scale,
// and for a shift before a zero-padding conv only with a border correction.
// A zero-valued constant Pad of the spatial axes before a Conv (or a Slice
// of one that only removes padding) becomes the Conv's own padding. Ops of
// a GELU, LayerNorm or HardSwish decomposition are left alone: runtimes
// fuse those chains only as exported.
//
//===----------------------------------------------------------------------===//

#include "refold/Passes/Explain.h"
#include "refold/Passes/Passes.h"
#include "refold/Transforms/ConvForms.h"
#include "refold/Transforms/FusablePatterns.h"
#include "refold/Transforms/LinearFold.h"
#include "refold/Transforms/WeightUtils.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace refold {
#define GEN_PASS_DEF_FOLDAFFINE
#include "refold/Passes/Passes.h.inc"
} // namespace refold

using namespace mlir;
using namespace refold;
using namespace refold::ir;

namespace {

bool isLinear(Value v) {
  return isa_and_nonnull<ConvOp, ConvTransposeOp, GemmOp, MatMulOp>(v.getDefiningOp());
}

template <typename ArithOp> struct FoldArithmetic : OpRewritePattern<ArithOp> {
  FoldArithmetic(MLIRContext *ctx, const FusablePatterns &fusable)
      : OpRewritePattern<ArithOp>(ctx), fusable(fusable) {}

  LogicalResult matchAndRewrite(ArithOp op, PatternRewriter &rewriter) const override {
    // Folding a constant out of GELU, LayerNorm or HardSwish arithmetic
    // removes one op but stops runtimes from running the chain as one.
    if (StringRef pattern = fusable.patternOf(op); !pattern.empty())
      return rewriter.notifyMatchFailure(op, "part of a " + pattern +
                                                 " pattern that runtimes fuse: left whole");
    if (auto side = channelsLastSide(op))
      return foldChannelsLast(op, *side, rewriter);
    if (succeeded(foldBackward(op, rewriter)))
      return success();
    return foldForward(op, rewriter);
  }

  /// The op after a linear op: into its weights and bias.
  LogicalResult foldBackward(ArithOp op, PatternRewriter &rewriter) const {
    if (!isLinear(op->getOperand(0)) && !isLinear(op->getOperand(1)))
      return rewriter.notifyMatchFailure(op, "no operand is a Conv, ConvTranspose, Gemm or MatMul");
    std::string why;
    auto map = readChannelMap(op, why);
    if (failed(map))
      return rewriter.notifyMatchFailure(op, why);
    if (!isLinear(map->input))
      return rewriter.notifyMatchFailure(op, "the linear op is the constant operand");
    return foldChannelAffine(rewriter, op, map->input, map->affine.scale, map->affine.shift);
  }

  /// The op (and the per-channel maps after it: x * s + t, then + u) before
  /// a Conv, Gemm or 2-D MatMul that is the chain's only user.
  LogicalResult foldForward(ArithOp op, PatternRewriter &rewriter) const {
    std::string why;
    auto first = readChannelMap(op, why);
    if (failed(first))
      return rewriter.notifyMatchFailure(op, "no operand is a per-channel float32 constant of "
                                             "the input's shape (or it divides by the input)");
    // Composed in double and rounded once: chains of scalar affines after
    // every layer would otherwise drift.
    std::vector<double> scale(first->affine.scale.begin(), first->affine.scale.end());
    std::vector<double> shift(first->affine.shift.begin(), first->affine.shift.end());
    SmallVector<Operation *> chain{op};
    while (chain.back()->getResult(0).hasOneUse()) {
      Operation *next = *chain.back()->getResult(0).getUsers().begin();
      if (!isa<MulOp, AddOp, SubOp, DivOp>(next) || !fusable.patternOf(next).empty())
        break;
      auto map = readChannelMap(next, why);
      if (failed(map) || map->input != chain.back()->getResult(0) ||
          map->affine.scale.size() != scale.size())
        break;
      for (size_t c = 0; c < scale.size(); ++c) {
        scale[c] *= map->affine.scale[c];
        shift[c] = shift[c] * map->affine.scale[c] + map->affine.shift[c];
      }
      chain.push_back(next);
    }
    Value result = chain.back()->getResult(0);
    if (!result.hasOneUse() || !isa<ConvOp, GemmOp, MatMulOp>(*result.getUsers().begin()))
      return rewriter.notifyMatchFailure(op, "the only user is not a Conv, Gemm or MatMul");
    std::vector<float> s(scale.begin(), scale.end()), t(shift.begin(), shift.end());
    if (failed(foldAffineIntoFollowing(rewriter, chain.back(), first->input, s, t)))
      return rewriter.notifyMatchFailure(op, "the following linear op takes no affine map");
    for (Operation *dead : llvm::reverse(ArrayRef(chain).drop_back()))
      rewriter.eraseOp(dead);
    return success();
  }

  /// A MatMul over more than two axes (a channels-last Linear, tokens), bare
  /// or with its bias Add: which operand it is.
  static std::optional<int> channelsLastSide(ArithOp op) {
    for (int side = 0; side < 2; ++side) {
      Operation *def = op->getOperand(side).getDefiningOp();
      auto isNdMatMul = [](Operation *d) {
        auto mm = dyn_cast_or_null<MatMulOp>(d);
        auto type = mm ? dyn_cast<RankedTensorType>(mm.getA().getType()) : nullptr;
        return mm && (!type || type.getRank() != 2);
      };
      if (isNdMatMul(def))
        return side;
      if (isa_and_nonnull<AddOp>(def) && (isNdMatMul(def->getOperand(0).getDefiningOp()) ||
                                          isNdMatMul(def->getOperand(1).getDefiningOp())))
        return side;
    }
    return std::nullopt;
  }

  LogicalResult foldChannelsLast(ArithOp op, int side, PatternRewriter &rewriter) const {
    Value linear = op->getOperand(side), other = op->getOperand(1 - side);
    if (std::is_same_v<ArithOp, AddOp> && isa<MatMulOp>(linear.getDefiningOp()))
      return rewriter.notifyMatchFailure(op, "a MatMul's bias Add stays (it is the canonical form)");
    if (op->getResult(0).getType() != linear.getType())
      return rewriter.notifyMatchFailure(op, "the constant broadcasts the output to another shape");
    int64_t channels = -1;
    Operation *def = linear.getDefiningOp();
    SmallVector<Value, 2> candidates{linear};
    if (isa<AddOp>(def))
      candidates.assign(def->operand_begin(), def->operand_end());
    for (Value v : candidates)
      if (auto mm = v.getDefiningOp<MatMulOp>())
        if (auto w = weights::getConstantF32(mm.getB()); w && w->rank() == 2)
          channels = w->dim(1);
    auto values = lastAxisValues(other, linear.getType(), channels);
    if (!values)
      return rewriter.notifyMatchFailure(op, "the other operand is not a float32 constant along "
                                             "the last axis");
    auto affine = arithmeticAffine(op, *values, side == 0);
    if (!affine)
      return rewriter.notifyMatchFailure(op, "a constant divided by the output, or by zero");
    return foldLastAxisAffine(rewriter, op, linear, affine->scale, affine->shift);
  }

  const FusablePatterns &fusable;
};

/// Conv(Pad(x)) with zero constant padding of the spatial axes only.
struct FoldPadIntoConv : OpRewritePattern<ConvOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ConvOp conv, PatternRewriter &rewriter) const override {
    if (conv.getAutoPad() && *conv.getAutoPad() != "NOTSET")
      return rewriter.notifyMatchFailure(conv, "the Conv uses auto_pad");
    std::string why;
    auto zeroPad = readZeroPad(conv.getX(), why);
    if (failed(zeroPad))
      return rewriter.notifyMatchFailure(conv, "the input: " + why);
    Operation *pad = zeroPad->op;
    int64_t spatial = zeroPad->pads.size() / 2;
    SmallVector<int64_t> pads(2 * spatial, 0);
    if (auto existing = conv.getPads())
      pads.assign(existing->begin(), existing->end());
    if ((int64_t)pads.size() != 2 * spatial)
      return rewriter.notifyMatchFailure(conv, "the Conv's pads do not fit the Pad's rank");
    for (int64_t i = 0; i < 2 * spatial; ++i)
      pads[i] += zeroPad->pads[i];
    rewriter.modifyOpInPlace(conv, [&] {
      conv.getXMutable().assign(zeroPad->input);
      conv.setPadsAttr(rewriter.getDenseI64ArrayAttr(pads));
    });
    if (pad->use_empty())
      rewriter.eraseOp(pad);
    return success();
  }
};

struct FoldAffinePass : refold::impl::FoldAffineBase<FoldAffinePass> {
  void runOnOperation() override {
    MLIRContext *ctx = &getContext();
    RewritePatternSet patterns(ctx);
    FusablePatterns fusable(getOperation());
    patterns.add<FoldArithmetic<MulOp>, FoldArithmetic<AddOp>, FoldArithmetic<SubOp>,
                 FoldArithmetic<DivOp>>(ctx, fusable);
    patterns.add<FoldPadIntoConv>(ctx);
    if (failed(applyToCandidates<MulOp, AddOp, SubOp, DivOp, ConvOp>(getOperation(),
                                                                     std::move(patterns))))
      return signalPassFailure();
  }
};

} // namespace
