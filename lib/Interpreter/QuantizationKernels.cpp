//===- QuantizationKernels.cpp - quantization kernels -----------------------===//
//
// The interpreter's quantize, dequantize and integer matrix products, written
// against the ONNX specification. Anything a kernel does not handle is an error
// that names the operator and the case, never an approximate answer.
//
//===----------------------------------------------------------------------===//

#include "KernelSupport.h"

#include "refold/Dialect/ONNX/ONNXOps.h"

#include "mlir/IR/BuiltinAttributes.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>

using namespace mlir;
using llvm::ArrayRef;
using llvm::Error;
using llvm::StringRef;

namespace refold::interp {
namespace {

//===----------------------------------------------------------------------===//
// Quantization
//===----------------------------------------------------------------------===//

/// Per-tensor or per-axis parameter value for element `i` of `shape`.
struct QuantParam {
  const Tensor *t = nullptr;
  int64_t axis = 1, inner = 1, len = 1;
  QuantParam(const Tensor *t, ArrayRef<int64_t> shape, int64_t axis) : t(t) {
    if (t && t->size() > 1 && !shape.empty()) {
      this->axis = normAxis(axis, shape.size());
      len = shape[this->axis];
      inner = numElements(shape.drop_front(this->axis + 1));
    }
  }
  double at(int64_t i, double fallback) const {
    if (!t) return fallback;
    if (t->size() == 1) return t->asDouble(0);
    return t->asDouble((i / inner) % len);
  }
};

double saturate(double v, DType type) {
  switch (type) {
  case DType::U8: return std::clamp(v, 0.0, 255.0);
  case DType::I8: return std::clamp(v, -128.0, 127.0);
  case DType::I32: return std::clamp(v, -2147483648.0, 2147483647.0);
  default: return v;
  }
}

void storeInt(Tensor &t, int64_t i, double v) {
  switch (t.dtype()) {
  case DType::U8: t.data<uint8_t>()[i] = uint8_t(v); break;
  case DType::I8: t.data<int8_t>()[i] = int8_t(v); break;
  case DType::I32: t.data<int32_t>()[i] = int32_t(v); break;
  default: break;
  }
}

Error kQuantizeLinear(KernelContext &c) {
  const Tensor *x = c.in(0), *scale = c.in(1), *zp = c.in(2);
  if (!x || !scale)
    return c.fail("needs x and y_scale");
  DType outType = zp ? zp->dtype() : DType::U8;
  if (outType != DType::U8 && outType != DType::I8)
    return c.fail("only uint8 and int8 outputs are supported");
  QuantParam s(scale, x->shape(), c.i("axis", 1)), z(zp, x->shape(), c.i("axis", 1));
  Tensor out(outType, x->shape());
  for (int64_t i = 0; i < x->size(); ++i) {
    // Divide in float32 like the reference, then round half to even.
    float scaled = float(x->asDouble(i)) / float(s.at(i, 1));
    double q = std::nearbyint(double(scaled)) + z.at(i, 0);
    storeInt(out, i, saturate(q, outType));
  }
  c.outputs[0] = std::move(out);
  return ok();
}

Error kDequantizeLinear(KernelContext &c) {
  const Tensor *x = c.in(0), *scale = c.in(1), *zp = c.in(2);
  if (!x || !scale)
    return c.fail("needs x and x_scale");
  QuantParam s(scale, x->shape(), c.i("axis", 1)), z(zp, x->shape(), c.i("axis", 1));
  Tensor out(DType::F32, x->shape());
  for (int64_t i = 0; i < x->size(); ++i)
    out.data<float>()[i] = float((x->asDouble(i) - z.at(i, 0)) * s.at(i, 1));
  c.outputs[0] = std::move(out);
  return ok();
}

/// Integer tensor minus its zero point, as doubles (exact for int8/int32 sums).
Tensor centered(const Tensor &q, const Tensor *zp, int64_t axis) {
  Tensor out(DType::F64, q.shape());
  QuantParam z(zp, q.shape(), axis);
  for (int64_t i = 0; i < q.size(); ++i)
    out.data<double>()[i] = q.asDouble(i) - z.at(i, 0);
  return out;
}

Error requantize(KernelContext &c, Tensor &acc, const Tensor *scaleA, const Tensor *scaleB,
                 int64_t axisB, const Tensor *scaleY, const Tensor *zpY) {
  DType outType = zpY ? zpY->dtype() : DType::U8;
  Tensor out(outType, acc.shape());
  QuantParam sb(scaleB, acc.shape(), axisB);
  double sa = scaleA->asDouble(0), sy = scaleY->asDouble(0), zy = zpY ? zpY->asDouble(0) : 0;
  for (int64_t i = 0; i < acc.size(); ++i) {
    double v = std::nearbyint(acc.data<double>()[i] * sa * sb.at(i, 1) / sy) + zy;
    storeInt(out, i, saturate(v, outType));
  }
  c.outputs[0] = std::move(out);
  return ok();
}

Error kQLinearMatMul(KernelContext &c) {
  for (int i = 0; i < 8; ++i)
    if (!c.in(i))
      return c.fail("needs 8 inputs");
  Tensor a = centered(*c.in(0), c.in(2), -1), b = centered(*c.in(3), c.in(5), -1);
  Tensor acc;
  if (auto err = matmulDouble(c, a, b, acc))
    return err;
  return requantize(c, acc, c.in(1), c.in(4), -1, c.in(6), c.in(7));
}

Error kMatMulInteger(KernelContext &c) {
  if (!c.in(0) || !c.in(1))
    return c.fail("needs A and B");
  Tensor a = centered(*c.in(0), c.in(2), 0), b = centered(*c.in(1), c.in(3), -1);
  Tensor acc;
  if (auto err = matmulDouble(c, a, b, acc))
    return err;
  Tensor out(DType::I32, acc.shape());
  for (int64_t i = 0; i < acc.size(); ++i)
    out.data<int32_t>()[i] = int32_t(acc.data<double>()[i]);
  c.outputs[0] = std::move(out);
  return ok();
}

Error kQLinearConv(KernelContext &c) {
  for (int i = 0; i < 8; ++i)
    if (!c.in(i))
      return c.fail("needs at least 8 inputs");
  Tensor x = centered(*c.in(0), c.in(2), 1), w = centered(*c.in(3), c.in(5), 0);
  std::vector<double> bias;
  if (c.in(8))
    for (int64_t i = 0; i < c.in(8)->size(); ++i)
      bias.push_back(c.in(8)->asDouble(i));
  Tensor acc;
  if (auto err = convDouble(c, x.data<double>(), x.shape(), w.data<double>(), w.shape(),
                            bias.empty() ? nullptr : bias.data(), acc))
    return err;
  return requantize(c, acc, c.in(1), c.in(4), 1, c.in(6), c.in(7));
}

Error kConvInteger(KernelContext &c) {
  if (!c.in(0) || !c.in(1))
    return c.fail("needs x and w");
  Tensor x = centered(*c.in(0), c.in(2), 1), w = centered(*c.in(1), c.in(3), 0);
  Tensor acc;
  if (auto err = convDouble(c, x.data<double>(), x.shape(), w.data<double>(), w.shape(),
                            nullptr, acc))
    return err;
  Tensor out(DType::I32, acc.shape());
  for (int64_t i = 0; i < acc.size(); ++i)
    out.data<int32_t>()[i] = int32_t(acc.data<double>()[i]);
  c.outputs[0] = std::move(out);
  return ok();
}

} // namespace

void registerQuantizationKernels(llvm::StringMap<Kernel> &registry) {
  registry["ConvInteger"] = kConvInteger;
  registry["DequantizeLinear"] = kDequantizeLinear;
  registry["MatMulInteger"] = kMatMulInteger;
  registry["QLinearConv"] = kQLinearConv;
  registry["QLinearMatMul"] = kQLinearMatMul;
  registry["QuantizeLinear"] = kQuantizeLinear;
}

} // namespace refold::interp
