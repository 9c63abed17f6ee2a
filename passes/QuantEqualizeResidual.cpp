//===- QuantEqualizeResidual.cpp - residual-stream equalization -------------===//
//
// Before calibration: every tensor of a residual stream gets one int8 scale
// for all its channels, so its channels are brought to one range (exactly,
// by scaling the convs that write and read the stream).
//
//===----------------------------------------------------------------------===//

#include "refold/Passes/Passes.h"
#include "refold/Quantizer/Quantizer.h"

#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

namespace refold {
#define GEN_PASS_DEF_QUANTEQUALIZERESIDUAL
#include "refold/Passes/Passes.h.inc"
} // namespace refold

using namespace mlir;

namespace {

struct QuantEqualizeResidualPass
    : refold::impl::QuantEqualizeResidualBase<QuantEqualizeResidualPass> {
  using QuantEqualizeResidualBase::QuantEqualizeResidualBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (calibration.empty()) {
      module.emitError() << "no calibration data: pass calibration=PATH";
      return signalPassFailure();
    }
    if (!(maxScale >= 1)) {
      std::string value;
      llvm::raw_string_ostream(value) << llvm::format("%g", double(maxScale));
      module.emitError() << "max-scale must be >= 1, got " << value;
      return signalPassFailure();
    }
    if (!(exponent > 0 && exponent <= 1)) {
      module.emitError() << "exponent must be in (0, 1], got " << exponent;
      return signalPassFailure();
    }
    auto data = refold::quant::CalibrationData::open(calibration, module, limit);
    if (!data) {
      module.emitError() << llvm::toString(data.takeError());
      return signalPassFailure();
    }
    refold::quant::ResidualEqualizationOptions options;
    options.maxSets = limit ? size_t(limit) : data->size();
    options.maxScale = maxScale;
    options.exponent = exponent;
    auto streams = refold::quant::equalizeResiduals(module, *data, options);
    if (!streams) {
      module.emitError() << llvm::toString(streams.takeError());
      return signalPassFailure();
    }
    numStreams += *streams;
  }
};

} // namespace
