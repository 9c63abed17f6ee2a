"""Depth-pruned networks as UPDP leaves them, with seeded random weights and
randomized BatchNorm statistics, each with its deploy twin:
  resnet34     pruned basic blocks: 1x1 conv-BN (padding 1) -> 3x3 conv-BN
               (no padding), no inner ReLU, identity, BN + ReLU after the add
  mobilenetv2  pruned inverted residuals without activations: expanding 1x1
               (padding 1) -> depthwise 3x3 -> projecting 1x1, identity
  convnext_t   BN in place of every LayerNorm, pruned blocks without GELU
               (depthwise 7x7 -> BN -> channels-last Linear -> Linear ->
               layer scale, identity)
  deit_tiny    BN in place of every LayerNorm (over the embedding of each
               token), pruned blocks' MLPs without GELU
Every other block that keeps its shape is pruned. Exports
OUT/<name>_<size>.onnx, _preserve.onnx and _deploy.onnx (each pruned block
one conv, BNs folded, pruned MLPs one linear layer).
"""

import torch
import torch.nn as nn

from common import generator_main


def fuse(conv, bn):
    std = (bn.running_var + bn.eps).sqrt()
    s = bn.weight / std
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    return conv.weight * s.reshape(-1, *[1] * (conv.weight.dim() - 1)), (bias - bn.running_mean) * s + bn.bias


def bn_affine(bn):
    s = bn.weight / (bn.running_var + bn.eps).sqrt()
    return s, bn.bias - bn.running_mean * s


def conv_from(weight, bias, stride=1, padding=0, groups=1):
    conv = nn.Conv2d(weight.shape[1] * groups, weight.shape[0], weight.shape[2:], stride, padding,
                     groups=groups)
    conv.weight.data, conv.bias.data = weight.detach().clone(), bias.detach().clone()
    return conv


def compose(w1, b1, w2, b2):
    """conv w2 after conv w1 (stride 1, no padding between): one conv."""
    k = w1.shape[2] + w2.shape[2] - 1
    # Full convolution of the kernels: the merged kernel is conv2 applied to conv1's kernel.
    merged = nn.functional.conv2d(w1.permute(1, 0, 2, 3), w2.flip(2, 3), padding=w2.shape[2] - 1)
    merged = merged.permute(1, 0, 2, 3)
    assert merged.shape[2] == k
    return merged, b2 + torch.einsum("omhw,m->o", w2, b1)


def dense(w, groups):
    if groups == 1:
        return w
    out, per = w.shape[0], w.shape[1]
    full = torch.zeros(out, per * groups, *w.shape[2:])
    for o in range(out):
        g = o // (out // groups)
        full[o, g * per:(g + 1) * per] = w[o]
    return full


class Deployable(nn.Module):
    def __init__(self):
        super().__init__()
        self.deploy = None

    def forward(self, x):
        return self.deploy(x) if self.deploy is not None else self.train_forward(x)


# ---- ResNet-34 ------------------------------------------------------------

class ConvBN(Deployable):
    def __init__(self, cin, cout, k, stride, relu):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout)
        self.relu = nn.ReLU() if relu else nn.Identity()

    def train_forward(self, x):
        return self.relu(self.bn(self.conv(x)))

    def reparameterize(self):
        self.deploy = nn.Sequential(conv_from(*fuse(self.conv, self.bn), self.conv.stride,
                                              self.conv.padding), self.relu)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.a, self.b = ConvBN(cin, cout, 3, stride, True), ConvBN(cout, cout, 3, 1, False)
        self.down = ConvBN(cin, cout, 1, stride, False) if stride != 1 or cin != cout else None

    def forward(self, x):
        return torch.relu(self.b(self.a(x)) + (self.down(x) if self.down is not None else x))


class PrunedBasicBlock(Deployable):
    def __init__(self, c):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 1, 1, 1, bias=False), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, 1, 0, bias=False), nn.BatchNorm2d(c)
        self.bn = nn.BatchNorm2d(c)

    def train_forward(self, x):
        return torch.relu(self.bn(x + self.bn2(self.conv2(self.bn1(self.conv1(x))))))

    def reparameterize(self):
        w, b = compose(*fuse(self.conv1, self.bn1), *fuse(self.conv2, self.bn2))
        c = w.shape[0]
        w = w + torch.eye(c)[:, :, None, None] * nn.functional.pad(torch.ones(1, 1, 1, 1), [1] * 4)
        s, t = bn_affine(self.bn)
        self.deploy = nn.Sequential(conv_from(w * s.reshape(-1, 1, 1, 1), b * s + t, 1, 1), nn.ReLU())


def resnet34(widths, blocks):
    layers, cin = [ConvBN(3, widths[0], 7, 2, True), nn.MaxPool2d(3, 2, 1)], widths[0]
    for stage, (w, n) in enumerate(zip(widths, blocks)):
        for i in range(n):
            stride = 2 if i == 0 and stage > 0 else 1
            if stride == 1 and cin == w and i % 2 == 1:
                layers.append(PrunedBasicBlock(w))
            else:
                layers.append(BasicBlock(cin, w, stride))
            cin = w
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 10))


