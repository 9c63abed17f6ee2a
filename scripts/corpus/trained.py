"""Small image-to-image nets with trained weights, for judging quantization:
Gaussian denoisers (sigma 0.1 on [0, 1] grayscale) trained on patches of
scikit-image's sample photos, in four architectures whose quantization
behaves differently: a RepVGG-style net (3x3 + 1x1 + identity branches with
BatchNorm: the merged kernels get outlier channels), a MobileNetV2-style net
(depthwise convs, ReLU6), a small ResNet, and a VoVNet-style net (Concat);
and a classifier (MobileNetV2-style, strided, global pooling and a linear
head: `mbv2cls`) that tells which of ten photos a 32x32 patch was cut from,
trained on the photos' left three quarters and judged by top-1 on their
right quarter.
Training runs a fixed number of steps, seeds fixed, so the weights are the
same on every run: 2-4 minutes per model on one core of a shared 2-core
machine, channels-last; the MobileNetV2-style denoiser takes longer (5-11
minutes: PyTorch's depthwise convs at full resolution train slowly on a
CPU).
Exports, for OUT/trained_<model>:
  _preserve.onnx   the training form, every BatchNormalization kept
  _calib.npy       64 training inputs (calibration samples)
  _eval_x.npy      evaluation inputs: 256 noisy patches of photos not
                   trained on; for the classifier 1,000 patches of the
                   quarters not trained on
  _eval_y.npy      their clean versions; for the classifier the labels
usage: trained.py OUT --model repvgg|mbv2|resnet|vovnet|mbv2cls [--steps N]
"""
import argparse
import os
import time

import numpy as np
import skimage.color
import skimage.data
import torch
import torch.nn as nn

PATCH, SIGMA = 32, 0.1
TRAIN_IMAGES = ["camera", "astronaut", "coffee", "chelsea", "rocket", "coins", "page", "text",
                "moon", "brick", "grass"]
EVAL_IMAGES = ["immunohistochemistry", "hubble_deep_field", "gravel", "clock", "cell"]


def gray(name):
    img = getattr(skimage.data, name)()
    if img.ndim == 3:
        img = skimage.color.rgb2gray(img[..., :3])
    img = img.astype(np.float32)
    return img / 255.0 if img.max() > 1.0 else img


def patches(names, count, rng):
    images = [gray(n) for n in names]
    out = np.empty((count, 1, PATCH, PATCH), np.float32)
    for i in range(count):
        img = images[rng.integers(len(images))]
        y, x = rng.integers(img.shape[0] - PATCH), rng.integers(img.shape[1] - PATCH)
        out[i, 0] = img[y:y + PATCH, x:x + PATCH]
    return out


CLASS_IMAGES = ["camera", "astronaut", "coffee", "chelsea", "coins", "page", "moon", "brick",
                "grass", "gravel"]


def labelled_patches(count, rng, train):
    """Patches of CLASS_IMAGES labelled by their photo: from the left three
    quarters of each photo for training, from the right quarter otherwise."""
    images = [gray(n) for n in CLASS_IMAGES]
    x = np.empty((count, 1, PATCH, PATCH), np.float32)
    y = rng.integers(len(images), size=count)
    for i in range(count):
        img = images[y[i]]
        split = img.shape[1] * 3 // 4
        lo, hi = (0, split - PATCH) if train else (split, img.shape[1] - PATCH)
        r, c = rng.integers(img.shape[0] - PATCH), rng.integers(lo, hi)
        x[i, 0] = img[r:r + PATCH, c:c + PATCH]
    return x, y.astype(np.int64)


def conv_bn(cin, cout, k, groups=1, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout))


class RepBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense, self.one, self.identity = conv_bn(c, c, 3), conv_bn(c, c, 1), nn.BatchNorm2d(c)

    def forward(self, x):
        return torch.relu(self.dense(x) + self.one(x) + self.identity(x))


class InvertedResidual(nn.Module):
    def __init__(self, c, expand=4, cout=None, stride=1):
        super().__init__()
        h, cout = c * expand, cout or c
        self.residual = stride == 1 and cout == c
        self.body = nn.Sequential(conv_bn(c, h, 1), nn.ReLU6(), conv_bn(h, h, 3, groups=h, stride=stride),
                                  nn.ReLU6(), conv_bn(h, cout, 1))

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


