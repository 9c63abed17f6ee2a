/* Convolutions, NCHW. Weights arrive packed for rf_gemm_packed_a, one set
 * of panels per group (RF_MR-padded rows x Cin/groups * kh * kw). Which
 * kernel runs a conv is the emitter's choice (lib/CEmitter/LowerNN.cpp):
 * rf_conv2d_winograd (winograd.h) for dense 3x3 stride-1 convs on planes
 * from 14x14 up, rf_conv2d_direct for other windows larger than 1x1 and
 * wide pointwise convs,
 * rf_conv2d_cvec for those of them with small output planes,
 * rf_conv2d_gemm (GEMM on the input itself for a 1x1 stride-1 conv, on
 * im2col tiles built in the arena scratch slice otherwise) for the rest;
 * depthwise convs run rf_depthwise_same (small "same" stride-1 images) or
 * rf_conv2d_depthwise (over output rows). */
typedef struct {
  int n, c, h, w;          /* input */
  int m, oh, ow;           /* output channels and size */
  int kh, kw, sh, sw, pt, pl, dh, dw, groups;
} rf_conv_shape;

/* The im2col matrix of output pixels [j0, j0 + nt), rows (c, ky, kx), packed
 * as rf_gemm_packed_ab reads B: panels of RF_NR pixels, each K x RF_NR,
 * pixels past nt zero. */
static inline void rf_im2col_packed(const float *x, const rf_conv_shape *s, int channels, ptrdiff_t j0,
                                    ptrdiff_t nt, float *col) {
  ptrdiff_t K = (ptrdiff_t)channels * s->kh * s->kw, panels = (nt + RF_NR - 1) / RF_NR;
  ptrdiff_t hw = (ptrdiff_t)s->h * s->w, p;
  int c, ky, kx;
  if (s->kh == 1 && s->kw == 1 && s->sh == 1 && s->sw == 1 && s->pt == 0 && s->pl == 0 &&
      s->oh == s->h && s->ow == s->w) {
    /* 1x1: each panel row is RF_NR consecutive input pixels of a channel. */
    for (p = 0; p < panels; ++p) {
      ptrdiff_t n = nt - p * RF_NR < RF_NR ? nt - p * RF_NR : RF_NR, k;
      float *dst = col + p * K * RF_NR;
      const float *src = x + j0 + p * RF_NR;
      for (k = 0; k < K; ++k, dst += RF_NR, src += hw) {
        ptrdiff_t t;
        if (n == RF_NR) {
          memcpy(dst, src, sizeof(float) * RF_NR);
          continue;
        }
        for (t = 0; t < n; ++t) dst[t] = src[t];
        for (; t < RF_NR; ++t) dst[t] = 0.0f;
      }
    }
    return;
  }
  /* Row k = (c, ky, kx) of the tile: output rows' runs of pixels, split at
   * panel boundaries, each a copy of input pixels with zeros outside. */
  for (c = 0; c < channels; ++c)
    for (ky = 0; ky < s->kh; ++ky)
      for (kx = 0; kx < s->kw; ++kx) {
        ptrdiff_t k = ((ptrdiff_t)c * s->kh + ky) * s->kw + kx, j = 0;
        const float *plane = x + (ptrdiff_t)c * hw;
        int off_y = ky * s->dh - s->pt, off_x = kx * s->dw - s->pl;
        while (j < nt) {
          ptrdiff_t q = j0 + j;
          int oy = (int)(q / s->ow), ox = (int)(q % s->ow);
          ptrdiff_t run = s->ow - ox < nt - j ? s->ow - ox : nt - j;
          int iy = oy * s->sh + off_y;
          const float *irow = plane + (ptrdiff_t)iy * s->w;
          int row_valid = iy >= 0 && iy < s->h;
          while (run > 0) {
            int lane = (int)(j % RF_NR), chunk = RF_NR - lane < run ? RF_NR - lane : (int)run, t;
            float *dst = col + ((j / RF_NR) * K + k) * RF_NR + lane;
            /* Short runs: plain loops (a call to memcpy costs more). */
            if (!row_valid) {
              for (t = 0; t < chunk; ++t) dst[t] = 0.0f;
            } else if (s->sw == 1) {
              int ix0 = ox + off_x, lo = ix0 < 0 ? -ix0 : 0, hi = s->w - ix0;
              const float *src = irow + ix0;
              if (lo > chunk) lo = chunk;
              if (hi > chunk) hi = chunk;
              if (hi < lo) hi = lo;
              if (lo == 0 && hi == RF_NR) {
                memcpy(dst, src, sizeof(float) * RF_NR);
              } else {
                for (t = 0; t < lo; ++t) dst[t] = 0.0f;
                for (; t < hi; ++t) dst[t] = src[t];
                for (; t < chunk; ++t) dst[t] = 0.0f;
              }
            } else {
              for (t = 0; t < chunk; ++t) {
                int ix = (ox + t) * s->sw + off_x;
                dst[t] = ix >= 0 && ix < s->w ? irow[ix] : 0.0f;
              }
            }
            j += chunk;
            ox += chunk;
            run -= chunk;
          }
        }
        if (nt % RF_NR) { /* lanes past the last pixel */
          float *tail = col + ((nt / RF_NR) * K + k) * RF_NR;
          int t;
          for (t = (int)(nt % RF_NR); t < RF_NR; ++t) tail[t] = 0.0f;
        }
      }
}

/* `tile` output pixels at a time (a multiple of RF_NR), through scratch of
 * K x tile floats. */
RF_KERNEL void rf_conv2d_gemm(const float *x, float *y, const float *wp, const float *bias,
                              const float *residual, const rf_conv_shape *s, float *scratch,
                              ptrdiff_t tile, int act, float p0, float p1) {
  int cg = s->c / s->groups, mg = s->m / s->groups, n, g;
  ptrdiff_t kg = (ptrdiff_t)cg * s->kh * s->kw, ohw = (ptrdiff_t)s->oh * s->ow;
  ptrdiff_t mpad = (mg + RF_MR - 1) / RF_MR * RF_MR;
  for (n = 0; n < s->n; ++n)
    for (g = 0; g < s->groups; ++g) {
      const float *xg = x + ((ptrdiff_t)n * s->c + (ptrdiff_t)g * cg) * s->h * s->w;
      float *yg = y + ((ptrdiff_t)n * s->m + (ptrdiff_t)g * mg) * ohw;
      const float *rg = residual ? residual + ((ptrdiff_t)n * s->m + (ptrdiff_t)g * mg) * ohw : NULL;
      const float *wg = wp + (ptrdiff_t)g * mpad * kg;
      rf_epilogue ep;
      ptrdiff_t j0;
      ep.row_bias = bias ? bias + (ptrdiff_t)g * mg : NULL;
      ep.col_bias = NULL;
      ep.ldr = ohw;
      ep.alpha = 1.0f;
      ep.beta = 0.0f;
      ep.act = act;
      ep.p0 = p0;
      ep.p1 = p1;
      for (j0 = 0; j0 < ohw; j0 += tile) {
        ptrdiff_t nt = ohw - j0 < tile ? ohw - j0 : tile;
        rf_im2col_packed(xg, s, cg, j0, nt, scratch);
        ep.residual = rg ? rg + j0 : NULL;
        rf_gemm_packed_ab(mg, nt, kg, wg, scratch, yg + j0, ohw, &ep);
      }
    }
}

/* Direct convolution (any kernel size, stride and dilation) without im2col.
 * Each input channel is copied once into zero-padded "phase planes": for
 * stride (sh, sw) the padded input splits into sh * sw planes by row and
 * column phase, rows of `wpad` floats. An output pixel (oy, ox) then sits at
 * flat position q = oy * wpad + ox, and every tap (ky, kx) reads the phase
 * plane of (ky * dh % sh, kx * dw % sw) at q plus a constant offset, so a
 * run of consecutive q is a contiguous vector load for every tap. Positions
 * whose column is past the output width are computed and dropped. The
 * emitter chooses wpad and the plane stride (one zero column may serve as
 * the right padding of one row and the left padding of the next). Weights
 * are the GEMM's packed panels: RF_MR output channels, K = (c, ky, kx). */
#define RF_DIRECT_MAX_TAPS 49
typedef struct {
  int wpad;            /* floats per phase-plane row */
  ptrdiff_t plane;     /* floats per phase plane (a multiple of 16); 0: a
                          1x1 stride-1 conv reads its input in place */
} rf_direct_geometry;

#if defined(__GNUC__) && !defined(RF_SCALAR) && defined(__AVX512F__)
#define RF_DIRECT_VECTORS 4 /* 32 registers: RF_MR x 4 accumulators */
#else
#define RF_DIRECT_VECTORS 1
#endif
#define RF_DIRECT_SPAN (RF_DIRECT_VECTORS * RF_NR)
/* Rows tiled one by one where that computes no more positions than the
 * flat run (ceil(ow / 16) * 16 per row against wpad): every tile is then
 * stored from registers. */
#ifndef RF_DIRECT_ROWWISE
#define RF_DIRECT_ROWWISE(ow, wpad) (((ow) + 15) / 16 * 16 <= (wpad))
#endif

/* Where a tile whose positions lie in one output row goes straight from
 * registers: its first `count` positions (the rest are columns past the
 * output width) into `rows` output rows at stride `stride`, and the
 * residual's at the same offsets. */
typedef struct {
  float *out;
  const float *res;
  ptrdiff_t stride;
  int rows, count;
} rf_direct_dst;

#if defined(__GNUC__) && !defined(RF_SCALAR)
/* Relu (x > lo ? x : 0 with lo = 0, so NaN gives 0) or Clip (max with lo,
 * then min with hi, as rf_activate) on a vector, as selects; any other
 * activation leaves it as it is. */
RF_INLINE rf_vf rf_relu_clip_v(rf_vf v, int act, rf_vf lo, rf_vf hi) {
  if (act == RF_ACT_RELU) {
    v = (rf_vf)((rf_vi)v & (v > lo));
  } else if (act == RF_ACT_CLIP) {
    rf_vi below = v < lo, above;
    v = (rf_vf)(((rf_vi)v & ~below) | ((rf_vi)lo & below));
    above = v > hi;
    v = (rf_vf)(((rf_vi)v & ~above) | ((rf_vi)hi & above));
  }
  return v;
}
#endif

