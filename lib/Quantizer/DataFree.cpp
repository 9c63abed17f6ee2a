//===- DataFree.cpp - value ranges without calibration data -----------------===//
//
// Data-free quantization (quantization.md: Nagel et al. 2019) sizes each
// activation range from what training left in the model: a folded
// BatchNorm says its output channel c was distributed with mean beta_c and
// deviation |gamma_c|. Between such anchors the per-channel mean and
// variance are carried through the graph (linear ops exactly for the mean,
// the variance as if inputs were independent; Relu and Clip by the moments
// of a clipped Gaussian). A tensor's range is mean +- k deviations over its
// channels, cut to what the ops bound (Relu >= 0, Clip, Sigmoid).
//
//===----------------------------------------------------------------------===//

#include "refold/Quantizer/Quantizer.h"

#include "refold/Dialect/ONNX/ONNXOps.h"
#include "refold/Transforms/WeightUtils.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <cmath>

using namespace mlir;
using namespace refold::ir;
namespace weights = refold::weights;

namespace refold::quant {

namespace {

/// Per-channel moments of a tensor (channels on axis 1; one channel when
/// the tensor has no channel axis the ops keep), and hard bounds.
struct Moments {
  std::vector<double> mean, var;
  double lo = -INFINITY, hi = INFINITY;
  size_t channels() const { return mean.size(); }
};

double normalPdf(double x) { return std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI); }
double normalCdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

/// E[max(x, a)] and E[max(x, a)^2] for x ~ N(mu, sigma^2).
std::pair<double, double> clippedBelow(double mu, double sigma, double a) {
  if (sigma <= 0) {
    double v = std::max(mu, a);
    return {v, v * v};
  }
  double alpha = (a - mu) / sigma, tail = 1 - normalCdf(alpha), pdf = normalPdf(alpha);
  double m1 = a * normalCdf(alpha) + mu * tail + sigma * pdf;
  double m2 = a * a * normalCdf(alpha) + (mu * mu + sigma * sigma) * tail +
              sigma * (mu + a) * pdf;
  return {m1, m2};
}

/// The moments after clamping to [a, b] (either may be infinite).
Moments clamp(const Moments &in, double a, double b) {
  Moments out = in;
  for (size_t c = 0; c < in.channels(); ++c) {
    double mu = in.mean[c], sigma = std::sqrt(std::max(0.0, in.var[c]));
    if (std::isfinite(a)) {
      auto [m1, m2] = clippedBelow(mu, sigma, a);
      mu = m1;
      sigma = std::sqrt(std::max(0.0, m2 - m1 * m1));
    }
    if (std::isfinite(b)) { // min(x, b) = -max(-x, -b)
      auto [m1, m2] = clippedBelow(-mu, sigma, -b);
      mu = -m1;
      sigma = std::sqrt(std::max(0.0, m2 - m1 * m1));
    }
    out.mean[c] = mu;
    out.var[c] = sigma * sigma;
  }
  out.lo = std::max(in.lo, a);
  out.hi = std::min(in.hi, b);
  if (out.lo > out.hi)
    out.lo = out.hi;
  return out;
}

/// One channel standing for all: the mixture's mean and variance.
Moments pooled(const Moments &in) {
  Moments out;
  out.lo = in.lo;
  out.hi = in.hi;
  double n = double(in.channels()), m = 0, v = 0;
  for (size_t c = 0; c < in.channels(); ++c)
    m += in.mean[c] / n;
  for (size_t c = 0; c < in.channels(); ++c)
    v += (in.var[c] + (in.mean[c] - m) * (in.mean[c] - m)) / n;
  out.mean = {m};
  out.var = {v};
  return out;
}

int64_t channelsOf(Value v) {
  auto type = dyn_cast<RankedTensorType>(v.getType());
  if (!type || type.getRank() < 2 || type.isDynamicDim(1))
    return -1;
  return type.getDimSize(1);
}

/// `in` as the moments of a value with `v`'s channel count: kept per
/// channel when it matches, pooled otherwise.
Moments fit(const Moments &in, Value v) {
  if (int64_t(in.channels()) == channelsOf(v) || in.channels() == 1)
    return in;
  return pooled(in);
}

double channel(const std::vector<double> &values, size_t c) {
  return values.size() == 1 ? values[0] : values[c];
}

class Estimator {
public:
  Estimator(const DataFreeOptions &options) : options(options) {}

