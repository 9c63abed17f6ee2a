/* Times the 3x3 depthwise kernels of ckernels/conv.h on one shape, as the
 * emitter calls them: stride 1 "same" on rf_depthwise_same (the flat
 * kernel, used up to 56x56), stride 2 on rf_conv2d_depthwise (its
 * even/odd column split where the target has one-instruction shuffles,
 * else the row kernel), with Relu6 fused; best of RUNS, and a checksum of the output
 * (to compare two builds of the kernels). Driven by
 * bench/c_depthwise_kernels.sh.
 * usage: c_depthwise_kernels CHANNELS SIZE STRIDE RUNS */
#define _POSIX_C_SOURCE 200112L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "base.h"
#include "gemm.h"
#include "conv.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static float *must_alloc(size_t floats) {
  void *p = NULL;
  if (posix_memalign(&p, 64, floats ? floats * sizeof(float) : 64) != 0) {
    fprintf(stderr, "c_depthwise_kernels: out of memory\n");
    exit(1);
  }
  return p;
}

int main(int argc, char **argv) {
  int c, h, st, runs, oh, r;
  ptrdiff_t i, hw, padded;
  rf_conv_shape s;
  float *x, *w, *b, *y, *scratch;
  double best = 1e9, sum = 0.0;
  if (argc != 5) {
    fprintf(stderr, "usage: c_depthwise_kernels CHANNELS SIZE STRIDE RUNS\n");
    return 2;
  }
  c = atoi(argv[1]), h = atoi(argv[2]), st = atoi(argv[3]), runs = atoi(argv[4]);
  if (c < 1 || h < 1 || (st != 1 && st != 2) || runs < 1) {
    fprintf(stderr, "c_depthwise_kernels: bad shape\n");
    return 2;
  }
  oh = (h + 2 - 3) / st + 1;
  s = (rf_conv_shape){1, c, h, h, c, oh, oh, 3, 3, st, st, 1, 1, 1, 1, c};
  hw = (ptrdiff_t)h * h;
  padded = (hw + RF_NR - 1) / RF_NR * RF_NR;
  x = must_alloc((size_t)(c * hw));
  y = must_alloc((size_t)c * oh * oh);
  w = must_alloc((size_t)c * 9);
  b = must_alloc((size_t)c);
  /* Either kernel's scratch, with room to spare. */
  scratch = must_alloc((size_t)(5 * padded + 8 * (h + 2) * (h + 2) + 1024));
  srand(1);
  for (i = 0; i < c * hw; ++i) x[i] = (float)rand() / (float)RAND_MAX - 0.5f;
  for (i = 0; i < c * 9; ++i) w[i] = (float)rand() / (float)RAND_MAX - 0.5f;
  for (i = 0; i < c; ++i) b[i] = (float)rand() / (float)RAND_MAX - 0.5f;
  for (r = 0; r < runs; ++r) {
    double t = now();
    if (st == 1)
      rf_depthwise_same(x, y, w, b, NULL, &s, scratch, RF_ACT_CLIP, 0.0f, 6.0f);
    else
      rf_conv2d_depthwise(x, y, w, b, NULL, &s, scratch, RF_ACT_CLIP, 0.0f, 6.0f);
    t = now() - t;
    if (t < best) best = t;
  }
  for (i = 0; i < (ptrdiff_t)c * oh * oh; ++i) sum += y[i] * (double)(i % 7 + 1);
  printf("%5d %4d %2d %10.4f %18.6f\n", c, h, st, best * 1e3, sum);
  return 0;
}
