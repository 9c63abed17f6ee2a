//===- LowerNN.cpp - Conv, ConvTranspose, Gemm, MatMul, pools ----------------===//
//
// The compute-heavy ops: weights packed here, at generation time, into the
// layout the GEMM micro-kernel reads; a following bias, residual Add and
// activation become the kernel's epilogue.
//
//===----------------------------------------------------------------------===//

#include "Lowering.h"

#include "refold/Dialect/ONNX/ONNXOps.h"

#include "llvm/ADT/STLExtras.h"

using namespace mlir;
using llvm::Error;

namespace refold::cemit {

// Keep in step with ckernels/gemm.h.
static constexpr int64_t kMR = 6, kNR = 16;
// rf_conv2d_cvec's weight panels (RF_CV_PANEL output channels).
static constexpr int64_t kCvecPanel = 64;
// Bytes of packed im2col scratch a conv aims for (tiles of output pixels):
// half an L2 cache of today's cores.
static constexpr int64_t kIm2colBudget = 1024 * 1024;

static int64_t product(ArrayRef<int64_t> dims) {
  int64_t p = 1;
  for (int64_t d : dims)
    p *= d;
  return p;
}

/// An activation fused into a kernel's epilogue.
struct Activation {
  std::string kind = "RF_ACT_NONE";
  float p0 = 0, p1 = 0;
};

/// If `op` is an activation the epilogues implement, what it is.
static std::optional<Activation> activationOf(Emitter &e, Operation *op) {
  StringRef type = opTypeOf(op);
  NodeAttrs attrs{op};
  Activation act;
  if (type == "Relu") {
    act.kind = "RF_ACT_RELU";
  } else if (type == "LeakyRelu") {
    act.kind = "RF_ACT_LEAKY_RELU";
    act.p0 = attrs.f("alpha", 0.01f);
  } else if (type == "Sigmoid") {
    act.kind = "RF_ACT_SIGMOID";
  } else if (type == "Tanh") {
    act.kind = "RF_ACT_TANH";
  } else if (type == "HardSigmoid") {
    act.kind = "RF_ACT_HARD_SIGMOID";
    act.p0 = attrs.f("alpha", 0.2f);
    act.p1 = attrs.f("beta", 0.5f);
  } else if (type == "HardSwish") {
    act.kind = "RF_ACT_HARD_SWISH";
  } else if (type == "Clip") {
    act.kind = "RF_ACT_CLIP";
    act.p0 = -INFINITY;
    act.p1 = INFINITY;
    if (e.opset < 11) {
      act.p0 = attrs.f("min", act.p0);
      act.p1 = attrs.f("max", act.p1);
    } else {
      for (unsigned i = 1; i < 3 && i < op->getNumOperands(); ++i) {
        if (ir::isNoneValue(op->getOperand(i)))
          continue;
        auto bound = e.constant(op->getOperand(i));
        if (!bound || bound->size() != 1 || bound->dtype() != DType::F32)
          return std::nullopt;
        (i == 1 ? act.p0 : act.p1) = bound->data<float>()[0];
      }
    }
  } else {
    return std::nullopt;
  }
  if (op->getNumResults() != 1)
    return std::nullopt;
  return act;
}

/// Absorbs an activation that is the only user of `value`; returns the value
/// the step finally writes.
static Value absorbActivation(Emitter &e, Value value, Activation &act, std::string &comment) {
  Operation *user = e.singleUser(value);
  if (!user || user->getOperand(0) != value)
    return value;
  auto found = activationOf(e, user);
  if (!found)
    return value;
  act = *found;
  e.markAbsorbed(user);
  comment += " + " + opTypeOf(user).str();
  return user->getResult(0);
}

/// Absorbs `Add(value, other)` when `other` is a runtime tensor of the same
/// shape computed before `producer`: the kernel adds it in its epilogue.
static Value absorbResidual(Emitter &e, Operation *producer, Value value, Value &residual,
                            std::string &comment) {
  Operation *user = e.singleUser(value);
  if (!user || opTypeOf(user) != "Add" || user->getNumOperands() != 2)
    return value;
  Value other = user->getOperand(0) == value ? user->getOperand(1) : user->getOperand(0);
  if (other == value || e.isConstant(other) || other.getType() != value.getType() ||
      user->getResult(0).getType() != value.getType())
    return value;
  if (Operation *def = other.getDefiningOp())
    if (def->getBlock() != producer->getBlock() || !def->isBeforeInBlock(producer))
      return value;
  residual = other;
  e.markAbsorbed(user);
  comment += " + Add";
  return user->getResult(0);
}

static std::string actArgs(const Activation &act) {
  return act.kind + ", " + Emitter::floatLiteral(act.p0) + ", " + Emitter::floatLiteral(act.p1);
}

/// Rows of `w` ([groups * mg, k], row-major) packed in panels of `rows`
/// rows per group (rows past mg zero).
static std::vector<float> packRows(const float *w, int64_t groups, int64_t mg, int64_t k,
                                   int64_t rows = kMR) {
  int64_t mpad = (mg + rows - 1) / rows * rows;
  std::vector<float> packed(groups * mpad * k, 0.0f);
  float *out = packed.data();
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t i0 = 0; i0 < mpad; i0 += rows)
      for (int64_t kk = 0; kk < k; ++kk)
        for (int64_t i = 0; i < rows; ++i, ++out)
          if (i0 + i < mg)
            *out = w[(g * mg + i0 + i) * k + kk];
  return packed;
}

/// b ([k, n], element (kk, j) at b[kk * sk + j * sn]) packed in panels of kNR columns.
static std::vector<float> packColumns(const float *b, int64_t k, int64_t n, int64_t sk, int64_t sn,
                                      float scale) {
  int64_t npad = (n + kNR - 1) / kNR * kNR;
  std::vector<float> packed(npad * k, 0.0f);
  float *out = packed.data();
  for (int64_t j0 = 0; j0 < npad; j0 += kNR)
    for (int64_t kk = 0; kk < k; ++kk)
      for (int64_t j = 0; j < kNR; ++j, ++out)
        if (j0 + j < n)
          *out = b[kk * sk + (j0 + j) * sn] * scale;
  return packed;
}

static Error requireFloat(Emitter &e, Operation *op) {
  for (Value v : op->getOperands())
    if (!ir::isNoneValue(v) && elementDType(v) != DType::F32)
      return e.unsupported(op, "only float32 tensors are supported by this op's kernel");
  return Error::success();
}

//===----------------------------------------------------------------------===//
// Conv
//===----------------------------------------------------------------------===//

