"""Writes OUT: a model whose node name holds a newline and whose input name
holds a newline, a control character and two bytes that are not UTF-8
(patched into the serialized bytes: the ONNX helpers only take text)."""
import sys

from onnx import TensorProto, helper

node = helper.make_node("Relu", ["placeholder"], ["y"], name="n\nx")
graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
# Same length, so the protobuf length prefixes stay right.
data = model.SerializeToString().replace(b"placeholder", b"bad\nname\x01\xff\xfe")
with open(sys.argv[1], "wb") as f:
    f.write(data)
