//===- Kernels.cpp - interpreter kernels ------------------------------------===//
//
// One function per ONNX operator, written against the ONNX specification.
// Convolutions and matrix products lower to Eigen GEMMs (im2col); the rest are
// straightforward loops. Anything a kernel does not handle is an error that
// names the operator and the case, never an approximate answer.
//
//===----------------------------------------------------------------------===//

#include "Kernels.h"

#include "refold/Dialect/ONNX/ONNXOps.h"

#include "mlir/IR/BuiltinAttributes.h"

#include <Eigen/Core>

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

//===----------------------------------------------------------------------===//
// KernelContext
//===----------------------------------------------------------------------===//

Attribute KernelContext::attr(StringRef name) const {
  if (auto node = dyn_cast<ir::NodeOp>(op)) {
    auto attrs = node.getNodeAttrs();
    return attrs ? attrs->get(name) : Attribute();
  }
  return op->getAttr(name);
}

int64_t KernelContext::i(StringRef name, int64_t fallback) const {
  auto a = dyn_cast_or_null<IntegerAttr>(attr(name));
  return a ? a.getValue().getSExtValue() : fallback;
}

float KernelContext::f(StringRef name, float fallback) const {
  auto a = dyn_cast_or_null<FloatAttr>(attr(name));
  return a ? float(a.getValueAsDouble()) : fallback;
}

std::string KernelContext::s(StringRef name, StringRef fallback) const {
  auto a = dyn_cast_or_null<StringAttr>(attr(name));
  return (a ? a.getValue() : fallback).str();
}

std::optional<std::vector<int64_t>> KernelContext::ints(StringRef name) const {
  auto a = dyn_cast_or_null<DenseI64ArrayAttr>(attr(name));
  if (!a)
    return std::nullopt;
  return std::vector<int64_t>(a.asArrayRef().begin(), a.asArrayRef().end());
}

std::optional<std::vector<float>> KernelContext::floats(StringRef name) const {
  auto a = dyn_cast_or_null<DenseF32ArrayAttr>(attr(name));
  if (!a)
    return std::nullopt;
  return std::vector<float>(a.asArrayRef().begin(), a.asArrayRef().end());
}

Error KernelContext::fail(const llvm::Twine &message) const {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 (opType + ": " + message).str());
}

