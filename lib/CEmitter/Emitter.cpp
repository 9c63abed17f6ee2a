//===- Emitter.cpp - what every lowering shares ------------------------------===//

#include "Lowering.h"

#include "refold/Dialect/ONNX/ONNXOps.h"
#include "refold/Interpreter/Interpreter.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "llvm/Support/Format.h"

#include <cmath>
#include <cstring>

using namespace mlir;

namespace refold::cemit {

Attribute NodeAttrs::get(StringRef name) const {
  if (auto node = dyn_cast<ir::NodeOp>(op)) {
    auto attrs = node.getNodeAttrs();
    return attrs ? attrs->get(name) : Attribute();
  }
  return op->getAttr(name);
}

int64_t NodeAttrs::i(StringRef name, int64_t fallback) const {
  auto a = dyn_cast_or_null<IntegerAttr>(get(name));
  return a ? a.getValue().getSExtValue() : fallback;
}

float NodeAttrs::f(StringRef name, float fallback) const {
  auto a = dyn_cast_or_null<FloatAttr>(get(name));
  return a ? float(a.getValueAsDouble()) : fallback;
}

std::string NodeAttrs::s(StringRef name, StringRef fallback) const {
  auto a = dyn_cast_or_null<StringAttr>(get(name));
  return (a ? a.getValue() : fallback).str();
}

std::optional<std::vector<int64_t>> NodeAttrs::ints(StringRef name) const {
  auto a = dyn_cast_or_null<DenseI64ArrayAttr>(get(name));
  if (!a)
    return std::nullopt;
  return std::vector<int64_t>(a.asArrayRef().begin(), a.asArrayRef().end());
}

StringRef opTypeOf(Operation *op) { return ir::opTypeOf(op); }

std::string describeOp(Operation *op) { return ir::describeNode(op, /*outputFallback=*/true); }

std::string cTypeOf(DType type) {
  switch (type) {
  case DType::F32: return "float";
  case DType::F64: return "double";
  case DType::I8: return "int8_t";
  case DType::U8: return "uint8_t";
  case DType::Bool: return "uint8_t";
  case DType::I16: return "int16_t";
  case DType::U16: return "uint16_t";
  case DType::F16: return "uint16_t";
  case DType::BF16: return "uint16_t";
  case DType::I32: return "int32_t";
  case DType::U32: return "uint32_t";
  case DType::I64: return "int64_t";
  case DType::U64: return "uint64_t";
  default: return "";
  }
}

std::optional<DType> elementDType(Value v) {
  auto type = dyn_cast<TensorType>(v.getType());
  if (!type)
    return std::nullopt;
  return interp::dtypeFromMLIR(type.getElementType());
}

llvm::Error Emitter::unsupported(Operation *op, const Twine &why) const {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 "cannot emit C for " + describeOp(op) + ": " + why);
}

llvm::Expected<std::vector<int64_t>> Emitter::shapeOf(Operation *op, Value v) const {
  auto type = dyn_cast<RankedTensorType>(v.getType());
  if (!type || !type.hasStaticShape())
    return unsupported(op, "a tensor's shape is not static (pin symbolic dimensions with --dim)");
  return std::vector<int64_t>(type.getShape().begin(), type.getShape().end());
}

std::optional<Tensor> Emitter::constant(Value v) const {
  if (!v || ir::isNoneValue(v))
    return std::nullopt;
  // A weight a QDQ model dequantizes is a constant too: one the float
  // kernels pack like any other when no integer kernel takes the layer.
  Operation *def = v.getDefiningOp();
  if (def && ir::opTypeOf(def) == "DequantizeLinear") {
    auto [it, inserted] = folded.try_emplace(v);
    if (!inserted)
      return it->second;
    std::vector<Tensor> inputs;
    for (Value operand : def->getOperands()) {
      if (ir::isNoneValue(operand)) {
        inputs.emplace_back();
        continue;
      }
      auto t = interp::constantValue(operand);
      if (!t)
        return std::nullopt;
      inputs.push_back(std::move(*t));
    }
    std::vector<const Tensor *> pointers;
    for (auto [i, operand] : llvm::enumerate(def->getOperands()))
      pointers.push_back(ir::isNoneValue(operand) ? nullptr : &inputs[i]);
    auto result = interp::evaluateOp(def, pointers, opset);
    if (!result) {
      llvm::consumeError(result.takeError());
      return std::nullopt;
    }
    it = folded.find(v);
    it->second = std::move((*result)[0]);
    return it->second;
  }
  return interp::constantValue(v);
}

