/* Convolutions, NCHW. Weights arrive packed for rf_gemm_packed_a, one set
 * of panels per group (RF_MR-padded rows x Cin/groups * kh * kw). A 1x1
 * stride-1 unpadded conv is a GEMM on the input itself; any other is a GEMM
 * on im2col tiles of `tile` output pixels built in the arena scratch slice.
 * Depthwise convs run a direct kernel over output rows. */
typedef struct {
  int n, c, h, w;          /* input */
  int m, oh, ow;           /* output channels and size */
  int kh, kw, sh, sw, pt, pl, dh, dw, groups;
} rf_conv_shape;

/* Rows (c, ky, kx) x columns [j0, j0 + nt) of the output pixels. */
static inline void rf_im2col_tile(const float *x, const rf_conv_shape *s, int channels, ptrdiff_t j0,
                                  ptrdiff_t nt, float *col) {
  int c, ky, kx;
  for (c = 0; c < channels; ++c)
    for (ky = 0; ky < s->kh; ++ky)
      for (kx = 0; kx < s->kw; ++kx) {
        float *row = col + ((ptrdiff_t)(c * s->kh + ky) * s->kw + kx) * nt;
        const float *plane = x + (ptrdiff_t)c * s->h * s->w;
        ptrdiff_t j = 0;
        while (j < nt) {
          ptrdiff_t p = j0 + j;
          int oy = (int)(p / s->ow), ox0 = (int)(p % s->ow);
          int ox1 = s->ow;
          int iy = oy * s->sh - s->pt + ky * s->dh, ox;
          if ((ptrdiff_t)(ox1 - ox0) > nt - j) ox1 = ox0 + (int)(nt - j);
          if (iy < 0 || iy >= s->h) {
            memset(row + j, 0, sizeof(float) * (size_t)(ox1 - ox0));
          } else {
            const float *in = plane + (ptrdiff_t)iy * s->w;
            int base = kx * s->dw - s->pl;
            for (ox = ox0; ox < ox1; ++ox) {
              int ix = ox * s->sw + base;
              row[j + ox - ox0] = (ix >= 0 && ix < s->w) ? in[ix] : 0.0f;
            }
          }
          j += ox1 - ox0;
        }
      }
}

RF_KERNEL void rf_conv2d_gemm(const float *x, float *y, const float *wp, const float *bias,
                              const float *residual, const rf_conv_shape *s, float *scratch,
                              ptrdiff_t tile, int act, float p0, float p1) {
  int cg = s->c / s->groups, mg = s->m / s->groups, n, g;
  ptrdiff_t kg = (ptrdiff_t)cg * s->kh * s->kw, ohw = (ptrdiff_t)s->oh * s->ow;
  ptrdiff_t mpad = (mg + RF_MR - 1) / RF_MR * RF_MR;
  int direct = s->kh == 1 && s->kw == 1 && s->sh == 1 && s->sw == 1 && s->pt == 0 && s->pl == 0 &&
               s->oh == s->h && s->ow == s->w;
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
      ep.beta = 0.0f;
      ep.act = act;
      ep.p0 = p0;
      ep.p1 = p1;
      if (direct) {
        ep.residual = rg;
        rf_gemm_packed_a(mg, ohw, kg, wg, xg, ohw, yg, ohw, &ep);
        continue;
      }
      for (j0 = 0; j0 < ohw; j0 += tile) {
        ptrdiff_t nt = ohw - j0 < tile ? ohw - j0 : tile;
        rf_im2col_tile(xg, s, cg, j0, nt, scratch);
        ep.residual = rg ? rg + j0 : NULL;
        rf_gemm_packed_a(mg, nt, kg, wg, scratch, nt, yg + j0, ohw, &ep);
      }
    }
}

/* groups == c: output channel o reads input channel o / (m / c). Weights in
 * ONNX layout [m, 1, kh, kw]. */
RF_KERNEL void rf_conv2d_depthwise(const float *x, float *y, const float *w, const float *bias,
                                   const float *residual, const rf_conv_shape *s, int act, float p0,
                                   float p1) {
  int mult = s->m / s->c, n, o, oy, ky, kx, ox;
  ptrdiff_t ohw = (ptrdiff_t)s->oh * s->ow, i;
  for (n = 0; n < s->n; ++n)
    for (o = 0; o < s->m; ++o) {
      const float *plane = x + ((ptrdiff_t)n * s->c + o / mult) * s->h * s->w;
      float *out = y + ((ptrdiff_t)n * s->m + o) * ohw;
      const float *wo = w + (ptrdiff_t)o * s->kh * s->kw;
      float b = bias ? bias[o] : 0.0f;
      for (i = 0; i < ohw; ++i) out[i] = b;
      for (oy = 0; oy < s->oh; ++oy) {
        float *orow = out + (ptrdiff_t)oy * s->ow;
        for (ky = 0; ky < s->kh; ++ky) {
          int iy = oy * s->sh - s->pt + ky * s->dh;
          const float *irow;
          if (iy < 0 || iy >= s->h) continue;
          irow = plane + (ptrdiff_t)iy * s->w;
          for (kx = 0; kx < s->kw; ++kx) {
            float wv = wo[ky * s->kw + kx];
            int off = kx * s->dw - s->pl;
            /* ox with 0 <= ox * sw + off < w */
            int lo = off >= 0 ? 0 : (-off + s->sw - 1) / s->sw;
            int hi = s->w - 1 - off < 0 ? -1 : (s->w - 1 - off) / s->sw;
            if (hi > s->ow - 1) hi = s->ow - 1;
            if (s->sw == 1) {
              const float *in = irow + off;
              for (ox = lo; ox <= hi; ++ox) orow[ox] += wv * in[ox];
            } else {
              for (ox = lo; ox <= hi; ++ox) orow[ox] += wv * irow[ox * s->sw + off];
            }
          }
        }
      }
      if (residual) {
        const float *r = residual + ((ptrdiff_t)n * s->m + o) * ohw;
        for (i = 0; i < ohw; ++i) out[i] += r[i];
      }
      rf_activate_n(out, ohw, act, p0, p1);
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
