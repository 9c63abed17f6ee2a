/* Times the dense conv kernels of ckernels/ on one shape, as the emitter
 * would call them: rf_conv2d_direct (flat or row-by-row tiles),
 * rf_conv2d_cvec (channels in the vectors) and, for 3x3 stride 1,
 * rf_conv2d_winograd (RF_NB tiles per block, 64 by default, as the
 * emitter), best of --runs, with warm caches
 * and with a 64 MiB sweep before every run (weights and activations cold),
 * and the largest difference between their outputs. Driven by
 * bench/c_conv_kernels.sh.
 * usage: c_conv_kernels CIN COUT SIZE KERNEL STRIDE RUNS */
#define _POSIX_C_SOURCE 200112L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "base.h"
#include "gemm.h"
#include "conv.h"
#include "winograd.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static ptrdiff_t ceil_div(ptrdiff_t a, ptrdiff_t b) { return (a + b - 1) / b; }

static void *must_alloc(size_t bytes) {
  void *p = NULL;
  if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) {
    fprintf(stderr, "c_conv_kernels: out of memory\n");
    exit(1);
  }
  return p;
}

int main(int argc, char **argv) {
  int c, m, h, k, st, runs, pad, oh, r, j;
  ptrdiff_t K, i, mp, flat, computed, rows, p, kk;
  rf_conv_shape s, sd;
  rf_direct_geometry g, gc;
  float *x, *w, *b, *wa, *wc, *wu = NULL, *y1, *y2, *y3 = NULL, *scratch, *wscratch = NULL;
  int wino, nb = 0, cb;
  double wbest[2] = {1e9, 1e9}, wdiff = 0.0;
  volatile char *sweep;
  size_t sweep_bytes = (size_t)64 << 20;
  double best[2][2] = {{1e9, 1e9}, {1e9, 1e9}}, diff = 0.0, scale = 0.0;
  if (argc != 7) {
    fprintf(stderr, "usage: c_conv_kernels CIN COUT SIZE KERNEL STRIDE RUNS\n");
    return 2;
  }
  c = atoi(argv[1]), m = atoi(argv[2]), h = atoi(argv[3]), k = atoi(argv[4]), st = atoi(argv[5]);
  runs = atoi(argv[6]);
  if (c < 1 || m < 1 || h < 1 || k < 1 || st < 1 || runs < 1 || k * k > RF_DIRECT_MAX_TAPS) {
    fprintf(stderr, "c_conv_kernels: bad shape\n");
    return 2;
  }
  pad = k / 2, oh = (h + 2 * pad - k) / st + 1;
  s = (rf_conv_shape){1, c, h, h, m, oh, oh, k, k, st, st, pad, pad, 1, 1, 1};
  sd = s;
  K = (ptrdiff_t)c * k * k;
  x = must_alloc(sizeof(float) * (size_t)c * h * h);
  w = must_alloc(sizeof(float) * (size_t)(m * K));
  b = must_alloc(sizeof(float) * (size_t)m);
  srand(1);
  for (i = 0; i < (ptrdiff_t)c * h * h; ++i) x[i] = (float)rand() / RAND_MAX - 0.5f;
  for (i = 0; i < m * K; ++i) w[i] = (float)rand() / RAND_MAX - 0.5f;
  for (i = 0; i < m; ++i) b[i] = (float)rand() / RAND_MAX - 0.5f;
  /* Weights as the emitter packs them: 6-row panels, 64-channel panels. */
  wa = must_alloc(sizeof(float) * (size_t)(ceil_div(m, RF_MR) * RF_MR * K));
  rf_pack_a(m, K, w, K, 1, wa);
  mp = ceil_div(m, RF_CV_PANEL) * RF_CV_PANEL;
  wc = must_alloc(sizeof(float) * (size_t)(mp * K));
  for (p = 0; p < mp / RF_CV_PANEL; ++p)
    for (kk = 0; kk < K; ++kk)
      for (j = 0; j < RF_CV_PANEL; ++j)
        wc[(p * K + kk) * RF_CV_PANEL + j] = p * RF_CV_PANEL + j < m ? w[(p * RF_CV_PANEL + j) * K + kk] : 0.0f;
  /* Geometry as lib/CEmitter/LowerNN.cpp computes it (phaseGeometry). */
  if (k == 1 && st == 1) {
    ptrdiff_t px = (ptrdiff_t)h * h;
    g.wpad = (int)px;
    g.plane = 0;
    sd.h = sd.oh = 1;
    sd.w = sd.ow = (int)px;
    gc.wpad = h;
    gc.plane = 0;
  } else if (k == 1) {
    fprintf(stderr, "c_conv_kernels: strided 1x1 convs run packed densely (rf_subsample) as pointwise; time that shape\n");
    return 2;
  } else {
    int zmin = pad > 0 ? (int)ceil_div(pad, st) : 0, px, reach = (k - 1) / st;
    for (px = 0; px < st; ++px) {
      int z = pad > px ? (int)ceil_div(pad - px, st) : 0;
      if (z < zmin) zmin = z;
    }
    g.wpad = (int)ceil_div(h + pad, st);
    if (oh + reach - zmin > g.wpad) g.wpad = oh + reach - zmin;
    flat = (ptrdiff_t)(oh - 1) * g.wpad + oh;
    computed = ceil_div(flat, 16) * 16;
    if ((oh - 1) * g.wpad + ceil_div(oh, 16) * 16 > computed) computed = (oh - 1) * g.wpad + ceil_div(oh, 16) * 16;
    rows = ceil_div(computed + reach * g.wpad + reach, g.wpad);
    g.plane = ceil_div(rows * g.wpad, 16) * 16;
    gc = g;
  }
  /* Winograd F(2x2, 3x3) for 3x3 stride 1: U = G g G^T per output and
   * input channel, 16 sets of 6-row panels. */
  wino = k == 3 && st == 1;
  if (wino) {
    static const double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
    ptrdiff_t mpad = ceil_div(m, RF_MR) * RF_MR, o, ci;
    int a, bb, ii, jj, tw = (oh + 1) / 2;
    const char *env = getenv("RF_NB");
    nb = env ? atoi(env) : 64;
    wu = must_alloc(sizeof(float) * (size_t)(16 * mpad * c));
    for (ii = 0; ii < 4; ++ii)
      for (jj = 0; jj < 4; ++jj)
        for (o = 0; o < mpad; ++o)
          for (ci = 0; ci < c; ++ci) {
            double acc = 0.0;
            if (o < m)
              for (a = 0; a < 3; ++a)
                for (bb = 0; bb < 3; ++bb) acc += G[ii][a] * w[(o * c + ci) * 9 + a * 3 + bb] * G[jj][bb];
            wu[(ptrdiff_t)(ii * 4 + jj) * mpad * c + (o / RF_MR) * RF_MR * c + ci * RF_MR + o % RF_MR] = (float)acc;
          }
    y3 = must_alloc(sizeof(float) * (size_t)m * oh * oh);
    wscratch = must_alloc(sizeof(float) * (size_t)RF_WINOGRAD_SCRATCH(c, m, (oh + 1) / 2, tw, nb));
  }
  /* Input channels per block of rf_conv2d_cvec: RF_CB, or the emitter's. */
  cb = getenv("RF_CB") ? atoi(getenv("RF_CB")) : (1024 / (k * k) > 0 ? 1024 / (k * k) : 1);
  y1 = must_alloc(sizeof(float) * (size_t)m * oh * oh);
  y2 = must_alloc(sizeof(float) * (size_t)m * oh * oh);
  scratch = must_alloc(sizeof(float) * (size_t)((ptrdiff_t)c * st * st * g.plane + (ptrdiff_t)oh * oh * RF_CV_PANEL + 64));
  sweep = must_alloc(sweep_bytes);
  for (r = 0; r < runs; ++r) {
    int cold;
    for (cold = 0; cold < 2; ++cold) {
      double t;
      size_t q;
      if (cold)
        for (q = 0; q < sweep_bytes; q += 64) sweep[q] = (char)(sweep[q] + 1);
      t = now();
      rf_conv2d_direct(x, y1, wa, b, NULL, &sd, &g, scratch, RF_ACT_RELU, 0.0f, 0.0f);
      t = now() - t;
      if (t < best[0][cold]) best[0][cold] = t;
      if (cold)
        for (q = 0; q < sweep_bytes; q += 64) sweep[q] = (char)(sweep[q] + 1);
      t = now();
      rf_conv2d_cvec(x, y2, wc, b, NULL, &s, &gc, cb, scratch,
                     RF_ACT_RELU, 0.0f, 0.0f);
      t = now() - t;
      if (t < best[1][cold]) best[1][cold] = t;
      if (!wino) continue;
      if (cold)
        for (q = 0; q < sweep_bytes; q += 64) sweep[q] = (char)(sweep[q] + 1);
      t = now();
      rf_conv2d_winograd(x, y3, wu, b, NULL, &s, nb, wscratch, RF_ACT_RELU, 0.0f, 0.0f);
      t = now() - t;
      if (t < wbest[cold]) wbest[cold] = t;
    }
  }
  for (i = 0; i < (ptrdiff_t)m * oh * oh; ++i) {
    double d = y1[i] > y2[i] ? y1[i] - y2[i] : y2[i] - y1[i];
    if (d > diff) diff = d;
    if (y1[i] > scale) scale = y1[i];
    if (wino) {
      d = y1[i] > y3[i] ? y1[i] - y3[i] : y3[i] - y1[i];
      if (d > wdiff) wdiff = d;
    }
  }
  printf("%5d %5d %4d %2d %2d %10.3f %10.3f %10.3f %10.3f %8.1e\n", c, m, h, k, st, best[0][0] * 1e3,
         best[1][0] * 1e3, best[0][1] * 1e3, best[1][1] * 1e3, scale > 0 ? diff / scale : diff);
  if (wino)
    printf("      winograd F(2x2,3x3), %d tiles per block: %.3f ms, cold %.3f ms, rel diff %.1e\n", nb,
           wbest[0] * 1e3, wbest[1] * 1e3, scale > 0 ? wdiff / scale : wdiff);
  return 0;
}