  void run(func::FuncOp graph) {
    for (BlockArgument arg : graph.getBody().front().getArguments()) {
      auto type = dyn_cast<RankedTensorType>(arg.getType());
      if (!type || !type.getElementType().isF32())
        continue;
      // Uniform over the declared input range.
      double lo = options.inputMin, hi = options.inputMax;
      Moments m;
      m.mean = {(lo + hi) / 2};
      m.var = {(hi - lo) * (hi - lo) / 12};
      m.lo = lo;
      m.hi = hi;
      moments[arg] = m;
    }
    graph.walk([&](Operation *op) {
      if (op->getNumResults() != 1 || isa<InitializerOp, ConstantOp>(op))
        return;
      Value result = op->getResult(0);
      auto type = dyn_cast<RankedTensorType>(result.getType());
      if (!type || !type.getElementType().isF32())
        return;
      if (auto m = estimate(op))
        moments[result] = fit(*m, result);
    });
  }

  Range rangeOf(const Moments &m) const {
    Range r;
    for (size_t c = 0; c < m.channels(); ++c) {
      double s = std::sqrt(std::max(0.0, m.var[c]));
      r.min = std::min(r.min, float(m.mean[c] - options.sigmas * s));
      r.max = std::max(r.max, float(m.mean[c] + options.sigmas * s));
    }
    r.min = std::max(r.min, float(m.lo));
    r.max = std::min(r.max, float(m.hi));
    if (std::isfinite(m.lo) && std::isfinite(m.hi) && r.min > r.max) {
      r.min = float(m.lo);
      r.max = float(m.hi);
    }
    return r;
  }

  llvm::DenseMap<Value, Moments> moments;

private:
  const DataFreeOptions &options;

  const Moments *of(Value v) const {
    auto it = moments.find(v);
    return it == moments.end() ? nullptr : &it->second;
  }

  /// out[o] = bias[o] + sum over (i, k) of w[o, i, k] * in[i], per output
  /// channel of a [O, I/group, k...] weight.
  std::optional<Moments> linear(const Moments &in, const weights::F32Tensor &w,
                                const std::vector<float> &bias, int64_t group, bool transposed) {
    int64_t out = transposed ? w.dim(1) * group : w.dim(0);
    int64_t inPerGroup = transposed ? w.dim(0) / group : w.dim(1);
    int64_t taps = 1;
    for (int64_t d = 2; d < w.rank(); ++d)
      taps *= w.dim(d);
    if (in.channels() != 1 && int64_t(in.channels()) != inPerGroup * group)
      return std::nullopt;
    Moments m;
    m.mean.assign(out, 0);
    m.var.assign(out, 0);
    int64_t outPerGroup = out / group;
    for (int64_t o = 0; o < out; ++o) {
      int64_t g = o / outPerGroup;
      double mean = bias.empty() ? 0 : bias[o], var = 0;
      for (int64_t i = 0; i < inPerGroup; ++i) {
        size_t c = size_t(g * inPerGroup + i);
        double mi = channel(in.mean, c), vi = channel(in.var, c);
        for (int64_t k = 0; k < taps; ++k) {
          float wv = transposed
                         ? w.data[((g * inPerGroup + i) * w.dim(1) + o % outPerGroup) * taps + k]
                         : w.data[(o * inPerGroup + i) * taps + k];
          mean += wv * mi;
          var += double(wv) * wv * vi;
        }
      }
      m.mean[o] = mean;
      m.var[o] = var;
    }
    return m;
  }

  static std::optional<Moments> fromStats(Operation *op) {
    auto stats = weights::getOutputStats(op);
    if (!stats)
      stats = weights::batchNormOutputStats(op);
    if (!stats)
      return std::nullopt;
    Moments m;
    for (size_t c = 0; c < stats->mean.size(); ++c) {
      m.mean.push_back(stats->mean[c]);
      m.var.push_back(double(stats->std[c]) * stats->std[c]);
    }
    return m;
  }

