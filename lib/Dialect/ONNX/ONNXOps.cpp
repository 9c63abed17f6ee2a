//===- ONNXOps.cpp - onnx dialect operations --------------------*- C++ -*-===//
//
// Verifiers only reject what is invalid for every opset and only look at
// static dimensions: a dynamic dimension is never an error.
//
//===----------------------------------------------------------------------===//

#include "refold/Dialect/ONNX/ONNXOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"

using namespace mlir;
using namespace refold::ir;

static RankedTensorType ranked(Value value) {
  return dyn_cast<RankedTensorType>(value.getType());
}

/// Static size of `dim` of `value`, or -1 when unranked or dynamic.
static int64_t staticDim(Value value, int64_t dim) {
  auto type = ranked(value);
  if (!type || dim < 0 || dim >= type.getRank() || type.isDynamicDim(dim))
    return -1;
  return type.getDimSize(dim);
}

static LogicalResult verifyAxis(Operation *op, std::optional<int64_t> axis,
                                Value value, bool allowRankAsAxis = false) {
  auto type = ranked(value);
  if (!axis || !type)
    return success();
  int64_t rank = type.getRank();
  int64_t hi = allowRankAsAxis ? rank : rank - 1;
  if (*axis < -rank || *axis > hi)
    return op->emitOpError("axis ") << *axis << " is out of range for rank " << rank;
  return success();
}

