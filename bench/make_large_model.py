"""Writes a model over 2 GiB (3 x 760 MB of float32 Add operands), which can
only exist with external data: bench/large_model.sh and bench/io_speed.sh.
usage: make_large_model.py OUT.onnx   (data in OUT.onnx.data beside it)"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

out = sys.argv[1]
n = 190_000_000  # 3 x 760 MB of float32 weights: 2.28 GB in all
rng = np.random.default_rng(0)
inits = [numpy_helper.from_array(rng.standard_normal(n, dtype=np.float32), f"w{i}") for i in range(3)]
nodes = [helper.make_node("Add", ["x", "w0"], ["a"]), helper.make_node("Add", ["a", "w1"], ["b"]),
         helper.make_node("Add", ["b", "w2"], ["y"])]
graph = helper.make_graph(nodes, "large", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n])], inits)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
onnx.save_model(model, out, save_as_external_data=True, location=os.path.basename(out) + ".data")