namespace {

Error ok() { return Error::success(); }

int64_t normAxis(int64_t axis, int64_t rank) { return axis < 0 ? axis + rank : axis; }

/// Calls `fn` with a value of the C++ type of `type` (numeric types only).
template <typename Fn>
bool dispatchNumeric(DType type, Fn &&fn) {
  switch (type) {
  case DType::F32: fn(float()); return true;
  case DType::F64: fn(double()); return true;
  case DType::I64: fn(int64_t()); return true;
  case DType::I32: fn(int32_t()); return true;
  case DType::I16: fn(int16_t()); return true;
  case DType::I8: fn(int8_t()); return true;
  case DType::U8: fn(uint8_t()); return true;
  case DType::U16: fn(uint16_t()); return true;
  case DType::U32: fn(uint32_t()); return true;
  case DType::U64: fn(uint64_t()); return true;
  default: return false;
  }
}

template <typename Fn>
bool dispatchFloat(DType type, Fn &&fn) {
  switch (type) {
  case DType::F32: fn(float()); return true;
  case DType::F64: fn(double()); return true;
  default: return false;
  }
}

template <typename T> constexpr DType dtypeOf();
template <> constexpr DType dtypeOf<float>() { return DType::F32; }
template <> constexpr DType dtypeOf<double>() { return DType::F64; }
template <> constexpr DType dtypeOf<int64_t>() { return DType::I64; }
template <> constexpr DType dtypeOf<int32_t>() { return DType::I32; }
template <> constexpr DType dtypeOf<int16_t>() { return DType::I16; }
template <> constexpr DType dtypeOf<int8_t>() { return DType::I8; }
template <> constexpr DType dtypeOf<uint8_t>() { return DType::U8; }
template <> constexpr DType dtypeOf<uint16_t>() { return DType::U16; }
template <> constexpr DType dtypeOf<uint32_t>() { return DType::U32; }
template <> constexpr DType dtypeOf<uint64_t>() { return DType::U64; }

//===----------------------------------------------------------------------===//
// Broadcasting
//===----------------------------------------------------------------------===//

std::optional<Shape> broadcastShapes(ArrayRef<ArrayRef<int64_t>> shapes) {
  size_t rank = 0;
  for (auto s : shapes)
    rank = std::max(rank, s.size());
  Shape out(rank, 1);
  for (auto s : shapes)
    for (size_t i = 0; i < s.size(); ++i) {
      int64_t &o = out[rank - s.size() + i];
      int64_t d = s[i];
      if (d == o || d == 1)
        continue;
      if (o != 1)
        return std::nullopt;
      o = d;
    }
  return out;
}

/// Strides of `shape` broadcast to `out` (0 along broadcast axes).
Shape broadcastStrides(ArrayRef<int64_t> shape, ArrayRef<int64_t> out) {
  Shape strides(out.size(), 0);
  int64_t stride = 1;
  for (int64_t i = shape.size() - 1; i >= 0; --i) {
    int64_t o = out.size() - shape.size() + i;
    strides[o] = shape[i] == 1 ? 0 : stride;
    stride *= shape[i];
  }
  return strides;
}

/// Visits every output element with the flat offsets of each input.
template <size_t N, typename Fn>
void forEachBroadcast(ArrayRef<int64_t> out, const std::array<Shape, N> &strides, Fn &&fn) {
  int64_t total = numElements(out);
  if (total == 0)
    return;
  size_t rank = out.size();
  if (rank == 0) {
    std::array<int64_t, N> offs{};
    fn(0, offs);
    return;
  }
  Shape index(rank, 0);
  std::array<int64_t, N> offs{};
  int64_t inner = out[rank - 1];
  std::array<int64_t, N> innerStride;
  for (size_t k = 0; k < N; ++k)
    innerStride[k] = strides[k][rank - 1];
  for (int64_t flat = 0; flat < total; flat += inner) {
    std::array<int64_t, N> o = offs;
    for (int64_t j = 0; j < inner; ++j) {
      fn(flat + j, o);
      for (size_t k = 0; k < N; ++k)
        o[k] += innerStride[k];
    }
    // Advance the outer index.
    for (int64_t d = rank - 2; d >= 0; --d) {
      ++index[d];
      for (size_t k = 0; k < N; ++k)
        offs[k] += strides[k][d];
      if (index[d] < out[d])
        break;
      for (size_t k = 0; k < N; ++k)
        offs[k] -= strides[k][d] * out[d];
      index[d] = 0;
    }
  }
}

template <typename T, typename R, typename F>
Error binaryTyped(KernelContext &ctx, const Tensor &a, const Tensor &b, F op) {
  auto shape = broadcastShapes({a.shape(), b.shape()});
  if (!shape)
    return ctx.fail("shapes " + shapeString(a.shape()) + " and " + shapeString(b.shape()) +
                    " do not broadcast");
  Tensor out(dtypeOf<R>(), *shape);
  const T *x = a.data<T>(), *y = b.data<T>();
  R *z = out.data<R>();
  if (a.shape() == b.shape()) {
    for (int64_t i = 0, n = out.size(); i < n; ++i)
      z[i] = op(x[i], y[i]);
  } else if (b.size() == 1) {
    T s = y[0];
    for (int64_t i = 0, n = out.size(); i < n; ++i)
      z[i] = op(x[i], s);
  } else {
    std::array<Shape, 2> strides = {broadcastStrides(a.shape(), *shape),
                                    broadcastStrides(b.shape(), *shape)};
    forEachBroadcast<2>(*shape, strides, [&](int64_t i, const std::array<int64_t, 2> &o) {
      z[i] = op(x[o[0]], y[o[1]]);
    });
  }
  ctx.outputs[0] = std::move(out);
  return ok();
}


enum class Arith { Add, Sub, Mul, Div, Pow, Max, Min, Mod };

template <typename T> T arith(Arith kind, T a, T b, int64_t fmod) {
  switch (kind) {
  case Arith::Add: return a + b;
  case Arith::Sub: return a - b;
  case Arith::Mul: return a * b;
  case Arith::Div:
    if constexpr (std::is_integral_v<T>)
      return b == 0 ? T(0) : T(a / b);
    else
      return a / b;
  case Arith::Pow: return T(std::pow(double(a), double(b)));
  case Arith::Max: return std::max(a, b);
  case Arith::Min: return std::min(a, b);
  case Arith::Mod:
    if constexpr (std::is_integral_v<T>) {
      if (b == 0)
        return T(0);
      if (fmod)
        return T(a % b);
      T r = T(a % b);
      return (r != 0 && ((r < 0) != (b < 0))) ? T(r + b) : r;
    } else {
      T r = T(std::fmod(a, b));
      if (!fmod && r != 0 && ((r < 0) != (b < 0)))
        r += b;
      return r;
    }
  }
  return a;
}

Tensor convertTensor(const Tensor &x, DType to) {
  Tensor out(to, x.shape());
  for (int64_t i = 0; i < x.size(); ++i)
    out.setDouble(i, x.asDouble(i));
  return out;
}

Error arithmetic(KernelContext &ctx, Arith kind);

/// Half-precision inputs are computed in float32 and rounded back.
Error arithmeticHalf(KernelContext &ctx, Arith kind) {
  DType half = ctx.in(0)->dtype();
  Tensor a = convertTensor(*ctx.in(0), DType::F32), b = convertTensor(*ctx.in(1), DType::F32);
  KernelContext sub = ctx;
  sub.inputs = {&a, &b};
  if (auto err = arithmetic(sub, kind))
    return err;
  ctx.outputs[0] = convertTensor(sub.outputs[0], half);
  return ok();
}

Error arithmetic(KernelContext &ctx, Arith kind) {
  const Tensor *a = ctx.in(0), *b = ctx.in(1);
  if (!a || !b)
    return ctx.fail("needs two inputs");
  if ((a->dtype() == DType::F16 || a->dtype() == DType::BF16) && a->dtype() == b->dtype())
    return arithmeticHalf(ctx, kind);
  if (kind == Arith::Pow && b->dtype() != a->dtype()) {
    // Pow allows a different exponent type: compute in double.
    auto shape = broadcastShapes({a->shape(), b->shape()});
    if (!shape)
      return ctx.fail("shapes do not broadcast");
    Tensor out(a->dtype(), *shape);
    std::array<Shape, 2> strides = {broadcastStrides(a->shape(), *shape),
                                    broadcastStrides(b->shape(), *shape)};
    bool handled = dispatchNumeric(a->dtype(), [&](auto t) {
      using T = decltype(t);
      T *z = out.data<T>();
      forEachBroadcast<2>(*shape, strides, [&](int64_t i, const std::array<int64_t, 2> &o) {
        z[i] = T(std::pow(a->asDouble(o[0]), b->asDouble(o[1])));
      });
    });
    if (!handled)
      return ctx.fail("unsupported type " + dtypeName(a->dtype()));
    ctx.outputs[0] = std::move(out);
    return ok();
  }
  if (a->dtype() != b->dtype())
    return ctx.fail("input types differ: " + dtypeName(a->dtype()) + " and " +
                    dtypeName(b->dtype()));
  int64_t fmod = ctx.i("fmod", 0);
  Error result = ok();
  bool handled = dispatchNumeric(a->dtype(), [&](auto t) {
    using T = decltype(t);
    consumeError(std::move(result));
    // A lambda per kind keeps the inner loops free of a switch (vectorizable).
    switch (kind) {
    case Arith::Add:
      result = binaryTyped<T, T>(ctx, *a, *b, [](T x, T y) { return T(x + y); });
      return;
    case Arith::Sub:
      result = binaryTyped<T, T>(ctx, *a, *b, [](T x, T y) { return T(x - y); });
      return;
    case Arith::Mul:
      result = binaryTyped<T, T>(ctx, *a, *b, [](T x, T y) { return T(x * y); });
      return;
    case Arith::Pow:
      if (b->size() == 1 && b->asDouble(0) == 2.0) {
        result = binaryTyped<T, T>(ctx, *a, *b, [](T x, T) { return T(x * x); });
        return;
      }
      break;
    default:
      break;
    }
    result = binaryTyped<T, T>(ctx, *a, *b, [&](T x, T y) { return arith<T>(kind, x, y, fmod); });
  });
  if (!handled)
    return ctx.fail("unsupported type " + dtypeName(a->dtype()));
  return result;
}

enum class Compare { Equal, Less, Greater, LessOrEqual, GreaterOrEqual };

Error comparison(KernelContext &ctx, Compare kind) {
  const Tensor *a = ctx.in(0), *b = ctx.in(1);
  if (!a || !b || a->dtype() != b->dtype())
    return ctx.fail("needs two inputs of one type");
  Error result = ok();
  auto cmp = [kind](auto x, auto y) -> uint8_t {
    switch (kind) {
    case Compare::Equal: return x == y;
    case Compare::Less: return x < y;
    case Compare::Greater: return x > y;
    case Compare::LessOrEqual: return x <= y;
    case Compare::GreaterOrEqual: return x >= y;
    }
    return 0;
  };
  bool handled = dispatchNumeric(a->dtype() == DType::Bool ? DType::U8 : a->dtype(), [&](auto t) {
    using T = decltype(t);
    consumeError(std::move(result));
    result = binaryTyped<T, uint8_t>(ctx, *a, *b, cmp);
  });
  if (!handled)
    return ctx.fail("unsupported type " + dtypeName(a->dtype()));
  if (result)
    return result;
  // The uint8 0/1 result becomes a bool tensor.
  Tensor &out = ctx.outputs[0];
  Tensor boolean(DType::Bool, out.shape());
  std::memcpy(boolean.raw(), out.raw(), out.size());
  out = boolean;
  return ok();
}

enum class Logic { And, Or, Xor };

Error logical(KernelContext &ctx, Logic kind) {
  const Tensor *a = ctx.in(0), *b = ctx.in(1);
  if (!a || !b || a->dtype() != DType::Bool || b->dtype() != DType::Bool)
    return ctx.fail("needs two bool inputs");
  if (auto err = binaryTyped<uint8_t, uint8_t>(ctx, *a, *b, [kind](uint8_t x, uint8_t y) -> uint8_t {
        return kind == Logic::And ? (x && y) : kind == Logic::Or ? (x || y) : (bool(x) != bool(y));
      }))
    return err;
  Tensor &out = ctx.outputs[0];
  Tensor boolean(DType::Bool, out.shape());
  std::memcpy(boolean.raw(), out.raw(), out.size());
  out = boolean;
  return ok();
}

/// Sum, Mean, Max, Min over any number of broadcast inputs.
Error variadic(KernelContext &ctx, Arith kind, bool mean) {
  if (ctx.inputs.empty() || !ctx.in(0))
    return ctx.fail("needs inputs");
  Tensor acc = *ctx.in(0);
  for (size_t i = 1; i < ctx.inputs.size(); ++i) {
    KernelContext sub = ctx;
    sub.inputs = {&acc, ctx.in(i)};
    sub.outputs.assign(1, Tensor());
    if (auto err = arithmetic(sub, kind))
      return err;
    acc = sub.outputs[0];
  }
  if (mean) {
    Tensor out(acc.dtype(), acc.shape());
    bool handled = dispatchFloat(acc.dtype(), [&](auto t) {
      using T = decltype(t);
      for (int64_t i = 0; i < acc.size(); ++i)
        out.data<T>()[i] = acc.data<T>()[i] / T(ctx.inputs.size());
    });
    if (!handled)
      return ctx.fail("Mean needs float inputs");
    acc = out;
  } else if (ctx.inputs.size() == 1) {
    Tensor copy(acc.dtype(), acc.shape());
    std::memcpy(copy.raw(), acc.raw(), acc.byteSize());
    acc = copy;
  }
  ctx.outputs[0] = acc;
  return ok();
}

//===----------------------------------------------------------------------===//
// Unary
//===----------------------------------------------------------------------===//

template <typename F>
Error unaryFloat(KernelContext &ctx, F fn) {
  const Tensor *x = ctx.in(0);
  if (!x)
    return ctx.fail("needs an input");
  Tensor out(x->dtype(), x->shape());
  bool handled = dispatchFloat(x->dtype(), [&](auto t) {
    using T = decltype(t);
    const T *a = x->data<T>();
    T *b = out.data<T>();
    for (int64_t i = 0, n = x->size(); i < n; ++i)
      b[i] = T(fn(double(a[i])));
  });
  if (!handled)
    return ctx.fail("unsupported type " + dtypeName(x->dtype()));
  ctx.outputs[0] = std::move(out);
  return ok();
}

/// Relu/Neg/Abs/Sign also run on integers.
template <typename F>
Error unaryNumeric(KernelContext &ctx, F fn) {
  const Tensor *x = ctx.in(0);
  if (!x)
    return ctx.fail("needs an input");
  Tensor out(x->dtype(), x->shape());
  bool handled = dispatchNumeric(x->dtype(), [&](auto t) {
    using T = decltype(t);
    const T *a = x->data<T>();
    T *b = out.data<T>();
    for (int64_t i = 0, n = x->size(); i < n; ++i)
      b[i] = fn(a[i]);
  });
  if (!handled)
    return ctx.fail("unsupported type " + dtypeName(x->dtype()));
  ctx.outputs[0] = std::move(out);
  return ok();
}

double erfValue(double x) { return std::erf(x); }

Error kRelu(KernelContext &c) { return unaryNumeric(c, [](auto v) { return v > 0 ? v : decltype(v)(0); }); }
Error kNeg(KernelContext &c) { return unaryNumeric(c, [](auto v) { return decltype(v)(-v); }); }
Error kAbs(KernelContext &c) { return unaryNumeric(c, [](auto v) { return v < 0 ? decltype(v)(-v) : v; }); }
Error kSign(KernelContext &c) {
  return unaryNumeric(c, [](auto v) { return decltype(v)(v > 0 ? 1 : (v < 0 ? -1 : 0)); });
}
Error kSigmoid(KernelContext &c) { return unaryFloat(c, [](double v) { return 1 / (1 + std::exp(-v)); }); }
Error kTanh(KernelContext &c) { return unaryFloat(c, [](double v) { return std::tanh(v); }); }
Error kExp(KernelContext &c) { return unaryFloat(c, [](double v) { return std::exp(v); }); }
Error kLog(KernelContext &c) { return unaryFloat(c, [](double v) { return std::log(v); }); }
Error kSqrt(KernelContext &c) { return unaryFloat(c, [](double v) { return std::sqrt(v); }); }
Error kErf(KernelContext &c) { return unaryFloat(c, erfValue); }
Error kReciprocal(KernelContext &c) { return unaryFloat(c, [](double v) { return 1 / v; }); }
Error kFloor(KernelContext &c) { return unaryFloat(c, [](double v) { return std::floor(v); }); }
Error kCeil(KernelContext &c) { return unaryFloat(c, [](double v) { return std::ceil(v); }); }
Error kRound(KernelContext &c) { return unaryFloat(c, [](double v) { return std::nearbyint(v); }); }
Error kSin(KernelContext &c) { return unaryFloat(c, [](double v) { return std::sin(v); }); }
Error kCos(KernelContext &c) { return unaryFloat(c, [](double v) { return std::cos(v); }); }
Error kSoftplus(KernelContext &c) { return unaryFloat(c, [](double v) { return std::log1p(std::exp(v)); }); }
Error kSoftsign(KernelContext &c) { return unaryFloat(c, [](double v) { return v / (1 + std::abs(v)); }); }
Error kHardSwish(KernelContext &c) {
  return unaryFloat(c, [](double v) { return v * std::max(0.0, std::min(1.0, v / 6 + 0.5)); });
}
Error kHardSigmoid(KernelContext &c) {
  double alpha = c.f("alpha", 0.2f), beta = c.f("beta", 0.5f);
  return unaryFloat(c, [=](double v) { return std::max(0.0, std::min(1.0, alpha * v + beta)); });
}
Error kLeakyRelu(KernelContext &c) {
  double alpha = c.f("alpha", 0.01f);
  return unaryFloat(c, [=](double v) { return v >= 0 ? v : alpha * v; });
}
Error kElu(KernelContext &c) {
  double alpha = c.f("alpha", 1.0f);
  return unaryFloat(c, [=](double v) { return v >= 0 ? v : alpha * (std::exp(v) - 1); });
}
Error kSelu(KernelContext &c) {
  double alpha = c.f("alpha", 1.67326319217681884765625f), gamma = c.f("gamma", 1.05070102214813232421875f);
  return unaryFloat(c, [=](double v) { return gamma * (v > 0 ? v : alpha * (std::exp(v) - 1)); });
}
Error kThresholdedRelu(KernelContext &c) {
  double alpha = c.f("alpha", 1.0f);
  return unaryFloat(c, [=](double v) { return v > alpha ? v : 0.0; });
}
Error kCelu(KernelContext &c) {
  double alpha = c.f("alpha", 1.0f);
  return unaryFloat(c, [=](double v) { return std::max(0.0, v) + std::min(0.0, alpha * (std::exp(v / alpha) - 1)); });
}

Error kNot(KernelContext &c) {
  const Tensor *x = c.in(0);
  if (!x || x->dtype() != DType::Bool)
    return c.fail("needs a bool input");
  Tensor out(DType::Bool, x->shape());
  for (int64_t i = 0; i < x->size(); ++i)
    out.data<uint8_t>()[i] = !x->data<uint8_t>()[i];
  c.outputs[0] = out;
  return ok();
}

Error kClip(KernelContext &c) {
  const Tensor *x = c.in(0);
  if (!x)
    return c.fail("needs an input");
  // Opset < 11 gives min/max as attributes, later as optional inputs.
  double lo = -std::numeric_limits<double>::infinity(), hi = -lo;
  if (c.opset < 11) {
    lo = c.f("min", -std::numeric_limits<float>::max());
    hi = c.f("max", std::numeric_limits<float>::max());
  } else {
    if (c.in(1)) lo = c.in(1)->asDouble(0);
    if (c.in(2)) hi = c.in(2)->asDouble(0);
  }
  return unaryNumeric(c, [=](auto v) {
    using T = decltype(v);
    // max then min, as ONNX's reference (numpy.clip) gives it when min > max.
    double d = double(v);
    d = d < lo ? lo : d;
    return T(d > hi ? hi : d);
  });
}

Error kIdentity(KernelContext &c) {
  if (!c.in(0))
    return c.fail("needs an input");
  c.outputs[0] = *c.in(0);
  return ok();
}

Error kDropout(KernelContext &c) {
  const Tensor *x = c.in(0);
  if (!x)
    return c.fail("needs an input");
  bool training = c.in(2) && c.in(2)->size() == 1 && c.in(2)->asInt(0) != 0;
  double ratio = c.in(1) ? c.in(1)->asDouble(0) : 0.5;
  if (training && ratio != 0)
    return c.fail("training mode with a non-zero ratio (random masks) is not supported");
  c.outputs[0] = *x;
  if (c.numOutputs > 1) {
    Tensor mask(DType::Bool, x->shape());
    std::fill(mask.data<uint8_t>(), mask.data<uint8_t>() + mask.size(), 1);
    c.outputs[1] = mask;
  }
  return ok();
}

//===----------------------------------------------------------------------===//
// Matrix products
//===----------------------------------------------------------------------===//

template <typename T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T> using MapM = Eigen::Map<RowMatrix<T>>;
template <typename T> using CMapM = Eigen::Map<const RowMatrix<T>>;

/// numpy matmul: batched, broadcast, 1-D operands promoted.
template <typename T>
Error matmulTyped(KernelContext &c, const Tensor &a0, const Tensor &b0, Tensor &outTensor) {
  Shape sa(a0.shape()), sb(b0.shape());
  bool vecA = sa.size() == 1, vecB = sb.size() == 1;
  if (vecA) sa.insert(sa.begin(), 1);
  if (vecB) sb.push_back(1);
  int64_t m = sa[sa.size() - 2], k = sa.back(), k2 = sb[sb.size() - 2], n = sb.back();
  if (k != k2)
    return c.fail("inner dimensions differ: " + shapeString(a0.shape()) + " x " +
                  shapeString(b0.shape()));
  ArrayRef<int64_t> batchA(sa.data(), sa.size() - 2), batchB(sb.data(), sb.size() - 2);
  auto batch = broadcastShapes({batchA, batchB});
  if (!batch)
    return c.fail("batch dimensions do not broadcast");
  Shape outShape(*batch);
  if (!vecA) outShape.push_back(m);
  if (!vecB) outShape.push_back(n);
  Tensor out(dtypeOf<T>(), outShape);
  const T *pa = a0.data<T>(), *pb = b0.data<T>();
  T *pc = out.data<T>();
  if (batchB.empty()) {
    // B is one matrix: every row of every batch of A is one GEMM.
    int64_t rows = numElements(batchA) * m;
    MapM<T>(pc, rows, n).noalias() = CMapM<T>(pa, rows, k) * CMapM<T>(pb, k, n);
    outTensor = std::move(out);
    return ok();
  }
  std::array<Shape, 2> strides = {broadcastStrides(batchA, *batch), broadcastStrides(batchB, *batch)};
  forEachBroadcast<2>(*batch, strides, [&](int64_t i, const std::array<int64_t, 2> &o) {
    CMapM<T> A(pa + o[0] * m * k, m, k);
    CMapM<T> B(pb + o[1] * k * n, k, n);
    MapM<T> C(pc + i * m * n, m, n);
    C.noalias() = A * B;
  });
  outTensor = std::move(out);
  return ok();
}

Error kMatMul(KernelContext &c) {
  const Tensor *a = c.in(0), *b = c.in(1);
  if (!a || !b || a->dtype() != b->dtype())
    return c.fail("needs two inputs of one type");
  if (a->dtype() == DType::F32)
    return matmulTyped<float>(c, *a, *b, c.outputs[0]);
  if (a->dtype() == DType::F64)
    return matmulTyped<double>(c, *a, *b, c.outputs[0]);
  if (a->dtype() == DType::I64)
    return matmulTyped<int64_t>(c, *a, *b, c.outputs[0]);
  if (a->dtype() == DType::I32)
    return matmulTyped<int32_t>(c, *a, *b, c.outputs[0]);
  return c.fail("unsupported type " + dtypeName(a->dtype()));
}

template <typename T>
Error gemmTyped(KernelContext &c) {
  const Tensor &a = *c.in(0), &b = *c.in(1);
  const Tensor *bias = c.in(2);
  if (a.rank() != 2 || b.rank() != 2)
    return c.fail("A and B must be 2-D");
  bool ta = c.i("transA", 0), tb = c.i("transB", 0);
  T alpha = c.f("alpha", 1.0f), beta = c.f("beta", 1.0f);
  int64_t m = ta ? a.dim(1) : a.dim(0), k = ta ? a.dim(0) : a.dim(1);
  int64_t kb = tb ? b.dim(1) : b.dim(0), n = tb ? b.dim(0) : b.dim(1);
  if (k != kb)
    return c.fail("inner dimensions differ");
  Tensor out(dtypeOf<T>(), {m, n});
  MapM<T> C(out.data<T>(), m, n);
  CMapM<T> A(a.data<T>(), a.dim(0), a.dim(1));
  CMapM<T> B(b.data<T>(), b.dim(0), b.dim(1));
  if (ta && tb) C.noalias() = A.transpose() * B.transpose();
  else if (ta) C.noalias() = A.transpose() * B;
  else if (tb) C.noalias() = A * B.transpose();
  else C.noalias() = A * B;
  if (alpha != T(1))
    C *= alpha;
  if (bias) {
    auto shape = broadcastShapes({bias->shape(), ArrayRef<int64_t>{m, n}});
    if (!shape || (*shape)[0] != m || (*shape)[1] != n)
      return c.fail("C does not broadcast to " + shapeString({m, n}));
    std::array<Shape, 1> strides = {broadcastStrides(bias->shape(), {m, n})};
    const T *pc = bias->data<T>();
    T *po = out.data<T>();
    forEachBroadcast<1>(ArrayRef<int64_t>{m, n}, strides,
                        [&](int64_t i, const std::array<int64_t, 1> &o) { po[i] += beta * pc[o[0]]; });
  }
  c.outputs[0] = std::move(out);
  return ok();
}

Error kGemm(KernelContext &c) {
  if (!c.in(0) || !c.in(1))
    return c.fail("needs A and B");
  if (c.in(0)->dtype() == DType::F32) return gemmTyped<float>(c);
  if (c.in(0)->dtype() == DType::F64) return gemmTyped<double>(c);
  return c.fail("unsupported type " + dtypeName(c.in(0)->dtype()));
}

//===----------------------------------------------------------------------===//
// Convolution and pooling
//===----------------------------------------------------------------------===//

/// Spatial geometry shared by Conv, ConvTranspose and pools, always 3-D
/// (1-D and 2-D windows get leading size-1 axes).
struct Window {
  int64_t spatial = 0; // original number of spatial axes
  std::array<int64_t, 3> in{1, 1, 1}, out{1, 1, 1}, kernel{1, 1, 1}, stride{1, 1, 1},
      dilation{1, 1, 1}, padBegin{0, 0, 0}, padEnd{0, 0, 0};
};

/// Fills kernel/stride/dilation/pads from the node's attributes for a
/// convolution-like op whose input spatial sizes are `inSizes`.
Error window(KernelContext &c, ArrayRef<int64_t> inSizes, ArrayRef<int64_t> kernelSizes,
             Window &w, bool ceilMode = false) {
  int64_t r = inSizes.size();
  if (r < 1 || r > 3)
    return c.fail(llvm::Twine(r) + "-D windows are not supported (1-D to 3-D are)");
  w.spatial = r;
  auto strides = c.ints("strides"), dilations = c.ints("dilations"), pads = c.ints("pads");
  std::string autoPad = c.s("auto_pad", "NOTSET");
  int64_t off = 3 - r;
  for (int64_t i = 0; i < r; ++i) {
    int64_t j = off + i;
    w.in[j] = inSizes[i];
    w.kernel[j] = kernelSizes[i];
    w.stride[j] = strides ? (*strides)[i] : 1;
    w.dilation[j] = dilations ? (*dilations)[i] : 1;
    int64_t extent = (w.kernel[j] - 1) * w.dilation[j] + 1;
    if (autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER") {
      int64_t o = (w.in[j] + w.stride[j] - 1) / w.stride[j];
      int64_t total = std::max<int64_t>(0, (o - 1) * w.stride[j] + extent - w.in[j]);
      w.padBegin[j] = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2;
      w.padEnd[j] = total - w.padBegin[j];
    } else if (autoPad == "VALID") {
      w.padBegin[j] = w.padEnd[j] = 0;
    } else if (pads) {
      if ((int64_t)pads->size() != 2 * r)
        return c.fail("pads has the wrong length");
      w.padBegin[j] = (*pads)[i];
      w.padEnd[j] = (*pads)[i + r];
    }
    int64_t span = w.in[j] + w.padBegin[j] + w.padEnd[j] - extent;
    if (span < 0)
      return c.fail("the window is larger than the padded input");
    int64_t o = ceilMode ? (span + w.stride[j] - 1) / w.stride[j] + 1 : span / w.stride[j] + 1;
    // A last window that starts in the end padding is dropped.
    if (ceilMode && (o - 1) * w.stride[j] >= w.in[j] + w.padBegin[j])
      --o;
    w.out[j] = o;
  }
  return ok();
}

/// Unfolds one image's channels [C, in...] into [C*K, out...] columns.
template <typename T>
void im2col(const T *x, int64_t channels, const Window &w, T *col) {
  int64_t outSize = w.out[0] * w.out[1] * w.out[2];
  int64_t inPlane = w.in[0] * w.in[1] * w.in[2];
  for (int64_t ch = 0; ch < channels; ++ch) {
    const T *xc = x + ch * inPlane;
    for (int64_t kd = 0; kd < w.kernel[0]; ++kd)
      for (int64_t kh = 0; kh < w.kernel[1]; ++kh)
        for (int64_t kw = 0; kw < w.kernel[2]; ++kw) {
          T *dst = col;
          col += outSize;
          for (int64_t od = 0; od < w.out[0]; ++od) {
            int64_t id = od * w.stride[0] - w.padBegin[0] + kd * w.dilation[0];
            for (int64_t oh = 0; oh < w.out[1]; ++oh) {
              int64_t ih = oh * w.stride[1] - w.padBegin[1] + kh * w.dilation[1];
              T *row = dst + (od * w.out[1] + oh) * w.out[2];
              if (id < 0 || id >= w.in[0] || ih < 0 || ih >= w.in[1]) {
                std::fill(row, row + w.out[2], T(0));
                continue;
              }
              const T *src = xc + (id * w.in[1] + ih) * w.in[2];
              int64_t iw = -w.padBegin[2] + kw * w.dilation[2];
              if (w.stride[2] == 1 && iw >= 0 && iw + w.out[2] <= w.in[2]) {
                std::copy(src + iw, src + iw + w.out[2], row);
                continue;
              }
              for (int64_t ow = 0; ow < w.out[2]; ++ow, iw += w.stride[2])
                row[ow] = (iw >= 0 && iw < w.in[2]) ? src[iw] : T(0);
            }
          }
        }
  }
}

/// The inverse scatter-add of im2col (for ConvTranspose): `col` is
/// [C*K, in...] and accumulates into the image [C, out...], where the roles
/// of `in` and `out` are those of the forward convolution.
template <typename T>
void col2im(const T *col, int64_t channels, const Window &w, T *y) {
  int64_t colSize = w.out[0] * w.out[1] * w.out[2];
  int64_t imgPlane = w.in[0] * w.in[1] * w.in[2];
  for (int64_t ch = 0; ch < channels; ++ch) {
    T *yc = y + ch * imgPlane;
    for (int64_t kd = 0; kd < w.kernel[0]; ++kd)
      for (int64_t kh = 0; kh < w.kernel[1]; ++kh)
        for (int64_t kw = 0; kw < w.kernel[2]; ++kw) {
          const T *src = col;
          col += colSize;
          for (int64_t od = 0; od < w.out[0]; ++od) {
            int64_t id = od * w.stride[0] - w.padBegin[0] + kd * w.dilation[0];
            if (id < 0 || id >= w.in[0])
              continue;
            for (int64_t oh = 0; oh < w.out[1]; ++oh) {
              int64_t ih = oh * w.stride[1] - w.padBegin[1] + kh * w.dilation[1];
              if (ih < 0 || ih >= w.in[1])
                continue;
              const T *row = src + (od * w.out[1] + oh) * w.out[2];
              T *dst = yc + (id * w.in[1] + ih) * w.in[2];
              int64_t iw = -w.padBegin[2] + kw * w.dilation[2];
              for (int64_t ow = 0; ow < w.out[2]; ++ow, iw += w.stride[2])
                if (iw >= 0 && iw < w.in[2])
                  dst[iw] += row[ow];
            }
          }
        }
  }
}

Shape spatialShape(const Window &w, int64_t n, int64_t c, bool useOut) {
  Shape s = {n, c};
  for (int64_t j = 3 - w.spatial; j < 3; ++j)
    s.push_back(useOut ? w.out[j] : w.in[j]);
  return s;
}

/// y = conv(x, w) + b in type T; `x` [N, C, ...], `wt` [M, C/g, k...].
template <typename T>
Error convTyped(KernelContext &c, const T *x, ArrayRef<int64_t> xShape, const T *wt,
                ArrayRef<int64_t> wShape, const T *bias, Tensor &result) {
  if (xShape.size() < 3 || xShape.size() != wShape.size())
    return c.fail("input " + shapeString(xShape) + " and weight " + shapeString(wShape) +
                  " ranks do not fit");
  int64_t n = xShape[0], channels = xShape[1], m = wShape[0];
  int64_t group = c.i("group", 1);
  if (group <= 0 || channels % group || m % group || wShape[1] * group != channels)
    return c.fail("input channels " + llvm::Twine(channels) + ", weight " + shapeString(wShape) +
                  " and group " + llvm::Twine(group) + " do not fit");
  Window w;
  if (auto err = window(c, xShape.drop_front(2), wShape.drop_front(2), w))
    return err;
  int64_t cg = channels / group, mg = m / group;
  int64_t kernelSize = w.kernel[0] * w.kernel[1] * w.kernel[2];
  int64_t outSize = w.out[0] * w.out[1] * w.out[2];
  int64_t inPlane = w.in[0] * w.in[1] * w.in[2];
  Tensor out(dtypeOf<T>(), spatialShape(w, n, m, true));
  if (cg == 1 && mg == 1 && w.in[0] == 1) {
    // Depthwise 1-D/2-D: a direct loop beats one tiny GEMM per channel.
    for (int64_t b = 0; b < n; ++b)
      for (int64_t ch = 0; ch < channels; ++ch) {
        const T *xc = x + (b * channels + ch) * inPlane;
        const T *wc = wt + ch * kernelSize;
        T *yc = out.data<T>() + (b * m + ch) * outSize;
        std::fill(yc, yc + outSize, bias ? bias[ch] : T(0));
        for (int64_t kh = 0; kh < w.kernel[1]; ++kh)
          for (int64_t kw = 0; kw < w.kernel[2]; ++kw) {
            T weight = wc[kh * w.kernel[2] + kw];
            int64_t iw0 = -w.padBegin[2] + kw * w.dilation[2];
            for (int64_t oh = 0; oh < w.out[1]; ++oh) {
              int64_t ih = oh * w.stride[1] - w.padBegin[1] + kh * w.dilation[1];
              if (ih < 0 || ih >= w.in[1])
                continue;
              const T *src = xc + ih * w.in[2];
              T *dst = yc + oh * w.out[2];
              if (w.stride[2] == 1) {
                int64_t lo = std::max<int64_t>(0, -iw0);
                int64_t hi = std::min<int64_t>(w.out[2], w.in[2] - iw0);
                for (int64_t ow = lo; ow < hi; ++ow)
                  dst[ow] += weight * src[iw0 + ow];
              } else {
                for (int64_t ow = 0, iw = iw0; ow < w.out[2]; ++ow, iw += w.stride[2])
                  if (iw >= 0 && iw < w.in[2])
                    dst[ow] += weight * src[iw];
              }
            }
          }
      }
    result = std::move(out);
    return ok();
  }
  bool pointwise = kernelSize == 1 && w.stride == std::array<int64_t, 3>{1, 1, 1} &&
                   w.padBegin == std::array<int64_t, 3>{0, 0, 0} &&
                   w.padEnd == std::array<int64_t, 3>{0, 0, 0};
  std::vector<T> col(pointwise ? 0 : cg * kernelSize * outSize);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t g = 0; g < group; ++g) {
      const T *xg = x + (b * channels + g * cg) * inPlane;
      const T *colData = xg;
      if (!pointwise) {
        im2col(xg, cg, w, col.data());
        colData = col.data();
      }
      CMapM<T> W(wt + g * mg * cg * kernelSize, mg, cg * kernelSize);
      CMapM<T> X(colData, cg * kernelSize, outSize);
      MapM<T> Y(out.data<T>() + (b * m + g * mg) * outSize, mg, outSize);
      Y.noalias() = W * X;
      if (bias)
        for (int64_t o = 0; o < mg; ++o)
          Y.row(o).array() += bias[g * mg + o];
    }
  result = std::move(out);
  return ok();
}

