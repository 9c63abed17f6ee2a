// RUN: refold-opt %s -split-input-file --pass-pipeline='builtin.module(func.func(onnx-shrink-channels))' | FileCheck %s

// Channel 1 of the first conv has zero weights and bias: it goes, through the
// Relu, with input channel 1 of both consumer convs.
// CHECK-LABEL: func.func @pruned
// CHECK-DAG: onnx.initializer "w1_shrunk" = dense<{{\[\[\[\[}}1.000000e+00]], {{\[\[}}2.000000e+00]]], {{\[\[\[}}3.000000e+00]], {{\[\[}}4.000000e+00]]]]> : tensor<2x2x1x1xf32>
// CHECK-DAG: onnx.initializer "w2_shrunk" = dense<{{\[\[\[\[}}1.000000e+00]], {{\[\[}}3.000000e+00]]]]> : tensor<1x2x1x1xf32>
// CHECK: %[[A:.*]] = onnx.Conv(%arg0, {{.*}} -> tensor<1x2x4x4xf32>
// CHECK: %[[R:.*]] = onnx.Relu(%[[A]]) : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
// CHECK: onnx.Conv(%[[R]], {{.*}}tensor<1x2x1x1xf32>{{.*}} -> tensor<1x1x4x4xf32>
// CHECK: onnx.Conv(%[[R]], {{.*}}tensor<1x2x1x1xf32>{{.*}} -> tensor<1x1x4x4xf32>
func.func @pruned(%x: tensor<1x2x4x4xf32>) -> (tensor<1x1x4x4xf32>, tensor<1x1x4x4xf32>) {
  %none = onnx.none
  %w1 = onnx.initializer "w1" = dense<[[[[1.0]], [[2.0]]], [[[0.0]], [[0.0]]], [[[3.0]], [[4.0]]]]> : tensor<3x2x1x1xf32>
  %b1 = onnx.initializer "b1" = dense<[1.0, 0.0, 2.0]> : tensor<3xf32>
  %w2 = onnx.initializer "w2" = dense<[[[[1.0]], [[2.0]], [[3.0]]]]> : tensor<1x3x1x1xf32>
  %a = onnx.Conv(%x, %w1, %b1) : (tensor<1x2x4x4xf32>, tensor<3x2x1x1xf32>, tensor<3xf32>) -> tensor<1x3x4x4xf32>
  %r = onnx.Relu(%a) : (tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
  %y = onnx.Conv(%r, %w2, %none) : (tensor<1x3x4x4xf32>, tensor<1x3x1x1xf32>, none) -> tensor<1x1x4x4xf32>
  %z = onnx.Conv(%r, %w2, %none) : (tensor<1x3x4x4xf32>, tensor<1x3x1x1xf32>, none) -> tensor<1x1x4x4xf32>
  return %y, %z : tensor<1x1x4x4xf32>, tensor<1x1x4x4xf32>
}

// -----

// Refused: a zero channel with a non-zero bias (it is constant, not zero);
// a Sigmoid between (sigmoid(0) = 0.5); a graph output; an Add consumer.
// CHECK-LABEL: func.func @refusals
// CHECK-NOT: _shrunk
func.func @refusals(%x: tensor<1x2x4x4xf32>) -> (tensor<1x1x4x4xf32>, tensor<1x1x4x4xf32>, tensor<1x3x4x4xf32>, tensor<1x3x4x4xf32>) {
  %none = onnx.none
  %w1 = onnx.initializer "w1" = dense<[[[[1.0]], [[2.0]]], [[[0.0]], [[0.0]]], [[[3.0]], [[4.0]]]]> : tensor<3x2x1x1xf32>
  %b1 = onnx.initializer "b1" = dense<[1.0, 5.0, 2.0]> : tensor<3xf32>
  %w2 = onnx.initializer "w2" = dense<1.0> : tensor<1x3x1x1xf32>
  %a = onnx.Conv(%x, %w1, %b1) : (tensor<1x2x4x4xf32>, tensor<3x2x1x1xf32>, tensor<3xf32>) -> tensor<1x3x4x4xf32>
  %y = onnx.Conv(%a, %w2, %none) : (tensor<1x3x4x4xf32>, tensor<1x3x1x1xf32>, none) -> tensor<1x1x4x4xf32>
  %c = onnx.Conv(%x, %w1, %none) : (tensor<1x2x4x4xf32>, tensor<3x2x1x1xf32>, none) -> tensor<1x3x4x4xf32>
  %s = onnx.Sigmoid(%c) : (tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
  %z = onnx.Conv(%s, %w2, %none) : (tensor<1x3x4x4xf32>, tensor<1x3x1x1xf32>, none) -> tensor<1x1x4x4xf32>
  %o = onnx.Conv(%x, %w1, %none) : (tensor<1x2x4x4xf32>, tensor<3x2x1x1xf32>, none) -> tensor<1x3x4x4xf32>
  %p = onnx.Conv(%x, %w1, %none) : (tensor<1x2x4x4xf32>, tensor<3x2x1x1xf32>, none) -> tensor<1x3x4x4xf32>
  %q = onnx.Add(%p, %o) : (tensor<1x3x4x4xf32>, tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
  return %y, %z, %o, %q : tensor<1x1x4x4xf32>, tensor<1x1x4x4xf32>, tensor<1x3x4x4xf32>, tensor<1x3x4x4xf32>
}