Operation *Emitter::singleUser(Value v) const {
  if (!v.hasOneUse())
    return nullptr;
  Operation *user = *v.getUsers().begin();
  if (user->hasTrait<OpTrait::IsTerminator>())
    return nullptr;
  return user;
}

uint64_t Emitter::addWeight(const void *data, size_t bytes) {
  uint64_t offset = (blob.size() + 63) / 64 * 64;
  blob.resize(offset + bytes);
  if (bytes)
    std::memcpy(blob.data() + offset, data, bytes);
  return offset;
}

uint64_t Emitter::weightOf(Value v) {
  auto it = weightOffsets.find(v);
  if (it != weightOffsets.end())
    return it->second;
  std::optional<Tensor> t = constant(v);
  uint64_t offset = t ? addWeight(t->raw(), t->byteSize()) : addWeight(nullptr, 0);
  weightOffsets[v] = offset;
  return offset;
}

std::string Emitter::declare(StringRef kind, StringRef type, StringRef init) {
  std::string name = "rf_" + kind.str() + std::to_string(declCount++);
  decls += "static const " + type.str() + " " + name + init.str() + ";\n";
  return name;
}

std::string Emitter::intArray(ArrayRef<int64_t> values, StringRef type) {
  std::string init = "[] = {";
  for (auto [i, v] : llvm::enumerate(values))
    init += (i ? ", " : "") + std::to_string(v);
  if (values.empty())
    init += "0";
  init += "}";
  return declare("i", type, init);
}

std::string Emitter::floatArray(ArrayRef<float> values) {
  std::string init = "[] = {";
  for (auto [i, v] : llvm::enumerate(values))
    init += (i ? ", " : "") + floatLiteral(v);
  if (values.empty())
    init += "0";
  init += "}";
  return declare("f", "float", init);
}

std::string Emitter::floatLiteral(float v) {
  if (std::isnan(v))
    return "NAN";
  if (std::isinf(v))
    return v > 0 ? "INFINITY" : "-INFINITY";
  if (v == 0)
    return std::signbit(v) ? "-0.0f" : "0.0f";
  char buffer[64];
  // Hex floats are exact; the decimal is for people.
  std::snprintf(buffer, sizeof(buffer), "%af", double(v));
  return buffer;
}

std::string Emitter::ptr(Value v, bool writable) const {
  auto dtype = elementDType(v);
  std::string type = dtype ? cTypeOf(*dtype) : "float";
  auto it = slots.find(v);
  if (it == slots.end() || it->second.buffer < 0)
    return "NULL";
  const Buffer &b = buffers[it->second.buffer];
  uint64_t off = it->second.byteOffset;
  std::string base;
  switch (b.kind) {
  case Storage::Arena: base = "ws"; off += b.offset; break;
  case Storage::Input: base = "in" + std::to_string(b.index); break;
  case Storage::Output: base = "out" + std::to_string(b.index); break;
  case Storage::Weight: base = "wb"; off += b.offset; break;
  }
  bool isConst = !writable || b.kind == Storage::Input || b.kind == Storage::Weight;
  std::string q = isConst ? "const " : "";
  std::string address = off ? "(" + base + " + " + std::to_string(off) + ")" : base;
  return "(" + q + type + " *)(" + q + "void *)" + address;
}

std::string Emitter::scratch(StringRef type, uint64_t offset) const {
  int index = scratchBuffer[currentStep];
  if (index < 0)
    return "NULL";
  uint64_t at = buffers[index].offset + offset;
  return "(" + type.str() + " *)(void *)" + (at ? "(ws + " + std::to_string(at) + ")" : std::string("ws"));
}

} // namespace refold::cemit
