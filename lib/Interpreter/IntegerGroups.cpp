//===- IntegerGroups.cpp - QDQ groups run as integer arithmetic --------------===//
//
// A QDQ model spells an integer layer as DequantizeLinear -> Conv/Gemm/
// MatMul (-> Relu/Clip) -> QuantizeLinear. Read literally, the layer sums
// float products, whose rounding decides outputs that lie on a half step;
// onnxruntime (QLinearConv) and refold's C sum the integers exactly and
// requantize once: round_half_even(float(acc + bias) * float(x_scale *
// w_scale / y_scale)) + zero point. With RunOptions::integerQDQ the
// interpreter does the same at such a group's op, and returns the float the
// QuantizeLinear turns back into that integer ((q - zp) * y_scale), so that
// its outputs are those of the deployed integer code, bit for bit. A product
// read in float (a classifier's logits) gives float(acc + bias) * float(
// x_scale * w_scale); DequantizeLinear -> GlobalAveragePool (-> Flatten) ->
// QuantizeLinear sums integers too. Anything else runs as written.
//
//===----------------------------------------------------------------------===//

#include "KernelSupport.h"

#include "refold/Dialect/ONNX/ONNXOps.h"
#include "refold/Interpreter/Interpreter.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"

#include <cmath>

using namespace mlir;

