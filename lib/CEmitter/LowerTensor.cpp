//===- LowerTensor.cpp - elementwise, normalization and data movement --------===//

#include "Lowering.h"

#include "refold/Dialect/ONNX/ONNXOps.h"

#include "llvm/ADT/STLExtras.h"

#include <cmath>

using namespace mlir;
using llvm::Error;

namespace refold::cemit {

static int64_t product(ArrayRef<int64_t> dims) {
  int64_t p = 1;
  for (int64_t d : dims)
    p *= d;
  return p;
}

static std::vector<int64_t> denseStrides(ArrayRef<int64_t> shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (size_t d = shape.size(); d-- > 1;)
    strides[d - 1] = strides[d] * shape[d];
  return strides;
}

static Step basicStep(Operation *op, std::vector<Value> reads, Value write) {
  Step step;
  step.op = op;
  step.comment = describeOp(op);
  step.reads = std::move(reads);
  step.writes = {write};
  return step;
}

static bool isFloat(Value v) { return elementDType(v) == DType::F32; }

/// The shape of `op`'s first input, which its kernel reads as float32.
static llvm::Expected<std::vector<int64_t>> floatInputShape(Emitter &e, Operation *op) {
  if (!isFloat(op->getOperand(0)))
    return e.unsupported(op, "only float32 tensors are supported by this op's kernel");
  return e.shapeOf(op, op->getOperand(0));
}

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

/// Strides of an operand of shape `in` read at each index of `out`
/// (numpy broadcasting: 0 where it broadcasts).
static std::vector<int64_t> broadcastStrides(ArrayRef<int64_t> in, ArrayRef<int64_t> out) {
  std::vector<int64_t> dense = denseStrides(in), strides(out.size(), 0);
  for (size_t i = 0; i < in.size(); ++i) {
    size_t d = out.size() - in.size() + i;
    strides[d] = in[i] == 1 ? 0 : dense[i];
  }
  return strides;
}

/// Drops size-1 dims and merges dims every operand walks contiguously.
static void simplifyLoops(std::vector<int64_t> &shape, std::vector<std::vector<int64_t>> &strides) {
  std::vector<int64_t> s;
  std::vector<std::vector<int64_t>> st(strides.size());
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1)
      continue;
    bool merge = !s.empty();
    for (size_t k = 0; merge && k < strides.size(); ++k)
      merge = st[k].back() == strides[k][d] * shape[d];
    if (merge) {
      s.back() *= shape[d];
      for (size_t k = 0; k < strides.size(); ++k)
        st[k].back() = strides[k][d];
      continue;
    }
    s.push_back(shape[d]);
    for (size_t k = 0; k < strides.size(); ++k)
      st[k].push_back(strides[k][d]);
  }
  if (s.empty()) {
    s.push_back(1);
    for (auto &v : st)
      v.push_back(0);
  }
  shape = s;
  strides = st;
}

/// Max, Min, Sum and Mean of any number of inputs: the output accumulates
/// one input at a time (Mean then scales by 1 / n).
static Error lowerVariadic(Emitter &e, Operation *op, StringRef kernelOp, bool mean) {
  auto os = e.shapeOf(op, op->getResult(0));
  if (!os)
    return os.takeError();
  if (os->size() > 6)
    return e.unsupported(op, "tensors of rank above 6");
  std::vector<Value> inputs(op->getOperands().begin(), op->getOperands().end());
  std::vector<std::vector<int64_t>> inStrides;
  for (Value v : inputs) {
    if (!isFloat(v))
      return e.unsupported(op, "only float32 tensors are supported by this op's kernel");
    auto s = e.shapeOf(op, v);
    if (!s)
      return s.takeError();
    inStrides.push_back(broadcastStrides(*s, *os));
  }
  std::vector<int64_t> dense = broadcastStrides(*os, *os);
  // One call per input after the first two: (a, b) then (output, input k).
  struct Call {
    Value a, b; // a null: the output itself
    std::string shape, as, bs;
    int rank;
  };
  std::vector<Call> calls;
  for (size_t k = 1; k < inputs.size(); ++k) {
    std::vector<int64_t> shape = *os;
    std::vector<std::vector<int64_t>> strides = {k == 1 ? inStrides[0] : dense, inStrides[k]};
    simplifyLoops(shape, strides);
    calls.push_back({k == 1 ? inputs[0] : Value(), inputs[k], e.intArray(shape),
                     e.intArray(strides[0]), e.intArray(strides[1]), int(shape.size())});
  }
  int64_t n = product(*os);
  std::string scale = mean ? "(const float *)(const void *)(wb + " +
                                 std::to_string(e.addFloats({1.0f / float(inputs.size())})) + ")"
                           : "";
  std::string flatShape = mean ? e.intArray({n}) : "", one = mean ? e.intArray({1}) : "",
              zero = mean ? e.intArray({0}) : "";
  Step step = basicStep(op, inputs, op->getResult(0));
  Value result = op->getResult(0);
  e.use("elementwise");
  step.print = [=, op = kernelOp.str()](Emitter &e, raw_ostream &os) {
    for (const Call &c : calls)
      os << "  rf_binary(" << op << ", " << e.ptr(result, true) << ", "
         << (c.a ? e.ptr(c.a) : e.ptr(result)) << ", " << e.ptr(c.b) << ", " << c.rank << ", "
         << c.shape << ", " << c.as << ", " << c.bs << ", RF_ACT_NONE, 0.0f, 0.0f);\n";
    if (!scale.empty())
      os << "  rf_binary(RF_MUL, " << e.ptr(result, true) << ", " << e.ptr(result) << ", " << scale
         << ", 1, " << flatShape << ", " << one << ", " << zero << ", RF_ACT_NONE, 0.0f, 0.0f);\n";
  };
  e.steps.push_back(std::move(step));
  return Error::success();
}

