/* int8: QuantizeLinear and DequantizeLinear, and convolutions and matrix
 * products on integers (uint8 or int8 activations, int8 weights, int32
 * accumulators) with their requantization to the output's scale.
 *
 * The fast kernels (rf_qconv2d, rf_qmatmul) read weights the emitter packed
 * in panels of RF_QMR output channels, 4 consecutive inputs of one channel
 * per int32, and activations packed the same way per pixel ([K/4][pixels]
 * int32), so that one step is a 4-way dot product per lane: VPDPBUSD with
 * AVX-512 VNNI or AVX-VNNI, SDOT on ARM with the dot-product extension, a
 * widening multiply-add elsewhere. Activations are read as unsigned
 * (int8 ones flipped by +128, which the emitter's bias compensates), as
 * VPDPBUSD wants; the SDOT path flips them back to signed and adds
 * 128 x the weights' sums. The activation zero point is folded into the
 * int32 bias at generation time (bias - zp x column sums of the weights),
 * so padding is written as the zero point and nothing is subtracted in the
 * inner loop.
 *
 * Requantization: float (acc x scale, rounded half to even, saturated, as
 * onnxruntime does) or fixed (an int32 multiplier and a right shift, for
 * CPUs without an FPU). */

enum { RF_QT_U8, RF_QT_S8, RF_QT_S32 };

RF_INLINE int32_t rf_qload(const void *p, int type, ptrdiff_t i) {
  switch (type) {
  case RF_QT_U8: return ((const uint8_t *)p)[i];
  case RF_QT_S8: return ((const int8_t *)p)[i];
  default: return ((const int32_t *)p)[i];
  }
}

/* Round half to even for |v| <= 2^22: adding 1.5 x 2^23 leaves no fraction
 * bits, and IEEE round-to-nearest-even does the rest (do not compile with
 * -ffast-math, which folds it away). */
RF_INLINE float rf_round_even(float v) { return (v + 12582912.0f) - 12582912.0f; }

/* v clamped to [lo, hi] (NaN to lo) and rounded half to even. */
RF_INLINE int32_t rf_qround(float v, float lo, float hi) {
  v = v >= lo ? v : lo;
  v = v <= hi ? v : hi;
  return (int32_t)rf_round_even(v);
}

/* y = saturate(round(x / scale) + zero_point) over [outer][len][inner],
 * scale and zero point per index of len (per_axis) or one for all. */
RF_KERNEL void rf_quantize(const float *RF_RESTRICT x, void *RF_RESTRICT y, int type, ptrdiff_t outer,
                           ptrdiff_t len, ptrdiff_t inner, const float *scale, const void *zp,
                           int per_axis) {
  ptrdiff_t o, c, i;
  int32_t lo = type == RF_QT_U8 ? 0 : -128, hi = type == RF_QT_U8 ? 255 : 127;
  for (o = 0; o < outer; ++o)
    for (c = 0; c < len; ++c) {
      ptrdiff_t base = (o * len + c) * inner, pc = per_axis ? c : 0;
      float s = scale[pc];
      int32_t z = zp ? rf_qload(zp, type, pc) : 0;
      float flo = (float)(lo - z), fhi = (float)(hi - z);
      const float *xr = x + base;
      if (type == RF_QT_U8) {
        uint8_t *q = (uint8_t *)y + base;
        for (i = 0; i < inner; ++i) q[i] = (uint8_t)(rf_qround(xr[i] / s, flo, fhi) + z);
      } else {
        int8_t *q = (int8_t *)y + base;
        for (i = 0; i < inner; ++i) q[i] = (int8_t)(rf_qround(xr[i] / s, flo, fhi) + z);
      }
    }
}

