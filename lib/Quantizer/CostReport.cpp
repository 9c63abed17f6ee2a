//===- CostReport.cpp - what quantization cost, measured ---------------------===//
//
// The float and the quantized model run side by side in the interpreter on
// the calibration sets. Per graph output: the signal-to-quantization-noise
// ratio over all sets, the largest absolute error and, for [N, K] outputs,
// how often the arg-max of a row agrees. Per quantized layer: the SQNR of
// its dequantized output against the float model's tensor of the same ONNX
// name (graph-wise: the quantized model runs from the input, so the errors
// of the layers before it count), and the SQNR of its int8 weight.
//
//===----------------------------------------------------------------------===//

#include "refold/Quantizer/Quantizer.h"

#include "refold/Dialect/ONNX/ONNXOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/StringMap.h"

#include <cmath>

using namespace mlir;
using llvm::Expected;

namespace refold::quant {

namespace {

struct ErrorSums {
  double signal = 0, noise = 0, maxAbs = 0;
  void add(const float *a, const float *b, int64_t n) {
    for (int64_t k = 0; k < n; ++k) {
      double d = double(a[k]) - double(b[k]);
      signal += double(a[k]) * a[k];
      noise += d * d;
      maxAbs = std::max(maxAbs, std::fabs(d));
    }
  }
  double sqnrDb() const { return noise > 0 ? 10 * std::log10(signal / noise) : INFINITY; }
};

std::string outputName(Value v) {
  Operation *def = v.getDefiningOp();
  auto names = def ? def->getAttrOfType<ArrayAttr>(ir::kOutputNamesAttr) : ArrayAttr();
  unsigned i = def ? cast<OpResult>(v).getResultNumber() : 0;
  if (!names || i >= names.size())
    return "";
  auto s = dyn_cast<StringAttr>(names[i]);
  return s ? s.str() : "";
}

/// The quantized layers of `quantModel`: each Conv/Gemm/MatMul reading an
/// int8 weight through a DequantizeLinear, with the name of the tensor its
/// output dequantizes to and of its weight.
struct Layer {
  std::string output, weightInt8;
  Value weightDq;
  double rangeMin = 0, rangeMax = 0;
  bool floatOutput = false;
};
std::vector<Layer> quantizedLayers(ModuleOp quantModel) {
  std::vector<Layer> layers;
  quantModel.walk([&](Operation *op) {
    if (!isa<ir::ConvOp, ir::GemmOp, ir::MatMulOp>(op))
      return;
    auto wDq = op->getOperand(1).getDefiningOp<ir::DequantizeLinearOp>();
    if (!wDq)
      return;
    Layer layer;
    layer.weightDq = wDq.getResult();
    if (auto init = wDq->getOperand(0).getDefiningOp<ir::InitializerOp>())
      layer.weightInt8 = init.getName().str();
    // Output -> QuantizeLinear -> DequantizeLinear: the dequantized name.
    for (Operation *q : op->getResult(0).getUsers())
      if (isa<ir::QuantizeLinearOp>(q)) {
        for (Operation *dq : q->getResult(0).getUsers())
          if (isa<ir::DequantizeLinearOp>(dq))
            layer.output = outputName(dq->getResult(0));
        // The range the output's 256 levels cover.
        auto scale = interp::constantValue(q->getOperand(1));
        auto zero = interp::constantValue(q->getOperand(2));
        if (scale && zero && scale->size() == 1 && zero->size() == 1) {
          bool isUnsigned = zero->dtype() == interp::DType::U8;
          double lo = isUnsigned ? 0 : -128, hi = isUnsigned ? 255 : 127;
          layer.rangeMin = (lo - zero->asDouble(0)) * scale->asDouble(0);
          layer.rangeMax = (hi - zero->asDouble(0)) * scale->asDouble(0);
        }
      }
    // A Gemm that feeds the graph's outputs directly keeps a float result.
    if (layer.output.empty() && isa<ir::GemmOp>(op)) {
      layer.output = outputName(op->getResult(0));
      layer.floatOutput = true;
    }
    if (!layer.output.empty())
      layers.push_back(layer);
  });
  return layers;
}

} // namespace

Expected<CostReport> measureCost(ModuleOp floatModel, ModuleOp quantModel,
                                 const CalibrationData &data, size_t maxSets) {
  struct OutputSums : ErrorSums {
    int64_t rows = 0, agree = 0;
    bool classifier = false;
  };
  std::map<std::string, OutputSums> outputs;
  std::vector<Layer> layers = quantizedLayers(quantModel);
  llvm::StringMap<size_t> layerIndex;
  for (auto [i, layer] : llvm::enumerate(layers))
    layerIndex[layer.output] = i;
  std::vector<ErrorSums> layerSums(layers.size());
  CostReport report;

  // Graph-wise: the float model's layer outputs of one set are kept (only
  // those of quantized layers) until the quantized model's run compares.
  llvm::StringMap<interp::Tensor> floatLayerOutputs;
  interp::RunOptions floatOptions, quantOptions;
  floatOptions.observe = [&](Value v, const interp::Tensor &t) {
    if (v.getDefiningOp() && t.dtype() == interp::DType::F32) {
      std::string name = outputName(v);
      if (layerIndex.count(name))
        floatLayerOutputs[name] = t;
    }
  };
  // A layer's output is its DequantizeLinear's (which took the tensor's
  // name), or the layer's own for a float result.
  quantOptions.observe = [&](Value v, const interp::Tensor &t) {
    std::string name = outputName(v);
    auto it = layerIndex.find(name);
    auto ref = floatLayerOutputs.find(name);
    if (it == layerIndex.end() || ref == floatLayerOutputs.end() ||
        ref->second.size() != t.size() || t.dtype() != interp::DType::F32)
      return;
    layerSums[it->second].add(ref->second.data<float>(), t.data<float>(), t.size());
  };

  for (size_t i = 0; i < data.size() && i < maxSets; ++i) {
    auto inputs = data.load(i);
    if (!inputs)
      return inputs.takeError();
    interp::TensorMap sameInputs = *inputs;
    floatLayerOutputs.clear();
    auto reference = interp::run(floatModel, *inputs, floatOptions);
    if (!reference)
      return reference.takeError();
    auto quantized = interp::run(quantModel, sameInputs, quantOptions);
    if (!quantized)
      return quantized.takeError();
    for (auto &[name, ref] : *reference) {
      auto it = quantized->find(name);
      if (it == quantized->end() || ref.dtype() != interp::DType::F32 ||
          it->second.dtype() != interp::DType::F32 || ref.size() != it->second.size())
        continue;
      OutputSums &s = outputs[name];
      const float *a = ref.data<float>(), *b = it->second.data<float>();
      s.add(a, b, ref.size());
      if (ref.rank() == 2 && ref.dim(1) > 1) {
        s.classifier = true;
        int64_t k = ref.dim(1);
        for (int64_t r = 0; r < ref.dim(0); ++r) {
          const float *ra = a + r * k, *rb = b + r * k;
          s.agree += std::max_element(ra, ra + k) - ra == std::max_element(rb, rb + k) - rb;
          ++s.rows;
        }
      }
    }
    ++report.sets;
  }
  for (auto &[name, s] : outputs) {
    OutputCost cost;
    cost.name = name;
    cost.sqnrDb = s.sqnrDb();
    cost.maxAbsError = s.maxAbs;
    if (s.classifier && s.rows)
      cost.top1Agreement = double(s.agree) / double(s.rows);
    report.outputs.push_back(cost);
  }

  // Weight SQNR: the float weight (by name, in the float model) against its
  // dequantized int8 copy.
  llvm::StringMap<Value> floatWeights;
  floatModel.walk([&](ir::InitializerOp init) { floatWeights[init.getName()] = init.getResult(); });
  for (auto [layer, sums] : llvm::zip(layers, layerSums)) {
    LayerCost cost;
    cost.name = layer.output;
    cost.sqnrDb = sums.sqnrDb();
    cost.rangeMin = layer.rangeMin;
    cost.rangeMax = layer.rangeMax;
    cost.floatOutput = layer.floatOutput;
    StringRef weightName = StringRef(layer.weightInt8).drop_back(StringRef("_quantized").size());
    if (!StringRef(layer.weightInt8).ends_with("_quantized"))
      weightName = "";
    cost.weightName = weightName.str();
    auto floatW = weightName.empty() ? std::nullopt
                                     : interp::constantValue(floatWeights.lookup(weightName));
    auto wDq = layer.weightDq.getDefiningOp();
    std::vector<const interp::Tensor *> operands;
    std::vector<interp::Tensor> held;
    for (Value operand : wDq->getOperands())
      if (auto t = interp::constantValue(operand))
        held.push_back(*t);
    if (floatW && held.size() == wDq->getNumOperands()) {
      for (auto &t : held)
        operands.push_back(&t);
      auto dequantized = interp::evaluateOp(wDq, operands, interp::modelOpset(quantModel));
      if (dequantized && (*dequantized)[0].size() == floatW->size()) {
        ErrorSums w;
        w.add(floatW->data<float>(), (*dequantized)[0].data<float>(), floatW->size());
        cost.weightSqnrDb = w.sqnrDb();
      } else if (!dequantized) {
        llvm::consumeError(dequantized.takeError());
      }
    }
    report.layers.push_back(cost);
  }
  return report;
}

} // namespace refold::quant
