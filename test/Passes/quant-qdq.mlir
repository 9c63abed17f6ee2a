// RUN: refold-opt %s -split-input-file --pass-pipeline='builtin.module(func.func(onnx-quant-qdq))' | FileCheck %s
// RUN: refold-opt %s -split-input-file --pass-pipeline='builtin.module(func.func(onnx-quant-qdq{activations=int8 weights=per-tensor}))' | FileCheck %s --check-prefix=INT8
// RUN: refold-opt %s -split-input-file --pass-pipeline='builtin.module(func.func(onnx-quant-qdq{bias-correction=false}))' | FileCheck %s --check-prefix=NOBC
// RUN: not refold-opt %s -split-input-file --pass-pipeline='builtin.module(func.func(onnx-quant-qdq{activations=int4}))' 2>&1 | FileCheck %s --check-prefix=BADTYPE

// Conv + Relu from recorded ranges. Input range [-1, 3] -> uint8 scale 4/255,
// zero point 64 (0.0 exact); the Relu is absorbed into the output's range
// [0, 2.55] (scale 0.01, zero point 0) and removed. Weights: int8 per output
// channel, max |w| / 127 (channel 0: 0.5, channel 1: 2.0), zero points 0;
// bias: int32 at input scale x weight scale, rounded half to even. One Q/DQ
// pair per tensor: the DQ output keeps the tensor's name.
// CHECK-LABEL: func.func @conv_relu
// CHECK-DAG: onnx.initializer "x_scale" = dense<0.0156862754> : tensor<f32>
// CHECK-DAG: onnx.initializer "x_zero_point" = dense<64> : tensor<ui8>
// CHECK-DAG: onnx.initializer "w_quantized" = dense<{{\[\[\[\[}}127]]], {{\[\[\[}}-127]]]]> : tensor<2x1x1x1xi8>
// CHECK-DAG: onnx.initializer "w_scale" = dense<[0.00393700786, 0.0157480314]> : tensor<2xf32>
// CHECK-DAG: onnx.initializer "w_zero_point" = dense<0> : tensor<2xi8>
// CHECK-DAG: onnx.initializer "b_quantized" = dense<[1619, 0]> : tensor<2xi32>
// CHECK-DAG: onnx.initializer "b_zero_point" = dense<0> : tensor<2xi32>
// CHECK-DAG: onnx.initializer "r_scale" = dense<0.00999999977> : tensor<f32>
// CHECK-DAG: onnx.initializer "r_zero_point" = dense<0> : tensor<ui8>
// CHECK: %[[Q:.*]] = onnx.QuantizeLinear(%arg0, {{.*}}) {onnx.outputs = ["x_quantized"]} : ({{.*}}) -> tensor<1x1x2x2xui8>
// CHECK: %[[DQ:.*]] = onnx.DequantizeLinear(%[[Q]], {{.*}}) {onnx.outputs = ["x_dequantized"]}
// CHECK: %[[W:.*]] = onnx.DequantizeLinear({{.*}}) {axis = 0 : i64
// CHECK: %[[B:.*]] = onnx.DequantizeLinear({{.*}}) {axis = 0 : i64
// CHECK: %[[C:.*]] = onnx.Conv(%[[DQ]], %[[W]], %[[B]]) {onnx.outputs = ["r_float"]
// CHECK-NOT: onnx.Relu
// CHECK: %[[QO:.*]] = onnx.QuantizeLinear(%[[C]], {{.*}}) {onnx.outputs = ["r_quantized"]}
// CHECK: %[[DQO:.*]] = onnx.DequantizeLinear(%[[QO]], {{.*}}) {onnx.outputs = ["r"]}
// CHECK: return %[[DQO]]
// INT8-LABEL: func.func @conv_relu
// INT8-DAG: onnx.initializer "x_zero_point" = dense<-64> : tensor<i8>
// INT8-DAG: onnx.initializer "w_scale" = dense<0.0157480314> : tensor<f32>
// INT8-DAG: onnx.initializer "r_zero_point" = dense<-128> : tensor<i8>
// INT8: onnx.QuantizeLinear(%arg0, {{.*}}) -> tensor<1x1x2x2xi8>
// INT8: onnx.DequantizeLinear({{.*}}) : (tensor<2x1x1x1xi8>, tensor<f32>, tensor<i8>) -> tensor<2x1x1x1xf32>
// INT8: onnx.Conv
func.func @conv_relu(%x: tensor<1x1x2x2xf32>) -> tensor<1x2x2x2xf32> attributes {onnx.graph = {inputs = [{name = "x"}], name = "g", outputs = [{name = "r"}]}, refold.input_ranges = [array<f32: -1.0, 3.0>]} {
  %w = onnx.initializer "w" = dense<[[[[0.5]]], [[[-2.0]]]]> : tensor<2x1x1x1xf32>
  %b = onnx.initializer "b" = dense<[0.1, 0.0001]> : tensor<2xf32>
  %c = onnx.Conv(%x, %w, %b) {onnx.outputs = ["c"], refold.ranges = [array<f32: -6.0, 1.5>]} : (tensor<1x1x2x2xf32>, tensor<2x1x1x1xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32>
  %r = onnx.Relu(%c) {onnx.outputs = ["r"], refold.ranges = [array<f32: 0.0, 2.55>]} : (tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32>
  return %r : tensor<1x2x2x2xf32>
}

// -----

// Two convs in a chain share the tensor between them: one Q/DQ pair, which
// the second conv reads. MatMul weights are per output column (axis 1).
// CHECK-LABEL: func.func @chain
// CHECK: onnx.initializer "w_quantized"
// CHECK-NOT: onnx.initializer "w_quantized"
// CHECK: onnx.QuantizeLinear(%arg0
// CHECK: %[[C1:.*]] = onnx.Conv
// CHECK: %[[Q1:.*]] = onnx.QuantizeLinear(%[[C1]]
// CHECK: %[[DQ1:.*]] = onnx.DequantizeLinear(%[[Q1]]
// CHECK: onnx.Conv(%[[DQ1]]
// CHECK: onnx.DequantizeLinear({{.*}}) {axis = 1 : i64{{.*}} -> tensor<4x3xf32>
// CHECK: onnx.MatMul
func.func @chain(%x: tensor<1x1x2x2xf32>, %m: tensor<2x4xf32>) -> (tensor<1x1x2x2xf32>, tensor<2x3xf32>) attributes {refold.input_ranges = [array<f32: 0.0, 1.0>, array<f32: -1.0, 1.0>]} {
  %none = onnx.none
  %w = onnx.initializer "w" = dense<0.5> : tensor<1x1x1x1xf32>
  %k = onnx.initializer "k" = dense<[[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]> : tensor<4x3xf32>
  %c1 = onnx.Conv(%x, %w, %none) {onnx.outputs = ["c1"], refold.ranges = [array<f32: 0.0, 0.5>]} : (tensor<1x1x2x2xf32>, tensor<1x1x1x1xf32>, none) -> tensor<1x1x2x2xf32>
  %c2 = onnx.Conv(%c1, %w, %none) {onnx.outputs = ["c2"], refold.ranges = [array<f32: 0.0, 0.25>]} : (tensor<1x1x2x2xf32>, tensor<1x1x1x1xf32>, none) -> tensor<1x1x2x2xf32>
  %p = onnx.MatMul(%m, %k) {onnx.outputs = ["p"], refold.ranges = [array<f32: -24.0, 24.0>]} : (tensor<2x4xf32>, tensor<4x3xf32>) -> tensor<2x3xf32>
  return %c2, %p : tensor<1x1x2x2xf32>, tensor<2x3xf32>
}

// -----

// A Gemm whose result only leaves the graph keeps a float result (no Q/DQ
// after it: runtimes run it as an integer kernel with float output); one
// whose result another op reads is quantized as usual.
// CHECK-LABEL: func.func @gemm_float_output
// CHECK: %[[H:.*]] = onnx.Gemm
// CHECK: %[[QH:.*]] = onnx.QuantizeLinear(%[[H]]
// CHECK: %[[DQH:.*]] = onnx.DequantizeLinear(%[[QH]]
// CHECK: %[[L:.*]] = onnx.Gemm(%[[DQH]]
// CHECK-NOT: onnx.QuantizeLinear
// CHECK: return %[[L]]
func.func @gemm_float_output(%x: tensor<1x2xf32>) -> tensor<1x2xf32> attributes {refold.input_ranges = [array<f32: 0.0, 1.0>]} {
  %none = onnx.none
  %w1 = onnx.initializer "w1" = dense<[[1.0, -1.0], [0.5, 2.0]]> : tensor<2x2xf32>
  %w2 = onnx.initializer "w2" = dense<[[1.0, 0.0], [0.0, 1.0]]> : tensor<2x2xf32>
  %h = onnx.Gemm(%x, %w1, %none) {onnx.outputs = ["h"], refold.ranges = [array<f32: -1.0, 2.5>]} : (tensor<1x2xf32>, tensor<2x2xf32>, none) -> tensor<1x2xf32>
  %l = onnx.Gemm(%h, %w2, %none) {onnx.outputs = ["logits"]} : (tensor<1x2xf32>, tensor<2x2xf32>, none) -> tensor<1x2xf32>
  return %l : tensor<1x2xf32>
}

// -----

// One scale for a Concat's inputs and output (ranges [-1, 2] and [0, 4]:
// union [-1, 4], scale 5/255, zero point 51), and carried through MaxPool.
// CHECK-LABEL: func.func @shared_scales
// CHECK-DAG: %[[S:.*]] = onnx.initializer "a_scale" = dense<0.0196078438> : tensor<f32>
// CHECK-DAG: %[[Z:.*]] = onnx.initializer "a_zero_point" = dense<51> : tensor<ui8>
// CHECK-DAG: %[[S2:.*]] = onnx.initializer "b_scale" = dense<0.0196078438> : tensor<f32>
// CHECK-DAG: %[[Z2:.*]] = onnx.initializer "b_zero_point" = dense<51> : tensor<ui8>
// CHECK-DAG: onnx.initializer "p_scale" = dense<0.0196078438> : tensor<f32>
// CHECK: onnx.Concat
// CHECK: onnx.MaxPool
func.func @shared_scales(%x: tensor<1x1x2x2xf32>) -> tensor<1x1x1x1xf32> attributes {refold.input_ranges = [array<f32: 0.0, 1.0>]} {
  %none = onnx.none
  %w = onnx.initializer "w" = dense<0.5> : tensor<1x1x1x1xf32>
  %v = onnx.initializer "v" = dense<0.25> : tensor<1x2x1x1xf32>
  %a = onnx.Conv(%x, %w, %none) {onnx.outputs = ["a"], refold.ranges = [array<f32: -1.0, 2.0>]} : (tensor<1x1x2x2xf32>, tensor<1x1x1x1xf32>, none) -> tensor<1x1x2x2xf32>
  %b = onnx.Conv(%x, %w, %none) {onnx.outputs = ["b"], refold.ranges = [array<f32: 0.0, 4.0>]} : (tensor<1x1x2x2xf32>, tensor<1x1x1x1xf32>, none) -> tensor<1x1x2x2xf32>
  %c = onnx.Concat(%a, %b) {axis = 1 : i64, onnx.outputs = ["c"], refold.ranges = [array<f32: -1.0, 4.0>]} : (tensor<1x1x2x2xf32>, tensor<1x1x2x2xf32>) -> tensor<1x2x2x2xf32>
  %p, %i = onnx.MaxPool(%c) {kernel_shape = array<i64: 2, 2>, onnx.outputs = ["p", ""], refold.ranges = [array<f32: 1.0, 4.0>, array<f32>]} : (tensor<1x2x2x2xf32>) -> (tensor<1x2x1x1xf32>, none)
  %y = onnx.Conv(%p, %v, %none) {onnx.outputs = ["y"], refold.ranges = [array<f32: 0.0, 1.0>]} : (tensor<1x2x1x1xf32>, tensor<1x2x1x1xf32>, none) -> tensor<1x1x1x1xf32>
  return %y : tensor<1x1x1x1xf32>
}

// -----

// A residual Add of two quantized tensors (the block's input and its conv's
// output) is quantized too, with the Relu after it absorbed, so that it runs
// as an integer add. An Add with a float constant operand stays float.
// CHECK-LABEL: func.func @residual_add
// CHECK: %[[DQX:.*]] = onnx.DequantizeLinear({{.*}}) {onnx.outputs = ["x_dequantized"]}
// CHECK: %[[C:.*]] = onnx.Conv(%[[DQX]]
// CHECK: %[[DQC:.*]] = onnx.DequantizeLinear({{.*}}) {onnx.outputs = ["c"]}
// CHECK: %[[A:.*]] = onnx.Add(%[[DQC]], %[[DQX]]) {onnx.outputs = ["r_float"]
// CHECK-NOT: onnx.Relu
// CHECK: %[[QA:.*]] = onnx.QuantizeLinear(%[[A]], {{.*}}) {onnx.outputs = ["r_quantized"]}
// CHECK: %[[DQA:.*]] = onnx.DequantizeLinear(%[[QA]], {{.*}}) {onnx.outputs = ["r"]}
// CHECK: %[[B:.*]] = onnx.Add(%[[DQA]], %{{.*}}) {onnx.outputs = ["biased"]
// CHECK-NOT: onnx.QuantizeLinear
// CHECK: return %[[B]]
func.func @residual_add(%x: tensor<1x1x2x2xf32>) -> tensor<1x1x2x2xf32> attributes {onnx.graph = {inputs = [{name = "x"}], name = "g", outputs = [{name = "biased"}]}, refold.input_ranges = [array<f32: 0.0, 1.0>]} {
  %none = onnx.none
  %w = onnx.initializer "w" = dense<0.5> : tensor<1x1x1x1xf32>
  %k = onnx.initializer "k" = dense<0.25> : tensor<1xf32>
  %c = onnx.Conv(%x, %w, %none) {onnx.outputs = ["c"], refold.ranges = [array<f32: 0.0, 0.5>]} : (tensor<1x1x2x2xf32>, tensor<1x1x1x1xf32>, none) -> tensor<1x1x2x2xf32>
  %a = onnx.Add(%c, %x) {onnx.outputs = ["a"], refold.ranges = [array<f32: -0.5, 1.5>]} : (tensor<1x1x2x2xf32>, tensor<1x1x2x2xf32>) -> tensor<1x1x2x2xf32>
  %r = onnx.Relu(%a) {onnx.outputs = ["r"], refold.ranges = [array<f32: 0.0, 1.5>]} : (tensor<1x1x2x2xf32>) -> tensor<1x1x2x2xf32>
  %b = onnx.Add(%r, %k) {onnx.outputs = ["biased"], refold.ranges = [array<f32: 0.25, 1.75>]} : (tensor<1x1x2x2xf32>, tensor<1xf32>) -> tensor<1x1x2x2xf32>
  return %b : tensor<1x1x2x2xf32>
}

// -----

// Bias correction from the input's recorded channel means [0, 2]: weight
// 0.3 becomes 38/127 = 0.299213, which shifts the output's mean by
// (0.299213 - 0.3) * 2 = -0.0015748; the bias makes up for it (0.1 ->
// 0.1015748, int32 1645 at scale 2/255 * 1/127 instead of 1619). A conv with
// no bias gets one. Off with bias-correction=false.
// CHECK-LABEL: func.func @bias_correction
// CHECK-DAG: onnx.initializer "b_quantized" = dense<1645> : tensor<1xi32>
// CHECK-DAG: onnx.initializer "w2_bias_quantized" = dense<26> : tensor<1xi32>
// NOBC-LABEL: func.func @bias_correction
// NOBC-DAG: onnx.initializer "b_quantized" = dense<1619> : tensor<1xi32>
// NOBC-NOT: w2_bias
func.func @bias_correction(%x: tensor<1x2x2x2xf32>) -> tensor<1x1x2x2xf32> attributes {onnx.graph = {inputs = [{name = "x"}], name = "g", outputs = [{name = "s"}]}, refold.input_ranges = [array<f32: 0.0, 2.0>], refold.input_means = [array<f32: 0.0, 2.0>]} {
  %none = onnx.none
  %w = onnx.initializer "w" = dense<[[[[1.0]], [[0.3]]]]> : tensor<1x2x1x1xf32>
  %b = onnx.initializer "b" = dense<[0.1]> : tensor<1xf32>
  %w2 = onnx.initializer "w2" = dense<[[[[1.0]], [[0.3]]]]> : tensor<1x2x1x1xf32>
  %c = onnx.Conv(%x, %w, %b) {onnx.outputs = ["y"], refold.ranges = [array<f32: 0.0, 2.55>]} : (tensor<1x2x2x2xf32>, tensor<1x2x1x1xf32>, tensor<1xf32>) -> tensor<1x1x2x2xf32>
  %d = onnx.Conv(%x, %w2, %none) {onnx.outputs = ["z"], refold.ranges = [array<f32: 0.0, 2.55>]} : (tensor<1x2x2x2xf32>, tensor<1x2x1x1xf32>, none) -> tensor<1x1x2x2xf32>
  %s = onnx.Add(%c, %d) {onnx.outputs = ["s"]} : (tensor<1x1x2x2xf32>, tensor<1x1x2x2xf32>) -> tensor<1x1x2x2xf32>
  return %s : tensor<1x1x2x2xf32>
}

// -----

// An absorbed Relu's means (1.0) replace the conv's pre-activation ones
// (-0.5) for the next conv's correction: (38/127 - 0.3) * 1.0 = -0.000787,
// a bias of +0.000787 = 13 at scale 2/255 * 1/127 (-6 with the wrong means).
// CHECK-LABEL: func.func @absorbed_means
// CHECK-DAG: onnx.initializer "w3_bias_quantized" = dense<13> : tensor<1xi32>
func.func @absorbed_means(%x: tensor<1x2x2x2xf32>) -> tensor<1x1x2x1xf32> attributes {onnx.graph = {inputs = [{name = "x"}], name = "g", outputs = [{name = "y"}]}, refold.input_ranges = [array<f32: 0.0, 2.0>], refold.input_means = [array<f32: 0.0, 2.0>]} {
  %none = onnx.none
  %w = onnx.initializer "w" = dense<[[[[1.0]], [[0.5]]]]> : tensor<1x2x1x1xf32>
  %w3 = onnx.initializer "w3" = dense<[[[[1.0, 0.3]]]]> : tensor<1x1x1x2xf32>
  %c = onnx.Conv(%x, %w, %none) {onnx.outputs = ["c"], refold.ranges = [array<f32: -1.0, 2.0>], refold.means = [array<f32: -0.5>]} : (tensor<1x2x2x2xf32>, tensor<1x2x1x1xf32>, none) -> tensor<1x1x2x2xf32>
  %r = onnx.Relu(%c) {onnx.outputs = ["r"], refold.ranges = [array<f32: 0.0, 2.0>], refold.means = [array<f32: 1.0>]} : (tensor<1x1x2x2xf32>) -> tensor<1x1x2x2xf32>
  %y = onnx.Conv(%r, %w3, %none) {onnx.outputs = ["y"], refold.ranges = [array<f32: 0.0, 2.55>]} : (tensor<1x1x2x2xf32>, tensor<1x1x1x2xf32>, none) -> tensor<1x1x2x1xf32>
  return %y : tensor<1x1x2x1xf32>
}

// -----

// Refused, with the reason recorded: a weight computed at run time, and a
// conv whose output has no recorded range.
// CHECK-LABEL: func.func @refusals
// CHECK-NOT: onnx.QuantizeLinear
// CHECK: onnx.Conv{{.*}}refold.quant_skipped = "its weight is not a float32 constant (computed at run time)"
// CHECK: onnx.Conv{{.*}}refold.quant_skipped = "no recorded range for its output (run onnx-quant-calibrate first)"
func.func @refusals(%x: tensor<1x1x2x2xf32>, %wx: tensor<1x1x1x1xf32>) -> (tensor<1x1x2x2xf32>, tensor<1x1x2x2xf32>) attributes {refold.input_ranges = [array<f32: 0.0, 1.0>, array<f32: 0.0, 1.0>]} {
  %none = onnx.none
  %w = onnx.initializer "w" = dense<0.5> : tensor<1x1x1x1xf32>
  %a = onnx.Conv(%x, %wx, %none) {refold.ranges = [array<f32: 0.0, 1.0>]} : (tensor<1x1x2x2xf32>, tensor<1x1x1x1xf32>, none) -> tensor<1x1x2x2xf32>
  %b = onnx.Conv(%x, %w, %none) : (tensor<1x1x2x2xf32>, tensor<1x1x1x1xf32>, none) -> tensor<1x1x2x2xf32>
  return %a, %b : tensor<1x1x2x2xf32>, tensor<1x1x2x2xf32>
}

// BADTYPE: activations must be uint8 or int8, got 'int4'
