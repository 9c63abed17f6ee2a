/* refold C kernels: shared definitions. Every kernel is a static function
 * specialised by the emitter's constant arguments; nothing here allocates,
 * prints or keeps state. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__)
#define RF_KERNEL static __attribute__((unused))
#define RF_ALIGNED __attribute__((aligned(64)))
#define RF_RESTRICT __restrict__
/* Elementwise math must inline into its loops for them to vectorize. */
#define RF_INLINE static inline __attribute__((always_inline, unused))
/* Everything a kernel calls inlined into it, specialised on its constants. */
#define RF_FLATTEN __attribute__((flatten))
#else
#define RF_FLATTEN
#define RF_INLINE static inline
#define RF_KERNEL static
#define RF_ALIGNED
#define RF_RESTRICT
#endif

/* A small loop over registers unrolled whole, so that the arrays it
 * indexes stay in registers (GCC leaves loops with branches rolled). */
#if defined(__clang__)
#define RF_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define RF_UNROLL _Pragma("GCC unroll 8")
#else
#define RF_UNROLL
#endif

#if defined(__BYTE_ORDER__) && defined(__ORDER_BIG_ENDIAN__)
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#error "refold's emitted weights are little-endian"
#endif
#endif

/* GCC in ISO C mode (-std=c99) does not fuse a * b + c into one FMA; the
 * kernels are written to be fused (clang fuses within an expression). The
 * emitter pops this after the kernels. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=fast")
#endif

/* Sums in 16 lanes, so that the loop vectorizes under strict IEEE rules
 * (which forbid reordering a single running sum). */
RF_INLINE float rf_sum(const float *x, ptrdiff_t n) {
  float lane[16] = {0};
  ptrdiff_t k = 0;
  int j;
  for (; k + 16 <= n; k += 16)
    for (j = 0; j < 16; ++j) lane[j] += x[k + j];
  for (j = 0; j < 16 && k < n; ++k, ++j) lane[j] += x[k];
  for (j = 8; j > 0; j /= 2) {
    int i;
    for (i = 0; i < j; ++i) lane[i] += lane[i + j];
  }
  return lane[0];
}

/* The largest of n >= 1 floats (NaNs skipped, as `x > m ? x : m` does), in
 * 16 lanes so that the loop vectorizes. */
RF_INLINE float rf_max(const float *x, ptrdiff_t n) {
  float lane[16];
  ptrdiff_t k = 0;
  int j;
  for (j = 0; j < 16; ++j) lane[j] = -INFINITY;
  for (; k + 16 <= n; k += 16)
    for (j = 0; j < 16; ++j) lane[j] = x[k + j] > lane[j] ? x[k + j] : lane[j];
  for (j = 0; j < 16 && k < n; ++k, ++j) lane[j] = x[k] > lane[j] ? x[k] : lane[j];
  for (j = 8; j > 0; j /= 2) {
    int i;
    for (i = 0; i < j; ++i) lane[i] = lane[i + j] > lane[i] ? lane[i + j] : lane[i];
  }
  return lane[0];
}

/* The sum of (x - mean)^2, in 16 lanes. */
RF_INLINE float rf_sum_sq_dev(const float *x, ptrdiff_t n, float mean) {
  float lane[16] = {0};
  ptrdiff_t k = 0;
  int j;
  for (; k + 16 <= n; k += 16)
    for (j = 0; j < 16; ++j) lane[j] += (x[k + j] - mean) * (x[k + j] - mean);
  for (j = 0; j < 16 && k < n; ++k, ++j) lane[j] += (x[k] - mean) * (x[k] - mean);
  for (j = 8; j > 0; j /= 2) {
    int i;
    for (i = 0; i < j; ++i) lane[i] += lane[i + j];
  }
  return lane[0];
}

/* Activations fused into a kernel's epilogue. */
enum {
  RF_ACT_NONE, RF_ACT_RELU, RF_ACT_CLIP, RF_ACT_LEAKY_RELU, RF_ACT_SIGMOID,
  RF_ACT_HARD_SIGMOID, RF_ACT_HARD_SWISH, RF_ACT_TANH
};

/* exp without branches or calls, so that loops over it vectorize: 2^n times
 * a degree-6 polynomial on [-ln2/2, ln2/2] (Cephes' coefficients), n rounded
 * with the 1.5 * 2^23 trick and built in the exponent bits. Relative error
 * below 2e-7; inputs are clamped to [-87, 88]. */
