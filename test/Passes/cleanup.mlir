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

// -----

// No-ops: a Reshape to the same static shape, an identity Transpose, a
// Transpose undoing the one before it, a Cast to the same type. Duplicates:
// two Relu of one input (different node names) become one; a Reshape that
// changes the shape and a Cast that changes the type stay.
// CHECK-LABEL: func.func @no_ops_and_duplicates
// CHECK-SAME: (%[[X:.*]]: tensor<2x3xf32>)
// CHECK: %[[R:.*]] = onnx.Relu(%[[X]]) {onnx.name = "first"}
// CHECK-NOT: onnx.Relu
// CHECK: %[[S:.*]] = onnx.Add(%[[R]], %[[R]])
// CHECK: onnx.Reshape(%[[S]]
// CHECK: onnx.node "Cast"
// CHECK-NOT: onnx.Transpose
func.func @no_ops_and_duplicates(%x: tensor<2x3xf32>) -> (tensor<3x2xf32>, tensor<2x3xf64>) {
  %shape = onnx.initializer "shape" = dense<[2, 3]> : tensor<2xi64>
  %shape2 = onnx.initializer "shape2" = dense<[3, 2]> : tensor<2xi64>
  %r0 = onnx.Reshape(%x, %shape) : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<2x3xf32>
  %t0 = onnx.Transpose(%r0) {perm = array<i64: 0, 1>} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %t1 = onnx.Transpose(%t0) {perm = array<i64: 1, 0>} : (tensor<2x3xf32>) -> tensor<3x2xf32>
  %t2 = onnx.Transpose(%t1) {perm = array<i64: 1, 0>} : (tensor<3x2xf32>) -> tensor<2x3xf32>
  %c = onnx.node "Cast"(%t2) {node_attrs = {to = 1 : i64}} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %a = onnx.Relu(%c) {onnx.name = "first"} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %b = onnx.Relu(%c) {onnx.name = "second"} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %s = onnx.Add(%a, %b) : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %y = onnx.Reshape(%s, %shape2) : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<3x2xf32>
  %d = onnx.node "Cast"(%s) {node_attrs = {to = 11 : i64}} : (tensor<2x3xf32>) -> tensor<2x3xf64>
  return %y, %d : tensor<3x2xf32>, tensor<2x3xf64>
}

// -----

// Pad by zeros is a no-op, even when its type forgot the shape.
// CHECK-LABEL: func.func @zero_pad
// CHECK-NOT: onnx.Pad
// CHECK: onnx.Relu(%arg0)
func.func @zero_pad(%x: tensor<1x2x4x4xf32>) -> tensor<?x?x?x?xf32> {
  %none = onnx.none
  %pads = onnx.initializer "pads" = dense<0> : tensor<8xi64>
  %p = onnx.Pad(%x, %pads, %none, %none) : (tensor<1x2x4x4xf32>, tensor<8xi64>, none, none) -> tensor<?x?x?x?xf32>
  %r = onnx.Relu(%p) : (tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32>
  return %r : tensor<?x?x?x?xf32>
}

// -----

// A graph output keeps its declared type: the Pad stays.
// CHECK-LABEL: func.func @zero_pad_output
// CHECK: onnx.Pad
func.func @zero_pad_output(%x: tensor<1x2x4x4xf32>) -> tensor<?x?x?x?xf32> {
  %none = onnx.none
  %pads = onnx.initializer "pads" = dense<0> : tensor<8xi64>
  %p = onnx.Pad(%x, %pads, %none, %none) : (tensor<1x2x4x4xf32>, tensor<8xi64>, none, none) -> tensor<?x?x?x?xf32>
  return %p : tensor<?x?x?x?xf32>
}

// -----

// Non-zero pads are not a no-op.
// CHECK-LABEL: func.func @nonzero_pad
// CHECK: onnx.Pad
func.func @nonzero_pad(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x6x6xf32> {
  %none = onnx.none
  %pads = onnx.initializer "pads" = dense<[0, 0, 1, 1, 0, 0, 1, 1]> : tensor<8xi64>
  %p = onnx.Pad(%x, %pads, %none, %none) : (tensor<1x2x4x4xf32>, tensor<8xi64>, none, none) -> tensor<1x2x6x6xf32>
  %r = onnx.Relu(%p) : (tensor<1x2x6x6xf32>) -> tensor<1x2x6x6xf32>
  return %r : tensor<1x2x6x6xf32>
}
