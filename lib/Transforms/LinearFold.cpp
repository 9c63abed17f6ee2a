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

#include <cmath>

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
  std::string full = weights::nameOf(v);
  StringRef name = full;
  // A weight folded twice keeps one suffix; the exporter makes names unique.
  name.consume_back("_folded");
  return (name.empty() ? std::string("weight") : name.str()) + suffix.str();
}


/// The output statistics of `folded` (a clone of `from` with the affine map
/// folded in): a BatchNorm's own, or `from`'s mapped through the affine.
void carryOutputStats(Operation *from, Operation *folded, Operation *affineOp,
                      ArrayRef<float> scale, ArrayRef<float> shift) {
  folded->removeAttr(weights::kOutputStatsAttr);
  if (auto bn = weights::batchNormOutputStats(affineOp)) {
    if (bn->mean.size() == scale.size())
      weights::setOutputStats(folded, *bn);
    return;
  }
  auto stats = weights::getOutputStats(from);
  if (!stats || stats->mean.size() != scale.size())
    return;
  for (size_t c = 0; c < scale.size(); ++c) {
    stats->mean[c] = stats->mean[c] * scale[c] + shift[c];
    stats->std[c] = stats->std[c] * std::fabs(scale[c]);
  }
  weights::setOutputStats(folded, *stats);
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
    newB.data[o] = float((b ? double(b->data[o]) * scale[o] : 0.0) + shift[o]);

  Operation *folded = rewriter.clone(*conv);
  folded->setOperand(
      1, weights::createInitializer(rewriter, conv.getLoc(), hint(conv.getW(), "_folded"), newW));
  folded->setOperand(2, weights::createInitializer(rewriter, conv.getLoc(),
                                                   hint(conv.getW(), "_folded_bias"), newB));
  carryOutputStats(conv, folded, affineOp, scale, shift);
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
    double cv = c ? double(c->data[c->size() == 1 ? 0 : col]) * beta : 0.0;
    newC.data[col] = float(cv * scale[col] + shift[col]);
  }
  Operation *folded = rewriter.clone(*gemm);
  folded->setOperand(
      1, weights::createInitializer(rewriter, gemm.getLoc(), hint(gemm.getB(), "_folded"), newW));
  folded->setOperand(2, weights::createInitializer(rewriter, gemm.getLoc(),
                                                   hint(gemm.getB(), "_folded_bias"), newC));
  carryOutputStats(gemm, folded, affineOp, scale, shift);
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

std::optional<std::vector<float>> refold::lastAxisValues(Value constant, Type outType,
                                                         int64_t channels) {
  auto type = dyn_cast<RankedTensorType>(outType);
  auto value = weights::getConstantF32(constant);
  if (!value)
    return std::nullopt;
  int64_t n = channels;
  if (type && type.getRank() >= 1 && !type.isDynamicDim(type.getRank() - 1)) {
    if (value->rank() > type.getRank())
      return std::nullopt;
    n = type.getDimSize(type.getRank() - 1);
  }
  if (n < 0 || (channels >= 0 && n != channels))
    return std::nullopt;
  for (int64_t i = 0; i + 1 < value->rank(); ++i)
    if (value->dim(i) != 1)
      return std::nullopt;
  if (value->size() == 1)
    return std::vector<float>(n, value->data[0]);
  if (value->size() != n)
    return std::nullopt;
  return value->data;
}

