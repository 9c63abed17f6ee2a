//===- WeightUtils.cpp - weight arithmetic shared by the rewrites -----------===//

#include "refold/Transforms/WeightUtils.h"

#include "refold/Dialect/ONNX/ONNXOps.h"
#include "refold/Dialect/ONNX/OwnedBlob.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/DialectResourceBlobManager.h"

#include <cmath>

using namespace mlir;

namespace refold::weights {

F32Tensor::F32Tensor(ArrayRef<int64_t> dims, float fill) : shape(dims.begin(), dims.end()) {
  int64_t n = 1;
  for (int64_t d : dims)
    n *= d;
  data.assign(n, fill);
}

std::optional<F32Tensor> fromElements(ElementsAttr attr) {
  auto type = dyn_cast<RankedTensorType>(attr.getType());
  if (!type || !type.getElementType().isF32() || !type.hasStaticShape())
    return std::nullopt;
  F32Tensor t(type.getShape());
  if (auto resource = dyn_cast<DenseResourceElementsAttr>(attr)) {
    AsmResourceBlob *blob = resource.getRawHandle().getBlob();
    if (!blob || blob->getData().size() != t.data.size() * sizeof(float))
      return std::nullopt;
    std::memcpy(t.data.data(), blob->getData().data(), blob->getData().size());
    return t;
  }
  if (auto dense = dyn_cast<DenseElementsAttr>(attr)) {
    int64_t i = 0;
    for (float v : dense.getValues<float>())
      t.data[i++] = v;
    return t;
  }
  return std::nullopt;
}

RankedTensorType constantF32Type(Value value) {
  Operation *def = value.getDefiningOp();
  ElementsAttr attr;
  if (auto init = dyn_cast_or_null<ir::InitializerOp>(def))
    attr = init.getValue();
  else if (auto constant = dyn_cast_or_null<ir::ConstantOp>(def))
    attr = constant.getValue();
  auto type = attr ? dyn_cast<RankedTensorType>(attr.getType()) : RankedTensorType();
  if (!type || !type.getElementType().isF32() || !type.hasStaticShape())
    return {};
  if (auto resource = dyn_cast<DenseResourceElementsAttr>(attr)) {
    AsmResourceBlob *blob = resource.getRawHandle().getBlob();
    bool complete = blob && blob->getData().size() == size_t(type.getNumElements()) * sizeof(float);
    return complete ? type : RankedTensorType();
  }
  return isa<DenseElementsAttr>(attr) ? type : RankedTensorType();
}

std::optional<F32Tensor> getConstantF32(Value value) {
  Operation *def = value.getDefiningOp();
  if (auto init = dyn_cast_or_null<ir::InitializerOp>(def))
    return fromElements(init.getValue());
  if (auto constant = dyn_cast_or_null<ir::ConstantOp>(def))
    return fromElements(constant.getValue());
  return std::nullopt;
}

std::optional<SmallVector<int64_t>> getConstantInts(Value value) {
  ElementsAttr attr;
  if (auto init = value.getDefiningOp<ir::InitializerOp>())
    attr = init.getValue();
  else if (auto constant = value.getDefiningOp<ir::ConstantOp>())
    attr = constant.getValue();
  auto dense = dyn_cast_or_null<DenseIntElementsAttr>(attr);
  if (!dense)
    return std::nullopt;
  SmallVector<int64_t> values;
  for (const APInt &v : dense.getValues<APInt>())
    values.push_back(v.getSExtValue());
  return values;
}

std::optional<float> getScalarF32(Value value) {
  auto t = getConstantF32(value);
  if (!t || t->size() != 1)
    return std::nullopt;
  return t->data[0];
}

bool isReluLike(Operation *op) {
  if (isa_and_nonnull<ir::ReluOp>(op))
    return true;
  auto clip = dyn_cast_or_null<ir::ClipOp>(op);
  if (!clip || !ir::isNoneValue(clip.getMax()))
    return false;
  auto lo = ir::isNoneValue(clip.getMin()) ? std::nullopt : getScalarF32(clip.getMin());
  return lo && *lo == 0.0f;
}

ElementsAttr createElements(MLIRContext *context, StringRef nameHint, const F32Tensor &tensor) {
  auto type = RankedTensorType::get(tensor.shape, Float32Type::get(context));
  if (tensor.data.size() * sizeof(float) <= 64)
    return DenseElementsAttr::get(type, ArrayRef<float>(tensor.data));
  // Weights are blobs, not uniqued attributes: they are freed with the module.
  std::string bytes(reinterpret_cast<const char *>(tensor.data.data()),
                    tensor.data.size() * sizeof(float));
  return ir::createWeightAttr(type, ir::resourceKey(nameHint.empty() ? "weight" : nameHint),
                              std::move(bytes));
}

Value createInitializer(OpBuilder &builder, Location loc, StringRef nameHint,
                        const F32Tensor &tensor) {
  ElementsAttr value = createElements(builder.getContext(), nameHint, tensor);
  // Initializers live at the top of the graph, before their users.
  OpBuilder::InsertionGuard guard(builder);
  Block *block = builder.getInsertionBlock();
  builder.setInsertionPointToStart(block);
  return builder.create<ir::InitializerOp>(loc, builder.getStringAttr(nameHint), value);
}

double staticElements(Value value) {
  auto type = dyn_cast<RankedTensorType>(value.getType());
  if (!type)
    return 1;
  double n = 1;
  for (int64_t d : type.getShape())
    n *= ShapedType::isDynamic(d) ? 1 : d;
  return n;
}

std::string nameOf(Value value) {
  if (auto init = value.getDefiningOp<ir::InitializerOp>())
    return init.getName().str();
  if (Operation *def = value.getDefiningOp())
    if (auto names = def->getAttrOfType<ArrayAttr>(ir::kOutputNamesAttr)) {
      unsigned index = cast<OpResult>(value).getResultNumber();
      if (index < names.size())
        if (auto s = dyn_cast<StringAttr>(names[index]))
          return s.str();
    }
  return "";
}

std::optional<ChannelStats> getOutputStats(Operation *op) {
  auto record = op ? op->getAttrOfType<ArrayAttr>(kOutputStatsAttr) : ArrayAttr();
  if (!record || record.size() != 2)
    return std::nullopt;
  auto mean = dyn_cast<DenseF32ArrayAttr>(record[0]);
  auto std = dyn_cast<DenseF32ArrayAttr>(record[1]);
  if (!mean || !std || mean.size() != std.size())
    return std::nullopt;
  ChannelStats stats;
  stats.mean.assign(mean.asArrayRef().begin(), mean.asArrayRef().end());
  stats.std.assign(std.asArrayRef().begin(), std.asArrayRef().end());
  return stats;
}

void setOutputStats(Operation *op, const ChannelStats &stats) {
  Builder b(op->getContext());
  op->setAttr(kOutputStatsAttr, b.getArrayAttr({b.getDenseF32ArrayAttr(stats.mean),
                                                b.getDenseF32ArrayAttr(stats.std)}));
}

std::optional<ChannelStats> batchNormOutputStats(Operation *op) {
  auto bn = dyn_cast_or_null<ir::BatchNormalizationOp>(op);
  if (!bn)
    return std::nullopt;
  auto gamma = getConstantF32(bn.getScale()), beta = getConstantF32(bn.getB());
  if (!gamma || !beta || gamma->size() != beta->size())
    return std::nullopt;
  ChannelStats stats;
  stats.mean = beta->data;
  for (float g : gamma->data)
    stats.std.push_back(std::fabs(g));
  return stats;
}

} // namespace refold::weights

std::optional<std::vector<float>> refold::weights::channelValues(mlir::Value constant, int64_t rank,
                                                                  int64_t channels) {
  auto value = getConstantF32(constant);
  if (!value || value->rank() > rank)
    return std::nullopt;
  int64_t offset = rank - value->rank();
  bool alongChannels = false;
  for (int64_t i = 0; i < value->rank(); ++i) {
    if (value->dim(i) == 1)
      continue;
    if (i + offset != 1 || value->dim(i) != channels)
      return std::nullopt;
    alongChannels = true;
  }
  if (!alongChannels)
    return std::vector<float>(channels, value->data.empty() ? 0.0f : value->data[0]);
  return value->data;
}