/* y = (x - zero_point) * scale, laid out as rf_quantize's. */
RF_KERNEL void rf_dequantize(const void *RF_RESTRICT x, int type, float *RF_RESTRICT y, ptrdiff_t outer,
                             ptrdiff_t len, ptrdiff_t inner, const float *scale, const void *zp,
                             int per_axis) {
  ptrdiff_t o, c, i;
  for (o = 0; o < outer; ++o)
    for (c = 0; c < len; ++c) {
      ptrdiff_t base = (o * len + c) * inner, pc = per_axis ? c : 0;
      float s = scale[pc];
      int32_t z = zp ? rf_qload(zp, type, pc) : 0;
      float *yr = y + base;
      if (type == RF_QT_U8) {
        const uint8_t *q = (const uint8_t *)x + base;
        for (i = 0; i < inner; ++i) yr[i] = (float)(q[i] - z) * s;
      } else if (type == RF_QT_S8) {
        const int8_t *q = (const int8_t *)x + base;
        for (i = 0; i < inner; ++i) yr[i] = (float)(q[i] - z) * s;
      } else {
        /* int32 (biases): in double, exact before the one rounding */
        const int32_t *q = (const int32_t *)x + base;
        for (i = 0; i < inner; ++i) yr[i] = (float)((double)q[i] - (double)z) * s;
      }
    }
}

/* How accumulators become outputs. */
typedef struct {
  const int32_t *bias;  /* per output channel: the int32 bias, zero points folded in */
  const int32_t *wsum;  /* per output channel: sum of the int8 weights (for SDOT) */
  const float *scale;   /* float mode: x_scale * w_scale / y_scale per output channel */
  const int32_t *mult;  /* fixed mode (scale NULL): Q31 multiplier per output channel */
  const int32_t *shift; /* fixed mode: right shift after the product, 1..62 */
  int32_t zp, lo, hi;   /* output zero point and range */
  int type;             /* RF_QT_U8, RF_QT_S8, or RF_QT_S32 (the raw accumulator) */
} rf_requant;

/* Requantizes n accumulators of output channel c (plus its bias and `fix`)
 * into y[0], y[ys], ... */
RF_INLINE void rf_qstore(const int32_t *RF_RESTRICT acc, ptrdiff_t n, ptrdiff_t c, int32_t fix,
                         const rf_requant *rq, void *RF_RESTRICT y, ptrdiff_t ys) {
  ptrdiff_t j;
  int32_t b = (rq->bias ? rq->bias[c] : 0) + fix;
  int32_t zp = rq->zp;
  if (rq->type == RF_QT_S32) {
    int32_t *o = (int32_t *)y;
    for (j = 0; j < n; ++j) o[j * ys] = acc[j] + b;
    return;
  }
  if (rq->scale) {
    float s = rq->scale[c], flo = (float)(rq->lo - zp), fhi = (float)(rq->hi - zp);
    if (rq->type == RF_QT_U8) {
      uint8_t *o = (uint8_t *)y;
      for (j = 0; j < n; ++j) o[j * ys] = (uint8_t)(rf_qround((float)(acc[j] + b) * s, flo, fhi) + zp);
    } else {
      int8_t *o = (int8_t *)y;
      for (j = 0; j < n; ++j) o[j * ys] = (int8_t)(rf_qround((float)(acc[j] + b) * s, flo, fhi) + zp);
    }
    return;
  }
  {
    int64_t m = rq->mult[c], lo = rq->lo - zp, hi = rq->hi - zp;
    int sh = rq->shift[c];
    int64_t half = (int64_t)1 << (sh - 1);
    for (j = 0; j < n; ++j) {
      /* rounds half up; >> of a negative value is arithmetic on GCC and Clang */
      int64_t v = ((int64_t)(acc[j] + b) * m + half) >> sh;
      v = v < lo ? lo : (v > hi ? hi : v);
      if (rq->type == RF_QT_U8)
        ((uint8_t *)y)[j * ys] = (uint8_t)(v + zp);
      else
        ((int8_t *)y)[j * ys] = (int8_t)(v + zp);
    }
  }
}

/* The 4-way dot product: the tile's width RF_QNP (pixels) in vectors of
 * RF_QVW int32 lanes. */
