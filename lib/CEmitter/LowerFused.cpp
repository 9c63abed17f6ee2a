//===- LowerFused.cpp - decompositions emitted as one kernel -----------------===//
//
// Exporters write GELU and LayerNormalization as chains of elementwise ops
// (refold keeps them whole for runtimes that fuse them). In C each op of a
// chain is a pass over memory; these chains become one kernel call when the
// chain computes exactly the fused function: GELU 0.5 x (1 + erf(x / sqrt 2))
// and (x - mean) / sqrt(var + eps) [* gamma] [+ beta] over trailing axes.
//
//===----------------------------------------------------------------------===//

#include "Lowering.h"

#include "refold/Dialect/ONNX/ONNXOps.h"

#include "llvm/ADT/STLExtras.h"

#include <cmath>

using namespace mlir;
using llvm::Error;

namespace refold::cemit {

namespace {

bool isType(Operation *op, StringRef type) { return op && opTypeOf(op) == type; }

/// The scalar float value of a constant, if it is one.
std::optional<float> scalarOf(Emitter &e, Value v) {
  auto t = e.constant(v);
  if (!t || t->dtype() != DType::F32 || t->size() != 1)
    return std::nullopt;
  return t->data<float>()[0];
}

bool near(std::optional<float> v, double want) {
  return v && std::abs(*v - want) <= 1e-6 * std::max(1.0, std::abs(want));
}

Value other(Operation *op, Value v) {
  return op->getOperand(0) == v ? op->getOperand(1) : op->getOperand(0);
}

/// The only user of `v`, when it has one use.
Operation *only(Emitter &e, Value v) { return e.singleUser(v); }

struct Fused {
  std::vector<Operation *> members;
  Value input, output;
  std::function<Error(Emitter &, Step &)> lower;
};

/// 0.5 x (1 + erf(x / sqrt 2)) in its exporters' orders.
std::optional<Fused> matchGelu(Emitter &e, Operation *erf) {
  Operation *arg = erf->getOperand(0).getDefiningOp();
  if (!arg || !erf->getOperand(0).hasOneUse())
    return std::nullopt;
  Value x;
  if (isType(arg, "Div") && near(scalarOf(e, arg->getOperand(1)), std::sqrt(2.0)))
    x = arg->getOperand(0);
  else if (isType(arg, "Mul") && near(scalarOf(e, arg->getOperand(1)), std::sqrt(0.5)))
    x = arg->getOperand(0);
  else if (isType(arg, "Mul") && near(scalarOf(e, arg->getOperand(0)), std::sqrt(0.5)))
    x = arg->getOperand(1);
  else
    return std::nullopt;
  Operation *add = only(e, erf->getResult(0));
  if (!isType(add, "Add") || !near(scalarOf(e, other(add, erf->getResult(0))), 1.0))
    return std::nullopt;
  Operation *mul = only(e, add->getResult(0));
  if (!isType(mul, "Mul"))
    return std::nullopt;
  Value factor = other(mul, add->getResult(0));
  Fused f;
  f.input = x;
  if (factor == x) { // (x (1 + erf)) * 0.5
    Operation *half = only(e, mul->getResult(0));
    if (!isType(half, "Mul") || !near(scalarOf(e, other(half, mul->getResult(0))), 0.5))
      return std::nullopt;
    f.members = {arg, erf, add, mul, half};
    f.output = half->getResult(0);
  } else { // (0.5 x) (1 + erf)
    Operation *half = factor.getDefiningOp();
    if (!isType(half, "Mul") || !factor.hasOneUse())
      return std::nullopt;
    if (!((half->getOperand(0) == x && near(scalarOf(e, half->getOperand(1)), 0.5)) ||
          (half->getOperand(1) == x && near(scalarOf(e, half->getOperand(0)), 0.5))))
      return std::nullopt;
    f.members = {half, arg, erf, add, mul};
    f.output = mul->getResult(0);
  }
  if (elementDType(x) != DType::F32 || f.output.getType() != x.getType())
    return std::nullopt;
  Value input = f.input, output = f.output;
  f.lower = [input, output](Emitter &e, Step &step) -> Error {
    auto shape = e.shapeOf(step.op, input);
    if (!shape)
      return shape.takeError();
    int64_t n = 1;
    for (int64_t d : *shape)
      n *= d;
    step.inPlaceCandidates.push_back(input);
    e.use("elementwise");
    step.print = [=](Emitter &e, raw_ostream &os) {
      os << "  rf_unary(RF_GELU, " << e.ptr(output, true) << ", " << e.ptr(input) << ", " << n
         << ", 0.0f, 0.0f);\n";
    };
    return Error::success();
  };
  return f;
}

/// The axes a ReduceMean reduces (attribute or constant input), normalized.
std::optional<std::vector<int64_t>> meanAxes(Emitter &e, Operation *op, int64_t rank) {
  std::vector<int64_t> axes;
  if (auto a = NodeAttrs{op}.ints("axes"))
    axes = *a;
  else if (op->getNumOperands() > 1 && !ir::isNoneValue(op->getOperand(1))) {
    auto t = e.constant(op->getOperand(1));
    if (!t)
      return std::nullopt;
    axes = t->toInts();
  }
  if (axes.empty() || NodeAttrs{op}.i("keepdims", 1) != 1)
    return std::nullopt;
  for (int64_t &a : axes)
    a = a < 0 ? a + rank : a;
  llvm::sort(axes);
  return axes;
}

/// (x - mean(x)) / sqrt(mean((x - mean)^2) + eps) [* gamma] [+ beta], with
/// the means over the trailing axes.
std::optional<Fused> matchLayerNorm(Emitter &e, Operation *sqrt) {
  Operation *addEps = sqrt->getOperand(0).getDefiningOp();
  if (!isType(addEps, "Add"))
    return std::nullopt;
  Operation *var = addEps->getOperand(0).getDefiningOp();
  Value epsValue = addEps->getOperand(1);
  if (!isType(var, "ReduceMean")) {
    var = addEps->getOperand(1).getDefiningOp();
    epsValue = addEps->getOperand(0);
  }
  auto eps = scalarOf(e, epsValue);
  if (!isType(var, "ReduceMean") || !eps)
    return std::nullopt;
  Operation *square = var->getOperand(0).getDefiningOp();
  if (!square)
    return std::nullopt;
  Value d;
  if (isType(square, "Pow") && near(scalarOf(e, square->getOperand(1)), 2.0))
    d = square->getOperand(0);
  else if (isType(square, "Mul") && square->getOperand(0) == square->getOperand(1))
    d = square->getOperand(0);
  else
    return std::nullopt;
  Operation *sub = d.getDefiningOp();
  if (!isType(sub, "Sub"))
    return std::nullopt;
  Value x = sub->getOperand(0);
  Operation *mean = sub->getOperand(1).getDefiningOp();
  if (!isType(mean, "ReduceMean") || mean->getOperand(0) != x)
    return std::nullopt;
  Operation *div = only(e, sqrt->getResult(0));
  if (!isType(div, "Div") || div->getOperand(0) != d || div->getOperand(1) != sqrt->getResult(0))
    return std::nullopt;
  // Every intermediate is used only inside the chain.
  for (Value v : {mean->getResult(0), square->getResult(0), var->getResult(0), addEps->getResult(0)})
    if (!v.hasOneUse())
      return std::nullopt;
  if (llvm::any_of(d.getUsers(), [&](Operation *u) { return u != square && u != div; }))
    return std::nullopt;
  auto type = dyn_cast<RankedTensorType>(x.getType());
  if (!type || !type.hasStaticShape() || elementDType(x) != DType::F32)
    return std::nullopt;
  int64_t rank = type.getRank();
  auto axesMean = meanAxes(e, mean, rank), axesVar = meanAxes(e, var, rank);
  if (!axesMean || !axesVar || *axesMean != *axesVar)
    return std::nullopt;
  for (auto [i, a] : llvm::enumerate(*axesMean))
    if (a != rank - int64_t(axesMean->size()) + int64_t(i))
      return std::nullopt; // not the trailing axes
  int64_t len = 1;
  for (int64_t a : *axesMean)
    len *= type.getDimSize(a);
  Fused f;
  f.input = x;
  f.members = {mean, sub, square, var, addEps, sqrt, div};
  Value out = div->getResult(0);
  // gamma and beta: constants covering the normalized axes.
  auto perElement = [&](Value v) -> std::optional<std::vector<float>> {
    auto t = e.constant(v);
    if (!t || t->dtype() != DType::F32)
      return std::nullopt;
    if (t->size() == 1)
      return std::vector<float>(len, t->data<float>()[0]);
    if (t->size() != len || t->rank() > rank)
      return std::nullopt;
    // Its shape must be the trailing dims (leading 1s allowed).
    for (int64_t i = 0; i < t->rank(); ++i)
      if (t->dim(t->rank() - 1 - i) != (i < int64_t(axesMean->size()) ? type.getDimSize(rank - 1 - i) : 1))
        return std::nullopt;
    return std::vector<float>(t->data<float>(), t->data<float>() + len);
  };
  std::optional<std::vector<float>> gamma, beta;
  if (Operation *mul = only(e, out); isType(mul, "Mul") && mul->getResult(0).getType() == out.getType())
    if ((gamma = perElement(other(mul, out)))) {
      f.members.push_back(mul);
      out = mul->getResult(0);
    }
  if (Operation *add = only(e, out); isType(add, "Add") && add->getResult(0).getType() == out.getType())
    if ((beta = perElement(other(add, out)))) {
      f.members.push_back(add);
      out = add->getResult(0);
    }
  if (out.getType() != x.getType())
    return std::nullopt;
  f.output = out;
  int64_t outer = type.getNumElements() / len;
  float epsilon = *eps;
  f.lower = [=](Emitter &e, Step &step) -> Error {
    std::string g = "NULL", b = "NULL";
    if (gamma)
      g = "(const float *)(const void *)(wb + " + std::to_string(e.addFloats(*gamma)) + ")";
    if (beta)
      b = "(const float *)(const void *)(wb + " + std::to_string(e.addFloats(*beta)) + ")";
    step.inPlaceCandidates.push_back(x);
    e.use("norm");
    step.print = [=](Emitter &e, raw_ostream &os) {
      os << "  rf_layer_norm(" << e.ptr(out, true) << ", " << e.ptr(x) << ", " << outer << ", " << len
         << ", " << g << ", " << b << ", " << Emitter::floatLiteral(epsilon) << ", NULL, NULL);\n";
    };
    return Error::success();
  };
  return f;
}

} // namespace

/// Finds the chains in `body`; lowerFusedAt() then lowers each at its first
/// member and marks the rest absorbed.
class FusedChains {
public:
  FusedChains(Emitter &e, Block &body) {
    for (Operation &op : body) {
      std::optional<Fused> f;
      if (isType(&op, "Erf"))
        f = matchGelu(e, &op);
      else if (isType(&op, "Sqrt"))
        f = matchLayerNorm(e, &op);
      if (!f || llvm::any_of(f->members, [&](Operation *m) { return owner.count(m); }))
        continue;
      Operation *first = f->members.front();
      for (Operation *m : f->members)
        if (m->isBeforeInBlock(first))
          first = m;
      for (Operation *m : f->members)
        owner[m] = chains.size();
      firstOf.push_back(first);
      chains.push_back(std::move(*f));
    }
  }

