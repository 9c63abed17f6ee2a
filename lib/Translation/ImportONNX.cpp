//===- ImportONNX.cpp - ONNX model -> onnx dialect --------------------------===//
//
// Reads a ModelProto (binary or textual ONNX), loads external data, checks
// every node against its ONNX schema, runs shape inference, and builds a
// module holding one func.func for the main graph. Nodes with a typed op that
// fits become that op; every other node becomes `onnx.node` and keeps all its
// attributes and subgraphs. Whatever export needs to write the model back
// (names, doc strings, metadata, value_info, dim_params) is kept in attributes.
//
//===----------------------------------------------------------------------===//

#include "Common.h"

#include "refold/Dialect/ONNX/ONNXOps.h"
#include "refold/Dialect/ONNX/OwnedBlob.h"
#include "refold/Translation/ONNXModel.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/AsmState.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "mlir/IR/Verifier.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
#include "llvm/ADT/ScopeExit.h"

#include <functional>
#include <optional>
#include <stdexcept>
#include <unistd.h>

#include <onnx/checker.h>
#include <onnx/defs/parser.h>
#include <onnx/defs/schema.h>
#include <onnx/shape_inference/implementation.h>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/stubs/logging.h>

#include <fstream>
#include <queue>

using namespace mlir;
using namespace refold;
using namespace refold::detail;
using llvm::StringRef;

namespace {

/// Tensors up to this many bytes stay readable DenseElementsAttr (shapes,
/// scalars); larger ones become blob resources.
constexpr size_t kInlineTensorBytes = 64;

/// Import failures carry one line of text; the driver prefixes the file.
struct ImportError {
  std::string message;
};

llvm::Error makeError(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message.str());
}

std::string describeNode(const onnx::NodeProto &node) {
  std::string text = "node";
  if (!node.name().empty())
    text += " '" + node.name() + "'";
  text += " (" + (node.domain().empty() ? "" : node.domain() + ".") + node.op_type() + ")";
  return text;
}

/// Arity of the typed ops; inputs past `minInputs` are optional (onnx.none).
struct TypedSignature {
  unsigned minInputs, maxInputs; // maxInputs == ~0u: variadic
  unsigned minOutputs, maxOutputs;
};

const llvm::StringMap<TypedSignature> &typedSignatures() {
  constexpr unsigned kVariadic = ~0u;
  static const llvm::StringMap<TypedSignature> table = {
      {"Conv", {2, 3, 1, 1}},
      {"ConvTranspose", {2, 3, 1, 1}},
      {"BatchNormalization", {5, 5, 1, 1}},
      {"Gemm", {2, 3, 1, 1}},
      {"MatMul", {2, 2, 1, 1}},
      {"Add", {2, 2, 1, 1}},
      {"Sub", {2, 2, 1, 1}},
      {"Mul", {2, 2, 1, 1}},
      {"Div", {2, 2, 1, 1}},
      {"Pow", {2, 2, 1, 1}},
      {"Relu", {1, 1, 1, 1}},
      {"Sigmoid", {1, 1, 1, 1}},
      {"HardSigmoid", {1, 1, 1, 1}},
      {"HardSwish", {1, 1, 1, 1}},
      {"Erf", {1, 1, 1, 1}},
      {"Sqrt", {1, 1, 1, 1}},
      {"Clip", {1, 3, 1, 1}},
      {"Identity", {1, 1, 1, 1}},
      {"Dropout", {1, 3, 1, 2}},
      {"Constant", {0, 0, 1, 1}},
      {"Concat", {1, kVariadic, 1, 1}},
      {"Split", {1, 2, 1, kVariadic}},
      {"Slice", {3, 5, 1, 1}},
      {"Reshape", {2, 2, 1, 1}},
      {"Transpose", {1, 1, 1, 1}},
      {"Flatten", {1, 1, 1, 1}},
      {"Squeeze", {1, 2, 1, 1}},
      {"Unsqueeze", {2, 2, 1, 1}},
      {"MaxPool", {1, 1, 1, 2}},
      {"AveragePool", {1, 1, 1, 1}},
      {"GlobalAveragePool", {1, 1, 1, 1}},
      {"Pad", {2, 4, 1, 1}},
      {"Softmax", {1, 1, 1, 1}},
      {"LayerNormalization", {2, 3, 1, 3}},
      {"ReduceMean", {1, 1, 1, 1}},
      {"QuantizeLinear", {2, 3, 1, 1}},
      {"DequantizeLinear", {2, 3, 1, 1}},
  };
  return table;
}

/// Names visible in a graph: its own values, then the enclosing graphs'.
struct Scope {
  Scope *parent = nullptr;
  llvm::StringMap<Value> values;
  Value lookup(StringRef name) const {
    for (const Scope *s = this; s; s = s->parent)
      if (auto it = s->values.find(name); it != s->values.end())
        return it->second;
    return nullptr;
  }
};

class Importer {
public:
  Importer(MLIRContext &ctx, const ImportOptions &options, WarningHandler warn,
           std::string modelDir)
      : ctx(ctx), builder(&ctx), options(options), warn(warn),
        modelDir(std::move(modelDir)) {}

  llvm::Expected<OwningOpRef<ModuleOp>> run(onnx::ModelProto &model);

private:
  // Preparation on the proto.
  llvm::Error loadExternalData(onnx::GraphProto &graph);
  llvm::Error loadExternalTensor(onnx::TensorProto &tensor);
  void checkVersions(const onnx::ModelProto &model);
  void inferShapes(onnx::ModelProto &model);
  /// Why `node` does not match its ONNX schema (attribute names and kinds,
  /// required attributes, arity), if it does not.
  std::optional<std::string> schemaError(const onnx::NodeProto &node);
  void collectValueTypes(const onnx::GraphProto &graph);

  // Types and values.
  Type convertType(const onnx::TypeProto &type, ArrayAttr *dimParams);
  FailureOr<ElementsAttr> convertTensor(onnx::TensorProto &tensor);
  FailureOr<Attribute> convertAttribute(onnx::AttributeProto &attr);

  // Graphs and nodes.
  LogicalResult importGraph(onnx::GraphProto &graph, Block &block, Scope &scope,
                            NamedAttrList &graphInfo, bool isMain);
  LogicalResult importNode(onnx::NodeProto &node, Scope &scope, Block &block);
  Operation *createTypedOp(onnx::NodeProto &node, ArrayRef<Value> operands,
                           ArrayRef<Type> resultTypes, ArrayRef<NamedAttribute> attrs);
  Attribute valueInfoEntry(StringRef name, Type *type);
  DictionaryAttr valueInfoRecord(const onnx::ValueInfoProto &info, bool withType,
                                 Type *mlirType);
  FailureOr<std::vector<int>> topologicalOrder(const onnx::GraphProto &graph,
                                               const Scope &scope);

