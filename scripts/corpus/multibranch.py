"""Multi-branch training-time networks with seeded random weights and
randomized BatchNorm statistics, each with its deploy twin (one conv per
block, reparameterized in PyTorch the way the papers do):
  acnet      ACNet ResNet-18: every 3x3 conv-BN is 3x3 + 1x3 + 3x1 conv-BN
  dbb        DBB ResNet-18: every 3x3 conv-BN is a Diverse Branch Block
             (3x3, 1x1, 1x1 -> AvgPool, 1x1 -> 3x3, each with BN) written
             with ordinary zero padding (no BNAndPad layer)
  dbb_bnpad  the same with DBB's BNAndPad layer in the 1x1 -> AvgPool and
             1x1 -> 3x3 branches, written as its equivalent: zero Pad, then BN
  mobileone  MobileOne-S0: k=4 over-parameterized 3x3 depthwise and 1x1
             pointwise conv-BN branches, a 1x1 scale branch, a BN skip
Exports OUT/<name>_<size>.onnx, OUT/<name>_<size>_preserve.onnx (every BN
kept) and OUT/<name>_<size>_deploy.onnx. --size small keeps them tiny for
tests. Every twin is exact. The zero-padded DBB cannot be one conv: its
twin is the merged conv plus the constant its branch biases leave on the
border rows and columns (the block's response to a zero input minus the
conv's), the form DBB's BNAndPad layer exists to avoid.
"""
import torch
import torch.nn as nn

from common import generator_main


def conv_bn(cin, cout, k, stride, pad, groups=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, pad, groups=groups, bias=False),
                         nn.BatchNorm2d(cout))


def fuse(kernel, bn):
    """Kernel and bias of conv (bias-free) followed by BN."""
    kernel = kernel if torch.is_tensor(kernel) else kernel.weight
    std = (bn.running_var + bn.eps).sqrt()
    return kernel * (bn.weight / std).reshape(-1, 1, 1, 1), bn.bias - bn.running_mean * bn.weight / std


