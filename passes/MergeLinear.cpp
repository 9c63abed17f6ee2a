//===- MergeLinear.cpp - consecutive linear layers -> one -------------------===//
//
// y = (x W1 + b1) W2 + b2 = x (W1 W2) + (b1 W2 + b2) (reparam-math.md section
// 6): a ViT MLP whose GELU was removed (UPDP) is one linear layer. A "linear
// stage" is MatMul(x, W) with a constant 2-D W, optionally followed by
// Add(bias) with a constant row vector (torch's Linear on 3-D tokens), or a
// Gemm with constant B and C, untransposed A.
//
// Merging W1 [m, h] and W2 [h, n] costs m*n MACs per row instead of
// h*(m + n): it pays only when m*n < h*(m + n), so merge-policy=profitable
// checks that. A channels-last Linear between two Transposes (ConvNeXt)
// becomes a 1x1 conv.
//
//===----------------------------------------------------------------------===//

#include "refold/Passes/Explain.h"
#include "refold/Passes/Passes.h"
#include "refold/Transforms/WeightUtils.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/PatternMatch.h"

namespace refold {
#define GEN_PASS_DEF_MERGELINEAR
#include "refold/Passes/Passes.h.inc"
} // namespace refold

using namespace mlir;
using namespace refold;
using namespace refold::ir;
using weights::F32Tensor;

namespace {

/// out = in * weight [k, n] + bias [n] (bias zero when absent).
struct Stage {
  Value in, out;
  F32Tensor weight;
  std::vector<float> bias;
  SmallVector<Operation *, 2> ops; // producer first
};

/// The stage whose last op produces `value`, if it is one.
FailureOr<Stage> readStage(Value value, std::string &why) {
  Stage stage;
  stage.out = value;
  Operation *def = value.getDefiningOp();
  std::optional<F32Tensor> addBias;
  if (auto add = dyn_cast_or_null<AddOp>(def)) {
    // MatMul + Add(bias): the bias is the constant operand.
    Value mm = add.getA().getDefiningOp<MatMulOp>() ? add.getA() : add.getB();
    Value other = mm == add.getA() ? add.getB() : add.getA();
    if (!mm.getDefiningOp<MatMulOp>())
      return why = "not a linear layer", failure();
    addBias = weights::getConstantF32(other);
    if (!addBias || addBias->rank() != 1)
      return why = "the bias is not a constant vector", failure();
    if (!mm.hasOneUse())
      return why = "the MatMul's output has other users", failure();
    stage.ops.push_back(mm.getDefiningOp());
    stage.ops.push_back(add);
    def = mm.getDefiningOp();
  }
  if (auto matmul = dyn_cast_or_null<MatMulOp>(def)) {
    auto w = weights::getConstantF32(matmul.getB());
    if (!w || w->rank() != 2)
      return why = "the weight is not a 2-D float32 constant", failure();
    stage.in = matmul.getA();
    stage.weight = *w;
    stage.bias.assign(w->dim(1), 0.0f);
    if (addBias) {
      if (addBias->size() != w->dim(1))
        return why = "the bias does not match the weight", failure();
      stage.bias = addBias->data;
    } else {
      stage.ops.push_back(matmul);
    }
    return stage;
  }
  if (auto gemm = dyn_cast_or_null<GemmOp>(def)) {
    if (gemm.getTransA().value_or(0))
      return why = "the Gemm transposes A", failure();
    auto w = weights::getConstantF32(gemm.getB());
    if (!w || w->rank() != 2)
      return why = "the weight is not a 2-D float32 constant", failure();
    bool transB = gemm.getTransB().value_or(0) != 0;
    float alpha = gemm.getAlpha() ? gemm.getAlpha()->convertToFloat() : 1.0f;
    float beta = gemm.getBeta() ? gemm.getBeta()->convertToFloat() : 1.0f;
    int64_t k = transB ? w->dim(1) : w->dim(0), n = transB ? w->dim(0) : w->dim(1);
    stage.weight = F32Tensor(llvm::ArrayRef<int64_t>{k, n});
    for (int64_t r = 0; r < k; ++r)
      for (int64_t c = 0; c < n; ++c)
        stage.weight.data[r * n + c] = alpha * w->data[transB ? c * k + r : r * n + c];
    stage.bias.assign(n, 0.0f);
    if (!isNoneValue(gemm.getC())) {
      auto c = weights::getConstantF32(gemm.getC());
      if (!c || !(c->size() == 1 || (c->size() == n && c->shape.back() == n)))
        return why = "C is not a constant row vector or scalar", failure();
      for (int64_t col = 0; col < n; ++col)
        stage.bias[col] = beta * c->data[c->size() == 1 ? 0 : col];
    }
    stage.in = gemm.getA();
    stage.ops.push_back(gemm);
    return stage;
  }
  return why = "not a linear layer", failure();
}

struct MergeStages : RewritePattern {
  MergeStages(MLIRContext *ctx, StringRef policy)
      : RewritePattern(MatchAnyOpTypeTag(), /*benefit=*/1, ctx), policy(policy.str()) {}

