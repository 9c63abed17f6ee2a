// RUN: refold-opt %s -split-input-file --pass-pipeline='builtin.module(func.func(onnx-quant-equalize))' | FileCheck %s
// (Exactness on a whole model: test/Driver/quantize.test, with --verify.)

// Output channel ranges of the first conv [4, 1], input channel ranges of
// the second [1, 4]: s = sqrt(r1 / r2) = [2, 0.5]. The first conv's channels
// (and bias) are divided by s, the second's input channels multiplied:
// every range becomes 2.
// CHECK-LABEL: func.func @pair
// CHECK-DAG: onnx.initializer "w1" = dense<{{\[\[\[\[}}2.000000e+00]]], {{\[\[\[}}-2.000000e+00]]]]> : tensor<2x1x1x1xf32>
// CHECK-DAG: onnx.initializer "b1" = dense<[5.000000e-01, 4.000000e+00]> : tensor<2xf32>
// CHECK-DAG: onnx.initializer "w2" = dense<2.000000e+00> : tensor<1x2x1x1xf32>
func.func @pair(%x: tensor<1x1x2x2xf32>) -> tensor<1x1x2x2xf32> {
  %none = onnx.none
  %w1 = onnx.initializer "w1" = dense<[[[[4.0]]], [[[-1.0]]]]> : tensor<2x1x1x1xf32>
  %b1 = onnx.initializer "b1" = dense<[1.0, 2.0]> : tensor<2xf32>
  %w2 = onnx.initializer "w2" = dense<[[[[1.0]], [[4.0]]]]> : tensor<1x2x1x1xf32>
  %c1 = onnx.Conv(%x, %w1, %b1) : (tensor<1x1x2x2xf32>, tensor<2x1x1x1xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32>
  %r = onnx.Relu(%c1) : (tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32>
  %c2 = onnx.Conv(%r, %w2, %none) : (tensor<1x2x2x2xf32>, tensor<1x2x1x1xf32>, none) -> tensor<1x1x2x2xf32>
  return %c2 : tensor<1x1x2x2xf32>
}

// -----

// Grouped convs: a depthwise conv's output channels move their scale to the
// pointwise conv reading them, a pointwise conv's to the depthwise conv
// after it (each depthwise channel reads one input channel). Through a
// Clip from 0 with no upper bound (a Relu) too. Same ranges as @pair.
// CHECK-LABEL: func.func @depthwise_pointwise
// CHECK-DAG: onnx.initializer "w1" = dense<{{\[\[\[\[}}2.000000e+00]]], {{\[\[\[}}-2.000000e+00]]]]> : tensor<2x1x1x1xf32>
// CHECK-DAG: onnx.initializer "w2" = dense<2.000000e+00> : tensor<1x2x1x1xf32>
func.func @depthwise_pointwise(%x: tensor<1x2x2x2xf32>) -> tensor<1x1x2x2xf32> {
  %none = onnx.none
  %lo = onnx.initializer "lo" = dense<0.0> : tensor<f32>
  %w1 = onnx.initializer "w1" = dense<[[[[4.0]]], [[[-1.0]]]]> : tensor<2x1x1x1xf32>
  %w2 = onnx.initializer "w2" = dense<[[[[1.0]], [[4.0]]]]> : tensor<1x2x1x1xf32>
  %c1 = onnx.Conv(%x, %w1, %none) {group = 2 : i64} : (tensor<1x2x2x2xf32>, tensor<2x1x1x1xf32>, none) -> tensor<1x2x2x2xf32>
  %r = onnx.Clip(%c1, %lo, %none) : (tensor<1x2x2x2xf32>, tensor<f32>, none) -> tensor<1x2x2x2xf32>
  %c2 = onnx.Conv(%r, %w2, %none) : (tensor<1x2x2x2xf32>, tensor<1x2x1x1xf32>, none) -> tensor<1x1x2x2xf32>
  return %c2 : tensor<1x1x2x2xf32>
}

// -----

// CHECK-LABEL: func.func @pointwise_depthwise
// CHECK-DAG: onnx.initializer "w1" = dense<{{\[\[\[\[}}2.000000e+00]]], {{\[\[\[}}-2.000000e+00]]]]> : tensor<2x1x1x1xf32>
// CHECK-DAG: onnx.initializer "w2" = dense<2.000000e+00> : tensor<2x1x1x1xf32>
func.func @pointwise_depthwise(%x: tensor<1x1x2x2xf32>) -> tensor<1x2x2x2xf32> {
  %none = onnx.none
  %w1 = onnx.initializer "w1" = dense<[[[[4.0]]], [[[-1.0]]]]> : tensor<2x1x1x1xf32>
  %w2 = onnx.initializer "w2" = dense<[[[[1.0]]], [[[4.0]]]]> : tensor<2x1x1x1xf32>
  %c1 = onnx.Conv(%x, %w1, %none) : (tensor<1x1x2x2xf32>, tensor<2x1x1x1xf32>, none) -> tensor<1x2x2x2xf32>
  %r = onnx.Relu(%c1) : (tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32>
  %c2 = onnx.Conv(%r, %w2, %none) {group = 2 : i64} : (tensor<1x2x2x2xf32>, tensor<2x1x1x1xf32>, none) -> tensor<1x2x2x2xf32>
  return %c2 : tensor<1x2x2x2xf32>
}

// -----

// Not exact through a Clip (Relu6), nor when the first conv's output has
// another reader: left alone.
// CHECK-LABEL: func.func @refused
// CHECK-DAG: onnx.initializer "w1" = dense<{{\[\[\[\[}}4.000000e+00]]], {{\[\[\[}}-1.000000e+00]]]]>
// CHECK-DAG: onnx.initializer "w2" = dense<{{\[\[\[\[}}1.000000e+00]], {{\[\[}}4.000000e+00]]]]>
func.func @refused(%x: tensor<1x1x2x2xf32>) -> (tensor<1x1x2x2xf32>, tensor<1x2x2x2xf32>) {
  %none = onnx.none
  %lo = onnx.initializer "lo" = dense<0.0> : tensor<f32>
  %hi = onnx.initializer "hi" = dense<6.0> : tensor<f32>
  %w1 = onnx.initializer "w1" = dense<[[[[4.0]]], [[[-1.0]]]]> : tensor<2x1x1x1xf32>
  %w2 = onnx.initializer "w2" = dense<[[[[1.0]], [[4.0]]]]> : tensor<1x2x1x1xf32>
  %c1 = onnx.Conv(%x, %w1, %none) : (tensor<1x1x2x2xf32>, tensor<2x1x1x1xf32>, none) -> tensor<1x2x2x2xf32>
  %r = onnx.Clip(%c1, %lo, %hi) : (tensor<1x2x2x2xf32>, tensor<f32>, tensor<f32>) -> tensor<1x2x2x2xf32>
  %c2 = onnx.Conv(%r, %w2, %none) : (tensor<1x2x2x2xf32>, tensor<1x2x1x1xf32>, none) -> tensor<1x1x2x2xf32>
  %c3 = onnx.Conv(%x, %w1, %none) : (tensor<1x1x2x2xf32>, tensor<2x1x1x1xf32>, none) -> tensor<1x2x2x2xf32>
  %d = onnx.Conv(%c3, %w2, %none) : (tensor<1x2x2x2xf32>, tensor<1x2x1x1xf32>, none) -> tensor<1x1x2x2xf32>
  %s = onnx.Add(%c2, %d) : (tensor<1x1x2x2xf32>, tensor<1x1x2x2xf32>) -> tensor<1x1x2x2xf32>
  return %s, %c3 : tensor<1x1x2x2xf32>, tensor<1x2x2x2xf32>
}
