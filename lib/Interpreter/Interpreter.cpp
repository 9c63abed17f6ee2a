//===- Interpreter.cpp - reference interpreter for the onnx dialect ---------===//

#include "refold/Interpreter/Interpreter.h"

#include "Kernels.h"

#include "refold/Dialect/ONNX/ONNXOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinAttributes.h"

#include <chrono>
#include <random>
#include <set>

using namespace mlir;
using llvm::Error;
using llvm::StringRef;

namespace refold::interp {

static Error error(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message.str());
}

static std::string describe(Operation *op) { return ir::describeNode(op); }

static StringRef opTypeOf(Operation *op) { return ir::opTypeOf(op); }

int64_t modelOpset(ModuleOp module) {
  if (auto opsets = module->getAttrOfType<ArrayAttr>("onnx.opset_import"))
    for (Attribute entry : opsets) {
      auto pair = dyn_cast<ArrayAttr>(entry);
      if (pair && pair.size() == 2)
        if (auto domain = dyn_cast<StringAttr>(pair[0]);
            domain && (domain.empty() || domain.getValue() == "ai.onnx"))
          if (auto version = dyn_cast<IntegerAttr>(pair[1]))
            return version.getInt();
    }
  return 17;
}

/// The value of a generic Constant node (value, value_float, value_ints...).
static llvm::Expected<Tensor> constantNodeValue(ir::NodeOp node) {
  auto attrs = node.getNodeAttrs();
  if (!attrs || attrs->size() != 1)
    return error("Constant: needs exactly one value attribute");
  NamedAttribute attr = *attrs->begin();
  StringRef kind = attr.getName().getValue();
  if (auto elements = dyn_cast<ElementsAttr>(attr.getValue()))
    return tensorFromAttr(elements);
  if (kind == "value_float")
    return Tensor::scalarF32(float(cast<FloatAttr>(attr.getValue()).getValueAsDouble()));
  if (kind == "value_int")
    return Tensor::fromInts({cast<IntegerAttr>(attr.getValue()).getInt()}, {});
  if (kind == "value_ints") {
    auto values = cast<DenseI64ArrayAttr>(attr.getValue()).asArrayRef();
    return Tensor::fromInts(values, {(int64_t)values.size()});
  }
  if (kind == "value_floats") {
    auto values = cast<DenseF32ArrayAttr>(attr.getValue()).asArrayRef();
    Tensor t(DType::F32, {(int64_t)values.size()});
    std::copy(values.begin(), values.end(), t.data<float>());
    return t;
  }
  return error("Constant: attribute '" + kind + "' is not supported");
}

/// Checks a kernel's result against the type the graph declares.
static Error checkResult(Operation *op, unsigned index, const Tensor &t) {
  Type type = op->getResult(index).getType();
  auto tensorType = dyn_cast<TensorType>(type);
  if (!tensorType)
    return Error::success();
  auto dtype = dtypeFromMLIR(tensorType.getElementType());
  if (dtype && *dtype != t.dtype())
    return error(describe(op) + ": computed " + dtypeName(t.dtype()) + " but the graph declares " +
                 dtypeName(*dtype));
  if (auto ranked = dyn_cast<RankedTensorType>(type)) {
    bool fits = ranked.getRank() == t.rank();
    for (int64_t i = 0; fits && i < t.rank(); ++i)
      fits = ranked.isDynamicDim(i) || ranked.getDimSize(i) == t.dim(i);
    if (!fits)
      return error(describe(op) + ": computed shape " + shapeString(t.shape()) +
                   " but the graph declares a different one");
  }
  return Error::success();
}

int64_t defaultDimSize(int64_t axis, int64_t rank) { return rank == 4 && axis >= 2 ? 224 : 1; }

