"""The three colourization networks of the programming assignment (CLAIMS.md §5).

All three map a grey image ``(N, num_in_channels, H, W)`` to per-pixel colour logits
``(N, num_colours, H, W)``; H and W must be multiples of 4 (two halvings), and
:func:`pad_to_multiple` makes any image so.

- :class:`PoolUpsampleNet`: [Conv(same) → MaxPool(2) → BN → ReLU] NIC→NF→2NF, then
  [Conv(same) → Upsample(×2) → BN → ReLU] 2NF→NF→NC, then Conv(same) NC→NC.
- :class:`ConvTransposeNet`: [Conv(stride 2) → BN → ReLU] NIC→NF→2NF, then
  [ConvTranspose(stride 2) → BN → ReLU] 2NF→NF→NC, then Conv(same) NC→NC.
- :class:`UNet`: ConvTransposeNet with two skip connections: the second transposed conv
  reads [its input ‖ the first block's output] (2NF channels), the final conv reads
  [NC colour channels ‖ the grey input] (NC + NIC).

Paddings are derived from the shape arithmetic of :mod:`trainlab.shapes`, not
written in: a stride-1 conv uses 'same' padding (k − 1)/2 (odd k; for even k, (k − 2)/2
before and k/2 after), a stride-2 conv the padding that takes 32 → 16, a stride-2 transposed
conv the (padding, output_padding) that takes 16 → 32. For even sizes these do not depend
on the size: 2p ∈ {k − 2, k − 1} for the conv and 2p = k − 2 + p_out for the transposed conv.
With kernel 3, NIC = 1, NF = 32, NC = 24 the parameter counts are 49,728 (pool),
49,728 (transpose) and 56,856 (UNet), as in the course.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainlab.errors import ArgumentError
from trainlab.shapes import PaddingSolution, same_padding, solve_padding

__all__ = [
    "KERNEL_SIZES",
    "MODELS",
    "ConvTransposeNet",
    "PoolUpsampleNet",
    "UNet",
    "build_model",
    "count_parameters",
    "down_padding",
    "pad_to_multiple",
    "pool_conv_weight_count",
    "stack_models",
    "unstack_model",
    "up_padding",
]

KERNEL_SIZES = (2, 3, 4, 5, 6, 7)


def _check_int(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ArgumentError(name, value, f"an integer ≥ {minimum}")


def _check_kernel(kernel: int) -> None:
    if kernel not in KERNEL_SIZES:
        raise ArgumentError("kernel", kernel, "one of " + ", ".join(map(str, KERNEL_SIZES)))


class _EvenSameConv2d(nn.Conv2d):
    """A stride-1 conv with an even kernel, zero-padded asymmetrically to keep H and W.

    k − 1 is odd, so (k − 1)//2 zeros go before and the rest after (PyTorch's
    ``padding='same'`` convention, without its copy-on-every-call warning).
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, groups: int = 1):
        super().__init__(c_in, c_out, kernel, groups=groups)
        before = (kernel - 1) // 2
        self.pad = (before, kernel - 1 - before, before, kernel - 1 - before)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pad))  # (N, C, H, W) -> (N, C, H+k−1, W+k−1)


def down_padding(kernel: int) -> int:
    """Padding of a stride-2 conv halving an even size (solved for 32 → 16; the smallest)."""
    return solve_padding(32, 16, kernel, stride=2)[0].padding


def up_padding(kernel: int) -> PaddingSolution:
    """(padding, output_padding) of a stride-2 transposed conv doubling a size (16 → 32)."""
    return solve_padding(16, 32, kernel, stride=2, transposed=True)[0]


# Every layer takes ``g`` = the number of networks trained side by side (see
# :func:`stack_models`): channel counts are per network and are multiplied by g, and
# convolutions get ``groups=g``, so network i only ever sees its own block of channels.


def _conv(c_in: int, c_out: int, kernel: int, g: int = 1) -> nn.Conv2d:
    """Stride-1 'same' conv: padding (k − 1)/2 for odd k (:func:`same_padding`)."""
    if kernel % 2 == 0:
        return _EvenSameConv2d(g * c_in, g * c_out, kernel, groups=g)
    return nn.Conv2d(g * c_in, g * c_out, kernel, padding=same_padding(kernel), groups=g)


def _down(c_in: int, c_out: int, kernel: int, g: int = 1) -> nn.Conv2d:
    return nn.Conv2d(g * c_in, g * c_out, kernel, stride=2, padding=down_padding(kernel), groups=g)


