/* Winograd F(2x2, 3x3) convolution (Lavin and Gray, 2016) for dense 3x3
 * stride-1 convs: each 2x2 block of output pixels ("tile") is
 * A^T [(G g G^T) . (B^T d B)] A over the 4x4 input patch d, so the
 * products become 16 GEMMs, one per point of the 4x4 transform, with 16
 * multiplies per tile and channel pair instead of 36. The weight transform
 * U = G g G^T is the emitter's, at generation time; the input and output
 * transforms are additions only (B and A hold 0 and +-1), so the result
 * differs from the direct sum by rounding alone.
 *
 * Tile (ty, tx) is output pixels 2ty..2ty+1, 2tx..2tx+1; tiles are taken
 * in blocks of `nb` (a multiple of RF_NR): for each block the input
 * transform writes V[16][c][nb], the products M[16][m][nb] =
 * U[16][m x c] V[16][c x nb], and the output transform adds the bias and
 * the residual, applies the activation and stores. U arrives as 16 sets of
 * rf_gemm_packed_a panels (RF_MR-padded rows x c). */

/* Tiles (ty, tx) are numbered j = ty * (tw + 1) + tx: one column of
 * tiles past the image per tile row (computed, then dropped), so that a run
 * of consecutive j is a run of consecutive positions in the phase planes
 * of the padded input (rows and columns split by parity, rows of tw + 1),
 * whatever tile rows it spans. Floats per phase plane: up to the last read
 * of the last block of nb tiles. */
#define RF_WINOGRAD_PLANE(th, tw, nb) \
  (((((ptrdiff_t)(th) * ((tw) + 1) + (nb) - 1) / (nb) * (nb) + (tw) + 2) + 15) / 16 * 16)
/* Floats of scratch rf_conv2d_winograd needs: the phase planes, V and M of
 * one block, two output rows. */
#define RF_WINOGRAD_SCRATCH(c, m, th, tw, nb)                                   \
  (4 * (ptrdiff_t)(c) * RF_WINOGRAD_PLANE(th, tw, nb) +                        \
   16 * ((ptrdiff_t)(c) + (m)) * (nb) + 4 * ((ptrdiff_t)(tw) + 1))

/* Row k of B^T d B for n consecutive tiles. The rows of B^T d are
 * d0 - d2, d1 + d2, d2 - d1 and d1 - d3, here a + sign * b of two patch
 * rows, each read from the even- and odd-column phase planes (tile i's
 * columns are even[i], odd[i], even[i + 1], odd[i + 1]; sign is +-1, so the
 * product is exact); then the same combinations of its four columns go to
 * v0..v3. */
RF_INLINE void rf_winograd_in_row(const float *RF_RESTRICT ae, const float *RF_RESTRICT ao,
                                  const float *RF_RESTRICT be, const float *RF_RESTRICT bo,
                                  float sign, float *RF_RESTRICT v0, float *RF_RESTRICT v1,
                                  float *RF_RESTRICT v2, float *RF_RESTRICT v3, ptrdiff_t n) {
  ptrdiff_t i;
  for (i = 0; i < n; ++i) {
    float c0 = ae[i] + sign * be[i], c1 = ao[i] + sign * bo[i], c2 = ae[i + 1] + sign * be[i + 1],
          c3 = ao[i + 1] + sign * bo[i + 1];
    v0[i] = c0 - c2;
    v1[i] = c1 + c2;
    v2[i] = c2 - c1;
    v3[i] = c1 - c3;
  }
}

/* A^T M A + b for n consecutive tiles: m holds the 16 transform points at
 * stride ms; the two output rows go to y0 and y1, two pixels per tile. */
