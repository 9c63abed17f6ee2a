//===- NormalizationKernels.cpp - normalization, reductions -----------------===//
//
// The interpreter's normalizations, softmax and reductions, written against the
// ONNX specification. Anything a kernel does not handle is an error that names
// the operator and the case, never an approximate answer.
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

} // namespace

void registerNormalizationKernels(llvm::StringMap<Kernel> &registry) {
  registry["ArgMax"] = kArgMax;
  registry["ArgMin"] = kArgMin;
  registry["BatchNormalization"] = kBatchNormalization;
  registry["InstanceNormalization"] = kInstanceNormalization;
  registry["LayerNormalization"] = kLayerNormalization;
  registry["LogSoftmax"] = kLogSoftmax;
  registry["ReduceL1"] = kReduceL1;
  registry["ReduceL2"] = kReduceL2;
  registry["ReduceLogSumExp"] = kReduceLogSumExp;
  registry["ReduceMax"] = kReduceMax;
  registry["ReduceMean"] = kReduceMean;
  registry["ReduceMin"] = kReduceMin;
  registry["ReduceProd"] = kReduceProd;
  registry["ReduceSum"] = kReduceSum;
  registry["ReduceSumSquare"] = kReduceSumSquare;
  registry["Softmax"] = kSoftmax;
}

} // namespace refold::interp
