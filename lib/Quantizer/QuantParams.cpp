//===- QuantParams.cpp - scales, zero points, rounding -----------------------===//
//
// The arithmetic of ONNX's QuantizeLinear (round half to even, saturate)
// and the choice of scales: asymmetric per-tensor for activations,
// symmetric int8 per output channel for weights.
//
//===----------------------------------------------------------------------===//

#include "refold/Quantizer/Quantizer.h"

#include <algorithm>
#include <cmath>

namespace refold::quant {

int64_t quantizeValue(double x, double scale, int64_t zeroPoint, int64_t lo, int64_t hi) {
  double q = std::nearbyint(x / scale) + double(zeroPoint); // default rounding: half to even
  return int64_t(std::clamp(q, double(lo), double(hi)));
}

ActivationParams activationParams(Range range, bool isUnsigned) {
  double lo = std::min(0.0, double(range.min)), hi = std::max(0.0, double(range.max));
  double qmin = isUnsigned ? 0 : -128, qmax = isUnsigned ? 255 : 127;
  ActivationParams p;
  if (hi - lo < 1e-30) { // a constant zero tensor
    p.scale = 1.0f;
    p.zeroPoint = isUnsigned ? 0 : 0;
    return p;
  }
  p.scale = float((hi - lo) / (qmax - qmin));
  // The zero point that puts `lo` at qmin, rounded: 0.0 stays exact.
  double zp = std::nearbyint(qmin - lo / p.scale);
  p.zeroPoint = int32_t(std::clamp(zp, qmin, qmax));
  return p;
}

std::vector<float> weightScales(llvm::ArrayRef<float> w, llvm::ArrayRef<int64_t> shape,
                                int64_t axis, bool perChannel) {
  int64_t channels = perChannel ? shape[axis] : 1, inner = 1;
  for (size_t d = axis + 1; d < shape.size(); ++d)
    inner *= shape[d];
  std::vector<float> maxAbs(channels, 0.0f);
  for (size_t i = 0; i < w.size(); ++i) {
    int64_t c = perChannel ? (int64_t(i) / inner) % shape[axis] : 0;
    maxAbs[c] = std::max(maxAbs[c], std::fabs(w[i]));
  }
  std::vector<float> scales(channels);
  for (int64_t c = 0; c < channels; ++c)
    scales[c] = maxAbs[c] > 0 ? maxAbs[c] / 127.0f : 1.0f;
  return scales;
}

} // namespace refold::quant