#define RF_QMR 4
#if defined(__GNUC__) && !defined(RF_SCALAR)
#if defined(__AVX512F__)
#define RF_QVW 16
#elif defined(__AVX__)
#define RF_QVW 8
#else
#define RF_QVW 4
#endif
#define RF_QNV 4
typedef int32_t rf_qv __attribute__((vector_size(RF_QVW * sizeof(int32_t))));
typedef uint32_t rf_qvu __attribute__((vector_size(RF_QVW * sizeof(int32_t))));
typedef int8_t rf_qvb __attribute__((vector_size(RF_QVW * sizeof(int32_t))));
#if defined(__clang__)
#define RF_VPDPBUSD512 __builtin_ia32_vpdpbusd512
#define RF_VPDPBUSD256 __builtin_ia32_vpdpbusd256
#else
#define RF_VPDPBUSD512 __builtin_ia32_vpdpbusd_v16si
#define RF_VPDPBUSD256 __builtin_ia32_vpdpbusd_v8si
#endif
#if RF_QVW == 16 && defined(__AVX512VNNI__)
#define RF_QDOT_VNNI 1
RF_INLINE rf_qv rf_qdot(rf_qv acc, rf_qv a, int32_t w) { return RF_VPDPBUSD512(acc, a, (rf_qv){0} + w); }
#elif RF_QVW == 8 && (defined(__AVXVNNI__) || (defined(__AVX512VNNI__) && defined(__AVX512VL__)))
#define RF_QDOT_VNNI 1
RF_INLINE rf_qv rf_qdot(rf_qv acc, rf_qv a, int32_t w) { return RF_VPDPBUSD256(acc, a, (rf_qv){0} + w); }
#elif RF_QVW == 4 && defined(__aarch64__) && defined(__ARM_FEATURE_DOTPROD)
/* SDOT multiplies signed by signed: the caller flips the activations. */
#define RF_QDOT_SDOT 1
RF_INLINE rf_qv rf_qdot(rf_qv acc, rf_qv a, int32_t w) {
  rf_qv wv = (rf_qv){0} + w;
  __asm__("sdot %0.4s, %1.16b, %2.16b" : "+w"(acc) : "w"(a), "w"(wv));
  return acc;
}
#else
/* Unsigned bytes of a by signed bytes of w, widened to int32. */
RF_INLINE rf_qv rf_qdot(rf_qv acc, rf_qv a, int32_t w) {
  rf_qvu u = (rf_qvu)a;
  int32_t w0 = ((w & 255) ^ 128) - 128, w1 = (((w >> 8) & 255) ^ 128) - 128;
  int32_t w2 = (((w >> 16) & 255) ^ 128) - 128, w3 = (((w >> 24) & 255) ^ 128) - 128;
  return acc + (rf_qv)(u & 255u) * w0 + (rf_qv)((u >> 8) & 255u) * w1 +
         (rf_qv)((u >> 16) & 255u) * w2 + (rf_qv)(u >> 24) * w3;
}
#endif
#define RF_QNP (RF_QVW * RF_QNV)

