/* A program using an emitted model through its header only: names, sizes,
 * workspace size, both entry points. Prints what it sees. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block.h"

int main(void) {
  float *in = calloc(block_input_sizes[0], sizeof(float));
  float *out = calloc(block_output_sizes[0], sizeof(float));
  float *again = calloc(block_output_sizes[0], sizeof(float));
  void *ws = NULL;
  const void *inputs[block_NUM_INPUTS];
  void *outputs[block_NUM_OUTPUTS], *outputs2[block_NUM_OUTPUTS];
  size_t i;
  if (posix_memalign(&ws, 64, block_WORKSPACE_SIZE)) return 1;
  memset(ws, 0x5A, block_WORKSPACE_SIZE);
  for (i = 0; i < block_input_sizes[0]; ++i) in[i] = (float)(i % 7) - 3.0f;
  inputs[0] = in;
  outputs[0] = out;
  outputs2[0] = again;
  if (block_run(inputs, outputs) != 0) return 2;
  if (block_run_with_workspace(inputs, outputs2, ws) != 0) return 3;
  printf("inputs %d %s %zu, outputs %d %s %zu, same %d\n", block_NUM_INPUTS, block_input_names[0],
         block_input_sizes[0], block_NUM_OUTPUTS, block_output_names[0], block_output_sizes[0],
         memcmp(out, again, block_output_sizes[0] * sizeof(float)) == 0);
  return 0;
}
