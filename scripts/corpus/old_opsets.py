"""Conv -> BatchNormalization -> attribute-form Pad -> 3x3 conv, plus a 1x1
conv on the BN output, summed: the same small network at opsets 7 (BN with
`spatial`), 9 and 10 (Pad with `pads`/`value` attributes), with seeded random
weights and BN statistics. Writes OUT/old_opset<N>.onnx; needs python3-onnx
and python3-numpy only."""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def build(opset, rng):
    def weight(name, array):
        return numpy_helper.from_array(array.astype(np.float32), name)

    initializers = [
        weight("w", rng.standard_normal((4, 3, 3, 3))), weight("b", rng.standard_normal(4)),
        weight("gamma", rng.uniform(0.5, 1.5, 4)), weight("beta", rng.standard_normal(4)),
        weight("mean", rng.standard_normal(4)), weight("var", rng.uniform(0.5, 2.0, 4)),
        weight("w1x1", rng.standard_normal((4, 4, 1, 1))), weight("w3x3", rng.standard_normal((4, 4, 3, 3))),
    ]
    bn_attrs = {"epsilon": 1e-5}
    if opset < 9:
        bn_attrs["spatial"] = 1
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "gamma", "beta", "mean", "var"], ["n"], **bn_attrs),
        helper.make_node("Pad", ["n"], ["p"], pads=[0, 0, 1, 1, 0, 0, 1, 1], mode="constant", value=0.0),
        helper.make_node("Conv", ["p", "w3x3"], ["c3"]),
        helper.make_node("Conv", ["n", "w1x1"], ["c1"]),
        helper.make_node("Add", ["c3", "c1"], ["y"]),
    ]
    graph = helper.make_graph(nodes, f"old_opset{opset}",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 8, 8])],
                              initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="old_opsets.py")
    model.ir_version = 5
    onnx.checker.check_model(model)
    return model


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(0)
    for opset in (7, 9, 10):
        onnx.save(build(opset, rng), os.path.join(out, f"old_opset{opset}.onnx"))


if __name__ == "__main__":
    main()