/* acc[r][p] = sum over k4 of dot4(col[k4 * ldc + p], w[k4 * RF_QMR + r]). */
static inline void rf_qtile(ptrdiff_t K4, const int32_t *RF_RESTRICT w, const int32_t *RF_RESTRICT col,
                            ptrdiff_t ldc, int32_t out[RF_QMR][RF_QNP]) {
  rf_qv c[RF_QMR][RF_QNV];
  ptrdiff_t k;
  int r, u;
  for (r = 0; r < RF_QMR; ++r)
    for (u = 0; u < RF_QNV; ++u) c[r][u] = (rf_qv){0};
  for (k = 0; k < K4; ++k) {
    rf_qv a[RF_QNV];
    for (u = 0; u < RF_QNV; ++u) {
      memcpy(&a[u], col + k * ldc + u * RF_QVW, sizeof a[u]);
#if defined(RF_QDOT_SDOT)
      a[u] ^= (rf_qv){0} + (int32_t)0x80808080u;
#endif
    }
    for (r = 0; r < RF_QMR; ++r) {
      int32_t wr = w[k * RF_QMR + r];
      for (u = 0; u < RF_QNV; ++u) c[r][u] = rf_qdot(c[r][u], a[u], wr);
    }
  }
  for (r = 0; r < RF_QMR; ++r)
    for (u = 0; u < RF_QNV; ++u) memcpy(&out[r][u * RF_QVW], &c[r][u], sizeof c[r][u]);
}
#else
#define RF_QNP 16
static inline void rf_qtile(ptrdiff_t K4, const int32_t *RF_RESTRICT w, const int32_t *RF_RESTRICT col,
                            ptrdiff_t ldc, int32_t out[RF_QMR][RF_QNP]) {
  ptrdiff_t k;
  int r, p, j;
  for (r = 0; r < RF_QMR; ++r)
    for (p = 0; p < RF_QNP; ++p) out[r][p] = 0;
  for (k = 0; k < K4; ++k) {
    const uint8_t *a = (const uint8_t *)(col + k * ldc);
    const int8_t *wk = (const int8_t *)(w + k * RF_QMR);
    for (r = 0; r < RF_QMR; ++r)
      for (p = 0; p < RF_QNP; ++p) {
        int32_t s = 0;
        for (j = 0; j < 4; ++j) s += (int32_t)a[p * 4 + j] * wk[r * 4 + j];
        out[r][p] += s;
      }
  }
}
#endif

/* The SDOT path reads activations as signed: 128 x the weights' sum back. */
#if defined(RF_QDOT_SDOT)
#define RF_QDOT_FIX 128
#else
#define RF_QDOT_FIX 0
#endif

/* Four bytes of four rows (planes) at each position, as one int32 per
 * position: row 0 in the low byte, flipped by `flip` (0x80 for int8). */
RF_INLINE void rf_qinterleave4(const uint8_t *r0, const uint8_t *r1, const uint8_t *r2,
                               const uint8_t *r3, ptrdiff_t n, uint32_t flip, int32_t *RF_RESTRICT out) {
  ptrdiff_t p;
  for (p = 0; p < n; ++p)
    out[p] = (int32_t)(((uint32_t)r0[p] | (uint32_t)r1[p] << 8 | (uint32_t)r2[p] << 16 |
                        (uint32_t)r3[p] << 24) ^ flip);
}

/* The packed tile's rows for k in [0, K): k = ci * kh * kw + ky * kw + kx
 * of group channels xg, output rows [oy0, oy0 + rows), each row of the
 * im2col matrix t pixels wide (padded to tp with the zero point); then 4 by
 * 4 interleaved into col ([K4][tp] int32). */
