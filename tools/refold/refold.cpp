//===- refold.cpp - the refold driver ---------------------------------------===//
//
//   refold IN.onnx -o OUT.onnx [-O0|-O1|-O2] [--pass-pipeline=...]
//
// Imports the model, runs the optimization pipeline and writes the result
// (ONNX, or MLIR when the output ends in .mlir). Errors are one line on
// stderr and a non-zero exit; the output file is written atomically.
//
//===----------------------------------------------------------------------===//

#include "refold/Dialect/ONNX/ONNXOps.h"
#include "refold/Passes/Passes.h"
#include "refold/Translation/ONNXModel.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/AsmState.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

using namespace llvm;

namespace {
cl::OptionCategory refoldCategory("refold options");

cl::opt<std::string> inputFile(cl::Positional, cl::desc("<input .onnx | .onnxtxt | .mlir>"),
                               cl::cat(refoldCategory));
cl::opt<std::string> outputFile("o", cl::desc("Output file (.onnx, or .mlir for the IR)"),
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

int fail(const Twine &message) {
  WithColor::error(errs(), "refold") << message << "\n";
  return 1;
}

void warn(const Twine &message) {
  WithColor::warning(errs(), "refold") << message << "\n";
}

/// Nodes of the main graph (initializers and placeholders are not nodes).
size_t countNodes(mlir::ModuleOp module) {
  size_t count = 0;
  for (auto func : module.getOps<mlir::func::FuncOp>())
    for (mlir::Operation &op : func.getBody().front())
      if (!mlir::isa<refold::ir::InitializerOp, refold::ir::NoneOp>(op) &&
          !op.hasTrait<mlir::OpTrait::IsTerminator>())
        ++count;
  return count;
}

void printVersion(raw_ostream &os) {
  os << "refold " << REFOLD_VERSION << " (MLIR " << LLVM_VERSION_STRING << ")\n";
}
} // namespace

int main(int argc, char **argv) {
  InitLLVM y(argc, argv);
  refold::registerRefoldPasses();
  cl::HideUnrelatedOptions(refoldCategory);
  cl::SetVersionPrinter(printVersion);
  cl::ParseCommandLineOptions(
      argc, argv,
      "refold: rewrites a trained ONNX model into its deploy form\n\n"
      "  refold IN.onnx -o OUT.onnx [-O0|-O1|-O2]\n");

  if (inputFile.empty())
    return fail("no input model given (see --help)");
  if (outputFile.empty())
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

  size_t nodesBefore = countNodes(*module);
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
    refold::buildRefoldPipeline(pm, optLevel);
  }
  if (failed(pm.run(*module)))
    return 1;

  size_t nodesAfter = countNodes(*module);
  auto summary = [&] {
    if (!quiet)
      outs() << "refold: " << inputFile << " -> " << outputFile << ": " << nodesBefore
             << " -> " << nodesAfter << " nodes\n";
  };

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
