//===- LowerQuantized.cpp - quantized models as integer kernels --------------===//
//
// A QDQ model computes each layer as DequantizeLinear -> Conv/Gemm/MatMul
// (-> Relu/Clip) -> QuantizeLinear. Before lowering, the emitter finds these
// groups; each becomes one integer kernel (ckernels/int8.h) reading the
// int8 tensor and writing the quantized one, and a DequantizeLinear whose
// every reader is such a kernel disappears. An Add of two dequantized
// tensors that is quantized again becomes an int8 add. What does not fit
// runs in float between a dequantize and a quantize; the reason is kept for
// --explain. QLinearConv, QLinearMatMul, ConvInteger and MatMulInteger go
// to the same kernels when their weights and parameters are constants, and
// to reference kernels reading them at run time otherwise.
//
//===----------------------------------------------------------------------===//

#include "Lowering.h"

#include "refold/Dialect/ONNX/ONNXOps.h"
#include "refold/Interpreter/Interpreter.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringSet.h"

#include <cmath>

using namespace mlir;
using llvm::Error;

namespace refold::cemit {

namespace {

bool isType(Operation *op, StringRef type) { return op && opTypeOf(op) == type; }

/// ckernels/int8.h's RF_QT_* code of an integer type.
std::optional<int> qtypeCode(std::optional<DType> t) {
  if (t == DType::U8) return 0;
  if (t == DType::I8) return 1;
  if (t == DType::I32) return 2;
  return std::nullopt;
}

/// One scale and zero point for a whole tensor.
struct TensorQuant {
  float scale = 1;
  int32_t zp = 0;
  DType type = DType::U8;
};

/// The constant per-tensor parameters of a QuantizeLinear/DequantizeLinear.
std::optional<TensorQuant> perTensor(Emitter &e, Operation *op, std::string &why) {
  NodeAttrs attrs{op};
  if (attrs.get("block_size") || attrs.get("output_dtype")) {
    why = "blocked or typed quantization";
    return std::nullopt;
  }
  auto scale = e.constant(op->getOperand(1));
  if (!scale || scale->dtype() != DType::F32 || scale->size() != 1) {
    why = "its scale is not one float32 constant";
    return std::nullopt;
  }
  TensorQuant q;
  q.scale = scale->data<float>()[0];
  Value zpValue = op->getNumOperands() > 2 ? op->getOperand(2) : Value();
  bool quantize = isType(op, "QuantizeLinear");
  std::optional<DType> type = elementDType(quantize ? op->getResult(0) : op->getOperand(0));
  if (type != DType::U8 && type != DType::I8) {
    why = "its integer type is not uint8 or int8";
    return std::nullopt;
  }
  q.type = *type;
  if (zpValue && !ir::isNoneValue(zpValue)) {
    auto zp = e.constant(zpValue);
    if (!zp || zp->size() != 1) {
      why = "its zero point is not one constant";
      return std::nullopt;
    }
    q.zp = int32_t(zp->asDouble(0));
  }
  if (!(q.scale > 0) || !std::isfinite(q.scale)) {
    why = "its scale is not positive and finite";
    return std::nullopt;
  }
  return q;
}

/// The int8 weights of a constant DequantizeLinear, centred on their zero
/// point, with one scale per output channel (`channelAxis` of the weight).
struct WeightQuant {
  std::vector<int32_t> values; // centred, in the weight's layout
  std::vector<double> scales;  // one per channel of channelAxis
  std::vector<int64_t> shape;
};

std::optional<WeightQuant> constantWeights(Emitter &e, Value w, int64_t channelAxis,
                                           std::string &why) {
  Operation *dq = w.getDefiningOp();
  if (!isType(dq, "DequantizeLinear")) {
    why = "its weight is not a DequantizeLinear";
    return std::nullopt;
  }
  auto q = e.constant(dq->getOperand(0));
  auto scale = e.constant(dq->getOperand(1));
  Value zpValue = dq->getNumOperands() > 2 ? dq->getOperand(2) : Value();
  std::optional<Tensor> zp;
  if (zpValue && !ir::isNoneValue(zpValue))
    zp = e.constant(zpValue);
  if (!q || !scale || (zpValue && !ir::isNoneValue(zpValue) && !zp)) {
    why = "its weight, scale or zero point is computed at run time";
    return std::nullopt;
  }
  NodeAttrs attrs{dq};
  if (attrs.get("block_size")) {
    why = "blocked weight quantization";
    return std::nullopt;
  }
  if (q->dtype() != DType::I8 && q->dtype() != DType::U8) {
    why = "its weight is not uint8 or int8";
    return std::nullopt;
  }
  WeightQuant out;
  out.shape = std::vector<int64_t>(q->shape().begin(), q->shape().end());
  int64_t rank = out.shape.size();
  if (channelAxis < 0)
    channelAxis += rank;
  int64_t channels = out.shape[channelAxis], inner = 1;
  for (int64_t d = channelAxis + 1; d < rank; ++d)
    inner *= out.shape[d];
  int64_t axis = attrs.i("axis", 1);
  if (axis < 0)
    axis += rank;
  bool perChannel = scale->size() > 1;
  if (perChannel && (axis != channelAxis || scale->size() != channels)) {
    why = "its weight scales are not per output channel";
    return std::nullopt;
  }
  if (zp && zp->size() > 1 && zp->size() != scale->size()) {
    why = "its weight zero points do not match its scales";
    return std::nullopt;
  }
  for (int64_t c = 0; c < channels; ++c)
    out.scales.push_back(scale->asDouble(perChannel ? c : 0));
  out.values.resize(q->size());
  for (int64_t i = 0; i < q->size(); ++i) {
    int64_t c = (i / inner) % channels;
    int32_t z = zp ? int32_t(zp->asDouble(zp->size() > 1 ? c : 0)) : 0;
    out.values[i] = int32_t(q->asDouble(i)) - z;
  }
  return out;
}

/// An integer conv or matrix product, however the model wrote it.
struct IntegerProduct {
  Operation *op = nullptr;
  std::string comment;
  bool matmul = false;
  ConvGeometry g;              // conv
  int64_t M = 0, K = 0, N = 0; // matmul: [M x K] x [K x N]
  Value x, y;                  // integer input and output
  TensorQuant xq;
  /// Centred weights as [channel][k]: conv [m][cg * kh * kw], matmul [N][K].
  std::vector<int32_t> w;
  std::vector<double> wScales; // per output channel
  std::vector<int32_t> bias;   // int32 in units of x_scale * w_scale, or empty
  bool requantize = true;      // false: int32 accumulators out
  bool floatOut = false;       // float out: the accumulators times x_scale x w_scale
  TensorQuant yq;
  int32_t lo = 0, hi = 255;    // output range, after the zero point
};

/// Packs and prints one integer product (ckernels/int8.h).
Error emitProduct(Emitter &e, IntegerProduct p, bool fixed) {
  int64_t channels = p.matmul ? p.N : p.g.m;
  int64_t k = p.matmul ? p.K : p.g.c / p.g.groups * p.g.kh * p.g.kw;
  bool depthwise = !p.matmul && p.g.groups == p.g.c && p.g.c > 1;
  int xType = *qtypeCode(p.xq.type);
  int yType = p.floatOut ? 3 : p.requantize ? *qtypeCode(p.yq.type) : 2;
  for (int32_t v : p.w)
    if (!depthwise && (v < -128 || v > 127))
      return e.unsupported(p.op, "weights that do not fit int8 after their zero point");

  // Folding the activation's zero point (and the +128 that reads int8 as
  // unsigned) into the bias: sum (x - zx) w = sum x_u w - zx_u sum w.
  int32_t zpu = p.xq.zp + (p.xq.type == DType::I8 ? 128 : 0);
  std::vector<int32_t> bias(channels, 0), wsum(channels, 0);
  for (int64_t c = 0; c < channels; ++c) {
    int64_t sum = 0;
    for (int64_t i = 0; i < k; ++i)
      sum += p.w[c * k + i];
    wsum[c] = int32_t(sum);
    int64_t b = p.bias.empty() ? 0 : p.bias[c];
    if (!depthwise)
      b -= int64_t(zpu) * sum;
    if (b < INT32_MIN || b > INT32_MAX)
      return e.unsupported(p.op, "a bias that overflows int32 once the zero point is folded in");
    bias[c] = int32_t(b);
  }
  std::vector<float> scales;
  std::vector<int32_t> mults, shifts;
  for (int64_t c = 0; c < channels && p.floatOut; ++c)
    scales.push_back(float(double(p.xq.scale) * p.wScales[c]));
  for (int64_t c = 0; c < channels && p.requantize && !p.floatOut; ++c) {
    double m = double(p.xq.scale) * p.wScales[c] / double(p.yq.scale);
    scales.push_back(float(m));
    auto fixedPoint = interp::fixedPointMultiplier(m);
    if (!fixedPoint)
      return e.unsupported(p.op, "a requantization multiplier of 2^30 or more");
    mults.push_back(fixedPoint->first);
    shifts.push_back(fixedPoint->second);
  }

  Step step;
  step.op = p.op;
  step.comment = p.comment;
  step.reads = {p.x};
  step.writes = {p.y};
  e.use("int8");
  uint64_t biasOffset = e.addWeight(bias.data(), bias.size() * 4);
  uint64_t wsumOffset = e.addWeight(wsum.data(), wsum.size() * 4);
  bool useFixed = fixed && p.requantize && !p.floatOut;
  bool useScale = p.floatOut || (p.requantize && !fixed);
  uint64_t scaleOffset = useScale ? e.addFloats(scales) : 0;
  uint64_t multOffset = useFixed ? e.addWeight(mults.data(), mults.size() * 4) : 0;
  uint64_t shiftOffset = useFixed ? e.addWeight(shifts.data(), shifts.size() * 4) : 0;
  auto weightPtr = [](StringRef type, uint64_t offset) {
    return "(const " + type.str() + " *)(const void *)(wb + " + std::to_string(offset) + ")";
  };
  std::string rq = "{" + weightPtr("int32_t", biasOffset) + ", " +
                   (depthwise ? std::string("NULL") : weightPtr("int32_t", wsumOffset)) + ", " +
                   (useScale ? weightPtr("float", scaleOffset) : "NULL") + ", " +
                   (useFixed ? weightPtr("int32_t", multOffset) : "NULL") + ", " +
                   (useFixed ? weightPtr("int32_t", shiftOffset) : "NULL") + ", " +
                   std::to_string(p.requantize && !p.floatOut ? p.yq.zp : 0) + ", " +
                   std::to_string(p.lo) + ", " +
                   std::to_string(p.hi) + ", " + std::to_string(yType) + "}";
  std::string mode = p.floatOut      ? "float out"
                     : !p.requantize ? "int32 out"
                     : fixed         ? "fixed-point requant"
                                     : "float requant";

  if (depthwise) {
    // rf_qdepthwise sums in float: exact while every partial sum is an
    // integer below 2^24.
    int64_t widest = 0;
    for (int32_t v : p.w)
      widest = std::max<int64_t>(widest, std::abs(v));
    if (p.g.kh * p.g.kw * 255 * widest >= (int64_t(1) << 24))
      return e.unsupported(p.op, "a depthwise kernel too large to sum exactly");
    std::vector<int16_t> w16(p.w.begin(), p.w.end());
    uint64_t wOffset = e.addWeight(w16.data(), w16.size() * 2);
    std::string shape = convShape(e, p.g);
    // RF_QDW_HP/WP (ckernels/int8.h): the float plane and two more rows,
    // then oh x (wp sh / sw) int32 of sums and as many of outputs.
    int64_t hp = (p.g.oh - 1) * p.g.sh + (p.g.kh - 1) * p.g.dh + 1;
    int64_t wp = (p.g.ow - 1) * p.g.sw + (p.g.kw - 1) * p.g.dw + 1;
    wp = (wp + p.g.sw - 1) / p.g.sw * p.g.sw;
    int64_t wide = (std::max(p.g.oh * (wp * p.g.sh / p.g.sw), p.g.ow) + 15) / 16 * 16;
    step.scratchBytes = uint64_t(((hp + 2) * wp * 4 + 63) / 64 * 64 + 2 * wide * 4);
    step.comment += " (int8 depthwise, " + mode + ")";
    Value x = p.x, y = p.y;
    int32_t zx = p.xq.zp;
    step.print = [=](Emitter &e, raw_ostream &os) {
      os << "  {\n    const rf_requant rq = " << rq << ";\n    rf_qdepthwise(" << e.ptr(x) << ", "
         << xType << ", " << zx << ", " << e.ptr(y, true) << ", " << weightPtr("int16_t", wOffset)
         << ", &" << shape << ", &rq, " << e.scratch("unsigned char") << ");\n  }\n";
    };
    e.steps.push_back(std::move(step));
    return Error::success();
  }

  // Weights in panels of RF_QMR = 4 channels: [group][block][k / 4][4
  // channels][4 bytes]. A conv's k runs over the taps, and within a tap
  // over the group's input channels padded to a multiple of 4
  // (rf_qpack_conv): 4 channels at one position per int32.
  int64_t groups = p.matmul ? 1 : p.g.groups, mg = channels / groups;
  int64_t taps = p.matmul ? 1 : p.g.kh * p.g.kw, cg = k / taps, cgp = p.matmul ? k : (cg + 3) / 4 * 4;
  int64_t k4 = (taps * cgp + 3) / 4, blocks = (mg + 3) / 4;
  std::vector<int8_t> packed(uint64_t(groups * blocks * k4 * 16), 0);
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t b = 0; b < blocks; ++b)
      for (int64_t kk = 0; kk < k4; ++kk)
        for (int64_t r = 0; r < 4; ++r)
          for (int64_t j = 0; j < 4; ++j) {
            int64_t c = b * 4 + r, i = kk * 4 + j;
            // i = tap x cgp + ci; the weight's own order is ci x taps + tap.
            int64_t tap = i / cgp, ci = i % cgp;
            if (c < mg && tap < taps && ci < cg)
              packed[(((g * blocks + b) * k4 + kk) * 4 + r) * 4 + j] =
                  int8_t(p.w[(g * mg + c) * k + ci * taps + tap]);
          }
  uint64_t wOffset = e.addWeight(packed.data(), packed.size());
  // Tiles whose packed activations fill about 256 KiB: they stay in L2
  // while every channel block sweeps them (64 pixels: the widest tile).
  constexpr int64_t kTileBytes = 256 * 1024, kWidest = 64;
  Value x = p.x, y = p.y;
  if (p.matmul) {
    int64_t rows = std::max<int64_t>(kWidest, kTileBytes / (4 * k4) / kWidest * kWidest);
    rows = std::min(rows, (p.M + kWidest - 1) / kWidest * kWidest);
    step.scratchBytes = uint64_t(k4 * rows * 4);
    step.comment += " (int8 matmul, " + mode + ")";
    int64_t M = p.M, K = p.K, N = p.N;
    step.print = [=](Emitter &e, raw_ostream &os) {
      os << "  {\n    const rf_requant rq = " << rq << ";\n    rf_qmatmul(" << e.ptr(x) << ", "
         << xType << ", " << e.ptr(y, true) << ", " << weightPtr("int32_t", wOffset) << ", " << M
         << ", " << K << ", " << N << ", " << rows << ", &rq, " << e.scratch("unsigned char")
         << ");\n  }\n";
    };
    e.steps.push_back(std::move(step));
    return Error::success();
  }
  int64_t rows = std::clamp<int64_t>(kTileBytes / (4 * k4 * p.g.ow), 1, p.g.oh);
  int64_t tp = (rows * p.g.ow + kWidest - 1) / kWidest * kWidest;
  // rf_qconv2d's scratch: a padding row, then the packed tile.
  step.scratchBytes = uint64_t((p.g.ow * p.g.sw + 63) / 64 * 64 + k4 * tp * 4);
  std::string shape = convShape(e, p.g);
  step.comment += " (int8, " + mode + ")";
  step.print = [=](Emitter &e, raw_ostream &os) {
    os << "  {\n    const rf_requant rq = " << rq << ";\n    rf_qconv2d(" << e.ptr(x) << ", " << xType
       << ", " << e.ptr(y, true) << ", " << weightPtr("int32_t", wOffset) << ", &" << shape << ", "
       << rows << ", " << zpu << ", &rq, " << e.scratch("unsigned char") << ");\n  }\n";
  };
  e.steps.push_back(std::move(step));
  return Error::success();
}

/// The output range an absorbed Relu or Clip leaves (Q is monotone, so
/// clamping the quantized value is exact).
bool clampRange(Emitter &e, Operation *act, const TensorQuant &yq, int32_t &lo, int32_t &hi) {
  auto quantizeBound = [&](float v) {
    double q = std::nearbyint(double(v / yq.scale)) + yq.zp;
    return int32_t(std::clamp<double>(q, lo, hi));
  };
  if (isType(act, "Relu")) {
    lo = std::max(lo, yq.zp);
    return true;
  }
  if (!isType(act, "Clip"))
    return false;
  float mn = -INFINITY, mx = INFINITY;
  if (act->getNumOperands() > 1 || NodeAttrs{act}.get("min")) {
    for (unsigned i = 1; i < act->getNumOperands(); ++i) {
      if (ir::isNoneValue(act->getOperand(i)))
        continue;
      auto t = e.constant(act->getOperand(i));
      if (!t || t->dtype() != DType::F32 || t->size() != 1)
        return false;
      (i == 1 ? mn : mx) = t->data<float>()[0];
    }
    NodeAttrs attrs{act};
    if (attrs.get("min"))
      mn = attrs.f("min", mn);
    if (attrs.get("max"))
      mx = attrs.f("max", mx);
  }
  int32_t qlo = std::isfinite(mn) ? quantizeBound(mn) : lo;
  int32_t qhi = std::isfinite(mx) ? quantizeBound(mx) : hi;
  lo = std::max(lo, qlo);
  hi = std::min(hi, qhi);
  return lo <= hi;
}

void setRange(IntegerProduct &p) {
  p.lo = p.yq.type == DType::U8 ? 0 : -128;
  p.hi = p.yq.type == DType::U8 ? 255 : 127;
}

} // namespace

