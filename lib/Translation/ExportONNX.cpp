//===- ExportONNX.cpp - onnx dialect -> ONNX model --------------------------===//
//
// Writes the module back as a ModelProto. Names recorded at import are
// reused; values created by passes get fresh names that clash with nothing.
// A graph output keeps its name: when the returned value already has another
// name (a graph input, an initializer, another output) an Identity node is
// added. The result is checked with onnx::checker and written atomically,
// with large tensors in a side file when asked or when the model would not
// fit in one protobuf message.
//
//===----------------------------------------------------------------------===//

#include "Common.h"

#include "refold/Dialect/ONNX/ONNXOps.h"
#include "refold/Dialect/ONNX/OwnedBlob.h"
#include "refold/Translation/ONNXModel.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <onnx/checker.h>
#include <onnx/shape_inference/implementation.h>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

using namespace mlir;
using namespace refold;
using namespace refold::detail;
using llvm::StringRef;

namespace {

llvm::Error makeError(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message.str());
}

class Exporter {
public:
  Exporter(ModuleOp module, WarningHandler warn, bool releaseWeights)
      : module(module), warn(warn), releaseWeights(releaseWeights) {}

  LogicalResult run(onnx::ModelProto &model);
  std::string errorMessage() const { return error.value_or("unknown export error"); }
  /// The name each exported value got.
  const llvm::DenseMap<Value, std::string> &valueNames() const { return names; }
  /// Float tensors of more than this many elements are written without
  /// their data (shape inference needs only their type).
  std::optional<int64_t> omitFloatDataAbove;

private:
  LogicalResult exportGraph(Block &block, DictionaryAttr info, onnx::GraphProto &graph);
  LogicalResult exportOp(Operation &op, onnx::NodeProto &node);
  LogicalResult exportAttribute(StringRef name, Attribute attr, onnx::AttributeProto &out);
  LogicalResult exportTensor(ElementsAttr attr, onnx::TensorProto &out);
  LogicalResult exportType(Type type, ArrayAttr dimParams, onnx::TypeProto &out);
  LogicalResult fillValueInfo(StringRef name, Type type, ArrayAttr dimParams,
                              onnx::ValueInfoProto &out);

  /// Takes `preferred` if free, else a fresh variant of it.
  std::string claim(StringRef preferred) {
    if (!preferred.empty() && usedNames.insert(preferred).second)
      return preferred.str();
    std::string base = preferred.empty() ? "refold" : preferred.str();
    while (true) {
      std::string candidate = base + "_" + std::to_string(++freshCounter);
      if (!reserved.count(candidate) && usedNames.insert(candidate).second)
        return candidate;
    }
  }

  LogicalResult fail(const llvm::Twine &message) {
    if (!error)
      error = message.str();
    return failure();
  }

  ModuleOp module;
  WarningHandler warn;
  bool releaseWeights;
  llvm::StringSet<> usedNames;
  /// Names recorded anywhere in the module; fresh names avoid them.
  llvm::StringSet<> reserved;
  unsigned freshCounter = 0;
  llvm::DenseMap<Value, std::string> names;
  std::optional<std::string> error;
};

StringAttr getString(DictionaryAttr dict, StringRef key) {
  return dict ? dict.getAs<StringAttr>(key) : StringAttr();
}

