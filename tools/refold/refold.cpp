//===- refold.cpp - the refold command line ---------------------------------===//
//
//   refold IN.onnx -o OUT.onnx [-O0|-O1|-O2] [--pass-pipeline=...]
//   refold run IN.onnx -o DIR [--engine=interpreter|c]
//
// The command line over refold::compile and refold::run (refold/refold.h):
// flags become refold::Options; errors are one line on stderr and a
// non-zero exit.
//
//===----------------------------------------------------------------------===//

#include "refold/refold.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdlib>
#include <iostream>
#include <sys/stat.h>
#include <unistd.h>

using namespace llvm;


namespace {
cl::OptionCategory refoldCategory("refold options");

cl::opt<std::string> inputFile(cl::Positional, cl::desc("<input .onnx | .onnxtxt | .mlir>"),
                               cl::cat(refoldCategory));
cl::opt<std::string> outputFile("o", cl::desc("Output file (.onnx; .c for C with its .h; .mlir for the IR)"),
                                cl::value_desc("file"), cl::cat(refoldCategory));
cl::opt<refold::Level> optLevel(
    cl::desc("Optimization level (default -O2):"), cl::init(refold::Level::O2),
    cl::values(clEnumValN(refold::Level::O0, "O0", "no rewrite: a pure round-trip"),
               clEnumValN(refold::Level::O1, "O1", "cleanup and folding"),
               clEnumValN(refold::Level::O2, "O2", "everything exact and profitable")),
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
    cl::init(0),
    cl::desc("Tensor bytes above which the output uses external data on its own "
             "(default 0: what fits in one 2 GiB protobuf message)"),
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


cl::opt<std::string> cPrefix("c-prefix",
                            cl::desc("Prefix of the names in emitted C (default: the output "
                                     "file's stem made a C identifier)"),
                            cl::value_desc("NAME"), cl::cat(refoldCategory));
cl::opt<std::string> cRequant(
    "c-requant", cl::init("float"),
    cl::desc("C output of a quantized model: float (multiply by a float scale, round half to "
             "even; the default) or fixed (int32 multiplier and shift, for CPUs without an FPU)"),
    cl::value_desc("float|fixed"), cl::cat(refoldCategory));
cl::opt<std::string> qdqMode(
    "qdq", cl::init("integer"),
    cl::desc("run --engine=interpreter on a quantized model: integer (DequantizeLinear -> "
             "Conv/Gemm/MatMul -> QuantizeLinear summed in integers and requantized once, as "
             "onnxruntime and refold's C do; the default) or float (each op as written)"),
    cl::value_desc("integer|float"), cl::cat(refoldCategory));
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
    "weight-rounding", cl::init("gptq"),
    cl::desc("How int8 conv weights are rounded with --calibration: gptq (default: each "
             "weight's rounding error moved onto the weights not yet rounded, through the "
             "calibration inputs' second moments) or nearest"),
    cl::cat(quantCategory));
cl::opt<unsigned> maxFloatLayers(
    "max-float-layers", cl::init(0),
    cl::desc("Keep in float the K quantizable layers whose staying float raises the output "
             "SQNR most (each measured alone on the calibration data; needs --calibration)"),
    cl::value_desc("K"), cl::cat(quantCategory));
cl::opt<double> rangeSearchBudget(
    "range-search-budget", cl::init(250),
    cl::desc("With --calibration, try each activation tensor's range scaled by 0.8-1.25 and "
             "keep what raises the output SQNR, in graph order, until the trials reach this "
             "many billion multiply-accumulates (default 250; 0: off)"),
    cl::value_desc("GMACS"), cl::cat(quantCategory));
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


void printVersion(raw_ostream &os) {
  os << "refold " << refold::version() << " (MLIR " << LLVM_VERSION_STRING << ")\n";
}

int fail(const Twine &message) {
  std::cout.flush(); // report lines before the error
  WithColor::error(errs(), "refold") << message << "\n";
  return 1;
}

/// The command line as refold::Options; false (said) on a malformed flag.
bool buildOptions(refold::Options &options) {
  options.level = optLevel;
  options.passPipeline = passPipeline;
  options.mergePolicy = mergePolicy;
  options.shapeInference = !noShapeInference;
  for (const std::string &entry : dimValues) {
    auto [name, value] = StringRef(entry).split('=');
    int64_t size;
    if (name.empty() || value.getAsInteger(10, size) || size < 0)
      return fail("--dim expects NAME=VALUE with VALUE >= 0, got '" + entry + "'"), false;
    options.dims[name.str()] = size;
  }
  for (const std::string &entry : inputValues) {
    auto [name, file] = StringRef(entry).split('=');
    if (name.empty() || file.empty())
      return fail("--input expects NAME=FILE, got '" + entry + "'"), false;
    options.inputs[name.str()] = file.str();
  }
  options.seed = seed;
  options.verify = verify;
  options.verifyRuns = verifyRuns;
  options.verifyRtol = verifyTol;
  options.verifyAtol = verifyAtol;
  options.cPrefix = cPrefix;
  options.cRequant = cRequant;
  options.externalData = externalData;
  options.externalDataThreshold = externalDataThreshold;
  options.inlineLimit = inlineLimit;
  options.check = !noCheck;
  options.explain = explain;
  options.stats = stats;
  options.statsJson = statsJson;
  options.quiet = quiet;
  options.progress = sys::Process::StandardErrIsDisplayed();
  options.run.engine = engine;
  options.run.cc = ccCommand;
  options.run.cflags = ccFlags;
  options.run.runUnder = runUnder;
  options.run.compareDir = compareDir;
  options.run.print = printOutputs;
  options.run.timeRuns = timeRuns;
  if (qdqMode != "integer" && qdqMode != "float")
    return fail("--qdq must be integer or float, got '" + qdqMode + "'"), false;
  options.run.integerQDQ = qdqMode == "integer";
  if (cRequant != "float" && cRequant != "fixed")
    return fail("--c-requant must be float or fixed, got '" + cRequant + "'"), false;

  if (quantize.empty())
    return true;
  if (quantize != "int8")
    return fail("--quantize must be int8, got '" + quantize + "'"), false;
  // Flags that only mean something with (or without) calibration data.
  if (calibration.empty()) {
    for (const auto *opt : std::initializer_list<const cl::Option *>{
             &calibrationMethod, &calibrationPercentile, &calibrationLimit, &maxFloatLayers,
             &weightRounding, &rangeSearchBudget})
      if (opt->getNumOccurrences())
        return fail("--" + opt->ArgStr.str() + " needs --calibration=PATH"), false;
  } else if (inputRange.getNumOccurrences() || dataFreeSigmas.getNumOccurrences()) {
    return fail("--input-range and --data-free-sigmas are for data-free quantization; with "
                "--calibration the ranges are measured"),
           false;
  }
  if (inputRange.getNumOccurrences() && inputRange.size() != 2)
    return fail("--input-range expects LO,HI with LO < HI"), false;
  refold::QuantizeOptions &q = options.quantize;
  q.enabled = true;
  q.calibration = calibration;
  q.method = calibrationMethod;
  q.percentile = calibrationPercentile;
  q.limit = calibrationLimit;
  q.activations = activationsType;
  q.weights = weightsGranularity;
  q.weightRounding = weightRounding;
  q.keepFloat.assign(keepFloat.begin(), keepFloat.end());
  q.maxFloatLayers = maxFloatLayers;
  q.rangeSearchBudget = rangeSearchBudget;
  q.equalize = equalize;
  q.biasCorrection = biasCorrection;
  q.inputRange.assign(inputRange.begin(), inputRange.end());
  q.dataFreeSigmas = dataFreeSigmas;
  q.report = quantReport;
  q.reportJson = quantReportJson;
  return true;
}
} // namespace