# ---- MobileNetV2 ----------------------------------------------------------

class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, t):
        super().__init__()
        hidden = cin * t
        layers = [ConvBN(cin, hidden, 1, 1, True)] if t != 1 else []
        layers += [DepthwiseBN(hidden, stride, True), ConvBN(hidden, cout, 1, 1, False)]
        self.body, self.residual = nn.Sequential(*layers), stride == 1 and cin == cout

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


class DepthwiseBN(Deployable):
    def __init__(self, c, stride, relu, padding=1):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, stride, padding, groups=c, bias=False)
        self.bn, self.relu = nn.BatchNorm2d(c), nn.ReLU6() if relu else nn.Identity()

    def train_forward(self, x):
        return self.relu(self.bn(self.conv(x)))

    def reparameterize(self):
        self.deploy = nn.Sequential(conv_from(*fuse(self.conv, self.bn), self.conv.stride,
                                              self.conv.padding, self.conv.groups), self.relu)


class PrunedInvertedResidual(Deployable):
    def __init__(self, c, t):
        super().__init__()
        h = c * t
        self.expand, self.bn1 = nn.Conv2d(c, h, 1, 1, 1, bias=False), nn.BatchNorm2d(h)
        self.dw, self.bn2 = nn.Conv2d(h, h, 3, 1, 0, groups=h, bias=False), nn.BatchNorm2d(h)
        self.project, self.bn3 = nn.Conv2d(h, c, 1, bias=False), nn.BatchNorm2d(c)

    def train_forward(self, x):
        return x + self.bn3(self.project(self.bn2(self.dw(self.bn1(self.expand(x))))))

    def reparameterize(self):
        w1, b1 = fuse(self.expand, self.bn1)
        w2, b2 = fuse(self.dw, self.bn2)
        w, b = compose(w1, b1, dense(w2, self.dw.groups), b2)
        w, b = compose(w, b, *fuse(self.project, self.bn3))
        c = w.shape[0]
        w = w + torch.eye(c)[:, :, None, None] * nn.functional.pad(torch.ones(1, 1, 1, 1), [1] * 4)
        self.deploy = conv_from(w, b, 1, 1)


def mobilenetv2(settings, width):
    layers, cin = [ConvBN(3, width, 3, 2, True)], width
    for t, c, n, s in settings:
        for i in range(n):
            stride = s if i == 0 else 1
            if stride == 1 and cin == c and i % 2 == 1:
                layers.append(PrunedInvertedResidual(c, t))
            else:
                layers.append(InvertedResidual(cin, c, stride, t))
            cin = c
    return nn.Sequential(*layers, ConvBN(cin, 4 * cin, 1, 1, True), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(4 * cin, 10))


# ---- ConvNeXt-T -----------------------------------------------------------

class ConvNeXtBlock(Deployable):
    def __init__(self, c, pruned):
        super().__init__()
        self.dw, self.norm = nn.Conv2d(c, c, 7, 1, 3, groups=c), nn.BatchNorm2d(c)
        self.fc1, self.fc2 = nn.Linear(c, 4 * c), nn.Linear(4 * c, c)
        self.act = nn.Identity() if pruned else nn.GELU()
        self.gamma = nn.Parameter(torch.rand(c) + 0.5)
        self.pruned = pruned

    def train_forward(self, x):
        y = self.norm(self.dw(x)).permute(0, 2, 3, 1)
        y = self.fc2(self.act(self.fc1(y))) * self.gamma
        return x + y.permute(0, 3, 1, 2)

    def reparameterize(self):
        self.deploy = DeployedConvNeXtBlock(self)


class DeployedConvNeXtBlock(nn.Module):
    """BN folded into the depthwise conv; a pruned MLP (with its layer scale)
    is one 1x1 conv."""

    def __init__(self, block):
        super().__init__()
        self.dw = conv_from(*fuse(block.dw, block.norm), 1, 3, block.dw.groups)
        self.pruned = block.pruned
        if block.pruned:
            w = (block.fc2.weight @ block.fc1.weight) * block.gamma[:, None]
            b = (block.fc2.weight @ block.fc1.bias + block.fc2.bias) * block.gamma
            self.pw = conv_from(w[:, :, None, None], b)
        else:
            self.fc1, self.fc2, self.act, self.gamma = block.fc1, block.fc2, block.act, block.gamma

    def forward(self, x):
        if self.pruned:
            return x + self.pw(self.dw(x))
        y = self.dw(x).permute(0, 2, 3, 1)
        return x + (self.fc2(self.act(self.fc1(y))) * self.gamma).permute(0, 3, 1, 2)