LogicalResult Exporter::exportType(Type type, ArrayAttr dimParams, onnx::TypeProto &out) {
  if (auto proto = dyn_cast<ir::ProtoType>(type)) {
    if (proto.getProto().empty())
      return success(); // the model stated no type
    if (!fromText(proto.getProto(), out))
      return fail("cannot read the TypeProto text of " + proto.getProto());
    return success();
  }
  auto tensor = dyn_cast<TensorType>(type);
  if (!tensor) {
    std::string s;
    llvm::raw_string_ostream os(s);
    os << type;
    return fail("a value of type " + s + " has no ONNX equivalent");
  }
  int32_t elementType = elementTypeToOnnx(tensor.getElementType());
  if (!elementType) {
    std::string s;
    llvm::raw_string_ostream os(s);
    os << tensor.getElementType();
    return fail("element type " + s + " has no ONNX equivalent");
  }
  auto *tensorType = out.mutable_tensor_type();
  tensorType->set_elem_type(elementType);
  if (auto ranked = dyn_cast<RankedTensorType>(tensor)) {
    auto *shape = tensorType->mutable_shape();
    for (auto [i, size] : llvm::enumerate(ranked.getShape())) {
      auto *dim = shape->add_dim();
      if (!ShapedType::isDynamic(size)) {
        dim->set_dim_value(size);
        continue;
      }
      if (dimParams && i < dimParams.size())
        if (auto param = dyn_cast<StringAttr>(dimParams[i]); param && !param.empty())
          dim->set_dim_param(param.str());
    }
  }
  return success();
}

LogicalResult Exporter::fillValueInfo(StringRef name, Type type, ArrayAttr dimParams,
                                      onnx::ValueInfoProto &out) {
  out.set_name(name.str());
  onnx::TypeProto typeProto;
  if (failed(exportType(type, dimParams, typeProto)))
    return failure();
  if (typeProto.value_case() != onnx::TypeProto::VALUE_NOT_SET || typeProto.has_denotation())
    *out.mutable_type() = std::move(typeProto);
  return success();
}

LogicalResult Exporter::exportTensor(ElementsAttr attr, onnx::TensorProto &out) {
  auto type = cast<ShapedType>(attr.getType());
  int32_t dataType = elementTypeToOnnx(type.getElementType());
  if (!dataType)
    return fail("a tensor has an element type with no ONNX equivalent");
  out.set_data_type(dataType);
  for (int64_t dim : type.getShape())
    out.add_dims(dim);
  if (omitFloatDataAbove && isa<FloatType>(type.getElementType()) &&
      type.getNumElements() > *omitFloatDataAbove)
    return success();
  if (auto resource = dyn_cast<DenseResourceElementsAttr>(attr)) {
    AsmResourceBlob *blob = resource.getRawHandle().getBlob();
    if (!blob)
      return fail("the data of resource '" + resource.getRawHandle().getKey() +
                  "' is missing");
    ArrayRef<char> data = blob->getData();
    size_t expected = type.getNumElements() * elementByteSize(dataType);
    if (data.size() != expected)
      return fail("resource '" + resource.getRawHandle().getKey() + "' holds " +
                  llvm::Twine(data.size()) + " bytes, its type needs " +
                  llvm::Twine(expected));
    // When the module is not used afterwards, the bytes move into the
    // TensorProto instead of being copied (blobs made by makeOwnedBlob).
    if (!(releaseWeights && ir::takeOwnedBytes(*blob, *out.mutable_raw_data())))
      out.set_raw_data(data.data(), data.size());
    if (releaseWeights)
      resource.getRawHandle().getResource()->setBlob(AsmResourceBlob());
    return success();
  }
  if (auto strings = dyn_cast<DenseStringElementsAttr>(attr)) {
    for (StringRef s : strings.getValues<StringRef>())
      out.add_string_data(s.str());
    return success();
  }
  auto dense = dyn_cast<DenseElementsAttr>(attr);
  if (!dense)
    return fail("a tensor attribute of an unsupported kind");
  if (type.getElementType().isInteger(1)) {
    std::string bytes;
    bytes.reserve(type.getNumElements());
    for (bool value : dense.getValues<bool>())
      bytes.push_back(value ? 1 : 0);
    out.set_raw_data(std::move(bytes));
    return success();
  }
  ArrayRef<char> raw = dense.getRawData();
  if (dense.isSplat() && type.getNumElements() != 1) {
    std::string bytes;
    bytes.reserve(raw.size() * type.getNumElements());
    for (int64_t i = 0; i < type.getNumElements(); ++i)
      bytes.append(raw.data(), raw.size());
    out.set_raw_data(std::move(bytes));
  } else {
    out.set_raw_data(raw.data(), raw.size());
  }
  return success();
}

