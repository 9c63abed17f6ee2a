//===- FusablePatterns.h - decompositions runtimes fuse into one kernel -*- C++ -*-===//
//
// Exporters write GELU, LayerNormalization, HardSwish and HardSigmoid as
// chains of elementwise ops, and runtimes recognize exactly those chains
// (onnxruntime's Gelu, FastGelu, LayerNormalization and HardSigmoid fusions)
// and run them as one kernel. Folding one constant of such a chain into a
// neighbouring conv breaks the match and costs more than the op it removes,
// so the folds leave every op of a recognized chain alone.
//
//===----------------------------------------------------------------------===//

#ifndef REFOLD_TRANSFORMS_FUSABLEPATTERNS_H
#define REFOLD_TRANSFORMS_FUSABLEPATTERNS_H

#include "mlir/IR/Operation.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringRef.h"

namespace refold {

/// The ops of every fusable chain under `root`, each mapped to the name of
/// its pattern ("GELU", "tanh GELU", "LayerNormalization", "HardSwish",
/// "HardSigmoid").
class FusablePatterns {
public:
  explicit FusablePatterns(mlir::Operation *root);

  /// The pattern `op` belongs to, or an empty name.
  llvm::StringRef patternOf(mlir::Operation *op) const { return members.lookup(op); }

private:
  llvm::DenseMap<mlir::Operation *, llvm::StringRef> members;
};

} // namespace refold

#endif // REFOLD_TRANSFORMS_FUSABLEPATTERNS_H
