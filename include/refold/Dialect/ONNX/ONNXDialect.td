//===- ONNXDialect.td - the onnx dialect ---------------------*- tablegen -*-===//

#ifndef REFOLD_DIALECT_ONNX_ONNXDIALECT_TD
#define REFOLD_DIALECT_ONNX_ONNXDIALECT_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"

def ONNX_Dialect : Dialect {
  let name = "onnx";
  let cppNamespace = "::refold::ir";
  let summary = "ONNX graphs as MLIR: typed ops for the ops refold rewrites, "
                "a generic op for every other node";
  let description = [{
    Values are tensors (`tensor<...>` with ONNX element types mapped to MLIR
    types: signed integers are signless, unsigned are `ui*`, bool is `i1`,
    strings are `!onnx.string`). Values whose ONNX type is not a tensor
    (sequence, optional, map, sparse tensor) or is unknown carry
    `!onnx.type<"...">` holding the ONNX TypeProto in protobuf text format.
    A missing optional input is the result of `onnx.none`.
  }];
  let useDefaultTypePrinterParser = 1;
  let useDefaultAttributePrinterParser = 1;
  let hasConstantMaterializer = 1;
  let extraClassDeclaration = [{
    void registerTypes();
    void registerAttributes();
  }];
}

class ONNX_Type<string name, string typeMnemonic, list<Trait> traits = []>
    : TypeDef<ONNX_Dialect, name, traits> {
  let mnemonic = typeMnemonic;
}

def ONNX_StringType : ONNX_Type<"String", "string"> {
  let summary = "ONNX string element type";
}

def ONNX_ProtoType : ONNX_Type<"Proto", "type"> {
  let summary = "an ONNX type MLIR has no builtin for, kept as TypeProto text";
  let description = [{
    `!onnx.type<"">` is a value whose type the model does not state.
    Otherwise the string is the TypeProto in protobuf text format, e.g.
    `!onnx.type<"sequence_type { elem_type { tensor_type { elem_type: 1 } } }">`.
  }];
  let parameters = (ins StringRefParameter<"TypeProto text">:$proto);
  let assemblyFormat = "`<` $proto `>`";
}

class ONNX_Attr<string name, string attrMnemonic, list<Trait> traits = []>
    : AttrDef<ONNX_Dialect, name, traits> {
  let mnemonic = attrMnemonic;
}

def ONNX_ProtoAttr : ONNX_Attr<"Proto", "proto"> {
  let summary = "an ONNX attribute value of a rare kind, kept as protobuf text";
  let description = [{
    Carries attribute kinds that have no natural MLIR attribute:
    `sparse_tensor`, `type_proto` and their list forms, plus list forms that
    cannot be told apart when empty. `kind` is the AttributeProto type name
    (e.g. "SPARSE_TENSOR"), `text` the AttributeProto in text format.
  }];
  let parameters = (ins StringRefParameter<"kind">:$kind,
                        StringRefParameter<"AttributeProto text">:$text);
  let assemblyFormat = "`<` $kind `,` $text `>`";
}

#endif // REFOLD_DIALECT_ONNX_ONNXDIALECT_TD