RF_INLINE void rf_qpack_conv(const uint8_t *xg, const rf_conv_shape *s, int K, int K4, int oy0,
                             int rows, ptrdiff_t tp, uint8_t zpu, uint32_t flip, uint8_t *plain,
                             int32_t *col) {
  int taps = s->kh * s->kw, k, oy, ox;
  ptrdiff_t t = (ptrdiff_t)rows * s->ow;
  uint8_t pad = (uint8_t)(zpu ^ (flip & 255));
  int pointwise = taps == 1 && s->sh == 1 && s->sw == 1 && s->pt == 0 && s->pl == 0 &&
                  s->h == s->oh && s->w == s->ow;
  for (k = 0; k < K4 * 4; k += 4) {
    const uint8_t *rp[4];
    int j;
    for (j = 0; j < 4; ++j) {
      int kk = k + j;
      uint8_t *dst = plain + (ptrdiff_t)j * tp;
      if (kk >= K) { /* meets zero weights: any value does, as long as it is set */
        memset(dst, pad, (size_t)tp);
        rp[j] = dst;
        continue;
      }
      if (pointwise && t == tp) {
        rp[j] = xg + (ptrdiff_t)kk * s->h * s->w + (ptrdiff_t)oy0 * s->ow;
        continue;
      }
      {
        int ci = kk / taps, ky = (kk % taps) / s->kw, kx = kk % s->kw;
        const uint8_t *plane = xg + (ptrdiff_t)ci * s->h * s->w;
        for (oy = 0; oy < rows; ++oy) {
          uint8_t *d = dst + (ptrdiff_t)oy * s->ow;
          int iy = (oy0 + oy) * s->sh - s->pt + ky * s->dh;
          int off = kx * s->dw - s->pl, lo, hi;
          const uint8_t *src;
          if (iy < 0 || iy >= s->h) {
            memset(d, pad, (size_t)s->ow);
            continue;
          }
          src = plane + (ptrdiff_t)iy * s->w;
          /* ox in [lo, hi) reads inside the row */
          lo = off < 0 ? (-off + s->sw - 1) / s->sw : 0;
          hi = s->w - off > 0 ? (s->w - off + s->sw - 1) / s->sw : 0;
          if (hi > s->ow) hi = s->ow;
          if (lo > hi) lo = hi;
          for (ox = 0; ox < lo; ++ox) d[ox] = pad;
          if (s->sw == 1)
            memcpy(d + lo, src + lo + off, (size_t)(hi - lo));
          else
            for (ox = lo; ox < hi; ++ox) d[ox] = src[ox * s->sw + off];
          for (ox = hi; ox < s->ow; ++ox) d[ox] = pad;
        }
        if (tp > t) memset(dst + t, pad, (size_t)(tp - t));
        rp[j] = dst;
      }
    }
    rf_qinterleave4(rp[0], rp[1], rp[2], rp[3], tp, flip, col + (ptrdiff_t)(k / 4) * tp);
  }
}


/* Conv on integers, NCHW: x uint8 or int8 (x_type), weights packed by the
 * emitter ([group][channel block][K4][RF_QMR] int32), output requantized
 * per channel. Tiles of `rows` output rows are packed into scratch
 * (4 x tile bytes of plain rows, then K4 x tile int32). */
RF_KERNEL RF_FLATTEN void rf_qconv2d(const void *x, int x_type, void *y, const int32_t *wp,
                                     const rf_conv_shape *s, int rows, uint8_t zpu,
                                     const rf_requant *rq, unsigned char *scratch) {
  int cg = s->c / s->groups, mg = s->m / s->groups, K = cg * s->kh * s->kw, K4 = (K + 3) / 4;
  int mb = (mg + RF_QMR - 1) / RF_QMR, n, g, oy0, b, r;
  uint32_t flip = x_type == RF_QT_S8 ? 0x80808080u : 0;
  ptrdiff_t ohw = (ptrdiff_t)s->oh * s->ow, tmax = ((ptrdiff_t)rows * s->ow + RF_QNP - 1) / RF_QNP * RF_QNP;
  uint8_t *plain = scratch;
  int32_t *col = (int32_t *)(void *)(scratch + ((4 * tmax + 63) / 64) * 64);
  size_t ysize = rq->type == RF_QT_S32 ? 4 : 1;
  for (n = 0; n < s->n; ++n)
    for (g = 0; g < s->groups; ++g) {
      const uint8_t *xg = (const uint8_t *)x + ((ptrdiff_t)n * s->c + (ptrdiff_t)g * cg) * s->h * s->w;
      for (oy0 = 0; oy0 < s->oh; oy0 += rows) {
        int nr = s->oh - oy0 < rows ? s->oh - oy0 : rows;
        ptrdiff_t t = (ptrdiff_t)nr * s->ow, tp = (t + RF_QNP - 1) / RF_QNP * RF_QNP, p;
        rf_qpack_conv(xg, s, K, K4, oy0, nr, tp, zpu, flip, plain, col);
        for (b = 0; b < mb; ++b) {
          const int32_t *wpanel = wp + ((ptrdiff_t)g * mb + b) * K4 * RF_QMR;
          for (p = 0; p < t; p += RF_QNP) {
            int32_t acc[RF_QMR][RF_QNP];
            ptrdiff_t np = t - p < RF_QNP ? t - p : RF_QNP;
            rf_qtile(K4, wpanel, col + p, tp, acc);
            for (r = 0; r < RF_QMR && b * RF_QMR + r < mg; ++r) {
              ptrdiff_t ch = (ptrdiff_t)g * mg + b * RF_QMR + r;
              ptrdiff_t at = ((ptrdiff_t)n * s->m + ch) * ohw + (ptrdiff_t)oy0 * s->ow + p;
              rf_qstore(acc[r], np, ch, RF_QDOT_FIX * (rq->wsum ? rq->wsum[ch] : 0), rq,
                        (unsigned char *)y + at * ysize, 1);
            }
          }
        }
      }
    }
}