static Error lowerBinary(Emitter &e, Operation *op, StringRef kernelOp) {
  StringRef opType = opTypeOf(op);
  if ((opType == "Sum" || opType == "Mean") && op->getNumOperands() >= 2)
    return lowerVariadic(e, op, "RF_ADD", opType == "Mean");
  if ((opType == "Max" || opType == "Min") && op->getNumOperands() > 2)
    return lowerVariadic(e, op, kernelOp, false);
  if (op->getNumOperands() != 2) {
    StringRef type = opTypeOf(op);
    if ((type == "Max" || type == "Min" || type == "Sum" || type == "Mean") &&
        op->getNumOperands() == 1) {
      Value x = op->getOperand(0);
      Step step = basicStep(op, {x}, op->getResult(0));
      step.isView = true; // one input: its value
      step.print = [](Emitter &, raw_ostream &) {};
      e.steps.push_back(std::move(step));
      return Error::success();
    }
    return e.unsupported(op, "more than two inputs");
  }
  Value a = op->getOperand(0), b = op->getOperand(1);
  if (!isFloat(a) || !isFloat(b))
    return e.unsupported(op, "only float32 tensors are supported by this op's kernel");
  auto as = e.shapeOf(op, a);
  auto bs = e.shapeOf(op, b);
  auto os = e.shapeOf(op, op->getResult(0));
  if (!as || !bs || !os)
    return as ? (bs ? os.takeError() : bs.takeError()) : as.takeError();
  if (os->size() > 6)
    return e.unsupported(op, "tensors of rank above 6");
  std::vector<int64_t> shape = *os;
  std::vector<std::vector<int64_t>> strides = {broadcastStrides(*as, *os), broadcastStrides(*bs, *os)};
  simplifyLoops(shape, strides);
  Step step = basicStep(op, {a, b}, op->getResult(0));
  if (*as == *os)
    step.inPlaceCandidates.push_back(a);
  if (*bs == *os)
    step.inPlaceCandidates.push_back(b);
  // An activation after a sum (a residual block's Relu) runs in the same pass.
  Value result = op->getResult(0);
  std::string act = "RF_ACT_NONE, 0.0f, 0.0f";
  if (Operation *user = e.singleUser(result); user && user->getOperand(0) == result) {
    StringRef t = opTypeOf(user);
    if (t == "Relu") {
      act = "RF_ACT_RELU, 0.0f, 0.0f";
      e.markAbsorbed(user);
      step.comment += " + Relu";
      result = user->getResult(0);
    }
  }
  step.writes = {result};
  std::string shapeName = e.intArray(shape), aName = e.intArray(strides[0]),
              bName = e.intArray(strides[1]);
  int rank = shape.size();
  e.use("elementwise");
  step.print = [=, op = kernelOp.str()](Emitter &e, raw_ostream &os) {
    os << "  rf_binary(" << op << ", " << e.ptr(result, true) << ", " << e.ptr(a) << ", " << e.ptr(b)
       << ", " << rank << ", " << shapeName << ", " << aName << ", " << bName << ", " << act
       << ");\n";
  };
  e.steps.push_back(std::move(step));
  return Error::success();
}

static Error lowerUnary(Emitter &e, Operation *op, StringRef kernelOp, float p0 = 0, float p1 = 0) {
  Value x = op->getOperand(0);
  auto shape = floatInputShape(e, op);
  if (!shape)
    return shape.takeError();
  Step step = basicStep(op, {x}, op->getResult(0));
  step.inPlaceCandidates.push_back(x);
  int64_t n = product(*shape);
  Value result = op->getResult(0);
  e.use("elementwise");
  step.print = [=, op = kernelOp.str()](Emitter &e, raw_ostream &os) {
    os << "  rf_unary(" << op << ", " << e.ptr(result, true) << ", " << e.ptr(x) << ", " << n << ", "
       << Emitter::floatLiteral(p0) << ", " << Emitter::floatLiteral(p1) << ");\n";
  };
  e.steps.push_back(std::move(step));
  return Error::success();
}

static Error lowerClip(Emitter &e, Operation *op) {
  NodeAttrs attrs{op};
  float lo = -INFINITY, hi = INFINITY;
  Value bounds[2];
  if (e.opset < 11) {
    lo = attrs.f("min", lo);
    hi = attrs.f("max", hi);
  } else {
    for (unsigned i = 1; i < 3 && i < op->getNumOperands(); ++i) {
      if (ir::isNoneValue(op->getOperand(i)))
        continue;
      auto bound = e.constant(op->getOperand(i));
      if (!bound) {
        if (elementDType(op->getOperand(i)) != DType::F32)
          return e.unsupported(op, "only float32 tensors are supported by this op's kernel");
        bounds[i - 1] = op->getOperand(i); // read when the model runs
        continue;
      }
      if (bound->size() != 1 || bound->dtype() != DType::F32)
        return e.unsupported(op, "only float32 tensors are supported by this op's kernel");
      (i == 1 ? lo : hi) = bound->data<float>()[0];
    }
  }
  if (!bounds[0] && !bounds[1])
    return lowerUnary(e, op, "RF_CLIP", lo, hi);
  Value x = op->getOperand(0);
  auto shape = floatInputShape(e, op);
  if (!shape)
    return shape.takeError();
  Step step = basicStep(op, {x}, op->getResult(0));
  for (Value b : bounds)
    if (b)
      step.reads.push_back(b);
  step.inPlaceCandidates.push_back(x);
  int64_t n = product(*shape);
  Value result = op->getResult(0);
  e.use("elementwise");
  step.print = [=](Emitter &e, raw_ostream &os) {
    std::string p0 = bounds[0] ? "*" + e.ptr(bounds[0]) : Emitter::floatLiteral(lo);
    std::string p1 = bounds[1] ? "*" + e.ptr(bounds[1]) : Emitter::floatLiteral(hi);
    os << "  rf_unary(RF_CLIP, " << e.ptr(result, true) << ", " << e.ptr(x) << ", " << n << ", " << p0
       << ", " << p1 << ");\n";
  };
  e.steps.push_back(std::move(step));
  return Error::success();
}

