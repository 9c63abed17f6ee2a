//===- KernelSupport.h - what the interpreter's kernels share ----*- C++ -*-===//
//
// Type dispatch, broadcasting and conversions used by kernels of every
// family. Kernels.cpp keeps KernelContext and the registry; each
// *Kernels.cpp file holds one family of operators.
//
//===----------------------------------------------------------------------===//

#ifndef REFOLD_LIB_INTERPRETER_KERNELSUPPORT_H
#define REFOLD_LIB_INTERPRETER_KERNELSUPPORT_H

#include "Kernels.h"

#include <array>
#include <cmath>
#include <optional>

namespace refold::interp {
using llvm::ArrayRef;
using llvm::Error;

inline Error ok() { return Error::success(); }

/// `axis` in [0, rank); one out of [-rank, rank) throws (evaluateOp turns it
/// into an error naming the op).
inline int64_t normAxis(int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank)
    throw InterpreterError("axis " + std::to_string(axis) + " is out of range for rank " +
                           std::to_string(rank));
  return axis < 0 ? axis + rank : axis;
}

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

inline std::optional<Shape> broadcastShapes(ArrayRef<ArrayRef<int64_t>> shapes) {
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
inline Shape broadcastStrides(ArrayRef<int64_t> shape, ArrayRef<int64_t> out) {
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

inline Tensor convertTensor(const Tensor &x, DType to) {
  Tensor out(to, x.shape());
  for (int64_t i = 0; i < x.size(); ++i)
    out.setDouble(i, x.asDouble(i));
  return out;
}

/// Matrix product and convolution in double precision (LinalgKernels.cpp),
/// which the integer kernels use: exact for int8 and int32 accumulations.
Error matmulDouble(KernelContext &c, const Tensor &a, const Tensor &b, Tensor &out);
Error convDouble(KernelContext &c, const double *x, ArrayRef<int64_t> xShape, const double *w,
                 ArrayRef<int64_t> wShape, const double *bias, Tensor &out);

/// The kernels of one family, added to the interpreter's registry.
void registerElementwiseKernels(llvm::StringMap<Kernel> &registry);
void registerLinalgKernels(llvm::StringMap<Kernel> &registry);
void registerNormalizationKernels(llvm::StringMap<Kernel> &registry);
void registerDataMovementKernels(llvm::StringMap<Kernel> &registry);
void registerQuantizationKernels(llvm::StringMap<Kernel> &registry);

} // namespace refold::interp

#endif // REFOLD_LIB_INTERPRETER_KERNELSUPPORT_H
