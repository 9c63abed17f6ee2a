//===- FixedPointReport.h - rounds taken by onnx-fixed-point ----*- C++ -*-===//
//
// LLVM's release builds compile pass statistics out, so the rounds each
// onnx-fixed-point run took are also kept here for `refold --stats`.
//
//===----------------------------------------------------------------------===//

#ifndef REFOLD_PASSES_FIXEDPOINTREPORT_H
#define REFOLD_PASSES_FIXEDPOINTREPORT_H

#include "llvm/ADT/StringRef.h"

#include <mutex>
#include <string>
#include <vector>

namespace refold {

struct FixedPointRun {
  std::string function;
  unsigned rounds = 0;
  unsigned maxRounds = 0;
  bool converged = true;
};

class FixedPointReport {
public:
  static FixedPointReport &get();

  void record(FixedPointRun run);
  std::vector<FixedPointRun> runs() const;
  void clear();

private:
  mutable std::mutex mutex;
  std::vector<FixedPointRun> recorded;
};

} // namespace refold

#endif // REFOLD_PASSES_FIXEDPOINTREPORT_H
