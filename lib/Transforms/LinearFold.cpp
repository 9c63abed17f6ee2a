//===- LinearFold.cpp - fold a per-channel affine map into a linear op ------===//
//
// y = L(x) followed by z = y * s[c] + t[c] per output channel c becomes one
// linear op: its weight is scaled by s along the output channels and t joins
// its bias (reparam-math.md section 1). Used by onnx-fold-batchnorm (BN is
// such a map) and onnx-fold-affine (Mul/Add/Sub/Div by constants).
//
//===----------------------------------------------------------------------===//

#include "refold/Transforms/LinearFold.h"

#include "refold/Dialect/ONNX/ONNXOps.h"
#include "refold/Transforms/ConvForms.h"
#include "refold/Transforms/WeightUtils.h"

using namespace mlir;
using namespace refold::ir;
using refold::weights::F32Tensor;
namespace weights = refold::weights;

namespace {

/// The new op computes what `affineOp` computed: it takes its output names.
void adoptOutputNames(Operation *newOp, Operation *affineOp) {
  if (auto names = affineOp->getAttr(kOutputNamesAttr))
    newOp->setAttr(kOutputNamesAttr, names);
  else
    newOp->removeAttr(kOutputNamesAttr);
  newOp->removeAttr(kValueInfoAttr);
  newOp->getResult(0).setType(affineOp->getResult(0).getType());
}

std::string hint(Value v, StringRef suffix) {
  std::string name = weights::nameOf(v);
  return (name.empty() ? std::string("weight") : name) + suffix.str();
}

template <typename ConvLike>
LogicalResult foldIntoConv(PatternRewriter &rewriter, Operation *affineOp, Value linear,
                           ArrayRef<float> scale, ArrayRef<float> shift) {
  auto conv = linear.getDefiningOp<ConvLike>();
  if (!conv)
    return rewriter.notifyMatchFailure(affineOp,
                                       "input is not produced by " + ConvLike::getOperationName());
  if (!conv->hasOneUse())
    return rewriter.notifyMatchFailure(affineOp, "the convolution's output has other users");
  auto w = weights::getConstantF32(conv.getW());
  if (!w || w->rank() < 3)
    return rewriter.notifyMatchFailure(affineOp, "the weight is not a float32 constant");
  bool hasBias = !isNoneValue(conv.getB());
  std::optional<F32Tensor> b;
  if (hasBias && !(b = weights::getConstantF32(conv.getB())))
    return rewriter.notifyMatchFailure(affineOp, "the bias is not a float32 constant");
  constexpr bool transposed = std::is_same_v<ConvLike, ConvTransposeOp>;
  int64_t group = conv.getGroup().value_or(1);
  int64_t outChannels = transposed ? w->dim(1) * group : w->dim(0);
  if ((int64_t)scale.size() != outChannels)
    return rewriter.notifyMatchFailure(affineOp, "channel count differs from the convolution's");
  if (b && b->size() != outChannels)
    return rewriter.notifyMatchFailure(affineOp, "bias size differs from the output channels");

  F32Tensor newW = *w;
  int64_t kernel = 1;
  for (int64_t i = 2; i < w->rank(); ++i)
    kernel *= w->dim(i);
  if (!transposed) {
    for (int64_t o = 0; o < outChannels; ++o)
      for (int64_t j = 0, n = w->dim(1) * kernel; j < n; ++j)
        newW.data[o * n + j] *= scale[o];
  } else {
    // Weight [I, O/g, k...]: row i of group i / (I/g) feeds output channel
    // group * (O/g) + j.
    int64_t inPerGroup = w->dim(0) / group, outPerGroup = w->dim(1);
    for (int64_t i = 0; i < w->dim(0); ++i)
      for (int64_t j = 0; j < outPerGroup; ++j) {
        float s = scale[(i / inPerGroup) * outPerGroup + j];
        float *p = newW.data.data() + (i * outPerGroup + j) * kernel;
        for (int64_t k = 0; k < kernel; ++k)
          p[k] *= s;
      }
  }
  F32Tensor newB(llvm::ArrayRef<int64_t>{outChannels});
  for (int64_t o = 0; o < outChannels; ++o)
    newB.data[o] = (b ? b->data[o] * scale[o] : 0.0f) + shift[o];

  Operation *folded = rewriter.clone(*conv);
  folded->setOperand(
      1, weights::createInitializer(rewriter, conv.getLoc(), hint(conv.getW(), "_folded"), newW));
  folded->setOperand(2, weights::createInitializer(rewriter, conv.getLoc(),
                                                   hint(conv.getW(), "_folded_bias"), newB));
  adoptOutputNames(folded, affineOp);
  rewriter.replaceOp(affineOp, folded->getResults());
  rewriter.eraseOp(conv);
  return success();
}

LogicalResult foldIntoGemm(PatternRewriter &rewriter, Operation *affineOp, Value linear,
                           ArrayRef<float> scale, ArrayRef<float> shift) {
  auto gemm = linear.getDefiningOp<GemmOp>();
  if (!gemm)
    return rewriter.notifyMatchFailure(affineOp, "input is not produced by onnx.Gemm");
  if (!gemm->hasOneUse())
    return rewriter.notifyMatchFailure(affineOp, "the Gemm's output has other users");
  auto w = weights::getConstantF32(gemm.getB());
  if (!w || w->rank() != 2)
    return rewriter.notifyMatchFailure(affineOp, "B is not a 2-D float32 constant");
  bool transB = gemm.getTransB().value_or(0) != 0;
  int64_t n = transB ? w->dim(0) : w->dim(1), k = transB ? w->dim(1) : w->dim(0);
  if ((int64_t)scale.size() != n)
    return rewriter.notifyMatchFailure(affineOp, "channel count differs from the Gemm's columns");
  float alpha = gemm.getAlpha() ? gemm.getAlpha()->convertToFloat() : 1.0f;
  float beta = gemm.getBeta() ? gemm.getBeta()->convertToFloat() : 1.0f;
  std::optional<F32Tensor> c;
  if (!isNoneValue(gemm.getC())) {
    c = weights::getConstantF32(gemm.getC());
    // Only a C that is the same for every row folds into a per-column bias.
    if (!c || !(c->size() == 1 || (c->size() == n && c->shape.back() == n)))
      return rewriter.notifyMatchFailure(affineOp, "C is not a constant row vector or scalar");
  }
  F32Tensor newW = *w;
  for (int64_t col = 0; col < n; ++col)
    for (int64_t r = 0; r < k; ++r)
      newW.data[transB ? col * k + r : r * n + col] *= alpha * scale[col];
  F32Tensor newC(llvm::ArrayRef<int64_t>{n});
  for (int64_t col = 0; col < n; ++col) {
    float cv = c ? c->data[c->size() == 1 ? 0 : col] * beta : 0.0f;
    newC.data[col] = cv * scale[col] + shift[col];
  }
  Operation *folded = rewriter.clone(*gemm);
  folded->setOperand(
      1, weights::createInitializer(rewriter, gemm.getLoc(), hint(gemm.getB(), "_folded"), newW));
  folded->setOperand(2, weights::createInitializer(rewriter, gemm.getLoc(),
                                                   hint(gemm.getB(), "_folded_bias"), newC));
  // alpha and beta are now inside B and C.
  folded->removeAttr("alpha");
  folded->removeAttr("beta");
  adoptOutputNames(folded, affineOp);
  rewriter.replaceOp(affineOp, folded->getResults());
  rewriter.eraseOp(gemm);
  return success();
}

LogicalResult foldIntoMatMul(PatternRewriter &rewriter, Operation *affineOp, Value linear,
                             ArrayRef<float> scale, ArrayRef<float> shift) {
  auto matmul = linear.getDefiningOp<MatMulOp>();
  if (!matmul)
    return rewriter.notifyMatchFailure(affineOp, "input is not produced by onnx.MatMul");
  if (!matmul->hasOneUse())
    return rewriter.notifyMatchFailure(affineOp, "the MatMul's output has other users");
  auto aType = dyn_cast<RankedTensorType>(matmul.getA().getType());
  // BN normalizes axis 1; that is MatMul's output column axis only in 2-D.
  if (!aType || aType.getRank() != 2)
    return rewriter.notifyMatchFailure(affineOp, "the MatMul is not 2-D");
  auto w = weights::getConstantF32(matmul.getB());
  if (!w || w->rank() != 2)
    return rewriter.notifyMatchFailure(affineOp, "B is not a 2-D float32 constant");
  int64_t k = w->dim(0), n = w->dim(1);
  if ((int64_t)scale.size() != n)
    return rewriter.notifyMatchFailure(affineOp, "channel count differs from the MatMul's columns");
  F32Tensor newW = *w;
  for (int64_t r = 0; r < k; ++r)
    for (int64_t col = 0; col < n; ++col)
      newW.data[r * n + col] *= scale[col];
  F32Tensor newC(llvm::ArrayRef<int64_t>{n});
  newC.data = shift;
  Value wv =
      weights::createInitializer(rewriter, matmul.getLoc(), hint(matmul.getB(), "_folded"), newW);
  Value cv = weights::createInitializer(rewriter, matmul.getLoc(),
                                        hint(matmul.getB(), "_folded_bias"), newC);
  auto gemm =
      rewriter.create<GemmOp>(matmul.getLoc(), affineOp->getResult(0).getType(), matmul.getA(), wv,
                              cv, FloatAttr(), FloatAttr(), IntegerAttr(), IntegerAttr());
  if (auto name = matmul->getAttr(kNodeNameAttr))
    gemm->setAttr(kNodeNameAttr, name);
  adoptOutputNames(gemm, affineOp);
  rewriter.replaceOp(affineOp, gemm->getResults());
  rewriter.eraseOp(matmul);
  return success();
}

/// An AveragePool counting its padding is a depthwise conv: the affine map
/// makes it one with scaled taps and a bias.
LogicalResult foldIntoPool(PatternRewriter &rewriter, Operation *affineOp, Value linear,
                           ArrayRef<float> scale, ArrayRef<float> shift) {
  Operation *pool = linear.getDefiningOp();
  if (!pool->hasOneUse())
    return rewriter.notifyMatchFailure(affineOp, "the AveragePool's output has other users");
  std::string why;
  auto form = refold::readConvForm(pool, why);
  if (failed(form))
    return rewriter.notifyMatchFailure(affineOp, why);
  if ((int64_t)scale.size() != form->outChannels())
    return rewriter.notifyMatchFailure(affineOp, "channel count differs from the pool's");
  F32Tensor weight = form->weight;
  int64_t kernel = form->kh() * form->kw();
  for (int64_t c = 0; c < form->outChannels(); ++c)
    for (int64_t k = 0; k < kernel; ++k)
      weight.data[c * kernel + k] *= scale[c];
  Value conv = refold::createConv(rewriter, pool->getLoc(), form->input, weight, shift,
                                  form->group, form->stride, form->pads,
                                  affineOp->getResult(0).getType(), weights::nameOf(linear),
                                  pool, affineOp);
  rewriter.replaceOp(affineOp, conv);
  rewriter.eraseOp(pool);
  if (form->pad && form->pad->use_empty())
    rewriter.eraseOp(form->pad);
  return success();
}

} // namespace

LogicalResult refold::foldChannelAffine(PatternRewriter &rewriter, Operation *affineOp,
                                        Value linear, ArrayRef<float> scale,
                                        ArrayRef<float> shift) {
  Operation *producer = linear.getDefiningOp();
  if (isa_and_nonnull<ConvOp>(producer))
    return foldIntoConv<ConvOp>(rewriter, affineOp, linear, scale, shift);
  if (isa_and_nonnull<ConvTransposeOp>(producer))
    return foldIntoConv<ConvTransposeOp>(rewriter, affineOp, linear, scale, shift);
  if (isa_and_nonnull<GemmOp>(producer))
    return foldIntoGemm(rewriter, affineOp, linear, scale, shift);
  if (isa_and_nonnull<MatMulOp>(producer))
    return foldIntoMatMul(rewriter, affineOp, linear, scale, shift);
  if (isa_and_nonnull<AveragePoolOp>(producer))
    return foldIntoPool(rewriter, affineOp, linear, scale, shift);
  return rewriter.notifyMatchFailure(
      affineOp, "input is not produced by Conv, ConvTranspose, Gemm, MatMul or AveragePool");
}
