/* GEMM on a register-blocked micro-kernel: C[M x N] = A[M x K] B[K x N].
 * A is read by broadcast, a(i, k) = A[i * a_row + k * a_k], so it can be
 * weights packed in panels of RF_MR rows (a_row = 1, a_k = RF_MR) or a
 * row-major matrix (a_row = lda, a_k = 1). B is read RF_NR floats at a time
 * along its rows, b(k, j) = B[k * b_k + j]: activations in NCHW, or weights
 * packed in panels of RF_NR columns (b_k = RF_NR). The epilogue adds a bias
 * per row or per column and a residual, then applies an activation, while
 * the tile is still in registers. */
#define RF_MR 6
#define RF_NR 16

typedef struct {
  const float *row_bias; /* [M] or NULL */
  const float *col_bias; /* [N] or NULL */
  const float *residual; /* [M x N] at row stride ldr, or NULL */
  ptrdiff_t ldr;
  float alpha;           /* the product is scaled by alpha (1 when unused) */
  float beta;            /* C's prior contents are added times beta (0: ignored) */
  int act;
  float p0, p1;
} rf_epilogue;

/* Writes an mr x nr tile. The first K block adds the biases and the
 * residual (read before anything overwrites it, so C may be the residual's
 * buffer); later blocks add to C; the last applies the activation. */
static inline void rf_store_tile(float *c, ptrdiff_t ldc, int mr, int nr, ptrdiff_t i0, ptrdiff_t j0,
                                 float acc[RF_MR][RF_NR], const rf_epilogue *ep, int first, int last) {
  int i, j;
  for (i = 0; i < mr; ++i) {
    float *crow = c + i * ldc;
    if (first) {
      const float *rrow = ep->residual ? ep->residual + (i0 + i) * ep->ldr + j0 : NULL;
      float rb = ep->row_bias ? ep->row_bias[i0 + i] : 0.0f;
      if (ep->alpha != 1.0f)
        for (j = 0; j < nr; ++j) acc[i][j] *= ep->alpha;
      if (ep->beta != 0.0f)
        for (j = 0; j < nr; ++j) acc[i][j] += ep->beta * crow[j];
      for (j = 0; j < nr; ++j) acc[i][j] += rb;
      if (ep->col_bias)
        for (j = 0; j < nr; ++j) acc[i][j] += ep->col_bias[j0 + j];
      if (rrow)
        for (j = 0; j < nr; ++j) acc[i][j] += rrow[j];
    } else {
      for (j = 0; j < nr; ++j) acc[i][j] += crow[j];
    }
    if (last) rf_activate_n(acc[i], nr, ep->act, ep->p0, ep->p1);
    for (j = 0; j < nr; ++j) crow[j] = acc[i][j];
  }
}

#if defined(__GNUC__) && !defined(RF_SCALAR)
/* The target's own vector width: a wider GCC vector has no register to
 * live in and is kept in memory, each operation a load and a store. A
 * tile row of RF_NR floats is RF_NV of these. */
#if defined(__AVX512F__)
#define RF_VW 16
#elif defined(__AVX__)
#define RF_VW 8
#else
#define RF_VW 4 /* SSE, NEON, and a plain vector lowering elsewhere */
#endif
#define RF_NV (RF_NR / RF_VW)
typedef float rf_vf __attribute__((vector_size(RF_VW * sizeof(float))));
typedef int32_t rf_vi __attribute__((vector_size(RF_VW * sizeof(int32_t))));

/* A full RF_MR x RF_NR tile: RF_MR x RF_NV vector accumulators, one row of
 * B and RF_MR broadcasts of A per k. */
static inline void rf_micro_full(ptrdiff_t K, const float *RF_RESTRICT a, ptrdiff_t a_row, ptrdiff_t a_k,
                                 const float *RF_RESTRICT b, ptrdiff_t b_k, float out[RF_MR][RF_NR]) {
  rf_vf c[RF_MR][RF_NV];
  ptrdiff_t k;
  int i, u;
  for (i = 0; i < RF_MR; ++i)
    for (u = 0; u < RF_NV; ++u) c[i][u] = (rf_vf){0};
  for (k = 0; k < K; ++k) {
    rf_vf bv[RF_NV];
    const float *ak = a + k * a_k;
    for (u = 0; u < RF_NV; ++u) memcpy(&bv[u], b + k * b_k + u * RF_VW, sizeof bv[u]);
    for (i = 0; i < RF_MR; ++i) {
      float av = ak[i * a_row];
      for (u = 0; u < RF_NV; ++u) c[i][u] += av * bv[u];
    }
  }
  for (i = 0; i < RF_MR; ++i)
    for (u = 0; u < RF_NV; ++u) memcpy(out[i] + u * RF_VW, &c[i][u], sizeof c[i][u]);
}
#define RF_HAVE_VECTOR_MICRO 1