/* RF_MR channels x dv * RF_NR flat positions starting at `in` (a pointer
 * into channel 0's planes), into out[RF_MR][RF_DIRECT_SPAN], or with `dst`
 * into the output itself, residual and activation applied. With `last`
 * >= 0 the last channel holds only `last` floats from `in` (an input read
 * in place: the tile's vectors would run past the tensor), and is read
 * through a zero-padded copy. */
RF_INLINE void rf_direct_tile(const float *in, ptrdiff_t chan_stride, int channels, const float *w,
                              const ptrdiff_t *toff, int taps, const int dv, const float *bias,
                              int act, float p0, float p1, float out[RF_MR][RF_DIRECT_SPAN],
                              const rf_direct_dst *dst, ptrdiff_t last) {
#if defined(__GNUC__) && !defined(RF_SCALAR)
  /* dv * RF_NR positions as nv vectors of the target's width. */
  rf_vf acc[RF_MR][RF_DIRECT_VECTORS * RF_NV];
  const int nv = dv * RF_NV;
  int r, v, c, t;
  for (r = 0; r < RF_MR; ++r)
    for (v = 0; v < nv; ++v) acc[r][v] = (rf_vf){0};
  if (taps == 1) {
    /* One flat loop over the channels (pointwise convs, Winograd). */
    const float *src = in + toff[0];
    for (c = 0; c < channels - (last >= 0); ++c, src += chan_stride, w += RF_MR) {
      rf_vf x[RF_DIRECT_VECTORS * RF_NV];
      for (v = 0; v < nv; ++v) memcpy(&x[v], src + v * RF_VW, sizeof x[v]);
      for (r = 0; r < RF_MR; ++r)
        for (v = 0; v < nv; ++v) acc[r][v] += w[r] * x[v];
    }
    in += (ptrdiff_t)c * chan_stride;
  } else
    for (c = 0; c < channels - (last >= 0); ++c, in += chan_stride)
      for (t = 0; t < taps; ++t, w += RF_MR) {
        const float *src = in + toff[t];
        rf_vf x[RF_DIRECT_VECTORS * RF_NV];
        for (v = 0; v < nv; ++v) memcpy(&x[v], src + v * RF_VW, sizeof x[v]);
        for (r = 0; r < RF_MR; ++r)
          for (v = 0; v < nv; ++v) acc[r][v] += w[r] * x[v];
      }
  if (last >= 0)
    for (t = 0; t < taps; ++t, w += RF_MR) {
      float copy[RF_DIRECT_SPAN] = {0};
      rf_vf x[RF_DIRECT_VECTORS * RF_NV];
      ptrdiff_t j, n = last - toff[t] < dv * RF_NR ? last - toff[t] : dv * RF_NR;
      for (j = 0; j < n; ++j) copy[j] = in[toff[t] + j];
      for (v = 0; v < nv; ++v) memcpy(&x[v], copy + v * RF_VW, sizeof x[v]);
      for (r = 0; r < RF_MR; ++r)
        for (v = 0; v < nv; ++v) acc[r][v] += w[r] * x[v];
    }
  /* The epilogue while the tile is in registers: bias (RF_MR values), the
   * residual, then Relu or Clip as selects (NaN as rf_activate gives it). */
  if (bias)
    RF_UNROLL
    for (r = 0; r < RF_MR; ++r)
      RF_UNROLL
      for (v = 0; v < nv; ++v) acc[r][v] += bias[r];
  if (dst && dst->res)
    RF_UNROLL
    for (r = 0; r < RF_MR; ++r)
      if (r < dst->rows)
        RF_UNROLL
        for (v = 0; v < nv; ++v) {
          rf_vf rv = {0};
          int left = dst->count - v * RF_VW;
          if (left >= RF_VW)
            memcpy(&rv, dst->res + r * dst->stride + v * RF_VW, sizeof rv);
          else if (left > 0)
            memcpy(&rv, dst->res + r * dst->stride + v * RF_VW, sizeof(float) * (size_t)left);
          acc[r][v] += rv;
        }
  if (act == RF_ACT_RELU || act == RF_ACT_CLIP) {
    rf_vf lo = (rf_vf){0} + (act == RF_ACT_RELU ? 0.0f : p0), hi = (rf_vf){0} + p1;
    RF_UNROLL
    for (r = 0; r < RF_MR; ++r)
      RF_UNROLL
      for (v = 0; v < nv; ++v) acc[r][v] = rf_relu_clip_v(acc[r][v], act, lo, hi);
  }
  if (dst) {
    RF_UNROLL
    for (r = 0; r < RF_MR; ++r)
      if (r < dst->rows)
        RF_UNROLL
        for (v = 0; v < nv; ++v) {
          int left = dst->count - v * RF_VW;
          if (left >= RF_VW)
            memcpy(dst->out + r * dst->stride + v * RF_VW, &acc[r][v], sizeof acc[r][v]);
          else if (left > 0) {
            /* Through a copy: a variable-length copy from acc itself would
             * take its address and keep every accumulator in memory. */
            rf_vf part = acc[r][v];
            memcpy(dst->out + r * dst->stride + v * RF_VW, &part, sizeof(float) * (size_t)left);
          }
        }
    return;
  }
  RF_UNROLL
  for (r = 0; r < RF_MR; ++r)
    RF_UNROLL
    for (v = 0; v < nv; ++v) memcpy(out[r] + v * RF_VW, &acc[r][v], sizeof acc[r][v]);
#else
  int r, j, c, t, n = dv * RF_NR;
  for (r = 0; r < RF_MR; ++r)
    for (j = 0; j < n; ++j) out[r][j] = 0.0f;
  for (c = 0; c < channels; ++c, in += chan_stride)
    for (t = 0; t < taps; ++t, w += RF_MR) {
      const float *src = in + toff[t];
      int valid = c == channels - 1 && last >= 0 ? (int)(last - toff[t] < n ? last - toff[t] : n) : n;
      for (r = 0; r < RF_MR; ++r)
        for (j = 0; j < valid; ++j) out[r][j] += w[r] * src[j];
    }
  for (r = 0; r < RF_MR; ++r) {
    if (bias)
      for (j = 0; j < n; ++j) out[r][j] += bias[r];
    if (dst && dst->res && r < dst->rows)
      for (j = 0; j < dst->count; ++j) out[r][j] += dst->res[r * dst->stride + j];
    if (act == RF_ACT_RELU || act == RF_ACT_CLIP) rf_activate_n(out[r], n, act, p0, p1);
    if (dst && r < dst->rows) memcpy(dst->out + r * dst->stride, out[r], sizeof(float) * (size_t)dst->count);
  }
#endif
}

/* Copies channel planes of input `x` (cg channels) into phase planes. */
static inline void rf_direct_fill(const float *x, const rf_conv_shape *s, const rf_direct_geometry *g,
                                  int channels, float *planes) {
  int rows = (int)(g->plane / g->wpad), c, py, px, r, j;
  for (c = 0; c < channels; ++c)
    for (py = 0; py < s->sh; ++py)
      for (px = 0; px < s->sw; ++px) {
        float *p = planes + ((ptrdiff_t)(c * s->sh + py) * s->sw + px) * g->plane;
        const float *src = x + (ptrdiff_t)c * s->h * s->w;
        /* Strided phases: columns [slo, shi) read input column
         * j * sw + px - pl, the same for every row. */
        int slo = 0, shi;
        while (slo < g->wpad && slo * s->sw + px - s->pl < 0) ++slo;
        shi = slo;
        while (shi < g->wpad && shi * s->sw + px - s->pl < s->w) ++shi;
        for (r = 0; r < rows; ++r, p += g->wpad) {
          int ry = r * s->sh + py - s->pt;
          if (ry < 0 || ry >= s->h) {
            for (j = 0; j < g->wpad; ++j) p[j] = 0.0f;
            continue;
          }
          if (s->sw == 1) {
            /* columns j hold input column j - pl */
            int lo = s->pl < g->wpad ? s->pl : g->wpad, hi = s->pl + s->w < g->wpad ? s->pl + s->w : g->wpad;
            for (j = 0; j < lo; ++j) p[j] = 0.0f;
            if (hi > lo) memcpy(p + lo, src + (ptrdiff_t)ry * s->w + (lo - s->pl), sizeof(float) * (size_t)(hi - lo));
            for (j = hi > lo ? hi : lo; j < g->wpad; ++j) p[j] = 0.0f;
          } else {
            /* columns [lo, hi) read input column j * sw + px - pl: a strided
             * copy without bounds checks (it vectorizes) between zeros */
            const float *row = src + (ptrdiff_t)ry * s->w + px - s->pl;
            int lo = slo, hi = shi;
            for (j = 0; j < lo; ++j) p[j] = 0.0f;
            if (s->sw == 2)
              for (j = lo; j < hi; ++j) p[j] = row[2 * j];
            else
              for (j = lo; j < hi; ++j) p[j] = row[j * s->sw];
            for (j = hi; j < g->wpad; ++j) p[j] = 0.0f;
          }
        }
        for (r = rows * g->wpad; r < g->plane; ++r) planes[((ptrdiff_t)(c * s->sh + py) * s->sw + px) * g->plane + r] = 0.0f;
      }
}

/* Stores flat positions [q0, qend) of one output channel's tile (tile[0]
 * is position q0) as pixels of the output plane `out`, dropping the columns
 * past the output width: + bias + residual (which may be `out` itself),
 * then the activation. */
RF_INLINE void rf_direct_store(const float *tile, ptrdiff_t q0, ptrdiff_t qend, int wpad, int ow,
                               float *out, const float *res, float b, int act, float p0, float p1) {
  ptrdiff_t q;
  for (q = q0; q < qend;) {
    int oy = (int)(q / wpad), ox = (int)(q % wpad);
    ptrdiff_t run = ox < ow ? ow - ox : 0, at;
    const float *src = tile + (q - q0);
    if (run == 0) {
      q += wpad - ox;
      continue;
    }
    if (run > qend - q) run = qend - q;
    at = (ptrdiff_t)oy * ow + ox;
    rf_store_act_n(out + at, src, res ? res + at : NULL, b, run, act, p0, p1);
    q += run;
  }
}

/* The pixels a strided 1x1 conv reads, x[p][oy * sh][ox * sw] of each of
 * `planes` channel planes, packed densely ([planes][oh * ow]) for
 * rf_conv2d_direct's pointwise tiles, then RF_NR zeros (the last tile's
 * vector loads run past the last plane). */