static Error lowerBatchNorm(Emitter &e, Operation *op) {
  Value x = op->getOperand(0);
  if (!isFloat(x))
    return e.unsupported(op, "only float32 tensors are supported by this op's kernel");
  for (unsigned i = 1; i < op->getNumResults(); ++i)
    if (!op->getResult(i).use_empty())
      return e.unsupported(op, "training-mode outputs");
  std::optional<Tensor> params[4];
  bool allConstant = true;
  for (int i = 0; i < 4; ++i) {
    params[i] = e.constant(op->getOperand(i + 1));
    if (elementDType(op->getOperand(i + 1)) != DType::F32)
      return e.unsupported(op, "only float32 tensors are supported by this op's kernel");
    allConstant &= params[i].has_value();
  }
  auto shape = e.shapeOf(op, x);
  if (!shape)
    return shape.takeError();
  int64_t c = shape->size() > 1 ? (*shape)[1] : 1;
  double eps = NodeAttrs{op}.f("epsilon", 1e-5f);
  if (!allConstant) {
    // Statistics read when the model runs: scale and shift per call.
    int64_t outer = (*shape)[0], inner = product(*shape) / (outer * c);
    Step step = basicStep(op, {x}, op->getResult(0));
    for (int i = 1; i <= 4; ++i)
      step.reads.push_back(op->getOperand(i));
    step.inPlaceCandidates.push_back(x);
    Value result = op->getResult(0);
    e.use("elementwise");
    step.print = [=](Emitter &e, raw_ostream &os) {
      os << "  rf_batchnorm(" << e.ptr(result, true) << ", " << e.ptr(x) << ", " << outer << ", " << c
         << ", " << inner << ", " << e.ptr(op->getOperand(1)) << ", " << e.ptr(op->getOperand(2))
         << ", " << e.ptr(op->getOperand(3)) << ", " << e.ptr(op->getOperand(4)) << ", "
         << Emitter::floatLiteral(float(eps)) << ");\n";
    };
    e.steps.push_back(std::move(step));
    return Error::success();
  }
  std::vector<float> scale(c), shift(c);
  for (int64_t i = 0; i < c; ++i) {
    double s = params[0]->data<float>()[i] / std::sqrt(double(params[3]->data<float>()[i]) + eps);
    scale[i] = float(s);
    shift[i] = float(params[1]->data<float>()[i] - params[2]->data<float>()[i] * s);
  }
  uint64_t so = e.addFloats(scale), to = e.addFloats(shift);
  int64_t outer = (*shape)[0], inner = product(*shape) / (outer * c);
  Step step = basicStep(op, {x}, op->getResult(0));
  step.inPlaceCandidates.push_back(x);
  Value result = op->getResult(0);
  e.use("elementwise");
  step.print = [=](Emitter &e, raw_ostream &os) {
    os << "  rf_channel_affine(" << e.ptr(result, true) << ", " << e.ptr(x) << ", " << outer << ", "
       << c << ", " << inner << ", (const float *)(const void *)(wb + " << so
       << "), (const float *)(const void *)(wb + " << to << "));\n";
  };
  e.steps.push_back(std::move(step));
  return Error::success();
}

//===----------------------------------------------------------------------===//
// Normalization and reductions
//===----------------------------------------------------------------------===//

static Error lowerSoftmax(Emitter &e, Operation *op, bool logSoftmax) {
  Value x = op->getOperand(0);
  auto shape = floatInputShape(e, op);
  if (!shape)
    return shape.takeError();
  int64_t rank = shape->size();
  int64_t axis = NodeAttrs{op}.i("axis", e.opset < 13 ? 1 : -1);
  if (axis < 0)
    axis += rank;
  if (axis < 0 || axis >= std::max<int64_t>(rank, 1))
    return e.unsupported(op, "axis out of range");
  int64_t outer = product(ArrayRef<int64_t>(*shape).take_front(axis)), len, inner;
  if (e.opset < 13) { // the input is flattened to 2-D at axis
    len = product(ArrayRef<int64_t>(*shape).drop_front(axis));
    inner = 1;
  } else {
    len = (*shape)[axis];
    inner = product(ArrayRef<int64_t>(*shape).drop_front(axis + 1));
  }
  Step step = basicStep(op, {x}, op->getResult(0));
  if (!logSoftmax)
    step.inPlaceCandidates.push_back(x);
  Value result = op->getResult(0);
  e.use("norm");
  step.print = [=](Emitter &e, raw_ostream &os) {
    os << "  rf_softmax(" << e.ptr(result, true) << ", " << e.ptr(x) << ", " << outer << ", " << len
       << ", " << inner << ", " << logSoftmax << ");\n";
  };
  e.steps.push_back(std::move(step));
  return Error::success();
}