LogicalResult Exporter::exportAttribute(StringRef name, Attribute attr,
                                        onnx::AttributeProto &out) {
  using AP = onnx::AttributeProto;
  out.set_name(name.str());
  if (auto proto = dyn_cast<ir::ProtoAttr>(attr)) {
    if (!fromText(proto.getText(), out))
      return fail("cannot read the text of attribute '" + name + "'");
    out.set_name(name.str());
    return success();
  }
  if (auto i = dyn_cast<IntegerAttr>(attr)) {
    out.set_type(AP::INT);
    out.set_i(i.getValue().getSExtValue());
  } else if (auto f = dyn_cast<FloatAttr>(attr)) {
    out.set_type(AP::FLOAT);
    out.set_f(static_cast<float>(f.getValueAsDouble()));
  } else if (auto s = dyn_cast<StringAttr>(attr)) {
    out.set_type(AP::STRING);
    out.set_s(s.str());
  } else if (auto ints = dyn_cast<DenseI64ArrayAttr>(attr)) {
    out.set_type(AP::INTS);
    for (int64_t v : ints.asArrayRef())
      out.add_ints(v);
  } else if (auto floats = dyn_cast<DenseF32ArrayAttr>(attr)) {
    out.set_type(AP::FLOATS);
    for (float v : floats.asArrayRef())
      out.add_floats(v);
  } else if (auto elements = dyn_cast<ElementsAttr>(attr)) {
    out.set_type(AP::TENSOR);
    return exportTensor(elements, *out.mutable_t());
  } else if (auto array = dyn_cast<ArrayAttr>(attr)) {
    if (llvm::all_of(array, [](Attribute a) { return isa<StringAttr>(a); })) {
      out.set_type(AP::STRINGS);
      for (Attribute a : array)
        out.add_strings(cast<StringAttr>(a).str());
    } else if (llvm::all_of(array, [](Attribute a) { return isa<ElementsAttr>(a); })) {
      out.set_type(AP::TENSORS);
      for (Attribute a : array)
        if (failed(exportTensor(cast<ElementsAttr>(a), *out.add_tensors())))
          return failure();
    } else {
      return fail("attribute '" + name + "' is a list ONNX cannot hold");
    }
  } else {
    return fail("attribute '" + name + "' has a kind ONNX cannot hold");
  }
  return success();
}

LogicalResult Exporter::exportOp(Operation &op, onnx::NodeProto &node) {
  auto nodeOp = dyn_cast<ir::NodeOp>(op);
  if (nodeOp) {
    node.set_op_type(nodeOp.getOpType().str());
    if (auto domain = nodeOp.getDomain())
      node.set_domain(domain->str());
  } else {
    node.set_op_type(op.getName().stripDialect().str());
  }
  if (auto name = op.getAttrOfType<StringAttr>(ir::kNodeNameAttr))
    node.set_name(name.str());
  if (auto doc = op.getAttrOfType<StringAttr>(ir::kDocStringAttr))
    node.set_doc_string(doc.str());

  for (Value operand : op.getOperands())
    node.add_input(ir::isNoneValue(operand) ? std::string() : names.lookup(operand));
  while (node.input_size() && node.input(node.input_size() - 1).empty())
    node.mutable_input()->RemoveLast();
  for (Value result : op.getResults())
    node.add_output(names.lookup(result));
  while (node.output_size() && node.output(node.output_size() - 1).empty())
    node.mutable_output()->RemoveLast();

  if (nodeOp) {
    if (auto attrs = nodeOp.getNodeAttrs())
      for (NamedAttribute attr : *attrs)
        if (failed(exportAttribute(attr.getName(), attr.getValue(), *node.add_attribute())))
          return failure();
    if (auto graphAttrs = nodeOp.getGraphAttrs()) {
      llvm::StringMap<onnx::AttributeProto *> lists;
      for (auto [info, region] : llvm::zip(*graphAttrs, nodeOp.getGraphs())) {
        auto dict = cast<DictionaryAttr>(info);
        StringRef attrName = getString(dict, "attr").getValue();
        onnx::GraphProto *graph;
        if (dict.get("list")) {
          auto *&attr = lists[attrName];
          if (!attr) {
            attr = node.add_attribute();
            attr->set_name(attrName.str());
            attr->set_type(onnx::AttributeProto::GRAPHS);
          }
          graph = attr->add_graphs();
        } else {
          auto *attr = node.add_attribute();
          attr->set_name(attrName.str());
          attr->set_type(onnx::AttributeProto::GRAPH);
          graph = attr->mutable_g();
        }
        if (failed(exportGraph(region.front(), dict, *graph)))
          return failure();
      }
    }
    return success();
  }
  // Typed op: its inherent attributes are the ONNX attributes.
  for (NamedAttribute attr : op.getAttrDictionary()) {
    // onnx.*: names and value info, written elsewhere; refold.*: the
    // compiler's own annotations (statistics, ranges), not ONNX attributes.
    if (attr.getName().getValue().starts_with("onnx.") ||
        attr.getName().getValue().starts_with("refold."))
      continue;
    if (failed(exportAttribute(attr.getName(), attr.getValue(), *node.add_attribute())))
      return failure();
  }
  return success();
}