Error readWindow(Emitter &e, Operation *op, ArrayRef<int64_t> in, ArrayRef<int64_t> out,
                 std::vector<int64_t> kernel, ConvGeometry &g, bool transposed) {
  NodeAttrs attrs{op};
  size_t spatial = in.size() - 2;
  if (spatial != 1 && spatial != 2)
    return e.unsupported(op, std::to_string(spatial) + "-D windows (only 1-D and 2-D)");
  auto strides = attrs.ints("strides").value_or(std::vector<int64_t>(spatial, 1));
  auto dilations = attrs.ints("dilations").value_or(std::vector<int64_t>(spatial, 1));
  auto pads = attrs.ints("pads").value_or(std::vector<int64_t>(2 * spatial, 0));
  if (strides.size() != spatial || dilations.size() != spatial || pads.size() != 2 * spatial ||
      kernel.size() != spatial)
    return e.unsupported(op, "kernel_shape, strides, dilations or pads of the wrong length");
  std::string autoPad = attrs.s("auto_pad", "NOTSET");
  if (autoPad == "VALID") {
    pads.assign(2 * spatial, 0);
  } else if (autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER") {
    for (size_t d = 0; d < spatial; ++d) {
      int64_t span = (kernel[d] - 1) * dilations[d] + 1;
      int64_t total = transposed ? strides[d] * (in[2 + d] - 1) + span - out[2 + d]
                                 : (out[2 + d] - 1) * strides[d] + span - in[2 + d];
      total = std::max<int64_t>(0, total);
      int64_t small = total / 2, large = total - total / 2;
      bool upper = autoPad == "SAME_UPPER";
      pads[d] = upper ? small : large;
      pads[d + spatial] = total - pads[d];
    }
  } else if (autoPad != "NOTSET") {
    return e.unsupported(op, "auto_pad '" + autoPad + "'");
  }
  auto at = [&](const std::vector<int64_t> &v, size_t d, int64_t one) {
    return spatial == 1 ? (d == 0 ? one : v[0]) : v[d];
  };
  g.n = in[0];
  g.c = in[1];
  g.h = spatial == 1 ? 1 : in[2];
  g.w = in[spatial + 1];
  g.m = out[1];
  g.oh = spatial == 1 ? 1 : out[2];
  g.ow = out[spatial + 1];
  g.kh = at(kernel, 0, 1);
  g.kw = at(kernel, 1, 1);
  g.sh = at(strides, 0, 1);
  g.sw = at(strides, 1, 1);
  g.dh = at(dilations, 0, 1);
  g.dw = at(dilations, 1, 1);
  if (spatial == 1) {
    g.pl = pads[0];
    g.pr = pads[1];
  } else {
    g.pt = pads[0];
    g.pl = pads[1];
    g.pb = pads[2];
    g.pr = pads[3];
  }
  return Error::success();
}

std::string convShape(Emitter &e, const ConvGeometry &g) {
  std::string init = " = {";
  for (auto [i, v] : llvm::enumerate(std::vector<int64_t>{g.n, g.c, g.h, g.w, g.m, g.oh, g.ow, g.kh,
                                                          g.kw, g.sh, g.sw, g.pt, g.pl, g.dh, g.dw,
                                                          g.groups}))
    init += (i ? ", " : "") + std::to_string(v);
  return e.declare("conv", "rf_conv_shape", init + "}");
}

/// The phase-plane layout of rf_conv2d_direct (ckernels/conv.h).
struct DirectGeometry {
  int64_t wpad, plane;
  /// A strided 1x1 conv: its pixels are packed densely first
  /// (rf_subsample), then it runs as a pointwise conv.
  bool subsample = false;
};

/// A 1x1 stride-1 unpadded conv: a product over channels, pixel by pixel.
static bool isPointwise(const ConvGeometry &g) {
  return g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 && g.pl == 0 && g.pb == 0 &&
         g.pr == 0 && g.oh == g.h && g.ow == g.w;
}

/// The phase planes of rf_conv2d_direct for a conv with a window larger
/// than 1x1: rows of wpad floats, enough rows for every tile's reads.
static DirectGeometry phaseGeometry(const ConvGeometry &g) {
  constexpr int64_t kSpan = 16; // RF_NR
  auto ceilDiv = [](int64_t a, int64_t b) { return (a + b - 1) / b; };
  // Leading zero columns of the emptiest column phase: a read past a row's
  // end lands there in the next row.
  int64_t zmin = INT64_MAX;
  for (int64_t px = 0; px < g.sw; ++px)
    zmin = std::min(zmin, g.pl > px ? ceilDiv(g.pl - px, g.sw) : 0);
  int64_t reachX = (g.kw - 1) * g.dw / g.sw, reachY = (g.kh - 1) * g.dh / g.sh;
  DirectGeometry d;
  d.wpad = std::max({ceilDiv(g.w + g.pl, g.sw), g.ow + reachX - zmin, int64_t(1)});
  // The last position a tile computes: flat tiles end on a multiple of 16,
  // row-by-row ones (RF_DIRECT_ROWWISE) on the last row's.
  int64_t flat = (g.oh - 1) * d.wpad + g.ow;
  int64_t computed =
      std::max(ceilDiv(flat, kSpan) * kSpan, (g.oh - 1) * d.wpad + ceilDiv(g.ow, kSpan) * kSpan);
  int64_t rows = ceilDiv(computed + reachY * d.wpad + reachX, d.wpad);
  d.plane = ceilDiv(rows * d.wpad, 16) * 16;
  return d;
}

/// Whether a conv runs the direct kernel, and its layout: every conv with a
/// window larger than 1x1 (a 1x1 conv is a plain GEMM), unless the flat
/// positions it computes and drops would outnumber the pixels it keeps.
static std::optional<DirectGeometry> directGeometry(const ConvGeometry &g) {
  constexpr int64_t kMaxTaps = 49, kSpan = 16; // RF_DIRECT_MAX_TAPS, RF_NR
  if (g.kh * g.kw > kMaxTaps || g.sh > 4 || g.sw > 4)
    return std::nullopt;
  if (isPointwise(g)) {
    // Measured against the GEMM path: the direct tile wins from about 48
    // output channels up (by 2-4x at 14x14 and 7x7, where the GEMM's
    // 16-wide panels leave ragged edges), and since its tiles are stored
    // from registers from 16 up as well (MobileNetV2's projections to 16,
    // 24 and 32 channels: 1.2-1.9x); below 8 a 6-row tile is mostly waste.
    if (g.m / g.groups < 8)
      return std::nullopt;
    // The image as one row, read in place (the tiles that would read past
    // the input take its last channel through a copy): a copy into aligned
    // planes costs more than the unaligned loads it saves (576 -> 96 at
    // 14x14: 0.155 -> 0.128 ms, bench/c_conv_kernels.sh).
    return DirectGeometry{g.h * g.w, 0};
  }
  // A strided 1x1 conv without padding reads one pixel in sh * sw: packed
  // densely (a copy of a quarter of the input at stride 2), it is a
  // pointwise conv. ResNet-50's 256 -> 512 shortcut at 28x28 (with its
  // Add and Relu): 1.34 ms on im2col and the GEMM, 1.07 ms here
  // (and 0.73-1.0x rf_conv2d_cvec's time at 14x14 and 7x7).
  if (g.kh * g.kw == 1) {
    if (g.pt || g.pl || g.pb || g.pr || g.m / g.groups < 8)
      return std::nullopt;
    DirectGeometry d{g.oh * g.ow, 0};
    d.subsample = true;
    return d;
  }
  DirectGeometry d = phaseGeometry(g);
  int64_t flat = (g.oh - 1) * d.wpad + g.ow, computed = (flat + kSpan - 1) / kSpan * kSpan;
  if (2 * g.oh * g.ow < computed)
    return std::nullopt;
  return d;
}