Error kConv(KernelContext &c) {
  const Tensor *x = c.in(0), *w = c.in(1), *b = c.in(2);
  if (!x || !w)
    return c.fail("needs X and W");
  if (x->dtype() != w->dtype() || (b && b->dtype() != x->dtype()))
    return c.fail("inputs have different types");
  if (b && (b->rank() != 1 || b->dim(0) != w->dim(0)))
    return c.fail("bias must have one value per output channel");
  if (x->dtype() == DType::F32)
    return convTyped<float>(c, x->data<float>(), x->shape(), w->data<float>(), w->shape(),
                            b ? b->data<float>() : nullptr, c.outputs[0]);
  if (x->dtype() == DType::F64)
    return convTyped<double>(c, x->data<double>(), x->shape(), w->data<double>(), w->shape(),
                             b ? b->data<double>() : nullptr, c.outputs[0]);
  return c.fail("unsupported type " + dtypeName(x->dtype()));
}

template <typename T>
Error convTransposeTyped(KernelContext &c, const Tensor &x, const Tensor &wt, const Tensor *bias) {
  if (x.rank() < 3 || x.rank() != wt.rank())
    return c.fail("input and weight ranks do not fit");
  int64_t n = x.dim(0), channels = x.dim(1), group = c.i("group", 1);
  if (group <= 0 || wt.dim(0) != channels || channels % group)
    return c.fail("weight " + shapeString(wt.shape()) + " does not fit " + llvm::Twine(channels) +
                  " input channels and group " + llvm::Twine(group));
  int64_t mg = wt.dim(1), m = mg * group, cg = channels / group;
  int64_t r = x.rank() - 2;
  auto strides = c.ints("strides"), dilations = c.ints("dilations"), pads = c.ints("pads");
  auto outputPadding = c.ints("output_padding"), outputShape = c.ints("output_shape");
  std::string autoPad = c.s("auto_pad", "NOTSET");
  // Geometry of the equivalent forward convolution: its input is our output.
  Window w;
  w.spatial = r;
  int64_t off = 3 - r;
  for (int64_t i = 0; i < r; ++i) {
    int64_t j = off + i;
    w.kernel[j] = wt.dim(2 + i);
    w.stride[j] = strides ? (*strides)[i] : 1;
    w.dilation[j] = dilations ? (*dilations)[i] : 1;
    w.out[j] = x.dim(2 + i);
    int64_t extent = (w.kernel[j] - 1) * w.dilation[j] + 1;
    int64_t outPad = outputPadding ? (*outputPadding)[i] : 0;
    if (outputShape || autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER") {
      int64_t target = outputShape ? (*outputShape)[outputShape->size() - r + i]
                                   : x.dim(2 + i) * w.stride[j];
      int64_t total = w.stride[j] * (x.dim(2 + i) - 1) + outPad + extent - target;
      total = std::max<int64_t>(total, 0);
      if (autoPad == "SAME_UPPER") {
        w.padBegin[j] = total / 2;
        w.padEnd[j] = total - total / 2;
      } else {
        w.padBegin[j] = total - total / 2;
        w.padEnd[j] = total / 2;
      }
      w.in[j] = target;
    } else {
      if (pads) {
        w.padBegin[j] = (*pads)[i];
        w.padEnd[j] = (*pads)[i + r];
      }
      w.in[j] = w.stride[j] * (x.dim(2 + i) - 1) + outPad + extent - w.padBegin[j] - w.padEnd[j];
    }
  }
  int64_t kernelSize = w.kernel[0] * w.kernel[1] * w.kernel[2];
  int64_t inSize = w.out[0] * w.out[1] * w.out[2];
  int64_t outPlane = w.in[0] * w.in[1] * w.in[2];
  Tensor out(dtypeOf<T>(), spatialShape(w, n, m, false));
  std::fill(out.data<T>(), out.data<T>() + out.size(), T(0));
  std::vector<T> col(mg * kernelSize * inSize);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t g = 0; g < group; ++g) {
      CMapM<T> W(wt.data<T>() + g * cg * mg * kernelSize, cg, mg * kernelSize);
      CMapM<T> X(x.data<T>() + (b * channels + g * cg) * inSize, cg, inSize);
      MapM<T> Col(col.data(), mg * kernelSize, inSize);
      Col.noalias() = W.transpose() * X;
      col2im(col.data(), mg, w, out.data<T>() + (b * m + g * mg) * outPlane);
    }
  if (bias)
    for (int64_t b = 0; b < n; ++b)
      for (int64_t o = 0; o < m; ++o) {
        T *p = out.data<T>() + (b * m + o) * outPlane;
        T v = bias->data<T>()[o];
        for (int64_t i = 0; i < outPlane; ++i)
          p[i] += v;
      }
  c.outputs[0] = std::move(out);
  return ok();
}