def _up(c_in: int, c_out: int, kernel: int, g: int = 1) -> nn.ConvTranspose2d:
    sol = up_padding(kernel)
    return nn.ConvTranspose2d(g * c_in, g * c_out, kernel, stride=2, padding=sol.padding,
                              output_padding=sol.output_padding, groups=g)


def _bn(c: int, g: int = 1) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(g * c)


def _cat(a: torch.Tensor, b: torch.Tensor, g: int) -> torch.Tensor:
    """Concatenate channels network by network: ``(N, g·A, H, W), (N, g·B, H, W) -> (N, g·(A+B), H, W)``."""
    if g == 1:
        return torch.cat([a, b], dim=1)
    n, _, h, w = a.shape
    # (N, g·A, H, W) -> (N, g, A, H, W), cat on A, -> (N, g·(A+B), H, W)
    return torch.cat([a.reshape(n, g, -1, h, w), b.reshape(n, g, -1, h, w)], dim=2).reshape(n, -1, h, w)


class _ColourNet(nn.Module):
    """Stores the constructor arguments (checked) shared by the three networks."""

    def __init__(self, kernel: int, num_in_channels: int, num_filters: int, num_colours: int,
                 num_models: int = 1):
        super().__init__()
        _check_kernel(kernel)
        _check_int("num_in_channels", num_in_channels, 1)
        _check_int("num_filters", num_filters, 1)
        _check_int("num_colours", num_colours, 2)
        _check_int("num_models", num_models, 1)
        self.kernel, self.num_in_channels = kernel, num_in_channels
        self.num_filters, self.num_colours = num_filters, num_colours
        self.num_models = num_models

    def config(self) -> dict[str, int]:
        return {"kernel": self.kernel, "num_in_channels": self.num_in_channels,
                "num_filters": self.num_filters, "num_colours": self.num_colours}