static Error lowerLayerNorm(Emitter &e, Operation *op) {
  Value x = op->getOperand(0);
  if (!isFloat(x))
    return e.unsupported(op, "only float32 tensors are supported by this op's kernel");
  if (NodeAttrs{op}.i("stash_type", 1) != 1)
    return e.unsupported(op, "stash_type other than float32");
  auto shape = e.shapeOf(op, x);
  if (!shape)
    return shape.takeError();
  int64_t rank = shape->size(), axis = NodeAttrs{op}.i("axis", -1);
  if (axis < 0)
    axis += rank;
  int64_t len = product(ArrayRef<int64_t>(*shape).drop_front(axis)), outer = product(*shape) / len;
  float eps = NodeAttrs{op}.f("epsilon", 1e-5f);
  Step step = basicStep(op, {x}, op->getResult(0));
  // Scale and bias: constants broadcast to the normalized axes at
  // generation time, or tensors of exactly those axes read at run time.
  std::string params[2] = {"NULL", "NULL"};
  Value runtime[2];
  for (unsigned i = 1; i < 3 && i < op->getNumOperands(); ++i) {
    Value v = op->getOperand(i);
    if (ir::isNoneValue(v))
      continue;
    if (!isFloat(v))
      return e.unsupported(op, "only float32 tensors are supported by this op's kernel");
    auto t = e.constant(v);
    if (!t) {
      auto s = e.shapeOf(op, v);
      if (!s)
        return s.takeError();
      if (product(*s) != len)
        return e.unsupported(op, "scale or bias that does not cover the normalized axes");
      runtime[i - 1] = v;
      step.reads.push_back(v);
      continue;
    }
    std::vector<float> values(len);
    if (t->size() == len)
      std::copy(t->data<float>(), t->data<float>() + len, values.begin());
    else if (t->size() == 1)
      std::fill(values.begin(), values.end(), t->data<float>()[0]);
    else
      return e.unsupported(op, "scale or bias that does not cover the normalized axes");
    params[i - 1] = "(const float *)(const void *)(wb + " + std::to_string(e.addFloats(values)) + ")";
  }
  // Mean and InvStdDev, when used, are written too.
  Value stats[2];
  for (unsigned i = 1; i < 3 && i < op->getNumResults(); ++i)
    if (!op->getResult(i).use_empty()) {
      stats[i - 1] = op->getResult(i);
      step.writes.push_back(op->getResult(i));
    }
  if (!stats[0] && !stats[1])
    step.inPlaceCandidates.push_back(x);
  Value result = op->getResult(0);
  e.use("norm");
  step.print = [=](Emitter &e, raw_ostream &os) {
    std::string scale = runtime[0] ? e.ptr(runtime[0]) : params[0];
    std::string bias = runtime[1] ? e.ptr(runtime[1]) : params[1];
    os << "  rf_layer_norm(" << e.ptr(result, true) << ", " << e.ptr(x) << ", " << outer << ", " << len
       << ", " << scale << ", " << bias << ", " << Emitter::floatLiteral(eps) << ", "
       << (stats[0] ? e.ptr(stats[0], true) : "NULL") << ", "
       << (stats[1] ? e.ptr(stats[1], true) : "NULL") << ");\n";
  };
  e.steps.push_back(std::move(step));
  return Error::success();
}

static Error lowerReduce(Emitter &e, Operation *op, StringRef kernelOp) {
  Value x = op->getOperand(0);
  auto shape = floatInputShape(e, op);
  if (!shape)
    return shape.takeError();
  int64_t rank = shape->size();
  NodeAttrs attrs{op};
  std::vector<int64_t> axes;
  if (auto a = attrs.ints("axes")) {
    axes = *a;
  } else if (op->getNumOperands() > 1 && !ir::isNoneValue(op->getOperand(1))) {
    auto t = e.constant(op->getOperand(1));
    if (!t)
      return e.unsupported(op, "axes computed at run time");
    axes = t->toInts();
  }
  if (axes.empty()) {
    if (attrs.i("noop_with_empty_axes", 0))
      return e.unsupported(op, "noop_with_empty_axes");
    for (int64_t d = 0; d < rank; ++d)
      axes.push_back(d);
  }
  for (int64_t &a : axes)
    a = a < 0 ? a + rank : a;
  llvm::sort(axes);
  axes.erase(std::unique(axes.begin(), axes.end()), axes.end());
  // Reduced axes that are not contiguous, ignoring size-1 dims, are refused.
  std::vector<int64_t> real;
  for (int64_t a : axes)
    if ((*shape)[a] != 1)
      real.push_back(a);
  int64_t first = real.empty() ? rank : real.front(), last = real.empty() ? rank - 1 : real.back();
  for (int64_t d = first; d <= last; ++d)
    if ((*shape)[d] != 1 && !llvm::is_contained(real, d))
      return e.unsupported(op, "reducing axes that are not adjacent");
  int64_t outer = product(ArrayRef<int64_t>(*shape).take_front(first));
  int64_t len = real.empty() ? 1 : product(ArrayRef<int64_t>(*shape).slice(first, last - first + 1));
  int64_t inner = product(*shape) / (outer * len);
  Step step = basicStep(op, {x}, op->getResult(0));
  Value result = op->getResult(0);
  e.use("norm");
  step.print = [=, op = kernelOp.str()](Emitter &e, raw_ostream &os) {
    os << "  rf_reduce(" << op << ", " << e.ptr(result, true) << ", " << e.ptr(x) << ", " << outer
       << ", " << len << ", " << inner << ");\n";
  };
  e.steps.push_back(std::move(step));
  return Error::success();
}

//===----------------------------------------------------------------------===//
// Data movement
//===----------------------------------------------------------------------===//

static Error lowerView(Emitter &e, Operation *op) {
  Value x = op->getOperand(0);
  Step step = basicStep(op, {x}, op->getResult(0));
  step.isView = true;
  step.print = [](Emitter &, raw_ostream &) {};
  e.steps.push_back(std::move(step));
  return Error::success();
}

/// out = in read at element `base` with per-output-dim `strides`.
static Error stridedCopy(Emitter &e, Operation *op, Value in, Value out, std::vector<int64_t> shape,
                         std::vector<int64_t> strides, int64_t base) {
  auto dtype = elementDType(in);
  if (!dtype || cTypeOf(*dtype).empty())
    return e.unsupported(op, "its element type");
  std::vector<std::vector<int64_t>> all = {strides};
  simplifyLoops(shape, all);
  if (shape.size() > 6)
    return e.unsupported(op, "tensors of rank above 6");
  size_t elem = interp::dtypeSize(*dtype);
  std::string shapeName = e.intArray(shape), strideName = e.intArray(all[0]);
  int rank = shape.size();
  Step step = basicStep(op, {in}, out);
  e.use("data");
  step.print = [=](Emitter &e, raw_ostream &os) {
    os << "  rf_strided_copy(" << e.ptr(out, true) << ", " << e.ptr(in)
       << (base ? " + " + std::to_string(base) : "") << ", " << elem << ", " << rank << ", "
       << shapeName << ", " << strideName << ");\n";
  };
  e.steps.push_back(std::move(step));
  return Error::success();
}

