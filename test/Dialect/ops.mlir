// Typed and generic ops print and parse back.
// RUN: refold-opt %s | refold-opt | FileCheck %s

// CHECK-LABEL: func.func @typed
func.func @typed(%x: tensor<1x4x8x8xf32>, %w: tensor<4x1x3x3xf32>) -> tensor<1x4x8x8xf32> {
  // CHECK: %[[NONE:.*]] = onnx.none
  %none = onnx.none
  // CHECK: onnx.Conv(%{{.*}}, %{{.*}}, %[[NONE]]) {group = 4 : i64, pads = array<i64: 1, 1, 1, 1>}
  %c = onnx.Conv(%x, %w, %none) {group = 4 : i64, pads = array<i64: 1, 1, 1, 1>} : (tensor<1x4x8x8xf32>, tensor<4x1x3x3xf32>, none) -> tensor<1x4x8x8xf32>
  // CHECK: onnx.initializer "scale" = dense<1.000000e+00> : tensor<4xf32>
  %s = onnx.initializer "scale" = dense<1.0> : tensor<4xf32>
  %b = onnx.Constant() {value = dense<0.0> : tensor<4xf32>} : () -> tensor<4xf32>
  // CHECK: onnx.BatchNormalization
  %n = onnx.BatchNormalization(%c, %s, %b, %b, %s) {epsilon = 1.0e-5 : f32} : (tensor<1x4x8x8xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<1x4x8x8xf32>
  return %n : tensor<1x4x8x8xf32>
}

// CHECK-LABEL: func.func @generic
func.func @generic(%c: tensor<i1>, %x: tensor<2xf32>) -> !onnx.type<""> {
  // CHECK: onnx.node "If"(%{{.*}}) {graph_attrs = [{attr = "then_branch"}, {attr = "else_branch"}]} : (tensor<i1>) -> !onnx.type<"">
  // CHECK-NEXT: onnx.yield %{{.*}} : tensor<2xf32>
  %r = onnx.node "If"(%c) {graph_attrs = [{attr = "then_branch"}, {attr = "else_branch"}]} : (tensor<i1>) -> !onnx.type<""> {
    onnx.yield %x : tensor<2xf32>
  }, {
    %n = onnx.node "Neg"(%x) : (tensor<2xf32>) -> tensor<2xf32>
    onnx.yield %n : tensor<2xf32>
  }
  return %r : !onnx.type<"">
}

// CHECK-LABEL: func.func @types
// CHECK-SAME: tensor<3x!onnx.string>
// CHECK-SAME: !onnx.type<"sequence_type { elem_type { tensor_type { elem_type: 1 } } }">
func.func @types(%s: tensor<3x!onnx.string>, %q: !onnx.type<"sequence_type { elem_type { tensor_type { elem_type: 1 } } }">) {
  %p = onnx.node "Custom"(%s) {domain = "x", node_attrs = {sparse = #onnx.proto<"SPARSE_TENSOR", "name: \"sparse\" type: SPARSE_TENSOR">}} : (tensor<3x!onnx.string>) -> tensor<3x!onnx.string>
  return
}