RF_KERNEL void rf_subsample(const float *x, int planes, int h, int w, int sh, int sw, int oh, int ow,
                            float *out) {
  int p, oy, ox;
  for (p = 0; p < planes; ++p)
    for (oy = 0; oy < oh; ++oy, out += ow) {
      const float *row = x + ((ptrdiff_t)p * h + (ptrdiff_t)oy * sh) * w;
      if (sw == 2)
        for (ox = 0; ox < ow; ++ox) out[ox] = row[2 * ox];
      else
        for (ox = 0; ox < ow; ++ox) out[ox] = row[ox * sw];
    }
  memset(out, 0, sizeof(float) * RF_NR);
}

/* Scratch: cg * sh * sw * plane floats. */
/* Input floats (channels x positions) a block of rf_conv2d_direct's
 * tiles reads: about half of L1 for a window, half of L2 for a pointwise
 * conv (whose panels then stream long runs of the input from L2:
 * 64 -> 256 at 56x56 0.79x the time of L1-sized blocks, 256 -> 1024 at
 * 14x14 0.91x, bench/c_conv_kernels.sh; for windows larger blocks lose up
 * to 7%). */
#ifndef RF_DIRECT_BLOCK
#define RF_DIRECT_BLOCK 6144
#endif
#ifndef RF_DIRECT_BLOCK_POINTWISE
#define RF_DIRECT_BLOCK_POINTWISE 131072
#endif

/* The tile of rf_conv2d_direct starting at flat position q0: its length
 * (*len), and where the next one starts. Row by row (RF_DIRECT_ROWWISE) or
 * along the flat run. */
static inline ptrdiff_t rf_direct_next(ptrdiff_t q0, ptrdiff_t nflat, const rf_conv_shape *s,
                                       const rf_direct_geometry *g, ptrdiff_t *len) {
  ptrdiff_t ox0 = q0 % g->wpad;
  if (RF_DIRECT_ROWWISE(s->ow, g->wpad)) {
    *len = s->ow - ox0 < RF_DIRECT_SPAN ? s->ow - ox0 : RF_DIRECT_SPAN;
    return ox0 + *len >= s->ow ? q0 - ox0 + g->wpad : q0 + *len;
  } else {
    /* The vectors left, spread evenly over the tiles left: 13 as
     * 4 + 3 + 3 + 3 rather than 4 + 4 + 4 + 1, whose last tile would be
     * all loads. */
    ptrdiff_t vleft = (nflat - q0 + RF_NR - 1) / RF_NR, per = RF_DIRECT_SPAN / RF_NR;
    ptrdiff_t tleft = (vleft + per - 1) / per, vt = (vleft + tleft - 1) / tleft;
    *len = nflat - q0 < vt * RF_NR ? nflat - q0 : vt * RF_NR;
    return q0 + *len;
  }
}

RF_KERNEL void rf_conv2d_direct(const float *x, float *y, const float *wp, const float *bias,
                                const float *residual, const rf_conv_shape *s,
                                const rf_direct_geometry *g, float *planes, int act, float p0, float p1) {
  int cg = s->c / s->groups, mg = s->m / s->groups, taps = s->kh * s->kw, n, grp, ky, kx, r;
  ptrdiff_t ohw = (ptrdiff_t)s->oh * s->ow, kg = (ptrdiff_t)cg * taps;
  ptrdiff_t mpad = (mg + RF_MR - 1) / RF_MR * RF_MR;
  ptrdiff_t chan = g->plane ? (ptrdiff_t)s->sh * s->sw * g->plane : (ptrdiff_t)s->h * s->w;
  ptrdiff_t nflat = (ptrdiff_t)(s->oh - 1) * g->wpad + s->ow, q0, qnext, last, bq0, bq1, len;
  int m0;
  ptrdiff_t toff[RF_DIRECT_MAX_TAPS];
  float tile[RF_MR][RF_DIRECT_SPAN];
  for (ky = 0; ky < s->kh; ++ky)
    for (kx = 0; kx < s->kw; ++kx) {
      int dy = ky * s->dh, dx = kx * s->dw;
      toff[ky * s->kw + kx] = ((ptrdiff_t)(dy % s->sh) * s->sw + dx % s->sw) * g->plane +
                              (ptrdiff_t)(dy / s->sh) * g->wpad + dx / s->sw;
    }
  for (n = 0; n < s->n; ++n)
    for (grp = 0; grp < s->groups; ++grp) {
      const float *wg = wp + (ptrdiff_t)grp * mpad * kg;
      ptrdiff_t obase = ((ptrdiff_t)n * s->m + (ptrdiff_t)grp * mg) * ohw;
      const float *xg = x + ((ptrdiff_t)n * s->c + (ptrdiff_t)grp * cg) * s->h * s->w;
      const float *in = xg;
      if (g->plane) {
        rf_direct_fill(xg, s, g, cg, planes);
        in = planes;
      }
      /* Blocks of tiles whose input stays in cache (RF_DIRECT_BLOCK),
       * every output panel over each: long runs of six output planes at a
       * time rather than short runs of all. */
      for (bq0 = 0; bq0 < nflat; bq0 = bq1) {
        bq1 = rf_direct_next(bq0, nflat, s, g, &len);
        while (bq1 < nflat && (rf_direct_next(bq1, nflat, s, g, &len) - bq0) * cg <=
                                  (taps == 1 ? RF_DIRECT_BLOCK_POINTWISE : RF_DIRECT_BLOCK))
          bq1 = rf_direct_next(bq1, nflat, s, g, &len);
        for (m0 = 0; m0 < mg; m0 += RF_MR)
          for (q0 = bq0; q0 < bq1; q0 = qnext) {
            ptrdiff_t ox0 = q0 % g->wpad, qend;
            int dv;
            qnext = rf_direct_next(q0, nflat, s, g, &len);
            dv = (int)((len + RF_NR - 1) / RF_NR);
            (void)dv; /* always 1 below RF_DIRECT_VECTORS 4 */
            qend = q0 + len;
            /* Read in place, the last image's last channel ends before the
             * tile's vectors do: that channel is read through a copy. */
            last = !g->plane && n == s->n - 1 && grp == s->groups - 1 &&
                           q0 + (ptrdiff_t)dv * RF_NR > (ptrdiff_t)s->h * s->w
                       ? (ptrdiff_t)s->h * s->w - q0
                       : -1;
            const float *wpanel = wg + (ptrdiff_t)m0 * kg;
            int mm = mg - m0 < RF_MR ? mg - m0 : RF_MR;
            /* Bias, and Relu or Clip unless a residual comes first, in the
             * tile's registers; the rest as the tile is stored. */
            const float *bpanel = NULL;
            float bpad[RF_MR];
            /* A tile inside one output row is stored from registers. */
            ptrdiff_t at0 = obase + (ptrdiff_t)m0 * ohw + q0 / g->wpad * s->ow + ox0;
            rf_direct_dst dst, *to = NULL;
            int reg_act, i;
            if ((qend - 1) / g->wpad == q0 / g->wpad && ox0 < s->ow) {
              dst.out = y + at0;
              dst.res = residual ? residual + at0 : NULL;
              dst.stride = ohw;
              dst.rows = mm;
              dst.count = (int)(ox0 + len <= s->ow ? len : s->ow - ox0);
              to = &dst;
            }
            reg_act = residual && !to ? RF_ACT_NONE : act;
            if (reg_act != RF_ACT_RELU && reg_act != RF_ACT_CLIP)
              reg_act = RF_ACT_NONE;
            if (to && reg_act != act)
              to = NULL, reg_act = residual ? RF_ACT_NONE : reg_act;
            if (bias) {
              for (i = 0; i < RF_MR; ++i)
                bpad[i] = i < mm ? bias[grp * mg + m0 + i] : 0.0f;
              bpanel = bpad;
            }
#if RF_DIRECT_VECTORS == 4
            if (dv == 4)
              rf_direct_tile(in + q0, chan, cg, wpanel, toff, taps, 4, bpanel, reg_act, p0, p1,
                             tile, to, last);
            else if (dv == 3)
              rf_direct_tile(in + q0, chan, cg, wpanel, toff, taps, 3, bpanel, reg_act, p0, p1,
                             tile, to, last);
            else if (dv == 2)
              rf_direct_tile(in + q0, chan, cg, wpanel, toff, taps, 2, bpanel, reg_act, p0, p1,
                             tile, to, last);
            else
#endif
              rf_direct_tile(in + q0, chan, cg, wpanel, toff, taps, 1, bpanel, reg_act, p0, p1,
                             tile, to, last);
            if (to)
              continue;
            for (r = 0; r < mm; ++r) {
              ptrdiff_t plane_at = obase + (ptrdiff_t)(m0 + r) * ohw;
              rf_direct_store(tile[r], q0, qend, g->wpad, s->ow, y + plane_at,
                              residual ? residual + plane_at : NULL, 0.0f,
                              reg_act == RF_ACT_NONE ? act : RF_ACT_NONE, p0, p1);
            }
          }
      }
    }
}

/* Channel-vectorized direct convolution, for small output planes, where
 * rf_conv2d_direct's flat tiles compute many columns only to drop them
 * (at 7x7 a fifth of its work). A tile is up to RF_CV_PIX output pixels
 * (consecutive in the output, so nothing is dropped) by RF_CV_SPAN output
 * channels: per input channel and tap it loads RF_CV_SPAN weights
 * and broadcasts one input value per pixel. Weights are packed in panels
 * of RF_CV_PANEL output channels (K x RF_CV_PANEL each, K = (c, ky, kx),
 * channels past mg zero), the same on every target. The input is read
 * from the direct kernel's phase planes (same geometry) or, when no tap
 * reaches the padding (plane 0: a 1x1 conv at any stride), in place. K runs
 * in blocks of cb input channels, so that a block of weights stays in L2
 * while every pixel tile of a panel sweeps it; partial sums wait in
 * scratch in the tile's own layout, and only the last block is transposed
 * into NCHW with bias, residual and activation. */
#if defined(__GNUC__) && !defined(RF_SCALAR) && defined(__AVX512F__)
#define RF_CV_SPAN 64 /* 32 registers: RF_CV_PIX x 4 accumulators */
#else
#define RF_CV_SPAN 16
#endif
#define RF_CV_PIX 6
#define RF_CV_PANEL 64 /* channels per packed panel, whatever the target */

/* np pixels (flat offsets pix[]) x RF_CV_SPAN channels over `channels`
 * input channels, added to acc (tile layout: acc[p * RF_CV_PANEL + j]);
 * w is the panel's column of the first of them. */
