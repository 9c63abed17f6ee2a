//===- import_text.cpp - libFuzzer target: the textual ONNX importer -------===//
//
// Control bytes would send the input down the binary path; they become
// spaces, so every input exercises onnx::OnnxParser and the importer after it.
//
//===----------------------------------------------------------------------===//

#include "FuzzSupport.h"

#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string text(reinterpret_cast<const char *>(data), size);
  for (char &c : text)
    if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t' && c != '\r')
      c = ' ';
  refold::fuzz::QuietContext ctx;
  (void)refold::fuzz::importBytes(ctx.context, reinterpret_cast<const uint8_t *>(text.data()),
                                  text.size());
  return 0;
}
