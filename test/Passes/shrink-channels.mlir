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

// A zero-weight channel is its bias everywhere: 5 here, sigmoid(0) = 0.5
// after the Sigmoid. Unpadded consumers take c times their taps as bias.
// CHECK-LABEL: func.func @constant_channels
// CHECK-DAG: onnx.initializer "w2_shrunk_bias" = dense<5.000000e+00> : tensor<1xf32>
// CHECK-DAG: onnx.initializer "w2_shrunk_bias{{.*}}" = dense<5.000000e-01> : tensor<1xf32>
// CHECK: onnx.Conv{{.*}} -> tensor<1x2x4x4xf32>
// CHECK: onnx.Conv{{.*}}(tensor<1x2x4x4xf32>, tensor<1x2x1x1xf32>, tensor<1xf32>) -> tensor<1x1x4x4xf32>
// CHECK: onnx.Sigmoid{{.*}} -> tensor<1x2x4x4xf32>
func.func @constant_channels(%x: tensor<1x2x4x4xf32>) -> (tensor<1x1x4x4xf32>, tensor<1x1x4x4xf32>) {
  %none = onnx.none
  %w1 = onnx.initializer "w1" = dense<[[[[1.0]], [[2.0]]], [[[0.0]], [[0.0]]], [[[3.0]], [[4.0]]]]> : tensor<3x2x1x1xf32>
  %b1 = onnx.initializer "b1" = dense<[1.0, 5.0, 2.0]> : tensor<3xf32>
  %w2 = onnx.initializer "w2" = dense<1.0> : tensor<1x3x1x1xf32>
  %a = onnx.Conv(%x, %w1, %b1) : (tensor<1x2x4x4xf32>, tensor<3x2x1x1xf32>, tensor<3xf32>) -> tensor<1x3x4x4xf32>
  %y = onnx.Conv(%a, %w2, %none) : (tensor<1x3x4x4xf32>, tensor<1x3x1x1xf32>, none) -> tensor<1x1x4x4xf32>
  %c = onnx.Conv(%x, %w1, %none) : (tensor<1x2x4x4xf32>, tensor<3x2x1x1xf32>, none) -> tensor<1x3x4x4xf32>
  %s = onnx.Sigmoid(%c) : (tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
  %z = onnx.Conv(%s, %w2, %none) : (tensor<1x3x4x4xf32>, tensor<1x3x1x1xf32>, none) -> tensor<1x1x4x4xf32>
  return %y, %z : tensor<1x1x4x4xf32>, tensor<1x1x4x4xf32>
}

// -----

// Through a BN and a per-channel Mul: both lose channel 1. The zero channel
// reaches the conv as relu(0 * s + t) * m = relu(1 - 2) * 3 = 0, so the
// zero-padding 3x3 consumer may lose it too.
// CHECK-LABEL: func.func @through_bn_and_mul
// CHECK: onnx.Conv{{.*}} -> tensor<1x2x4x4xf32>
// CHECK: onnx.BatchNormalization{{.*}}(tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
// CHECK: onnx.Relu{{.*}} -> tensor<1x2x4x4xf32>
// CHECK: onnx.Mul{{.*}}(tensor<1x2x4x4xf32>, tensor<2x1x1xf32>) -> tensor<1x2x4x4xf32>
// CHECK: onnx.Conv{{.*}}(tensor<1x2x4x4xf32>, tensor<1x2x3x3xf32>, none) -> tensor<1x1x4x4xf32>
func.func @through_bn_and_mul(%x: tensor<1x2x4x4xf32>) -> tensor<1x1x4x4xf32> {
  %none = onnx.none
  %w1 = onnx.initializer "w1" = dense<[[[[1.0]], [[2.0]]], [[[0.0]], [[0.0]]], [[[3.0]], [[4.0]]]]> : tensor<3x2x1x1xf32>
  %one = onnx.initializer "one" = dense<1.0> : tensor<3xf32>
  %mean = onnx.initializer "mean" = dense<2.0> : tensor<3xf32>
  %var = onnx.initializer "var" = dense<0.0> : tensor<3xf32>
  %m = onnx.initializer "m" = dense<[[[1.0]], [[3.0]], [[2.0]]]> : tensor<3x1x1xf32>
  %w2 = onnx.initializer "w2" = dense<1.0> : tensor<1x3x3x3xf32>
  %a = onnx.Conv(%x, %w1, %none) : (tensor<1x2x4x4xf32>, tensor<3x2x1x1xf32>, none) -> tensor<1x3x4x4xf32>
  %b = onnx.BatchNormalization(%a, %one, %one, %mean, %var) {epsilon = 1.0 : f32} : (tensor<1x3x4x4xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>) -> tensor<1x3x4x4xf32>
  %r = onnx.Relu(%b) : (tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
  %p = onnx.Mul(%r, %m) : (tensor<1x3x4x4xf32>, tensor<3x1x1xf32>) -> tensor<1x3x4x4xf32>
  %y = onnx.Conv(%p, %w2, %none) {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x3x4x4xf32>, tensor<1x3x3x3xf32>, none) -> tensor<1x1x4x4xf32>
  return %y : tensor<1x1x4x4xf32>
}

// -----

// Refused: a constant channel that is not zero where a zero-padding consumer
// reads it (inside c, outside 0); a graph output; an Add of two branches.
// CHECK-LABEL: func.func @refusals
// CHECK-NOT: _shrunk
func.func @refusals(%x: tensor<1x2x4x4xf32>) -> (tensor<1x1x4x4xf32>, tensor<1x3x4x4xf32>, tensor<1x3x4x4xf32>) {
  %none = onnx.none
  %w1 = onnx.initializer "w1" = dense<[[[[1.0]], [[2.0]]], [[[0.0]], [[0.0]]], [[[3.0]], [[4.0]]]]> : tensor<3x2x1x1xf32>
  %b1 = onnx.initializer "b1" = dense<[1.0, 5.0, 2.0]> : tensor<3xf32>
  %w2 = onnx.initializer "w2" = dense<1.0> : tensor<1x3x3x3xf32>
  %a = onnx.Conv(%x, %w1, %b1) : (tensor<1x2x4x4xf32>, tensor<3x2x1x1xf32>, tensor<3xf32>) -> tensor<1x3x4x4xf32>
  %y = onnx.Conv(%a, %w2, %none) {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x3x4x4xf32>, tensor<1x3x3x3xf32>, none) -> tensor<1x1x4x4xf32>
  %o = onnx.Conv(%x, %w1, %none) : (tensor<1x2x4x4xf32>, tensor<3x2x1x1xf32>, none) -> tensor<1x3x4x4xf32>
  %p = onnx.Conv(%x, %w1, %none) : (tensor<1x2x4x4xf32>, tensor<3x2x1x1xf32>, none) -> tensor<1x3x4x4xf32>
  %q = onnx.Add(%p, %o) : (tensor<1x3x4x4xf32>, tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
  return %y, %o, %q : tensor<1x1x4x4xf32>, tensor<1x3x4x4xf32>, tensor<1x3x4x4xf32>
}

// -----

// A BN lowered to a 1x1 depthwise conv is channel by channel too: it loses
// the channel (weight, bias and group); 0 * 2 + 1 = 1 reaches the unpadded
// consumer and joins its bias (1 * 1).
// CHECK-LABEL: func.func @through_depthwise
// CHECK-DAG: onnx.initializer "w2_shrunk_bias" = dense<1.000000e+00> : tensor<1xf32>
// CHECK: onnx.Conv{{.*}} -> tensor<1x2x4x4xf32>
// CHECK: onnx.Conv{{.*}}group = 2 : i64{{.*}}(tensor<1x2x4x4xf32>, tensor<2x1x1x1xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
// CHECK: onnx.Relu
// CHECK: onnx.Conv{{.*}}(tensor<1x2x4x4xf32>, tensor<1x2x1x1xf32>, tensor<1xf32>) -> tensor<1x1x4x4xf32>
func.func @through_depthwise(%x: tensor<1x2x4x4xf32>) -> tensor<1x1x4x4xf32> {
  %none = onnx.none
  %w1 = onnx.initializer "w1" = dense<[[[[1.0]], [[2.0]]], [[[0.0]], [[0.0]]], [[[3.0]], [[4.0]]]]> : tensor<3x2x1x1xf32>
  %dw = onnx.initializer "dw" = dense<2.0> : tensor<3x1x1x1xf32>
  %db = onnx.initializer "db" = dense<1.0> : tensor<3xf32>
  %w2 = onnx.initializer "w2" = dense<1.0> : tensor<1x3x1x1xf32>
  %a = onnx.Conv(%x, %w1, %none) : (tensor<1x2x4x4xf32>, tensor<3x2x1x1xf32>, none) -> tensor<1x3x4x4xf32>
  %d = onnx.Conv(%a, %dw, %db) {group = 3 : i64} : (tensor<1x3x4x4xf32>, tensor<3x1x1x1xf32>, tensor<3xf32>) -> tensor<1x3x4x4xf32>
  %r = onnx.Relu(%d) : (tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
  %y = onnx.Conv(%r, %w2, %none) : (tensor<1x3x4x4xf32>, tensor<1x3x1x1xf32>, none) -> tensor<1x1x4x4xf32>
  return %y : tensor<1x1x4x4xf32>
}