  LogicalResult fail(const llvm::Twine &message) {
    if (!error)
      error = message.str();
    return failure();
  }

  Value noneValue(Block &block) {
    auto it = noneValues.find(&block);
    if (it != noneValues.end())
      return it->second;
    OpBuilder::InsertionGuard guard(builder);
    builder.setInsertionPointToStart(&block);
    Value none = builder.create<ir::NoneOp>(builder.getUnknownLoc());
    noneValues[&block] = none;
    return none;
  }

  int64_t opsetVersion(StringRef domain) const {
    auto it = opsets.find(domain == "ai.onnx" ? "" : domain);
    return it == opsets.end() ? -1 : it->second;
  }

  MLIRContext &ctx;
  OpBuilder builder;
  const ImportOptions &options;
  WarningHandler warn;
  std::string modelDir;
  std::optional<std::string> error;

  llvm::StringMap<int64_t> opsets;
  /// Domains whose opset is newer than the ONNX library knows: no schema
  /// checks and no typed ops there.
  llvm::StringSet<> unknownOpsetDomains;
  /// Value name -> type after shape inference (covers value_info, inputs, outputs).
  llvm::StringMap<const onnx::TypeProto *> valueTypes;
  /// Names listed in value_info by the model itself (before inference).
  llvm::StringSet<> declaredValueInfo;
  llvm::DenseMap<Block *, Value> noneValues;
  /// Graph outputs as the model declared them (shape inference refines them
  /// in place; export must write what the model said).
  llvm::DenseMap<const onnx::GraphProto *,
                 google::protobuf::RepeatedPtrField<onnx::ValueInfoProto>>
      declaredOutputs;
};

//===----------------------------------------------------------------------===//
// Preparation
//===----------------------------------------------------------------------===//

llvm::Error Importer::loadExternalTensor(onnx::TensorProto &tensor) {
  if (tensor.data_location() != onnx::TensorProto::EXTERNAL)
    return llvm::Error::success();
  std::string location;
  uint64_t offset = 0;
  std::optional<uint64_t> length;
  for (const auto &entry : tensor.external_data()) {
    if (entry.key() == "location") {
      location = entry.value();
    } else if (entry.key() == "offset" || entry.key() == "length") {
      uint64_t value;
      if (StringRef(entry.value()).getAsInteger(10, value))
        return makeError("tensor '" + tensor.name() + "': external data " +
                         entry.key() + " '" + entry.value() + "' is not a number");
      if (entry.key() == "offset")
        offset = value;
      else
        length = value;
    }
  }
  if (location.empty())
    return makeError("tensor '" + tensor.name() + "' has external data without a location");
  // External data must stay inside the model's folder.
  if (llvm::sys::path::is_absolute(location) ||
      llvm::any_of(llvm::make_range(llvm::sys::path::begin(location),
                                    llvm::sys::path::end(location)),
                   [](StringRef part) { return part == ".."; }))
    return makeError("tensor '" + tensor.name() + "': external data path '" + location +
                     "' is outside the model's folder");
  llvm::SmallString<256> path(modelDir.empty() ? "." : modelDir);
  llvm::sys::path::append(path, location);
  llvm::SmallString<256> realDir, realFile;
  if (llvm::sys::fs::real_path(modelDir.empty() ? "." : modelDir, realDir) ||
      llvm::sys::fs::real_path(path, realFile))
    return makeError("tensor '" + tensor.name() + "': external data file '" + location +
                     "' not found");
  if (!StringRef(realFile).starts_with((realDir + llvm::sys::path::get_separator()).str()))
    return makeError("tensor '" + tensor.name() + "': external data path '" + location +
                     "' resolves outside the model's folder");
  uint64_t fileSize;
  if (llvm::sys::fs::file_size(realFile, fileSize))
    return makeError("tensor '" + tensor.name() + "': cannot read external data file '" +
                     location + "'");
  uint64_t size = length ? *length : fileSize - std::min(offset, fileSize);
  if (offset > fileSize || size > fileSize - offset)
    return makeError("tensor '" + tensor.name() + "': external data (offset " +
                     llvm::Twine(offset) + ", length " + llvm::Twine(size) +
                     ") runs past the end of '" + location + "' (" + llvm::Twine(fileSize) +
                     " bytes)");
  std::ifstream in(realFile.c_str(), std::ios::binary);
  std::string data(size, '\0');
  in.seekg(offset);
  if (!in.read(data.data(), size))
    return makeError("tensor '" + tensor.name() + "': cannot read external data file '" +
                     location + "'");
  tensor.set_raw_data(std::move(data));
  tensor.clear_external_data();
  tensor.clear_data_location();
  return llvm::Error::success();
}

llvm::Error Importer::loadExternalData(onnx::GraphProto &graph) {
  for (auto &tensor : *graph.mutable_initializer())
    if (auto err = loadExternalTensor(tensor))
      return err;
  for (auto &node : *graph.mutable_node()) {
    for (auto &attr : *node.mutable_attribute()) {
      if (attr.has_t())
        if (auto err = loadExternalTensor(*attr.mutable_t()))
          return err;
      for (auto &tensor : *attr.mutable_tensors())
        if (auto err = loadExternalTensor(tensor))
          return err;
      if (attr.has_g())
        if (auto err = loadExternalData(*attr.mutable_g()))
          return err;
      for (auto &sub : *attr.mutable_graphs())
        if (auto err = loadExternalData(sub))
          return err;
    }
  }
  return llvm::Error::success();
}

void Importer::checkVersions(const onnx::ModelProto &model) {
  if (model.ir_version() > onnx::Version::IR_VERSION)
    warn("IR version " + llvm::Twine(model.ir_version()) +
         " is newer than supported (" + llvm::Twine(int(onnx::Version::IR_VERSION)) +
         "); importing it anyway");
  const auto &known = onnx::OpSchemaRegistry::DomainToVersionRange::Instance().Map();
  for (const auto &opset : model.opset_import()) {
    std::string domain = opset.domain() == "ai.onnx" ? "" : opset.domain();
    opsets[domain] = opset.version();
    auto it = known.find(domain);
    if (it != known.end() && opset.version() > it->second.second) {
      unknownOpsetDomains.insert(domain);
      warn("opset " + llvm::Twine(opset.version()) + " of domain '" +
           (domain.empty() ? "ai.onnx" : domain) + "' is newer than supported (" +
           llvm::Twine(it->second.second) +
           "); its nodes are kept unchanged but not checked or optimized");
    }
  }
}