RF_INLINE void rf_cvec_tile(const float *in, ptrdiff_t chan_stride, int channels, const float *w,
                            const ptrdiff_t *toff, int taps, const ptrdiff_t *pix, const int np,
                            float *acc, const float *prefetch, ptrdiff_t prefetch_lines) {
#if defined(__GNUC__) && !defined(RF_SCALAR)
  enum { nv = RF_CV_SPAN / RF_VW };
  rf_vf a[RF_CV_PIX][nv];
  ptrdiff_t po[RF_CV_PIX];
  int p, v, c, t;
  for (p = 0; p < np; ++p) {
    po[p] = pix[p];
    for (v = 0; v < nv; ++v) memcpy(&a[p][v], acc + p * RF_CV_PANEL + v * RF_VW, sizeof a[p][v]);
  }
  ptrdiff_t line = 0;
  /* One input channel and tap: the weights' vectors times each pixel. */
#define RF_CV_STEP(src)                                                                  \
  do {                                                                                   \
    rf_vf wv[nv];                                                                        \
    if (line < prefetch_lines) __builtin_prefetch(prefetch + line * 16, 0, 2);           \
    for (v = 0; v < nv; ++v) memcpy(&wv[v], w + v * RF_VW, sizeof wv[v]);                \
    for (p = 0; p < np; ++p) {                                                           \
      float xv = (src)[po[p]];                                                           \
      for (v = 0; v < nv; ++v) a[p][v] += xv * wv[v];                                    \
    }                                                                                    \
  } while (0)
  if (taps == 1) {
    /* One flat loop over the channels (pointwise convs). */
    const float *src = in + toff[0];
    for (c = 0; c < channels; ++c, src += chan_stride, w += RF_CV_PANEL, ++line) RF_CV_STEP(src);
  } else
    for (c = 0; c < channels; ++c, in += chan_stride)
      for (t = 0; t < taps; ++t, w += RF_CV_PANEL, ++line) RF_CV_STEP(in + toff[t]);
#undef RF_CV_STEP
  for (p = 0; p < np; ++p)
    for (v = 0; v < nv; ++v) memcpy(acc + p * RF_CV_PANEL + v * RF_VW, &a[p][v], sizeof a[p][v]);
#else
  int p, j, c, t;
  (void)prefetch;
  (void)prefetch_lines;
  for (c = 0; c < channels; ++c, in += chan_stride)
    for (t = 0; t < taps; ++t, w += RF_CV_PANEL) {
      const float *src = in + toff[t];
      for (p = 0; p < np; ++p) {
        float xv = src[pix[p]];
        for (j = 0; j < RF_CV_SPAN; ++j) acc[p * RF_CV_PANEL + j] += xv * w[j];
      }
    }
#endif
}

/* Scratch: cg * sh * sw * plane floats of phase planes (none when the
 * input is read in place, plane 0), then oh * ow * RF_CV_PANEL floats of
 * partial sums. */
RF_KERNEL void rf_conv2d_cvec(const float *x, float *y, const float *wp, const float *bias,
                              const float *residual, const rf_conv_shape *s,
                              const rf_direct_geometry *g, int cb, float *scratch, int act, float p0,
                              float p1) {
  int cg = s->c / s->groups, mg = s->m / s->groups, taps = s->kh * s->kw, n, grp, ky, kx;
  ptrdiff_t ohw = (ptrdiff_t)s->oh * s->ow, kg = (ptrdiff_t)cg * taps;
  ptrdiff_t mpad = (mg + RF_CV_PANEL - 1) / RF_CV_PANEL * RF_CV_PANEL, wsize = s->groups * mpad * kg;
  ptrdiff_t chan = g->plane ? (ptrdiff_t)s->sh * s->sw * g->plane : (ptrdiff_t)s->h * s->w;
  ptrdiff_t ntiles = (ohw + RF_CV_PIX - 1) / RF_CV_PIX, toff[RF_DIRECT_MAX_TAPS];
  float *planes = scratch, *partial = scratch + (g->plane ? cg * chan : 0);
  /* Output pixel (oy, ox) reads from oy * row_step + ox * col_step: in the
   * phase planes, or in the input itself when no tap reaches the padding. */
  ptrdiff_t row_step = g->plane ? g->wpad : (ptrdiff_t)s->sh * s->w, col_step = g->plane ? 1 : s->sw;
  for (ky = 0; ky < s->kh; ++ky)
    for (kx = 0; kx < s->kw; ++kx) {
      int dy = ky * s->dh, dx = kx * s->dw;
      toff[ky * s->kw + kx] = g->plane ? ((ptrdiff_t)(dy % s->sh) * s->sw + dx % s->sw) * g->plane +
                                             (ptrdiff_t)(dy / s->sh) * g->wpad + dx / s->sw
                                       : (ptrdiff_t)dy * s->w + dx;
    }
  for (n = 0; n < s->n; ++n)
    for (grp = 0; grp < s->groups; ++grp) {
      ptrdiff_t obase = ((ptrdiff_t)n * s->m + (ptrdiff_t)grp * mg) * ohw, m0;
      const float *in = x + ((ptrdiff_t)n * s->c + (ptrdiff_t)grp * cg) * s->h * s->w;
      if (g->plane) {
        rf_direct_fill(in, s, g, cg, planes);
        in = planes;
      }
      for (m0 = 0; m0 < mg; m0 += RF_CV_PANEL) {
        const float *wpanel = wp + (ptrdiff_t)grp * mpad * kg + m0 * kg;
        int mm = mg - m0 < RF_CV_PANEL ? (int)(mg - m0) : RF_CV_PANEL, c0, jc;
        for (c0 = 0; c0 < cg; c0 += cb) {
          int cc = cg - c0 < cb ? cg - c0 : cb;
          int first = c0 == 0, last = c0 + cc >= cg;
          ptrdiff_t tl;
          for (tl = 0; tl < ntiles; ++tl) {
            /* Tiles as even as the pixel count allows: 49 = 5 x 6 + 4 x 5. */
            ptrdiff_t i0 = tl * (ohw / ntiles) + (tl < ohw % ntiles ? tl : ohw % ntiles);
            int np = (int)(ohw / ntiles + (tl < ohw % ntiles)), p, j;
            float *acc = partial + i0 * RF_CV_PANEL;
            ptrdiff_t pix[RF_CV_PIX];
            for (p = 0; p < np; ++p)
              pix[p] = (i0 + p) / s->ow * row_step + (i0 + p) % s->ow * col_step;
            if (first)
              for (j = 0; j < np * RF_CV_PANEL; ++j) acc[j] = 0.0f;
            for (j = 0; j < mm; j += RF_CV_SPAN) {
              const float *cin = in + c0 * chan, *cw = wpanel + (ptrdiff_t)c0 * taps * RF_CV_PANEL + j;
              float *a = acc + j;
              /* Weights come from memory once per block; every tile fetches
               * its share of the next block (contiguous after this one)
               * into L2 while it computes, instead of the first tile of the
               * next block waiting for all of it. */
              ptrdiff_t block = (ptrdiff_t)cc * taps * RF_CV_PANEL;
              ptrdiff_t next = (ptrdiff_t)(wpanel - wp) + (ptrdiff_t)c0 * taps * RF_CV_PANEL + block;
              ptrdiff_t share = (block / 16 + ntiles - 1) / ntiles, from = next + tl * share * 16, lines = 0;
              const float *pf = wp;
              if (j == 0 && from < wsize) {
                pf = wp + from;
                lines = (wsize - from) / 16 < share ? (wsize - from) / 16 : share;
              }
              if (np == 6) rf_cvec_tile(cin, chan, cc, cw, toff, taps, pix, 6, a, pf, lines);
              else if (np == 5) rf_cvec_tile(cin, chan, cc, cw, toff, taps, pix, 5, a, pf, lines);
              else if (np == 4) rf_cvec_tile(cin, chan, cc, cw, toff, taps, pix, 4, a, pf, lines);
              else if (np == 3) rf_cvec_tile(cin, chan, cc, cw, toff, taps, pix, 3, a, pf, lines);
              else if (np == 2) rf_cvec_tile(cin, chan, cc, cw, toff, taps, pix, 2, a, pf, lines);
              else rf_cvec_tile(cin, chan, cc, cw, toff, taps, pix, 1, a, pf, lines);
            }
          }
          if (!last) continue;
          /* Into NCHW, the whole panel at once: channel j's pixels are one
           * run, read across the tiles' layout (each pixel's channels are
           * contiguous), stored once with bias, residual and activation.
           * Tile by tile, the short runs cost as much as the products
           * from K = 128 up to about 320. */
          for (jc = 0; jc < mm; ++jc) {
            ptrdiff_t at = obase + (m0 + jc) * ohw, p;
            float b = bias ? bias[grp * mg + m0 + jc] : 0.0f, *dst = y + at;
            const float *src = partial + jc;
            if (act == RF_ACT_RELU && !residual)
              for (p = 0; p < ohw; ++p) {
                float v = src[p * RF_CV_PANEL] + b;
                dst[p] = v > 0.0f ? v : 0.0f;
              }
            else if (!residual && act == RF_ACT_NONE)
              for (p = 0; p < ohw; ++p) dst[p] = src[p * RF_CV_PANEL] + b;
            else {
              for (p = 0; p < ohw; ++p)
                dst[p] = src[p * RF_CV_PANEL] + b + (residual ? residual[at + p] : 0.0f);
              rf_activate_n(dst, ohw, act, p0, p1);
            }
          }
        }
      }
    }
}

/* Depthwise k x k conv, stride 1, "same" zero padding (k / 2 on every
 * side), one output channel per input channel: the whole channel is one
 * flat run of h * w pixels, computed 16 at a time. A tap (ky, kx) reads the
 * channel at flat offset (ky - p) * w + (kx - p); rows above and below come
 * from zero guards around a copy of the channel, and the columns a tap
 * would wrap into the neighbouring row are cut by a per-column-offset
 * bit mask (a select, so the wrapped values never enter the sum). No short
 * rows, no bounds checks. Scratch: k masks and the guarded copy, k *
 * padded + 2 * guard + padded floats, where padded = h * w rounded up to 16
 * and guard = (k / 2) * w + k / 2 + 16 rounded up to 16 (the copy starts
 * aligned; the 3x3 kernel reads a vector before and after each row). */
