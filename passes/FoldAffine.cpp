//===- FoldAffine.cpp - fold per-channel constant arithmetic and Pad --------===//
//
// Mul, Add, Sub or Div by a constant that varies only along the channel axis,
// right after a Conv, ConvTranspose, Gemm or 2-D MatMul, is a per-channel
// affine map y * s + t: it folds into the linear op like a BatchNormalization
// (reparam-math.md section 2). The same map right before a Conv, Gemm or 2-D
// MatMul (its only user) folds forward like a BN does: exact for a scale,
// and for a shift before a zero-padding conv only with a border correction.
// A zero-valued constant Pad of the spatial axes before a Conv becomes the
// Conv's own padding.
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

/// The per-channel values of `constant` for an output of type `outType`
/// (channels on axis 1), or nothing if it varies along another axis.
std::optional<std::vector<float>> perChannel(Value constant, Type outType) {
  auto type = dyn_cast<RankedTensorType>(outType);
  if (!type || type.getRank() < 2 || type.isDynamicDim(1))
    return std::nullopt;
  return weights::channelValues(constant, type.getRank(), type.getDimSize(1));
}

/// The per-channel scale and shift the Mul, Add, Sub or Div `op` applies
/// with `values` to its other operand, on the left when `operandOnLeft`;
/// nothing for c / y or division by zero.
std::optional<std::pair<std::vector<float>, std::vector<float>>>
affineOf(Operation *op, const std::vector<float> &values, bool operandOnLeft) {
  size_t n = values.size();
  std::vector<float> scale(n, 1.0f), shift(n, 0.0f);
  for (size_t c = 0; c < n; ++c) {
    float v = values[c];
    if (isa<MulOp>(op)) {
      scale[c] = v;
    } else if (isa<AddOp>(op)) {
      shift[c] = v;
    } else if (isa<SubOp>(op)) {
      scale[c] = operandOnLeft ? 1.0f : -1.0f;
      shift[c] = operandOnLeft ? -v : v;
    } else {
      if (!operandOnLeft || v == 0.0f)
        return std::nullopt;
      scale[c] = 1.0f / v;
    }
  }
  return std::make_pair(scale, shift);
}

template <typename ArithOp> struct FoldArithmetic : OpRewritePattern<ArithOp> {
  using OpRewritePattern<ArithOp>::OpRewritePattern;
  LogicalResult matchAndRewrite(ArithOp op, PatternRewriter &rewriter) const override {
    if (auto side = channelsLastSide(op))
      return foldChannelsLast(op, *side, rewriter);
    if (succeeded(foldBackward(op, rewriter)))
      return success();
    return foldForward(op, rewriter);
  }

  /// The op after a linear op: into its weights and bias.
  LogicalResult foldBackward(ArithOp op, PatternRewriter &rewriter) const {
    Value lhs = op->getOperand(0), rhs = op->getOperand(1);
    bool linearOnLeft = isLinear(lhs);
    if (!linearOnLeft && !isLinear(rhs))
      return rewriter.notifyMatchFailure(op, "no operand is a Conv, ConvTranspose, Gemm or MatMul");
    Value linear = linearOnLeft ? lhs : rhs, other = linearOnLeft ? rhs : lhs;
    if (op->getResult(0).getType() != linear.getType())
      return rewriter.notifyMatchFailure(op, "the constant broadcasts the output to another shape");
    auto values = perChannel(other, linear.getType());
    if (!values)
      return rewriter.notifyMatchFailure(op,
                                         "the other operand is not a per-channel float32 constant");
    auto affine = affineOf(op, *values, linearOnLeft);
    if (!affine)
      return rewriter.notifyMatchFailure(op, "a constant divided by the output, or by zero");
    return foldChannelAffine(rewriter, op, linear, affine->first, affine->second);
  }

  /// The per-channel map `op` applies to its non-constant operand, which it
  /// returns; nothing when `op` is not such a map.
  static std::optional<std::tuple<Value, std::vector<float>, std::vector<float>>>
  channelMapOf(Operation *op) {
    if (!isa<MulOp, AddOp, SubOp, DivOp>(op))
      return std::nullopt;
    Value result = op->getResult(0);
    for (unsigned constantSide : {1u, 0u}) {
      Value x = op->getOperand(1 - constantSide), constant = op->getOperand(constantSide);
      if (x.getType() != result.getType())
        continue; // the constant broadcasts x: not per channel
      auto values = perChannel(constant, x.getType());
      if (!values)
        continue;
      auto map = affineOf(op, *values, /*operandOnLeft=*/constantSide == 1);
      if (!map)
        return std::nullopt;
      return std::make_tuple(x, map->first, map->second);
    }
    return std::nullopt;
  }

  /// The op (and the per-channel maps after it: x * s + t, then + u) before
  /// a Conv, Gemm or 2-D MatMul that is the chain's only user.
  LogicalResult foldForward(ArithOp op, PatternRewriter &rewriter) const {
    auto first = channelMapOf(op);
    if (!first)
      return rewriter.notifyMatchFailure(op, "no operand is a per-channel float32 constant of "
                                             "the input's shape (or it divides by the input)");
    auto [x, scale, shift] = *first;
    SmallVector<Operation *> chain{op};
    while (chain.back()->getResult(0).hasOneUse()) {
      Operation *next = *chain.back()->getResult(0).getUsers().begin();
      auto map = channelMapOf(next);
      if (!map || std::get<0>(*map) != chain.back()->getResult(0) ||
          std::get<1>(*map).size() != scale.size())
        break;
      for (size_t c = 0; c < scale.size(); ++c) {
        scale[c] *= std::get<1>(*map)[c];
        shift[c] = shift[c] * std::get<1>(*map)[c] + std::get<2>(*map)[c];
      }
      chain.push_back(next);
    }
    Value result = chain.back()->getResult(0);
    if (!result.hasOneUse() || !isa<ConvOp, GemmOp, MatMulOp>(*result.getUsers().begin()))
      return rewriter.notifyMatchFailure(op, "the only user is not a Conv, Gemm or MatMul");
    if (failed(foldAffineIntoFollowing(rewriter, chain.back(), x, scale, shift)))
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
    auto affine = affineOf(op, *values, side == 0);
    if (!affine)
      return rewriter.notifyMatchFailure(op, "a constant divided by the output, or by zero");
    return foldLastAxisAffine(rewriter, op, linear, affine->first, affine->second);
  }
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
    patterns.add<FoldArithmetic<MulOp>, FoldArithmetic<AddOp>, FoldArithmetic<SubOp>,
                 FoldArithmetic<DivOp>, FoldPadIntoConv>(ctx);
    if (failed(applyToCandidates<MulOp, AddOp, SubOp, DivOp, ConvOp>(getOperation(),
                                                                     std::move(patterns))))
      return signalPassFailure();
  }
};

} // namespace