/// Calls `fn` on `graph` and every subgraph below it.
/// A cycle among the model-local functions (one calling itself, directly or
/// through others), described; ONNX's shape inference and function
/// inlining would recurse without end on one.
static std::optional<std::string> functionCallCycle(const onnx::ModelProto &model) {
  auto key = [](const std::string &domain, const std::string &name) {
    return domain + "." + name;
  };
  llvm::StringMap<const onnx::FunctionProto *> functions;
  for (const auto &f : model.functions())
    functions[key(f.domain(), f.name())] = &f;
  // The local functions a node list calls, subgraphs included.
  std::function<void(const google::protobuf::RepeatedPtrField<onnx::NodeProto> &,
                     std::vector<std::string> &)>
      callees = [&](const auto &nodes, std::vector<std::string> &out) {
        for (const auto &node : nodes) {
          std::string k = key(node.domain(), node.op_type());
          if (functions.count(k))
            out.push_back(k);
          for (const auto &attr : node.attribute()) {
            if (attr.has_g())
              callees(attr.g().node(), out);
            for (const auto &g : attr.graphs())
              callees(g.node(), out);
          }
        }
      };
  // Depth-first, iteratively (a deep chain of calls must not overflow here
  // either): 1 = on the current path, 2 = done.
  llvm::StringMap<int> state;
  for (const auto &f : model.functions()) {
    std::string root = key(f.domain(), f.name());
    if (state.lookup(root))
      continue;
    std::vector<std::pair<std::string, std::vector<std::string>>> stack;
    auto push = [&](const std::string &name) {
      std::vector<std::string> next;
      callees(functions[name]->node(), next);
      state[name] = 1;
      stack.emplace_back(name, std::move(next));
    };
    push(root);
    while (!stack.empty()) {
      auto &[name, next] = stack.back();
      if (next.empty()) {
        state[name] = 2;
        stack.pop_back();
        continue;
      }
      std::string callee = next.back();
      next.pop_back();
      int seen = state.lookup(callee);
      if (seen == 1) {
        std::string path;
        bool inCycle = false;
        for (const auto &frame : stack) {
          inCycle |= frame.first == callee;
          if (inCycle)
            path += "'" + frame.first + "' -> ";
        }
        return "model-local function '" + callee + "' calls itself (" + path + "'" + callee +
               "')";
      }
      if (!seen)
        push(callee);
    }
  }
  return std::nullopt;
}

void Importer::inferShapes(onnx::ModelProto &model) {
  forEachGraph(*model.mutable_graph(), [&](onnx::GraphProto &graph) {
    for (const auto &info : graph.value_info())
      declaredValueInfo.insert(info.name());
    declaredOutputs[&graph] = graph.output();
  });
  if (!options.inferShapes || !unknownOpsetDomains.empty())
    return;
  // ONNX's inference functions trust the schema: a missing required
  // attribute (Scan's num_scan_inputs) is a null dereference inside them.
  // Such a node fails the import later with its own error; skip inference.
  bool schemasHold = true;
  forEachGraph(*model.mutable_graph(), [&](onnx::GraphProto &graph) {
    for (const auto &node : graph.node())
      schemasHold = schemasHold && !schemaError(node);
  });
  if (!schemasHold)
    return;
  if (auto error = inferShapesIsolated(model))
    warn(*error + "; shapes it did not reach stay unknown");
}



void Importer::collectValueTypes(const onnx::GraphProto &graph) {
  for (const auto &info : graph.value_info())
    if (info.has_type())
      valueTypes[info.name()] = &info.type();
  for (const auto &info : graph.output())
    if (info.has_type() && !valueTypes.count(info.name()))
      valueTypes[info.name()] = &info.type();
  for (const auto &node : graph.node())
    for (const auto &attr : node.attribute()) {
      if (attr.has_g())
        collectValueTypes(attr.g());
      for (const auto &sub : attr.graphs())
        collectValueTypes(sub);
    }
}

//===----------------------------------------------------------------------===//
// Types, tensors, attributes
//===----------------------------------------------------------------------===//

Type Importer::convertType(const onnx::TypeProto &type, ArrayAttr *dimParams) {
  if (dimParams)
    *dimParams = nullptr;
  auto opaque = [&] { return ir::ProtoType::get(&ctx, toText(type)); };
  if (type.value_case() != onnx::TypeProto::kTensorType || !type.denotation().empty())
    return opaque();
  const auto &tensor = type.tensor_type();
  Type element = elementTypeFromOnnx(tensor.elem_type(), &ctx);
  if (!element)
    return opaque();
  if (!tensor.has_shape())
    return UnrankedTensorType::get(element);
  SmallVector<int64_t> shape;
  SmallVector<Attribute> params;
  bool anyParam = false;
  for (const auto &dim : tensor.shape().dim()) {
    if (!dim.denotation().empty())
      return opaque();
    if (dim.has_dim_value() && dim.dim_value() >= 0) {
      shape.push_back(dim.dim_value());
      params.push_back(builder.getStringAttr(""));
    } else if (dim.has_dim_value()) {
      return opaque(); // a negative size is not a shape MLIR can hold
    } else {
      shape.push_back(ShapedType::kDynamic);
      params.push_back(builder.getStringAttr(dim.dim_param()));
      anyParam |= !dim.dim_param().empty();
    }
  }
  if (anyParam && dimParams)
    *dimParams = builder.getArrayAttr(params);
  return RankedTensorType::get(shape, element);
}

