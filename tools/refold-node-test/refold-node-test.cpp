//===- refold-node-test.cpp - the interpreter against ONNX's node tests ----===//
//
// Runs every backend node test (model.onnx + test_data_set_*/input_*.pb) in
// the interpreter and compares with output_*.pb using ONNX's tolerances
// (rtol 1e-3, atol 1e-7). Tests whose operators the interpreter does not
// implement are counted as not run. Prints per-operator passed/total.
//
//===----------------------------------------------------------------------===//

#include "refold/CEmitter/CEmitter.h"
#include "refold/CEmitter/CEngine.h"
#include "refold/Dialect/ONNX/ONNXOps.h"
#include "refold/Interpreter/Interpreter.h"
#include "refold/Translation/ONNXModel.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <map>
#include <set>

using namespace llvm;
using namespace refold;

static cl::opt<std::string> dataDir(cl::Positional, cl::desc("<node test directory>"),
                                    cl::init("/usr/share/libonnx-testdata/data/node"));
static cl::opt<std::string> filter("filter", cl::desc("Only tests whose name contains this"));
static cl::opt<bool> verbose("v", cl::desc("Print every failure and every test not run"));
static cl::list<std::string> knownWrong(
    "known-wrong", cl::desc("Tests whose expected data is known to disagree with ONNX's own "
                            "definition (reported, not counted as wrong)"));
static cl::opt<double> relTol("rtol", cl::init(1e-3), cl::desc("Relative tolerance"));
static cl::opt<double> absTol("atol", cl::init(1e-7), cl::desc("Absolute tolerance"));
static cl::opt<std::string> engine("engine", cl::init("interpreter"),
                                   cl::desc("interpreter, or c: each test's model emitted as C, "
                                            "compiled (--cc, --cflags) and run"));
static cl::opt<std::string> ccCommand("cc", cl::desc("--engine=c: the C compiler (default $CC or cc)"));
static cl::opt<std::string> ccFlags("cflags", cl::init("-O1 -Wall -Wextra -Werror -pedantic"),
                                    cl::desc("--engine=c: C compiler flags"));
static cl::opt<std::string> runUnder("run-under",
                                     cl::desc("--engine=c: run the compiled test under this command"));

namespace {
struct Tally {
  int passed = 0, wrong = 0, refused = 0, notRun = 0;
  std::vector<std::string> failures;
};

std::vector<std::string> sortedEntries(StringRef dir, StringRef prefix) {
  std::vector<std::string> entries;
  std::error_code ec;
  for (sys::fs::directory_iterator it(dir, ec), end; it != end && !ec; it.increment(ec))
    if (sys::path::filename(it->path()).starts_with(prefix))
      entries.push_back(it->path());
  std::sort(entries.begin(), entries.end());
  return entries;
}

/// Compares like numpy.testing.assert_allclose; returns a reason or "".
std::string compare(const interp::Tensor &got, const interp::Tensor &want) {
  // ONNX 1.12's test data stores bfloat16 tensors as uint16.
  if (got.dtype() == interp::DType::BF16 && want.dtype() == interp::DType::U16)
    return compare(got.bitcast(interp::DType::U16), want);
  if (got.dtype() != want.dtype())
    return ("type " + interp::dtypeName(got.dtype()) + " vs expected " +
            interp::dtypeName(want.dtype())).str();
  if (got.shape() != want.shape())
    return "shape " + interp::shapeString(got.shape()) + " vs expected " +
           interp::shapeString(want.shape());
  for (int64_t i = 0; i < got.size(); ++i) {
    double a = got.asDouble(i), b = want.asDouble(i);
    if (std::isnan(a) && std::isnan(b))
      continue;
    if (a == b)
      continue;
    bool isFloat = got.dtype() == interp::DType::F32 || got.dtype() == interp::DType::F64;
    if (!isFloat || std::isnan(a) || std::isnan(b) || std::abs(a - b) > absTol + relTol * std::abs(b))
      return "element " + std::to_string(i) + ": " + std::to_string(a) + " vs expected " +
             std::to_string(b);
  }
  return "";
}
} // namespace

