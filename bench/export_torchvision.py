"""Exports a torchvision model with seeded random weights and randomized
BatchNorm statistics (no pretrained weights are needed or fetched)."""
import argparse

import torch
import torchvision

parser = argparse.ArgumentParser()
parser.add_argument("model", help="torchvision.models name, e.g. resnet50")
parser.add_argument("output")
parser.add_argument("--opset", type=int, default=13)
parser.add_argument("--size", type=int, default=224)
args = parser.parse_args()

torch.manual_seed(0)
if args.model == "deit_tiny":
    # DeiT-Tiny's shape as a torchvision VisionTransformer.
    model = torchvision.models.VisionTransformer(
        image_size=224, patch_size=16, num_layers=12, num_heads=3, hidden_dim=192, mlp_dim=768)
elif hasattr(torchvision.models.segmentation, args.model):
    # Segmentation heads (Resize, Concat, Sigmoid...); the backbone is random too.
    model = getattr(torchvision.models.segmentation, args.model)(
        weights=None, weights_backbone=None, aux_loss=None)
else:
    model = getattr(torchvision.models, args.model)(weights=None)
with torch.no_grad():
    # Zero-initialized layers (e.g. classifier heads) would hide errors.
    for p in model.parameters():
        if p.abs().sum() == 0:
            p.normal_(0, 0.02)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.5, 0.5)
model.eval()
x = torch.randn(1, 3, args.size, args.size)
torch.onnx.export(model, x, args.output, opset_version=args.opset,
                  input_names=["input"], output_names=["output"],
                  dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
