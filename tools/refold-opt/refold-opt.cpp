//===- refold-opt.cpp - pass driver for refold's dialect and passes --------===//

#include "refold/Dialect/ONNX/ONNXOps.h"
#include "refold/Passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  registry.insert<refold::ir::ONNXDialect, mlir::func::FuncDialect>();
  refold::registerRefoldPasses();
  // Generic passes useful in tests (canonicalize, cse, symbol-dce, ...).
  mlir::registerTransformsPasses();
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "refold optimizer driver\n", registry));
}
