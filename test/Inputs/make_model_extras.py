"""Writes a model with what textual ONNX cannot express: a model-local
function, a sparse-tensor attribute, training info, a subgraph-bearing Loop."""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

out = sys.argv[1]

# Model-local function: y = Relu(x) * 2, called from the main graph.
two = helper.make_node("Constant", [], ["two"], value=numpy_helper.from_array(np.array(2.0, dtype=np.float32)))
fn = helper.make_function(
    "local.fns", "ReluTimesTwo", ["x"], ["y"],
    [helper.make_node("Relu", ["x"], ["r"]), two, helper.make_node("Mul", ["r", "two"], ["y"])],
    [helper.make_opsetid("", 13)])

sparse = helper.make_sparse_tensor(
    numpy_helper.from_array(np.array([1.5, 2.5], dtype=np.float32), "values"),
    numpy_helper.from_array(np.array([1, 3], dtype=np.int64), "indices"), [4])
const_sparse = helper.make_node("Constant", [], ["s"], sparse_value=sparse, name="sparse_const")

# Loop with a body subgraph: adds 1 to the carried value `trip` times.
body = helper.make_graph(
    [helper.make_node("Add", ["v_in", "one"], ["v_out"]),
     helper.make_node("Identity", ["cond_in"], ["cond_out"])],
    "body",
    [helper.make_tensor_value_info("i", TensorProto.INT64, []),
     helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
     helper.make_tensor_value_info("v_in", TensorProto.FLOAT, [4])],
    [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
     helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [4])])
loop = helper.make_node("Loop", ["trip", "", "s"], ["looped"], body=body, name="loop")

graph = helper.make_graph(
    [const_sparse, helper.make_node("ReluTimesTwo", ["x"], ["fx"], domain="local.fns"), loop,
     helper.make_node("Add", ["fx", "looped"], ["y"])],
    "extras",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
    [numpy_helper.from_array(np.array(3, dtype=np.int64), "trip"),
     numpy_helper.from_array(np.array([1.0] * 4, dtype=np.float32), "one")],
    doc_string="graph doc")
model = helper.make_model(graph, functions=[fn], opset_imports=[
    helper.make_opsetid("", 13), helper.make_opsetid("local.fns", 1)])
model.doc_string = "model doc"
model.training_info.add().algorithm.name = "training_algorithm"
onnx.checker.check_model(model)
onnx.save_model(model, out)
