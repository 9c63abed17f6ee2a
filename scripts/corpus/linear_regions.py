"""Re-parameterizable families whose blocks are linear regions the earlier
generators do not write, with seeded random weights, randomized BatchNorm
statistics and random per-channel scales, each with its deploy twin (the
trained block's weights fused, so that twin and original compute the same
function):
  fastvit     FastViT-style stages: RepMixer x + s * (mixer(x) - BN(x)),
              mixer a MobileOne depthwise block (3x3 + 1x1 conv-BN + BN skip),
              then a ConvFFN (7x7 depthwise conv-BN, 1x1, GELU, 1x1) with
              its own layer scale
  orepa       OREPA-style blocks: 3x3, 1x1, 1x1 -> 3x3 and 1x1 -> Pad ->
              AvgPool branches, each multiplied by a per-channel vector,
              summed, one BN, ReLU
  acnet_crop  ACNet in its crop form: an explicit zero Pad, the 3x3 reads it,
              the 3x1 and 1x3 branches read a Slice of it (ACNet's code when
              padding < kernel / 2), each branch with its BN
  repvit      RepViT-style blocks: a RepVGG depthwise token mixer
              BN(conv-BN 3x3 + conv 1x1 + x) and a GELU channel mixer
              (1x1 conv-BN, GELU, 1x1 conv-BN) with a residual
  lab         PP-HGNetV2-style learnable affine blocks (a text detector's
              backbone): conv-BN, then x * a + b with scalar a, b, ReLU, and
              another scalar x * a + b, in depthwise/pointwise residual
              blocks: every conv and activation ends in a scalar affine
Exports OUT/<name>_<size>.onnx, _preserve.onnx (every BN kept) and
_deploy.onnx: one conv per RepMixer, OREPA block, ACNet block and token
mixer; GELUs kept whole; lab's affine before each ReLU fused into its conv.
"""
import torch
import torch.nn as nn

from common import generator_main
from multibranch import compose_1x1, conv_bn, fuse, identity_kernel, pad_to


def random_scale(channels):
    """A per-channel [C, 1, 1] parameter far from 1 (an identity hides bugs)."""
    return nn.Parameter(torch.empty(channels, 1, 1).uniform_(-1.5, 1.5))


