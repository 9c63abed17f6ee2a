//===- refold.cpp - the refold driver ---------------------------------------===//
//
//   refold IN.onnx -o OUT.onnx [-O0|-O1|-O2] [--pass-pipeline=...]
//
// Imports the model, runs the optimization pipeline and writes the result
// (ONNX, or MLIR when the output ends in .mlir). Errors are one line on
// stderr and a non-zero exit; the output file is written atomically.
//
//===----------------------------------------------------------------------===//

#include "refold/Analysis/ModelStats.h"
#include "refold/CEmitter/CEmitter.h"
#include "refold/CEmitter/CEngine.h"
#include "refold/Dialect/ONNX/ONNXOps.h"
#include "refold/Interpreter/Interpreter.h"
#include "refold/Passes/Explain.h"
#include "refold/Passes/FixedPointReport.h"
#include "refold/Passes/Passes.h"
#include "refold/Quantizer/Quantizer.h"
#include "refold/Transforms/WeightUtils.h"
#include "refold/Translation/ONNXModel.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/AsmState.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassInstrumentation.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>
#include <set>

using namespace llvm;

namespace {
cl::OptionCategory refoldCategory("refold options");

cl::opt<std::string> inputFile(cl::Positional, cl::desc("<input .onnx | .onnxtxt | .mlir>"),
                               cl::cat(refoldCategory));
cl::opt<std::string> outputFile("o", cl::desc("Output file (.onnx; .c for C with its .h; .mlir for the IR)"),
                                cl::value_desc("file"), cl::cat(refoldCategory));
cl::opt<refold::OptLevel> optLevel(
    cl::desc("Optimization level (default -O2):"), cl::init(refold::OptLevel::O2),
    cl::values(clEnumValN(refold::OptLevel::O0, "O0", "no rewrite: a pure round-trip"),
               clEnumValN(refold::OptLevel::O1, "O1", "cleanup and folding"),
               clEnumValN(refold::OptLevel::O2, "O2", "everything exact and profitable")),
    cl::cat(refoldCategory));
cl::opt<std::string> passPipeline(
    "pass-pipeline",
    cl::desc("Run this textual pass pipeline instead of the -O pipeline, "
             "e.g. 'builtin.module(func.func(onnx-cleanup))'"),
    cl::cat(refoldCategory));
cl::opt<std::string> mergePolicy(
    "merge-policy", cl::init("profitable"),
    cl::desc("Sequential conv merges: profitable (a cost model of MACs and memory traffic "
             "decides), always, or never"),
    cl::cat(refoldCategory));
cl::opt<bool> explain("explain",
                      cl::desc("List the rewrites that were refused, with the reason and the nodes"),
                      cl::cat(refoldCategory));
cl::opt<bool> externalData("external-data",
                           cl::desc("Store large tensors in <output>.data next to the model"),
                           cl::cat(refoldCategory));
cl::opt<uint64_t> externalDataThreshold(
    "external-data-threshold", cl::init(1024),
    cl::desc("Smallest tensor in bytes that --external-data moves out (default 1024)"),
    cl::cat(refoldCategory));
cl::opt<uint64_t> inlineLimit(
    "inline-limit", cl::Hidden,
    cl::init(refold::ExportOptions().inlineLimit),
    cl::desc("Tensor bytes above which the output uses external data on its own "
             "(default: what fits in one 2 GiB protobuf message)"),
    cl::cat(refoldCategory));
cl::opt<bool> noCheck("no-check", cl::desc("Do not run onnx::checker on the output"),
                      cl::cat(refoldCategory));
cl::opt<bool> quiet("quiet", cl::desc("Do not print the one-line summary"),
                    cl::cat(refoldCategory));
cl::opt<bool> noShapeInference("no-shape-inference",
                               cl::desc("Do not run ONNX shape inference on import"),
                               cl::cat(refoldCategory));

cl::list<std::string> inputValues(
    "input", cl::desc("Input tensor for --verify and run: NAME=FILE (.pb TensorProto or .npy)"),
    cl::value_desc("NAME=FILE"), cl::cat(refoldCategory));
cl::list<std::string> dimValues(
    "dim", cl::desc("Size of a symbolic dimension of generated inputs: NAME=VALUE "
                    "(dynamic dimensions without one are 1)"),
    cl::value_desc("NAME=VALUE"), cl::cat(refoldCategory));
cl::opt<uint64_t> seed("seed", cl::init(0), cl::desc("Seed of generated random inputs"),
                       cl::cat(refoldCategory));
cl::opt<bool> verify("verify",
                     cl::desc("Run the original and the optimized model in the interpreter "
                              "and fail when their outputs differ"),
                     cl::cat(refoldCategory));
cl::opt<unsigned> verifyRuns("verify-runs", cl::init(3),
                             cl::desc("Random input sets --verify tries (default 3)"),
                             cl::cat(refoldCategory));
// Outputs are judged allclose-style: |original - optimized| <= atol + rtol *
// max |original|, so an output near zero cannot fail on rounding noise.
cl::opt<double> verifyTol(
    "verify-tol", cl::init(1e-5),
    cl::desc("rtol: accepted error relative to the output's max magnitude (default 1e-5)"),
    cl::cat(refoldCategory));
cl::alias verifyRtol("verify-rtol", cl::desc("Alias for --verify-tol"),
                     cl::aliasopt(verifyTol));
// float32 rounding: refold's folds move outputs by up to about 4e-7 on the
// corpus (bench/rounding_drift.sh; onnxruntime's own fusions by as much), so
// the floor sits above that and far below a wrong rewrite's error.
cl::opt<double> verifyAtol(
    "verify-atol", cl::init(1e-6),
    cl::desc("atol: accepted absolute error on top of rtol x max |output| (default 1e-6)"),
    cl::cat(refoldCategory));
// LLVM owns the names -stats and -stats-json; main() maps ours onto these.
cl::opt<bool> stats("refold-stats", cl::desc("Print the before/after report (--stats)"),
                    cl::cat(refoldCategory));
cl::opt<std::string> statsJson("refold-stats-json",
                               cl::desc("Write the report as JSON to this file (--stats-json)"),
                               cl::value_desc("file"), cl::cat(refoldCategory));

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

int fail(const Twine &message) {
  outs().flush(); // keep report lines before the error
  WithColor::error(errs(), "refold") << oneLine(message) << "\n";
  return 1;
}

void warn(const Twine &message) {
  WithColor::warning(errs(), "refold") << oneLine(message) << "\n";
}

std::string formatNumber(double v) {
  char buffer[32];
  snprintf(buffer, sizeof(buffer), "%g", v);
  return buffer;
}

/// allclose-style: within atol + rtol * the output's max magnitude.
bool withinTolerance(double maxAbs, double maxMagnitude) {
  return maxAbs <= verifyAtol + verifyTol * maxMagnitude;
}

std::string toleranceText() {
  return "atol + rtol x max |original| (--verify-atol " + formatNumber(verifyAtol) +
         ", --verify-tol " + formatNumber(verifyTol) + ")";
}


cl::opt<std::string> cPrefix("c-prefix",
                            cl::desc("Prefix of the names in emitted C (default: the output "
                                     "file's stem made a C identifier)"),
                            cl::value_desc("NAME"), cl::cat(refoldCategory));
cl::opt<std::string> engine("engine", cl::init("interpreter"),
                            cl::desc("run: interpreter (the model as given) or c (refold's "
                                     "C of the optimized model, compiled and run)"),
                            cl::cat(refoldCategory));
cl::opt<std::string> ccCommand("cc", cl::desc("run --engine=c: the C compiler (default: $CC, else cc)"),
                               cl::cat(refoldCategory));
cl::opt<std::string> ccFlags("cflags", cl::init("-O2"),
                             cl::desc("run --engine=c: flags for the C compiler (default -O2)"),
                             cl::cat(refoldCategory));

cl::opt<std::string> runUnder(
    "run-under",
    cl::desc("run --engine=c: run the compiled model under this command, e.g. "
             "\"qemu-aarch64 -L /usr/aarch64-linux-gnu\" with --cc aarch64-linux-gnu-gcc"),
    cl::cat(refoldCategory));
cl::opt<std::string> compareDir(
    "compare",
    cl::desc("run: compare the outputs with DIR/<output>.pb (another run's); fail when the max "
             "abs difference / max |expected| exceeds --verify-tol"),
    cl::value_desc("DIR"), cl::cat(refoldCategory));

cl::opt<bool> printOutputs("print", cl::desc("run: also print the outputs' values"),
                           cl::cat(refoldCategory));
cl::OptionCategory quantCategory("quantization options");
cl::opt<std::string> quantize("quantize",
                              cl::desc("Quantize after the pipeline: int8 (QDQ: int8 weights, "
                                       "8-bit activations, int32 bias)"),
                              cl::cat(quantCategory));
cl::opt<std::string> calibration(
    "calibration",
    cl::desc("Calibration data: a directory of NAME.npy files, of test_data_set_*/input_*.pb "
             "sets, or one .npy of samples (single-input models)"),
    cl::value_desc("path"), cl::cat(quantCategory));
cl::opt<std::string> calibrationMethod(
    "calibration-method", cl::init("percentile"),
    cl::desc("How each activation's range is chosen: minmax, percentile (default; measured best "
             "on the trained corpus, docs/quantization.md), entropy or mse (clipped ranges from a "
             "streamed histogram)"),
    cl::cat(quantCategory));
cl::opt<double> calibrationPercentile(
    "calibration-percentile", cl::init(99.99),
    cl::desc("For --calibration-method=percentile: share of values (%) inside the range"),
    cl::cat(quantCategory));
cl::list<double> inputRange(
    "input-range", cl::CommaSeparated,
    cl::desc("Data-free quantization (no --calibration): the range of the model's float inputs "
             "(default -3,3: standardized data)"),
    cl::value_desc("LO,HI"), cl::cat(quantCategory));
cl::opt<double> dataFreeSigmas(
    "data-free-sigmas", cl::init(6),
    cl::desc("Data-free quantization: standard deviations each side of a channel's mean (from "
             "its BatchNorm) an activation range covers"),
    cl::cat(quantCategory));
cl::opt<bool> biasCorrection(
    "bias-correction", cl::init(true),
    cl::desc("Correct each quantized layer's bias for the mean shift its int8 weight causes, "
             "from the input's channel means (measured, or from BatchNorm statistics when "
             "data-free; default on)"),
    cl::cat(quantCategory));
cl::opt<std::string> weightRounding(
    "weight-rounding", cl::init("nearest"),
    cl::desc("How int8 conv weights are rounded with --calibration: nearest (default) or gptq "
             "(each weight's rounding error moved onto the weights not yet rounded, through the "
             "calibration inputs' second moments; slow on large models)"),
    cl::cat(quantCategory));
cl::opt<unsigned> maxFloatLayers(
    "max-float-layers", cl::init(0),
    cl::desc("Keep in float the K quantizable layers whose staying float raises the output "
             "SQNR most (each measured alone on the calibration data; needs --calibration)"),
    cl::value_desc("K"), cl::cat(quantCategory));
cl::opt<uint64_t> calibrationLimit("calibration-limit", cl::init(0),
                                   cl::desc("Use at most N calibration input sets (0: all)"),
                                   cl::cat(quantCategory));
cl::opt<std::string> activationsType("activations", cl::init("uint8"),
                                     cl::desc("Activation type: uint8 (default; what onnxruntime "
                                              "runs fastest on x86) or int8"),
                                     cl::cat(quantCategory));
cl::opt<std::string> weightsGranularity("weights", cl::init("per-channel"),
                                        cl::desc("Weight scales: per-channel or per-tensor"),
                                        cl::cat(quantCategory));
cl::list<std::string> keepFloat("keep-float", cl::CommaSeparated,
                                cl::desc("Leave these Conv/Gemm/MatMul nodes in float (node or "
                                         "output names, comma-separated)"),
                                cl::value_desc("NODE,..."), cl::cat(quantCategory));
cl::opt<bool> equalize("equalize", cl::init(true),
                       cl::desc("Cross-layer equalization of Conv -> (Relu) -> Conv pairs before "
                                "calibration (default on; --equalize=false to skip)"),
                       cl::cat(quantCategory));
cl::opt<bool> quantReport("quant-report",
                          cl::desc("Print what quantization cost, measured on the calibration "
                                   "data: per output SQNR, max error, top-1 agreement"),
                          cl::cat(quantCategory));
cl::opt<std::string> quantReportJson("quant-report-json",
                                     cl::desc("Write the quantization report as JSON to FILE"),
                                     cl::value_desc("file"), cl::cat(quantCategory));
cl::opt<unsigned> timeRuns("time-runs", cl::init(0), cl::Hidden,
                           cl::desc("run: also time this many runs and print the median"),
                           cl::cat(refoldCategory));

/// Reads --dim.
bool parseDims(llvm::StringMap<int64_t> &dims) {
  for (const std::string &entry : dimValues) {
    auto [name, value] = StringRef(entry).split('=');
    int64_t size;
    if (name.empty() || value.getAsInteger(10, size) || size < 0) {
      fail("--dim expects NAME=VALUE with VALUE >= 0, got '" + entry + "'");
      return false;
    }
    dims[name] = size;
  }
  return true;
}

/// Reads --input and --dim.
/// Says which size a dynamic input dimension took by default, once per
/// dimension however many runs (and the cost report) use it.
void warnDefaultDim(StringRef input, int64_t axis, StringRef param, int64_t size) {
  static std::set<std::string> said;
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
  llvm::StringMap<int64_t> dims;
  if (!parseDims(dims))
    return counted;
  mlir::OwningOpRef<mlir::ModuleOp> sized = module.clone();
  // Said with the full report; the one-line summary only uses them.
  bool report = stats || !statsJson.empty();
  auto fallback = [report](StringRef input, int64_t axis, StringRef param, int64_t rank) {
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

bool parseRunInputs(refold::interp::TensorMap &inputs, refold::interp::RunOptions &options) {
  for (const std::string &entry : inputValues) {
    auto [name, file] = StringRef(entry).split('=');
    if (name.empty() || file.empty()) {
      fail("--input expects NAME=FILE, got '" + entry + "'");
      return false;
    }
    auto tensor = refold::interp::readTensorFile(file);
    if (!tensor) {
      fail(toString(tensor.takeError()));
      return false;
    }
    inputs[name.str()] = *tensor;
  }
  if (!parseDims(options.dims))
    return false;
  options.seed = seed;
  options.onDefaultDim = warnDefaultDim;
  return true;
}

/// A file name for a tensor name.
std::string fileNameFor(StringRef name) {
  std::string out;
  for (char c : name)
    out += (isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.') ? c : '_';
  return out.empty() ? "unnamed" : out;
}

/// `refold run MODEL -o DIR`: interpreter outputs (and generated inputs) as .pb files.
int runModel(mlir::ModuleOp module) {
  if (outputFile.empty())
    return fail("run needs an output directory (-o DIR)");
  refold::interp::TensorMap inputs;
  refold::interp::RunOptions options;
  if (!parseRunInputs(inputs, options))
    return 1;
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
    cOptions.cc = ccCommand;
    cOptions.cflags = ccFlags;
    cOptions.timeRuns = timeRuns;
    cOptions.runUnder = runUnder;
    double ms = -1;
    outputs = refold::cemit::runC(module, *bound, cOptions, &ms);
    if (!outputs)
      return fail(inputFile + ": " + toString(outputs.takeError()));
    if (timeRuns > 1)
      outs() << "c: median " << formatNumber(ms) << " ms over " << timeRuns << " runs\n";
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
    outs() << "interpreter: median " << formatNumber(times[times.size() / 2]) << " ms over "
           << timeRuns << " runs\n";
    std::vector<std::pair<double, std::string>> byTime;
    for (auto &[op, ms] : profile)
      byTime.push_back({ms / timeRuns, op});
    std::sort(byTime.rbegin(), byTime.rend());
    for (auto &[ms, op] : byTime)
      outs() << "  " << op << ": " << formatNumber(ms) << " ms per run\n";
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
      outs() << "compare: output '" << name << "': max abs error " << format("%.3g", maxAbs)
             << " (allowed " << format("%.3g", verifyAtol + verifyTol * maxMag)
             << "), max relative error " << format("%.3g", rel) << (bad ? "  FAILED" : "") << "\n";
    }
    if (failed)
      return fail("outputs differ from " + compareDir + " by more than " + toleranceText());
  }
  if (printOutputs)
    for (auto &[name, tensor] : *outputs) {
      outs() << name << ": " << refold::interp::dtypeName(tensor.dtype())
             << refold::interp::shapeString(tensor.shape()) << " =";
      for (int64_t i = 0; i < tensor.size(); ++i)
        outs() << " " << formatNumber(tensor.asDouble(i));
      outs() << "\n";
    }
  if (!quiet)
    outs() << "refold: wrote " << outputs->size() << " output(s)"
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
  for (unsigned r = 0; r < runs; ++r) {
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
    if (inputValues.size() && given.size() == inputs.size())
      break; // every input was given: more runs would repeat this one
  }
  for (auto &[name, r] : worst)
    results.push_back(r);
  return true;
}

void printVersion(raw_ostream &os) {
  os << "refold " << REFOLD_VERSION << " (MLIR " << LLVM_VERSION_STRING << ")\n";
}
} // namespace

/// Bytes of the graph's initializers (the model's weights).
static uint64_t weightBytes(mlir::ModuleOp module) {
  uint64_t bytes = 0;
  module.walk([&](refold::ir::InitializerOp init) {
    auto type = cast<mlir::ShapedType>(init.getValue().getType());
    bytes += uint64_t(type.getNumElements()) * ((type.getElementTypeBitWidth() + 7) / 8);
  });
  return bytes;
}

/// The quantization flags, checked before any work.
static bool checkQuantOptions() {
  if (quantize.empty())
    return true;
  if (quantize != "int8")
    return fail("--quantize must be int8, got '" + quantize + "'"), false;
  if (calibration.empty()) {
    for (const auto *opt : std::initializer_list<const cl::Option *>{
             &calibrationMethod, &calibrationPercentile, &calibrationLimit, &maxFloatLayers})
      if (opt->getNumOccurrences())
        return fail("--" + opt->ArgStr.str() + " needs --calibration=PATH"), false;
  } else if (inputRange.getNumOccurrences() || dataFreeSigmas.getNumOccurrences()) {
    return fail("--input-range and --data-free-sigmas are for data-free quantization; with "
                "--calibration the ranges are measured"),
           false;
  }
  if (inputRange.getNumOccurrences() && (inputRange.size() != 2 || !(inputRange[0] < inputRange[1])))
    return fail("--input-range expects LO,HI with LO < HI"), false;
  if (!(dataFreeSigmas > 0))
    return fail("--data-free-sigmas must be positive"), false;
  if (!refold::quant::parseRangeMethod(calibrationMethod))
    return fail("--calibration-method must be minmax, percentile, entropy or mse, got '" +
                calibrationMethod + "'"),
           false;
  if (!(calibrationPercentile > 50.0 && calibrationPercentile <= 100.0))
    return fail("--calibration-percentile must be in (50, 100], got " +
                std::to_string(calibrationPercentile.getValue())),
           false;
  if (activationsType != "uint8" && activationsType != "int8")
    return fail("--activations must be uint8 or int8, got '" + activationsType + "'"), false;
  if (weightsGranularity != "per-channel" && weightsGranularity != "per-tensor")
    return fail("--weights must be per-channel or per-tensor, got '" + weightsGranularity + "'"),
           false;
  return true;
}

/// The name --keep-float knows a layer by: its node name, else its output's.
static std::string layerKey(mlir::Operation *op) {
  if (!isa<refold::ir::ConvOp, refold::ir::GemmOp, refold::ir::MatMulOp>(op))
    return "";
  if (auto node = op->getAttrOfType<mlir::StringAttr>(refold::ir::kNodeNameAttr))
    if (!node.getValue().empty())
      return node.str();
  return refold::weights::nameOf(op->getResult(0));
}

/// The QDQ rewrite of a module with recorded ranges, `keep` left float.
static mlir::LogicalResult rewriteQDQ(mlir::ModuleOp module, llvm::ArrayRef<std::string> keep) {
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

/// The mean output SQNR (dB) of `quantModel` against `floatModel`.
static llvm::Expected<double> outputSqnr(mlir::ModuleOp floatModel, mlir::ModuleOp quantModel,
                                         const refold::quant::CalibrationData &data,
                                         size_t sets) {
  auto cost = refold::quant::measureCost(floatModel, quantModel, data, sets);
  if (!cost)
    return cost.takeError();
  double sum = 0;
  for (const auto &o : cost->outputs)
    sum += std::isfinite(o.sqnrDb) ? o.sqnrDb : 200.0;
  return cost->outputs.empty() ? 0.0 : sum / double(cost->outputs.size());
}

/// --max-float-layers: for every layer the rewrite would quantize, the
/// output SQNR with that layer alone kept float, measured on a few
/// calibration sets; the K that gain most.
static llvm::Expected<std::vector<std::pair<std::string, double>>>
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
      errs() << format("refold: --max-float-layers: %zu/%zu layers measured, %.1f s\n", i + 1,
                       candidates.size(), seconds);
  }
  std::stable_sort(gains.begin(), gains.end(),
                   [](const auto &a, const auto &b) { return a.second > b.second; });
  if (gains.size() > k)
    gains.resize(k);
  // A layer whose float copy does not help stays quantized.
  llvm::erase_if(gains, [](const auto &gain) { return gain.second <= 0; });
  return gains;
}