#if defined(__GNUC__) && !defined(RF_SCALAR)
/* A vector of the row shifted one lane toward its start, taking the last
 * lane of the vector before (RF_SHIFT_IN), or toward its end, taking the
 * first lane of the vector after (RF_SHIFT_OUT), and the even and odd
 * lanes of two vectors (RF_EVEN, RF_ODD), where the compiler has
 * __builtin_shufflevector (GCC 12, Clang) and the target does it in one
 * instruction (AVX, NEON's ext, SSSE3's palignr; plain SSE2 takes several,
 * and the unaligned loads are faster there). */
#if defined(__has_builtin) && (RF_VW >= 8 || defined(__aarch64__) || defined(__SSSE3__))
#if __has_builtin(__builtin_shufflevector)
#if RF_VW == 16
#define RF_SHIFT_IN(p, c) \
  __builtin_shufflevector(p, c, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30)
#define RF_SHIFT_OUT(c, n) \
  __builtin_shufflevector(c, n, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)
#define RF_EVEN(a, b) \
  __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)
#define RF_ODD(a, b) \
  __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31)
#elif RF_VW == 8
#define RF_SHIFT_IN(p, c) __builtin_shufflevector(p, c, 7, 8, 9, 10, 11, 12, 13, 14)
#define RF_SHIFT_OUT(c, n) __builtin_shufflevector(c, n, 1, 2, 3, 4, 5, 6, 7, 8)
#define RF_EVEN(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14)
#define RF_ODD(a, b) __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15)
#else
#define RF_SHIFT_IN(p, c) __builtin_shufflevector(p, c, 3, 4, 5, 6)
#define RF_SHIFT_OUT(c, n) __builtin_shufflevector(c, n, 1, 2, 3, 4)
#define RF_EVEN(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6)
#define RF_ODD(a, b) __builtin_shufflevector(a, b, 1, 3, 5, 7)
#endif
#endif
#endif

/* rf_depthwise_same's 3x3 channel with Relu, Clip or no activation: the
 * nine weights in registers, the taps unrolled, the residual and the
 * activation applied in registers before one store per vector. */
RF_INLINE void rf_depthwise_same3(const float *base, int w, ptrdiff_t hw, ptrdiff_t padded,
                                  const float *wc, float b, const float *res, const int32_t *masks,
                                  float *out, int act, float p0, float p1) {
  rf_vf wv[9], lo = (rf_vf){0} + (act == RF_ACT_CLIP ? p0 : 0.0f), hi = (rf_vf){0} + p1;
  ptrdiff_t q;
  int t;
#ifdef RF_SHIFT_IN
  /* One load per row and vector: the taps one column left and right are
   * the row's vectors shifted by a lane (the previous and next vector
   * carried along). */
  rf_vf prev[3], cur[3];
  for (t = 0; t < 3; ++t) {
    memcpy(&prev[t], base - RF_VW + (ptrdiff_t)(t - 1) * w, sizeof prev[t]);
    memcpy(&cur[t], base + (ptrdiff_t)(t - 1) * w, sizeof cur[t]);
  }
#endif
  for (t = 0; t < 9; ++t) wv[t] = (rf_vf){0} + wc[t];
  for (q = 0; q < padded; q += RF_VW) {
    const float *c = base + q;
    rf_vf v[9], acc = (rf_vf){0} + b, part;
    rf_vi keep;
    int j;
#ifdef RF_SHIFT_IN
    for (t = 0; t < 3; ++t) {
      rf_vf next;
      memcpy(&next, c + RF_VW + (ptrdiff_t)(t - 1) * w, sizeof next);
      v[3 * t] = RF_SHIFT_IN(prev[t], cur[t]);
      v[3 * t + 1] = cur[t];
      v[3 * t + 2] = RF_SHIFT_OUT(cur[t], next);
      prev[t] = cur[t];
      cur[t] = next;
    }
#else
    for (t = 0; t < 9; ++t) memcpy(&v[t], c + (ptrdiff_t)(t / 3 - 1) * w + (t % 3 - 1), sizeof v[t]);
#endif
    /* Column by column, as the general loop sums them. */
    part = wv[0] * v[0] + wv[3] * v[3] + wv[6] * v[6];
    memcpy(&keep, masks + q, sizeof keep);
    acc += (rf_vf)((rf_vi)part & keep);
    acc += wv[1] * v[1] + wv[4] * v[4] + wv[7] * v[7];
    part = wv[2] * v[2] + wv[5] * v[5] + wv[8] * v[8];
    memcpy(&keep, masks + 2 * padded + q, sizeof keep);
    acc += (rf_vf)((rf_vi)part & keep);
    if (q + RF_VW <= hw) {
      if (res) {
        rf_vf r;
        memcpy(&r, res + q, sizeof r);
        acc += r;
      }
      acc = rf_relu_clip_v(acc, act, lo, hi);
      memcpy(out + q, &acc, sizeof acc);
    } else { /* the last, partial vector */
      float lane[RF_VW];
      memcpy(lane, &acc, sizeof acc);
      for (j = 0; q + j < hw; ++j) {
        out[q + j] = lane[j] + (res ? res[q + j] : 0.0f);
        out[q + j] = rf_activate(out[q + j], act, p0, p1);
      }
    }
  }
}
#endif

#if defined(RF_SHIFT_IN)
/* RF_VW floats from p; past `end` (the end of the tensor) they read as 0. */
RF_INLINE rf_vf rf_load_guarded(const float *p, const float *end) {
  rf_vf v;
  if (p + RF_VW <= end) {
    memcpy(&v, p, sizeof v);
  } else {
    float lane[RF_VW] = {0};
    ptrdiff_t j;
    for (j = 0; j < RF_VW && p + j < end; ++j) lane[j] = p[j];
    memcpy(&v, lane, sizeof v);
  }
  return v;
}

/* rf_depthwise_same's 3x3 channel on rows of at most RF_VW pixels (7x7,
 * 14x14 under AVX-512), Relu, Clip or no activation: one vector per row,
 * its left and right taps the row shifted a lane with a zero coming in;
 * rows outside the image skipped. No copy of the channel, no masks but the
 * row's end. `end` bounds the input's reads, `res_end` the residual's;
 * with `spill` a row is stored whole, over the start of the next (written
 * after it), where that stays before `out_end`. */
RF_INLINE void rf_depthwise3x3_narrow(const float *plane, const float *end, int h, int w,
                                      rf_vi keep, const float *wc, float b, const float *res,
                                      const float *res_end, float *out, const float *out_end,
                                      int spill, int act, float p0, float p1) {
  rf_vf wv[9], zero = (rf_vf){0}, lo = (rf_vf){0} + (act == RF_ACT_CLIP ? p0 : 0.0f);
  rf_vf hi = (rf_vf){0} + p1;
  int oy, t, j;
  for (t = 0; t < 9; ++t) wv[t] = (rf_vf){0} + wc[t];
  /* The rows as vectors, carried from one output row to the next: one
   * load per row, zero above and below the image. */
  rf_vf above = zero, cur = (rf_vf)((rf_vi)rf_load_guarded(plane, end) & keep), below;
  for (oy = 0; oy < h; ++oy) {
    rf_vf acc = (rf_vf){0} + b;
    float *dst = out + (ptrdiff_t)oy * w;
    below = oy + 1 < h ? (rf_vf)((rf_vi)rf_load_guarded(plane + (ptrdiff_t)(oy + 1) * w, end) & keep)
                       : zero;
    acc += wv[0] * RF_SHIFT_IN(zero, above) + wv[1] * above + wv[2] * RF_SHIFT_OUT(above, zero);
    acc += wv[3] * RF_SHIFT_IN(zero, cur) + wv[4] * cur + wv[5] * RF_SHIFT_OUT(cur, zero);
    acc += wv[6] * RF_SHIFT_IN(zero, below) + wv[7] * below + wv[8] * RF_SHIFT_OUT(below, zero);
    above = cur;
    cur = below;
    if (res) acc += rf_load_guarded(res + (ptrdiff_t)oy * w, res_end);
    acc = rf_relu_clip_v(acc, act, lo, hi);
    if (w == RF_VW || (spill && dst + RF_VW <= out_end)) {
      memcpy(dst, &acc, sizeof acc);
    } else {
      float lane[RF_VW];
      memcpy(lane, &acc, sizeof acc);
      for (j = 0; j < w; ++j) dst[j] = lane[j];
    }
  }
}
#endif