class NormConv(Deployable):
    """ConvNeXt's stem (conv, then norm) and downsampling (norm, then conv)."""

    def __init__(self, cin, cout, k, norm_first):
        super().__init__()
        self.conv, self.norm = nn.Conv2d(cin, cout, k, k), nn.BatchNorm2d(cin if norm_first else cout)
        self.norm_first = norm_first

    def train_forward(self, x):
        return self.conv(self.norm(x)) if self.norm_first else self.norm(self.conv(x))

    def reparameterize(self):
        if not self.norm_first:
            self.deploy = conv_from(*fuse(self.conv, self.norm), self.conv.stride)
            return
        s, t = bn_affine(self.norm)
        w = self.conv.weight * s.reshape(1, -1, 1, 1)
        b = self.conv.bias + torch.einsum("oihw,i->o", self.conv.weight, t)
        self.deploy = conv_from(w, b, self.conv.stride)


def convnext(dims, depths):
    layers = [NormConv(3, dims[0], 4, False)]
    for stage, (d, n) in enumerate(zip(dims, depths)):
        if stage > 0:
            layers.append(NormConv(dims[stage - 1], d, 2, True))
        layers += [ConvNeXtBlock(d, pruned=i % 2 == 1) for i in range(n)]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(dims[-1], 10))


# ---- DeiT-Tiny ------------------------------------------------------------

class TokenBN(nn.BatchNorm1d):
    """BN over the embedding of each token, in place of LayerNorm: [B, N, D]."""

    def forward(self, x):
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


def folded_linear(bn, linear):
    """linear(bn(x)) as one Linear."""
    s, t = bn_affine(bn)
    fused = nn.Linear(linear.in_features, linear.out_features)
    fused.weight.data = (linear.weight * s[None, :]).detach()
    fused.bias.data = (linear.bias + linear.weight @ t).detach()
    return fused


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.qkv, self.proj, self.heads = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim), heads

    def forward(self, x):
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1) * (d // self.heads) ** -0.5).softmax(-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, d))


class DeiTBlock(nn.Module):
    def __init__(self, dim, heads, pruned):
        super().__init__()
        self.norm1, self.attn = TokenBN(dim), Attention(dim, heads)
        self.norm2, self.fc1, self.fc2 = TokenBN(dim), nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)
        self.act, self.pruned = nn.Identity() if pruned else nn.GELU(), pruned
        self.deployed = False

    def forward(self, x):
        if self.deployed:
            x = x + self.attn(x)
            return x + (self.mlp(x) if self.pruned else self.fc2(self.act(self.fc1(x))))
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(self.act(self.fc1(self.norm2(x))))

    def reparameterize(self):
        self.attn.qkv = folded_linear(self.norm1, self.attn.qkv)
        self.fc1 = folded_linear(self.norm2, self.fc1)
        if self.pruned:
            self.mlp = nn.Linear(self.fc1.in_features, self.fc2.out_features)
            self.mlp.weight.data = (self.fc2.weight @ self.fc1.weight).detach()
            self.mlp.bias.data = (self.fc2.weight @ self.fc1.bias + self.fc2.bias).detach()
        self.deployed = True


class DeiT(nn.Module):
    def __init__(self, dim, depth, heads, patch, size):
        super().__init__()
        self.patch = nn.Conv2d(3, dim, patch, patch)
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, (size // patch) ** 2 + 1, dim) * 0.02)
        self.blocks = nn.ModuleList(DeiTBlock(dim, heads, i % 2 == 1) for i in range(depth))
        self.norm, self.head = nn.BatchNorm1d(dim), nn.Linear(dim, 10)
        self.deployed = False

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        for block in self.blocks:
            x = block(x)
        # The class token is normalized after it is taken (BN is per token).
        return self.head(x[:, 0]) if self.deployed else self.head(self.norm(x[:, 0]))

    def reparameterize(self):
        for block in self.blocks:
            block.reparameterize()
        self.head, self.deployed = folded_linear(self.norm, self.head), True


MODELS = {
    "resnet34": {"full": lambda: (resnet34([64, 128, 256, 512], [3, 4, 6, 3]), 224),
                 "small": lambda: (resnet34([4, 8, 8, 8], [3, 2, 1, 1]), 32)},
    "mobilenetv2": {
        "full": lambda: (mobilenetv2([(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                                      (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)], 32), 224),
        "small": lambda: (mobilenetv2([(1, 4, 1, 1), (6, 8, 2, 2), (6, 8, 3, 1)], 8), 32)},
    "convnext_t": {"full": lambda: (convnext([96, 192, 384, 768], [3, 3, 9, 3]), 224),
                   "small": lambda: (convnext([4, 8, 8, 8], [2, 2, 2, 2]), 32)},
    "deit_tiny": {"full": lambda: (DeiT(192, 12, 3, 16, 224), 224),
                  "small": lambda: (DeiT(16, 2, 2, 8, 32), 32)},
}


def reparameterize(net):
    if isinstance(net, DeiT):
        net.reparameterize()
        return
    for m in list(net.modules()):
        if isinstance(m, Deployable):
            m.reparameterize()


def main():
    generator_main(MODELS, lambda name, size: MODELS[name][size](), reparameterize)


if __name__ == "__main__":
    main()