FailureOr<ElementsAttr> Importer::convertTensor(onnx::TensorProto &tensor) {
  std::string what = tensor.name().empty() ? "a tensor" : "tensor '" + tensor.name() + "'";
  if (tensor.has_segment())
    return fail(what + " is segmented, which is not supported"), failure();
  Type element = elementTypeFromOnnx(tensor.data_type(), &ctx);
  if (!element)
    return fail(what + " has unsupported data type " + llvm::Twine(tensor.data_type())),
           failure();
  SmallVector<int64_t> shape;
  uint64_t numElements = 1;
  for (int64_t dim : tensor.dims()) {
    if (dim < 0)
      return fail(what + " has a negative dimension"), failure();
    if (dim != 0 && numElements > (uint64_t(1) << 62) / uint64_t(dim))
      return fail(what + " has an impossibly large shape"), failure();
    numElements *= dim;
    shape.push_back(dim);
  }
  auto type = RankedTensorType::get(shape, element);
  int32_t dataType = tensor.data_type();

  if (dataType == onnx::TensorProto::STRING) {
    if ((uint64_t)tensor.string_data_size() != numElements)
      return fail(what + " has " + llvm::Twine(tensor.string_data_size()) +
                  " strings for " + llvm::Twine(numElements) + " elements"),
             failure();
    SmallVector<StringRef> strings(tensor.string_data().begin(), tensor.string_data().end());
    return ElementsAttr(DenseStringElementsAttr::get(type, strings));
  }

  size_t elementSize = elementByteSize(dataType);
  uint64_t expectedBytes = numElements * elementSize;
  // Canonical little-endian bytes, taken from raw_data or the typed field.
  std::string bytes;
  auto fromField = [&](const auto &field, size_t perValue, size_t valuesPerElement) {
    if ((uint64_t)field.size() != numElements * valuesPerElement)
      return false;
    bytes.resize(expectedBytes);
    char *out = bytes.data();
    for (const auto &value : field) {
      std::memcpy(out, &value, perValue); // little-endian host
      out += perValue;
    }
    return true;
  };
  bool ok = true;
  if (tensor.has_raw_data()) {
    bytes = std::move(*tensor.mutable_raw_data());
    tensor.clear_raw_data();
    ok = bytes.size() == expectedBytes;
  } else {
    switch (dataType) {
    case onnx::TensorProto::FLOAT: ok = fromField(tensor.float_data(), 4, 1); break;
    case onnx::TensorProto::COMPLEX64: ok = fromField(tensor.float_data(), 4, 2); break;
    case onnx::TensorProto::DOUBLE: ok = fromField(tensor.double_data(), 8, 1); break;
    case onnx::TensorProto::COMPLEX128: ok = fromField(tensor.double_data(), 8, 2); break;
    case onnx::TensorProto::INT64: ok = fromField(tensor.int64_data(), 8, 1); break;
    case onnx::TensorProto::UINT64: ok = fromField(tensor.uint64_data(), 8, 1); break;
    case onnx::TensorProto::UINT32: ok = fromField(tensor.uint64_data(), 4, 1); break;
    default: ok = fromField(tensor.int32_data(), elementSize, 1); break;
    }
  }
  if (!ok) {
    std::string dims;
    for (int64_t d : shape)
      dims += (dims.empty() ? "" : ",") + std::to_string(d);
    return fail(what + " holds the wrong amount of data for shape [" + dims + "] (expects " +
                llvm::Twine(expectedBytes) + " bytes)"),
           failure();
  }

  if (bytes.size() <= kInlineTensorBytes) {
    if (element.isInteger(1)) {
      SmallVector<bool> values(bytes.begin(), bytes.end());
      for (bool &v : values)
        v = v != 0;
      return ElementsAttr(DenseElementsAttr::get(type, values));
    }
    if (numElements == 0)
      return ElementsAttr(DenseElementsAttr::get(type, ArrayRef<Attribute>{}));
    return ElementsAttr(DenseElementsAttr::getFromRawBuffer(
        type, ArrayRef<char>(bytes.data(), bytes.size())));
  }

  // The blob owns the string protobuf parsed: weights are not copied in, and
  // the exporter hands them back to protobuf without a copy (OwnedBlob.h).
  return ElementsAttr(ir::createWeightAttr(type, ir::resourceKey(tensor.name()), std::move(bytes)));
}

FailureOr<Attribute> Importer::convertAttribute(onnx::AttributeProto &attr) {
  using AP = onnx::AttributeProto;
  auto kind = attr.type();
  if (kind == AP::UNDEFINED) {
    // Very old models leave the type out; it follows from the field set.
    if (attr.has_f()) kind = AP::FLOAT;
    else if (attr.has_i()) kind = AP::INT;
    else if (attr.has_s()) kind = AP::STRING;
    else if (attr.has_t()) kind = AP::TENSOR;
    else if (attr.has_g()) kind = AP::GRAPH;
    else if (attr.floats_size()) kind = AP::FLOATS;
    else if (attr.ints_size()) kind = AP::INTS;
    else if (attr.strings_size()) kind = AP::STRINGS;
    else if (attr.tensors_size()) kind = AP::TENSORS;
    else if (attr.graphs_size()) kind = AP::GRAPHS;
    else return fail("attribute '" + attr.name() + "' has no type and no value"), failure();
  }
  auto opaque = [&]() -> Attribute {
    return ir::ProtoAttr::get(&ctx, AP::AttributeType_Name(kind), toText(attr));
  };
  switch (kind) {
  case AP::FLOAT: return Attribute(builder.getF32FloatAttr(attr.f()));
  case AP::INT: return Attribute(builder.getI64IntegerAttr(attr.i()));
  case AP::STRING: return Attribute(builder.getStringAttr(attr.s()));
  case AP::FLOATS:
    return Attribute(builder.getDenseF32ArrayAttr(
        SmallVector<float>(attr.floats().begin(), attr.floats().end())));
  case AP::INTS:
    return Attribute(builder.getDenseI64ArrayAttr(
        SmallVector<int64_t>(attr.ints().begin(), attr.ints().end())));
  case AP::STRINGS: {
    SmallVector<Attribute> strings;
    for (const auto &s : attr.strings())
      strings.push_back(builder.getStringAttr(s));
    return Attribute(builder.getArrayAttr(strings));
  }
  case AP::TENSOR: {
    auto value = convertTensor(*attr.mutable_t());
    if (failed(value))
      return failure();
    return Attribute(*value);
  }
  case AP::TENSORS: {
    if (attr.tensors_size() == 0)
      return opaque(); // an empty list would read back as STRINGS
    SmallVector<Attribute> tensors;
    for (auto &t : *attr.mutable_tensors()) {
      auto value = convertTensor(t);
      if (failed(value))
        return failure();
      tensors.push_back(*value);
    }
    return Attribute(builder.getArrayAttr(tensors));
  }
  case AP::SPARSE_TENSOR:
  case AP::SPARSE_TENSORS:
  case AP::TYPE_PROTO:
  case AP::TYPE_PROTOS:
    return opaque();
  default:
    return fail("attribute '" + attr.name() + "' has unsupported kind " +
                llvm::Twine(int(kind))),
           failure();
  }
}

//===----------------------------------------------------------------------===//
// Graphs
//===----------------------------------------------------------------------===//

/// Names a graph's nodes read from enclosing graphs (for ordering the
/// enclosing graph: a node depends on what its subgraphs capture).
static void collectCapturedNames(const onnx::GraphProto &graph, llvm::StringSet<> &out) {
  llvm::StringSet<> local;
  for (const auto &v : graph.input()) local.insert(v.name());
  for (const auto &t : graph.initializer()) local.insert(t.name());
  for (const auto &t : graph.sparse_initializer()) local.insert(t.values().name());
  for (const auto &node : graph.node())
    for (const auto &o : node.output()) local.insert(o);
  llvm::StringSet<> inner;
  for (const auto &node : graph.node()) {
    for (const auto &i : node.input())
      if (!i.empty() && !local.count(i)) out.insert(i);
    for (const auto &attr : node.attribute()) {
      inner.clear();
      if (attr.has_g()) collectCapturedNames(attr.g(), inner);
      for (const auto &g : attr.graphs()) collectCapturedNames(g, inner);
      for (const auto &name : inner)
        if (!local.count(name.getKey())) out.insert(name.getKey());
    }
  }
  for (const auto &o : graph.output())
    if (!local.count(o.name())) out.insert(o.name());
}

