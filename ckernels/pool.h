/* Pooling, NCHW, over nc = batch * channels planes. */
typedef struct {
  int h, w, oh, ow, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw;
} rf_pool_shape;

RF_KERNEL void rf_maxpool2d(const float *x, float *y, ptrdiff_t nc, const rf_pool_shape *s) {
  ptrdiff_t p;
  int oy, ox, ky, kx;
  for (p = 0; p < nc; ++p) {
    const float *in = x + p * s->h * s->w;
    float *out = y + p * s->oh * s->ow;
    for (oy = 0; oy < s->oh; ++oy)
      for (ox = 0; ox < s->ow; ++ox) {
        float m = -INFINITY;
        for (ky = 0; ky < s->kh; ++ky) {
          int iy = oy * s->sh - s->pt + ky * s->dh;
          if (iy < 0 || iy >= s->h) continue;
          for (kx = 0; kx < s->kw; ++kx) {
            int ix = ox * s->sw - s->pl + kx * s->dw;
            if (ix < 0 || ix >= s->w) continue;
            if (in[iy * s->w + ix] > m || in[iy * s->w + ix] != in[iy * s->w + ix]) m = in[iy * s->w + ix];
          }
        }
        out[oy * s->ow + ox] = m;
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
