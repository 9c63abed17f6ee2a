//===- Tensor.cpp - runtime tensors of the reference interpreter ------------===//

#include "refold/Interpreter/Tensor.h"

#include "refold/Dialect/ONNX/ONNXOps.h"
#include "refold/Dialect/ONNX/OwnedBlob.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

#include <onnx/onnx_pb.h>

#include <Eigen/Core>

#include <limits>

using namespace mlir;
using llvm::StringRef;

namespace refold::interp {

static llvm::Error error(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message.str());
}

size_t dtypeSize(DType type) {
  switch (type) {
  case DType::Bool: case DType::I8: case DType::U8: return 1;
  case DType::I16: case DType::U16: case DType::F16: case DType::BF16: return 2;
  case DType::I32: case DType::U32: case DType::F32: return 4;
  case DType::I64: case DType::U64: case DType::F64: return 8;
  case DType::String: return 0;
  }
  return 0;
}

StringRef dtypeName(DType type) {
  switch (type) {
  case DType::F32: return "float32";
  case DType::F64: return "float64";
  case DType::F16: return "float16";
  case DType::BF16: return "bfloat16";
  case DType::I8: return "int8";
  case DType::I16: return "int16";
  case DType::I32: return "int32";
  case DType::I64: return "int64";
  case DType::U8: return "uint8";
  case DType::U16: return "uint16";
  case DType::U32: return "uint32";
  case DType::U64: return "uint64";
  case DType::Bool: return "bool";
  case DType::String: return "string";
  }
  return "?";
}

std::optional<DType> dtypeFromMLIR(Type type) {
  if (type.isF32()) return DType::F32;
  if (type.isF64()) return DType::F64;
  if (type.isF16()) return DType::F16;
  if (type.isBF16()) return DType::BF16;
  if (auto i = dyn_cast<IntegerType>(type)) {
    bool u = i.isUnsigned();
    switch (i.getWidth()) {
    case 1: return DType::Bool;
    case 8: return u ? DType::U8 : DType::I8;
    case 16: return u ? DType::U16 : DType::I16;
    case 32: return u ? DType::U32 : DType::I32;
    case 64: return u ? DType::U64 : DType::I64;
    }
  }
  return std::nullopt;
}

int64_t numElements(llvm::ArrayRef<int64_t> shape) {
  // Saturates: a shape whose count overflows matches no tensor that exists.
  int64_t n = 1;
  for (int64_t d : shape)
    if (__builtin_mul_overflow(n, d, &n))
      return std::numeric_limits<int64_t>::max();
  return n;
}