static Error lowerTranspose(Emitter &e, Operation *op) {
  Value x = op->getOperand(0);
  auto shape = e.shapeOf(op, x);
  if (!shape)
    return shape.takeError();
  size_t rank = shape->size();
  std::vector<int64_t> perm;
  if (auto p = NodeAttrs{op}.ints("perm"))
    perm = *p;
  else
    for (size_t d = rank; d-- > 0;)
      perm.push_back(d);
  std::vector<int64_t> dense = denseStrides(*shape), outShape, strides;
  for (int64_t p : perm) {
    outShape.push_back((*shape)[p]);
    strides.push_back(dense[p]);
  }
  return stridedCopy(e, op, x, op->getResult(0), outShape, strides, 0);
}

/// Start, step and size of a Slice along each axis.
static Error lowerSlice(Emitter &e, Operation *op) {
  Value x = op->getOperand(0);
  auto shape = e.shapeOf(op, x);
  auto outShape = e.shapeOf(op, op->getResult(0));
  if (!shape || !outShape)
    return shape ? outShape.takeError() : shape.takeError();
  int64_t rank = shape->size();
  std::vector<int64_t> starts, ends, axes, steps;
  NodeAttrs attrs{op};
  if (e.opset < 10) {
    starts = attrs.ints("starts").value_or(std::vector<int64_t>{});
    ends = attrs.ints("ends").value_or(std::vector<int64_t>{});
    axes = attrs.ints("axes").value_or(std::vector<int64_t>{});
  } else {
    auto read = [&](unsigned i, std::vector<int64_t> &into) -> bool {
      if (i >= op->getNumOperands() || ir::isNoneValue(op->getOperand(i)))
        return true;
      auto t = e.constant(op->getOperand(i));
      if (!t)
        return false;
      into = t->toInts();
      return true;
    };
    if (!read(1, starts) || !read(2, ends) || !read(3, axes) || !read(4, steps))
      return e.unsupported(op, "starts, ends, axes or steps computed at run time");
  }
  if (axes.empty())
    for (size_t i = 0; i < starts.size(); ++i)
      axes.push_back(i);
  if (steps.empty())
    steps.assign(starts.size(), 1);
  std::vector<int64_t> start(rank, 0), step(rank, 1);
  for (size_t i = 0; i < axes.size(); ++i) {
    int64_t a = axes[i] < 0 ? axes[i] + rank : axes[i], dim = (*shape)[a];
    int64_t s = starts[i], st = steps[i];
    if (st == 0)
      return e.unsupported(op, "a zero step");
    s = s < 0 ? s + dim : s;
    s = st > 0 ? std::clamp<int64_t>(s, 0, dim) : std::clamp<int64_t>(s, 0, dim - 1);
    start[a] = s;
    step[a] = st;
  }
  std::vector<int64_t> dense = denseStrides(*shape), strides(rank);
  int64_t base = 0;
  for (int64_t d = 0; d < rank; ++d) {
    base += start[d] * dense[d];
    strides[d] = dense[d] * step[d];
  }
  return stridedCopy(e, op, x, op->getResult(0), *outShape, strides, base);
}

static Error lowerConcat(Emitter &e, Operation *op) {
  auto outShape = e.shapeOf(op, op->getResult(0));
  if (!outShape)
    return outShape.takeError();
  auto dtype = elementDType(op->getResult(0));
  if (!dtype || cTypeOf(*dtype).empty())
    return e.unsupported(op, "its element type");
  int64_t rank = outShape->size(), axis = NodeAttrs{op}.i("axis", 0);
  axis = axis < 0 ? axis + rank : axis;
  size_t elem = interp::dtypeSize(*dtype);
  int64_t outer = product(ArrayRef<int64_t>(*outShape).take_front(axis));
  int64_t inner = product(ArrayRef<int64_t>(*outShape).drop_front(axis + 1));
  int64_t outStride = (*outShape)[axis] * inner * elem;
  Step step = basicStep(op, {}, op->getResult(0));
  std::vector<std::tuple<Value, int64_t, int64_t>> parts; // value, byte offset in a row, bytes
  int64_t offset = 0;
  for (Value v : op->getOperands()) {
    auto s = e.shapeOf(op, v);
    if (!s)
      return s.takeError();
    int64_t block = (*s)[axis] * inner * elem;
    if (block)
      parts.push_back({v, offset, block});
    step.reads.push_back(v);
    offset += block;
  }
  Value result = op->getResult(0);
  // With one block per input (outer 1), each input is a contiguous slice of
  // the output that its producer can write directly.
  if (outer == 1)
    for (auto [v, off, block] : parts)
      step.slices.push_back({v, uint64_t(off)});
  e.use("data");
  step.print = [=](Emitter &e, raw_ostream &os) {
    Slot out = e.slots.lookup(result);
    for (auto [v, off, block] : parts) {
      Slot in = e.slots.lookup(v);
      if (in.buffer == out.buffer && in.byteOffset == out.byteOffset + uint64_t(off))
        continue; // written in place by its producer
      os << "  rf_copy_blocks((unsigned char *)(void *)" << e.ptr(result, true) << " + " << off << ", "
         << outStride << ", " << e.ptr(v) << ", " << block << ", " << outer << ", " << block
         << ");\n";
    }
  };
  e.steps.push_back(std::move(step));
  return Error::success();
}