namespace {

/// MatMul(x, W) with W a 2-D float32 constant and `bias` (optional) per last axis.
struct MatMulWithBias {
  MatMulOp matmul;
  AddOp biasAdd; // may be null
  F32Tensor weight;
  std::vector<float> bias; // N entries
};

FailureOr<MatMulWithBias> readMatMulWithBias(Value linear, std::string &why) {
  MatMulWithBias m;
  Value product = linear;
  std::optional<std::vector<float>> bias;
  if (auto add = linear.getDefiningOp<AddOp>()) {
    for (int side = 0; side < 2 && !m.biasAdd; ++side)
      if (auto mm = add->getOperand(side).getDefiningOp<MatMulOp>()) {
        if (auto w = weights::getConstantF32(mm.getB()); w && w->rank() == 2)
          bias = refold::lastAxisValues(add->getOperand(1 - side), linear.getType(), w->dim(1));
        if (bias && add.getType() == mm.getType())
          m.biasAdd = add, product = mm;
      }
    if (!m.biasAdd)
      return why = "not a MatMul plus a constant bias along the last axis", failure();
    if (!m.biasAdd->hasOneUse())
      return why = "the bias Add has other users", failure();
  }
  m.matmul = product.getDefiningOp<MatMulOp>();
  if (!m.matmul)
    return why = "not produced by onnx.MatMul", failure();
  if (!m.matmul->hasOneUse())
    return why = "the MatMul's output has other users", failure();
  auto w = weights::getConstantF32(m.matmul.getB());
  if (!w || w->rank() != 2)
    return why = "the MatMul's B is not a 2-D float32 constant", failure();
  m.weight = std::move(*w);
  m.bias = bias ? *bias : std::vector<float>(m.weight.dim(1), 0.0f);
  if ((int64_t)m.bias.size() != m.weight.dim(1))
    return why = "the bias length differs from B's columns", failure();
  return m;
}

/// Writes MatMul(x, weight) + bias in place of `replaced`.
Value createMatMulWithBias(PatternRewriter &rewriter, Operation *replaced, Value x,
                           const F32Tensor &weight, ArrayRef<float> bias, MatMulOp original) {
  Location loc = original.getLoc();
  Value w = weights::createInitializer(rewriter, loc, hint(original.getB(), "_folded"), weight);
  F32Tensor biasTensor(llvm::ArrayRef<int64_t>{(int64_t)bias.size()});
  biasTensor.data.assign(bias.begin(), bias.end());
  Value b = weights::createInitializer(rewriter, loc, hint(original.getB(), "_folded_bias"),
                                       biasTensor);
  Type type = replaced->getResult(0).getType();
  auto matmul = rewriter.create<MatMulOp>(loc, type, x, w);
  if (auto name = original->getAttr(kNodeNameAttr))
    matmul->setAttr(kNodeNameAttr, name);
  auto add = rewriter.create<AddOp>(loc, type, matmul, b);
  if (auto names = replaced->getAttr(kOutputNamesAttr))
    add->setAttr(kOutputNamesAttr, names);
  return add;
}

} // namespace

LogicalResult refold::foldLastAxisAffine(PatternRewriter &rewriter, Operation *affineOp,
                                         Value linear, ArrayRef<float> scale,
                                         ArrayRef<float> shift) {
  std::string why;
  auto m = readMatMulWithBias(linear, why);
  if (failed(m))
    return rewriter.notifyMatchFailure(affineOp, why);
  int64_t k = m->weight.dim(0), n = m->weight.dim(1);
  if ((int64_t)scale.size() != n)
    return rewriter.notifyMatchFailure(affineOp, "channel count differs from the MatMul's columns");
  F32Tensor w = m->weight;
  for (int64_t r = 0; r < k; ++r)
    for (int64_t c = 0; c < n; ++c)
      w.data[r * n + c] *= scale[c];
  std::vector<float> bias(n);
  for (int64_t c = 0; c < n; ++c)
    bias[c] = float(double(m->bias[c]) * scale[c] + shift[c]);
  Value result = createMatMulWithBias(rewriter, affineOp, m->matmul.getA(), w, bias, m->matmul);
  rewriter.replaceOp(affineOp, result);
  if (m->biasAdd)
    rewriter.eraseOp(m->biasAdd);
  rewriter.eraseOp(m->matmul);
  return success();
}

LogicalResult refold::foldAffineIntoMatMul(PatternRewriter &rewriter, Operation *root, Value x,
                                           Operation *matmulOp, ArrayRef<float> scale,
                                           ArrayRef<float> shift) {
  auto matmul = cast<MatMulOp>(matmulOp);
  auto w = weights::getConstantF32(matmul.getB());
  if (!w || w->rank() != 2)
    return rewriter.notifyMatchFailure(root, "the MatMul's B is not a 2-D float32 constant");
  int64_t k = w->dim(0), n = w->dim(1);
  if ((int64_t)scale.size() != k)
    return rewriter.notifyMatchFailure(root, "channel count differs from B's rows");
  // A bias Add right after the MatMul absorbs shift * B.
  Operation *replaced = matmul;
  std::vector<float> bias(n, 0.0f);
  if (matmul->hasOneUse())
    if (auto add = dyn_cast<AddOp>(*matmul->getUsers().begin())) {
      Value other = add.getA() == matmul.getY() ? add.getB() : add.getA();
      if (auto values = lastAxisValues(other, add.getType(), n);
          values && add.getType() == matmul.getType())
        replaced = add, bias = *values;
    }
  F32Tensor newW = *w;
  std::vector<double> biasSum(bias.begin(), bias.end());
  for (int64_t r = 0; r < k; ++r)
    for (int64_t c = 0; c < n; ++c) {
      biasSum[c] += double(shift[r]) * w->data[r * n + c];
      newW.data[r * n + c] *= scale[r];
    }
  for (int64_t c = 0; c < n; ++c)
    bias[c] = float(biasSum[c]); // summed in double, rounded once
  rewriter.setInsertionPoint(replaced);
  Value result = createMatMulWithBias(rewriter, replaced, x, newW, bias, matmul);
  rewriter.replaceOp(replaced, result);
  if (replaced != matmul.getOperation())
    rewriter.eraseOp(matmul);
  return success();
}

