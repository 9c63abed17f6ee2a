//===- CEmitter.cpp - a model as a dependency-free C library -----------------===//
//
// Lowers each op to steps (Lower*.cpp), plans one arena from the steps'
// lifetimes (in place where a step may overwrite an input that dies there,
// views for reshapes, the final producers writing straight into the
// caller's output buffers), then prints the kernels the steps use, the
// packed weights and the run function.
//
//===----------------------------------------------------------------------===//

#include "refold/CEmitter/CEmitter.h"

#include "Lowering.h"
#include "MemoryPlan.h"

#include "refold/Dialect/ONNX/ONNXOps.h"
#include "refold/Interpreter/Interpreter.h"
#include "refold/Passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OperationSupport.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/raw_ostream.h"

#include <set>

using namespace mlir;
using llvm::Error;

namespace refold::cemit {

Error lowerNN(Emitter &e, Operation *op, bool &handled);
class FusedChains;
std::shared_ptr<FusedChains> findFusedChains(Emitter &e, Block &body);
Error lowerFusedAt(FusedChains &chains, Emitter &e, Operation *op, bool &handled);
Error lowerTensorOp(Emitter &e, Operation *op, bool &handled);
class IntegerGroups;
void moveQuantizedData(Emitter &e, Block &body);
std::shared_ptr<IntegerGroups> findIntegerGroups(Emitter &e, Block &body, bool fixed);
Error lowerIntegerAt(IntegerGroups &groups, Emitter &e, Operation *op, bool &handled);
std::vector<std::string> integerRemarks(const IntegerGroups &groups);
Error lowerQuantOp(Emitter &e, Operation *op, bool fixed, bool &handled);

namespace {
// The kernel sources, in the order they may depend on each other.
#include "CKernels.inc"
} // namespace

static Error error(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message.str());
}

std::string cIdentifier(StringRef stem) {
  std::string id;
  for (char c : stem)
    id += (isalnum(static_cast<unsigned char>(c)) || c == '_') ? c : '_';
  if (id.empty() || isdigit(static_cast<unsigned char>(id[0])))
    id = "m_" + id;
  return id;
}

static func::FuncOp mainFunction(ModuleOp module) {
  func::FuncOp main;
  for (auto func : module.getOps<func::FuncOp>())
    main = func;
  return main;
}

static Attribute recordField(ArrayAttr records, size_t i, StringRef key) {
  if (!records || i >= records.size())
    return {};
  auto dict = dyn_cast<DictionaryAttr>(records[i]);
  return dict ? dict.get(key) : Attribute();
}