LogicalResult Exporter::exportGraph(Block &block, DictionaryAttr info, onnx::GraphProto &graph) {
  if (auto name = getString(info, "name"))
    graph.set_name(name.str());
  else if (!info || info.get("attr") == nullptr)
    graph.set_name("main");
  if (auto doc = getString(info, "doc_string"))
    graph.set_doc_string(doc.str());

  // Inputs (with their default values).
  auto inputRecords = info ? info.getAs<ArrayAttr>("inputs") : ArrayAttr();
  for (auto [i, arg] : llvm::enumerate(block.getArguments())) {
    DictionaryAttr record;
    if (inputRecords && i < inputRecords.size())
      record = dyn_cast<DictionaryAttr>(inputRecords[i]);
    StringAttr recordName = getString(record, "name");
    std::string name = claim(recordName ? recordName.getValue() : StringRef("input"));
    names[arg] = name;
    auto *input = graph.add_input();
    if (failed(fillValueInfo(name, arg.getType(),
                             record ? record.getAs<ArrayAttr>("dim_params") : ArrayAttr(),
                             *input)))
      return failure();
    if (auto doc = getString(record, "doc_string"))
      input->set_doc_string(doc.str());
    if (auto value = record ? record.getAs<ElementsAttr>("default") : ElementsAttr()) {
      auto *tensor = graph.add_initializer();
      if (failed(exportTensor(value, *tensor)))
        return failure();
      tensor->set_name(name);
    }
  }

  // Initializers.
  for (Operation &op : block) {
    auto init = dyn_cast<ir::InitializerOp>(op);
    if (!init)
      continue;
    std::string name = claim(init.getName());
    names[init.getOutput()] = name;
    auto *tensor = graph.add_initializer();
    if (failed(exportTensor(init.getValue(), *tensor)))
      return failure();
    tensor->set_name(name);
    if (auto doc = init.getDocString())
      tensor->set_doc_string(doc->str());
  }

  // Graph outputs claim their names before other node outputs.
  Operation *terminator = block.getTerminator();
  auto outputRecords = info ? info.getAs<ArrayAttr>("outputs") : ArrayAttr();
  SmallVector<std::pair<Value, std::string>> outputs;
  SmallVector<std::pair<Value, std::string>> identities;
  for (auto [i, value] : llvm::enumerate(terminator->getOperands())) {
    DictionaryAttr record;
    if (outputRecords && i < outputRecords.size())
      record = dyn_cast<DictionaryAttr>(outputRecords[i]);
    StringAttr recordName = getString(record, "name");
    StringRef wanted = recordName ? recordName.getValue() : StringRef("output");
    if (ir::isNoneValue(value))
      return fail("graph output '" + wanted + "' is a missing optional value");
    auto it = names.find(value);
    if (it != names.end() && it->second == wanted) {
      outputs.emplace_back(value, wanted.str());
      continue;
    }
    Operation *def = value.getDefiningOp();
    bool isNodeResult = def && def->getBlock() == &block && !isa<ir::InitializerOp>(def);
    if (it == names.end() && isNodeResult) {
      std::string name = claim(wanted);
      names[value] = name;
      outputs.emplace_back(value, name);
      continue;
    }
    // Already named (input, initializer, another output, outer value):
    // copy it under the output's name.
    std::string name = claim(wanted);
    identities.emplace_back(value, name);
    outputs.emplace_back(value, name);
  }

  // Node outputs.
  for (Operation &op : block) {
    if (isa<ir::InitializerOp, ir::NoneOp>(op) || &op == terminator)
      continue;
    auto recorded = op.getAttrOfType<ArrayAttr>(ir::kOutputNamesAttr);
    for (auto [i, result] : llvm::enumerate(op.getResults())) {
      if (names.count(result))
        continue;
      StringRef preferred;
      bool recordedEmpty = false;
      if (recorded && i < recorded.size())
        if (auto s = dyn_cast<StringAttr>(recorded[i])) {
          preferred = s.getValue();
          recordedEmpty = preferred.empty();
        }
      // A missing optional output stays unnamed.
      if (isa<NoneType>(result.getType()) || (recordedEmpty && result.use_empty())) {
        names[result] = "";
        continue;
      }
      names[result] = claim(preferred);
    }
  }

  for (Operation &op : block) {
    if (isa<ir::InitializerOp, ir::NoneOp>(op) || &op == terminator)
      continue;
    if (failed(exportOp(op, *graph.add_node())))
      return failure();
    // value_info the model listed for this node's results.
    if (auto infos = op.getAttrOfType<ArrayAttr>(ir::kValueInfoAttr)) {
      for (auto [i, entry] : llvm::enumerate(infos)) {
        if (i >= op.getNumResults())
          break;
        auto flag = dyn_cast<BoolAttr>(entry);
        if (flag && !flag.getValue())
          continue;
        Value result = op.getResult(i);
        if (names.lookup(result).empty())
          continue;
        if (failed(fillValueInfo(names.lookup(result), result.getType(),
                                 dyn_cast<ArrayAttr>(entry), *graph.add_value_info())))
          return failure();
      }
    }
  }
  for (auto &[value, name] : identities) {
    auto *node = graph.add_node();
    node->set_op_type("Identity");
    node->add_input(names.lookup(value));
    node->add_output(name);
  }

  for (auto [i, entry] : llvm::enumerate(outputs)) {
    auto &[value, name] = entry;
    DictionaryAttr record;
    if (outputRecords && i < outputRecords.size())
      record = dyn_cast<DictionaryAttr>(outputRecords[i]);
    auto *output = graph.add_output();
    Type type = value.getType();
    if (auto typeAttr = record ? record.getAs<TypeAttr>("type") : TypeAttr())
      type = typeAttr.getValue();
    if (failed(fillValueInfo(name, type,
                             record ? record.getAs<ArrayAttr>("dim_params") : ArrayAttr(),
                             *output)))
      return failure();
    if (auto doc = getString(record, "doc_string"))
      output->set_doc_string(doc.str());
  }

  if (auto extra = info ? info.getAs<ArrayAttr>("value_info") : ArrayAttr())
    for (Attribute text : extra)
      if (!fromText(cast<StringAttr>(text).getValue(), *graph.add_value_info()))
        return fail("cannot read a value_info text");
  if (auto annotations = info ? info.getAs<ArrayAttr>("quantization_annotation") : ArrayAttr())
    for (Attribute text : annotations)
      if (!fromText(cast<StringAttr>(text).getValue(), *graph.add_quantization_annotation()))
        return fail("cannot read a quantization_annotation text");
  return success();
}