namespace refold::interp {

namespace {

bool isType(Operation *op, llvm::StringRef type) { return op && ir::opTypeOf(op) == type; }

Operation *onlyUser(Value v) {
  if (!v.hasOneUse())
    return nullptr;
  Operation *user = *v.getUsers().begin();
  return user->hasTrait<OpTrait::IsTerminator>() ? nullptr : user;
}

Attribute nodeAttr(Operation *op, llvm::StringRef name) {
  if (auto node = dyn_cast<ir::NodeOp>(op)) {
    auto attrs = node.getNodeAttrs();
    return attrs ? attrs->get(name) : Attribute();
  }
  return op->getAttr(name);
}

int64_t intAttr(Operation *op, llvm::StringRef name, int64_t fallback) {
  auto a = dyn_cast_or_null<IntegerAttr>(nodeAttr(op, name));
  return a ? a.getValue().getSExtValue() : fallback;
}

struct Quant {
  double scale = 1;
  int32_t zp = 0;
  int32_t lo = 0, hi = 255;
};

/// Constant per-tensor parameters of a QuantizeLinear/DequantizeLinear.
std::optional<Quant> perTensor(Operation *op) {
  if (nodeAttr(op, "block_size") || nodeAttr(op, "output_dtype"))
    return std::nullopt;
  auto scale = constantValue(op->getOperand(1));
  if (!scale || scale->dtype() != DType::F32 || scale->size() != 1)
    return std::nullopt;
  Quant q;
  q.scale = scale->asDouble(0);
  Value integer = isType(op, "QuantizeLinear") ? op->getResult(0) : op->getOperand(0);
  auto type = dyn_cast<TensorType>(integer.getType());
  if (!type || !(type.getElementType().isInteger(8)))
    return std::nullopt;
  bool isUnsigned = type.getElementType().isUnsignedInteger();
  q.lo = isUnsigned ? 0 : -128;
  q.hi = isUnsigned ? 255 : 127;
  if (op->getNumOperands() > 2 && !ir::isNoneValue(op->getOperand(2))) {
    auto zp = constantValue(op->getOperand(2));
    if (!zp || zp->size() != 1)
      return std::nullopt;
    q.zp = int32_t(zp->asDouble(0));
  }
  if (!(q.scale > 0) || !std::isfinite(q.scale))
    return std::nullopt;
  return q;
}

/// The QuantizeLinear that reads `v` (through one Relu or Clip, and for a
/// pool one Flatten/Reshape), narrowing [lo, hi] by the activation.
Operation *quantizer(Value v, bool throughReshape, Quant &out) {
  Operation *user = onlyUser(v), *act = nullptr;
  if (throughReshape && (isType(user, "Flatten") || isType(user, "Reshape") || isType(user, "Squeeze")))
    user = onlyUser(user->getResult(0));
  if (!throughReshape && (isType(user, "Relu") || isType(user, "Clip"))) {
    act = user;
    user = onlyUser(user->getResult(0));
  }
  if (!isType(user, "QuantizeLinear"))
    return nullptr;
  auto q = perTensor(user);
  if (!q)
    return nullptr;
  out = *q;
  if (isType(act, "Relu")) {
    out.lo = std::max(out.lo, out.zp);
  } else if (act) {
    float mn = -INFINITY, mx = INFINITY;
    for (unsigned i = 1; i < act->getNumOperands(); ++i) {
      if (ir::isNoneValue(act->getOperand(i)))
        continue;
      auto t = constantValue(act->getOperand(i));
      if (!t || t->size() != 1)
        return nullptr;
      (i == 1 ? mn : mx) = float(t->asDouble(0));
    }
    if (auto a = dyn_cast_or_null<FloatAttr>(nodeAttr(act, "min")))
      mn = float(a.getValueAsDouble());
    if (auto a = dyn_cast_or_null<FloatAttr>(nodeAttr(act, "max")))
      mx = float(a.getValueAsDouble());
    auto bound = [&](float b, int32_t fallback) {
      if (!std::isfinite(b))
        return fallback;
      double q = std::nearbyint(double(b / float(out.scale))) + out.zp;
      return int32_t(std::clamp<double>(q, out.lo, out.hi));
    };
    out.lo = std::max(out.lo, bound(mn, out.lo));
    out.hi = std::min(out.hi, bound(mx, out.hi));
  }
  return user;
}

/// x as integers centred on its zero point: DequantizeLinear's float
/// (q - zp) * scale divided back (exact: its rounding is far below half a step).
Tensor centred(const Tensor &x, double scale) {
  Tensor out(DType::F64, x.shape());
  float s = float(scale);
  for (int64_t i = 0; i < x.size(); ++i)
    out.data<double>()[i] = std::nearbyint(double(float(x.asDouble(i)) / s));
  return out;
}

/// The quantizer's float for integer q: (q - zp) * scale, which it divides
/// back into q exactly.
float dequantized(int32_t q, const Quant &y) { return float(double(q - y.zp) * y.scale); }

/// round_half_even(clamp(v)) + zp: the C kernels' requantization.
int32_t requantize(float v, const Quant &y) {
  float lo = float(y.lo - y.zp), hi = float(y.hi - y.zp);
  v = v >= lo ? v : lo;
  v = v <= hi ? v : hi;
  return int32_t(std::nearbyint(v)) + y.zp;
}

std::optional<llvm::Expected<Tensor>> runProduct(Operation *op, llvm::ArrayRef<const Tensor *> inputs,
                                                 int64_t opset, bool fixed) {
  llvm::StringRef type = ir::opTypeOf(op);
  Operation *xdq = op->getOperand(0).getDefiningOp(), *wdq = op->getOperand(1).getDefiningOp();
  if (!isType(xdq, "DequantizeLinear") || !isType(wdq, "DequantizeLinear") || !inputs[0])
    return std::nullopt;
  auto xq = perTensor(xdq);
  if (!xq)
    return std::nullopt;
  auto wInt = constantValue(wdq->getOperand(0)), wScale = constantValue(wdq->getOperand(1));
  std::optional<Tensor> wZp;
  if (wdq->getNumOperands() > 2 && !ir::isNoneValue(wdq->getOperand(2)))
    if (!(wZp = constantValue(wdq->getOperand(2))))
      return std::nullopt;
  if (!wInt || !wScale || (wInt->dtype() != DType::I8 && wInt->dtype() != DType::U8) ||
      nodeAttr(wdq, "block_size"))
    return std::nullopt;
  bool transB = type == "Gemm" && intAttr(op, "transB", 0);
  if (type == "Gemm") {
    auto alpha = dyn_cast_or_null<FloatAttr>(nodeAttr(op, "alpha"));
    auto beta = dyn_cast_or_null<FloatAttr>(nodeAttr(op, "beta"));
    if (intAttr(op, "transA", 0) || (alpha && alpha.getValueAsDouble() != 1) ||
        (beta && beta.getValueAsDouble() != 1))
      return std::nullopt;
  }
  if (type != "Conv" && wInt->rank() != 2)
    return std::nullopt;
  // Output channels: the weight's axis 0 for Conv and Gemm with transB,
  // axis 1 otherwise.
  int64_t channelAxis = type == "Conv" || transB ? 0 : 1;
  int64_t channels = wInt->dim(channelAxis);
  int64_t rank = wInt->rank(), axis = intAttr(wdq, "axis", 1);
  if (axis < 0)
    axis += rank;
  if (wScale->size() != 1 && (wScale->size() != channels || axis != channelAxis))
    return std::nullopt;
  int64_t inner = 1;
  for (int64_t d = channelAxis + 1; d < rank; ++d)
    inner *= wInt->dim(d);
  Tensor w(DType::F64, wInt->shape());
  for (int64_t i = 0; i < wInt->size(); ++i) {
    int64_t c = (i / inner) % channels;
    double z = wZp ? wZp->asDouble(wZp->size() > 1 ? c : 0) : 0;
    w.data<double>()[i] = wInt->asDouble(i) - z;
  }
  // The bias: int32 in units of x_scale x w_scale.
  std::vector<int64_t> bias(channels, 0);
  Value biasValue = op->getNumOperands() > 2 && !ir::isNoneValue(op->getOperand(2))
                        ? op->getOperand(2)
                        : Value();
  std::vector<double> wScales;
  for (int64_t c = 0; c < channels; ++c)
    wScales.push_back(wScale->asDouble(wScale->size() > 1 ? c : 0));
  if (biasValue) {
    Operation *bdq = biasValue.getDefiningOp();
    if (!isType(bdq, "DequantizeLinear"))
      return std::nullopt;
    auto bq = constantValue(bdq->getOperand(0)), bs = constantValue(bdq->getOperand(1));
    std::optional<Tensor> bz;
    if (bdq->getNumOperands() > 2 && !ir::isNoneValue(bdq->getOperand(2)))
      bz = constantValue(bdq->getOperand(2));
    if (!bq || !bs || bq->dtype() != DType::I32 || bq->size() != channels ||
        (bs->size() != 1 && bs->size() != channels))
      return std::nullopt;
    for (int64_t c = 0; c < channels; ++c) {
      double want = double(float(xq->scale)) * wScales[c];
      if (std::abs(bs->asDouble(bs->size() > 1 ? c : 0) - want) > 1e-6 * want)
        return std::nullopt;
      bias[c] = int64_t(bq->asDouble(c)) - (bz ? int64_t(bz->asDouble(bz->size() > 1 ? c : 0)) : 0);
    }
  }
  Quant yq;
  Operation *q = quantizer(op->getResult(0), false, yq);
  bool floatOut = !q;
  if (floatOut) {
    auto resultType = dyn_cast<TensorType>(op->getResult(0).getType());
    if (!resultType || !resultType.getElementType().isF32())
      return std::nullopt;
  }

  // Exact integer sums: the op itself on doubles (integers below 2^53).
  Tensor x = centred(*inputs[0], xq->scale);
  std::vector<const Tensor *> operands = {&x, &w};
  auto sums = evaluateKernel(op, operands, opset);
  if (!sums)
    return llvm::Expected<Tensor>(sums.takeError());
  const Tensor &acc = (*sums)[0];
  if (acc.dtype() != DType::F64)
    return std::nullopt;
  int64_t accInner = 1;
  if (type == "Conv")
    for (int64_t d = 2; d < acc.rank(); ++d)
      accInner *= acc.dim(d);
  Tensor out(DType::F32, acc.shape());
  std::vector<float> multipliers;
  for (int64_t c = 0; c < channels; ++c)
    multipliers.push_back(floatOut ? float(double(float(xq->scale)) * wScales[c])
                                   : float(double(float(xq->scale)) * wScales[c] /
                                           double(float(yq.scale))));
  std::vector<std::pair<int32_t, int>> fixedPoint;
  for (int64_t c = 0; c < channels && fixed && !floatOut; ++c) {
    auto mult = fixedPointMultiplier(double(float(xq->scale)) * wScales[c] / double(float(yq.scale)));
    if (!mult)
      return std::nullopt;
    fixedPoint.push_back(*mult);
  }
  for (int64_t i = 0; i < acc.size(); ++i) {
    int64_t c = type == "Conv" ? (i / accInner) % channels : i % channels;
    int64_t sum = int64_t(acc.data<double>()[i]) + bias[c];
    if (!fixedPoint.empty()) {
      int64_t v = fixedPointScale(int32_t(sum), fixedPoint[c].first, fixedPoint[c].second);
      v = std::clamp<int64_t>(v, yq.lo - yq.zp, yq.hi - yq.zp);
      out.data<float>()[i] = dequantized(int32_t(v) + yq.zp, yq);
      continue;
    }
    float v = float(sum) * multipliers[c];
    out.data<float>()[i] = floatOut ? v : dequantized(requantize(v, yq), yq);
  }
  return llvm::Expected<Tensor>(std::move(out));
}

std::optional<llvm::Expected<Tensor>> runGlobalAveragePool(Operation *op,
                                                           llvm::ArrayRef<const Tensor *> inputs) {
  Operation *xdq = op->getOperand(0).getDefiningOp();
  if (!isType(xdq, "DequantizeLinear") || !inputs[0] || inputs[0]->rank() < 3)
    return std::nullopt;
  auto xq = perTensor(xdq);
  Quant yq;
  if (!xq || !quantizer(op->getResult(0), true, yq))
    return std::nullopt;
  const Tensor &x = *inputs[0];
  int64_t nc = x.dim(0) * x.dim(1), hw = x.size() / std::max<int64_t>(nc, 1);
  Tensor out(DType::F32, {x.dim(0), x.dim(1)});
  std::vector<int64_t> shape(x.shape().begin(), x.shape().end());
  for (size_t d = 2; d < shape.size(); ++d)
    shape[d] = 1;
  out = Tensor(DType::F32, shape);
  float scale = float(double(float(xq->scale)) / (double(hw) * double(float(yq.scale))));
  float s = float(xq->scale);
  for (int64_t c = 0; c < nc; ++c) {
    int64_t sum = 0;
    for (int64_t i = 0; i < hw; ++i)
      sum += int64_t(std::nearbyint(double(float(x.asDouble(c * hw + i)) / s)));
    out.data<float>()[c] = dequantized(requantize(float(sum) * scale, yq), yq);
  }
  return llvm::Expected<Tensor>(std::move(out));
}

/// QLinearConv and QLinearMatMul whose weights, scales and zero points are
/// constants (and whose weights fit int8 once centred, or that are
/// depthwise): the C output runs them on its integer kernels, which
/// requantize as above, not in double as the operators' reference does.
std::optional<llvm::Expected<Tensor>> runQLinear(Operation *op, llvm::ArrayRef<const Tensor *> inputs,
                                                 int64_t opset, bool fixed) {
  bool conv = ir::opTypeOf(op) == "QLinearConv";
  auto operand = [&](unsigned i) -> std::optional<Tensor> {
    if (i >= op->getNumOperands() || ir::isNoneValue(op->getOperand(i)))
      return std::nullopt;
    return constantValue(op->getOperand(i));
  };
  for (unsigned i = 1; i < 8; ++i)
    if (i != 3 && i < op->getNumOperands() && !ir::isNoneValue(op->getOperand(i)) && !operand(i))
      return std::nullopt;
  auto xs = operand(1), xz = operand(2), w = operand(3), ws = operand(4), wz = operand(5);
  auto ys = operand(6), yz = operand(7);
  std::optional<Tensor> bias = conv ? operand(8) : std::nullopt;
  if (conv && op->getNumOperands() > 8 && !ir::isNoneValue(op->getOperand(8)) && !bias)
    return std::nullopt;
  if (!inputs[0] || !xs || !w || !ws || !ys || xs->size() != 1 || ys->size() != 1 ||
      (w->dtype() != DType::I8 && w->dtype() != DType::U8))
    return std::nullopt;
  if (!conv && w->rank() != 2)
    return std::nullopt;
  int64_t channels = conv ? w->dim(0) : w->dim(1);
  if (ws->size() != 1 && ws->size() != channels)
    return std::nullopt;
  int64_t inner = 1;
  for (int64_t d = conv ? 1 : 2; d < w->rank(); ++d)
    inner *= w->dim(d);
  Tensor wc(DType::F64, w->shape());
  bool fits = true;
  for (int64_t i = 0; i < w->size(); ++i) {
    int64_t c = conv ? i / inner : i % channels;
    double z = wz ? wz->asDouble(wz->size() > 1 ? c : 0) : 0;
    wc.data<double>()[i] = w->asDouble(i) - z;
    fits &= wc.data<double>()[i] >= -128 && wc.data<double>()[i] <= 127;
  }
  const Tensor &xq = *inputs[0];
  bool depthwise = conv && intAttr(op, "group", 1) == xq.dim(1) && xq.dim(1) > 1;
  if (!fits && !depthwise)
    return std::nullopt;
  Tensor xc(DType::F64, xq.shape());
  double zx = xz ? xz->asDouble(0) : 0;
  for (int64_t i = 0; i < xq.size(); ++i)
    xc.data<double>()[i] = xq.asDouble(i) - zx;
  KernelContext ctx;
  ctx.opType = ir::opTypeOf(op);
  ctx.opset = opset;
  ctx.op = op;
  ctx.inputs = {&xc, &wc};
  ctx.outputs.resize(1);
  Tensor acc;
  Error err = conv ? convDouble(ctx, xc.data<double>(), xc.shape(), wc.data<double>(), wc.shape(),
                                nullptr, acc)
                   : matmulDouble(ctx, xc, wc, acc);
  if (err)
    return llvm::Expected<Tensor>(std::move(err));
  auto yType = dyn_cast<TensorType>(op->getResult(0).getType());
  if (!yType || !yType.getElementType().isInteger(8))
    return std::nullopt;
  bool isUnsigned = yType.getElementType().isUnsignedInteger();
  Quant yq;
  yq.scale = ys->asDouble(0);
  yq.zp = yz ? int32_t(yz->asDouble(0)) : 0;
  yq.lo = isUnsigned ? 0 : -128;
  yq.hi = isUnsigned ? 255 : 127;
  int64_t accInner = 1;
  if (conv)
    for (int64_t d = 2; d < acc.rank(); ++d)
      accInner *= acc.dim(d);
  std::vector<float> multipliers;
  std::vector<std::pair<int32_t, int>> fixedPoint;
  for (int64_t c = 0; c < channels; ++c) {
    double m = double(float(xs->asDouble(0))) * ws->asDouble(ws->size() > 1 ? c : 0) /
               double(float(yq.scale));
    multipliers.push_back(float(m));
    if (fixed) {
      auto mult = fixedPointMultiplier(m);
      if (!mult)
        return std::nullopt;
      fixedPoint.push_back(*mult);
    }
  }
  Tensor out(isUnsigned ? DType::U8 : DType::I8, acc.shape());
  for (int64_t i = 0; i < acc.size(); ++i) {
    int64_t c = conv ? (i / accInner) % channels : i % channels;
    int64_t sum = int64_t(acc.data<double>()[i]) + (bias ? int64_t(bias->asDouble(c)) : 0);
    int32_t q;
    if (fixed) {
      int64_t v = fixedPointScale(int32_t(sum), fixedPoint[c].first, fixedPoint[c].second);
      q = int32_t(std::clamp<int64_t>(v, yq.lo - yq.zp, yq.hi - yq.zp)) + yq.zp;
    } else {
      q = requantize(float(sum) * multipliers[c], yq);
    }
    if (isUnsigned)
      out.data<uint8_t>()[i] = uint8_t(q);
    else
      out.data<int8_t>()[i] = int8_t(q);
  }
  return llvm::Expected<Tensor>(std::move(out));
}

} // namespace

std::optional<std::pair<int32_t, int>> fixedPointMultiplier(double m) {
  // m = f 2^ex, f in [0.5, 1): multiplier round(f 2^31), shift 31 - ex.
  int ex = 0;
  double f = std::frexp(m, &ex);
  int64_t mult = std::llround(f * 2147483648.0);
  if (mult == (int64_t(1) << 31)) {
    mult /= 2;
    ++ex;
  }
  int shift = 31 - ex;
  if (m == 0 || shift > 62)
    return std::pair<int32_t, int>(0, 1);
  if (shift < 1)
    return std::nullopt;
  return std::pair<int32_t, int>(int32_t(mult), shift);
}

std::optional<llvm::Expected<Tensor>> runIntegerGroup(Operation *op,
                                                      llvm::ArrayRef<const Tensor *> inputs,
                                                      int64_t opset, bool fixed) {
  llvm::StringRef type = ir::opTypeOf(op);
  if (type == "Conv" || type == "Gemm" || type == "MatMul")
    return runProduct(op, inputs, opset, fixed);
  if (type == "GlobalAveragePool")
    return runGlobalAveragePool(op, inputs);
  if (type == "QLinearConv" || type == "QLinearMatMul")
    return runQLinear(op, inputs, opset, fixed);
  return std::nullopt;
}

} // namespace refold::interp
