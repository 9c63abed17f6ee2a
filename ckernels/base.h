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
#else
#define RF_KERNEL static
#define RF_ALIGNED
#define RF_RESTRICT
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

/* Activations fused into a kernel's epilogue. */
enum {
  RF_ACT_NONE, RF_ACT_RELU, RF_ACT_CLIP, RF_ACT_LEAKY_RELU, RF_ACT_SIGMOID,
  RF_ACT_HARD_SIGMOID, RF_ACT_HARD_SWISH, RF_ACT_TANH
};

static inline float rf_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

static inline float rf_activate(float x, int act, float p0, float p1) {
  switch (act) {
  case RF_ACT_RELU: return x > 0.0f ? x : 0.0f;
  case RF_ACT_CLIP: return x < p0 ? p0 : (x > p1 ? p1 : x);
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
  case RF_ACT_TANH: return tanhf(x);
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
    for (i = 0; i < n; ++i) y[i] = y[i] < p0 ? p0 : (y[i] > p1 ? p1 : y[i]);
    return;
  default:
    for (i = 0; i < n; ++i) y[i] = rf_activate(y[i], act, p0, p1);
  }
}
