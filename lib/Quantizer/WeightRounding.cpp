//===- WeightRounding.cpp - int8 weight rounding against input statistics ===//
//
// Rounding each weight to its nearest int8 level ignores how the rounding
// errors of one output channel add up over correlated inputs. With the
// second moments H = E[x x^T] of a layer's input (im2col columns of a
// conv, per group; rows of a Gemm's or MatMul's input), GPTQ (Frantar et al. 2022, after Optimal Brain Quantization)
// quantizes one input column at a time and moves each column's rounding
// error onto the columns not yet quantized, weighted by H^-1, which
// minimizes E||(W - Wq) x||^2 column by column. The scales stay those of
// nearest rounding (max |w| / 127), so the levels are the same; only the
// choice of level changes. H is accumulated one calibration set at a time
// (K x K per group, K = input channels per group x kernel taps), so memory
// does not grow with the data.
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

/// A layer whose input statistics are gathered: a 2-D conv (any group
/// count; each group has its own inputs, so its own H), or a Gemm/MatMul
/// with a constant 2-D weight. Its weight is seen as one (out x k) matrix per
/// group, k the inputs one output reads.
struct Layer {
  Operation *op;
  weights::F32Tensor weight;
  int64_t axis = 0;        // the output-channel axis of the weight
  int64_t outChannels = 0, groups = 1, k = 0;
  bool conv = false;
  int64_t cinPerGroup = 0, kh = 1, kw = 1;
  int64_t strideH = 1, strideW = 1, dilH = 1, dilW = 1;
  int64_t padTop = 0, padLeft = 0, padBottom = 0, padRight = 0;
  // Per group, the sum of x x^T over every position seen, lower half; in
  // float (half the memory: these live through calibration) with at most
  // 1024 positions summed per addition.
  std::vector<Eigen::MatrixXf> hessians;
  int64_t samples = 0;

  /// Element `(o, j)` of the weight matrix (`o` an output channel).
  int64_t index(int64_t o, int64_t j) const {
    return axis == 0 ? o * k + j : j * outChannels + o;
  }
};

