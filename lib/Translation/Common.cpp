//===- Common.cpp - shared by the ONNX importer and exporter ---------------===//

#include "Common.h"

#include "refold/Dialect/ONNX/ONNXOps.h"

#include "mlir/IR/Builders.h"

#include <google/protobuf/text_format.h>

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
