//===- LinearFold.h - fold a per-channel affine map into a linear op -*- C++ -*-===//

#ifndef REFOLD_TRANSFORMS_LINEARFOLD_H
#define REFOLD_TRANSFORMS_LINEARFOLD_H

#include "mlir/IR/PatternMatch.h"

#include <string>
#include <vector>

namespace refold {
namespace ir {
class BatchNormalizationOp;
} // namespace ir

/// Per-channel y = x * scale + shift of an inference-mode BatchNormalization.
struct ChannelAffine {
  std::vector<float> scale, shift;
};

/// The map of `bn`, or the reason it has none: parameters that are not
/// float32 constants of one length, training mode (batch statistics), or
/// spatial=0 (opsets before 9: statistics per activation, not per channel).
llvm::FailureOr<ChannelAffine> batchNormAffine(ir::BatchNormalizationOp bn, std::string &why);

/// One op computing x * scale[c] + shift[c] per channel (axis 1) of x.
struct ChannelMap {
  mlir::Value input;
  ChannelAffine affine;
};

/// `op` as a per-channel map of its non-constant operand: an inference-mode
/// BatchNormalization, or Mul, Add, Sub or Div by a float32 constant that
/// varies only along axis 1 (a scalar too) and does not broadcast the
/// operand to a larger shape. Fails with the reason otherwise (c / x and
/// division by zero included).
llvm::FailureOr<ChannelMap> readChannelMap(mlir::Operation *op, std::string &why);

/// The scale and shift that Mul, Add, Sub or Div applies with `values` to its
/// other operand, on the left when `operandOnLeft`; nothing for c / y or
/// division by zero.
std::optional<ChannelAffine> arithmeticAffine(mlir::Operation *op, llvm::ArrayRef<float> values,
                                              bool operandOnLeft);

/// `affineOp` computes y * scale[c] + shift[c] per output channel c of
/// `linear`, the result of a Conv, ConvTranspose, Gemm or 2-D MatMul with
/// constant weights. Replaces both by one linear op with folded weights and
/// bias, or fails with the reason (notifyMatchFailure on `affineOp`).
mlir::LogicalResult foldChannelAffine(mlir::PatternRewriter &rewriter, mlir::Operation *affineOp,
                                      mlir::Value linear, llvm::ArrayRef<float> scale,
                                      llvm::ArrayRef<float> shift);

/// `linear` is MatMul(x, W) with a float32 constant 2-D W, or Add(MatMul(x, W),
/// b) with b constant along the last axis; `affineOp` computes
/// y * scale[n] + shift[n] along the last axis (channels-last Linear layers,
/// tokens). Replaces them by MatMul(x, W * scale) + (b * scale + shift).
mlir::LogicalResult foldLastAxisAffine(mlir::PatternRewriter &rewriter, mlir::Operation *affineOp,
                                       mlir::Value linear, llvm::ArrayRef<float> scale,
                                       llvm::ArrayRef<float> shift);

/// `x * scale[k] + shift[k]` along the last axis feeds `matmul`'s A (B a 2-D
/// float32 constant): MatMul(x, scale * B) + (shift B [+ the bias Add that
/// follows]). `root` is the op the rewrite is reported on and erased last.
mlir::LogicalResult foldAffineIntoMatMul(mlir::PatternRewriter &rewriter, mlir::Operation *root,
                                         mlir::Value x, mlir::Operation *matmul,
                                         llvm::ArrayRef<float> scale, llvm::ArrayRef<float> shift);

/// `affineOp` computes x * s[c] + t[c] per channel c of `x` and its only
/// user is a Conv (as input), a Gemm's untransposed A or a 2-D MatMul's A,
/// with constant weights: folds s into the weights and t into the bias
/// (reparam-math.md section 2). Before a zero-padding conv the padded zeros
/// would have had to become -t/s: a constant map on the border rows and
/// columns corrects that (2-D, static shape, output not larger than input).
mlir::LogicalResult foldAffineIntoFollowing(mlir::PatternRewriter &rewriter,
                                            mlir::Operation *affineOp, mlir::Value x,
                                            llvm::ArrayRef<float> s, llvm::ArrayRef<float> t);

/// The values of `constant` along the last axis of `outType` (a scalar is
/// repeated), or nothing if it varies along another axis. `channels`, when
/// known, is the last axis' size (needed when `outType` does not say it).
std::optional<std::vector<float>> lastAxisValues(mlir::Value constant, mlir::Type outType,
                                                 int64_t channels = -1);

} // namespace refold

#endif // REFOLD_TRANSFORMS_LINEARFOLD_H
