//===- Passes.td - refold passes -----------------------------*- tablegen -*-===//

#ifndef REFOLD_PASSES_TD
#define REFOLD_PASSES_TD

include "mlir/Pass/PassBase.td"

def Cleanup : Pass<"onnx-cleanup", "::mlir::func::FuncOp"> {
  let summary = "Remove Identity and inference-mode Dropout nodes and dead code";
  let description = [{
    Replaces `onnx.Identity` by its input and `onnx.Dropout` by its input when
    it runs in inference mode (no `training_mode` input, or a constant false
    one) and its mask is unused, then erases ops whose results are unused
    and have no side effects (unused initializers included). Graph outputs
    keep their names: the exporter names a returned value after the output.
  }];
  let dependentDialects = ["::refold::ir::ONNXDialect"];
  let statistics = [
    Statistic<"numIdentity", "identity-removed", "Identity nodes removed">,
    Statistic<"numDropout", "dropout-removed", "Dropout nodes removed">,
    Statistic<"numDead", "dead-removed", "dead ops removed">
  ];
}

def TestBreakRewrite : Pass<"test-break-rewrite", "::mlir::func::FuncOp"> {
  let summary = "Test only: perturb one float weight, a wrong rewrite --verify must catch";
  let description = [{
    Replaces the first float32 initializer that has users by a copy scaled
    by 1.01. Used by the tests of `refold --verify`; never part of a pipeline.
  }];
  let dependentDialects = ["::refold::ir::ONNXDialect"];
}

#endif // REFOLD_PASSES_TD
