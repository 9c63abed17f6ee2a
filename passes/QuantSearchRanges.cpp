//===- QuantSearchRanges.cpp - activation ranges by output SQNR -------------===//
//
// Between calibration and the QDQ rewrite: each recorded activation range
// scaled by a few factors, kept where the whole model's output gets closer
// to float (lib/Quantizer/RangeSearch.cpp).
//
//===----------------------------------------------------------------------===//

#include "refold/Analysis/ModelStats.h"
#include "refold/Passes/Passes.h"
#include "refold/Quantizer/Quantizer.h"

#include "mlir/Pass/PassManager.h"

namespace refold {
#define GEN_PASS_DEF_QUANTSEARCHRANGES
#include "refold/Passes/Passes.h.inc"
} // namespace refold

using namespace mlir;

namespace {

struct QuantSearchRangesPass : refold::impl::QuantSearchRangesBase<QuantSearchRangesPass> {
  using QuantSearchRangesBase::QuantSearchRangesBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (calibration.empty()) {
      module.emitError() << "no calibration data: pass calibration=PATH";
      return signalPassFailure();
    }
    if (sets == 0 || !(budgetGmacs >= 0)) {
      module.emitError() << "sets must be >= 1 and budget-gmacs >= 0";
      return signalPassFailure();
    }
    auto data = refold::quant::CalibrationData::open(calibration, module, limit);
    if (!data) {
      module.emitError() << llvm::toString(data.takeError());
      return signalPassFailure();
    }
    std::vector<std::string> kept(keepFloat.begin(), keepFloat.end());
    auto quantize = [&](ModuleOp copy) {
      PassManager pm(copy.getContext(), ModuleOp::getOperationName());
      refold::QuantizeQDQOptions rewrite;
      rewrite.activations = activations;
      rewrite.weights = weights;
      rewrite.biasCorrection = biasCorrection;
      rewrite.keepFloat = kept;
      pm.nest<func::FuncOp>().addPass(refold::createQuantizeQDQ(rewrite));
      pm.nest<func::FuncOp>().addPass(refold::createCleanup());
      return pm.run(copy);
    };
    refold::quant::RangeSearchOptions options;
    options.sets = sets;
    options.budgetGmacs = budgetGmacs;
    options.progress = progress;
    auto searched = refold::quant::searchRanges(module, *data, quantize, options,
                                                refold::computeStats(module).macs);
    if (!searched) {
      module.emitError() << llvm::toString(searched.takeError());
      return signalPassFailure();
    }
    if (searched->skipped) {
      llvm::errs() << llvm::formatv(
          "refold: range search skipped: a trial on {0} input sets costs {1} GMACs, and one "
          "tensor's {2} trials pass --range-search-budget ({3})\n",
          std::min<size_t>(sets, data->size()), llvm::format("%.3g", searched->trialGmacs),
          options.factors.size() + 2, llvm::format("%g", double(budgetGmacs)));
      return;
    }
    numSearched = searched->searched;
    numChanged = searched->changed;
    if (progress || searched->searched < searched->candidates)
      llvm::errs() << llvm::formatv(
          "refold: range search: output SQNR {0} -> {1} dB on {2} input sets, {3} of {4} "
          "ranges changed{5}\n",
          llvm::format("%.2f", searched->before), llvm::format("%.2f", searched->after),
          std::min<size_t>(sets, data->size()), searched->changed, searched->candidates,
          searched->searched < searched->candidates
              ? llvm::formatv(" ({0} searched within --range-search-budget)",
                              searched->searched)
                    .str()
              : std::string());
  }
};

} // namespace