/// Whether a conv runs rf_conv2d_cvec (output channels in vectors, any run
/// of output pixels, nothing computed and dropped) instead of the flat
/// direct tiles, and its geometry. Measured (bench/c_conv_kernels.sh) on
/// ResNet shapes: 0.73x the direct kernel's time for 3x3 convs at 7x7,
/// 0.85x at 14x14, even at 28x28 and 1.12x at 56x56. Against pointwise
/// tiles stored from registers it wins at 7x7 (below) and holds its own up
/// to 14x14 where the input channels outnumber the output channels at
/// least twofold (0.90x at 384->64, 0.95x at 1024->256), not at 28x28
/// (1.09x at 512->128) nor the other way at 14x14 (1.0x at 256->256, 1.2x
/// at 96->576, 1.3x at 64->384).
static std::optional<DirectGeometry> cvecGeometry(const ConvGeometry &g, bool constantWeights) {
  int64_t cg = g.c / g.groups, mg = g.m / g.groups;
  int64_t mpad = (mg + kCvecPanel - 1) / kCvecPanel * kCvecPanel;
  // Packed at generation time only; at most a fifth of a panel of zeros.
  if (!constantWeights || (mpad - mg) * 5 > mpad || (cg == 1 && g.groups == g.c))
    return std::nullopt;
  if (g.kh * g.kw > 49 || g.sh > 4 || g.sw > 4)
    return std::nullopt;
  if (isPointwise(g)) {
    // At 7x7 the direct tiles compute 64 positions for 49: this kernel
    // wins whatever the channels (0.5x at 64->64, 0.70x at 128->512, 0.75x
    // at 160->960 and 320->1280, 0.76x at 512->2048).
    bool reduces = cg >= 2 * mg, at7x7 = g.oh * g.ow <= 7 * 7;
    if (g.oh * g.ow > 14 * 14 || !(reduces || at7x7))
      return std::nullopt;
    return DirectGeometry{g.w, 0}; // read in place, pixel by pixel
  }
  // Unpadded strided 1x1 convs (ResNet's shortcuts) are read in place,
  // pixel by pixel, at 7x7 (1024 -> 2048: 0.83x the pointwise direct
  // kernel's time, its rf_subsample copy not counted; 256 -> 512 0.70x);
  // larger ones run packed densely on the pointwise direct kernel
  // (directGeometry; even at 14x14: 128 -> 256 1.0x, 512 -> 1024 0.96x).
  if (g.kh * g.kw == 1 && !(g.pt || g.pl || g.pb || g.pr) && g.oh * g.ow <= 7 * 7)
    return DirectGeometry{g.w, 0};
  if (g.kh * g.kw == 1 || g.oh * g.ow > 16 * 16)
    return std::nullopt;
  return phaseGeometry(g);
}

/// Tiles per block of rf_conv2d_winograd (ckernels/winograd.h): a multiple
/// of its products' 64-tile spans.
static constexpr int64_t kWinogradBlock = 64;

/// Whether a conv runs rf_conv2d_winograd: dense 3x3, stride 1, no
/// dilation, constant weights, 32 channels or more on both sides, on planes
/// from 14x14 up. Measured (bench/c_conv_kernels.sh) against the kernel it
/// replaces: 0.75x the direct kernel's time on ResNet's 64 channels at
/// 56x56, 0.69x at 128 channels at 28x28, 0.77x rf_conv2d_cvec's at 256
/// channels at 14x14; RepVGG-A0's 48, 96 and 192 channels 0.82x, 0.74x,
/// 0.80x; 0.91x at 32 channels and 112x112. Slower at 24 channels and
/// below (1.05x at 56x56, 1.35x for 16 at 112x112) and on small planes
/// (1.1x at 10x10, 2x at 7x7, where the transformed weights, 16/9 the size,
/// are read for a few tiles only).
static bool useWinograd(const ConvGeometry &g, bool constantWeights) {
  return constantWeights && g.groups == 1 && g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 &&
         g.dh == 1 && g.dw == 1 && g.oh * g.ow >= 14 * 14 && g.c >= 32 && g.m >= 32;
}

/// U = G g G^T of every output and input channel pair (Lavin and Gray's
/// F(2x2, 3x3)), in double, as 16 sets of GEMM panels of kMR rows: set
/// (i, j) holds U[i][j] as an [m, c] matrix.
static std::vector<float> winogradWeights(const float *w, int64_t m, int64_t c) {
  static const double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  std::vector<float> u(16 * m * c);
  for (int64_t o = 0; o < m; ++o)
    for (int64_t ci = 0; ci < c; ++ci) {
      const float *g = w + (o * c + ci) * 9;
      double gt[3][4]; // g G^T
      for (int a = 0; a < 3; ++a)
        for (int j = 0; j < 4; ++j)
          gt[a][j] = G[j][0] * g[a * 3] + G[j][1] * g[a * 3 + 1] + G[j][2] * g[a * 3 + 2];
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j)
          u[((i * 4 + j) * m + o) * c + ci] =
              float(G[i][0] * gt[0][j] + G[i][1] * gt[1][j] + G[i][2] * gt[2][j]);
    }
  std::vector<float> packed;
  for (int xi = 0; xi < 16; ++xi) {
    std::vector<float> set = packRows(u.data() + xi * m * c, 1, m, c);
    packed.insert(packed.end(), set.begin(), set.end());
  }
  return packed;
}

/// A conv's weights in the GEMM's panels (both conv kernels read them):
/// packed at generation time when constant, else packed at run time into
/// the first `runtimeBytes` of the step's scratch.
struct PackedConvWeights {
  std::string constant; // the packed constant's pointer expression, or ""
  uint64_t runtimeBytes = 0;
  Value w;
  int64_t groups = 1, mg = 0, k = 0;

  /// The pointer the kernel reads, after printing the run-time packing.
  std::string print(Emitter &e, raw_ostream &os) const {
    if (!constant.empty())
      return constant;
    std::string wp = e.scratch();
    int64_t mpad = (mg + kMR - 1) / kMR * kMR;
    os << "  { int g; for (g = 0; g < " << groups << "; ++g) rf_pack_a(" << mg << ", " << k << ", "
       << e.ptr(w) << " + (ptrdiff_t)g * " << mg * k << ", " << k << ", 1, " << wp
       << " + (ptrdiff_t)g * " << mpad * k << "); }\n";
    return wp;
  }
};

static PackedConvWeights packConvWeights(Emitter &e, Step &step, Value w,
                                         const std::optional<interp::Tensor> &constW,
                                         int64_t groups, int64_t mg, int64_t k) {
  PackedConvWeights packed;
  packed.w = w;
  packed.groups = groups;
  packed.mg = mg;
  packed.k = k;
  if (constW) {
    uint64_t offset = e.addFloats(packRows(constW->data<float>(), groups, mg, k));
    packed.constant = "(const float *)(const void *)(wb + " + std::to_string(offset) + ")";
  } else {
    step.reads.push_back(w);
    packed.runtimeBytes = uint64_t(groups * ((mg + kMR - 1) / kMR * kMR) * k) * 4;
  }
  return packed;
}

