/* Elementwise float ops. Broadcasting is described by the emitter as up to
 * RF_MAX_RANK output dims with each operand's element strides (0 where it
 * broadcasts); the innermost loop picks a contiguous or scalar form. */
#define RF_MAX_RANK 6

enum { RF_ADD, RF_SUB, RF_MUL, RF_DIV, RF_POW, RF_MAX, RF_MIN };

static inline float rf_binary_op(int op, float a, float b) {
  switch (op) {
  case RF_ADD: return a + b;
  case RF_SUB: return a - b;
  case RF_MUL: return a * b;
  case RF_DIV: return a / b;
  case RF_POW: return powf(a, b);
  case RF_MAX: return a > b || a != a ? a : b;
  default: return a < b || a != a ? a : b;
  }
}

#define RF_BINARY_LOOP(EXPR)                                                                       \
  for (i = 0; i < n; ++i) {                                                                        \
    float av = a[i * as], bv = b[i * bs];                                                          \
    out[i] = EXPR;                                                                                 \
  }

static inline void rf_binary_row(int op, float *out, const float *a, ptrdiff_t as, const float *b,
                                 ptrdiff_t bs, ptrdiff_t n) {
  ptrdiff_t i;
  switch (op) {
  case RF_ADD: RF_BINARY_LOOP(av + bv) break;
  case RF_SUB: RF_BINARY_LOOP(av - bv) break;
  case RF_MUL: RF_BINARY_LOOP(av * bv) break;
  case RF_DIV: RF_BINARY_LOOP(av / bv) break;
  default: RF_BINARY_LOOP(rf_binary_op(op, av, bv)) break;
  }
}