  std::optional<Moments> estimate(Operation *op) {
    // What training measured comes first.
    if (auto m = fromStats(op))
      return m;
    auto input = [&](unsigned i) -> const Moments * {
      return i < op->getNumOperands() ? of(op->getOperand(i)) : nullptr;
    };
    if (auto conv = dyn_cast<ConvOp>(op)) {
      auto w = weights::getConstantF32(conv.getW());
      const Moments *in = input(0);
      if (!w || !in || w->rank() < 3)
        return std::nullopt;
      std::vector<float> bias;
      if (!isNoneValue(conv.getB()))
        if (auto b = weights::getConstantF32(conv.getB()))
          bias = b->data;
      return linear(*in, *w, bias, conv.getGroup().value_or(1), false);
    }
    if (isa<GemmOp, MatMulOp>(op)) {
      const Moments *in = input(0);
      auto w = weights::getConstantF32(op->getOperand(1));
      if (!in || !w || w->rank() != 2)
        return std::nullopt;
      auto gemm = dyn_cast<GemmOp>(op);
      if (gemm && (gemm.getTransA().value_or(0) ||
                   (gemm.getAlpha() && gemm.getAlpha()->convertToFloat() != 1.0f)))
        return std::nullopt;
      // As a 1x1 conv: weight [N, K].
      weights::F32Tensor wt;
      bool transB = gemm && gemm.getTransB().value_or(0);
      int64_t n = transB ? w->dim(0) : w->dim(1), k = transB ? w->dim(1) : w->dim(0);
      wt.shape = {n, k};
      wt.data.resize(n * k);
      for (int64_t o = 0; o < n; ++o)
        for (int64_t i = 0; i < k; ++i)
          wt.data[o * k + i] = transB ? w->data[o * k + i] : w->data[i * n + o];
      std::vector<float> bias;
      if (gemm && !isNoneValue(gemm.getC()))
        if (auto c = weights::getConstantF32(gemm.getC()); c && (c->size() == n || c->size() == 1))
          for (int64_t o = 0; o < n; ++o)
            bias.push_back(c->data[c->size() == 1 ? 0 : o]);
      Moments in2 = int64_t(in->channels()) == k || in->channels() == 1 ? *in : pooled(*in);
      auto m = linear(in2, wt, bias, 1, false);
      // A MatMul on [.., T, K] puts its channels last: one channel for all.
      if (m && isa<MatMulOp>(op) && channelsOf(op->getResult(0)) != n)
        return pooled(*m);
      return m;
    }
    if (isa<ReluOp>(op))
      return input(0) ? std::optional(clamp(*input(0), 0, INFINITY)) : std::nullopt;
    if (auto clip = dyn_cast<ClipOp>(op)) {
      if (!input(0))
        return std::nullopt;
      double lo = -INFINITY, hi = INFINITY;
      if (!isNoneValue(clip.getMin())) {
        auto v = weights::getScalarF32(clip.getMin());
        if (!v)
          return std::nullopt;
        lo = *v;
      }
      if (!isNoneValue(clip.getMax())) {
        auto v = weights::getScalarF32(clip.getMax());
        if (!v)
          return std::nullopt;
        hi = *v;
      }
      return clamp(*input(0), lo, std::max(lo, hi));
    }
    if (isa<AddOp, SubOp>(op)) {
      double sign = isa<SubOp>(op) ? -1 : 1;
      const Moments *a = input(0), *b = input(1);
      Value result = op->getResult(0);
      int64_t rank = cast<RankedTensorType>(result.getType()).getRank();
      auto constantTerm = [&](unsigned i) {
        return weights::channelValues(op->getOperand(i), rank,
                                      std::max<int64_t>(1, channelsOf(result)));
      };
      if (a && b) {
        Moments x = a->channels() == b->channels() ? *a : pooled(*a);
        Moments y = a->channels() == b->channels() ? *b : pooled(*b);
        for (size_t c = 0; c < x.channels(); ++c) {
          x.mean[c] += sign * y.mean[c];
          x.var[c] += y.var[c];
        }
        x.lo = sign > 0 ? a->lo + b->lo : a->lo - b->hi;
        x.hi = sign > 0 ? a->hi + b->hi : a->hi - b->lo;
        return x;
      }
      for (unsigned side = 0; side < 2; ++side) {
        const Moments *m = input(side);
        auto k = m ? constantTerm(1 - side) : std::nullopt;
        if (!m || !k)
          continue;
        Moments x = k->size() == m->channels() || m->channels() == 1 ? *m : pooled(*m);
        double s = side == 0 ? 1 : sign; // the moments' own sign
        double t = side == 0 ? sign : 1;
        size_t n = std::max(x.channels(), k->size());
        Moments y;
        for (size_t c = 0; c < n; ++c) {
          y.mean.push_back(s * channel(x.mean, c) + t * (*k)[k->size() == 1 ? 0 : c]);
          y.var.push_back(channel(x.var, c));
        }
        return y; // bounds shift per channel; drop them
      }
      return std::nullopt;
    }
    if (isa<MulOp>(op)) {
      Value result = op->getResult(0);
      int64_t rank = cast<RankedTensorType>(result.getType()).getRank();
      for (unsigned side = 0; side < 2; ++side) {
        const Moments *m = input(side);
        auto k = m ? weights::channelValues(op->getOperand(1 - side), rank,
                                            std::max<int64_t>(1, channelsOf(result)))
                   : std::nullopt;
        if (!m || !k)
          continue;
        Moments x = k->size() == m->channels() || m->channels() == 1 ? *m : pooled(*m);
        size_t n = std::max(x.channels(), k->size());
        Moments y;
        for (size_t c = 0; c < n; ++c) {
          double s = (*k)[k->size() == 1 ? 0 : c];
          y.mean.push_back(s * channel(x.mean, c));
          y.var.push_back(s * s * channel(x.var, c));
        }
        return y;
      }
      return std::nullopt;
    }
    if (isa<HardSwishOp>(op)) { // x * relu6(x + 3) / 6: near Relu, down to -3/8
      if (!input(0))
        return std::nullopt;
      Moments m = clamp(*input(0), 0, INFINITY);
      m.lo = -0.375;
      return m;
    }
    if (isa<SigmoidOp, HardSigmoidOp>(op)) {
      if (!input(0))
        return std::nullopt;
      Moments m = *input(0);
      for (size_t c = 0; c < m.channels(); ++c) {
        m.mean[c] = 1 / (1 + std::exp(-m.mean[c]));
        m.var[c] = std::min(m.var[c] / 16, 0.25); // slope at most 1/4
      }
      m.lo = 0;
      m.hi = 1;
      return m;
    }
    if (auto concat = dyn_cast<ConcatOp>(op)) {
      int64_t axis = concat.getAxis().value_or(0);
      Moments m;
      m.lo = INFINITY;
      m.hi = -INFINITY;
      bool perChannel = axis == 1 || axis == -3;
      std::vector<Moments> parts;
      for (Value in : op->getOperands()) {
        const Moments *p = of(in);
        if (!p)
          return std::nullopt;
        m.lo = std::min(m.lo, p->lo);
        m.hi = std::max(m.hi, p->hi);
        if (perChannel && int64_t(p->channels()) == channelsOf(in)) {
          m.mean.insert(m.mean.end(), p->mean.begin(), p->mean.end());
          m.var.insert(m.var.end(), p->var.begin(), p->var.end());
        } else if (perChannel && p->channels() == 1 && channelsOf(in) > 0) {
          m.mean.insert(m.mean.end(), channelsOf(in), p->mean[0]);
          m.var.insert(m.var.end(), channelsOf(in), p->var[0]);
        } else {
          perChannel = false;
        }
        parts.push_back(*p);
      }
      if (perChannel)
        return m;
      // Another axis: every part mixes into each channel.
      Moments all;
      for (const Moments &p : parts) {
        Moments q = pooled(p);
        all.mean.push_back(q.mean[0]);
        all.var.push_back(q.var[0]);
      }
      Moments merged = pooled(all);
      merged.lo = m.lo;
      merged.hi = m.hi;
      return merged;
    }
    // Ops that keep or select values: the same moments (pooling narrows the
    // spread, so keeping it is conservative).
    if (isa<MaxPoolOp, AveragePoolOp, GlobalAveragePoolOp, IdentityOp, DropoutOp, ReshapeOp,
            FlattenOp, SqueezeOp, UnsqueezeOp, TransposeOp, SliceOp, PadOp>(op) ||
        isResizeLike(op)) {
      const Moments *in = input(0);
      if (!in)
        return std::nullopt;
      Moments m = *in;
      if (isa<TransposeOp>(op) && m.channels() > 1)
        m = pooled(m);
      if (isa<PadOp>(op)) {
        m.lo = std::min(m.lo, 0.0);
        m.hi = std::max(m.hi, 0.0);
      }
      return m;
    }
    if (isa<SoftmaxOp>(op)) {
      Moments m;
      m.mean = {0.5};
      m.var = {0.25};
      m.lo = 0;
      m.hi = 1;
      return m;
    }
    return std::nullopt;
  }

  static bool isResizeLike(Operation *op) {
    StringRef name = op->getName().getStringRef();
    if (auto generic = op->getAttrOfType<StringAttr>("op_type"))
      name = generic.getValue();
    return name.ends_with("Resize") || name.ends_with("Upsample");
  }
};

} // namespace

DataFreeEstimate estimateRanges(func::FuncOp graph, const DataFreeOptions &options) {
  Estimator estimator(options);
  estimator.run(graph);
  DataFreeEstimate result;
  for (auto &[value, m] : estimator.moments) {
    Range r = estimator.rangeOf(m);
    if (r.valid())
      result.ranges[value] = r;
    if (m.channels() > 1 || channelsOf(value) == 1) {
      std::vector<float> means(m.mean.begin(), m.mean.end());
      result.means[value] = std::move(means);
    }
  }
  return result;
}

} // namespace refold::quant
