//===- InferShapes.cpp - refine result types with ONNX shape inference -----===//
//
// Exporters often compute shapes at run time (torch's Pad at opset 13 builds
// its pads from Shape, Gather and Concat), so import leaves the results of
// such nodes without a shape, and the rewrites that need static channels or
// spatial sizes refuse them. Once constant folding has turned the computed
// shapes into constants, ONNX's own shape inference knows them: this pass
// runs it on the module as it is and takes every type that is more static.
//
//===----------------------------------------------------------------------===//

#include "refold/Passes/Passes.h"
#include "refold/Translation/ONNXModel.h"

namespace refold {
#define GEN_PASS_DEF_INFERSHAPES
#include "refold/Passes/Passes.h.inc"
} // namespace refold

using namespace mlir;

namespace {

struct InferShapesPass : refold::impl::InferShapesBase<InferShapesPass> {
  using InferShapesBase::InferShapesBase;
  void runOnOperation() override {
    numRefined += refold::refineTypesByShapeInference(getOperation(), graphOutputs);
  }
};

} // namespace
