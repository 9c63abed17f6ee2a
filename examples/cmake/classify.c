/* Runs the generated classifier on a fixed input and prints its logits. */
#include <math.h>
#include <stdio.h>

#include "classifier.h"

int main(void) {
  static float input[4 * 8 * 8];
  static float logits[3];
  for (int i = 0; i < 4 * 8 * 8; ++i)
    input[i] = sinf(0.1f * (float)i);
  const void *const inputs[] = {input};
  void *const outputs[] = {logits};
  if (classifier_run(inputs, outputs) != 0) {
    fprintf(stderr, "classifier_run failed\n");
    return 1;
  }
  int best = 0;
  for (int i = 0; i < 3; ++i) {
    printf("%s[%d] = %.6f\n", classifier_output_names[0], i, logits[i]);
    if (logits[i] > logits[best])
      best = i;
  }
  printf("class %d\n", best);
  return 0;
}
