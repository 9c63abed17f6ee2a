//===- ElementwiseKernels.cpp - elementwise kernels -------------------------===//
//
// The interpreter's broadcasting arithmetic, comparisons, logic, unary
// functions and activations, written against the ONNX specification. Anything a
// kernel does not handle is an error that names the operator and the case,
// never an approximate answer.
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

void registerElementwiseKernels(llvm::StringMap<Kernel> &registry) {
  registry["Abs"] = kAbs;
  registry["Add"] = kAdd;
  registry["And"] = kAnd;
  registry["Ceil"] = kCeil;
  registry["Celu"] = kCelu;
  registry["Clip"] = kClip;
  registry["Cos"] = kCos;
  registry["Div"] = kDiv;
  registry["Dropout"] = kDropout;
  registry["Elu"] = kElu;
  registry["Equal"] = kEqual;
  registry["Erf"] = kErf;
  registry["Exp"] = kExp;
  registry["Floor"] = kFloor;
  registry["Greater"] = kGreater;
  registry["GreaterOrEqual"] = kGreaterOrEqual;
  registry["HardSigmoid"] = kHardSigmoid;
  registry["HardSwish"] = kHardSwish;
  registry["Identity"] = kIdentity;
  registry["LeakyRelu"] = kLeakyRelu;
  registry["Less"] = kLess;
  registry["LessOrEqual"] = kLessOrEqual;
  registry["Log"] = kLog;
  registry["Max"] = kMax;
  registry["Mean"] = kMean;
  registry["Min"] = kMin;
  registry["Mod"] = kMod;
  registry["Mul"] = kMul;
  registry["Neg"] = kNeg;
  registry["Not"] = kNot;
  registry["Or"] = kOr;
  registry["PRelu"] = kPRelu;
  registry["Pow"] = kPow;
  registry["Reciprocal"] = kReciprocal;
  registry["Relu"] = kRelu;
  registry["Round"] = kRound;
  registry["Selu"] = kSelu;
  registry["Sigmoid"] = kSigmoid;
  registry["Sign"] = kSign;
  registry["Sin"] = kSin;
  registry["Softplus"] = kSoftplus;
  registry["Softsign"] = kSoftsign;
  registry["Sqrt"] = kSqrt;
  registry["Sub"] = kSub;
  registry["Sum"] = kSum;
  registry["Tanh"] = kTanh;
  registry["ThresholdedRelu"] = kThresholdedRelu;
  registry["Xor"] = kXor;
}

} // namespace refold::interp
