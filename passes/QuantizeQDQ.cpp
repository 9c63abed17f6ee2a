//===- QuantizeQDQ.cpp - int8 Conv, Gemm and MatMul in QDQ form -------------===//
//
// The rewrite step of post-training quantization. Runtimes (onnxruntime,
// TensorRT, NPU compilers) recognise DequantizeLinear -> op -> QuantizeLinear
// and run the op in integer kernels, so the rewrite only places Q/DQ pairs
// and stores weights as int8: the float graph stays readable and every
// tensor's scale is visible. Scales come from the ranges onnx-quant-calibrate
// recorded (quantization.md: asymmetric activations, symmetric per-channel
// int8 weights, int32 bias at input scale x weight scale).
//
//===----------------------------------------------------------------------===//

#include "refold/Dialect/ONNX/ONNXOps.h"
#include "refold/Interpreter/Interpreter.h"
#include "refold/Passes/Passes.h"
#include "refold/Quantizer/Quantizer.h"
#include "refold/Transforms/WeightUtils.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

namespace refold {
#define GEN_PASS_DEF_QUANTIZEQDQ
#include "refold/Passes/Passes.h.inc"
} // namespace refold

using namespace mlir;
using namespace refold;
using namespace refold::ir;

namespace {

inline constexpr llvm::StringLiteral kSkippedAttr = "refold.quant_skipped";

struct QuantizeQDQPass : refold::impl::QuantizeQDQBase<QuantizeQDQPass> {
  using QuantizeQDQBase::QuantizeQDQBase;

  /// The DequantizeLinear output standing for each quantized tensor, and its
  /// activation scale (the bias scale needs it).
  llvm::DenseMap<Value, std::pair<Value, float>> quantized;
  /// The dequantized int8 weight and its scales, per float weight (convs
  /// sharing a weight share its int8 copy).
  llvm::DenseMap<Value, std::pair<Value, std::vector<float>>> quantizedWeights;
  bool unsignedActivations = true, perChannel = true;
  /// The float tensor each dequantized stand-in replaced (its recorded
  /// means stay on the float tensor's producer).
  llvm::DenseMap<Value, Value> floatOf;

  void runOnOperation() override {
    if (activations != "uint8" && activations != "int8") {
      getOperation().emitError() << "activations must be uint8 or int8, got '" << activations
                                 << "'";
      return signalPassFailure();
    }
    if (weights != "per-channel" && weights != "per-tensor") {
      getOperation().emitError() << "weights must be per-channel or per-tensor, got '" << weights
                                 << "'";
      return signalPassFailure();
    }
    unsignedActivations = activations == "uint8";
    perChannel = weights == "per-channel";
    // In graph order, so that an Add sees its inputs already quantized.
    SmallVector<Operation *> candidates;
    getOperation().walk([&](Operation *op) {
      if (isa<ConvOp, GemmOp, MatMulOp, AddOp>(op))
        candidates.push_back(op);
    });
    groupScalePreservingTensors();
    for (Operation *op : candidates) {
      if (isa<AddOp>(op)) {
        if (quantizeAdd(cast<AddOp>(op)))
          ++numAdds;
        continue;
      }
      std::string reason = quantizeOp(op);
      if (reason.empty()) {
        op->removeAttr(kSkippedAttr);
        ++numQuantized;
      } else {
        op->setAttr(kSkippedAttr, StringAttr::get(op->getContext(), reason));
      }
    }
    // Weight rounding's results are used up, or belong to layers left float.
    for (Operation *op : candidates) {
      op->removeAttr(quant::kRoundedWeightAttr);
      op->removeAttr(quant::kWeightScalesAttr);
    }
  }

  Type activationType(MLIRContext *ctx) const {
    return IntegerType::get(ctx, 8, unsignedActivations ? IntegerType::Unsigned
                                                        : IntegerType::Signless);
  }

  /// An initializer of `type`'s element type holding `values`.
  Value intInitializer(OpBuilder &b, Location loc, StringRef name, interp::DType dtype,
                       ArrayRef<int64_t> shape, ArrayRef<int64_t> values) {
    interp::Tensor t(dtype, shape);
    for (auto [i, v] : llvm::enumerate(values))
      t.setDouble(i, double(v));
    ElementsAttr attr = interp::tensorToAttr(t, b.getContext(), name);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(&getOperation().getBody().front());
    return b.create<InitializerOp>(loc, b.getStringAttr(name), attr);
  }