Error kConvTranspose(KernelContext &c) {
  const Tensor *x = c.in(0), *w = c.in(1);
  if (!x || !w || x->dtype() != w->dtype())
    return c.fail("needs X and W of one type");
  if (x->dtype() == DType::F32) return convTransposeTyped<float>(c, *x, *w, c.in(2));
  if (x->dtype() == DType::F64) return convTransposeTyped<double>(c, *x, *w, c.in(2));
  return c.fail("unsupported type " + dtypeName(x->dtype()));
}

template <typename T>
Error poolTyped(KernelContext &c, bool isMax) {
  const Tensor &x = *c.in(0);
  auto kernel = c.ints("kernel_shape");
  if (!kernel)
    return c.fail("needs kernel_shape");
  if (x.rank() != (int64_t)kernel->size() + 2)
    return c.fail("kernel_shape does not fit the input rank");
  bool columnMajor = c.i("storage_order", 0) != 0;
  if (columnMajor && kernel->size() != 2)
    return c.fail("storage_order = 1 is supported for 2-D pooling only");
  Window w;
  if (auto err = window(c, x.shape().drop_front(2), *kernel, w, c.i("ceil_mode", 0) != 0))
    return err;
  bool countPad = c.i("count_include_pad", 0) != 0;
  int64_t n = x.dim(0), channels = x.dim(1);
  int64_t inPlane = w.in[0] * w.in[1] * w.in[2], outPlane = w.out[0] * w.out[1] * w.out[2];
  Tensor out(dtypeOf<T>(), spatialShape(w, n, channels, true));
  bool wantIndices = isMax && c.numOutputs > 1;
  Tensor indices;
  if (wantIndices)
    indices = Tensor(DType::I64, out.shape());
  for (int64_t nc = 0; nc < n * channels; ++nc) {
    const T *src = x.data<T>() + nc * inPlane;
    T *dst = out.data<T>() + nc * outPlane;
    for (int64_t od = 0; od < w.out[0]; ++od)
      for (int64_t oh = 0; oh < w.out[1]; ++oh)
        for (int64_t ow = 0; ow < w.out[2]; ++ow) {
          std::array<int64_t, 3> o = {od, oh, ow};
          double acc = isMax ? -std::numeric_limits<double>::infinity() : 0;
          int64_t best = -1, valid = 0, padded = 1;
          for (int k = 0; k < 3; ++k) {
            int64_t start = o[k] * w.stride[k] - w.padBegin[k];
            int64_t end = std::min(start + (w.kernel[k] - 1) * w.dilation[k] + 1,
                                   w.in[k] + w.padEnd[k]);
            padded *= (end - start + w.dilation[k] - 1) / w.dilation[k];
          }
          for (int64_t kd = 0; kd < w.kernel[0]; ++kd) {
            int64_t id = od * w.stride[0] - w.padBegin[0] + kd * w.dilation[0];
            if (id < 0 || id >= w.in[0]) continue;
            for (int64_t kh = 0; kh < w.kernel[1]; ++kh) {
              int64_t ih = oh * w.stride[1] - w.padBegin[1] + kh * w.dilation[1];
              if (ih < 0 || ih >= w.in[1]) continue;
              for (int64_t kw = 0; kw < w.kernel[2]; ++kw) {
                int64_t iw = ow * w.stride[2] - w.padBegin[2] + kw * w.dilation[2];
                if (iw < 0 || iw >= w.in[2]) continue;
                int64_t at = (id * w.in[1] + ih) * w.in[2] + iw;
                double v = src[at];
                ++valid;
                if (isMax) {
                  if (v > acc || best < 0) { acc = v; best = at; }
                } else {
                  acc += v;
                }
              }
            }
          }
          int64_t at = (od * w.out[1] + oh) * w.out[2] + ow;
          if (isMax) {
            dst[at] = T(acc);
            if (wantIndices) {
              int64_t index = best;
              if (columnMajor) // (h, w) -> w * H + h
                index = (best % w.in[2]) * w.in[1] + best / w.in[2];
              indices.data<int64_t>()[nc * outPlane + at] = nc * inPlane + index;
            }
          } else {
            dst[at] = T(acc / double(countPad ? padded : std::max<int64_t>(valid, 1)));
          }
        }
  }
  c.outputs[0] = std::move(out);
  if (wantIndices)
    c.outputs[1] = std::move(indices);
  return ok();
}

Error kMaxPool(KernelContext &c) {
  if (!c.in(0)) return c.fail("needs an input");
  if (c.in(0)->dtype() == DType::F32) return poolTyped<float>(c, true);
  if (c.in(0)->dtype() == DType::F64) return poolTyped<double>(c, true);
  if (c.in(0)->dtype() == DType::U8) return poolTyped<uint8_t>(c, true);
  if (c.in(0)->dtype() == DType::I8) return poolTyped<int8_t>(c, true);
  return c.fail("unsupported type " + dtypeName(c.in(0)->dtype()));
}

Error kAveragePool(KernelContext &c) {
  if (!c.in(0)) return c.fail("needs an input");
  if (c.in(0)->dtype() == DType::F32) return poolTyped<float>(c, false);
  if (c.in(0)->dtype() == DType::F64) return poolTyped<double>(c, false);
  return c.fail("unsupported type " + dtypeName(c.in(0)->dtype()));
}

Error globalPool(KernelContext &c, bool isMax) {
  const Tensor *x = c.in(0);
  if (!x || x->rank() < 2)
    return c.fail("needs an input of rank >= 2");
  Shape shape(x->shape());
  for (size_t i = 2; i < shape.size(); ++i)
    shape[i] = 1;
  int64_t plane = x->size() / std::max<int64_t>(x->dim(0) * x->dim(1), 1);
  Tensor out(x->dtype(), shape);
  bool handled = dispatchFloat(x->dtype(), [&](auto t) {
    using T = decltype(t);
    for (int64_t i = 0; i < x->dim(0) * x->dim(1); ++i) {
      Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>> v(x->data<T>() + i * plane, plane);
      out.data<T>()[i] = isMax ? v.maxCoeff() : v.mean();
    }
  });
  if (!handled)
    return c.fail("unsupported type " + dtypeName(x->dtype()));
  c.outputs[0] = std::move(out);
  return ok();
}
Error kGlobalAveragePool(KernelContext &c) { return globalPool(c, false); }
Error kGlobalMaxPool(KernelContext &c) { return globalPool(c, true); }

//===----------------------------------------------------------------------===//
// Normalization
//===----------------------------------------------------------------------===//

Error kBatchNormalization(KernelContext &c) {
  const Tensor *x = c.in(0);
  if (!x || !c.in(4))
    return c.fail("needs 5 inputs");
  bool training = c.i("training_mode", 0) != 0;
  if (c.i("spatial", 1) == 0)
    return c.fail("spatial=0 (statistics per activation, opsets before 9) is not supported");
  if (!training && c.numOutputs > 1)
    return c.fail("the multi-output form of opsets before 14 is not supported");
  if (x->dtype() != DType::F32 && x->dtype() != DType::F64)
    return c.fail("unsupported type " + dtypeName(x->dtype()));
  int64_t channels = x->rank() > 1 ? x->dim(1) : 1;
  for (int k = 1; k <= 4; ++k)
    if (c.in(k)->size() != channels)
      return c.fail("parameters must have one value per channel");
  double eps = c.f("epsilon", 1e-5f), momentum = c.f("momentum", 0.9f);
  int64_t n = x->dim(0), plane = x->size() / std::max<int64_t>(n * channels, 1);
  // Training mode normalizes with the batch statistics and updates the
  // running ones: running = running * momentum + batch * (1 - momentum).
  std::vector<double> mean(channels), var(channels);
  for (int64_t ch = 0; ch < channels; ++ch) {
    if (!training) {
      mean[ch] = c.in(3)->asDouble(ch);
      var[ch] = c.in(4)->asDouble(ch);
      continue;
    }
    double sum = 0, sq = 0;
    for (int64_t b = 0; b < n; ++b)
      for (int64_t i = 0; i < plane; ++i) {
        double v = x->asDouble((b * channels + ch) * plane + i);
        sum += v;
        sq += v * v;
      }
    double count = double(n * plane);
    mean[ch] = sum / count;
    var[ch] = sq / count - mean[ch] * mean[ch];
  }
  if (training) {
    Tensor runMean(c.in(3)->dtype(), {channels}), runVar(c.in(4)->dtype(), {channels});
    for (int64_t ch = 0; ch < channels; ++ch) {
      runMean.setDouble(ch, c.in(3)->asDouble(ch) * momentum + mean[ch] * (1 - momentum));
      runVar.setDouble(ch, c.in(4)->asDouble(ch) * momentum + var[ch] * (1 - momentum));
    }
    if (c.numOutputs > 1) c.outputs[1] = runMean;
    if (c.numOutputs > 2) c.outputs[2] = runVar;
  }
  Tensor out(x->dtype(), x->shape());
  dispatchFloat(x->dtype(), [&](auto t) {
    using T = decltype(t);
    for (int64_t ch = 0; ch < channels; ++ch) {
      double scale = c.in(1)->asDouble(ch) / std::sqrt(var[ch] + eps);
      double shift = c.in(2)->asDouble(ch) - mean[ch] * scale;
      for (int64_t b = 0; b < n; ++b) {
        const T *src = x->data<T>() + (b * channels + ch) * plane;
        T *dst = out.data<T>() + (b * channels + ch) * plane;
        for (int64_t i = 0; i < plane; ++i)
          dst[i] = T(src[i] * scale + shift);
      }
    }
  });
  c.outputs[0] = std::move(out);
  return ok();
}

