// RUN: refold-opt %s -split-input-file --pass-pipeline='builtin.module(func.func(onnx-merge-sequential{merge-policy=always}))' | FileCheck %s
// RUN: refold-opt %s -split-input-file --pass-pipeline='builtin.module(func.func(onnx-merge-sequential{merge-policy=never}))' | FileCheck %s --check-prefix=NEVER

// 1x1 (padding 1, bias 1) then 3x3 without padding: padding moves to the
// merged conv; bias = b2 + sum(W2) * b1 = 0 + (9 * 2) * 2 = 36.
// CHECK-LABEL: func.func @updp
// CHECK-DAG: onnx.initializer "y_weight" = dense<6.000000e+00> : tensor<1x1x3x3xf32>
// CHECK-DAG: onnx.initializer "y_bias" = dense<3.600000e+01> : tensor<1xf32>
// CHECK: onnx.Conv(%arg0, %{{.*}}, %{{.*}}) {kernel_shape = array<i64: 3, 3>, onnx.outputs = ["y"], pads = array<i64: 1, 1, 1, 1>}
// CHECK-NOT: onnx.Conv
// NEVER-COUNT-2: onnx.Conv
func.func @updp(%x: tensor<1x1x4x4xf32>) -> tensor<1x1x4x4xf32> {
  %none = onnx.none
  %w1 = onnx.initializer "w1" = dense<3.0> : tensor<1x1x1x1xf32>
  %b1 = onnx.initializer "b1" = dense<2.0> : tensor<1xf32>
  %w2 = onnx.initializer "w2" = dense<2.0> : tensor<1x1x3x3xf32>
  %a = onnx.Conv(%x, %w1, %b1) {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x1x4x4xf32>, tensor<1x1x1x1xf32>, tensor<1xf32>) -> tensor<1x1x6x6xf32>
  %y = onnx.Conv(%a, %w2, %none) {onnx.outputs = ["y"]} : (tensor<1x1x6x6xf32>, tensor<1x1x3x3xf32>, none) -> tensor<1x1x4x4xf32>
  return %y : tensor<1x1x4x4xf32>
}

// -----

// 3x3 then 3x3 (both unpadded): a 5x5 kernel, the full convolution of both.
// CHECK-LABEL: func.func @compose
// CHECK: onnx.Conv(%arg0, %{{.*}}, %{{.*}}) {kernel_shape = array<i64: 5, 5>, pads = array<i64: 0, 0, 0, 0>}
func.func @compose(%x: tensor<1x2x8x8xf32>) -> tensor<1x2x4x4xf32> {
  %none = onnx.none
  %w1 = onnx.initializer "w1" = dense<1.0> : tensor<3x2x3x3xf32>
  %w2 = onnx.initializer "w2" = dense<1.0> : tensor<2x3x3x3xf32>
  %a = onnx.Conv(%x, %w1, %none) : (tensor<1x2x8x8xf32>, tensor<3x2x3x3xf32>, none) -> tensor<1x3x6x6xf32>
  %y = onnx.Conv(%a, %w2, %none) : (tensor<1x3x6x6xf32>, tensor<2x3x3x3xf32>, none) -> tensor<1x2x4x4xf32>
  return %y : tensor<1x2x4x4xf32>
}

// -----

// Refused: the second conv zero-pads after a biased first conv (the border
// rule); the first conv has a stride; the first conv's output has another user.
// CHECK-LABEL: func.func @refusals
// CHECK-COUNT-6: onnx.Conv
func.func @refusals(%x: tensor<1x1x4x4xf32>) -> (tensor<1x1x4x4xf32>, tensor<1x1x2x2xf32>, tensor<1x1x4x4xf32>, tensor<1x1x4x4xf32>) {
  %none = onnx.none
  %w1 = onnx.initializer "w1" = dense<1.0> : tensor<1x1x1x1xf32>
  %b1 = onnx.initializer "b1" = dense<1.0> : tensor<1xf32>
  %w3 = onnx.initializer "w3" = dense<1.0> : tensor<1x1x3x3xf32>
  %a = onnx.Conv(%x, %w1, %b1) : (tensor<1x1x4x4xf32>, tensor<1x1x1x1xf32>, tensor<1xf32>) -> tensor<1x1x4x4xf32>
  %r0 = onnx.Conv(%a, %w3, %none) {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x1x4x4xf32>, tensor<1x1x3x3xf32>, none) -> tensor<1x1x4x4xf32>
  %s = onnx.Conv(%x, %w1, %none) {strides = array<i64: 2, 2>} : (tensor<1x1x4x4xf32>, tensor<1x1x1x1xf32>, none) -> tensor<1x1x2x2xf32>
  %r1 = onnx.Conv(%s, %w1, %none) : (tensor<1x1x2x2xf32>, tensor<1x1x1x1xf32>, none) -> tensor<1x1x2x2xf32>
  %u = onnx.Conv(%x, %w1, %none) : (tensor<1x1x4x4xf32>, tensor<1x1x1x1xf32>, none) -> tensor<1x1x4x4xf32>
  %r2 = onnx.Conv(%u, %w1, %none) : (tensor<1x1x4x4xf32>, tensor<1x1x1x1xf32>, none) -> tensor<1x1x4x4xf32>
  return %r0, %r1, %r2, %u : tensor<1x1x4x4xf32>, tensor<1x1x2x2xf32>, tensor<1x1x4x4xf32>, tensor<1x1x4x4xf32>
}

// -----

// A bias-free 1x1 maps zero to zero, so the second conv may pad.
// CHECK-LABEL: func.func @zero_preserving
// CHECK: onnx.Conv(%arg0, %{{.*}}, %{{.*}}) {kernel_shape = array<i64: 3, 3>, pads = array<i64: 1, 1, 1, 1>}
// CHECK-NOT: onnx.Conv
func.func @zero_preserving(%x: tensor<1x1x4x4xf32>) -> tensor<1x1x4x4xf32> {
  %none = onnx.none
  %w1 = onnx.initializer "w1" = dense<1.0> : tensor<1x1x1x1xf32>
  %w3 = onnx.initializer "w3" = dense<1.0> : tensor<1x1x3x3xf32>
  %a = onnx.Conv(%x, %w1, %none) : (tensor<1x1x4x4xf32>, tensor<1x1x1x1xf32>, none) -> tensor<1x1x4x4xf32>
  %y = onnx.Conv(%a, %w3, %none) {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x1x4x4xf32>, tensor<1x1x3x3xf32>, none) -> tensor<1x1x4x4xf32>
  return %y : tensor<1x1x4x4xf32>
}
