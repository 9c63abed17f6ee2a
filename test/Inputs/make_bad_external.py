"""Writes models whose external data is missing or points outside their folder."""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

out = sys.argv[1]
os.makedirs(out, exist_ok=True)


def model_with_external(location, offset=0, length=None):
    weight = numpy_helper.from_array(np.arange(16, dtype=np.float32), "w")
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in [("location", location), ("offset", str(offset))] + (
            [("length", str(length))] if length is not None else []):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [16])], [weight])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


with open(os.path.join(out, "weights.bin"), "wb") as f:
    f.write(np.arange(16, dtype=np.float32).tobytes())
cases = {
    "ok.onnx": model_with_external("weights.bin"),
    "escape.onnx": model_with_external("../../etc/passwd"),
    "absolute.onnx": model_with_external("/etc/passwd"),
    "missing.onnx": model_with_external("nothere.bin"),
    "overrun.onnx": model_with_external("weights.bin", offset=32, length=64),
    "link.onnx": model_with_external("link.bin"),
}
link = os.path.join(out, "link.bin")
if os.path.lexists(link):
    os.remove(link)
os.symlink("/etc/hostname", link)
for name, model in cases.items():
    onnx.save_model(model, os.path.join(out, name))
