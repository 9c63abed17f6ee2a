//===- ONNXModel.h - ONNX model import and export ---------------*- C++ -*-===//
//
// The bridge between ONNX files (binary protobuf or textual ONNX) and the
// `onnx` dialect. Import keeps everything export needs to write the model
// back without loss; export writes atomically and never leaves a partial file.
//
//===----------------------------------------------------------------------===//

#ifndef REFOLD_TRANSLATION_ONNXMODEL_H
#define REFOLD_TRANSLATION_ONNXMODEL_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>

namespace refold {

/// Receives warnings (one line each, without a trailing newline).
using WarningHandler = llvm::function_ref<void(const llvm::Twine &)>;

struct ImportOptions {
  /// Run ONNX shape inference so typed results carry the shapes it knows.
  bool inferShapes = true;
};

struct ExportOptions {
  /// Store tensors of at least `externalDataThreshold` bytes in a data file
  /// next to the model (`<model>.data`).
  bool externalData = false;
  uint64_t externalDataThreshold = 1024;
  /// A model whose tensors add up to more than this is written with external
  /// data even when not asked: protobuf cannot hold a message over 2 GiB.
  uint64_t inlineLimit = (uint64_t(1) << 31) - (uint64_t(64) << 20);
  /// Run onnx::checker on the result before writing it.
  bool runChecker = true;
  /// Free each weight blob once it is copied into the output, so a large
  /// model is not held twice. The module's weights are gone afterwards: only
  /// for callers that export as their last use of the module.
  bool releaseWeights = false;
};

/// Reads a model file; the format (binary or textual ONNX) is detected.
llvm::Expected<mlir::OwningOpRef<mlir::ModuleOp>>
importONNXFile(llvm::StringRef path, mlir::MLIRContext &context,
               const ImportOptions &options, WarningHandler warn);

/// Reads a model from memory. `modelDir` resolves external data.
llvm::Expected<mlir::OwningOpRef<mlir::ModuleOp>>
importONNXBuffer(llvm::StringRef bytes, llvm::StringRef modelDir,
                 mlir::MLIRContext &context, const ImportOptions &options,
                 WarningHandler warn);

/// Writes `module` as an ONNX model file, atomically.
llvm::Error exportONNXFile(mlir::ModuleOp module, llvm::StringRef path,
                           const ExportOptions &options, WarningHandler warn);

/// Serializes `module` as an ONNX model into `bytes` (tensors inline; no
/// external data), after onnx::checker when the options ask for it.
llvm::Error exportONNXBuffer(mlir::ModuleOp module, std::string &bytes,
                             const ExportOptions &options, WarningHandler warn);

/// Runs ONNX shape inference (with data propagation) on `module` as it is
/// now and gives op results the more static types it finds: rewrites may
/// have turned computed shapes (Pad pads, Reshape targets) into constants.
/// Graph outputs keep their declared types. Returns how many types changed.
unsigned refineTypesByShapeInference(mlir::ModuleOp module, bool graphOutputs = false);

/// ONNX shape inference runs in a child process, because ONNX's inference
/// functions can crash on a hostile model; by default each model gets a
/// fork of its own. While a ShapeInferenceWorker exists, models up to
/// 4 MiB go instead to one long-lived child, restarted after a crash: for
/// processes that import many small models (the fuzz targets, the node-test
/// runner), where a fork per model costs more than the import. One at a
/// time, used from one thread.
class ShapeInferenceWorker {
public:
  ShapeInferenceWorker();
  ~ShapeInferenceWorker();
  ShapeInferenceWorker(const ShapeInferenceWorker &) = delete;
  ShapeInferenceWorker &operator=(const ShapeInferenceWorker &) = delete;
};

/// Registers the dialects an imported module uses.
void registerRefoldDialects(mlir::DialectRegistry &registry);

} // namespace refold

#endif // REFOLD_TRANSLATION_ONNXMODEL_H