Error kInstanceNormalization(KernelContext &c) {
  const Tensor *x = c.in(0), *scale = c.in(1), *bias = c.in(2);
  if (!x || !scale || !bias || x->dtype() != DType::F32)
    return c.fail("needs float input, scale and B");
  double eps = c.f("epsilon", 1e-5f);
  int64_t n = x->dim(0), channels = x->dim(1), plane = x->size() / (n * channels);
  Tensor out(DType::F32, x->shape());
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < channels; ++ch) {
      const float *src = x->data<float>() + (b * channels + ch) * plane;
      float *dst = out.data<float>() + (b * channels + ch) * plane;
      double mean = 0, var = 0;
      for (int64_t i = 0; i < plane; ++i) mean += src[i];
      mean /= plane;
      for (int64_t i = 0; i < plane; ++i) var += (src[i] - mean) * (src[i] - mean);
      var /= plane;
      double s = scale->asDouble(ch) / std::sqrt(var + eps);
      for (int64_t i = 0; i < plane; ++i)
        dst[i] = float((src[i] - mean) * s + bias->asDouble(ch));
    }
  c.outputs[0] = std::move(out);
  return ok();
}

Error kLayerNormalization(KernelContext &c) {
  const Tensor *x = c.in(0), *scale = c.in(1), *bias = c.in(2);
  if (!x || !scale)
    return c.fail("needs X and Scale");
  if (x->dtype() != DType::F32 && x->dtype() != DType::F64)
    return c.fail("unsupported type " + dtypeName(x->dtype()));
  int64_t axis = normAxis(c.i("axis", -1), x->rank());
  double eps = c.f("epsilon", 1e-5f);
  int64_t outer = numElements(x->shape().take_front(axis));
  int64_t inner = numElements(x->shape().drop_front(axis));
  Shape statShape(x->shape());
  for (int64_t i = axis; i < x->rank(); ++i)
    statShape[i] = 1;
  Tensor out(x->dtype(), x->shape());
  Tensor meanT(x->dtype(), statShape), invT(x->dtype(), statShape);
  std::array<Shape, 1> sStrides = {broadcastStrides(scale->shape(), x->shape().drop_front(axis))};
  std::array<Shape, 1> bStrides;
  if (bias)
    bStrides = {broadcastStrides(bias->shape(), x->shape().drop_front(axis))};
  std::vector<double> sc(inner), bi(inner, 0.0);
  forEachBroadcast<1>(x->shape().drop_front(axis), sStrides,
                      [&](int64_t i, const std::array<int64_t, 1> &o) { sc[i] = scale->asDouble(o[0]); });
  if (bias)
    forEachBroadcast<1>(x->shape().drop_front(axis), bStrides,
                        [&](int64_t i, const std::array<int64_t, 1> &o) { bi[i] = bias->asDouble(o[0]); });
  dispatchFloat(x->dtype(), [&](auto t) {
    using T = decltype(t);
    for (int64_t r = 0; r < outer; ++r) {
      const T *src = x->data<T>() + r * inner;
      T *dst = out.data<T>() + r * inner;
      double mean = 0, var = 0;
      for (int64_t i = 0; i < inner; ++i) mean += src[i];
      mean /= inner;
      for (int64_t i = 0; i < inner; ++i) var += (src[i] - mean) * (src[i] - mean);
      var /= inner;
      double inv = 1 / std::sqrt(var + eps);
      for (int64_t i = 0; i < inner; ++i)
        dst[i] = T((src[i] - mean) * inv * sc[i] + bi[i]);
      meanT.data<T>()[r] = T(mean);
      invT.data<T>()[r] = T(inv);
    }
  });
  c.outputs[0] = std::move(out);
  if (c.numOutputs > 1) c.outputs[1] = meanT;
  if (c.numOutputs > 2) c.outputs[2] = invT;
  return ok();
}

Error softmaxLike(KernelContext &c, bool logarithm) {
  const Tensor *x = c.in(0);
  if (!x)
    return c.fail("needs an input");
  int64_t rank = x->rank();
  int64_t axis = normAxis(c.i("axis", c.opset >= 13 ? -1 : 1), rank);
  // Opset < 13 flattens to 2-D at `axis`; from 13 it works along one axis.
  int64_t outer, len, inner;
  if (c.opset < 13) {
    outer = numElements(x->shape().take_front(axis));
    len = numElements(x->shape().drop_front(axis));
    inner = 1;
  } else {
    outer = numElements(x->shape().take_front(axis));
    len = x->dim(axis);
    inner = numElements(x->shape().drop_front(axis + 1));
  }
  Tensor out(x->dtype(), x->shape());
  bool handled = dispatchFloat(x->dtype(), [&](auto t) {
    using T = decltype(t);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        const T *src = x->data<T>() + o * len * inner + i;
        T *dst = out.data<T>() + o * len * inner + i;
        double mx = -std::numeric_limits<double>::infinity();
        for (int64_t k = 0; k < len; ++k) mx = std::max(mx, double(src[k * inner]));
        double sum = 0;
        for (int64_t k = 0; k < len; ++k) sum += std::exp(double(src[k * inner]) - mx);
        for (int64_t k = 0; k < len; ++k) {
          double v = double(src[k * inner]) - mx;
          dst[k * inner] = T(logarithm ? v - std::log(sum) : std::exp(v) / sum);
        }
      }
  });
  if (!handled)
    return c.fail("unsupported type " + dtypeName(x->dtype()));
  c.outputs[0] = std::move(out);
  return ok();
}
Error kSoftmax(KernelContext &c) { return softmaxLike(c, false); }
Error kLogSoftmax(KernelContext &c) { return softmaxLike(c, true); }

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

enum class Reduce { Mean, Sum, Max, Min, Prod, L1, L2, SumSquare, LogSumExp };

Error reduce(KernelContext &c, Reduce kind) {
  const Tensor *x = c.in(0);
  if (!x)
    return c.fail("needs an input");
  std::vector<int64_t> axes;
  bool axesGiven = false;
  // ReduceSum takes axes as an input from opset 13, the others from 18.
  bool axesInput = (c.opType == "ReduceSum" && c.opset >= 13) || c.opset >= 18;
  if (axesInput) {
    if (c.in(1) && c.in(1)->size() > 0) {
      axes = c.in(1)->toInts();
      axesGiven = true;
    }
  } else if (auto a = c.ints("axes")) {
    axes = *a;
    axesGiven = !a->empty();
  }
  bool keep = c.i("keepdims", 1) != 0;
  if (!axesGiven && c.i("noop_with_empty_axes", 0)) {
    c.outputs[0] = *x;
    return ok();
  }
  int64_t rank = x->rank();
  std::vector<bool> reduced(rank, !axesGiven);
  for (int64_t a : axes) {
    a = normAxis(a, rank);
    if (a < 0 || a >= rank)
      return c.fail("axis out of range");
    reduced[a] = true;
  }
  Shape outShape, keptShape;
  for (int64_t i = 0; i < rank; ++i) {
    keptShape.push_back(reduced[i] ? 1 : x->dim(i));
    if (!reduced[i] || keep)
      outShape.push_back(reduced[i] ? 1 : x->dim(i));
  }
  int64_t outSize = numElements(keptShape);
  std::vector<double> acc(outSize), count(outSize, 0);
  double init = kind == Reduce::Max ? -std::numeric_limits<double>::infinity()
                : kind == Reduce::Min ? std::numeric_limits<double>::infinity()
                : kind == Reduce::Prod ? 1.0 : 0.0;
  std::fill(acc.begin(), acc.end(), init);
  std::array<Shape, 1> strides = {broadcastStrides(keptShape, x->shape())};
  std::vector<double> maxes;
  if (kind == Reduce::LogSumExp) {
    maxes.assign(outSize, -std::numeric_limits<double>::infinity());
    forEachBroadcast<1>(x->shape(), strides, [&](int64_t i, const std::array<int64_t, 1> &o) {
      maxes[o[0]] = std::max(maxes[o[0]], x->asDouble(i));
    });
  }
  forEachBroadcast<1>(x->shape(), strides, [&](int64_t i, const std::array<int64_t, 1> &o) {
    double v = x->asDouble(i);
    double &a = acc[o[0]];
    switch (kind) {
    case Reduce::Mean: case Reduce::Sum: a += v; break;
    case Reduce::Max: a = std::max(a, v); break;
    case Reduce::Min: a = std::min(a, v); break;
    case Reduce::Prod: a *= v; break;
    case Reduce::L1: a += std::abs(v); break;
    case Reduce::L2: case Reduce::SumSquare: a += v * v; break;
    case Reduce::LogSumExp: a += std::exp(v - maxes[o[0]]); break;
    }
    count[o[0]] += 1;
  });
  Tensor out(x->dtype(), outShape);
  bool handled = dispatchNumeric(x->dtype(), [&](auto t) {
    using T = decltype(t);
    for (int64_t i = 0; i < outSize; ++i) {
      double v = acc[i];
      if (kind == Reduce::Mean) v /= std::max(count[i], 1.0);
      if (kind == Reduce::L2) v = std::sqrt(v);
      if (kind == Reduce::LogSumExp) v = std::log(v) + maxes[i];
      out.data<T>()[i] = T(v);
    }
  });
  if (!handled)
    return c.fail("unsupported type " + dtypeName(x->dtype()));
  c.outputs[0] = std::move(out);
  return ok();
}
Error kReduceMean(KernelContext &c) { return reduce(c, Reduce::Mean); }
Error kReduceSum(KernelContext &c) { return reduce(c, Reduce::Sum); }
Error kReduceMax(KernelContext &c) { return reduce(c, Reduce::Max); }
Error kReduceMin(KernelContext &c) { return reduce(c, Reduce::Min); }
Error kReduceProd(KernelContext &c) { return reduce(c, Reduce::Prod); }
Error kReduceL1(KernelContext &c) { return reduce(c, Reduce::L1); }
Error kReduceL2(KernelContext &c) { return reduce(c, Reduce::L2); }
Error kReduceSumSquare(KernelContext &c) { return reduce(c, Reduce::SumSquare); }
Error kReduceLogSumExp(KernelContext &c) { return reduce(c, Reduce::LogSumExp); }

Error argReduce(KernelContext &c, bool isMax) {
  const Tensor *x = c.in(0);
  if (!x)
    return c.fail("needs an input");
  int64_t axis = normAxis(c.i("axis", 0), x->rank());
  bool keep = c.i("keepdims", 1) != 0, last = c.i("select_last_index", 0) != 0;
  int64_t outer = numElements(x->shape().take_front(axis)), len = x->dim(axis);
  int64_t inner = numElements(x->shape().drop_front(axis + 1));
  Shape shape(x->shape());
  if (keep) shape[axis] = 1; else shape.erase(shape.begin() + axis);
  Tensor out(DType::I64, shape);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      int64_t best = 0;
      double bv = x->asDouble(o * len * inner + i);
      for (int64_t k = 1; k < len; ++k) {
        double v = x->asDouble((o * len + k) * inner + i);
        if (isMax ? (v > bv || (last && v == bv)) : (v < bv || (last && v == bv))) {
          bv = v;
          best = k;
        }
      }
      out.data<int64_t>()[o * inner + i] = best;
    }
  c.outputs[0] = std::move(out);
  return ok();
}
Error kArgMax(KernelContext &c) { return argReduce(c, true); }
Error kArgMin(KernelContext &c) { return argReduce(c, false); }

//===----------------------------------------------------------------------===//
// Data movement
//===----------------------------------------------------------------------===//

Error kReshape(KernelContext &c) {
  const Tensor *x = c.in(0);
  std::vector<int64_t> target;
  if (c.in(1))
    target = c.in(1)->toInts();
  else if (auto s = c.ints("shape"))
    target = *s;
  else
    return c.fail("needs a shape");
  if (!x)
    return c.fail("needs data");
  bool allowZero = c.i("allowzero", 0) != 0;
  Shape shape;
  int64_t inferAt = -1, known = 1;
  for (size_t i = 0; i < target.size(); ++i) {
    int64_t d = target[i];
    if (d == 0 && !allowZero) {
      if ((int64_t)i >= x->rank())
        return c.fail("0 in shape refers to a missing input dimension");
      d = x->dim(i);
    }
    if (d == -1) {
      if (inferAt >= 0)
        return c.fail("more than one -1 in shape");
      inferAt = i;
      d = 1;
    } else if (d < 0) {
      return c.fail("negative size in shape");
    }
    shape.push_back(d);
    known *= d;
  }
  if (inferAt >= 0) {
    if (known == 0 || x->size() % known)
      return c.fail("cannot infer -1 for " + shapeString(x->shape()));
    shape[inferAt] = x->size() / known;
  }
  if (numElements(shape) != x->size())
    return c.fail("cannot reshape " + shapeString(x->shape()) + " to " + shapeString(shape));
  c.outputs[0] = x->reshaped(shape);
  return ok();
}