static Error lowerConv(Emitter &e, Operation *op) {
  if (auto err = requireFloat(e, op))
    return err;
  Value x = op->getOperand(0), w = op->getOperand(1);
  Value bias = op->getNumOperands() > 2 && !ir::isNoneValue(op->getOperand(2)) ? op->getOperand(2)
                                                                                 : Value();
  auto in = e.shapeOf(op, x);
  auto wShape = e.shapeOf(op, w);
  auto out = e.shapeOf(op, op->getResult(0));
  if (!in || !wShape || !out)
    return in ? (wShape ? out.takeError() : wShape.takeError()) : in.takeError();
  NodeAttrs attrs{op};
  std::vector<int64_t> kernel(wShape->begin() + 2, wShape->end());
  ConvGeometry g;
  if (auto err = readWindow(e, op, *in, *out, kernel, g))
    return err;
  g.groups = attrs.i("group", 1);
  if (g.groups < 1 || g.c % g.groups || g.m % g.groups || (*wShape)[1] * g.groups != g.c)
    return e.unsupported(op, "group does not divide the channels");
  if (bias && !e.isConstant(bias))
    return e.unsupported(op, "a bias computed at run time");

  Step step;
  step.op = op;
  step.comment = describeOp(op);
  Activation act;
  Value residual;
  Value result = op->getResult(0);
  result = absorbResidual(e, op, result, residual, step.comment);
  result = absorbActivation(e, result, act, step.comment);
  step.reads = {x};
  if (bias)
    step.reads.push_back(bias);
  if (residual) {
    step.reads.push_back(residual);
    step.inPlaceCandidates.push_back(residual);
  }
  step.writes = {result};
  e.use("conv");

  int64_t cg = g.c / g.groups, mg = g.m / g.groups;
  int64_t k = cg * g.kh * g.kw, ohw = g.oh * g.ow;
  bool depthwise = cg == 1 && g.groups == g.c;
  auto constW = e.constant(w);
  // The dense kernels, in order of preference.
  bool winograd = !depthwise && useWinograd(g, constW.has_value());
  auto cvec = depthwise || winograd ? std::nullopt : cvecGeometry(g, constW.has_value());
  auto direct = depthwise || winograd || cvec ? std::nullopt : directGeometry(g);
  // The direct kernel runs a pointwise conv on the image as a single row
  // (one run per output channel when its tile is stored).
  ConvGeometry kernelShape = g;
  if (direct && (isPointwise(g) || direct->subsample)) {
    kernelShape.h = kernelShape.oh = 1;
    kernelShape.w = kernelShape.ow = g.oh * g.ow;
    kernelShape.sh = kernelShape.sw = 1;
  }
  std::string shape = convShape(e, kernelShape);
  std::string actText = actArgs(act);

  // Both depthwise kernels take the same arguments (ONNX-layout weights).
  auto printDepthwise = [=](StringRef kernel) {
    return [=, kernel = kernel.str()](Emitter &e, raw_ostream &os) {
      os << "  " << kernel << "(" << e.ptr(x) << ", " << e.ptr(result, true) << ", " << e.ptr(w)
         << ", " << (bias ? e.ptr(bias) : "NULL") << ", " << (residual ? e.ptr(residual) : "NULL")
         << ", &" << shape << ", " << e.scratch() << ", " << actText << ");\n";
    };
  };

  // Small-image "same" depthwise convs on one flat run per channel
  // (rf_depthwise_same): 1.3-6x faster than the row kernel up to 28x28,
  // and with its 3x3 taps unrolled 1.25x at 56x56 (MobileOne-S0's 48
  // channels: 0.100 -> 0.080 ms); slower at 112x112 (MobileNetV2's 32
  // channels: 0.150 -> 0.245 ms).
  bool flatDepthwise = depthwise && g.m == g.c && g.kh == g.kw && g.kh % 2 == 1 && g.sh == 1 &&
                       g.sw == 1 && g.dh == 1 && g.dw == 1 && g.pt == g.kh / 2 &&
                       g.pl == g.kh / 2 && g.pb == g.kh / 2 && g.pr == g.kh / 2 && g.oh == g.h &&
                       g.ow == g.w && g.h * g.w <= 56 * 56;
  if (flatDepthwise) {
    step.reads.push_back(w);
    // rf_depthwise_same_scratch (ckernels/conv.h): k masks, the guarded copy.
    int64_t padded = (g.h * g.w + kNR - 1) / kNR * kNR;
    int64_t guard = (g.kh / 2 * g.w + g.kh / 2 + 2 * kNR - 1) / kNR * kNR;
    step.scratchBytes = uint64_t(g.kh * padded + 2 * guard + padded) * 4;
    // The output is written channel by channel over a residual it reads
    // at the same positions, so it may take over the residual's buffer.
    step.print = printDepthwise("rf_depthwise_same");
    e.steps.push_back(std::move(step));
    return Error::success();
  }

  if (depthwise) {
    step.reads.push_back(w);
    // kh padded input rows of scratch (see rf_conv2d_depthwise).
    int64_t span = (g.ow - 1) * g.sw + (g.kw - 1) * g.dw + 1;
    step.scratchBytes = uint64_t(g.kh * std::max(span, g.w + g.pl)) * 4;
    // 3x3 at stride 1 or 2: one zero-padded plane (rf_depthwise_plane_rows).
    if (g.kh == 3 && g.kw == 3 && g.dh == 1 && g.dw == 1 && (g.sw == 1 || g.sw == 2) &&
        (g.sh == 1 || g.sh == 2)) {
      int64_t hp = std::max((g.oh - 1) * g.sh + 3, g.h + g.pt);
      int64_t wp = std::max((g.ow - 1) * g.sw + 3, g.w + g.pl);
      wp += wp & 1;
      step.scratchBytes = uint64_t((hp + 1) * wp) * 4;
    }
    // The output may not overwrite the residual: rows are written whole.
    step.inPlaceCandidates.clear();
    step.print = printDepthwise("rf_conv2d_depthwise");
    e.steps.push_back(std::move(step));
    return Error::success();
  }

  if (winograd) {
    uint64_t offset = e.addFloats(winogradWeights(constW->data<float>(), g.m, g.c));
    std::string u = "(const float *)(const void *)(wb + " + std::to_string(offset) + ")";
    // The input is read block by block to the end: the output may not take
    // over its buffer through the residual (Add(conv(x), x)).
    if (residual == x)
      step.inPlaceCandidates.clear();
    int64_t th = (g.oh + 1) / 2, tw = (g.ow + 1) / 2, nb = kWinogradBlock;
    // RF_WINOGRAD_SCRATCH(c, m, th, tw, nb) floats (ckernels/winograd.h).
    int64_t plane = ((th * (tw + 1) + nb - 1) / nb * nb + tw + 2 + 15) / 16 * 16;
    step.scratchBytes = uint64_t(4 * g.c * plane + 16 * (g.c + g.m) * nb + 4 * (tw + 1)) * 4;
    step.comment += " (winograd)";
    e.use("winograd");
    step.print = [=](Emitter &e, raw_ostream &os) {
      os << "  rf_conv2d_winograd(" << e.ptr(x) << ", " << e.ptr(result, true) << ", " << u << ", "
         << (bias ? e.ptr(bias) : "NULL") << ", " << (residual ? e.ptr(residual) : "NULL") << ", &"
         << shape << ", " << nb << ", " << e.scratch() << ", " << actText << ");\n";
    };
    e.steps.push_back(std::move(step));
    return Error::success();
  }

  if (cvec) {
    // A block of input channels whose weights (taps x 64 floats each) fill
    // about 256 KiB, so that they stay in L2 while the pixel tiles sweep.
    int64_t taps = g.kh * g.kw, cb = std::max<int64_t>(1, 1024 / taps);
    uint64_t offset = e.addFloats(packRows(constW->data<float>(), g.groups, mg, k, kCvecPanel));
    std::string wp = "(const float *)(const void *)(wb + " + std::to_string(offset) + ")";
    // Read in place, the input must outlive the whole step.
    if (cvec->plane == 0 && residual == x)
      step.inPlaceCandidates.clear();
    uint64_t planeFloats = uint64_t(cg * g.sh * g.sw * cvec->plane);
    step.scratchBytes = (planeFloats + uint64_t(ohw * kCvecPanel)) * 4;
    std::string geometry =
        e.declare("direct", "rf_direct_geometry",
                  " = {" + std::to_string(cvec->wpad) + ", " + std::to_string(cvec->plane) + "}");
    step.comment += " (cvec)";
    step.print = [=](Emitter &e, raw_ostream &os) {
      os << "  rf_conv2d_cvec(" << e.ptr(x) << ", " << e.ptr(result, true) << ", " << wp << ", "
         << (bias ? e.ptr(bias) : "NULL") << ", " << (residual ? e.ptr(residual) : "NULL") << ", &"
         << shape << ", &" << geometry << ", " << cb << ", " << e.scratch() << ", " << actText
         << ");\n";
    };
    e.steps.push_back(std::move(step));
    return Error::success();
  }

  PackedConvWeights weights = packConvWeights(e, step, w, constW, g.groups, mg, k);
  if (direct) {
    // Read in place, the input must outlive the whole step: the output may
    // not take over its buffer through the residual (Add(conv(x), x)).
    if (direct->plane == 0 && residual == x)
      step.inPlaceCandidates.clear();
    uint64_t planeOffset = (weights.runtimeBytes + 63) / 64 * 64;
    uint64_t packedBytes = direct->subsample ? uint64_t(g.n * g.c * g.oh * g.ow + kNR) * 4 : 0;
    uint64_t subsampleOffset = planeOffset;
    planeOffset += (packedBytes + 63) / 64 * 64;
    step.scratchBytes = planeOffset + uint64_t(cg * g.sh * g.sw * direct->plane) * 4;
    std::string geometry =
        e.declare("direct", "rf_direct_geometry",
                  " = {" + std::to_string(direct->wpad) + ", " + std::to_string(direct->plane) + "}");
    step.comment += direct->subsample ? " (subsampled, direct)" : " (direct)";
    step.print = [=](Emitter &e, raw_ostream &os) {
      std::string wp = weights.print(e, os);
      std::string in = e.ptr(x);
      if (direct->subsample) {
        os << "  rf_subsample(" << in << ", " << g.n * g.c << ", " << g.h << ", " << g.w << ", "
           << g.sh << ", " << g.sw << ", " << g.oh << ", " << g.ow << ", "
           << e.scratch("float", subsampleOffset) << ");\n";
        in = "(const float *)" + e.scratch("float", subsampleOffset);
      }
      os << "  rf_conv2d_direct(" << in << ", " << e.ptr(result, true) << ", " << wp << ", "
         << (bias ? e.ptr(bias) : "NULL") << ", " << (residual ? e.ptr(residual) : "NULL") << ", &"
         << shape << ", &" << geometry << ", " << e.scratch("float", planeOffset) << ", " << actText
         << ");\n";
    };
    e.steps.push_back(std::move(step));
    return Error::success();
  }

  // Output pixels per packed im2col tile: a multiple of the micro-kernel's
  // width, the whole image when it fits the budget.
  int64_t ohwPadded = (ohw + kNR - 1) / kNR * kNR;
  int64_t tile = std::min(ohwPadded, std::max<int64_t>(kNR, kIm2colBudget / (4 * k) / kNR * kNR));
  uint64_t colBytes = uint64_t(k * tile) * 4;
  uint64_t colOffset = (weights.runtimeBytes + 63) / 64 * 64;
  step.scratchBytes = colOffset + colBytes;
  step.print = [=](Emitter &e, raw_ostream &os) {
    std::string wp = weights.print(e, os);
    std::string col = "NULL";
    if (colBytes)
      col = e.scratch("float", colOffset);
    os << "  rf_conv2d_gemm(" << e.ptr(x) << ", " << e.ptr(result, true) << ", " << wp << ", "
       << (bias ? e.ptr(bias) : "NULL") << ", " << (residual ? e.ptr(residual) : "NULL") << ", &"
       << shape << ", " << col << ", " << tile << ", " << actText << ");\n";
  };
  e.steps.push_back(std::move(step));
  return Error::success();
}

