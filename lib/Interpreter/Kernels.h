//===- Kernels.h - interpreter kernels --------------------------*- C++ -*-===//

#ifndef REFOLD_LIB_INTERPRETER_KERNELS_H
#define REFOLD_LIB_INTERPRETER_KERNELS_H

#include "refold/Interpreter/Tensor.h"

#include "mlir/IR/Operation.h"
#include "llvm/ADT/StringMap.h"

#include <optional>
#include <vector>

namespace refold::interp {

/// What a kernel sees: its inputs (null for a missing optional input), the
/// node's attributes and opset, and the outputs it must fill.
struct KernelContext {
  llvm::StringRef opType;
  int64_t opset = 0;
  mlir::Operation *op = nullptr;
  std::vector<const Tensor *> inputs;
  std::vector<Tensor> outputs;
  /// Number of results the node declares (optional ones may go unused).
  unsigned numOutputs = 1;

  const Tensor *in(size_t i) const { return i < inputs.size() ? inputs[i] : nullptr; }
  mlir::Attribute attr(llvm::StringRef name) const;
  int64_t i(llvm::StringRef name, int64_t fallback) const;
  float f(llvm::StringRef name, float fallback) const;
  std::string s(llvm::StringRef name, llvm::StringRef fallback) const;
  std::optional<std::vector<int64_t>> ints(llvm::StringRef name) const;
  std::optional<std::vector<float>> floats(llvm::StringRef name) const;
  llvm::Error fail(const llvm::Twine &message) const;
};

using Kernel = llvm::Error (*)(KernelContext &);
const llvm::StringMap<Kernel> &kernelRegistry();

/// evaluateOp without checking the results' types against the graph (an
/// op run on other element types, as the integer groups do).
llvm::Expected<std::vector<Tensor>> evaluateKernel(mlir::Operation *op,
                                                   llvm::ArrayRef<const Tensor *> inputs,
                                                   int64_t opset);

/// When `op` is the op of a QDQ integer group (IntegerGroups.cpp), its
/// result computed as integer kernels compute it; nullopt otherwise.
std::optional<llvm::Expected<Tensor>> runIntegerGroup(mlir::Operation *op,
                                                      llvm::ArrayRef<const Tensor *> inputs,
                                                      int64_t opset, bool fixed);

} // namespace refold::interp

#endif // REFOLD_LIB_INTERPRETER_KERNELS_H