/* Y[M x N] = A[M x K] B[K x N] on integers: A's rows uint8 or int8
 * (a_type), B packed by the emitter as rf_qconv2d's weights (N channels),
 * Y row-major. Tiles of `rows` rows of A are packed into scratch. */
RF_KERNEL RF_FLATTEN void rf_qmatmul(const void *a, int a_type, void *y, const int32_t *wp, ptrdiff_t M,
                                     int K, ptrdiff_t N, ptrdiff_t rows, const rf_requant *rq,
                                     unsigned char *scratch) {
  int K4 = (K + 3) / 4, mb = (int)((N + RF_QMR - 1) / RF_QMR), b, r, k;
  uint32_t flip = a_type == RF_QT_S8 ? 0x80808080u : 0;
  int32_t *col = (int32_t *)(void *)scratch;
  size_t ysize = rq->type == RF_QT_S32 ? 4 : 1;
  ptrdiff_t m0, p, i;
  for (m0 = 0; m0 < M; m0 += rows) {
    ptrdiff_t t = M - m0 < rows ? M - m0 : rows, tp = (t + RF_QNP - 1) / RF_QNP * RF_QNP;
    const uint8_t *ab = (const uint8_t *)a + m0 * K;
    for (k = 0; k < K4; ++k)
      for (i = 0; i < tp; ++i) {
        uint32_t v = 0;
        int j;
        if (i < t)
          for (j = 0; j < 4; ++j) v |= (uint32_t)(k * 4 + j < K ? ab[i * K + k * 4 + j] : 0) << (8 * j);
        col[k * tp + i] = (int32_t)(v ^ flip);
      }
    for (b = 0; b < mb; ++b) {
      const int32_t *wpanel = wp + (ptrdiff_t)b * K4 * RF_QMR;
      for (p = 0; p < t; p += RF_QNP) {
        int32_t acc[RF_QMR][RF_QNP];
        ptrdiff_t np = t - p < RF_QNP ? t - p : RF_QNP;
        rf_qtile(K4, wpanel, col + p, tp, acc);
        for (r = 0; r < RF_QMR && b * RF_QMR + r < N; ++r) {
          ptrdiff_t ch = (ptrdiff_t)b * RF_QMR + r;
          rf_qstore(acc[r], np, ch, RF_QDOT_FIX * (rq->wsum ? rq->wsum[ch] : 0), rq,
                    (unsigned char *)y + ((m0 + p) * N + ch) * ysize, N);
        }
      }
    }
  }
}

/* Depthwise conv on integers (groups = input channels, any multiplier):
 * each input channel's plane centred on its zero point and zero-padded as
 * int16 in scratch, then output rows summed tap by tap in int32. Weights
 * int16, centred on theirs ([m][kh][kw]); rq's bias is not folded. */
