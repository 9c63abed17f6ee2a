//===- Lowering.h - ops to kernel calls, shared by the emitter --*- C++ -*-===//
//
// The emitter works in three phases: each op becomes a Step (which values it
// reads and writes, which inputs it may overwrite, how much scratch it
// needs, and a callback that prints its kernel call); the memory plan gives
// every value a place; then the steps print themselves.
//
//===----------------------------------------------------------------------===//

#ifndef REFOLD_LIB_CEMITTER_LOWERING_H
#define REFOLD_LIB_CEMITTER_LOWERING_H

#include "refold/Interpreter/Tensor.h"

#include "mlir/IR/Operation.h"
#include "mlir/IR/Value.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/raw_ostream.h"

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace refold::cemit {

using interp::DType;
using interp::Tensor;

class Emitter;

struct Step {
  mlir::Operation *op = nullptr; // the node it comes from (for comments)
  std::string comment;           // e.g. "Conv 'conv1' + Add + Relu"
  std::vector<mlir::Value> reads, writes;
  /// writes[0] may take the place of one of these inputs when it dies here.
  std::vector<mlir::Value> inPlaceCandidates;
  /// writes[0] is reads[0] seen with another shape (Reshape, Flatten...).
  bool isView = false;
  /// Concat: inputs whose producers may write straight into the output, at
  /// these byte offsets (contiguous slices).
  std::vector<std::pair<mlir::Value, uint64_t>> slices;
  uint64_t scratchBytes = 0;
  /// Prints the call; runs after the memory plan.
  std::function<void(Emitter &, llvm::raw_ostream &)> print;
};

/// Where a value's bytes are, once planned.
enum class Storage { Arena, Input, Output, Weight };

struct Buffer {
  Storage kind = Storage::Arena;
  unsigned index = 0;  // input or output position
  uint64_t bytes = 0;
  unsigned first = 0, last = 0;
  uint64_t offset = 0; // arena or weight-blob offset
  std::vector<mlir::Value> values;
};

struct Slot {
  int buffer = -1;
  uint64_t byteOffset = 0;
};

/// Attribute access for typed ops and generic nodes alike.
struct NodeAttrs {
  mlir::Operation *op;
  mlir::Attribute get(llvm::StringRef name) const;
  int64_t i(llvm::StringRef name, int64_t fallback) const;
  float f(llvm::StringRef name, float fallback) const;
  std::string s(llvm::StringRef name, llvm::StringRef fallback) const;
  std::optional<std::vector<int64_t>> ints(llvm::StringRef name) const;
};

llvm::StringRef opTypeOf(mlir::Operation *op);
std::string describeOp(mlir::Operation *op);

class Emitter {
public:
  Emitter(mlir::Operation *func, int64_t opset) : func(func), opset(opset) {}

  // --- used while lowering --------------------------------------------------
  llvm::Error unsupported(mlir::Operation *op, const llvm::Twine &why) const;
  llvm::Expected<std::vector<int64_t>> shapeOf(mlir::Operation *op, mlir::Value v) const;
  std::optional<Tensor> constant(mlir::Value v) const;
  bool isConstant(mlir::Value v) const { return constant(v).has_value(); }
  /// The single non-terminator user of `v`, if it has exactly one use.
  mlir::Operation *singleUser(mlir::Value v) const;
  /// Adds bytes to the weight blob (64-byte aligned); returns their offset.
  uint64_t addWeight(const void *data, size_t bytes);
  uint64_t addFloats(llvm::ArrayRef<float> values) {
    return addWeight(values.data(), values.size() * sizeof(float));
  }
  /// A constant's bytes in the blob (added once per value).
  uint64_t weightOf(mlir::Value v);
  /// A file-scope declaration; returns its name.
  std::string declare(llvm::StringRef kind, llvm::StringRef type, llvm::StringRef init);
  std::string intArray(llvm::ArrayRef<int64_t> values, llvm::StringRef type = "ptrdiff_t");
  std::string floatArray(llvm::ArrayRef<float> values);
  void markAbsorbed(mlir::Operation *op) { absorbed.insert(op); }
  bool isAbsorbed(mlir::Operation *op) const { return absorbed.contains(op); }
  void use(llvm::StringRef kernelFile) { kernelFiles.insert(kernelFile.str()); }

  // --- used while printing ----------------------------------------------------
  /// A C expression pointing at `v`'s data, as `T *` (const unless writable).
  std::string ptr(mlir::Value v, bool writable = false) const;
  /// The current step's scratch slice, `offset` bytes in.
  std::string scratch(llvm::StringRef type = "float", uint64_t offset = 0) const;
  static std::string floatLiteral(float v);

  // --- state ----------------------------------------------------------------
  mlir::Operation *func;
  int64_t opset;
  bool fixedRequant = false;
  std::vector<Step> steps;
  std::vector<Buffer> buffers;
  llvm::DenseMap<mlir::Value, Slot> slots;
  std::vector<int> scratchBuffer; // per step, -1 when none
  unsigned currentStep = 0;
  std::vector<char> blob;
  llvm::DenseMap<mlir::Value, uint64_t> weightOffsets;
  std::string decls;
  unsigned declCount = 0;
  llvm::DenseSet<mlir::Operation *> absorbed;
  /// DequantizeLinear of constants, evaluated once.
  mutable llvm::DenseMap<mlir::Value, std::optional<Tensor>> folded;
  std::set<std::string> kernelFiles;
};

/// A 2-D window (1-D is 2-D with height 1), NCHW.
struct ConvGeometry {
  int64_t n, c, h, w, m, oh, ow, kh, kw, sh = 1, sw = 1, pt = 0, pl = 0, pb = 0, pr = 0,
                                              dh = 1, dw = 1, groups = 1;
};

/// Reads kernel, strides, dilations and pads (explicit or auto_pad) of a 1-D
/// or 2-D window op of input shape `in` and output shape `out`.
llvm::Error readWindow(Emitter &e, mlir::Operation *op, llvm::ArrayRef<int64_t> in,
                       llvm::ArrayRef<int64_t> out, std::vector<int64_t> kernel, ConvGeometry &g,
                       bool transposed = false);

/// The rf_conv_shape constant of `g` (ckernels/conv.h); returns its name.
std::string convShape(Emitter &e, const ConvGeometry &g);

/// Appends the steps of `op` (possibly absorbing the ops after it).
llvm::Error lowerOp(Emitter &e, mlir::Operation *op);

std::string cTypeOf(DType type);
std::optional<DType> elementDType(mlir::Value v);

} // namespace refold::cemit

#endif // REFOLD_LIB_CEMITTER_LOWERING_H