static Error lowerSplit(Emitter &e, Operation *op) {
  Value x = op->getOperand(0);
  auto shape = e.shapeOf(op, x);
  if (!shape)
    return shape.takeError();
  auto dtype = elementDType(x);
  if (!dtype || cTypeOf(*dtype).empty())
    return e.unsupported(op, "its element type");
  int64_t rank = shape->size(), axis = NodeAttrs{op}.i("axis", 0);
  axis = axis < 0 ? axis + rank : axis;
  size_t elem = interp::dtypeSize(*dtype);
  int64_t outer = product(ArrayRef<int64_t>(*shape).take_front(axis));
  int64_t inner = product(ArrayRef<int64_t>(*shape).drop_front(axis + 1));
  int64_t inStride = (*shape)[axis] * inner * elem;
  int64_t offset = 0;
  for (Value out : op->getResults()) {
    auto s = e.shapeOf(op, out);
    if (!s)
      return s.takeError();
    int64_t block = (*s)[axis] * inner * elem, off = offset;
    offset += block;
    if (out.use_empty())
      continue;
    Step step = basicStep(op, {x}, out);
    e.use("data");
    step.print = [=](Emitter &e, raw_ostream &os) {
      os << "  rf_copy_blocks(" << e.ptr(out, true) << ", " << block
         << ", (const unsigned char *)(const void *)" << e.ptr(x) << " + " << off << ", " << inStride
         << ", " << outer << ", " << block << ");\n";
    };
    e.steps.push_back(std::move(step));
  }
  return Error::success();
}

static Error lowerPad(Emitter &e, Operation *op) {
  Value x = op->getOperand(0);
  if (!isFloat(x))
    return e.unsupported(op, "only float32 tensors are supported by this op's kernel");
  NodeAttrs attrs{op};
  if (attrs.s("mode", "constant") != "constant")
    return e.unsupported(op, "mode '" + attrs.s("mode", "constant") + "' (only constant)");
  auto shape = e.shapeOf(op, x);
  auto outShape = e.shapeOf(op, op->getResult(0));
  if (!shape || !outShape)
    return shape ? outShape.takeError() : shape.takeError();
  int64_t rank = shape->size();
  std::vector<int64_t> pads;
  float value = 0;
  if (e.opset < 11) {
    pads = attrs.ints("pads").value_or(std::vector<int64_t>{});
    value = attrs.f("value", 0);
  } else {
    auto p = e.constant(op->getOperand(1));
    if (!p)
      return e.unsupported(op, "pads computed at run time");
    pads = p->toInts();
    if (op->getNumOperands() > 2 && !ir::isNoneValue(op->getOperand(2))) {
      auto v = e.constant(op->getOperand(2));
      if (!v || v->size() != 1)
        return e.unsupported(op, "a constant_value computed at run time");
      value = float(v->asDouble(0));
    }
    if (op->getNumOperands() > 3 && !ir::isNoneValue(op->getOperand(3))) {
      auto a = e.constant(op->getOperand(3));
      if (!a)
        return e.unsupported(op, "axes computed at run time");
      std::vector<int64_t> full(2 * rank, 0), axes = a->toInts();
      for (size_t i = 0; i < axes.size(); ++i) {
        int64_t ax = axes[i] < 0 ? axes[i] + rank : axes[i];
        full[ax] = pads[i];
        full[ax + rank] = pads[i + axes.size()];
      }
      pads = full;
    }
  }
  if (int64_t(pads.size()) != 2 * rank)
    return e.unsupported(op, "pads of the wrong length");
  if (llvm::any_of(pads, [](int64_t p) { return p < 0; }))
    return e.unsupported(op, "negative pads");
  if (rank > 6)
    return e.unsupported(op, "tensors of rank above 6");
  std::vector<int64_t> outStrides = denseStrides(*outShape);
  int64_t offset = 0;
  for (int64_t d = 0; d < rank; ++d)
    offset += pads[d] * outStrides[d];
  std::string inShape = e.intArray(*shape), strides = e.intArray(outStrides);
  int64_t n = product(*outShape);
  Step step = basicStep(op, {x}, op->getResult(0));
  Value result = op->getResult(0);
  e.use("data");
  step.print = [=](Emitter &e, raw_ostream &os) {
    os << "  rf_pad_constant(" << e.ptr(result, true) << ", " << n << ", "
       << Emitter::floatLiteral(value) << ", " << e.ptr(x) << ", " << rank << ", " << inShape << ", "
       << strides << ", " << offset << ");\n";
  };
  e.steps.push_back(std::move(step));
  return Error::success();
}

static Error lowerGather(Emitter &e, Operation *op) {
  Value data = op->getOperand(0), indices = op->getOperand(1);
  auto shape = e.shapeOf(op, data);
  if (!shape)
    return shape.takeError();
  auto dtype = elementDType(data);
  if (!dtype || cTypeOf(*dtype).empty())
    return e.unsupported(op, "its element type");
  int64_t rank = shape->size(), axis = NodeAttrs{op}.i("axis", 0);
  axis = axis < 0 ? axis + rank : axis;
  auto idx = e.constant(indices);
  if (!idx)
    return e.unsupported(op, "indices computed at run time");
  std::string table = e.intArray(idx->toInts(), "int64_t");
  int64_t outer = product(ArrayRef<int64_t>(*shape).take_front(axis));
  int64_t block = product(ArrayRef<int64_t>(*shape).drop_front(axis + 1)) *
                  int64_t(interp::dtypeSize(*dtype));
  int64_t count = idx->size(), axisLen = (*shape)[axis];
  Step step = basicStep(op, {data}, op->getResult(0));
  Value result = op->getResult(0);
  e.use("data");
  step.print = [=](Emitter &e, raw_ostream &os) {
    os << "  rf_gather(" << e.ptr(result, true) << ", " << e.ptr(data) << ", " << outer << ", "
       << axisLen << ", " << block << ", " << table << ", " << count << ");\n";
  };
  e.steps.push_back(std::move(step));
  return Error::success();
}

/// Source coordinate of output index `o` along an axis (ONNX Resize).
static double sourceCoordinate(const std::string &mode, int64_t o, int64_t in, double out,
                               double scale) {
  if (mode == "asymmetric")
    return o / scale;
  if (mode == "align_corners")
    return out == 1 ? 0 : double(o) * (in - 1) / (out - 1);
  if (mode == "pytorch_half_pixel")
    return out > 1 ? (o + 0.5) / scale - 0.5 : 0;
  if (mode == "tf_half_pixel_for_nn")
    return (o + 0.5) / scale;
  return (o + 0.5) / scale - 0.5; // half_pixel
}

