//===- import_binary.cpp - libFuzzer target: the binary ONNX importer ------===//

#include "FuzzSupport.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  refold::fuzz::QuietContext ctx;
  (void)refold::fuzz::importBytes(ctx.context, data, size);
  return 0;
}
