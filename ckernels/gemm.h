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
  float beta;            /* C = beta * C + ... when accumulating; 0 otherwise */
  int act;
  float p0, p1;
} rf_epilogue;

static inline void rf_store_tile(float *c, ptrdiff_t ldc, int mr, int nr, ptrdiff_t i0, ptrdiff_t j0,
                                 float acc[RF_MR][RF_NR], const rf_epilogue *ep) {
  int i, j;
  for (i = 0; i < mr; ++i) {
    float *crow = c + i * ldc;
    const float *rrow = ep->residual ? ep->residual + (i0 + i) * ep->ldr + j0 : NULL;
    float rb = ep->row_bias ? ep->row_bias[i0 + i] : 0.0f;
    for (j = 0; j < nr; ++j) {
      float v = acc[i][j] + rb;
      if (ep->col_bias) v += ep->col_bias[j0 + j];
      if (ep->beta != 0.0f) v += ep->beta * crow[j];
      if (rrow) v += rrow[j];
      crow[j] = v;
    }
    rf_activate_n(crow, nr, ep->act, ep->p0, ep->p1);
  }
}

#if defined(__GNUC__)
typedef float rf_vnr __attribute__((vector_size(RF_NR * sizeof(float))));

/* A full RF_MR x RF_NR tile: RF_MR vector accumulators, one vector load of
 * B and RF_MR broadcasts of A per k. */
static inline void rf_micro_full(ptrdiff_t K, const float *RF_RESTRICT a, ptrdiff_t a_row, ptrdiff_t a_k,
                                 const float *RF_RESTRICT b, ptrdiff_t b_k, float out[RF_MR][RF_NR]) {
  rf_vnr c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0}, c4 = {0}, c5 = {0};
  ptrdiff_t k;
  for (k = 0; k < K; ++k) {
    rf_vnr bv;
    const float *ak = a + k * a_k;
    memcpy(&bv, b + k * b_k, sizeof bv);
    c0 += ak[0] * bv;
    c1 += ak[a_row] * bv;
    c2 += ak[2 * a_row] * bv;
    c3 += ak[3 * a_row] * bv;
    c4 += ak[4 * a_row] * bv;
    c5 += ak[5 * a_row] * bv;
  }
  memcpy(out[0], &c0, sizeof c0);
  memcpy(out[1], &c1, sizeof c1);
  memcpy(out[2], &c2, sizeof c2);
  memcpy(out[3], &c3, sizeof c3);
  memcpy(out[4], &c4, sizeof c4);
  memcpy(out[5], &c5, sizeof c5);
}
#define RF_HAVE_VECTOR_MICRO 1
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

/* A packed in panels of RF_MR rows (K x RF_MR each, rows past M zero);
 * B row-major at stride ldb. */
RF_KERNEL void rf_gemm_packed_a(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float *ap,
                                const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc,
                                const rf_epilogue *ep) {
  float acc[RF_MR][RF_NR];
  ptrdiff_t i0, j0;
  for (j0 = 0; j0 < N; j0 += RF_NR) {
    int nr = N - j0 < RF_NR ? (int)(N - j0) : RF_NR;
    for (i0 = 0; i0 < M; i0 += RF_MR) {
      int mr = M - i0 < RF_MR ? (int)(M - i0) : RF_MR;
      const float *panel = ap + i0 * K;
#ifdef RF_HAVE_VECTOR_MICRO
      if (nr == RF_NR)
        rf_micro_full(K, panel, 1, RF_MR, b + j0, ldb, acc);
      else
#endif
        rf_micro_edge(K, mr, nr, panel, 1, RF_MR, b + j0, ldb, acc);
      rf_store_tile(c + i0 * ldc + j0, ldc, mr, nr, i0, j0, acc, ep);
    }
  }
}

/* A row-major at stride lda; B packed in panels of RF_NR columns (K x RF_NR
 * each, columns past N zero). */
RF_KERNEL void rf_gemm_packed_b(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float *a, ptrdiff_t lda,
                                const float *bp, float *c, ptrdiff_t ldc, const rf_epilogue *ep) {
  float acc[RF_MR][RF_NR];
  ptrdiff_t i0, j0;
  for (j0 = 0; j0 < N; j0 += RF_NR) {
    int nr = N - j0 < RF_NR ? (int)(N - j0) : RF_NR;
    const float *panel = bp + j0 * K;
    for (i0 = 0; i0 < M; i0 += RF_MR) {
      int mr = M - i0 < RF_MR ? (int)(M - i0) : RF_MR;
#ifdef RF_HAVE_VECTOR_MICRO
      if (mr == RF_MR)
        rf_micro_full(K, a + i0 * lda, lda, 1, panel, RF_NR, acc);
      else
#endif
        rf_micro_edge(K, mr, RF_NR, a + i0 * lda, lda, 1, panel, RF_NR, acc);
      rf_store_tile(c + i0 * ldc + j0, ldc, mr, nr, i0, j0, acc, ep);
    }
  }
}

/* Both operands computed at run time: A row-major (lda), B row-major (ldb). */
RF_KERNEL void rf_gemm_plain(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float *a, ptrdiff_t lda,
                             const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc,
                             const rf_epilogue *ep) {
  float acc[RF_MR][RF_NR];
  ptrdiff_t i0, j0;
  for (j0 = 0; j0 < N; j0 += RF_NR) {
    int nr = N - j0 < RF_NR ? (int)(N - j0) : RF_NR;
    for (i0 = 0; i0 < M; i0 += RF_MR) {
      int mr = M - i0 < RF_MR ? (int)(M - i0) : RF_MR;
#ifdef RF_HAVE_VECTOR_MICRO
      if (mr == RF_MR && nr == RF_NR)
        rf_micro_full(K, a + i0 * lda, lda, 1, b + j0, ldb, acc);
      else
#endif
        rf_micro_edge(K, mr, nr, a + i0 * lda, lda, 1, b + j0, ldb, acc);
      rf_store_tile(c + i0 * ldc + j0, ldc, mr, nr, i0, j0, acc, ep);
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