namespace {

std::string hintFor(Value v, StringRef suffix) {
  std::string name = weights::nameOf(v);
  return (name.empty() ? std::string("weight") : name) + suffix.str();
}

} // namespace

LogicalResult refold::foldAffineIntoFollowing(PatternRewriter &rewriter, Operation *affineOp,
                                              Value x, ArrayRef<float> s, ArrayRef<float> t) {
  if (affineOp->getNumResults() != 1 || !affineOp->getResult(0).hasOneUse())
    return rewriter.notifyMatchFailure(affineOp, "the output has several users");
  Operation *user = *affineOp->getResult(0).getUsers().begin();
  int64_t channels = s.size();
  if (auto conv = dyn_cast<ConvOp>(user)) {
    if (conv.getX() != affineOp->getResult(0))
      return rewriter.notifyMatchFailure(affineOp, "the affine output is not the conv's input");
    if (conv.getAutoPad() && *conv.getAutoPad() != "NOTSET" && *conv.getAutoPad() != "VALID")
      return rewriter.notifyMatchFailure(affineOp, "the following conv pads (auto_pad)");
    // Zero padding only misses the shift: a pure scale keeps zeros zero.
    bool padded = padsInput(conv.getPads(), std::nullopt) &&
                  llvm::any_of(t, [](float v) { return v != 0.0f; });
    std::optional<weights::F32Tensor> borderMap;
    if (padded) {
      // Padded zeros would have to become -t/s: correct the border instead.
      std::string why;
      auto form = readConvForm(conv, why);
      if (failed(form))
        return rewriter.notifyMatchFailure(affineOp, "the following conv zero-pads and " + why);
      auto inShape = staticSpatialShape(conv.getX()), outShape = staticSpatialShape(conv.getY());
      if (!inShape || !outShape)
        return rewriter.notifyMatchFailure(
            affineOp, "the following conv zero-pads and the spatial shape is not static");
      if (weights::staticElements(conv.getY()) > weights::staticElements(conv.getX()))
        return rewriter.notifyMatchFailure(
            affineOp, "the following conv zero-pads and its border correction would cost more "
                "than the affine op");
      if ((int64_t)t.size() != form->inChannels())
        return rewriter.notifyMatchFailure(affineOp, "channel count differs from the conv's input");
      borderMap = borderCorrection(form->weight, form->group, t, form->stride, form->pads,
                                   (*inShape)[0], (*inShape)[1], (*outShape)[0],
                                   (*outShape)[1]);
    }
    auto w = weights::getConstantF32(conv.getW());
    if (!w || w->rank() < 3)
      return rewriter.notifyMatchFailure(affineOp, "the following conv's weight is not constant");
    int64_t out = w->dim(0), inPerGroup = w->dim(1), group = conv.getGroup().value_or(1);
    if (inPerGroup * group != channels)
      return rewriter.notifyMatchFailure(affineOp, "channel count differs from the conv's input");
    std::vector<float> bias(out, 0.0f);
    if (!isNoneValue(conv.getB())) {
      auto b = weights::getConstantF32(conv.getB());
      if (!b || b->size() != out)
        return rewriter.notifyMatchFailure(affineOp, "the following conv's bias is not constant");
      bias = b->data;
    }
    int64_t kernel = w->size() / (out * inPerGroup), outPerGroup = out / group;
    std::vector<double> biasSum(bias.begin(), bias.end());
    weights::F32Tensor newW = *w;
    for (int64_t o = 0; o < out; ++o)
      for (int64_t j = 0; j < inPerGroup; ++j) {
        int64_t i = (o / outPerGroup) * inPerGroup + j;
        for (int64_t k = 0; k < kernel; ++k) {
          float &v = newW.data[(o * inPerGroup + j) * kernel + k];
          biasSum[o] += double(v) * t[i];
          v *= s[i];
        }
      }
    weights::F32Tensor newB(llvm::ArrayRef<int64_t>{out});
    for (int64_t o = 0; o < out; ++o)
      newB.data[o] = float(biasSum[o]); // summed in double, rounded once
    Value wv = weights::createInitializer(rewriter, conv.getLoc(),
                                          hintFor(conv.getW(), "_folded"), newW);
    Value bv = weights::createInitializer(rewriter, conv.getLoc(),
                                          hintFor(conv.getW(), "_folded_bias"), newB);
    rewriter.modifyOpInPlace(conv, [&] {
      conv.getXMutable().assign(x);
      conv.getWMutable().assign(wv);
      conv.getBMutable().assign(bv);
    });
    if (borderMap) {
      rewriter.setInsertionPointAfter(conv);
      Value corrected = createAddConstant(rewriter, conv.getLoc(), conv.getY(), *borderMap,
                                          weights::nameOf(conv.getY()), conv);
      rewriter.replaceAllUsesExcept(conv.getY(), corrected, corrected.getDefiningOp());
      conv->removeAttr(kOutputNamesAttr);
    }
    rewriter.eraseOp(affineOp);
    return success();
  }
  // Gemm (no transA) or 2-D MatMul: the affine channels are A's columns, B's rows.
  Value a, b, c;
  float alpha = 1, beta = 1;
  bool transB = false;
  if (auto gemm = dyn_cast<GemmOp>(user)) {
    if (gemm.getA() != affineOp->getResult(0) || gemm.getTransA().value_or(0))
      return rewriter.notifyMatchFailure(affineOp, "the affine output is not the Gemm's untransposed A");
    a = gemm.getA(), b = gemm.getB(), c = gemm.getC();
    alpha = gemm.getAlpha() ? gemm.getAlpha()->convertToFloat() : 1.0f;
    beta = gemm.getBeta() ? gemm.getBeta()->convertToFloat() : 1.0f;
    transB = gemm.getTransB().value_or(0) != 0;
  } else if (auto matmul = dyn_cast<MatMulOp>(user)) {
    auto type = dyn_cast<RankedTensorType>(matmul.getA().getType());
    if (matmul.getA() != affineOp->getResult(0) || !type || type.getRank() != 2)
      return rewriter.notifyMatchFailure(affineOp, "the affine output is not a 2-D MatMul's A");
    a = matmul.getA(), b = matmul.getB();
  } else {
    return rewriter.notifyMatchFailure(affineOp, "the user is not a Conv, Gemm or MatMul");
  }
  auto w = weights::getConstantF32(b);
  if (!w || w->rank() != 2)
    return rewriter.notifyMatchFailure(affineOp, "B is not a 2-D float32 constant");
  int64_t k = transB ? w->dim(1) : w->dim(0), n = transB ? w->dim(0) : w->dim(1);
  if (k != channels)
    return rewriter.notifyMatchFailure(affineOp, "channel count differs from B's rows");
  std::optional<weights::F32Tensor> cValue;
  if (c && !isNoneValue(c)) {
    cValue = weights::getConstantF32(c);
    if (!cValue || !(cValue->size() == 1 || (cValue->size() == n && cValue->shape.back() == n)))
      return rewriter.notifyMatchFailure(affineOp, "C is not a constant row vector or scalar");
  }
  // Y = alpha (A s + t) B + beta C = alpha A (s B) + (alpha t B + beta C).
  weights::F32Tensor newW = *w;
  weights::F32Tensor newC(llvm::ArrayRef<int64_t>{n});
  for (int64_t col = 0; col < n; ++col) {
    double bias = cValue ? beta * cValue->data[cValue->size() == 1 ? 0 : col] : 0.0;
    for (int64_t r = 0; r < k; ++r) {
      float &v = newW.data[transB ? col * k + r : r * n + col];
      bias += alpha * double(v) * t[r];
      v *= s[r];
    }
    newC.data[col] = float(bias);
  }
  Value wv = weights::createInitializer(rewriter, user->getLoc(), hintFor(b, "_folded"), newW);
  Value cv =
      weights::createInitializer(rewriter, user->getLoc(), hintFor(b, "_folded_bias"), newC);
  auto gemm = rewriter.create<GemmOp>(
      user->getLoc(), user->getResult(0).getType(), x, wv, cv,
      alpha == 1.0f ? FloatAttr() : rewriter.getF32FloatAttr(alpha), FloatAttr(), IntegerAttr(),
      transB ? rewriter.getI64IntegerAttr(1) : IntegerAttr());
  for (StringRef attr : {kNodeNameAttr, kOutputNamesAttr})
    if (auto value = user->getAttr(attr))
      gemm->setAttr(attr, value);
  rewriter.replaceOp(user, gemm->getResults());
  rewriter.eraseOp(affineOp);
  return success();
}

