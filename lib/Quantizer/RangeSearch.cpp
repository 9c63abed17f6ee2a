//===- RangeSearch.cpp - activation ranges chosen by the output they give ===//
//
// A range method looks at one tensor's histogram; what a range costs shows
// at the model's output, after the rounding of every later layer. The
// search quantizes the model as it stands, then takes its activation
// tensors in graph order and tries each one's range scaled by a few
// factors, keeping a factor when the model's output SQNR against float
// (on a few calibration sets) improves. Greedy, one tensor at a time;
// later tensors are tried on top of the earlier choices. Each trial is one
// QDQ rewrite and one interpreter run per set, so the number of trials is
// bounded by a budget of multiply-accumulates, which keeps the result the
// same on every machine.
//
//===----------------------------------------------------------------------===//

#include "refold/Quantizer/Quantizer.h"

#include "refold/Dialect/ONNX/ONNXOps.h"
#include "refold/Transforms/WeightUtils.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>
#include <cmath>

using namespace mlir;
using llvm::Expected;

namespace refold::quant {

namespace {

/// Summed signal and error power of each graph output over the sets.
struct PowerSums {
  double signal = 0, noise = 0;
};

/// The mean over graph outputs of their SQNR (dB) against `reference`.
double meanSqnr(const std::vector<interp::TensorMap> &reference,
                const std::vector<interp::TensorMap> &quantized) {
  std::map<std::string, PowerSums> sums;
  for (auto [ref, quant] : llvm::zip(reference, quantized))
    for (auto &[name, r] : ref) {
      auto it = quant.find(name);
      if (it == quant.end() || r.dtype() != interp::DType::F32 ||
          it->second.dtype() != interp::DType::F32 || r.size() != it->second.size())
        continue;
      PowerSums &s = sums[name];
      const float *a = r.data<float>(), *b = it->second.data<float>();
      for (int64_t k = 0; k < r.size(); ++k) {
        double d = double(a[k]) - double(b[k]);
        s.signal += double(a[k]) * a[k];
        s.noise += d * d;
      }
    }
  if (sums.empty())
    return 0;
  double total = 0;
  for (auto &[name, s] : sums)
    total += s.noise > 0 ? 10 * std::log10(s.signal / s.noise) : 200.0;
  return total / double(sums.size());
}

/// The tensor names a QDQ model quantizes: each activation
/// DequantizeLinear carries the name of the tensor it stands for.
llvm::StringSet<> quantizedTensorNames(ModuleOp quantModel) {
  llvm::StringSet<> names;
  quantModel.walk([&](ir::DequantizeLinearOp dq) {
    Value in = dq->getOperand(0);
    if (in.getDefiningOp<ir::InitializerOp>() || in.getDefiningOp<ir::ConstantOp>())
      return;
    std::string name = weights::nameOf(dq.getResult());
    names.insert(name);
    if (StringRef(name).ends_with("_dequantized")) // a graph input's
      names.insert(StringRef(name).drop_back(StringRef("_dequantized").size()));
  });
  return names;
}

} // namespace

Expected<RangeSearchResult> searchRanges(ModuleOp calibrated, const CalibrationData &data,
                                         QuantizeTrial quantize, const RangeSearchOptions &options,
                                         uint64_t macsPerSet) {
  size_t sets = std::min(options.sets, data.size());
  RangeSearchResult result;
  uint64_t trialMacs = std::max<uint64_t>(1, macsPerSet) * sets;
  uint64_t budgetTrials = uint64_t(options.budgetGmacs * 1e9 / double(trialMacs));
  result.trialGmacs = double(trialMacs) / 1e9;
  // The float reference and the first trial, then one tensor's factors.
  if (sets == 0 || budgetTrials < 2 + options.factors.size()) {
    result.skipped = true;
    return result;
  }
  // The float outputs are kept; the inputs are read again for each trial,
  // so memory does not hold `sets` inputs.
  std::vector<interp::TensorMap> reference;
  for (size_t i = 0; i < sets; ++i) {
    auto in = data.load(i);
    if (!in)
      return in.takeError();
    auto out = interp::run(calibrated, *in, {});
    if (!out)
      return out.takeError();
    reference.push_back(std::move(*out));
  }
  // One trial: the QDQ rewrite of a copy, run on every set.
  llvm::StringSet<> quantizedNames;
  auto trial = [&](bool first) -> Expected<double> {
    OwningOpRef<ModuleOp> copy = calibrated.clone();
    if (failed(quantize(*copy)))
      return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                     "range search: the QDQ rewrite failed");
    if (first)
      quantizedNames = quantizedTensorNames(*copy);
    std::vector<interp::TensorMap> outputs;
    for (size_t i = 0; i < sets; ++i) {
      auto in = data.load(i);
      if (!in)
        return in.takeError();
      auto out = interp::run(*copy, *in, {});
      if (!out)
        return out.takeError();
      outputs.push_back(std::move(*out));
    }
    ++result.trials;
    return meanSqnr(reference, outputs);
  };
  auto start = trial(/*first=*/true);
  if (!start)
    return start.takeError();
  result.before = result.after = *start;

  // The tensors the rewrite quantizes, in graph order.
  std::vector<Value> candidates;
  auto consider = [&](Value v, const std::string &name) {
    if (rangeOf(v) && quantizedNames.contains(name))
      candidates.push_back(v);
  };
  std::vector<std::string> inputNames = interp::graphInputNames(calibrated);
  for (func::FuncOp graph : calibrated.getOps<func::FuncOp>()) {
    for (BlockArgument arg : graph.getBody().front().getArguments())
      if (arg.getArgNumber() < inputNames.size())
        consider(arg, inputNames[arg.getArgNumber()]);
    graph.walk([&](Operation *op) {
      for (Value r : op->getResults())
        consider(r, weights::nameOf(r));
    });
    break; // the main graph
  }
  result.candidates = candidates.size();

  auto clock = std::chrono::steady_clock::now();
  bool reported = false;
  for (Value v : candidates) {
    if (1 + result.trials + options.factors.size() > budgetTrials)
      break;
    Range original = *rangeOf(v);
    double bestFactor = 1;
    for (double factor : options.factors) {
      setRangeOf(v, Range{float(original.min * factor), float(original.max * factor)});
      auto sqnr = trial(false);
      if (!sqnr)
        return sqnr.takeError();
      if (*sqnr > result.after + options.minGainDb) {
        result.after = *sqnr;
        bestFactor = factor;
      }
    }
    setRangeOf(v, Range{float(original.min * bestFactor), float(original.max * bestFactor)});
    ++result.searched;
    result.changed += bestFactor != 1;
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - clock).count();
    if (options.progress && (seconds > 1 || reported) &&
        (result.searched % 10 == 0 || result.searched == candidates.size())) {
      llvm::errs() << llvm::format("refold: range search: %zu/%zu tensors, output SQNR %.2f -> "
                                   "%.2f dB, %.1f s\n",
                                   result.searched, candidates.size(), result.before, result.after,
                                   seconds);
      reported = true;
    }
  }
  return result;
}

} // namespace refold::quant