class Classifier(nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.features = nn.Sequential(
            conv_bn(1, 16, 3, stride=2), nn.ReLU6(), InvertedResidual(16),
            InvertedResidual(16, cout=24, stride=2), InvertedResidual(24),
            InvertedResidual(24, cout=32, stride=2), InvertedResidual(32),
            conv_bn(32, 64, 1), nn.ReLU6(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(64, classes)

    def forward(self, x):
        return self.head(self.features(x))


class BasicBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.a, self.b = conv_bn(c, c, 3), conv_bn(c, c, 3)

    def forward(self, x):
        return torch.relu(x + self.b(torch.relu(self.a(x))))


class OSAModule(nn.Module):
    """VoVNet's one-shot aggregation: the input and every layer's output
    concatenated, then a 1x1 conv."""

    def __init__(self, c, layers=3):
        super().__init__()
        self.layers = nn.ModuleList(nn.Sequential(conv_bn(c, c, 3), nn.ReLU()) for _ in range(layers))
        self.concat = nn.Sequential(conv_bn(c * (layers + 1), c, 1), nn.ReLU())

    def forward(self, x):
        outs, y = [x], x
        for layer in self.layers:
            y = layer(y)
            outs.append(y)
        return self.concat(torch.cat(outs, 1))


class Denoiser(nn.Module):
    """Predicts the noise (DnCNN's residual learning): out = x - body(x)."""

    def __init__(self, blocks, c):
        super().__init__()
        self.head = nn.Sequential(nn.Conv2d(1, c, 3, 1, 1), nn.ReLU())
        self.blocks = nn.Sequential(*blocks)
        self.tail = nn.Conv2d(c, 1, 3, 1, 1)

    def forward(self, x):
        return x - self.tail(self.blocks(self.head(x)))


def build(name):
    c = 24
    if name == "repvgg":
        return Denoiser([RepBlock(c) for _ in range(4)], c)
    if name == "mbv2":
        return Denoiser([InvertedResidual(c) for _ in range(4)], c)
    if name == "resnet":
        return Denoiser([BasicBlock(c) for _ in range(3)], c)
    if name == "vovnet":
        return Denoiser([OSAModule(c), OSAModule(c)], c)
    if name == "mbv2cls":
        return Classifier(len(CLASS_IMAGES))
    raise ValueError(name)


def psnr(a, b):
    return 10 * np.log10(1.0 / np.mean((a - b) ** 2))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--model", choices=["repvgg", "mbv2", "resnet", "vovnet", "mbv2cls"],
                        required=True)
    parser.add_argument("--steps", type=int, help="training steps (300; 1000 for the classifier)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    if args.model == "mbv2cls":
        return train_classifier(args, args.steps or 1000)
    args.steps = args.steps or 300
    train = patches(TRAIN_IMAGES, 20000, rng)
    # Channels-last runs PyTorch's convs (depthwise most) faster on a CPU.
    model = build(args.model).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), 2e-3)
    start = time.time()
    for step in range(1, args.steps + 1):
        idx = rng.integers(len(train), size=64)
        clean = torch.from_numpy(train[idx]).to(memory_format=torch.channels_last)
        noisy = clean + SIGMA * torch.randn_like(clean)
        loss = ((model(noisy) - clean) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model = model.to(memory_format=torch.contiguous_format).eval()
    base = os.path.join(args.out, f"trained_{args.model}")
    eval_rng = np.random.default_rng(1)
    eval_y = patches(EVAL_IMAGES, 256, eval_rng)
    eval_x = (eval_y + SIGMA * eval_rng.standard_normal(eval_y.shape)).astype(np.float32)
    calib_clean = patches(TRAIN_IMAGES, 64, np.random.default_rng(2))
    calib = (calib_clean + SIGMA * np.random.default_rng(3).standard_normal(calib_clean.shape)).astype(np.float32)
    np.save(base + "_calib.npy", calib)
    np.save(base + "_eval_x.npy", eval_x)
    np.save(base + "_eval_y.npy", eval_y)
    with torch.no_grad():
        out = model(torch.from_numpy(eval_x)).numpy()
    x = torch.from_numpy(calib[:1])
    torch.onnx.export(model, x, base + "_preserve.onnx", opset_version=13, input_names=["noisy"],
                      output_names=["denoised"], dynamic_axes={"noisy": {0: "N"}, "denoised": {0: "N"}},
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    print(f"{args.model}: {args.steps} steps in {time.time() - start:.0f} s; eval PSNR noisy {psnr(eval_x, eval_y):.2f} dB, "
          f"denoised {psnr(out, eval_y):.2f} dB")


def train_classifier(args, steps):
    rng = np.random.default_rng(0)
    train_x, train_y = labelled_patches(20000, rng, train=True)
    model = build(args.model)
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    start = time.time()
    for step in range(1, steps + 1):
        idx = rng.integers(len(train_x), size=64)
        x = torch.from_numpy(train_x[idx]).to(memory_format=torch.channels_last)
        y = torch.from_numpy(train_y[idx])
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model = model.to(memory_format=torch.contiguous_format).eval()
    base = os.path.join(args.out, f"trained_{args.model}")
    eval_x, eval_y = labelled_patches(1000, np.random.default_rng(1), train=False)
    calib, _ = labelled_patches(64, np.random.default_rng(2), train=True)
    np.save(base + "_calib.npy", calib)
    np.save(base + "_eval_x.npy", eval_x)
    np.save(base + "_eval_y.npy", eval_y)
    with torch.no_grad():
        top1 = (model(torch.from_numpy(eval_x)).argmax(1).numpy() == eval_y).mean()
    torch.onnx.export(model, torch.from_numpy(calib[:1]), base + "_preserve.onnx", opset_version=13,
                      input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "N"}, "logits": {0: "N"}},
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    print(f"{args.model}: {steps} steps in {time.time() - start:.0f} s; eval top-1 {100 * top1:.1f} %")


if __name__ == "__main__":
    main()