static llvm::Expected<Tensor> generateInput(StringRef name, Type type, ArrayAttr dimParams,
                                            const RunOptions &options, uint64_t seed) {
  auto ranked = dyn_cast<RankedTensorType>(type);
  if (!ranked)
    return error("input '" + name + "' has no known rank; give it with --input");
  auto dtype = dtypeFromMLIR(ranked.getElementType());
  if (!dtype || *dtype == DType::F16)
    return error("input '" + name + "' has an element type the interpreter cannot generate");
  Shape shape;
  for (int64_t i = 0; i < ranked.getRank(); ++i) {
    if (!ranked.isDynamicDim(i)) {
      shape.push_back(ranked.getDimSize(i));
      continue;
    }
    StringRef param;
    if (dimParams && i < (int64_t)dimParams.size())
      if (auto s = dyn_cast<StringAttr>(dimParams[i]))
        param = s.getValue();
    auto it = param.empty() ? options.dims.end() : options.dims.find(param);
    if (it != options.dims.end()) {
      shape.push_back(it->second);
      continue;
    }
    int64_t size = defaultDimSize(i, ranked.getRank());
    if (options.onDefaultDim)
      options.onDefaultDim(name, i, param, size);
    shape.push_back(size);
  }
  Tensor t;
  try {
    t = Tensor(*dtype, shape);
  } catch (const InterpreterError &e) {
    return error("cannot generate input '" + name + "': " + e.what());
  }
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> real(-1.0, 1.0);
  std::uniform_int_distribution<int> small(0, 3);
  for (int64_t i = 0; i < t.size(); ++i) {
    switch (*dtype) {
    case DType::F32: t.data<float>()[i] = float(real(rng)); break;
    case DType::F64: t.data<double>()[i] = real(rng); break;
    case DType::Bool: t.data<uint8_t>()[i] = small(rng) & 1; break;
    case DType::I64: t.data<int64_t>()[i] = small(rng); break;
    case DType::I32: t.data<int32_t>()[i] = small(rng); break;
    case DType::I8: t.data<int8_t>()[i] = int8_t(small(rng)); break;
    case DType::U8: t.data<uint8_t>()[i] = uint8_t(small(rng)); break;
    default: std::memset(t.raw(), 0, t.byteSize()); break;
    }
  }
  return t;
}

/// Field `key` of the i-th input or output record of a graph.
static Attribute recordField(ArrayAttr records, size_t i, StringRef key) {
  if (!records || i >= records.size())
    return {};
  auto dict = dyn_cast<DictionaryAttr>(records[i]);
  return dict ? dict.get(key) : Attribute();
}

llvm::Expected<std::vector<Tensor>> bindInputs(ModuleOp module, TensorMap &inputs,
                                               const RunOptions &options) {
  func::FuncOp main;
  for (auto func : module.getOps<func::FuncOp>())
    main = func;
  if (!main || main.isExternal())
    return error("the module has no main graph");
  auto graph = main->getAttrOfType<DictionaryAttr>(ir::kGraphAttr);
  auto inputRecords = graph ? graph.getAs<ArrayAttr>("inputs") : ArrayAttr();

  Block &body = main.getBody().front();
  std::vector<Tensor> bound;
  std::set<std::string> known;
  for (auto [i, arg] : llvm::enumerate(body.getArguments())) {
    auto nameAttr = dyn_cast_or_null<StringAttr>(recordField(inputRecords, i, "name"));
    std::string name = nameAttr ? nameAttr.str() : "input" + std::to_string(i);
    known.insert(name);
    auto given = inputs.find(name);
    if (given != inputs.end()) {
      if (auto err = [&]() -> Error {
            auto type = dyn_cast<TensorType>(arg.getType());
            if (!type)
              return Error::success();
            auto dtype = dtypeFromMLIR(type.getElementType());
            const Tensor &t = given->second;
            if (dtype && *dtype != t.dtype())
              return error("input '" + name + "' must be " + dtypeName(*dtype) + ", got " +
                           dtypeName(t.dtype()));
            if (auto ranked = dyn_cast<RankedTensorType>(type)) {
              bool fits = ranked.getRank() == t.rank();
              for (int64_t d = 0; fits && d < t.rank(); ++d)
                fits = ranked.isDynamicDim(d) || ranked.getDimSize(d) == t.dim(d);
              if (!fits)
                return error("input '" + name + "' has shape " + shapeString(t.shape()) +
                             ", which the model does not accept");
            }
            return Error::success();
          }())
        return std::move(err);
      bound.push_back(given->second);
      continue;
    }
    if (auto def = dyn_cast_or_null<ElementsAttr>(recordField(inputRecords, i, "default"))) {
      auto t = tensorFromAttr(def);
      if (!t)
        return t.takeError();
      bound.push_back(*t);
      continue;
    }
    auto t = generateInput(name, arg.getType(),
                           dyn_cast_or_null<ArrayAttr>(recordField(inputRecords, i, "dim_params")),
                           options, options.seed * 1000003 + i);
    if (!t)
      return t.takeError();
    inputs[name] = *t;
    bound.push_back(*t);
  }
  for (auto &[name, tensor] : inputs)
    if (!known.count(name))
      return error("the model has no input named '" + name + "'");
  return bound;
}