def pad_to(kernel, kh, kw):
    dh, dw = kh - kernel.shape[2], kw - kernel.shape[3]
    return nn.functional.pad(kernel, [dw // 2, dw - dw // 2, dh // 2, dh - dh // 2])


def identity_kernel(channels, groups, k):
    per_group = channels // groups
    kernel = torch.zeros(channels, per_group, k, k)
    for c in range(channels):
        kernel[c, c % per_group, k // 2, k // 2] = 1
    return kernel


def compose_1x1(k1, b1, k2, b2):
    """1x1 conv (k1, b1) then conv (k2, b2), ignoring padding."""
    kernel = torch.einsum("omhw,mc->ochw", k2, k1[:, :, 0, 0])
    return kernel, b2 + torch.einsum("omhw,m->o", k2, b1)


class Unit(nn.Module):
    """A training-time block that becomes one conv in the twin."""

    def __init__(self):
        super().__init__()
        self.deploy, self.border = None, None

    def forward(self, x):
        if self.deploy is None:
            self.input_shape = x.shape  # the twin's border constant needs it
            return self.train_forward(x)
        return self.deploy(x) + self.border if self.border is not None else self.deploy(x)

    def set_deploy(self, kernel, bias, cin, cout, k, stride, groups=1):
        self.deploy = nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups)
        self.deploy.weight.data, self.deploy.bias.data = kernel.detach(), bias.detach()


class ConvBN(Unit):
    def __init__(self, cin, cout, k, stride):
        super().__init__()
        self.body, self.cfg = conv_bn(cin, cout, k, stride, k // 2), (cin, cout, k, stride)

    def train_forward(self, x):
        return self.body(x)

    def reparameterize(self):
        self.set_deploy(*fuse(self.body[0], self.body[1]), *self.cfg)


class ACBlock(Unit):
    """ACNet: square, horizontal and vertical kernels, each with its BN."""

    def __init__(self, cin, cout, k, stride):
        super().__init__()
        self.cfg = (cin, cout, k, stride)
        self.square = conv_bn(cin, cout, (k, k), stride, k // 2)
        self.hor = conv_bn(cin, cout, (1, k), stride, (0, k // 2))
        self.ver = conv_bn(cin, cout, (k, 1), stride, (k // 2, 0))

    def train_forward(self, x):
        return self.square(x) + self.hor(x) + self.ver(x)

    def reparameterize(self):
        k = self.cfg[2]
        kernel, bias = 0, 0
        for branch in (self.square, self.hor, self.ver):
            kb, bb = fuse(branch[0], branch[1])
            kernel, bias = kernel + pad_to(kb, k, k), bias + bb
        self.set_deploy(kernel, bias, *self.cfg)


class DBBlock(Unit):
    """Diverse Branch Block; bn_pad=False zero-pads the k x k and pool
    branches, bn_pad=True pads before the BN as DBB's BNAndPad does."""

    def __init__(self, cin, cout, k, stride, bn_pad=False):
        super().__init__()
        self.cfg, p = (cin, cout, k, stride), k // 2
        self.origin = conv_bn(cin, cout, k, stride, p)
        self.one = conv_bn(cin, cout, 1, stride, 0)
        if bn_pad:
            self.avg = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.ZeroPad2d(p), nn.BatchNorm2d(cout),
                                     nn.AvgPool2d(k, stride, 0), nn.BatchNorm2d(cout))
            self.one_kxk = nn.Sequential(nn.Conv2d(cin, cin, 1, bias=False), nn.ZeroPad2d(p),
                                         nn.BatchNorm2d(cin), *conv_bn(cin, cout, k, stride, 0))
        else:
            self.avg = nn.Sequential(*conv_bn(cin, cout, 1, 1, 0), nn.AvgPool2d(k, stride, p),
                                     nn.BatchNorm2d(cout))
            self.one_kxk = nn.Sequential(*conv_bn(cin, cin, 1, 1, 0), *conv_bn(cin, cout, k, stride, p))
        self.bn_pad = bn_pad

    def train_forward(self, x):
        return self.origin(x) + self.one(x) + self.avg(x) + self.one_kxk(x)

    def reparameterize(self):
        cin, cout, k, stride = self.cfg
        avg, one_kxk = self.avg, self.one_kxk
        if self.bn_pad:  # the Pad layers are the conv padding of the deploy form
            avg, one_kxk = [avg[0], avg[2], avg[3], avg[4]], [one_kxk[0], one_kxk[2], one_kxk[3], one_kxk[4]]
        k0, b0 = fuse(self.origin[0], self.origin[1])
        k1, b1 = fuse(self.one[0], self.one[1])
        ka1, ba1 = fuse(avg[0], avg[1])
        pool = torch.eye(cout)[:, :, None, None].expand(cout, cout, k, k) / (k * k)
        ka2, ba2 = fuse(pool, avg[3])
        ka, ba = compose_1x1(ka1, ba1, ka2, ba2)
        kk1, bk1 = fuse(one_kxk[0], one_kxk[1])
        kk2, bk2 = fuse(one_kxk[2], one_kxk[3])
        kk, bk = compose_1x1(kk1, bk1, kk2, bk2)
        if not self.bn_pad:
            zeros = torch.zeros(1, *self.input_shape[1:])
            response = self.train_forward(zeros)
        self.set_deploy(k0 + pad_to(k1, k, k) + ka + kk, b0 + b1 + ba + bk, *self.cfg)
        if not self.bn_pad:
            self.border = response - self.deploy(zeros)


class BasicBlock(nn.Module):
    def __init__(self, unit, cin, cout, stride):
        super().__init__()
        self.a, self.b = unit(cin, cout, 3, stride), unit(cout, cout, 3, 1)
        self.down = ConvBN(cin, cout, 1, stride) if stride != 1 or cin != cout else None
        self.relu = nn.ReLU()

    def forward(self, x):
        y = self.b(self.relu(self.a(x)))
        return self.relu(y + (self.down(x) if self.down is not None else x))


def resnet18(unit, widths, blocks):
    layers, cin = [ConvBN(3, widths[0], 7, 2), nn.ReLU(), nn.MaxPool2d(3, 2, 1)], widths[0]
    for stage, (w, n) in enumerate(zip(widths, blocks)):
        for i in range(n):
            layers.append(BasicBlock(unit, cin, w, 2 if i == 0 and stage > 0 else 1))
            cin = w
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 10))


class MobileOneBlock(Unit):
    """k conv-BN branches, a 1x1 conv-BN scale branch (k x k only) and a BN skip."""

    def __init__(self, cin, cout, k, stride, groups, branches):
        super().__init__()
        self.cfg, self.groups = (cin, cout, k, stride), groups
        self.convs = nn.ModuleList(conv_bn(cin, cout, k, stride, k // 2, groups)
                                   for _ in range(branches))
        self.scale = conv_bn(cin, cout, 1, stride, 0, groups) if k > 1 else None
        self.skip = nn.BatchNorm2d(cin) if cin == cout and stride == 1 else None
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(super().forward(x))

    def train_forward(self, x):
        y = sum(b(x) for b in self.convs)
        if self.scale is not None:
            y = y + self.scale(x)
        if self.skip is not None:
            y = y + self.skip(x)
        return y

    def reparameterize(self):
        cin, cout, k, stride = self.cfg
        kernel, bias = 0, 0
        for b in self.convs:
            kb, bb = fuse(b[0], b[1])
            kernel, bias = kernel + kb, bias + bb
        if self.scale is not None:
            kb, bb = fuse(self.scale[0], self.scale[1])
            kernel, bias = kernel + pad_to(kb, k, k), bias + bb
        if self.skip is not None:
            kb, bb = fuse(identity_kernel(cin, self.groups, k), self.skip)
            kernel, bias = kernel + kb, bias + bb
        self.set_deploy(kernel, bias, *self.cfg, groups=self.groups)


def mobileone(widths, blocks, k=4):
    layers, cin = [MobileOneBlock(3, widths[0], 3, 2, 1, 1)], widths[0]
    for w, n in zip(widths, blocks):
        for i in range(n):
            stride = 2 if i == 0 else 1
            layers.append(MobileOneBlock(cin, cin, 3, stride, cin, k))
            layers.append(MobileOneBlock(cin, w, 1, 1, 1, k))
            cin = w
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 10))


MODELS = {
    "acnet": {"full": ([64, 128, 256, 512], [2, 2, 2, 2], 224),
              "small": ([4, 4, 8, 8], [1, 1, 1, 1], 32)},
    "dbb": {"full": ([64, 128, 256, 512], [2, 2, 2, 2], 224),
            "small": ([4, 4, 8, 8], [1, 1, 1, 1], 32)},
    "dbb_bnpad": {"full": ([64, 128, 256, 512], [2, 2, 2, 2], 224),
                  "small": ([4, 4, 8, 8], [1, 1, 1, 1], 32)},
    "mobileone": {"full": ([48, 128, 256, 1024], [2, 8, 10, 1], 224),
                  "small": ([8, 16, 16, 32], [1, 1, 1, 1], 32)},
}


def build(name, size):
    widths, blocks, resolution = MODELS[name][size]
    if name == "mobileone":
        return mobileone(widths, blocks), resolution
    unit = {"acnet": ACBlock, "dbb": DBBlock,
            "dbb_bnpad": lambda *cfg: DBBlock(*cfg, bn_pad=True)}[name]
    return resnet18(unit, widths, blocks), resolution


def main():
    generator_main(MODELS, build,
                   lambda net: [m.reparameterize() for m in net.modules() if isinstance(m, Unit)])


if __name__ == "__main__":
    main()