RF_KERNEL void rf_depthwise_same(const float *x, float *y, const float *w, const float *bias,
                                 const float *residual, const rf_conv_shape *s, float *scratch,
                                 int act, float p0, float p1) {
  int k = s->kw, p = k / 2, n, c, kx, ky;
  ptrdiff_t hw = (ptrdiff_t)s->h * s->w, padded = (hw + RF_NR - 1) / RF_NR * RF_NR;
  ptrdiff_t guard = ((ptrdiff_t)p * s->w + p + RF_NR + RF_NR - 1) / RF_NR * RF_NR, q, q0;
  int32_t *masks = (int32_t *)(void *)scratch; /* [k][padded]: column offset kx - p stays in the row */
  float *plane = scratch + (ptrdiff_t)k * padded, *base = plane + guard;
#if defined(RF_SHIFT_IN)
  if (k == 3 && s->w <= RF_VW && (act == RF_ACT_NONE || act == RF_ACT_RELU || act == RF_ACT_CLIP)) {
    /* Rows of one vector or less: straight from the input, row by row.
     * A row stored whole runs into the next one's start, written after it
     * (not into the residual or the input while they are still to be
     * read: the output may take over the residual's buffer, and the
     * residual may be the input). */
    const float *end = x + (ptrdiff_t)s->n * s->c * hw, *res_end = residual ? residual + (end - x) : NULL;
    const float *y_end = y + (end - x);
    int spill = ((uintptr_t)x >= (uintptr_t)y_end || (uintptr_t)end <= (uintptr_t)y) &&
                (!residual || (uintptr_t)residual >= (uintptr_t)y_end ||
                 (uintptr_t)res_end <= (uintptr_t)y);
    int32_t keep_in[RF_VW]; /* the lanes inside a row */
    rf_vi keep;
    for (kx = 0; kx < RF_VW; ++kx) keep_in[kx] = kx < s->w ? -1 : 0;
    memcpy(&keep, keep_in, sizeof keep);
    for (n = 0; n < s->n; ++n)
      for (c = 0; c < s->c; ++c) {
        ptrdiff_t at = ((ptrdiff_t)n * s->c + c) * hw;
        rf_depthwise3x3_narrow(x + at, end, s->h, s->w, keep, w + (ptrdiff_t)c * 9,
                               bias ? bias[c] : 0.0f, residual ? residual + at : NULL, res_end,
                               y + at, y_end, spill, act, p0, p1);
      }
    return;
  }
#endif
  for (kx = 0; kx < k; ++kx)
    for (q = 0; q < padded; ++q) {
      int col = (int)(q % s->w) + kx - p;
      masks[(ptrdiff_t)kx * padded + q] = col >= 0 && col < s->w ? -1 : 0;
    }
  memset(plane, 0, sizeof(float) * (size_t)guard);
  memset(base + hw, 0, sizeof(float) * (size_t)(guard + padded - hw));
  for (n = 0; n < s->n; ++n)
    for (c = 0; c < s->c; ++c) {
      ptrdiff_t at = ((ptrdiff_t)n * s->c + c) * hw;
      const float *wc = w + (ptrdiff_t)c * k * k;
      const float *res = residual ? residual + at : NULL;
      float *out = y + at, b = bias ? bias[c] : 0.0f;
      memcpy(base, x + at, sizeof(float) * (size_t)hw);
#if defined(__GNUC__) && !defined(RF_SCALAR)
      if (k == 3 && (act == RF_ACT_NONE || act == RF_ACT_RELU || act == RF_ACT_CLIP)) {
        rf_depthwise_same3(base, s->w, hw, padded, wc, b, res, masks, out, act, p0, p1);
        continue;
      }
#endif
      for (q0 = 0; q0 < padded; q0 += RF_NR) {
        float lane[RF_NR];
        int j, m = hw - q0 < RF_NR ? (int)(hw - q0) : RF_NR;
#if defined(__GNUC__) && !defined(RF_SCALAR)
        rf_vf acc[RF_NV];
        int u;
        for (u = 0; u < RF_NV; ++u) acc[u] = (rf_vf){0} + b;
        for (kx = 0; kx < k; ++kx)
          for (u = 0; u < RF_NV; ++u) {
            ptrdiff_t at = q0 + u * RF_VW;
            rf_vf part = {0}, v;
            rf_vi keep;
            for (ky = 0; ky < k; ++ky) {
              memcpy(&v, base + at + (ptrdiff_t)(ky - p) * s->w + (kx - p), sizeof v);
              part += wc[ky * k + kx] * v;
            }
            if (kx != p) {
              memcpy(&keep, masks + (ptrdiff_t)kx * padded + at, sizeof keep);
              part = (rf_vf)((rf_vi)part & keep);
            }
            acc[u] += part;
          }
        for (u = 0; u < RF_NV; ++u) memcpy(lane + u * RF_VW, &acc[u], sizeof acc[u]);
#else
        for (j = 0; j < RF_NR; ++j) lane[j] = b;
        for (kx = 0; kx < k; ++kx) {
          const int32_t *keep = masks + (ptrdiff_t)kx * padded + q0;
          for (j = 0; j < RF_NR; ++j) {
            float part = 0.0f;
            for (ky = 0; ky < k; ++ky) part += wc[ky * k + kx] * base[q0 + j + (ptrdiff_t)(ky - p) * s->w + (kx - p)];
            if (keep[j]) lane[j] += part;
          }
        }
#endif
        if (res)
          for (j = 0; j < m; ++j) lane[j] += res[q0 + j];
        if (m == RF_NR)
          memcpy(out + q0, lane, sizeof lane);
        else
          for (j = 0; j < m; ++j) out[q0 + j] = lane[j];
      }
      rf_activate_n(out, hw, act, p0, p1);
    }
}

/* Rows of the zero-padded input plane a 3x3 depthwise conv reads. */
static inline void rf_depthwise_plane_rows(const rf_conv_shape *s, int *hp, int *wp) {
  int need_h = (s->oh - 1) * s->sh + 3, need_w = (s->ow - 1) * s->sw + 3;
  *hp = need_h > s->h + s->pt ? need_h : s->h + s->pt;
  *wp = need_w > s->w + s->pl ? need_w : s->w + s->pl;
  *wp += *wp & 1; /* even, so both halves of a stride-2 row have wp / 2 */
}

/* 3x3 depthwise, stride 1 or 2: each channel's input is copied once into a
 * zero-padded plane (for stride 2 with each row split into even and odd
 * columns), so every tap is a contiguous vector load. Scratch: hp + 1 rows
 * of wp floats (rf_depthwise_plane_rows). */
static void rf_depthwise3x3(const float *x, float *y, const float *w, const float *bias,
                            const float *residual, const rf_conv_shape *s, float *plane_buf, int act,
                            float p0, float p1) {
  int mult = s->m / s->c, hp, wp, n, o, r, ox, oy;
  ptrdiff_t ohw = (ptrdiff_t)s->oh * s->ow;
  rf_depthwise_plane_rows(s, &hp, &wp);
  for (n = 0; n < s->n; ++n)
    for (o = 0; o < s->m; ++o) {
      const float *plane = x + ((ptrdiff_t)n * s->c + o / mult) * s->h * s->w;
      float *out = y + ((ptrdiff_t)n * s->m + o) * ohw;
      const float *res = residual ? residual + ((ptrdiff_t)n * s->m + o) * ohw : NULL;
      const float *wo = w + (ptrdiff_t)o * 9;
      float b = bias ? bias[o] : 0.0f;
      float w0 = wo[0], w1 = wo[1], w2 = wo[2], w3 = wo[3], w4 = wo[4], w5 = wo[5], w6 = wo[6],
            w7 = wo[7], w8 = wo[8];
      if (o % mult == 0) /* the plane of input channel o / mult */
        for (r = 0; r < hp; ++r) {
          float *RF_RESTRICT dst = plane_buf + (ptrdiff_t)r * wp;
          int iy = r - s->pt, i;
          if (iy < 0 || iy >= s->h) {
            for (i = 0; i < wp; ++i) dst[i] = 0.0f;
            continue;
          }
          if (s->sw == 1) {
            for (i = 0; i < s->pl; ++i) dst[i] = 0.0f;
            memcpy(dst + s->pl, plane + (ptrdiff_t)iy * s->w, sizeof(float) * (size_t)s->w);
            for (i = s->pl + s->w; i < wp; ++i) dst[i] = 0.0f;
          } else {
            /* Padded row in the spare row after the plane, then split. */
            float *RF_RESTRICT tmp = plane_buf + (ptrdiff_t)hp * wp;
            int half = wp / 2;
            for (i = 0; i < s->pl; ++i) tmp[i] = 0.0f;
            memcpy(tmp + s->pl, plane + (ptrdiff_t)iy * s->w, sizeof(float) * (size_t)s->w);
            for (i = s->pl + s->w; i < wp; ++i) tmp[i] = 0.0f;
            for (i = 0; i < half; ++i) dst[i] = tmp[2 * i];
            for (i = 0; i < half; ++i) dst[half + i] = tmp[2 * i + 1];
          }
        }
      for (oy = 0; oy < s->oh; ++oy) {
        float *RF_RESTRICT orow = out + (ptrdiff_t)oy * s->ow;
        const float *RF_RESTRICT r0 = plane_buf + (ptrdiff_t)(oy * s->sh) * wp;
        const float *RF_RESTRICT r1 = r0 + wp, *RF_RESTRICT r2 = r0 + 2 * wp;
        if (s->sw == 1) {
          for (ox = 0; ox < s->ow; ++ox)
            orow[ox] = b + w0 * r0[ox] + w1 * r0[ox + 1] + w2 * r0[ox + 2] + w3 * r1[ox] +
                       w4 * r1[ox + 1] + w5 * r1[ox + 2] + w6 * r2[ox] + w7 * r2[ox + 1] +
                       w8 * r2[ox + 2];
        } else {
          int half = wp / 2;
          const float *RF_RESTRICT e0 = r0, *RF_RESTRICT d0 = r0 + half;
          const float *RF_RESTRICT e1 = r1, *RF_RESTRICT d1 = r1 + half;
          const float *RF_RESTRICT e2 = r2, *RF_RESTRICT d2 = r2 + half;
          for (ox = 0; ox < s->ow; ++ox)
            orow[ox] = b + w0 * e0[ox] + w1 * d0[ox] + w2 * e0[ox + 1] + w3 * e1[ox] +
                       w4 * d1[ox] + w5 * e1[ox + 1] + w6 * e2[ox] + w7 * d2[ox] + w8 * e2[ox + 1];
        }
        if (res) {
          const float *rrow = res + (ptrdiff_t)oy * s->ow;
          for (ox = 0; ox < s->ow; ++ox) orow[ox] += rrow[ox];
        }
        rf_activate_n(orow, s->ow, act, p0, p1);
      }
    }
}

/* 3x3 depthwise with one row and column of padding before the image,
 * stride 1 or 2, straight from the input rows (no copy): a row outside the
 * image is `zero` (w floats of scratch), the interior columns vectorize and
 * the edge columns are computed one by one with bounds checks. For stride 2
 * about twice as fast as the padded-plane kernel (whose even/odd split is a
 * scalar copy of every row), and for large stride-1 planes a little. */
/* The edge columns of one output row of rf_depthwise3x3_rows (taps
 * outside the row read as zero), then its residual and activation. */
static inline void rf_depthwise3x3_finish(float *orow, const float *r0, const float *r1,
                                          const float *r2, const float *wo, float b, int first,
                                          int last, const rf_conv_shape *s, const float *rrow,
                                          int act, float p0, float p1) {
  int ox, kx;
  for (ox = 0; ox < s->ow; ox = ox == 0 && last >= first ? last + 1 : ox + 1) {
    ptrdiff_t j = (ptrdiff_t)ox * s->sw - 1;
    float acc = b;
    for (kx = 0; kx < 3; ++kx)
      if (j + kx >= 0 && j + kx < s->w)
        acc += wo[kx] * r0[j + kx] + wo[3 + kx] * r1[j + kx] + wo[6 + kx] * r2[j + kx];
    orow[ox] = acc;
  }
  if (rrow)
    for (ox = 0; ox < s->ow; ++ox) orow[ox] += rrow[ox];
  rf_activate_n(orow, s->ow, act, p0, p1);
}

