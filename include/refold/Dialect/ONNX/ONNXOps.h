//===- ONNXOps.h - onnx dialect operations ----------------------*- C++ -*-===//

#ifndef REFOLD_DIALECT_ONNX_ONNXOPS_H
#define REFOLD_DIALECT_ONNX_ONNXOPS_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/RegionKindInterface.h"
#include "mlir/Interfaces/ControlFlowInterfaces.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "refold/Dialect/ONNX/ONNXDialect.h"

#define GET_TYPEDEF_CLASSES
#include "refold/Dialect/ONNX/ONNXTypes.h.inc"

#define GET_ATTRDEF_CLASSES
#include "refold/Dialect/ONNX/ONNXAttrs.h.inc"

#define GET_OP_CLASSES
#include "refold/Dialect/ONNX/ONNXOps.h.inc"

namespace refold::ir {
/// Names of the attributes refold keeps on any op for lossless export.
/// `onnx.name`: the node name; `onnx.outputs`: the ONNX names of the results;
/// `onnx.doc_string`: the node doc string; `onnx.value_info`: per result,
/// whether the model listed it in value_info (and its dim_params).
inline constexpr llvm::StringLiteral kNodeNameAttr = "onnx.name";
inline constexpr llvm::StringLiteral kOutputNamesAttr = "onnx.outputs";
inline constexpr llvm::StringLiteral kDocStringAttr = "onnx.doc_string";
inline constexpr llvm::StringLiteral kValueInfoAttr = "onnx.value_info";
inline constexpr llvm::StringLiteral kGraphAttr = "onnx.graph";

/// True if `value` is the placeholder for a missing optional input.
inline bool isNoneValue(mlir::Value value) {
  return llvm::isa<mlir::NoneType>(value.getType());
}

/// A blob resource key for a tensor named `name`: MLIR's textual form
/// reads keys back only when they are identifiers ([A-Za-z_][A-Za-z0-9_.]*),
/// so other characters become '_' (an ONNX name like "/blocks/conv" too).
std::string resourceKey(llvm::StringRef name);

/// The ONNX op type of a typed op or generic node ("Conv", "TopK").
llvm::StringRef opTypeOf(mlir::Operation *op);

/// An op for messages: "[domain.]Type 'node name'", or, for a node without
/// a name and with `outputFallback`, "Type (output 'first output')".
std::string describeNode(mlir::Operation *op, bool outputFallback = false);
} // namespace refold::ir

#endif // REFOLD_DIALECT_ONNX_ONNXOPS_H
