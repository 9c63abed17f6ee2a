//===- ResidualEqualization.cpp - channel scales along residual streams ----===//
//
// Cross-layer equalization works on a conv pair; a residual network's
// stream (x, x + f(x), ...) is written by several convs and read by
// several, joined by Adds, so no pair covers it, and every one of its
// tensors is quantized with one scale for all channels. A positive scale per
// channel of the whole stream is exact: the convs writing it take it in
// their output channels (weights and bias), the Adds and Relus carry it, the
// convs reading it undo it in their input channels. With the channels'
// ranges measured on calibration data, scaling each channel towards the
// widest one lets the stream's per-tensor scale resolve them all; the
// readers' weights, quantized per output channel, absorb the inverse.
//
//===----------------------------------------------------------------------===//

#include "refold/Dialect/ONNX/ONNXOps.h"
#include "refold/Quantizer/Quantizer.h"
#include "refold/Transforms/WeightUtils.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/MapVector.h"

#include <cmath>

using namespace mlir;

namespace refold::quant {

namespace {

/// Tensors joined by Adds and Relus, with the convs that write and read
/// them.
struct Stream {
  SmallVector<Value> members;
  int64_t channels = 0;
  // Per conv: whether it writes the stream (output channels scaled) and
  // whether it reads it (input channels scaled back).
  llvm::MapVector<Operation *, std::pair<bool, bool>> convs;
  std::vector<float> range; // largest |x| per channel over the members
};

/// A conv whose weight (and bias) refold may rewrite: constant, used once.
bool rewritableConv(ir::ConvOp conv, int64_t channels, bool asReader) {
  auto w = weights::constantF32Type(conv.getW());
  if (!w || w.getRank() != 4 || !conv.getW().hasOneUse())
    return false;
  if (!ir::isNoneValue(conv.getB()) &&
      (!weights::constantF32Type(conv.getB()) || !conv.getB().hasOneUse()))
    return false;
  if (asReader)
    return conv.getGroup().value_or(1) == 1 && w.getDimSize(1) == channels;
  return w.getDimSize(0) == channels;
}

/// The streams of `func`: union of Add operands and results and Relu
/// inputs and outputs, kept when every tensor is written by a conv, an Add
/// or a Relu of the stream and read only by convs (group 1), Adds and
/// Relus of the stream.
std::vector<Stream> findStreams(func::FuncOp func) {
  llvm::DenseMap<Value, unsigned> id;
  std::vector<unsigned> parent;
  auto find = [&](Value v) {
    auto [it, added] = id.try_emplace(v, parent.size());
    if (added)
      parent.push_back(it->second);
    unsigned i = it->second;
    while (parent[i] != i)
      i = parent[i] = parent[parent[i]];
    return i;
  };
  auto unite = [&](Value a, Value b) {
    unsigned x = find(a), y = find(b);
    parent[x] = y;
  };
  llvm::DenseSet<Value> addResults;
  func.walk([&](Operation *op) {
    if (auto add = dyn_cast<ir::AddOp>(op)) {
      unite(add.getA(), add.getC());
      unite(add.getB(), add.getC());
      addResults.insert(add.getC());
    } else if (weights::isReluLike(op)) {
      unite(op->getOperand(0), op->getResult(0));
    }
  });
  std::map<unsigned, Stream> byRoot;
  for (auto &[value, index] : id)
    byRoot[find(value)].members.push_back(value);
  std::vector<Stream> streams;
  for (auto &[root, stream] : byRoot) {
    if (llvm::none_of(stream.members, [&](Value v) { return addResults.contains(v); }))
      continue;
    llvm::DenseSet<Value> inStream(stream.members.begin(), stream.members.end());
    bool ok = true;
    for (Value v : stream.members) {
      auto type = dyn_cast<RankedTensorType>(v.getType());
      if (!type || type.getRank() != 4 || type.isDynamicDim(1) ||
          !type.getElementType().isF32() ||
          (stream.channels && type.getDimSize(1) != stream.channels)) {
        ok = false;
        break;
      }
      stream.channels = type.getDimSize(1);
      Operation *def = v.getDefiningOp();
      if (auto conv = dyn_cast_or_null<ir::ConvOp>(def)) {
        if (!rewritableConv(conv, stream.channels, /*asReader=*/false)) {
          ok = false;
          break;
        }
        stream.convs[conv].first = true;
      } else if (!isa_and_nonnull<ir::AddOp>(def) && !weights::isReluLike(def)) {
        ok = false; // a graph input, a constant, any other producer
        break;
      }
      for (OpOperand &use : v.getUses()) {
        Operation *user = use.getOwner();
        if (isa<ir::AddOp>(user) || weights::isReluLike(user))
          continue;
        auto conv = dyn_cast<ir::ConvOp>(user);
        if (!conv || use.getOperandNumber() != 0 ||
            !rewritableConv(conv, stream.channels, /*asReader=*/true)) {
          ok = false;
          break;
        }
        stream.convs[conv].second = true;
      }
      if (!ok)
        break;
    }
    // Both sides must be convs: a stream nothing writes or reads through
    // weights has nowhere to put its scales.
    bool writes = llvm::any_of(stream.convs, [](auto &c) { return c.second.first; });
    bool reads = llvm::any_of(stream.convs, [](auto &c) { return c.second.second; });
    if (ok && writes && reads)
      streams.push_back(std::move(stream));
  }
  return streams;
}

} // namespace

llvm::Expected<unsigned> equalizeResiduals(ModuleOp module, const CalibrationData &data,
                                           const ResidualEqualizationOptions &options) {
  std::vector<Stream> streams;
  module.walk([&](func::FuncOp func) {
    for (Stream &s : findStreams(func))
      streams.push_back(std::move(s));
  });
  if (streams.empty())
    return 0u;
  llvm::DenseMap<Value, size_t> streamOf;
  for (auto [i, s] : llvm::enumerate(streams)) {
    s.range.assign(s.channels, 0.0f);
    for (Value v : s.members)
      streamOf[v] = i;
  }
  interp::RunOptions run;
  run.observe = [&](Value value, const interp::Tensor &t) {
    auto it = streamOf.find(value);
    if (it == streamOf.end() || t.dtype() != interp::DType::F32 || t.rank() != 4)
      return;
    Stream &s = streams[it->second];
    if (t.dim(1) != s.channels)
      return;
    const float *x = t.data<float>();
    int64_t plane = t.dim(2) * t.dim(3);
    for (int64_t n = 0; n < t.dim(0); ++n)
      for (int64_t c = 0; c < s.channels; ++c) {
        const float *p = x + (n * s.channels + c) * plane;
        float m = s.range[c];
        for (int64_t i = 0; i < plane; ++i)
          m = std::max(m, std::fabs(p[i]));
        s.range[c] = m;
      }
  };
  size_t sets = std::min<size_t>(data.size(), options.maxSets);
  if (llvm::Error e = data.runEach(module, run, sets, "residual equalization, calibration"))
    return std::move(e);
  unsigned equalized = 0;
  for (Stream &s : streams) {
    float widest = *std::max_element(s.range.begin(), s.range.end());
    if (!(widest > 0) || !std::isfinite(widest))
      continue;
    // By default each channel halfway (geometrically) to the widest: the
    // stream's int8 step shrinks for it by s_c while its readers' weights,
    // divided by s_c, lose as much against their per-channel step; the
    // square root splits the two as cross-layer equalization does. At most
    // maxScale (a nearly dead channel would push its readers' weights below
    // a step).
    std::vector<float> scale(s.channels, 1.0f);
    bool changes = false;
    for (int64_t c = 0; c < s.channels; ++c)
      if (s.range[c] > 0) {
        scale[c] = std::min(float(std::pow(widest / s.range[c], options.exponent)), float(options.maxScale));
        changes |= scale[c] > 1.001f;
      }
    if (!changes)
      continue;
    for (auto &[op, role] : s.convs) {
      auto conv = cast<ir::ConvOp>(op);
      auto w = weights::getConstantF32(conv.getW());
      if (!w)
        continue; // checked by findStreams; a weight is constant
      int64_t out = w->dim(0), in = w->dim(1), taps = w->dim(2) * w->dim(3);
      for (int64_t o = 0; o < out; ++o)
        for (int64_t i = 0; i < in; ++i)
          for (int64_t k = 0; k < taps; ++k) {
            float &v = w->data[(o * in + i) * taps + k];
            if (role.first)
              v *= scale[o];
            if (role.second)
              v /= scale[i];
          }
      OpBuilder b(conv);
      std::string name = weights::nameOf(conv.getW());
      conv->setOperand(1, weights::createInitializer(b, conv.getLoc(),
                                                     name.empty() ? "weight" : name, *w));
      if (!role.first)
        continue;
      if (!ir::isNoneValue(conv.getB())) {
        auto bias = weights::getConstantF32(conv.getB());
        std::string biasName = weights::nameOf(conv.getB());
        for (int64_t o = 0; o < out; ++o)
          bias->data[o] *= scale[o];
        conv->setOperand(2, weights::createInitializer(b, conv.getLoc(),
                                                       biasName.empty() ? "bias" : biasName,
                                                       *bias));
      }
      // The BatchNorm statistics kept for data-free quantization follow.
      if (auto stats = weights::getOutputStats(conv);
          stats && int64_t(stats->mean.size()) == out) {
        for (int64_t o = 0; o < out; ++o) {
          stats->mean[o] *= scale[o];
          stats->std[o] *= scale[o];
        }
        weights::setOutputStats(conv, *stats);
      }
    }
    ++equalized;
  }
  module.walk([](ir::InitializerOp init) {
    if (init->use_empty())
      init->erase();
  });
  return equalized;
}

} // namespace refold::quant
