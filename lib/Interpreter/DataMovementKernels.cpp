//===- DataMovementKernels.cpp - data movement kernels ----------------------===//
//
// The interpreter's kernels that move, select, reshape, pad or resize data,
// written against the ONNX specification. Anything a kernel does not handle is
// an error that names the operator and the case, never an approximate answer.
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
    if (__builtin_mul_overflow(known, d, &known))
      return c.fail("shape " + shapeString(target) + " has more elements than a 64-bit count holds");
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
  // Flatten's axis may equal the rank (everything in the outer dimension).
  int64_t axis = c.i("axis", 1);
  if (axis < -x->rank() || axis > x->rank())
    return c.fail("axis " + std::to_string(axis) + " is out of range for rank " +
                  std::to_string(x->rank()));
  axis = axis < 0 ? axis + x->rank() : axis;
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

} // namespace

void registerDataMovementKernels(llvm::StringMap<Kernel> &registry) {
  registry["Cast"] = kCast;
  registry["CastLike"] = kCastLike;
  registry["Concat"] = kConcat;
  registry["ConstantOfShape"] = kConstantOfShape;
  registry["DepthToSpace"] = kDepthToSpaceOp;
  registry["Expand"] = kExpand;
  registry["Flatten"] = kFlatten;
  registry["Gather"] = kGather;
  registry["GatherElements"] = kGatherElements;
  registry["Pad"] = kPad;
  registry["Range"] = kRange;
  registry["Reshape"] = kReshape;
  registry["Resize"] = kResize;
  registry["Upsample"] = kUpsample;
  registry["Shape"] = kShape;
  registry["Size"] = kSize;
  registry["Slice"] = kSlice;
  registry["SpaceToDepth"] = kSpaceToDepth;
  registry["Split"] = kSplit;
  registry["Squeeze"] = kSqueeze;
  registry["Tile"] = kTile;
  registry["Transpose"] = kTranspose;
  registry["Unsqueeze"] = kUnsqueeze;
  registry["Where"] = kWhere;
}

} // namespace refold::interp
