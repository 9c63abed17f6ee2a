//===- Interpreter.h - reference interpreter for the onnx dialect -*- C++ -*-===//
//
// Executes the main graph of an imported model on the CPU (Eigen for the
// heavy kernels). It verifies rewrites, runs calibration data and is the
// oracle for generated code, so an op it cannot run is an error naming the
// op, never a guess.
//
//===----------------------------------------------------------------------===//

#ifndef REFOLD_INTERPRETER_INTERPRETER_H
#define REFOLD_INTERPRETER_INTERPRETER_H

#include "refold/Interpreter/Tensor.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/StringMap.h"

#include <functional>
#include <optional>
#include <utility>
#include <map>

namespace refold::interp {

/// Named inputs and outputs of a run.
using TensorMap = std::map<std::string, Tensor>;

struct RunOptions {
  /// Values for symbolic dimensions (dim_params) of generated inputs.
  llvm::StringMap<int64_t> dims;
  /// When set, told each dynamic dimension a generated input sizes by
  /// default (defaultDimSize): input name, axis, symbolic name or "", size.
  std::function<void(llvm::StringRef, int64_t, llvm::StringRef, int64_t)> onDefaultDim;
  /// Seed of generated random inputs.
  uint64_t seed = 0;
  /// When set, receives the milliseconds spent per operator type.
  std::map<std::string, double> *profile = nullptr;
  /// When set, sees every graph input and every op result as it is
  /// computed (calibration), before the interpreter releases it.
  std::function<void(mlir::Value, const Tensor &)> observe;
  /// Runs a QDQ model's integer groups (DequantizeLinear -> Conv/Gemm/
  /// MatMul -> QuantizeLinear, ...) as integer kernels do, exactly
  /// (IntegerGroups.cpp), instead of each op in float as written.
  bool integerQDQ = false;
  /// With integerQDQ: requantize with an int32 multiplier and a shift
  /// (fixedPointMultiplier), as the C output's --c-requant=fixed does.
  bool fixedRequant = false;
};

/// A requantization multiplier m as a Q31 integer and a right shift:
/// m ~ multiplier / 2^shift, multiplier in [2^30, 2^31), shift in [1, 62]
/// (0 and 1 for a multiplier below 2^-31); nullopt when m >= 2^30.
std::optional<std::pair<int32_t, int>> fixedPointMultiplier(double m);

/// (acc * multiplier + 2^(shift - 1)) >> shift: requantization without float.
inline int64_t fixedPointScale(int64_t acc, int32_t multiplier, int shift) {
  return (acc * multiplier + (int64_t(1) << (shift - 1))) >> shift;
}

/// The size of a dynamic input dimension nothing pins: 224 on the spatial
/// axes (2 and up) of a 4-D input (an image, NCHW), 1 elsewhere.
int64_t defaultDimSize(int64_t axis, int64_t rank);

/// Runs `module`'s main graph. Inputs missing from `inputs` are generated
/// (uniform in [-1, 1) for floats, small non-negative integers otherwise)
/// and added to `inputs`, so a caller can replay them elsewhere.
llvm::Expected<TensorMap> run(mlir::ModuleOp module, TensorMap &inputs,
                              const RunOptions &options);

/// The tensor of each graph input, in order: given in `inputs` (checked
/// against the model), the input's default, or generated (and then added to
/// `inputs`).
llvm::Expected<std::vector<Tensor>> bindInputs(mlir::ModuleOp module, TensorMap &inputs,
                                               const RunOptions &options);

/// The ONNX names of the main graph's inputs, in order.
std::vector<std::string> graphInputNames(mlir::ModuleOp module);

/// The ONNX op types the interpreter implements.
std::vector<std::string> supportedOps();

/// Evaluates one node on the given inputs (null for a missing optional
/// input); `opset` is the model's ONNX opset. Returns one tensor per result
/// (undefined for results of type none).
llvm::Expected<std::vector<Tensor>> evaluateOp(mlir::Operation *op,
                                               llvm::ArrayRef<const Tensor *> inputs,
                                               int64_t opset);

/// The model's ONNX opset (ai.onnx domain), 17 when it does not say.
int64_t modelOpset(mlir::ModuleOp module);

/// The constant value of `value` (initializer, Constant node), if any.
std::optional<Tensor> constantValue(mlir::Value value);

} // namespace refold::interp

#endif // REFOLD_INTERPRETER_INTERPRETER_H
