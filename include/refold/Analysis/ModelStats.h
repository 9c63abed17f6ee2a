//===- ModelStats.h - size and cost of a model ------------------*- C++ -*-===//
//
// What `refold --stats` reports: node count and op histogram, parameters,
// multiply-accumulates, memory traffic and depth. Formulas: docs/stats.md.
//
//===----------------------------------------------------------------------===//

#ifndef REFOLD_ANALYSIS_MODELSTATS_H
#define REFOLD_ANALYSIS_MODELSTATS_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

#include <map>
#include <optional>
#include <string>

namespace refold {

struct ModelStats {
  uint64_t nodes = 0;
  std::map<std::string, uint64_t> opHistogram;
  uint64_t parameters = 0;     // elements of initializers and constants
  uint64_t parameterBytes = 0;
  uint64_t macs = 0;           // multiply-accumulates of Conv/Gemm/MatMul-like ops
  uint64_t memoryBytes = 0;    // bytes every node reads plus writes
  uint64_t depth = 0;          // compute ops on the longest path
  /// True when some shape was dynamic: those dimensions count as 1.
  bool dynamicShapes = false;
};

ModelStats computeStats(mlir::ModuleOp module);

/// Max abs / relative error of one output, as --verify measured it, and
/// whether every run stayed within atol + rtol * max |original|.
struct VerifyResult {
  std::string output;
  double maxAbs = 0, maxRel = 0, maxMagnitude = 0;
  bool passed = true;
};

/// The before/after table (`--stats`).
void printStatsTable(llvm::raw_ostream &os, const ModelStats &before, const ModelStats &after);
/// One line for the end of an optimization.
std::string statsSummary(const ModelStats &before, const ModelStats &after);
/// The same as JSON (`--stats-json`); `extra`'s members are added to the root.
void printStatsJson(llvm::raw_ostream &os, const ModelStats &before, const ModelStats &after,
                    const std::vector<VerifyResult> *verify, llvm::json::Object extra = {});

} // namespace refold

#endif // REFOLD_ANALYSIS_MODELSTATS_H
