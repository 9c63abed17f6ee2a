/* Times an emitted model (prefix "model") on random inputs: warm-up runs,
 * then prints the median of N single-run wall times in ms. The model file
 * itself uses no stdio and no clock; this harness is POSIX.
 * usage: c_timer RUNS */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model.h"

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  int runs = argc > 1 ? atoi(argv[1]) : 20, r, i;
  const void *inputs[model_NUM_INPUTS > 0 ? model_NUM_INPUTS : 1];
  void *outputs[model_NUM_OUTPUTS > 0 ? model_NUM_OUTPUTS : 1];
  double *times = malloc(sizeof(double) * (size_t)(runs > 0 ? runs : 1));
  for (i = 0; i < model_NUM_INPUTS; ++i) {
    float *x = malloc(model_input_sizes[i] * 8 + 8); /* room for any element type */
    size_t k;
    for (k = 0; k < model_input_sizes[i]; ++k) x[k] = (float)rand() / (float)RAND_MAX - 0.5f;
    inputs[i] = x;
  }
  for (i = 0; i < model_NUM_OUTPUTS; ++i) outputs[i] = malloc(model_output_sizes[i] * 8 + 8);
  for (r = 0; r < 3; ++r) model_run(inputs, outputs);
  for (r = 0; r < runs; ++r) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    model_run(inputs, outputs);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    times[r] = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-6;
  }
  qsort(times, (size_t)runs, sizeof(double), by_value);
  printf("%.3f\n", times[runs / 2]);
  return 0;
}
