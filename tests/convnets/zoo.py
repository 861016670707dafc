"""A zoo of architectures written out by hand, for the accountant's tests (no torchvision here).

Each entry is (factory, input size); the networks are the textbook ones: VGG (Simonyan &
Zisserman 2015), ResNet (He et al. 2016, v1.5: stride in the 3×3 conv), MobileNet-style
depthwise-separable blocks, a UNet with concatenating skips, transposed-conv decoders
(DCGAN-style and the colourization assignment's ConvTransposeNet shape), a transformer block
with explicit ``@`` attention, one using ``nn.MultiheadAttention``, an SE block and a 1-D
and a 3-D convnet.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

VGG_CONFIGS = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}


class VGG(nn.Module):
    def __init__(self, depth: int = 16, num_classes: int = 1000, width: int = 4096) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = 3
        for v in VGG_CONFIGS[depth]:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=True)]
                c = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 49, width),
            nn.ReLU(True),
            nn.Dropout(),
            nn.Linear(width, width),
            nn.ReLU(True),
            nn.Dropout(),
            nn.Linear(width, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))  # (N, 512, 7, 7) -> (N, 25088)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, c_in: int, c: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or c_in != c:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c, 1, stride, bias=False), nn.BatchNorm2d(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, c_in: int, c: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.conv3 = nn.Conv2d(c, c * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or c_in != c * 4:
            self.downsample = nn.Sequential(
                nn.Conv2d(c_in, c * 4, 1, stride, bias=False), nn.BatchNorm2d(c * 4)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    def __init__(
        self, block: type[BasicBlock] | type[Bottleneck], layers: list[int], num_classes: int = 1000
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        c_in = 64
        stages = []
        for i, (c, n) in enumerate(zip([64, 128, 256, 512], layers, strict=True)):
            blocks = []
            for j in range(n):
                blocks.append(block(c_in, c, 2 if (j == 0 and i > 0) else 1))
                c_in = c * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512 * block.expansion, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet18() -> ResNet:
    return ResNet(BasicBlock, [2, 2, 2, 2])


def resnet50() -> ResNet:
    return ResNet(Bottleneck, [3, 4, 6, 3])


class DepthwiseSeparable(nn.Module):
    """MobileNet-v1 style: depthwise 3×3 (groups = channels) then pointwise 1×1."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU6()]
        c = 32
        for c_out, s in [(64, 1), (128, 2), (128, 1), (256, 2)]:
            layers += [
                nn.Conv2d(c, c, 3, s, 1, groups=c, bias=False),
                nn.BatchNorm2d(c),
                nn.ReLU6(),
                nn.Conv2d(c, c_out, 1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU6(),
            ]
            c = c_out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean((2, 3)))  # global average pooling by mean


