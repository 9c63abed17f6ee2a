//===- RangeMethods.cpp - histograms and the clipping range they suggest ----===//
//
// A min/max range lets one rare outlier set the step of every value in a
// tensor; clipping a little of the tail gives the bulk a finer step
// (quantization.md: onnxruntime's percentile/entropy calibrators, the MSE
// search of NNCF and TensorRT). The histogram is anchored at 0 with fixed
// bin count: when a later set reaches past it, the bin width doubles and
// neighbouring bins merge, so it is built in one streaming pass and never
// grows.
//
//===----------------------------------------------------------------------===//

#include "refold/Quantizer/Quantizer.h"

#include <algorithm>
#include <cmath>

namespace refold::quant {

std::optional<RangeMethod> parseRangeMethod(llvm::StringRef name) {
  if (name == "minmax")
    return RangeMethod::MinMax;
  if (name == "percentile")
    return RangeMethod::Percentile;
  if (name == "entropy")
    return RangeMethod::Entropy;
  if (name == "mse")
    return RangeMethod::MSE;
  return std::nullopt;
}

void Histogram::add(const interp::Tensor &t) {
  if (t.dtype() != interp::DType::F32)
    return;
  const float *p = t.data<float>();
  int64_t n = t.size();
  float maxAbs = 0;
  for (int64_t i = 0; i < n; ++i)
    if (std::isfinite(p[i]))
      maxAbs = std::max(maxAbs, std::fabs(p[i]));
  if (positive.empty()) {
    positive.assign(kBins, 0);
    negative.assign(kBins, 0);
  }
  if (width == 0 && maxAbs > 0)
    width = double(maxAbs) / (kBins - 1);
  while (width > 0 && maxAbs >= width * kBins) {
    // Double the width: bins 2i and 2i+1 become bin i.
    for (auto *bins : {&positive, &negative}) {
      for (int b = 0; b < kBins / 2; ++b)
        (*bins)[b] = (*bins)[2 * b] + (*bins)[2 * b + 1];
      std::fill(bins->begin() + kBins / 2, bins->end(), 0.0);
    }
    width *= 2;
  }
  for (int64_t i = 0; i < n; ++i) {
    float x = p[i];
    if (!std::isfinite(x))
      continue;
    int b = width > 0 ? std::min(kBins - 1, int(std::fabs(x) / width)) : 0;
    (x < 0 ? negative : positive)[b] += 1;
  }
}

namespace {

/// |x| counts: bin b covers [b * width, (b + 1) * width).
std::vector<double> magnitudes(const Histogram &h) {
  std::vector<double> m(Histogram::kBins);
  for (int b = 0; b < Histogram::kBins; ++b)
    m[b] = h.positive[b] + h.negative[b];
  return m;
}

/// The range [-t, t] cut down to what the tensor reached.
Range clipTo(const Range &seen, double t) {
  Range r;
  r.min = float(std::max(double(seen.min), -t));
  r.max = float(std::min(double(seen.max), t));
  return r;
}

Range percentileRange(const Histogram &h, const Range &seen, double percentile) {
  std::vector<double> m = magnitudes(h);
  double total = 0;
  for (double c : m)
    total += c;
  double keep = total * percentile / 100.0, sum = 0;
  for (int b = 0; b < Histogram::kBins; ++b) {
    sum += m[b];
    if (sum >= keep)
      return clipTo(seen, (b + 1) * h.width);
  }
  return seen;
}

/// Expected squared error of quantizing the histogram's values to 256
/// levels over `r`: rounding (step^2 / 12) inside, the clipped distance
/// outside. Values are taken at their bin's centre.
double quantizationError(const Histogram &h, const Range &r) {
  double lo = std::min(0.0, double(r.min)), hi = std::max(0.0, double(r.max));
  double step = (hi - lo) / 255.0, rounding = step * step / 12.0, err = 0;
  for (int b = 0; b < Histogram::kBins; ++b) {
    double x = (b + 0.5) * h.width;
    for (double v : {x, -x}) {
      double count = v > 0 ? h.positive[b] : h.negative[b];
      if (count == 0)
        continue;
      double d = v > hi ? v - hi : v < lo ? lo - v : 0;
      err += count * (d > 0 ? d * d : rounding);
    }
  }
  return err;
}

Range mseRange(const Histogram &h, const Range &seen) {
  // Candidate thresholds every 1/256 of the reach; the last is min/max.
  double reach = std::max(std::fabs(double(seen.min)), std::fabs(double(seen.max)));
  Range best = seen;
  double bestErr = quantizationError(h, seen);
  for (int k = 16; k < 256; ++k) {
    Range r = clipTo(seen, reach * k / 256.0);
    double e = quantizationError(h, r);
    if (e < bestErr) {
      bestErr = e;
      best = r;
    }
  }
  return best;
}

/// TensorRT's entropy calibration on |x|: the threshold whose quantization
/// of the clipped distribution diverges least (KL) from it, at 128 levels a
/// side, or 256 for a tensor with no negative values (all 8 bits on one side).
Range entropyRange(const Histogram &h, const Range &seen) {
  const int kLevels = seen.min >= 0 ? 256 : 128;
  std::vector<double> m = magnitudes(h);
  int used = Histogram::kBins;
  while (used > kLevels && m[used - 1] == 0)
    --used;
  if (used <= kLevels)
    return seen;
  double bestKl = INFINITY;
  int bestBins = used;
  std::vector<double> p, q;
  for (int bins = kLevels; bins <= used; bins += std::max(1, (used - kLevels) / 256)) {
    p.assign(m.begin(), m.begin() + bins);
    for (int b = bins; b < used; ++b)
      p[bins - 1] += m[b]; // the clipped tail lands on the last level
    // q: the unclipped bins merged into kLevels levels, each level spread
    // back evenly over its non-empty bins.
    q.assign(bins, 0);
    for (int l = 0; l < kLevels; ++l) {
      int begin = l * bins / kLevels, end = (l + 1) * bins / kLevels;
      double sum = 0;
      int nonEmpty = 0;
      for (int b = begin; b < end; ++b) {
        sum += m[b];
        nonEmpty += m[b] > 0;
      }
      for (int b = begin; b < end; ++b)
        if (m[b] > 0)
          q[b] = sum / nonEmpty;
    }
    double pSum = 0, qSum = 0;
    for (int b = 0; b < bins; ++b) {
      pSum += p[b];
      qSum += q[b];
    }
    double kl = 0;
    for (int b = 0; b < bins; ++b) {
      if (p[b] == 0)
        continue;
      double pb = p[b] / pSum, qb = q[b] / qSum;
      kl += pb * std::log(pb / std::max(qb, 1e-10)); // a clipped tail q cannot hold: a large cost
    }
    if (kl < bestKl) {
      bestKl = kl;
      bestBins = bins;
    }
  }
  return clipTo(seen, bestBins * h.width);
}

} // namespace

Range chooseRange(const Range &seen, const Histogram &h, const RangeOptions &options) {
  if (options.method == RangeMethod::MinMax || !seen.valid() || h.width == 0 ||
      h.positive.empty())
    return seen;
  Range r = seen;
  switch (options.method) {
  case RangeMethod::MinMax:
    break;
  case RangeMethod::Percentile:
    r = percentileRange(h, seen, options.percentile);
    break;
  case RangeMethod::Entropy:
    r = entropyRange(h, seen);
    break;
  case RangeMethod::MSE:
    r = mseRange(h, seen);
    break;
  }
  return r.valid() ? r : seen;
}

} // namespace refold::quant