std::string shapeString(llvm::ArrayRef<int64_t> shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

/// The bytes of a `type` tensor of `shape`, checked against
/// kMaxTensorBytes before anything is allocated.
static size_t checkedByteSize(DType type, llvm::ArrayRef<int64_t> shape) {
  uint64_t elements = 1;
  bool tooLarge = false;
  for (int64_t d : shape) {
    if (d < 0)
      throw InterpreterError("a tensor of shape " + shapeString(shape) +
                             " (negative dimension)");
    if (d && elements > kMaxTensorBytes / uint64_t(d))
      tooLarge = true;
    elements = tooLarge ? elements : elements * uint64_t(d);
  }
  uint64_t bytes = elements * std::max<size_t>(dtypeSize(type), 1);
  if (tooLarge || elements > kMaxTensorBytes || bytes > kMaxTensorBytes)
    throw InterpreterError("a tensor of shape " + shapeString(shape) + " is larger than the " +
                           "interpreter's limit of 4 GiB");
  return size_t(bytes);
}

Tensor::Tensor(DType type, llvm::ArrayRef<int64_t> shape)
    : type(type), dims(shape.begin(), shape.end()),
      storage(new char[std::max<size_t>(checkedByteSize(type, shape), 1)](),
              std::default_delete<char[]>()) {}

Tensor Tensor::view(DType type, llvm::ArrayRef<int64_t> shape, const void *data) {
  Tensor t;
  t.type = type;
  t.dims.assign(shape.begin(), shape.end());
  t.storage = std::shared_ptr<char>(const_cast<char *>(static_cast<const char *>(data)),
                                    [](char *) {});
  return t;
}

Tensor Tensor::bitcast(DType newType) const {
  Tensor t = *this;
  t.type = newType;
  return t;
}

Tensor Tensor::reshaped(llvm::ArrayRef<int64_t> shape) const {
  Tensor t = *this;
  t.dims.assign(shape.begin(), shape.end());
  return t;
}

double Tensor::asDouble(int64_t i) const {
  switch (type) {
  case DType::F32: return data<float>()[i];
  case DType::F64: return data<double>()[i];
  case DType::I8: return data<int8_t>()[i];
  case DType::I16: return data<int16_t>()[i];
  case DType::I32: return data<int32_t>()[i];
  case DType::I64: return double(data<int64_t>()[i]);
  case DType::U8: return data<uint8_t>()[i];
  case DType::U16: return data<uint16_t>()[i];
  case DType::U32: return data<uint32_t>()[i];
  case DType::U64: return double(data<uint64_t>()[i]);
  case DType::Bool: return data<uint8_t>()[i] != 0;
  case DType::F16: return double(Eigen::half(Eigen::numext::bit_cast<Eigen::half>(data<uint16_t>()[i])));
  case DType::BF16:
    return double(Eigen::numext::bit_cast<Eigen::bfloat16>(data<uint16_t>()[i]));
  default: return 0;
  }
}

void Tensor::setDouble(int64_t i, double v) {
  switch (type) {
  case DType::F32: data<float>()[i] = float(v); break;
  case DType::F64: data<double>()[i] = v; break;
  case DType::F16: data<uint16_t>()[i] = Eigen::numext::bit_cast<uint16_t>(Eigen::half(float(v))); break;
  case DType::BF16:
    data<uint16_t>()[i] = Eigen::numext::bit_cast<uint16_t>(Eigen::bfloat16(float(v)));
    break;
  case DType::Bool: data<uint8_t>()[i] = v != 0; break;
  case DType::I8: data<int8_t>()[i] = int8_t(v); break;
  case DType::I16: data<int16_t>()[i] = int16_t(v); break;
  case DType::I32: data<int32_t>()[i] = int32_t(v); break;
  case DType::I64: data<int64_t>()[i] = int64_t(v); break;
  case DType::U8: data<uint8_t>()[i] = uint8_t(v); break;
  case DType::U16: data<uint16_t>()[i] = uint16_t(v); break;
  case DType::U32: data<uint32_t>()[i] = uint32_t(v); break;
  case DType::U64: data<uint64_t>()[i] = uint64_t(v); break;
  case DType::String: break;
  }
}

int64_t Tensor::asInt(int64_t i) const {
  switch (type) {
  case DType::I64: return data<int64_t>()[i];
  case DType::I32: return data<int32_t>()[i];
  case DType::U64: return int64_t(data<uint64_t>()[i]);
  default: return int64_t(asDouble(i));
  }
}

std::vector<int64_t> Tensor::toInts() const {
  std::vector<int64_t> values(size());
  for (int64_t i = 0; i < size(); ++i)
    values[i] = asInt(i);
  return values;
}

Tensor Tensor::scalarF32(float v) {
  Tensor t(DType::F32, {});
  t.data<float>()[0] = v;
  return t;
}

Tensor Tensor::fromInts(llvm::ArrayRef<int64_t> values, llvm::ArrayRef<int64_t> shape) {
  Tensor t(DType::I64, shape);
  std::copy(values.begin(), values.end(), t.data<int64_t>());
  return t;
}

llvm::Expected<Tensor> tensorFromAttr(ElementsAttr attr) {
  auto type = cast<ShapedType>(attr.getType());
  auto dtype = dtypeFromMLIR(type.getElementType());
  if (!dtype)
    return error("constant of unsupported element type");
  size_t bytes = numElements(type.getShape()) * dtypeSize(*dtype);
  if (auto resource = dyn_cast<DenseResourceElementsAttr>(attr)) {
    AsmResourceBlob *blob = resource.getRawHandle().getBlob();
    if (!blob || blob->getData().size() != bytes)
      return error("weight '" + resource.getRawHandle().getKey() + "' has no data");
    // Weights are read in place: no copy per run.
    if (reinterpret_cast<uintptr_t>(blob->getData().data()) % dtypeSize(*dtype) == 0)
      return Tensor::view(*dtype, type.getShape(), blob->getData().data());
    Tensor t(*dtype, type.getShape());
    std::memcpy(t.raw(), blob->getData().data(), bytes);
    return t;
  }
  Tensor t(*dtype, type.getShape());
  auto dense = dyn_cast<DenseElementsAttr>(attr);
  if (!dense)
    return error("unsupported constant kind");
  if (*dtype == DType::Bool) {
    int64_t i = 0;
    for (bool b : dense.getValues<bool>())
      t.data<uint8_t>()[i++] = b;
    return t;
  }
  ArrayRef<char> raw = dense.getRawData();
  if (dense.isSplat()) {
    size_t element = dtypeSize(*dtype);
    for (int64_t i = 0; i < t.size(); ++i)
      std::memcpy(t.raw() + i * element, raw.data(), element);
  } else if (bytes > 0) { // an empty tensor may have no storage at all
    std::memcpy(t.raw(), raw.data(), bytes);
  }
  return t;
}

ElementsAttr tensorToAttr(const Tensor &tensor, MLIRContext *context, StringRef blobName) {
  Builder b(context);
  Type element;
  switch (tensor.dtype()) {
  case DType::F32: element = b.getF32Type(); break;
  case DType::F64: element = b.getF64Type(); break;
  case DType::F16: element = b.getF16Type(); break;
  case DType::BF16: element = b.getBF16Type(); break;
  case DType::Bool: element = b.getI1Type(); break;
  case DType::I8: element = b.getIntegerType(8); break;
  case DType::I16: element = b.getIntegerType(16); break;
  case DType::I32: element = b.getIntegerType(32); break;
  case DType::I64: element = b.getIntegerType(64); break;
  case DType::U8: element = b.getIntegerType(8, false); break;
  case DType::U16: element = b.getIntegerType(16, false); break;
  case DType::U32: element = b.getIntegerType(32, false); break;
  case DType::U64: element = b.getIntegerType(64, false); break;
  case DType::String: return {};
  }
  auto type = RankedTensorType::get(tensor.shape(), element);
  ArrayRef<char> bytes(tensor.raw(), tensor.byteSize());
  if (tensor.dtype() == DType::Bool) {
    SmallVector<bool> values;
    for (int64_t i = 0; i < tensor.size(); ++i)
      values.push_back(tensor.data<uint8_t>()[i] != 0);
    return DenseElementsAttr::get(type, values);
  }
  if (bytes.size() <= 64) {
    if (tensor.size() == 0)
      return DenseElementsAttr::get(type, ArrayRef<Attribute>{});
    return DenseElementsAttr::getFromRawBuffer(type, bytes);
  }
  return ir::createWeightAttr(type, ir::resourceKey(blobName.empty() ? "folded" : blobName),
                              std::string(bytes.data(), bytes.size()));
}

static llvm::Expected<Tensor> fromTensorProto(const onnx::TensorProto &proto, StringRef path) {
  if (proto.data_location() == onnx::TensorProto::EXTERNAL)
    return error(path + ": tensors with external data are not supported here");
  auto dtype = static_cast<DType>(proto.data_type());
  if (dtypeSize(dtype) == 0)
    return error(path + ": unsupported tensor data type " + llvm::Twine(proto.data_type()));
  Shape shape(proto.dims().begin(), proto.dims().end());
  uint64_t count = 1;
  for (int64_t d : shape) {
    if (d < 0 || (d && count > (uint64_t(1) << 40) / uint64_t(d)))
      return error(path + ": impossible shape");
    count *= d;
  }
  // Check the data against the shape before allocating anything.
  uint64_t available = proto.has_raw_data() ? proto.raw_data().size() / dtypeSize(dtype)
                       : dtype == DType::F32 ? proto.float_data_size()
                       : dtype == DType::F64 ? proto.double_data_size()
                       : dtype == DType::I64 ? proto.int64_data_size()
                       : (dtype == DType::U64 || dtype == DType::U32) ? proto.uint64_data_size()
                                                                       : proto.int32_data_size();
  if (available != count ||
      (proto.has_raw_data() && proto.raw_data().size() != count * dtypeSize(dtype)))
    return error(path + ": tensor data does not match its shape " + shapeString(shape));
  Tensor t(dtype, shape);
  size_t bytes = t.byteSize();
  if (proto.has_raw_data()) {
    std::memcpy(t.raw(), proto.raw_data().data(), bytes);
    return t;
  }
  auto copyField = [&](const auto &field) -> llvm::Error {
    if ((int64_t)field.size() != t.size())
      return error(path + ": tensor data does not match its shape " + shapeString(shape));
    for (int64_t i = 0; i < t.size(); ++i) {
      auto v = field.Get(i);
      switch (dtype) {
      case DType::F32: t.data<float>()[i] = v; break;
      case DType::F64: t.data<double>()[i] = v; break;
      case DType::I64: t.data<int64_t>()[i] = v; break;
      case DType::U64: t.data<uint64_t>()[i] = v; break;
      case DType::I32: t.data<int32_t>()[i] = v; break;
      case DType::U32: t.data<uint32_t>()[i] = v; break;
      case DType::I16: case DType::U16: case DType::F16: case DType::BF16:
        t.data<uint16_t>()[i] = static_cast<uint16_t>(v); break;
      default: t.data<uint8_t>()[i] = static_cast<uint8_t>(v); break;
      }
    }
    return llvm::Error::success();
  };
  llvm::Error err = llvm::Error::success();
  switch (dtype) {
  case DType::F32: err = copyField(proto.float_data()); break;
  case DType::F64: err = copyField(proto.double_data()); break;
  case DType::I64: err = copyField(proto.int64_data()); break;
  case DType::U64: case DType::U32: err = copyField(proto.uint64_data()); break;
  default: err = copyField(proto.int32_data()); break;
  }
  if (err)
    return std::move(err);
  return t;
}

/// numpy .npy, version 1/2/3, little-endian, C order.
llvm::Expected<NpyHeader> parseNpyHeader(StringRef bytes, StringRef path) {
  if (!bytes.starts_with("\x93NUMPY") || bytes.size() < 10)
    return error(path + ": not a .npy file");
  unsigned major = (unsigned char)bytes[6];
  size_t headerLen, start;
  if (major == 1) {
    headerLen = (unsigned char)bytes[8] | ((unsigned char)bytes[9] << 8);
    start = 10;
  } else {
    if (bytes.size() < 12)
      return error(path + ": truncated .npy header");
    headerLen = (unsigned char)bytes[8] | ((unsigned char)bytes[9] << 8) |
                ((unsigned char)bytes[10] << 16) | ((size_t)(unsigned char)bytes[11] << 24);
    start = 12;
  }
  if (start + headerLen > bytes.size())
    return error(path + ": truncated .npy header");
  StringRef header = bytes.substr(start, headerLen);
  auto field = [&](StringRef key) -> StringRef {
    size_t at = header.find("'" + key.str() + "'");
    if (at == StringRef::npos)
      return {};
    StringRef rest = header.drop_front(at + key.size() + 2).ltrim(" :");
    return rest;
  };
  StringRef descr = field("descr");
  if (descr.empty() || descr.front() != '\'')
    return error(path + ": .npy header has no dtype");
  descr = descr.drop_front().take_until([](char c) { return c == '\''; });
  static const std::pair<StringRef, DType> kinds[] = {
      {"<f4", DType::F32}, {"<f8", DType::F64}, {"<f2", DType::F16}, {"<i8", DType::I64},
      {"<i4", DType::I32}, {"<i2", DType::I16}, {"|i1", DType::I8}, {"|u1", DType::U8},
      {"<u2", DType::U16}, {"<u4", DType::U32}, {"<u8", DType::U64}, {"|b1", DType::Bool}};
  std::optional<DType> dtype;
  for (auto &[name, type] : kinds)
    if (descr == name)
      dtype = type;
  if (!dtype)
    return error(path + ": unsupported .npy dtype '" + descr + "'");
  if (field("fortran_order").starts_with("True"))
    return error(path + ": Fortran-ordered .npy arrays are not supported");
  StringRef shapeText = field("shape");
  if (shapeText.empty() || shapeText.front() != '(')
    return error(path + ": .npy header has no shape");
  shapeText = shapeText.drop_front().take_until([](char c) { return c == ')'; });
  Shape shape;
  SmallVector<StringRef> parts;
  shapeText.split(parts, ',', -1, false);
  for (StringRef part : parts) {
    part = part.trim();
    if (part.empty())
      continue;
    int64_t d;
    if (part.getAsInteger(10, d) || d < 0)
      return error(path + ": bad .npy shape");
    shape.push_back(d);
  }
  return NpyHeader{*dtype, shape, start + headerLen};
}

static llvm::Expected<Tensor> fromNpy(StringRef bytes, StringRef path) {
  auto header = parseNpyHeader(bytes, path);
  if (!header)
    return header.takeError();
  Tensor t(header->dtype, header->shape);
  StringRef payload = bytes.drop_front(header->dataOffset);
  if (payload.size() != t.byteSize())
    return error(path + ": .npy data does not match its shape " + shapeString(header->shape));
  std::memcpy(t.raw(), payload.data(), payload.size());
  return t;
}

llvm::Expected<Tensor> readTensorFile(StringRef path) {
  auto buffer = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                            /*RequiresNullTerminator=*/false);
  if (!buffer)
    return error(path + ": cannot read: " + buffer.getError().message());
  StringRef bytes = (*buffer)->getBuffer();
  if (bytes.starts_with("\x93NUMPY"))
    return fromNpy(bytes, path);
  onnx::TensorProto proto;
  if (!proto.ParseFromArray(bytes.data(), int(bytes.size())))
    return error(path + ": not a TensorProto (.pb) or numpy (.npy) file");
  return fromTensorProto(proto, path);
}

llvm::Error writeTensorProto(const Tensor &tensor, StringRef name, StringRef path) {
  onnx::TensorProto proto;
  proto.set_name(name.str());
  proto.set_data_type(static_cast<int32_t>(tensor.dtype()));
  for (int64_t d : tensor.shape())
    proto.add_dims(d);
  proto.set_raw_data(tensor.raw(), tensor.byteSize());
  std::string bytes;
  proto.SerializeToString(&bytes);
  return llvm::writeToOutput(path, [&](llvm::raw_ostream &os) {
    os << bytes;
    return llvm::Error::success();
  });
}

} // namespace refold::interp
