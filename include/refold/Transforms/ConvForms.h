//===- ConvForms.h - convs and average pools as dense 2-D kernels -*- C++ -*-===//
//
// The sequential and parallel merges, and BatchNorm folding after a pool,
// see a 2-D Conv and an AveragePool alike: a constant kernel with groups,
// strides and zero padding. An AveragePool that counts padded zeros (or has
// no padding) is a depthwise conv with taps 1/(kh*kw); a zero Pad in front
// of it is part of its padding.
//
//===----------------------------------------------------------------------===//

#ifndef REFOLD_TRANSFORMS_CONVFORMS_H
#define REFOLD_TRANSFORMS_CONVFORMS_H

#include "refold/Transforms/WeightUtils.h"

#include "mlir/IR/PatternMatch.h"

#include <array>
#include <string>

namespace refold {

/// A 2-D convolution read from the graph.
struct ConvForm {
  mlir::Operation *op = nullptr;  // Conv or AveragePool
  mlir::Operation *pad = nullptr; // a Pad absorbed into `pads`, if any
  mlir::Value input;              // what the kernel reads (the Pad's input)
  weights::F32Tensor weight;      // [O, C/group, kh, kw]
  std::vector<float> bias;        // O entries, zero when absent
  int64_t group = 1;
  std::array<int64_t, 2> stride{1, 1};
  std::array<int64_t, 4> pads{0, 0, 0, 0}; // top, left, bottom, right

  int64_t outChannels() const { return weight.dim(0); }
  int64_t inChannels() const { return weight.dim(1) * group; }
  int64_t kh() const { return weight.dim(2); }
  int64_t kw() const { return weight.dim(3); }
  bool isUnitStride() const { return stride == std::array<int64_t, 2>{1, 1}; }
  bool isUnpadded() const {
    return pads == std::array<int64_t, 4>{0, 0, 0, 0};
  }
  /// The padding that keeps this kernel's centre when it is zero-padded into
  /// a kh x kw kernel, or nothing when the size difference is odd.
  std::optional<std::array<int64_t, 4>> centredPads(int64_t kh, int64_t kw) const {
    int64_t dh = kh - this->kh(), dw = kw - this->kw();
    if (dh % 2 || dw % 2)
      return std::nullopt;
    return std::array<int64_t, 4>{pads[0] + dh / 2, pads[1] + dw / 2, pads[2] + dh / 2,
                                  pads[3] + dw / 2};
  }
};

/// Reads `op` (a Conv, or an AveragePool equal to a depthwise conv) as a
/// ConvForm, or says in `why` why it is not one.
mlir::FailureOr<ConvForm> readConvForm(mlir::Operation *op, std::string &why);

/// The same weight with group 1: [O, C, kh, kw], zero off the groups.
weights::F32Tensor expandGroups(const weights::F32Tensor &weight, int64_t group);

/// Zero padding seen by a conv whose input should be `shift[c]` outside the
/// image too (the conv reads y = L(x) + shift and L is pointwise): the
/// output map [1, O, outH, outW] to add to the conv computed as if the
/// shift were everywhere. Non-zero only on border rows and columns.
weights::F32Tensor borderCorrection(const weights::F32Tensor &weight, int64_t group,
                                    llvm::ArrayRef<float> shift, std::array<int64_t, 2> stride,
                                    std::array<int64_t, 4> pads, int64_t inH, int64_t inW,
                                    int64_t outH, int64_t outW);

/// A Pad by zeros of the spatial axes only, in constant mode: the typed Pad
/// or the attribute form of opsets 2 to 10; also a Slice of such a Pad that
/// only removes padding (ACNet's crop form), as the smaller Pad it is.
struct ZeroPad {
  mlir::Operation *op; // the Pad, or the Slice that crops it
  mlir::Value input;
  llvm::SmallVector<int64_t> pads; // begins of the spatial axes, then ends
};

/// `padded` as a ZeroPad, or why it is not one.
mlir::FailureOr<ZeroPad> readZeroPad(mlir::Value padded, std::string &why);

/// Whether a Conv or pool with these attributes pads its input: a non-zero
/// explicit pad, or auto_pad SAME_UPPER/SAME_LOWER.
bool padsInput(std::optional<llvm::ArrayRef<int64_t>> pads,
               std::optional<llvm::StringRef> autoPad);

/// Static [H, W] of a rank-4 NCHW value, if known.
std::optional<std::array<int64_t, 2>> staticSpatialShape(mlir::Value value);

/// Creates Conv(input, weight, bias) with the given geometry and `type`,
/// named after `namesFrom` (node name of `nodeNameFrom`, output names of
/// `namesFrom`).
mlir::Value createConv(mlir::PatternRewriter &rewriter, mlir::Location loc, mlir::Value input,
                       const weights::F32Tensor &weight, llvm::ArrayRef<float> bias,
                       int64_t group, std::array<int64_t, 2> stride,
                       std::array<int64_t, 4> pads, mlir::Type type, llvm::StringRef nameHint,
                       mlir::Operation *nodeNameFrom, mlir::Operation *outputNamesFrom);

/// `value + map`, the map a new initializer; takes `outputNamesFrom`'s names.
mlir::Value createAddConstant(mlir::PatternRewriter &rewriter, mlir::Location loc,
                              mlir::Value value, const weights::F32Tensor &map,
                              llvm::StringRef nameHint, mlir::Operation *outputNamesFrom);

} // namespace refold

#endif // REFOLD_TRANSFORMS_CONVFORMS_H