static Error lowerConvTranspose(Emitter &e, Operation *op) {
  if (auto err = requireFloat(e, op))
    return err;
  Value x = op->getOperand(0), w = op->getOperand(1);
  Value bias = op->getNumOperands() > 2 && !ir::isNoneValue(op->getOperand(2)) ? op->getOperand(2)
                                                                                 : Value();
  auto in = e.shapeOf(op, x);
  auto wShape = e.shapeOf(op, w);
  auto out = e.shapeOf(op, op->getResult(0));
  if (!in || !wShape || !out)
    return in ? (wShape ? out.takeError() : wShape.takeError()) : in.takeError();
  auto constW = e.constant(w);
  NodeAttrs attrs{op};
  ConvGeometry g;
  std::vector<int64_t> kernel(wShape->begin() + 2, wShape->end());
  if (auto err = readWindow(e, op, *in, *out, kernel, g, /*transposed=*/true))
    return err;
  g.groups = attrs.i("group", 1);
  if (g.groups < 1 || g.c % g.groups || (*wShape)[0] != g.c || (*wShape)[1] * g.groups != g.m)
    return e.unsupported(op, "group does not divide the channels");
  // output_shape fixes the pads (ONNX: the larger half at the start unless
  // SAME_UPPER); then the size they imply must be the one the type says.
  size_t spatial = in->size() - 2;
  auto outputPadding = attrs.ints("output_padding").value_or(std::vector<int64_t>(spatial, 0));
  if (outputPadding.size() != spatial)
    return e.unsupported(op, "output_padding of the wrong length");
  int64_t padH = spatial == 2 ? outputPadding[0] : 0, padW = outputPadding.back();
  if (attrs.ints("output_shape")) {
    bool upper = attrs.s("auto_pad", "NOTSET") == "SAME_UPPER";
    auto split = [&](int64_t in, int64_t out, int64_t k, int64_t s, int64_t d, int64_t extra,
                     int64_t &begin, int64_t &end) {
      int64_t total = s * (in - 1) + extra + (k - 1) * d + 1 - out;
      // Floor division, as ONNX's reference: a negative total (an output
      // larger than the natural one) grows the end.
      int64_t half = total >= 0 ? total / 2 : -((-total + 1) / 2);
      begin = upper ? half : total - half;
      end = total - begin;
    };
    split(g.w, g.ow, g.kw, g.sw, g.dw, padW, g.pl, g.pr);
    if (spatial == 2)
      split(g.h, g.oh, g.kh, g.sh, g.dh, padH, g.pt, g.pb);
  }
  int64_t wantW = g.sw * (g.w - 1) + (g.kw - 1) * g.dw + 1 - g.pl - g.pr + padW;
  int64_t wantH = g.sh * (g.h - 1) + (g.kh - 1) * g.dh + 1 - g.pt - g.pb + padH;
  if (wantW != g.ow || wantH != g.oh)
    return e.unsupported(op, "pads that do not give the output's size");
  int64_t cg = g.c / g.groups, mg = g.m / g.groups, rows = mg * g.kh * g.kw;
  int64_t rpad = (rows + kMR - 1) / kMR * kMR;
  Step step;
  step.op = op;
  step.comment = describeOp(op);
  step.reads = {x};
  if (bias)
    step.reads.push_back(bias);
  step.writes = {op->getResult(0)};
  uint64_t colBytes = uint64_t(rows * g.h * g.w) * 4;
  std::string packedW;
  if (constW) {
    // A[(o, ky, kx)][c] = W[g * cg + c][o][ky][kx], per group, packed in rows.
    std::vector<float> transposedW(g.groups * rows * cg);
    const float *wd = constW->data<float>();
    for (int64_t gi = 0; gi < g.groups; ++gi)
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cg; ++c)
          transposedW[(gi * rows + r) * cg + c] = wd[(gi * cg + c) * rows + r];
    packedW = "(const float *)(const void *)(wb + " +
              std::to_string(e.addFloats(packRows(transposedW.data(), g.groups, rows, cg))) + ")";
    step.scratchBytes = colBytes;
  } else {
    step.reads.push_back(w);
    step.scratchBytes = (colBytes + 63) / 64 * 64 + uint64_t(g.groups * rpad * cg) * 4;
  }
  std::string shape = convShape(e, g);
  e.use("conv");
  Value result = op->getResult(0);
  uint64_t packOffset = (colBytes + 63) / 64 * 64;
  step.print = [=](Emitter &e, raw_ostream &os) {
    std::string wp = packedW;
    if (wp.empty()) {
      // Weights computed at run time are packed at run time: row (o, ky, kx)
      // of group g, column c, is W[g * cg + c][o][ky][kx].
      wp = e.scratch("float", packOffset);
      os << "  { int g; for (g = 0; g < " << g.groups << "; ++g) rf_pack_a(" << rows << ", " << cg
         << ", " << e.ptr(w) << " + (ptrdiff_t)g * " << cg * rows << ", 1, " << rows << ", " << wp
         << " + (ptrdiff_t)g * " << rpad * cg << "); }\n";
    }
    os << "  rf_conv_transpose2d(" << e.ptr(x) << ", " << e.ptr(result, true) << ", " << wp << ", "
       << (bias ? e.ptr(bias) : "NULL") << ", &" << shape << ", " << e.scratch() << ");\n";
  };
  e.steps.push_back(std::move(step));
  return Error::success();
}

