//===- Kernels.cpp - the interpreter's kernel registry ---------------------===//
//
// KernelContext (a node's inputs, attributes and outputs as a kernel sees
// them) and the registry of kernels, one function per ONNX operator, in
// files by family: ElementwiseKernels, LinalgKernels (matrix products,
// convolution, pooling), NormalizationKernels (normalizations, softmax,
// reductions), DataMovementKernels and QuantizationKernels.
//
//===----------------------------------------------------------------------===//

#include "KernelSupport.h"

#include "refold/Dialect/ONNX/ONNXOps.h"

#include "mlir/IR/BuiltinAttributes.h"

using namespace mlir;
using llvm::StringRef;

namespace refold::interp {

//===----------------------------------------------------------------------===//
// KernelContext
//===----------------------------------------------------------------------===//

Attribute KernelContext::attr(StringRef name) const {
  if (auto node = dyn_cast<ir::NodeOp>(op)) {
    auto attrs = node.getNodeAttrs();
    return attrs ? attrs->get(name) : Attribute();
  }
  return op->getAttr(name);
}

int64_t KernelContext::i(StringRef name, int64_t fallback) const {
  auto a = dyn_cast_or_null<IntegerAttr>(attr(name));
  return a ? a.getValue().getSExtValue() : fallback;
}

float KernelContext::f(StringRef name, float fallback) const {
  auto a = dyn_cast_or_null<FloatAttr>(attr(name));
  return a ? float(a.getValueAsDouble()) : fallback;
}

std::string KernelContext::s(StringRef name, StringRef fallback) const {
  auto a = dyn_cast_or_null<StringAttr>(attr(name));
  return (a ? a.getValue() : fallback).str();
}

std::optional<std::vector<int64_t>> KernelContext::ints(StringRef name) const {
  auto a = dyn_cast_or_null<DenseI64ArrayAttr>(attr(name));
  if (!a)
    return std::nullopt;
  return std::vector<int64_t>(a.asArrayRef().begin(), a.asArrayRef().end());
}

std::optional<std::vector<float>> KernelContext::floats(StringRef name) const {
  auto a = dyn_cast_or_null<DenseF32ArrayAttr>(attr(name));
  if (!a)
    return std::nullopt;
  return std::vector<float>(a.asArrayRef().begin(), a.asArrayRef().end());
}

Error KernelContext::fail(const llvm::Twine &message) const {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 (opType + ": " + message).str());
}


const llvm::StringMap<Kernel> &kernelRegistry() {
  static const llvm::StringMap<Kernel> registry = [] {
    llvm::StringMap<Kernel> all;
    registerElementwiseKernels(all);
    registerLinalgKernels(all);
    registerNormalizationKernels(all);
    registerDataMovementKernels(all);
    registerQuantizationKernels(all);
    return all;
  }();
  return registry;
}

} // namespace refold::interp
