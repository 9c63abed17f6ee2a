//===- ConvForms.cpp - convs and average pools as dense 2-D kernels ---------===//

#include "refold/Transforms/ConvForms.h"

#include "refold/Dialect/ONNX/ONNXOps.h"

#include <algorithm>

using namespace mlir;
using namespace refold;
using namespace refold::ir;
using weights::F32Tensor;

namespace {

std::array<int64_t, 4> padsOf(std::optional<ArrayRef<int64_t>> pads) {
  if (!pads || pads->size() != 4)
    return {0, 0, 0, 0};
  return {(*pads)[0], (*pads)[1], (*pads)[2], (*pads)[3]};
}

/// Spatial zero padding of a rank-4 Pad as {top, left, bottom, right}.
FailureOr<std::array<int64_t, 4>> zeroSpatialPadding(Value padded, std::string &why) {
  auto pad = readZeroPad(padded, why);
  if (failed(pad))
    return failure();
  if (pad->pads.size() != 4)
    return why = "the Pad is not of a rank-4 tensor", failure();
  return std::array<int64_t, 4>{pad->pads[0], pad->pads[1], pad->pads[2], pad->pads[3]};
}

FailureOr<ConvForm> readConv(ConvOp conv, std::string &why) {
  auto w = weights::getConstantF32(conv.getW());
  if (!w || w->rank() != 4)
    return why = "a conv is not 2-D with a float32 constant weight", failure();
  if (conv.getAutoPad() && *conv.getAutoPad() != "NOTSET")
    return why = "a conv uses auto_pad", failure();
  if (auto d = conv.getDilations(); d && llvm::any_of(*d, [](int64_t v) { return v != 1; }))
    return why = "a conv is dilated", failure();
  ConvForm form;
  form.op = conv;
  form.input = conv.getX();
  form.group = conv.getGroup().value_or(1);
  form.bias.assign(w->dim(0), 0.0f);
  if (!isNoneValue(conv.getB())) {
    auto b = weights::getConstantF32(conv.getB());
    if (!b || b->size() != w->dim(0))
      return why = "a conv's bias is not a float32 constant", failure();
    form.bias = b->data;
  }
  form.weight = std::move(*w);
  if (auto s = conv.getStrides(); s && s->size() == 2)
    form.stride = {(*s)[0], (*s)[1]};
  form.pads = padsOf(conv.getPads());
  return form;
}

FailureOr<ConvForm> readAveragePool(AveragePoolOp pool, std::string &why) {
  auto type = dyn_cast<RankedTensorType>(pool.getX().getType());
  if (!type || type.getRank() != 4 || type.isDynamicDim(1) || !type.getElementType().isF32())
    return why = "an AveragePool is not 2-D float32 with static channels", failure();
  if (pool.getAutoPad() && *pool.getAutoPad() != "NOTSET")
    return why = "an AveragePool uses auto_pad", failure();
  if (pool.getCeilMode().value_or(0))
    return why = "an AveragePool uses ceil_mode", failure();
  if (auto d = pool.getDilations(); d && llvm::any_of(*d, [](int64_t v) { return v != 1; }))
    return why = "an AveragePool is dilated", failure();
  auto kernel = pool.getKernelShape();
  if (!kernel || kernel->size() != 2)
    return why = "an AveragePool has no 2-D kernel_shape", failure();
  ConvForm form;
  form.op = pool;
  form.input = pool.getX();
  form.pads = padsOf(pool.getPads());
  bool padded = !form.isUnpadded();
  // Averages over the window only where it covers the image: not a conv.
  if (padded && !pool.getCountIncludePad().value_or(0))
    return why = "an AveragePool pads with count_include_pad=0", failure();
  // A zero Pad before the pool is padding the pool counts.
  if (Operation *pad = pool.getX().getDefiningOp(); pad && pad->hasOneUse()) {
    std::string padWhy;
    if (auto extra = zeroSpatialPadding(pool.getX(), padWhy); succeeded(extra)) {
      for (int i = 0; i < 4; ++i)
        form.pads[i] += (*extra)[i];
      form.pad = pad;
      form.input = pad->getOperand(0);
    }
  }
  int64_t channels = type.getDimSize(1), kh = (*kernel)[0], kw = (*kernel)[1];
  form.group = channels;
  form.weight = F32Tensor({channels, 1, kh, kw}, 1.0f / float(kh * kw));
  form.bias.assign(channels, 0.0f);
  if (auto s = pool.getStrides(); s && s->size() == 2)
    form.stride = {(*s)[0], (*s)[1]};
  return form;
}

} // namespace