Error pinDimensions(ModuleOp module, const llvm::StringMap<int64_t> &dims,
                    const DefaultDimFn &fallback) {
  func::FuncOp main = mainFunction(module);
  if (!main || main.isExternal())
    return error("the module has no main graph");
  auto graph = main->getAttrOfType<DictionaryAttr>(ir::kGraphAttr);
  ArrayAttr inputs = graph ? graph.getAs<ArrayAttr>("inputs") : ArrayAttr();
  Block &body = main.getBody().front();
  SmallVector<Type> argTypes;
  for (auto [i, arg] : llvm::enumerate(body.getArguments())) {
    auto type = dyn_cast<RankedTensorType>(arg.getType());
    auto nameAttr = dyn_cast_or_null<StringAttr>(recordField(inputs, i, "name"));
    std::string name = nameAttr ? nameAttr.str() : "input" + std::to_string(i);
    if (!type) {
      if (isa<TensorType>(arg.getType()))
        return error("input '" + name + "' has an unknown rank");
      argTypes.push_back(arg.getType());
      continue;
    }
    auto params = dyn_cast_or_null<ArrayAttr>(recordField(inputs, i, "dim_params"));
    SmallVector<int64_t> shape(type.getShape());
    for (auto [d, size] : llvm::enumerate(shape)) {
      if (!ShapedType::isDynamic(size))
        continue;
      std::string param;
      if (params && d < params.size())
        if (auto p = dyn_cast<StringAttr>(params[d]))
          param = p.str();
      auto it = param.empty() ? dims.end() : dims.find(param);
      if (it == dims.end() && fallback) {
        size = fallback(name, d, param, type.getRank());
        continue;
      }
      if (it == dims.end())
        return error("dimension " + std::to_string(d) + " of input '" + name + "'" +
                     (param.empty() ? std::string(" has no name and no size")
                                    : " is the symbolic '" + param + "'; pin it with --dim " +
                                          param + "=VALUE"));
      size = it->second;
    }
    auto pinned = RankedTensorType::get(shape, type.getElementType());
    arg.setType(pinned);
    argTypes.push_back(pinned);
  }
  main.setFunctionType(FunctionType::get(module.getContext(), argTypes,
                                         main.getFunctionType().getResults()));
  // The pinned sizes replace the names, so export and inference see them.
  if (graph && inputs) {
    SmallVector<Attribute> records;
    for (Attribute record : inputs) {
      auto dict = dyn_cast<DictionaryAttr>(record);
      if (!dict) {
        records.push_back(record);
        continue;
      }
      SmallVector<NamedAttribute> fields;
      for (NamedAttribute field : dict)
        if (field.getName() != "dim_params")
          fields.push_back(field);
      records.push_back(DictionaryAttr::get(module.getContext(), fields));
    }
    NamedAttrList graphFields(graph);
    graphFields.set("inputs", ArrayAttr::get(module.getContext(), records));
    main->setAttr(ir::kGraphAttr, graphFields.getDictionary(module.getContext()));
  }
  // Each round of folding and inference resolves one more link of a chain
  // of run-time shape computations (Shape -> Gather -> Concat -> Reshape):
  // repeat until nothing changes.
  InferShapesOptions everyValue;
  everyValue.graphOutputs = true;
  PassManager pm(module.getContext(), ModuleOp::getOperationName());
  pm.nest<func::FuncOp>().addPass(createFoldConstants());
  pm.addPass(createInferShapes(everyValue));
  pm.nest<func::FuncOp>().addPass(createCleanup());
  for (unsigned round = 0; round < 100; ++round) {
    OperationFingerPrint before(module);
    if (failed(pm.run(module)))
      return error("shape inference after pinning the dimensions failed");
    if (OperationFingerPrint(module) == before)
      break;
  }
  return Error::success();
}

std::vector<std::string> supportedOps() {
  return {"Abs", "Add", "AveragePool", "BatchNormalization", "Ceil", "Clip", "Concat", "Conv",
          "ConvInteger", "ConvTranspose", "DequantizeLinear", "Div", "Dropout", "Elu", "Erf", "Exp", "Flatten", "Floor", "Gather",
          "Gelu", "Gemm", "GlobalAveragePool", "GlobalMaxPool", "HardSigmoid", "HardSwish",
          "Identity", "LayerNormalization", "LeakyRelu", "Log", "LogSoftmax", "MatMul", "MatMulInteger", "Max",
          "MaxPool", "Mean", "Min", "Mul", "Neg", "Pad", "Pow", "QLinearConv", "QLinearMatMul", "QuantizeLinear", "Reciprocal", "ReduceL2", "ReduceMax",
          "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare", "Relu",
          "Reshape", "Resize", "Sigmoid", "Slice", "Softmax", "Softplus", "Split", "Sqrt",
          "Squeeze", "Sub", "Sum", "Tanh", "Transpose", "Unsqueeze", "Upsample"};
}

Error lowerOp(Emitter &e, Operation *op) {
  bool handled = false;
  if (auto err = lowerQuantOp(e, op, e.fixedRequant, handled))
    return err;
  if (handled)
    return Error::success();
  if (auto err = lowerNN(e, op, handled))
    return err;
  if (handled)
    return Error::success();
  if (auto err = lowerTensorOp(e, op, handled))
    return err;
  if (handled)
    return Error::success();
  if (auto node = dyn_cast<ir::NodeOp>(op); node && node.getDomain() && !node.getDomain()->empty() &&
                                            *node.getDomain() != "ai.onnx")
    return e.unsupported(op, "custom domain '" + node.getDomain()->str() + "'");
  return e.unsupported(op, "no C kernel for this op");
}

