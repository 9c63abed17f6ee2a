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

/* Element types; RF_QT_F32 only as an output (a layer whose result stays
 * float: acc x x_scale x w_scale). */
enum { RF_QT_U8, RF_QT_S8, RF_QT_S32, RF_QT_F32 };

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
  int type;             /* RF_QT_U8, RF_QT_S8, RF_QT_S32 (the raw accumulator) or RF_QT_F32 */
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
  if (rq->type == RF_QT_F32) {
    float *o = (float *)y, s = rq->scale[c];
    for (j = 0; j < n; ++j) o[j * ys] = (float)(acc[j] + b) * s;
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
/* The SDOT path reads activations as signed: 128 x the weights' sum back. */
#if defined(RF_QDOT_SDOT)
#define RF_QDOT_FIX 128
#else
#define RF_QDOT_FIX 0
#endif


typedef float rf_qvf __attribute__((vector_size(RF_QVW * sizeof(float))));
typedef int8_t rf_qv8 __attribute__((vector_size(RF_QVW)));

/* v clamped to [lo, hi] lane by lane (NaN to lo), with masks: C has no
 * vector conditional. */
RF_INLINE rf_qvf rf_qclampv(rf_qvf v, float lo, float hi) {
  rf_qvf lov = (rf_qvf){0} + lo, hiv = (rf_qvf){0} + hi;
  rf_qv below = ~(v >= lov), above = v > hiv;
  rf_qv bits = ((rf_qv)v & ~below) | ((rf_qv)lov & below);
  bits = (bits & ~above) | ((rf_qv)hiv & above);
  return (rf_qvf)bits;
}

/* One tile: output channels c0 .. c0 + mr - 1 by pixels 0 .. np - 1 of the
 * packed activations col, nv vectors wide: sum over k4 of dot4(col[k4 * ldc
 * + p], w[k4 * RF_QMR + r]), then requantized into y + r * ldy + p * ys
 * (output elements). 8-bit outputs in float requantization are converted
 * in registers; the rest go through rf_qstore. */
static inline void rf_qtile(ptrdiff_t K4, const int32_t *RF_RESTRICT w, const int32_t *RF_RESTRICT col,
                            ptrdiff_t ldc, int nv, const rf_requant *rq, ptrdiff_t c0, int mr,
                            ptrdiff_t np, unsigned char *RF_RESTRICT y, ptrdiff_t ldy, ptrdiff_t ys) {
  rf_qv c[RF_QMR][RF_QNV];
  ptrdiff_t k;
  int r, u;
  size_t ysize = rq->type >= RF_QT_S32 ? 4 : 1;
  /* every loop over the accumulators unrolled whole, so that they stay in
   * registers (GCC otherwise keeps some variants' arrays on the stack) */
  RF_UNROLL
  for (r = 0; r < RF_QMR; ++r) {
    RF_UNROLL
    for (u = 0; u < RF_QNV; ++u) c[r][u] = (rf_qv){0};
  }
  for (k = 0; k < K4; ++k) {
    rf_qv a[RF_QNV];
    RF_UNROLL
    for (u = 0; u < RF_QNV; ++u) {
      if (u >= nv) break;
      memcpy(&a[u], col + k * ldc + u * RF_QVW, sizeof a[u]);
#if defined(RF_QDOT_SDOT)
      a[u] ^= (rf_qv){0} + (int32_t)0x80808080u;
#endif
    }
    RF_UNROLL
    for (r = 0; r < RF_QMR; ++r) {
      int32_t wr = w[k * RF_QMR + r];
      RF_UNROLL
      for (u = 0; u < RF_QNV; ++u) {
        if (u >= nv) break;
        c[r][u] = rf_qdot(c[r][u], a[u], wr);
      }
    }
  }
  if (rq->scale && rq->type < RF_QT_S32) {
    float flo = (float)(rq->lo - rq->zp), fhi = (float)(rq->hi - rq->zp);
    int32_t u8shift = rq->type == RF_QT_U8 ? 128 : 0;
    RF_UNROLL
    for (r = 0; r < RF_QMR; ++r) {
      int32_t b;
      rf_qvf s;
      if (r >= mr) break;
      b = (rq->bias ? rq->bias[c0 + r] : 0) + (rq->wsum ? RF_QDOT_FIX * rq->wsum[c0 + r] : 0);
      s = (rf_qvf){0} + rq->scale[c0 + r];
      RF_UNROLL
      for (u = 0; u < RF_QNV; ++u) {
        rf_qvf f = rf_qclampv(__builtin_convertvector(c[r][u] + b, rf_qvf) * s, flo, fhi);
        rf_qv q = __builtin_convertvector((f + 12582912.0f) - 12582912.0f, rf_qv) + rq->zp;
        unsigned char bytes[RF_QVW], *dst = y + r * ldy + u * RF_QVW * ys;
        ptrdiff_t count = np - u * RF_QVW, j;
        if (u >= nv) break;
        {
          /* narrowed as int8 (fast on x86: VPMOVDB), uint8 shifted by 128
           * before and its bytes flipped back after */
          rf_qv8 o = __builtin_convertvector(q - u8shift, rf_qv8);
          o ^= (rf_qv8){0} + (int8_t)(u8shift ? -128 : 0);
          memcpy(bytes, &o, sizeof o);
        }
        if (ys == 1 && count >= RF_QVW)
          memcpy(dst, bytes, RF_QVW);
        else
          for (j = 0; j < count && j < RF_QVW; ++j) dst[j * ys] = bytes[j];
      }
    }
    return;
  }
  {
    int32_t out[RF_QNP];
    RF_UNROLL
    for (r = 0; r < RF_QMR; ++r) {
      if (r >= mr) break;
      RF_UNROLL
      for (u = 0; u < RF_QNV; ++u) memcpy(&out[u * RF_QVW], &c[r][u], sizeof c[r][u]);
      rf_qstore(out, np, c0 + r, rq->wsum ? RF_QDOT_FIX * rq->wsum[c0 + r] : 0, rq,
                y + r * ldy * ysize, ys);
    }
  }
}

/* rf_qtile as wide as np needs. */
RF_INLINE void rf_qtile_n(ptrdiff_t K4, const int32_t *RF_RESTRICT w, const int32_t *RF_RESTRICT col,
                          ptrdiff_t ldc, const rf_requant *rq, ptrdiff_t c0, int mr, ptrdiff_t np,
                          unsigned char *RF_RESTRICT y, ptrdiff_t ldy, ptrdiff_t ys) {
  switch ((np + RF_QVW - 1) / RF_QVW) {
  case 1: rf_qtile(K4, w, col, ldc, 1, rq, c0, mr, np, y, ldy, ys); break;
  case 2: rf_qtile(K4, w, col, ldc, 2, rq, c0, mr, np, y, ldy, ys); break;
  case 3: rf_qtile(K4, w, col, ldc, 3, rq, c0, mr, np, y, ldy, ys); break;
  default: rf_qtile(K4, w, col, ldc, 4, rq, c0, mr, np, y, ldy, ys); break;
  }
}
#else
#define RF_QNP 16
#define RF_QDOT_FIX 0
RF_INLINE void rf_qtile_n(ptrdiff_t K4, const int32_t *RF_RESTRICT w, const int32_t *RF_RESTRICT col,
                          ptrdiff_t ldc, const rf_requant *rq, ptrdiff_t c0, int mr, ptrdiff_t np,
                          unsigned char *RF_RESTRICT y, ptrdiff_t ldy, ptrdiff_t ys) {
  int32_t out[RF_QNP];
  ptrdiff_t k;
  int r, p, j;
  size_t ysize = rq->type >= RF_QT_S32 ? 4 : 1;
  for (r = 0; r < mr; ++r) {
    const int8_t *wr = (const int8_t *)(w + r);
    for (p = 0; p < np; ++p) out[p] = 0;
    for (k = 0; k < K4; ++k) {
      const uint8_t *a = (const uint8_t *)(col + k * ldc);
      const int8_t *wk = wr + k * RF_QMR * 4;
      for (p = 0; p < np; ++p) {
        int32_t sum = 0;
        for (j = 0; j < 4; ++j) sum += (int32_t)a[p * 4 + j] * wk[j];
        out[p] += sum;
      }
    }
    rf_qstore(out, np, c0 + r, 0, rq, y + r * ldy * ysize, ys);
  }
}
#endif


/* o[i] = the bytes r0[i], r1[i], r2[i], r3[i] (low to high) ^ flip, for i
 * in [0, n); a separate function, so that restrict lets it vectorize. */
RF_INLINE void rf_qinterleave4(const uint8_t *RF_RESTRICT r0, const uint8_t *RF_RESTRICT r1,
                               const uint8_t *RF_RESTRICT r2, const uint8_t *RF_RESTRICT r3,
                               ptrdiff_t n, uint32_t flip, int32_t *RF_RESTRICT o) {
  ptrdiff_t i;
  for (i = 0; i < n; ++i)
    o[i] = (int32_t)(((uint32_t)r0[i] | (uint32_t)r1[i] << 8 | (uint32_t)r2[i] << 16 |
                      (uint32_t)r3[i] << 24) ^ flip);
}

/* The same reading every sw-th byte. */
RF_INLINE void rf_qinterleave4_strided(const uint8_t *RF_RESTRICT r0, const uint8_t *RF_RESTRICT r1,
                                       const uint8_t *RF_RESTRICT r2, const uint8_t *RF_RESTRICT r3,
                                       int sw, ptrdiff_t n, uint32_t flip, int32_t *RF_RESTRICT o) {
  ptrdiff_t i;
  for (i = 0; i < n; ++i)
    o[i] = (int32_t)(((uint32_t)r0[i * sw] | (uint32_t)r1[i * sw] << 8 |
                      (uint32_t)r2[i * sw] << 16 | (uint32_t)r3[i * sw] << 24) ^ flip);
}

/* The packed activations of a tile of output rows [oy0, oy0 + rows) of
 * group channels xg ([K4][tp] int32, K4 = taps x cgp / 4): k runs over
 * the taps (ky, kx), and within a tap over the input channels padded to
 * cgp, a multiple of 4, so that the 4 bytes of one int32 are 4 channels at
 * one input position (flipped by `flip`, 0x80 per byte for int8).
 * Positions outside the image, padded channels (which meet zero weights)
 * and pixels past the tile up to tp read the zero point zpu; `pad_row`
 * holds ow * sw bytes of its raw value, for padded channels. A stride-1
 * conv whose rows are as wide as its input's reads the rows inside the
 * image as one run (a pixel reads its input at a fixed distance) and
 * fills the edge pixels after. */
RF_INLINE void rf_qpack_conv(const uint8_t *xg, const rf_conv_shape *s, int cg, int cgp, int oy0,
                             int rows, ptrdiff_t tp, uint8_t zpu, uint32_t flip,
                             const uint8_t *pad_row, int32_t *col) {
  int taps = s->kh * s->kw, k4, oy, ox, j, K4 = taps * cgp / 4;
  ptrdiff_t t = (ptrdiff_t)rows * s->ow, hw = (ptrdiff_t)s->h * s->w;
  int32_t pad4 = (int32_t)((uint32_t)zpu * 0x01010101u);
  int flat = s->sh == 1 && s->sw == 1 && s->ow == s->w;
  for (k4 = 0; k4 < K4; ++k4) {
    int32_t *out = col + (ptrdiff_t)k4 * tp;
    int tap = k4 * 4 / cgp, ci0 = k4 * 4 % cgp, ky = tap / s->kw, kx = tap % s->kw;
    int dy = ky * s->dh - s->pt, dx = kx * s->dw - s->pl;
    /* ox in [lo, hi) reads inside the row */
    int lo = dx < 0 ? (-dx + s->sw - 1) / s->sw : 0;
    int hi = s->w - dx > 0 ? (s->w - dx + s->sw - 1) / s->sw : 0;
    int ra = 0, rb = 0;
    const uint8_t *plane[4];
    if (hi > s->ow) hi = s->ow;
    if (lo > hi) lo = hi;
    for (j = 0; j < 4; ++j) plane[j] = ci0 + j < cg ? xg + (ci0 + j) * hw : NULL;
    if (flat) {
      /* rows [ra, rb) read inside the image: one run, edges filled after */
      ra = -dy - oy0 > 0 ? -dy - oy0 : 0;
      rb = s->h - dy - oy0 < rows ? s->h - dy - oy0 : rows;
      if (ra < rb) {
        const uint8_t *r[4];
        ptrdiff_t p0 = (ptrdiff_t)ra * s->ow + (dx < 0 ? -dx : 0);
        ptrdiff_t p1 = (ptrdiff_t)rb * s->ow - (dx > 0 ? dx : 0);
        if (!plane[0] || !plane[1] || !plane[2] || !plane[3]) {
          ra = rb = 0; /* a padded channel: row by row (pad_row is one row long) */
        } else if (p0 < p1) {
          for (j = 0; j < 4; ++j) r[j] = plane[j] + ((ptrdiff_t)(oy0 + dy) * s->w + dx + p0);
          rf_qinterleave4(r[0], r[1], r[2], r[3], p1 - p0, flip, out + p0);
        }
        for (oy = ra; oy < rb; ++oy) {
          int32_t *o = out + (ptrdiff_t)oy * s->ow;
          for (ox = 0; ox < lo; ++ox) o[ox] = pad4;
          for (ox = hi; ox < s->ow; ++ox) o[ox] = pad4;
        }
      } else {
        ra = rb = 0;
      }
    }
    for (oy = 0; oy < rows; ++oy) {
      int32_t *o = out + (ptrdiff_t)oy * s->ow;
      int iy = (oy0 + oy) * s->sh + dy;
      const uint8_t *r[4];
      if (oy >= ra && oy < rb) continue;
      if (iy < 0 || iy >= s->h) {
        for (ox = 0; ox < s->ow; ++ox) o[ox] = pad4;
        continue;
      }
      for (j = 0; j < 4; ++j)
        r[j] = plane[j] ? plane[j] + ((ptrdiff_t)iy * s->w + dx + (ptrdiff_t)lo * s->sw) : pad_row;
      for (ox = 0; ox < lo; ++ox) o[ox] = pad4;
      if (s->sw == 1)
        rf_qinterleave4(r[0], r[1], r[2], r[3], hi - lo, flip, o + lo);
      else
        rf_qinterleave4_strided(r[0], r[1], r[2], r[3], s->sw, hi - lo, flip, o + lo);
      for (ox = hi; ox < s->ow; ++ox) o[ox] = pad4;
    }
    for (ox = (int)t; ox < tp; ++ox) out[ox] = pad4;
  }
}

/* Conv on integers, NCHW: x uint8 or int8 (x_type), weights packed by the
 * emitter ([group][channel block][K4][RF_QMR] int32, k over the taps and
 * within a tap over the group's input channels padded to a multiple of
 * 4), output requantized per channel. Tiles of `rows` output rows are
 * packed into scratch (a padding row of ow * sw bytes, then K4 x tile
 * int32). */
RF_KERNEL RF_FLATTEN void rf_qconv2d(const void *x, int x_type, void *y, const int32_t *wp,
                                     const rf_conv_shape *s, int rows, uint8_t zpu,
                                     const rf_requant *rq, unsigned char *scratch) {
  int cg = s->c / s->groups, mg = s->m / s->groups, cgp = (cg + 3) / 4 * 4;
  int K4 = s->kh * s->kw * cgp / 4, mb = (mg + RF_QMR - 1) / RF_QMR, n, g, oy0, b;
  uint32_t flip = x_type == RF_QT_S8 ? 0x80808080u : 0;
  ptrdiff_t ohw = (ptrdiff_t)s->oh * s->ow;
  uint8_t *pad_row = scratch;
  int32_t *col = (int32_t *)(void *)(scratch + (((ptrdiff_t)s->ow * s->sw + 63) / 64) * 64);
  size_t ysize = rq->type >= RF_QT_S32 ? 4 : 1;
  memset(pad_row, zpu ^ (int)(flip & 255), (size_t)s->ow * s->sw);
  for (n = 0; n < s->n; ++n)
    for (g = 0; g < s->groups; ++g) {
      const uint8_t *xg = (const uint8_t *)x + ((ptrdiff_t)n * s->c + (ptrdiff_t)g * cg) * s->h * s->w;
      for (oy0 = 0; oy0 < s->oh; oy0 += rows) {
        int nr = s->oh - oy0 < rows ? s->oh - oy0 : rows;
        ptrdiff_t t = (ptrdiff_t)nr * s->ow, tp = (t + RF_QNP - 1) / RF_QNP * RF_QNP, p;
        rf_qpack_conv(xg, s, cg, cgp, oy0, nr, tp, zpu, flip, pad_row, col);
        for (b = 0; b < mb; ++b) {
          const int32_t *wpanel = wp + ((ptrdiff_t)g * mb + b) * K4 * RF_QMR;
          for (p = 0; p < t; p += RF_QNP) {
            ptrdiff_t np = t - p < RF_QNP ? t - p : RF_QNP;
            ptrdiff_t c0 = (ptrdiff_t)g * mg + b * RF_QMR;
            int mr = mg - b * RF_QMR < RF_QMR ? mg - b * RF_QMR : RF_QMR;
            ptrdiff_t at = ((ptrdiff_t)n * s->m + c0) * ohw + (ptrdiff_t)oy0 * s->ow + p;
            rf_qtile_n(K4, wpanel, col + p, tp, rq, c0, mr, np, (unsigned char *)y + at * ysize,
                       ohw, 1);
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
  int K4 = (K + 3) / 4, mb = (int)((N + RF_QMR - 1) / RF_QMR), b, k;
  uint32_t flip = a_type == RF_QT_S8 ? 0x80808080u : 0;
  int32_t *col = (int32_t *)(void *)scratch;
  size_t ysize = rq->type >= RF_QT_S32 ? 4 : 1;
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
        ptrdiff_t np = t - p < RF_QNP ? t - p : RF_QNP;
        int mr = N - b * RF_QMR < RF_QMR ? (int)(N - b * RF_QMR) : RF_QMR;
        rf_qtile_n(K4, wpanel, col + p, tp, rq, (ptrdiff_t)b * RF_QMR, mr, np,
                   (unsigned char *)y + ((m0 + p) * N + (ptrdiff_t)b * RF_QMR) * ysize, 1, N);
      }
    }
  }
}

/* rf_qdepthwise's padded plane: rows and columns (the width a multiple of
 * the stride, for its one-run 3 x 3 path). */
#define RF_QDW_HP(s) (((s)->oh - 1) * (s)->sh + ((s)->kh - 1) * (s)->dh + 1)
#define RF_QDW_WP(s)                                                                          \
  (((((s)->ow - 1) * (s)->sw + ((s)->kw - 1) * (s)->dw + 1) + (s)->sw - 1) / (s)->sw * (s)->sw)

/* One row of a depthwise conv's padded int16 plane: the input row centred
 * on its zero point between zeros (pl on the left, up to wp). */
RF_INLINE void rf_qdw_row(const void *x, int x_type, int32_t zx, ptrdiff_t at, int w, int pl, int wp,
                          float *RF_RESTRICT d) {
  int i, n = w < wp - pl ? w : wp - pl;
  for (i = 0; i < pl && i < wp; ++i) d[i] = 0;
  if (x_type == RF_QT_U8) {
    const uint8_t *r = (const uint8_t *)x + at;
    for (i = 0; i < n; ++i) d[pl + i] = (float)(r[i] - zx);
  } else {
    const int8_t *r = (const int8_t *)x + at;
    for (i = 0; i < n; ++i) d[pl + i] = (float)(r[i] - zx);
  }
  for (i = pl + (n > 0 ? n : 0); i < wp; ++i) d[i] = 0;
}

/* A 3 x 3 depthwise conv over a padded plane wp wide, as one run: pixel p
 * of output rows wp / sw wide read sw plane rows apart (ow of them real,
 * the rest discarded) reads plane[sw * p + ky * wp + kx]. */
RF_INLINE void rf_qdw_run3x3(const float *RF_RESTRICT plane, const int16_t *w, ptrdiff_t n,
                             ptrdiff_t wp, int sw, int32_t *RF_RESTRICT acc) {
  ptrdiff_t p;
  const float *r0 = plane, *r1 = plane + wp, *r2 = plane + 2 * wp;
  float w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4], w5 = w[5], w6 = w[6], w7 = w[7],
        w8 = w[8];
  if (sw == 1)
    for (p = 0; p < n; ++p)
      acc[p] = (int32_t)(w0 * r0[p] + w1 * r0[p + 1] + w2 * r0[p + 2] + w3 * r1[p] +
                         w4 * r1[p + 1] + w5 * r1[p + 2] + w6 * r2[p] + w7 * r2[p + 1] +
                         w8 * r2[p + 2]);
  else
    for (p = 0; p < n; ++p)
      acc[p] = (int32_t)(w0 * r0[2 * p] + w1 * r0[2 * p + 1] + w2 * r0[2 * p + 2] +
                         w3 * r1[2 * p] + w4 * r1[2 * p + 1] + w5 * r1[2 * p + 2] +
                         w6 * r2[2 * p] + w7 * r2[2 * p + 1] + w8 * r2[2 * p + 2]);
}

/* Depthwise conv on integers (groups = input channels, any multiplier):
 * each input channel's plane centred on its zero point and zero-padded as
 * float in scratch (two zero rows more), then each output row summed over
 * the taps; 3 x 3 at stride 1 or 2 as one run over the plane (long loops
 * vectorize; 14-pixel rows do not), in float: the products and their sums
 * are integers below 2^24, so exact, and FMAs are the fastest multiply-add
 * of most CPUs. Weights int16, centred on theirs ([m][kh][kw]); rq's bias
 * is not folded. Scratch: the plane, then oh x ww int32 twice. */
RF_KERNEL RF_FLATTEN void rf_qdepthwise(const void *x, int x_type, int32_t zx, void *y,
                                        const int16_t *w, const rf_conv_shape *s,
                                        const rf_requant *rq, unsigned char *scratch) {
  int mg = s->m / s->c, n, ch, j, oy, ky, kx;
  int fast3 = s->kh == 3 && s->kw == 3 && s->dh == 1 && s->dw == 1 && s->sh == s->sw &&
              (s->sw == 1 || s->sw == 2);
  int hp = RF_QDW_HP(s), wp = RF_QDW_WP(s), ww = wp * s->sh / s->sw;
  ptrdiff_t ohw = (ptrdiff_t)s->oh * s->ow;
  float *plane = (float *)(void *)scratch;
  int32_t *acc = (int32_t *)(void *)(scratch + (((ptrdiff_t)(hp + 2) * wp * 4 + 63) / 64) * 64);
  unsigned char *wide = (unsigned char *)(acc + ((ptrdiff_t)s->oh * ww + 15) / 16 * 16);
  size_t ysize = rq->type >= RF_QT_S32 ? 4 : 1;
  for (n = 0; n < s->n; ++n)
    for (ch = 0; ch < s->c; ++ch) {
      ptrdiff_t base = ((ptrdiff_t)n * s->c + ch) * s->h * s->w;
      int iy;
      for (iy = 0; iy < hp + 2; ++iy) {
        float *d = plane + (ptrdiff_t)iy * wp;
        int sy = iy - s->pt;
        if (sy < 0 || sy >= s->h) {
          int i;
          for (i = 0; i < wp; ++i) d[i] = 0.0f;
          continue;
        }
        rf_qdw_row(x, x_type, zx, base + (ptrdiff_t)sy * s->w, s->w, s->pl, wp, d);
      }
      for (j = 0; j < mg; ++j) {
        int co = ch * mg + j;
        const int16_t *wc = w + (ptrdiff_t)co * s->kh * s->kw;
        unsigned char *yc = (unsigned char *)y + ((ptrdiff_t)n * s->m + co) * ohw * ysize;
        if (fast3) {
          /* the whole plane as one run, requantized, then its rows kept */
          rf_qdw_run3x3(plane, wc, (ptrdiff_t)s->oh * ww, wp, s->sw, acc);
          rf_qstore(acc, (ptrdiff_t)s->oh * ww, co, 0, rq, wide, 1);
          for (oy = 0; oy < s->oh; ++oy)
            memcpy(yc + (ptrdiff_t)oy * s->ow * ysize, wide + (ptrdiff_t)oy * ww * ysize,
                   (size_t)s->ow * ysize);
          continue;
        }
        for (oy = 0; oy < s->oh; ++oy) {
          const float *row = plane + (ptrdiff_t)oy * s->sh * wp;
          int ox;
          for (ox = 0; ox < s->ow; ++ox) acc[ox] = 0;
          for (ky = 0; ky < s->kh; ++ky)
            for (kx = 0; kx < s->kw; ++kx) {
              int32_t wv = wc[ky * s->kw + kx];
              const float *src = row + (ptrdiff_t)ky * s->dh * wp + kx * s->dw;
              for (ox = 0; ox < s->ow; ++ox) acc[ox] += wv * (int32_t)src[ox * s->sw];
            }
          rf_qstore(acc, s->ow, co, 0, rq, yc + (ptrdiff_t)oy * s->ow * ysize, 1);
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
    /* the products rounded to float before the sum, which is in double so
     * that no compiler fuses them (exact, then rounded once: a float add) */
    float pa = (float)(rf_qload(a, a_type, i) - za) * sa, pb = (float)(rf_qload(b, b_type, i) - zb) * sb;
    float v = (float)((double)pa + (double)pb);
    int32_t q = rf_qround(v / sy, flo, fhi) + zy;
    if (y_type == RF_QT_U8)
      ((uint8_t *)y)[i] = (uint8_t)q;
    else
      ((int8_t *)y)[i] = (int8_t)q;
  }
}

/* MaxPool on 8-bit values (int8 read as unsigned through flip = 0x80, so
 * that one unsigned max serves both): the model's DequantizeLinear ->
 * MaxPool -> QuantizeLinear with one scale and zero point, which is exact.
 * Taps outside the image are skipped. Scratch: one padded input row and
 * one output row. */
RF_KERNEL void rf_qmaxpool2d(const uint8_t *x, uint8_t *y, ptrdiff_t nc, const rf_pool_shape *s,
                             uint8_t flip, unsigned char *scratch) {
  int wp = (s->ow - 1) * s->sw + (s->kw - 1) * s->dw + 1, oy, ky, kx, ox, i;
  uint8_t *row = scratch, *m = scratch + ((wp + 63) / 64) * 64;
  ptrdiff_t c;
  for (c = 0; c < nc; ++c) {
    const uint8_t *plane = x + c * s->h * s->w;
    uint8_t *out = y + c * s->oh * s->ow;
    for (oy = 0; oy < s->oh; ++oy) {
      for (ox = 0; ox < s->ow; ++ox) m[ox] = 0;
      for (ky = 0; ky < s->kh; ++ky) {
        int iy = oy * s->sh - s->pt + ky * s->dh;
        if (iy < 0 || iy >= s->h) continue;
        for (i = 0; i < wp; ++i) {
          int ix = i - s->pl;
          row[i] = ix >= 0 && ix < s->w ? (uint8_t)(plane[(ptrdiff_t)iy * s->w + ix] ^ flip) : 0;
        }
        for (kx = 0; kx < s->kw; ++kx) {
          const uint8_t *r = row + kx * s->dw;
          for (ox = 0; ox < s->ow; ++ox) {
            uint8_t v = r[ox * s->sw];
            m[ox] = v > m[ox] ? v : m[ox];
          }
        }
      }
      for (ox = 0; ox < s->ow; ++ox) out[(ptrdiff_t)oy * s->ow + ox] = (uint8_t)(m[ox] ^ flip);
    }
  }
}

/* GlobalAveragePool on 8-bit values, requantized: the sum of x - zx over
 * each of nc planes of hw values, times scale (x_scale / (hw x y_scale)),
 * rounded half to even, plus zy, saturated. */
RF_KERNEL void rf_qglobal_avgpool(const void *x, int x_type, int32_t zx, void *y, int y_type,
                                  int32_t zy, float scale, ptrdiff_t nc, ptrdiff_t hw) {
  ptrdiff_t c, i;
  float flo = (float)((y_type == RF_QT_U8 ? 0 : -128) - zy), fhi = (float)((y_type == RF_QT_U8 ? 255 : 127) - zy);
  for (c = 0; c < nc; ++c) {
    int32_t sum = 0, q;
    if (x_type == RF_QT_U8) {
      const uint8_t *p = (const uint8_t *)x + c * hw;
      for (i = 0; i < hw; ++i) sum += p[i];
    } else {
      const int8_t *p = (const int8_t *)x + c * hw;
      for (i = 0; i < hw; ++i) sum += p[i];
    }
    q = rf_qround((float)(sum - zx * (int32_t)hw) * scale, flo, fhi) + zy;
    if (y_type == RF_QT_U8)
      ((uint8_t *)y)[c] = (uint8_t)q;
    else
      ((int8_t *)y)[c] = (int8_t)q;
  }
}
