//===- Explain.cpp - why rewrites were refused (refold --explain) ----------===//

#include "refold/Passes/Explain.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Location.h"

using namespace mlir;

namespace refold {

ExplainLog &ExplainLog::get() {
  static ExplainLog log;
  return log;
}

void ExplainLog::notifyMatchFailure(Location loc,
                                    llvm::function_ref<void(Diagnostic &)> reasonCallback) {
  if (!enabled)
    return;
  Diagnostic diag(loc, DiagnosticSeverity::Remark);
  reasonCallback(diag);
  std::string where = "(unnamed)";
  if (auto name = dyn_cast<NameLoc>(loc))
    where = name.getName().str();
  std::lock_guard<std::mutex> lock(mutex);
  refusals[{currentPass, diag.str()}].insert(where);
}

ExplainLog::Snapshot ExplainLog::snapshot() const {
  std::lock_guard<std::mutex> lock(mutex);
  return refusals;
}

void ExplainLog::restore(Snapshot saved) {
  std::lock_guard<std::mutex> lock(mutex);
  refusals = std::move(saved);
}

void ExplainLog::print(llvm::raw_ostream &os) const {
  std::lock_guard<std::mutex> lock(mutex);
  for (const auto &[key, names] : refusals) {
    // Nodes a pattern does not even apply to are not refusals.
    llvm::StringRef reason(key.second);
    if (reason.starts_with("input is not produced by") || reason.starts_with("no operand is") ||
        reason.starts_with("no branch is") ||
        reason.starts_with("nothing to merge") || reason == "not a linear layer")
      continue;
    os << "explain: " << key.first << ": " << names.size() << " x " << key.second << " (";
    int shown = 0;
    for (const std::string &name : names) {
      if (shown == 4) {
        os << ", ...";
        break;
      }
      os << (shown++ ? ", " : "") << "'" << name << "'";
    }
    os << ")\n";
  }
}

GreedyRewriteConfig candidateConfig() {
  GreedyRewriteConfig config;
  config.strictMode = GreedyRewriteStrictness::ExistingOps;
  if (ExplainLog::get().isEnabled())
    config.listener = &ExplainLog::get();
  return config;
}

} // namespace refold
