//===- OwnedBlob.h - weight bytes the exporter can take back ---*- C++ -*-===//
//
// Large weights live in blob resources. A blob made here owns a std::string,
// so the exporter can hand those bytes to the TensorProto it writes (a swap)
// instead of copying them: weights are never copied on the way out.
//
//===----------------------------------------------------------------------===//

#ifndef REFOLD_DIALECT_ONNX_OWNEDBLOB_H
#define REFOLD_DIALECT_ONNX_OWNEDBLOB_H

#include "mlir/IR/AsmState.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Operation.h"

#include <string>

namespace refold::ir {

/// A blob owning `bytes`, recorded with `alignment` (its element size).
mlir::AsmResourceBlob makeOwnedBlob(std::string bytes, size_t alignment);

/// A weight attribute holding `bytes` in an owned blob resource named after
/// `key` (made unique). Its blob is freed by releaseUnusedBlobs once no op
/// refers to it.
mlir::DenseResourceElementsAttr createWeightAttr(mlir::ShapedType type, llvm::StringRef key,
                                                 std::string bytes);

/// Moves the bytes of a blob made by makeOwnedBlob into `out` and returns
/// true; the blob must be dropped right after (its data is gone). False,
/// and nothing changes, for other blobs.
bool takeOwnedBytes(const mlir::AsmResourceBlob &blob, std::string &out);

/// Frees the blobs made by createWeightAttr that no op under `roots` refers
/// to any more (the weights a fold replaced): resources outlive the ops that used them, so
/// without this a pipeline holds every weight it ever made. Returns the
/// bytes freed.
uint64_t releaseUnusedBlobs(mlir::MLIRContext *context, llvm::ArrayRef<mlir::Operation *> roots);

} // namespace refold::ir

#endif // REFOLD_DIALECT_ONNX_OWNEDBLOB_H