FailureOr<std::vector<int>> Importer::topologicalOrder(const onnx::GraphProto &graph,
                                                       const Scope &scope) {
  int numNodes = graph.node_size();
  llvm::StringMap<int> producer;
  llvm::StringSet<> available; // graph inputs and initializers
  for (const auto &v : graph.input()) available.insert(v.name());
  for (const auto &t : graph.initializer()) available.insert(t.name());
  for (int i = 0; i < numNodes; ++i)
    for (const auto &o : graph.node(i).output()) {
      if (o.empty())
        continue;
      if (available.count(o) || !producer.try_emplace(o, i).second)
        return fail("value '" + o + "' is defined twice (by " +
                    describeNode(graph.node(i)) + ")"),
               failure();
    }
  std::vector<std::vector<int>> users(numNodes);
  std::vector<int> pending(numNodes, 0);
  for (int i = 0; i < numNodes; ++i) {
    const auto &node = graph.node(i);
    llvm::StringSet<> needed;
    for (const auto &in : node.input())
      if (!in.empty()) needed.insert(in);
    for (const auto &attr : node.attribute()) {
      if (attr.has_g()) collectCapturedNames(attr.g(), needed);
      for (const auto &g : attr.graphs()) collectCapturedNames(g, needed);
    }
    for (const auto &entry : needed) {
      StringRef name = entry.getKey();
      if (auto it = producer.find(name); it != producer.end()) {
        if (it->second == i)
          return fail(describeNode(node) + " reads its own output '" + name + "'"), failure();
        users[it->second].push_back(i);
        ++pending[i];
      } else if (!available.count(name) && !scope.lookup(name)) {
        return fail(describeNode(node) + " uses undefined value '" + name + "'"), failure();
      }
    }
  }
  // Kahn's algorithm, smallest index first: a sorted graph keeps its order.
  std::priority_queue<int, std::vector<int>, std::greater<int>> ready;
  for (int i = 0; i < numNodes; ++i)
    if (pending[i] == 0) ready.push(i);
  std::vector<int> order;
  while (!ready.empty()) {
    int i = ready.top();
    ready.pop();
    order.push_back(i);
    for (int user : users[i])
      if (--pending[user] == 0) ready.push(user);
  }
  if ((int)order.size() != numNodes) {
    for (int i = 0; i < numNodes; ++i)
      if (pending[i] != 0)
        return fail("graph" + (graph.name().empty() ? "" : " '" + graph.name() + "'") +
                    " has a cycle through " + describeNode(graph.node(i))),
               failure();
  }
  return order;
}

DictionaryAttr Importer::valueInfoRecord(const onnx::ValueInfoProto &info, bool withType,
                                         Type *mlirType) {
  NamedAttrList record;
  record.append("name", builder.getStringAttr(info.name()));
  ArrayAttr dimParams;
  Type type = info.has_type() ? convertType(info.type(), &dimParams)
                              : ir::ProtoType::get(&ctx, "");
  if (mlirType)
    *mlirType = type;
  if (withType)
    record.append("type", TypeAttr::get(type));
  if (dimParams)
    record.append("dim_params", dimParams);
  if (!info.doc_string().empty())
    record.append("doc_string", builder.getStringAttr(info.doc_string()));
  return record.getDictionary(&ctx);
}

LogicalResult Importer::importGraph(onnx::GraphProto &graph, Block &block, Scope &scope,
                                    NamedAttrList &graphInfo, bool isMain) {
  if (!graph.name().empty())
    graphInfo.append("name", builder.getStringAttr(graph.name()));
  if (!graph.doc_string().empty())
    graphInfo.append("doc_string", builder.getStringAttr(graph.doc_string()));
  if (graph.sparse_initializer_size())
    return fail("sparse initializers are not supported (graph '" + graph.name() + "')");

  llvm::StringMap<onnx::TensorProto *> initializers;
  for (auto &t : *graph.mutable_initializer()) {
    if (t.name().empty())
      return fail("an initializer has no name");
    if (!initializers.try_emplace(t.name(), &t).second)
      return fail("initializer '" + t.name() + "' is defined twice");
  }

  // Graph inputs become block arguments; an initializer with the same name
  // is the input's default value (overridable by the caller).
  SmallVector<Attribute> inputRecords;
  for (const auto &input : graph.input()) {
    Type type;
    DictionaryAttr record = valueInfoRecord(input, /*withType=*/false, &type);
    NamedAttrList entry(record);
    if (auto it = initializers.find(input.name()); it != initializers.end()) {
      auto value = convertTensor(*it->second);
      if (failed(value))
        return failure();
      entry.append("default", *value);
      initializers.erase(it);
    }
    if (scope.values.count(input.name()))
      return fail("graph input '" + input.name() + "' is listed twice");
    inputRecords.push_back(entry.getDictionary(&ctx));
    scope.values[input.name()] = block.addArgument(type, builder.getUnknownLoc());
  }
  graphInfo.append("inputs", builder.getArrayAttr(inputRecords));

  builder.setInsertionPointToEnd(&block);
  for (auto &t : *graph.mutable_initializer()) {
    if (!initializers.count(t.name()))
      continue; // was a graph input's default
    if (scope.values.count(t.name()))
      return fail("initializer '" + t.name() + "' clashes with another value");
    std::string doc = t.doc_string();
    auto value = convertTensor(t);
    if (failed(value))
      return failure();
    auto init = builder.create<ir::InitializerOp>(
        builder.getUnknownLoc(), builder.getStringAttr(t.name()), *value,
        doc.empty() ? StringAttr() : builder.getStringAttr(doc));
    scope.values[t.name()] = init.getOutput();
  }

  auto order = topologicalOrder(graph, scope);
  if (failed(order))
    return failure();
  for (int index : *order)
    if (failed(importNode(*graph.mutable_node(index), scope, block)))
      return failure();

  SmallVector<Value> results;
  SmallVector<Attribute> outputRecords;
  auto declared = declaredOutputs.find(&graph);
  for (const auto &output :
       declared != declaredOutputs.end() ? declared->second : graph.output()) {
    Value value = scope.lookup(output.name());
    if (!value)
      return fail("graph output '" + output.name() + "' is never computed");
    results.push_back(value);
    outputRecords.push_back(valueInfoRecord(output, /*withType=*/true, nullptr));
  }
  graphInfo.append("outputs", builder.getArrayAttr(outputRecords));

  // value_info entries that do not describe a node output (e.g. of inputs).
  SmallVector<Attribute> extraInfo;
  for (const auto &info : graph.value_info()) {
    Value value = scope.values.lookup(info.name());
    if (declaredValueInfo.count(info.name()) && (!value || !value.getDefiningOp() ||
                                                 isa<ir::InitializerOp>(value.getDefiningOp())))
      extraInfo.push_back(builder.getStringAttr(toText(info)));
  }
  if (!extraInfo.empty())
    graphInfo.append("value_info", builder.getArrayAttr(extraInfo));
  SmallVector<Attribute> annotations;
  for (const auto &a : graph.quantization_annotation())
    annotations.push_back(builder.getStringAttr(toText(a)));
  if (!annotations.empty())
    graphInfo.append("quantization_annotation", builder.getArrayAttr(annotations));

  builder.setInsertionPointToEnd(&block);
  if (isMain)
    builder.create<func::ReturnOp>(builder.getUnknownLoc(), results);
  else
    builder.create<ir::YieldOp>(builder.getUnknownLoc(), results);
  return success();
}

