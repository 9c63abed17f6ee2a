// RUN: refold-opt %s -split-input-file --pass-pipeline='builtin.module(onnx-infer-shapes)' | FileCheck %s

// Constant pads: ONNX shape inference knows the Pad's result, and the shape
// flows on through the BN. The graph output keeps its declared type.
// CHECK-LABEL: func.func @constant_pads
// CHECK: onnx.Pad{{.*}} -> tensor<1x2x6x6xf32>
// CHECK: onnx.BatchNormalization{{.*}} -> tensor<1x2x6x6xf32>
// CHECK: onnx.Relu{{.*}} -> tensor<?x?x?x?xf32>
func.func @constant_pads(%x: tensor<1x2x4x4xf32>) -> tensor<?x?x?x?xf32> {
  %none = onnx.none
  %pads = onnx.initializer "pads" = dense<[0, 0, 1, 1, 0, 0, 1, 1]> : tensor<8xi64>
  %p1 = onnx.initializer "p1" = dense<1.0> : tensor<2xf32>
  %p = onnx.Pad(%x, %pads, %none, %none) {onnx.outputs = ["padded"]} : (tensor<1x2x4x4xf32>, tensor<8xi64>, none, none) -> tensor<?x?x?x?xf32>
  %b = onnx.BatchNormalization(%p, %p1, %p1, %p1, %p1) {onnx.outputs = ["normalized"]} : (tensor<?x?x?x?xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<?x?x?x?xf32>
  %r = onnx.Relu(%b) {onnx.outputs = ["out"]} : (tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32>
  return %r : tensor<?x?x?x?xf32>
}

// -----

// Pads computed from the input stay unknown; a symbolic batch stays symbolic.
// CHECK-LABEL: func.func @dynamic_pads
// CHECK: onnx.Pad{{.*}} -> tensor<?x?x?x?xf32>
// CHECK: onnx.Relu{{.*}} -> tensor<?x2x4x4xf32>
func.func @dynamic_pads(%x: tensor<?x2x4x4xf32>, %pads: tensor<8xi64>) -> (tensor<?x?x?x?xf32>, tensor<?x?x?x?xf32>) attributes {onnx.graph = {inputs = [{name = "x", dim_params = ["N", "", "", ""]}, {name = "pads"}], outputs = [{name = "padded"}, {name = "sigmoid"}]}} {
  %none = onnx.none
  %p = onnx.Pad(%x, %pads, %none, %none) {onnx.outputs = ["padded"]} : (tensor<?x2x4x4xf32>, tensor<8xi64>, none, none) -> tensor<?x?x?x?xf32>
  %r = onnx.Relu(%x) {onnx.outputs = ["relu"]} : (tensor<?x2x4x4xf32>) -> tensor<?x?x?x?xf32>
  %s = onnx.Sigmoid(%r) {onnx.outputs = ["sigmoid"]} : (tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32>
  return %p, %s : tensor<?x?x?x?xf32>, tensor<?x?x?x?xf32>
}

// -----

// A declared shape that disagrees with inference is left alone.
// CHECK-LABEL: func.func @disagreement
// CHECK: onnx.Relu{{.*}} -> tensor<1x3x4x4xf32>
func.func @disagreement(%x: tensor<1x2x4x4xf32>) -> tensor<1x3x4x4xf32> {
  %r = onnx.Relu(%x) {onnx.outputs = ["r"]} : (tensor<1x2x4x4xf32>) -> tensor<1x3x4x4xf32>
  %s = onnx.Sigmoid(%r) {onnx.outputs = ["s"]} : (tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
  return %s : tensor<1x3x4x4xf32>
}