LogicalResult Exporter::run(onnx::ModelProto &model) {
  auto intAttr = [&](StringRef name) { return module->getAttrOfType<IntegerAttr>(name); };
  auto strAttr = [&](StringRef name) { return module->getAttrOfType<StringAttr>(name); };
  // A module written by hand may lack the model header: use what refold supports.
  model.set_ir_version(intAttr(kIrVersion) ? intAttr(kIrVersion).getInt() : 8);
  if (auto opsets = module->getAttrOfType<ArrayAttr>(kOpsetImport)) {
    for (Attribute entry : opsets) {
      auto pair = dyn_cast<ArrayAttr>(entry);
      if (!pair || pair.size() != 2 || !isa<StringAttr>(pair[0]) || !isa<IntegerAttr>(pair[1]))
        return fail("onnx.opset_import entries must be [domain, version]");
      auto *opset = model.add_opset_import();
      opset->set_domain(cast<StringAttr>(pair[0]).str());
      opset->set_version(cast<IntegerAttr>(pair[1]).getInt());
    }
  } else {
    auto *opset = model.add_opset_import();
    opset->set_domain("");
    opset->set_version(17);
  }
  if (auto s = strAttr(kProducerName)) model.set_producer_name(s.str());
  if (auto s = strAttr(kProducerVersion)) model.set_producer_version(s.str());
  if (auto s = strAttr(kModelDomain)) model.set_domain(s.str());
  if (auto s = strAttr(kModelDoc)) model.set_doc_string(s.str());
  if (auto v = intAttr(kModelVersion)) model.set_model_version(v.getInt());
  if (auto props = module->getAttrOfType<ArrayAttr>(kMetadataProps))
    for (Attribute entry : props) {
      auto pair = cast<ArrayAttr>(entry);
      auto *prop = model.add_metadata_props();
      prop->set_key(cast<StringAttr>(pair[0]).str());
      prop->set_value(cast<StringAttr>(pair[1]).str());
    }
  if (auto functions = module->getAttrOfType<ArrayAttr>(kFunctions))
    for (Attribute text : functions)
      if (!fromText(cast<StringAttr>(text).getValue(), *model.add_functions()))
        return fail("cannot read a model-local function");
  if (auto infos = module->getAttrOfType<ArrayAttr>(kTrainingInfo))
    for (Attribute text : infos)
      if (!fromText(cast<StringAttr>(text).getValue(), *model.add_training_info()))
        return fail("cannot read training_info");

  func::FuncOp main;
  for (auto func : module.getOps<func::FuncOp>()) {
    if (main)
      return fail("the module holds more than one function; ONNX has one main graph");
    main = func;
  }
  if (!main || main.isExternal())
    return fail("the module has no main graph (func.func with a body)");
  // Reserve every recorded name first so fresh names never take one.
  module.walk([&](Operation *op) {
    if (auto names = op->getAttrOfType<ArrayAttr>(ir::kOutputNamesAttr))
      for (Attribute n : names)
        if (auto s = dyn_cast<StringAttr>(n); s && !s.empty())
          reserved.insert(s.getValue());
    if (auto init = dyn_cast<ir::InitializerOp>(op))
      reserved.insert(init.getName());
  });
  return exportGraph(main.getBody().front(), main->getAttrOfType<DictionaryAttr>(ir::kGraphAttr),
                     *model.mutable_graph());
}

} // namespace