  Value floatInitializer(OpBuilder &b, Location loc, StringRef name, ArrayRef<int64_t> shape,
                         ArrayRef<float> values) {
    weights::F32Tensor t(shape);
    t.data.assign(values.begin(), values.end());
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(&getOperation().getBody().front());
    return weights::createInitializer(b, loc, name, t);
  }

  /// Tensors that must share one scale: a Concat's inputs and output (so
  /// that it is a copy in int8), and the input and output of ops that only
  /// move or select values (MaxPool, Reshape, Transpose, Flatten, Squeeze,
  /// Unsqueeze, Slice, Identity), which carry the scale through. Each group
  /// is quantized over the union of its members' ranges.
  llvm::DenseMap<Value, Value> groupParent;        // union-find over tensors
  llvm::DenseMap<Value, quant::Range> groupRanges; // by group root
  llvm::DenseSet<Value> incompleteGroups;          // a member has no range

  Value groupOf(Value v) {
    auto it = groupParent.find(v);
    if (it == groupParent.end() || it->second == v)
      return v;
    Value root = groupOf(it->second);
    groupParent[v] = root;
    return root;
  }
  void unite(Value a, Value b) {
    Value ra = groupOf(a), rb = groupOf(b);
    if (ra != rb)
      groupParent[rb] = ra;
    groupParent.try_emplace(ra, ra);
  }

  void groupScalePreservingTensors() {
    getOperation().walk([&](Operation *op) {
      if (isa<ConcatOp>(op)) {
        for (Value in : op->getOperands())
          unite(op->getResult(0), in);
      } else if (isa<MaxPoolOp, ReshapeOp, TransposeOp, FlattenOp, SqueezeOp, UnsqueezeOp, SliceOp,
                     IdentityOp>(op) &&
                 op->getNumResults() >= 1) {
        unite(op->getOperand(0), op->getResult(0));
      }
    });
    for (auto &entry : groupParent) {
      Value member = entry.first, root = groupOf(member);
      auto r = quant::rangeOf(member);
      if (!r) {
        // A member calibration never saw: the group is not shared.
        incompleteGroups.insert(root);
        continue;
      }
      quant::Range &all = groupRanges[root];
      all.min = std::min(all.min, r->min);
      all.max = std::max(all.max, r->max);
    }
  }

  /// The range `value` is quantized over: its group's, or its own.
  std::optional<quant::Range> quantRange(Value value) {
    if (groupParent.count(value)) {
      Value root = groupOf(value);
      if (!incompleteGroups.count(root))
        if (auto it = groupRanges.find(root); it != groupRanges.end() && it->second.valid())
          return it->second;
    }
    return quant::rangeOf(value);
  }

  /// The ONNX name of a tensor: its producer's output name or the graph
  /// input's.
  std::string tensorName(Value value) {
    std::string name = weights::nameOf(value);
    if (auto arg = dyn_cast<BlockArgument>(value)) {
      auto graph = getOperation()->getAttrOfType<DictionaryAttr>(kGraphAttr);
      auto inputs = graph ? graph.getAs<ArrayAttr>("inputs") : ArrayAttr();
      if (inputs && arg.getArgNumber() < inputs.size())
        if (auto record = dyn_cast<DictionaryAttr>(inputs[arg.getArgNumber()]))
          if (auto n = record.getAs<StringAttr>("name"))
            name = n.str();
    }
    return name.empty() ? "activation" : name;
  }

  /// The dequantized stand-in of activation `value`: one Q/DQ pair per
  /// tensor, which every consumer then reads.
  std::optional<std::pair<Value, float>> quantizeActivation(Value value) {
    if (auto found = quantized.find(value); found != quantized.end())
      return found->second;
    auto range = quantRange(value);
    auto type = dyn_cast<RankedTensorType>(value.getType());
    if (!range || !type || !type.getElementType().isF32())
      return std::nullopt;
    auto params = quant::activationParams(*range, unsignedActivations);
    MLIRContext *ctx = value.getContext();
    OpBuilder b(ctx);
    if (Operation *def = value.getDefiningOp())
      b.setInsertionPointAfter(def);
    else
      b.setInsertionPointToStart(&getOperation().getBody().front());
    Location loc = value.getLoc();
    std::string name = tensorName(value);
    Value scale = floatInitializer(b, loc, name + "_scale", {}, {params.scale});
    Value zeroPoint =
        intInitializer(b, loc, name + "_zero_point",
                       unsignedActivations ? interp::DType::U8 : interp::DType::I8, {},
                       {params.zeroPoint});
    auto qType = RankedTensorType::get(type.getShape(), activationType(ctx));
    Value q = b.create<QuantizeLinearOp>(loc, qType, value, scale, zeroPoint, IntegerAttr());
    Value dq = b.create<DequantizeLinearOp>(loc, type, q, scale, zeroPoint, IntegerAttr());
    value.replaceAllUsesExcept(dq, q.getDefiningOp());
    // The dequantized tensor takes the name its consumers and the graph's
    // outputs know; the float one and the int8 one get suffixes.
    auto names = [&](StringRef n) { return b.getStrArrayAttr({n}); };
    q.getDefiningOp()->setAttr(kOutputNamesAttr, names(name + "_quantized"));
    dq.getDefiningOp()->setAttr(kOutputNamesAttr, names(name));
    if (Operation *def = value.getDefiningOp(); def && def->getNumResults() == 1)
      def->setAttr(kOutputNamesAttr, names(name + "_float"));
    else if (!value.getDefiningOp())
      dq.getDefiningOp()->setAttr(kOutputNamesAttr, names(name + "_dequantized"));
    quantized[value] = quantized[dq] = {dq, params.scale};
    floatOf[dq] = value;
    return quantized[value];
  }