/// Adds the im2col columns of `x` (N, C, H, W) to each group's H.
void accumulateConv(Layer &layer, const interp::Tensor &x) {
  int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
  int64_t kh = layer.kh, kw = layer.kw;
  int64_t outH =
      (h + layer.padTop + layer.padBottom - layer.dilH * (kh - 1) - 1) / layer.strideH + 1;
  int64_t outW =
      (w + layer.padLeft + layer.padRight - layer.dilW * (kw - 1) - 1) / layer.strideW + 1;
  if (outH <= 0 || outW <= 0)
    return;
  const float *data = x.data<float>();
  // A block of output positions at a time keeps the im2col slice small.
  constexpr int64_t kBlock = 1024;
  Eigen::MatrixXf cols(layer.k, kBlock);
  for (int64_t g = 0; g < layer.groups; ++g) {
    int64_t filled = 0;
    auto flush = [&] {
      if (!filled)
        return;
      // x x^T is symmetric: only its lower half is accumulated.
      layer.hessians[g].selfadjointView<Eigen::Lower>().rankUpdate(cols.leftCols(filled));
      filled = 0;
    };
    for (int64_t b = 0; b < n; ++b)
      for (int64_t oy = 0; oy < outH; ++oy)
        for (int64_t ox = 0; ox < outW; ++ox) {
          int64_t row = 0;
          for (int64_t ci = g * layer.cinPerGroup; ci < (g + 1) * layer.cinPerGroup; ++ci)
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
  }
  layer.samples += n * outH * outW;
}

/// Adds the rows of `x` (..., k) to a Gemm's or MatMul's H.
void accumulateMatrix(Layer &layer, const interp::Tensor &x) {
  int64_t rows = x.size() / layer.k;
  // Row-major (rows x k) is column-major (k x rows): x^T, whose x^T x is H.
  Eigen::Map<const Eigen::MatrixXf> columns(x.data<float>(), layer.k, rows);
  constexpr int64_t kBlock = 1024;
  for (int64_t first = 0; first < rows; first += kBlock)
    layer.hessians[0].selfadjointView<Eigen::Lower>().rankUpdate(
        columns.middleCols(first, std::min(kBlock, rows - first)));
  layer.samples += rows;
}

/// GPTQ over one group of a layer: its output channels' weights, rounded on
/// the int8 grid of `scales`, written to `rounded` (the weight's layout).
void roundGroup(const Layer &layer, int64_t group, const std::vector<float> &scales,
                bool perChannel, double damp, std::vector<float> &rounded) {
  int64_t out = layer.outChannels / layer.groups, k = layer.k, first = group * out;
  Eigen::MatrixXd w(out, k);
  for (int64_t o = 0; o < out; ++o)
    for (int64_t j = 0; j < k; ++j)
      w(o, j) = layer.weight.data[layer.index(first + o, j)];
  Eigen::MatrixXd h = layer.hessians[group].cast<double>().selfadjointView<Eigen::Lower>();
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
  auto nearest = [&](double value, int64_t o) {
    double s = scales[perChannel ? first + o : 0];
    return std::clamp(std::nearbyint(value / s), -127.0, 127.0) * s;
  };
  if (chol.info() != Eigen::Success) {
    // Not positive definite in floating point: nearest rounding.
    for (int64_t o = 0; o < out; ++o)
      for (int64_t j = 0; j < k; ++j)
        rounded[layer.index(first + o, j)] = float(nearest(w(o, j), o));
    return;
  }
  Eigen::MatrixXd u = Eigen::MatrixXd::Identity(k, k);
  chol.matrixL().solveInPlace(u);
  u.reverseInPlace();
  // Columns in blocks (GPTQ's lazy batch updates): the error of a block's
  // columns reaches the columns after it in one matrix product, and within
  // the block as rank-1 updates over contiguous columns of w.
  constexpr int64_t kBlock = 128;
  Eigen::MatrixXd errors(out, kBlock);
  for (int64_t begin = 0; begin < k; begin += kBlock) {
    int64_t width = std::min(kBlock, k - begin);
    for (int64_t j = begin; j < begin + width; ++j) {
      auto column = w.col(j);
      auto err = errors.col(j - begin);
      for (int64_t o = 0; o < out; ++o) {
        double q = nearest(column(o), o);
        err(o) = (column(o) - q) / u(j, j);
        column(o) = q;
        rounded[layer.index(first + o, j)] = float(q);
      }
      for (int64_t c = j + 1; c < begin + width; ++c)
        w.col(c) -= u(j, c) * err;
    }
    int64_t rest = k - begin - width;
    if (rest > 0)
      w.rightCols(rest).noalias() -=
          errors.leftCols(width) * u.block(begin, begin + width, width, rest);
  }
}

/// The layer `op` would be for rounding, or nothing when it is not one
/// (the QDQ rewrite's own refusals: Gemm with transA, alpha or beta; a
/// weight computed at run time or shared with another op).
std::optional<Layer> layerOf(Operation *op, int64_t maxColumns) {
  Value wValue = op->getOperand(1);
  if (!wValue.hasOneUse())
    return std::nullopt;
  auto w = weights::getConstantF32(wValue);
  if (!w)
    return std::nullopt;
  Layer layer{op, std::move(*w)};
  if (auto conv = dyn_cast<ir::ConvOp>(op)) {
    if (layer.weight.rank() != 4 || (conv.getAutoPad() && *conv.getAutoPad() != "NOTSET"))
      return std::nullopt;
    layer.conv = true;
    layer.groups = conv.getGroup().value_or(1);
    layer.outChannels = layer.weight.dim(0);
    if (layer.groups < 1 || layer.outChannels % layer.groups)
      return std::nullopt;
    layer.cinPerGroup = layer.weight.dim(1);
    layer.kh = layer.weight.dim(2);
    layer.kw = layer.weight.dim(3);
    layer.k = layer.cinPerGroup * layer.kh * layer.kw;
    if (auto s = conv.getStrides(); s && s->size() == 2)
      layer.strideH = (*s)[0], layer.strideW = (*s)[1];
    if (auto d = conv.getDilations(); d && d->size() == 2)
      layer.dilH = (*d)[0], layer.dilW = (*d)[1];
    if (auto p = conv.getPads(); p && p->size() == 4)
      layer.padTop = (*p)[0], layer.padLeft = (*p)[1], layer.padBottom = (*p)[2],
      layer.padRight = (*p)[3];
  } else {
    if (layer.weight.rank() != 2)
      return std::nullopt;
    if (auto gemm = dyn_cast<ir::GemmOp>(op)) {
      float alpha = gemm.getAlpha() ? gemm.getAlpha()->convertToFloat() : 1.0f;
      float beta = gemm.getBeta() ? gemm.getBeta()->convertToFloat() : 1.0f;
      if (gemm.getTransA().value_or(0) || alpha != 1.0f || beta != 1.0f)
        return std::nullopt;
      layer.axis = gemm.getTransB().value_or(0) ? 0 : 1;
    } else {
      layer.axis = 1;
    }
    layer.outChannels = layer.weight.dim(layer.axis);
    layer.k = layer.weight.dim(1 - layer.axis);
  }
  if (layer.k < 1 || layer.k > maxColumns)
    return std::nullopt;
  layer.hessians.assign(layer.groups, Eigen::MatrixXf::Zero(layer.k, layer.k));
  return layer;
}

} // namespace