//===----------------------------------------------------------------------===//
// Gemm and MatMul
//===----------------------------------------------------------------------===//

/// An epilogue: bias per row / column (constant), residual, activation.
struct Epilogue {
  std::string rowBias = "NULL", colBias = "NULL";
  Value residual;
  float alpha = 1, beta = 0; // beta: the output's prior contents (a prefilled C)
  Activation act;
};

static std::string epilogueInit(Emitter &e, const Epilogue &ep, int64_t ldr) {
  return "{" + ep.rowBias + ", " + ep.colBias + ", " + (ep.residual ? e.ptr(ep.residual) : "NULL") +
         ", " + std::to_string(ldr) + ", " + Emitter::floatLiteral(ep.alpha) + ", " +
         Emitter::floatLiteral(ep.beta) + ", " + actArgs(ep.act) + "}";
}

/// A bias of [N] (or broadcast to it) added after a product with N columns.
static std::optional<std::vector<float>> columnBias(const Tensor &t, int64_t n, float scale) {
  if (t.dtype() != DType::F32)
    return std::nullopt;
  std::vector<float> values(n);
  if (t.size() == 1) {
    std::fill(values.begin(), values.end(), t.data<float>()[0] * scale);
    return values;
  }
  if (t.size() != n || t.dim(-1) != n)
    return std::nullopt;
  for (int64_t j = 0; j < n; ++j)
    values[j] = t.data<float>()[j] * scale;
  return values;
}