static void rf_depthwise3x3_rows(const float *x, float *y, const float *w, const float *bias,
                                 const float *residual, const rf_conv_shape *s, float *zero, int act,
                                 float p0, float p1) {
  int mult = s->m / s->c, n, o, oy, ox, i, sw = s->sw, sh = s->sh;
  ptrdiff_t ohw = (ptrdiff_t)s->oh * s->ow;
  /* Interior: 1 <= ox with sw * ox - 1 >= 0 and sw * ox + 1 <= w - 1. */
  int first = 1, last = (s->w - 2) / sw; /* last interior ox, inclusive */
  if (last > s->ow - 1) last = s->ow - 1;
  for (i = 0; i < s->w; ++i) zero[i] = 0.0f;
  for (n = 0; n < s->n; ++n)
    for (o = 0; o < s->m; ++o) {
      const float *plane = x + ((ptrdiff_t)n * s->c + o / mult) * s->h * s->w;
      float *out = y + ((ptrdiff_t)n * s->m + o) * ohw;
      const float *res = residual ? residual + ((ptrdiff_t)n * s->m + o) * ohw : NULL;
      const float *wo = w + (ptrdiff_t)o * 9;
      float b = bias ? bias[o] : 0.0f;
      float w0 = wo[0], w1 = wo[1], w2 = wo[2], w3 = wo[3], w4 = wo[4], w5 = wo[5], w6 = wo[6],
            w7 = wo[7], w8 = wo[8];
#define RF_ROW(r) ((r) >= 0 && (r) < s->h ? plane + (ptrdiff_t)(r) * s->w : zero)
      for (oy = 0; oy < s->oh; ++oy) {
        float *RF_RESTRICT orow = out + (ptrdiff_t)oy * s->ow;
        int iy = oy * sh - 1;
        const float *RF_RESTRICT r0 = RF_ROW(iy), *RF_RESTRICT r1 = RF_ROW(iy + 1);
        const float *RF_RESTRICT r2 = RF_ROW(iy + 2);
        if (sw == 1 && oy + 1 < s->oh) {
          /* Two output rows at once: they share two of the four input rows,
           * so a third fewer loads per output. */
          float *RF_RESTRICT orow1 = orow + s->ow;
          const float *RF_RESTRICT r3 = RF_ROW(iy + 3);
          const float *RF_RESTRICT a0 = r0 - 1, *RF_RESTRICT a1 = r1 - 1, *RF_RESTRICT a2 = r2 - 1;
          const float *RF_RESTRICT a3 = r3 - 1;
          for (ox = first; ox <= last; ++ox) {
            float x10 = a1[ox], x11 = a1[ox + 1], x12 = a1[ox + 2];
            float x20 = a2[ox], x21 = a2[ox + 1], x22 = a2[ox + 2];
            orow[ox] = b + w0 * a0[ox] + w1 * a0[ox + 1] + w2 * a0[ox + 2] + w3 * x10 + w4 * x11 +
                       w5 * x12 + w6 * x20 + w7 * x21 + w8 * x22;
            orow1[ox] = b + w0 * x10 + w1 * x11 + w2 * x12 + w3 * x20 + w4 * x21 + w5 * x22 +
                        w6 * a3[ox] + w7 * a3[ox + 1] + w8 * a3[ox + 2];
          }
          rf_depthwise3x3_finish(orow, r0, r1, r2, wo, b, first, last, s,
                                 res ? res + (ptrdiff_t)oy * s->ow : NULL, act, p0, p1);
          rf_depthwise3x3_finish(orow1, r1, r2, r3, wo, b, first, last, s,
                                 res ? res + (ptrdiff_t)(oy + 1) * s->ow : NULL, act, p0, p1);
          ++oy;
          continue;
        }
        if (sw == 1) {
          const float *RF_RESTRICT a0 = r0 - 1, *RF_RESTRICT a1 = r1 - 1, *RF_RESTRICT a2 = r2 - 1;
          for (ox = first; ox <= last; ++ox)
            orow[ox] = b + w0 * a0[ox] + w1 * a0[ox + 1] + w2 * a0[ox + 2] + w3 * a1[ox] +
                       w4 * a1[ox + 1] + w5 * a1[ox + 2] + w6 * a2[ox] + w7 * a2[ox + 1] +
                       w8 * a2[ox + 2];
        } else {
          for (ox = first; ox <= last; ++ox) {
            ptrdiff_t j = 2 * (ptrdiff_t)ox - 1;
            orow[ox] = b + w0 * r0[j] + w1 * r0[j + 1] + w2 * r0[j + 2] + w3 * r1[j] +
                       w4 * r1[j + 1] + w5 * r1[j + 2] + w6 * r2[j] + w7 * r2[j + 1] + w8 * r2[j + 2];
          }
        }
        rf_depthwise3x3_finish(orow, r0, r1, r2, wo, b, first, last, s,
                               res ? res + (ptrdiff_t)oy * s->ow : NULL, act, p0, p1);
      }
#undef RF_ROW
    }
}

#if defined(RF_SHIFT_IN)
/* One input row's share of RF_VW outputs of a stride-2 3x3 depthwise conv
 * (see rf_depthwise3x3_s2): the left, centre and right taps times their
 * weights. `last` cuts the lanes past the row; `guarded` loads the tail of
 * the tensor lane by lane. */
RF_INLINE rf_vf rf_depthwise3x3_s2_row(const float *row, const float *end, int guarded, int last,
                                      rf_vi keep_even, rf_vi keep_odd, rf_vf *odd_before,
                                      rf_vf wl, rf_vf wc, rf_vf wr) {
  rf_vf a, b, even, odd, left;
  if (guarded) {
    a = rf_load_guarded(row, end);
    b = rf_load_guarded(row + RF_VW, end);
  } else {
    memcpy(&a, row, sizeof a);
    memcpy(&b, row + RF_VW, sizeof b);
  }
  even = RF_EVEN(a, b);
  odd = RF_ODD(a, b);
  if (last) {
    even = (rf_vf)((rf_vi)even & keep_even);
    odd = (rf_vf)((rf_vi)odd & keep_odd);
  }
  left = RF_SHIFT_IN(*odd_before, odd);
  *odd_before = odd;
  return wl * left + wc * even + wr * odd;
}

/* Bias, residual and Relu/Clip on one vector of outputs, then its store:
 * whole where it fits in the row or `spill` allows writing past it, lane by
 * lane otherwise. */
RF_INLINE void rf_depthwise3x3_s2_store(float *dst, rf_vf acc, const float *res,
                                        const float *res_end, int count, int spill, int act,
                                        rf_vf lo, rf_vf hi) {
  int j;
  if (res) acc += rf_load_guarded(res, res_end);
  acc = rf_relu_clip_v(acc, act, lo, hi);
  if (count == RF_VW || spill) {
    memcpy(dst, &acc, sizeof acc);
  } else {
    float lane[RF_VW];
    memcpy(lane, &acc, sizeof acc);
    for (j = 0; j < count; ++j) dst[j] = lane[j];
  }
}

/* 3x3 depthwise, stride 2, one row and column of padding before the image,
 * straight from the input rows: RF_VW outputs of a row take their taps from
 * two vector loads of each input row, split into even columns (the centre
 * taps) and odd columns (the right taps), the odd ones shifted a lane for
 * the left taps. Lanes past the row are cut by two masks on the row's last
 * vector; rows outside the image read a zero row. A vector that runs past
 * the output row is stored whole where what it overwrites is written later
 * (so not when the residual shares the output's memory), else lane by
 * lane. */
static void rf_depthwise3x3_s2(const float *x, float *y, const float *w, const float *bias,
                               const float *residual, const rf_conv_shape *s, int act, float p0,
                               float p1) {
  int mult = s->m / s->c, n, o, oy, ox0, j;
  ptrdiff_t ohw = (ptrdiff_t)s->oh * s->ow;
  const float *x_end = x + (ptrdiff_t)s->n * s->c * s->h * s->w;
  const float *y_end = y + (ptrdiff_t)s->n * s->m * ohw;
  const float *res_end = residual ? residual + (ptrdiff_t)s->n * s->m * ohw : NULL;
  int may_spill = !residual || (uintptr_t)residual >= (uintptr_t)y_end ||
                  (uintptr_t)res_end <= (uintptr_t)y;
  int last = (s->ow - 1) / RF_VW * RF_VW; /* first output of the row's last vector */
  int count = s->ow - last;
  int32_t even_in[RF_VW], odd_in[RF_VW];
  float zero_row[2 * RF_VW] = {0};
  rf_vi keep_even, keep_odd;
  rf_vf lo = (rf_vf){0} + (act == RF_ACT_CLIP ? p0 : 0.0f), hi = (rf_vf){0} + p1;
  int fused = act == RF_ACT_NONE || act == RF_ACT_RELU || act == RF_ACT_CLIP;
  for (j = 0; j < RF_VW; ++j) {
    even_in[j] = 2 * (last + j) < s->w ? -1 : 0;
    odd_in[j] = 2 * (last + j) + 1 < s->w ? -1 : 0;
  }
  memcpy(&keep_even, even_in, sizeof keep_even);
  memcpy(&keep_odd, odd_in, sizeof keep_odd);
  for (n = 0; n < s->n; ++n)
    for (o = 0; o < s->m; ++o) {
      const float *plane = x + ((ptrdiff_t)n * s->c + o / mult) * s->h * s->w;
      float *out = y + ((ptrdiff_t)n * s->m + o) * ohw;
      const float *res = residual ? residual + ((ptrdiff_t)n * s->m + o) * ohw : NULL;
      const float *wo = w + (ptrdiff_t)o * 9;
      rf_vf w0 = (rf_vf){0} + wo[0], w1 = (rf_vf){0} + wo[1], w2 = (rf_vf){0} + wo[2];
      rf_vf w3 = (rf_vf){0} + wo[3], w4 = (rf_vf){0} + wo[4], w5 = (rf_vf){0} + wo[5];
      rf_vf w6 = (rf_vf){0} + wo[6], w7 = (rf_vf){0} + wo[7], w8 = (rf_vf){0} + wo[8];
      rf_vf b = (rf_vf){0} + (bias ? bias[o] : 0.0f);
      for (oy = 0; oy < s->oh; ++oy) {
        /* The rows move RF_VW outputs (2 * RF_VW inputs) on per vector; a
         * row outside the image is zero_row, which stays put. */
        int iy = 2 * oy - 1, in0 = iy >= 0 && iy < s->h, in1 = iy + 1 < s->h, in2 = iy + 2 < s->h;
        const float *r0 = in0 ? plane + (ptrdiff_t)iy * s->w : zero_row;
        const float *r1 = in1 ? plane + (ptrdiff_t)(iy + 1) * s->w : zero_row;
        const float *r2 = in2 ? plane + (ptrdiff_t)(iy + 2) * s->w : zero_row;
        ptrdiff_t step0 = in0 ? 2 * RF_VW : 0, step1 = in1 ? 2 * RF_VW : 0;
        ptrdiff_t step2 = in2 ? 2 * RF_VW : 0;
        rf_vf ob0 = (rf_vf){0}, ob1 = (rf_vf){0}, ob2 = (rf_vf){0}, acc;
        float *orow = out + (ptrdiff_t)oy * s->ow;
        const float *rrow = res ? res + (ptrdiff_t)oy * s->ow : NULL;
        int spill = may_spill && orow + last + RF_VW <= y_end;
        const float *furthest = in2 ? r2 : in1 ? r1 : r0; /* zero_row: never guarded */
        int guarded = furthest != zero_row && furthest + 2 * last + 2 * RF_VW > x_end;
        for (ox0 = 0; ox0 < last; ox0 += RF_VW) {
          acc = b;
          acc += rf_depthwise3x3_s2_row(r0, x_end, 0, 0, keep_even, keep_odd, &ob0, w0, w1, w2);
          acc += rf_depthwise3x3_s2_row(r1, x_end, 0, 0, keep_even, keep_odd, &ob1, w3, w4, w5);
          acc += rf_depthwise3x3_s2_row(r2, x_end, 0, 0, keep_even, keep_odd, &ob2, w6, w7, w8);
          rf_depthwise3x3_s2_store(orow + ox0, acc, rrow ? rrow + ox0 : NULL, res_end, RF_VW, 1,
                                   act, lo, hi);
          r0 += step0;
          r1 += step1;
          r2 += step2;
        }
        acc = b;
        if (guarded) {
          acc += rf_depthwise3x3_s2_row(r0, x_end, 1, 1, keep_even, keep_odd, &ob0, w0, w1, w2);
          acc += rf_depthwise3x3_s2_row(r1, x_end, 1, 1, keep_even, keep_odd, &ob1, w3, w4, w5);
          acc += rf_depthwise3x3_s2_row(r2, x_end, 1, 1, keep_even, keep_odd, &ob2, w6, w7, w8);
        } else {
          acc += rf_depthwise3x3_s2_row(r0, x_end, 0, 1, keep_even, keep_odd, &ob0, w0, w1, w2);
          acc += rf_depthwise3x3_s2_row(r1, x_end, 0, 1, keep_even, keep_odd, &ob1, w3, w4, w5);
          acc += rf_depthwise3x3_s2_row(r2, x_end, 0, 1, keep_even, keep_odd, &ob2, w6, w7, w8);
        }
        rf_depthwise3x3_s2_store(orow + last, acc, rrow ? rrow + last : NULL, res_end, count, spill,
                                 act, lo, hi);
        if (!fused) rf_activate_n(orow, s->ow, act, p0, p1);
      }
    }
}
#endif