FailureOr<ConvForm> refold::readConvForm(Operation *op, std::string &why) {
  if (auto conv = dyn_cast_or_null<ConvOp>(op))
    return readConv(conv, why);
  if (auto pool = dyn_cast_or_null<AveragePoolOp>(op))
    return readAveragePool(pool, why);
  return why = "not produced by a Conv or AveragePool", failure();
}

F32Tensor refold::expandGroups(const F32Tensor &w, int64_t group) {
  if (group == 1)
    return w;
  int64_t out = w.dim(0), inPerGroup = w.dim(1), kernel = w.dim(2) * w.dim(3);
  int64_t in = inPerGroup * group, outPerGroup = out / group;
  F32Tensor dense({out, in, w.dim(2), w.dim(3)});
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < inPerGroup; ++i)
      std::copy_n(w.data.begin() + (o * inPerGroup + i) * kernel, kernel,
                  dense.data.begin() + (o * in + (o / outPerGroup) * inPerGroup + i) * kernel);
  return dense;
}

F32Tensor refold::borderCorrection(const F32Tensor &w, int64_t group, ArrayRef<float> shift,
                                   std::array<int64_t, 2> stride, std::array<int64_t, 4> pads,
                                   int64_t inH, int64_t inW, int64_t outH, int64_t outW) {
  int64_t out = w.dim(0), inPerGroup = w.dim(1), kh = w.dim(2), kw = w.dim(3);
  int64_t outPerGroup = out / group;
  F32Tensor map({1, out, outH, outW});
  for (int64_t o = 0; o < out; ++o) {
    int64_t firstIn = (o / outPerGroup) * inPerGroup;
    for (int64_t h = 0; h < outH; ++h) {
      int64_t y0 = h * stride[0] - pads[0];
      bool rowInside = y0 >= 0 && y0 + kh <= inH;
      for (int64_t x = 0; x < outW; ++x) {
        int64_t x0 = x * stride[1] - pads[1];
        if (rowInside && x0 >= 0 && x0 + kw <= inW)
          continue; // the window sees no padding
        double missing = 0;
        for (int64_t a = 0; a < kh; ++a)
          for (int64_t b = 0; b < kw; ++b) {
            int64_t y = y0 + a, xx = x0 + b;
            if (y >= 0 && y < inH && xx >= 0 && xx < inW)
              continue;
            for (int64_t j = 0; j < inPerGroup; ++j)
              missing += double(w.data[((o * inPerGroup + j) * kh + a) * kw + b]) *
                         shift[firstIn + j];
          }
        map.data[(o * outH + h) * outW + x] = float(-missing);
      }
    }
  }
  return map;
}

std::optional<std::array<int64_t, 2>> refold::staticSpatialShape(Value value) {
  auto type = dyn_cast<RankedTensorType>(value.getType());
  if (!type || type.getRank() != 4 || type.isDynamicDim(2) || type.isDynamicDim(3))
    return std::nullopt;
  return std::array<int64_t, 2>{type.getDimSize(2), type.getDimSize(3)};
}

