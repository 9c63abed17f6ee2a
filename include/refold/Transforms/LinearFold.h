//===- LinearFold.h - fold a per-channel affine map into a linear op -*- C++ -*-===//

#ifndef REFOLD_TRANSFORMS_LINEARFOLD_H
#define REFOLD_TRANSFORMS_LINEARFOLD_H

#include "mlir/IR/PatternMatch.h"

namespace refold {

/// `affineOp` computes y * scale[c] + shift[c] per output channel c of
/// `linear`, the result of a Conv, ConvTranspose, Gemm or 2-D MatMul with
/// constant weights. Replaces both by one linear op with folded weights and
/// bias, or fails with the reason (notifyMatchFailure on `affineOp`).
mlir::LogicalResult foldChannelAffine(mlir::PatternRewriter &rewriter, mlir::Operation *affineOp,
                                      mlir::Value linear, llvm::ArrayRef<float> scale,
                                      llvm::ArrayRef<float> shift);

} // namespace refold

#endif // REFOLD_TRANSFORMS_LINEARFOLD_H