class PoolUpsampleNet(_ColourNet):
    """Fixed down- and up-sampling: max-pooling and nearest upsampling around 'same' convs."""

    def __init__(self, kernel: int = 3, num_in_channels: int = 1, num_filters: int = 32,
                 num_colours: int = 24, num_models: int = 1):
        super().__init__(kernel, num_in_channels, num_filters, num_colours, num_models)
        nf, nc, g = num_filters, num_colours, num_models

        def down(c_in: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(_conv(c_in, c_out, kernel, g), nn.MaxPool2d(2), _bn(c_out, g), nn.ReLU())

        def up(c_in: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(_conv(c_in, c_out, kernel, g), nn.Upsample(scale_factor=2),
                                 _bn(c_out, g), nn.ReLU())

        self.down1, self.down2 = down(num_in_channels, nf), down(nf, 2 * nf)
        self.up1, self.up2 = up(2 * nf, nf), up(nf, nc)
        self.final = _conv(nc, nc, kernel, g)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.down2(self.down1(x))  # (N, NIC, H, W) -> (N, 2NF, H/4, W/4)
        h = self.up2(self.up1(h))  # -> (N, NC, H, W)
        return self.final(h)


class ConvTransposeNet(_ColourNet):
    """Learned down- and up-sampling: stride-2 convs and stride-2 transposed convs."""

    def __init__(self, kernel: int = 3, num_in_channels: int = 1, num_filters: int = 32,
                 num_colours: int = 24, num_models: int = 1):
        super().__init__(kernel, num_in_channels, num_filters, num_colours, num_models)
        nf, nc, g = num_filters, num_colours, num_models
        self.down1 = nn.Sequential(_down(num_in_channels, nf, kernel, g), _bn(nf, g), nn.ReLU())
        self.down2 = nn.Sequential(_down(nf, 2 * nf, kernel, g), _bn(2 * nf, g), nn.ReLU())
        self.up1 = nn.Sequential(_up(2 * nf, nf, kernel, g), _bn(nf, g), nn.ReLU())
        self.up2 = nn.Sequential(_up(self._up2_in(), nc, kernel, g), _bn(nc, g), nn.ReLU())
        self.final = _conv(self._final_in(), nc, kernel, g)

    def _up2_in(self) -> int:
        return self.num_filters

    def _final_in(self) -> int:
        return self.num_colours

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.down2(self.down1(x))  # (N, NIC, H, W) -> (N, 2NF, H/4, W/4)
        h = self.up2(self.up1(h))  # -> (N, NC, H, W)
        return self.final(h)


class UNet(ConvTransposeNet):
    """ConvTransposeNet with skip connections (concatenation along channels)."""

    def _up2_in(self) -> int:
        return 2 * self.num_filters

    def _final_in(self) -> int:
        return self.num_colours + self.num_in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.num_models  # shapes below are per network (channels × g when g > 1)
        d1 = self.down1(x)  # (N, NIC, H, W) -> (N, NF, H/2, W/2)
        u1 = self.up1(self.down2(d1))  # -> (N, 2NF, H/4, W/4) -> (N, NF, H/2, W/2)
        u2 = self.up2(_cat(u1, d1, g))  # (N, 2NF, H/2, W/2) -> (N, NC, H, W)
        return self.final(_cat(u2, x, g))  # (N, NC + NIC, H, W) -> (N, NC, H, W)


#: Model name (as on the command line) -> class. An explicit registry, not ``globals()``.
MODELS: dict[str, type[_ColourNet]] = {
    "pool": PoolUpsampleNet,
    "transpose": ConvTransposeNet,
    "unet": UNet,
}


def build_model(name: str, *, kernel: int = 3, num_in_channels: int = 1, num_filters: int = 32,
                num_colours: int = 24, seed: int = 0) -> _ColourNet:
    """A freshly initialised network; the initial weights depend only on ``seed``.

    PyTorch's layer initialisers draw from the global RNG, so the draw happens inside
    ``torch.random.fork_rng``: the caller's global RNG state is left as it was.
    """
    if name not in MODELS:
        raise ArgumentError("--model", name, "one of: " + ", ".join(MODELS))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MODELS[name](kernel, num_in_channels, num_filters, num_colours)


def stack_models(models: list[_ColourNet]) -> _ColourNet:
    """One network that computes ``len(models)`` networks of the same kind side by side.

    Network i reads input channels ``[i·NIC, (i+1)·NIC)`` and writes logits
    ``[i·NC, (i+1)·NC)``; every convolution is grouped (``groups = len(models)``) and every
    batch norm is per channel, so the networks share nothing: the stacked network's
    gradient with respect to network i's weights is network i's own gradient, and an
    elementwise optimizer (Adam) takes exactly the steps it would take on each alone. One
    call of S small networks costs far less than S calls (the point on a CPU or a GPU
    launching tiny kernels). Weights, biases and running statistics are copied in.
    """
    first = models[0]
    if any(type(m) is not type(first) or m.config() != first.config() for m in models):
        raise ValueError("stack_models needs networks of one class and one configuration")
    stacked = type(first)(**first.config(), num_models=len(models))
    sources = [m.state_dict() for m in models]
    merged = {}
    for key, value in stacked.state_dict().items():
        parts = [s[key] for s in sources]
        # grouped conv weights (g·C_out, C_in, k, k) and transposed (g·C_in, C_out, k, k), biases,
        # BN vectors: network blocks are stacked along dim 0; num_batches_tracked is shared
        merged[key] = parts[0] if value.ndim == 0 else torch.cat(parts, dim=0)
    stacked.load_state_dict(merged)
    return stacked


def unstack_model(stacked: _ColourNet, index: int) -> _ColourNet:
    """Network ``index`` of a :func:`stack_models` network, as an ordinary network."""
    g = stacked.num_models
    if not 0 <= index < g:
        raise ValueError(f"index {index} is not in 0..{g - 1}")
    single = type(stacked)(**stacked.config())
    state = {}
    for key, value in stacked.state_dict().items():
        state[key] = value if value.ndim == 0 else value.chunk(g, dim=0)[index].clone()
    single.load_state_dict(state)
    return single


def count_parameters(model: nn.Module) -> int:
    """Weights, biases and batch-norm scales/shifts (``numel`` of every parameter)."""
    return sum(p.numel() for p in model.parameters())


def pool_conv_weight_count(num_in_channels: int, num_filters: int, num_colours: int,
                           kernel: int = 3) -> int:
    """Convolution weights (no biases, no BN) of PoolUpsampleNet, in closed form.

    k²·(NIC·NF + NF·2NF + 2NF·NF + NF·NC + NC·NC); for k = 3 this is the course's
    9·NIC·NF + 36·NF² + 9·NF·NC + 9·NC² (CLAIMS.md §5).
    """
    nic, nf, nc = num_in_channels, num_filters, num_colours
    return kernel**2 * (nic * nf + 4 * nf * nf + nf * nc + nc * nc)


def pad_to_multiple(x: torch.Tensor, multiple: int = 4) -> tuple[torch.Tensor, tuple[int, int]]:
    """Replicate-pad ``(N, C, H, W)`` on the bottom/right to multiples of ``multiple``.

    Returns the padded tensor and the original (H, W), so predictions can be cropped back.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")  # (N, C, H, W) -> (N, C, H+ph, W+pw)
    return x, (h, w)