/// The groups found before lowering (see the file comment).
class IntegerGroups {
public:
  struct Group {
    std::function<Error(Emitter &)> lower;
  };
  llvm::DenseMap<Operation *, Group> byAnchor;
  std::vector<std::string> remarks;
};

namespace {

/// DequantizeLinear -> op -> (Relu/Clip) -> QuantizeLinear, the output's
/// QuantizeLinear and the op between, or a reason.
Operation *quantizedOutput(Emitter &e, Operation *op, Operation *&act, std::string &why) {
  Value r = op->getResult(0);
  Operation *user = e.singleUser(r);
  act = nullptr;
  if (isType(user, "Relu") || isType(user, "Clip")) {
    act = user;
    user = e.singleUser(user->getResult(0));
  }
  if (!isType(user, "QuantizeLinear")) {
    why = "its output is not quantized by its only reader";
    return nullptr;
  }
  return user;
}

std::optional<IntegerProduct> matchProduct(Emitter &e, Operation *op, std::string &why) {
  StringRef type = opTypeOf(op);
  Operation *xdq = op->getOperand(0).getDefiningOp();
  if (!isType(xdq, "DequantizeLinear")) {
    why = "its input is not a DequantizeLinear";
    return std::nullopt;
  }
  auto xq = perTensor(e, xdq, why);
  if (!xq) {
    why = "its input's DequantizeLinear: " + why;
    return std::nullopt;
  }
  Operation *act = nullptr;
  std::string outputWhy;
  Operation *q = quantizedOutput(e, op, act, outputWhy);
  std::optional<TensorQuant> yq;
  if (q && !(yq = perTensor(e, q, why))) {
    why = "its output's QuantizeLinear: " + why;
    return std::nullopt;
  }
  IntegerProduct p;
  p.op = op;
  p.x = xdq->getOperand(0);
  p.xq = *xq;
  if (q) {
    p.comment = describeOp(op) + " [DequantizeLinear -> " + type.str() +
                (act ? " -> " + opTypeOf(act).str() : std::string()) + " -> QuantizeLinear]";
    p.y = q->getResult(0);
    p.yq = *yq;
    setRange(p);
  } else {
    // Read in float (a classifier's logits): integer products, float out.
    act = nullptr;
    p.comment = describeOp(op) + " [DequantizeLinear -> " + type.str() + ", float out]";
    p.y = op->getResult(0);
    p.floatOut = true;
    if (elementDType(p.y) != DType::F32) {
      why = "its output is not float32";
      return std::nullopt;
    }
  }
  if (act && !clampRange(e, act, p.yq, p.lo, p.hi)) {
    why = "its " + opTypeOf(act).str() + " bounds are not constants";
    return std::nullopt;
  }
  Value bias;
  if (type == "Conv") {
    auto in = e.shapeOf(op, op->getOperand(0));
    auto out = e.shapeOf(op, op->getResult(0));
    auto wShape = e.shapeOf(op, op->getOperand(1));
    if (!in || !out || !wShape) {
      llvm::consumeError(in.takeError());
      llvm::consumeError(out.takeError());
      llvm::consumeError(wShape.takeError());
      why = "a shape is not static";
      return std::nullopt;
    }
    std::vector<int64_t> kernel(wShape->begin() + 2, wShape->end());
    if (auto err = readWindow(e, op, *in, *out, kernel, p.g)) {
      why = llvm::toString(std::move(err));
      return std::nullopt;
    }
    p.g.groups = NodeAttrs{op}.i("group", 1);
    if (p.g.groups < 1 || p.g.c % p.g.groups || p.g.m % p.g.groups ||
        (*wShape)[1] * p.g.groups != p.g.c) {
      why = "group does not divide the channels";
      return std::nullopt;
    }
    auto w = constantWeights(e, op->getOperand(1), 0, why);
    if (!w)
      return std::nullopt;
    p.w = std::move(w->values);
    p.wScales = std::move(w->scales);
    if (op->getNumOperands() > 2 && !ir::isNoneValue(op->getOperand(2)))
      bias = op->getOperand(2);
  } else {
    // Gemm (no transA, alpha = beta = 1) and MatMul on a 2-D weight.
    NodeAttrs attrs{op};
    bool transB = false;
    if (type == "Gemm") {
      if (attrs.i("transA", 0) || attrs.f("alpha", 1) != 1 || attrs.f("beta", 1) != 1) {
        why = "transA, alpha or beta";
        return std::nullopt;
      }
      transB = attrs.i("transB", 0) != 0;
      if (op->getNumOperands() > 2 && !ir::isNoneValue(op->getOperand(2)))
        bias = op->getOperand(2);
    }
    auto a = dyn_cast<RankedTensorType>(op->getOperand(0).getType());
    auto b = dyn_cast<RankedTensorType>(op->getOperand(1).getType());
    if (!a || !b || !a.hasStaticShape() || !b.hasStaticShape() || b.getRank() != 2 ||
        a.getRank() < 2 || (type == "Gemm" && a.getRank() != 2)) {
      why = "its weight is not 2-D or a shape is not static";
      return std::nullopt;
    }
    auto w = constantWeights(e, op->getOperand(1), transB ? 0 : 1, why);
    if (!w)
      return std::nullopt;
    p.matmul = true;
    p.K = a.getShape().back();
    p.M = a.getNumElements() / p.K;
    p.N = transB ? b.getShape()[0] : b.getShape()[1];
    p.wScales = std::move(w->scales);
    p.w.resize(p.N * p.K);
    for (int64_t n = 0; n < p.N; ++n)
      for (int64_t kk = 0; kk < p.K; ++kk)
        p.w[n * p.K + kk] = transB ? w->values[n * p.K + kk] : w->values[kk * p.N + n];
  }
  int64_t channels = p.matmul ? p.N : p.g.m;
  if (bias) {
    // The bias in units of x_scale x w_scale, as the QDQ rewrite writes it.
    Operation *bdq = bias.getDefiningOp();
    std::optional<Tensor> bq, bs, bz;
    if (isType(bdq, "DequantizeLinear")) {
      bq = e.constant(bdq->getOperand(0));
      bs = e.constant(bdq->getOperand(1));
      if (bdq->getNumOperands() > 2 && !ir::isNoneValue(bdq->getOperand(2)))
        bz = e.constant(bdq->getOperand(2));
    }
    if (!bq || !bs || bq->dtype() != DType::I32 || bq->size() != channels ||
        (bs->size() != 1 && bs->size() != channels)) {
      why = "its bias is not an int32 DequantizeLinear of constants, one per output channel";
      return std::nullopt;
    }
    for (int64_t c = 0; c < channels; ++c) {
      double want = double(p.xq.scale) * p.wScales[c];
      double have = bs->asDouble(bs->size() > 1 ? c : 0);
      if (std::abs(have - want) > 1e-6 * want) {
        why = "its bias scale is not input scale x weight scale";
        return std::nullopt;
      }
      p.bias.push_back(int32_t(bq->asDouble(c) - (bz ? bz->asDouble(bz->size() > 1 ? c : 0) : 0)));
    }
  }
  if (!p.matmul && p.g.groups == p.g.c && p.g.c > 1 && p.g.m % p.g.c == 0) {
    // depthwise: int16 weights
  } else {
    for (int32_t v : p.w)
      if (v < -128 || v > 127) {
        why = "its weights do not fit int8 after their zero point";
        return std::nullopt;
      }
  }
  if (q)
    e.markAbsorbed(q);
  if (act)
    e.markAbsorbed(act);
  return p;
}

/// DequantizeLinear -> MaxPool -> QuantizeLinear with one scale and zero
/// point: the max of the 8-bit values (exact), and DequantizeLinear ->
/// GlobalAveragePool -> QuantizeLinear: an integer sum requantized.
std::optional<std::function<Error(Emitter &)>> matchPool(Emitter &e, Operation *op,
                                                         std::string &why) {
  bool isMax = opTypeOf(op) == "MaxPool";
  Operation *dq = op->getOperand(0).getDefiningOp();
  if (!isType(dq, "DequantizeLinear")) {
    why = "its input is not a DequantizeLinear";
    return std::nullopt;
  }
  if (isMax && op->getNumResults() > 1 && !op->getResult(1).use_empty()) {
    why = "the Indices output";
    return std::nullopt;
  }
  auto xq = perTensor(e, dq, why);
  if (!xq)
    return std::nullopt;
  Operation *act = nullptr;
  // GlobalAveragePool -> Flatten -> QuantizeLinear (the quantizer puts the
  // pair after the reshape): the bytes are the same.
  Operation *reshape = nullptr;
  if (Operation *user = e.singleUser(op->getResult(0));
      !isMax && (isType(user, "Flatten") || isType(user, "Reshape") || isType(user, "Squeeze")))
    reshape = user;
  Operation *q = quantizedOutput(e, reshape ? reshape : op, act, why);
  if (!q)
    return std::nullopt;
  if (act) {
    why = "an activation between it and its QuantizeLinear";
    return std::nullopt;
  }
  auto yq = perTensor(e, q, why);
  if (!yq)
    return std::nullopt;
  Value x = dq->getOperand(0), y = q->getResult(0);
  auto in = e.shapeOf(op, op->getOperand(0));
  auto out = e.shapeOf(op, op->getResult(0));
  if (!in || !out) {
    llvm::consumeError(in.takeError());
    llvm::consumeError(out.takeError());
    why = "a shape is not static";
    return std::nullopt;
  }
  std::string comment = describeOp(op) + " [DequantizeLinear -> " + opTypeOf(op).str() +
                        " -> QuantizeLinear] (int8)";
  if (isMax) {
    if (xq->scale != yq->scale || xq->zp != yq->zp || xq->type != yq->type) {
      why = "its QuantizeLinear has another scale or zero point than its input";
      return std::nullopt;
    }
    auto kernel = NodeAttrs{op}.ints("kernel_shape");
    ConvGeometry g;
    if (!kernel || NodeAttrs{op}.i("ceil_mode", 0) ||
        readWindow(e, op, *in, *out, *kernel, g).operator bool()) {
      why = "its window (ceil_mode or an unsupported kernel)";
      return std::nullopt;
    }
    e.markAbsorbed(q);
    int64_t nc = g.n * g.c;
    uint8_t flip = xq->type == DType::I8 ? 0x80 : 0;
    return [=](Emitter &e) -> Error {
      std::string init = " = {";
      for (auto [i, v] : llvm::enumerate(std::vector<int64_t>{g.h, g.w, g.oh, g.ow, g.kh, g.kw,
                                                              g.sh, g.sw, g.pt, g.pl, g.pb, g.pr,
                                                              g.dh, g.dw}))
        init += (i ? ", " : "") + std::to_string(v);
      std::string shape = e.declare("pool", "rf_pool_shape", init + "}");
      Step step;
      step.op = op;
      step.comment = comment;
      step.reads = {x};
      step.writes = {y};
      int64_t wp = (g.ow - 1) * g.sw + (g.kw - 1) * g.dw + 1;
      step.scratchBytes = uint64_t((wp + 63) / 64 * 64 + g.ow);
      e.use("int8");
      step.print = [=](Emitter &e, raw_ostream &os) {
        os << "  rf_qmaxpool2d((const uint8_t *)(const void *)" << e.ptr(x)
           << ", (uint8_t *)(void *)" << e.ptr(y, true) << ", " << nc << ", &" << shape << ", "
           << int(flip) << ", " << e.scratch("unsigned char") << ");\n";
      };
      e.steps.push_back(std::move(step));
      return Error::success();
    };
  }
  if (in->size() < 3) {
    why = "inputs of rank below 3";
    return std::nullopt;
  }
  e.markAbsorbed(q);
  if (reshape)
    e.markAbsorbed(reshape);
  int64_t nc = (*in)[0] * (*in)[1], hw = 1;
  for (size_t d = 2; d < in->size(); ++d)
    hw *= (*in)[d];
  TensorQuant X = *xq, Y = *yq;
  float scale = float(double(X.scale) / (double(hw) * double(Y.scale)));
  return [=](Emitter &e) -> Error {
    Step step;
    step.op = op;
    step.comment = comment;
    step.reads = {x};
    step.writes = {y};
    e.use("int8");
    step.print = [=](Emitter &e, raw_ostream &os) {
      os << "  rf_qglobal_avgpool(" << e.ptr(x) << ", " << *qtypeCode(X.type) << ", " << X.zp << ", "
         << e.ptr(y, true) << ", " << *qtypeCode(Y.type) << ", " << Y.zp << ", "
         << Emitter::floatLiteral(scale) << ", " << nc << ", " << hw << ");\n";
    };
    e.steps.push_back(std::move(step));
    return Error::success();
  };
}

/// Add(DequantizeLinear(a), DequantizeLinear(b)) (-> Relu) -> QuantizeLinear
/// on tensors of one shape.
std::optional<std::function<Error(Emitter &)>> matchAdd(Emitter &e, Operation *op, std::string &why) {
  Operation *adq = op->getOperand(0).getDefiningOp(), *bdq = op->getOperand(1).getDefiningOp();
  if (!isType(adq, "DequantizeLinear") || !isType(bdq, "DequantizeLinear")) {
    why = "an input is not a DequantizeLinear";
    return std::nullopt;
  }
  if (op->getOperand(0).getType() != op->getResult(0).getType() ||
      op->getOperand(1).getType() != op->getResult(0).getType()) {
    why = "its inputs are broadcast";
    return std::nullopt;
  }
  auto aq = perTensor(e, adq, why), bq = aq ? perTensor(e, bdq, why) : std::nullopt;
  if (!aq || !bq)
    return std::nullopt;
  Operation *act = nullptr;
  Operation *q = quantizedOutput(e, op, act, why);
  if (!q)
    return std::nullopt;
  auto yq = perTensor(e, q, why);
  if (!yq)
    return std::nullopt;
  int32_t lo = yq->type == DType::U8 ? 0 : -128, hi = yq->type == DType::U8 ? 255 : 127;
  if (act && !clampRange(e, act, *yq, lo, hi)) {
    why = "its " + opTypeOf(act).str() + " bounds are not constants";
    return std::nullopt;
  }
  auto type = dyn_cast<RankedTensorType>(op->getResult(0).getType());
  if (!type || !type.hasStaticShape()) {
    why = "a shape is not static";
    return std::nullopt;
  }
  e.markAbsorbed(q);
  if (act)
    e.markAbsorbed(act);
  Value a = adq->getOperand(0), b = bdq->getOperand(0), y = q->getResult(0);
  int64_t n = type.getNumElements();
  std::string comment = describeOp(op) + " [DequantizeLinear x2 -> Add" +
                        (act ? " -> " + opTypeOf(act).str() : std::string()) +
                        " -> QuantizeLinear] (int8)";
  TensorQuant A = *aq, B = *bq, Y = *yq;
  return [=](Emitter &e) -> Error {
    Step step;
    step.op = op;
    step.comment = comment;
    step.reads = {a, b};
    step.writes = {y};
    if (A.type == Y.type)
      step.inPlaceCandidates = {a};
    if (B.type == Y.type)
      step.inPlaceCandidates.push_back(b);
    e.use("int8");
    step.print = [=](Emitter &e, raw_ostream &os) {
      os << "  rf_qadd(" << e.ptr(a) << ", " << *qtypeCode(A.type) << ", "
         << Emitter::floatLiteral(A.scale) << ", " << A.zp << ", " << e.ptr(b) << ", "
         << *qtypeCode(B.type) << ", " << Emitter::floatLiteral(B.scale) << ", " << B.zp << ", "
         << e.ptr(y, true) << ", " << *qtypeCode(Y.type) << ", " << Emitter::floatLiteral(Y.scale)
         << ", " << Y.zp << ", " << lo << ", " << hi << ", " << n << ");\n";
    };
    e.steps.push_back(std::move(step));
    return Error::success();
  };
}

} // namespace