llvm::Expected<TensorMap> run(ModuleOp module, TensorMap &inputs, const RunOptions &options) {
  auto bound = bindInputs(module, inputs, options);
  if (!bound)
    return bound.takeError();
  func::FuncOp main;
  for (auto func : module.getOps<func::FuncOp>())
    main = func;
  int64_t opset = modelOpset(module);
  auto graph = main->getAttrOfType<DictionaryAttr>(ir::kGraphAttr);
  auto outputRecords = graph ? graph.getAs<ArrayAttr>("outputs") : ArrayAttr();
  Block &body = main.getBody().front();
  llvm::DenseMap<Value, Tensor> env;
  for (auto [arg, t] : llvm::zip(body.getArguments(), *bound)) {
    env[arg] = t;
    if (options.observe)
      options.observe(arg, t);
  }

  // Release each value after its last use: peak memory stays near the
  // largest live set, not the whole network.
  llvm::DenseMap<Operation *, SmallVector<Value>> releaseAfter;
  {
    llvm::DenseMap<Value, Operation *> lastUse;
    for (Operation &op : body)
      for (Value v : op.getOperands())
        lastUse[v] = &op;
    for (auto &[value, op] : lastUse)
      releaseAfter[op].push_back(value);
  }

  TensorMap outputs;
  for (Operation &op : body) {
    if (isa<ir::NoneOp>(op))
      continue;
    if (auto ret = dyn_cast<func::ReturnOp>(op)) {
      for (auto [i, value] : llvm::enumerate(ret.getOperands())) {
        auto nameAttr = dyn_cast_or_null<StringAttr>(recordField(outputRecords, i, "name"));
        std::string name = nameAttr ? nameAttr.str() : "output" + std::to_string(i);
        auto it = env.find(value);
        if (it == env.end())
          return error("graph output '" + name + "' was not computed");
        outputs[name] = it->second;
      }
      break;
    }
    llvm::Expected<Tensor> constant = error("");
    bool isConstant = true;
    if (auto init = dyn_cast<ir::InitializerOp>(op))
      constant = tensorFromAttr(init.getValue());
    else if (auto c = dyn_cast<ir::ConstantOp>(op))
      constant = tensorFromAttr(c.getValue());
    else if (auto node = dyn_cast<ir::NodeOp>(op); node && node.getOpType() == "Constant")
      constant = constantNodeValue(node);
    else
      isConstant = false;
    if (isConstant) {
      if (!constant)
        return error(describe(&op) + ": " + llvm::toString(constant.takeError()));
      env[op.getResult(0)] = *constant;
      continue;
    }
    llvm::consumeError(constant.takeError());

    std::vector<const Tensor *> operands;
    for (Value operand : op.getOperands()) {
      if (ir::isNoneValue(operand)) {
        operands.push_back(nullptr);
        continue;
      }
      auto it = env.find(operand);
      if (it == env.end())
        return error(describe(&op) + ": an input was not computed");
      operands.push_back(&it->second);
    }
    auto start = std::chrono::steady_clock::now();
    llvm::Expected<std::vector<Tensor>> results = std::vector<Tensor>();
    std::optional<llvm::Expected<Tensor>> integer;
    if (options.integerQDQ && (integer = runIntegerGroup(&op, operands, opset, options.fixedRequant))) {
      if (!*integer)
        return integer->takeError();
      results->push_back(std::move(**integer));
    } else {
      results = evaluateOp(&op, operands, opset);
    }
    if (options.profile)
      (*options.profile)[opTypeOf(&op).str()] +=
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count();
    if (!results)
      return results.takeError();
    for (auto [i, result] : llvm::enumerate(op.getResults()))
      if (!isa<NoneType>(result.getType()) && i < results->size() && (*results)[i].defined()) {
        if (options.observe)
          options.observe(result, (*results)[i]);
        env[result] = std::move((*results)[i]);
      }
    for (Value v : releaseAfter.lookup(&op))
      if (!llvm::is_contained(body.getTerminator()->getOperands(), v))
        env.erase(v);
  }
  return outputs;
}

