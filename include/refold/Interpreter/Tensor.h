//===- Tensor.h - runtime tensors of the reference interpreter --*- C++ -*-===//

#ifndef REFOLD_INTERPRETER_TENSOR_H
#define REFOLD_INTERPRETER_TENSOR_H

#include "mlir/IR/BuiltinAttributeInterfaces.h"
#include "mlir/IR/Types.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace refold::interp {

/// Element types the interpreter computes with. Values are ONNX's
/// TensorProto data types, so conversions are direct.
enum class DType : int32_t {
  F32 = 1, U8 = 2, I8 = 3, U16 = 4, I16 = 5, I32 = 6, I64 = 7, String = 8,
  Bool = 9, F16 = 10, F64 = 11, U32 = 12, U64 = 13, BF16 = 16,
};

size_t dtypeSize(DType type);
llvm::StringRef dtypeName(DType type);
/// The DType of an MLIR element type, if the interpreter supports it.
std::optional<DType> dtypeFromMLIR(mlir::Type type);

/// The largest tensor the interpreter allocates, in bytes (4 GiB); a larger
/// or negative shape, found while a model runs, is an error naming the op.
constexpr uint64_t kMaxTensorBytes = uint64_t(4) << 30;

/// Thrown inside the interpreter (which is built with exceptions) by a
/// shape over kMaxTensorBytes or an attribute out of range; the op
/// evaluation turns it into an error naming the op.
class InterpreterError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

using Shape = llvm::SmallVector<int64_t, 6>;
int64_t numElements(llvm::ArrayRef<int64_t> shape);
std::string shapeString(llvm::ArrayRef<int64_t> shape);

/// A dense row-major tensor. Storage is shared: Reshape, Identity and
/// friends alias their input instead of copying.
class Tensor {
public:
  Tensor() = default;
  Tensor(DType type, llvm::ArrayRef<int64_t> shape);

  DType dtype() const { return type; }
  llvm::ArrayRef<int64_t> shape() const { return dims; }
  int64_t rank() const { return dims.size(); }
  int64_t dim(int64_t i) const { return dims[i < 0 ? i + rank() : i]; }
  int64_t size() const { return numElements(dims); }
  size_t byteSize() const { return size() * dtypeSize(type); }
  bool defined() const { return storage != nullptr; }

  template <typename T> T *data() { return reinterpret_cast<T *>(storage.get()); }
  template <typename T> const T *data() const {
    return reinterpret_cast<const T *>(storage.get());
  }
  char *raw() { return storage.get(); }
  const char *raw() const { return storage.get(); }

  /// Same data read as another type of the same size.
  Tensor bitcast(DType type) const;
  /// Same data, new shape (sizes must match).
  Tensor reshaped(llvm::ArrayRef<int64_t> shape) const;
  /// Element i converted to double / int64 (for shape and index inputs).
  double asDouble(int64_t i) const;
  /// Stores `v` converted to this tensor's type (round to nearest for
  /// floats, truncation for integers, v != 0 for bool).
  void setDouble(int64_t i, double v);
  int64_t asInt(int64_t i) const;
  std::vector<int64_t> toInts() const;

  /// A tensor viewing `data` (not owned; must outlive every copy), e.g. a
  /// weight blob. Kernels never write to their inputs.
  static Tensor view(DType type, llvm::ArrayRef<int64_t> shape, const void *data);
  static Tensor scalarF32(float v);
  static Tensor fromInts(llvm::ArrayRef<int64_t> values, llvm::ArrayRef<int64_t> shape);

private:
  DType type = DType::F32;
  Shape dims;
  std::shared_ptr<char> storage;
};

/// Tensor from an MLIR elements attribute (dense or resource).
llvm::Expected<Tensor> tensorFromAttr(mlir::ElementsAttr attr);

/// An elements attribute holding `tensor`: dense when small, a blob resource
/// named `blobName` otherwise.
mlir::ElementsAttr tensorToAttr(const Tensor &tensor, mlir::MLIRContext *context,
                                llvm::StringRef blobName);

/// TensorProto files (.pb) and numpy files (.npy).
llvm::Expected<Tensor> readTensorFile(llvm::StringRef path);

/// What a .npy file's header says: element type, shape, and where the
/// row-major data starts (for reading part of a large file).
struct NpyHeader {
  DType dtype;
  Shape shape;
  size_t dataOffset;
};
/// Parses the header at the start of `bytes` (the first 64 KB suffice).
llvm::Expected<NpyHeader> parseNpyHeader(llvm::StringRef bytes, llvm::StringRef path);
llvm::Error writeTensorProto(const Tensor &tensor, llvm::StringRef name, llvm::StringRef path);

} // namespace refold::interp

#endif // REFOLD_INTERPRETER_TENSOR_H