FailureOr<refold::ChannelAffine> refold::batchNormAffine(BatchNormalizationOp bn,
                                                          std::string &why) {
  if (bn.getTrainingMode().value_or(0) != 0) // the verifier forbids it; generic forms keep it
    return why = "training mode normalizes with the batch's statistics", failure();
  if (bn.getSpatial().value_or(1) == 0)
    return why = "spatial=0 keeps statistics per activation, not per channel", failure();
  auto gamma = weights::getConstantF32(bn.getScale());
  auto beta = weights::getConstantF32(bn.getB());
  auto mean = weights::getConstantF32(bn.getInputMean());
  auto var = weights::getConstantF32(bn.getInputVar());
  if (!gamma || !beta || !mean || !var)
    return why = "parameters are not float32 constants", failure();
  int64_t n = gamma->size();
  if (beta->size() != n || mean->size() != n || var->size() != n)
    return why = "parameters differ in length", failure();
  double eps = bn.getEpsilon() ? bn.getEpsilon()->convertToDouble() : 1e-5;
  ChannelAffine affine;
  for (int64_t c = 0; c < n; ++c) {
    double s = gamma->data[c] / std::sqrt(double(var->data[c]) + eps);
    affine.scale.push_back(float(s));
    affine.shift.push_back(float(beta->data[c] - mean->data[c] * s));
  }
  return affine;
}

