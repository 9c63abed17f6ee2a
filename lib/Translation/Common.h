//===- Common.h - shared by the ONNX importer and exporter ------*- C++ -*-===//

#ifndef REFOLD_LIB_TRANSLATION_COMMON_H
#define REFOLD_LIB_TRANSLATION_COMMON_H

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/ADT/StringRef.h"

#include <onnx/onnx_pb.h>

#include <optional>
#include <string>

namespace refold::detail {

// Module attribute names for model-level fields.
inline constexpr llvm::StringLiteral kIrVersion = "onnx.ir_version";
inline constexpr llvm::StringLiteral kOpsetImport = "onnx.opset_import";
inline constexpr llvm::StringLiteral kProducerName = "onnx.producer_name";
inline constexpr llvm::StringLiteral kProducerVersion = "onnx.producer_version";
inline constexpr llvm::StringLiteral kModelDomain = "onnx.domain";
inline constexpr llvm::StringLiteral kModelVersion = "onnx.model_version";
inline constexpr llvm::StringLiteral kModelDoc = "onnx.doc_string";
inline constexpr llvm::StringLiteral kMetadataProps = "onnx.metadata_props";
inline constexpr llvm::StringLiteral kFunctions = "onnx.functions";
inline constexpr llvm::StringLiteral kTrainingInfo = "onnx.training_info";
inline constexpr llvm::StringLiteral kSourceCheck = "onnx.source_check";

/// ONNX TensorProto element type -> MLIR type, or null if MLIR has none.
mlir::Type elementTypeFromOnnx(int32_t dataType, mlir::MLIRContext *ctx);
/// MLIR element type -> ONNX TensorProto data type, or 0 (UNDEFINED).
int32_t elementTypeToOnnx(mlir::Type type);
/// Bytes of one element as stored in raw_data (bool is one byte), 0 for strings.
size_t elementByteSize(int32_t dataType);

/// Protobuf text format helpers (full protobuf is available with libonnx).
std::string toText(const google::protobuf::Message &message);
bool fromText(llvm::StringRef text, google::protobuf::Message &message);

/// Calls `fn` on `graph`, then on every subgraph its nodes' attributes hold,
/// depth first: the same order for two copies of one model.
void forEachGraph(onnx::GraphProto &graph, llvm::function_ref<void(onnx::GraphProto &)> fn);

/// ONNX shape inference (data propagation on, types not checked) on `model`,
/// run in a child process where fork is available: ONNX's inference
/// functions trust what a model declares and can crash on hostile input.
/// Returns why it stopped, if it did; what it inferred is in `model`.
std::optional<std::string> inferShapesIsolated(onnx::ModelProto &model);

/// First line of a possibly multi-line message, trimmed.
std::string firstLine(llvm::StringRef message);

} // namespace refold::detail

#endif // REFOLD_LIB_TRANSLATION_COMMON_H
