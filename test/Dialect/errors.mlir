// RUN: refold-opt %s -split-input-file -verify-diagnostics

func.func @conv_channels(%x: tensor<1x3x8x8xf32>, %w: tensor<4x2x3x3xf32>) {
  %none = onnx.none
  // expected-error @+1 {{input has 3 channels but the weight expects 2 (group 1)}}
  %c = onnx.Conv(%x, %w, %none) : (tensor<1x3x8x8xf32>, tensor<4x2x3x3xf32>, none) -> tensor<1x4x6x6xf32>
  return
}

// -----

func.func @conv_group(%x: tensor<1x4x8x8xf32>, %w: tensor<6x2x3x3xf32>) {
  %none = onnx.none
  // expected-error @+1 {{group must be positive, got 0}}
  %c = onnx.Conv(%x, %w, %none) {group = 0 : i64} : (tensor<1x4x8x8xf32>, tensor<6x2x3x3xf32>, none) -> tensor<1x6x6x6xf32>
  return
}

// -----

func.func @conv_pads(%x: tensor<1x4x8x8xf32>, %w: tensor<4x4x3x3xf32>) {
  %none = onnx.none
  // expected-error @+1 {{pads has 2 values, expected 4}}
  %c = onnx.Conv(%x, %w, %none) {pads = array<i64: 1, 1>} : (tensor<1x4x8x8xf32>, tensor<4x4x3x3xf32>, none) -> tensor<1x4x8x8xf32>
  return
}

// -----

func.func @conv_kernel(%x: tensor<1x4x8x8xf32>, %w: tensor<4x4x3x3xf32>) {
  %none = onnx.none
  // expected-error @+1 {{kernel_shape[1] = 5 differs from the weight's spatial size 3}}
  %c = onnx.Conv(%x, %w, %none) {kernel_shape = array<i64: 3, 5>} : (tensor<1x4x8x8xf32>, tensor<4x4x3x3xf32>, none) -> tensor<1x4x6x6xf32>
  return
}

// -----

func.func @conv_auto_pad(%x: tensor<1x4x8x8xf32>, %w: tensor<4x4x3x3xf32>) {
  %none = onnx.none
  // expected-error @+1 {{auto_pad must be NOTSET, SAME_UPPER, SAME_LOWER or VALID, got 'SAME'}}
  %c = onnx.Conv(%x, %w, %none) {auto_pad = "SAME"} : (tensor<1x4x8x8xf32>, tensor<4x4x3x3xf32>, none) -> tensor<1x4x8x8xf32>
  return
}

// -----

func.func @bn_channels(%x: tensor<1x4x8x8xf32>, %p: tensor<4xf32>, %q: tensor<3xf32>) {
  // expected-error @+1 {{input_var has 3 values for 4 channels}}
  %n = onnx.BatchNormalization(%x, %p, %p, %p, %q) : (tensor<1x4x8x8xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<3xf32>) -> tensor<1x4x8x8xf32>
  return
}

// -----

func.func @gemm_inner(%a: tensor<2x3xf32>, %b: tensor<4x5xf32>) {
  %none = onnx.none
  // expected-error @+1 {{inner dimensions differ: 3 vs 4}}
  %y = onnx.Gemm(%a, %b, %none) : (tensor<2x3xf32>, tensor<4x5xf32>, none) -> tensor<2x5xf32>
  return
}

// -----

func.func @broadcast(%a: tensor<2x3xf32>, %b: tensor<4xf32>) {
  // expected-error @+1 {{are not broadcastable}}
  %y = onnx.Add(%a, %b) : (tensor<2x3xf32>, tensor<4xf32>) -> tensor<2x3xf32>
  return
}

// -----

func.func @perm(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{perm is not a permutation}}
  %y = onnx.Transpose(%a) {perm = array<i64: 0, 0>} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return
}

// -----

func.func @softmax_axis(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{axis 2 is out of range for rank 2}}
  %y = onnx.Softmax(%a) {axis = 2 : i64} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return
}

// -----

func.func @pool_kernel(%a: tensor<1x2x8x8xf32>) {
  // expected-error @+1 {{requires kernel_shape}}
  %y:2 = onnx.MaxPool(%a) : (tensor<1x2x8x8xf32>) -> (tensor<1x2x4x4xf32>, none)
  return
}

// -----

func.func @group_int_kind(%x: tensor<1x4x8x8xf32>, %w: tensor<4x4x3x3xf32>) {
  %none = onnx.none
  // expected-error @+1 {{attribute 'group' failed to satisfy constraint: ONNX INT (64-bit integer)}}
  %c = onnx.Conv(%x, %w, %none) {group = 1.0 : f32} : (tensor<1x4x8x8xf32>, tensor<4x4x3x3xf32>, none) -> tensor<1x4x6x6xf32>
  return
}

// -----

func.func @initializer_type() {
  // expected-error @+1 {{failed to verify that all of {value, output} have same type}}
  %w = "onnx.initializer"() {name = "w", value = dense<1.0> : tensor<2xf32>} : () -> tensor<3xf32>
  return
}

// -----

func.func @node_regions(%x: tensor<2xf32>) {
  // expected-error @+1 {{has 1 subgraph regions but 0 graph_attrs entries}}
  %r = onnx.node "If"(%x) : (tensor<2xf32>) -> tensor<2xf32> {
    onnx.yield %x : tensor<2xf32>
  }
  return
}

// -----

func.func @concat_dims(%a: tensor<1x2x4x4xf32>, %b: tensor<1x2x5x4xf32>) {
  // expected-error @+1 {{inputs differ in dimension 2 (4 vs 5)}}
  %c = onnx.Concat(%a, %b) {axis = 1 : i64} : (tensor<1x2x4x4xf32>, tensor<1x2x5x4xf32>) -> tensor<1x4x4x4xf32>
  return
}
