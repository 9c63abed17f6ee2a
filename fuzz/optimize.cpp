//===- optimize.cpp - libFuzzer target: import -> -O2 -> export ------------===//

#include "FuzzSupport.h"

#include "mlir/Pass/PassManager.h"

#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  refold::fuzz::QuietContext ctx;
  mlir::OwningOpRef<mlir::ModuleOp> module = refold::fuzz::importBytes(ctx.context, data, size);
  if (!module)
    return 0;
  mlir::PassManager pm(&ctx.context, mlir::ModuleOp::getOperationName());
  refold::buildRefoldPipeline(pm, refold::OptLevel::O2, refold::PipelineOptions());
  if (mlir::failed(pm.run(*module)))
    return 0;
  std::string bytes;
  if (auto err = refold::exportONNXBuffer(*module, bytes, refold::ExportOptions(),
                                          [](const llvm::Twine &) {}))
    llvm::consumeError(std::move(err));
  return 0;
}
