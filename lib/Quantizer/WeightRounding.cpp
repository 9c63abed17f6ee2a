//===- WeightRounding.cpp - int8 weight rounding against input statistics ===//
//
// Rounding each weight to its nearest int8 level ignores how the rounding
// errors of one output channel add up over correlated inputs. With the
// second moments H = E[x x^T] of a layer's input (im2col columns of a
// conv), GPTQ (Frantar et al. 2022, after Optimal Brain Quantization)
// quantizes one input column at a time and moves each column's rounding
// error onto the columns not yet quantized, weighted by H^-1, which
// minimizes E||(W - Wq) x||^2 column by column. The scales stay those of
// nearest rounding (max |w| / 127), so the levels are the same; only the
// choice of level changes. H is accumulated one calibration set at a time
// (K x K per layer, K = input channels x kernel taps), so memory does not
// grow with the data.
//
//===----------------------------------------------------------------------===//

#include "refold/Dialect/ONNX/ONNXOps.h"
#include "refold/Quantizer/Quantizer.h"
#include "refold/Transforms/WeightUtils.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <Eigen/Dense>

#include <chrono>
#include <cmath>

using namespace mlir;
using llvm::Error;
using llvm::Expected;

namespace refold::quant {

namespace {

Error error(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

/// A 2-D conv (group 1, constant weight) whose input statistics are
/// gathered, with the geometry its im2col needs.
struct ConvLayer {
  ir::ConvOp op;
  weights::F32Tensor weight;
  int64_t cin = 0, kh = 0, kw = 0;
  int64_t strideH = 1, strideW = 1, dilH = 1, dilW = 1;
  int64_t padTop = 0, padLeft = 0, padBottom = 0, padRight = 0;
  // Sum of x x^T over every output position seen, lower half; in float
  // (half the memory: one K x K per layer lives through calibration) with
  // at most 1024 positions summed per addition.
  Eigen::MatrixXf hessian;
  int64_t samples = 0;
};

/// Adds the im2col columns of `x` (N, C, H, W) to `layer.hessian`.
void accumulate(ConvLayer &layer, const interp::Tensor &x) {
  int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
  int64_t kh = layer.kh, kw = layer.kw;
  int64_t outH =
      (h + layer.padTop + layer.padBottom - layer.dilH * (kh - 1) - 1) / layer.strideH + 1;
  int64_t outW =
      (w + layer.padLeft + layer.padRight - layer.dilW * (kw - 1) - 1) / layer.strideW + 1;
  if (outH <= 0 || outW <= 0)
    return;
  int64_t k = c * kh * kw;
  const float *data = x.data<float>();
  // A block of output positions at a time keeps the im2col slice small.
  constexpr int64_t kBlock = 1024;
  Eigen::MatrixXf cols(k, kBlock);
  int64_t filled = 0;
  auto flush = [&] {
    if (!filled)
      return;
    // x x^T is symmetric: only its lower half is accumulated.
    layer.hessian.selfadjointView<Eigen::Lower>().rankUpdate(cols.leftCols(filled));
    filled = 0;
  };
  for (int64_t b = 0; b < n; ++b)
    for (int64_t oy = 0; oy < outH; ++oy)
      for (int64_t ox = 0; ox < outW; ++ox) {
        int64_t row = 0;
        for (int64_t ci = 0; ci < c; ++ci)
          for (int64_t i = 0; i < kh; ++i)
            for (int64_t j = 0; j < kw; ++j, ++row) {
              int64_t y = oy * layer.strideH - layer.padTop + i * layer.dilH;
              int64_t xx = ox * layer.strideW - layer.padLeft + j * layer.dilW;
              cols(row, filled) = (y < 0 || y >= h || xx < 0 || xx >= w)
                                      ? 0.0f
                                      : data[((b * c + ci) * h + y) * w + xx];
            }
        if (++filled == kBlock)
          flush();
      }
  flush();
  layer.samples += n * outH * outW;
}

/// GPTQ over one layer: the rounded weight (on the int8 grid of `scales`).
std::vector<float> roundLayer(const ConvLayer &layer, const std::vector<float> &scales,
                              bool perChannel, double damp) {
  int64_t out = layer.weight.dim(0), k = layer.weight.size() / out;
  Eigen::MatrixXd w(out, k);
  for (int64_t o = 0; o < out; ++o)
    for (int64_t j = 0; j < k; ++j)
      w(o, j) = layer.weight.data[o * k + j];
  Eigen::MatrixXd h = layer.hessian.cast<double>().selfadjointView<Eigen::Lower>();
  h /= double(std::max<int64_t>(layer.samples, 1));
  // A column no input ever reached: nothing to compensate with; its weights
  // are rounded as they are.
  for (int64_t j = 0; j < k; ++j)
    if (h(j, j) <= 0)
      h(j, j) = 1;
  h.diagonal().array() += damp * h.diagonal().mean();
  // U, the upper Cholesky factor of H^-1 (H^-1 = U^T U), without forming
  // H^-1: with J the order reversal and J H J = L L^T, U = J L^-1 J.
  // (In place: these are the largest matrices refold allocates.)
  h.reverseInPlace();
  Eigen::LLT<Eigen::Ref<Eigen::MatrixXd>> chol(h);
  std::vector<float> rounded(layer.weight.size());
  auto nearest = [&](double value, int64_t o) {
    double s = scales[perChannel ? o : 0];
    return std::clamp(std::nearbyint(value / s), -127.0, 127.0) * s;
  };
  if (chol.info() != Eigen::Success) {
    // Not positive definite in floating point: nearest rounding.
    for (int64_t o = 0; o < out; ++o)
      for (int64_t j = 0; j < k; ++j)
        rounded[o * k + j] = float(nearest(w(o, j), o));
    return rounded;
  }
  Eigen::MatrixXd u = Eigen::MatrixXd::Identity(k, k);
  chol.matrixL().solveInPlace(u);
  u.reverseInPlace();
  // Columns in blocks (GPTQ's lazy batch updates): the error of a block's
  // columns reaches the columns after it in one matrix product, and within
  // the block as rank-1 updates over contiguous columns of w.
  constexpr int64_t kBlock = 128;
  Eigen::MatrixXd errors(out, kBlock);
  for (int64_t first = 0; first < k; first += kBlock) {
    int64_t width = std::min(kBlock, k - first);
    for (int64_t j = first; j < first + width; ++j) {
      auto column = w.col(j);
      auto err = errors.col(j - first);
      for (int64_t o = 0; o < out; ++o) {
        double q = nearest(column(o), o);
        err(o) = (column(o) - q) / u(j, j);
        column(o) = q;
        rounded[o * k + j] = float(q);
      }
      for (int64_t c = j + 1; c < first + width; ++c)
        w.col(c) -= u(j, c) * err;
    }
    int64_t rest = k - first - width;
    if (rest > 0)
      w.rightCols(rest).noalias() -=
          errors.leftCols(width) * u.block(first, first + width, width, rest);
  }
  return rounded;
}

} // namespace

Expected<unsigned> roundWeights(ModuleOp module, const CalibrationData &data,
                                const RoundingOptions &options) {
  std::vector<ConvLayer> layers;
  llvm::DenseMap<Value, SmallVector<size_t>> readers;
  module.walk([&](ir::ConvOp conv) {
    auto w = weights::getConstantF32(conv.getW());
    if (!w || w->rank() != 4 || conv.getGroup().value_or(1) != 1)
      return;
    if (conv.getAutoPad() && *conv.getAutoPad() != "NOTSET")
      return;
    ConvLayer layer{conv, std::move(*w)};
    layer.cin = layer.weight.dim(1);
    layer.kh = layer.weight.dim(2);
    layer.kw = layer.weight.dim(3);
    int64_t k = layer.cin * layer.kh * layer.kw;
    if (k > options.maxColumns)
      return;
    if (auto s = conv.getStrides(); s && s->size() == 2)
      layer.strideH = (*s)[0], layer.strideW = (*s)[1];
    if (auto d = conv.getDilations(); d && d->size() == 2)
      layer.dilH = (*d)[0], layer.dilW = (*d)[1];
    if (auto p = conv.getPads(); p && p->size() == 4)
      layer.padTop = (*p)[0], layer.padLeft = (*p)[1], layer.padBottom = (*p)[2],
      layer.padRight = (*p)[3];
    layer.hessian = Eigen::MatrixXf::Zero(k, k);
    readers[conv.getX()].push_back(layers.size());
    layers.push_back(std::move(layer));
  });
  if (layers.empty())
    return 0u;
  interp::RunOptions run;
  run.observe = [&](Value value, const interp::Tensor &t) {
    auto it = readers.find(value);
    if (it == readers.end() || t.dtype() != interp::DType::F32 || t.rank() != 4)
      return;
    for (size_t i : it->second)
      if (t.dim(1) == layers[i].cin)
        accumulate(layers[i], t);
  };
  auto start = std::chrono::steady_clock::now();
  size_t sets = std::min<size_t>(data.size(), options.maxSets);
  for (size_t i = 0; i < sets; ++i) {
    auto inputs = data.load(i);
    if (!inputs)
      return inputs.takeError();
    // Graph inputs are observed too: the first conv's statistics.
    auto outputs = interp::run(module, *inputs, run);
    if (!outputs)
      return error("weight rounding, calibration set " + std::to_string(i) + ": " +
                   llvm::toString(outputs.takeError()));
  }
  unsigned rounded = 0;
  for (ConvLayer &layer : layers) {
    if (!layer.samples)
      continue;
    std::vector<float> scales =
        weightScales(layer.weight.data, layer.weight.shape, 0, options.perChannel);
    weights::F32Tensor result = layer.weight;
    result.data = roundLayer(layer, scales, options.perChannel, options.damp);
    OpBuilder b(layer.op);
    std::string name = weights::nameOf(layer.op.getW());
    layer.op->setOperand(1, weights::createInitializer(b, layer.op.getLoc(),
                                                       name.empty() ? "weight" : name, result));
    // The QDQ rewrite quantizes on these scales: the rounded weight is on
    // their grid, whatever its own largest value now is.
    layer.op->setAttr(kWeightScalesAttr,
                      DenseF32ArrayAttr::get(module.getContext(), scales));
    ++rounded;
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (options.progress && seconds > 1)
    llvm::errs() << llvm::format("refold: rounded %u conv weights against %zu input sets, %.1f s\n",
                                 rounded, sets, seconds);
  // The weights replaced are dead now.
  module.walk([](ir::InitializerOp init) {
    if (init->use_empty())
      init->erase();
  });
  return rounded;
}

} // namespace refold::quant
