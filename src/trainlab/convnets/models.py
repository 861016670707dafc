"""Small networks the §3 claims account for, written out by hand.

* :class:`CourseVGG`: the handout's VGG-like table (conv3-64, maxpool, conv3-128, maxpool,
  conv3-256, conv3-256, maxpool, FC-1024, FC-100 on 3×112×112), as a person would write it,
  ReLUs included (they add no neurons, parameters or connections).

The colourization networks the §3 counting claim uses are the trained ones, in
:mod:`trainlab.colourize.models`; that claim lives beside them (:mod:`trainlab.colourize.counts`),
so that this package imports nothing of ``colourize``.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["COURSE_VGG_INPUT", "COURSE_VGG_SPEC", "CourseVGG"]

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
