// RUN: refold-opt %s -split-input-file --pass-pipeline='builtin.module(func.func(onnx-merge-concat{merge-policy=always}))' | FileCheck %s
// RUN: refold-opt %s -split-input-file --pass-pipeline='builtin.module(func.func(onnx-merge-concat))' | FileCheck %s --check-prefix=PROFIT

// Two 3x3 convs of x concatenated: one conv with 2 + 1 stacked filters.
// CHECK-LABEL: func.func @stack
// CHECK: %[[C:.*]] = onnx.Conv(%arg0, %{{.*}}, %{{.*}}) {kernel_shape = array<i64: 3, 3>, onnx.outputs = ["cat"], pads = array<i64: 1, 1, 1, 1>} : (tensor<1x2x4x4xf32>, tensor<3x2x3x3xf32>, tensor<3xf32>) -> tensor<1x3x4x4xf32>
// CHECK-NOT: onnx.Concat
// CHECK: return %[[C]]
// PROFIT-LABEL: func.func @stack
// PROFIT-NOT: onnx.Concat
func.func @stack(%x: tensor<1x2x4x4xf32>) -> tensor<1x3x4x4xf32> {
  %none = onnx.none
  %wa = onnx.initializer "wa" = dense<1.0> : tensor<2x2x3x3xf32>
  %wb = onnx.initializer "wb" = dense<2.0> : tensor<1x2x3x3xf32>
  %bb = onnx.initializer "bb" = dense<5.0> : tensor<1xf32>
  %a = onnx.Conv(%x, %wa, %none) {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x2x4x4xf32>, tensor<2x2x3x3xf32>, none) -> tensor<1x2x4x4xf32>
  %b = onnx.Conv(%x, %wb, %bb) {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x2x4x4xf32>, tensor<1x2x3x3xf32>, tensor<1xf32>) -> tensor<1x1x4x4xf32>
  %c = onnx.Concat(%a, %b) {axis = 1 : i64, onnx.outputs = ["cat"]} : (tensor<1x2x4x4xf32>, tensor<1x1x4x4xf32>) -> tensor<1x3x4x4xf32>
  return %c : tensor<1x3x4x4xf32>
}

// -----

// Only the adjacent convs on x merge; the identity input stays (VoVNet OSA).
// A 1x1 next to a 3x3 would cost 9x its MACs: the profitable policy keeps it.
// CHECK-LABEL: func.func @partial
// CHECK: %[[M:.*]] = onnx.Conv(%arg0
// CHECK: onnx.Concat(%arg0, %[[M]])
// PROFIT-LABEL: func.func @partial
// PROFIT: onnx.Concat(%arg0, %{{.*}}, %{{.*}})
func.func @partial(%x: tensor<1x16x4x4xf32>) -> tensor<1x48x4x4xf32> {
  %none = onnx.none
  %wa = onnx.initializer "wa" = dense<1.0> : tensor<16x16x3x3xf32>
  %wb = onnx.initializer "wb" = dense<1.0> : tensor<16x16x1x1xf32>
  %a = onnx.Conv(%x, %wa, %none) {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x16x4x4xf32>, tensor<16x16x3x3xf32>, none) -> tensor<1x16x4x4xf32>
  %b = onnx.Conv(%x, %wb, %none) : (tensor<1x16x4x4xf32>, tensor<16x16x1x1xf32>, none) -> tensor<1x16x4x4xf32>
  %c = onnx.Concat(%x, %a, %b) {axis = 1 : i64} : (tensor<1x16x4x4xf32>, tensor<1x16x4x4xf32>, tensor<1x16x4x4xf32>) -> tensor<1x48x4x4xf32>
  return %c : tensor<1x48x4x4xf32>
}

// -----

// Refused: different strides; a concat along the spatial axis.
// CHECK-LABEL: func.func @refusals
// CHECK-COUNT-2: onnx.Concat
func.func @refusals(%x: tensor<1x2x4x4xf32>) -> (tensor<1x2x2x2xf32>, tensor<1x1x8x4xf32>) {
  %none = onnx.none
  %w = onnx.initializer "w" = dense<1.0> : tensor<1x2x1x1xf32>
  %a = onnx.Conv(%x, %w, %none) {strides = array<i64: 2, 2>} : (tensor<1x2x4x4xf32>, tensor<1x2x1x1xf32>, none) -> tensor<1x1x2x2xf32>
  %b = onnx.Conv(%x, %w, %none) {pads = array<i64: 0, 0, 1, 1>, strides = array<i64: 3, 3>} : (tensor<1x2x4x4xf32>, tensor<1x2x1x1xf32>, none) -> tensor<1x1x2x2xf32>
  %c = onnx.Concat(%a, %b) {axis = 1 : i64} : (tensor<1x1x2x2xf32>, tensor<1x1x2x2xf32>) -> tensor<1x2x2x2xf32>
  %d = onnx.Conv(%x, %w, %none) : (tensor<1x2x4x4xf32>, tensor<1x2x1x1xf32>, none) -> tensor<1x1x4x4xf32>
  %e = onnx.Conv(%x, %w, %none) : (tensor<1x2x4x4xf32>, tensor<1x2x1x1xf32>, none) -> tensor<1x1x4x4xf32>
  %f = onnx.Concat(%d, %e) {axis = 2 : i64} : (tensor<1x1x4x4xf32>, tensor<1x1x4x4xf32>) -> tensor<1x1x8x4xf32>
  return %c, %f : tensor<1x2x2x2xf32>, tensor<1x1x8x4xf32>
}
