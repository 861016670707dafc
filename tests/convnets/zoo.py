"""A zoo of architectures written out by hand, for the accountant's tests (no torchvision here).

Each entry is (factory, input size); the networks are the textbook ones: VGG (Simonyan &
Zisserman 2015), ResNet (He et al. 2016, v1.5: stride in the 3×3 conv), MobileNet-style
depthwise-separable blocks, a UNet with concatenating skips, transposed-conv decoders
(DCGAN-style and the colourization assignment's ConvTransposeNet shape), a transformer block
with explicit ``@`` attention, one using ``nn.MultiheadAttention``, an SE block and a 1-D
and a 3-D convnet.
"""

from __future__ import annotations

from collections.abc import Callable

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