//===----------------------------------------------------------------------===//
// Writing
//===----------------------------------------------------------------------===//

namespace {

/// Streams protobuf output into an llvm::raw_ostream without a full copy.
class RawOstreamOutput : public google::protobuf::io::CopyingOutputStream {
public:
  explicit RawOstreamOutput(llvm::raw_ostream &os) : os(os) {}
  bool Write(const void *buffer, int size) override {
    os.write(static_cast<const char *>(buffer), size);
    return true; // write errors surface when writeToOutput closes the file
  }

private:
  llvm::raw_ostream &os;
};

llvm::Error serialize(const onnx::ModelProto &model, llvm::raw_ostream &os) {
  RawOstreamOutput sink(os);
  // 1 MiB blocks: large tensors go out in few writes.
  google::protobuf::io::CopyingOutputStreamAdaptor adaptor(&sink, 1 << 20);
  {
    google::protobuf::io::CodedOutputStream coded(&adaptor);
    coded.SetSerializationDeterministic(true);
    if (!model.SerializeToCodedStream(&coded) || coded.HadError())
      return makeError("failed to serialize the model");
  }
  if (!adaptor.Flush())
    return makeError("failed to write the model");
  return llvm::Error::success();
}

void forEachInitializer(onnx::GraphProto &graph,
                        llvm::function_ref<void(onnx::TensorProto &)> fn) {
  refold::detail::forEachGraph(graph, [&](onnx::GraphProto &g) {
    for (auto &tensor : *g.mutable_initializer())
      fn(tensor);
  });
}

} // namespace

