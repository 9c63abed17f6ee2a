//===- WeightUtils.h - weight arithmetic shared by the rewrites -*- C++ -*-===//
//
// Every pass that changes weights reads them, computes with Eigen, and writes
// new initializers through these helpers, so the arithmetic (and its
// rounding) lives in one place. Weights are never changed in place: an
// initializer may have other users.
//
//===----------------------------------------------------------------------===//

#ifndef REFOLD_TRANSFORMS_WEIGHTUTILS_H
#define REFOLD_TRANSFORMS_WEIGHTUTILS_H

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributeInterfaces.h"
#include "mlir/IR/Value.h"
#include "llvm/ADT/SmallVector.h"

#include <optional>
#include <vector>

namespace refold::weights {

/// A dense float32 tensor computed at compile time.
struct F32Tensor {
  llvm::SmallVector<int64_t, 4> shape;
  std::vector<float> data;

  F32Tensor() = default;
  F32Tensor(llvm::ArrayRef<int64_t> shape, float fill = 0);
  int64_t size() const { return data.size(); }
  int64_t dim(int64_t i) const { return shape[i]; }
  int64_t rank() const { return shape.size(); }
};

/// The float32 value of `value` when it is an initializer or a Constant
/// (a graph input with a default is not constant: the caller may override it).
std::optional<F32Tensor> getConstantF32(mlir::Value value);

/// The float32 values of a static-shaped attribute; nothing for other types.
std::optional<F32Tensor> fromElements(mlir::ElementsAttr attr);

/// A Relu, or a Clip from 0 without an upper bound: positively homogeneous,
/// so a positive per-channel scale passes through it exactly (a Relu6 does
/// not: its bound would have to move per channel).
bool isReluLike(mlir::Operation *op);

/// `tensor` as an attribute: a blob resource unless it is tiny.
mlir::ElementsAttr createElements(mlir::MLIRContext *context, llvm::StringRef nameHint,
                                  const F32Tensor &tensor);

/// The type of the tensor getConstantF32 would return, or null when it would
/// return nothing; the values are not copied.
mlir::RankedTensorType constantF32Type(mlir::Value value);

/// The integer values of an initializer or Constant holding integers.
std::optional<llvm::SmallVector<int64_t>> getConstantInts(mlir::Value value);

/// The values of `constant` per channel of a rank-`rank` tensor with
/// `channels` channels on axis 1 (numpy broadcasting, so [C,1,1] and
/// [1,C,1,1] alike); a scalar is repeated. Nothing if it varies along
/// another axis or is not a float32 constant.
std::optional<std::vector<float>> channelValues(mlir::Value constant, int64_t rank,
                                                int64_t channels);

/// The value of a scalar or single-element float constant.
std::optional<float> getScalarF32(mlir::Value value);

/// A new initializer holding `tensor` (a blob resource when large). `nameHint`
/// becomes its name; the exporter makes names unique.
mlir::Value createInitializer(mlir::OpBuilder &builder, mlir::Location loc,
                              llvm::StringRef nameHint, const F32Tensor &tensor);

/// Elements of `value`'s type, dynamic dimensions counted as 1 (cost models).
double staticElements(mlir::Value value);

/// The name recorded for `value` (initializer name or producer's output name).
std::string nameOf(mlir::Value value);

/// Per-channel mean and standard deviation of a linear op's output as
/// training saw it: the shift (beta) and |scale| (gamma) of the BatchNorm
/// folded into it. The folds and merges keep them up to date (or drop
/// them) so that data-free quantization can size each range from them.
inline constexpr llvm::StringLiteral kOutputStatsAttr = "refold.output_stats";
struct ChannelStats {
  std::vector<float> mean, std;
};
std::optional<ChannelStats> getOutputStats(mlir::Operation *op);
void setOutputStats(mlir::Operation *op, const ChannelStats &stats);
/// The statistics a BatchNormalization's output has by construction.
std::optional<ChannelStats> batchNormOutputStats(mlir::Operation *batchNorm);

} // namespace refold::weights

#endif // REFOLD_TRANSFORMS_WEIGHTUTILS_H
