// RUN: refold-opt %s -split-input-file --pass-pipeline='builtin.module(func.func(onnx-fold-affine))' | FileCheck %s

// (conv(x) * [2, 3]) folds into the weight, then + 1 and - [1, 2] into the bias.
// CHECK-LABEL: func.func @mul_add_sub
// CHECK: %[[C:.*]] = onnx.Conv(%arg0, %{{.*}}, %{{.*}}) {onnx.outputs = ["out"]}
// CHECK-NOT: onnx.Mul
// CHECK-NOT: onnx.Add
// CHECK-NOT: onnx.Sub
// CHECK: return %[[C]]
func.func @mul_add_sub(%x: tensor<1x1x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %none = onnx.none
  %w = onnx.initializer "w" = dense<1.0> : tensor<2x1x1x1xf32>
  %s = onnx.initializer "s" = dense<[[[2.0]], [[3.0]]]> : tensor<2x1x1xf32>
  %one = onnx.initializer "one" = dense<1.0> : tensor<f32>
  %t = onnx.initializer "t" = dense<[[[[1.0]], [[2.0]]]]> : tensor<1x2x1x1xf32>
  %c = onnx.Conv(%x, %w, %none) : (tensor<1x1x4x4xf32>, tensor<2x1x1x1xf32>, none) -> tensor<1x2x4x4xf32>
  %m = onnx.Mul(%c, %s) : (tensor<1x2x4x4xf32>, tensor<2x1x1xf32>) -> tensor<1x2x4x4xf32>
  %a = onnx.Add(%one, %m) : (tensor<f32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %y = onnx.Sub(%a, %t) {onnx.outputs = ["out"]} : (tensor<1x2x4x4xf32>, tensor<1x2x1x1xf32>) -> tensor<1x2x4x4xf32>
  return %y : tensor<1x2x4x4xf32>
}

// -----

// Refused: a constant varying along a spatial axis; a constant divided by the output.
// CHECK-LABEL: func.func @refusals
// CHECK: onnx.Mul
// CHECK: onnx.Div
func.func @refusals(%x: tensor<1x1x2x2xf32>) -> (tensor<1x1x2x2xf32>, tensor<1x1x2x2xf32>) {
  %none = onnx.none
  %w = onnx.initializer "w" = dense<1.0> : tensor<1x1x1x1xf32>
  %row = onnx.initializer "row" = dense<[1.0, 2.0]> : tensor<2xf32>
  %two = onnx.initializer "two" = dense<2.0> : tensor<f32>
  %c = onnx.Conv(%x, %w, %none) : (tensor<1x1x2x2xf32>, tensor<1x1x1x1xf32>, none) -> tensor<1x1x2x2xf32>
  %m = onnx.Mul(%c, %row) : (tensor<1x1x2x2xf32>, tensor<2xf32>) -> tensor<1x1x2x2xf32>
  %d = onnx.Conv(%x, %w, %none) : (tensor<1x1x2x2xf32>, tensor<1x1x1x1xf32>, none) -> tensor<1x1x2x2xf32>
  %q = onnx.Div(%two, %d) : (tensor<f32>, tensor<1x1x2x2xf32>) -> tensor<1x1x2x2xf32>
  return %m, %q : tensor<1x1x2x2xf32>, tensor<1x1x2x2xf32>
}

// -----

// A zero Pad of the spatial axes becomes the Conv's padding; a reflect Pad does not.
// CHECK-LABEL: func.func @pads
// CHECK: onnx.Conv(%arg0, %{{.*}}, %{{.*}}) {pads = array<i64: 2, 1, 1, 1>}
// CHECK: onnx.Pad
// CHECK: onnx.Conv
func.func @pads(%x: tensor<1x1x4x4xf32>) -> (tensor<1x1x5x4xf32>, tensor<1x1x6x6xf32>) {
  %none = onnx.none
  %w = onnx.initializer "w" = dense<1.0> : tensor<1x1x3x3xf32>
  %p = onnx.initializer "p" = dense<[0, 0, 1, 0, 0, 0, 0, 0]> : tensor<8xi64>
  %padded = onnx.Pad(%x, %p, %none, %none) : (tensor<1x1x4x4xf32>, tensor<8xi64>, none, none) -> tensor<1x1x5x4xf32>
  %c = onnx.Conv(%padded, %w, %none) {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x1x5x4xf32>, tensor<1x1x3x3xf32>, none) -> tensor<1x1x5x4xf32>
  %q = onnx.initializer "q" = dense<[0, 0, 2, 2, 0, 0, 2, 2]> : tensor<8xi64>
  %r = onnx.Pad(%x, %q, %none, %none) {mode = "reflect"} : (tensor<1x1x4x4xf32>, tensor<8xi64>, none, none) -> tensor<1x1x8x8xf32>
  %d = onnx.Conv(%r, %w, %none) : (tensor<1x1x8x8xf32>, tensor<1x1x3x3xf32>, none) -> tensor<1x1x6x6xf32>
  return %c, %d : tensor<1x1x5x4xf32>, tensor<1x1x6x6xf32>
}

// -----

// A layer scale after a channels-last Linear (N-D MatMul + bias Add) folds
// along the last axis: W' = W * g, b' = b * g = [2, 4]. A second constant
// Add joins the bias; the MatMul's own bias Add stays as it is.
// CHECK-LABEL: func.func @channels_last
// CHECK-DAG: onnx.initializer "w_folded_bias" = dense<[3.000000e+00, 5.000000e+00]> : tensor<2xf32>
// CHECK: %[[M:.*]] = onnx.MatMul(%arg0, %{{.*}})
// CHECK: onnx.Add(%[[M]], %{{.*}}) {onnx.outputs = ["y"]}
// CHECK-NOT: onnx.Mul
func.func @channels_last(%x: tensor<1x4x4x3xf32>) -> tensor<1x4x4x2xf32> {
  %w = onnx.initializer "w" = dense<1.0> : tensor<3x2xf32>
  %b = onnx.initializer "b" = dense<1.0> : tensor<2xf32>
  %g = onnx.initializer "g" = dense<[2.0, 4.0]> : tensor<2xf32>
  %one = onnx.initializer "one" = dense<1.0> : tensor<f32>
  %m = onnx.MatMul(%x, %w) : (tensor<1x4x4x3xf32>, tensor<3x2xf32>) -> tensor<1x4x4x2xf32>
  %a = onnx.Add(%b, %m) : (tensor<2xf32>, tensor<1x4x4x2xf32>) -> tensor<1x4x4x2xf32>
  %s = onnx.Mul(%a, %g) : (tensor<1x4x4x2xf32>, tensor<2xf32>) -> tensor<1x4x4x2xf32>
  %y = onnx.Add(%s, %one) {onnx.outputs = ["y"]} : (tensor<1x4x4x2xf32>, tensor<f32>) -> tensor<1x4x4x2xf32>
  return %y : tensor<1x4x4x2xf32>
}

// -----

// Per-channel Mul and Add before a conv fold forward: W' = W * s[i],
// b' = b + sum W * t[i]. Unpadded, so exact without a border map.
// W = 1 (2x2x1x1), s = [2, 3], t = [1, -1]: W' rows [2, 3], b' = [0, 0] + [1 - 1].
// CHECK-LABEL: func.func @before_conv
// CHECK-DAG: %[[W:.*]] = onnx.initializer "{{.*}}" = dense<{{\[\[\[\[}}2.000000e+00]], {{\[\[}}3.000000e+00]]], {{\[\[\[}}2.000000e+00]], {{\[\[}}3.000000e+00]]]]> : tensor<2x2x1x1xf32>
// CHECK-DAG: %[[B:.*]] = onnx.initializer "{{.*}}" = dense<0.000000e+00> : tensor<2xf32>
// CHECK-NOT: onnx.Mul
// CHECK-NOT: onnx.Add
// CHECK: onnx.Conv(%arg0, %[[W]], %[[B]])
func.func @before_conv(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %none = onnx.none
  %w = onnx.initializer "w" = dense<1.0> : tensor<2x2x1x1xf32>
  %s = onnx.initializer "s" = dense<[[[2.0]], [[3.0]]]> : tensor<2x1x1xf32>
  %t = onnx.initializer "t" = dense<[[[1.0]], [[-1.0]]]> : tensor<2x1x1xf32>
  %m = onnx.Mul(%x, %s) : (tensor<1x2x4x4xf32>, tensor<2x1x1xf32>) -> tensor<1x2x4x4xf32>
  %a = onnx.Add(%m, %t) : (tensor<1x2x4x4xf32>, tensor<2x1x1xf32>) -> tensor<1x2x4x4xf32>
  %c = onnx.Conv(%a, %w, %none) : (tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>, none) -> tensor<1x2x4x4xf32>
  return %c : tensor<1x2x4x4xf32>
}

// -----

// A scale before a zero-padding conv keeps the zeros zero: no border map.
// CHECK-LABEL: func.func @scale_before_padded_conv
// CHECK-NOT: onnx.Mul
// CHECK: onnx.Conv(%arg0
// CHECK-NOT: onnx.Add
func.func @scale_before_padded_conv(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %none = onnx.none
  %w = onnx.initializer "w" = dense<1.0> : tensor<2x2x3x3xf32>
  %s = onnx.initializer "s" = dense<[[[2.0]], [[3.0]]]> : tensor<2x1x1xf32>
  %m = onnx.Mul(%s, %x) : (tensor<2x1x1xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %c = onnx.Conv(%m, %w, %none) {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x2x4x4xf32>, tensor<2x2x3x3xf32>, none) -> tensor<1x2x4x4xf32>
  return %c : tensor<1x2x4x4xf32>
}

// -----

// A shift before a zero-padding conv: the padded zeros would have had to be
// -t, so a constant border map corrects the conv's border.
// CHECK-LABEL: func.func @shift_before_padded_conv
// CHECK: %[[C:.*]] = onnx.Conv(%arg0
// CHECK: onnx.Add(%[[C]], %{{.*}}) : (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>)
func.func @shift_before_padded_conv(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %none = onnx.none
  %w = onnx.initializer "w" = dense<1.0> : tensor<2x2x3x3xf32>
  %t = onnx.initializer "t" = dense<[[[1.0]], [[2.0]]]> : tensor<2x1x1xf32>
  %a = onnx.Sub(%x, %t) : (tensor<1x2x4x4xf32>, tensor<2x1x1xf32>) -> tensor<1x2x4x4xf32>
  %c = onnx.Conv(%a, %w, %none) {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x2x4x4xf32>, tensor<2x2x3x3xf32>, none) -> tensor<1x2x4x4xf32>
  return %c : tensor<1x2x4x4xf32>
}

// -----

// The scaled tensor has another user. Refused.
// CHECK-LABEL: func.func @before_conv_two_users
// CHECK: onnx.Mul
// CHECK: onnx.Conv
func.func @before_conv_two_users(%x: tensor<1x2x4x4xf32>) -> (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) {
  %none = onnx.none
  %w = onnx.initializer "w" = dense<1.0> : tensor<2x2x1x1xf32>
  %s = onnx.initializer "s" = dense<[[[2.0]], [[3.0]]]> : tensor<2x1x1xf32>
  %m = onnx.Mul(%x, %s) : (tensor<1x2x4x4xf32>, tensor<2x1x1xf32>) -> tensor<1x2x4x4xf32>
  %c = onnx.Conv(%m, %w, %none) : (tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>, none) -> tensor<1x2x4x4xf32>
  return %c, %m : tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>
}

// -----

// A constant divided by the input is not affine. Refused.
// CHECK-LABEL: func.func @constant_over_input
// CHECK: onnx.Div
// CHECK: onnx.Conv
func.func @constant_over_input(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %none = onnx.none
  %w = onnx.initializer "w" = dense<1.0> : tensor<2x2x1x1xf32>
  %s = onnx.initializer "s" = dense<[[[2.0]], [[3.0]]]> : tensor<2x1x1xf32>
  %m = onnx.Div(%s, %x) : (tensor<2x1x1xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %c = onnx.Conv(%m, %w, %none) : (tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>, none) -> tensor<1x2x4x4xf32>
  return %c : tensor<1x2x4x4xf32>
}

// -----

// Per-feature Mul before a Gemm: B's rows are scaled.
// CHECK-LABEL: func.func @before_gemm
// CHECK-NOT: onnx.Mul
// CHECK: onnx.Gemm(%arg0
func.func @before_gemm(%x: tensor<3x2xf32>) -> tensor<3x4xf32> {
  %b = onnx.initializer "b" = dense<1.0> : tensor<2x4xf32>
  %c = onnx.initializer "c" = dense<0.5> : tensor<4xf32>
  %s = onnx.initializer "s" = dense<[2.0, 3.0]> : tensor<2xf32>
  %m = onnx.Mul(%x, %s) : (tensor<3x2xf32>, tensor<2xf32>) -> tensor<3x2xf32>
  %y = onnx.Gemm(%m, %b, %c) : (tensor<3x2xf32>, tensor<2x4xf32>, tensor<4xf32>) -> tensor<3x4xf32>
  return %y : tensor<3x4xf32>
}

// -----

// The attribute form of Pad (opsets 2-10) folds into the conv too.
// CHECK-LABEL: func.func @attribute_pad
// CHECK-NOT: "Pad"
// CHECK: onnx.Conv(%arg0, {{.*}}pads = array<i64: 1, 2, 1, 2>
func.func @attribute_pad(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x4x6xf32> {
  %none = onnx.none
  %w = onnx.initializer "w" = dense<1.0> : tensor<2x2x3x3xf32>
  %p = onnx.node "Pad"(%x) {node_attrs = {mode = "constant", pads = array<i64: 0, 0, 1, 2, 0, 0, 1, 2>, value = 0.0 : f32}} : (tensor<1x2x4x4xf32>) -> tensor<1x2x6x8xf32>
  %c = onnx.Conv(%p, %w, %none) : (tensor<1x2x6x8xf32>, tensor<2x2x3x3xf32>, none) -> tensor<1x2x4x6xf32>
  return %c : tensor<1x2x4x6xf32>
}

// -----

// ... but not with a non-zero value. Refused.
// CHECK-LABEL: func.func @attribute_pad_value
// CHECK: "Pad"
func.func @attribute_pad_value(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %none = onnx.none
  %w = onnx.initializer "w" = dense<1.0> : tensor<2x2x3x3xf32>
  %p = onnx.node "Pad"(%x) {node_attrs = {mode = "constant", pads = array<i64: 0, 0, 1, 1, 0, 0, 1, 1>, value = 1.0 : f32}} : (tensor<1x2x4x4xf32>) -> tensor<1x2x6x6xf32>
  %c = onnx.Conv(%p, %w, %none) : (tensor<1x2x6x6xf32>, tensor<2x2x3x3xf32>, none) -> tensor<1x2x4x4xf32>
  return %c : tensor<1x2x4x4xf32>
}

// -----

// ACNet's crop form: Slice(Pad(x)) removing only padding is a smaller zero
// Pad, so the 1x3 conv pads x itself (rows 1 and 1, columns 1 - 1 = 0).
// CHECK-LABEL: func.func @slice_of_pad
// CHECK: onnx.Conv(%arg0, %{{.*}}, %{{.*}}) {pads = array<i64: 1, 0, 1, 0>}
// CHECK-NOT: onnx.Slice
func.func @slice_of_pad(%x: tensor<1x1x4x4xf32>) -> tensor<1x1x6x4xf32> {
  %none = onnx.none
  %w = onnx.initializer "w" = dense<1.0> : tensor<1x1x1x3xf32>
  %pads = onnx.initializer "pads" = dense<[0, 0, 1, 1, 0, 0, 1, 1]> : tensor<8xi64>
  %starts = onnx.initializer "starts" = dense<1> : tensor<1xi64>
  %ends = onnx.initializer "ends" = dense<-1> : tensor<1xi64>
  %axes = onnx.initializer "axes" = dense<3> : tensor<1xi64>
  %p = onnx.Pad(%x, %pads, %none, %none) : (tensor<1x1x4x4xf32>, tensor<8xi64>, none, none) -> tensor<1x1x6x6xf32>
  %s = onnx.Slice(%p, %starts, %ends, %axes, %none) : (tensor<1x1x6x6xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, none) -> tensor<1x1x6x4xf32>
  %y = onnx.Conv(%s, %w, %none) : (tensor<1x1x6x4xf32>, tensor<1x1x1x3xf32>, none) -> tensor<1x1x6x4xf32>
  return %y : tensor<1x1x6x4xf32>
}

// -----

// Left whole: a GELU (x * (1 + erf(x / sqrt 2)) * 0.5) whose 0.5 could fold
// into the next conv; runtimes fuse the chain only as it is. A Slice that
// cuts into the data is not padding.
// CHECK-LABEL: func.func @gelu_and_cut
// CHECK: onnx.Erf
// CHECK: onnx.Mul
// CHECK: %[[H:.*]] = onnx.Mul
// CHECK: onnx.Conv(%[[H]]
// CHECK: onnx.Slice
func.func @gelu_and_cut(%x: tensor<1x1x4x4xf32>) -> (tensor<1x1x4x4xf32>, tensor<1x1x6x2xf32>) {
  %none = onnx.none
  %w = onnx.initializer "w" = dense<2.0> : tensor<1x1x1x1xf32>
  %w3 = onnx.initializer "w3" = dense<1.0> : tensor<1x1x1x3xf32>
  %sqrt2 = onnx.initializer "sqrt2" = dense<1.41421354> : tensor<f32>
  %one = onnx.initializer "one" = dense<1.0> : tensor<f32>
  %half = onnx.initializer "half" = dense<0.5> : tensor<f32>
  %d = onnx.Div(%x, %sqrt2) : (tensor<1x1x4x4xf32>, tensor<f32>) -> tensor<1x1x4x4xf32>
  %e = onnx.Erf(%d) : (tensor<1x1x4x4xf32>) -> tensor<1x1x4x4xf32>
  %a = onnx.Add(%e, %one) : (tensor<1x1x4x4xf32>, tensor<f32>) -> tensor<1x1x4x4xf32>
  %m = onnx.Mul(%x, %a) : (tensor<1x1x4x4xf32>, tensor<1x1x4x4xf32>) -> tensor<1x1x4x4xf32>
  %h = onnx.Mul(%m, %half) : (tensor<1x1x4x4xf32>, tensor<f32>) -> tensor<1x1x4x4xf32>
  %y = onnx.Conv(%h, %w, %none) : (tensor<1x1x4x4xf32>, tensor<1x1x1x1xf32>, none) -> tensor<1x1x4x4xf32>
  %pads = onnx.initializer "pads" = dense<[0, 0, 1, 1, 0, 0, 1, 1]> : tensor<8xi64>
  %starts = onnx.initializer "starts" = dense<2> : tensor<1xi64>
  %ends = onnx.initializer "ends" = dense<6> : tensor<1xi64>
  %axes = onnx.initializer "axes" = dense<3> : tensor<1xi64>
  %p = onnx.Pad(%x, %pads, %none, %none) : (tensor<1x1x4x4xf32>, tensor<8xi64>, none, none) -> tensor<1x1x6x6xf32>
  %s = onnx.Slice(%p, %starts, %ends, %axes, %none) : (tensor<1x1x6x6xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, none) -> tensor<1x1x6x4xf32>
  %z = onnx.Conv(%s, %w3, %none) : (tensor<1x1x6x4xf32>, tensor<1x1x1x3xf32>, none) -> tensor<1x1x6x2xf32>
  return %y, %z : tensor<1x1x4x4xf32>, tensor<1x1x6x2xf32>
}
