"""Concat-heavy and dynamic-weight networks with seeded random weights and
randomized BatchNorm statistics, each with its deploy twin:
  vovnet27     VoVNet-27-slim: OSA modules (5 sequential 3x3 conv-BN-ReLU
               layers, all concatenated with the input, 1x1 conv-BN-ReLU)
  elan         YOLOv7-tiny backbone: ELAN blocks (two parallel 1x1
               conv-BN-LeakyReLU on one input, two 3x3 on the second,
               concatenated, 1x1)
  kw_static    KernelWarehouse-style convs whose kernels are a constant
               attention mixture of a shared warehouse (Reshape(MatMul))
  kw_dynamic   the same with attention computed from the input (the kernel
               depends on x: it must stay and keep working)
Exports OUT/<name>_<size>.onnx, _preserve.onnx and _deploy.onnx (BNs folded;
ELAN's parallel 1x1 convs one conv; static warehouse kernels plain convs).
"""
import torch
import torch.nn as nn

from common import generator_main


def fused_conv(conv, bn):
    std = (bn.running_var + bn.eps).sqrt()
    s = bn.weight / std
    out = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                    conv.padding, groups=conv.groups)
    out.weight.data = (conv.weight * s.reshape(-1, 1, 1, 1)).detach()
    out.bias.data = (bn.bias - bn.running_mean * s).detach()
    return out


class ConvBNAct(nn.Module):
    def __init__(self, cin, cout, k, stride=1, act=nn.ReLU):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, k // 2, bias=False)
        self.bn, self.act = nn.BatchNorm2d(cout), act()
        self.deploy = None

    def forward(self, x):
        return self.act(self.deploy(x) if self.deploy is not None else self.bn(self.conv(x)))

    def reparameterize(self):
        self.deploy = fused_conv(self.conv, self.bn)


class OSA(nn.Module):
    def __init__(self, cin, stage, concat_out, layers=5):
        super().__init__()
        self.layers = nn.ModuleList(ConvBNAct(cin if i == 0 else stage, stage, 3)
                                    for i in range(layers))
        self.concat = ConvBNAct(cin + layers * stage, concat_out, 1)

    def forward(self, x):
        outs = [x]
        for layer in self.layers:
            outs.append(layer(outs[-1]))
        return self.concat(torch.cat(outs, 1))


def vovnet27(stem, stages, outs):
    layers = [ConvBNAct(3, stem[0], 3, 2), ConvBNAct(stem[0], stem[1], 3),
              ConvBNAct(stem[1], stem[2], 3, 2)]
    cin = stem[2]
    for i, (s, o) in enumerate(zip(stages, outs)):
        if i > 0:
            layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))
        layers.append(OSA(cin, s, o))
        cin = o
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 10))


def leaky():
    return nn.LeakyReLU(0.1)


class ELAN(nn.Module):
    def __init__(self, cin, c, cout):
        super().__init__()
        self.cv1, self.cv2 = ConvBNAct(cin, c, 1, act=leaky), ConvBNAct(cin, c, 1, act=leaky)
        self.cv3, self.cv4 = ConvBNAct(c, c, 3, act=leaky), ConvBNAct(c, c, 3, act=leaky)
        self.cv5 = ConvBNAct(4 * c, cout, 1, act=leaky)
        self.merged = None

    def forward(self, x):
        if self.merged is not None:
            y1, y2 = self.merged(x).chunk(2, 1)
        else:
            y1, y2 = self.cv1(x), self.cv2(x)
        y3 = self.cv3(y2)
        return self.cv5(torch.cat([self.cv4(y3), y3, y2, y1], 1))

    def reparameterize(self):
        for m in (self.cv3, self.cv4, self.cv5):
            m.reparameterize()
        a, b = fused_conv(self.cv1.conv, self.cv1.bn), fused_conv(self.cv2.conv, self.cv2.bn)
        conv = nn.Conv2d(a.in_channels, 2 * a.out_channels, 1)
        conv.weight.data = torch.cat([a.weight, b.weight]).detach()
        conv.bias.data = torch.cat([a.bias, b.bias]).detach()
        self.merged = nn.Sequential(conv, leaky())


