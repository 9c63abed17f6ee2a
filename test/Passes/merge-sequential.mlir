// RUN: refold-opt %s -split-input-file --pass-pipeline='builtin.module(func.func(onnx-merge-sequential{merge-policy=always}))' | FileCheck %s
// RUN: refold-opt %s -split-input-file --pass-pipeline='builtin.module(func.func(onnx-merge-sequential{merge-policy=never}))' | FileCheck %s --check-prefix=NEVER
// RUN: refold-opt %s -split-input-file --pass-pipeline='builtin.module(func.func(onnx-merge-sequential))' | FileCheck %s --check-prefix=PROFIT

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

// Refused: the second conv zero-pads after a biased 3x3 (what the merged conv
// sees on the border is not a constant); after a biased 1x1 on a dynamic
// spatial shape (no border map); the first conv has a stride; the first
// conv's output has another user.
// CHECK-LABEL: func.func @refusals
// CHECK-COUNT-8: onnx.Conv
func.func @refusals(%x: tensor<1x1x4x4xf32>, %d: tensor<1x1x?x?xf32>) -> (tensor<1x1x2x2xf32>, tensor<1x1x?x?xf32>, tensor<1x1x2x2xf32>, tensor<1x1x4x4xf32>, tensor<1x1x4x4xf32>) {
  %none = onnx.none
  %w1 = onnx.initializer "w1" = dense<1.0> : tensor<1x1x1x1xf32>
  %b1 = onnx.initializer "b1" = dense<1.0> : tensor<1xf32>
  %w3 = onnx.initializer "w3" = dense<1.0> : tensor<1x1x3x3xf32>
  %k = onnx.Conv(%x, %w3, %b1) : (tensor<1x1x4x4xf32>, tensor<1x1x3x3xf32>, tensor<1xf32>) -> tensor<1x1x2x2xf32>
  %r0 = onnx.Conv(%k, %w3, %none) {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x1x2x2xf32>, tensor<1x1x3x3xf32>, none) -> tensor<1x1x2x2xf32>
  %a = onnx.Conv(%d, %w1, %b1) : (tensor<1x1x?x?xf32>, tensor<1x1x1x1xf32>, tensor<1xf32>) -> tensor<1x1x?x?xf32>
  %r3 = onnx.Conv(%a, %w3, %none) {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x1x?x?xf32>, tensor<1x1x3x3xf32>, none) -> tensor<1x1x?x?xf32>
  %s = onnx.Conv(%x, %w1, %none) {strides = array<i64: 2, 2>} : (tensor<1x1x4x4xf32>, tensor<1x1x1x1xf32>, none) -> tensor<1x1x2x2xf32>
  %r1 = onnx.Conv(%s, %w1, %none) : (tensor<1x1x2x2xf32>, tensor<1x1x1x1xf32>, none) -> tensor<1x1x2x2xf32>
  %u = onnx.Conv(%x, %w1, %none) : (tensor<1x1x4x4xf32>, tensor<1x1x1x1xf32>, none) -> tensor<1x1x4x4xf32>
  %r2 = onnx.Conv(%u, %w1, %none) : (tensor<1x1x4x4xf32>, tensor<1x1x1x1xf32>, none) -> tensor<1x1x4x4xf32>
  return %r0, %r3, %r1, %r2, %u : tensor<1x1x2x2xf32>, tensor<1x1x?x?xf32>, tensor<1x1x2x2xf32>, tensor<1x1x4x4xf32>, tensor<1x1x4x4xf32>
}

// -----

// A biased 1x1 then a zero-padded 3x3 (DBB without its BNAndPad): the merged
// conv sees b1 = 2 where the original saw zeros, so a constant map corrects
// the border: a corner misses 5 taps (-10), an edge 3 (-6). Bias 9 * 2 = 18.
// CHECK-LABEL: func.func @border_correction
// CHECK-DAG: onnx.initializer "y_border" = dense<{{\[\[\[\[}}-1.000000e+01, -6.000000e+00, -6.000000e+00, -1.000000e+01], [-6.000000e+00, 0.000000e+00, 0.000000e+00, -6.000000e+00], [-6.000000e+00, 0.000000e+00, 0.000000e+00, -6.000000e+00], [-1.000000e+01, -6.000000e+00, -6.000000e+00, -1.000000e+01]]]]> : tensor<1x1x4x4xf32>
// CHECK-DAG: onnx.initializer "y_weight" = dense<3.000000e+00> : tensor<1x1x3x3xf32>
// CHECK-DAG: onnx.initializer "y_bias" = dense<1.800000e+01> : tensor<1xf32>
// CHECK: %[[CONV:.*]] = onnx.Conv(%arg0, %{{.*}}, %{{.*}}) {kernel_shape = array<i64: 3, 3>, pads = array<i64: 1, 1, 1, 1>}
// CHECK: onnx.Add(%[[CONV]], %{{.*}}) {onnx.outputs = ["y"]}
// NEVER-LABEL: func.func @border_correction
// NEVER-COUNT-2: onnx.Conv
func.func @border_correction(%x: tensor<1x1x4x4xf32>) -> tensor<1x1x4x4xf32> {
  %none = onnx.none
  %w1 = onnx.initializer "w1" = dense<3.0> : tensor<1x1x1x1xf32>
  %b1 = onnx.initializer "b1" = dense<2.0> : tensor<1xf32>
  %w3 = onnx.initializer "w3" = dense<1.0> : tensor<1x1x3x3xf32>
  %a = onnx.Conv(%x, %w1, %b1) : (tensor<1x1x4x4xf32>, tensor<1x1x1x1xf32>, tensor<1xf32>) -> tensor<1x1x4x4xf32>
  %y = onnx.Conv(%a, %w3, %none) {pads = array<i64: 1, 1, 1, 1>, onnx.outputs = ["y"]} : (tensor<1x1x4x4xf32>, tensor<1x1x3x3xf32>, none) -> tensor<1x1x4x4xf32>
  return %y : tensor<1x1x4x4xf32>
}