  /// A Relu, or a Clip from 0, that is `out`'s only user: quantizing `out`
  /// over its range (which starts at 0) saturates exactly as it clamps.
  static Operation *absorbableActivation(Value out) {
    if (!out.hasOneUse())
      return nullptr;
    Operation *user = *out.getUsers().begin();
    if (isa<ReluOp>(user))
      return user;
    if (auto clip = dyn_cast<ClipOp>(user)) {
      auto lo = isNoneValue(clip.getMin()) ? std::nullopt : weights::getScalarF32(clip.getMin());
      if (lo && *lo == 0.0f)
        return user;
    }
    return nullptr;
  }

  /// Removes `absorbed` (a Relu or Clip reading `op`'s only result), giving
  /// `op` its output name, range and scale group.
  void absorb(Operation *op, Operation *absorbed) {
    Value out = op->getResult(0);
    // The op's output is now the activation's: its range and means too.
    for (StringRef attr : {quant::kRangesAttr, quant::kMeansAttr}) {
      if (auto value = absorbed->getAttr(attr))
        op->setAttr(attr, value);
      else
        op->removeAttr(attr);
    }
    if (auto names = absorbed->getAttr(kOutputNamesAttr))
      op->setAttr(kOutputNamesAttr, names);
    if (groupParent.count(absorbed->getResult(0)))
      unite(absorbed->getResult(0), out);
    absorbed->getResult(0).replaceAllUsesWith(out);
    absorbed->erase();
  }

  /// An Add of two quantized tensors gets a quantized output too, so that
  /// runtimes add in int8 (onnxruntime's QLinearAdd) instead of leaving a
  /// float island between two dequantizes and a quantize.
  bool quantizeAdd(AddOp add) {
    Value out = add.getResult();
    auto type = dyn_cast<RankedTensorType>(out.getType());
    if (!type || !type.getElementType().isF32())
      return false;
    for (Value in : add->getOperands())
      if (!quantized.count(in) || quantized[in].first != in)
        return false; // an input that is not a dequantized tensor
    Operation *absorbed = absorbableActivation(out);
    if (!quant::rangeOf(absorbed ? absorbed->getResult(0) : out))
      return false;
    if (absorbed)
      absorb(add, absorbed);
    return quantizeActivation(out).has_value();
  }