  LogicalResult matchAndRewrite(Operation *op, PatternRewriter &rewriter) const override {
    if (!isa<MatMulOp, GemmOp, AddOp>(op))
      return failure();
    if (policy == "never")
      return rewriter.notifyMatchFailure(op, "merge policy is never");
    std::string why;
    auto second = readStage(op->getResult(0), why);
    if (failed(second))
      return rewriter.notifyMatchFailure(op, why);
    // An Add whose MatMul is the end of a larger stage is matched from there.
    if (isa<MatMulOp>(op) && op->hasOneUse() && isa<AddOp>(*op->getUsers().begin()))
      if (succeeded(readStage((*op->getUsers().begin())->getResult(0), why)))
        return rewriter.notifyMatchFailure(op, "the MatMul is merged together with its bias Add");
    auto first = readStage(second->in, why);
    if (failed(first))
      return rewriter.notifyMatchFailure(op, "the input is " + why);
    if (!first->out.hasOneUse())
      return rewriter.notifyMatchFailure(op, "the first layer's output has other users");
    int64_t m = first->weight.dim(0), h = first->weight.dim(1), n = second->weight.dim(1);
    if (second->weight.dim(0) != h)
      return rewriter.notifyMatchFailure(op, "the layers do not chain");
    if (policy == "profitable" && m * n >= h * (m + n))
      return rewriter.notifyMatchFailure(op, "the merged layer would cost more (m*n >= h*(m+n))");

    F32Tensor weight(llvm::ArrayRef<int64_t>{m, n});
    for (int64_t r = 0; r < m; ++r)
      for (int64_t j = 0; j < h; ++j) {
        float a = first->weight.data[r * h + j];
        for (int64_t c = 0; c < n; ++c)
          weight.data[r * n + c] += a * second->weight.data[j * n + c];
      }
    F32Tensor bias(llvm::ArrayRef<int64_t>{n});
    for (int64_t c = 0; c < n; ++c) {
      double sum = second->bias[c];
      for (int64_t j = 0; j < h; ++j)
        sum += double(first->bias[j]) * second->weight.data[j * n + c];
      bias.data[c] = float(sum);
    }
    std::string base = weights::nameOf(op->getResult(0));
    if (base.empty())
      base = "merged";
    Value w = weights::createInitializer(rewriter, op->getLoc(), base + "_weight", weight);
    Value b = weights::createInitializer(rewriter, op->getLoc(), base + "_bias", bias);
    Type resultType = op->getResult(0).getType();
    auto inType = dyn_cast<RankedTensorType>(first->in.getType());
    Operation *merged;
    if (inType && inType.getRank() == 2) {
      merged = rewriter.create<GemmOp>(op->getLoc(), resultType, first->in, w, b, FloatAttr(),
                                       FloatAttr(), IntegerAttr(), IntegerAttr());
    } else {
      // Tokens of any rank: MatMul then the bias.
      auto mmType = resultType;
      auto matmul = rewriter.create<MatMulOp>(op->getLoc(), mmType, first->in, w);
      merged = rewriter.create<AddOp>(op->getLoc(), resultType, matmul.getY(), b);
    }
    for (StringRef attr : {kNodeNameAttr, kOutputNamesAttr})
      if (auto value = op->getAttr(attr))
        merged->setAttr(attr, value);
    rewriter.replaceOp(op, merged->getResults());
    for (Operation *dead : llvm::reverse(second->ops))
      if (dead != op && dead->use_empty())
        rewriter.eraseOp(dead);
    for (Operation *dead : llvm::reverse(first->ops))
      if (dead->use_empty())
        rewriter.eraseOp(dead);
    return success();
  }