std::vector<std::string> graphInputNames(ModuleOp module) {
  std::vector<std::string> names;
  func::FuncOp main;
  for (auto func : module.getOps<func::FuncOp>())
    main = func;
  if (!main || main.isExternal())
    return names;
  auto graph = main->getAttrOfType<DictionaryAttr>(ir::kGraphAttr);
  auto inputRecords = graph ? graph.getAs<ArrayAttr>("inputs") : ArrayAttr();
  for (auto [i, arg] : llvm::enumerate(main.getBody().front().getArguments())) {
    (void)arg;
    auto nameAttr = dyn_cast_or_null<StringAttr>(recordField(inputRecords, i, "name"));
    names.push_back(nameAttr ? nameAttr.str() : "input" + std::to_string(i));
  }
  return names;
}

std::optional<Tensor> constantValue(Value value) {
  Operation *def = value.getDefiningOp();
  llvm::Expected<Tensor> t = error("not a constant");
  if (auto init = dyn_cast_or_null<ir::InitializerOp>(def))
    t = tensorFromAttr(init.getValue());
  else if (auto c = dyn_cast_or_null<ir::ConstantOp>(def))
    t = tensorFromAttr(c.getValue());
  else if (auto node = dyn_cast_or_null<ir::NodeOp>(def); node && node.getOpType() == "Constant")
    t = constantNodeValue(node);
  if (!t) {
    llvm::consumeError(t.takeError());
    return std::nullopt;
  }
  return *t;
}

llvm::Expected<std::vector<Tensor>> evaluateOp(Operation *op, ArrayRef<const Tensor *> inputs,
                                               int64_t opset) {
  auto outputs = evaluateKernel(op, inputs, opset);
  if (!outputs)
    return outputs.takeError();
  for (unsigned i = 0; i < outputs->size() && i < op->getNumResults(); ++i) {
    if (isa<NoneType>(op->getResult(i).getType()) || !(*outputs)[i].defined())
      continue;
    if (Error err = checkResult(op, i, (*outputs)[i]))
      return std::move(err);
  }
  return outputs;
}

llvm::Expected<std::vector<Tensor>> evaluateKernel(Operation *op, ArrayRef<const Tensor *> inputs,
                                                   int64_t opset) {
  if (auto node = dyn_cast<ir::NodeOp>(op)) {
    if (!node.getGraphs().empty())
      return error("the interpreter cannot run " + describe(op) +
                   ": nodes with subgraphs (If, Loop, Scan) are not supported");
    if (node.getDomain() && !node.getDomain()->empty() && *node.getDomain() != "ai.onnx")
      return error("the interpreter cannot run " + describe(op) + ": custom domain '" +
                   *node.getDomain() + "'");
  }
  StringRef opType = opTypeOf(op);
  auto kernel = kernelRegistry().find(opType);
  if (kernel == kernelRegistry().end())
    return error("the interpreter cannot run " + describe(op) + ": operator " + opType +
                 " is not implemented");
  KernelContext ctx;
  ctx.opType = opType;
  ctx.opset = opset;
  ctx.op = op;
  ctx.inputs.assign(inputs.begin(), inputs.end());
  // Trailing missing inputs are not inputs at all.
  while (!ctx.inputs.empty() && !ctx.inputs.back())
    ctx.inputs.pop_back();
  unsigned numOutputs = 0;
  for (auto [i, result] : llvm::enumerate(op->getResults()))
    if (!isa<NoneType>(result.getType()))
      numOutputs = i + 1;
  ctx.numOutputs = numOutputs;
  ctx.outputs.resize(op->getNumResults());
  Error kernelError = Error::success();
  try {
    kernelError = kernel->second(ctx);
  } catch (const InterpreterError &e) {
    return error(describe(op) + ": " + e.what());
  }
  if (Error err = std::move(kernelError)) {
    std::string message = llvm::toString(std::move(err));
    StringRef reason(message);
    reason.consume_front((opType + ": ").str());
    return error(describe(op) + ": " + reason);
  }
  for (unsigned i = 0; i < numOutputs; ++i) {
    if (isa<NoneType>(op->getResult(i).getType()))
      continue;
    if (!ctx.outputs[i].defined())
      return error(describe(op) + ": output " + llvm::Twine(i) + " was not computed");
  }
  return std::move(ctx.outputs);
}

std::vector<std::string> supportedOps() {
  std::vector<std::string> ops = {"Constant"};
  for (const auto &entry : kernelRegistry())
    ops.push_back(entry.getKey().str());
  std::sort(ops.begin(), ops.end());
  return ops;
}

} // namespace refold::interp