/// On a large model glibc's default malloc maps and unmaps each weight
/// buffer in 4 KiB pages, and page faults then take most of refold's time
/// (bench/io_speed.sh: ResNet-50 about twice as fast tuned). When an input
/// is over 32 MiB the tool runs itself again, once, with malloc using
/// transparent huge pages and keeping freed buffers for reuse. A
/// GLIBC_TUNABLES the user set is left alone; if the exec fails, nothing
/// changes.
static void tuneMallocForLargeInputs(char **argv) {
  if (std::getenv("GLIBC_TUNABLES"))
    return;
  bool large = false;
  for (char **arg = argv + 1; *arg && !large; ++arg) {
    struct stat info;
    large = (*arg)[0] != '-' && ::stat(*arg, &info) == 0 && S_ISREG(info.st_mode) &&
            info.st_size > (32 << 20);
  }
  if (!large)
    return;
  ::setenv("GLIBC_TUNABLES",
           "glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=33554432:"
           "glibc.malloc.trim_threshold=1073741824",
           /*overwrite=*/0);
  ::execv("/proc/self/exe", argv);
  ::unsetenv("GLIBC_TUNABLES"); // no exec: run as is
}

int main(int argc, char **argv) {
  tuneMallocForLargeInputs(argv);
  InitLLVM y(argc, argv);
  // `refold run MODEL ...` runs the model; everything else optimizes.
  bool runMode = argc > 1 && StringRef(argv[1]) == "run";
  std::vector<char *> args(argv, argv + argc);
  if (runMode)
    args.erase(args.begin() + 1);
  // LLVM owns the names -stats and -stats-json; ours are renamed.
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
      "      [--quantize=int8 ...] [--c-requant=float|fixed]\n"
      "  refold IN.onnx -o OUT.onnx --quantize=int8 --calibration=PATH [--quant-report]\n"
      "  refold run IN.onnx [--engine=interpreter|c] [--input NAME=FILE]... [--dim NAME=VALUE]... -o DIR\n");

  refold::Options options;
  if (!buildOptions(options))
    return 1;
  if (inputFile.empty())
    return fail("no input model given (see --help)");
  if (runMode && engine != "interpreter" && engine != "c")
    return fail("--engine must be interpreter or c, got '" + engine + "'");
  options.diagnostic = [](refold::Severity severity, const std::string &line) {
    std::cout.flush();
    if (severity == refold::Severity::Error)
      WithColor::error(errs(), "refold") << line << "\n";
    else if (severity == refold::Severity::Warning)
      WithColor::warning(errs(), "refold") << line << "\n";
    else
      errs() << "refold: " << line << "\n";
  };
  refold::Result result = runMode ? refold::run(inputFile, outputFile, options)
                                  : refold::compile(inputFile, outputFile, options);
  return result ? 0 : 1;
}
