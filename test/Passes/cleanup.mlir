// RUN: refold-opt %s -split-input-file --pass-pipeline='builtin.module(func.func(onnx-cleanup))' | FileCheck %s

// Identity, inference Dropout and dead ops go; the graph output keeps its name
// (the exporter names the returned value after the output).
// CHECK-LABEL: func.func @identity_dropout
// CHECK-SAME: (%[[X:.*]]: tensor<2xf32>)
// CHECK-NEXT: %[[R:.*]] = onnx.Relu(%[[X]])
// CHECK-NEXT: return %[[R]]
func.func @identity_dropout(%x: tensor<2xf32>) -> tensor<2xf32> {
  %none = onnx.none
  %unused = onnx.initializer "unused" = dense<1.0> : tensor<2xf32>
  %i = onnx.Identity(%x) : (tensor<2xf32>) -> tensor<2xf32>
  %d:2 = onnx.Dropout(%i, %none, %none) : (tensor<2xf32>, none, none) -> (tensor<2xf32>, none)
  %dead = onnx.Sigmoid(%d#0) : (tensor<2xf32>) -> tensor<2xf32>
  %r = onnx.Relu(%d#0) : (tensor<2xf32>) -> tensor<2xf32>
  %o = onnx.Identity(%r) : (tensor<2xf32>) -> tensor<2xf32>
  return %o : tensor<2xf32>
}

// -----

// A Dropout whose mask is used, or that may train, stays.
// CHECK-LABEL: func.func @dropout_kept
// CHECK: onnx.Dropout(%arg0, %{{.*}}, %arg1)
// CHECK: onnx.Dropout(%arg0
func.func @dropout_kept(%x: tensor<2xf32>, %train: tensor<i1>) -> (tensor<2xf32>, tensor<2xf32>, tensor<2xi1>) {
  %none = onnx.none
  %a:2 = onnx.Dropout(%x, %none, %train) : (tensor<2xf32>, none, tensor<i1>) -> (tensor<2xf32>, none)
  %b:2 = onnx.Dropout(%x, %none, %none) : (tensor<2xf32>, none, none) -> (tensor<2xf32>, tensor<2xi1>)
  return %a#0, %b#0, %b#1 : tensor<2xf32>, tensor<2xf32>, tensor<2xi1>
}

// -----

// A constant false training_mode is inference.
// CHECK-LABEL: func.func @dropout_false
// CHECK-NOT: onnx.Dropout
func.func @dropout_false(%x: tensor<2xf32>) -> tensor<2xf32> {
  %none = onnx.none
  %f = onnx.initializer "f" = dense<false> : tensor<i1>
  %a:2 = onnx.Dropout(%x, %none, %f) : (tensor<2xf32>, none, tensor<i1>) -> (tensor<2xf32>, none)
  return %a#0 : tensor<2xf32>
}

// -----

// An Identity that changes the static type is not removed silently.
// CHECK-LABEL: func.func @identity_type_change
// CHECK: onnx.Identity
func.func @identity_type_change(%x: tensor<?xf32>) -> tensor<2xf32> {
  %i = onnx.Identity(%x) : (tensor<?xf32>) -> tensor<2xf32>
  return %i : tensor<2xf32>
}
