// RUN: refold-translate --emit-c --split-input-file %s | FileCheck %s

// A residual block: the first conv's Relu and the second conv's residual
// Add and Relu run in their epilogues; both 3x3 convs run the direct
// kernel, whose zero-padded planes (2 channels x 48 floats: rows of 5 with
// one zero column shared by neighbouring rows) and the first conv's output
// share the arena; the last step writes straight into the caller's output
// buffer.
// CHECK-LABEL: #define model_NUM_INPUTS 1
// CHECK: #define model_WORKSPACE_SIZE 512
// CHECK: /* input 0: input0 float32[1,2,4,4] */
// CHECK: /* output 0: output0 float32[1,2,4,4] */
// CHECK: /* Arena: 512 bytes planned; lower bound (most bytes live at one step) 512; one buffer per tensor 1024. */
// CHECK: static const rf_direct_geometry [[G1:rf_direct[0-9]+]] = {5, 48};
// CHECK: /* Conv 'c1' + Relu (direct) */
// CHECK-NEXT: rf_conv2d_direct((const float *)(const void *)in0, (float *)(void *)(ws + 384), {{.*}}, NULL, &rf_conv0, &[[G1]], (float *)(void *)ws, RF_ACT_RELU, 0.0f, 0.0f);
// CHECK: /* Conv 'c2' + Add + Relu (direct) */
// CHECK-NEXT: rf_conv2d_direct((const float *)(const void *)(ws + 384), (float *)(void *)out0, {{.*}}, (const float *)(const void *)in0, &rf_conv2, &{{rf_direct[0-9]+}}, (float *)(void *)ws, RF_ACT_RELU, 0.0f, 0.0f);
func.func @main(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %w = onnx.initializer "w" = dense<0.5> : tensor<2x2x3x3xf32>
  %b = onnx.initializer "b" = dense<[0.1, -0.2]> : tensor<2xf32>
  %c1 = onnx.Conv(%x, %w, %b) {onnx.name = "c1", onnx.outputs = ["c1"], pads = array<i64: 1, 1, 1, 1>} : (tensor<1x2x4x4xf32>, tensor<2x2x3x3xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  %r1 = onnx.Relu(%c1) {onnx.outputs = ["r1"]} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %c2 = onnx.Conv(%r1, %w, %b) {onnx.name = "c2", onnx.outputs = ["c2"], pads = array<i64: 1, 1, 1, 1>} : (tensor<1x2x4x4xf32>, tensor<2x2x3x3xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  %s = onnx.Add(%c2, %x) {onnx.outputs = ["s"]} : (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %y = onnx.Relu(%s) {onnx.outputs = ["y"]} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  return %y : tensor<1x2x4x4xf32>
}

// -----

// Elementwise steps run in place; Reshape is a view, so the whole chain
// lives in the caller's output buffer and the arena is empty. x * Sigmoid(x)
// is one pass (SiLU).
// CHECK-LABEL: #define model_NUM_INPUTS 1
// CHECK: /* Arena: 0 bytes planned; lower bound (most bytes live at one step) 0; one buffer per tensor 96. */
// CHECK: /* Sigmoid (output 's') + Mul (SiLU) */
// CHECK-NEXT: rf_unary(RF_SILU, (float *)(void *)out0, (const float *)(const void *)in0, 12,
// CHECK: /* Add (output 'a') + Relu */
// CHECK-NEXT: rf_binary(RF_ADD, (float *)(void *)out0, (const float *)(const void *)out0, (const float *)(const void *)wb, 2, rf_i0, rf_i1, rf_i2, RF_ACT_RELU, 0.0f, 0.0f);
// CHECK-NOT: Reshape
// CHECK: return 0;
func.func @main(%x: tensor<3x4xf32>) -> tensor<12xf32> {
  %shape = onnx.initializer "shape" = dense<[12]> : tensor<1xi64>
  %bias = onnx.initializer "bias" = dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xf32>
  %s = onnx.Sigmoid(%x) {onnx.outputs = ["s"]} : (tensor<3x4xf32>) -> tensor<3x4xf32>
  %m = onnx.Mul(%s, %x) {onnx.outputs = ["m"]} : (tensor<3x4xf32>, tensor<3x4xf32>) -> tensor<3x4xf32>
  %a = onnx.Add(%m, %bias) {onnx.outputs = ["a"]} : (tensor<3x4xf32>, tensor<4xf32>) -> tensor<3x4xf32>
  %r = onnx.Relu(%a) {onnx.outputs = ["r"]} : (tensor<3x4xf32>) -> tensor<3x4xf32>
  %y = onnx.Reshape(%r, %shape) {onnx.outputs = ["y"]} : (tensor<3x4xf32>, tensor<1xi64>) -> tensor<12xf32>
  return %y : tensor<12xf32>
}

// -----

// A Linear layer (MatMul + bias) runs on packed weights with the bias in
// its epilogue, its activations packed into scratch first; a small "same"
// depthwise conv runs over each channel as one flat run (scratch: 3 column
// masks of 16 lanes, the 9 pixels with 4-float zero guards and slack: 72
// floats).
// CHECK-LABEL: #define model_NUM_INPUTS 1
// CHECK: /* Conv 'dw' */
// CHECK-NEXT: rf_depthwise_same((const float *)(const void *)in0, (float *)(void *)(ws + [[D:[0-9]+]]), {{.*}}, NULL, NULL, &rf_conv{{[0-9]+}}, (float *)(void *)ws, RF_ACT_NONE, 0.0f, 0.0f);
// CHECK: /* MatMul (output 'mm') + Add */
// CHECK-NEXT: rf_pack_a(12, 3, (const float *)(const void *)(ws + [[D]]), 3, 1, (float *)(void *)ws);
// CHECK-NEXT: rf_gemm_packed_ab(12, 5, 3, (float *)(void *)ws, (const float *)(const void *)(wb + {{[0-9]+}}), (float *)(void *)out0, 5, &ep); }
func.func @main(%x: tensor<1x4x3x3xf32>) -> tensor<1x4x3x5xf32> {
  %w = onnx.initializer "w" = dense<0.25> : tensor<4x1x3x3xf32>
  %m = onnx.initializer "m" = dense<0.5> : tensor<3x5xf32>
  %b = onnx.initializer "b" = dense<[1.0, 2.0, 3.0, 4.0, 5.0]> : tensor<5xf32>
  %none = onnx.none
  %d = onnx.Conv(%x, %w, %none) {group = 4 : i64, onnx.name = "dw", onnx.outputs = ["d"], pads = array<i64: 1, 1, 1, 1>} : (tensor<1x4x3x3xf32>, tensor<4x1x3x3xf32>, none) -> tensor<1x4x3x3xf32>
  %p = onnx.MatMul(%d, %m) {onnx.outputs = ["mm"]} : (tensor<1x4x3x3xf32>, tensor<3x5xf32>) -> tensor<1x4x3x5xf32>
  %y = onnx.Add(%p, %b) {onnx.outputs = ["y"]} : (tensor<1x4x3x5xf32>, tensor<5xf32>) -> tensor<1x4x3x5xf32>
  return %y : tensor<1x4x3x5xf32>
}

// -----

// GELU and LayerNormalization written as elementwise chains become one
// kernel each; a chain whose constant is not exactly GELU's stays apart.
// CHECK-LABEL: #define model_NUM_INPUTS 1
// CHECK: /* GELU (5 ops) */
// CHECK-NEXT: rf_unary(RF_GELU,
// CHECK: /* LayerNormalization (9 ops) */
// CHECK-NEXT: rf_layer_norm({{.*}}, 2, 4, (const float *)(const void *)(wb + {{[0-9]+}}), (const float *)(const void *)(wb + {{[0-9]+}}), 0x1.4f8b58p-17f, NULL, NULL);
// CHECK: /* Div (output 'd2') */
// CHECK: /* Erf (output 'e2') */
func.func @main(%x: tensor<2x4xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>) {
  %sqrt2 = onnx.initializer "sqrt2" = dense<1.41421354> : tensor<f32>
  %almost = onnx.initializer "almost" = dense<1.5> : tensor<f32>
  %one = onnx.initializer "one" = dense<1.0> : tensor<f32>
  %half = onnx.initializer "half" = dense<0.5> : tensor<f32>
  %two = onnx.initializer "two" = dense<2.0> : tensor<f32>
  %eps = onnx.initializer "eps" = dense<1.0e-05> : tensor<f32>
  %gamma = onnx.initializer "gamma" = dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xf32>
  %beta = onnx.initializer "beta" = dense<[0.5, 0.5, 0.5, 0.5]> : tensor<4xf32>
  %d = onnx.Div(%x, %sqrt2) {onnx.outputs = ["d"]} : (tensor<2x4xf32>, tensor<f32>) -> tensor<2x4xf32>
  %e = onnx.Erf(%d) {onnx.outputs = ["e"]} : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %a = onnx.Add(%e, %one) {onnx.outputs = ["a"]} : (tensor<2x4xf32>, tensor<f32>) -> tensor<2x4xf32>
  %m = onnx.Mul(%x, %a) {onnx.outputs = ["m"]} : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  %g = onnx.Mul(%m, %half) {onnx.outputs = ["g"]} : (tensor<2x4xf32>, tensor<f32>) -> tensor<2x4xf32>
  %mean = onnx.ReduceMean(%g) {axes = array<i64: -1>, onnx.outputs = ["mean"]} : (tensor<2x4xf32>) -> tensor<2x1xf32>
  %c = onnx.Sub(%g, %mean) {onnx.outputs = ["c"]} : (tensor<2x4xf32>, tensor<2x1xf32>) -> tensor<2x4xf32>
  %sq = onnx.Pow(%c, %two) {onnx.outputs = ["sq"]} : (tensor<2x4xf32>, tensor<f32>) -> tensor<2x4xf32>
  %var = onnx.ReduceMean(%sq) {axes = array<i64: -1>, onnx.outputs = ["var"]} : (tensor<2x4xf32>) -> tensor<2x1xf32>
  %ve = onnx.Add(%var, %eps) {onnx.outputs = ["ve"]} : (tensor<2x1xf32>, tensor<f32>) -> tensor<2x1xf32>
  %sd = onnx.Sqrt(%ve) {onnx.outputs = ["sd"]} : (tensor<2x1xf32>) -> tensor<2x1xf32>
  %n = onnx.Div(%c, %sd) {onnx.outputs = ["n"]} : (tensor<2x4xf32>, tensor<2x1xf32>) -> tensor<2x4xf32>
  %ng = onnx.Mul(%n, %gamma) {onnx.outputs = ["ng"]} : (tensor<2x4xf32>, tensor<4xf32>) -> tensor<2x4xf32>
  %ln = onnx.Add(%ng, %beta) {onnx.outputs = ["ln"]} : (tensor<2x4xf32>, tensor<4xf32>) -> tensor<2x4xf32>
  %d2 = onnx.Div(%x, %almost) {onnx.outputs = ["d2"]} : (tensor<2x4xf32>, tensor<f32>) -> tensor<2x4xf32>
  %e2 = onnx.Erf(%d2) {onnx.outputs = ["e2"]} : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %a2 = onnx.Add(%e2, %one) {onnx.outputs = ["a2"]} : (tensor<2x4xf32>, tensor<f32>) -> tensor<2x4xf32>
  %m2 = onnx.Mul(%x, %a2) {onnx.outputs = ["m2"]} : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  %g2 = onnx.Mul(%m2, %half) {onnx.outputs = ["g2"]} : (tensor<2x4xf32>, tensor<f32>) -> tensor<2x4xf32>
  return %ln, %g2 : tensor<2x4xf32>, tensor<2x4xf32>
}

// -----

// Concat along channels: each producer writes its slice of the output (here
// the caller's buffer) directly, so the Concat copies nothing; the first
// conv's output is also read by the second conv, from its slice.
// CHECK-LABEL: #define model_NUM_INPUTS 1
// CHECK: /* Conv 'a' */
// CHECK-NEXT: rf_conv2d_gemm((const float *)(const void *)in0, (float *)(void *)out0,
// CHECK: /* Conv 'b' */
// CHECK-NEXT: rf_conv2d_gemm((const float *)(const void *)out0, (float *)(void *)(out0 + 32),
// CHECK: /* Concat (output 'y') */
// CHECK-NOT: rf_copy_blocks(
// CHECK: return 0;
func.func @main(%x: tensor<1x2x2x2xf32>) -> tensor<1x4x2x2xf32> {
  %w = onnx.initializer "w" = dense<0.5> : tensor<2x2x1x1xf32>
  %none = onnx.none
  %a = onnx.Conv(%x, %w, %none) {onnx.name = "a", onnx.outputs = ["a"]} : (tensor<1x2x2x2xf32>, tensor<2x2x1x1xf32>, none) -> tensor<1x2x2x2xf32>
  %b = onnx.Conv(%a, %w, %none) {onnx.name = "b", onnx.outputs = ["b"]} : (tensor<1x2x2x2xf32>, tensor<2x2x1x1xf32>, none) -> tensor<1x2x2x2xf32>
  %y = onnx.Concat(%a, %b) {axis = 1 : i64, onnx.outputs = ["y"]} : (tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>) -> tensor<1x4x2x2xf32>
  return %y : tensor<1x4x2x2xf32>
}

// -----

// Convs the direct kernel does not take run as GEMMs on packed im2col
// tiles: a strided 1x1 conv, and a 3x3 conv on a 1x1 image (it would
// compute 16 flat positions to keep one).
// CHECK-LABEL: #define model_NUM_INPUTS 1
// CHECK: /* Conv 's2' */
// CHECK-NEXT: rf_conv2d_gemm((const float *)(const void *)in0, (float *)(void *)(ws + {{[0-9]+}}), {{.*}}, NULL, NULL, &rf_conv{{[0-9]+}}, (float *)(void *)ws, 16, RF_ACT_NONE, 0.0f, 0.0f);
// CHECK: /* Conv 'tiny' */
// CHECK-NEXT: rf_conv2d_gemm(
// CHECK-NOT: rf_conv2d_direct(
func.func @main(%x: tensor<1x2x2x2xf32>) -> tensor<1x2x1x1xf32> {
  %w1 = onnx.initializer "w1" = dense<0.5> : tensor<2x2x1x1xf32>
  %w3 = onnx.initializer "w3" = dense<0.25> : tensor<2x2x3x3xf32>
  %none = onnx.none
  %a = onnx.Conv(%x, %w1, %none) {onnx.name = "s2", onnx.outputs = ["a"], strides = array<i64: 2, 2>} : (tensor<1x2x2x2xf32>, tensor<2x2x1x1xf32>, none) -> tensor<1x2x1x1xf32>
  %b = onnx.Conv(%a, %w3, %none) {onnx.name = "tiny", onnx.outputs = ["b"], pads = array<i64: 1, 1, 1, 1>} : (tensor<1x2x1x1xf32>, tensor<2x2x3x3xf32>, none) -> tensor<1x2x1x1xf32>
  return %b : tensor<1x2x1x1xf32>
}

// -----

// A pointwise conv with 48 or more output channels runs the direct kernel
// on the image as one row: read in place when the pixel count is a
// multiple of 16 (plane 0), else from a copy padded to 16. With the
// residual being its own input, the output may not take over the input's
// buffer (which the in-place read still needs).
// CHECK-LABEL: #define model_NUM_INPUTS 1
// CHECK-DAG: static const rf_conv_shape [[S1:rf_conv[0-9]+]] = {1, 48, 1, 16, 48, 1, 16, 1, 1, 1, 1, 0, 0, 1, 1, 1};
// CHECK-DAG: static const rf_direct_geometry [[G1:rf_direct[0-9]+]] = {16, 0};
// CHECK: /* Conv 'pw' + Add (direct) */
// CHECK-NEXT: rf_conv2d_direct((const float *)(const void *)ws, (float *)(void *)(ws + 9216), {{.*}}, (const float *)(const void *)ws, &[[S1]], &[[G1]], NULL,
// CHECK: /* Conv 'after' (direct) */
func.func @main(%in: tensor<1x48x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %w = onnx.initializer "w" = dense<0.5> : tensor<48x48x1x1xf32>
  %w3 = onnx.initializer "w3" = dense<0.5> : tensor<2x48x3x3xf32>
  %none = onnx.none
  %x = onnx.Relu(%in) {onnx.outputs = ["x"]} : (tensor<1x48x4x4xf32>) -> tensor<1x48x4x4xf32>
  %c = onnx.Conv(%x, %w, %none) {onnx.name = "pw", onnx.outputs = ["c"]} : (tensor<1x48x4x4xf32>, tensor<48x48x1x1xf32>, none) -> tensor<1x48x4x4xf32>
  %y = onnx.Add(%c, %x) {onnx.outputs = ["y"]} : (tensor<1x48x4x4xf32>, tensor<1x48x4x4xf32>) -> tensor<1x48x4x4xf32>
  %z = onnx.Conv(%y, %w3, %none) {onnx.name = "after", onnx.outputs = ["z"], pads = array<i64: 1, 1, 1, 1>} : (tensor<1x48x4x4xf32>, tensor<2x48x3x3xf32>, none) -> tensor<1x2x4x4xf32>
  return %z : tensor<1x2x4x4xf32>
}

// -----

// A pixel count that is not a multiple of 16 is still read in place (no
// planes, no scratch); see pointwise-in-place.test.
// CHECK-LABEL: #define model_NUM_INPUTS 1
// CHECK-DAG: static const rf_direct_geometry [[G2:rf_direct[0-9]+]] = {9, 0};
// CHECK: /* Conv 'pw9' (direct) */
// CHECK-NEXT: rf_conv2d_direct((const float *)(const void *)in0, {{.*}}, &[[G2]], NULL,
func.func @main(%x: tensor<1x8x3x3xf32>) -> tensor<1x48x3x3xf32> {
  %w = onnx.initializer "w" = dense<0.5> : tensor<48x8x1x1xf32>
  %none = onnx.none
  %c = onnx.Conv(%x, %w, %none) {onnx.name = "pw9", onnx.outputs = ["c"]} : (tensor<1x8x3x3xf32>, tensor<48x8x1x1xf32>, none) -> tensor<1x48x3x3xf32>
  return %c : tensor<1x48x3x3xf32>
}
