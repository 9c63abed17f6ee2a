//===- refold-translate.cpp - ONNX <-> MLIR translation ---------------------===//
//
//   refold-translate --import-onnx model.onnx [-o model.mlir]
//   refold-translate --export-onnx model.mlir -o model.onnx
//   refold-translate --check-onnx model.onnx          (onnx::checker verdict)
//   refold-translate --compare-onnx a.onnx b.onnx     (normalized equality)
//   refold-translate --emit-c model.mlir [--dim N=1] -o model.c   (C and .h;
//                    with -o - both are printed, the header first)
//
//===----------------------------------------------------------------------===//

#include "refold/CEmitter/CEmitter.h"
#include "refold/Dialect/ONNX/ONNXOps.h"
#include "refold/Translation/ONNXModel.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OperationSupport.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Support/ToolUtilities.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <google/protobuf/util/message_differencer.h>

#include <fstream>

using namespace llvm;

namespace {
enum class Mode { None, Import, Export, Check, Compare, EmitC };

cl::opt<Mode> mode(
    cl::desc("Translation to perform"), cl::init(Mode::None),
    cl::values(clEnumValN(Mode::Import, "import-onnx", "ONNX (binary or text) -> MLIR"),
               clEnumValN(Mode::Export, "export-onnx", "MLIR -> ONNX"),
               clEnumValN(Mode::Check, "check-onnx",
                          "Run onnx::checker on an ONNX file and print its verdict"),
               clEnumValN(Mode::Compare, "compare-onnx",
                          "Compare two ONNX files after normalization (see docs)"),
               clEnumValN(Mode::EmitC, "emit-c",
                          "MLIR -> C: OUT.c and OUT.h (see docs/c-output.md)")));
cl::list<std::string> inputs(cl::Positional, cl::desc("<input files>"), cl::OneOrMore);
cl::opt<std::string> outputFile("o", cl::desc("Output file"), cl::value_desc("file"),
                                cl::init("-"));
cl::opt<bool> noShapeInference("no-shape-inference",
                               cl::desc("Do not run ONNX shape inference on import"));
cl::opt<bool> externalData("external-data",
                           cl::desc("Store large tensors in <output>.data"));
cl::opt<uint64_t> externalDataThreshold(
    "external-data-threshold", cl::init(1024),
    cl::desc("Smallest tensor (bytes) stored externally with --external-data"));
cl::opt<bool> noCheck("no-check", cl::desc("Do not run onnx::checker on export"));
cl::list<std::string> dimValues("dim", cl::desc("--emit-c: size of a symbolic dimension, NAME=VALUE"),
                                cl::value_desc("NAME=VALUE"));
cl::opt<bool> splitInputFile("split-input-file",
                             cl::desc("--emit-c: emit each '// -----' chunk on its own"));
cl::opt<std::string> cPrefix("c-prefix",
                             cl::desc("--emit-c: prefix of the C names (default: the output's stem, "
                                      "or 'model')"));

int fail(const Twine &message) {
  WithColor::error(errs(), "refold-translate") << message << "\n";
  return 1;
}

void warn(const Twine &message) {
  WithColor::warning(errs(), "refold-translate") << message << "\n";
}

bool readModel(StringRef path, onnx::ModelProto &model) {
  std::ifstream in(path.str(), std::ios::binary);
  return in && model.ParseFromIstream(&in);
}

/// Representation choices that carry no meaning: tensor storage field,
/// attribute order and omitted types, trailing empty inputs, opset order,
/// names of tensors inside attributes.
void normalizeTensor(onnx::TensorProto &t, bool inAttribute);
void normalizeGraph(onnx::GraphProto &g);

void normalizeTensor(onnx::TensorProto &t, bool inAttribute) {
  if (inAttribute)
    t.clear_name();
  if (t.has_raw_data() || t.data_type() == onnx::TensorProto::STRING)
    return;
  std::string bytes;
  auto append = [&](const void *p, size_t n) { bytes.append(static_cast<const char *>(p), n); };
  switch (t.data_type()) {
  case onnx::TensorProto::FLOAT:
  case onnx::TensorProto::COMPLEX64:
    for (float v : t.float_data()) append(&v, 4);
    break;
  case onnx::TensorProto::DOUBLE:
  case onnx::TensorProto::COMPLEX128:
    for (double v : t.double_data()) append(&v, 8);
    break;
  case onnx::TensorProto::INT64:
    for (int64_t v : t.int64_data()) append(&v, 8);
    break;
  case onnx::TensorProto::UINT64:
    for (uint64_t v : t.uint64_data()) append(&v, 8);
    break;
  case onnx::TensorProto::UINT32:
    for (uint64_t v : t.uint64_data()) append(&v, 4);
    break;
  case onnx::TensorProto::INT32:
    for (int32_t v : t.int32_data()) append(&v, 4);
    break;
  case onnx::TensorProto::INT16:
  case onnx::TensorProto::UINT16:
  case onnx::TensorProto::FLOAT16:
  case onnx::TensorProto::BFLOAT16:
    for (int32_t v : t.int32_data()) append(&v, 2);
    break;
  default:
    for (int32_t v : t.int32_data()) append(&v, 1);
    break;
  }
  t.clear_float_data();
  t.clear_double_data();
  t.clear_int32_data();
  t.clear_int64_data();
  t.clear_uint64_data();
  t.set_raw_data(bytes);
}

void normalizeGraph(onnx::GraphProto &g) {
  for (auto &t : *g.mutable_initializer())
    normalizeTensor(t, false);
  for (auto &node : *g.mutable_node()) {
    if (node.domain().empty())
      node.clear_domain();
    while (node.input_size() && node.input(node.input_size() - 1).empty())
      node.mutable_input()->RemoveLast();
    while (node.output_size() && node.output(node.output_size() - 1).empty())
      node.mutable_output()->RemoveLast();
    auto *attrs = node.mutable_attribute();
    for (auto &attr : *attrs) {
      attr.clear_doc_string();
      if (attr.has_t())
        normalizeTensor(*attr.mutable_t(), true);
      for (auto &t : *attr.mutable_tensors())
        normalizeTensor(t, true);
      if (attr.has_g())
        normalizeGraph(*attr.mutable_g());
      for (auto &sub : *attr.mutable_graphs())
        normalizeGraph(sub);
      if (attr.type() == onnx::AttributeProto::UNDEFINED) {
        if (attr.has_f()) attr.set_type(onnx::AttributeProto::FLOAT);
        else if (attr.has_i()) attr.set_type(onnx::AttributeProto::INT);
        else if (attr.has_s()) attr.set_type(onnx::AttributeProto::STRING);
        else if (attr.has_t()) attr.set_type(onnx::AttributeProto::TENSOR);
        else if (attr.has_g()) attr.set_type(onnx::AttributeProto::GRAPH);
        else if (attr.floats_size()) attr.set_type(onnx::AttributeProto::FLOATS);
        else if (attr.ints_size()) attr.set_type(onnx::AttributeProto::INTS);
        else if (attr.strings_size()) attr.set_type(onnx::AttributeProto::STRINGS);
        else if (attr.tensors_size()) attr.set_type(onnx::AttributeProto::TENSORS);
        else if (attr.graphs_size()) attr.set_type(onnx::AttributeProto::GRAPHS);
      }
    }
    std::sort(attrs->begin(), attrs->end(),
              [](const auto &a, const auto &b) { return a.name() < b.name(); });
  }
}

void normalizeModel(onnx::ModelProto &m) {
  auto *opsets = m.mutable_opset_import();
  for (auto &opset : *opsets)
    opset.set_domain(opset.domain());
  std::sort(opsets->begin(), opsets->end(),
            [](const auto &a, const auto &b) { return a.domain() < b.domain(); });
  normalizeGraph(*m.mutable_graph());
}

int compareModels(StringRef a, StringRef b) {
  onnx::ModelProto ma, mb;
  if (!readModel(a, ma))
    return fail("cannot read ONNX model '" + a + "'");
  if (!readModel(b, mb))
    return fail("cannot read ONNX model '" + b + "'");
  normalizeModel(ma);
  normalizeModel(mb);
  google::protobuf::util::MessageDifferencer differ;
  std::string report;
  differ.ReportDifferencesToString(&report);
  if (differ.Compare(ma, mb)) {
    outs() << "identical\n";
    return 0;
  }
  StringRef firstDifference = StringRef(report).split('\n').first;
  if (firstDifference.size() > 300)
    firstDifference = firstDifference.take_front(300);
  outs() << "different: " << firstDifference << "\n";
  return 1;
}
} // namespace

