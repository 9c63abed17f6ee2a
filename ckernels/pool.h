/* Pooling, NCHW, over nc = batch * channels planes. */
typedef struct {
  int h, w, oh, ow, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw;
} rf_pool_shape;

/* The larger of two values, NaN if either is (branch-free, so that loops of
 * it vectorize). */
RF_INLINE float rf_max_nan(float m, float v) { return ((v > m) | (v != v)) ? v : m; }

/* Separable: per output row, the max over the window's rows (those inside
 * the image) into a row of scratch whose padding columns hold -inf, then
 * the max over the window's columns of that row: two contiguous or
 * strided loops the compiler vectorizes, with no border cases. Scratch:
 * rf_maxpool_row floats. */
RF_INLINE ptrdiff_t rf_maxpool_row(const rf_pool_shape *s) {
  ptrdiff_t ow16 = (s->ow + 15) / 16 * 16;
  ptrdiff_t span = (ow16 - 1) * s->sw + (ptrdiff_t)(s->kw - 1) * s->dw + 1;
  return (span > s->pl + s->w ? span : s->pl + s->w) + ow16;
}

RF_KERNEL void rf_maxpool2d(const float *x, float *y, ptrdiff_t nc, const rf_pool_shape *s, float *vrow) {
  ptrdiff_t p, n = rf_maxpool_row(s), ix;
  int oy, ox, ky, kx, sw = s->sw, dw = s->dw;
  ptrdiff_t ow16 = (s->ow + 15) / 16 * 16;
  float *RF_RESTRICT v = vrow + s->pl, *RF_RESTRICT hout = vrow + n - ow16;
  for (ix = 0; ix < n; ++ix) vrow[ix] = -INFINITY;
  for (p = 0; p < nc; ++p) {
    const float *in = x + p * s->h * s->w;
    float *out = y + p * s->oh * s->ow;
    for (oy = 0; oy < s->oh; ++oy) {
      float *RF_RESTRICT orow = out + (ptrdiff_t)oy * s->ow;
      const float *RF_RESTRICT h = vrow;
      int y0 = oy * s->sh - s->pt, ky0 = 0, ky1 = s->kh;
      while (ky0 < ky1 && y0 + ky0 * s->dh < 0) ++ky0;
      while (ky1 > ky0 && y0 + (ky1 - 1) * s->dh >= s->h) --ky1;
      if (ky0 == ky1) { /* the window is all padding */
        for (ox = 0; ox < s->ow; ++ox) orow[ox] = -INFINITY;
        continue;
      }
      {
        const float *RF_RESTRICT r0 = in + (ptrdiff_t)(y0 + ky0 * s->dh) * s->w;
        ptrdiff_t step = (ptrdiff_t)s->dh * s->w; /* one window row to the next */
        if (ky1 - ky0 == 3) {
          const float *RF_RESTRICT r1 = r0 + step, *RF_RESTRICT r2 = r0 + 2 * step;
          for (ix = 0; ix < s->w; ++ix) v[ix] = rf_max_nan(rf_max_nan(r0[ix], r1[ix]), r2[ix]);
        } else if (ky1 - ky0 == 2) {
          const float *RF_RESTRICT r1 = r0 + step;
          for (ix = 0; ix < s->w; ++ix) v[ix] = rf_max_nan(r0[ix], r1[ix]);
        } else {
          memcpy(v, r0, sizeof(float) * (size_t)s->w);
          for (ky = ky0 + 1; ky < ky1; ++ky) {
            const float *RF_RESTRICT row = in + (ptrdiff_t)(y0 + ky * s->dh) * s->w;
            for (ix = 0; ix < s->w; ++ix) v[ix] = rf_max_nan(v[ix], row[ix]);
          }
        }
      }
      if (s->kw == 3 && sw == 2 && dw == 1) { /* the usual window: one pass */
        for (ox = 0; ox < ow16; ++ox) hout[ox] = rf_max_nan(rf_max_nan(h[2 * ox], h[2 * ox + 1]), h[2 * ox + 2]);
      } else {
        if (sw == 1) {
          for (ox = 0; ox < ow16; ++ox) hout[ox] = h[ox];
          for (kx = 1; kx < s->kw; ++kx)
            for (ox = 0; ox < ow16; ++ox) hout[ox] = rf_max_nan(hout[ox], h[ox + kx * dw]);
        } else {
          for (ox = 0; ox < ow16; ++ox) hout[ox] = h[ox * sw];
          for (kx = 1; kx < s->kw; ++kx)
            for (ox = 0; ox < ow16; ++ox) hout[ox] = rf_max_nan(hout[ox], h[ox * sw + kx * dw]);
        }
      }
      memcpy(orow, hout, sizeof(float) * (size_t)s->ow);
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
