// RUN: refold-opt %s -split-input-file --pass-pipeline='builtin.module(func.func(onnx-merge-parallel))' | FileCheck %s

// RepVGG: 3x3 (pads 1) + 1x1 (pads 0) + identity -> one 3x3 conv. The 1x1
// and the identity land on the centre tap: 1 + 2 + 1 = 4 at (1, 1).
// CHECK-LABEL: func.func @repvgg
// CHECK-DAG: %[[W:.*]] = onnx.initializer "sum2_weight" = dense<{{\[\[\[\[}}1.000000e+00, 1.000000e+00, 1.000000e+00], [1.000000e+00, 4.000000e+00, 1.000000e+00], [1.000000e+00, 1.000000e+00, 1.000000e+00]]]]>
// CHECK-DAG: %[[B:.*]] = onnx.initializer "sum2_bias" = dense<3.000000e+00> : tensor<1xf32>
// CHECK: %[[C:.*]] = onnx.Conv(%arg0, %[[W]], %[[B]]) {kernel_shape = array<i64: 3, 3>, onnx.name = "conv3", onnx.outputs = ["sum2"], pads = array<i64: 1, 1, 1, 1>}
// CHECK-NEXT: return %[[C]]
func.func @repvgg(%x: tensor<1x1x4x4xf32>) -> tensor<1x1x4x4xf32> {
  %w3 = onnx.initializer "w3" = dense<1.0> : tensor<1x1x3x3xf32>
  %b3 = onnx.initializer "b3" = dense<1.0> : tensor<1xf32>
  %w1 = onnx.initializer "w1" = dense<2.0> : tensor<1x1x1x1xf32>
  %b1 = onnx.initializer "b1" = dense<2.0> : tensor<1xf32>
  %c3 = onnx.Conv(%x, %w3, %b3) {onnx.name = "conv3", pads = array<i64: 1, 1, 1, 1>} : (tensor<1x1x4x4xf32>, tensor<1x1x3x3xf32>, tensor<1xf32>) -> tensor<1x1x4x4xf32>
  %c1 = onnx.Conv(%x, %w1, %b1) : (tensor<1x1x4x4xf32>, tensor<1x1x1x1xf32>, tensor<1xf32>) -> tensor<1x1x4x4xf32>
  %s1 = onnx.Add(%c3, %c1) {onnx.outputs = ["sum1"]} : (tensor<1x1x4x4xf32>, tensor<1x1x4x4xf32>) -> tensor<1x1x4x4xf32>
  %s2 = onnx.Add(%x, %s1) {onnx.outputs = ["sum2"]} : (tensor<1x1x4x4xf32>, tensor<1x1x4x4xf32>) -> tensor<1x1x4x4xf32>
  return %s2 : tensor<1x1x4x4xf32>
}

// -----

