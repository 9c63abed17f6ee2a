//===- ONNXOps.td - onnx dialect operations ------------------*- tablegen -*-===//
//
// Typed ops cover the ONNX operators that refold's passes, interpreter and C
// emitter look inside. Their signatures are the union of the opset versions
// whose attributes and inputs have the same meaning; a node that does not fit
// (other attributes, other arity, untyped values) is imported as `onnx.node`.
// Optional inputs are always present as operands: a missing one is
// `onnx.none`. Attributes are all optional so that export writes back exactly
// the attributes the model had; ONNX defaults apply when one is absent.
//
//===----------------------------------------------------------------------===//

#ifndef REFOLD_DIALECT_ONNX_ONNXOPS_TD
#define REFOLD_DIALECT_ONNX_ONNXOPS_TD

include "refold/Dialect/ONNX/ONNXDialect.td"
include "mlir/IR/OpBase.td"
include "mlir/IR/BuiltinAttributeInterfaces.td"
include "mlir/IR/RegionKindInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/ControlFlowInterfaces.td"

def TensorOrNone : AnyTypeOf<[AnyTensor, NoneType], "tensor or none">;

// Attribute kinds, named after ONNX's AttributeProto types.
def OnnxInt : TypedAttrBase<I64, "IntegerAttr",
    And<[CPred<"::llvm::isa<::mlir::IntegerAttr>($_self)">,
         CPred<"::llvm::cast<::mlir::IntegerAttr>($_self).getType().isSignlessInteger(64)">]>,
    "ONNX INT (64-bit integer)"> {
  let returnType = [{ int64_t }];
  let convertFromStorage = "$_self.getValue().getSExtValue()";
  let storageType = "::mlir::IntegerAttr";
  let constBuilderCall = "$_builder.getI64IntegerAttr($0)";
}
defvar OnnxInts = DenseI64ArrayAttr;
defvar OnnxFloat = F32Attr;
defvar OnnxFloats = DenseF32ArrayAttr;
defvar OnnxString = StrAttr;
def OnnxTensor : ElementsAttrBase<CPred<"::llvm::isa<::mlir::ElementsAttr>($_self)">,
                                  "ONNX TENSOR">;

//===----------------------------------------------------------------------===//
// Infrastructure ops
//===----------------------------------------------------------------------===//

class ONNX_Base<string mnemonic, list<Trait> traits = []>
    : Op<ONNX_Dialect, mnemonic, traits>;

def ONNX_InitializerOp : ONNX_Base<"initializer", [ConstantLike, Pure,
                                                   AllTypesMatch<["value", "output"]>]> {
  let summary = "a graph initializer (named weight)";
  let description = [{
    One entry of GraphProto.initializer. Large values are blob resources
    (`dense_resource<...>`), so weights are not uniqued in the context and
    are freed with the module.
  }];
  let arguments = (ins StrAttr:$name, OnnxTensor:$value,
                       OptionalAttr<StrAttr>:$doc_string);
  let results = (outs AnyType:$output);
  let assemblyFormat = "$name `=` $value attr-dict";
  let builders = [OpBuilder<(ins "::mlir::StringAttr":$name,
                                 "::mlir::ElementsAttr":$value,
                                 CArg<"::mlir::StringAttr", "{}">:$doc), [{
    build($_builder, $_state, value.getType(), name, value, doc);
  }]>];
  let hasFolder = 1;
}

def ONNX_NoneOp : ONNX_Base<"none", [Pure, ConstantLike]> {
  let summary = "the missing value of an optional input (ONNX's empty name)";
  let results = (outs NoneType:$none);
  let assemblyFormat = "attr-dict";
  let builders = [OpBuilder<(ins), [{
    build($_builder, $_state, $_builder.getNoneType());
  }]>];
  let hasFolder = 1;
}

def ONNX_YieldOp : ONNX_Base<"yield", [Pure, Terminator, ReturnLike,
                                        HasParent<"NodeOp">]> {
  let summary = "the outputs of a subgraph";
  let arguments = (ins Variadic<AnyType>:$outputs);
  let assemblyFormat = "($outputs^ `:` type($outputs))? attr-dict";
}