Error kFlatten(KernelContext &c) {
  const Tensor *x = c.in(0);
  if (!x)
    return c.fail("needs an input");
  int64_t axis = normAxis(c.i("axis", 1), x->rank());
  int64_t outer = numElements(x->shape().take_front(axis));
  c.outputs[0] = x->reshaped({outer, x->size() / std::max<int64_t>(outer, 1)});
  if (outer == 0)
    c.outputs[0] = x->reshaped({0, numElements(x->shape().drop_front(axis))});
  return ok();
}

std::vector<int64_t> axesFromInputOrAttr(KernelContext &c, size_t input) {
  if (c.in(input))
    return c.in(input)->toInts();
  return c.ints("axes").value_or(std::vector<int64_t>{});
}

Error kSqueeze(KernelContext &c) {
  const Tensor *x = c.in(0);
  if (!x)
    return c.fail("needs an input");
  std::vector<int64_t> axes = axesFromInputOrAttr(c, 1);
  std::vector<bool> drop(x->rank(), false);
  if (axes.empty()) {
    for (int64_t i = 0; i < x->rank(); ++i)
      drop[i] = x->dim(i) == 1;
  } else {
    for (int64_t a : axes) {
      a = normAxis(a, x->rank());
      if (a < 0 || a >= x->rank() || x->dim(a) != 1)
        return c.fail("cannot squeeze axis " + llvm::Twine(a));
      drop[a] = true;
    }
  }
  Shape shape;
  for (int64_t i = 0; i < x->rank(); ++i)
    if (!drop[i])
      shape.push_back(x->dim(i));
  c.outputs[0] = x->reshaped(shape);
  return ok();
}

Error kUnsqueeze(KernelContext &c) {
  const Tensor *x = c.in(0);
  if (!x)
    return c.fail("needs an input");
  std::vector<int64_t> axes = axesFromInputOrAttr(c, 1);
  int64_t rank = x->rank() + axes.size();
  std::vector<bool> inserted(rank, false);
  for (int64_t a : axes) {
    a = normAxis(a, rank);
    if (a < 0 || a >= rank || inserted[a])
      return c.fail("bad axes");
    inserted[a] = true;
  }
  Shape shape;
  int64_t j = 0;
  for (int64_t i = 0; i < rank; ++i)
    shape.push_back(inserted[i] ? 1 : x->dim(j++));
  c.outputs[0] = x->reshaped(shape);
  return ok();
}

Error kTranspose(KernelContext &c) {
  const Tensor *x = c.in(0);
  if (!x)
    return c.fail("needs an input");
  int64_t rank = x->rank();
  std::vector<int64_t> perm = c.ints("perm").value_or(std::vector<int64_t>{});
  if (perm.empty())
    for (int64_t i = rank - 1; i >= 0; --i)
      perm.push_back(i);
  if ((int64_t)perm.size() != rank)
    return c.fail("perm does not fit the rank");
  Shape outShape;
  for (int64_t p : perm)
    outShape.push_back(x->dim(p));
  // Output strides expressed in the input.
  Shape inStrides(rank, 1);
  for (int64_t i = rank - 2; i >= 0; --i)
    inStrides[i] = inStrides[i + 1] * x->dim(i + 1);
  std::array<Shape, 1> strides;
  strides[0].resize(rank);
  for (int64_t i = 0; i < rank; ++i)
    strides[0][i] = inStrides[perm[i]];
  Tensor out(x->dtype(), outShape);
  size_t element = dtypeSize(x->dtype());
  const char *src = x->raw();
  char *dst = out.raw();
  forEachBroadcast<1>(outShape, strides, [&](int64_t i, const std::array<int64_t, 1> &o) {
    std::memcpy(dst + i * element, src + o[0] * element, element);
  });
  c.outputs[0] = std::move(out);
  return ok();
}

Error kConcat(KernelContext &c) {
  if (c.inputs.empty() || !c.in(0))
    return c.fail("needs inputs");
  const Tensor &first = *c.in(0);
  int64_t rank = first.rank();
  int64_t axis = normAxis(c.i("axis", 0), rank);
  if (axis < 0 || axis >= rank)
    return c.fail("axis out of range");
  Shape shape(first.shape());
  shape[axis] = 0;
  for (const Tensor *t : c.inputs) {
    if (!t || t->rank() != rank || t->dtype() != first.dtype())
      return c.fail("inputs differ in rank or type");
    for (int64_t i = 0; i < rank; ++i)
      if (i != axis && t->dim(i) != first.dim(i))
        return c.fail("inputs differ outside the axis");
    shape[axis] += t->dim(axis);
  }
  Tensor out(first.dtype(), shape);
  int64_t outer = numElements(shape.begin() == shape.end() ? ArrayRef<int64_t>() : ArrayRef<int64_t>(shape).take_front(axis));
  size_t element = dtypeSize(first.dtype());
  int64_t outRow = numElements(ArrayRef<int64_t>(shape).drop_front(axis)) * element;
  int64_t offset = 0;
  for (const Tensor *t : c.inputs) {
    int64_t row = numElements(t->shape().drop_front(axis)) * element;
    for (int64_t o = 0; o < outer; ++o)
      std::memcpy(out.raw() + o * outRow + offset, t->raw() + o * row, row);
    offset += row;
  }
  c.outputs[0] = std::move(out);
  return ok();
}

Error kSplit(KernelContext &c) {
  const Tensor *x = c.in(0);
  if (!x)
    return c.fail("needs an input");
  int64_t axis = normAxis(c.i("axis", 0), x->rank());
  std::vector<int64_t> sizes;
  if (c.in(1))
    sizes = c.in(1)->toInts();
  else if (auto s = c.ints("split"))
    sizes = *s;
  unsigned parts = c.numOutputs;
  if (sizes.empty()) {
    int64_t len = x->dim(axis);
    int64_t chunk = (len + parts - 1) / parts;
    for (unsigned i = 0; i < parts; ++i)
      sizes.push_back(std::max<int64_t>(0, std::min(chunk, len - chunk * i)));
  }
  if (sizes.size() != parts ||
      std::accumulate(sizes.begin(), sizes.end(), int64_t(0)) != x->dim(axis))
    return c.fail("split sizes do not fit the axis");
  int64_t outer = numElements(x->shape().take_front(axis));
  size_t element = dtypeSize(x->dtype());
  int64_t inner = numElements(x->shape().drop_front(axis + 1)) * element;
  int64_t inRow = x->dim(axis) * inner, offset = 0;
  for (unsigned p = 0; p < parts; ++p) {
    Shape shape(x->shape());
    shape[axis] = sizes[p];
    Tensor out(x->dtype(), shape);
    for (int64_t o = 0; o < outer; ++o)
      std::memcpy(out.raw() + o * sizes[p] * inner, x->raw() + o * inRow + offset, sizes[p] * inner);
    offset += sizes[p] * inner;
    c.outputs[p] = std::move(out);
  }
  return ok();
}

Error kSlice(KernelContext &c) {
  const Tensor *x = c.in(0);
  if (!x)
    return c.fail("needs data");
  std::vector<int64_t> starts, ends, axes, steps;
  if (c.opset < 10) {
    starts = c.ints("starts").value_or(std::vector<int64_t>{});
    ends = c.ints("ends").value_or(std::vector<int64_t>{});
    axes = c.ints("axes").value_or(std::vector<int64_t>{});
  } else {
    if (!c.in(1) || !c.in(2))
      return c.fail("needs starts and ends");
    starts = c.in(1)->toInts();
    ends = c.in(2)->toInts();
    if (c.in(3)) axes = c.in(3)->toInts();
    if (c.in(4)) steps = c.in(4)->toInts();
  }
  if (axes.empty())
    for (size_t i = 0; i < starts.size(); ++i)
      axes.push_back(i);
  if (steps.empty())
    steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
    return c.fail("starts, ends, axes and steps differ in length");
  int64_t rank = x->rank();
  Shape start(rank, 0), step(rank, 1), shape(x->shape());
  for (size_t k = 0; k < starts.size(); ++k) {
    int64_t a = normAxis(axes[k], rank);
    if (a < 0 || a >= rank)
      return c.fail("axis out of range");
    int64_t dim = x->dim(a), s = starts[k], e = ends[k], st = steps[k];
    if (st == 0)
      return c.fail("step 0");
    if (s < 0) s += dim;
    if (e < 0) e += dim;
    if (st > 0) {
      s = std::clamp<int64_t>(s, 0, dim);
      e = std::clamp<int64_t>(e, 0, dim);
      shape[a] = e > s ? (e - s + st - 1) / st : 0;
    } else {
      s = std::clamp<int64_t>(s, 0, dim - 1);
      e = std::clamp<int64_t>(e, -1, dim - 1);
      shape[a] = s > e ? (s - e - st - 1) / -st : 0;
    }
    start[a] = s;
    step[a] = st;
  }
  Tensor out(x->dtype(), shape);
  Shape inStrides(rank, 1);
  for (int64_t i = rank - 2; i >= 0; --i)
    inStrides[i] = inStrides[i + 1] * x->dim(i + 1);
  int64_t base = 0;
  std::array<Shape, 1> strides;
  strides[0].resize(rank);
  for (int64_t i = 0; i < rank; ++i) {
    base += start[i] * inStrides[i];
    strides[0][i] = step[i] * inStrides[i];
  }
  size_t element = dtypeSize(x->dtype());
  forEachBroadcast<1>(shape, strides, [&](int64_t i, const std::array<int64_t, 1> &o) {
    std::memcpy(out.raw() + i * element, x->raw() + (base + o[0]) * element, element);
  });
  c.outputs[0] = std::move(out);
  return ok();
}

Error kGather(KernelContext &c) {
  const Tensor *x = c.in(0), *idx = c.in(1);
  if (!x || !idx)
    return c.fail("needs data and indices");
  int64_t axis = normAxis(c.i("axis", 0), x->rank());
  if (axis < 0 || axis >= x->rank())
    return c.fail("axis out of range");
  Shape shape(x->shape().take_front(axis));
  shape.append(idx->shape().begin(), idx->shape().end());
  shape.append(x->shape().begin() + axis + 1, x->shape().end());
  Tensor out(x->dtype(), shape);
  int64_t outer = numElements(x->shape().take_front(axis)), len = x->dim(axis);
  size_t element = dtypeSize(x->dtype());
  int64_t inner = numElements(x->shape().drop_front(axis + 1)) * element;
  int64_t count = idx->size();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t k = 0; k < count; ++k) {
      int64_t j = idx->asInt(k);
      if (j < 0) j += len;
      if (j < 0 || j >= len)
        return c.fail("index " + llvm::Twine(idx->asInt(k)) + " out of range");
      std::memcpy(out.raw() + (o * count + k) * inner, x->raw() + (o * len + j) * inner, inner);
    }
  c.outputs[0] = std::move(out);
  return ok();
}

Error kGatherElements(KernelContext &c) {
  const Tensor *x = c.in(0), *idx = c.in(1);
  if (!x || !idx || x->rank() != idx->rank())
    return c.fail("needs data and indices of one rank");
  int64_t axis = normAxis(c.i("axis", 0), x->rank()), rank = x->rank();
  Tensor out(x->dtype(), idx->shape());
  Shape inStrides(rank, 1);
  for (int64_t i = rank - 2; i >= 0; --i)
    inStrides[i] = inStrides[i + 1] * x->dim(i + 1);
  size_t element = dtypeSize(x->dtype());
  Shape index(rank, 0);
  for (int64_t i = 0; i < idx->size(); ++i) {
    int64_t off = 0;
    for (int64_t d = 0; d < rank; ++d) {
      int64_t v = index[d];
      if (d == axis) {
        v = idx->asInt(i);
        if (v < 0) v += x->dim(axis);
        if (v < 0 || v >= x->dim(axis))
          return c.fail("index out of range");
      }
      off += v * inStrides[d];
    }
    std::memcpy(out.raw() + i * element, x->raw() + off * element, element);
    for (int64_t d = rank - 1; d >= 0; --d) {
      if (++index[d] < idx->dim(d)) break;
      index[d] = 0;
    }
  }
  c.outputs[0] = std::move(out);
  return ok();
}

Error kExpand(KernelContext &c) {
  const Tensor *x = c.in(0), *shapeT = c.in(1);
  if (!x || !shapeT)
    return c.fail("needs input and shape");
  std::vector<int64_t> target = shapeT->toInts();
  auto shape = broadcastShapes({x->shape(), target});
  if (!shape)
    return c.fail("cannot expand " + shapeString(x->shape()) + " to " + shapeString(target));
  Tensor out(x->dtype(), *shape);
  std::array<Shape, 1> strides = {broadcastStrides(x->shape(), *shape)};
  size_t element = dtypeSize(x->dtype());
  forEachBroadcast<1>(*shape, strides, [&](int64_t i, const std::array<int64_t, 1> &o) {
    std::memcpy(out.raw() + i * element, x->raw() + o[0] * element, element);
  });
  c.outputs[0] = std::move(out);
  return ok();
}

Error kTile(KernelContext &c) {
  const Tensor *x = c.in(0), *reps = c.in(1);
  if (!x || !reps || reps->size() != x->rank())
    return c.fail("needs input and one repeat per axis");
  int64_t rank = x->rank();
  Shape shape(rank);
  for (int64_t i = 0; i < rank; ++i)
    shape[i] = x->dim(i) * reps->asInt(i);
  Tensor out(x->dtype(), shape);
  size_t element = dtypeSize(x->dtype());
  Shape index(rank, 0), inStrides(rank, 1);
  for (int64_t i = rank - 2; i >= 0; --i)
    inStrides[i] = inStrides[i + 1] * x->dim(i + 1);
  for (int64_t i = 0; i < out.size(); ++i) {
    int64_t off = 0;
    for (int64_t d = 0; d < rank; ++d)
      off += (index[d] % x->dim(d)) * inStrides[d];
    std::memcpy(out.raw() + i * element, x->raw() + off * element, element);
    for (int64_t d = rank - 1; d >= 0; --d) {
      if (++index[d] < shape[d]) break;
      index[d] = 0;
    }
  }
  c.outputs[0] = std::move(out);
  return ok();
}