/// DequantizeLinear -> Reshape/Flatten/Squeeze/Unsqueeze/Transpose/Identity/
/// Slice/Concat -> QuantizeLinear with one scale, zero point and type all
/// round (the quantizer gives these ops their input's parameters): the op
/// moves the 8-bit values instead, and the pair around it goes. Exact: the
/// QuantizeLinear gives back the integers the DequantizeLinear read.
void moveQuantizedData(Emitter &e, Block &body) {
  static const llvm::StringSet<> moving = {"Reshape", "Flatten",  "Squeeze", "Unsqueeze",
                                           "Transpose", "Identity", "Slice",   "Concat"};
  // Collected first: the rewrite erases the QuantizeLinear after each op.
  SmallVector<Operation *> candidates;
  for (Operation &op : body)
    if (moving.contains(opTypeOf(&op)) && op.getNumResults() == 1)
      candidates.push_back(&op);
  for (Operation *candidate : candidates) {
    Operation &op = *candidate;
    StringRef type = opTypeOf(&op);
    Operation *q = e.singleUser(op.getResult(0));
    if (!isType(q, "QuantizeLinear"))
      continue;
    std::string why;
    auto out = perTensor(e, q, why);
    if (!out)
      continue;
    unsigned data = type == "Concat" ? op.getNumOperands() : 1;
    SmallVector<Value> integers;
    for (unsigned i = 0; i < data; ++i) {
      Operation *dq = op.getOperand(i).getDefiningOp();
      std::optional<TensorQuant> in;
      if (isType(dq, "DequantizeLinear"))
        in = perTensor(e, dq, why);
      if (!in || in->scale != out->scale || in->zp != out->zp || in->type != out->type)
        break;
      integers.push_back(dq->getOperand(0));
    }
    auto resultType = dyn_cast<RankedTensorType>(op.getResult(0).getType());
    auto qType = dyn_cast<RankedTensorType>(q->getResult(0).getType());
    if (integers.size() != data || !resultType || !qType)
      continue;
    for (unsigned i = 0; i < data; ++i)
      op.setOperand(i, integers[i]);
    op.getResult(0).setType(RankedTensorType::get(resultType.getShape(), qType.getElementType()));
    q->getResult(0).replaceAllUsesWith(op.getResult(0));
    // The op's name stays; the tensor it now writes is the quantized one.
    if (auto names = q->getAttr(ir::kOutputNamesAttr))
      op.setAttr(ir::kOutputNamesAttr, names);
    q->erase();
  }
  // DequantizeLinear nodes nothing reads any more.
  SmallVector<Operation *> unread;
  for (Operation &op : body)
    if (isType(&op, "DequantizeLinear") && op.getResult(0).use_empty())
      unread.push_back(&op);
  for (Operation *op : unread)
    op->erase();
}