namespace {

/// Gives every value a place (see the file comment).
class Planner {
public:
  Planner(Emitter &e, ArrayRef<Value> inputs, ArrayRef<Value> outputs, bool slices)
      : e(e), inputs(inputs), outputs(outputs), useSlices(slices) {}

  void run() {
    unsigned numSteps = e.steps.size();
    // Last step reading each value; graph outputs live to the end.
    for (auto [index, step] : llvm::enumerate(e.steps))
      for (Value v : step.reads)
        lastRead[v] = index;
    for (Value v : outputs)
      lastRead[v] = numSteps;
    for (auto [i, v] : llvm::enumerate(inputs)) {
      int b = newBuffer(Storage::Input, 0, 0);
      e.buffers[b].index = i;
      place(v, b, 0);
    }
    e.scratchBuffer.assign(numSteps, -1);
    if (useSlices)
      findSlices();
    for (auto [index, step] : llvm::enumerate(e.steps)) {
      for (Value v : step.reads)
        if (!e.slots.count(v))
          placeConstant(v);
      if (step.isView) {
        Slot source = e.slots.lookup(step.reads[0]);
        place(step.writes[0], source.buffer, source.byteOffset);
        continue;
      }
      if (auto group = concatBuffer.find(index); group != concatBuffer.end()) {
        place(step.writes[0], group->second, 0);
        continue;
      }
      for (auto [k, v] : llvm::enumerate(step.writes)) {
        if (auto slice = sliceOf.find(v); slice != sliceOf.end()) {
          auto [concat, offset] = slice->second;
          auto [it, created] = concatBuffer.try_emplace(concat, -1);
          if (created)
            it->second = newBuffer(Storage::Arena, bytesOf(e.steps[concat].writes[0]), index);
          place(v, it->second, offset);
          slicedCount++;
          continue;
        }
        if (k == 0)
          if (int reused = inPlaceTarget(step, index, v); reused >= 0) {
            place(v, reused, 0);
            inPlaceCount++;
            continue;
          }
        int b = newBuffer(Storage::Arena, bytesOf(v), index);
        place(v, b, 0);
      }
      if (step.scratchBytes)
        e.scratchBuffer[index] = newBuffer(Storage::Arena, step.scratchBytes, index);
    }
    for (auto [i, v] : llvm::enumerate(outputs))
      bindOutput(i, v);
    // Lifetimes: from the first write to the last read of any value inside.
    for (Buffer &b : e.buffers)
      for (Value v : b.values)
        b.last = std::max<unsigned>(b.last, lastRead.lookup(v));
  }

  unsigned inPlaceCount = 0, slicedCount = 0;
  /// Outputs whose value has to be copied to the caller's buffer at the end.
  std::vector<std::pair<unsigned, Value>> outputCopies;

private:
  /// Concat inputs a producer can write into the output: written by an
  /// earlier step (not a view), not graph outputs. Other readers read the
  /// slice, which lives as long as the output's buffer (its lifetime covers
  /// every value in it).
  void findSlices() {
    llvm::DenseMap<Value, unsigned> producer;
    for (auto [index, step] : llvm::enumerate(e.steps)) {
      if (!step.isView)
        for (Value v : step.writes)
          producer[v] = index;
    }
    for (auto [index, step] : llvm::enumerate(e.steps))
      for (auto [v, offset] : step.slices) {
        auto p = producer.find(v);
        if (p == producer.end() || p->second >= index || llvm::is_contained(outputs, v) ||
            e.steps[p->second].isView)
          continue;
        sliceOf[v] = {unsigned(index), offset};
      }
  }

  uint64_t bytesOf(Value v) {
    auto type = cast<RankedTensorType>(v.getType());
    auto dtype = elementDType(v);
    return uint64_t(type.getNumElements()) * (dtype ? interp::dtypeSize(*dtype) : 4);
  }