/// Writes --quant-report-json's file (atomically).
static mlir::LogicalResult writeReportJson(json::Object root) {
  auto status = writeToOutput(quantReportJson, [&](raw_ostream &os) {
    os << formatv("{0:2}", json::Value(std::move(root))) << "\n";
    return Error::success();
  });
  if (status)
    return fail(quantReportJson + ": " + toString(std::move(status))), mlir::failure();
  return mlir::success();
}

/// --quantize: calibrate, rewrite to QDQ, report what it cost.
static mlir::LogicalResult quantizeModel(mlir::ModuleOp module) {
  if (equalize) {
    mlir::PassManager prepare(module.getContext(), mlir::ModuleOp::getOperationName());
    prepare.nest<mlir::func::FuncOp>().addPass(refold::createQuantEqualize());
    if (failed(prepare.run(module)))
      return mlir::failure();
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
    if (!quiet) {
      double lo = inputRange.empty() ? -3 : inputRange[0], hi = inputRange.empty() ? 3 : inputRange[1];
      errs() << "refold: no --calibration: quantizing data-free (activation ranges from the "
                "BatchNorm statistics kept in the model; inputs taken as in ["
             << format("%g", lo) << ", " << format("%g", hi) << "]"
             << (inputRange.empty() ? ", set --input-range" : "") << ")\n";
    }
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
    outs() << "refold: quantized " << quantized << " Conv/Gemm/MatMul to int8 ("
           << activationsType << " activations, " << weightsGranularity << " weights)";
    for (auto &[reason, entry] : skipped) {
      outs() << "; " << entry.first << " left in float: " << reason;
      if (!entry.second.empty())
        outs() << " (" << llvm::join(entry.second, "; ") << ")";
    }
    outs() << "\n";
  }
  if (!quantReport && quantReportJson.empty())
    return mlir::success();
  uint64_t intBytes = weightBytes(module);
  if (calibration.empty()) {
    // Nothing to run the two models on: say so, and report what is known.
    if (quantReport) {
      outs() << "quantization cost not measured: no calibration data (pass --calibration to "
                "measure output and per-layer SQNR)\n";
      outs() << "  weights: " << floatBytes << " -> " << intBytes << " bytes ("
             << format("%.2f", floatBytes ? double(intBytes) / double(floatBytes) : 1.0)
             << "x)\n";
      for (const auto &[layer, why] : keptFloat)
        outs() << "    " << layer << ": kept in float (" << why << ")\n";
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
    outs() << "quantization cost over " << cost->sets << " calibration input set"
           << (cost->sets == 1 ? "" : "s") << " (the float -O2 model as reference):\n";
    for (const auto &o : cost->outputs) {
      outs() << "  output '" << o.name << "': SQNR " << format("%.1f", o.sqnrDb)
             << " dB, max abs error " << format("%.3g", o.maxAbsError);
      if (o.top1Agreement >= 0)
        outs() << ", top-1 agreement " << format("%.1f", 100 * o.top1Agreement) << "%";
      outs() << "\n";
    }
    outs() << "  weights: " << floatBytes << " -> " << intBytes << " bytes ("
           << format("%.2f", floatBytes ? double(intBytes) / double(floatBytes) : 1.0) << "x)\n";
    outs() << "  layers (output SQNR graph-wise, weight SQNR, quantized output range):\n";
    for (const auto &l : cost->layers) {
      outs() << "    " << l.name << ": " << format("%.1f", l.sqnrDb) << " dB, weight "
             << format("%.1f", l.weightSqnrDb) << " dB, ";
      if (l.floatOutput)
        outs() << "float output\n";
      else
        outs() << "range [" << format("%.4g", l.rangeMin) << ", " << format("%.4g", l.rangeMax)
               << "]\n";
    }
    for (const auto &[layer, why] : keptFloat)
      outs() << "    " << layer << ": kept in float (" << why << ")\n";
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

int main(int argc, char **argv) {
  InitLLVM y(argc, argv);
  refold::registerRefoldPasses();
  // `refold run MODEL ...` is the interpreter; everything else optimizes.
  bool runMode = argc > 1 && StringRef(argv[1]) == "run";
  std::vector<char *> args(argv, argv + argc);
  if (runMode)
    args.erase(args.begin() + 1);
  std::vector<std::string> renamed;
  renamed.reserve(args.size());
  for (char *&arg : args) {
    StringRef a(arg);
    for (StringRef prefix : {"--stats-json", "-stats-json", "--stats", "-stats"}) {
      if (a == prefix || a.starts_with((prefix + "=").str())) {
        renamed.push_back("--refold-" + a.ltrim('-').str());
        arg = renamed.back().data();
        break;
      }
    }
  }
  argc = args.size();
  argv = args.data();
  cl::HideUnrelatedOptions({&refoldCategory, &quantCategory});
  cl::SetVersionPrinter(printVersion);
  cl::ParseCommandLineOptions(
      argc, argv,
      "refold: rewrites a trained ONNX model into its deploy form\n\n"
      "  refold IN.onnx -o OUT.onnx [-O0|-O1|-O2] [--verify] [--stats]\n"
      "  refold IN.onnx -o OUT.c [-O0|-O1|-O2] [--dim NAME=VALUE]... [--c-prefix NAME]\n"
      "  refold IN.onnx -o OUT.onnx --quantize=int8 --calibration=PATH [--quant-report]\n"
      "  refold run IN.onnx [--engine=interpreter|c] [--input NAME=FILE]... [--dim NAME=VALUE]... -o DIR\n");
  if (!checkQuantOptions())
    return 1;

  if (inputFile.empty())
    return fail("no input model given (see --help)");
  bool reportOnly = stats || !statsJson.empty() || verify;
  if (outputFile.empty() && !runMode && !reportOnly)
    return fail("no output file given (-o OUT.onnx)");

  mlir::DialectRegistry registry;
  refold::registerRefoldDialects(registry);
  mlir::MLIRContext context(registry);
  context.loadAllAvailableDialects();
  // Pass failures and verifier errors reach the user as one line each.
  mlir::ScopedDiagnosticHandler diagnostics(&context, [&](mlir::Diagnostic &diag) {
    if (diag.getSeverity() == mlir::DiagnosticSeverity::Error)
      fail(inputFile + ": " + diag.str());
    else if (diag.getSeverity() == mlir::DiagnosticSeverity::Warning)
      warn(inputFile + ": " + diag.str());
    return mlir::success();
  });

  mlir::OwningOpRef<mlir::ModuleOp> module;
  if (StringRef(inputFile).ends_with(".mlir")) {
    module = mlir::parseSourceFile<mlir::ModuleOp>(inputFile, &context);
    if (!module)
      return 1;
  } else {
    refold::ImportOptions importOptions;
    importOptions.inferShapes = !noShapeInference;
    auto imported = refold::importONNXFile(inputFile, context, importOptions, [](const Twine &m) {
      warn(inputFile + ": " + m);
    });
    if (!imported)
      return fail(inputFile + ": " + toString(imported.takeError()));
    module = std::move(*imported);
  }

  // The C engine runs refold's C of the optimized model: the pipeline first.
  if (runMode && engine != "c")
    return runModel(*module);

  mlir::OwningOpRef<mlir::ModuleOp> original;
  if (verify)
    original = module->clone();
  // Exporters compute some shapes at run time (torch's ZeroPad2d) and inputs
  // may have symbolic sizes: both models are costed with the dims sized and
  // the shapes folded, or the comparison undercounts.
  refold::ModelStats statsBefore = costedStats(*module);
  mlir::PassManager pm(&context, mlir::ModuleOp::getOperationName());
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
    refold::buildRefoldPipeline(pm, optLevel, pipelineOptions);
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
  if (failed(pm.run(*module)))
    return 1;
  if (runMode)
    return runModel(*module);
  if (explain)
    refold::ExplainLog::get().print(outs());

  refold::ModelStats statsAfter = costedStats(*module);
  if (!quantize.empty() && failed(quantizeModel(*module)))
    return 1;

  std::vector<refold::VerifyResult> verifyResults;
  bool verifyFailed = false;
  if (verify) {
    if (!verifyModels(*original, *module, verifyResults))
      return 1;
    for (const auto &r : verifyResults) {
      bool bad = !r.passed;
      verifyFailed |= bad;
      outs() << "verify: output '" << r.output << "': max abs error " << format("%.3g", r.maxAbs)
             << " (allowed " << format("%.3g", verifyAtol + verifyTol * r.maxMagnitude)
             << "), max relative error " << format("%.3g", r.maxRel) << (bad ? "  FAILED" : "")
             << "\n";
    }
  }
  auto fixedPointRuns = refold::FixedPointReport::get().runs();
  if (stats) {
    refold::printStatsTable(outs(), statsBefore, statsAfter);
    for (const auto &run : fixedPointRuns)
      outs() << "  fixed point: @" << run.function
             << (run.converged ? " stopped changing after " : " still changing after ") << run.rounds
             << (run.rounds == 1 ? " round" : " rounds") << " (at most " << run.maxRounds << ")\n";
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
      outs() << "refold: " << inputFile << " -> " << outputFile << ": "
             << refold::statsSummary(statsBefore, statsAfter) << "\n";
  };
  if (outputFile.empty())
    return 0;

  if (StringRef(outputFile).ends_with(".c")) {
    llvm::StringMap<int64_t> dims;
    if (!parseDims(dims))
      return 1;
    std::string prefix = cPrefix.empty()
                             ? refold::cemit::cIdentifier(sys::path::stem(outputFile))
                             : std::string(cPrefix);
    if (prefix != refold::cemit::cIdentifier(prefix))
      return fail("--c-prefix must be a C identifier, got '" + prefix + "'");
    auto report = refold::cemit::writeC(*module, outputFile, prefix, dims);
    if (!report)
      return fail(inputFile + ": " + toString(report.takeError()) + "; no output written");
    summary();
    if (!quiet)
      outs() << "refold: C arena " << report->arenaBytes << " bytes (lower bound "
             << report->lowerBoundBytes << ", one buffer per tensor " << report->perTensorBytes
             << "), " << report->steps << " steps\n";
    return 0;
  }
  if (StringRef(outputFile).ends_with(".mlir")) {
    std::error_code ec;
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
  exportOptions.externalData = externalData;
  exportOptions.externalDataThreshold = externalDataThreshold;
  exportOptions.runChecker = !noCheck;
  exportOptions.inlineLimit = inlineLimit;
  exportOptions.releaseWeights = true; // the module is not used after export
  if (auto err = refold::exportONNXFile(*module, outputFile, exportOptions,
                                        [](const Twine &m) { warn(outputFile + ": " + m); }))
    return fail(outputFile + ": " + toString(std::move(err)));
  summary();
  return 0;
}