def deploy_conv(kernel, bias, stride=1, groups=1):
    k = kernel.shape[2]
    conv = nn.Conv2d(kernel.shape[1] * groups, kernel.shape[0], k, stride, k // 2, groups=groups)
    conv.weight.data, conv.bias.data = kernel.detach().clone(), bias.detach().clone()
    return conv


class Reparam(nn.Module):
    """A block with a training form and, after reparameterize(), a deploy form."""

    def __init__(self):
        super().__init__()
        self.deploy = None

    def forward(self, x):
        return self.train_forward(x) if self.deploy is None else self.deploy(x)


class ConvBN(Reparam):
    def __init__(self, cin, cout, k, stride=1, groups=1):
        super().__init__()
        self.body, self.cfg = conv_bn(cin, cout, k, stride, k // 2, groups), (stride, groups)

    def train_forward(self, x):
        return self.body(x)

    def reparameterize(self):
        self.deploy = deploy_conv(*fuse(self.body[0], self.body[1]), *self.cfg)


# --- FastViT -----------------------------------------------------------------

class RepMixer(Reparam):
    """x + s * (mixer(x) - norm(x)), all depthwise: one depthwise 3x3 conv."""

    def __init__(self, dim):
        super().__init__()
        self.dim = dim
        self.norm = nn.BatchNorm2d(dim)
        self.mixer_kxk = conv_bn(dim, dim, 3, 1, 1, dim)
        self.mixer_1x1 = conv_bn(dim, dim, 1, 1, 0, dim)
        self.mixer_skip = nn.BatchNorm2d(dim)
        self.layer_scale = random_scale(dim)

    def train_forward(self, x):
        mixer = self.mixer_kxk(x) + self.mixer_1x1(x) + self.mixer_skip(x)
        return x + self.layer_scale * (mixer - self.norm(x))

    def reparameterize(self):
        d = self.dim
        k3, b3 = fuse(self.mixer_kxk[0], self.mixer_kxk[1])
        k1, b1 = fuse(self.mixer_1x1[0], self.mixer_1x1[1])
        ks, bs = fuse(identity_kernel(d, d, 3), self.mixer_skip)
        kn, bn = fuse(identity_kernel(d, d, 3), self.norm)
        s = self.layer_scale.reshape(-1, 1, 1, 1)
        kernel = identity_kernel(d, d, 3) + s * (k3 + pad_to(k1, 3, 3) + ks - kn)
        bias = self.layer_scale.flatten() * (b3 + b1 + bs - bn)
        self.deploy = deploy_conv(kernel, bias, groups=d)


class ConvFFN(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.conv = ConvBN(dim, dim, 7, groups=dim)
        self.fc1, self.act, self.fc2 = nn.Conv2d(dim, hidden, 1), nn.GELU(), nn.Conv2d(hidden, dim, 1)
        self.layer_scale = random_scale(dim)
        self.fused = False

    def forward(self, x):
        y = self.fc2(self.act(self.fc1(self.conv(x))))
        return x + (y if self.fused else self.layer_scale * y)

    def reparameterize(self):
        s = self.layer_scale.detach()
        self.fc2.weight.data = self.fc2.weight.data * s.reshape(-1, 1, 1, 1)
        self.fc2.bias.data = self.fc2.bias.data * s.flatten()
        self.fused = True


def fastvit(widths, blocks):
    layers, cin = [ConvBN(3, widths[0], 3, 2), nn.GELU()], widths[0]
    for stage, (w, n) in enumerate(zip(widths, blocks)):
        if stage:
            layers += [ConvBN(cin, w, 3, 2), nn.GELU()]
        for _ in range(n):
            layers += [RepMixer(w), ConvFFN(w, 3 * w)]
        cin = w
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 10))


# --- OREPA -------------------------------------------------------------------

class OREPABlock(Reparam):
    """BN(s0 * 3x3(x) + s1 * 1x1(x) + s2 * 3x3(1x1(x)) + s3 * AvgPool(Pad(1x1(x))))."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.stride = stride
        self.origin = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.one = nn.Conv2d(cin, cout, 1, stride, 0, bias=False)
        self.kxk_in = nn.Conv2d(cin, cin, 1, bias=False)
        self.kxk = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.avg_in = nn.Conv2d(cin, cout, 1, bias=False)
        self.avg = nn.AvgPool2d(3, stride, 0)
        self.scales = nn.ParameterList(random_scale(cout) for _ in range(4))
        self.bn = nn.BatchNorm2d(cout)

    def train_forward(self, x):
        s = self.scales
        pooled = self.avg(nn.functional.pad(self.avg_in(x), [1, 1, 1, 1]))
        y = (s[0] * self.origin(x) + s[1] * self.one(x) + s[2] * self.kxk(self.kxk_in(x))
             + s[3] * pooled)
        return self.bn(y)

    def reparameterize(self):
        cout = self.origin.out_channels
        zero = torch.zeros(cout)
        pool = torch.eye(cout)[:, :, None, None].expand(cout, cout, 3, 3) / 9
        kxk, _ = compose_1x1(self.kxk_in.weight, torch.zeros(self.kxk_in.out_channels),
                             self.kxk.weight, zero)
        avg, _ = compose_1x1(self.avg_in.weight, zero, pool, zero)
        s = [v.reshape(-1, 1, 1, 1) for v in self.scales]
        kernel = (s[0] * self.origin.weight + s[1] * pad_to(self.one.weight, 3, 3)
                  + s[2] * kxk + s[3] * avg)
        self.deploy = deploy_conv(*fuse(kernel, self.bn), self.stride)


def orepa(widths, blocks):
    layers, cin = [], 3
    for w, n in zip(widths, blocks):
        for i in range(n):
            layers += [OREPABlock(cin, w, 2 if i == 0 else 1), nn.ReLU()]
            cin = w
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 10))


# --- ACNet, crop form --------------------------------------------------------

class ACCropBlock(Reparam):
    """ACNet's ACBlock with padding 0 < kernel / 2 after an explicit Pad:
    the 3x1 and 1x3 branches crop the padded input instead of padding."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.stride = stride
        self.pad = nn.ZeroPad2d(1)
        self.square = conv_bn(cin, cout, (3, 3), stride, 0)
        self.ver = conv_bn(cin, cout, (3, 1), stride, 0)
        self.hor = conv_bn(cin, cout, (1, 3), stride, 0)

    def train_forward(self, x):
        x = self.pad(x)
        return self.square(x) + self.ver(x[:, :, :, 1:-1]) + self.hor(x[:, :, 1:-1, :])

    def reparameterize(self):
        kernel, bias = 0, 0
        for branch in (self.square, self.ver, self.hor):
            kb, bb = fuse(branch[0], branch[1])
            kernel, bias = kernel + pad_to(kb, 3, 3), bias + bb
        self.deploy = deploy_conv(kernel, bias, self.stride)


class ACBasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.a, self.b = ACCropBlock(cin, cout, stride), ACCropBlock(cout, cout, 1)
        self.down = ConvBN(cin, cout, 1, stride) if stride != 1 or cin != cout else None
        self.relu = nn.ReLU()

    def forward(self, x):
        y = self.b(self.relu(self.a(x)))
        return self.relu(y + (self.down(x) if self.down is not None else x))


def acnet_crop(widths, blocks):
    layers, cin = [ConvBN(3, widths[0], 7, 2), nn.ReLU(), nn.MaxPool2d(3, 2, 1)], widths[0]
    for stage, (w, n) in enumerate(zip(widths, blocks)):
        for i in range(n):
            layers.append(ACBasicBlock(cin, w, 2 if i == 0 and stage > 0 else 1))
            cin = w
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 10))


# --- RepViT ------------------------------------------------------------------

