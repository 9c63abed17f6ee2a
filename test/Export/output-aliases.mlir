// A graph output that is a graph input, an initializer or a second output of
// the same value keeps its own name through an added Identity.
// RUN: refold %s -O0 -o %t.onnx
// RUN: refold-translate --import-onnx %t.onnx | FileCheck %s

module attributes {onnx.ir_version = 8 : i64, onnx.opset_import = [["", 13]]} {
  func.func @main(%x: tensor<2xf32>) -> (tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>)
      attributes {onnx.graph = {inputs = [{name = "x"}],
                                outputs = [{name = "a", type = tensor<2xf32>},
                                           {name = "b", type = tensor<2xf32>},
                                           {name = "c", type = tensor<2xf32>},
                                           {name = "d", type = tensor<2xf32>}]}} {
    %w = onnx.initializer "w" = dense<[1.0, 2.0]> : tensor<2xf32>
    %r = onnx.Relu(%x) : (tensor<2xf32>) -> tensor<2xf32>
    return %x, %w, %r, %r : tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>
  }
}

// CHECK-DAG: %[[W:.*]] = onnx.initializer "w"
// CHECK-DAG: %[[R:.*]] = onnx.Relu(%arg0) {onnx.outputs = ["c"]}
// CHECK-DAG: %[[A:.*]] = onnx.Identity(%arg0) {onnx.outputs = ["a"]}
// CHECK-DAG: %[[B:.*]] = onnx.Identity(%[[W]]) {onnx.outputs = ["b"]}
// CHECK-DAG: %[[D:.*]] = onnx.Identity(%[[R]]) {onnx.outputs = ["d"]}
// CHECK: return %[[A]], %[[B]], %[[R]], %[[D]]
