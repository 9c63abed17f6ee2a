//===- QuantRound.cpp - GPTQ rounding of int8 weights -----------------------===//
//
// Between calibration and the QDQ rewrite: each conv weight's int8 levels
// are chosen against its input's second moments instead of one by one, so
// that rounding errors cancel over correlated inputs (merged RepVGG
// kernels, whose dominant centre taps leave the others coarse, gain most).
//
//===----------------------------------------------------------------------===//

#include "refold/Passes/Passes.h"
#include "refold/Quantizer/Quantizer.h"

namespace refold {
#define GEN_PASS_DEF_QUANTROUND
#include "refold/Passes/Passes.h.inc"
} // namespace refold

using namespace mlir;

namespace {

struct QuantRoundPass : refold::impl::QuantRoundBase<QuantRoundPass> {
  using QuantRoundBase::QuantRoundBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (calibration.empty()) {
      module.emitError() << "no calibration data: pass calibration=PATH";
      return signalPassFailure();
    }
    if (!(damp >= 0)) {
      module.emitError() << "damp must be >= 0, got " << damp;
      return signalPassFailure();
    }
    auto data = refold::quant::CalibrationData::open(calibration, module, limit);
    if (!data) {
      module.emitError() << llvm::toString(data.takeError());
      return signalPassFailure();
    }
    refold::quant::RoundingOptions options;
    options.perChannel = perChannel;
    options.damp = damp;
    options.maxColumns = maxColumns;
    options.maxSets = limit ? size_t(limit) : data->size();
    options.progress = progress;
    auto rounded = refold::quant::roundWeights(module, *data, options);
    if (!rounded) {
      module.emitError() << llvm::toString(rounded.takeError());
      return signalPassFailure();
    }
  }
};

} // namespace