class RepVGGDW(Reparam):
    """RepViT's token mixer: BN(depthwise conv-BN 3x3 + depthwise 1x1 + x)."""

    def __init__(self, dim):
        super().__init__()
        self.dim = dim
        self.conv = conv_bn(dim, dim, 3, 1, 1, dim)
        self.conv1 = nn.Conv2d(dim, dim, 1, groups=dim)
        self.bn = nn.BatchNorm2d(dim)

    def train_forward(self, x):
        return self.bn(self.conv(x) + self.conv1(x) + x)

    def reparameterize(self):
        k3, b3 = fuse(self.conv[0], self.conv[1])
        kernel = k3 + pad_to(self.conv1.weight, 3, 3) + identity_kernel(self.dim, self.dim, 3)
        std = (self.bn.running_var + self.bn.eps).sqrt()
        s = self.bn.weight / std
        bias = (b3 + self.conv1.bias - self.bn.running_mean) * s + self.bn.bias
        self.deploy = deploy_conv(kernel * s.reshape(-1, 1, 1, 1), bias, groups=self.dim)


class ChannelMixer(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.up, self.act, self.down = ConvBN(dim, 2 * dim, 1), nn.GELU(), ConvBN(2 * dim, dim, 1)

    def forward(self, x):
        return x + self.down(self.act(self.up(x)))


def repvit(widths, blocks):
    layers = [ConvBN(3, widths[0] // 2, 3, 2), nn.GELU(), ConvBN(widths[0] // 2, widths[0], 3, 2)]
    cin = widths[0]
    for stage, (w, n) in enumerate(zip(widths, blocks)):
        if stage:
            layers += [ConvBN(cin, cin, 3, 2, groups=cin), ConvBN(cin, w, 1), ChannelMixer(w)]
        for _ in range(n):
            layers += [RepVGGDW(w), ChannelMixer(w)]
        cin = w
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 10))


# --- PP-HGNetV2 learnable affine blocks ----------------------------------------

class ScalarAffine(nn.Module):
    """x * a + b with learnable scalars (PP-HGNetV2's LearnableAffineBlock)."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.empty(1).uniform_(0.5, 1.5))
        self.bias = nn.Parameter(torch.empty(1).uniform_(-0.5, 0.5))

    def forward(self, x):
        return x * self.scale + self.bias


class LabConv(Reparam):
    """conv-BN, scalar affine, ReLU, scalar affine."""

    def __init__(self, cin, cout, k, stride=1, groups=1):
        super().__init__()
        self.body, self.cfg = conv_bn(cin, cout, k, stride, k // 2, groups), (stride, groups)
        self.lab_conv, self.act, self.lab_act = ScalarAffine(), nn.ReLU(), ScalarAffine()

    def train_forward(self, x):
        return self.lab_act(self.act(self.lab_conv(self.body(x))))

    def reparameterize(self):
        kernel, bias = fuse(self.body[0], self.body[1])
        a, b = self.lab_conv.scale, self.lab_conv.bias
        self.deploy = nn.Sequential(deploy_conv(kernel * a, bias * a + b, *self.cfg), self.act,
                                    self.lab_act)


class LabBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dw, self.pw = LabConv(dim, dim, 3, groups=dim), LabConv(dim, dim, 1)

    def forward(self, x):
        return x + self.pw(self.dw(x))


def lab(widths, blocks):
    layers = [LabConv(3, widths[0], 3, 2)]
    cin = widths[0]
    for w, n in zip(widths, blocks):
        layers += [LabConv(cin, cin, 3, 2, groups=cin), LabConv(cin, w, 1)]
        layers += [LabBlock(w) for _ in range(n)]
        cin = w
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 10))


MODELS = {
    "fastvit": {"full": ([48, 96, 192, 384], [2, 2, 4, 2], 224),
                "small": ([8, 16], [1, 1], 32)},
    "orepa": {"full": ([64, 128, 256, 512], [2, 2, 3, 2], 224),
              "small": ([8, 8, 16], [1, 1, 1], 32)},
    "acnet_crop": {"full": ([64, 128, 256, 512], [2, 2, 2, 2], 224),
                   "small": ([4, 8], [1, 1], 32)},
    "repvit": {"full": ([48, 96, 192, 384], [2, 2, 8, 2], 224),
               "small": ([8, 16], [1, 1], 32)},
    "lab": {"full": ([32, 64, 128, 256], [2, 2, 4, 2], 224),
            "small": ([8, 16], [1, 1], 32)},
}
BUILDERS = {"fastvit": fastvit, "orepa": orepa, "acnet_crop": acnet_crop, "repvit": repvit,
            "lab": lab}


def build(name, size):
    widths, blocks, resolution = MODELS[name][size]
    return BUILDERS[name](widths, blocks), resolution


def reparameterize(net):
    for m in list(net.modules()):
        if hasattr(m, "reparameterize"):
            m.reparameterize()


def main():
    generator_main(MODELS, build, reparameterize)


if __name__ == "__main__":
    main()
