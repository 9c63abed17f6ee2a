//===- QuantCalibrate.cpp - record value ranges from calibration data -------===//
//
// The first step of post-training quantization: run the user's input sets
// through the interpreter and record the range of every float value on the
// IR, where the scale choice and the QDQ rewrite read it.
//
//===----------------------------------------------------------------------===//

#include "refold/Passes/Passes.h"
#include "refold/Quantizer/Quantizer.h"

namespace refold {
#define GEN_PASS_DEF_QUANTCALIBRATE
#include "refold/Passes/Passes.h.inc"
} // namespace refold

using namespace mlir;

namespace {

struct QuantCalibratePass : refold::impl::QuantCalibrateBase<QuantCalibratePass> {
  using QuantCalibrateBase::QuantCalibrateBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto rangeMethod = refold::quant::parseRangeMethod(method);
    if (!rangeMethod) {
      module.emitError() << "unknown calibration method '" << method
                         << "' (expected minmax, percentile, entropy or mse)";
      return signalPassFailure();
    }
    if (!(percentile > 50.0 && percentile <= 100.0)) {
      module.emitError() << "percentile must be in (50, 100], got " << percentile;
      return signalPassFailure();
    }
    if (calibration.empty()) {
      module.emitError() << "no calibration data: pass calibration=PATH";
      return signalPassFailure();
    }
    auto data = refold::quant::CalibrationData::open(calibration, module, limit);
    if (!data) {
      module.emitError() << llvm::toString(data.takeError());
      return signalPassFailure();
    }
    auto calibrated = refold::quant::collectRanges(
        module, *data, refold::quant::RangeOptions{*rangeMethod, percentile}, progress);
    if (!calibrated) {
      module.emitError() << llvm::toString(calibrated.takeError());
      return signalPassFailure();
    }
    refold::quant::attachRanges(module, calibrated->ranges);
    refold::quant::attachMeans(module, calibrated->means);
  }
};

} // namespace