  /// Bias correction (quantization.md: Nagel et al. 2019, sec. 4.2): the
  /// int8 weight shifts each output's mean by (Wq - W) E[x]; subtracting
  /// that from the bias removes it. E[x] per input channel is what
  /// calibration measured or the data-free estimate carried. Nothing when
  /// the means are unknown, the op has nowhere to put a bias (MatMul) or
  /// the shift is zero.
  std::optional<weights::F32Tensor>
  correctedBias(Value x, const weights::F32Tensor &w, ArrayRef<int64_t> wq,
                ArrayRef<float> scales, const std::optional<weights::F32Tensor> &biasConst,
                Operation *op, int64_t axis, int64_t outChannels) {
    if (isa<MatMulOp>(op))
      return std::nullopt;
    Value source = floatOf.count(x) ? floatOf[x] : x;
    auto means = quant::meansOf(source);
    if (!means)
      return std::nullopt;
    // Input channels per group and the taps each reads.
    int64_t group = 1, inPerGroup, taps = 1;
    if (auto conv = dyn_cast<ConvOp>(op)) {
      group = conv.getGroup().value_or(1);
      inPerGroup = w.dim(1);
      for (int64_t d = 2; d < w.rank(); ++d)
        taps *= w.dim(d);
    } else {
      inPerGroup = w.dim(1 - axis); // Gemm: [N, K] (transB) or [K, N]
    }
    if (int64_t(means->size()) != inPerGroup * group)
      return std::nullopt;
    int64_t outPerGroup = outChannels / group;
    weights::F32Tensor corrected(llvm::ArrayRef<int64_t>{outChannels});
    bool changed = false;
    for (int64_t o = 0; o < outChannels; ++o) {
      float s = scales[perChannel ? o : 0];
      int64_t g = o / outPerGroup;
      double shift = 0;
      for (int64_t i = 0; i < inPerGroup; ++i)
        for (int64_t k = 0; k < taps; ++k) {
          int64_t at = axis == 0 ? (o * inPerGroup + i) * taps + k : i * outChannels + o;
          shift += (double(wq[at]) * s - double(w.data[at])) * (*means)[g * inPerGroup + i];
        }
      double b = biasConst ? biasConst->data[o] : 0.0;
      corrected.data[o] = float(b - shift);
      changed |= shift != 0;
    }
    if (!changed)
      return std::nullopt;
    return corrected;
  }

  /// Quantizes `op`; the reason when it cannot.
  std::string quantizeOp(Operation *op) {
    if (!keepFloat.empty()) {
      auto node = op->getAttrOfType<StringAttr>(kNodeNameAttr);
      std::string output = weights::nameOf(op->getResult(0));
      for (const std::string &kept : keepFloat)
        if ((node && node.getValue() == kept) || output == kept)
          return "kept in float by --keep-float";
    }
    Value x = op->getOperand(0), w = op->getOperand(1);
    Value bias = op->getNumOperands() > 2 && !isNoneValue(op->getOperand(2)) ? op->getOperand(2)
                                                                              : Value();
    auto wConst = weights::getConstantF32(w);
    if (!wConst)
      return "its weight is not a float32 constant (computed at run time)";
    int64_t axis = 0;
    if (auto gemm = dyn_cast<GemmOp>(op)) {
      float alpha = gemm.getAlpha() ? gemm.getAlpha()->convertToFloat() : 1.0f;
      float beta = gemm.getBeta() ? gemm.getBeta()->convertToFloat() : 1.0f;
      if (gemm.getTransA().value_or(0) || alpha != 1.0f || beta != 1.0f)
        return "a Gemm with transA, alpha or beta";
      axis = gemm.getTransB().value_or(0) ? 0 : 1;
    } else if (isa<MatMulOp>(op)) {
      if (wConst->rank() != 2)
        return "a MatMul whose weight is not 2-D";
      axis = 1;
    }
    if (wConst->rank() < 1)
      return "a scalar weight";
    int64_t outChannels = wConst->dim(axis);
    std::optional<weights::F32Tensor> biasConst;
    if (bias) {
      biasConst = weights::getConstantF32(bias);
      if (!biasConst || biasConst->rank() != 1 || biasConst->dim(0) != outChannels)
        return "its bias is not a 1-D float32 constant per output channel";
    }
    Value out = op->getResult(0);
    // A Gemm whose result only leaves the graph keeps it in float: runtimes
    // run DequantizeLinear -> Gemm as an integer kernel with a float result
    // (onnxruntime's QGemm), so requantizing would only add error where the
    // user reads it (a classifier's logits).
    bool floatOutput = isa<GemmOp>(op) && !out.use_empty() &&
                       llvm::all_of(out.getUsers(), [](Operation *user) {
                         return isa<func::ReturnOp>(user);
                       });
    Operation *absorbed = floatOutput ? nullptr : absorbableActivation(out);
    Value finalOut = absorbed ? absorbed->getResult(0) : out;
    if (!floatOutput && !quant::rangeOf(finalOut))
      return "no recorded range for its output (run onnx-quant-calibrate first)";
    auto in = quantizeActivation(x);
    if (!in)
      return "no recorded range for its input (run onnx-quant-calibrate first)";

    OpBuilder b(op);
    Location loc = op->getLoc();
    std::string name = weights::nameOf(w);
    if (name.empty())
      name = "weight";
    // Weight: int8, symmetric, per output channel.
    if (auto found = quantizedWeights.find(w); found != quantizedWeights.end()) {
      op->setOperand(1, found->second.first);
      return finishOp(op, b, loc, name, in->second, found->second.second, bias, biasConst, axis,
                      outChannels, absorbed, floatOutput ? Value() : out);
    }
    auto scales = quant::weightScales(wConst->data, wConst->shape, axis, perChannel);
    // A weight onnx-quant-round rounded: its levels, on the grid of the
    // scales it chose (its own largest value may have moved off the last
    // level).
    std::optional<weights::F32Tensor> rounded;
    if (auto attr = op->getAttrOfType<ElementsAttr>(quant::kRoundedWeightAttr))
      rounded = weights::fromElements(attr);
    auto chosen = op->getAttrOfType<DenseF32ArrayAttr>(quant::kWeightScalesAttr);
    if (rounded && rounded->shape == wConst->shape && chosen &&
        chosen.size() == int64_t(scales.size()))
      scales.assign(chosen.asArrayRef().begin(), chosen.asArrayRef().end());
    else
      rounded.reset();
    const weights::F32Tensor &levels = rounded ? *rounded : *wConst;
    int64_t inner = 1;
    for (int64_t d = axis + 1; d < wConst->rank(); ++d)
      inner *= wConst->dim(d);
    std::vector<int64_t> wq(wConst->size());
    for (int64_t i = 0; i < wConst->size(); ++i) {
      float s = scales[perChannel ? (i / inner) % outChannels : 0];
      wq[i] = quant::quantizeValue(levels.data[i], s, 0, -127, 127);
    }
    if (biasCorrection)
      if (auto corrected = correctedBias(x, *wConst, wq, scales, biasConst, op, axis, outChannels)) {
        if (!bias) {
          std::string biasName = name + "_bias";
          bias = floatInitializer(b, loc, biasName, {outChannels}, corrected->data);
          op->setOperand(2, bias);
        }
        biasConst = std::move(corrected);
        ++numBiasCorrected;
      }
    Value wInit = intInitializer(b, loc, name + "_quantized", interp::DType::I8, wConst->shape, wq);
    SmallVector<int64_t> scaleShape;
    if (perChannel)
      scaleShape.push_back(outChannels);
    Value wScale = floatInitializer(b, loc, name + "_scale", scaleShape, scales);
    IntegerAttr axisAttr = perChannel ? b.getI64IntegerAttr(axis) : IntegerAttr();
    // Explicit zero points (0): runtimes read the weight type from them.
    Value wZero = intInitializer(b, loc, name + "_zero_point", interp::DType::I8, scaleShape,
                                 std::vector<int64_t>(scales.size(), 0));
    Value wDq = b.create<DequantizeLinearOp>(loc, w.getType(), wInit, wScale, wZero, axisAttr);
    quantizedWeights[w] = {wDq, scales};
    op->setOperand(1, wDq);
    return finishOp(op, b, loc, name, in->second, scales, bias, biasConst, axis, outChannels,
                    absorbed, floatOutput ? Value() : out);
  }

