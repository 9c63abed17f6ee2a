//===- ModelStats.cpp - size and cost of a model ----------------------------===//

#include "refold/Analysis/ModelStats.h"

#include "refold/Dialect/ONNX/ONNXOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/JSON.h"

using namespace mlir;

namespace refold {
namespace {

std::string opTypeOf(Operation *op) {
  if (auto node = dyn_cast<ir::NodeOp>(op))
    return node.getOpType().str();
  return op->getName().stripDialect().str();
}

/// Elements and bytes of a value; dynamic dimensions count as 1.
std::pair<uint64_t, uint64_t> sizeOf(Type type, bool &dynamic) {
  auto ranked = dyn_cast<RankedTensorType>(type);
  if (!ranked) {
    if (isa<TensorType, ir::ProtoType>(type))
      dynamic = true;
    return {0, 0};
  }
  uint64_t n = 1;
  for (int64_t d : ranked.getShape()) {
    if (ShapedType::isDynamic(d)) {
      dynamic = true;
      continue;
    }
    n *= d;
  }
  Type element = ranked.getElementType();
  uint64_t bits = element.isIntOrFloat() ? element.getIntOrFloatBitWidth() : 64;
  return {n, n * std::max<uint64_t>(1, bits / 8)};
}

int64_t dimOr1(Value v, int64_t i) {
  auto t = dyn_cast<RankedTensorType>(v.getType());
  if (!t || i >= t.getRank())
    return 1;
  int64_t d = t.getDimSize(i < 0 ? i + t.getRank() : i);
  return ShapedType::isDynamic(d) ? 1 : d;
}

uint64_t elementsOr1(Value v) {
  auto t = dyn_cast<RankedTensorType>(v.getType());
  if (!t)
    return 1;
  uint64_t n = 1;
  for (int64_t d : t.getShape())
    n *= ShapedType::isDynamic(d) ? 1 : d;
  return n;
}

/// Multiply-accumulates of one node (0 for ops that do not multiply-add).
uint64_t macsOf(Operation *op) {
  std::string type = opTypeOf(op);
  if (op->getNumResults() == 0)
    return 0;
  Value out = op->getResult(0);
  if (type == "Conv" || type == "ConvInteger" || type == "QLinearConv") {
    Value w = op->getOperand(type == "QLinearConv" ? 3 : 1);
    // out elements x (C/g x k...) = weight elements / M per output element.
    uint64_t perOutput = elementsOr1(w) / std::max<int64_t>(dimOr1(w, 0), 1);
    return elementsOr1(out) * perOutput;
  }
  if (type == "ConvTranspose") {
    Value x = op->getOperand(0), w = op->getOperand(1);
    // Every input element meets (M/g x k...) weights.
    uint64_t perInput = elementsOr1(w) / std::max<int64_t>(dimOr1(w, 0), 1);
    return elementsOr1(x) * perInput;
  }
  if (type == "Gemm") {
    Value a = op->getOperand(0);
    auto transA = op->getAttrOfType<IntegerAttr>("transA");
    int64_t k = dimOr1(a, transA && transA.getInt() ? 0 : 1);
    return elementsOr1(out) * k;
  }
  if (type == "MatMul" || type == "MatMulInteger" || type == "QLinearMatMul") {
    Value a = op->getOperand(0);
    return elementsOr1(out) * dimOr1(a, -1);
  }
  return 0;
}

std::string human(double v) {
  const char *units[] = {"", "K", "M", "G", "T"};
  int u = 0;
  while (std::abs(v) >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  std::string s;
  llvm::raw_string_ostream os(s);
  if (u == 0)
    os << llvm::format("%.0f", v);
  else
    os << llvm::format("%.1f%s", v, units[u]);
  return s;
}

std::string percent(double before, double after) {
  if (before == after)
    return "0%";
  if (before == 0)
    return "new";
  std::string s;
  llvm::raw_string_ostream os(s);
  os << llvm::format("%+.1f%%", 100.0 * (after - before) / before);
  return s;
}

} // namespace

ModelStats computeStats(ModuleOp module) {
  ModelStats stats;
  func::FuncOp main;
  for (auto f : module.getOps<func::FuncOp>())
    main = f;
  if (!main || main.isExternal())
    return stats;
  Block &body = main.getBody().front();
  llvm::DenseMap<Value, uint64_t> depthOf;
  for (Operation &op : body) {
    if (isa<ir::NoneOp, func::ReturnOp>(op))
      continue;
    bool isConstant = isa<ir::InitializerOp, ir::ConstantOp>(op) ||
                      (isa<ir::NodeOp>(op) && opTypeOf(&op) == "Constant");
    if (isConstant) {
      auto [n, bytes] = sizeOf(op.getResult(0).getType(), stats.dynamicShapes);
      stats.parameters += n;
      stats.parameterBytes += bytes;
      if (isa<ir::InitializerOp>(op))
        continue; // initializers are not nodes
    }
    ++stats.nodes;
    ++stats.opHistogram[opTypeOf(&op)];
    uint64_t macs = macsOf(&op);
    stats.macs += macs;
    uint64_t depth = 0;
    for (Value operand : op.getOperands()) {
      if (ir::isNoneValue(operand))
        continue;
      stats.memoryBytes += sizeOf(operand.getType(), stats.dynamicShapes).second;
      depth = std::max(depth, depthOf.lookup(operand));
    }
    for (Value result : op.getResults()) {
      stats.memoryBytes += sizeOf(result.getType(), stats.dynamicShapes).second;
      depthOf[result] = depth + (macs > 0 ? 1 : 0);
    }
    stats.depth = std::max(stats.depth, depth + (macs > 0 ? 1 : 0));
  }
  return stats;
}

void printStatsTable(llvm::raw_ostream &os, const ModelStats &before, const ModelStats &after) {
  auto row = [&](llvm::StringRef name, double b, double a, bool exact) {
    os << llvm::format("  %-22s %14s %14s %9s\n", name.str().c_str(),
                       (exact ? std::to_string(uint64_t(b)) : human(b)).c_str(),
                       (exact ? std::to_string(uint64_t(a)) : human(a)).c_str(),
                       percent(b, a).c_str());
  };
  os << llvm::format("  %-22s %14s %14s %9s\n", (const char *)"", (const char *)"before",
                     (const char *)"after", (const char *)"change");
  row("nodes", before.nodes, after.nodes, true);
  std::map<std::string, std::pair<uint64_t, uint64_t>> ops;
  for (auto &[op, n] : before.opHistogram) ops[op].first = n;
  for (auto &[op, n] : after.opHistogram) ops[op].second = n;
  for (auto &[op, counts] : ops)
    row("  " + op, counts.first, counts.second, true);
  row("parameters", before.parameters, after.parameters, false);
  row("parameter bytes", before.parameterBytes, after.parameterBytes, false);
  row("MACs", before.macs, after.macs, false);
  row("memory traffic (bytes)", before.memoryBytes, after.memoryBytes, false);
  row("depth (compute ops)", before.depth, after.depth, true);
  if (before.dynamicShapes || after.dynamicShapes)
    os << "  (dynamic dimensions count as 1: sizes are per unit of each dynamic dimension)\n";
}

std::string statsSummary(const ModelStats &before, const ModelStats &after) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << "nodes " << before.nodes << " -> " << after.nodes << " (" << percent(before.nodes, after.nodes)
     << "), MACs " << human(before.macs) << " -> " << human(after.macs) << " ("
     << percent(before.macs, after.macs) << "), traffic " << human(before.memoryBytes) << "B -> "
     << human(after.memoryBytes) << "B (" << percent(before.memoryBytes, after.memoryBytes)
     << "), depth " << before.depth << " -> " << after.depth;
  if (before.dynamicShapes && !after.dynamicShapes)
    os << " (some of the original's shapes are unknown: its MACs and traffic are lower bounds)";
  return s;
}

static llvm::json::Object toJson(const ModelStats &s) {
  llvm::json::Object ops;
  for (auto &[op, n] : s.opHistogram)
    ops[op] = int64_t(n);
  return llvm::json::Object{{"nodes", int64_t(s.nodes)},
                            {"ops", std::move(ops)},
                            {"parameters", int64_t(s.parameters)},
                            {"parameter_bytes", int64_t(s.parameterBytes)},
                            {"macs", int64_t(s.macs)},
                            {"memory_bytes", int64_t(s.memoryBytes)},
                            {"depth", int64_t(s.depth)},
                            {"dynamic_shapes", s.dynamicShapes}};
}

void printStatsJson(llvm::raw_ostream &os, const ModelStats &before, const ModelStats &after,
                    const std::vector<VerifyResult> *verify, llvm::json::Object extra) {
  llvm::json::Object root{{"before", toJson(before)}, {"after", toJson(after)}};
  for (auto &member : extra)
    root[member.first] = std::move(member.second);
  if (verify) {
    llvm::json::Array outputs;
    for (const auto &v : *verify)
      outputs.push_back(llvm::json::Object{
          {"output", v.output}, {"max_abs", v.maxAbs}, {"max_rel", v.maxRel},
          {"max_magnitude", v.maxMagnitude}, {"passed", v.passed}});
    root["verify"] = std::move(outputs);
  }
  os << llvm::formatv("{0:2}", llvm::json::Value(std::move(root))) << "\n";
}

} // namespace refold
