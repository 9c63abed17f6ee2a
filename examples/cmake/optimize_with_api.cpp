// Optimizes a model with the refold library and prints what it did:
//   optimize_with_api IN.onnx OUT.onnx
#include <refold/refold.h>

#include <iostream>

int main(int argc, char **argv) {
  if (argc != 3) {
    std::cerr << "usage: optimize_with_api IN.onnx OUT.onnx\n";
    return 2;
  }
  refold::Options options;
  options.verify = true;
  options.quiet = true;
  options.dims["N"] = 1;
  refold::Result result = refold::compile(argv[1], argv[2], options);
  if (!result) {
    std::cerr << "error: " << result.error << "\n";
    return 1;
  }
  const refold::Report &report = result.report;
  std::cout << "refold " << refold::version() << ": nodes " << report.nodesBefore << " -> "
            << report.nodesAfter << "\n";
  for (const auto &output : report.verified)
    std::cout << "verified '" << output.name << "': max abs error " << output.maxAbsError
              << (output.passed ? " (passed)" : " (FAILED)") << "\n";
  return 0;
}