std::shared_ptr<IntegerGroups> findIntegerGroups(Emitter &e, Block &body, bool fixed) {
  auto groups = std::make_shared<IntegerGroups>();
  llvm::DenseSet<Operation *> anchors;
  for (Operation &op : body) {
    StringRef type = opTypeOf(&op);
    bool product = type == "Conv" || type == "Gemm" || type == "MatMul";
    bool pool = type == "MaxPool" || type == "GlobalAveragePool";
    if (!product && !pool && type != "Add")
      continue;
    // Only ops reading a dequantized tensor are candidates.
    if (!llvm::any_of(op.getOperands(), [](Value v) {
          return isType(v.getDefiningOp(), "DequantizeLinear");
        }))
      continue;
    std::string why;
    if (product) {
      if (auto p = matchProduct(e, &op, why)) {
        anchors.insert(&op);
        groups->byAnchor[&op].lower = [p = std::move(*p), fixed](Emitter &e) {
          return emitProduct(e, p, fixed);
        };
        continue;
      }
    } else if (pool) {
      if (auto lower = matchPool(e, &op, why)) {
        anchors.insert(&op);
        groups->byAnchor[&op].lower = std::move(*lower);
        continue;
      }
    } else if (auto lower = matchAdd(e, &op, why)) {
      anchors.insert(&op);
      groups->byAnchor[&op].lower = std::move(*lower);
      continue;
    }
    groups->remarks.push_back(describeOp(&op) + " stays float: " + why);
  }
  // A DequantizeLinear only integer kernels read is not computed; one of
  // constants nothing else reads (a weight's, a bias's) neither.
  for (Operation &op : body) {
    if (!isType(&op, "DequantizeLinear") || op.getResult(0).use_empty())
      continue;
    if (llvm::all_of(op.getResult(0).getUsers(), [&](Operation *u) { return anchors.contains(u); }))
      e.markAbsorbed(&op);
  }
  return groups;
}