Attribute Importer::valueInfoEntry(StringRef name, Type *type) {
  auto it = valueTypes.find(name);
  ArrayAttr dimParams;
  *type = it == valueTypes.end() ? Type(ir::ProtoType::get(&ctx, ""))
                                 : convertType(*it->second, &dimParams);
  if (!declaredValueInfo.count(name))
    return builder.getBoolAttr(false);
  return dimParams ? Attribute(dimParams) : Attribute(builder.getBoolAttr(true));
}

Operation *Importer::createTypedOp(onnx::NodeProto &node, ArrayRef<Value> operands,
                                   ArrayRef<Type> resultTypes,
                                   ArrayRef<NamedAttribute> attrs) {
  if (!(node.domain().empty() || node.domain() == "ai.onnx") ||
      unknownOpsetDomains.count(""))
    return nullptr;
  auto sig = typedSignatures().find(node.op_type());
  if (sig == typedSignatures().end())
    return nullptr;
  auto name = RegisteredOperationName::lookup("onnx." + node.op_type(), &ctx);
  if (!name)
    return nullptr;
  const TypedSignature &s = sig->second;
  unsigned numInputs = operands.size(), numOutputs = resultTypes.size();
  if (numInputs < s.minInputs || numInputs > s.maxInputs || numOutputs < s.minOutputs ||
      numOutputs > s.maxOutputs)
    return nullptr;
  for (const NamedAttribute &attr : attrs)
    if (!llvm::is_contained(name->getAttributeNames(), attr.getName()))
      return nullptr;
  bool variadicIn = s.maxInputs == ~0u, variadicOut = s.maxOutputs == ~0u;
  // Required inputs and outputs must be tensors; optional ones tensors or none.
  for (auto [i, v] : llvm::enumerate(operands)) {
    bool required = i < s.minInputs || variadicIn;
    if (!(isa<TensorType>(v.getType()) || (!required && ir::isNoneValue(v))))
      return nullptr;
  }
  for (auto [i, t] : llvm::enumerate(resultTypes)) {
    bool required = i < s.minOutputs || variadicOut;
    if (!(isa<TensorType>(t) || (!required && isa<NoneType>(t))))
      return nullptr;
  }
  SmallVector<Value> allOperands(operands);
  if (!variadicIn)
    while (allOperands.size() < s.maxInputs)
      allOperands.push_back(noneValue(*builder.getInsertionBlock()));
  SmallVector<Type> allResults(resultTypes);
  if (!variadicOut)
    while (allResults.size() < s.maxOutputs)
      allResults.push_back(builder.getNoneType());
  OperationState state(builder.getUnknownLoc(), *name);
  state.addOperands(allOperands);
  state.addTypes(allResults);
  state.addAttributes(attrs);
  return builder.create(state);
}

std::optional<std::string> Importer::schemaError(const onnx::NodeProto &node) {
  StringRef domain = node.domain() == "ai.onnx" ? StringRef("") : StringRef(node.domain());
  if (unknownOpsetDomains.count(domain))
    return std::nullopt;
  int64_t version = opsetVersion(domain);
  if (version < 0 && (domain.empty() || domain == "ai.onnx.ml"))
    return describeNode(node) + ": the model imports no opset for domain '" +
           (domain.empty() ? "ai.onnx" : domain.str()) + "'";
  const auto *schema = onnx::OpSchemaRegistry::Schema(node.op_type(), version, domain.str());
  if (!schema) {
    if (domain.empty() || domain == "ai.onnx.ml")
      return describeNode(node) + ": no such operator in opset " + std::to_string(version) +
             " of domain '" + (domain.empty() ? "ai.onnx" : domain.str()) + "'";
    return std::nullopt;
  }
  for (const auto &attr : node.attribute()) {
    auto declared = schema->attributes().find(attr.name());
    if (declared == schema->attributes().end())
      return describeNode(node) + ": unknown attribute '" + attr.name() + "' for opset " +
             std::to_string(version);
    if (attr.type() != onnx::AttributeProto::UNDEFINED && attr.ref_attr_name().empty() &&
        attr.type() != declared->second.type)
      return describeNode(node) + ": attribute '" + attr.name() + "' must be " +
             onnx::AttributeProto::AttributeType_Name(declared->second.type) + ", got " +
             onnx::AttributeProto::AttributeType_Name(attr.type());
  }
  try {
    schema->Verify(node);
  } catch (const std::exception &e) {
    return describeNode(node) + ": " + firstLine(e.what());
  }
  return std::nullopt;
}

