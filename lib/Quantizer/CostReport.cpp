//===- CostReport.cpp - what quantization cost, measured ---------------------===//
//
// The float and the quantized model run side by side in the interpreter on
// the calibration sets; per graph output, the signal-to-quantization-noise
// ratio over all sets, the largest absolute error and, for [N, K] outputs,
// how often the arg-max of a row agrees.
//
//===----------------------------------------------------------------------===//

#include "refold/Quantizer/Quantizer.h"

#include <cmath>

using llvm::Expected;

namespace refold::quant {

Expected<CostReport> measureCost(mlir::ModuleOp floatModel, mlir::ModuleOp quantModel,
                                 const CalibrationData &data, size_t maxSets) {
  struct Sums {
    double signal = 0, noise = 0, maxAbs = 0;
    int64_t rows = 0, agree = 0;
    bool classifier = false;
  };
  std::map<std::string, Sums> sums;
  CostReport report;
  interp::RunOptions options;
  for (size_t i = 0; i < data.size() && i < maxSets; ++i) {
    auto inputs = data.load(i);
    if (!inputs)
      return inputs.takeError();
    interp::TensorMap sameInputs = *inputs;
    auto reference = interp::run(floatModel, *inputs, options);
    if (!reference)
      return reference.takeError();
    auto quantized = interp::run(quantModel, sameInputs, options);
    if (!quantized)
      return quantized.takeError();
    for (auto &[name, ref] : *reference) {
      auto it = quantized->find(name);
      if (it == quantized->end() || ref.dtype() != interp::DType::F32 ||
          it->second.dtype() != interp::DType::F32 || ref.size() != it->second.size())
        continue;
      Sums &s = sums[name];
      const float *a = ref.data<float>(), *b = it->second.data<float>();
      for (int64_t k = 0; k < ref.size(); ++k) {
        double d = double(a[k]) - double(b[k]);
        s.signal += double(a[k]) * a[k];
        s.noise += d * d;
        s.maxAbs = std::max(s.maxAbs, std::fabs(d));
      }
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
  for (auto &[name, s] : sums) {
    OutputCost cost;
    cost.name = name;
    cost.sqnrDb = s.noise > 0 ? 10 * std::log10(s.signal / s.noise) : INFINITY;
    cost.maxAbsError = s.maxAbs;
    if (s.classifier && s.rows)
      cost.top1Agreement = double(s.agree) / double(s.rows);
    report.outputs.push_back(cost);
  }
  return report;
}

} // namespace refold::quant
