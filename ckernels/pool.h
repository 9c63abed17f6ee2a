/* Pooling, NCHW, over nc = batch * channels planes. */
typedef struct {
  int h, w, oh, ow, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw;
} rf_pool_shape;

/* The larger of two values, NaN if either is (branch-free, so that loops of
 * it vectorize). */
RF_INLINE float rf_max_nan(float m, float v) { return ((v > m) | (v != v)) ? v : m; }

/* Per output row, tap by tap: each window row's tap kx is folded into the
 * output row over the columns whose taps all lie inside the input, a
 * strided loop the compiler vectorizes; the border columns are checked. */
RF_KERNEL void rf_maxpool2d(const float *x, float *y, ptrdiff_t nc, const rf_pool_shape *s) {
  ptrdiff_t p;
  int oy, ox, ky, kx, lo = 0, hi;
  /* Output columns [lo, hi) have every tap inside the input. */
  while (lo < s->ow && lo * s->sw - s->pl < 0) ++lo;
  hi = s->ow;
  while (hi > lo && (hi - 1) * s->sw - s->pl + (s->kw - 1) * s->dw >= s->w) --hi;
  for (p = 0; p < nc; ++p) {
    const float *in = x + p * s->h * s->w;
    float *out = y + p * s->oh * s->ow;
    for (oy = 0; oy < s->oh; ++oy) {
      float *RF_RESTRICT orow = out + (ptrdiff_t)oy * s->ow;
      for (ox = 0; ox < s->ow; ++ox) orow[ox] = -INFINITY;
      for (ky = 0; ky < s->kh; ++ky) {
        int iy = oy * s->sh - s->pt + ky * s->dh;
        const float *RF_RESTRICT row;
        if (iy < 0 || iy >= s->h) continue;
        row = in + (ptrdiff_t)iy * s->w;
        for (kx = 0; kx < s->kw; ++kx) {
          const float *RF_RESTRICT tap = row + kx * s->dw - s->pl;
          int sw = s->sw;
          if (sw == 1) /* constant strides vectorize without gathers */
            for (ox = lo; ox < hi; ++ox) orow[ox] = rf_max_nan(orow[ox], tap[ox]);
          else if (sw == 2)
            for (ox = lo; ox < hi; ++ox) orow[ox] = rf_max_nan(orow[ox], tap[2 * ox]);
          else
            for (ox = lo; ox < hi; ++ox) orow[ox] = rf_max_nan(orow[ox], tap[ox * sw]);
        }
        for (ox = 0; ox < s->ow; ++ox) {
          if (ox == lo && lo < hi) ox = hi;
          if (ox >= s->ow) break;
          for (kx = 0; kx < s->kw; ++kx) {
            int ix = ox * s->sw - s->pl + kx * s->dw;
            if (ix >= 0 && ix < s->w) orow[ox] = rf_max_nan(orow[ox], row[ix]);
          }
        }
      }
    }
  }
}

/* count_include_pad counts the padding (not the part of a ceil-mode window
 * past it) in the divisor. */
RF_KERNEL void rf_avgpool2d(const float *x, float *y, ptrdiff_t nc, const rf_pool_shape *s,
                            int count_include_pad) {
  ptrdiff_t p;
  int oy, ox, iy, ix;
  for (p = 0; p < nc; ++p) {
    const float *in = x + p * s->h * s->w;
    float *out = y + p * s->oh * s->ow;
    for (oy = 0; oy < s->oh; ++oy)
      for (ox = 0; ox < s->ow; ++ox) {
        int y0 = oy * s->sh - s->pt, x0 = ox * s->sw - s->pl;
        int y1 = y0 + s->kh, x1 = x0 + s->kw;
        int py1 = y1 < s->h + s->pb ? y1 : s->h + s->pb, px1 = x1 < s->w + s->pr ? x1 : s->w + s->pr;
        int vy0 = y0 < 0 ? 0 : y0, vx0 = x0 < 0 ? 0 : x0;
        int vy1 = y1 < s->h ? y1 : s->h, vx1 = x1 < s->w ? x1 : s->w;
        float sum = 0.0f;
        int count;
        for (iy = vy0; iy < vy1; ++iy)
          for (ix = vx0; ix < vx1; ++ix) sum += in[iy * s->w + ix];
        count = count_include_pad ? (py1 - y0) * (px1 - x0) : (vy1 - vy0) * (vx1 - vx0);
        out[oy * s->ow + ox] = count > 0 ? sum / (float)count : 0.0f;
      }
  }
}

RF_KERNEL void rf_global_avgpool(const float *x, float *y, ptrdiff_t nc, ptrdiff_t hw) {
  ptrdiff_t p;
  for (p = 0; p < nc; ++p) y[p] = rf_sum(x + p * hw, hw) / (float)hw;
}

RF_KERNEL void rf_global_maxpool(const float *x, float *y, ptrdiff_t nc, ptrdiff_t hw) {
  ptrdiff_t p, i;
  for (p = 0; p < nc; ++p) {
    const float *in = x + p * hw;
    float m = -INFINITY;
    for (i = 0; i < hw; ++i) m = in[i] > m ? in[i] : m;
    y[p] = m;
  }
}