RF_INLINE void rf_winograd_out_tiles(const float *RF_RESTRICT m, ptrdiff_t ms, float b,
                                     float *RF_RESTRICT y0, float *RF_RESTRICT y1, ptrdiff_t n) {
  ptrdiff_t i;
  for (i = 0; i < n; ++i) {
    float r0[4], r1[4];
    int k;
    for (k = 0; k < 4; ++k) {
      float m0 = m[i + k * ms], m1 = m[i + (4 + k) * ms], m2 = m[i + (8 + k) * ms],
            m3 = m[i + (12 + k) * ms];
      r0[k] = m0 + m1 + m2;
      r1[k] = m1 - m2 - m3;
    }
    y0[2 * i] = r0[0] + r0[1] + r0[2] + b;
    y0[2 * i + 1] = r0[1] - r0[2] - r0[3] + b;
    y1[2 * i] = r1[0] + r1[1] + r1[2] + b;
    y1[2 * i + 1] = r1[1] - r1[2] - r1[3] + b;
  }
}

/* The transformed 4x4 input patches of tiles [j0, j0 + nb), for every
 * channel, from its phase planes: V[xi][c][j - j0]. */
static inline void rf_winograd_input(const float *planes, ptrdiff_t plane, int channels, int tw,
                                     ptrdiff_t j0, int nb, float *v) {
  /* rows r and r2 of the patch, combined as r + sign * r2, into row k */
  static const int first[4] = {0, 1, 2, 1}, second[4] = {2, 2, 1, 3};
  static const float sign[4] = {-1.0f, 1.0f, -1.0f, -1.0f};
  ptrdiff_t vstride = (ptrdiff_t)channels * nb;
  int c, k;
  for (c = 0; c < channels; ++c) {
    const float *pc = planes + (ptrdiff_t)c * 4 * plane + j0;
    for (k = 0; k < 4; ++k) {
      /* patch row q is phase row q % 2, one plane row down for q >= 2 */
      const float *a = pc + (ptrdiff_t)(first[k] % 2) * 2 * plane + (first[k] / 2) * (tw + 1);
      const float *b = pc + (ptrdiff_t)(second[k] % 2) * 2 * plane + (second[k] / 2) * (tw + 1);
      float *v0 = v + (ptrdiff_t)(4 * k) * vstride + (ptrdiff_t)c * nb;
      rf_winograd_in_row(a, a + plane, b, b + plane, sign[k], v0, v0 + vstride, v0 + 2 * vstride,
                         v0 + 3 * vstride, nb);
    }
  }
}

