//===- Explain.h - why rewrites were refused (refold --explain) -*- C++ -*-===//

#ifndef REFOLD_PASSES_EXPLAIN_H
#define REFOLD_PASSES_EXPLAIN_H

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "llvm/Support/raw_ostream.h"

#include <map>
#include <mutex>
#include <set>
#include <string>

namespace refold {

/// Collects every notifyMatchFailure of refold's patterns while enabled:
/// which pass refused which node, and why.
class ExplainLog : public mlir::RewriterBase::Listener {
public:
  static ExplainLog &get();

  void enable() { enabled = true; }
  bool isEnabled() const { return enabled; }
  void setPass(llvm::StringRef pass) { currentPass = pass.str(); }

  void notifyMatchFailure(mlir::Location loc,
                          llvm::function_ref<void(mlir::Diagnostic &)> reasonCallback) override;

  /// The refusals so far; restore() goes back to them (a fixed-point round
  /// that changed the IR is followed by another, whose refusals count).
  using Snapshot = std::map<std::pair<std::string, std::string>, std::set<std::string>>;
  Snapshot snapshot() const;
  void restore(Snapshot saved);

  /// One line per (pass, reason) with how often and where.
  void print(llvm::raw_ostream &os) const;

private:
  bool enabled = false;
  std::string currentPass;
  mutable std::mutex mutex;
  // (pass, reason) -> node names
  Snapshot refusals;
};

/// The rewrite configuration refold's passes use: visit only the candidate
/// ops given (so initializers are never folded or moved by the driver), and
/// report refusals to the explain log when it is enabled.
mlir::GreedyRewriteConfig candidateConfig();

/// Applies `patterns` to the ops of types `OpTys` under `root`. An op whose
/// operand a rewrite replaced is visited again, so chains (Add of Add, conv
/// of conv) merge step by step; nothing else is visited.
template <typename... OpTys>
mlir::LogicalResult applyToCandidates(mlir::Operation *root, mlir::RewritePatternSet &&patterns) {
  llvm::SmallVector<mlir::Operation *> candidates;
  root->walk([&](mlir::Operation *op) {
    if (mlir::isa<OpTys...>(op))
      candidates.push_back(op);
  });
  return mlir::applyOpPatternsAndFold(candidates, std::move(patterns), candidateConfig());
}

} // namespace refold

#endif // REFOLD_PASSES_EXPLAIN_H