static Error lowerResize(Emitter &e, Operation *op) {
  Value x = op->getOperand(0);
  if (!isFloat(x))
    return e.unsupported(op, "only float32 tensors are supported by this op's kernel");
  auto shape = e.shapeOf(op, x);
  auto outShape = e.shapeOf(op, op->getResult(0));
  if (!shape || !outShape)
    return shape ? outShape.takeError() : shape.takeError();
  if (shape->size() != 4 || (*shape)[0] != (*outShape)[0] || (*shape)[1] != (*outShape)[1])
    return e.unsupported(op, "resizing other than the two spatial dims of a 4-D tensor");
  NodeAttrs attrs{op};
  std::string mode = attrs.s("mode", "nearest");
  std::string coord = attrs.s("coordinate_transformation_mode", e.opset < 11 ? "asymmetric" : "half_pixel");
  // Upsample and Resize-10 pick the floor of the asymmetric coordinate.
  bool legacy = opTypeOf(op) == "Upsample" || e.opset < 11;
  std::string nearest = attrs.s("nearest_mode", legacy ? "floor" : "round_prefer_floor");
  if (mode != "nearest" && mode != "linear")
    return e.unsupported(op, "mode '" + mode + "'");
  if (attrs.i("antialias", 0) || attrs.s("keep_aspect_ratio_policy", "stretch") != "stretch")
    return e.unsupported(op, "antialias or keep_aspect_ratio_policy");
  if (coord == "tf_crop_and_resize")
    return e.unsupported(op, "coordinate_transformation_mode 'tf_crop_and_resize'");
  // Scales: given (opset 11+: input 2; opset 10: input 1), else out / in.
  // With scales given, ONNX maps coordinates with the unrounded output
  // length in * scale.
  double scales[2] = {double((*outShape)[2]) / (*shape)[2], double((*outShape)[3]) / (*shape)[3]};
  double lengths[2] = {double((*outShape)[2]), double((*outShape)[3])};
  unsigned scalesInput = legacy ? 1 : 2;
  auto useScales = [&](const std::vector<double> &given) {
    if (given.size() != 4)
      return;
    for (int axis = 0; axis < 2; ++axis) {
      scales[axis] = given[2 + axis];
      lengths[axis] = (*shape)[2 + axis] * given[2 + axis];
    }
  };
  if (auto a = dyn_cast_or_null<DenseF32ArrayAttr>(attrs.get("scales")))
    useScales(std::vector<double>(a.asArrayRef().begin(), a.asArrayRef().end()));
  if (op->getNumOperands() > scalesInput && !ir::isNoneValue(op->getOperand(scalesInput))) {
    auto s = e.constant(op->getOperand(scalesInput));
    if (!s)
      return e.unsupported(op, "scales computed at run time");
    std::vector<double> given;
    for (int64_t i = 0; i < s->size(); ++i)
      given.push_back(s->asDouble(i));
    useScales(given);
  }
  std::vector<int64_t> idx[2][2];
  std::vector<float> weight[2];
  for (int axis = 0; axis < 2; ++axis) {
    int64_t in = (*shape)[2 + axis], out = (*outShape)[2 + axis];
    for (int64_t o = 0; o < out; ++o) {
      double c = sourceCoordinate(coord, o, in, lengths[axis], scales[axis]);
      if (mode == "nearest") {
        int64_t i;
        if (nearest == "floor")
          i = int64_t(std::floor(c));
        else if (nearest == "ceil")
          i = int64_t(std::ceil(c));
        else if (nearest == "round_prefer_ceil")
          i = int64_t(std::floor(c + 0.5));
        else // round_prefer_floor
          i = c == std::floor(c) + 0.5 ? int64_t(std::floor(c)) : int64_t(std::round(c));
        idx[axis][0].push_back(std::clamp<int64_t>(i, 0, in - 1));
      } else {
        c = std::clamp(c, 0.0, double(in - 1));
        int64_t lo = int64_t(std::floor(c)), hi = std::min(lo + 1, in - 1);
        idx[axis][0].push_back(lo);
        idx[axis][1].push_back(hi);
        weight[axis].push_back(float(c - lo));
      }
    }
  }
  int64_t nc = (*shape)[0] * (*shape)[1];
  int64_t h = (*shape)[2], w = (*shape)[3], oh = (*outShape)[2], ow = (*outShape)[3];
  Step step = basicStep(op, {x}, op->getResult(0));
  Value result = op->getResult(0);
  e.use("norm");
  if (mode == "nearest") {
    std::string ys = e.intArray(idx[0][0], "int32_t"), xs = e.intArray(idx[1][0], "int32_t");
    step.print = [=](Emitter &e, raw_ostream &os) {
      os << "  rf_resize_nearest(" << e.ptr(result, true) << ", " << e.ptr(x) << ", " << nc << ", "
         << h << ", " << w << ", " << oh << ", " << ow << ", " << ys << ", " << xs << ");\n";
    };
  } else {
    std::string y0 = e.intArray(idx[0][0], "int32_t"), y1 = e.intArray(idx[0][1], "int32_t"),
                x0 = e.intArray(idx[1][0], "int32_t"), x1 = e.intArray(idx[1][1], "int32_t"),
                wy = e.floatArray(weight[0]), wx = e.floatArray(weight[1]);
    step.print = [=](Emitter &e, raw_ostream &os) {
      os << "  rf_resize_linear(" << e.ptr(result, true) << ", " << e.ptr(x) << ", " << nc << ", " << h
         << ", " << w << ", " << oh << ", " << ow << ", " << y0 << ", " << y1 << ", " << wy << ", "
         << x0 << ", " << x1 << ", " << wx << ");\n";
    };
  }
  e.steps.push_back(std::move(step));
  return Error::success();
}