  int newBuffer(Storage kind, uint64_t bytes, unsigned first) {
    Buffer b;
    b.kind = kind;
    b.bytes = bytes;
    b.first = b.last = first;
    e.buffers.push_back(b);
    return e.buffers.size() - 1;
  }

  void place(Value v, int buffer, uint64_t offset) {
    e.slots[v] = Slot{buffer, offset};
    e.buffers[buffer].values.push_back(v);
  }

  void placeConstant(Value v) {
    int b = newBuffer(Storage::Weight, 0, 0);
    e.buffers[b].offset = e.weightOf(v);
    place(v, b, 0);
  }

  /// A buffer `v` can take over: a candidate input's, when nothing reads
  /// that buffer after this step and it is the arena's and the same size.
  int inPlaceTarget(const Step &step, unsigned index, Value v) {
    for (Value candidate : step.inPlaceCandidates) {
      auto it = e.slots.find(candidate);
      if (it == e.slots.end() || it->second.byteOffset != 0)
        continue;
      Buffer &b = e.buffers[it->second.buffer];
      if (b.kind != Storage::Arena || b.bytes != bytesOf(v))
        continue;
      bool dies = llvm::all_of(b.values, [&](Value held) { return lastRead.lookup(held) <= index; });
      // An input read twice by this step (x + x) stays readable: the kernels
      // read each element before writing it.
      if (dies)
        return it->second.buffer;
    }
    return -1;
  }

  void bindOutput(unsigned i, Value v) {
    // A graph output that folded to a constant is copied from the weights.
    if (!e.slots.count(v))
      placeConstant(v);
    Slot slot = e.slots.lookup(v);
    Buffer &b = e.buffers[slot.buffer];
    bool ownsBuffer = b.kind == Storage::Arena && slot.byteOffset == 0 && b.bytes == bytesOf(v);
    // Another graph output in the same buffer needs its own copy.
    if (ownsBuffer)
      for (Value held : b.values)
        if (held != v && llvm::is_contained(outputs, held))
          ownsBuffer = false;
    if (!ownsBuffer) {
      outputCopies.push_back({i, v});
      return;
    }
    b.kind = Storage::Output;
    b.index = i;
  }

  Emitter &e;
  ArrayRef<Value> inputs, outputs;
  bool useSlices;
  llvm::DenseMap<Value, unsigned> lastRead;
  llvm::DenseMap<Value, std::pair<unsigned, uint64_t>> sliceOf; // concat step, offset
  llvm::DenseMap<unsigned, int> concatBuffer;                    // concat step -> buffer
};

std::string shapeComment(Value v) {
  std::string text;
  auto dtype = elementDType(v);
  text += dtype ? interp::dtypeName(*dtype).str() : "?";
  text += "[";
  if (auto type = dyn_cast<RankedTensorType>(v.getType()))
    for (auto [i, d] : llvm::enumerate(type.getShape()))
      text += (i ? "," : "") + std::to_string(d);
  return text + "]";
}

/// Bytes as rows of a string literal (each row under C99's 4095 characters):
/// compact to write and fast for a compiler to read, unlike a list of numbers.
void printBlob(raw_ostream &os, const std::string &name, ArrayRef<char> blob) {
  constexpr size_t row = 4032;
  size_t rows = std::max<size_t>(1, (blob.size() + row - 1) / row);
  os << "static const unsigned char " << name << "[" << rows << "][" << row << "] RF_ALIGNED = {\n";
  for (size_t r = 0; r < rows; ++r) {
    os << "\"";
    size_t end = std::min(blob.size(), (r + 1) * row);
    size_t last = r * row;
    // Trailing zeros of a row are left to the initializer.
    size_t used = end;
    while (used > last && blob[used - 1] == 0)
      --used;
    for (size_t i = last; i < used; ++i) {
      unsigned char c = blob[i];
      if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '?')
        os << char(c);
      else
        os << '\\' << char('0' + (c >> 6)) << char('0' + ((c >> 3) & 7)) << char('0' + (c & 7));
    }
    os << "\",\n";
  }
  os << "};\n";
}

} // namespace

