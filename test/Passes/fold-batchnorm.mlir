// RUN: refold-opt %s -split-input-file --pass-pipeline='builtin.module(func.func(onnx-fold-batchnorm))' | FileCheck %s
// RUN: refold-opt %s -split-input-file --pass-pipeline='builtin.module(func.func(onnx-fold-batchnorm{lower-unfolded=true}))' | FileCheck %s --check-prefix=LOWER

// s = scale / sqrt(var + eps) = [4/2, 3/3] = [2, 1]; W' = W * s; b' = (b - mean) * s + B.
// The BatchNorm's output statistics (mean beta, deviation |scale|) stay with
// the conv for data-free quantization.
// CHECK-LABEL: func.func @conv
// CHECK-DAG: %[[W:.*]] = onnx.initializer "w_folded" = dense<{{\[\[\[\[}}2.000000e+00]]], {{\[\[\[}}1.000000e+00]]]]> : tensor<2x1x1x1xf32>
// CHECK-DAG: %[[B:.*]] = onnx.initializer "w_folded_bias" = dense<[5.000000e-01, 2.000000e+00]> : tensor<2xf32>
// CHECK: %[[C:.*]] = onnx.Conv(%arg0, %[[W]], %[[B]]) {onnx.name = "conv", onnx.outputs = ["bn_out"], refold.output_stats = [array<f32: 5.000000e-01, 0.000000e+00>, array<f32: 4.000000e+00, 3.000000e+00>]}
// CHECK-NOT: onnx.BatchNormalization
// CHECK: return %[[C]]
func.func @conv(%x: tensor<1x1x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %w = onnx.initializer "w" = dense<1.0> : tensor<2x1x1x1xf32>
  %b = onnx.initializer "b" = dense<[1.0, 2.0]> : tensor<2xf32>
  %scale = onnx.initializer "scale" = dense<[4.0, 3.0]> : tensor<2xf32>
  %beta = onnx.initializer "beta" = dense<[0.5, 0.0]> : tensor<2xf32>
  %mean = onnx.initializer "mean" = dense<[1.0, 0.0]> : tensor<2xf32>
  %var = onnx.initializer "var" = dense<[3.0, 8.0]> : tensor<2xf32>
  %c = onnx.Conv(%x, %w, %b) {onnx.name = "conv", onnx.outputs = ["conv_out"]} : (tensor<1x1x4x4xf32>, tensor<2x1x1x1xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  %y = onnx.BatchNormalization(%c, %scale, %beta, %mean, %var) {epsilon = 1.0 : f32, onnx.outputs = ["bn_out"]} : (tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  return %y : tensor<1x2x4x4xf32>
}

// -----

// The conv's output has another user: folding would change it. Refused.
// CHECK-LABEL: func.func @conv_two_users
// CHECK: onnx.Conv
// CHECK: onnx.BatchNormalization
func.func @conv_two_users(%x: tensor<1x1x4x4xf32>) -> (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) {
  %none = onnx.none
  %w = onnx.initializer "w" = dense<1.0> : tensor<2x1x1x1xf32>
  %p = onnx.initializer "p" = dense<1.0> : tensor<2xf32>
  %c = onnx.Conv(%x, %w, %none) : (tensor<1x1x4x4xf32>, tensor<2x1x1x1xf32>, none) -> tensor<1x2x4x4xf32>
  %y = onnx.BatchNormalization(%c, %p, %p, %p, %p) : (tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  return %y, %c : tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>
}

// -----

// A weight computed at run time cannot be folded. Refused.
// CHECK-LABEL: func.func @dynamic_weight
// CHECK: onnx.BatchNormalization
func.func @dynamic_weight(%x: tensor<1x1x4x4xf32>, %w: tensor<2x1x1x1xf32>) -> tensor<1x2x4x4xf32> {
  %none = onnx.none
  %p = onnx.initializer "p" = dense<1.0> : tensor<2xf32>
  %c = onnx.Conv(%x, %w, %none) : (tensor<1x1x4x4xf32>, tensor<2x1x1x1xf32>, none) -> tensor<1x2x4x4xf32>
  %y = onnx.BatchNormalization(%c, %p, %p, %p, %p) : (tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  return %y : tensor<1x2x4x4xf32>
}

// -----

// ConvTranspose weight [I, O/g, k, k]: output channel g * (O/g) + j.
// CHECK-LABEL: func.func @conv_transpose
// CHECK: onnx.ConvTranspose
// CHECK-NOT: onnx.BatchNormalization
func.func @conv_transpose(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x8x8xf32> {
  %none = onnx.none
  %w = onnx.initializer "w" = dense<1.0> : tensor<2x1x2x2xf32>
  %p = onnx.initializer "p" = dense<[1.0, 2.0]> : tensor<2xf32>
  %c = onnx.ConvTranspose(%x, %w, %none) {group = 2 : i64, strides = array<i64: 2, 2>} : (tensor<1x2x4x4xf32>, tensor<2x1x2x2xf32>, none) -> tensor<1x2x8x8xf32>
  %y = onnx.BatchNormalization(%c, %p, %p, %p, %p) : (tensor<1x2x8x8xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x8x8xf32>
  return %y : tensor<1x2x8x8xf32>
}

// -----

// Gemm with transB: scale rows of B; alpha and beta move into B and C.
// CHECK-LABEL: func.func @gemm
// CHECK: %[[G:.*]] = onnx.Gemm(%arg0, %{{.*}}, %{{.*}}) {onnx.outputs = ["y"], refold.output_stats = [array<f32: 1.000000e+00, 2.000000e+00>, array<f32: 1.000000e+00, 2.000000e+00>], transB = 1 : i64}
// CHECK-NOT: onnx.BatchNormalization
// CHECK: return %[[G]]
func.func @gemm(%a: tensor<3x4xf32>) -> tensor<3x2xf32> {
  %w = onnx.initializer "w" = dense<1.0> : tensor<2x4xf32>
  %c = onnx.initializer "c" = dense<[1.0, 2.0]> : tensor<2xf32>
  %p = onnx.initializer "p" = dense<[1.0, 2.0]> : tensor<2xf32>
  %g = onnx.Gemm(%a, %w, %c) {alpha = 2.0 : f32, beta = 0.5 : f32, transB = 1 : i64} : (tensor<3x4xf32>, tensor<2x4xf32>, tensor<2xf32>) -> tensor<3x2xf32>
  %y = onnx.BatchNormalization(%g, %p, %p, %p, %p) {onnx.outputs = ["y"]} : (tensor<3x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<3x2xf32>
  return %y : tensor<3x2xf32>
}

// -----

// A 2-D MatMul becomes a Gemm carrying the BN; a 3-D one is refused (BN
// normalizes axis 1, which is not the MatMul's column axis there).
// CHECK-LABEL: func.func @matmul
// CHECK: onnx.Gemm
// CHECK-NOT: onnx.MatMul
// CHECK-NOT: onnx.BatchNormalization
// CHECK-LABEL: func.func @matmul_3d
// CHECK: onnx.MatMul
// CHECK: onnx.BatchNormalization
func.func @matmul(%a: tensor<3x4xf32>) -> tensor<3x2xf32> {
  %w = onnx.initializer "w" = dense<1.0> : tensor<4x2xf32>
  %p = onnx.initializer "p" = dense<[1.0, 2.0]> : tensor<2xf32>
  %m = onnx.MatMul(%a, %w) : (tensor<3x4xf32>, tensor<4x2xf32>) -> tensor<3x2xf32>
  %y = onnx.BatchNormalization(%m, %p, %p, %p, %p) : (tensor<3x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<3x2xf32>
  return %y : tensor<3x2xf32>
}
func.func @matmul_3d(%a: tensor<2x3x4xf32>) -> tensor<2x3x2xf32> {
  %w = onnx.initializer "w" = dense<1.0> : tensor<4x2xf32>
  %p = onnx.initializer "p" = dense<[1.0, 2.0, 3.0]> : tensor<3xf32>
  %m = onnx.MatMul(%a, %w) : (tensor<2x3x4xf32>, tensor<4x2xf32>) -> tensor<2x3x2xf32>
  %y = onnx.BatchNormalization(%m, %p, %p, %p, %p) : (tensor<2x3x2xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>) -> tensor<2x3x2xf32>
  return %y : tensor<2x3x2xf32>
}

// -----

// A BN before an unpadded conv folds forward: W'[o,i] = W[o,i] s[i],
// b' = b + sum W[o,i] t[i]. With s = [2, 1], t = [-1, 0] and W = 1:
// W' = [2, 1], b' = -1.
// CHECK-LABEL: func.func @before_conv
// CHECK-DAG: onnx.initializer "w_folded" = dense<{{\[\[\[\[}}2.000000e+00]], {{\[\[}}1.000000e+00]]]]> : tensor<1x2x1x1xf32>
// CHECK-DAG: onnx.initializer "w_folded_bias" = dense<-1.000000e+00> : tensor<1xf32>
// CHECK: onnx.Conv(%arg0,
// CHECK-NOT: onnx.BatchNormalization
func.func @before_conv(%x: tensor<1x2x4x4xf32>) -> tensor<1x1x4x4xf32> {
  %none = onnx.none
  %w = onnx.initializer "w" = dense<1.0> : tensor<1x2x1x1xf32>
  %scale = onnx.initializer "scale" = dense<[4.0, 3.0]> : tensor<2xf32>
  %beta = onnx.initializer "beta" = dense<[1.0, 0.0]> : tensor<2xf32>
  %mean = onnx.initializer "mean" = dense<[1.0, 0.0]> : tensor<2xf32>
  %var = onnx.initializer "var" = dense<[3.0, 8.0]> : tensor<2xf32>
  %n = onnx.BatchNormalization(%x, %scale, %beta, %mean, %var) {epsilon = 1.0 : f32} : (tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  %y = onnx.Conv(%n, %w, %none) : (tensor<1x2x4x4xf32>, tensor<1x2x1x1xf32>, none) -> tensor<1x1x4x4xf32>
  return %y : tensor<1x1x4x4xf32>
}

// -----

// Before a zero-padding conv the folded conv sees t where the original saw
// zeros: a constant map corrects the border. s = 2 / sqrt(3 + 1) = 1,
// t = [1, 2]: bias 9 * (1 + 2) = 27; a corner misses 5 taps (-15), an edge 3 (-9).
// CHECK-LABEL: func.func @before_padded_conv
// CHECK-DAG: onnx.initializer "y_border" = dense<{{\[\[\[\[}}-1.500000e+01, -9.000000e+00, -9.000000e+00, -1.500000e+01], [-9.000000e+00, 0.000000e+00, 0.000000e+00, -9.000000e+00], [-9.000000e+00, 0.000000e+00, 0.000000e+00, -9.000000e+00], [-1.500000e+01, -9.000000e+00, -9.000000e+00, -1.500000e+01]]]]> : tensor<1x1x4x4xf32>
// CHECK-DAG: onnx.initializer "w_folded_bias" = dense<2.700000e+01>
// CHECK: %[[CONV:.*]] = onnx.Conv(%arg0,
// CHECK-NOT: onnx.outputs
// CHECK-SAME: pads = array<i64: 1, 1, 1, 1>
// CHECK: onnx.Add(%[[CONV]], %{{.*}}) {onnx.outputs = ["y"]}
// CHECK-NOT: onnx.BatchNormalization
func.func @before_padded_conv(%x: tensor<1x2x4x4xf32>) -> tensor<1x1x4x4xf32> {
  %none = onnx.none
  %w = onnx.initializer "w" = dense<1.0> : tensor<1x2x3x3xf32>
  %scale = onnx.initializer "scale" = dense<2.0> : tensor<2xf32>
  %beta = onnx.initializer "beta" = dense<[1.0, 2.0]> : tensor<2xf32>
  %mean = onnx.initializer "mean" = dense<0.0> : tensor<2xf32>
  %var = onnx.initializer "var" = dense<3.0> : tensor<2xf32>
  %n = onnx.BatchNormalization(%x, %scale, %beta, %mean, %var) {epsilon = 1.0 : f32} : (tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  %y = onnx.Conv(%n, %w, %none) {pads = array<i64: 1, 1, 1, 1>, onnx.outputs = ["y"]} : (tensor<1x2x4x4xf32>, tensor<1x2x3x3xf32>, none) -> tensor<1x1x4x4xf32>
  return %y : tensor<1x1x4x4xf32>
}

// -----

// Refused before a padded conv: a dynamic spatial shape (no correction map);
// an output larger than the input (the correction would cost more than the BN).
// CHECK-LABEL: func.func @before_padded_conv_refused
// CHECK-COUNT-2: onnx.BatchNormalization
func.func @before_padded_conv_refused(%x: tensor<1x2x?x?xf32>, %z: tensor<1x2x4x4xf32>) -> (tensor<1x1x?x?xf32>, tensor<1x1x6x6xf32>) {
  %none = onnx.none
  %w = onnx.initializer "w" = dense<1.0> : tensor<1x2x3x3xf32>
  %w1 = onnx.initializer "w1" = dense<1.0> : tensor<1x2x1x1xf32>
  %p = onnx.initializer "p" = dense<[2.0, 3.0]> : tensor<2xf32>
  %n = onnx.BatchNormalization(%x, %p, %p, %p, %p) : (tensor<1x2x?x?xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x?x?xf32>
  %y = onnx.Conv(%n, %w, %none) {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x2x?x?xf32>, tensor<1x2x3x3xf32>, none) -> tensor<1x1x?x?xf32>
  %m = onnx.BatchNormalization(%z, %p, %p, %p, %p) : (tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  %v = onnx.Conv(%m, %w1, %none) {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x2x4x4xf32>, tensor<1x2x1x1xf32>, none) -> tensor<1x1x6x6xf32>
  return %y, %v : tensor<1x1x?x?xf32>, tensor<1x1x6x6xf32>
}

// -----

// A BN before a Gemm (UPDP's BN in place of LayerNorm) folds into B and C.
// CHECK-LABEL: func.func @before_gemm
// CHECK: onnx.Gemm(%arg0,
// CHECK-NOT: onnx.BatchNormalization
func.func @before_gemm(%x: tensor<3x2xf32>) -> tensor<3x4xf32> {
  %w = onnx.initializer "w" = dense<1.0> : tensor<4x2xf32>
  %c = onnx.initializer "c" = dense<1.0> : tensor<4xf32>
  %p = onnx.initializer "p" = dense<[2.0, 3.0]> : tensor<2xf32>
  %n = onnx.BatchNormalization(%x, %p, %p, %p, %p) : (tensor<3x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<3x2xf32>
  %y = onnx.Gemm(%n, %w, %c) {alpha = 0.5 : f32, transB = 1 : i64} : (tensor<3x2xf32>, tensor<4x2xf32>, tensor<4xf32>) -> tensor<3x4xf32>
  return %y : tensor<3x4xf32>
}

// -----

// BN over token embeddings (Transpose -> BN -> Transpose back, UPDP's BN in
// place of LayerNorm in a ViT) before a Linear: folds into the MatMul and its
// bias Add. s = 2 / sqrt(3 + 1) = 1, t = [1, 2]; bias = 1 + t . W = 1 + 3.
// CHECK-LABEL: func.func @token_bn
// CHECK-DAG: onnx.initializer "w_folded_bias" = dense<4.000000e+00> : tensor<4xf32>
// CHECK: %[[M:.*]] = onnx.MatMul(%arg0, %{{.*}})
// CHECK: onnx.Add(%[[M]], %{{.*}}) {onnx.outputs = ["y"]}
// CHECK-NOT: onnx.Transpose
// CHECK-NOT: onnx.BatchNormalization
// Refused: the transposes do not restore the layout.
// CHECK-LABEL: func.func @token_bn_refused
// CHECK: onnx.BatchNormalization
func.func @token_bn(%x: tensor<1x3x2xf32>) -> tensor<1x3x4xf32> {
  %w = onnx.initializer "w" = dense<1.0> : tensor<2x4xf32>
  %c = onnx.initializer "c" = dense<1.0> : tensor<4xf32>
  %scale = onnx.initializer "scale" = dense<2.0> : tensor<2xf32>
  %beta = onnx.initializer "beta" = dense<[1.0, 2.0]> : tensor<2xf32>
  %mean = onnx.initializer "mean" = dense<0.0> : tensor<2xf32>
  %var = onnx.initializer "var" = dense<3.0> : tensor<2xf32>
  %t = onnx.Transpose(%x) {perm = array<i64: 0, 2, 1>} : (tensor<1x3x2xf32>) -> tensor<1x2x3xf32>
  %n = onnx.BatchNormalization(%t, %scale, %beta, %mean, %var) {epsilon = 1.0 : f32} : (tensor<1x2x3xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x3xf32>
  %b = onnx.Transpose(%n) {perm = array<i64: 0, 2, 1>} : (tensor<1x2x3xf32>) -> tensor<1x3x2xf32>
  %m = onnx.MatMul(%b, %w) : (tensor<1x3x2xf32>, tensor<2x4xf32>) -> tensor<1x3x4xf32>
  %y = onnx.Add(%c, %m) {onnx.outputs = ["y"]} : (tensor<4xf32>, tensor<1x3x4xf32>) -> tensor<1x3x4xf32>
  return %y : tensor<1x3x4xf32>
}
func.func @token_bn_refused(%x: tensor<2x2x2xf32>) -> tensor<2x2x4xf32> {
  %w = onnx.initializer "w" = dense<1.0> : tensor<2x4xf32>
  %p = onnx.initializer "p" = dense<[2.0, 3.0]> : tensor<2xf32>
  %t = onnx.Transpose(%x) {perm = array<i64: 0, 2, 1>} : (tensor<2x2x2xf32>) -> tensor<2x2x2xf32>
  %n = onnx.BatchNormalization(%t, %p, %p, %p, %p) : (tensor<2x2x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<2x2x2xf32>
  %b = onnx.Transpose(%n) {perm = array<i64: 1, 0, 2>} : (tensor<2x2x2xf32>) -> tensor<2x2x2xf32>
  %m = onnx.MatMul(%b, %w) : (tensor<2x2x2xf32>, tensor<2x4xf32>) -> tensor<2x2x4xf32>
  return %m : tensor<2x2x4xf32>
}

// -----

// An unpadded AveragePool averages within a channel: the BN moves after it.
// CHECK-LABEL: func.func @before_avgpool
// CHECK: %[[P:.*]] = onnx.AveragePool(%arg0)
// CHECK-SAME: -> tensor<1x2x2x2xf32>
// CHECK: onnx.BatchNormalization(%[[P]],
// CHECK-SAME: onnx.outputs = ["pool_out"]
// CHECK-SAME: -> tensor<1x2x2x2xf32>
func.func @before_avgpool(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x2x2xf32> {
  %s = onnx.initializer "s" = dense<[4.0, 3.0]> : tensor<2xf32>
  %p = onnx.initializer "p" = dense<[1.0, 2.0]> : tensor<2xf32>
  %y = onnx.BatchNormalization(%x, %s, %p, %p, %p) : (tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  %z = onnx.AveragePool(%y) {kernel_shape = array<i64: 2, 2>, strides = array<i64: 2, 2>, onnx.outputs = ["pool_out"]} : (tensor<1x2x4x4xf32>) -> tensor<1x2x2x2xf32>
  return %z : tensor<1x2x2x2xf32>
}

// -----

// count_include_pad=1 averages padded zeros, which the BN would have shifted. Refused.
// CHECK-LABEL: func.func @before_avgpool_counting_pads
// CHECK: onnx.BatchNormalization(%arg0
// CHECK: onnx.AveragePool
func.func @before_avgpool_counting_pads(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %s = onnx.initializer "s" = dense<[4.0, 3.0]> : tensor<2xf32>
  %p = onnx.initializer "p" = dense<[1.0, 2.0]> : tensor<2xf32>
  %y = onnx.BatchNormalization(%x, %s, %p, %p, %p) : (tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  %z = onnx.AveragePool(%y) {count_include_pad = 1 : i64, kernel_shape = array<i64: 3, 3>, pads = array<i64: 1, 1, 1, 1>} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  return %z : tensor<1x2x4x4xf32>
}

// -----

// A negative scale turns the max into a min. Refused.
// CHECK-LABEL: func.func @before_maxpool_negative_scale
// CHECK: onnx.BatchNormalization(%arg0
// CHECK: onnx.MaxPool
func.func @before_maxpool_negative_scale(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x2x2xf32> {
  %s = onnx.initializer "s" = dense<[4.0, -3.0]> : tensor<2xf32>
  %p = onnx.initializer "p" = dense<[1.0, 2.0]> : tensor<2xf32>
  %y = onnx.BatchNormalization(%x, %s, %p, %p, %p) : (tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  %z, %i = onnx.MaxPool(%y) {kernel_shape = array<i64: 2, 2>, strides = array<i64: 2, 2>} : (tensor<1x2x4x4xf32>) -> (tensor<1x2x2x2xf32>, none)
  return %z : tensor<1x2x2x2xf32>
}

// -----

// A BN before a nonlinearity folds nowhere. With lower-unfolded it becomes a
// 1x1 depthwise conv: weight s = [2, 1], bias t = B - mean * s = [-1.5, 0].
// CHECK-LABEL: func.func @unfolded
// CHECK: onnx.BatchNormalization
// LOWER-LABEL: func.func @unfolded
// LOWER-DAG: %[[W:.*]] = onnx.initializer "{{.*}}" = dense<{{\[\[\[\[}}2.000000e+00]]], {{\[\[\[}}1.000000e+00]]]]> : tensor<2x1x1x1xf32>
// LOWER-DAG: %[[B:.*]] = onnx.initializer "{{.*}}" = dense<[-1.500000e+00, 0.000000e+00]> : tensor<2xf32>
// LOWER: %[[C:.*]] = onnx.Conv(%arg0, %[[W]], %[[B]]) {group = 2 : i64
// LOWER-SAME: onnx.outputs = ["bn_out"]
// LOWER-NOT: onnx.BatchNormalization
// LOWER: onnx.Relu(%[[C]])
func.func @unfolded(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %scale = onnx.initializer "scale" = dense<[4.0, 3.0]> : tensor<2xf32>
  %beta = onnx.initializer "beta" = dense<[0.5, 0.0]> : tensor<2xf32>
  %mean = onnx.initializer "mean" = dense<[1.0, 0.0]> : tensor<2xf32>
  %var = onnx.initializer "var" = dense<[3.0, 8.0]> : tensor<2xf32>
  %y = onnx.BatchNormalization(%x, %scale, %beta, %mean, %var) {epsilon = 1.0 : f32, onnx.outputs = ["bn_out"]} : (tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  %r = onnx.Relu(%y) : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  return %r : tensor<1x2x4x4xf32>
}

// -----

// On [N, C] (BatchNorm1d after a nonlinearity) it becomes Mul and Add.
// LOWER-LABEL: func.func @unfolded_2d
// LOWER-DAG: %[[S:.*]] = onnx.initializer "bn_out_scale" = dense<[2.000000e+00, 1.000000e+00]> : tensor<2xf32>
// LOWER-DAG: %[[T:.*]] = onnx.initializer "bn_out_shift" = dense<[-1.500000e+00, 0.000000e+00]> : tensor<2xf32>
// LOWER: %[[M:.*]] = onnx.Mul(%arg0, %[[S]])
// LOWER: onnx.Add(%[[M]], %[[T]]) {onnx.outputs = ["bn_out"]}
// LOWER-NOT: onnx.BatchNormalization
func.func @unfolded_2d(%x: tensor<3x2xf32>) -> tensor<3x2xf32> {
  %scale = onnx.initializer "scale" = dense<[4.0, 3.0]> : tensor<2xf32>
  %beta = onnx.initializer "beta" = dense<[0.5, 0.0]> : tensor<2xf32>
  %mean = onnx.initializer "mean" = dense<[1.0, 0.0]> : tensor<2xf32>
  %var = onnx.initializer "var" = dense<[3.0, 8.0]> : tensor<2xf32>
  %y = onnx.BatchNormalization(%x, %scale, %beta, %mean, %var) {epsilon = 1.0 : f32, onnx.outputs = ["bn_out"]} : (tensor<3x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<3x2xf32>
  return %y : tensor<3x2xf32>
}

// -----

// spatial=0 (opsets before 9) keeps statistics per activation, not per
// channel. Refused, in every mode. (Training mode cannot reach a pass: the
// single-output form verifies training_mode = 0.)
// CHECK-LABEL: func.func @per_activation
// CHECK: onnx.BatchNormalization
// LOWER-LABEL: func.func @per_activation
// LOWER: onnx.BatchNormalization
func.func @per_activation(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %none = onnx.none
  %w = onnx.initializer "w" = dense<1.0> : tensor<2x2x1x1xf32>
  %p = onnx.initializer "p" = dense<[1.0, 2.0]> : tensor<2xf32>
  %d = onnx.Conv(%x, %w, %none) : (tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>, none) -> tensor<1x2x4x4xf32>
  %z = onnx.BatchNormalization(%d, %p, %p, %p, %p) {spatial = 0 : i64} : (tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  return %z : tensor<1x2x4x4xf32>
}
