//===- FixedPoint.cpp - run a pipeline until nothing changes ---------------===//
//
// The reparameterization passes each take one step: a sum merged into a conv
// lets a per-channel scale fold into it, which lets a residual sum absorb
// it. Running the round until the function's fingerprint stops changing
// makes the result independent of the order in which those steps appear.
// Modelled on MLIR's composite-fixed-point-pass, with a round statistic.
//
//===----------------------------------------------------------------------===//

#include "refold/Passes/Explain.h"
#include "refold/Passes/FixedPointReport.h"
#include "refold/Passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/OperationSupport.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"

namespace refold {
#define GEN_PASS_DEF_FIXEDPOINT
#include "refold/Passes/Passes.h.inc"
} // namespace refold

using namespace mlir;

namespace {

struct FixedPointPass : refold::impl::FixedPointBase<FixedPointPass> {
  using FixedPointBase::FixedPointBase;

  LogicalResult initializeOptions(
      StringRef options,
      function_ref<LogicalResult(const Twine &)> errorHandler) override {
    if (failed(FixedPointBase::initializeOptions(options, errorHandler)))
      return failure();
    if (failed(parseRound()))
      return errorHandler("onnx-fixed-point: cannot parse pipeline '" + pipeline + "'");
    return success();
  }

  // Built from options in code (createFixedPoint), initializeOptions never runs.
  LogicalResult initialize(MLIRContext *context) override {
    if (!parsed && failed(parseRound()))
      return emitError(UnknownLoc::get(context))
             << "onnx-fixed-point: cannot parse pipeline '" << pipeline << "'";
    return success();
  }

  void getDependentDialects(DialectRegistry &registry) const override {
    if (parsed || succeeded(parseRound()))
      round.getDependentDialects(registry);
  }

  LogicalResult parseRound() const {
    round = OpPassManager(func::FuncOp::getOperationName());
    parsed = succeeded(parsePassPipeline(pipeline, round, llvm::errs()));
    return success(parsed);
  }

  void runOnOperation() override {
    if (maxRounds == 0)
      return;
    refold::ExplainLog &explain = refold::ExplainLog::get();
    refold::FixedPointRun report;
    report.function = getOperation().getSymName().str();
    report.maxRounds = maxRounds;
    OperationFingerPrint before(getOperation());
    for (unsigned r = 1;; ++r) {
      ++numRounds;
      report.rounds = r;
      auto refusalsBefore = explain.snapshot();
      if (failed(runPipeline(round, getOperation())))
        return signalPassFailure();
      OperationFingerPrint after(getOperation());
      if (after == before) {
        // This round's refusals are the final ones.
        refold::FixedPointReport::get().record(std::move(report));
        return;
      }
      if (r == maxRounds) {
        ++numUnconverged;
        report.converged = false;
        refold::FixedPointReport::get().record(std::move(report));
        getOperation().emitWarning()
            << "onnx-fixed-point: still changing after " << unsigned(maxRounds) << " rounds";
        return;
      }
      // Refusals of a round that changed the function may not hold anymore.
      explain.restore(std::move(refusalsBefore));
      before = after;
    }
  }

  mutable OpPassManager round{func::FuncOp::getOperationName()};
  mutable bool parsed = false;
};

} // namespace

namespace refold {

FixedPointReport &FixedPointReport::get() {
  static FixedPointReport report;
  return report;
}

void FixedPointReport::record(FixedPointRun run) {
  std::lock_guard<std::mutex> lock(mutex);
  recorded.push_back(std::move(run));
}

std::vector<FixedPointRun> FixedPointReport::runs() const {
  std::lock_guard<std::mutex> lock(mutex);
  return recorded;
}

void FixedPointReport::clear() {
  std::lock_guard<std::mutex> lock(mutex);
  recorded.clear();
}

} // namespace refold