/* A tile of mr < RF_MR rows and full width (a Gemm on one or a few rows,
 * the classifier of a CNN): the rows past mr repeat row 0, so every load
 * stays inside A, and are dropped by the store. Memory-bound on B, so the
 * repeated FMAs cost nothing; the vector loads are what matters. */
static inline void rf_micro_rows(ptrdiff_t K, int mr, const float *RF_RESTRICT a, ptrdiff_t a_row,
                                 ptrdiff_t a_k, const float *RF_RESTRICT b, ptrdiff_t b_k,
                                 float out[RF_MR][RF_NR]) {
  rf_vf c[RF_MR - 1][RF_NV];
  ptrdiff_t r[RF_MR - 1], k;
  int i, u;
  for (i = 0; i < RF_MR - 1; ++i) {
    r[i] = mr > i ? i * a_row : 0;
    for (u = 0; u < RF_NV; ++u) c[i][u] = (rf_vf){0};
  }
  if (mr == 1) {
    /* One row (a matrix-vector product): four partial sums over k, so that
     * the FMAs do not wait on each other's latency. */
    for (k = 0; k + 4 <= K; k += 4)
      for (i = 0; i < 4; ++i) {
        float av = a[(k + i) * a_k];
        for (u = 0; u < RF_NV; ++u) {
          rf_vf bv;
          memcpy(&bv, b + (k + i) * b_k + u * RF_VW, sizeof bv);
          c[i][u] += av * bv;
        }
      }
    for (; k < K; ++k) {
      float av = a[k * a_k];
      for (u = 0; u < RF_NV; ++u) {
        rf_vf bv;
        memcpy(&bv, b + k * b_k + u * RF_VW, sizeof bv);
        c[0][u] += av * bv;
      }
    }
    for (u = 0; u < RF_NV; ++u) {
      c[0][u] = (c[0][u] + c[1][u]) + (c[2][u] + c[3][u]);
      memcpy(out[0] + u * RF_VW, &c[0][u], sizeof c[0][u]);
    }
    return;
  }
  for (k = 0; k < K; ++k) {
    rf_vf bv[RF_NV];
    const float *ak = a + k * a_k;
    for (u = 0; u < RF_NV; ++u) memcpy(&bv[u], b + k * b_k + u * RF_VW, sizeof bv[u]);
    for (i = 0; i < RF_MR - 1; ++i) {
      float av = ak[r[i]];
      for (u = 0; u < RF_NV; ++u) c[i][u] += av * bv[u];
    }
  }
  for (i = 0; i < RF_MR - 1; ++i)
    for (u = 0; u < RF_NV; ++u) memcpy(out[i] + u * RF_VW, &c[i][u], sizeof c[i][u]);
}

#if defined(__AVX512F__)
/* 32 vector registers: two slivers of A at once, 12 accumulators, enough
 * independent FMAs to hide their latency. */
#define RF_HAVE_MICRO_12 1
static inline void rf_micro_12(ptrdiff_t K, const float *RF_RESTRICT a, const float *RF_RESTRICT a2,
                               ptrdiff_t a_row, ptrdiff_t a_k, const float *RF_RESTRICT b, ptrdiff_t b_k,
                               float out[2 * RF_MR][RF_NR]) {
  rf_vf c[2 * RF_MR][RF_NV];
  ptrdiff_t k;
  int i, u;
  for (i = 0; i < 2 * RF_MR; ++i)
    for (u = 0; u < RF_NV; ++u) c[i][u] = (rf_vf){0};
  for (k = 0; k < K; ++k) {
    rf_vf bv[RF_NV];
    const float *ak = a + k * a_k, *bk = a2 + k * a_k;
    for (u = 0; u < RF_NV; ++u) memcpy(&bv[u], b + k * b_k + u * RF_VW, sizeof bv[u]);
    for (i = 0; i < RF_MR; ++i) {
      float av = ak[i * a_row], bw = bk[i * a_row];
      for (u = 0; u < RF_NV; ++u) {
        c[i][u] += av * bv[u];
        c[RF_MR + i][u] += bw * bv[u];
      }
    }
  }
  for (i = 0; i < 2 * RF_MR; ++i)
    for (u = 0; u < RF_NV; ++u) memcpy(out[i] + u * RF_VW, &c[i][u], sizeof c[i][u]);
}
#endif
#endif

