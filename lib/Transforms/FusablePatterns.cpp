//===- FusablePatterns.cpp - decompositions runtimes fuse into one kernel ---===//

#include "refold/Transforms/FusablePatterns.h"

#include "refold/Dialect/ONNX/ONNXOps.h"
#include "refold/Transforms/WeightUtils.h"

#include "llvm/ADT/SmallPtrSet.h"

#include <cmath>

using namespace mlir;
using namespace refold;
using namespace refold::ir;

namespace {

bool isScalarNear(Value v, double expected) {
  auto value = weights::getScalarF32(v);
  return value && std::abs(*value - expected) <= 1e-3 * std::max(1.0, std::abs(expected));
}

Operation *onlyUser(Value v) {
  return v.hasOneUse() ? *v.getUsers().begin() : nullptr;
}

Value otherOperand(Operation *binary, Value v) {
  return binary->getOperand(0) == v ? binary->getOperand(1) : binary->getOperand(0);
}

/// A Mul by `c` or a Div by 1/c of `v`: the other operand, or null.
Operation *scaledBy(Operation *op, Value v, double c) {
  if (isa_and_nonnull<MulOp>(op) && isScalarNear(otherOperand(op, v), c))
    return op;
  if (isa_and_nonnull<DivOp>(op) && op->getOperand(0) == v && isScalarNear(op->getOperand(1), 1 / c))
    return op;
  return nullptr;
}

bool isTanh(Operation *op) {
  auto node = dyn_cast<NodeOp>(op);
  return node && node.getOpType() == "Tanh" && (!node.getDomain() || node.getDomain()->empty()) &&
         node->getNumOperands() == 1 && node->getNumResults() == 1;
}

/// The elementwise ops computing `v` from `x` and scalar constants (the
/// argument of erf or tanh in a GELU), or failure.
LogicalResult collectArgument(Value v, Value x, SmallPtrSetImpl<Operation *> &ops) {
  if (v == x || weights::getScalarF32(v))
    return success();
  Operation *def = v.getDefiningOp();
  if (!isa_and_nonnull<MulOp, AddOp, DivOp, SubOp, PowOp>(def) || ops.size() > 8)
    return failure();
  if (!ops.insert(def).second)
    return success();
  for (Value operand : def->getOperands())
    if (failed(collectArgument(operand, x, ops)))
      return failure();
  return success();
}

/// 0.5 x (1 + f(g(x))) with f erf or tanh.
void matchGelu(Operation *anchor, llvm::DenseMap<Operation *, StringRef> &members) {
  Operation *add = onlyUser(anchor->getResult(0));
  if (!isa_and_nonnull<AddOp>(add) || !isScalarNear(otherOperand(add, anchor->getResult(0)), 1))
    return;
  Operation *mul = onlyUser(add->getResult(0));
  if (!isa_and_nonnull<MulOp>(mul))
    return;
  Value other = otherOperand(mul, add->getResult(0)), x;
  Operation *half = nullptr;
  if (Operation *def = other.getDefiningOp(); isa_and_nonnull<MulOp>(def) &&
      (isScalarNear(def->getOperand(0), 0.5) || isScalarNear(def->getOperand(1), 0.5))) {
    half = def; // (0.5 x) (1 + f)
    x = isScalarNear(def->getOperand(0), 0.5) ? def->getOperand(1) : def->getOperand(0);
  } else {
    x = other; // (x (1 + f)) 0.5
    half = scaledBy(onlyUser(mul->getResult(0)), mul->getResult(0), 0.5);
  }
  if (!half)
    return;
  SmallPtrSet<Operation *, 8> argument;
  if (failed(collectArgument(anchor->getOperand(0), x, argument)) || argument.empty())
    return;
  StringRef name = isa<ErfOp>(anchor) ? "GELU" : "tanh GELU";
  for (Operation *op : argument)
    members[op] = name;
  for (Operation *op : {anchor, add, mul, half})
    members[op] = name;
}

/// x * Clip(x + 3, 0, 6) / 6 (HardSwish) or Clip(x + 3, 0, 6) / 6 (HardSigmoid).
void matchHardClip(ClipOp clip, llvm::DenseMap<Operation *, StringRef> &members) {
  if (isNoneValue(clip.getMin()) || isNoneValue(clip.getMax()) || !isScalarNear(clip.getMin(), 0) ||
      !isScalarNear(clip.getMax(), 6))
    return;
  Operation *add = clip.getInput().getDefiningOp();
  if (!isa_and_nonnull<AddOp>(add))
    return;
  Value x;
  for (int side = 0; side < 2; ++side)
    if (isScalarNear(add->getOperand(1 - side), 3))
      x = add->getOperand(side);
  if (!x)
    return;
  SmallVector<Operation *, 4> chain{add, clip};
  Value v = clip.getOutput();
  bool scaled = false, timesX = false;
  for (int step = 0; step < 2; ++step) {
    Operation *user = onlyUser(v);
    if (!user)
      break;
    if (!scaled && scaledBy(user, v, 1.0 / 6)) {
      scaled = true;
    } else if (!timesX && isa<MulOp>(user) && otherOperand(user, v) == x) {
      timesX = true;
    } else {
      break;
    }
    chain.push_back(user);
    v = user->getResult(0);
  }
  if (!scaled)
    return;
  for (Operation *op : chain)
    members[op] = timesX ? "HardSwish" : "HardSigmoid";
}

/// (x - mean(x)) / sqrt(mean((x - mean(x))^2) + eps) [* gamma] [+ beta].
void matchLayerNorm(SqrtOp sqrt, llvm::DenseMap<Operation *, StringRef> &members) {
  auto eps = sqrt.getX().getDefiningOp<AddOp>();
  if (!eps)
    return;
  ReduceMeanOp variance;
  for (int side = 0; side < 2; ++side)
    if (weights::getScalarF32(eps->getOperand(1 - side)))
      variance = eps->getOperand(side).getDefiningOp<ReduceMeanOp>();
  if (!variance)
    return;
  Operation *square = variance->getOperand(0).getDefiningOp();
  Value d;
  if (isa_and_nonnull<PowOp>(square) && isScalarNear(square->getOperand(1), 2))
    d = square->getOperand(0);
  else if (isa_and_nonnull<MulOp>(square) && square->getOperand(0) == square->getOperand(1))
    d = square->getOperand(0);
  auto centre = d ? d.getDefiningOp<SubOp>() : SubOp();
  if (!centre)
    return;
  auto mean = centre.getB().getDefiningOp<ReduceMeanOp>();
  if (!mean || mean->getOperand(0) != centre.getA())
    return;
  Operation *div = onlyUser(sqrt.getY());
  if (!isa_and_nonnull<DivOp>(div) || div->getOperand(0) != d)
    return;
  SmallVector<Operation *, 10> chain{mean, centre, square, variance, eps, sqrt, div};
  Value v = div->getResult(0);
  for (bool wantMul : {true, false}) {
    Operation *user = onlyUser(v);
    if (!user || !(wantMul ? isa<MulOp>(user) : isa<AddOp>(user)) ||
        !weights::getConstantF32(otherOperand(user, v)))
      continue;
    chain.push_back(user);
    v = user->getResult(0);
  }
  for (Operation *op : chain)
    members[op] = "LayerNormalization";
}

} // namespace

FusablePatterns::FusablePatterns(Operation *root) {
  root->walk([&](Operation *op) {
    if (isa<ErfOp>(op) || isTanh(op))
      matchGelu(op, members);
    else if (auto clip = dyn_cast<ClipOp>(op))
      matchHardClip(clip, members);
    else if (auto sqrt = dyn_cast<SqrtOp>(op))
      matchLayerNorm(sqrt, members);
  });
}
