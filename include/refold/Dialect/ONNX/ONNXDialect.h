//===- ONNXDialect.h - the onnx dialect -------------------------*- C++ -*-===//

#ifndef REFOLD_DIALECT_ONNX_ONNXDIALECT_H
#define REFOLD_DIALECT_ONNX_ONNXDIALECT_H

#include "mlir/IR/Dialect.h"

#include "refold/Dialect/ONNX/ONNXDialect.h.inc"

#endif // REFOLD_DIALECT_ONNX_ONNXDIALECT_H