RF_KERNEL RF_FLATTEN void rf_qdepthwise(const void *x, int x_type, int32_t zx, void *y,
                                        const int16_t *w, const rf_conv_shape *s,
                                        const rf_requant *rq, unsigned char *scratch) {
  int mg = s->m / s->c, n, ch, j, oy, ky, kx;
  int hp = (s->oh - 1) * s->sh + (s->kh - 1) * s->dh + 1;
  int wpad = (s->ow - 1) * s->sw + (s->kw - 1) * s->dw + 1;
  ptrdiff_t ohw = (ptrdiff_t)s->oh * s->ow;
  int16_t *plane = (int16_t *)(void *)scratch;
  int32_t *acc = (int32_t *)(void *)(scratch + (((ptrdiff_t)hp * wpad * 2 + 63) / 64) * 64);
  size_t ysize = rq->type == RF_QT_S32 ? 4 : 1;
  for (n = 0; n < s->n; ++n)
    for (ch = 0; ch < s->c; ++ch) {
      ptrdiff_t base = ((ptrdiff_t)n * s->c + ch) * s->h * s->w;
      int iy, ix;
      for (iy = 0; iy < hp; ++iy) {
        int16_t *d = plane + (ptrdiff_t)iy * wpad;
        int sy = iy - s->pt;
        for (ix = 0; ix < wpad; ++ix) {
          int sx = ix - s->pl;
          d[ix] = (int16_t)(sy >= 0 && sy < s->h && sx >= 0 && sx < s->w
                                ? rf_qload(x, x_type, base + (ptrdiff_t)sy * s->w + sx) - zx
                                : 0);
        }
      }
      for (j = 0; j < mg; ++j) {
        int co = ch * mg + j;
        const int16_t *wc = w + (ptrdiff_t)co * s->kh * s->kw;
        for (oy = 0; oy < s->oh; ++oy) {
          int ox;
          for (ox = 0; ox < s->ow; ++ox) acc[ox] = 0;
          for (ky = 0; ky < s->kh; ++ky) {
            const int16_t *row = plane + (ptrdiff_t)(oy * s->sh + ky * s->dh) * wpad;
            for (kx = 0; kx < s->kw; ++kx) {
              int32_t wv = wc[ky * s->kw + kx];
              const int16_t *src = row + kx * s->dw;
              if (s->sw == 1)
                for (ox = 0; ox < s->ow; ++ox) acc[ox] += wv * src[ox];
              else
                for (ox = 0; ox < s->ow; ++ox) acc[ox] += wv * src[ox * s->sw];
            }
          }
          rf_qstore(acc, s->ow, co, 0, rq,
                    (unsigned char *)y + (((ptrdiff_t)n * s->m + co) * ohw + (ptrdiff_t)oy * s->ow) * ysize,
                    1);
        }
      }
    }
}

/* Integer parameters read at run time (QLinearConv, ConvInteger, ... whose
 * scales, zero points or weights are graph inputs). */
typedef struct {
  int x_type, w_type, y_type;     /* RF_QT_*; y_type RF_QT_S32: no requantization */
  const void *x_zp, *w_zp, *y_zp; /* NULL: 0; w_zp has w_zp_n values */
  ptrdiff_t w_zp_n, w_scale_n;
  const float *x_scale, *w_scale, *y_scale; /* NULL for an int32 output */
} rf_qparams;

RF_INLINE void rf_qstore_ref(const rf_qparams *q, void *y, ptrdiff_t i, int32_t acc, ptrdiff_t c) {
  double v;
  int32_t z, lo, hi;
  if (q->y_type == RF_QT_S32) {
    ((int32_t *)y)[i] = acc;
    return;
  }
  /* in double, as the ONNX reference */
  v = (double)acc * q->x_scale[0] * q->w_scale[q->w_scale_n > 1 ? c : 0] / q->y_scale[0];
  z = q->y_zp ? rf_qload(q->y_zp, q->y_type, 0) : 0;
  lo = q->y_type == RF_QT_U8 ? 0 : -128;
  hi = q->y_type == RF_QT_U8 ? 255 : 127;
  v = nearbyint(v) + z;
  v = v < lo ? lo : (v > hi ? hi : v);
  if (q->y_type == RF_QT_U8)
    ((uint8_t *)y)[i] = (uint8_t)v;
  else
    ((int8_t *)y)[i] = (int8_t)v;
}

/* Conv on integers with parameters read at run time, straight from the
 * definition (bias int32 or NULL). */
