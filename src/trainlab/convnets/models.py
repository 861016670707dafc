"""Small networks the §3 claims account for, written out by hand.

* :class:`CourseVGG`: the handout's VGG-like table (conv3-64, maxpool, conv3-128, maxpool,
  conv3-256, conv3-256, maxpool, FC-1024, FC-100 on 3×112×112), as a person would write it,
  ReLUs included (they add no neurons, parameters or connections).
* :class:`PoolUpsampleNet`: the colourization assignment's first network (conv, max-pool,
  batch norm, ReLU down; conv, upsample, batch norm, ReLU up; final conv). With kernel k,
  NIC input channels, NF filters and NC colours its convolution weights number
  k²·(NIC·NF + 2NF² + 2NF² + NF·NC + NC²), i.e. 9·NIC·NF + 36·NF² + 9·NF·NC + 9·NC² for k = 3.
  (A local copy for accounting; the trained networks live in ``trainlab.colourize``.)
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["COURSE_VGG_INPUT", "COURSE_VGG_SPEC", "CourseVGG", "PoolUpsampleNet"]

COURSE_VGG_SPEC = "conv3-64, maxpool, conv3-128, maxpool, conv3-256, conv3-256, maxpool, fc-1024, fc-100"
COURSE_VGG_INPUT = (3, 112, 112)


class CourseVGG(nn.Module):
    def __init__(self, num_classes: int = 100) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(64, 128, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(128, 256, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
        )
        self.fc1 = nn.Linear(256 * 14 * 14, 1024)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x).flatten(1)  # (N, 256, 14, 14) -> (N, 50176)
        return self.fc2(torch.relu(self.fc1(x)))


class PoolUpsampleNet(nn.Module):
    def __init__(
        self, num_in_channels: int = 1, num_filters: int = 32, num_colours: int = 24, kernel: int = 3
    ) -> None:
        super().__init__()
        p = kernel // 2
        nf, nc = num_filters, num_colours

        def down(a: int, b: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(a, b, kernel, padding=p), nn.MaxPool2d(2), nn.BatchNorm2d(b), nn.ReLU()
            )

        def up(a: int, b: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(a, b, kernel, padding=p), nn.Upsample(scale_factor=2), nn.BatchNorm2d(b), nn.ReLU()
            )

        self.layers = nn.Sequential(
            down(num_in_channels, nf),
            down(nf, 2 * nf),
            up(2 * nf, nf),
            up(nf, nc),
            nn.Conv2d(nc, nc, kernel, padding=p),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