/* Scratch: RF_WINOGRAD_SCRATCH(c, m, th, tw, nb) floats. */
RF_KERNEL void rf_conv2d_winograd(const float *x, float *y, const float *u, const float *bias,
                                  const float *residual, const rf_conv_shape *s, int nb,
                                  float *scratch, int act, float p0, float p1) {
  int th = (s->oh + 1) / 2, tw = (s->ow + 1) / 2, n, xi, o, ty;
  ptrdiff_t tiles = (ptrdiff_t)th * (tw + 1), j0, ohw = (ptrdiff_t)s->oh * s->ow;
  ptrdiff_t mpad = (s->m + RF_MR - 1) / RF_MR * RF_MR, plane = RF_WINOGRAD_PLANE(th, tw, nb);
  float *planes = scratch, *v = planes + 4 * (ptrdiff_t)s->c * plane;
  float *mm = v + (ptrdiff_t)16 * s->c * nb, *lane = mm + (ptrdiff_t)16 * s->m * nb;
  const ptrdiff_t zero = 0;
  float tile[RF_MR][RF_DIRECT_SPAN]; /* the scalar tile's accumulators */
  /* The phase planes are rf_conv2d_direct's for stride 2. */
  rf_conv_shape phases = *s;
  rf_direct_geometry g;
  phases.sh = phases.sw = 2;
  g.wpad = tw + 1;
  g.plane = plane;
  for (n = 0; n < s->n; ++n) {
    rf_direct_fill(x + (ptrdiff_t)n * s->c * s->h * s->w, &phases, &g, s->c, planes);
    for (j0 = 0; j0 < tiles; j0 += nb) {
      ptrdiff_t jend = tiles - j0 < nb ? tiles : j0 + nb;
      int ncols = (int)((jend - j0 + RF_NR - 1) / RF_NR * RF_NR);
      int ty0 = (int)(j0 / (tw + 1)), ty1 = (int)((jend - 1) / (tw + 1));
      rf_winograd_input(planes, plane, s->c, tw, j0, nb, v);
      /* The 16 products on rf_direct_tile (one tap, the channels as K),
       * tiles stored from registers. */
      for (xi = 0; xi < 16; ++xi) {
        const float *uxi = u + (ptrdiff_t)xi * mpad * s->c, *vxi = v + (ptrdiff_t)xi * s->c * nb;
        float *mxi = mm + (ptrdiff_t)xi * s->m * nb;
        int m0, jt;
        for (m0 = 0; m0 < s->m; m0 += RF_MR)
          for (jt = 0; jt < ncols; jt += RF_DIRECT_SPAN) {
            int len = ncols - jt < RF_DIRECT_SPAN ? ncols - jt : RF_DIRECT_SPAN, dv = len / RF_NR;
            rf_direct_dst dst;
            dst.out = mxi + (ptrdiff_t)m0 * nb + jt;
            dst.res = NULL;
            dst.stride = nb;
            dst.rows = s->m - m0 < RF_MR ? s->m - m0 : RF_MR;
            dst.count = len;
            (void)dv;
#if RF_DIRECT_VECTORS == 4
            if (dv == 4)
              rf_direct_tile(vxi + jt, nb, s->c, uxi + (ptrdiff_t)m0 * s->c, &zero, 1, 4, NULL,
                             RF_ACT_NONE, 0.0f, 0.0f, tile, &dst, -1);
            else if (dv == 3)
              rf_direct_tile(vxi + jt, nb, s->c, uxi + (ptrdiff_t)m0 * s->c, &zero, 1, 3, NULL,
                             RF_ACT_NONE, 0.0f, 0.0f, tile, &dst, -1);
            else if (dv == 2)
              rf_direct_tile(vxi + jt, nb, s->c, uxi + (ptrdiff_t)m0 * s->c, &zero, 1, 2, NULL,
                             RF_ACT_NONE, 0.0f, 0.0f, tile, &dst, -1);
            else
#endif
              rf_direct_tile(vxi + jt, nb, s->c, uxi + (ptrdiff_t)m0 * s->c, &zero, 1, 1, NULL,
                             RF_ACT_NONE, 0.0f, 0.0f, tile, &dst, -1);
          }
      }
      /* A^T M A: rows (m0 + m1 + m2, m1 - m2 - m3), then the same on
       * columns; + bias + residual, activation, two output rows per tile
       * row. */
      for (o = 0; o < s->m; ++o) {
        const float *mo = mm + (ptrdiff_t)o * nb;
        ptrdiff_t ms = (ptrdiff_t)s->m * nb;
        float b = bias ? bias[o] : 0.0f;
        float *yo = y + ((ptrdiff_t)n * s->m + o) * ohw;
        const float *ro = residual ? residual + ((ptrdiff_t)n * s->m + o) * ohw : NULL;
        for (ty = ty0; ty <= ty1; ++ty) {
          ptrdiff_t jb = (ptrdiff_t)ty * (tw + 1);
          int txa = jb < j0 ? (int)(j0 - jb) : 0, txb = jend - jb < tw ? (int)(jend - jb) : tw;
          int a, oxa = 2 * txa, oxb = 2 * txb < s->ow ? 2 * txb : s->ow;
          float *y0 = lane, *y1 = lane + 2 * (tw + 1);
          if (txb <= txa) continue;
          rf_winograd_out_tiles(mo + (jb - j0) + txa, ms, b, y0 + 2 * txa, y1 + 2 * txa, txb - txa);
          for (a = 0; a < 2 && 2 * ty + a < s->oh; ++a) {
            ptrdiff_t at = (ptrdiff_t)(2 * ty + a) * s->ow + oxa;
            rf_store_act_n(yo + at, (a ? y1 : y0) + oxa, ro ? ro + at : NULL, 0.0f, oxb - oxa, act,
                           p0, p1);
          }
        }
      }
    }
  }
}