/* Any tile up to RF_MR x RF_NR, in plain C. */
static inline void rf_micro_edge(ptrdiff_t K, int mr, int nr, const float *a, ptrdiff_t a_row, ptrdiff_t a_k,
                                 const float *b, ptrdiff_t b_k, float out[RF_MR][RF_NR]) {
  int i, j;
  ptrdiff_t k;
  for (i = 0; i < RF_MR; ++i)
    for (j = 0; j < RF_NR; ++j) out[i][j] = 0.0f;
  for (k = 0; k < K; ++k) {
    const float *bk = b + k * b_k;
    for (i = 0; i < mr; ++i) {
      float av = a[i * a_row + k * a_k];
      for (j = 0; j < nr; ++j) out[i][j] += av * bk[j];
    }
  }
}

/* Blocking (Goto and van de Geijn): a K block of RF_KC rows of B for RF_NC
 * columns stays in L2 while every RF_MR-row sliver of A (in L1) sweeps it. */
#ifndef RF_KC
#define RF_KC 256
#endif
#ifndef RF_NC
#define RF_NC 192
#endif

/* a(i, k) = a[(i / RF_MR) * a_panel + (i % RF_MR) * a_row + k * a_k];
 * b(k, j) = b[(j / RF_NR) * b_panel + j % RF_NR + k * b_k]. */
static inline void rf_gemm_blocked(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float *a,
                                   ptrdiff_t a_panel, ptrdiff_t a_row, ptrdiff_t a_k, const float *b,
                                   ptrdiff_t b_panel, ptrdiff_t b_k, int a_padded, int b_padded, float *c,
                                   ptrdiff_t ldc, const rf_epilogue *ep) {
  float acc[RF_MR][RF_NR];
  ptrdiff_t j0, p0, i0, jr;
  (void)a_padded; /* unused by the scalar micro-kernel */
  (void)b_padded;
  for (j0 = 0; j0 < N; j0 += RF_NC) {
    ptrdiff_t nc = N - j0 < RF_NC ? N - j0 : RF_NC;
    for (p0 = 0; p0 < K || p0 == 0; p0 += RF_KC) {
      ptrdiff_t kc = K - p0 < RF_KC ? K - p0 : RF_KC;
      int first = p0 == 0, last = p0 + kc >= K;
      for (i0 = 0; i0 < M; i0 += RF_MR) {
        int mr = M - i0 < RF_MR ? (int)(M - i0) : RF_MR;
        const float *ap = a + (i0 / RF_MR) * a_panel + p0 * a_k;
#ifdef RF_HAVE_MICRO_12
        /* Two slivers at once while both are full (or padded). */
        if (M - i0 > RF_MR && (M - i0 >= 2 * RF_MR || a_padded)) {
          float acc2[2 * RF_MR][RF_NR];
          int mr2 = M - i0 - RF_MR < RF_MR ? (int)(M - i0 - RF_MR) : RF_MR;
          for (jr = j0; jr < j0 + nc; jr += RF_NR) {
            int nr = j0 + nc - jr < RF_NR ? (int)(j0 + nc - jr) : RF_NR;
            const float *bp = b + (jr / RF_NR) * b_panel + p0 * b_k;
            if (nr == RF_NR || b_padded) {
              rf_micro_12(kc, ap, ap + a_panel, a_row, a_k, bp, b_k, acc2);
              rf_store_tile(c + i0 * ldc + jr, ldc, RF_MR, nr, i0, jr, acc2, ep, first, last);
              rf_store_tile(c + (i0 + RF_MR) * ldc + jr, ldc, mr2, nr, i0 + RF_MR, jr, acc2 + RF_MR, ep,
                            first, last);
            } else {
              rf_micro_edge(kc, RF_MR, nr, ap, a_row, a_k, bp, b_k, acc);
              rf_store_tile(c + i0 * ldc + jr, ldc, RF_MR, nr, i0, jr, acc, ep, first, last);
              rf_micro_edge(kc, mr2, nr, ap + a_panel, a_row, a_k, bp, b_k, acc);
              rf_store_tile(c + (i0 + RF_MR) * ldc + jr, ldc, mr2, nr, i0 + RF_MR, jr, acc, ep, first,
                            last);
            }
          }
          i0 += RF_MR;
          continue;
        }
#endif
        for (jr = j0; jr < j0 + nc; jr += RF_NR) {
          int nr = j0 + nc - jr < RF_NR ? (int)(j0 + nc - jr) : RF_NR;
          const float *bp = b + (jr / RF_NR) * b_panel + p0 * b_k;
#ifdef RF_HAVE_VECTOR_MICRO
          if ((mr == RF_MR || a_padded) && (nr == RF_NR || b_padded))
            rf_micro_full(kc, ap, a_row, a_k, bp, b_k, acc);
          else if (nr == RF_NR || b_padded)
            rf_micro_rows(kc, mr, ap, a_row, a_k, bp, b_k, acc);
          else
#endif
            rf_micro_edge(kc, mr, nr, ap, a_row, a_k, bp, b_k, acc);
          rf_store_tile(c + i0 * ldc + jr, ldc, mr, nr, i0, jr, acc, ep, first, last);
        }
      }
    }
  }
}

