//===- FuzzSupport.h - what refold's libFuzzer targets share ----*- C++ -*-===//
//
// Each target feeds the input bytes to one entry point and checks only that
// refold returns (an error is a fine answer to a malformed model); crashes,
// sanitizer reports, hangs and leaks are what libFuzzer looks for.
//
//===----------------------------------------------------------------------===//

#ifndef REFOLD_FUZZ_FUZZSUPPORT_H
#define REFOLD_FUZZ_FUZZSUPPORT_H

#include "refold/Passes/Passes.h"
#include "refold/Translation/ONNXModel.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"

#include <cstddef>
#include <cstdint>

/// LLVM's inline allocator code poisons memory when compiled with ASan,
/// but Debian's MLIR libraries (not instrumented) never unpoison it: user
/// poisoning would report their every allocation. (One definition per
/// target: each includes this header from its only source file.)
extern "C" const char *__asan_default_options() { return "allow_user_poisoning=0"; }

namespace refold::fuzz {

/// A context with refold's dialects whose diagnostics go nowhere.
struct QuietContext {
  mlir::MLIRContext context;
  mlir::ScopedDiagnosticHandler silence;
  QuietContext()
      : context(registry(), mlir::MLIRContext::Threading::DISABLED),
        silence(&context, [](mlir::Diagnostic &) { return mlir::success(); }) {
    context.loadAllAvailableDialects();
  }
  static const mlir::DialectRegistry &registry() {
    static mlir::DialectRegistry *instance = [] {
      auto *r = new mlir::DialectRegistry();
      refold::registerRefoldDialects(*r);
      refold::registerRefoldPasses(); // the fixed-point pass parses its inner pipeline
      // One shape-inference child for the whole run, not a fork per input.
      static refold::ShapeInferenceWorker worker;
      return r;
    }();
    return *instance;
  }
};

/// External data never resolves: the fuzzer must not read the machine's files.
inline constexpr const char *kNoModelDir = "/nonexistent-refold-fuzz";

/// Imports `bytes` (the format detected as refold does); null on an error.
inline mlir::OwningOpRef<mlir::ModuleOp> importBytes(mlir::MLIRContext &context,
                                                     const uint8_t *data, size_t size) {
  auto module = refold::importONNXBuffer(
      llvm::StringRef(reinterpret_cast<const char *>(data), size), kNoModelDir, context,
      refold::ImportOptions(), [](const llvm::Twine &) {});
  if (!module) {
    llvm::consumeError(module.takeError());
    return nullptr;
  }
  return std::move(*module);
}

} // namespace refold::fuzz

#endif // REFOLD_FUZZ_FUZZSUPPORT_H
