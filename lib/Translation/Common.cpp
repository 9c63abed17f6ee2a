//===- Common.cpp - shared by the ONNX importer and exporter ---------------===//

#include "Common.h"

#include "refold/Dialect/ONNX/ONNXOps.h"
#include "refold/Translation/ONNXModel.h"

#include "mlir/IR/Builders.h"

#include <google/protobuf/text_format.h>
#include <onnx/defs/schema.h>
#include <onnx/shape_inference/implementation.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cassert>
#include <fcntl.h>
#include <sys/socket.h>
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

#if defined(__unix__)
// ONNX 1.12's inference functions trust shapes and attributes a model
// declares (a ConvTranspose whose weight has a lower rank than its input
// reads past a vector; Scan without num_scan_inputs dereferences null).
// Inference runs in a child process: a crash there costs the shapes, not
// the run. The child sends back each graph's value_info and outputs, the
// only fields inference writes, without tensor data.
namespace {

/// The child's answer: 'E' and why inference stopped, or 'M' and a model
/// whose nodes each hold one graph's value_info and outputs.
std::string inferAndReply(onnx::ModelProto &model) {
  if (auto error = runShapeInference(model))
    return "E" + *error;
  onnx::ModelProto shapes;
  refold::detail::forEachGraph(*model.mutable_graph(), [&](onnx::GraphProto &graph) {
    onnx::GraphProto *copy = shapes.mutable_graph()->add_node()->add_attribute()->mutable_g();
    copy->mutable_value_info()->Swap(graph.mutable_value_info());
    copy->mutable_output()->Swap(graph.mutable_output());
  });
  return "M" + shapes.SerializeAsString();
}

/// Moves what a reply carries into `model`; returns its error, if any.
std::optional<std::string> applyReply(onnx::ModelProto &model, const std::string &reply) {
  if (!reply.empty() && reply[0] == 'E')
    return reply.substr(1);
  onnx::ModelProto shapes;
  if (reply.empty() || reply[0] != 'M' ||
      !shapes.ParseFromArray(reply.data() + 1, int(reply.size() - 1)))
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
}

std::string crashMessage(int status) {
  return std::string("ONNX shape inference crashed on this model") +
         (WIFSIGNALED(status) ? " (signal " + std::to_string(WTERMSIG(status)) + ")" : "");
}

/// Set up a freshly forked child to die quietly: the parent says what
/// happened, in one line.
void quietChild() {
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT})
    ::signal(sig, SIG_DFL);
  int devNull = ::open("/dev/null", O_WRONLY);
  if (devNull >= 0)
    ::dup2(devNull, STDERR_FILENO);
}

/// Writes to a socket (no SIGPIPE if the other side has died).
bool writeAll(int fd, const char *data, size_t size) {
  while (size > 0) {
    ssize_t written = ::send(fd, data, size, MSG_NOSIGNAL);
    if (written < 0 && errno == EINTR)
      continue;
    if (written <= 0)
      return false;
    data += written, size -= size_t(written);
  }
  return true;
}

bool readAll(int fd, char *data, size_t size) {
  while (size > 0) {
    ssize_t got = ::read(fd, data, size);
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0)
      return false;
    data += got, size -= size_t(got);
  }
  return true;
}

/// A message on the worker's socket: its size, then its bytes.
bool sendMessage(int fd, const std::string &bytes) {
  uint64_t size = bytes.size();
  return writeAll(fd, reinterpret_cast<const char *>(&size), sizeof(size)) &&
         writeAll(fd, bytes.data(), bytes.size());
}

bool receiveMessage(int fd, std::string &bytes, uint64_t limit) {
  uint64_t size = 0;
  if (!readAll(fd, reinterpret_cast<char *>(&size), sizeof(size)) || size > limit)
    return false;
  bytes.resize(size);
  return readAll(fd, bytes.data(), size);
}

/// Largest model sent to the worker; larger ones get a fork of their own
/// (copying them through a socket would cost more than the fork).
constexpr uint64_t kWorkerModelLimit = 4 << 20;

/// The long-lived child behind refold::ShapeInferenceWorker.
class InferenceWorker {
public:
  ~InferenceWorker() { stop(); }

  /// Infers `model`'s shapes in the child (started on first use); false
  /// when no child could be started.
  bool infer(onnx::ModelProto &model, std::optional<std::string> &error) {
    if (pid < 0 && !start())
      return false;
    std::string reply;
    if (!sendMessage(socket, model.SerializeAsString()) ||
        !receiveMessage(socket, reply, uint64_t(1) << 31)) {
      error = crashMessage(stop());
      return true;
    }
    error = applyReply(model, reply);
    return true;
  }

private:
  bool start() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
      return false;
    fflush(nullptr);
    pid = ::fork();
    if (pid < 0) {
      ::close(fds[0]), ::close(fds[1]);
      return false;
    }
    if (pid == 0) {
      ::close(fds[0]);
      quietChild();
      std::string request;
      while (receiveMessage(fds[1], request, kWorkerModelLimit)) {
        onnx::ModelProto model;
        std::string reply = model.ParseFromString(request)
                                ? inferAndReply(model)
                                : "Ethe model did not parse in the shape-inference worker";
        if (!sendMessage(fds[1], reply))
          break;
      }
      ::_exit(0);
    }
    ::close(fds[1]);
    socket = fds[0];
    return true;
  }

  /// Ends the child (it exits when its socket closes); returns its status.
  int stop() {
    int status = 0;
    if (pid < 0)
      return status;
    ::close(socket);
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    pid = -1, socket = -1;
    return status;
  }

  pid_t pid = -1;
  int socket = -1;
};

InferenceWorker *activeWorker = nullptr;

/// One fork for this model alone.
std::optional<std::string> inferInForkedChild(onnx::ModelProto &model) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
    return runShapeInference(model);
  fflush(nullptr);
  pid_t child = ::fork();
  if (child < 0) {
    ::close(fds[0]), ::close(fds[1]);
    return runShapeInference(model);
  }
  if (child == 0) {
    ::close(fds[0]);
    quietChild();
    std::string reply = inferAndReply(model);
    ::_exit(writeAll(fds[1], reply.data(), reply.size()) ? 0 : 3);
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
    return crashMessage(status);
  return applyReply(model, reply);
}

} // namespace

refold::ShapeInferenceWorker::ShapeInferenceWorker() {
  assert(!activeWorker && "one ShapeInferenceWorker at a time");
  activeWorker = new InferenceWorker();
}

refold::ShapeInferenceWorker::~ShapeInferenceWorker() {
  delete activeWorker;
  activeWorker = nullptr;
}

std::optional<std::string> refold::detail::inferShapesIsolated(onnx::ModelProto &model) {
  std::optional<std::string> error;
  if (activeWorker && model.ByteSizeLong() <= kWorkerModelLimit &&
      activeWorker->infer(model, error))
    return error;
  return inferInForkedChild(model);
}
#else
refold::ShapeInferenceWorker::ShapeInferenceWorker() = default;
refold::ShapeInferenceWorker::~ShapeInferenceWorker() = default;

std::optional<std::string> refold::detail::inferShapesIsolated(onnx::ModelProto &model) {
  return runShapeInference(model);
}
#endif