Error lowerIntegerAt(IntegerGroups &groups, Emitter &e, Operation *op, bool &handled) {
  auto it = groups.byAnchor.find(op);
  handled = it != groups.byAnchor.end();
  return handled ? it->second.lower(e) : Error::success();
}

std::vector<std::string> integerRemarks(const IntegerGroups &groups) { return groups.remarks; }

//===----------------------------------------------------------------------===//
// The quantization ops themselves
//===----------------------------------------------------------------------===//

namespace {

/// [outer][len][inner] around the quantization axis (one len when the
/// scale is one value).
Error axisSplit(Emitter &e, Operation *op, Value x, Value scale, int64_t &outer, int64_t &len,
                int64_t &inner) {
  auto shape = e.shapeOf(op, x);
  if (!shape)
    return shape.takeError();
  auto scaleType = dyn_cast<RankedTensorType>(scale.getType());
  if (!scaleType || !scaleType.hasStaticShape())
    return e.unsupported(op, "a scale of unknown size");
  int64_t total = 1;
  for (int64_t d : *shape)
    total *= d;
  outer = 1;
  len = 1;
  inner = total;
  if (scaleType.getNumElements() == 1)
    return Error::success();
  if (scaleType.getRank() != 1)
    return e.unsupported(op, "a scale that is neither one value nor one per channel of an axis");
  int64_t rank = shape->size(), axis = NodeAttrs{op}.i("axis", 1);
  if (axis < 0)
    axis += rank;
  if (axis < 0 || axis >= rank || (*shape)[axis] != scaleType.getNumElements())
    return e.unsupported(op, "a scale that does not match its axis");
  len = (*shape)[axis];
  outer = 1;
  for (int64_t d = 0; d < axis; ++d)
    outer *= (*shape)[d];
  inner = total / outer / len;
  return Error::success();
}

Error lowerQuantizeLinear(Emitter &e, Operation *op, bool quantize) {
  NodeAttrs attrs{op};
  if (attrs.get("block_size") || attrs.get("output_dtype"))
    return e.unsupported(op, "blocked or typed quantization");
  Value x = op->getOperand(0), scale = op->getOperand(1);
  Value zp = op->getNumOperands() > 2 && !ir::isNoneValue(op->getOperand(2)) ? op->getOperand(2)
                                                                             : Value();
  Value y = op->getResult(0);
  auto intType = qtypeCode(elementDType(quantize ? y : x));
  if (!intType || (quantize && *intType == 2))
    return e.unsupported(op, quantize ? "an output type other than uint8 and int8"
                                      : "an input type other than uint8, int8 and int32");
  if (elementDType(quantize ? x : y) != DType::F32 || elementDType(scale) != DType::F32)
    return e.unsupported(op, "float types other than float32");
  if (zp && elementDType(zp) != elementDType(quantize ? y : x))
    return e.unsupported(op, "a zero point of another type than the integer tensor");
  int64_t outer = 1, len = 1, inner = 1;
  if (auto err = axisSplit(e, op, x, scale, outer, len, inner))
    return err;
  if (zp) {
    auto zpType = dyn_cast<RankedTensorType>(zp.getType());
    if (!zpType || !zpType.hasStaticShape() || zpType.getNumElements() != len)
      return e.unsupported(op, "a zero point whose size is not its scale's");
  }
  Step step;
  step.op = op;
  step.comment = describeOp(op);
  step.reads = {x, scale};
  if (zp)
    step.reads.push_back(zp);
  step.writes = {y};
  e.use("int8");
  bool perAxis = len > 1;
  int type = *intType;
  step.print = [=](Emitter &e, raw_ostream &os) {
    if (quantize)
      os << "  rf_quantize(" << e.ptr(x) << ", " << e.ptr(y, true) << ", " << type;
    else
      os << "  rf_dequantize(" << e.ptr(x) << ", " << type << ", " << e.ptr(y, true);
    os << ", " << outer << ", " << len << ", " << inner << ", " << e.ptr(scale) << ", "
       << (zp ? e.ptr(zp) : "NULL") << ", " << perAxis << ");\n";
  };
  e.steps.push_back(std::move(step));
  return Error::success();
}

/// A value's constant per-tensor or per-channel integer parameter.
std::optional<std::vector<int32_t>> constantInts(Emitter &e, Value v, int64_t n) {
  if (!v || ir::isNoneValue(v))
    return std::vector<int32_t>(n, 0);
  auto t = e.constant(v);
  if (!t || (t->size() != 1 && t->size() != n))
    return std::nullopt;
  std::vector<int32_t> out;
  for (int64_t i = 0; i < n; ++i)
    out.push_back(int32_t(t->asDouble(t->size() > 1 ? i : 0)));
  return out;
}

/// QLinearConv, ConvInteger, QLinearMatMul, MatMulInteger.
Error lowerQOperator(Emitter &e, Operation *op, bool fixed) {
  StringRef type = opTypeOf(op);
  bool conv = type == "QLinearConv" || type == "ConvInteger";
  bool requantize = type.starts_with("QLinear");
  auto operand = [&](unsigned i) {
    return i < op->getNumOperands() && !ir::isNoneValue(op->getOperand(i)) ? op->getOperand(i)
                                                                          : Value();
  };
  // Operand positions: QLinear* (x, xs, xz, w, ws, wz, ys, yz[, bias]);
  // *Integer (x, w, xz, wz).
  Value x = operand(0), w = requantize ? operand(3) : operand(1);
  Value xz = requantize ? operand(2) : operand(2), wz = requantize ? operand(5) : operand(3);
  Value xs = requantize ? operand(1) : Value(), ws = requantize ? operand(4) : Value();
  Value ys = requantize ? operand(6) : Value(), yz = requantize ? operand(7) : Value();
  Value bias = type == "QLinearConv" ? operand(8) : Value();
  Value y = op->getResult(0);
  auto xType = qtypeCode(elementDType(x)), wType = qtypeCode(elementDType(w));
  auto yType = qtypeCode(elementDType(y));
  if (!x || !w || !xType || !wType || *xType == 2 || *wType == 2 || !yType)
    return e.unsupported(op, "inputs other than uint8 and int8");
  if (requantize && (!xs || !ws || !ys))
    return e.unsupported(op, "a missing scale");
  if (bias && elementDType(bias) != DType::I32)
    return e.unsupported(op, "a bias that is not int32");
  auto xShape = e.shapeOf(op, x), wShape = e.shapeOf(op, w), yShape = e.shapeOf(op, y);
  if (!xShape || !wShape || !yShape)
    return !xShape ? xShape.takeError() : !wShape ? wShape.takeError() : yShape.takeError();

  IntegerProduct p;
  p.op = op;
  p.comment = describeOp(op);
  p.x = x;
  p.y = y;
  p.requantize = requantize;
  int64_t batch = 1, bStride = 0;
  if (conv) {
    std::vector<int64_t> kernel(wShape->begin() + 2, wShape->end());
    if (auto err = readWindow(e, op, *xShape, *yShape, kernel, p.g))
      return err;
    p.g.groups = NodeAttrs{op}.i("group", 1);
    if (p.g.groups < 1 || p.g.c % p.g.groups || p.g.m % p.g.groups ||
        (*wShape)[1] * p.g.groups != p.g.c)
      return e.unsupported(op, "group does not divide the channels");
  } else {
    if (xShape->size() < 2 || wShape->size() < 2)
      return e.unsupported(op, "operands of rank below 2");
    p.matmul = true;
    p.K = xShape->back();
    p.N = wShape->back();
    p.M = (*xShape)[xShape->size() - 2];
    int64_t aBatch = 1, bBatch = 1;
    for (size_t d = 0; d + 2 < xShape->size(); ++d)
      aBatch *= (*xShape)[d];
    for (size_t d = 0; d + 2 < wShape->size(); ++d)
      bBatch *= (*wShape)[d];
    if ((*wShape)[wShape->size() - 2] != p.K || (bBatch != 1 && bBatch != aBatch) ||
        (bBatch != 1 && xShape->size() != wShape->size()))
      return e.unsupported(op, "operand shapes that are not [.., M, K] x [.., K, N]");
    batch = aBatch;
    bStride = bBatch == 1 ? 0 : p.K * p.N;
  }
  int64_t channels = conv ? p.g.m : p.N;

  // The fast kernels: weights, scales and zero points constant, one
  // weight for the whole batch.
  auto wConst = e.constant(w);
  auto xzConst = constantInts(e, xz, 1), wzConst = constantInts(e, wz, channels);
  auto yzConst = constantInts(e, yz, 1);
  std::optional<Tensor> xsConst = xs ? e.constant(xs) : std::nullopt;
  std::optional<Tensor> wsConst = ws ? e.constant(ws) : std::nullopt;
  std::optional<Tensor> ysConst = ys ? e.constant(ys) : std::nullopt;
  std::optional<Tensor> biasConst = bias ? e.constant(bias) : std::nullopt;
  bool constants = wConst && xzConst && wzConst && yzConst && (!bias || biasConst) &&
                   (!requantize || (xsConst && wsConst && ysConst && xsConst->size() == 1 &&
                                    ysConst->size() == 1 &&
                                    (wsConst->size() == 1 || wsConst->size() == channels)));
  bool fits = constants && bStride == 0;
  if (fits) {
    p.xq.type = elementDType(x) == DType::I8 ? DType::I8 : DType::U8;
    p.xq.zp = (*xzConst)[0];
    p.xq.scale = requantize ? xsConst->data<float>()[0] : 1;
    if (requantize) {
      p.yq.type = *elementDType(y);
      p.yq.zp = (*yzConst)[0];
      p.yq.scale = ysConst->data<float>()[0];
      setRange(p);
    }
    int64_t k = conv ? p.g.c / p.g.groups * p.g.kh * p.g.kw : p.K;
    p.w.resize(channels * k);
    for (int64_t c = 0; c < channels; ++c) {
      p.wScales.push_back(requantize ? wsConst->asDouble(wsConst->size() > 1 ? c : 0) : 1);
      for (int64_t i = 0; i < k; ++i) {
        int64_t at = conv ? c * k + i : i * p.N + c;
        p.w[c * k + i] = int32_t(wConst->asDouble(at)) - (*wzConst)[c];
      }
    }
    if (biasConst)
      for (int64_t c = 0; c < channels; ++c)
        p.bias.push_back(int32_t(biasConst->asDouble(c)));
    bool depthwise = conv && p.g.groups == p.g.c && p.g.c > 1;
    fits = depthwise || llvm::all_of(p.w, [](int32_t v) { return v >= -128 && v <= 127; });
    if (fits && batch > 1 && p.matmul)
      p.M *= batch;
  }
  if (fits)
    return emitProduct(e, std::move(p), fixed);

  // Reference kernels, parameters read at run time.
  Step step;
  step.op = op;
  step.comment = describeOp(op) + " (int8 reference)";
  for (Value v : {x, w, xz, wz, xs, ws, ys, yz, bias})
    if (v)
      step.reads.push_back(v);
  step.writes = {y};
  e.use("int8");
  auto count = [](Value v) {
    auto t = dyn_cast<RankedTensorType>(v.getType());
    return t && t.hasStaticShape() ? t.getNumElements() : 1;
  };
  std::string shape = conv ? convShape(e, p.g) : "";
  int64_t wzCount = wz ? count(wz) : 1, wsCount = ws ? count(ws) : 1;
  int64_t M = p.M, K = p.K, N = p.N;
  int wt = *wType, xt = *xType, yt = *yType;
  step.print = [=](Emitter &e, raw_ostream &os) {
    auto opt = [&](Value v) { return v ? e.ptr(v) : std::string("NULL"); };
    os << "  {\n    const rf_qparams q = {" << xt << ", " << wt << ", " << yt << ", " << opt(xz)
       << ", " << opt(wz) << ", " << opt(yz) << ", " << wzCount << ", " << wsCount << ", "
       << opt(xs) << ", " << opt(ws) << ", " << opt(ys) << "};\n";
    if (conv)
      os << "    rf_qconv2d_ref(" << e.ptr(x) << ", " << e.ptr(w) << ", " << opt(bias) << ", "
         << e.ptr(y, true) << ", &" << shape << ", &q);\n  }\n";
    else
      os << "    rf_qmatmul_ref(" << e.ptr(x) << ", " << e.ptr(w) << ", " << e.ptr(y, true) << ", "
         << batch << ", " << M << ", " << K << ", " << N << ", " << bStride << ", &q);\n  }\n";
  };
  e.steps.push_back(std::move(step));
  return Error::success();
}

} // namespace

Error lowerQuantOp(Emitter &e, Operation *op, bool fixed, bool &handled) {
  StringRef type = opTypeOf(op);
  handled = true;
  if (type == "QuantizeLinear" || type == "DequantizeLinear")
    return lowerQuantizeLinear(e, op, type == "QuantizeLinear");
  if (type == "QLinearConv" || type == "ConvInteger" || type == "QLinearMatMul" ||
      type == "MatMulInteger")
    return lowerQOperator(e, op, fixed);
  handled = false;
  return Error::success();
}

} // namespace refold::cemit