// BN(identity): its scale lands on the centre tap, its shift in the bias
// (s = 4 / sqrt(3 + 1) = 2, t = 1 - 1 * 2 = -1). ACNet's 1x3 and 3x1 centre
// into the 3x3 too.
// CHECK-LABEL: func.func @acnet_bn_identity
// CHECK-COUNT-1: onnx.Conv
// CHECK-NOT: onnx.Conv
// CHECK-NOT: onnx.Add
// CHECK-NOT: onnx.BatchNormalization
func.func @acnet_bn_identity(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %none = onnx.none
  %w33 = onnx.initializer "w33" = dense<1.0> : tensor<2x2x3x3xf32>
  %w13 = onnx.initializer "w13" = dense<1.0> : tensor<2x2x1x3xf32>
  %w31 = onnx.initializer "w31" = dense<1.0> : tensor<2x2x3x1xf32>
  %g = onnx.initializer "g" = dense<4.0> : tensor<2xf32>
  %b = onnx.initializer "b" = dense<1.0> : tensor<2xf32>
  %m = onnx.initializer "m" = dense<1.0> : tensor<2xf32>
  %v = onnx.initializer "v" = dense<3.0> : tensor<2xf32>
  %a = onnx.Conv(%x, %w33, %none) {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x2x4x4xf32>, tensor<2x2x3x3xf32>, none) -> tensor<1x2x4x4xf32>
  %h = onnx.Conv(%x, %w13, %none) {pads = array<i64: 0, 1, 0, 1>} : (tensor<1x2x4x4xf32>, tensor<2x2x1x3xf32>, none) -> tensor<1x2x4x4xf32>
  %w = onnx.Conv(%x, %w31, %none) {pads = array<i64: 1, 0, 1, 0>} : (tensor<1x2x4x4xf32>, tensor<2x2x3x1xf32>, none) -> tensor<1x2x4x4xf32>
  %i = onnx.BatchNormalization(%x, %g, %b, %m, %v) {epsilon = 1.0 : f32} : (tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  %s1 = onnx.Add(%a, %h) : (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %s2 = onnx.Add(%s1, %w) : (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %s3 = onnx.Add(%s2, %i) : (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  return %s3 : tensor<1x2x4x4xf32>
}

// -----

// Refusals: different inputs; an identity around a strided conv; a 1x1 whose
// padding does not centre it in the 3x3; a branch with another user.
// CHECK-LABEL: func.func @refusals
// CHECK-COUNT-4: onnx.Add
func.func @refusals(%x: tensor<1x1x4x4xf32>, %y: tensor<1x1x4x4xf32>) -> (tensor<1x1x4x4xf32>, tensor<1x1x2x2xf32>, tensor<1x1x4x4xf32>, tensor<1x1x4x4xf32>, tensor<1x1x4x4xf32>) {
  %none = onnx.none
  %w3 = onnx.initializer "w3" = dense<1.0> : tensor<1x1x3x3xf32>
  %w1 = onnx.initializer "w1" = dense<1.0> : tensor<1x1x1x1xf32>
  %a = onnx.Conv(%x, %w3, %none) {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x1x4x4xf32>, tensor<1x1x3x3xf32>, none) -> tensor<1x1x4x4xf32>
  %b = onnx.Conv(%y, %w1, %none) : (tensor<1x1x4x4xf32>, tensor<1x1x1x1xf32>, none) -> tensor<1x1x4x4xf32>
  %r0 = onnx.Add(%a, %b) : (tensor<1x1x4x4xf32>, tensor<1x1x4x4xf32>) -> tensor<1x1x4x4xf32>
  %s = onnx.Conv(%x, %w3, %none) {pads = array<i64: 1, 1, 1, 1>, strides = array<i64: 2, 2>} : (tensor<1x1x4x4xf32>, tensor<1x1x3x3xf32>, none) -> tensor<1x1x2x2xf32>
  %p = onnx.Conv(%x, %w3, %none) {pads = array<i64: 0, 0, 0, 0>} : (tensor<1x1x4x4xf32>, tensor<1x1x3x3xf32>, none) -> tensor<1x1x2x2xf32>
  %r1 = onnx.Add(%s, %p) : (tensor<1x1x2x2xf32>, tensor<1x1x2x2xf32>) -> tensor<1x1x2x2xf32>
  %d = onnx.Conv(%x, %w3, %none) {pads = array<i64: 2, 2, 0, 0>} : (tensor<1x1x4x4xf32>, tensor<1x1x3x3xf32>, none) -> tensor<1x1x4x4xf32>
  %dd = onnx.Conv(%x, %w1, %none) : (tensor<1x1x4x4xf32>, tensor<1x1x1x1xf32>, none) -> tensor<1x1x4x4xf32>
  %r2 = onnx.Add(%d, %dd) : (tensor<1x1x4x4xf32>, tensor<1x1x4x4xf32>) -> tensor<1x1x4x4xf32>
  %e = onnx.Conv(%x, %w3, %none) {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x1x4x4xf32>, tensor<1x1x3x3xf32>, none) -> tensor<1x1x4x4xf32>
  %r3 = onnx.Add(%e, %x) : (tensor<1x1x4x4xf32>, tensor<1x1x4x4xf32>) -> tensor<1x1x4x4xf32>
  return %r0, %r1, %r2, %r3, %e : tensor<1x1x4x4xf32>, tensor<1x1x2x2xf32>, tensor<1x1x4x4xf32>, tensor<1x1x4x4xf32>, tensor<1x1x4x4xf32>
}

// -----

// DBB without BNAndPad: a 3x3 branch, a 3x3 branch carrying its border map
// (left by onnx-merge-sequential) and an AveragePool counting its padding (a
// depthwise kernel of 1/9 taps, expanded to join the dense sum). One conv and
// one Add of the summed maps remain.
// CHECK-LABEL: func.func @dbb
// CHECK-DAG: onnx.initializer "sum2_border" = {{.*}} : tensor<1x2x4x4xf32>
// CHECK: %[[C:.*]] = onnx.Conv(%arg0, %{{.*}}, %{{.*}}) {kernel_shape = array<i64: 3, 3>, onnx.name = "k3", pads = array<i64: 1, 1, 1, 1>}
// CHECK-NOT: group
// CHECK: %[[S:.*]] = onnx.Add(%[[C]], %{{.*}}) {onnx.outputs = ["sum2"]}
// CHECK-NEXT: return %[[S]]
func.func @dbb(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %none = onnx.none
  %w3 = onnx.initializer "w3" = dense<1.0> : tensor<2x2x3x3xf32>
  %map = onnx.initializer "map" = dense<4.0> : tensor<1x2x4x4xf32>
  %a = onnx.Conv(%x, %w3, %none) {onnx.name = "k3", pads = array<i64: 1, 1, 1, 1>} : (tensor<1x2x4x4xf32>, tensor<2x2x3x3xf32>, none) -> tensor<1x2x4x4xf32>
  %b = onnx.Conv(%x, %w3, %none) {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x2x4x4xf32>, tensor<2x2x3x3xf32>, none) -> tensor<1x2x4x4xf32>
  %bc = onnx.Add(%b, %map) : (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %p = onnx.AveragePool(%x) {count_include_pad = 1 : i64, kernel_shape = array<i64: 3, 3>, pads = array<i64: 1, 1, 1, 1>} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %s1 = onnx.Add(%a, %bc) : (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %s2 = onnx.Add(%s1, %p) {onnx.outputs = ["sum2"]} : (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  return %s2 : tensor<1x2x4x4xf32>
}

// -----

// Refusals: convs whose groups do not nest (2 and 3 groups of 6 channels);
// an AveragePool with count_include_pad=0 (it divides by the covered taps:
// no kernel).
// CHECK-LABEL: func.func @group_and_pool_refusals
// CHECK-COUNT-2: onnx.Add
func.func @group_and_pool_refusals(%x: tensor<1x6x4x4xf32>) -> (tensor<1x6x4x4xf32>, tensor<1x6x4x4xf32>) {
  %none = onnx.none
  %g2 = onnx.initializer "g2" = dense<1.0> : tensor<6x3x3x3xf32>
  %g3 = onnx.initializer "g3" = dense<1.0> : tensor<6x2x3x3xf32>
  %a = onnx.Conv(%x, %g2, %none) {group = 2 : i64, pads = array<i64: 1, 1, 1, 1>} : (tensor<1x6x4x4xf32>, tensor<6x3x3x3xf32>, none) -> tensor<1x6x4x4xf32>
  %b = onnx.Conv(%x, %g3, %none) {group = 3 : i64, pads = array<i64: 1, 1, 1, 1>} : (tensor<1x6x4x4xf32>, tensor<6x2x3x3xf32>, none) -> tensor<1x6x4x4xf32>
  %r0 = onnx.Add(%a, %b) : (tensor<1x6x4x4xf32>, tensor<1x6x4x4xf32>) -> tensor<1x6x4x4xf32>
  %c = onnx.Conv(%x, %g2, %none) {group = 2 : i64, pads = array<i64: 1, 1, 1, 1>} : (tensor<1x6x4x4xf32>, tensor<6x3x3x3xf32>, none) -> tensor<1x6x4x4xf32>
  %p = onnx.AveragePool(%x) {kernel_shape = array<i64: 3, 3>, pads = array<i64: 1, 1, 1, 1>} : (tensor<1x6x4x4xf32>) -> tensor<1x6x4x4xf32>
  %r1 = onnx.Add(%c, %p) : (tensor<1x6x4x4xf32>, tensor<1x6x4x4xf32>) -> tensor<1x6x4x4xf32>
  return %r0, %r1 : tensor<1x6x4x4xf32>, tensor<1x6x4x4xf32>
}

// -----

// Nested groups: a 4-group (depthwise) kernel joins a 2-group one as a
// 2-group kernel with zeros off its groups.
// CHECK-LABEL: func.func @nested_groups
// CHECK: onnx.Conv(%arg0, %{{.*}}, %{{.*}}) {group = 2 : i64
// CHECK-NOT: onnx.Add
func.func @nested_groups(%x: tensor<1x4x4x4xf32>) -> tensor<1x4x4x4xf32> {
  %none = onnx.none
  %g2 = onnx.initializer "g2" = dense<1.0> : tensor<4x2x3x3xf32>
  %g4 = onnx.initializer "g4" = dense<1.0> : tensor<4x1x3x3xf32>
  %a = onnx.Conv(%x, %g2, %none) {group = 2 : i64, pads = array<i64: 1, 1, 1, 1>} : (tensor<1x4x4x4xf32>, tensor<4x2x3x3xf32>, none) -> tensor<1x4x4x4xf32>
  %b = onnx.Conv(%x, %g4, %none) {group = 4 : i64, pads = array<i64: 1, 1, 1, 1>} : (tensor<1x4x4x4xf32>, tensor<4x1x3x3xf32>, none) -> tensor<1x4x4x4xf32>
  %r = onnx.Add(%a, %b) : (tensor<1x4x4x4xf32>, tensor<1x4x4x4xf32>) -> tensor<1x4x4x4xf32>
  return %r : tensor<1x4x4x4xf32>
}

// -----

// A residual whose input is itself a conv output (shared with the block's
// conv): the operand is read as the identity branch.
// CHECK-LABEL: func.func @residual_from_conv
// CHECK: %[[P:.*]] = onnx.Conv(%arg0
// CHECK: %[[R:.*]] = onnx.Conv(%[[P]]
// CHECK-NEXT: return %[[R]]
func.func @residual_from_conv(%x: tensor<1x1x4x4xf32>) -> tensor<1x1x4x4xf32> {
  %none = onnx.none
  %w1 = onnx.initializer "w1" = dense<1.0> : tensor<1x1x1x1xf32>
  %w3 = onnx.initializer "w3" = dense<1.0> : tensor<1x1x3x3xf32>
  %p = onnx.Conv(%x, %w1, %none) : (tensor<1x1x4x4xf32>, tensor<1x1x1x1xf32>, none) -> tensor<1x1x4x4xf32>
  %c = onnx.Conv(%p, %w3, %none) {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x1x4x4xf32>, tensor<1x1x3x3xf32>, none) -> tensor<1x1x4x4xf32>
  %r = onnx.Add(%p, %c) : (tensor<1x1x4x4xf32>, tensor<1x1x4x4xf32>) -> tensor<1x1x4x4xf32>
  return %r : tensor<1x1x4x4xf32>
}

// -----

// FastViT's RepMixer, x + s * (mixer(x) - BN(x)) with mixer = 3x3 + 1x1 +
// BN(x): one linear region of x, whatever the nesting of sums, differences
// and per-channel maps. One depthwise conv; no Sub, Mul or BN left.
// CHECK-LABEL: func.func @repmixer
// CHECK: %[[C:.*]] = onnx.Conv(%arg0, %{{.*}}, %{{.*}}) {group = 2 : i64, kernel_shape = array<i64: 3, 3>, onnx.name = "mixer3", onnx.outputs = ["out"], pads = array<i64: 1, 1, 1, 1>}
// CHECK-NOT: onnx.Sub
// CHECK-NOT: onnx.Mul
// CHECK-NOT: onnx.BatchNormalization
// CHECK-NEXT: return %[[C]]
func.func @repmixer(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %none = onnx.none
  %w3 = onnx.initializer "w3" = dense<0.5> : tensor<2x1x3x3xf32>
  %w1 = onnx.initializer "w1" = dense<2.0> : tensor<2x1x1x1xf32>
  %g = onnx.initializer "g" = dense<[2.0, 3.0]> : tensor<2xf32>
  %b = onnx.initializer "b" = dense<[0.5, -0.5]> : tensor<2xf32>
  %m = onnx.initializer "m" = dense<[1.0, 2.0]> : tensor<2xf32>
  %v = onnx.initializer "v" = dense<[3.0, 1.0]> : tensor<2xf32>
  %ls = onnx.initializer "ls" = dense<[[[0.25]], [[-1.5]]]> : tensor<2x1x1xf32>
  %c3 = onnx.Conv(%x, %w3, %none) {group = 2 : i64, onnx.name = "mixer3", pads = array<i64: 1, 1, 1, 1>} : (tensor<1x2x4x4xf32>, tensor<2x1x3x3xf32>, none) -> tensor<1x2x4x4xf32>
  %c1 = onnx.Conv(%x, %w1, %none) {group = 2 : i64} : (tensor<1x2x4x4xf32>, tensor<2x1x1x1xf32>, none) -> tensor<1x2x4x4xf32>
  %skip = onnx.BatchNormalization(%x, %g, %b, %m, %v) : (tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  %s1 = onnx.Add(%c3, %c1) : (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %mixer = onnx.Add(%s1, %skip) : (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %norm = onnx.BatchNormalization(%x, %b, %g, %v, %m) : (tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  %d = onnx.Sub(%mixer, %norm) : (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %scaled = onnx.Mul(%ls, %d) : (tensor<2x1x1xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %y = onnx.Add(%x, %scaled) {onnx.outputs = ["out"]} : (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  return %y : tensor<1x2x4x4xf32>
}

// -----

// x - conv(x): the difference negates the branch; the identity tap is 1 - 2.
// CHECK-LABEL: func.func @difference
// CHECK-DAG: onnx.initializer "out_weight" = dense<-1.000000e+00> : tensor<1x1x1x1xf32>
// CHECK-DAG: onnx.initializer "out_bias" = dense<-3.000000e+00> : tensor<1xf32>
// CHECK: onnx.Conv(%arg0
// CHECK-NOT: onnx.Sub
func.func @difference(%x: tensor<1x1x4x4xf32>) -> tensor<1x1x4x4xf32> {
  %w = onnx.initializer "w" = dense<2.0> : tensor<1x1x1x1xf32>
  %b = onnx.initializer "b" = dense<3.0> : tensor<1xf32>
  %c = onnx.Conv(%x, %w, %b) : (tensor<1x1x4x4xf32>, tensor<1x1x1x1xf32>, tensor<1xf32>) -> tensor<1x1x4x4xf32>
  %y = onnx.Sub(%x, %c) {onnx.outputs = ["out"]} : (tensor<1x1x4x4xf32>, tensor<1x1x4x4xf32>) -> tensor<1x1x4x4xf32>
  return %y : tensor<1x1x4x4xf32>
}

// -----

// Refusals: a Sub whose operands read different inputs; a branch scaled by
// a tensor that is not a constant (a graph input); a lone per-channel shift
// of one conv (nothing to merge: onnx-fold-affine's).
// CHECK-LABEL: func.func @region_refusals
// CHECK: onnx.Sub
// CHECK: onnx.Mul
// CHECK: onnx.Add
// CHECK: onnx.Add
func.func @region_refusals(%x: tensor<1x1x4x4xf32>, %y: tensor<1x1x4x4xf32>, %s: tensor<1x1x1x1xf32>) -> (tensor<1x1x4x4xf32>, tensor<1x1x4x4xf32>, tensor<1x1x4x4xf32>) {
  %none = onnx.none
  %w = onnx.initializer "w" = dense<2.0> : tensor<1x1x1x1xf32>
  %t = onnx.initializer "t" = dense<1.0> : tensor<1x1x1x1xf32>
  %a = onnx.Conv(%x, %w, %none) : (tensor<1x1x4x4xf32>, tensor<1x1x1x1xf32>, none) -> tensor<1x1x4x4xf32>
  %b = onnx.Conv(%y, %w, %none) : (tensor<1x1x4x4xf32>, tensor<1x1x1x1xf32>, none) -> tensor<1x1x4x4xf32>
  %r0 = onnx.Sub(%a, %b) : (tensor<1x1x4x4xf32>, tensor<1x1x4x4xf32>) -> tensor<1x1x4x4xf32>
  %c = onnx.Conv(%x, %w, %none) : (tensor<1x1x4x4xf32>, tensor<1x1x1x1xf32>, none) -> tensor<1x1x4x4xf32>
  %m = onnx.Mul(%c, %s) : (tensor<1x1x4x4xf32>, tensor<1x1x1x1xf32>) -> tensor<1x1x4x4xf32>
  %r1 = onnx.Add(%m, %x) : (tensor<1x1x4x4xf32>, tensor<1x1x4x4xf32>) -> tensor<1x1x4x4xf32>
  %d = onnx.Conv(%x, %w, %none) : (tensor<1x1x4x4xf32>, tensor<1x1x1x1xf32>, none) -> tensor<1x1x4x4xf32>
  %r2 = onnx.Add(%d, %t) : (tensor<1x1x4x4xf32>, tensor<1x1x1x1xf32>) -> tensor<1x1x4x4xf32>
  return %r0, %r1, %r2 : tensor<1x1x4x4xf32>, tensor<1x1x4x4xf32>, tensor<1x1x4x4xf32>
}