static Error lowerGemm(Emitter &e, Operation *op) {
  if (auto err = requireFloat(e, op))
    return err;
  NodeAttrs attrs{op};
  Value a = op->getOperand(0), b = op->getOperand(1);
  Value c = op->getNumOperands() > 2 && !ir::isNoneValue(op->getOperand(2)) ? op->getOperand(2)
                                                                              : Value();
  auto aShape = e.shapeOf(op, a);
  auto bShape = e.shapeOf(op, b);
  if (!aShape || !bShape)
    return aShape ? bShape.takeError() : aShape.takeError();
  bool transA = attrs.i("transA", 0), transB = attrs.i("transB", 0);
  float alpha = attrs.f("alpha", 1.0f), beta = attrs.f("beta", 1.0f);
  int64_t m = transA ? (*aShape)[1] : (*aShape)[0], k = transA ? (*aShape)[0] : (*aShape)[1];
  int64_t n = transB ? (*bShape)[0] : (*bShape)[1];
  auto constB = e.constant(b);
  Step step;
  step.op = op;
  step.comment = describeOp(op);
  Epilogue ep;
  // C: a bias per column or per row when it is a constant of that form;
  // anything else is broadcast into the output first and added times beta.
  Value prefill;
  std::vector<int64_t> prefillShape, prefillStrides;
  if (c) {
    auto constC = e.constant(c);
    std::optional<std::vector<float>> bias = constC ? columnBias(*constC, n, beta) : std::nullopt;
    if (bias) {
      ep.colBias = "(const float *)(const void *)(wb + " + std::to_string(e.addFloats(*bias)) + ")";
    } else if (constC && constC->rank() == 2 && constC->dim(0) == m && constC->dim(1) == 1) {
      std::vector<float> rows(m);
      for (int64_t i = 0; i < m; ++i)
        rows[i] = constC->data<float>()[i] * beta;
      ep.rowBias = "(const float *)(const void *)(wb + " + std::to_string(e.addFloats(rows)) + ")";
    } else {
      auto cShape = e.shapeOf(op, c);
      if (!cShape)
        return cShape.takeError();
      if (cShape->size() > 2)
        return e.unsupported(op, "C of rank above 2");
      std::vector<int64_t> padded(2 - cShape->size(), 1);
      padded.insert(padded.end(), cShape->begin(), cShape->end());
      if ((padded[0] != 1 && padded[0] != m) || (padded[1] != 1 && padded[1] != n))
        return e.unsupported(op, "C that does not broadcast to the output");
      prefill = c;
      prefillShape = {m, n};
      prefillStrides = {padded[0] == 1 ? 0 : padded[1], padded[1] == 1 ? 0 : 1};
      ep.beta = beta;
    }
  }
  if (!constB)
    ep.alpha = alpha;
  Value result = op->getResult(0);
  result = absorbActivation(e, result, ep.act, step.comment);
  step.reads = {a};
  if (prefill)
    step.reads.push_back(prefill);
  step.writes = {result};
  e.use("gemm");
  e.use("data");
  std::string prefillShapeName = prefill ? e.intArray(prefillShape) : "";
  std::string prefillStrideName = prefill ? e.intArray(prefillStrides) : "";
  // A transposed is copied into scratch first.
  uint64_t aBytes = transA ? uint64_t(m * k) * 4 : 0;
  uint64_t bBytes = (!constB && transB) ? uint64_t(k * n) * 4 : 0;
  step.scratchBytes = (aBytes + 63) / 64 * 64 + bBytes;
  std::string packedB;
  if (constB) {
    const float *bd = constB->data<float>();
    auto packed = transB ? packColumns(bd, k, n, 1, k, alpha) : packColumns(bd, k, n, n, 1, alpha);
    packedB = "(const float *)(const void *)(wb + " + std::to_string(e.addFloats(packed)) + ")";
  } else {
    step.reads.push_back(b);
  }
  std::string aStrides = transA ? e.intArray({1, m}) : "";
  std::string aShapeT = transA ? e.intArray({m, k}) : "";
  std::string bStrides = bBytes ? e.intArray({1, k}) : "";
  std::string bShapeT = bBytes ? e.intArray({k, n}) : "";
  uint64_t bOffset = (aBytes + 63) / 64 * 64;
  step.print = [=](Emitter &e, raw_ostream &os) {
    std::string aPtr = e.ptr(a);
    if (prefill)
      os << "  rf_strided_copy(" << e.ptr(result, true) << ", " << e.ptr(prefill) << ", 4, 2, "
         << prefillShapeName << ", " << prefillStrideName << ");\n";
    if (transA) {
      os << "  rf_strided_copy(" << e.scratch() << ", " << aPtr << ", 4, 2, " << aShapeT << ", "
         << aStrides << ");\n";
      aPtr = e.scratch();
    }
    std::string epText = epilogueInit(e, ep, n);
    if (!packedB.empty()) {
      os << "  { const rf_epilogue ep = " << epText << "; rf_gemm_packed_b(" << m << ", " << n << ", "
         << k << ", " << aPtr << ", " << k << ", " << packedB << ", " << e.ptr(result, true) << ", "
         << n << ", &ep); }\n";
    } else {
      std::string bPtr = e.ptr(b);
      if (bBytes) {
        std::string dst = e.scratch("float", bOffset);
        os << "  rf_strided_copy(" << dst << ", " << bPtr << ", 4, 2, " << bShapeT << ", "
           << bStrides << ");\n";
        bPtr = dst;
      }
      os << "  { const rf_epilogue ep = " << epText << "; rf_gemm_plain(" << m << ", " << n << ", "
         << k << ", " << aPtr << ", " << k << ", " << bPtr << ", " << n << ", "
         << e.ptr(result, true) << ", " << n << ", &ep); }\n";
    }
  };
  e.steps.push_back(std::move(step));
  return Error::success();
}

static Error lowerMatMul(Emitter &e, Operation *op) {
  if (auto err = requireFloat(e, op))
    return err;
  Value a = op->getOperand(0), b = op->getOperand(1);
  auto aShape = e.shapeOf(op, a);
  auto bShape = e.shapeOf(op, b);
  auto outShape = e.shapeOf(op, op->getResult(0));
  if (!aShape || !bShape || !outShape)
    return aShape ? (bShape ? outShape.takeError() : bShape.takeError()) : aShape.takeError();
  std::vector<int64_t> as = *aShape, bs = *bShape;
  if (as.size() == 1)
    as.insert(as.begin(), 1);
  if (bs.size() == 1)
    bs.push_back(1);
  int64_t m = as[as.size() - 2], k = as.back(), n = bs.back();
  if (bs[bs.size() - 2] != k)
    return e.unsupported(op, "inner dimensions differ");
  Step step;
  step.op = op;
  step.comment = describeOp(op);
  Epilogue ep;
  Value result = op->getResult(0);
  // A bias row added right after (a Linear layer exported as MatMul + Add).
  if (Operation *user = e.singleUser(result);
      user && opTypeOf(user) == "Add" && user->getResult(0).getType() == result.getType()) {
    Value other = user->getOperand(0) == result ? user->getOperand(1) : user->getOperand(0);
    if (auto t = e.constant(other); t && other != result) {
      bool rowVector = t->dtype() == DType::F32 && t->size() == n && t->dim(-1) == n;
      if (rowVector) {
        ep.colBias = "(const float *)(const void *)(wb + " +
                     std::to_string(e.addFloats(*columnBias(*t, n, 1.0f))) + ")";
        e.markAbsorbed(user);
        step.comment += " + Add";
        result = user->getResult(0);
      }
    }
  }
  bool bIsMatrix = llvm::all_of(ArrayRef<int64_t>(bs).drop_back(2), [](int64_t d) { return d == 1; });
  auto constB = e.constant(b);
  e.use("gemm");
  if (constB && bIsMatrix) {
    result = absorbResidual(e, op, result, ep.residual, step.comment);
    result = absorbActivation(e, result, ep.act, step.comment);
    int64_t rows = product(as) / k;
    auto packed = packColumns(constB->data<float>(), k, n, n, 1, 1.0f);
    std::string packedB = "(const float *)(const void *)(wb + " + std::to_string(e.addFloats(packed)) + ")";
    step.reads = {a};
    if (ep.residual) {
      step.reads.push_back(ep.residual);
      step.inPlaceCandidates.push_back(ep.residual);
    }
    step.writes = {result};
    // The activations are packed too (in panels of 6 rows, in scratch), so
    // the micro-kernel streams both operands.
    step.scratchBytes = uint64_t((rows + kMR - 1) / kMR * kMR * k) * 4;
    step.print = [=](Emitter &e, raw_ostream &os) {
      os << "  rf_pack_a(" << rows << ", " << k << ", " << e.ptr(a) << ", " << k << ", 1, "
         << e.scratch() << ");\n";
      os << "  { const rf_epilogue ep = " << epilogueInit(e, ep, n) << "; rf_gemm_packed_ab(" << rows
         << ", " << n << ", " << k << ", " << e.scratch() << ", " << packedB << ", "
         << e.ptr(result, true) << ", " << n << ", &ep); }\n";
    };
    e.steps.push_back(std::move(step));
    return Error::success();
  }
  // Batched product of run-time operands, batch dims broadcast.
  result = absorbActivation(e, result, ep.act, step.comment);
  size_t batchRank = std::max(as.size(), bs.size()) - 2;
  std::vector<int64_t> batch(batchRank, 1), aBatch(batchRank, 1), bBatch(batchRank, 1);
  for (size_t i = 0; i < as.size() - 2; ++i)
    aBatch[batchRank - (as.size() - 2) + i] = as[i];
  for (size_t i = 0; i < bs.size() - 2; ++i)
    bBatch[batchRank - (bs.size() - 2) + i] = bs[i];
  for (size_t i = 0; i < batchRank; ++i) {
    if (aBatch[i] != bBatch[i] && aBatch[i] != 1 && bBatch[i] != 1)
      return e.unsupported(op, "batch dimensions that do not broadcast");
    batch[i] = std::max(aBatch[i], bBatch[i]);
  }
  std::vector<int64_t> aOffsets, bOffsets;
  int64_t count = product(batch);
  for (int64_t flat = 0; flat < count; ++flat) {
    int64_t rest = flat, ao = 0, bo = 0, aStride = 1, bStride = 1;
    for (size_t i = batchRank; i-- > 0;) {
      int64_t idx = rest % batch[i];
      rest /= batch[i];
      ao += (aBatch[i] == 1 ? 0 : idx) * aStride;
      bo += (bBatch[i] == 1 ? 0 : idx) * bStride;
      aStride *= aBatch[i];
      bStride *= bBatch[i];
    }
    aOffsets.push_back(ao * m * k);
    bOffsets.push_back(bo * k * n);
  }
  std::string aTable = e.intArray(aOffsets), bTable = e.intArray(bOffsets);
  step.reads = {a, b};
  step.writes = {result};
  // Each product packs both operands into scratch first (as rf_gemm_packed_ab
  // reads them): the micro-kernel then streams contiguous panels.
  uint64_t aPacked = uint64_t((m + kMR - 1) / kMR * kMR * k) * 4;
  uint64_t bPackedOffset = (aPacked + 63) / 64 * 64;
  step.scratchBytes = bPackedOffset + uint64_t((n + kNR - 1) / kNR * kNR * k) * 4;
  step.print = [=](Emitter &e, raw_ostream &os) {
    std::string pa = e.scratch(), pb = e.scratch("float", bPackedOffset);
    os << "  { const rf_epilogue ep = " << epilogueInit(e, ep, n) << "; int i;\n"
       << "    for (i = 0; i < " << count << "; ++i) {\n"
       << "      rf_pack_a(" << m << ", " << k << ", " << e.ptr(a) << " + " << aTable << "[i], " << k
       << ", 1, " << pa << ");\n"
       << "      rf_pack_b(" << k << ", " << n << ", " << e.ptr(b) << " + " << bTable << "[i], " << n
       << ", " << pb << ");\n"
       << "      rf_gemm_packed_ab(" << m << ", " << n << ", " << k << ", " << pa << ", " << pb << ", "
       << e.ptr(result, true) << " + (ptrdiff_t)i * " << m * n << ", " << n << ", &ep);\n    }\n  }\n";
  };
  e.steps.push_back(std::move(step));
  return Error::success();
}

