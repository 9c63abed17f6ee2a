//===- Common.cpp - shared by the ONNX importer and exporter ---------------===//

#include "Common.h"

#include "refold/Dialect/ONNX/ONNXOps.h"

#include "mlir/IR/Builders.h"

#include <google/protobuf/text_format.h>
#include <onnx/defs/schema.h>
#include <onnx/shape_inference/implementation.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace mlir;
using onnx::TensorProto;

namespace refold::detail {

Type elementTypeFromOnnx(int32_t dataType, MLIRContext *ctx) {
  Builder b(ctx);
  switch (dataType) {
  case TensorProto::FLOAT: return b.getF32Type();
  case TensorProto::DOUBLE: return b.getF64Type();
  case TensorProto::FLOAT16: return b.getF16Type();
  case TensorProto::BFLOAT16: return b.getBF16Type();
  case TensorProto::INT8: return b.getIntegerType(8);
  case TensorProto::INT16: return b.getIntegerType(16);
  case TensorProto::INT32: return b.getIntegerType(32);
  case TensorProto::INT64: return b.getIntegerType(64);
  case TensorProto::UINT8: return b.getIntegerType(8, /*isSigned=*/false);
  case TensorProto::UINT16: return b.getIntegerType(16, false);
  case TensorProto::UINT32: return b.getIntegerType(32, false);
  case TensorProto::UINT64: return b.getIntegerType(64, false);
  case TensorProto::BOOL: return b.getI1Type();
  case TensorProto::STRING: return ir::StringType::get(ctx);
  case TensorProto::COMPLEX64: return ComplexType::get(b.getF32Type());
  case TensorProto::COMPLEX128: return ComplexType::get(b.getF64Type());
  default: return nullptr;
  }
}

int32_t elementTypeToOnnx(Type type) {
  if (type.isF32()) return TensorProto::FLOAT;
  if (type.isF64()) return TensorProto::DOUBLE;
  if (type.isF16()) return TensorProto::FLOAT16;
  if (type.isBF16()) return TensorProto::BFLOAT16;
  if (isa<ir::StringType>(type)) return TensorProto::STRING;
  if (auto complex = dyn_cast<ComplexType>(type)) {
    if (complex.getElementType().isF32()) return TensorProto::COMPLEX64;
    if (complex.getElementType().isF64()) return TensorProto::COMPLEX128;
    return 0;
  }
  if (auto integer = dyn_cast<IntegerType>(type)) {
    unsigned width = integer.getWidth();
    if (width == 1) return TensorProto::BOOL;
    bool isUnsigned = integer.isUnsigned();
    switch (width) {
    case 8: return isUnsigned ? TensorProto::UINT8 : TensorProto::INT8;
    case 16: return isUnsigned ? TensorProto::UINT16 : TensorProto::INT16;
    case 32: return isUnsigned ? TensorProto::UINT32 : TensorProto::INT32;
    case 64: return isUnsigned ? TensorProto::UINT64 : TensorProto::INT64;
    default: return 0;
    }
  }
  return 0;
}

size_t elementByteSize(int32_t dataType) {
  switch (dataType) {
  case TensorProto::BOOL:
  case TensorProto::INT8:
  case TensorProto::UINT8: return 1;
  case TensorProto::INT16:
  case TensorProto::UINT16:
  case TensorProto::FLOAT16:
  case TensorProto::BFLOAT16: return 2;
  case TensorProto::INT32:
  case TensorProto::UINT32:
  case TensorProto::FLOAT: return 4;
  case TensorProto::INT64:
  case TensorProto::UINT64:
  case TensorProto::DOUBLE:
  case TensorProto::COMPLEX64: return 8;
  case TensorProto::COMPLEX128: return 16;
  default: return 0;
  }
}

std::string toText(const google::protobuf::Message &message) {
  std::string text;
  google::protobuf::TextFormat::Printer printer;
  printer.SetSingleLineMode(true);
  printer.PrintToString(message, &text);
  // Single-line mode leaves a trailing space.
  while (!text.empty() && text.back() == ' ')
    text.pop_back();
  return text;
}

bool fromText(llvm::StringRef text, google::protobuf::Message &message) {
  return google::protobuf::TextFormat::ParseFromString(text.str(), &message);
}

std::string firstLine(llvm::StringRef message) {
  message = message.trim();
  return message.substr(0, message.find('\n')).trim().str();
}

} // namespace refold::detail