class UNet(nn.Module):
    """Two-level UNet: concatenating skips, transposed-conv upsampling."""

    def __init__(self, c_in: int = 1, nf: int = 16, num_classes: int = 24) -> None:
        super().__init__()

        def block(a: int, b: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(a, b, 3, padding=1), nn.BatchNorm2d(b), nn.ReLU())

        self.down1, self.down2 = block(c_in, nf), block(nf, 2 * nf)
        self.bottom = block(2 * nf, 4 * nf)
        self.up2 = nn.ConvTranspose2d(4 * nf, 2 * nf, 4, 2, 1)
        self.dec2 = block(4 * nf, 2 * nf)
        self.up1 = nn.ConvTranspose2d(2 * nf, nf, 4, 2, 1)
        self.dec1 = block(2 * nf, nf)
        self.out = nn.Conv2d(nf + c_in, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d1 = self.down1(x)
        d2 = self.down2(F.max_pool2d(d1, 2))
        b = self.bottom(F.max_pool2d(d2, 2))
        u2 = self.dec2(torch.cat([self.up2(b), d2], dim=1))
        u1 = self.dec1(torch.cat([self.up1(u2), d1], dim=1))
        return self.out(torch.cat([u1, x], dim=1))


class DCGANDecoder(nn.Module):
    def __init__(self, nz: int = 100, ngf: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 8),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, 3, 4, 2, 1, bias=False),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class ConvTransposeNet(nn.Module):
    """The colourization assignment's shape: strided convs down, transposed convs (k=5: p=2, op=1) up."""

    def __init__(self, nic: int = 1, nf: int = 8, nc: int = 24, k: int = 5) -> None:
        super().__init__()
        p = k // 2
        self.net = nn.Sequential(
            nn.Conv2d(nic, nf, k, 2, p),
            nn.BatchNorm2d(nf),
            nn.ReLU(),
            nn.Conv2d(nf, 2 * nf, k, 2, p),
            nn.BatchNorm2d(2 * nf),
            nn.ReLU(),
            nn.ConvTranspose2d(2 * nf, nf, k, 2, p, output_padding=1),
            nn.BatchNorm2d(nf),
            nn.ReLU(),
            nn.ConvTranspose2d(nf, nc, k, 2, p, output_padding=1),
            nn.BatchNorm2d(nc),
            nn.ReLU(),
            nn.Conv2d(nc, nc, k, padding=p),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class AttentionBlock(nn.Module):
    """Pre-norm transformer block with attention written out: softmax(QKᵀ/√d)V with ``@``."""

    def __init__(self, d: int = 64, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (
            z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v)
        )  # (B, nh, T, hs)
        att = (q @ k.transpose(-2, -1)) * (d // self.heads) ** -0.5  # (B, nh, T, T)
        y = F.softmax(att, dim=-1) @ v  # (B, nh, T, hs)
        x = x + self.proj(y.transpose(1, 2).contiguous().view(b, t, d))
        return x + self.mlp(self.ln2(x))


class SDPABlock(nn.Module):
    """The same attention with F.scaled_dot_product_attention."""

    def __init__(self, d: int = 64, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q, k, v = (z.reshape(b, t, self.heads, -1).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class MHABlock(nn.Module):
    def __init__(self, d: int = 32, heads: int = 4) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x, need_weights=False)[0]


class SENet(nn.Module):
    """Squeeze-and-excitation: global pooling, two linears, channel re-weighting."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 32, 3, padding=1)
        self.fc1, self.fc2 = nn.Linear(32, 8), nn.Linear(8, 32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv(x))
        w = torch.sigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1).flatten(1)))))
        return x * w[:, :, None, None]  # (N, C) -> (N, C, 1, 1)


class Conv1dNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(2, 16, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(16, 32, 3, dilation=2),
            nn.AdaptiveMaxPool1d(4),
            nn.Flatten(),
            nn.Linear(128, 5),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Conv3dNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv3d(1, 4, 3, padding=1),
            nn.AvgPool3d(2),
            nn.Conv3d(4, 8, 3, stride=2),
            nn.Upsample(scale_factor=2, mode="trilinear"),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


#: name -> (factory, input size without batch, "slow": heavy to run for real)
ZOO: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...], bool]] = {
    "vgg11": (lambda: VGG(11, num_classes=10, width=256), (3, 32, 32), False),
    "vgg16": (lambda: VGG(16), (3, 224, 224), True),
    "resnet18": (resnet18, (3, 64, 64), False),
    "resnet50": (resnet50, (3, 224, 224), True),
    "depthwise-separable": (DepthwiseSeparable, (3, 64, 64), False),
    "unet": (UNet, (1, 32, 32), False),
    "dcgan-decoder": (lambda: DCGANDecoder(nz=16, ngf=8), (16, 1, 1), False),
    "convtranspose-net": (ConvTransposeNet, (1, 32, 32), False),
    "attention-block": (AttentionBlock, (10, 64), False),
    "sdpa-block": (SDPABlock, (12, 64), False),
    "mha-block": (MHABlock, (7, 32), False),
    "se-net": (SENet, (3, 16, 16), False),
    "conv1d": (Conv1dNet, (2, 40), False),
    "conv3d": (Conv3dNet, (1, 8, 8, 8), False),
}


# ---------------------------------------------------------------------------------------------
# Patterns of the real model zoo (issue 12), written out here: ConvNeXt's channels-last blocks,
# ShuffleNet's channel shuffle, a space-to-depth stem, squeeze-excitation gates, ResNet-D
# average-pool shortcuts, a ViT with torch._assert, einsum attention, a RegNet-style constructor
# that computes its widths with torch ops, stochastic depth, auxiliary heads, LSTM mixers.
# Each model's ``features`` ends at its last spatial layer; ``head`` does the rest.


class DropPath(nn.Module):
    """Stochastic depth (Huang et al. 2016): drop the whole residual branch per sample in training."""

    def __init__(self, p: float = 0.1) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)


class LayerNorm2d(nn.LayerNorm):
    """Layer norm over channels of an N×C×H×W map, through channels last (as ConvNeXt does)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)  # (N, H, W, C)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)  # (N, C, H, W)


class ConvNeXtBlock(nn.Module):
    def __init__(self, c: int, drop: float = 0.1) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm = nn.LayerNorm(c)
        self.pwconv1, self.act, self.pwconv2 = nn.Linear(c, 4 * c), nn.GELU(), nn.Linear(4 * c, c)
        self.gamma = nn.Parameter(torch.full((c,), 1e-6))
        self.drop_path = DropPath(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)  # (N, H, W, C)
        y = self.gamma * self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        return x + self.drop_path(y.permute(0, 3, 1, 2))  # (N, C, H, W)


class ConvNeXt(nn.Module):
    def __init__(self, dims: tuple[int, ...] = (16, 32), depths: tuple[int, ...] = (2, 2),
                 num_classes: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, dims[0], 4, 4), LayerNorm2d(dims[0])]
        for i, (c, n) in enumerate(zip(dims, depths, strict=True)):
            if i:
                layers += [LayerNorm2d(dims[i - 1]), nn.Conv2d(dims[i - 1], c, 2, 2)]
            layers += [ConvNeXtBlock(c) for _ in range(n)]
        self.features = nn.Sequential(*layers)
        self.norm, self.fc = nn.LayerNorm(dims[-1]), nn.Linear(dims[-1], num_classes)

    def head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.norm(x.mean((2, 3))))  # global average pooling, then LN over C

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    n, c, h, w = x.shape
    x = x.view(n, groups, c // groups, h, w)  # (N, g, C/g, H, W)
    x = torch.transpose(x, 1, 2).contiguous()  # (N, C/g, g, H, W)
    return x.view(n, c, h, w)


class ShuffleUnit(nn.Module):
    """ShuffleNet-v2 unit (Ma et al. 2018): split channels, transform one half, concat, shuffle."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        half = c_out // 2
        if stride > 1:
            self.branch1 = nn.Sequential(
                nn.Conv2d(c_in, c_in, 3, stride, 1, groups=c_in, bias=False), nn.BatchNorm2d(c_in),
                nn.Conv2d(c_in, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(inplace=True))
        c_b = c_in if stride > 1 else half
        self.branch2 = nn.Sequential(
            nn.Conv2d(c_b, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(inplace=True),
            nn.Conv2d(half, half, 3, stride, 1, groups=half, bias=False), nn.BatchNorm2d(half),
            nn.Conv2d(half, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            a, b = x.chunk(2, dim=1)
            out = torch.cat((a, self.branch2(b)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNet(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 24, 3, 2, 1, bias=False), nn.BatchNorm2d(24), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
            ShuffleUnit(24, 48, 2), ShuffleUnit(48, 48, 1), ShuffleUnit(48, 96, 2), ShuffleUnit(96, 96, 1))
        self.fc = nn.Linear(96, num_classes)

    def head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean([2, 3]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class SpaceToDepth(nn.Module):
    """TResNet's stem (Ridnik et al. 2021): every 4×4 block of pixels becomes 16 channels."""

    def __init__(self, block: int = 4) -> None:
        super().__init__()
        self.bs = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        x = x.view(n, c, h // self.bs, self.bs, w // self.bs, self.bs)  # (N, C, H/b, b, W/b, b)
        x = x.permute(0, 3, 5, 1, 2, 4).contiguous()  # (N, b, b, C, H/b, W/b)
        return x.view(n, c * self.bs * self.bs, h // self.bs, w // self.bs)


class SqueezeExcite(nn.Module):
    """SE gate with 1×1 convs on the pooled map (timm's form): global pooling makes the field global."""

    def __init__(self, c: int, r: int = 4) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(c, c // r, 1), nn.Conv2d(c // r, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)  # (N, C, 1, 1)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(s))))


class SpaceToDepthNet(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            SpaceToDepth(4), nn.Conv2d(48, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1))
        self.fc = nn.Linear(32, num_classes)

    def head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean((2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class Focus(nn.Module):
    """YOLOv5's space-to-depth stem: four strided slices concatenated on channels, then a conv."""

    def __init__(self, c_out: int = 16) -> None:
        super().__init__()
        self.conv = nn.Conv2d(12, c_out, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]], 1)
        return self.conv(x)


class FocusNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(Focus(16), nn.ReLU(), nn.Conv2d(16, 16, 3, 2, 1))
        self.fc = nn.Linear(16, 10)

    def head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.amax((2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class ResNetDBlock(nn.Module):
    """ResNet-D (He et al. 2019, "bag of tricks"): the strided shortcut averages 2×2 then 1×1 conv;
    its centres differ from the strided 3×3 main path (a misaligned merge with an exact hull)."""

    def __init__(self, c_in: int, c: int, se: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.se = SqueezeExcite(c) if se else nn.Identity()
        self.down = nn.Sequential(nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False),
                                  nn.Conv2d(c_in, c, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(self.se(out) + self.down(x))


class ResNetD(nn.Module):
    def __init__(self, se: bool = False) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
            ResNetDBlock(16, 32, se), ResNetDBlock(32, 64, se))
        self.fc = nn.Linear(64, 10)

    def head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class SEGateLinear(nn.Module):
    """The SE gate through flatten and Linear layers (torchvision's form): the spatial axes are lost
    in the gate, which is still the whole image."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), _LinearGate(16),
                                      nn.Conv2d(16, 16, 3, padding=1))
        self.fc = nn.Linear(16, 10)

    def head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean((2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class _LinearGate(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(c, c // 4), nn.Linear(c // 4, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.sigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1).flatten(1)))))
        return x * w[:, :, None, None]  # (N, C) -> (N, C, 1, 1)


class ViTAttention(nn.Module):
    def __init__(self, d: int, heads: int, einsum: bool = False) -> None:
        super().__init__()
        self.heads, self.einsum = heads, einsum
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        qkv = self.qkv(x).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # (B, nh, T, hs) each
        if self.einsum:  # MaxViT's and MViT's form
            att = torch.einsum("bhid,bhjd->bhij", q, k) * (d // self.heads) ** -0.5  # (B, nh, T, T)
            y = torch.einsum("bhij,bhjd->bhid", att.softmax(-1), v)  # (B, nh, T, hs)
        else:
            y = (q @ k.transpose(-2, -1) * (d // self.heads) ** -0.5).softmax(-1) @ v
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class ViTBlock(nn.Module):
    def __init__(self, d: int, heads: int, einsum: bool) -> None:
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(d), ViTAttention(d, heads, einsum)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        self.drop_path = DropPath(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.ln1(x)))
        return x + self.drop_path(self.mlp(self.ln2(x)))


class ViT(nn.Module):
    """torchvision's ViT pattern: patch conv, a size check with torch._assert, class token."""

    def __init__(self, image: int = 32, patch: int = 8, d: int = 32, depth: int = 2,
                 einsum: bool = False) -> None:
        super().__init__()
        self.image = image
        self.features = nn.Conv2d(3, d, patch, patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.pos = nn.Parameter(torch.zeros(1, (image // patch) ** 2 + 1, d))
        self.blocks = nn.Sequential(*(ViTBlock(d, 4, einsum) for _ in range(depth)))
        self.norm, self.fc = nn.LayerNorm(d), nn.Linear(d, 10)

    def head(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(2).transpose(1, 2)  # (N, C, H', W') -> (N, H'W', C)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        return self.fc(self.norm(self.blocks(x))[:, 0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        torch._assert(h == self.image, f"wrong image height {h}")
        torch._assert(w == self.image, f"wrong image width {w}")
        return self.head(self.features(x))


class RegNetStyle(nn.Module):
    """RegNet's constructor (Radosavovic et al. 2020) computes its widths with torch ops and reads
    them with .tolist(): it cannot be built on the meta device."""

    def __init__(self, depth: int = 4, w_0: float = 8.0, w_a: float = 6.0, w_m: float = 2.0) -> None:
        super().__init__()
        u = torch.arange(depth) * w_a + w_0  # linear widths
        s = torch.round(torch.log(u / w_0) / math.log(w_m))  # quantised in log space
        widths = (torch.round(w_0 * torch.pow(w_m, s) / 8) * 8).int().tolist()
        layers: list[nn.Module] = [nn.Conv2d(3, widths[0], 3, 2, 1)]
        for a, b in zip(widths, widths[1:], strict=False):
            layers += [nn.ReLU(), nn.Conv2d(a, b, 3, 2 if b != a else 1, 1)]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(widths[-1], 10)

    def head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean((2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class AuxHeadNet(nn.Module):
    """GoogLeNet's pattern: an auxiliary classifier that runs only in training."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1))
        self.aux = nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 10))
        self.fc = nn.Linear(8, 10)

    def head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean((2, 3)))

    def forward(self, x: torch.Tensor) -> Any:
        y = self.features(x)
        out = self.head(y)
        if self.training:
            return out, self.aux(y)
        return out


class SequencerBlock(nn.Module):
    """Sequencer2D (Tatsunami & Taki 2022): bidirectional LSTMs along rows and columns of an
    N×H×W×C map, concatenated and projected."""

    def __init__(self, c: int, hidden: int) -> None:
        super().__init__()
        self.rnn_v = nn.LSTM(c, hidden, batch_first=True, bidirectional=True)
        self.rnn_h = nn.LSTM(c, hidden, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(4 * hidden, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, h, w, c = x.shape
        v, _ = self.rnn_v(x.permute(0, 2, 1, 3).reshape(-1, h, c))  # (N·W, H, 2·hidden)
        v = v.reshape(n, w, h, -1).permute(0, 2, 1, 3)  # (N, H, W, 2·hidden)
        hh, _ = self.rnn_h(x.reshape(-1, w, c))  # (N·H, W, 2·hidden)
        hh = hh.reshape(n, h, w, -1)
        return x + self.fc(torch.cat([v, hh], dim=-1))


class Sequencer(nn.Module):
    def __init__(self, c: int = 16, hidden: int = 8, depth: int = 2) -> None:
        super().__init__()
        self.features = nn.Conv2d(3, c, 4, 4)
        self.blocks = nn.Sequential(*(SequencerBlock(c, hidden) for _ in range(depth)))
        self.fc = nn.Linear(c, 10)

    def head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.blocks(x.permute(0, 2, 3, 1)).mean((1, 2)))  # (N, H, W, C) -> (N, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class FreeOps(nn.Module):
    """Operations with a rule but no MACs (unfold, pixel shuffle, cumsum, max, norm) beside LPPool2d
    and FractionalMaxPool2d, whose windows are links."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.lp = nn.LPPool2d(2, 2)
        self.frac = nn.FractionalMaxPool2d(2, output_size=6)
        self.shuffle = nn.PixelShuffle(2)
        self.features = nn.Sequential(self.conv, self.lp)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.frac(self.features(x))  # (N, 8, 6, 6)
        z = self.shuffle(y)  # (N, 2, 12, 12)
        cols = F.unfold(z, 2, stride=2)  # (N, 8, 36)
        return cols.cumsum(-1).max(-1).values + cols.norm(dim=-1)


#: name -> (factory, input size): the real-zoo patterns above
PATTERNS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "convnext": (ConvNeXt, (3, 32, 32)),
    "shufflenet": (ShuffleNet, (3, 32, 32)),
    "space-to-depth": (SpaceToDepthNet, (3, 32, 32)),
    "focus": (FocusNet, (3, 16, 16)),
    "resnet-d": (ResNetD, (3, 32, 32)),
    "resnet-d-se": (lambda: ResNetD(se=True), (3, 32, 32)),
    "se-linear-gate": (SEGateLinear, (3, 16, 16)),
    "vit": (ViT, (3, 32, 32)),
    "vit-einsum": (lambda: ViT(einsum=True), (3, 32, 32)),
    "regnet-style": (RegNetStyle, (3, 32, 32)),
    "aux-head": (AuxHeadNet, (3, 16, 16)),
    "sequencer": (Sequencer, (3, 32, 32)),
}
