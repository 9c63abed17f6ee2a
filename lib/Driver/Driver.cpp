//===- Driver.cpp - refold's pipeline as a library -------------------------===//
//
// refold::compile and refold::run (include/refold/refold.h): import, the
// optimization pipeline, verification, quantization and the writers. The
// `refold` tool only turns its command line into refold::Options.
//
//===----------------------------------------------------------------------===//

#include "refold/refold.h"

#include "refold/Analysis/ModelStats.h"
#include "refold/CEmitter/CEmitter.h"
#include "refold/CEmitter/CEngine.h"
#include "refold/Dialect/ONNX/ONNXOps.h"
#include "refold/Dialect/ONNX/OwnedBlob.h"
#include "refold/Interpreter/Interpreter.h"
#include "refold/Passes/Explain.h"
#include "refold/Passes/FixedPointReport.h"
#include "refold/Passes/Passes.h"
#include "refold/Quantizer/Quantizer.h"
#include "refold/Transforms/WeightUtils.h"
#include "refold/Translation/ONNXModel.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassInstrumentation.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_os_ostream.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>
#include <iostream>
#include <mutex>
#include <set>

using namespace llvm;

namespace {
/// `message` on one line: names from the model may hold newlines, control
/// characters or bytes that are not UTF-8; they are escaped.
std::string oneLine(const Twine &message) {
  std::string text = message.str();
  bool validUtf8 = llvm::json::isUTF8(text);
  std::string out;
  for (unsigned char c : text) {
    if (c == '\n')
      out += "\\n";
    else if (c < 0x20 || c == 0x7f || (c >= 0x80 && !validUtf8))
      out += llvm::formatv("\\x{0:x-2}", unsigned(c)).str();
    else
      out += char(c);
  }
  return out;
}

std::string formatNumber(double v) {
  char buffer[32];
  snprintf(buffer, sizeof(buffer), "%g", v);
  return buffer;
}

std::string fileNameFor(StringRef name) {
  std::string out;
  for (char c : name)
    out += (isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.') ? c : '_';
  return out.empty() ? "unnamed" : out;
}

/// Bytes of the graph's initializers (the model's weights).
uint64_t weightBytes(mlir::ModuleOp module) {
  uint64_t bytes = 0;
  module.walk([&](refold::ir::InitializerOp init) {
    auto type = cast<mlir::ShapedType>(init.getValue().getType());
    bytes += uint64_t(type.getNumElements()) * ((type.getElementTypeBitWidth() + 7) / 8);
  });
  return bytes;
}


/// The name --keep-float knows a layer by: its node name, else its output's.
std::string layerKey(mlir::Operation *op) {
  if (!isa<refold::ir::ConvOp, refold::ir::GemmOp, refold::ir::MatMulOp>(op))
    return "";
  if (auto node = op->getAttrOfType<mlir::StringAttr>(refold::ir::kNodeNameAttr))
    if (!node.getValue().empty())
      return node.str();
  return refold::weights::nameOf(op->getResult(0));
}


/// The mean output SQNR (dB) of `quantModel` against `floatModel`.
llvm::Expected<double> outputSqnr(mlir::ModuleOp floatModel, mlir::ModuleOp quantModel,
                                  const refold::quant::CalibrationData &data, size_t sets) {
  auto cost = refold::quant::measureCost(floatModel, quantModel, data, sets);
  if (!cost)
    return cost.takeError();
  double sum = 0;
  for (const auto &o : cost->outputs)
    sum += std::isfinite(o.sqnrDb) ? o.sqnrDb : 200.0;
  return cost->outputs.empty() ? 0.0 : sum / double(cost->outputs.size());
}

/// One compile or run: the options, the output streams and what was said.
class Session {
public:
  Session(const refold::Options &options, std::string input, std::string output)
      : o(options), q(options.quantize), inputFile(std::move(input)),
        outputFile(std::move(output)), outStream(options.out ? *options.out : std::cout) {}

  refold::Result finish(int status) {
    outStream.flush();
    refold::Result result;
    result.ok = status == 0 && firstError.empty();
    result.error = firstError.empty() && !result.ok ? "failed" : firstError;
    result.report = std::move(report);
    return result;
  }

private:
  const refold::Options &o;
  const refold::QuantizeOptions &q;
  std::string inputFile, outputFile;
  raw_os_ostream outStream;
  std::string firstError;
  std::set<std::string> saidDims;
  refold::Report report;

  // The names the command line knows the options by.
  const std::string &passPipeline = o.passPipeline;
  const std::string &mergePolicy = o.mergePolicy;
  const bool &explain = o.explain;
  const bool &quiet = o.quiet;
  const bool &verify = o.verify;
  const unsigned &verifyRuns = o.verifyRuns;
  const double &verifyTol = o.verifyRtol;
  const double &verifyAtol = o.verifyAtol;
  const uint64_t &seed = o.seed;
  const bool &stats = o.stats;
  const std::string &statsJson = o.statsJson;
  const std::string &cPrefix = o.cPrefix;
  const std::string &engine = o.run.engine;
  const std::string &compareDir = o.run.compareDir;
  const bool &printOutputs = o.run.print;
  const unsigned &timeRuns = o.run.timeRuns;
  const std::string &calibration = q.calibration;
  const std::string &calibrationMethod = q.method;
  const double &calibrationPercentile = q.percentile;
  const uint64_t &calibrationLimit = q.limit;
  const std::vector<double> &inputRange = q.inputRange;
  const double &dataFreeSigmas = q.dataFreeSigmas;
  const bool &biasCorrection = q.biasCorrection;
  const std::string &weightRounding = q.weightRounding;
  const unsigned &maxFloatLayers = q.maxFloatLayers;
  const double &rangeSearchBudget = q.rangeSearchBudget;
  const std::string &activationsType = q.activations;
  const std::string &weightsGranularity = q.weights;
  const std::vector<std::string> &keepFloat = q.keepFloat;
  const bool &equalize = q.equalize;
  const bool &quantReport = q.report;
  const std::string &quantReportJson = q.reportJson;

  raw_ostream &out() { return outStream; }

  void say(refold::Severity severity, const Twine &message) {
    std::string line = oneLine(message);
    outStream.flush(); // report lines before the message
    if (o.diagnostic) {
      o.diagnostic(severity, line);
      return;
    }
    if (severity != refold::Severity::Error)
      errs() << "refold: " << (severity == refold::Severity::Warning ? "warning: " : "") << line
             << "\n";
  }
  int fail(const Twine &message) {
    std::string line = oneLine(message);
    if (firstError.empty())
      firstError = line;
    say(refold::Severity::Error, line);
    return 1;
  }
  void warn(const Twine &message) { say(refold::Severity::Warning, message); }
  void remark(const Twine &message) {
    if (!quiet)
      say(refold::Severity::Remark, message);
  }
  /// A line about a long stage, when the caller wants them (a terminal).
  void progress(const Twine &message) {
    if (o.progress)
      remark(message);
  }
  static double secondsSince(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }

  /// allclose-style: within atol + rtol * the output's max magnitude.
  bool withinTolerance(double maxAbs, double maxMagnitude) {
    return maxAbs <= verifyAtol + verifyTol * maxMagnitude;
  }

  std::string toleranceText() {
    return "atol + rtol x max |original| (--verify-atol " + formatNumber(verifyAtol) +
           ", --verify-tol " + formatNumber(verifyTol) + ")";
  }


  /// Says which size a dynamic input dimension took by default, once per
  /// dimension however many runs (and the cost report) use it.
  void warnDefaultDim(StringRef input, int64_t axis, StringRef param, int64_t size) {
    std::set<std::string> &said = saidDims;
    if (!param.empty()) {
      if (said.insert(param.str()).second)
        warn("symbolic dimension '" + param + "' is not pinned; using " + Twine(size) +
             " (pin it with --dim " + param + "=VALUE)");
      return;
    }
    std::string what = "dimension " + std::to_string(axis) + " of input '" + input.str() + "'";
    if (said.insert(what).second)
      warn(what + " has no size; using " + Twine(size) + " (give the input with --input)");
  }

  /// `module`'s stats with every dynamic input dimension sized (--dim, or
  /// the default the interpreter uses), so MACs and traffic are counts, not
  /// rates per unit of a symbolic size. Node counts stay the model's own.
  refold::ModelStats costedStats(mlir::ModuleOp module) {
    refold::ModelStats counted = refold::computeStats(module);
    if (!counted.dynamicShapes)
      return counted;
    llvm::StringMap<int64_t> dims = pinnedDims();
    mlir::OwningOpRef<mlir::ModuleOp> sized = module.clone();
    // Said with the full report; the one-line summary only uses them.
    bool report = stats || !statsJson.empty();
    auto fallback = [this, report](StringRef input, int64_t axis, StringRef param, int64_t rank) {
      int64_t size = refold::interp::defaultDimSize(axis, rank);
      if (report)
        warnDefaultDim(input, axis, param, size);
      return size;
    };
    if (auto err = refold::cemit::pinDimensions(*sized, dims, fallback)) {
      consumeError(std::move(err));
      return counted;
    }
    refold::ModelStats costed = refold::computeStats(*sized);
    counted.macs = costed.macs;
    counted.memoryBytes = costed.memoryBytes;
    counted.dynamicShapes = costed.dynamicShapes;
    return counted;
  }

  /// --dim as the interpreter and the C emitter take it.
  llvm::StringMap<int64_t> pinnedDims() {
    llvm::StringMap<int64_t> dims;
    for (const auto &[name, size] : o.dims)
      dims[name] = size;
    return dims;
  }

  /// Reads --input.
  bool parseRunInputs(refold::interp::TensorMap &inputs, refold::interp::RunOptions &options) {
    for (const auto &[name, file] : o.inputs) {
      auto tensor = refold::interp::readTensorFile(file);
      if (!tensor) {
        fail(toString(tensor.takeError()));
        return false;
      }
      inputs[name] = *tensor;
    }
    options.dims = pinnedDims();
    options.seed = seed;
    options.onDefaultDim = [this](StringRef input, int64_t axis, StringRef param, int64_t size) {
      warnDefaultDim(input, axis, param, size);
    };
    return true;
  }

  /// `refold run MODEL -o DIR`: interpreter outputs (and generated inputs) as .pb files.
  int runModel(mlir::ModuleOp module) {
    if (outputFile.empty())
      return fail("run needs an output directory (-o DIR)");
    refold::interp::TensorMap inputs;
    refold::interp::RunOptions options;
    if (!parseRunInputs(inputs, options))
      return 1;
    options.integerQDQ = o.run.integerQDQ;
    options.fixedRequant = o.cRequant == "fixed";
    std::set<std::string> given;
    for (auto &[name, t] : inputs)
      given.insert(name);
    if (engine != "interpreter" && engine != "c")
      return fail("--engine must be interpreter or c, got '" + engine + "'");
    llvm::Expected<refold::interp::TensorMap> outputs = refold::interp::TensorMap();
    if (engine == "c") {
      auto bound = refold::interp::bindInputs(module, inputs, options);
      if (!bound)
        return fail(inputFile + ": " + toString(bound.takeError()));
      refold::cemit::COptions cOptions;
      cOptions.cc = o.run.cc;
      cOptions.cflags = o.run.cflags;
      cOptions.timeRuns = timeRuns;
      cOptions.runUnder = o.run.runUnder;
      cOptions.fixedRequant = o.cRequant == "fixed";
      double ms = -1;
      auto start = std::chrono::steady_clock::now();
      progress("compiling the emitted C (" + (cOptions.cc.empty() ? "$CC or cc" : cOptions.cc) +
               " " + cOptions.cflags + ") and running it");
      outputs = refold::cemit::runC(module, *bound, cOptions, &ms);
      if (outputs)
        progress("compiled and ran in " + formatNumber(secondsSince(start)) + " s");
      if (!outputs)
        return fail(inputFile + ": " + toString(outputs.takeError()));
      if (timeRuns > 1)
        out() << "c: median " << formatNumber(ms) << " ms over " << timeRuns << " runs\n";
    } else {
      outputs = refold::interp::run(module, inputs, options);
    }
    if (!outputs)
      return fail(inputFile + ": " + toString(outputs.takeError()));
    if (timeRuns > 0 && engine == "interpreter") {
      std::map<std::string, double> profile;
      options.profile = &profile;
      std::vector<double> times;
      for (unsigned i = 0; i < timeRuns; ++i) {
        auto start = std::chrono::steady_clock::now();
        auto again = refold::interp::run(module, inputs, options);
        times.push_back(std::chrono::duration<double, std::milli>(
                            std::chrono::steady_clock::now() - start).count());
        if (!again)
          return fail(toString(again.takeError()));
      }
      std::sort(times.begin(), times.end());
      out() << "interpreter: median " << formatNumber(times[times.size() / 2]) << " ms over "
             << timeRuns << " runs\n";
      std::vector<std::pair<double, std::string>> byTime;
      for (auto &[op, ms] : profile)
        byTime.push_back({ms / timeRuns, op});
      std::sort(byTime.rbegin(), byTime.rend());
      for (auto &[ms, op] : byTime)
        out() << "  " << op << ": " << formatNumber(ms) << " ms per run\n";
    }
    if (auto ec = sys::fs::create_directories(outputFile))
      return fail(outputFile + ": " + ec.message());
    unsigned generated = 0;
    for (auto &[name, tensor] : inputs) {
      if (given.count(name))
        continue;
      std::string path = outputFile + "/" + fileNameFor(name) + ".pb";
      if (auto err = refold::interp::writeTensorProto(tensor, name, path))
        return fail(path + ": " + toString(std::move(err)));
      ++generated;
    }
    for (auto &[name, tensor] : *outputs) {
      std::string path = outputFile + "/" + fileNameFor(name) + ".pb";
      if (auto err = refold::interp::writeTensorProto(tensor, name, path))
        return fail(path + ": " + toString(std::move(err)));
    }
    if (!compareDir.empty()) {
      bool failed = false;
      for (auto &[name, got] : *outputs) {
        std::string path = compareDir + "/" + fileNameFor(name) + ".pb";
        auto want = refold::interp::readTensorFile(path);
        if (!want)
          return fail(path + ": " + toString(want.takeError()));
        if (want->shape() != got.shape() || want->dtype() != got.dtype())
          return fail("output '" + name + "' is " + refold::interp::dtypeName(got.dtype()).str() +
                      refold::interp::shapeString(got.shape()) + ", " + path + " is " +
                      refold::interp::dtypeName(want->dtype()).str() +
                      refold::interp::shapeString(want->shape()));
        double maxAbs = 0, maxMag = 0;
        for (int64_t i = 0; i < got.size(); ++i) {
          double a = want->asDouble(i), b = got.asDouble(i);
          maxMag = std::max(maxMag, std::abs(a));
          double diff = std::isnan(a) && std::isnan(b) ? 0 : std::abs(a - b);
          maxAbs = std::max(maxAbs, std::isnan(diff) ? std::numeric_limits<double>::infinity() : diff);
        }
        double rel = maxMag > 0 ? maxAbs / maxMag : maxAbs;
        bool bad = !withinTolerance(maxAbs, maxMag);
        failed |= bad;
        out() << "compare: output '" << name << "': max abs error " << format("%.3g", maxAbs)
               << " (allowed " << format("%.3g", verifyAtol + verifyTol * maxMag)
               << "), max relative error " << format("%.3g", rel) << (bad ? "  FAILED" : "") << "\n";
      }
      if (failed)
        return fail("outputs differ from " + compareDir + " by more than " + toleranceText());
    }
    if (printOutputs)
      for (auto &[name, tensor] : *outputs) {
        out() << name << ": " << refold::interp::dtypeName(tensor.dtype())
               << refold::interp::shapeString(tensor.shape()) << " =";
        for (int64_t i = 0; i < tensor.size(); ++i)
          out() << " " << formatNumber(tensor.asDouble(i));
        out() << "\n";
      }
    if (!quiet)
      out() << "refold: wrote " << outputs->size() << " output(s)"
             << (generated ? " and " + std::to_string(generated) + " generated input(s)" : "")
             << " to " << outputFile << "\n";
    return 0;
  }

  /// Runs both models on the same inputs; fills `results`, returns false on
  /// an interpreter error (reported).
  bool verifyModels(mlir::ModuleOp original, mlir::ModuleOp optimized,
                    std::vector<refold::VerifyResult> &results) {
    refold::interp::TensorMap given;
    refold::interp::RunOptions options;
    if (!parseRunInputs(given, options))
      return false;
    std::map<std::string, refold::VerifyResult> worst;
    std::map<std::string, double> magnitude;
    unsigned runs = std::max(1u, unsigned(verifyRuns));
    auto start = std::chrono::steady_clock::now();
    for (unsigned r = 0; r < runs; ++r) {
      if (r > 0)
        progress(formatv("verify: run {0}/{1} done, {2} s", r, runs,
                         formatNumber(secondsSince(start))));
      refold::interp::TensorMap inputs = given;
      options.seed = seed + r;
      auto expected = refold::interp::run(original, inputs, options);
      if (!expected) {
        fail("cannot verify: " + toString(expected.takeError()));
        return false;
      }
      auto actual = refold::interp::run(optimized, inputs, options);
      if (!actual) {
        fail("cannot verify the optimized model: " + toString(actual.takeError()));
        return false;
      }
      for (auto &[name, want] : *expected) {
        auto &result = worst[name];
        result.output = name;
        auto it = actual->find(name);
        if (it == actual->end() || it->second.shape() != want.shape() ||
            it->second.dtype() != want.dtype()) {
          result.maxAbs = result.maxRel = std::numeric_limits<double>::infinity();
          result.passed = false;
          continue;
        }
        double maxAbs = 0, maxMag = 0;
        for (int64_t i = 0; i < want.size(); ++i) {
          double a = want.asDouble(i), b = it->second.asDouble(i);
          maxMag = std::max(maxMag, std::abs(a));
          double diff = std::isnan(a) && std::isnan(b) ? 0 : std::abs(a - b);
          maxAbs = std::max(maxAbs, std::isnan(diff) ? std::numeric_limits<double>::infinity() : diff);
        }
        result.maxAbs = std::max(result.maxAbs, maxAbs);
        result.maxRel = std::max(result.maxRel, maxMag > 0 ? maxAbs / maxMag : maxAbs);
        result.maxMagnitude = std::max(result.maxMagnitude, maxMag);
        result.passed = result.passed && withinTolerance(maxAbs, maxMag);
      }
      if (!o.inputs.empty() && given.size() == inputs.size())
        break; // every input was given: more runs would repeat this one
    }
    for (auto &[name, r] : worst)
      results.push_back(r);
    return true;
  }

  /// The quantization options, checked before any work. (The command line
  /// also refuses flags that only apply with or without --calibration.)
  bool checkQuantOptions() {
    if (!q.enabled)
      return true;
    if (calibration.empty() && maxFloatLayers > 0)
      return fail("--max-float-layers needs --calibration=PATH"), false;
    if (!calibration.empty() && !inputRange.empty())
      return fail("--input-range and --data-free-sigmas are for data-free quantization; with "
                  "--calibration the ranges are measured"),
             false;
    if (!inputRange.empty() && (inputRange.size() != 2 || !(inputRange[0] < inputRange[1])))
      return fail("--input-range expects LO,HI with LO < HI"), false;
    if (!(dataFreeSigmas > 0))
      return fail("--data-free-sigmas must be positive"), false;
    if (!refold::quant::parseRangeMethod(calibrationMethod))
      return fail("--calibration-method must be minmax, percentile, entropy or mse, got '" +
                  calibrationMethod + "'"),
             false;
    if (!(calibrationPercentile > 50.0 && calibrationPercentile <= 100.0))
      return fail("--calibration-percentile must be in (50, 100], got " +
                  std::to_string(calibrationPercentile)),
             false;
    if (activationsType != "uint8" && activationsType != "int8")
      return fail("--activations must be uint8 or int8, got '" + activationsType + "'"), false;
    if (weightsGranularity != "per-channel" && weightsGranularity != "per-tensor")
      return fail("--weights must be per-channel or per-tensor, got '" + weightsGranularity + "'"),
             false;
    if (weightRounding != "gptq" && weightRounding != "nearest")
      return fail("--weight-rounding must be gptq or nearest, got '" + weightRounding + "'"),
             false;
    return true;
  }

  /// The QDQ rewrite of a module with recorded ranges, `keep` left float.
  mlir::LogicalResult rewriteQDQ(mlir::ModuleOp module, llvm::ArrayRef<std::string> keep) {
    mlir::PassManager pm(module.getContext(), mlir::ModuleOp::getOperationName());
    refold::QuantizeQDQOptions rewrite;
    rewrite.biasCorrection = biasCorrection;
    rewrite.activations = activationsType;
    rewrite.weights = weightsGranularity;
    rewrite.keepFloat = keep; // a view: `keep` outlives the pass manager
    pm.nest<mlir::func::FuncOp>().addPass(refold::createQuantizeQDQ(rewrite));
    pm.nest<mlir::func::FuncOp>().addPass(refold::createCleanup());
    return pm.run(module);
  }

  /// --max-float-layers: for every layer the rewrite would quantize, the
  /// output SQNR with that layer alone kept float, measured on a few
  /// calibration sets; the K that gain most.
  llvm::Expected<std::vector<std::pair<std::string, double>>>
  chooseFloatLayers(mlir::ModuleOp calibrated, mlir::ModuleOp floatModel,
                    llvm::ArrayRef<std::string> userKept, unsigned k) {
    constexpr size_t kSensitivitySets = 8;
    auto data = refold::quant::CalibrationData::open(calibration, calibrated, calibrationLimit);
    if (!data)
      return data.takeError();
    std::vector<std::string> candidates;
    calibrated.walk([&](mlir::Operation *op) {
      std::string key = layerKey(op);
      if (!key.empty() && !llvm::is_contained(userKept, key) &&
          !llvm::is_contained(candidates, key))
        candidates.push_back(key);
    });
    auto quantizedWith = [&](llvm::ArrayRef<std::string> keep) -> llvm::Expected<double> {
      mlir::OwningOpRef<mlir::ModuleOp> trial = calibrated.clone();
      if (failed(rewriteQDQ(*trial, keep)))
        return llvm::createStringError(llvm::inconvertibleErrorCode(), "the QDQ rewrite failed");
      return outputSqnr(floatModel, *trial, *data, kSensitivitySets);
    };
    auto all = quantizedWith(userKept);
    if (!all)
      return all.takeError();
    std::vector<std::pair<std::string, double>> gains;
    auto start = std::chrono::steady_clock::now();
    for (size_t i = 0; i < candidates.size(); ++i) {
      std::vector<std::string> keep(userKept.begin(), userKept.end());
      keep.push_back(candidates[i]);
      auto sqnr = quantizedWith(keep);
      if (!sqnr)
        return sqnr.takeError();
      gains.push_back({candidates[i], *sqnr - *all});
      double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (!quiet && seconds > 1 && ((i + 1) % 5 == 0 || i + 1 == candidates.size()))
        remark(formatv("--max-float-layers: {0}/{1} layers measured, {2} s", i + 1,
                       candidates.size(), format("%.1f", seconds)));
    }
    std::stable_sort(gains.begin(), gains.end(),
                     [](const auto &a, const auto &b) { return a.second > b.second; });
    if (gains.size() > k)
      gains.resize(k);
    // A layer whose float copy does not help stays quantized.
    llvm::erase_if(gains, [](const auto &gain) { return gain.second <= 0; });
    return gains;
  }

  /// How far residual-stream equalization evens out the stream's channels:
  /// the square root (the default) or all the way, whichever gives the
  /// better output SQNR when the model is calibrated and rewritten both ways
  /// on a few calibration sets. Full equalization gives the stream the
  /// finest step and the readers' weights the coarsest, so which wins
  /// depends on the model. Skipped (square root) when there is no stream or
  /// when the trials would pass --range-search-budget.
  llvm::Expected<double> chooseResidualExponent(mlir::ModuleOp module) {
    constexpr double kDefault = 0.5, kFull = 1.0;
    size_t limit = calibrationLimit ? std::min<uint64_t>(calibrationLimit, 32) : 32;
    auto data = refold::quant::CalibrationData::open(calibration, module, limit);
    if (!data)
      return data.takeError();
    size_t sets = data->size();
    // Per exponent: the channel ranges, calibration, float and int8 runs.
    double gmacs = 2.0 * 4 * double(sets) * double(refold::computeStats(module).macs) / 1e9;
    if (sets == 0 || gmacs > rangeSearchBudget)
      return kDefault;
    double best = -INFINITY, chosen = kDefault, atDefault = 0;
    for (double exponent : {kDefault, kFull}) {
      mlir::OwningOpRef<mlir::ModuleOp> trial = module.clone();
      refold::quant::ResidualEqualizationOptions residual;
      residual.maxSets = sets;
      residual.exponent = exponent;
      auto streams = refold::quant::equalizeResiduals(*trial, *data, residual);
      if (!streams)
        return streams.takeError();
      if (*streams == 0)
        return kDefault;
      auto calibrated = refold::quant::collectRanges(
          *trial, *data,
          refold::quant::RangeOptions{*refold::quant::parseRangeMethod(calibrationMethod),
                                      calibrationPercentile},
          /*progress=*/false);
      if (!calibrated)
        return calibrated.takeError();
      refold::quant::attachRanges(*trial, calibrated->ranges);
      refold::quant::attachMeans(*trial, calibrated->means);
      if (failed(rewriteQDQ(*trial, keepFloat)))
        return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                       "residual equalization: the QDQ rewrite failed");
      auto sqnr = outputSqnr(module, *trial, *data, sets);
      if (!sqnr)
        return sqnr.takeError();
      if (exponent == kDefault)
        atDefault = *sqnr;
      if (*sqnr > best + 0.05) {
        best = *sqnr;
        chosen = exponent;
      }
    }
    if (chosen != kDefault)
      remark(formatv("residual streams equalized fully: output SQNR {0} dB against {1} dB "
                     "with the square root, on {2} calibration sets",
                     format("%.2f", best), format("%.2f", atDefault), sets));
    return chosen;
  }

  /// Writes --quant-report-json's file (atomically).
  mlir::LogicalResult writeReportJson(json::Object root) {
    auto status = writeToOutput(quantReportJson, [&](raw_ostream &os) {
      os << formatv("{0:2}", json::Value(std::move(root))) << "\n";
      return Error::success();
    });
    if (status)
      return fail(quantReportJson + ": " + toString(std::move(status))), mlir::failure();
    return mlir::success();
  }

  /// --quantize: calibrate, rewrite to QDQ, report what it cost.
  mlir::LogicalResult quantizeModel(mlir::ModuleOp module) {
    // A --keep-float name that matches no layer is a typo, not a no-op.
    for (const std::string &kept : q.keepFloat) {
      bool found = false;
      module.walk([&](mlir::Operation *op) {
        if (isa<refold::ir::ConvOp, refold::ir::GemmOp, refold::ir::MatMulOp>(op) &&
            (layerKey(op) == kept || refold::weights::nameOf(op->getResult(0)) == kept))
          found = true;
      });
      if (!found)
        return fail("--keep-float: no Conv, Gemm or MatMul node or output is named '" +
                    kept + "'"),
               mlir::failure();
    }
    if (equalize) {
      mlir::PassManager prepare(module.getContext(), mlir::ModuleOp::getOperationName());
      prepare.nest<mlir::func::FuncOp>().addPass(refold::createQuantEqualize());
      if (failed(prepare.run(module)))
        return mlir::failure();
      // Residual streams need their channels' ranges, so data; with one
      // scale per weight tensor the writers' scaled rows would cost more
      // than the stream gains.
      if (!calibration.empty() && weightsGranularity == "per-channel") {
        auto exponent = chooseResidualExponent(module);
        if (!exponent)
          return fail(toString(exponent.takeError())), mlir::failure();
        mlir::PassManager residualPm(module.getContext(), mlir::ModuleOp::getOperationName());
        refold::QuantEqualizeResidualOptions residual;
        residual.calibration = calibration;
        residual.limit = calibrationLimit ? calibrationLimit : 64;
        residual.exponent = *exponent;
        residualPm.addPass(refold::createQuantEqualizeResidual(residual));
        if (failed(residualPm.run(module)))
          return mlir::failure();
      }
    }
    // The reference of the report: the float model as quantized (equalization
    // is exact, but it changes the tensors the layers are compared on).
    mlir::OwningOpRef<mlir::ModuleOp> floatModel = module.clone();
    uint64_t floatBytes = weightBytes(module);
    mlir::PassManager pm(module.getContext(), mlir::ModuleOp::getOperationName());
    refold::QuantCalibrateOptions calibrate;
    calibrate.calibration = calibration;
    calibrate.method = calibrationMethod;
    calibrate.percentile = calibrationPercentile;
    calibrate.limit = calibrationLimit;
    calibrate.progress = !quiet;
    std::vector<double> range(inputRange.begin(), inputRange.end()); // the options view it
    if (calibration.empty()) {
      refold::QuantEstimateOptions estimate;
      estimate.inputRange = range;
      estimate.sigmas = dataFreeSigmas;
      pm.addPass(refold::createQuantEstimate(estimate));
      double lo = inputRange.empty() ? -3 : inputRange[0], hi = inputRange.empty() ? 3 : inputRange[1];
      remark("no --calibration: quantizing data-free (activation ranges from the BatchNorm "
             "statistics kept in the model; inputs taken as in [" +
             formatNumber(lo) + ", " + formatNumber(hi) + "]" +
             (inputRange.empty() ? ", set --input-range" : "") + ")");
    } else {
      pm.addPass(refold::createQuantCalibrate(calibrate));
      if (weightRounding != "gptq" && weightRounding != "nearest")
        return fail("--weight-rounding must be gptq or nearest, got '" + weightRounding + "'"),
               mlir::failure();
      if (weightRounding == "gptq") {
        refold::QuantRoundOptions round;
        round.calibration = calibration;
        round.limit = calibrationLimit ? calibrationLimit : 64;
        round.perChannel = weightsGranularity == "per-channel";
        round.progress = !quiet;
        pm.addPass(refold::createQuantRound(round));
      }
      if (rangeSearchBudget > 0) {
        refold::QuantSearchRangesOptions search;
        search.calibration = calibration;
        search.limit = calibrationLimit;
        search.budgetGmacs = rangeSearchBudget;
        search.activations = activationsType;
        search.weights = weightsGranularity;
        search.biasCorrection = biasCorrection;
        search.keepFloat = keepFloat; // a view: the options outlive the pass manager
        search.progress = !quiet;
        pm.addPass(refold::createQuantSearchRanges(search));
      }
    }
    if (failed(pm.run(module)))
      return mlir::failure();
    std::vector<std::string> kept(keepFloat.begin(), keepFloat.end());
    std::vector<std::pair<std::string, double>> autoKept; // (layer, SQNR gain)
    if (maxFloatLayers > 0) {
      auto chosen = chooseFloatLayers(module, *floatModel, kept, maxFloatLayers);
      if (!chosen)
        return fail("--max-float-layers: " + toString(chosen.takeError())), mlir::failure();
      autoKept = std::move(*chosen);
      for (auto &[layer, gain] : autoKept)
        kept.push_back(layer);
    }
    if (failed(rewriteQDQ(module, kept)))
      return mlir::failure();
    // The layers --max-float-layers chose say so.
    module.walk([&](mlir::Operation *op) {
      std::string name = layerKey(op);
      for (auto &[layer, gain] : autoKept)
        if (!name.empty() && name == layer)
          op->setAttr("refold.quant_skipped",
                      mlir::StringAttr::get(op->getContext(),
                                            formatv("kept in float by --max-float-layers (output "
                                                    "SQNR {0} dB)",
                                                    format("%+.1f", gain))
                                                .str()));
    });
    // What was quantized and what stayed float, then the recorded ranges go:
    // they are not part of the model.
    unsigned quantized = 0;
    // Reasons without their per-layer detail ("(output SQNR +0.7 dB)"), so
    // the summary says each once: count and details.
    std::map<std::string, std::pair<unsigned, std::vector<std::string>>> skipped;
    std::vector<std::pair<std::string, std::string>> keptFloat; // (layer, why)
    module.walk([&](mlir::Operation *op) {
      if (isa<refold::ir::ConvOp, refold::ir::GemmOp, refold::ir::MatMulOp>(op)) {
        if (auto reason = op->getAttrOfType<mlir::StringAttr>("refold.quant_skipped")) {
          auto [general, detail] = reason.getValue().split(" (");
          auto &entry = skipped[general.str()];
          ++entry.first;
          if (!detail.empty() && !llvm::is_contained(entry.second, detail.drop_back()))
            entry.second.push_back(detail.drop_back().str());
          keptFloat.push_back({refold::ir::describeNode(op, /*outputFallback=*/true), reason.str()});
        } else {
          ++quantized;
        }
      }
      for (llvm::StringRef attr : std::initializer_list<llvm::StringRef>{
               refold::quant::kRangesAttr, refold::quant::kInputRangesAttr,
               refold::quant::kMeansAttr, refold::quant::kInputMeansAttr, "refold.quant_skipped"})
        op->removeAttr(attr);
    });
    if (!quiet) {
      out() << "refold: quantized " << quantized << " Conv/Gemm/MatMul to int8 ("
             << activationsType << " activations, " << weightsGranularity << " weights)";
      for (auto &[reason, entry] : skipped) {
        out() << "; " << entry.first << " left in float: " << reason;
        if (!entry.second.empty())
          out() << " (" << llvm::join(entry.second, "; ") << ")";
      }
      out() << "\n";
    }
    if (!quantReport && quantReportJson.empty())
      return mlir::success();
    uint64_t intBytes = weightBytes(module);
    if (calibration.empty()) {
      // Nothing to run the two models on: say so, and report what is known.
      if (quantReport) {
        out() << "quantization cost not measured: no calibration data (pass --calibration to "
                  "measure output and per-layer SQNR)\n";
        out() << "  weights: " << floatBytes << " -> " << intBytes << " bytes ("
               << format("%.2f", floatBytes ? double(intBytes) / double(floatBytes) : 1.0)
               << "x)\n";
        for (const auto &[layer, why] : keptFloat)
          out() << "    " << layer << ": kept in float (" << why << ")\n";
      }
      if (!quantReportJson.empty()) {
        json::Array floats;
        for (const auto &[layer, why] : keptFloat)
          floats.push_back(json::Object{{"layer", layer}, {"reason", why}});
        json::Object root{{"calibration_sets", 0},
                          {"data_free", true},
                          {"activations", std::string(activationsType)},
                          {"weights", std::string(weightsGranularity)},
                          {"quantized_layers", int64_t(quantized)},
                          {"outputs", json::Array()},
                          {"layers", json::Array()},
                          {"kept_float", std::move(floats)},
                          {"weight_bytes_before", int64_t(floatBytes)},
                          {"weight_bytes_after", int64_t(intBytes)}};
        return writeReportJson(std::move(root));
      }
      return mlir::success();
    }
    auto data = refold::quant::CalibrationData::open(calibration, module, calibrationLimit);
    if (!data)
      return fail(toString(data.takeError())), mlir::failure();
    constexpr size_t kReportSets = 32;
    auto cost = refold::quant::measureCost(*floatModel, module, *data, kReportSets);
    if (!cost)
      return fail("--quant-report: " + toString(cost.takeError())), mlir::failure();
    // JSON has no infinity: an error-free output's SQNR is null.
    auto dB = [](double v) { return std::isfinite(v) ? json::Value(v) : json::Value(nullptr); };
    if (quantReport) {
      out() << "quantization cost over " << cost->sets << " calibration input set"
             << (cost->sets == 1 ? "" : "s") << " (the float -O2 model as reference):\n";
      for (const auto &o : cost->outputs) {
        out() << "  output '" << o.name << "': SQNR " << format("%.1f", o.sqnrDb)
               << " dB, max abs error " << format("%.3g", o.maxAbsError);
        if (o.top1Agreement >= 0)
          out() << ", top-1 agreement " << format("%.1f", 100 * o.top1Agreement) << "%";
        out() << "\n";
      }
      out() << "  weights: " << floatBytes << " -> " << intBytes << " bytes ("
             << format("%.2f", floatBytes ? double(intBytes) / double(floatBytes) : 1.0) << "x)\n";
      out() << "  layers (output SQNR graph-wise, weight SQNR, quantized output range):\n";
      for (const auto &l : cost->layers) {
        out() << "    " << l.name << ": " << format("%.1f", l.sqnrDb) << " dB, weight "
               << format("%.1f", l.weightSqnrDb) << " dB, ";
        if (l.floatOutput)
          out() << "float output\n";
        else
          out() << "range [" << format("%.4g", l.rangeMin) << ", " << format("%.4g", l.rangeMax)
                 << "]\n";
      }
      for (const auto &[layer, why] : keptFloat)
        out() << "    " << layer << ": kept in float (" << why << ")\n";
    }
    if (!quantReportJson.empty()) {
      json::Array outputs, layers, floats;
      for (const auto &o : cost->outputs) {
        json::Object entry{{"name", o.name}, {"sqnr_db", dB(o.sqnrDb)},
                           {"max_abs_error", o.maxAbsError}};
        if (o.top1Agreement >= 0)
          entry["top1_agreement"] = o.top1Agreement;
        outputs.push_back(std::move(entry));
      }
      for (const auto &l : cost->layers)
        layers.push_back(json::Object{{"output", l.name},
                                      {"weight", l.weightName},
                                      {"sqnr_db", dB(l.sqnrDb)},
                                      {"weight_sqnr_db", dB(l.weightSqnrDb)},
                                      {"range", l.floatOutput ? json::Value(nullptr)
                                                              : json::Array{l.rangeMin, l.rangeMax}}});
      for (const auto &[layer, why] : keptFloat)
        floats.push_back(json::Object{{"layer", layer}, {"reason", why}});
      json::Object root{{"calibration_sets", int64_t(cost->sets)},
                        {"data_free", false},
                        {"activations", std::string(activationsType)},
                        {"weights", std::string(weightsGranularity)},
                        {"quantized_layers", int64_t(quantized)},
                        {"outputs", std::move(outputs)},
                        {"layers", std::move(layers)},
                        {"kept_float", std::move(floats)},
                        {"weight_bytes_before", int64_t(floatBytes)},
                        {"weight_bytes_after", int64_t(intBytes)}};
      return writeReportJson(std::move(root));
    }
    return mlir::success();
  }

  /// Imports the input (ONNX, textual ONNX or MLIR).
  mlir::OwningOpRef<mlir::ModuleOp> importInput(mlir::MLIRContext &context) {
    if (StringRef(inputFile).ends_with(".mlir"))
      return mlir::parseSourceFile<mlir::ModuleOp>(inputFile, &context);
    uint64_t bytes = 0;
    bool large = !sys::fs::file_size(inputFile, bytes) && bytes > (32u << 20);
    auto start = std::chrono::steady_clock::now();
    if (large)
      progress("importing " + inputFile + " (" + Twine(bytes >> 20) + " MiB)");
    auto done = llvm::make_scope_exit([&] {
      if (large)
        progress("imported in " + formatNumber(secondsSince(start)) + " s");
    });
    refold::ImportOptions importOptions;
    importOptions.inferShapes = o.shapeInference;
    auto imported = refold::importONNXFile(inputFile, context, importOptions, [this](const Twine &m) {
      warn(inputFile + ": " + m);
    });
    if (!imported) {
      fail(inputFile + ": " + toString(imported.takeError()));
      return nullptr;
    }
    return std::move(*imported);
  }

  /// The -O pipeline, or --pass-pipeline; runs it on `module`.
  /// `keepAlive`: another module whose weights must stay (the original,
  /// for --verify).
  int optimize(mlir::ModuleOp module, mlir::Operation *keepAlive = nullptr) {
    mlir::PassManager pm(module.getContext(), mlir::ModuleOp::getOperationName());
    if (!passPipeline.empty()) {
      std::string parseError;
      raw_string_ostream errorStream(parseError);
      auto parsed = mlir::parsePassPipeline(passPipeline, errorStream);
      if (failed(parsed))
        return fail("invalid --pass-pipeline: " +
                    StringRef(parseError).trim().split('\n').first);
      if (parsed->getOpAnchorName() != mlir::ModuleOp::getOperationName())
        return fail("--pass-pipeline must be anchored on builtin.module, e.g. "
                    "'builtin.module(func.func(onnx-cleanup))'");
      static_cast<mlir::OpPassManager &>(pm) = *parsed;
    } else {
      if (mergePolicy != "profitable" && mergePolicy != "always" && mergePolicy != "never")
        return fail("--merge-policy must be profitable, always or never");
      refold::PipelineOptions pipelineOptions;
      pipelineOptions.mergePolicy = mergePolicy;
      refold::OptLevel level = o.level == refold::Level::O0   ? refold::OptLevel::O0
                               : o.level == refold::Level::O1 ? refold::OptLevel::O1
                                                              : refold::OptLevel::O2;
      refold::buildRefoldPipeline(pm, level, pipelineOptions);
    }
    if (explain) {
      refold::ExplainLog::get().enable();
      // Record which pass refuses; one graph, so nothing runs in parallel.
      struct PassNamer : mlir::PassInstrumentation {
        void runBeforePass(mlir::Pass *pass, mlir::Operation *) override {
          refold::ExplainLog::get().setPass(pass->getArgument());
        }
      };
      pm.addInstrumentation(std::make_unique<PassNamer>());
    }
    // A fold leaves the weights it replaced in the context's resources: free
    // them as passes go, or the pipeline's peak holds every weight twice.
    struct ReleaseReplacedWeights : mlir::PassInstrumentation {
      std::vector<mlir::Operation *> roots;
      void runAfterPass(mlir::Pass *, mlir::Operation *op) override {
        refold::ir::releaseUnusedBlobs(op->getContext(), roots);
      }
    };
    auto release = std::make_unique<ReleaseReplacedWeights>();
    release->roots.push_back(module);
    if (keepAlive)
      release->roots.push_back(keepAlive);
    pm.addInstrumentation(std::move(release));
    return failed(pm.run(module)) ? 1 : 0;
  }

  /// A context whose errors and warnings reach the user as one line each.
  struct Context {
    mlir::MLIRContext context;
    mlir::ScopedDiagnosticHandler diagnostics;
    Context(const mlir::DialectRegistry &registry, Session &session)
        : context(registry), diagnostics(&context, [&session](mlir::Diagnostic &diag) {
            if (diag.getSeverity() == mlir::DiagnosticSeverity::Error)
              session.fail(session.inputFile + ": " + diag.str());
            else if (diag.getSeverity() == mlir::DiagnosticSeverity::Warning)
              session.warn(session.inputFile + ": " + diag.str());
            return mlir::success();
          }) {
      context.loadAllAvailableDialects();
    }
  };

  static const mlir::DialectRegistry &registry() {
    static mlir::DialectRegistry *registry = [] {
      auto *r = new mlir::DialectRegistry();
      refold::registerRefoldDialects(*r);
      refold::registerRefoldPasses(); // --pass-pipeline names them
      return r;
    }();
    return *registry;
  }

  void fillReport(const refold::ModelStats &before, const refold::ModelStats &after) {
    report.nodesBefore = before.nodes;
    report.nodesAfter = after.nodes;
    report.macsBefore = before.macs;
    report.macsAfter = after.macs;
    report.parameterBytesBefore = before.parameterBytes;
    report.parameterBytesAfter = after.parameterBytes;
    report.summary = "refold: " + inputFile + " -> " + outputFile + ": " +
                     refold::statsSummary(before, after);
  }

public:
  int runOnly() {
    if (outputFile.empty())
      return fail("run needs an output directory (-o DIR)");
    Context ctx(registry(), *this);
    mlir::OwningOpRef<mlir::ModuleOp> module = importInput(ctx.context);
    if (!module)
      return 1;
    // The C engine runs refold's C of the optimized model: the pipeline first.
    if (engine == "c" && optimize(*module))
      return 1;
    return runModel(*module);
  }

  int compileModel() {
    if (!checkQuantOptions())
      return 1;
    bool reportOnly = stats || !statsJson.empty() || verify;
    if (outputFile.empty() && !reportOnly)
      return fail("no output file given (-o OUT.onnx)");
    refold::Target target = o.target;
    if (target == refold::Target::Auto)
      target = StringRef(outputFile).ends_with(".c")      ? refold::Target::C
               : StringRef(outputFile).ends_with(".mlir") ? refold::Target::MLIR
                                                           : refold::Target::ONNX;
    Context ctx(registry(), *this);
    mlir::OwningOpRef<mlir::ModuleOp> module = importInput(ctx.context);
    if (!module)
      return 1;

    mlir::OwningOpRef<mlir::ModuleOp> original;
    if (verify)
      original = module->clone();
    // Exporters compute some shapes at run time (torch's ZeroPad2d) and inputs
    // may have symbolic sizes: both models are costed with the dims sized and
    // the shapes folded, or the comparison undercounts.
    refold::ModelStats statsBefore = costedStats(*module);
    if (optimize(*module, original ? original->getOperation() : nullptr))
      return 1;
    if (explain)
      refold::ExplainLog::get().print(out());

    refold::ModelStats statsAfter = costedStats(*module);
    fillReport(statsBefore, statsAfter);
    if (q.enabled && failed(quantizeModel(*module)))
      return 1;

    std::vector<refold::VerifyResult> verifyResults;
    bool verifyFailed = false;
    if (verify) {
      if (!verifyModels(*original, *module, verifyResults))
        return 1;
      for (const auto &r : verifyResults) {
        bool bad = !r.passed;
        verifyFailed |= bad;
        double allowed = verifyAtol + verifyTol * r.maxMagnitude;
        report.verified.push_back({r.output, r.maxAbs, r.maxRel, allowed, r.passed});
        out() << "verify: output '" << r.output << "': max abs error " << format("%.3g", r.maxAbs)
              << " (allowed " << format("%.3g", allowed) << "), max relative error "
              << format("%.3g", r.maxRel) << (bad ? "  FAILED" : "") << "\n";
      }
    }
    auto fixedPointRuns = refold::FixedPointReport::get().runs();
    if (stats) {
      refold::printStatsTable(out(), statsBefore, statsAfter);
      for (const auto &run : fixedPointRuns)
        out() << "  fixed point: @" << run.function
              << (run.converged ? " stopped changing after " : " still changing after ")
              << run.rounds << (run.rounds == 1 ? " round" : " rounds") << " (at most "
              << run.maxRounds << ")\n";
    }
    if (!statsJson.empty()) {
      json::Array rounds;
      for (const auto &run : fixedPointRuns)
        rounds.push_back(json::Object{{"function", run.function},
                                      {"rounds", int64_t(run.rounds)},
                                      {"max_rounds", int64_t(run.maxRounds)},
                                      {"converged", run.converged}});
      json::Object extra;
      extra["fixed_point"] = std::move(rounds);
      auto status = writeToOutput(statsJson, [&](raw_ostream &os) {
        refold::printStatsJson(os, statsBefore, statsAfter, verify ? &verifyResults : nullptr,
                               std::move(extra));
        return Error::success();
      });
      if (status)
        return fail(statsJson + ": " + toString(std::move(status)));
    }
    if (verifyFailed)
      return fail("verification failed: the optimized model's outputs differ by more than " +
                  toleranceText() + "; no output written");
    auto summary = [&] {
      if (!quiet)
        out() << report.summary << "\n";
    };
    if (outputFile.empty())
      return 0;

    if (target == refold::Target::C) {
      std::string prefix = cPrefix.empty()
                               ? refold::cemit::cIdentifier(sys::path::stem(outputFile))
                               : std::string(cPrefix);
      if (prefix != refold::cemit::cIdentifier(prefix))
        return fail("--c-prefix must be a C identifier, got '" + prefix + "'");
      auto arena = refold::cemit::writeC(*module, outputFile, prefix, pinnedDims(),
                                         o.cRequant == "fixed");
      if (!arena)
        return fail(inputFile + ": " + toString(arena.takeError()) + "; no output written");
      if (explain)
        for (const std::string &note : arena->notes)
          out() << "refold: C int8: " << note << "\n";
      report.arenaBytes = arena->arenaBytes;
      report.arenaLowerBoundBytes = arena->lowerBoundBytes;
      report.arenaPerTensorBytes = arena->perTensorBytes;
      summary();
      if (!quiet)
        out() << "refold: C arena " << arena->arenaBytes << " bytes (lower bound "
              << arena->lowerBoundBytes << ", one buffer per tensor " << arena->perTensorBytes
              << "), " << arena->steps << " steps\n";
      return 0;
    }
    if (target == refold::Target::MLIR) {
      auto status = writeToOutput(outputFile, [&](raw_ostream &os) {
        module->print(os);
        return Error::success();
      });
      if (status)
        return fail(outputFile + ": " + toString(std::move(status)));
      summary();
      return 0;
    }

    refold::ExportOptions exportOptions;
    exportOptions.externalData = o.externalData;
    exportOptions.externalDataThreshold = o.externalDataThreshold;
    exportOptions.runChecker = o.check;
    if (o.inlineLimit)
      exportOptions.inlineLimit = o.inlineLimit;
    exportOptions.releaseWeights = true; // the module is not used after export
    if (auto err = refold::exportONNXFile(*module, outputFile, exportOptions,
                                          [this](const Twine &m) { warn(outputFile + ": " + m); }))
      return fail(outputFile + ": " + toString(std::move(err)));
    summary();
    return 0;
  }
};
} // namespace

namespace refold {
// The pass registry and the explain/fixed-point logs are process-wide.
static std::mutex &driverMutex() {
  static std::mutex mutex;
  return mutex;
}

Result compile(const std::string &input, const std::string &output, const Options &options) {
  std::lock_guard<std::mutex> lock(driverMutex());
  if (input.empty())
    return Result{false, "no input model given", {}};
  Session session(options, input, output);
  return session.finish(session.compileModel());
}

Result run(const std::string &input, const std::string &outputDir, const Options &options) {
  std::lock_guard<std::mutex> lock(driverMutex());
  if (input.empty())
    return Result{false, "no input model given", {}};
  Session session(options, input, outputDir);
  return session.finish(session.runOnly());
}

const char *version() { return REFOLD_VERSION; }
} // namespace refold
