//===- refold.h - refold's C++ API -------------------------------*- C++ -*-===//
//
// The whole driver as a library: import a model, run the optimization
// pipeline, optionally verify and quantize it, and write ONNX, C or MLIR.
// The `refold` tool is a command line over these two calls.
//
//   refold::Options options;
//   options.verify = true;
//   refold::Result result = refold::compile("model.onnx", "deploy.onnx", options);
//   if (!result) { std::cerr << result.error << "\n"; return 1; }
//
// This header depends on the C++ standard library only.
//
//===----------------------------------------------------------------------===//

#ifndef REFOLD_REFOLD_H
#define REFOLD_REFOLD_H

#include <cstdint>
#include <functional>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#if defined(_WIN32)
#define REFOLD_API
#else
#define REFOLD_API __attribute__((visibility("default")))
#endif

namespace refold {

enum class Level { O0, O1, O2 };

/// What is written to the output path.
enum class Target {
  Auto, // from the extension: .c (and its .h), .mlir, anything else ONNX
  ONNX,
  C,
  MLIR,
};

struct QuantizeOptions {
  bool enabled = false;               // --quantize=int8
  std::string calibration;            // empty: data-free
  std::string method = "percentile";  // minmax | percentile | entropy | mse
  double percentile = 99.99;
  uint64_t limit = 0;                 // calibration sets used; 0: all
  std::string activations = "uint8";  // uint8 | int8
  std::string weights = "per-channel"; // per-channel | per-tensor
  std::string weightRounding = "gptq"; // gptq | nearest
  std::vector<std::string> keepFloat;
  unsigned maxFloatLayers = 0;
  double rangeSearchBudget = 250;     // GMACs of range-search trials; 0: off
  bool equalize = true;
  bool biasCorrection = true;
  std::vector<double> inputRange;     // data-free: {lo, hi}; empty: [-3, 3]
  double dataFreeSigmas = 6;
  bool report = false;                // print what quantization cost
  std::string reportJson;             // and/or write it as JSON here
};

/// `run`: execute a model and write its outputs as TensorProto files.
struct RunOptions {
  std::string engine = "interpreter"; // interpreter | c
  std::string cc;                     // c: the compiler (default $CC, else cc)
  std::string cflags = "-O2";
  std::string runUnder;               // c: e.g. "qemu-aarch64 -L /usr/aarch64-linux-gnu"
  std::string compareDir;             // compare outputs with DIR/<output>.pb
  bool print = false;                 // print the output values
  unsigned timeRuns = 0;              // time this many runs, print the median
  bool integerQDQ = true;             // interpreter: QDQ groups as integer kernels run them
};

enum class Severity { Error, Warning, Remark };

struct Options {
  Level level = Level::O2;
  std::string passPipeline;           // textual pipeline instead of `level`
  std::string mergePolicy = "profitable"; // profitable | always | never
  bool shapeInference = true;         // ONNX shape inference on import
  /// Sizes of symbolic dimensions (verify, stats, run, C).
  std::map<std::string, int64_t> dims;
  /// Given input tensors (verify, run): name -> .pb or .npy file.
  std::map<std::string, std::string> inputs;
  uint64_t seed = 0;                  // of generated inputs

  bool verify = false;
  unsigned verifyRuns = 3;
  double verifyRtol = 1e-5;           // |a - b| <= atol + rtol * max |a|
  double verifyAtol = 1e-6;

  QuantizeOptions quantize;

  Target target = Target::Auto;
  std::string cPrefix;                // default: the output's stem as a C identifier
  std::string cRequant = "float";     // float | fixed: how integer C kernels requantize
  bool externalData = false;          // large tensors in <output>.data
  uint64_t externalDataThreshold = 1024;
  uint64_t inlineLimit = 0;           // 0: what fits in one protobuf message
  bool check = true;                  // onnx::checker on the output

  bool explain = false;               // list refused rewrites
  bool stats = false;                 // before/after table
  std::string statsJson;              // and/or as JSON here
  bool quiet = false;                 // no summary line, no progress
  /// Progress lines for long stages (importing a large model, verify runs,
  /// compiling the C of `run`); the tool sets it when stderr is a terminal.
  bool progress = false;

  RunOptions run;

  /// Where report lines go (summary, verify, stats, explain); default std::cout.
  std::ostream *out = nullptr;
  /// Errors, warnings and progress as they happen, each one line. Default:
  /// warnings and progress to stderr; errors are only returned.
  std::function<void(Severity, const std::string &)> diagnostic;
};

/// What one `compile` measured.
struct Report {
  uint64_t nodesBefore = 0, nodesAfter = 0;
  uint64_t macsBefore = 0, macsAfter = 0;
  uint64_t parameterBytesBefore = 0, parameterBytesAfter = 0;
  struct VerifiedOutput {
    std::string name;
    double maxAbsError = 0, maxRelError = 0, allowed = 0;
    bool passed = true;
  };
  std::vector<VerifiedOutput> verified; // with Options::verify
  unsigned quantizedLayers = 0;         // with quantization
  /// C output: the planned arena, its lower bound, one buffer per tensor.
  uint64_t arenaBytes = 0, arenaLowerBoundBytes = 0, arenaPerTensorBytes = 0;
  std::string summary;                  // the one-line summary
};

struct Result {
  bool ok = false;
  std::string error; // one line, when !ok
  Report report;
  explicit operator bool() const { return ok; }
};

/// Imports `input` (.onnx, textual ONNX or .mlir), optimizes it and writes
/// `output` atomically (nothing is written on failure). With an empty
/// `output`, only reports (stats, verify).
REFOLD_API Result compile(const std::string &input, const std::string &output,
                          const Options &options = {});

/// Runs `input` (the model as given with the interpreter; refold's C of the
/// optimized model with `options.run.engine = "c"`) and writes every output
/// and generated input to `outputDir/<name>.pb`.
REFOLD_API Result run(const std::string &input, const std::string &outputDir,
                      const Options &options = {});

/// "0.1.0"
REFOLD_API const char *version();

} // namespace refold

#endif // REFOLD_REFOLD_H