Value refold::createConv(PatternRewriter &rewriter, Location loc, Value input,
                         const F32Tensor &weight, ArrayRef<float> bias, int64_t group,
                         std::array<int64_t, 2> stride, std::array<int64_t, 4> pads, Type type,
                         StringRef nameHint, Operation *nodeNameFrom,
                         Operation *outputNamesFrom) {
  std::string base = nameHint.empty() ? std::string("merged") : nameHint.str();
  F32Tensor biasTensor(llvm::ArrayRef<int64_t>{(int64_t)bias.size()});
  biasTensor.data.assign(bias.begin(), bias.end());
  Value w = weights::createInitializer(rewriter, loc, base + "_weight", weight);
  Value b = weights::createInitializer(rewriter, loc, base + "_bias", biasTensor);
  OperationState state(loc, ConvOp::getOperationName());
  state.addOperands({input, w, b});
  state.addTypes(type);
  state.addAttribute("kernel_shape", rewriter.getDenseI64ArrayAttr({weight.dim(2), weight.dim(3)}));
  state.addAttribute("pads", rewriter.getDenseI64ArrayAttr(pads));
  if (stride != std::array<int64_t, 2>{1, 1})
    state.addAttribute("strides", rewriter.getDenseI64ArrayAttr(stride));
  if (group != 1)
    state.addAttribute("group", rewriter.getI64IntegerAttr(group));
  if (nodeNameFrom)
    if (auto name = nodeNameFrom->getAttr(kNodeNameAttr))
      state.addAttribute(kNodeNameAttr, name);
  if (outputNamesFrom)
    if (auto names = outputNamesFrom->getAttr(kOutputNamesAttr))
      state.addAttribute(kOutputNamesAttr, names);
  return rewriter.create(state)->getResult(0);
}

Value refold::createAddConstant(PatternRewriter &rewriter, Location loc, Value value,
                                const F32Tensor &map, StringRef nameHint,
                                Operation *outputNamesFrom) {
  Value constant = weights::createInitializer(
      rewriter, loc, (nameHint.empty() ? std::string("border") : nameHint.str()) + "_border", map);
  auto add = rewriter.create<AddOp>(loc, value.getType(), value, constant);
  if (outputNamesFrom)
    if (auto names = outputNamesFrom->getAttr(kOutputNamesAttr))
      add->setAttr(kOutputNamesAttr, names);
  return add.getResult();
}

namespace {

/// Slice(Pad(x)) that only removes padding is a smaller zero Pad of x.
FailureOr<ZeroPad> readCroppedZeroPad(SliceOp slice, std::string &why) {
  auto padded = readZeroPad(slice.getData(), why);
  if (failed(padded))
    return failure();
  auto type = dyn_cast<RankedTensorType>(slice.getData().getType());
  auto starts = weights::getConstantInts(slice.getStarts());
  auto ends = weights::getConstantInts(slice.getEnds());
  if (!type || !starts || !ends || starts->size() != ends->size())
    return why = "the Slice's starts and ends are not constants", failure();
  int64_t rank = type.getRank(), spatial = rank - 2;
  SmallVector<int64_t> axes;
  if (isNoneValue(slice.getAxes())) {
    for (size_t i = 0; i < starts->size(); ++i)
      axes.push_back(i);
  } else if (auto a = weights::getConstantInts(slice.getAxes()); a && a->size() == starts->size()) {
    axes = *a;
  } else {
    return why = "the Slice's axes are not constants", failure();
  }
  if (!isNoneValue(slice.getSteps())) {
    auto steps = weights::getConstantInts(slice.getSteps());
    if (!steps || llvm::any_of(*steps, [](int64_t s) { return s != 1; }))
      return why = "the Slice has steps other than 1", failure();
  }
  ZeroPad result = *padded;
  result.op = slice;
  for (size_t i = 0; i < axes.size(); ++i) {
    int64_t axis = axes[i] < 0 ? axes[i] + rank : axes[i];
    if (axis < 0 || axis >= rank || type.isDynamicDim(axis))
      return why = "the Slice's axis is out of range or not static", failure();
    int64_t dim = type.getDimSize(axis);
    int64_t begin = std::clamp((*starts)[i] < 0 ? (*starts)[i] + dim : (*starts)[i], int64_t(0), dim);
    int64_t end = std::clamp((*ends)[i] < 0 ? (*ends)[i] + dim : (*ends)[i], int64_t(0), dim);
    int64_t cutEnd = dim - end;
    if (begin == 0 && cutEnd == 0)
      continue;
    if (axis < 2)
      return why = "the Slice cuts the batch or channel axis", failure();
    int64_t &padBegin = result.pads[axis - 2], &padEnd = result.pads[spatial + axis - 2];
    if (begin > padBegin || cutEnd > padEnd || begin >= end)
      return why = "the Slice cuts into the data, not only into the padding", failure();
    padBegin -= begin;
    padEnd -= cutEnd;
  }
  return result;
}

} // namespace