Expected<unsigned> roundWeights(ModuleOp module, const CalibrationData &data,
                                const RoundingOptions &options) {
  std::vector<Layer> layers;
  llvm::DenseMap<Value, SmallVector<size_t>> readers;
  module.walk([&](Operation *op) {
    if (!isa<ir::ConvOp, ir::GemmOp, ir::MatMulOp>(op))
      return;
    if (auto layer = layerOf(op, options.maxColumns)) {
      readers[op->getOperand(0)].push_back(layers.size());
      layers.push_back(std::move(*layer));
    }
  });
  if (layers.empty())
    return 0u;
  interp::RunOptions run;
  run.observe = [&](Value value, const interp::Tensor &t) {
    auto it = readers.find(value);
    if (it == readers.end() || t.dtype() != interp::DType::F32)
      return;
    for (size_t i : it->second) {
      Layer &layer = layers[i];
      if (layer.conv && t.rank() == 4 && t.dim(1) == layer.cinPerGroup * layer.groups)
        accumulateConv(layer, t);
      else if (!layer.conv && t.rank() >= 1 && t.dim(t.rank() - 1) == layer.k)
        accumulateMatrix(layer, t);
    }
  };
  auto start = std::chrono::steady_clock::now();
  size_t sets = std::min<size_t>(data.size(), options.maxSets);
  // Graph inputs are observed too: the first conv's statistics.
  if (Error e = data.runEach(module, run, sets, "weight rounding, calibration"))
    return std::move(e);
  unsigned rounded = 0;
  for (Layer &layer : layers) {
    if (!layer.samples)
      continue;
    std::vector<float> scales =
        weightScales(layer.weight.data, layer.weight.shape, layer.axis, options.perChannel);
    weights::F32Tensor result = layer.weight;
    for (int64_t g = 0; g < layer.groups; ++g)
      roundGroup(layer, g, scales, options.perChannel, options.damp, result.data);
    layer.hessians.clear();
    // The float weight stays (a layer the QDQ rewrite keeps float keeps it);
    // the rounded one and the scales it is on ride along for the rewrite.
    MLIRContext *context = module.getContext();
    std::string name = weights::nameOf(layer.op->getOperand(1));
    layer.op->setAttr(kRoundedWeightAttr,
                      weights::createElements(context, (name.empty() ? "weight" : name) + "_rounded",
                                              result));
    layer.op->setAttr(kWeightScalesAttr, DenseF32ArrayAttr::get(context, scales));
    ++rounded;
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (options.progress && seconds > 1)
    llvm::errs() << llvm::format("refold: rounded %u weights against %zu input sets, %.1f s\n",
                                 rounded, sets, seconds);
  return rounded;
}

} // namespace refold::quant