/// --emit-c on one buffer: the .c and .h of an MLIR module (dims pinned
/// with --dim); printed to `os` when writing to stdout.
int emitCBuffer(std::unique_ptr<MemoryBuffer> buffer, StringRef input, mlir::MLIRContext &context,
                raw_ostream &os) {
  llvm::SourceMgr sourceMgr;
  sourceMgr.AddNewSourceBuffer(std::move(buffer), SMLoc());
  mlir::SourceMgrDiagnosticHandler handler(sourceMgr, &context);
  auto module = mlir::parseSourceFile<mlir::ModuleOp>(sourceMgr, &context);
  if (!module)
    return 1;
  llvm::StringMap<int64_t> dims;
  for (const std::string &entry : dimValues) {
    auto [name, value] = StringRef(entry).split('=');
    int64_t size;
    if (name.empty() || value.getAsInteger(10, size) || size < 0)
      return fail("--dim expects NAME=VALUE with VALUE >= 0, got '" + entry + "'");
    dims[name] = size;
  }
  bool toStdout = outputFile == "-";
  refold::cemit::EmitOptions options;
  options.prefix = !cPrefix.empty() ? std::string(cPrefix)
                   : toStdout       ? std::string("model")
                                    : refold::cemit::cIdentifier(sys::path::stem(outputFile));
  SmallString<256> headerPath(toStdout ? StringRef("model.h") : StringRef(outputFile));
  sys::path::replace_extension(headerPath, "h");
  options.headerName = sys::path::filename(headerPath).str();
  if (auto err = refold::cemit::pinDimensions(*module, dims))
    return fail(input + ": " + toString(std::move(err)));
  auto emitted = refold::cemit::emitC(*module, options);
  if (!emitted)
    return fail(input + ": " + toString(emitted.takeError()));
  if (toStdout) {
    os << emitted->header << "\n" << emitted->source;
    return 0;
  }
  for (auto [path, text] : {std::pair<std::string, std::string *>{headerPath.str().str(), &emitted->header},
                            {outputFile.getValue(), &emitted->source}})
    if (auto err = writeToOutput(path, [&](raw_ostream &out) {
          out << *text;
          return Error::success();
        }))
      return fail(path + ": " + toString(std::move(err)));
  return 0;
}