FailureOr<ZeroPad> refold::readZeroPad(Value padded, std::string &why) {
  Operation *op = padded.getDefiningOp();
  if (auto slice = dyn_cast_or_null<SliceOp>(op))
    return readCroppedZeroPad(slice, why);
  std::optional<SmallVector<int64_t>> amounts;
  std::optional<float> value = 0.0f;
  std::string mode = "constant";
  if (auto pad = dyn_cast_or_null<PadOp>(op)) {
    if (pad.getMode())
      mode = pad.getMode()->str();
    if (!isNoneValue(pad.getAxes()))
      return why = "the Pad has explicit axes", failure();
    if (!isNoneValue(pad.getConstantValue()))
      value = weights::getScalarF32(pad.getConstantValue());
    amounts = weights::getConstantInts(pad.getPads());
  } else if (auto node = dyn_cast_or_null<NodeOp>(op);
             node && node.getOpType() == "Pad" && (!node.getDomain() || node.getDomain()->empty()) &&
             node->getNumOperands() == 1) {
    // Opsets 2 to 10: pads and value are attributes.
    DictionaryAttr attrs = node.getNodeAttrsAttr();
    if (auto m = attrs ? attrs.getAs<StringAttr>("mode") : StringAttr())
      mode = m.str();
    if (auto v = attrs ? attrs.get("value") : Attribute()) {
      auto f = dyn_cast<FloatAttr>(v);
      value = f ? std::optional<float>(f.getValueAsDouble()) : std::nullopt;
    }
    if (auto p = attrs ? attrs.getAs<DenseI64ArrayAttr>("pads") : DenseI64ArrayAttr())
      amounts = SmallVector<int64_t>(p.asArrayRef());
  } else {
    return why = "not produced by a Pad", failure();
  }
  if (mode != "constant")
    return why = "the Pad is not in constant mode", failure();
  if (!value || *value != 0.0f)
    return why = "the Pad value is not a constant zero", failure();
  auto type = dyn_cast<RankedTensorType>(op->getOperand(0).getType());
  if (!amounts || !type)
    return why = "the Pad amounts are not a constant", failure();
  int64_t rank = type.getRank();
  const SmallVector<int64_t> &a = *amounts;
  if ((int64_t)a.size() != 2 * rank || rank < 2)
    return why = "the Pad amounts do not fit the rank", failure();
  if (a[0] || a[1] || a[rank] || a[rank + 1])
    return why = "the Pad pads the batch or channel axis", failure();
  if (llvm::any_of(a, [](int64_t v) { return v < 0; }))
    return why = "the Pad crops (negative amounts)", failure();
  ZeroPad result{op, op->getOperand(0), {}};
  for (int64_t i = 2; i < rank; ++i)
    result.pads.push_back(a[i]);
  for (int64_t i = 2; i < rank; ++i)
    result.pads.push_back(a[rank + i]);
  return result;
}

bool refold::padsInput(std::optional<ArrayRef<int64_t>> pads, std::optional<StringRef> autoPad) {
  return (pads && llvm::any_of(*pads, [](int64_t p) { return p != 0; })) ||
         (autoPad && *autoPad != "NOTSET" && *autoPad != "VALID");
}
