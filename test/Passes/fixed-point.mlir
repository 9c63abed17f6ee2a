// RUN: refold-opt %s -split-input-file --pass-pipeline='builtin.module(func.func(onnx-fixed-point{pipeline="onnx-merge-parallel,onnx-merge-sequential"}))' | FileCheck %s
// RUN: refold-opt %s -split-input-file --pass-pipeline='builtin.module(func.func(onnx-fixed-point{pipeline="onnx-merge-parallel,onnx-merge-sequential" max-rounds=1}))' -verify-diagnostics | FileCheck %s --check-prefix=ONE

// DBB's 1x1 -> 3x3 branch beside a 3x3: with the parallel merge first in
// the round, the sum merges only after the sequential merge, one round
// later; the third round changes nothing. With one round the warning says
// the function was still changing.
// CHECK-LABEL: func.func @needs_two_rounds
// CHECK-COUNT-1: onnx.Conv
// CHECK-NOT: onnx.Conv
// CHECK-NOT: onnx.Add
// ONE-LABEL: func.func @needs_two_rounds
// ONE-COUNT-2: onnx.Conv
// ONE: onnx.Add
// expected-warning @+1 {{onnx-fixed-point: still changing after 1 rounds}}
func.func @needs_two_rounds(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %none = onnx.none
  %w3 = onnx.initializer "w3" = dense<0.5> : tensor<2x2x3x3xf32>
  %w1 = onnx.initializer "w1" = dense<2.0> : tensor<2x2x1x1xf32>
  %wk = onnx.initializer "wk" = dense<-0.25> : tensor<2x2x3x3xf32>
  %a = onnx.Conv(%x, %w3, %none) {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x2x4x4xf32>, tensor<2x2x3x3xf32>, none) -> tensor<1x2x4x4xf32>
  %m = onnx.Conv(%x, %w1, %none) : (tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>, none) -> tensor<1x2x4x4xf32>
  %b = onnx.Conv(%m, %wk, %none) {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x2x4x4xf32>, tensor<2x2x3x3xf32>, none) -> tensor<1x2x4x4xf32>
  %y = onnx.Add(%a, %b) : (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  return %y : tensor<1x2x4x4xf32>
}

// -----

// Nothing to do: one round, no warning.
// CHECK-LABEL: func.func @already_fixed
// ONE-LABEL: func.func @already_fixed
func.func @already_fixed(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %r = onnx.Relu(%x) : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  return %r : tensor<1x2x4x4xf32>
}