Error kWhere(KernelContext &c) {
  const Tensor *cond = c.in(0), *a = c.in(1), *b = c.in(2);
  if (!cond || !a || !b || a->dtype() != b->dtype())
    return c.fail("needs condition and two inputs of one type");
  auto shape = broadcastShapes({cond->shape(), a->shape(), b->shape()});
  if (!shape)
    return c.fail("shapes do not broadcast");
  Tensor out(a->dtype(), *shape);
  std::array<Shape, 3> strides = {broadcastStrides(cond->shape(), *shape),
                                  broadcastStrides(a->shape(), *shape),
                                  broadcastStrides(b->shape(), *shape)};
  size_t element = dtypeSize(a->dtype());
  forEachBroadcast<3>(*shape, strides, [&](int64_t i, const std::array<int64_t, 3> &o) {
    const Tensor *src = cond->data<uint8_t>()[o[0]] ? a : b;
    std::memcpy(out.raw() + i * element, src->raw() + o[src == a ? 1 : 2] * element, element);
  });
  c.outputs[0] = std::move(out);
  return ok();
}

Error kShape(KernelContext &c) {
  const Tensor *x = c.in(0);
  if (!x)
    return c.fail("needs an input");
  int64_t rank = x->rank();
  int64_t start = c.i("start", 0), end = c.i("end", rank);
  if (start < 0) start += rank;
  if (end < 0) end += rank;
  start = std::clamp<int64_t>(start, 0, rank);
  end = std::clamp<int64_t>(end, 0, rank);
  std::vector<int64_t> dims(x->shape().begin() + start, x->shape().begin() + std::max(start, end));
  c.outputs[0] = Tensor::fromInts(dims, {(int64_t)dims.size()});
  return ok();
}

Error kSize(KernelContext &c) {
  if (!c.in(0))
    return c.fail("needs an input");
  c.outputs[0] = Tensor::fromInts({c.in(0)->size()}, {});
  return ok();
}

Error kConstantOfShape(KernelContext &c) {
  if (!c.in(0))
    return c.fail("needs a shape");
  std::vector<int64_t> dims = c.in(0)->toInts();
  Tensor fill = Tensor::scalarF32(0);
  if (auto value = dyn_cast_or_null<ElementsAttr>(c.attr("value"))) {
    auto t = tensorFromAttr(value);
    if (!t)
      return t.takeError();
    fill = *t;
  }
  Tensor out(fill.dtype(), dims);
  size_t element = dtypeSize(fill.dtype());
  for (int64_t i = 0; i < out.size(); ++i)
    std::memcpy(out.raw() + i * element, fill.raw(), element);
  c.outputs[0] = std::move(out);
  return ok();
}

bool isFloatType(DType t) {
  return t == DType::F32 || t == DType::F64 || t == DType::F16 || t == DType::BF16;
}

Error castTo(KernelContext &c, const Tensor &x, DType to) {
  if (dtypeSize(to) == 0 || x.dtype() == DType::String)
    return c.fail("casts to or from " + dtypeName(to == DType::String ? to : x.dtype()) +
                  " are not supported");
  Tensor out(to, x.shape());
  bool exactInts = !isFloatType(x.dtype()) && !isFloatType(to);
  for (int64_t i = 0; i < x.size(); ++i) {
    if (exactInts) {
      // Integer to integer keeps all 64 bits (wrapping like a C cast).
      int64_t v = x.asInt(i);
      switch (to) {
      case DType::I64: out.data<int64_t>()[i] = v; break;
      case DType::U64: out.data<uint64_t>()[i] = uint64_t(v); break;
      case DType::Bool: out.data<uint8_t>()[i] = v != 0; break;
      default: out.setDouble(i, double(v)); break;
      }
      continue;
    }
    double v = x.asDouble(i);
    if (!isFloatType(to) && to != DType::Bool && std::isnan(v))
      v = 0;
    out.setDouble(i, v);
  }
  c.outputs[0] = std::move(out);
  return ok();
}

Error kCast(KernelContext &c) {
  if (!c.in(0))
    return c.fail("needs an input");
  return castTo(c, *c.in(0), static_cast<DType>(c.i("to", 0)));
}

Error kCastLike(KernelContext &c) {
  if (!c.in(0) || !c.in(1))
    return c.fail("needs input and target_type");
  return castTo(c, *c.in(0), c.in(1)->dtype());
}

Error kRange(KernelContext &c) {
  const Tensor *start = c.in(0), *limit = c.in(1), *delta = c.in(2);
  if (!start || !limit || !delta)
    return c.fail("needs start, limit and delta");
  double s = start->asDouble(0), l = limit->asDouble(0), d = delta->asDouble(0);
  if (d == 0)
    return c.fail("delta is 0");
  int64_t n = std::max<int64_t>(0, int64_t(std::ceil((l - s) / d)));
  Tensor out(start->dtype(), {n});
  bool handled = dispatchNumeric(start->dtype(), [&](auto t) {
    using T = decltype(t);
    T v = T(s), step = T(d);
    for (int64_t i = 0; i < n; ++i, v += step)
      out.data<T>()[i] = v;
  });
  if (!handled)
    return c.fail("unsupported type");
  c.outputs[0] = std::move(out);
  return ok();
}

Error kPad(KernelContext &c) {
  const Tensor *x = c.in(0);
  if (!x)
    return c.fail("needs data");
  int64_t rank = x->rank();
  std::vector<int64_t> pads;
  double value = 0;
  if (c.opset < 11) {
    pads = c.ints("pads").value_or(std::vector<int64_t>{});
    value = c.f("value", 0);
  } else {
    if (!c.in(1))
      return c.fail("needs pads");
    pads = c.in(1)->toInts();
    if (c.in(2) && c.in(2)->size())
      value = c.in(2)->asDouble(0);
  }
  std::vector<int64_t> axes;
  if (c.in(3))
    axes = c.in(3)->toInts();
  else
    for (int64_t i = 0; i < rank; ++i)
      axes.push_back(i);
  if (pads.size() != 2 * axes.size())
    return c.fail("pads has the wrong length");
  Shape before(rank, 0), after(rank, 0);
  for (size_t k = 0; k < axes.size(); ++k) {
    int64_t a = normAxis(axes[k], rank);
    before[a] = pads[k];
    after[a] = pads[k + axes.size()];
  }
  std::string mode = c.s("mode", "constant");
  Shape shape(rank);
  for (int64_t i = 0; i < rank; ++i) {
    shape[i] = x->dim(i) + before[i] + after[i];
    if (shape[i] < 0)
      return c.fail("negative output size");
  }
  Tensor out(x->dtype(), shape);
  Tensor fill(x->dtype(), {});
  dispatchNumeric(x->dtype(), [&](auto t) { fill.data<decltype(t)>()[0] = decltype(t)(value); });
  size_t element = dtypeSize(x->dtype());
  Shape inStrides(rank, 1), index(rank, 0);
  for (int64_t i = rank - 2; i >= 0; --i)
    inStrides[i] = inStrides[i + 1] * x->dim(i + 1);
  for (int64_t i = 0; i < out.size(); ++i) {
    int64_t off = 0;
    bool inside = true;
    for (int64_t d = 0; d < rank && inside; ++d) {
      int64_t j = index[d] - before[d], n = x->dim(d);
      if (j < 0 || j >= n) {
        if (mode == "constant" || n == 0) {
          inside = false;
          break;
        }
        if (mode == "edge") j = j < 0 ? 0 : n - 1;
        else if (mode == "reflect") {
          if (n == 1) j = 0;
          else {
            int64_t period = 2 * (n - 1);
            j = ((j % period) + period) % period;
            if (j >= n) j = period - j;
          }
        } else if (mode == "wrap") j = ((j % n) + n) % n;
        else return c.fail("unknown mode '" + mode + "'");
      }
      off += j * inStrides[d];
    }
    std::memcpy(out.raw() + i * element, inside ? x->raw() + off * element : fill.raw(), element);
    for (int64_t d = rank - 1; d >= 0; --d) {
      if (++index[d] < shape[d]) break;
      index[d] = 0;
    }
  }
  c.outputs[0] = std::move(out);
  return ok();
}

Error kDepthToSpace(KernelContext &c, bool toSpace) {
  const Tensor *x = c.in(0);
  if (!x || x->rank() != 4)
    return c.fail("needs a 4-D input");
  int64_t b = c.i("blocksize", 0);
  if (b <= 0)
    return c.fail("needs blocksize");
  int64_t n = x->dim(0), ch = x->dim(1), h = x->dim(2), w = x->dim(3);
  bool crd = c.s("mode", "DCR") == "CRD";
  Shape shape = toSpace ? Shape{n, ch / (b * b), h * b, w * b} : Shape{n, ch * b * b, h / b, w / b};
  Tensor out(x->dtype(), shape);
  size_t element = dtypeSize(x->dtype());
  for (int64_t i0 = 0; i0 < shape[0]; ++i0)
    for (int64_t i1 = 0; i1 < shape[1]; ++i1)
      for (int64_t i2 = 0; i2 < shape[2]; ++i2)
        for (int64_t i3 = 0; i3 < shape[3]; ++i3) {
          int64_t src;
          if (toSpace) {
            int64_t oc = shape[1], bh = i2 % b, bw = i3 % b;
            int64_t cin = crd ? (i1 * b * b + bh * b + bw) : ((bh * b + bw) * oc + i1);
            src = ((i0 * ch + cin) * h + i2 / b) * w + i3 / b;
          } else {
            int64_t bh = (i1 / ch) / b, bw = (i1 / ch) % b, cc = i1 % ch;
            src = ((i0 * ch + cc) * h + i2 * b + bh) * w + i3 * b + bw;
          }
          int64_t dst = ((i0 * shape[1] + i1) * shape[2] + i2) * shape[3] + i3;
          std::memcpy(out.raw() + dst * element, x->raw() + src * element, element);
        }
  c.outputs[0] = std::move(out);
  return ok();
}
Error kDepthToSpaceOp(KernelContext &c) { return kDepthToSpace(c, true); }
Error kSpaceToDepth(KernelContext &c) { return kDepthToSpace(c, false); }

