//===- FoldConstants.cpp - evaluate constant subgraphs ----------------------===//
//
// A node whose inputs are all constants is evaluated with the interpreter's
// kernel for it (the same code that --verify trusts) and replaced by an
// initializer; Shape of a value with a static shape is a constant too. This
// turns weights computed from constants (a KernelWarehouse-style
// MatMul(attention, warehouse) -> Reshape with a constant attention) into
// plain weights that the other rewrites can fold. A weight that depends on
// the input stays as it is, and so does a DequantizeLinear (a quantized
// model's weights stay int8).
//
//===----------------------------------------------------------------------===//

#include "refold/Interpreter/Interpreter.h"
#include "refold/Passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

namespace refold {
#define GEN_PASS_DEF_FOLDCONSTANTS
#include "refold/Passes/Passes.h.inc"
} // namespace refold

using namespace mlir;
using namespace refold;
using namespace refold::ir;

namespace {

bool isConstantOp(Operation *op) {
  if (isa<InitializerOp, ConstantOp, NoneOp>(op))
    return true;
  auto node = dyn_cast<NodeOp>(op);
  return node && node.getOpType() == "Constant";
}

std::string resultName(Operation *op, unsigned index) {
  if (auto names = op->getAttrOfType<ArrayAttr>(kOutputNamesAttr))
    if (index < names.size())
      if (auto s = dyn_cast<StringAttr>(names[index]))
        return s.str();
  return "";
}

struct FoldConstantsPass : refold::impl::FoldConstantsBase<FoldConstantsPass> {
  using FoldConstantsBase::FoldConstantsBase;

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    auto module = func->getParentOfType<ModuleOp>();
    int64_t opset = module ? interp::modelOpset(module) : 17;
    Block &body = func.getBody().front();
    bool changed = false;
    for (Operation &op : llvm::make_early_inc_range(body)) {
      if (isConstantOp(&op) || op.hasTrait<OpTrait::IsTerminator>() || op.getNumRegions() ||
          op.getNumResults() == 0)
        continue;
      // A dequantized weight stays int8: folded, it would be stored as
      // float and the integer kernels would not see it.
      if (opTypeOf(&op) == "DequantizeLinear")
        continue;
      std::optional<std::vector<interp::Tensor>> results = evaluate(&op, opset);
      if (!results)
        continue;
      OpBuilder builder(&op);
      for (auto [i, result] : llvm::enumerate(op.getResults())) {
        if (isa<NoneType>(result.getType()) || result.use_empty())
          continue;
        std::string name = resultName(&op, i);
        ElementsAttr value = interp::tensorToAttr((*results)[i], &getContext(),
                                                  name.empty() ? "folded" : name);
        if (!value)
          continue;
        auto init = builder.create<InitializerOp>(
            op.getLoc(), builder.getStringAttr(name.empty() ? "folded" : name), value);
        result.replaceAllUsesWith(init.getOutput());
      }
      if (op.use_empty())
        op.erase();
      ++numFolded;
      changed = true;
    }
    if (changed) {
      // A folded graph output may now have a more precise type.
      auto ret = cast<func::ReturnOp>(body.getTerminator());
      func.setFunctionType(FunctionType::get(&getContext(), body.getArgumentTypes(),
                                             ret.getOperandTypes()));
    }
  }

  /// The op's results if it is foldable and small enough, else nothing.
  std::optional<std::vector<interp::Tensor>> evaluate(Operation *op, int64_t opset) {
    StringRef opType = isa<NodeOp>(op) ? cast<NodeOp>(op).getOpType()
                                       : op->getName().stripDialect();
    // Shape of a statically shaped value needs no data.
    if (opType == "Shape") {
      auto type = dyn_cast<RankedTensorType>(op->getOperand(0).getType());
      if (!type || !type.hasStaticShape())
        return std::nullopt;
      interp::Tensor placeholder = interp::Tensor::view(interp::DType::U8, type.getShape(), "");
      auto results = interp::evaluateOp(op, {&placeholder}, opset);
      if (!results) {
        llvm::consumeError(results.takeError());
        return std::nullopt;
      }
      return std::move(*results);
    }
    std::vector<interp::Tensor> inputs;
    inputs.reserve(op->getNumOperands());
    std::vector<const interp::Tensor *> pointers;
    uint64_t inputBytes = 0;
    for (Value operand : op->getOperands()) {
      if (isNoneValue(operand)) {
        pointers.push_back(nullptr);
        continue;
      }
      std::optional<interp::Tensor> value = interp::constantValue(operand);
      if (!value)
        return std::nullopt;
      inputBytes += value->byteSize();
      inputs.push_back(*value);
    }
    // Pointers in operand order (a missing input stays null); `inputs` no
    // longer grows, so they stay valid.
    pointers.clear();
    size_t next = 0;
    for (Value operand : op->getOperands())
      pointers.push_back(isNoneValue(operand) ? nullptr : &inputs[next++]);
    auto results = interp::evaluateOp(op, pointers, opset);
    if (!results) {
      llvm::consumeError(results.takeError());
      return std::nullopt;
    }
    // Folding must not bloat the model (Expand, Tile, ConstantOfShape...).
    uint64_t outputBytes = 0;
    for (const interp::Tensor &t : *results)
      if (t.defined())
        outputBytes += t.byteSize();
    if (outputBytes > std::max<uint64_t>(inputBytes, maxGrowthBytes))
      return std::nullopt;
    return std::move(*results);
  }
};

} // namespace