LogicalResult Importer::importNode(onnx::NodeProto &node, Scope &scope, Block &block) {
  // Schema check: attribute kinds, required attributes, arity.
  if (auto error = schemaError(node))
    return fail(*error);

  SmallVector<Value> operands;
  for (const auto &input : node.input()) {
    if (input.empty()) {
      operands.push_back(noneValue(block));
      continue;
    }
    Value value = scope.lookup(input);
    if (!value)
      return fail(describeNode(node) + " uses undefined value '" + input + "'");
    operands.push_back(value);
  }

  SmallVector<Type> resultTypes;
  SmallVector<Attribute> outputNames, valueInfo;
  bool anyValueInfo = false;
  for (const auto &output : node.output()) {
    Type type = builder.getNoneType();
    Attribute info = builder.getBoolAttr(false);
    if (!output.empty())
      info = valueInfoEntry(output, &type);
    anyValueInfo |= info != builder.getBoolAttr(false);
    resultTypes.push_back(type);
    outputNames.push_back(builder.getStringAttr(output));
    valueInfo.push_back(info);
  }

  NamedAttrList attrs;
  SmallVector<std::pair<std::string, onnx::GraphProto *>> subgraphs;
  for (auto &attr : *node.mutable_attribute()) {
    if (attr.name().empty())
      return fail(describeNode(node) + " has an attribute without a name");
    if (attrs.get(attr.name()) ||
        llvm::any_of(subgraphs, [&](auto &g) { return g.first == attr.name(); }))
      return fail(describeNode(node) + " has attribute '" + attr.name() + "' twice");
    if (attr.type() == onnx::AttributeProto::GRAPH || attr.has_g()) {
      subgraphs.emplace_back(attr.name(), attr.mutable_g());
      continue;
    }
    if (attr.type() == onnx::AttributeProto::GRAPHS || attr.graphs_size()) {
      for (auto &g : *attr.mutable_graphs())
        subgraphs.emplace_back(attr.name() + "\x1f" + "list", &g);
      if (attr.graphs_size() == 0)
        attrs.append(attr.name(), ir::ProtoAttr::get(&ctx, "GRAPHS", toText(attr)));
      continue;
    }
    auto value = convertAttribute(attr);
    if (failed(value))
      return failure();
    attrs.append(attr.name(), *value);
  }

  builder.setInsertionPointToEnd(&block);
  Operation *op = nullptr;
  if (subgraphs.empty())
    op = createTypedOp(node, operands, resultTypes, attrs.getAttrs());
  if (!op) {
    OperationState state(builder.getUnknownLoc(), ir::NodeOp::getOperationName());
    state.addOperands(operands);
    state.addTypes(resultTypes);
    state.addAttribute("op_type", builder.getStringAttr(node.op_type()));
    if (!node.domain().empty())
      state.addAttribute("domain", builder.getStringAttr(node.domain()));
    if (!attrs.empty())
      state.addAttribute("node_attrs", attrs.getDictionary(&ctx));
    SmallVector<Attribute> graphAttrs;
    for (auto &[attrName, graph] : subgraphs) {
      Region *region = state.addRegion();
      Block *body = new Block();
      region->push_back(body);
      Scope inner;
      inner.parent = &scope;
      NamedAttrList info;
      StringRef name = attrName;
      bool isList = name.ends_with("\x1f" "list");
      info.append("attr", builder.getStringAttr(isList ? name.drop_back(5) : name));
      if (isList)
        info.append("list", builder.getUnitAttr());
      OpBuilder::InsertionGuard guard(builder);
      if (failed(importGraph(*graph, *body, inner, info, /*isMain=*/false)))
        return failure();
      graphAttrs.push_back(info.getDictionary(&ctx));
    }
    if (!graphAttrs.empty())
      state.addAttribute("graph_attrs", builder.getArrayAttr(graphAttrs));
    builder.setInsertionPointToEnd(&block);
    op = builder.create(state);
  }

  if (!node.name().empty())
    op->setAttr(ir::kNodeNameAttr, builder.getStringAttr(node.name()));
  // Diagnostics (and refold --explain) name the node: its name, else its output.
  std::string label = node.name();
  for (const auto &output : node.output())
    if (label.empty())
      label = output;
  if (!label.empty())
    op->setLoc(NameLoc::get(builder.getStringAttr(label)));
  if (!node.doc_string().empty())
    op->setAttr(ir::kDocStringAttr, builder.getStringAttr(node.doc_string()));
  op->setAttr(ir::kOutputNamesAttr, builder.getArrayAttr(outputNames));
  if (anyValueInfo)
    op->setAttr(ir::kValueInfoAttr, builder.getArrayAttr(valueInfo));

  // Verify typed ops here so that a bad node is reported by name.
  if (!isa<ir::NodeOp>(op)) {
    std::string diagnostic;
    {
      ScopedDiagnosticHandler handler(&ctx, [&](Diagnostic &diag) {
        if (diagnostic.empty())
          diagnostic = diag.str();
        return success();
      });
      if (failed(mlir::verify(op, /*verifyRecursively=*/false)))
        return fail(describeNode(node) + ": " + firstLine(diagnostic));
    }
  }

  for (auto [i, output] : llvm::enumerate(node.output()))
    if (!output.empty())
      scope.values[output] = op->getResult(i);
  return success();
}

llvm::Expected<OwningOpRef<ModuleOp>> Importer::run(onnx::ModelProto &model) {
  if (!model.has_graph())
    return makeError("the model has no graph");
  checkVersions(model);
  if (auto cycle = functionCallCycle(model))
    return makeError(*cycle);
  if (auto err = loadExternalData(*model.mutable_graph()))
    return std::move(err);

  // The checker's verdict on the input decides whether a checker failure
  // on export is our fault (error) or inherited (warning).
  std::string sourceCheck = "ok";
  try {
    onnx::checker::check_model(model);
  } catch (const std::exception &e) {
    sourceCheck = firstLine(e.what());
  }

  inferShapes(model);
  collectValueTypes(model.graph());
  for (const auto &info : model.graph().input())
    if (info.has_type())
      valueTypes[info.name()] = &info.type();

  Location loc = builder.getUnknownLoc();
  OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
  Builder b(&ctx);
  auto setIfAny = [&](StringRef name, const std::string &value) {
    if (!value.empty())
      (*module)->setAttr(name, b.getStringAttr(value));
  };
  (*module)->setAttr(kIrVersion, b.getI64IntegerAttr(model.ir_version()));
  SmallVector<Attribute> opsetList;
  for (const auto &opset : model.opset_import())
    opsetList.push_back(b.getArrayAttr(
        {b.getStringAttr(opset.domain()), b.getI64IntegerAttr(opset.version())}));
  (*module)->setAttr(kOpsetImport, b.getArrayAttr(opsetList));
  setIfAny(kProducerName, model.producer_name());
  setIfAny(kProducerVersion, model.producer_version());
  setIfAny(kModelDomain, model.domain());
  setIfAny(kModelDoc, model.doc_string());
  if (model.has_model_version())
    (*module)->setAttr(kModelVersion, b.getI64IntegerAttr(model.model_version()));
  if (model.metadata_props_size()) {
    SmallVector<Attribute> props;
    for (const auto &p : model.metadata_props())
      props.push_back(b.getArrayAttr({b.getStringAttr(p.key()), b.getStringAttr(p.value())}));
    (*module)->setAttr(kMetadataProps, b.getArrayAttr(props));
  }
  // Model-local functions and training info are carried as protobuf text.
  if (model.functions_size()) {
    SmallVector<Attribute> functions;
    for (const auto &f : model.functions())
      functions.push_back(b.getStringAttr(toText(f)));
    (*module)->setAttr(kFunctions, b.getArrayAttr(functions));
  }
  if (model.training_info_size()) {
    SmallVector<Attribute> infos;
    for (const auto &t : model.training_info())
      infos.push_back(b.getStringAttr(toText(t)));
    (*module)->setAttr(kTrainingInfo, b.getArrayAttr(infos));
  }
  (*module)->setAttr(kSourceCheck, b.getStringAttr(sourceCheck));

  builder.setInsertionPointToEnd(module->getBody());
  auto func = builder.create<func::FuncOp>(loc, "main", builder.getFunctionType({}, {}));
  Block *body = func.addEntryBlock();
  Scope scope;
  NamedAttrList graphInfo;
  if (failed(importGraph(*model.mutable_graph(), *body, scope, graphInfo, /*isMain=*/true)))
    return makeError(*error);
  auto ret = cast<func::ReturnOp>(body->getTerminator());
  func.setFunctionType(
      builder.getFunctionType(body->getArgumentTypes(), ret.getOperandTypes()));
  func->setAttr(ir::kGraphAttr, graphInfo.getDictionary(&ctx));

  std::string diagnostic;
  {
    ScopedDiagnosticHandler handler(&ctx, [&](Diagnostic &diag) {
      if (diagnostic.empty())
        diagnostic = diag.str();
      return success();
    });
    if (failed(mlir::verify(*module)))
      return makeError("the imported model is not valid: " + firstLine(diagnostic));
  }
  return std::move(module);
}

