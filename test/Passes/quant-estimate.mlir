// RUN: refold-opt %s -split-input-file --pass-pipeline='builtin.module(onnx-quant-estimate{input-range=0,1})' | FileCheck %s
// RUN: not refold-opt %s -split-input-file --pass-pipeline='builtin.module(onnx-quant-estimate{input-range=1,0})' 2>&1 | FileCheck %s --check-prefix=BADRANGE

// Data-free ranges. The input, uniform over [0, 1]: mean 0.5, range [0, 1].
// The first conv (w = 0.5, no statistics) carries it: mean 0.25, deviation
// 0.5 / sqrt(12), range mean +- 6 deviations. The second conv has a folded
// BatchNorm's statistics (means [1, -1], deviations [0.5, 0.25]): range
// [-1 - 1.5, 1 + 3]. Its Relu: the moments of a clipped Gaussian, from 0.
// An op with no rule (Erf) gets no range, so what reads it stays float.
// CHECK-LABEL: func.func @main
// CHECK-SAME: refold.input_means = [array<f32: 5.000000e-01>], refold.input_ranges = [array<f32: 0.000000e+00, 1.000000e+00>]
// CHECK: onnx.Conv{{.*}}refold.means = [array<f32: 2.500000e-01>], refold.ranges = [array<f32: -0.616025388, 1.11602545>]
// CHECK: onnx.Conv{{.*}}refold.means = [array<f32: 1.000000e+00, -1.000000e+00>], {{.*}}refold.ranges = [array<f32: -2.500000e+00, 4.000000e+00>]
// CHECK: onnx.Relu{{.*}}refold.ranges = [array<f32: 0.000000e+00, 3.94393373>]
// CHECK: onnx.node "Erf"(%{{.*}}) {onnx.outputs = ["e"]} :
func.func @main(%x: tensor<1x1x2x2xf32>) -> (tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>) attributes {onnx.graph = {inputs = [{name = "x"}], name = "g", outputs = [{name = "r"}, {name = "e"}]}} {
  %none = onnx.none
  %w = onnx.initializer "w" = dense<0.5> : tensor<1x1x1x1xf32>
  %w2 = onnx.initializer "w2" = dense<1.0> : tensor<2x1x1x1xf32>
  %c = onnx.Conv(%x, %w, %none) {onnx.outputs = ["c"]} : (tensor<1x1x2x2xf32>, tensor<1x1x1x1xf32>, none) -> tensor<1x1x2x2xf32>
  %d = onnx.Conv(%c, %w2, %none) {onnx.outputs = ["d"], refold.output_stats = [array<f32: 1.0, -1.0>, array<f32: 0.5, 0.25>]} : (tensor<1x1x2x2xf32>, tensor<2x1x1x1xf32>, none) -> tensor<1x2x2x2xf32>
  %r = onnx.Relu(%d) {onnx.outputs = ["r"]} : (tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32>
  %e = onnx.node "Erf"(%r) {onnx.outputs = ["e"]} : (tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32>
  return %r, %e : tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>
}

// -----

// Concat along channels keeps per-channel moments; Add of two tensors adds
// means and variances; Clip bounds the range.
// CHECK-LABEL: func.func @concat_add_clip
// CHECK: onnx.Concat{{.*}}refold.means = [array<f32: 1.000000e+00, -1.000000e+00, 1.000000e+00, -1.000000e+00>]
// CHECK: onnx.Add{{.*}}refold.means = [array<f32: 2.000000e+00, -2.000000e+00, 2.000000e+00, -2.000000e+00>]
// CHECK: onnx.Clip{{.*}}refold.ranges = [array<f32: 0.000000e+00, 6.000000e+00>]
func.func @concat_add_clip(%x: tensor<1x1x2x2xf32>) -> tensor<1x4x2x2xf32> {
  %none = onnx.none
  %w = onnx.initializer "w" = dense<1.0> : tensor<2x1x1x1xf32>
  %lo = onnx.initializer "lo" = dense<0.0> : tensor<f32>
  %hi = onnx.initializer "hi" = dense<6.0> : tensor<f32>
  %d = onnx.Conv(%x, %w, %none) {refold.output_stats = [array<f32: 1.0, -1.0>, array<f32: 3.0, 3.0>]} : (tensor<1x1x2x2xf32>, tensor<2x1x1x1xf32>, none) -> tensor<1x2x2x2xf32>
  %c = onnx.Concat(%d, %d) {axis = 1 : i64} : (tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>) -> tensor<1x4x2x2xf32>
  %a = onnx.Add(%c, %c) : (tensor<1x4x2x2xf32>, tensor<1x4x2x2xf32>) -> tensor<1x4x2x2xf32>
  %r = onnx.Clip(%a, %lo, %hi) : (tensor<1x4x2x2xf32>, tensor<f32>, tensor<f32>) -> tensor<1x4x2x2xf32>
  return %r : tensor<1x4x2x2xf32>
}

// BADRANGE: error: input-range must be two numbers LO,HI with LO < HI
