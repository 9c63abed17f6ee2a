// RUN: not refold-translate --emit-c --split-input-file %s 2>&1 | FileCheck %s

// An op without a C kernel is one error naming the op and the node.
// CHECK: cannot emit C for TopK 'top': no C kernel for this op
func.func @main(%x: tensor<1x8xf32>) -> tensor<1x3xf32> {
  %k = onnx.initializer "k" = dense<3> : tensor<1xi64>
  %v, %i = onnx.node "TopK"(%x, %k) {onnx.name = "top", onnx.outputs = ["v", "i"]} : (tensor<1x8xf32>, tensor<1xi64>) -> (tensor<1x3xf32>, tensor<1x3xi64>)
  return %v : tensor<1x3xf32>
}

// -----

// An attribute combination a kernel does not handle names the case.
// CHECK: cannot emit C for Pad (output 'p'): mode 'reflect' (only constant)
func.func @main(%x: tensor<1x8xf32>) -> tensor<1x10xf32> {
  %pads = onnx.initializer "pads" = dense<[0, 1, 0, 1]> : tensor<4xi64>
  %none = onnx.none
  %p = onnx.Pad(%x, %pads, %none, %none) {mode = "reflect", onnx.outputs = ["p"]} : (tensor<1x8xf32>, tensor<4xi64>, none, none) -> tensor<1x10xf32>
  return %p : tensor<1x10xf32>
}

// -----

// A dimension without a size cannot be emitted.
// CHECK: dimension 0 of input 'input0' has no name and no size
func.func @main(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %y = onnx.Relu(%x) {onnx.outputs = ["y"]} : (tensor<?x8xf32>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}