Error lowerTensorOp(Emitter &e, Operation *op, bool &handled) {
  StringRef type = opTypeOf(op);
  handled = true;
  static const std::map<std::string, std::string> binary = {
      {"Add", "RF_ADD"}, {"Sub", "RF_SUB"}, {"Mul", "RF_MUL"}, {"Div", "RF_DIV"},
      {"Pow", "RF_POW"}, {"Max", "RF_MAX"}, {"Min", "RF_MIN"}, {"Sum", "RF_ADD"},
      {"Mean", "RF_ADD"}};
  static const std::map<std::string, std::string> unary = {
      {"Relu", "RF_RELU"},   {"Sigmoid", "RF_SIGMOID"}, {"Tanh", "RF_TANH"},
      {"Erf", "RF_ERF"},     {"Sqrt", "RF_SQRT"},       {"Exp", "RF_EXP"},
      {"Log", "RF_LOG"},     {"Neg", "RF_NEG"},         {"Abs", "RF_ABS"},
      {"Reciprocal", "RF_RECIPROCAL"}, {"HardSwish", "RF_HARD_SWISH"}, {"Softplus", "RF_SOFTPLUS"},
      {"Floor", "RF_FLOOR"}, {"Ceil", "RF_CEIL"}};
  static const std::map<std::string, std::string> reduce = {
      {"ReduceMean", "RF_REDUCE_MEAN"}, {"ReduceSum", "RF_REDUCE_SUM"},
      {"ReduceMax", "RF_REDUCE_MAX"},   {"ReduceMin", "RF_REDUCE_MIN"},
      {"ReduceProd", "RF_REDUCE_PROD"}, {"ReduceL2", "RF_REDUCE_L2"},
      {"ReduceSumSquare", "RF_REDUCE_SUM_SQUARE"}};
  NodeAttrs attrs{op};
  // x * Sigmoid(x) (SiLU, Swish) is one pass.
  if (type == "Sigmoid") {
    Value x = op->getOperand(0), s = op->getResult(0);
    if (Operation *mul = e.singleUser(s); mul && opTypeOf(mul) == "Mul" &&
                                          mul->getNumOperands() == 2 && isFloat(x) &&
                                          ((mul->getOperand(0) == s && mul->getOperand(1) == x) ||
                                           (mul->getOperand(1) == s && mul->getOperand(0) == x)) &&
                                          mul->getResult(0).getType() == s.getType()) {
      auto shape = e.shapeOf(op, x);
      if (!shape)
        return shape.takeError();
      Value result = mul->getResult(0);
      e.markAbsorbed(mul);
      Step step = basicStep(op, {x}, result);
      step.comment += " + Mul (SiLU)";
      step.inPlaceCandidates.push_back(x);
      int64_t n = product(*shape);
      e.use("elementwise");
      step.print = [=](Emitter &e, raw_ostream &os) {
        os << "  rf_unary(RF_SILU, " << e.ptr(result, true) << ", " << e.ptr(x) << ", " << n
           << ", 0.0f, 0.0f);\n";
      };
      e.steps.push_back(std::move(step));
      return Error::success();
    }
  }
  if (auto it = binary.find(type.str()); it != binary.end())
    return lowerBinary(e, op, it->second);
  if (auto it = unary.find(type.str()); it != unary.end())
    return lowerUnary(e, op, it->second);
  if (auto it = reduce.find(type.str()); it != reduce.end())
    return lowerReduce(e, op, it->second);
  if (type == "LeakyRelu")
    return lowerUnary(e, op, "RF_LEAKY_RELU", attrs.f("alpha", 0.01f));
  if (type == "Elu")
    return lowerUnary(e, op, "RF_ELU", attrs.f("alpha", 1.0f));
  if (type == "HardSigmoid")
    return lowerUnary(e, op, "RF_HARD_SIGMOID", attrs.f("alpha", 0.2f), attrs.f("beta", 0.5f));
  if (type == "Gelu")
    return lowerUnary(e, op, attrs.s("approximate", "none") == "tanh" ? "RF_GELU_TANH" : "RF_GELU");
  if (type == "Clip")
    return lowerClip(e, op);
  if (type == "BatchNormalization")
    return lowerBatchNorm(e, op);
  if (type == "Softmax" || type == "LogSoftmax")
    return lowerSoftmax(e, op, type == "LogSoftmax");
  if (type == "LayerNormalization")
    return lowerLayerNorm(e, op);
  if (type == "Dropout") {
    // Inference only: a training_mode that is not a constant false (with a
    // non-zero ratio) would need random masks.
    if (op->getNumOperands() > 2 && !ir::isNoneValue(op->getOperand(2))) {
      auto training = e.constant(op->getOperand(2));
      auto ratio = op->getNumOperands() > 1 && !ir::isNoneValue(op->getOperand(1))
                       ? e.constant(op->getOperand(1)) : std::optional<Tensor>();
      bool zeroRatio = ratio && ratio->size() == 1 && ratio->asDouble(0) == 0;
      if (!training || (training->size() == 1 && training->asInt(0) != 0 && !zeroRatio))
        return e.unsupported(op, "training mode (random masks)");
    }
  }
  if (type == "Reshape" || type == "Flatten" || type == "Squeeze" || type == "Unsqueeze" ||
      type == "Identity" || type == "Dropout") {
    for (unsigned i = 1; i < op->getNumResults(); ++i)
      if (!op->getResult(i).use_empty())
        return e.unsupported(op, "a second output");
    return lowerView(e, op);
  }
  if (type == "Transpose")
    return lowerTranspose(e, op);
  if (type == "Slice")
    return lowerSlice(e, op);
  if (type == "Concat")
    return lowerConcat(e, op);
  if (type == "Split")
    return lowerSplit(e, op);
  if (type == "Pad")
    return lowerPad(e, op);
  if (type == "Gather")
    return lowerGather(e, op);
  if (type == "Resize" || type == "Upsample")
    return lowerResize(e, op);
  handled = false;
  return Error::success();
}

} // namespace refold::cemit