namespace {

/// The type `proto` describes if it refines `current` (same element type
/// and rank, every static dimension kept), else null.
Type refinedType(Type current, const onnx::TypeProto &proto) {
  auto tensor = dyn_cast<TensorType>(current);
  if (!tensor || !proto.has_tensor_type() || !proto.tensor_type().has_shape())
    return {};
  const auto &inferred = proto.tensor_type();
  if (elementTypeToOnnx(tensor.getElementType()) != inferred.elem_type())
    return {};
  SmallVector<int64_t> shape;
  for (const auto &dim : inferred.shape().dim())
    shape.push_back(dim.has_dim_value() ? dim.dim_value() : ShapedType::kDynamic);
  if (auto ranked = dyn_cast<RankedTensorType>(tensor)) {
    if (ranked.getRank() != (int64_t)shape.size() || ranked.getEncoding())
      return {};
    for (auto [have, got] : llvm::zip(ranked.getShape(), shape)) {
      if (!ShapedType::isDynamic(have) && !ShapedType::isDynamic(got) && have != got)
        return {}; // a disagreement: trust neither
      if (!ShapedType::isDynamic(have))
        got = have;
    }
  }
  if (llvm::any_of(shape, [](int64_t d) { return d < 0 && !ShapedType::isDynamic(d); }))
    return {};
  auto refined = RankedTensorType::get(shape, tensor.getElementType());
  return refined == current ? Type() : refined;
}

} // namespace

unsigned refold::refineTypesByShapeInference(ModuleOp module, bool graphOutputs) {
  onnx::ModelProto model;
  auto ignoreWarnings = [](const llvm::Twine &) {};
  Exporter exporter(module, ignoreWarnings, /*releaseWeights=*/false);
  exporter.omitFloatDataAbove = 64;
  if (failed(exporter.run(model)))
    return 0;
  if (inferShapesIsolated(model))
    return 0; // best effort: the types stay as they are
  llvm::StringMap<const onnx::TypeProto *> inferred;
  for (const auto &info : model.graph().value_info())
    if (info.has_type())
      inferred[info.name()] = &info.type();
  // Inference merges what it finds for graph outputs into their declarations.
  if (graphOutputs)
    for (const auto &info : model.graph().output())
      if (info.has_type())
        inferred[info.name()] = &info.type();
  unsigned refined = 0;
  for (const auto &[value, name] : exporter.valueNames()) {
    auto result = dyn_cast<OpResult>(value);
    if (!result || isa<ir::InitializerOp>(result.getOwner()) ||
        !isa<func::FuncOp>(result.getOwner()->getParentOp()))
      continue;
    // Graph outputs keep the declared interface.
    if (!graphOutputs && llvm::any_of(value.getUsers(),
                     [](Operation *user) { return user->hasTrait<OpTrait::IsTerminator>(); }))
      continue;
    auto it = inferred.find(name);
    if (it == inferred.end())
      continue;
    if (Type type = refinedType(value.getType(), *it->second)) {
      Value(value).setType(type);
      ++refined;
    }
  }
  // The function returns what its values now are.
  if (graphOutputs)
    for (auto func : module.getOps<func::FuncOp>())
      if (!func.isExternal())
        func.setFunctionType(FunctionType::get(
            module.getContext(), func.getArgumentTypes(),
            func.getBody().front().getTerminator()->getOperandTypes()));
  return refined;
}