std::optional<refold::ChannelAffine>
refold::arithmeticAffine(Operation *op, ArrayRef<float> values, bool operandOnLeft) {
  size_t n = values.size();
  ChannelAffine affine{std::vector<float>(n, 1.0f), std::vector<float>(n, 0.0f)};
  for (size_t c = 0; c < n; ++c) {
    float v = values[c];
    if (isa<MulOp>(op)) {
      affine.scale[c] = v;
    } else if (isa<AddOp>(op)) {
      affine.shift[c] = v;
    } else if (isa<SubOp>(op)) {
      affine.scale[c] = operandOnLeft ? 1.0f : -1.0f;
      affine.shift[c] = operandOnLeft ? -v : v;
    } else if (isa<DivOp>(op)) {
      if (!operandOnLeft || v == 0.0f)
        return std::nullopt;
      affine.scale[c] = float(1.0 / double(v));
    } else {
      return std::nullopt;
    }
  }
  return affine;
}

FailureOr<refold::ChannelMap> refold::readChannelMap(Operation *op, std::string &why) {
  if (auto bn = dyn_cast_or_null<BatchNormalizationOp>(op)) {
    auto affine = batchNormAffine(bn, why);
    if (failed(affine))
      return failure();
    return ChannelMap{bn.getX(), std::move(*affine)};
  }
  if (!isa_and_nonnull<MulOp, AddOp, SubOp, DivOp>(op))
    return why = "not a BatchNormalization, Mul, Add, Sub or Div", failure();
  Value result = op->getResult(0);
  auto type = dyn_cast<RankedTensorType>(result.getType());
  if (!type || type.getRank() < 2 || type.isDynamicDim(1))
    return why = "the output has no static channel count", failure();
  for (unsigned constantSide : {1u, 0u}) {
    Value x = op->getOperand(1 - constantSide), constant = op->getOperand(constantSide);
    if (x.getType() != result.getType())
      continue; // the constant broadcasts x: not per channel
    auto values = weights::channelValues(constant, type.getRank(), type.getDimSize(1));
    if (!values)
      continue;
    auto affine = arithmeticAffine(op, *values, /*operandOnLeft=*/constantSide == 1);
    if (!affine)
      return why = "a constant divided by the tensor, or a division by zero", failure();
    return ChannelMap{x, std::move(*affine)};
  }
  return why = "the other operand is not a per-channel float32 constant", failure();
}
