"""Shared by the corpus generators: random BatchNorm statistics, the three
exports (torch's default, every BN kept, deploy twin) and the command line."""
import argparse
import os

import torch
import torch.nn as nn


def randomize_batchnorm(model):
    """Default BN is the identity and would hide wrong folds."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)


def export_train_and_deploy(model, x, base, reparameterize):
    """Writes base.onnx, base_preserve.onnx and base_deploy.onnx;
    `reparameterize(model)` turns the model into its deploy twin in place,
    which must compute the same function."""
    model.eval()
    common = dict(opset_version=13, input_names=["input"], output_names=["logits"])
    torch.onnx.export(model, x, base + ".onnx", **common)
    torch.onnx.export(model, x, base + "_preserve.onnx",
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False, **common)
    with torch.no_grad():
        reference = model(x)
        reparameterize(model)
        error = ((model(x) - reference).abs().max() / reference.abs().max()).item()
    assert error < 1e-4, f"deploy twin differs by {error} (relative)"
    torch.onnx.export(model, x, base + "_deploy.onnx", **common)


def generator_main(models, build, reparameterize):
    """The command line every generator shares: OUT --model NAME --size
    full|small. `build(name, size)` returns (model, input resolution)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--model", choices=sorted(models), required=True)
    parser.add_argument("--size", choices=["full", "small"], default="full")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    model, resolution = build(args.model, args.size)
    randomize_batchnorm(model)
    x = torch.randn(1, 3, resolution, resolution)
    export_train_and_deploy(model, x, os.path.join(args.out, f"{args.model}_{args.size}"),
                            reparameterize)
