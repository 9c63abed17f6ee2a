// RUN: refold-opt %s -split-input-file --pass-pipeline='builtin.module(func.func(onnx-fold-constants))' | FileCheck %s

// A conv weight computed from constants (KernelWarehouse with a static
// attention): MatMul -> Reshape fold into one initializer named after the value.
// CHECK-LABEL: func.func @static_mixture
// CHECK: %[[W:.*]] = onnx.initializer "kernel" = dense<{{\[\[\[\[}}5.000000e+00, 7.000000e+00], [9.000000e+00, 1.100000e+01]]]]> : tensor<1x1x2x2xf32>
// CHECK-NOT: onnx.MatMul
// CHECK-NOT: onnx.Reshape
// CHECK: onnx.Conv(%arg0, %[[W]]
func.func @static_mixture(%x: tensor<1x1x4x4xf32>) -> tensor<1x1x3x3xf32> {
  %none = onnx.none
  %attention = onnx.initializer "attention" = dense<[[1.0, 2.0]]> : tensor<1x2xf32>
  %warehouse = onnx.initializer "warehouse" = dense<[[1.0, 1.0, 1.0, 1.0], [2.0, 3.0, 4.0, 5.0]]> : tensor<2x4xf32>
  %shape = onnx.initializer "shape" = dense<[1, 1, 2, 2]> : tensor<4xi64>
  %mixed = onnx.MatMul(%attention, %warehouse) {onnx.outputs = ["mixed"]} : (tensor<1x2xf32>, tensor<2x4xf32>) -> tensor<1x4xf32>
  %kernel = onnx.Reshape(%mixed, %shape) {onnx.outputs = ["kernel"]} : (tensor<1x4xf32>, tensor<4xi64>) -> tensor<1x1x2x2xf32>
  %y = onnx.Conv(%x, %kernel, %none) : (tensor<1x1x4x4xf32>, tensor<1x1x2x2xf32>, none) -> tensor<1x1x3x3xf32>
  return %y : tensor<1x1x3x3xf32>
}

// -----

// An attention computed from the input (dynamic convolution) stays.
// CHECK-LABEL: func.func @dynamic_mixture
// CHECK: onnx.MatMul
// CHECK: onnx.Reshape
func.func @dynamic_mixture(%x: tensor<1x1x4x4xf32>, %attention: tensor<1x2xf32>) -> tensor<1x1x3x3xf32> {
  %none = onnx.none
  %warehouse = onnx.initializer "warehouse" = dense<1.0> : tensor<2x4xf32>
  %shape = onnx.initializer "shape" = dense<[1, 1, 2, 2]> : tensor<4xi64>
  %mixed = onnx.MatMul(%attention, %warehouse) : (tensor<1x2xf32>, tensor<2x4xf32>) -> tensor<1x4xf32>
  %kernel = onnx.Reshape(%mixed, %shape) : (tensor<1x4xf32>, tensor<4xi64>) -> tensor<1x1x2x2xf32>
  %y = onnx.Conv(%x, %kernel, %none) : (tensor<1x1x4x4xf32>, tensor<1x1x2x2xf32>, none) -> tensor<1x1x3x3xf32>
  return %y : tensor<1x1x3x3xf32>
}

// -----

// Shape of a static value is a constant; of a dynamic one it is not.
// CHECK-LABEL: func.func @shapes
// CHECK: %[[S:.*]] = onnx.initializer "s" = dense<[2, 3]> : tensor<2xi64>
// CHECK: onnx.node "Shape"(%arg1)
// CHECK: return %[[S]]
func.func @shapes(%x: tensor<2x3xf32>, %y: tensor<?x3xf32>) -> (tensor<2xi64>, tensor<2xi64>) {
  %s = onnx.node "Shape"(%x) {onnx.outputs = ["s"]} : (tensor<2x3xf32>) -> tensor<2xi64>
  %t = onnx.node "Shape"(%y) {onnx.outputs = ["t"]} : (tensor<?x3xf32>) -> tensor<2xi64>
  return %s, %t : tensor<2xi64>, tensor<2xi64>
}

// -----

// Folding that would grow the model beyond the limit is refused.
// CHECK-LABEL: func.func @no_bloat
// CHECK: onnx.node "ConstantOfShape"
func.func @no_bloat() -> tensor<1024x1024xf32> {
  %shape = onnx.initializer "shape" = dense<[1024, 1024]> : tensor<2xi64>
  %big = onnx.node "ConstantOfShape"(%shape) : (tensor<2xi64>) -> tensor<1024x1024xf32>
  return %big : tensor<1024x1024xf32>
}

// -----

// A dequantized weight stays int8: folded, it would be stored as float
// and the integer kernels of the C output would not see it.
// CHECK-LABEL: func.func @dequantized_weight
// CHECK: onnx.DequantizeLinear
func.func @dequantized_weight() -> tensor<2xf32> {
  %q = onnx.initializer "q" = dense<[3, -7]> : tensor<2xi8>
  %s = onnx.initializer "s" = dense<0.5> : tensor<f32>
  %z = onnx.initializer "z" = dense<0> : tensor<i8>
  %d = onnx.DequantizeLinear(%q, %s, %z) {onnx.outputs = ["d"]} : (tensor<2xi8>, tensor<f32>, tensor<i8>) -> tensor<2xf32>
  return %d : tensor<2xf32>
}
