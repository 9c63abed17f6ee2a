// RUN: refold-opt %s -split-input-file --pass-pipeline='builtin.module(func.func(onnx-merge-linear))' | FileCheck %s

// (x W1 + b1) W2 + b2 on tokens: W = W1 W2 = [[6]], b = b1 W2 + b2 = 2*3 + 1 = 7.
// CHECK-LABEL: func.func @tokens
// CHECK-DAG: onnx.initializer "y_weight" = dense<6.000000e+00> : tensor<1x1xf32>
// CHECK-DAG: onnx.initializer "y_bias" = dense<7.000000e+00> : tensor<1xf32>
// CHECK: %[[M:.*]] = onnx.MatMul(%arg0,
// CHECK: onnx.Add(%[[M]],
// CHECK-NOT: onnx.MatMul
func.func @tokens(%x: tensor<2x3x1xf32>) -> tensor<2x3x1xf32> {
  %w1 = onnx.initializer "w1" = dense<2.0> : tensor<1x1xf32>
  %b1 = onnx.initializer "b1" = dense<2.0> : tensor<1xf32>
  %w2 = onnx.initializer "w2" = dense<3.0> : tensor<1x1xf32>
  %b2 = onnx.initializer "b2" = dense<1.0> : tensor<1xf32>
  %h = onnx.MatMul(%x, %w1) : (tensor<2x3x1xf32>, tensor<1x1xf32>) -> tensor<2x3x1xf32>
  %hb = onnx.Add(%h, %b1) : (tensor<2x3x1xf32>, tensor<1xf32>) -> tensor<2x3x1xf32>
  %o = onnx.MatMul(%hb, %w2) : (tensor<2x3x1xf32>, tensor<1x1xf32>) -> tensor<2x3x1xf32>
  %y = onnx.Add(%o, %b2) {onnx.outputs = ["y"]} : (tensor<2x3x1xf32>, tensor<1xf32>) -> tensor<2x3x1xf32>
  return %y : tensor<2x3x1xf32>
}

// -----

// The hidden value has another user: refused. A dynamic weight: refused.
// CHECK-LABEL: func.func @refusals
// CHECK-COUNT-4: onnx.MatMul
func.func @refusals(%x: tensor<3x4xf32>, %d: tensor<4x4xf32>) -> (tensor<3x4xf32>, tensor<3x4xf32>, tensor<3x4xf32>) {
  %w = onnx.initializer "w" = dense<1.0> : tensor<4x4xf32>
  %h = onnx.MatMul(%x, %w) : (tensor<3x4xf32>, tensor<4x4xf32>) -> tensor<3x4xf32>
  %y = onnx.MatMul(%h, %w) : (tensor<3x4xf32>, tensor<4x4xf32>) -> tensor<3x4xf32>
  %g = onnx.MatMul(%x, %d) : (tensor<3x4xf32>, tensor<4x4xf32>) -> tensor<3x4xf32>
  %z = onnx.MatMul(%g, %w) : (tensor<3x4xf32>, tensor<4x4xf32>) -> tensor<3x4xf32>
  return %y, %h, %z : tensor<3x4xf32>, tensor<3x4xf32>, tensor<3x4xf32>
}

// -----

// A channels-last Linear between NCHW<->NHWC transposes is a 1x1 conv with
// the transposed weight: W [C=2, O=1] = [[2], [3]] -> [1, 2, 1, 1].
// CHECK-LABEL: func.func @channels_last
// CHECK-DAG: onnx.initializer "u_weight" = dense<{{\[\[\[\[}}2.000000e+00]], {{\[\[}}3.000000e+00]]]]> : tensor<1x2x1x1xf32>
// CHECK: onnx.Conv(%arg0, %{{.*}}, %{{.*}}) {kernel_shape = array<i64: 1, 1>, onnx.outputs = ["u"]}
// CHECK-NOT: onnx.Transpose
func.func @channels_last(%x: tensor<1x2x3x3xf32>) -> tensor<1x1x3x3xf32> {
  %w = onnx.initializer "w" = dense<[[2.0], [3.0]]> : tensor<2x1xf32>
  %t = onnx.Transpose(%x) {perm = array<i64: 0, 2, 3, 1>} : (tensor<1x2x3x3xf32>) -> tensor<1x3x3x2xf32>
  %m = onnx.MatMul(%t, %w) : (tensor<1x3x3x2xf32>, tensor<2x1xf32>) -> tensor<1x3x3x1xf32>
  %u = onnx.Transpose(%m) {onnx.outputs = ["u"], perm = array<i64: 0, 3, 1, 2>} : (tensor<1x3x3x1xf32>) -> tensor<1x1x3x3xf32>
  return %u : tensor<1x1x3x3xf32>
}