int main(int argc, char **argv) {
  InitLLVM y(argc, argv);
  cl::ParseCommandLineOptions(argc, argv, "refold interpreter node-test runner\n");
  mlir::DialectRegistry registry;
  registerRefoldDialects(registry);

  bool useC = engine == "c";
  if (engine != "interpreter" && !useC) {
    errs() << "refold-node-test: --engine must be interpreter or c\n";
    return 2;
  }
  std::set<std::string> implemented;
  for (const auto &op : useC ? cemit::supportedOps() : interp::supportedOps())
    implemented.insert(op);
  ShapeInferenceWorker inferenceWorker; // one child for hundreds of small models
  std::map<std::string, Tally> byOp;
  int passed = 0, wrong = 0, refused = 0, notRun = 0, knownDifferent = 0;
  for (const std::string &testDir : sortedEntries(dataDir, "test_")) {
    std::string testName = sys::path::filename(testDir).str();
    if (!filter.empty() && testName.find(filter) == std::string::npos)
      continue;
    mlir::MLIRContext context(registry);
    context.loadAllAvailableDialects();
    auto module = importONNXFile(testDir + "/model.onnx", context, {}, [](const Twine &) {});
    if (!module) {
      consumeError(module.takeError());
      ++notRun;
      continue;
    }
    // The operator a test is about: its only node, or its last one.
    std::string op = "?";
    std::vector<std::string> missing;
    for (auto func : (**module).getOps<mlir::func::FuncOp>())
      for (mlir::Operation &o : func.getBody().front()) {
        if (mlir::isa<ir::InitializerOp, ir::NoneOp, mlir::func::ReturnOp>(o))
          continue;
        std::string type = mlir::isa<ir::NodeOp>(o)
                               ? mlir::cast<ir::NodeOp>(o).getOpType().str()
                               : o.getName().stripDialect().str();
        op = type;
        if (!implemented.count(type))
          missing.push_back(type);
      }
    bool expanded = testName.find("_expanded") != std::string::npos;
    std::string bucket = expanded ? op + " (expanded)" : op;
    Tally &tally = byOp[bucket];
    if (!missing.empty()) {
      ++tally.notRun;
      ++notRun;
      if (verbose)
        outs() << "not run " << testName << ": " << missing.front() << " is not implemented\n";
      continue;
    }
    std::string failure;
    bool ran = false;
    for (const std::string &set : sortedEntries(testDir, "test_data_set_")) {
      interp::TensorMap inputs;
      bool inputsOk = true;
      // Inputs bind to graph inputs in order.
      auto func = *(**module).getOps<mlir::func::FuncOp>().begin();
      auto records = func->getAttrOfType<mlir::DictionaryAttr>(ir::kGraphAttr).getAs<mlir::ArrayAttr>("inputs");
      auto outRecords = func->getAttrOfType<mlir::DictionaryAttr>(ir::kGraphAttr).getAs<mlir::ArrayAttr>("outputs");
      std::vector<std::string> inputNames, outputNames;
      for (auto r : records)
        if (!mlir::cast<mlir::DictionaryAttr>(r).get("default"))
          inputNames.push_back(mlir::cast<mlir::DictionaryAttr>(r).getAs<mlir::StringAttr>("name").str());
      for (auto r : outRecords)
        outputNames.push_back(mlir::cast<mlir::DictionaryAttr>(r).getAs<mlir::StringAttr>("name").str());
      for (size_t i = 0;; ++i) {
        std::string path = set + "/input_" + std::to_string(i) + ".pb";
        if (!sys::fs::exists(path))
          break;
        auto t = interp::readTensorFile(path);
        if (!t || i >= inputNames.size()) {
          if (!t)
            consumeError(t.takeError());
          inputsOk = false;
          break;
        }
        // ONNX 1.12's test data stores bfloat16 inputs as uint16.
        if (t->dtype() == interp::DType::U16 && i < func.getNumArguments())
          if (auto type = mlir::dyn_cast<mlir::TensorType>(func.getArgument(i).getType());
              type && type.getElementType().isBF16())
            *t = t->bitcast(interp::DType::BF16);
        inputs[inputNames[i]] = *t;
      }
      if (!inputsOk) {
        failure = "inputs are not plain tensors";
        break;
      }
      llvm::Expected<interp::TensorMap> outputs = interp::TensorMap();
      if (useC) {
        auto bound = interp::bindInputs(**module, inputs, {});
        if (!bound) {
          failure = "refused: " + toString(bound.takeError());
          break;
        }
        // C output has static shapes: inputs that only parameterize shapes
        // (integer tensors: pads, axes, starts, sizes; Resize's scales)
        // are compiled in as constants.
        mlir::OpBuilder builder(&func.getBody().front(), func.getBody().front().begin());
        for (auto [i, arg] : llvm::enumerate(func.getArguments())) {
          auto type = mlir::dyn_cast<mlir::TensorType>(arg.getType());
          if (!type || i >= bound->size() || arg.use_empty())
            continue;
          static const std::set<std::string> parameterized = {
              "Pad", "Slice", "Reshape", "Resize", "Upsample", "Expand", "Tile", "Squeeze",
              "Unsqueeze", "Split", "Gather", "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin",
              "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp",
              "ReduceSumSquare", "ConstantOfShape", "Range", "OneHot", "TopK", "CumSum"};
          bool shapeParameter = true;
          for (mlir::Operation *user : arg.getUsers()) {
            std::string t = mlir::isa<ir::NodeOp>(user)
                                ? mlir::cast<ir::NodeOp>(user).getOpType().str()
                                : user->getName().stripDialect().str();
            shapeParameter &= parameterized.count(t) && user->getOperand(0) != arg;
          }
          if (!shapeParameter)
            continue;
          auto value = interp::tensorToAttr((*bound)[i], &context, "frozen_input");
          auto init = builder.create<ir::InitializerOp>(func.getLoc(),
                                                        builder.getStringAttr("frozen_input"), value);
          arg.replaceAllUsesWith(init.getResult());
        }
        cemit::COptions options;
        options.cc = ccCommand;
        options.cflags = ccFlags;
        options.runUnder = runUnder;
        outputs = cemit::runC(**module, *bound, options);
        // The emitter refusing an op or attribute is a refusal; a compiler
        // or run failure is wrong.
        if (!outputs) {
          std::string message = toString(outputs.takeError());
          failure = (StringRef(message).contains("cannot emit C") ? "refused: " : "") + message;
          break;
        }
      } else {
        outputs = interp::run(**module, inputs, {});
        if (!outputs) {
          failure = "refused: " + toString(outputs.takeError());
          break;
        }
      }
      ran = true;
      for (size_t i = 0; i < outputNames.size() && failure.empty(); ++i) {
        std::string path = set + "/output_" + std::to_string(i) + ".pb";
        auto want = interp::readTensorFile(path);
        if (!want) {
          consumeError(want.takeError());
          failure = "expected output is not a plain tensor";
          break;
        }
        auto it = outputs->find(outputNames[i]);
        if (it == outputs->end()) {
          failure = "output " + outputNames[i] + " missing";
          break;
        }
        std::string diff = compare(it->second, *want);
        if (!diff.empty())
          failure = "output " + outputNames[i] + ": " + diff;
      }
      if (!failure.empty())
        break;
    }
    if (failure == "inputs are not plain tensors" || failure == "expected output is not a plain tensor") {
      ++tally.notRun;
      ++notRun;
      if (verbose)
        outs() << "not run " << testName << ": " << failure << "\n";
      continue;
    }
    if (failure.empty() && ran) {
      ++tally.passed;
      ++passed;
    } else if (StringRef(failure).starts_with("refused: ")) {
      ++tally.refused;
      ++refused;
      tally.failures.push_back("REFUSED " + testName + ": " + failure.substr(9));
    } else if (llvm::is_contained(knownWrong, testName)) {
      ++tally.refused;
      ++knownDifferent;
      tally.failures.push_back("KNOWN " + testName + ": " + failure);
    } else {
      ++tally.wrong;
      ++wrong;
      tally.failures.push_back("WRONG " + testName + ": " + failure);
      if (verbose)
        outs() << "WRONG " << testName << ": " << failure << "\n";
    }
  }
  outs() << "per operator: passed/total of the tests it runs (refused: the "
         << (useC ? "C emitter" : "interpreter")
         << " said it cannot; not run: operator or input kind not implemented)\n";
  for (auto &[op, tally] : byOp) {
    int total = tally.passed + tally.wrong + tally.refused;
    if (total == 0)
      continue;
    outs() << "  " << op << ": " << tally.passed << "/" << total;
    if (tally.notRun)
      outs() << " (+" << tally.notRun << " not run)";
    outs() << "\n";
    for (auto &f : tally.failures)
      outs() << "    " << f << "\n";
  }
  outs() << "node tests: " << passed << " passed, " << wrong << " wrong, " << refused
         << " refused, " << knownDifferent << " known test-data differences, " << notRun
         << " not run\n";
  return wrong ? 1 : 0;
}