  /// The bias and the output of a quantized op (`out` null: the result stays
  /// float).
  std::string finishOp(Operation *op, OpBuilder &b, Location loc, const std::string &name,
                       float inputScale, const std::vector<float> &scales, Value bias,
                       const std::optional<weights::F32Tensor> &biasConst, int64_t axis,
                       int64_t outChannels, Operation *absorbed, Value out) {
    // Bias: int32 at input scale x weight scale, zero point 0.
    if (bias) {
      std::vector<float> biasScales(outChannels);
      std::vector<int64_t> bq(outChannels);
      for (int64_t c = 0; c < outChannels; ++c) {
        biasScales[c] = inputScale * scales[perChannel ? c : 0];
        bq[c] = quant::quantizeValue(biasConst->data[c], biasScales[c], 0, INT32_MIN, INT32_MAX);
      }
      std::string biasName = weights::nameOf(bias);
      if (biasName.empty())
        biasName = name + "_bias";
      Value bInit = intInitializer(b, loc, biasName + "_quantized", interp::DType::I32,
                                   {outChannels}, bq);
      Value bScale = floatInitializer(b, loc, biasName + "_scale", {outChannels}, biasScales);
      Value bZero = intInitializer(b, loc, biasName + "_zero_point", interp::DType::I32,
                                   {outChannels}, std::vector<int64_t>(outChannels, 0));
      Value bDq = b.create<DequantizeLinearOp>(loc, bias.getType(), bInit, bScale, bZero,
                                               b.getI64IntegerAttr(0));
      op->setOperand(2, bDq);
    }
    // The output, with the absorbed activation's range (none for a float
    // result).
    if (absorbed)
      absorb(op, absorbed);
    if (out)
      quantizeActivation(out);
    return "";
  }
};

} // namespace