/* groups == c: output channel o reads input channel o / (m / c). Weights in
 * ONNX layout [m, 1, kh, kw]. Per output row, the kh input rows it reads
 * are copied with their zero padding into `rows` (kh x (w + pl + pr)
 * floats of scratch), so the taps run without bounds checks. */
RF_KERNEL void rf_conv2d_depthwise(const float *x, float *y, const float *w, const float *bias,
                                   const float *residual, const rf_conv_shape *s, float *rows,
                                   int act, float p0, float p1) {
  int mult = s->m / s->c, n, o, oy, ky, kx, ox;
  int span = (s->ow - 1) * s->sw + (s->kw - 1) * s->dw + 1; /* padded row width read */
  int wp = span > s->w + s->pl ? span : s->w + s->pl;
  ptrdiff_t ohw = (ptrdiff_t)s->oh * s->ow;
  if (s->kh == 3 && s->kw == 3 && s->dh == 1 && s->dw == 1 && (s->sw == 1 || s->sw == 2) &&
      (s->sh == 1 || s->sh == 2)) {
#if defined(RF_SHIFT_IN)
    if (s->pt == 1 && s->pl == 1 && s->sh == 2 && s->sw == 2) {
      rf_depthwise3x3_s2(x, y, w, bias, residual, s, act, p0, p1);
      return;
    }
#endif
    if (s->pt == 1 && s->pl == 1 && s->sh == s->sw &&
        (s->sw == 2 || (ptrdiff_t)s->h * s->w > 56 * 56))
      rf_depthwise3x3_rows(x, y, w, bias, residual, s, rows, act, p0, p1);
    else
      rf_depthwise3x3(x, y, w, bias, residual, s, rows, act, p0, p1);
    return;
  }
  for (n = 0; n < s->n; ++n)
    for (o = 0; o < s->m; ++o) {
      const float *plane = x + ((ptrdiff_t)n * s->c + o / mult) * s->h * s->w;
      float *out = y + ((ptrdiff_t)n * s->m + o) * ohw;
      const float *res = residual ? residual + ((ptrdiff_t)n * s->m + o) * ohw : NULL;
      const float *wo = w + (ptrdiff_t)o * s->kh * s->kw;
      float b = bias ? bias[o] : 0.0f;
      for (oy = 0; oy < s->oh; ++oy) {
        float *RF_RESTRICT orow = out + (ptrdiff_t)oy * s->ow;
        for (ky = 0; ky < s->kh; ++ky) {
          float *r = rows + (ptrdiff_t)ky * wp;
          int iy = oy * s->sh - s->pt + ky * s->dh, i;
          if (iy < 0 || iy >= s->h) {
            for (i = 0; i < wp; ++i) r[i] = 0.0f;
            continue;
          }
          for (i = 0; i < s->pl; ++i) r[i] = 0.0f;
          memcpy(r + s->pl, plane + (ptrdiff_t)iy * s->w, sizeof(float) * (size_t)s->w);
          for (i = s->pl + s->w; i < wp; ++i) r[i] = 0.0f;
        }
        if (s->kh == 3 && s->kw == 3 && s->dh == 1 && s->dw == 1) {
          const float *RF_RESTRICT r0 = rows, *RF_RESTRICT r1 = rows + wp, *RF_RESTRICT r2 = rows + 2 * wp;
          float w0 = wo[0], w1 = wo[1], w2 = wo[2], w3 = wo[3], w4 = wo[4], w5 = wo[5], w6 = wo[6],
                w7 = wo[7], w8 = wo[8];
          if (s->sw == 1) {
            for (ox = 0; ox < s->ow; ++ox)
              orow[ox] = b + w0 * r0[ox] + w1 * r0[ox + 1] + w2 * r0[ox + 2] + w3 * r1[ox] +
                         w4 * r1[ox + 1] + w5 * r1[ox + 2] + w6 * r2[ox] + w7 * r2[ox + 1] +
                         w8 * r2[ox + 2];
          } else {
            int sw = s->sw;
            for (ox = 0; ox < s->ow; ++ox) {
              int i = ox * sw;
              orow[ox] = b + w0 * r0[i] + w1 * r0[i + 1] + w2 * r0[i + 2] + w3 * r1[i] +
                         w4 * r1[i + 1] + w5 * r1[i + 2] + w6 * r2[i] + w7 * r2[i + 1] + w8 * r2[i + 2];
            }
          }
        } else {
          for (ox = 0; ox < s->ow; ++ox) orow[ox] = b;
          for (ky = 0; ky < s->kh; ++ky)
            for (kx = 0; kx < s->kw; ++kx) {
              const float *RF_RESTRICT r = rows + (ptrdiff_t)ky * wp + kx * s->dw;
              float wv = wo[ky * s->kw + kx];
              if (s->sw == 1)
                for (ox = 0; ox < s->ow; ++ox) orow[ox] += wv * r[ox];
              else
                for (ox = 0; ox < s->ow; ++ox) orow[ox] += wv * r[ox * s->sw];
            }
        }
        if (res) {
          const float *rrow = res + (ptrdiff_t)oy * s->ow;
          for (ox = 0; ox < s->ow; ++ox) orow[ox] += rrow[ox];
        }
        rf_activate_n(orow, s->ow, act, p0, p1);
      }
    }
}

/* ConvTranspose as GEMM + col2im: col[(m, ky, kx) x pixels] = W^T x, packed
 * W^T panels per group; then each column scatters into the output. */
RF_KERNEL void rf_conv_transpose2d(const float *x, float *y, const float *wp, const float *bias,
                                   const rf_conv_shape *s, float *col) {
  /* s->c, h, w: input; s->m, oh, ow: output; pads pt, pl at the start. */
  int cg = s->c / s->groups, mg = s->m / s->groups, n, g, o, ky, kx, iy, ix;
  ptrdiff_t hw = (ptrdiff_t)s->h * s->w, ohw = (ptrdiff_t)s->oh * s->ow, i;
  ptrdiff_t rows = (ptrdiff_t)mg * s->kh * s->kw, rpad = (rows + RF_MR - 1) / RF_MR * RF_MR;
  rf_epilogue ep;
  memset(&ep, 0, sizeof ep);
  ep.alpha = 1.0f;
  for (n = 0; n < s->n; ++n)
    for (g = 0; g < s->groups; ++g) {
      const float *xg = x + ((ptrdiff_t)n * s->c + (ptrdiff_t)g * cg) * hw;
      float *yg = y + ((ptrdiff_t)n * s->m + (ptrdiff_t)g * mg) * ohw;
      rf_gemm_packed_a(rows, hw, cg, wp + (ptrdiff_t)g * rpad * cg, xg, hw, col, hw, &ep);
      for (o = 0; o < mg; ++o) {
        float *out = yg + (ptrdiff_t)o * ohw;
        float b = bias ? bias[g * mg + o] : 0.0f;
        for (i = 0; i < ohw; ++i) out[i] = b;
        for (ky = 0; ky < s->kh; ++ky)
          for (kx = 0; kx < s->kw; ++kx) {
            const float *c = col + ((ptrdiff_t)(o * s->kh + ky) * s->kw + kx) * hw;
            for (iy = 0; iy < s->h; ++iy) {
              int oy = iy * s->sh - s->pt + ky * s->dh;
              if (oy < 0 || oy >= s->oh) continue;
              for (ix = 0; ix < s->w; ++ix) {
                int ox = ix * s->sw - s->pl + kx * s->dw;
                if (ox >= 0 && ox < s->ow) out[(ptrdiff_t)oy * s->ow + ox] += c[(ptrdiff_t)iy * s->w + ix];
              }
            }
          }
      }
    }
}