int emitC(StringRef input, mlir::MLIRContext &context) {
  std::string error;
  auto file = mlir::openInputFile(input, &error);
  if (!file)
    return fail(error);
  if (!splitInputFile)
    return emitCBuffer(std::move(file), input, context, outs());
  if (outputFile != "-")
    return fail("--split-input-file prints to stdout (-o -)");
  // Each chunk is emitted on its own; an error in one does not stop the rest.
  bool anyFailed = false;
  (void)mlir::splitAndProcessBuffer(
      std::move(file),
      [&](std::unique_ptr<MemoryBuffer> chunk, raw_ostream &os) {
        anyFailed |= emitCBuffer(std::move(chunk), input, context, os) != 0;
        return mlir::success();
      },
      outs(), mlir::kDefaultSplitMarker, "// -----");
  return anyFailed ? 1 : 0;
}

int main(int argc, char **argv) {
  InitLLVM y(argc, argv);
  mlir::registerAsmPrinterCLOptions();
  mlir::registerMLIRContextCLOptions();
  cl::ParseCommandLineOptions(argc, argv, "refold ONNX <-> MLIR translator\n");

  if (mode == Mode::None)
    return fail("choose one of --import-onnx, --export-onnx, --check-onnx, --compare-onnx, --emit-c");
  if (mode == Mode::Compare) {
    if (inputs.size() != 2)
      return fail("--compare-onnx takes two files");
    return compareModels(inputs[0], inputs[1]);
  }
  if (inputs.size() != 1)
    return fail("expected one input file");
  StringRef input = inputs[0];

  if (mode == Mode::Check) {
    try {
      onnx::checker::check_model(input.str());
    } catch (const std::exception &e) {
      outs() << "fail: " << StringRef(e.what()).trim().split('\n').first << "\n";
      return 1;
    }
    outs() << "ok\n";
    return 0;
  }

  mlir::DialectRegistry registry;
  refold::registerRefoldDialects(registry);
  mlir::MLIRContext context(registry);
  context.loadAllAvailableDialects();

  if (mode == Mode::Import) {
    refold::ImportOptions options;
    options.inferShapes = !noShapeInference;
    auto module = refold::importONNXFile(input, context, options, warn);
    if (!module)
      return fail(input + ": " + toString(module.takeError()));
    std::string error;
    auto output = mlir::openOutputFile(outputFile, &error);
    if (!output)
      return fail(error);
    (**module)->print(output->os(), mlir::OpPrintingFlags().enableDebugInfo(false));
    output->keep();
    return 0;
  }

  if (mode == Mode::EmitC)
    return emitC(input, context);

  // Export.
  if (outputFile == "-")
    return fail("--export-onnx needs an output file (-o)");
  llvm::SourceMgr sourceMgr;
  std::string error;
  auto file = mlir::openInputFile(input, &error);
  if (!file)
    return fail(error);
  sourceMgr.AddNewSourceBuffer(std::move(file), SMLoc());
  mlir::SourceMgrDiagnosticHandler handler(sourceMgr, &context);
  auto module = mlir::parseSourceFile<mlir::ModuleOp>(sourceMgr, &context);
  if (!module)
    return 1;
  refold::ExportOptions options;
  options.externalData = externalData;
  options.externalDataThreshold = externalDataThreshold;
  options.runChecker = !noCheck;
  if (auto err = refold::exportONNXFile(*module, outputFile, options, warn))
    return fail(input + ": " + toString(std::move(err)));
  return 0;
}