// -----

// An AveragePool counting its padding is a depthwise conv with taps 1/9: a
// 1x1 -> AvgPool branch (DBB) merges, with its border map. With
// count_include_pad=0 the pool divides by the covered taps: refused.
// CHECK-LABEL: func.func @avgpool
// CHECK: %[[CONV:.*]] = onnx.Conv(%arg0, %{{.*}}, %{{.*}}) {kernel_shape = array<i64: 3, 3>, pads = array<i64: 1, 1, 1, 1>}
// CHECK: onnx.Add(%[[CONV]],
// CHECK: onnx.Conv
// CHECK: onnx.AveragePool
// CHECK-NOT: onnx.AveragePool
func.func @avgpool(%x: tensor<1x2x4x4xf32>) -> (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) {
  %w1 = onnx.initializer "w1" = dense<1.0> : tensor<2x2x1x1xf32>
  %b1 = onnx.initializer "b1" = dense<1.0> : tensor<2xf32>
  %a = onnx.Conv(%x, %w1, %b1) : (tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  %y = onnx.AveragePool(%a) {count_include_pad = 1 : i64, kernel_shape = array<i64: 3, 3>, pads = array<i64: 1, 1, 1, 1>} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %c = onnx.Conv(%x, %w1, %b1) : (tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  %z = onnx.AveragePool(%c) {kernel_shape = array<i64: 3, 3>, pads = array<i64: 1, 1, 1, 1>} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  return %y, %z : tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>
}

// -----

// An inverted residual without activations (UPDP MobileNetV2): the expanding
// 1x1 -> depthwise 3x3 step alone costs more merged, the chain through the
// projecting 1x1 does not, so the profitable policy merges all three.
// PROFIT-LABEL: func.func @inverted_residual
// PROFIT: onnx.Conv(%arg0, %{{.*}}, %{{.*}}) {kernel_shape = array<i64: 3, 3>, pads = array<i64: 1, 1, 1, 1>}
// PROFIT-NOT: onnx.Conv
// PROFIT-LABEL: func.func @expand_depthwise_only
// PROFIT-COUNT-2: onnx.Conv
func.func @inverted_residual(%x: tensor<1x8x8x8xf32>) -> tensor<1x8x8x8xf32> {
  %none = onnx.none
  %we = onnx.initializer "we" = dense<0.5> : tensor<48x8x1x1xf32>
  %wd = onnx.initializer "wd" = dense<0.5> : tensor<48x1x3x3xf32>
  %wp = onnx.initializer "wp" = dense<0.5> : tensor<8x48x1x1xf32>
  %e = onnx.Conv(%x, %we, %none) {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x8x8x8xf32>, tensor<48x8x1x1xf32>, none) -> tensor<1x48x10x10xf32>
  %d = onnx.Conv(%e, %wd, %none) {group = 48 : i64} : (tensor<1x48x10x10xf32>, tensor<48x1x3x3xf32>, none) -> tensor<1x48x8x8xf32>
  %y = onnx.Conv(%d, %wp, %none) : (tensor<1x48x8x8xf32>, tensor<8x48x1x1xf32>, none) -> tensor<1x8x8x8xf32>
  return %y : tensor<1x8x8x8xf32>
}
func.func @expand_depthwise_only(%x: tensor<1x8x8x8xf32>) -> tensor<1x48x8x8xf32> {
  %none = onnx.none
  %we = onnx.initializer "we" = dense<0.5> : tensor<48x8x1x1xf32>
  %wd = onnx.initializer "wd" = dense<0.5> : tensor<48x1x3x3xf32>
  %e = onnx.Conv(%x, %we, %none) {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x8x8x8xf32>, tensor<48x8x1x1xf32>, none) -> tensor<1x48x10x10xf32>
  %d = onnx.Conv(%e, %wd, %none) {group = 48 : i64} : (tensor<1x48x10x10xf32>, tensor<48x1x3x3xf32>, none) -> tensor<1x48x8x8xf32>
  return %d : tensor<1x48x8x8xf32>
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