void refold::detail::forEachGraph(onnx::GraphProto &graph,
                                  llvm::function_ref<void(onnx::GraphProto &)> fn) {
  fn(graph);
  for (auto &node : *graph.mutable_node())
    for (auto &attr : *node.mutable_attribute()) {
      if (attr.has_g())
        forEachGraph(*attr.mutable_g(), fn);
      for (auto &sub : *attr.mutable_graphs())
        forEachGraph(sub, fn);
    }
}

static std::optional<std::string> runShapeInference(onnx::ModelProto &model) {
  try {
    onnx::ShapeInferenceOptions inferOptions(/*check_type=*/false, /*error_mode=*/0,
                                             /*data_prop=*/true);
    onnx::shape_inference::InferShapes(model, onnx::OpSchemaRegistry::Instance(),
                                       inferOptions);
  } catch (const std::exception &e) {
    return "shape inference stopped: " + refold::detail::firstLine(e.what());
  }
  return std::nullopt;
}

/// ONNX 1.12's inference functions trust shapes and attributes a model
/// declares (a ConvTranspose whose weight has a lower rank than its input
/// reads past a vector; Scan without num_scan_inputs dereferences null).
/// Inference runs in a child process: a crash there costs the shapes, not
/// the run. The child sends back each graph's value_info and outputs, the
/// only fields inference writes, without tensor data.
std::optional<std::string> refold::detail::inferShapesIsolated(onnx::ModelProto &model) {
#if defined(__unix__)
  int fds[2];
  if (::pipe(fds) != 0)
    return runShapeInference(model);
  fflush(nullptr);
  pid_t child = ::fork();
  if (child < 0) {
    ::close(fds[0]), ::close(fds[1]);
    return runShapeInference(model);
  }
  if (child == 0) {
    ::close(fds[0]);
    // Die quietly: the parent says what happened, in one line.
    for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT})
      ::signal(sig, SIG_DFL);
    int devNull = ::open("/dev/null", O_WRONLY);
    if (devNull >= 0)
      ::dup2(devNull, STDERR_FILENO);
    std::string reply;
    if (auto error = runShapeInference(model)) {
      reply = "E" + *error;
    } else {
      onnx::ModelProto shapes;
      refold::detail::forEachGraph(*model.mutable_graph(), [&](onnx::GraphProto &graph) {
        onnx::GraphProto *copy = shapes.mutable_graph()->add_node()->add_attribute()->mutable_g();
        copy->mutable_value_info()->Swap(graph.mutable_value_info());
        copy->mutable_output()->Swap(graph.mutable_output());
      });
      reply = "M" + shapes.SerializeAsString();
    }
    const char *data = reply.data();
    size_t left = reply.size();
    while (left > 0) {
      ssize_t written = ::write(fds[1], data, left);
      if (written <= 0)
        ::_exit(3);
      data += written, left -= size_t(written);
    }
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string reply;
  char buffer[1 << 16];
  for (ssize_t got; (got = ::read(fds[0], buffer, sizeof(buffer))) != 0;) {
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0)
      break;
    reply.append(buffer, size_t(got));
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || reply.empty())
    return std::string("ONNX shape inference crashed on this model") +
           (WIFSIGNALED(status) ? " (signal " + std::to_string(WTERMSIG(status)) + ")" : "");
  if (reply[0] == 'E')
    return reply.substr(1);
  onnx::ModelProto shapes;
  if (reply[0] != 'M' || !shapes.ParseFromArray(reply.data() + 1, int(reply.size() - 1)))
    return std::string("ONNX shape inference returned nothing readable");
  int index = 0;
  int count = shapes.graph().node_size();
  refold::detail::forEachGraph(*model.mutable_graph(), [&](onnx::GraphProto &graph) {
    if (index >= count)
      return;
    onnx::GraphProto *copy = shapes.mutable_graph()->mutable_node(index++)
                                 ->mutable_attribute(0)->mutable_g();
    graph.mutable_value_info()->Swap(copy->mutable_value_info());
    graph.mutable_output()->Swap(copy->mutable_output());
  });
  return std::nullopt;
#else
  return runShapeInference(model);
#endif
}
