//===- TestBreakRewrite.cpp - a deliberately wrong rewrite for tests -------===//

#include "refold/Passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectResourceBlobManager.h"

namespace refold {
#define GEN_PASS_DEF_TESTBREAKREWRITE
#include "refold/Passes/Passes.h.inc"
} // namespace refold

using namespace mlir;
using namespace refold::ir;

namespace {
/// The float32 values of a dense or resource elements attribute.
std::optional<std::vector<float>> floatValues(ElementsAttr attr) {
  auto type = cast<ShapedType>(attr.getType());
  if (!type.getElementType().isF32())
    return std::nullopt;
  if (auto resource = dyn_cast<DenseResourceElementsAttr>(attr)) {
    AsmResourceBlob *blob = resource.getRawHandle().getBlob();
    if (!blob)
      return std::nullopt;
    ArrayRef<char> data = blob->getData();
    std::vector<float> values(data.size() / sizeof(float));
    std::memcpy(values.data(), data.data(), values.size() * sizeof(float));
    return values;
  }
  if (auto dense = dyn_cast<DenseElementsAttr>(attr)) {
    auto range = dense.getValues<float>();
    return std::vector<float>(range.begin(), range.end());
  }
  return std::nullopt;
}

struct TestBreakRewritePass
    : refold::impl::TestBreakRewriteBase<TestBreakRewritePass> {
  void runOnOperation() override {
    for (auto init : getOperation().getOps<InitializerOp>()) {
      if (init->use_empty())
        continue;
      auto values = floatValues(init.getValue());
      if (!values || values->empty())
        continue;
      for (float &v : *values)
        v = v * 1.01f + 0.01f;
      OpBuilder builder(init);
      auto type = cast<ShapedType>(init.getValue().getType());
      auto broken = builder.create<InitializerOp>(
          init.getLoc(), builder.getStringAttr(init.getName() + "_broken"),
          DenseElementsAttr::get(type, llvm::ArrayRef<float>(*values)));
      init.getOutput().replaceAllUsesWith(broken.getOutput());
      return;
    }
  }
};
} // namespace