static LogicalResult verifyAutoPad(Operation *op, std::optional<StringRef> autoPad) {
  if (autoPad && !llvm::is_contained(
                     {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"}, *autoPad))
    return op->emitOpError("auto_pad must be NOTSET, SAME_UPPER, SAME_LOWER or VALID, got '")
           << *autoPad << "'";
  return success();
}

/// Checks the spatial attributes shared by Conv, ConvTranspose and pools.
static LogicalResult verifyWindow(Operation *op, int64_t spatialRank,
                                  std::optional<ArrayRef<int64_t>> kernelShape,
                                  std::optional<ArrayRef<int64_t>> pads,
                                  std::optional<ArrayRef<int64_t>> strides,
                                  std::optional<ArrayRef<int64_t>> dilations) {
  auto checkLength = [&](StringRef name, std::optional<ArrayRef<int64_t>> values,
                         int64_t expected) -> LogicalResult {
    if (values && spatialRank >= 0 && (int64_t)values->size() != expected)
      return op->emitOpError(name) << " has " << values->size()
                                   << " values, expected " << expected;
    return success();
  };
  if (failed(checkLength("kernel_shape", kernelShape, spatialRank)) ||
      failed(checkLength("pads", pads, 2 * spatialRank)) ||
      failed(checkLength("strides", strides, spatialRank)) ||
      failed(checkLength("dilations", dilations, spatialRank)))
    return failure();
  if (pads && llvm::any_of(*pads, [](int64_t p) { return p < 0; }))
    return op->emitOpError("pads must be non-negative");
  if (strides && llvm::any_of(*strides, [](int64_t s) { return s <= 0; }))
    return op->emitOpError("strides must be positive");
  if (dilations && llvm::any_of(*dilations, [](int64_t d) { return d <= 0; }))
    return op->emitOpError("dilations must be positive");
  if (kernelShape && llvm::any_of(*kernelShape, [](int64_t k) { return k <= 0; }))
    return op->emitOpError("kernel_shape must be positive");
  return success();
}

/// Shared by Conv and ConvTranspose. `inChannelAxis` is the weight axis that
/// matches the input channels (1 for Conv, 0 for ConvTranspose).
template <typename ConvLike>
static LogicalResult verifyConvLike(ConvLike op, int64_t inChannelAxis) {
  Operation *raw = op.getOperation();
  auto xType = ranked(op.getX());
  auto wType = ranked(op.getW());
  int64_t group = op.getGroup().value_or(1);
  if (group <= 0)
    return op.emitOpError("group must be positive, got ") << group;
  if (xType && xType.getRank() < 3)
    return op.emitOpError("input must have rank >= 3, got ") << xType.getRank();
  if (xType && wType && xType.getRank() != wType.getRank())
    return op.emitOpError("input rank ") << xType.getRank()
           << " differs from weight rank " << wType.getRank();
  int64_t rank = xType ? xType.getRank() : (wType ? wType.getRank() : -1);
  if (failed(verifyAutoPad(raw, op.getAutoPad())) ||
      failed(verifyWindow(raw, rank < 0 ? -1 : rank - 2, op.getKernelShape(),
                          op.getPads(), op.getStrides(), op.getDilations())))
    return failure();
  int64_t channels = staticDim(op.getX(), 1);
  int64_t weightIn = staticDim(op.getW(), inChannelAxis);
  if (channels >= 0 && weightIn >= 0) {
    int64_t expected = inChannelAxis == 1 ? weightIn * group : weightIn;
    if (channels != expected)
      return op.emitOpError("input has ")
             << channels << " channels but the weight expects " << expected
             << " (group " << group << ")";
  }
  if (inChannelAxis == 1) {
    int64_t outChannels = staticDim(op.getW(), 0);
    if (outChannels >= 0 && outChannels % group != 0)
      return op.emitOpError("output channels ") << outChannels
             << " are not divisible by group " << group;
  } else if (weightIn >= 0 && weightIn % group != 0) {
    return op.emitOpError("input channels ") << weightIn
           << " are not divisible by group " << group;
  }
  if (auto kernel = op.getKernelShape(); kernel && wType) {
    for (auto [i, k] : llvm::enumerate(*kernel)) {
      int64_t w = staticDim(op.getW(), i + 2);
      if (w >= 0 && w != k)
        return op.emitOpError("kernel_shape[") << i << "] = " << k
               << " differs from the weight's spatial size " << w;
    }
  }
  if (!isNoneValue(op.getB())) {
    auto bType = ranked(op.getB());
    if (bType && bType.getRank() != 1)
      return op.emitOpError("bias must be 1-D, got rank ") << bType.getRank();
    int64_t outChannels = inChannelAxis == 1
                              ? staticDim(op.getW(), 0)
                              : (staticDim(op.getW(), 1) < 0
                                     ? -1
                                     : staticDim(op.getW(), 1) * group);
    int64_t biasSize = staticDim(op.getB(), 0);
    if (outChannels >= 0 && biasSize >= 0 && outChannels != biasSize)
      return op.emitOpError("bias has ") << biasSize << " values for "
                                         << outChannels << " output channels";
  }
  return success();
}

LogicalResult ConvOp::verify() { return verifyConvLike(*this, 1); }
LogicalResult ConvTransposeOp::verify() { return verifyConvLike(*this, 0); }

LogicalResult BatchNormalizationOp::verify() {
  auto xType = ranked(getX());
  if (xType && xType.getRank() < 2)
    return emitOpError("input must have rank >= 2, got ") << xType.getRank();
  int64_t channels = staticDim(getX(), 1);
  const StringRef names[] = {"scale", "B", "input_mean", "input_var"};
  const Value values[] = {getScale(), getB(), getInputMean(), getInputVar()};
  for (auto [name, value] : llvm::zip(names, values)) {
    auto type = ranked(value);
    if (!type)
      continue;
    if (type.getRank() != 1)
      return emitOpError(name) << " must be 1-D, got rank " << type.getRank();
    int64_t size = staticDim(value, 0);
    if (channels >= 0 && size >= 0 && size != channels)
      return emitOpError(name) << " has " << size << " values for " << channels
                               << " channels";
  }
  if (getTrainingMode().value_or(0) != 0)
    return emitOpError("training_mode must be 0 in the single-output form");
  return success();
}

LogicalResult GemmOp::verify() {
  for (Value v : {getA(), getB()})
    if (auto type = ranked(v); type && type.getRank() != 2)
      return emitOpError("A and B must be 2-D, got rank ") << type.getRank();
  int64_t k1 = staticDim(getA(), getTransA().value_or(0) ? 0 : 1);
  int64_t k2 = staticDim(getB(), getTransB().value_or(0) ? 1 : 0);
  if (k1 >= 0 && k2 >= 0 && k1 != k2)
    return emitOpError("inner dimensions differ: ") << k1 << " vs " << k2;
  return success();
}

LogicalResult MatMulOp::verify() {
  auto a = ranked(getA()), b = ranked(getB());
  if ((a && a.getRank() == 0) || (b && b.getRank() == 0))
    return emitOpError("operands must have rank >= 1");
  if (a && b) {
    int64_t k1 = staticDim(getA(), a.getRank() - 1);
    int64_t k2 = staticDim(getB(), b.getRank() == 1 ? 0 : b.getRank() - 2);
    if (k1 >= 0 && k2 >= 0 && k1 != k2)
      return emitOpError("inner dimensions differ: ") << k1 << " vs " << k2;
  }
  return success();
}

/// Multidirectional broadcasting: trailing dims must match or be 1.
static LogicalResult verifyBroadcastable(Operation *op, Value lhs, Value rhs) {
  auto a = ranked(lhs), b = ranked(rhs);
  if (!a || !b)
    return success();
  ArrayRef<int64_t> sa = a.getShape(), sb = b.getShape();
  for (size_t i = 0; i < std::min(sa.size(), sb.size()); ++i) {
    int64_t x = sa[sa.size() - 1 - i], y = sb[sb.size() - 1 - i];
    if (ShapedType::isDynamic(x) || ShapedType::isDynamic(y) || x == y || x == 1 ||
        y == 1)
      continue;
    return op->emitOpError("operand shapes ")
           << a << " and " << b << " are not broadcastable";
  }
  return success();
}

LogicalResult AddOp::verify() { return verifyBroadcastable(*this, getA(), getB()); }
LogicalResult SubOp::verify() { return verifyBroadcastable(*this, getA(), getB()); }
LogicalResult MulOp::verify() { return verifyBroadcastable(*this, getA(), getB()); }
LogicalResult DivOp::verify() { return verifyBroadcastable(*this, getA(), getB()); }
LogicalResult PowOp::verify() { return success(); }

LogicalResult ConcatOp::verify() {
  if (getInputs().empty())
    return emitOpError("needs at least one input");
  int64_t rank = -1;
  for (Value v : getInputs()) {
    auto type = ranked(v);
    if (!type)
      continue;
    if (rank >= 0 && type.getRank() != rank)
      return emitOpError("inputs have different ranks");
    rank = type.getRank();
  }
  if (rank >= 0 && getAxis() && (*getAxis() < -rank || *getAxis() >= rank))
    return emitOpError("axis ") << *getAxis() << " is out of range for rank " << rank;
  if (rank >= 0 && getAxis()) {
    int64_t axis = *getAxis() < 0 ? *getAxis() + rank : *getAxis();
    for (int64_t d = 0; d < rank; ++d) {
      if (d == axis)
        continue;
      int64_t size = -1;
      for (Value v : getInputs()) {
        int64_t s = staticDim(v, d);
        if (s < 0)
          continue;
        if (size >= 0 && s != size)
          return emitOpError("inputs differ in dimension ") << d << " (" << size << " vs " << s
                                                             << ")";
        size = s;
      }
    }
  }
  return success();
}

LogicalResult TransposeOp::verify() {
  auto perm = getPerm();
  if (!perm)
    return success();
  SmallVector<bool> seen(perm->size(), false);
  for (int64_t p : *perm) {
    if (p < 0 || p >= (int64_t)perm->size() || seen[p])
      return emitOpError("perm is not a permutation");
    seen[p] = true;
  }
  if (auto type = ranked(getData()); type && type.getRank() != (int64_t)perm->size())
    return emitOpError("perm has ") << perm->size() << " entries for rank "
                                    << type.getRank();
  return success();
}

LogicalResult FlattenOp::verify() {
  return verifyAxis(*this, getAxis(), getInput(), /*allowRankAsAxis=*/true);
}

LogicalResult SoftmaxOp::verify() { return verifyAxis(*this, getAxis(), getInput()); }

template <typename PoolOp>
static LogicalResult verifyPool(PoolOp op) {
  if (!op.getKernelShape())
    return op.emitOpError("requires kernel_shape");
  auto xType = ranked(op.getX());
  int64_t spatialRank = op.getKernelShape()->size();
  if (xType && xType.getRank() != spatialRank + 2)
    return op.emitOpError("kernel_shape has ") << spatialRank
           << " values for an input of rank " << xType.getRank();
  return failure(failed(verifyAutoPad(op, op.getAutoPad())) ||
                 failed(verifyWindow(op, spatialRank, op.getKernelShape(),
                                     op.getPads(), op.getStrides(),
                                     op.getDilations())));
}

LogicalResult MaxPoolOp::verify() { return verifyPool(*this); }
LogicalResult AveragePoolOp::verify() { return verifyPool(*this); }

LogicalResult PadOp::verify() {
  if (auto mode = getMode();
      mode && !llvm::is_contained({"constant", "reflect", "edge", "wrap"}, *mode))
    return emitOpError("mode must be constant, reflect, edge or wrap, got '")
           << *mode << "'";
  return success();
}

OpFoldResult InitializerOp::fold(FoldAdaptor) { return getValue(); }
OpFoldResult ConstantOp::fold(FoldAdaptor) { return getValue(); }
OpFoldResult NoneOp::fold(FoldAdaptor) { return UnitAttr::get(getContext()); }

LogicalResult NodeOp::verify() {
  size_t numGraphs = getGraphs().size();
  size_t numInfos = getGraphAttrs() ? getGraphAttrs()->size() : 0;
  if (numGraphs != numInfos)
    return emitOpError("has ") << numGraphs << " subgraph regions but "
                               << numInfos << " graph_attrs entries";
  for (Region &region : getGraphs()) {
    if (region.empty() || !isa<YieldOp>(region.front().getTerminator()))
      return emitOpError("subgraph regions must end with onnx.yield");
  }
  return success();
}

// Subgraph bodies are dataflow graphs, like the top-level graph.
RegionKind NodeOp::getRegionKind(unsigned) { return RegionKind::SSACFG; }

std::string refold::ir::resourceKey(StringRef name) {
  std::string key = name.empty() ? "tensor" : name.str();
  for (char &c : key)
    if (!llvm::isAlnum(c) && c != '_' && c != '.')
      c = '_';
  if (!llvm::isAlpha(key.front()) && key.front() != '_')
    key = "t_" + key;
  return key;
}

StringRef refold::ir::opTypeOf(Operation *op) {
  if (auto node = dyn_cast<NodeOp>(op))
    return node.getOpType();
  return op->getName().stripDialect();
}

std::string refold::ir::describeNode(Operation *op, bool outputFallback) {
  std::string text;
  if (auto node = dyn_cast<NodeOp>(op))
    text = (node.getDomain() && !node.getDomain()->empty() ? node.getDomain()->str() + "." : "") +
           node.getOpType().str();
  else
    text = op->getName().stripDialect().str();
  if (auto name = op->getAttrOfType<StringAttr>(kNodeNameAttr); name && (!outputFallback || !name.empty()))
    return text + " '" + name.str() + "'";
  if (outputFallback)
    if (auto outs = op->getAttrOfType<ArrayAttr>(kOutputNamesAttr); outs && !outs.empty())
      if (auto first = dyn_cast<StringAttr>(outs[0]))
        text += " (output '" + first.str() + "')";
  return text;
}

#define GET_OP_CLASSES
#include "refold/Dialect/ONNX/ONNXOps.cpp.inc"
