//===- QuantEstimate.cpp - data-free value ranges ----------------------------===//
//
// The data-free counterpart of onnx-quant-calibrate: ranges and channel
// means from the BatchNorm statistics the folds kept (refold.output_stats),
// carried through the graph, recorded in the same attributes the QDQ
// rewrite reads.
//
//===----------------------------------------------------------------------===//

#include "refold/Passes/Passes.h"
#include "refold/Quantizer/Quantizer.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace refold {
#define GEN_PASS_DEF_QUANTESTIMATE
#include "refold/Passes/Passes.h.inc"
} // namespace refold

using namespace mlir;

namespace {

struct QuantEstimatePass : refold::impl::QuantEstimateBase<QuantEstimatePass> {
  using QuantEstimateBase::QuantEstimateBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    refold::quant::DataFreeOptions options;
    if (!inputRange.empty()) {
      if (inputRange.size() != 2 || !(inputRange[0] < inputRange[1])) {
        module.emitError() << "input-range must be two numbers LO,HI with LO < HI";
        return signalPassFailure();
      }
      options.inputMin = inputRange[0];
      options.inputMax = inputRange[1];
    }
    if (!(sigmas > 0)) {
      module.emitError() << "sigmas must be positive, got " << sigmas;
      return signalPassFailure();
    }
    options.sigmas = sigmas;
    func::FuncOp main;
    for (auto func : module.getOps<func::FuncOp>())
      main = func;
    if (!main) {
      module.emitError() << "no graph to quantize";
      return signalPassFailure();
    }
    auto estimate = refold::quant::estimateRanges(main, options);
    refold::quant::attachRanges(module, estimate.ranges);
    refold::quant::attachMeans(module, estimate.means);
    numEstimated += estimate.ranges.size();
  }
};

} // namespace