  std::string policy;
};

/// Transpose(NCHW -> NHWC) -> linear stage -> Transpose(NHWC -> NCHW) is a
/// 1x1 conv: out[n,o,h,w] = sum_c W[c,o] x[n,c,h,w] + b[o] (ConvNeXt's
/// channels-last Linear). As a conv it folds and merges with its neighbours.
struct ChannelsLastLinearToConv : OpRewritePattern<TransposeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(TransposeOp back, PatternRewriter &rewriter) const override {
    auto perm = back.getPerm();
    if (!perm || ArrayRef<int64_t>(*perm) != ArrayRef<int64_t>{0, 3, 1, 2})
      return rewriter.notifyMatchFailure(back, "not a channels-last to NCHW transpose");
    std::string why;
    auto stage = readStage(back.getData(), why);
    if (failed(stage))
      return rewriter.notifyMatchFailure(back, "the input is " + why);
    if (!back.getData().hasOneUse())
      return rewriter.notifyMatchFailure(back, "the linear output has other users");
    auto forward = stage->in.getDefiningOp<TransposeOp>();
    auto forwardPerm = forward ? forward.getPerm() : std::nullopt;
    if (!forward || !forwardPerm || ArrayRef<int64_t>(*forwardPerm) != ArrayRef<int64_t>{0, 2, 3, 1})
      return rewriter.notifyMatchFailure(back, "the linear input is not an NCHW to NHWC transpose");
    if (!forward->hasOneUse())
      return rewriter.notifyMatchFailure(back, "the channels-last input has other users");
    int64_t c = stage->weight.dim(0), o = stage->weight.dim(1);
    F32Tensor weight(llvm::ArrayRef<int64_t>{o, c, 1, 1});
    for (int64_t i = 0; i < c; ++i)
      for (int64_t j = 0; j < o; ++j)
        weight.data[j * c + i] = stage->weight.data[i * o + j];
    F32Tensor bias(llvm::ArrayRef<int64_t>{o});
    bias.data = stage->bias;
    std::string base = weights::nameOf(back.getTransposed());
    if (base.empty())
      base = "pointwise";
    Value w = weights::createInitializer(rewriter, back.getLoc(), base + "_weight", weight);
    Value b = weights::createInitializer(rewriter, back.getLoc(), base + "_bias", bias);
    OperationState state(back.getLoc(), ConvOp::getOperationName());
    state.addOperands({forward.getData(), w, b});
    state.addTypes(back.getType());
    state.addAttribute("kernel_shape", rewriter.getDenseI64ArrayAttr({1, 1}));
    for (StringRef attr : {kNodeNameAttr, kOutputNamesAttr})
      if (auto value = back->getAttr(attr))
        state.addAttribute(attr, value);
    Operation *conv = rewriter.create(state);
    rewriter.replaceOp(back, conv->getResults());
    for (Operation *dead : llvm::reverse(stage->ops))
      if (dead->use_empty())
        rewriter.eraseOp(dead);
    if (forward->use_empty())
      rewriter.eraseOp(forward);
    return success();
  }
};

struct MergeLinearPass : refold::impl::MergeLinearBase<MergeLinearPass> {
  using MergeLinearBase::MergeLinearBase;

  void runOnOperation() override {
    MLIRContext *ctx = &getContext();
    RewritePatternSet patterns(ctx);
    patterns.add<MergeStages>(ctx, mergePolicy);
    patterns.add<ChannelsLastLinearToConv>(ctx);
    // Stage ends (MatMul, Gemm, Add) are the candidates; merged stages are
    // revisited through their users.
    if (failed(applyToCandidates<MatMulOp, GemmOp, AddOp, TransposeOp>(getOperation(),
                                                                      std::move(patterns))))
      return signalPassFailure();
  }
};

} // namespace