RF_KERNEL void rf_qconv2d_ref(const void *x, const void *w, const int32_t *bias, void *y,
                              const rf_conv_shape *s, const rf_qparams *q) {
  int cg = s->c / s->groups, mg = s->m / s->groups, n, co, oy, ox, ci, ky, kx;
  int32_t zx = q->x_zp ? rf_qload(q->x_zp, q->x_type, 0) : 0;
  for (n = 0; n < s->n; ++n)
    for (co = 0; co < s->m; ++co) {
      int g = co / mg;
      int32_t zw = q->w_zp ? rf_qload(q->w_zp, q->w_type, q->w_zp_n > 1 ? co : 0) : 0;
      for (oy = 0; oy < s->oh; ++oy)
        for (ox = 0; ox < s->ow; ++ox) {
          int32_t acc = bias ? bias[co] : 0;
          for (ci = 0; ci < cg; ++ci)
            for (ky = 0; ky < s->kh; ++ky)
              for (kx = 0; kx < s->kw; ++kx) {
                int iy = oy * s->sh - s->pt + ky * s->dh, ix = ox * s->sw - s->pl + kx * s->dw;
                int32_t xv, wv;
                if (iy < 0 || iy >= s->h || ix < 0 || ix >= s->w) continue;
                xv = rf_qload(x, q->x_type,
                              (((ptrdiff_t)n * s->c + g * cg + ci) * s->h + iy) * s->w + ix) - zx;
                wv = rf_qload(w, q->w_type, (((ptrdiff_t)co * cg + ci) * s->kh + ky) * s->kw + kx) - zw;
                acc += xv * wv;
              }
          rf_qstore_ref(q, y, (((ptrdiff_t)n * s->m + co) * s->oh + oy) * s->ow + ox, acc, co);
        }
    }
}

/* Y[b] = A[b] B[b] on integers with parameters read at run time; A is
 * [batch][M][K], B [batch or 1][K][N] (b_stride 0 when shared). */
RF_KERNEL void rf_qmatmul_ref(const void *a, const void *b, void *y, ptrdiff_t batch, ptrdiff_t M,
                              ptrdiff_t K, ptrdiff_t N, ptrdiff_t b_stride, const rf_qparams *q) {
  ptrdiff_t bi, i, j, k;
  int32_t za = q->x_zp ? rf_qload(q->x_zp, q->x_type, 0) : 0;
  for (bi = 0; bi < batch; ++bi)
    for (i = 0; i < M; ++i)
      for (j = 0; j < N; ++j) {
        int32_t acc = 0;
        int32_t zb = q->w_zp ? rf_qload(q->w_zp, q->w_type, q->w_zp_n > 1 ? j : 0) : 0;
        for (k = 0; k < K; ++k)
          acc += (rf_qload(a, q->x_type, (bi * M + i) * K + k) - za) *
                 (rf_qload(b, q->w_type, bi * b_stride + k * N + j) - zb);
        rf_qstore_ref(q, y, (bi * M + i) * N + j, acc, j);
      }
}

/* The sum of two quantized tensors of n elements, requantized to [lo, hi]
 * (an absorbed Relu raises lo): each side
 * dequantized, added and quantized in float, as DequantizeLinear, Add and
 * QuantizeLinear do (so the result is theirs exactly). */
RF_KERNEL void rf_qadd(const void *a, int a_type, float sa, int32_t za, const void *b, int b_type,
                       float sb, int32_t zb, void *y, int y_type, float sy, int32_t zy, int32_t lo,
                       int32_t hi, ptrdiff_t n) {
  ptrdiff_t i;
  float flo = (float)(lo - zy), fhi = (float)(hi - zy);
  for (i = 0; i < n; ++i) {
    float v = (float)(rf_qload(a, a_type, i) - za) * sa + (float)(rf_qload(b, b_type, i) - zb) * sb;
    int32_t q = rf_qround(v / sy, flo, fhi) + zy;
    if (y_type == RF_QT_U8)
      ((uint8_t *)y)[i] = (uint8_t)q;
    else
      ((int8_t *)y)[i] = (int8_t)q;
  }
}
