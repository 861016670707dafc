"""The small smooth network the claims train: a tanh MLP regressing random targets, float64.

Few examples and a smooth activation keep the full Hessian cheap (it is checked against
``torch.autograd.functional.hessian``) and the loss landscape smooth, so GD's stability
threshold can be measured to many digits; float64 keeps rounding far below the effects.
"""

from __future__ import annotations

import torch
from torch import nn

from trainlab.problems import Problem
from trainlab.seeding import generator

__all__ = ["tanh_regression"]


def tanh_regression(
    seed: int = 0, *, n: int = 8, d_in: int = 4, width: int = 16, dtype: torch.dtype = torch.float64
) -> Problem:
    """MLP d_in-width-1 with tanh on n Gaussian inputs and Gaussian targets, MSE loss.

    With more parameters ((d_in + 2)·width + 1) than examples it can fit the targets
    exactly, so it has interpolating minima (loss 0). Initialised like PyTorch's default,
    U(±1/√fan_in), from ``seed``.
    """
    g = generator(seed, "tanh-regression")
    x = torch.randn(n, d_in, generator=g, dtype=dtype)
    y = torch.randn(n, generator=g, dtype=dtype)
    model = nn.Sequential(nn.Linear(d_in, width), nn.Tanh(), nn.Linear(width, 1), nn.Flatten(0)).to(dtype)
    with torch.no_grad():
        for layer in (model[0], model[2]):
            bound = layer.in_features**-0.5
            layer.weight.uniform_(-bound, bound, generator=g)
            layer.bias.uniform_(-bound, bound, generator=g)
    return Problem("tanh-regression", model, x, y, "mse", info={"n": n, "d_in": d_in, "width": width})