//===----------------------------------------------------------------------===//
// Pools
//===----------------------------------------------------------------------===//

static Error lowerPool(Emitter &e, Operation *op, bool isMax) {
  if (auto err = requireFloat(e, op))
    return err;
  if (op->getNumResults() > 1 && !op->getResult(1).use_empty())
    return e.unsupported(op, "the Indices output");
  Value x = op->getOperand(0);
  auto in = e.shapeOf(op, x);
  auto out = e.shapeOf(op, op->getResult(0));
  if (!in || !out)
    return in ? out.takeError() : in.takeError();
  NodeAttrs attrs{op};
  auto kernel = attrs.ints("kernel_shape");
  if (!kernel)
    return e.unsupported(op, "no kernel_shape");
  ConvGeometry g;
  if (auto err = readWindow(e, op, *in, *out, *kernel, g))
    return err;
  if (!isMax && (g.dh != 1 || g.dw != 1))
    return e.unsupported(op, "dilations");
  std::string init = " = {";
  for (auto [i, v] : llvm::enumerate(std::vector<int64_t>{g.h, g.w, g.oh, g.ow, g.kh, g.kw, g.sh,
                                                          g.sw, g.pt, g.pl, g.pb, g.pr, g.dh, g.dw}))
    init += (i ? ", " : "") + std::to_string(v);
  std::string shape = e.declare("pool", "rf_pool_shape", init + "}");
  bool countPad = attrs.i("count_include_pad", 0) != 0;
  Step step;
  step.op = op;
  step.comment = describeOp(op);
  step.reads = {x};
  step.writes = {op->getResult(0)};
  e.use("pool");
  int64_t nc = g.n * g.c;
  Value result = op->getResult(0);
  if (isMax) {
    // rf_maxpool_row (ckernels/pool.h): the padded row of column maxima
    // and a row of output rounded up to whole vectors.
    int64_t ow16 = (g.ow + 15) / 16 * 16, span = (ow16 - 1) * g.sw + (g.kw - 1) * g.dw + 1;
    step.scratchBytes = uint64_t(std::max(span, g.pl + g.w) + ow16) * 4;
  }
  step.print = [=](Emitter &e, raw_ostream &os) {
    if (isMax)
      os << "  rf_maxpool2d(" << e.ptr(x) << ", " << e.ptr(result, true) << ", " << nc << ", &"
         << shape << ", " << e.scratch() << ");\n";
    else
      os << "  rf_avgpool2d(" << e.ptr(x) << ", " << e.ptr(result, true) << ", " << nc << ", &"
         << shape << ", " << countPad << ");\n";
  };
  e.steps.push_back(std::move(step));
  return Error::success();
}

static Error lowerGlobalPool(Emitter &e, Operation *op, bool isMax) {
  if (auto err = requireFloat(e, op))
    return err;
  Value x = op->getOperand(0);
  auto in = e.shapeOf(op, x);
  if (!in)
    return in.takeError();
  if (in->size() < 3)
    return e.unsupported(op, "inputs of rank below 3");
  int64_t nc = (*in)[0] * (*in)[1], hw = product(*in) / nc;
  Step step;
  step.op = op;
  step.comment = describeOp(op);
  step.reads = {x};
  step.writes = {op->getResult(0)};
  e.use("pool");
  Value result = op->getResult(0);
  step.print = [=](Emitter &e, raw_ostream &os) {
    os << "  " << (isMax ? "rf_global_maxpool(" : "rf_global_avgpool(") << e.ptr(x) << ", "
       << e.ptr(result, true) << ", " << nc << ", " << hw << ");\n";
  };
  e.steps.push_back(std::move(step));
  return Error::success();
}

Error lowerNN(Emitter &e, Operation *op, bool &handled) {
  StringRef type = opTypeOf(op);
  handled = true;
  if (type == "Conv")
    return lowerConv(e, op);
  if (type == "ConvTranspose")
    return lowerConvTranspose(e, op);
  if (type == "Gemm")
    return lowerGemm(e, op);
  if (type == "MatMul")
    return lowerMatMul(e, op);
  if (type == "MaxPool" || type == "AveragePool")
    return lowerPool(e, op, type == "MaxPool");
  if (type == "GlobalAveragePool" || type == "GlobalMaxPool")
    return lowerGlobalPool(e, op, type == "GlobalMaxPool");
  handled = false;
  return Error::success();
}

} // namespace refold::cemit