def ONNX_NodeOp : ONNX_Base<"node", [RecursiveMemoryEffects,
    DeclareOpInterfaceMethods<RegionKindInterface>]> {
  let summary = "any ONNX node, carried unchanged";
  let description = [{
    A node refold has no typed op for (or one that does not fit its typed
    op): any domain, any attribute kind. Graph-valued attributes (If, Loop,
    Scan bodies) are the op's regions; `graph_attrs` names, for each region,
    the attribute it came from and the subgraph's own metadata. Subgraphs
    may use values of enclosing graphs.
  }];
  let arguments = (ins Variadic<AnyType>:$inputs, StrAttr:$op_type,
                       OptionalAttr<StrAttr>:$domain,
                       OptionalAttr<DictionaryAttr>:$node_attrs,
                       OptionalAttr<ArrayAttr>:$graph_attrs);
  let results = (outs Variadic<AnyType>:$outputs);
  let regions = (region VariadicRegion<SizedRegion<1>>:$graphs);
  let assemblyFormat = [{
    $op_type `(` $inputs `)` attr-dict `:` functional-type($inputs, $outputs)
    ($graphs^)?
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Typed ops
//===----------------------------------------------------------------------===//

class ONNX_Op<string mnemonic, list<Trait> traits = []>
    : ONNX_Base<mnemonic, !listconcat(traits, [Pure])> {
  let assemblyFormat = "`(` operands `)` attr-dict `:` functional-type(operands, results)";
}

// Shared attribute sets.
defvar ConvAttrs = (ins OptionalAttr<OnnxString>:$auto_pad,
                        OptionalAttr<OnnxInts>:$dilations,
                        OptionalAttr<OnnxInt>:$group,
                        OptionalAttr<OnnxInts>:$kernel_shape,
                        OptionalAttr<OnnxInts>:$pads,
                        OptionalAttr<OnnxInts>:$strides);

def ONNX_ConvOp : ONNX_Op<"Conv"> {
  let summary = "convolution";
  let arguments = !con((ins AnyTensor:$X, AnyTensor:$W, TensorOrNone:$B), ConvAttrs);
  let results = (outs AnyTensor:$Y);
  let hasVerifier = 1;
}

def ONNX_ConvTransposeOp : ONNX_Op<"ConvTranspose"> {
  let summary = "transposed convolution";
  let arguments = !con((ins AnyTensor:$X, AnyTensor:$W, TensorOrNone:$B), ConvAttrs,
                       (ins OptionalAttr<OnnxInts>:$output_padding,
                            OptionalAttr<OnnxInts>:$output_shape));
  let results = (outs AnyTensor:$Y);
  let hasVerifier = 1;
}

def ONNX_BatchNormalizationOp : ONNX_Op<"BatchNormalization"> {
  let summary = "batch normalization in inference form (one output)";
  let arguments = (ins AnyTensor:$X, AnyTensor:$scale, AnyTensor:$B,
                       AnyTensor:$input_mean, AnyTensor:$input_var,
                       OptionalAttr<OnnxFloat>:$epsilon,
                       OptionalAttr<OnnxFloat>:$momentum,
                       OptionalAttr<OnnxInt>:$training_mode,
                       OptionalAttr<OnnxInt>:$spatial);
  let results = (outs AnyTensor:$Y);
  let hasVerifier = 1;
}

def ONNX_GemmOp : ONNX_Op<"Gemm"> {
  let summary = "general matrix multiplication";
  let arguments = (ins AnyTensor:$A, AnyTensor:$B, TensorOrNone:$C,
                       OptionalAttr<OnnxFloat>:$alpha, OptionalAttr<OnnxFloat>:$beta,
                       OptionalAttr<OnnxInt>:$transA, OptionalAttr<OnnxInt>:$transB);
  let results = (outs AnyTensor:$Y);
  let hasVerifier = 1;
}

def ONNX_MatMulOp : ONNX_Op<"MatMul"> {
  let summary = "numpy-style matrix product";
  let arguments = (ins AnyTensor:$A, AnyTensor:$B);
  let results = (outs AnyTensor:$Y);
  let hasVerifier = 1;
}

class ONNX_BinaryOp<string mnemonic, list<Trait> traits = []>
    : ONNX_Op<mnemonic, traits> {
  let summary = "elementwise " # mnemonic # " with multidirectional broadcasting";
  let arguments = (ins AnyTensor:$A, AnyTensor:$B);
  let results = (outs AnyTensor:$C);
  let hasVerifier = 1;
}
def ONNX_AddOp : ONNX_BinaryOp<"Add", [Commutative]>;
def ONNX_SubOp : ONNX_BinaryOp<"Sub">;
def ONNX_MulOp : ONNX_BinaryOp<"Mul", [Commutative]>;
def ONNX_DivOp : ONNX_BinaryOp<"Div">;
def ONNX_PowOp : ONNX_BinaryOp<"Pow"> {
  let arguments = (ins AnyTensor:$X, AnyTensor:$Y);
  let results = (outs AnyTensor:$Z);
}

class ONNX_UnaryOp<string mnemonic, dag attrs = (ins)> : ONNX_Op<mnemonic> {
  let summary = "elementwise " # mnemonic;
  let arguments = !con((ins AnyTensor:$X), attrs);
  let results = (outs AnyTensor:$Y);
}
def ONNX_ReluOp : ONNX_UnaryOp<"Relu">;
def ONNX_SigmoidOp : ONNX_UnaryOp<"Sigmoid">;
def ONNX_HardSigmoidOp : ONNX_UnaryOp<"HardSigmoid",
    (ins OptionalAttr<OnnxFloat>:$alpha, OptionalAttr<OnnxFloat>:$beta)>;
def ONNX_HardSwishOp : ONNX_UnaryOp<"HardSwish">;
def ONNX_ErfOp : ONNX_UnaryOp<"Erf"> {
  let arguments = (ins AnyTensor:$input);
  let results = (outs AnyTensor:$output);
}
def ONNX_SqrtOp : ONNX_UnaryOp<"Sqrt">;

def ONNX_ClipOp : ONNX_Op<"Clip"> {
  let summary = "clamp to [min, max] given as optional scalar inputs";
  let arguments = (ins AnyTensor:$input, TensorOrNone:$min, TensorOrNone:$max);
  let results = (outs AnyTensor:$output);
}

def ONNX_IdentityOp : ONNX_Op<"Identity"> {
  let summary = "identity";
  let arguments = (ins AnyTensor:$input);
  let results = (outs AnyTensor:$output);
}

def ONNX_DropoutOp : ONNX_Op<"Dropout"> {
  let summary = "dropout; the identity unless training_mode is true";
  let arguments = (ins AnyTensor:$data, TensorOrNone:$ratio,
                       TensorOrNone:$training_mode,
                       OptionalAttr<OnnxInt>:$seed);
  let results = (outs AnyTensor:$output, TensorOrNone:$mask);
}

def ONNX_ConstantOp : ONNX_Op<"Constant", [ConstantLike]> {
  let summary = "a Constant node with a tensor `value`";
  let arguments = (ins OnnxTensor:$value);
  let results = (outs AnyTensor:$output);
  let hasFolder = 1;
}

def ONNX_ConcatOp : ONNX_Op<"Concat"> {
  let summary = "concatenate along an axis";
  let arguments = (ins Variadic<AnyTensor>:$inputs, OptionalAttr<OnnxInt>:$axis);
  let results = (outs AnyTensor:$concat_result);
  let hasVerifier = 1;
}

def ONNX_SplitOp : ONNX_Op<"Split"> {
  let summary = "split along an axis";
  let arguments = (ins AnyTensor:$input, TensorOrNone:$split,
                       OptionalAttr<OnnxInt>:$axis);
  let results = (outs Variadic<AnyTensor>:$outputs);
}

def ONNX_SliceOp : ONNX_Op<"Slice"> {
  let summary = "slice with starts/ends/axes/steps inputs";
  let arguments = (ins AnyTensor:$data, AnyTensor:$starts, AnyTensor:$ends,
                       TensorOrNone:$axes, TensorOrNone:$steps);
  let results = (outs AnyTensor:$output);
}

def ONNX_ReshapeOp : ONNX_Op<"Reshape"> {
  let summary = "reshape to a shape given as an input";
  let arguments = (ins AnyTensor:$data, AnyTensor:$shape,
                       OptionalAttr<OnnxInt>:$allowzero);
  let results = (outs AnyTensor:$reshaped);
}

def ONNX_TransposeOp : ONNX_Op<"Transpose"> {
  let summary = "permute axes";
  let arguments = (ins AnyTensor:$data, OptionalAttr<OnnxInts>:$perm);
  let results = (outs AnyTensor:$transposed);
  let hasVerifier = 1;
}

def ONNX_FlattenOp : ONNX_Op<"Flatten"> {
  let summary = "flatten to 2-D at an axis";
  let arguments = (ins AnyTensor:$input, OptionalAttr<OnnxInt>:$axis);
  let results = (outs AnyTensor:$output);
  let hasVerifier = 1;
}

def ONNX_SqueezeOp : ONNX_Op<"Squeeze"> {
  let summary = "remove size-1 axes given as an input";
  let arguments = (ins AnyTensor:$data, TensorOrNone:$axes);
  let results = (outs AnyTensor:$squeezed);
}

def ONNX_UnsqueezeOp : ONNX_Op<"Unsqueeze"> {
  let summary = "insert size-1 axes given as an input";
  let arguments = (ins AnyTensor:$data, AnyTensor:$axes);
  let results = (outs AnyTensor:$expanded);
}

defvar PoolAttrs = (ins OptionalAttr<OnnxString>:$auto_pad,
                        OptionalAttr<OnnxInt>:$ceil_mode,
                        OptionalAttr<OnnxInts>:$dilations,
                        OptionalAttr<OnnxInts>:$kernel_shape,
                        OptionalAttr<OnnxInts>:$pads,
                        OptionalAttr<OnnxInts>:$strides);

def ONNX_MaxPoolOp : ONNX_Op<"MaxPool"> {
  let summary = "max pooling";
  let arguments = !con((ins AnyTensor:$X), PoolAttrs,
                       (ins OptionalAttr<OnnxInt>:$storage_order));
  let results = (outs AnyTensor:$Y, TensorOrNone:$Indices);
  let hasVerifier = 1;
}

def ONNX_AveragePoolOp : ONNX_Op<"AveragePool"> {
  let summary = "average pooling";
  let arguments = !con((ins AnyTensor:$X), PoolAttrs,
                       (ins OptionalAttr<OnnxInt>:$count_include_pad));
  let results = (outs AnyTensor:$Y);
  let hasVerifier = 1;
}

def ONNX_GlobalAveragePoolOp : ONNX_Op<"GlobalAveragePool"> {
  let summary = "mean over all spatial axes";
  let arguments = (ins AnyTensor:$X);
  let results = (outs AnyTensor:$Y);
}

def ONNX_PadOp : ONNX_Op<"Pad"> {
  let summary = "pad with pads/constant_value/axes inputs";
  let arguments = (ins AnyTensor:$data, AnyTensor:$pads,
                       TensorOrNone:$constant_value, TensorOrNone:$axes,
                       OptionalAttr<OnnxString>:$mode);
  let results = (outs AnyTensor:$output);
  let hasVerifier = 1;
}

def ONNX_SoftmaxOp : ONNX_Op<"Softmax"> {
  let summary = "softmax (opset >= 13 along one axis; older opsets coerce to 2-D)";
  let arguments = (ins AnyTensor:$input, OptionalAttr<OnnxInt>:$axis);
  let results = (outs AnyTensor:$output);
  let hasVerifier = 1;
}

def ONNX_LayerNormalizationOp : ONNX_Op<"LayerNormalization"> {
  let summary = "layer normalization";
  let arguments = (ins AnyTensor:$X, AnyTensor:$Scale, TensorOrNone:$B,
                       OptionalAttr<OnnxInt>:$axis, OptionalAttr<OnnxFloat>:$epsilon,
                       OptionalAttr<OnnxInt>:$stash_type);
  let results = (outs AnyTensor:$Y, TensorOrNone:$Mean, TensorOrNone:$InvStdDev);
}

def ONNX_ReduceMeanOp : ONNX_Op<"ReduceMean"> {
  let summary = "mean over axes given as an attribute (opset <= 17)";
  let arguments = (ins AnyTensor:$data, OptionalAttr<OnnxInts>:$axes,
                       OptionalAttr<OnnxInt>:$keepdims);
  let results = (outs AnyTensor:$reduced);
}

def ONNX_QuantizeLinearOp : ONNX_Op<"QuantizeLinear"> {
  let summary = "float to int8/uint8";
  let arguments = (ins AnyTensor:$x, AnyTensor:$y_scale, TensorOrNone:$y_zero_point,
                       OptionalAttr<OnnxInt>:$axis);
  let results = (outs AnyTensor:$y);
}

def ONNX_DequantizeLinearOp : ONNX_Op<"DequantizeLinear"> {
  let summary = "int8/uint8/int32 to float";
  let arguments = (ins AnyTensor:$x, AnyTensor:$x_scale, TensorOrNone:$x_zero_point,
                       OptionalAttr<OnnxInt>:$axis);
  let results = (outs AnyTensor:$y);
}

#endif // REFOLD_DIALECT_ONNX_ONNXOPS_TD
