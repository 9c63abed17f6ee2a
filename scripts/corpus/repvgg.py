"""RepVGG in training form (3x3 conv-BN + 1x1 conv-BN + BN identity per
block) with seeded random weights and randomized BatchNorm statistics, and its
deploy twin (one 3x3 conv per block, computed the way RepVGG's own
reparameterization does). Exports:
  OUT/repvgg_<variant>.onnx           torch's default export (BN after conv folded)
  OUT/repvgg_<variant>_preserve.onnx  every BatchNormalization kept
  OUT/repvgg_<variant>_deploy.onnx    the deploy twin
Variants: a0 (RepVGG-A0, 224x224) and tiny (a small network for test fixtures).
"""
import argparse
import os

import torch
import torch.nn as nn

from common import export_train_and_deploy, randomize_batchnorm

VARIANTS = {
    # blocks per stage, widths per stage, input size
    "a0": ([1, 2, 4, 14, 1], [48, 48, 96, 192, 1280], 224),
    "tiny": ([1, 1, 2, 1, 1], [8, 8, 16, 16, 32], 32),
}


def conv_bn(cin, cout, k, stride, pad):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, pad, bias=False), nn.BatchNorm2d(cout))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.dense = conv_bn(cin, cout, 3, stride, 1)
        self.one = conv_bn(cin, cout, 1, stride, 0)
        self.identity = nn.BatchNorm2d(cin) if cin == cout and stride == 1 else None
        self.relu = nn.ReLU()
        self.deploy = None

    def forward(self, x):
        if self.deploy is not None:
            return self.relu(self.deploy(x))
        y = self.dense(x) + self.one(x)
        if self.identity is not None:
            y = y + self.identity(x)
        return self.relu(y)

    @staticmethod
    def fuse(kernel, bn):
        std = (bn.running_var + bn.eps).sqrt()
        t = (bn.weight / std).reshape(-1, 1, 1, 1)
        return kernel * t, bn.bias - bn.running_mean * bn.weight / std

    def reparameterize(self):
        k3, b3 = self.fuse(self.dense[0].weight, self.dense[1])
        k1, b1 = self.fuse(self.one[0].weight, self.one[1])
        k = k3 + nn.functional.pad(k1, [1, 1, 1, 1])
        b = b3 + b1
        if self.identity is not None:
            cin = self.dense[0].in_channels
            ident = torch.zeros(cin, cin, 3, 3)
            for c in range(cin):
                ident[c, c, 1, 1] = 1
            ki, bi = self.fuse(ident, self.identity)
            k, b = k + ki, b + bi
        conv = self.dense[0]
        self.deploy = nn.Conv2d(conv.in_channels, conv.out_channels, 3, conv.stride, 1)
        self.deploy.weight.data, self.deploy.bias.data = k.detach(), b.detach()


class RepVGG(nn.Module):
    def __init__(self, blocks, widths, classes=10):
        super().__init__()
        layers, cin = [], 3
        for stage, (n, width) in enumerate(zip(blocks, widths)):
            for i in range(n):
                layers.append(Block(cin, width, 2 if i == 0 else 1))
                cin = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.body(x)
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--variant", default="a0", choices=sorted(VARIANTS))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    blocks, widths, size = VARIANTS[args.variant]
    model = RepVGG(blocks, widths)
    randomize_batchnorm(model)
    x = torch.randn(1, 3, size, size)
    export_train_and_deploy(model, x, os.path.join(args.out, f"repvgg_{args.variant}"),
                            lambda net: [m.reparameterize() for m in net.modules()
                                         if isinstance(m, Block)])


if __name__ == "__main__":
    main()