/// ONNX's parser reports "[ParseError at position (line: L column: C)]",
/// the offending line, and the reason on separate lines; make it one.
std::string describeParseError(StringRef message) {
  SmallVector<StringRef> lines;
  message.trim().split(lines, '\n', -1, /*KeepEmpty=*/false);
  std::string where;
  size_t line = message.find("line: "), column = message.find("column: ");
  if (line != StringRef::npos && column != StringRef::npos) {
    unsigned l = 0, c = 0;
    message.drop_front(line + 6).consumeInteger(10, l);
    message.drop_front(column + 8).consumeInteger(10, c);
    where = "line " + std::to_string(l) + ", column " + std::to_string(c) + ": ";
  }
  return where + (lines.empty() ? std::string("parse error") : lines.back().trim().str());
}

/// Binary protobuf has control bytes (tags, lengths) early; text has none.
bool looksTextual(StringRef bytes) {
  StringRef head = bytes.take_front(4096);
  for (unsigned char c : head)
    if (c < 0x09 || (c > 0x0d && c < 0x20) || c == 0x7f)
      return false;
  return true;
}

} // namespace

static void prepareContext(MLIRContext &context) {
  // libprotobuf would print its own parse errors to stderr.
  google::protobuf::SetLogHandler(nullptr);
  context.loadDialect<ir::ONNXDialect, func::FuncDialect>();
}

static llvm::Error parseText(StringRef bytes, onnx::ModelProto &model) {
  std::string text = bytes.str();
  onnx::Common::Status status;
  try {
    status = onnx::OnnxParser::Parse(model, text.c_str());
  } catch (const std::out_of_range &e) {
    // The parser converts numbers with std::stoll and friends, which throw.
    return makeError(std::string("not a valid textual ONNX model: a number does not fit its "
                                 "type (") + e.what() + ")");
  } catch (const std::exception &e) {
    return makeError(std::string("not a valid textual ONNX model: ") + e.what());
  }
  if (!status.IsOK())
    return makeError("not a valid textual ONNX model: " +
                     describeParseError(status.ErrorMessage()));
  return llvm::Error::success();
}

static llvm::Error parseBinary(google::protobuf::io::ZeroCopyInputStream &input,
                               onnx::ModelProto &model) {
  google::protobuf::io::CodedInputStream stream(&input);
  stream.SetTotalBytesLimit(INT_MAX);
  if (!model.ParseFromCodedStream(&stream) || !stream.ConsumedEntireMessage())
    return makeError("not a valid ONNX model (protobuf parse failed: the file is "
                     "truncated or not an ONNX model)");
  if (!model.has_graph() && model.ir_version() == 0)
    return makeError("not a valid ONNX model (no ir_version and no graph)");
  return llvm::Error::success();
}

llvm::Expected<OwningOpRef<ModuleOp>>
refold::importONNXBuffer(StringRef bytes, StringRef modelDir, MLIRContext &context,
                         const ImportOptions &options, WarningHandler warn) {
  prepareContext(context);
  onnx::ModelProto model;
  if (bytes.empty())
    return makeError("the file is empty");
  if (looksTextual(bytes)) {
    if (auto err = parseText(bytes, model))
      return std::move(err);
  } else {
    if (bytes.size() > size_t(INT_MAX))
      return makeError("the file is larger than 2 GiB; protobuf cannot read it, "
                       "so large tensors must be stored as external data");
    google::protobuf::io::ArrayInputStream input(bytes.data(), int(bytes.size()));
    if (auto err = parseBinary(input, model))
      return std::move(err);
  }
  Importer importer(context, options, warn, modelDir.str());
  return importer.run(model);
}

llvm::Expected<OwningOpRef<ModuleOp>>
refold::importONNXFile(StringRef path, MLIRContext &context, const ImportOptions &options,
                       WarningHandler warn) {
  prepareContext(context);
  if (llvm::sys::fs::is_directory(path))
    return makeError("is a directory, not a model file");
  uint64_t size;
  if (auto ec = llvm::sys::fs::file_size(path, size))
    return makeError("cannot read: " + ec.message());
  if (size == 0)
    return makeError("the file is empty");
  StringRef dir = llvm::sys::path::parent_path(path);
  std::string modelDir = dir.empty() ? "." : dir.str();

  int fd;
  if (auto ec = llvm::sys::fs::openFileForRead(path, fd))
    return makeError("cannot read: " + ec.message());
  auto closeFd = llvm::make_scope_exit([&] { llvm::sys::Process::SafelyCloseFileDescriptor(fd); });
  char head[4096];
  ssize_t headSize = ::pread(fd, head, sizeof(head), 0);
  if (headSize < 0)
    return makeError("cannot read the file");

  onnx::ModelProto model;
  if (looksTextual(StringRef(head, headSize))) {
    auto buffer = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                              /*RequiresNullTerminator=*/false);
    if (!buffer)
      return makeError("cannot read: " + buffer.getError().message());
    if (auto err = parseText((*buffer)->getBuffer(), model))
      return std::move(err);
  } else {
    if (size > uint64_t(INT_MAX))
      return makeError("the file is larger than 2 GiB; protobuf cannot read it, "
                       "so large tensors must be stored as external data");
    // Streaming keeps only the parsed model in memory, not the file too;
    // 1 MiB reads instead of protobuf's default 8 KiB.
    google::protobuf::io::FileInputStream input(fd, 1 << 20);
    if (auto err = parseBinary(input, model))
      return std::move(err);
  }
  Importer importer(context, options, warn, modelDir);
  return importer.run(model);
}

void refold::registerRefoldDialects(DialectRegistry &registry) {
  registry.insert<ir::ONNXDialect, func::FuncDialect>();
}