/// The ModelProto of `module`, checked by onnx::checker when asked (a
/// failure the input already had is a warning, not an error).
static llvm::Error buildCheckedModel(ModuleOp module, const ExportOptions &options,
                                     WarningHandler warn, onnx::ModelProto &model) {
  Exporter exporter(module, warn, options.releaseWeights);
  if (failed(exporter.run(model)))
    return makeError(exporter.errorMessage());
  if (!options.runChecker)
    return llvm::Error::success();
  try {
    onnx::checker::check_model(model);
  } catch (const std::exception &e) {
    auto source = module->getAttrOfType<StringAttr>(kSourceCheck);
    if (!source || source.getValue() == "ok")
      return makeError("the exported model fails the ONNX checker: " + firstLine(e.what()));
    warn("the input model already failed the ONNX checker (" + source.getValue() +
         "); writing the output anyway");
  }
  return llvm::Error::success();
}

llvm::Error refold::exportONNXBuffer(ModuleOp module, std::string &bytes,
                                     const ExportOptions &options, WarningHandler warn) {
  onnx::ModelProto model;
  if (auto err = buildCheckedModel(module, options, warn, model))
    return err;
  if (model.ByteSizeLong() > size_t(INT_MAX))
    return makeError("the model is larger than 2 GiB; write it to a file with external data");
  llvm::raw_string_ostream os(bytes);
  return serialize(model, os);
}

llvm::Error refold::exportONNXFile(ModuleOp module, StringRef path,
                                   const ExportOptions &options, WarningHandler warn) {
  onnx::ModelProto model;
  if (auto err = buildCheckedModel(module, options, warn, model))
    return err;

  uint64_t tensorBytes = 0;
  forEachInitializer(*model.mutable_graph(), [&](onnx::TensorProto &t) {
    tensorBytes += t.raw_data().size();
  });
  bool external = options.externalData || tensorBytes > options.inlineLimit;
  uint64_t threshold = options.externalData ? options.externalDataThreshold : 1024;
  if (external && !options.externalData)
    warn("the model's tensors take " + llvm::Twine(tensorBytes >> 20) +
         " MiB, more than fits in one protobuf message; writing them to an external data file");

  std::string dataPath = (path + ".data").str();
  if (external) {
    std::string location = llvm::sys::path::filename(dataPath).str();
    std::vector<onnx::TensorProto *> moved;
    forEachInitializer(*model.mutable_graph(), [&](onnx::TensorProto &t) {
      if (t.has_raw_data() && t.raw_data().size() >= threshold)
        moved.push_back(&t);
    });
    uint64_t offset = 0;
    auto writeData = [&](llvm::raw_ostream &os) -> llvm::Error {
      for (onnx::TensorProto *t : moved) {
        // Page-aligned offsets let runtimes map tensors directly.
        uint64_t aligned = (offset + 4095) / 4096 * 4096;
        os.write_zeros(aligned - offset);
        offset = aligned;
        const std::string &data = t->raw_data();
        os.write(data.data(), data.size());
        auto add = [&](const char *key, std::string value) {
          auto *entry = t->add_external_data();
          entry->set_key(key);
          entry->set_value(std::move(value));
        };
        add("location", location);
        add("offset", std::to_string(offset));
        add("length", std::to_string(data.size()));
        t->set_data_location(onnx::TensorProto::EXTERNAL);
        offset += data.size();
        t->clear_raw_data();
      }
      return llvm::Error::success();
    };
    if (auto err = llvm::writeToOutput(dataPath, writeData))
      return makeError("cannot write '" + dataPath + "': " + llvm::toString(std::move(err)));
  }

  if (model.ByteSizeLong() > size_t(INT_MAX)) {
    if (external)
      llvm::sys::fs::remove(dataPath);
    return makeError("the model is larger than 2 GiB even with its tensors stored externally");
  }
  if (auto err = llvm::writeToOutput(path, [&](llvm::raw_ostream &os) {
        return serialize(model, os);
      })) {
    if (external)
      llvm::sys::fs::remove(dataPath);
    return makeError("cannot write '" + path + "': " + llvm::toString(std::move(err)));
  }
  return llvm::Error::success();
}