def elan_net(widths):
    layers = [ConvBNAct(3, widths[0], 3, 2, leaky), ConvBNAct(widths[0], widths[1], 3, 2, leaky)]
    cin = widths[1]
    for i, w in enumerate(widths[2:]):
        if i > 0:
            layers.append(nn.MaxPool2d(2, 2))
        layers.append(ELAN(cin, w // 2, w))
        cin = w
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 10))


class WarehouseConv(nn.Module):
    """out = conv(x, reshape(attention @ warehouse)): the warehouse is shared
    by the layers of a stage; attention is a parameter (static) or computed
    from x (dynamic, batch 1)."""

    def __init__(self, warehouse, cin, cout, k, dynamic):
        super().__init__()
        self.warehouse, self.shape, self.dynamic = warehouse, (cout, cin, k, k), dynamic
        cells = warehouse.shape[0]
        if dynamic:
            self.attend = nn.Linear(cin, cells)
        else:
            self.attention = nn.Parameter(torch.softmax(torch.randn(1, cells), -1))
        self.bias = nn.Parameter(torch.randn(cout) * 0.1)
        self.deploy = None

    def forward(self, x):
        if self.deploy is not None:
            return torch.relu(self.deploy(x))
        attention = (torch.softmax(self.attend(x.mean((2, 3))), -1) if self.dynamic
                     else self.attention)
        weight = (attention @ self.warehouse).reshape(self.shape)
        return torch.relu(nn.functional.conv2d(x, weight, self.bias, padding=self.shape[2] // 2))

    def reparameterize(self):
        if self.dynamic:
            return
        conv = nn.Conv2d(self.shape[1], self.shape[0], self.shape[2], padding=self.shape[2] // 2)
        conv.weight.data = (self.attention @ self.warehouse).reshape(self.shape).detach()
        conv.bias.data = self.bias.detach()
        self.deploy = conv


class KernelWarehouseNet(nn.Module):
    def __init__(self, width, layers, cells, dynamic):
        super().__init__()
        self.stem = ConvBNAct(3, width, 3, 2)
        self.warehouse = nn.Parameter(torch.randn(cells, width * width * 9) * 0.05)
        self.convs = nn.ModuleList(WarehouseConv(self.warehouse, width, width, 3, dynamic)
                                   for _ in range(layers))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10))

    def forward(self, x):
        x = self.stem(x)
        for conv in self.convs:
            x = conv(x)
        return self.head(x)


MODELS = {
    "vovnet27": {"full": lambda: (vovnet27([64, 64, 128], [64, 80, 96, 112], [128, 256, 384, 512]), 224),
                 "small": lambda: (vovnet27([4, 4, 8], [4, 4, 8, 8], [8, 8, 16, 16]), 64)},
    "elan": {"full": lambda: (elan_net([32, 64, 64, 128, 256, 512]), 224),
             "small": lambda: (elan_net([4, 8, 8, 16]), 32)},
    "kw_static": {"full": lambda: (KernelWarehouseNet(128, 6, 8, False), 112),
                  "small": lambda: (KernelWarehouseNet(4, 2, 3, False), 16)},
    "kw_dynamic": {"full": lambda: (KernelWarehouseNet(128, 6, 8, True), 112),
                   "small": lambda: (KernelWarehouseNet(4, 2, 3, True), 16)},
}


def reparameterize(net):
    for m in list(net.modules()):
        if isinstance(m, ELAN):
            m.reparameterize()
        elif isinstance(m, (ConvBNAct, WarehouseConv)) and m.deploy is None:
            m.reparameterize()


def main():
    generator_main(MODELS, lambda name, size: MODELS[name][size](), reparameterize)


if __name__ == "__main__":
    main()