/// Resize along every axis as a product of 1-D filters, following the
/// ONNX reference: per output coordinate a list of (input index, weight)
/// taps; out-of-range taps replicate the edge.
Error resizeImpl(KernelContext &c, const Tensor &x, const std::vector<double> &scales,
                 const Shape &shape, const std::string &mode, const std::string &ctm,
                 const std::string &nearestMode, const std::vector<double> &roi) {
  int64_t rank = x.rank();
  double cubicA = c.f("cubic_coeff_a", -0.75f);
  bool excludeOutside = c.i("exclude_outside", 0) != 0;
  double extrapolation = c.f("extrapolation_value", 0.0f);
  struct Tap { int64_t index; double weight; };
  // taps[d][o]; an empty list means "outside the crop": extrapolate.
  std::vector<std::vector<std::vector<Tap>>> taps(rank);
  for (int64_t d = 0; d < rank; ++d) {
    int64_t in = x.dim(d);
    double s = scales[d], lenRes = in * s;
    for (int64_t o = 0; o < shape[d]; ++o) {
      double src;
      if (ctm == "half_pixel") src = (o + 0.5) / s - 0.5;
      else if (ctm == "pytorch_half_pixel") src = lenRes > 1 ? (o + 0.5) / s - 0.5 : 0.0;
      else if (ctm == "align_corners") src = lenRes > 1 ? o * (in - 1) / (lenRes - 1) : 0.0;
      else if (ctm == "asymmetric") src = o / s;
      else if (ctm == "tf_half_pixel_for_nn") src = (o + 0.5) / s;
      else if (ctm == "half_pixel_symmetric") {
        double adjustment = shape[d] / lenRes, center = in / 2.0;
        src = center * (1 - adjustment) + (o + 0.5) / s - 0.5;
      } else if (ctm == "tf_crop_and_resize") {
        double start = roi[d], end = roi[d + rank];
        src = lenRes > 1 ? start * (in - 1) + o * (end - start) * (in - 1) / (lenRes - 1)
                         : 0.5 * (start + end) * (in - 1);
        if (src < 0 || src > in - 1) {
          taps[d].push_back({});
          continue;
        }
      } else {
        return c.fail("coordinate_transformation_mode '" + ctm + "' is not supported");
      }
      std::vector<Tap> list;
      auto clampIndex = [&](int64_t i) { return std::clamp<int64_t>(i, 0, in - 1); };
      if (mode == "nearest") {
        double f = std::floor(src), r;
        if (nearestMode == "round_prefer_ceil") r = (src - f == 0.5) ? f + 1 : std::round(src);
        else if (nearestMode == "floor") r = f;
        else if (nearestMode == "ceil") r = std::ceil(src);
        else if (nearestMode == "round_prefer_floor") r = (src - f == 0.5) ? f : std::round(src);
        else return c.fail("nearest_mode '" + nearestMode + "' is not supported");
        list.push_back({clampIndex(int64_t(r)), 1.0});
      } else if (mode == "linear") {
        int64_t i0 = int64_t(std::floor(src));
        double r = src - i0;
        list.push_back({clampIndex(i0), 1 - r});
        list.push_back({clampIndex(i0 + 1), r});
      } else if (mode == "cubic") {
        int64_t i0 = int64_t(std::floor(src));
        double r = src - i0, A = cubicA;
        double coeffs[4] = {
            ((A * (r + 1) - 5 * A) * (r + 1) + 8 * A) * (r + 1) - 4 * A,
            ((A + 2) * r - (A + 3)) * r * r + 1,
            ((A + 2) * (1 - r) - (A + 3)) * (1 - r) * (1 - r) + 1,
            ((A * ((1 - r) + 1) - 5 * A) * ((1 - r) + 1) + 8 * A) * ((1 - r) + 1) - 4 * A};
        double total = 0;
        for (int k = 0; k < 4; ++k) {
          int64_t i = i0 - 1 + k;
          if (excludeOutside && (i < 0 || i >= in))
            coeffs[k] = 0;
          total += coeffs[k];
        }
        for (int k = 0; k < 4; ++k)
          list.push_back({clampIndex(i0 - 1 + k), excludeOutside ? coeffs[k] / total : coeffs[k]});
      } else {
        return c.fail("mode '" + mode + "' is not supported");
      }
      taps[d].push_back(std::move(list));
    }
  }
  Tensor out(x.dtype(), shape);
  Shape inStrides(rank, 1), index(rank, 0);
  for (int64_t i = rank - 2; i >= 0; --i)
    inStrides[i] = inStrides[i + 1] * x.dim(i + 1);
  std::vector<size_t> cursor(rank);
  for (int64_t i = 0; i < out.size(); ++i) {
    bool outside = false;
    for (int64_t d = 0; d < rank; ++d)
      outside |= taps[d][index[d]].empty();
    double acc = 0;
    if (outside) {
      acc = extrapolation;
    } else {
      // Sum over the product of the per-axis tap lists.
      std::fill(cursor.begin(), cursor.end(), 0);
      while (true) {
        double weight = 1;
        int64_t off = 0;
        for (int64_t d = 0; d < rank; ++d) {
          const Tap &t = taps[d][index[d]][cursor[d]];
          weight *= t.weight;
          off += t.index * inStrides[d];
        }
        if (weight != 0)
          acc += weight * x.asDouble(off);
        int64_t d = rank - 1;
        for (; d >= 0; --d) {
          if (++cursor[d] < taps[d][index[d]].size()) break;
          cursor[d] = 0;
        }
        if (d < 0) break;
      }
    }
    if (isFloatType(x.dtype()))
      out.setDouble(i, acc);
    else
      out.setDouble(i, std::nearbyint(acc));
    for (int64_t d = rank - 1; d >= 0; --d) {
      if (++index[d] < shape[d]) break;
      index[d] = 0;
    }
  }
  c.outputs[0] = std::move(out);
  return ok();
}

Error kResize(KernelContext &c) {
  const Tensor *x = c.in(0);
  if (!x)
    return c.fail("needs an input");
  int64_t rank = x->rank();
  if (c.attr("antialias") && c.i("antialias", 0) != 0)
    return c.fail("antialias is not supported");
  if (c.attr("axes") || c.attr("keep_aspect_ratio_policy"))
    return c.fail("axes and keep_aspect_ratio_policy are not supported");
  std::string mode = c.s("mode", "nearest");
  std::string ctm = c.s("coordinate_transformation_mode", c.opset < 11 ? "asymmetric" : "half_pixel");
  std::string nearestMode = c.s("nearest_mode", c.opset < 11 ? "floor" : "round_prefer_floor");
  // Opset 10: (X, scales); 11+: (X, roi, scales, sizes).
  const Tensor *roiT = c.opset < 11 ? nullptr : c.in(1);
  const Tensor *scalesT = c.opset < 11 ? c.in(1) : c.in(2);
  const Tensor *sizesT = c.opset < 11 ? nullptr : c.in(3);
  std::vector<double> scales(rank, 1.0), roi;
  Shape shape(x->shape());
  if (sizesT && sizesT->size() > 0) {
    if (sizesT->size() != rank)
      return c.fail("sizes needs one value per axis");
    for (int64_t i = 0; i < rank; ++i) {
      shape[i] = sizesT->asInt(i);
      scales[i] = double(shape[i]) / double(x->dim(i));
    }
  } else if (scalesT && scalesT->size() > 0) {
    if (scalesT->size() != rank)
      return c.fail("scales needs one value per axis");
    for (int64_t i = 0; i < rank; ++i) {
      scales[i] = scalesT->asDouble(i);
      shape[i] = int64_t(std::floor(x->dim(i) * scales[i]));
    }
  } else {
    return c.fail("needs scales or sizes");
  }
  if (ctm == "tf_crop_and_resize") {
    if (!roiT || roiT->size() != 2 * rank)
      return c.fail("tf_crop_and_resize needs an roi with two values per axis");
    for (int64_t i = 0; i < roiT->size(); ++i)
      roi.push_back(roiT->asDouble(i));
  }
  return resizeImpl(c, *x, scales, shape, mode, ctm, nearestMode, roi);
}

/// Upsample (opsets 7-9): scales as an attribute (7) or input (9).
Error kUpsample(KernelContext &c) {
  const Tensor *x = c.in(0);
  if (!x)
    return c.fail("needs an input");
  std::vector<double> scales;
  if (auto s = c.floats("scales"))
    scales.assign(s->begin(), s->end());
  else if (c.in(1))
    for (int64_t i = 0; i < c.in(1)->size(); ++i)
      scales.push_back(c.in(1)->asDouble(i));
  if ((int64_t)scales.size() != x->rank())
    return c.fail("needs one scale per axis");
  Shape shape(x->shape());
  for (int64_t i = 0; i < x->rank(); ++i)
    shape[i] = int64_t(std::floor(x->dim(i) * scales[i]));
  return resizeImpl(c, *x, scales, shape, c.s("mode", "nearest"), "asymmetric", "floor", {});
}

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
  if (auto err = matmulTyped<double>(c, a, b, acc))
    return err;
  return requantize(c, acc, c.in(1), c.in(4), -1, c.in(6), c.in(7));
}

Error kMatMulInteger(KernelContext &c) {
  if (!c.in(0) || !c.in(1))
    return c.fail("needs A and B");
  Tensor a = centered(*c.in(0), c.in(2), 0), b = centered(*c.in(1), c.in(3), -1);
  Tensor acc;
  if (auto err = matmulTyped<double>(c, a, b, acc))
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
  if (auto err = convTyped<double>(c, x.data<double>(), x.shape(), w.data<double>(), w.shape(),
                                   bias.empty() ? nullptr : bias.data(), acc))
    return err;
  return requantize(c, acc, c.in(1), c.in(4), 1, c.in(6), c.in(7));
}

Error kConvInteger(KernelContext &c) {
  if (!c.in(0) || !c.in(1))
    return c.fail("needs x and w");
  Tensor x = centered(*c.in(0), c.in(2), 1), w = centered(*c.in(1), c.in(3), 0);
  Tensor acc;
  if (auto err = convTyped<double>(c, x.data<double>(), x.shape(), w.data<double>(), w.shape(),
                                   nullptr, acc))
    return err;
  Tensor out(DType::I32, acc.shape());
  for (int64_t i = 0; i < acc.size(); ++i)
    out.data<int32_t>()[i] = int32_t(acc.data<double>()[i]);
  c.outputs[0] = std::move(out);
  return ok();
}

#define ARITH(NAME, KIND) \
  Error k##NAME(KernelContext &c) { return arithmetic(c, Arith::KIND); }
ARITH(Add, Add)
ARITH(Sub, Sub)
ARITH(Mul, Mul)
ARITH(Div, Div)
ARITH(Pow, Pow)
ARITH(Mod, Mod)
#undef ARITH
Error kEqual(KernelContext &c) { return comparison(c, Compare::Equal); }
Error kLess(KernelContext &c) { return comparison(c, Compare::Less); }
Error kGreater(KernelContext &c) { return comparison(c, Compare::Greater); }
Error kLessOrEqual(KernelContext &c) { return comparison(c, Compare::LessOrEqual); }
Error kGreaterOrEqual(KernelContext &c) { return comparison(c, Compare::GreaterOrEqual); }
Error kAnd(KernelContext &c) { return logical(c, Logic::And); }
Error kOr(KernelContext &c) { return logical(c, Logic::Or); }
Error kXor(KernelContext &c) { return logical(c, Logic::Xor); }
Error kSum(KernelContext &c) { return variadic(c, Arith::Add, false); }
Error kMean(KernelContext &c) { return variadic(c, Arith::Add, true); }
Error kMax(KernelContext &c) { return variadic(c, Arith::Max, false); }
Error kMin(KernelContext &c) { return variadic(c, Arith::Min, false); }

Error kPRelu(KernelContext &c) {
  const Tensor *x = c.in(0), *slope = c.in(1);
  if (!x || !slope || x->dtype() != slope->dtype())
    return c.fail("needs X and slope of one type");
  Error result = ok();
  bool handled = dispatchFloat(x->dtype(), [&](auto t) {
    using T = decltype(t);
    consumeError(std::move(result));
    result = binaryTyped<T, T>(c, *x, *slope, [](T v, T s) { return v < 0 ? T(v * s) : v; });
  });
  if (!handled)
    return c.fail("unsupported type");
  return result;
}

} // namespace

const llvm::StringMap<Kernel> &kernelRegistry() {
  static const llvm::StringMap<Kernel> registry = {
      {"Abs", kAbs}, {"Add", kAdd}, {"And", kAnd}, {"ArgMax", kArgMax}, {"ArgMin", kArgMin},
      {"AveragePool", kAveragePool}, {"BatchNormalization", kBatchNormalization},
      {"Cast", kCast}, {"CastLike", kCastLike}, {"Ceil", kCeil}, {"Celu", kCelu}, {"Clip", kClip},
      {"Concat", kConcat}, {"ConstantOfShape", kConstantOfShape}, {"Conv", kConv},
      {"ConvInteger", kConvInteger}, {"ConvTranspose", kConvTranspose}, {"Cos", kCos},
      {"DepthToSpace", kDepthToSpaceOp}, {"DequantizeLinear", kDequantizeLinear},
      {"Div", kDiv}, {"Dropout", kDropout}, {"Elu", kElu}, {"Equal", kEqual}, {"Erf", kErf},
      {"Exp", kExp}, {"Expand", kExpand}, {"Flatten", kFlatten}, {"Floor", kFloor},
      {"Gather", kGather}, {"GatherElements", kGatherElements}, {"Gemm", kGemm},
      {"GlobalAveragePool", kGlobalAveragePool}, {"GlobalMaxPool", kGlobalMaxPool},
      {"Greater", kGreater}, {"GreaterOrEqual", kGreaterOrEqual},
      {"HardSigmoid", kHardSigmoid}, {"HardSwish", kHardSwish}, {"Identity", kIdentity},
      {"InstanceNormalization", kInstanceNormalization},
      {"LayerNormalization", kLayerNormalization}, {"LeakyRelu", kLeakyRelu}, {"Less", kLess},
      {"LessOrEqual", kLessOrEqual}, {"Log", kLog}, {"LogSoftmax", kLogSoftmax},
      {"MatMul", kMatMul}, {"MatMulInteger", kMatMulInteger}, {"Max", kMax},
      {"MaxPool", kMaxPool}, {"Mean", kMean}, {"Min", kMin}, {"Mod", kMod}, {"Mul", kMul},
      {"Neg", kNeg}, {"Not", kNot}, {"Or", kOr}, {"PRelu", kPRelu}, {"Pad", kPad},
      {"Pow", kPow}, {"QLinearConv", kQLinearConv}, {"QLinearMatMul", kQLinearMatMul},
      {"QuantizeLinear", kQuantizeLinear}, {"Range", kRange}, {"Reciprocal", kReciprocal},
      {"ReduceL1", kReduceL1}, {"ReduceL2", kReduceL2}, {"ReduceLogSumExp", kReduceLogSumExp},
      {"ReduceMax", kReduceMax}, {"ReduceMean", kReduceMean}, {"ReduceMin", kReduceMin},
      {"ReduceProd", kReduceProd}, {"ReduceSum", kReduceSum},
      {"ReduceSumSquare", kReduceSumSquare}, {"Relu", kRelu}, {"Reshape", kReshape},
      {"Resize", kResize}, {"Upsample", kUpsample}, {"Round", kRound}, {"Selu", kSelu}, {"Shape", kShape},
      {"Sigmoid", kSigmoid}, {"Sign", kSign}, {"Sin", kSin}, {"Size", kSize}, {"Slice", kSlice},
      {"Softmax", kSoftmax}, {"Softplus", kSoftplus}, {"Softsign", kSoftsign},
      {"SpaceToDepth", kSpaceToDepth}, {"Split", kSplit}, {"Sqrt", kSqrt},
      {"Squeeze", kSqueeze}, {"Sub", kSub}, {"Sum", kSum}, {"Tanh", kTanh},
      {"ThresholdedRelu", kThresholdedRelu}, {"Tile", kTile}, {"Transpose", kTranspose},
      {"Unsqueeze", kUnsqueeze}, {"Where", kWhere}, {"Xor", kXor},
  };
  return registry;
}

} // namespace refold::interp
