"""Multi-branch training-time blocks with seeded random weights and
randomized BatchNorm statistics, each with its deploy twin (one conv per
block, reparameterized in PyTorch the way the papers do):
  acnet      ACNet ResNet-18-style stem+stages: 3x3 + 1x3 + 3x1 conv-BN branches
  mobileone  MobileOne-S0-style: k=4 over-parameterized 3x3 depthwise and 1x1
             pointwise conv-BN branches, a 1x1 scale branch, a BN skip
Exports OUT/<name>.onnx, OUT/<name>_preserve.onnx (every BN kept) and
OUT/<name>_deploy.onnx. --size small keeps them tiny for tests.
"""
import argparse
import os

import torch
import torch.nn as nn

from common import export_train_and_deploy, randomize_batchnorm


def conv_bn(cin, cout, k, stride, pad, groups=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, pad, groups=groups, bias=False),
                         nn.BatchNorm2d(cout))


def fuse(conv_or_kernel, bn):
    kernel = conv_or_kernel if torch.is_tensor(conv_or_kernel) else conv_or_kernel.weight
    std = (bn.running_var + bn.eps).sqrt()
    t = (bn.weight / std).reshape(-1, 1, 1, 1)
    return kernel * t, bn.bias - bn.running_mean * bn.weight / std


def pad_to(kernel, kh, kw):
    dh, dw = kh - kernel.shape[2], kw - kernel.shape[3]
    return nn.functional.pad(kernel, [dw // 2, dw - dw // 2, dh // 2, dh - dh // 2])


def identity_kernel(channels, groups, k):
    per_group = channels // groups
    kernel = torch.zeros(channels, per_group, k, k)
    for c in range(channels):
        kernel[c, c % per_group, k // 2, k // 2] = 1
    return kernel


class Reparam(nn.Module):
    """Sum of conv-BN branches (+ optional BN skip) -> activation."""

    def __init__(self, cin, cout, stride, groups, branches, skip, act=True):
        super().__init__()
        self.branches = nn.ModuleList(
            conv_bn(cin, cout, k, stride, p, groups) for k, p in branches)
        self.skip = nn.BatchNorm2d(cin) if skip and cin == cout and stride == 1 else None
        self.act = nn.ReLU() if act else nn.Identity()
        self.deploy = None
        self.cfg = (cin, cout, stride, groups)

    def forward(self, x):
        if self.deploy is not None:
            return self.act(self.deploy(x))
        y = sum(b(x) for b in self.branches)
        if self.skip is not None:
            y = y + self.skip(x)
        return self.act(y)

    def reparameterize(self):
        cin, cout, stride, groups = self.cfg
        kh = max(b[0].kernel_size[0] for b in self.branches)
        kw = max(b[0].kernel_size[1] for b in self.branches)
        kernel, bias = 0, 0
        for b in self.branches:
            k, bb = fuse(b[0], b[1])
            kernel, bias = kernel + pad_to(k, kh, kw), bias + bb
        if self.skip is not None:
            k, bb = fuse(identity_kernel(cin, groups, kh), self.skip)
            kernel, bias = kernel + k, bias + bb
        self.deploy = nn.Conv2d(cin, cout, (kh, kw), stride, (kh // 2, kw // 2), groups=groups)
        self.deploy.weight.data, self.deploy.bias.data = kernel.detach(), bias.detach()


def acnet(widths, blocks):
    layers, cin = [], 3
    for stage, (w, n) in enumerate(zip(widths, blocks)):
        for i in range(n):
            stride = 2 if i == 0 else 1
            layers.append(Reparam(cin, w, stride, 1, [(3, 1), ((1, 3), (0, 1)), ((3, 1), (1, 0))],
                                  skip=False))
            cin = w
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 10))


def mobileone(widths, blocks, k=4):
    layers, cin = [], 3
    for w, n in zip(widths, blocks):
        for i in range(n):
            stride = 2 if i == 0 else 1
            # Depthwise 3x3 stage: k 3x3 branches, a 1x1 scale branch, BN skip.
            layers.append(Reparam(cin, cin, stride, cin, [(3, 1)] * k + [(1, 0)], skip=True))
            # Pointwise stage: k 1x1 branches, BN skip.
            layers.append(Reparam(cin, w, 1, 1, [(1, 0)] * k, skip=True))
            cin = w
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 10))


MODELS = {
    "acnet": {"full": ([64, 128, 256, 512], [2, 2, 2, 2], 224),
              "small": ([8, 8, 16, 16], [1, 1, 1, 1], 32)},
    "mobileone": {"full": ([48, 128, 256, 1024], [2, 8, 10, 1], 224),
                  "small": ([8, 16, 16, 32], [1, 1, 1, 1], 32)},
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--model", choices=sorted(MODELS), required=True)
    parser.add_argument("--size", choices=["full", "small"], default="full")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    widths, blocks, size = MODELS[args.model][args.size]
    model = (acnet if args.model == "acnet" else mobileone)(widths, blocks)
    randomize_batchnorm(model)
    x = torch.randn(1, 3, size, size)
    export_train_and_deploy(model, x, os.path.join(args.out, f"{args.model}_{args.size}"),
                            lambda net: [m.reparameterize() for m in net.modules()
                                         if isinstance(m, Reparam)])


if __name__ == "__main__":
    main()