/* shape: output dims (rank >= 1); as, bs: element strides of a and b. */
RF_KERNEL void rf_binary(int op, float *out, const float *a, const float *b, int rank,
                         const ptrdiff_t *shape, const ptrdiff_t *as, const ptrdiff_t *bs, int act,
                         float p0, float p1) {
  ptrdiff_t idx[RF_MAX_RANK] = {0}, rows = 1, r, inner = shape[rank - 1];
  int d;
  for (d = 0; d < rank - 1; ++d) rows *= shape[d];
  for (r = 0; r < rows; ++r) {
    ptrdiff_t ao = 0, bo = 0;
    for (d = 0; d < rank - 1; ++d) {
      ao += idx[d] * as[d];
      bo += idx[d] * bs[d];
    }
    rf_binary_row(op, out + r * inner, a + ao, as[rank - 1], b + bo, bs[rank - 1], inner);
    rf_activate_n(out + r * inner, inner, act, p0, p1);
    for (d = rank - 2; d >= 0; --d) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}

enum {
  RF_RELU, RF_SIGMOID, RF_TANH, RF_ERF, RF_SQRT, RF_EXP, RF_LOG, RF_NEG, RF_ABS, RF_RECIPROCAL,
  RF_CLIP, RF_LEAKY_RELU, RF_HARD_SIGMOID, RF_HARD_SWISH, RF_GELU, RF_GELU_TANH, RF_SOFTPLUS,
  RF_FLOOR, RF_CEIL, RF_ELU, RF_SILU, RF_COPY
};

RF_KERNEL void rf_unary(int op, float *out, const float *x, ptrdiff_t n, float p0, float p1) {
  ptrdiff_t i;
  switch (op) {
  case RF_RELU: for (i = 0; i < n; ++i) out[i] = x[i] > 0.0f ? x[i] : 0.0f; break;
  case RF_SIGMOID: for (i = 0; i < n; ++i) out[i] = rf_sigmoid(x[i]); break;
  case RF_TANH: for (i = 0; i < n; ++i) out[i] = rf_tanh(x[i]); break;
  case RF_ERF: for (i = 0; i < n; ++i) out[i] = rf_erf(x[i]); break;
  case RF_SQRT: for (i = 0; i < n; ++i) out[i] = sqrtf(x[i]); break;
  case RF_EXP: for (i = 0; i < n; ++i) out[i] = expf(x[i]); break;
  case RF_LOG: for (i = 0; i < n; ++i) out[i] = logf(x[i]); break;
  case RF_NEG: for (i = 0; i < n; ++i) out[i] = -x[i]; break;
  case RF_ABS: for (i = 0; i < n; ++i) out[i] = fabsf(x[i]); break;
  case RF_RECIPROCAL: for (i = 0; i < n; ++i) out[i] = 1.0f / x[i]; break;
  case RF_CLIP: /* max then min, in two selects that vectorize */
    for (i = 0; i < n; ++i) {
      float v = x[i] < p0 ? p0 : x[i];
      out[i] = v > p1 ? p1 : v;
    }
    break;
  case RF_LEAKY_RELU: for (i = 0; i < n; ++i) out[i] = x[i] >= 0.0f ? x[i] : p0 * x[i]; break;
  case RF_HARD_SIGMOID: for (i = 0; i < n; ++i) out[i] = rf_activate(x[i], RF_ACT_HARD_SIGMOID, p0, p1); break;
  case RF_HARD_SWISH: for (i = 0; i < n; ++i) out[i] = rf_activate(x[i], RF_ACT_HARD_SWISH, p0, p1); break;
  case RF_GELU: for (i = 0; i < n; ++i) out[i] = 0.5f * x[i] * (1.0f + rf_erf(x[i] * 0.70710678118654752f)); break;
  case RF_GELU_TANH:
    for (i = 0; i < n; ++i)
      out[i] = 0.5f * x[i] * (1.0f + rf_tanh(0.79788456080286536f * (x[i] + 0.044715f * x[i] * x[i] * x[i])));
    break;
  case RF_SOFTPLUS: for (i = 0; i < n; ++i) out[i] = x[i] > 20.0f ? x[i] : log1pf(expf(x[i])); break;
  case RF_FLOOR: for (i = 0; i < n; ++i) out[i] = floorf(x[i]); break;
  case RF_CEIL: for (i = 0; i < n; ++i) out[i] = ceilf(x[i]); break;
  case RF_ELU: for (i = 0; i < n; ++i) out[i] = x[i] >= 0.0f ? x[i] : p0 * (expf(x[i]) - 1.0f); break;
  case RF_SILU: for (i = 0; i < n; ++i) out[i] = x[i] * rf_sigmoid(x[i]); break;
  default: if (out != x) memmove(out, x, sizeof(float) * (size_t)n); break;
  }
}

/* y[o][c][i] = x[o][c][i] * scale[c] + shift[c]: an unfolded BatchNormalization. */
RF_KERNEL void rf_channel_affine(float *out, const float *x, ptrdiff_t outer, ptrdiff_t channels,
                                 ptrdiff_t inner, const float *scale, const float *shift) {
  ptrdiff_t o, c, i;
  for (o = 0; o < outer; ++o)
    for (c = 0; c < channels; ++c) {
      const float *xs = x + (o * channels + c) * inner;
      float *ys = out + (o * channels + c) * inner;
      float s = scale[c], t = shift[c];
      for (i = 0; i < inner; ++i) ys[i] = xs[i] * s + t;
    }
}

/* BatchNormalization with statistics read at run time. */
RF_KERNEL void rf_batchnorm(float *out, const float *x, ptrdiff_t outer, ptrdiff_t channels,
                            ptrdiff_t inner, const float *scale, const float *bias, const float *mean,
                            const float *var, float epsilon) {
  ptrdiff_t o, c, i;
  for (o = 0; o < outer; ++o)
    for (c = 0; c < channels; ++c) {
      const float *xs = x + (o * channels + c) * inner;
      float *ys = out + (o * channels + c) * inner;
      float s = scale[c] / sqrtf(var[c] + epsilon), t = bias[c] - mean[c] * s;
      for (i = 0; i < inner; ++i) ys[i] = xs[i] * s + t;
    }
}