  /// Lowers the chain whose first member is `op`, if any.
  Error lowerAt(Emitter &e, Operation *op, bool &handled) {
    handled = false;
    auto it = owner.find(op);
    if (it == owner.end() || firstOf[it->second] != op)
      return Error::success();
    Fused &f = chains[it->second];
    Step step;
    step.op = op;
    step.comment = (isType(f.members[1], "Erf") || isType(f.members[2], "Erf") ? "GELU" : "LayerNormalization") +
                   std::string(" (") + std::to_string(f.members.size()) + " ops)";
    step.reads = {f.input};
    step.writes = {f.output};
    if (auto err = f.lower(e, step))
      return err;
    for (Operation *m : f.members)
      if (m != op)
        e.markAbsorbed(m);
    e.steps.push_back(std::move(step));
    handled = true;
    return Error::success();
  }

private:
  std::vector<Fused> chains;
  std::vector<Operation *> firstOf;
  llvm::DenseMap<Operation *, size_t> owner;
};

std::shared_ptr<FusedChains> findFusedChains(Emitter &e, Block &body) {
  return std::make_shared<FusedChains>(e, body);
}

Error lowerFusedAt(FusedChains &chains, Emitter &e, Operation *op, bool &handled) {
  return chains.lowerAt(e, op, handled);
}

} // namespace refold::cemit