/* A packed in panels of RF_MR rows (K x RF_MR each, rows past M zero);
 * B row-major at stride ldb. Rows past M of a panel are computed and
 * dropped, so a full-width sliver always runs the vector micro-kernel. */
RF_KERNEL void rf_gemm_packed_a(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float *ap,
                                const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc,
                                const rf_epilogue *ep) {
  rf_gemm_blocked(M, N, K, ap, RF_MR * K, 1, RF_MR, b, RF_NR, ldb, 1, 0, c, ldc, ep);
}

/* Both packed: A in panels of RF_MR rows, B in panels of RF_NR columns
 * (K x RF_NR each, columns past N zero): the micro-kernel streams both. */
RF_KERNEL RF_FLATTEN void rf_gemm_packed_ab(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float *ap,
                                 const float *bp, float *c, ptrdiff_t ldc, const rf_epilogue *ep) {
  rf_gemm_blocked(M, N, K, ap, RF_MR * K, 1, RF_MR, bp, RF_NR * K, RF_NR, 1, 1, c, ldc, ep);
}

/* A row-major at stride lda; B packed in panels of RF_NR columns (K x RF_NR
 * each, columns past N zero). */
RF_KERNEL RF_FLATTEN void rf_gemm_packed_b(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float *a, ptrdiff_t lda,
                                const float *bp, float *c, ptrdiff_t ldc, const rf_epilogue *ep) {
  rf_gemm_blocked(M, N, K, a, RF_MR * lda, lda, 1, bp, RF_NR * K, RF_NR, 0, 1, c, ldc, ep);
}

/* Both operands computed at run time: A row-major (lda), B row-major (ldb). */
RF_KERNEL void rf_gemm_plain(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float *a, ptrdiff_t lda,
                             const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc,
                             const rf_epilogue *ep) {
  rf_gemm_blocked(M, N, K, a, RF_MR * lda, lda, 1, b, RF_NR, ldb, 0, 0, c, ldc, ep);
}

/* Packs a row-major K x N matrix (rows at stride ldb) into panels of RF_NR
 * columns, columns past N zero: for products of two run-time operands. */
RF_KERNEL void rf_pack_b(ptrdiff_t K, ptrdiff_t N, const float *b, ptrdiff_t ldb, float *bp) {
  ptrdiff_t j0, k;
  int j;
  for (j0 = 0; j0 < N; j0 += RF_NR) {
    int nr = N - j0 < RF_NR ? (int)(N - j0) : RF_NR;
    for (k = 0; k < K; ++k, bp += RF_NR) {
      const float *row = b + k * ldb + j0;
      if (nr == RF_NR) {
        memcpy(bp, row, sizeof(float) * RF_NR);
        continue;
      }
      for (j = 0; j < nr; ++j) bp[j] = row[j];
      for (; j < RF_NR; ++j) bp[j] = 0.0f;
    }
  }
}

/* Packs a row-major M x K matrix (rows at stride lda, elements at stride
 * ak) into panels of RF_MR rows: for weights computed at run time. */
RF_KERNEL void rf_pack_a(ptrdiff_t M, ptrdiff_t K, const float *a, ptrdiff_t lda, ptrdiff_t ak,
                         float *ap) {
  ptrdiff_t i0, k;
  int i;
  for (i0 = 0; i0 < M; i0 += RF_MR)
    for (k = 0; k < K; ++k)
      for (i = 0; i < RF_MR; ++i)
        *ap++ = i0 + i < M ? a[(i0 + i) * lda + k * ak] : 0.0f;
}