RF_INLINE float rf_exp(float x) {
  float n, r, p, scale;
  int32_t bits;
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  bits = ((int32_t)n + 127) << 23;
  memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

/* erf: below 0.5 its Taylor series (relative error below 2e-8), above it
 * 1 - erfc(|x|), erfc = t exp(-x^2 + P(t)), t = 1 / (1 + |x| / 2) (Numerical
 * Recipes' erfcc: fractional error below 1.2e-7). */
RF_INLINE float rf_erf(float x) {
  float a = fabsf(x), t = 1.0f / (1.0f + 0.5f * a), p, y, x2 = x * x, s;
  s = -1.0f / 1320.0f;
  s = s * x2 + 1.0f / 216.0f;
  s = s * x2 - 1.0f / 42.0f;
  s = s * x2 + 1.0f / 10.0f;
  s = s * x2 - 1.0f / 3.0f;
  s = (s * x2 + 1.0f) * x * 1.12837916709551257f;
  p = 0.17087277f;
  p = p * t - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  y = 1.0f - t * rf_exp(-a * a + p);
  y = x < 0.0f ? -y : y;
  return a < 0.5f ? s : y;
}

RF_INLINE float rf_sigmoid(float x) { return 1.0f / (1.0f + rf_exp(-x)); }

/* tanh(x) = sign(x) (1 - 2 / (e^{2|x|} + 1)); below 2^-12 it is x. */
RF_INLINE float rf_tanh(float x) {
  float a = fabsf(x), t = 1.0f - 2.0f / (rf_exp(2.0f * a) + 1.0f);
  t = a < 2.44140625e-4f ? a : t;
  return x < 0.0f ? -t : t;
}

static inline float rf_activate(float x, int act, float p0, float p1) {
  switch (act) {
  case RF_ACT_RELU: return x > 0.0f ? x : 0.0f;
  case RF_ACT_CLIP:
    x = x < p0 ? p0 : x;
    return x > p1 ? p1 : x;
  case RF_ACT_LEAKY_RELU: return x >= 0.0f ? x : x * p0;
  case RF_ACT_SIGMOID: return rf_sigmoid(x);
  case RF_ACT_HARD_SIGMOID: {
    float y = p0 * x + p1;
    return y < 0.0f ? 0.0f : (y > 1.0f ? 1.0f : y);
  }
  case RF_ACT_HARD_SWISH: {
    float y = x / 6.0f + 0.5f;
    return x * (y < 0.0f ? 0.0f : (y > 1.0f ? 1.0f : y));
  }
  case RF_ACT_TANH: return rf_tanh(x);
  default: return x;
  }
}

/* y[i] = act(y[i]) over n floats, the activation chosen once per call. */
static inline void rf_activate_n(float *y, ptrdiff_t n, int act, float p0, float p1) {
  ptrdiff_t i;
  switch (act) {
  case RF_ACT_NONE: return;
  case RF_ACT_RELU:
    for (i = 0; i < n; ++i) y[i] = y[i] > 0.0f ? y[i] : 0.0f;
    return;
  case RF_ACT_CLIP:
    /* max then min, as ONNX (and numpy.clip) define it; two selects, so
     * that the loop vectorizes (a nested conditional does not). */
    for (i = 0; i < n; ++i) {
      float v = y[i];
      v = v < p0 ? p0 : v;
      y[i] = v > p1 ? p1 : v;
    }
    return;
  default:
    for (i = 0; i < n; ++i) y[i] = rf_activate(y[i], act, p0, p1);
  }
}

/* y[i] = act(x[i] + b + r[i]) (r may be NULL, or y itself) in one pass:
 * reading back what was just stored, to activate it, stalls the loads. */
RF_INLINE void rf_store_act_n(float *y, const float *x, const float *r, float b, ptrdiff_t n, int act,
                              float p0, float p1) {
  ptrdiff_t i;
  if (act != RF_ACT_RELU && act != RF_ACT_CLIP) {
    if (r)
      for (i = 0; i < n; ++i) y[i] = x[i] + b + r[i];
    else
      for (i = 0; i < n; ++i) y[i] = x[i] + b;
    rf_activate_n(y, n, act, p0, p1);
    return;
  }
  /* as rf_activate: Relu's NaN gives 0, Clip's stays NaN */
  if (act == RF_ACT_RELU) {
    if (r)
      for (i = 0; i < n; ++i) {
        float v = x[i] + b + r[i];
        y[i] = v > 0.0f ? v : 0.0f;
      }
    else
      for (i = 0; i < n; ++i) {
        float v = x[i] + b;
        y[i] = v > 0.0f ? v : 0.0f;
      }
    return;
  }
  for (i = 0; i < n; ++i) {
    float v = x[i] + b + (r ? r[i] : 0.0f);
    v = v < p0 ? p0 : v;
    y[i] = v > p1 ? p1 : v;
  }
}
