#!/usr/bin/env python3
"""Checks refold's integer C against its interpreter on quantized models.

For each QDQ model, every quantized activation is made a graph output too
(a copy of the model, so that an error is caught where it starts); then the
interpreter's outputs on seeded random inputs (`refold run`, which runs the
integer groups as integer kernels do, requantizing in float or in fixed
point), and the C (compiled and run several ways, in both requantization
modes) compared with them in the int8 domain: each tensor a
DequantizeLinear writes is divided by its scale, so a difference of 1 is
one quantization step. Over all of them, float requantization must give
>= 99.9 % identical elements and none off by more than 1; fixed-point none
off by more than 1. Outputs left in float (a
classifier's logits after an int8 GlobalAveragePool: one step there moves
them by a few percent) are reported and must be within 5e-2 of their
largest value. Every build uses -std=c99 -Wall -Wextra -Werror -pedantic.

usage: scripts/check_int8_c.py WORKDIR [--dim NAME=VALUE]... [--configs a,b] MODEL...
"""
import os
import subprocess
import sys

import numpy as np
import onnx
from onnx import numpy_helper

STRICT = "-O2 -Wall -Wextra -Werror -pedantic"
QEMU = "qemu-aarch64 -L /usr/aarch64-linux-gnu"
CONFIGS = {
    "gcc": ("gcc", STRICT, ""),
    "gcc-native": ("gcc", STRICT + " -march=native", ""),
    "clang": ("clang-19", STRICT, ""),
    "clang-native": ("clang-19", STRICT + " -march=native", ""),
    "scalar": ("gcc", STRICT + " -DRF_SCALAR", ""),
    "arm64": ("aarch64-linux-gnu-gcc", STRICT, QEMU),
    "arm64-dotprod": ("aarch64-linux-gnu-gcc", STRICT + " -march=armv8.2-a+dotprod", QEMU),
    "arm64-scalar": ("aarch64-linux-gnu-gcc", STRICT + " -DRF_SCALAR", QEMU),
}


def expose(path, out):
    """A copy of the model whose quantized activations are graph outputs."""
    model = onnx.load(path)
    g = model.graph
    inits = {t.name for t in g.initializer}
    have = {o.name for o in g.output}
    for node in g.node:
        if node.op_type == "DequantizeLinear" and node.input[0] not in inits and node.output[0] not in have:
            g.output.append(onnx.helper.make_empty_tensor_value_info(node.output[0]))
            have.add(node.output[0])
    onnx.save(model, out)


def output_scales(path):
    """Output name -> scale when a DequantizeLinear writes it (else None)."""
    model = onnx.load(path)
    consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    scales = {}
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear" and node.input[1] in consts:
            s = consts[node.input[1]]
            if s.size == 1:
                scales[node.output[0]] = float(s.reshape(-1)[0])
    integer = {onnx.TensorProto.INT32, onnx.TensorProto.INT8, onnx.TensorProto.UINT8}
    # An integer output (ConvInteger's) is compared exactly: a step of 1.
    return {o.name: 1.0 if o.type.tensor_type.elem_type in integer else scales.get(o.name)
            for o in model.graph.output}


def read(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t).astype(np.float64)


def main(argv):
    work, rest = argv[0], argv[1:]
    refold = os.environ.get("REFOLD", "refold")
    dims, models, configs = [], [], list(CONFIGS)
    while rest:
        if rest[0] == "--dim":
            dims += ["--dim", rest[1]]
            rest = rest[2:]
        elif rest[0] == "--configs":
            configs = rest[1].split(",")
            rest = rest[2:]
        else:
            models.append(rest.pop(0))
    os.makedirs(work, exist_ok=True)
    total = passed = 0
    for given in models:
        name = os.path.basename(given)
        model = os.path.join(work, name.replace(".onnx", "") + ".all.onnx")
        if not given.endswith(".onnx"):  # textual ONNX: as a file first
            binary = os.path.join(work, name + ".onnx")
            subprocess.run([refold, given, "-O0", "-o", binary, "--quiet"], check=True)
            given = binary
        expose(given, model)
        refs, failed = {}, False
        for mode in ("float", "fixed"):
            refs[mode] = os.path.join(work, f"{name}.interpreter.{mode}")
            r = subprocess.run([refold, "run", model, "-o", refs[mode], "--seed", "7", "--quiet",
                                "--c-requant=" + mode] + dims, capture_output=True, text=True)
            if r.returncode:
                print(f"{name}: the interpreter failed: {r.stderr.strip().splitlines()[:1]}")
                failed = True
        if failed:
            total += 1
            continue
        scales = output_scales(model)
        for config in configs:
            cc, flags, under = CONFIGS[config]
            for mode in ("float", "fixed"):
                ref = refs[mode]
                total += 1
                out = os.path.join(work, f"{name}.{config}.{mode}")
                r = subprocess.run([refold, "run", model, "--engine=c", "--cc", cc, "--cflags", flags,
                                    "--run-under", under, "--c-requant=" + mode, "-o", out, "--seed", "7",
                                    "--quiet"] + dims, capture_output=True, text=True)
                if r.returncode:
                    print(f"{name} {config} {mode}: FAILED: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")
                    continue
                ok, parts, steps = True, [], []
                for output, scale in scales.items():
                    fname = output.replace("/", "_") + ".pb"
                    want, got = read(os.path.join(ref, fname)), read(os.path.join(out, fname))
                    if scale is None:
                        err = np.abs(want - got).max() / max(np.abs(want).max(), 1e-3)
                        ok &= bool(err <= 5e-2)
                        parts.append(f"{output}: float, max relative error {err:.2e}")
                        continue
                    steps.append(np.rint(np.abs(want - got) / scale).reshape(-1))
                if steps:
                    steps = np.concatenate(steps)
                    same = float((steps == 0).mean()) * 100
                    worst = int(steps.max()) if steps.size else 0
                    ok &= worst <= 1 and (mode == "fixed" or same >= 99.9)
                    parts.insert(0, f"int8 tensors: {same:.3f}% of {steps.size} identical, max {worst} step(s)")
                passed += ok
                print(f"{name} {config} {mode}: {'ok' if ok else 'FAILED'}, " + "; ".join(parts))
    print(f"int8 c-output: {passed}/{total} runs match the interpreter")
    return 0 if passed == total else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