llvm::Expected<EmittedC> emitC(ModuleOp module, const EmitOptions &options) {
  func::FuncOp main = mainFunction(module);
  if (!main || main.isExternal())
    return error("the module has no main graph");
  Emitter e(main, interp::modelOpset(module));
  e.fixedRequant = options.fixedRequant;
  Block &body = main.getBody().front();
  auto graph = main->getAttrOfType<DictionaryAttr>(ir::kGraphAttr);
  ArrayAttr inputRecords = graph ? graph.getAs<ArrayAttr>("inputs") : ArrayAttr();
  ArrayAttr outputRecords = graph ? graph.getAs<ArrayAttr>("outputs") : ArrayAttr();

  SmallVector<Value> inputs(body.getArguments().begin(), body.getArguments().end());
  for (auto [i, v] : llvm::enumerate(inputs)) {
    auto type = dyn_cast<RankedTensorType>(v.getType());
    if (!type || !type.hasStaticShape())
      return error("input " + std::to_string(i) + " has no static shape");
    auto dtype = elementDType(v);
    if (!dtype || cTypeOf(*dtype).empty())
      return error("input " + std::to_string(i) + " has an element type C output does not support");
  }
  moveQuantizedData(e, body);
  std::shared_ptr<IntegerGroups> integer = findIntegerGroups(e, body, options.fixedRequant);
  std::shared_ptr<FusedChains> chains = findFusedChains(e, body);
  for (Operation &op : body) {
    if (isa<ir::NoneOp, ir::InitializerOp, ir::ConstantOp, func::ReturnOp>(op))
      continue;
    if (auto node = dyn_cast<ir::NodeOp>(op); node && node.getOpType() == "Constant")
      continue;
    if (e.isAbsorbed(&op))
      continue;
    // A dequantized constant (a weight no integer kernel took) is packed
    // where it is read.
    if (opTypeOf(&op) == "DequantizeLinear" && e.isConstant(op.getResult(0)))
      continue;
    if (op.getNumRegions())
      return e.unsupported(&op, "subgraphs");
    bool integerKernel = false;
    if (auto err = lowerIntegerAt(*integer, e, &op, integerKernel))
      return std::move(err);
    if (integerKernel)
      continue;
    bool fused = false;
    if (auto err = lowerFusedAt(*chains, e, &op, fused))
      return std::move(err);
    if (fused)
      continue;
    if (auto err = lowerOp(e, &op))
      return std::move(err);
  }
  SmallVector<Value> outputs(body.getTerminator()->getOperands());
  for (Value v : outputs) {
    auto type = dyn_cast<RankedTensorType>(v.getType());
    if (!type || !type.hasStaticShape())
      return error("a graph output has no static shape");
  }

  // Producers writing into their Concat's output save the copies but keep
  // the output alive longer: plan both ways, keep the smaller arena (ties go
  // to the one without copies).
  EmittedC result;
  result.report.notes = integerRemarks(*integer);
  std::optional<Planner> planner;
  uint64_t bestArena = UINT64_MAX;
  bool bestSlices = true;
  for (int pass = 0; pass < 3; ++pass) {
    bool slices = pass == 0 ? true : pass == 1 ? false : bestSlices;
    if (pass == 2 && bestSlices == false)
      break; // the last plan is the best one
    e.buffers.clear();
    e.slots.clear();
    planner.emplace(e, inputs, outputs, slices);
    planner->run();
    std::vector<PlannedBuffer> arena;
    std::vector<size_t> arenaIndex;
    for (auto [i, b] : llvm::enumerate(e.buffers))
      if (b.kind == Storage::Arena) {
        arena.push_back(PlannedBuffer{b.bytes, b.first, b.last, 0});
        arenaIndex.push_back(i);
      }
    uint64_t size = planArena(arena, 64);
    if (pass < 2 && size < bestArena) {
      bestArena = size;
      bestSlices = slices;
    }
    result.report.arenaBytes = size;
    result.report.lowerBoundBytes = liveLowerBound(arena);
    for (auto [k, i] : llvm::enumerate(arenaIndex))
      e.buffers[i].offset = arena[k].offset;
  }
  // One buffer per tensor: every value a step writes, and every scratch slice.
  for (const Step &step : e.steps)
    if (!step.isView) {
      for (Value v : step.writes)
        result.report.perTensorBytes +=
            cast<RankedTensorType>(v.getType()).getNumElements() *
            interp::dtypeSize(elementDType(v).value_or(DType::F32));
      result.report.perTensorBytes += step.scratchBytes;
    }
  result.report.steps = e.steps.size();

  // The run function's body.
  std::string code;
  llvm::raw_string_ostream body_os(code);
  for (auto [index, step] : llvm::enumerate(e.steps)) {
    if (step.isView)
      continue;
    e.currentStep = index;
    body_os << "  /* " << step.comment << " */\n";
    step.print(e, body_os);
  }
  for (auto [i, v] : planner->outputCopies)
    body_os << "  memcpy(out" << i << ", " << e.ptr(v) << ", "
            << cast<RankedTensorType>(v.getType()).getNumElements() *
                   interp::dtypeSize(elementDType(v).value_or(DType::F32))
            << ");\n";

  const std::string &P = options.prefix;
  std::string guard = P;
  for (char &c : guard)
    c = toupper(static_cast<unsigned char>(c));
  auto nameOf = [](ArrayAttr records, size_t i, StringRef fallback) {
    auto n = dyn_cast_or_null<StringAttr>(recordField(records, i, "name"));
    return n ? n.str() : fallback.str() + std::to_string(i);
  };
  auto cString = [](StringRef s) {
    std::string out = "\"";
    for (char c : s) {
      if (c == '"' || c == '\\')
        out += '\\';
      if (static_cast<unsigned char>(c) < 0x20) {
        char buffer[8];
        std::snprintf(buffer, sizeof(buffer), "\\%03o", unsigned(static_cast<unsigned char>(c)));
        out += buffer;
        continue;
      }
      out += c;
    }
    return out + "\"";
  };
  uint64_t workspace = std::max<uint64_t>(result.report.arenaBytes, 64);

  // Header.
  llvm::raw_string_ostream h(result.header);
  h << "/* " << P << ": generated by refold. Tensors are dense, row-major, in the model's\n"
    << " * layout and element types, in the order of the graph's inputs and outputs. */\n"
    << "#ifndef " << guard << "_H\n#define " << guard << "_H\n\n#include <stddef.h>\n#include <stdint.h>\n\n"
    << "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n"
    << "#define " << P << "_NUM_INPUTS " << inputs.size() << "\n"
    << "#define " << P << "_NUM_OUTPUTS " << outputs.size() << "\n"
    << "/* Bytes of workspace P_run_with_workspace needs (64-byte aligned). */\n"
    << "#define " << P << "_WORKSPACE_SIZE " << workspace << "\n\n";
  h << "extern const char *const " << P << "_input_names[" << std::max<size_t>(1, inputs.size()) << "];\n"
    << "extern const char *const " << P << "_output_names[" << std::max<size_t>(1, outputs.size()) << "];\n"
    << "extern const size_t " << P << "_input_sizes[" << std::max<size_t>(1, inputs.size()) << "];\n"
    << "extern const size_t " << P << "_output_sizes[" << std::max<size_t>(1, outputs.size()) << "];\n\n";
  for (auto [i, v] : llvm::enumerate(inputs))
    h << "/* input " << i << ": " << nameOf(inputRecords, i, "input") << " " << shapeComment(v) << " */\n";
  for (auto [i, v] : llvm::enumerate(outputs))
    h << "/* output " << i << ": " << nameOf(outputRecords, i, "output") << " " << shapeComment(v) << " */\n";
  h << "\n/* Runs the model on a static arena inside the library (not reentrant). 0 on success. */\n"
    << "int " << P << "_run(const void *const inputs[], void *const outputs[]);\n"
    << "/* The same on the caller's workspace of " << P << "_WORKSPACE_SIZE bytes, aligned to 64;\n"
    << " * its contents do not matter. Reentrant. 0 on success. */\n"
    << "int " << P << "_run_with_workspace(const void *const inputs[], void *const outputs[],\n"
    << "    void *workspace);\n\n#ifdef __cplusplus\n}\n#endif\n\n#endif\n";

  // Source.
  llvm::raw_string_ostream c(result.source);
  c << "/* " << P << ": generated by refold. C99; needs only libc and libm. */\n"
    << "#include \"" << options.headerName << "\"\n\n";
  // Kernel files, in dependency order.
  std::set<std::string> files = e.kernelFiles;
  if (files.count("winograd") || files.count("int8"))
    files.insert("conv");
  if (files.count("int8"))
    files.insert("pool");
  if (files.count("conv"))
    files.insert("gemm");
  if (files.count("data") || files.count("norm"))
    files.insert("elementwise");
  c << kKernelBase << "\n";
  for (auto &[name, text] : kKernelFiles)
    if (files.count(name))
      c << text << "\n";
  c << "#if defined(__GNUC__) && !defined(__clang__)\n#pragma GCC pop_options\n#endif\n\n";
  c << "/* Model */\n";
  c << "const char *const " << P << "_input_names[" << std::max<size_t>(1, inputs.size()) << "] = {";
  for (size_t i = 0; i < inputs.size(); ++i)
    c << (i ? ", " : "") << cString(nameOf(inputRecords, i, "input"));
  c << (inputs.empty() ? "0" : "") << "};\n";
  c << "const char *const " << P << "_output_names[" << std::max<size_t>(1, outputs.size()) << "] = {";
  for (size_t i = 0; i < outputs.size(); ++i)
    c << (i ? ", " : "") << cString(nameOf(outputRecords, i, "output"));
  c << (outputs.empty() ? "0" : "") << "};\n";
  auto sizes = [&](ArrayRef<Value> values) {
    std::string s;
    for (auto [i, v] : llvm::enumerate(values))
      s += (i ? ", " : "") + std::to_string(cast<RankedTensorType>(v.getType()).getNumElements());
    return s.empty() ? std::string("0") : s;
  };
  c << "const size_t " << P << "_input_sizes[" << std::max<size_t>(1, inputs.size()) << "] = {"
    << sizes(inputs) << "};\n";
  c << "const size_t " << P << "_output_sizes[" << std::max<size_t>(1, outputs.size()) << "] = {"
    << sizes(outputs) << "};\n\n";
  c << "/* Arena: " << result.report.arenaBytes << " bytes planned; lower bound (most bytes live at one step) "
    << result.report.lowerBoundBytes << "; one buffer per tensor " << result.report.perTensorBytes
    << ". */\n";
  c << e.decls << "\n";
  printBlob(c, "rf_weights", e.blob);
  c << "\nint " << P << "_run_with_workspace(const void *const inputs[], void *const outputs[],\n"
    << "    void *workspace) {\n"
    << "  unsigned char *ws = (unsigned char *)workspace;\n"
    << "  const unsigned char *wb = &rf_weights[0][0];\n";
  for (size_t i = 0; i < inputs.size(); ++i)
    c << "  const unsigned char *in" << i << " = (const unsigned char *)inputs[" << i << "];\n";
  for (size_t i = 0; i < outputs.size(); ++i)
    c << "  unsigned char *out" << i << " = (unsigned char *)outputs[" << i << "];\n";
  c << "  (void)ws;\n  (void)wb;\n";
  for (size_t i = 0; i < inputs.size(); ++i)
    c << "  (void)in" << i << ";\n";
  for (size_t i = 0; i < outputs.size(); ++i)
    c << "  (void)out" << i << ";\n";
  if (inputs.empty())
    c << "  (void)inputs;\n";
  if (outputs.empty())
    c << "  (void)outputs;\n";
  c << code << "  return 0;\n}\n\n";
  c << "static unsigned char rf_arena[" << workspace << "] RF_ALIGNED;\n\n"
    << "int " << P << "_run(const void *const inputs[], void *const outputs[]) {\n"
    << "  return " << P << "_run_with_workspace(inputs, outputs, rf_arena);\n}\n";
  return result;
}

} // namespace refold::cemit
