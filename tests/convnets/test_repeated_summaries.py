"""Summaries of one model in a row: what is remembered between them (conv, pooling and einsum
geometry, permutation orders, reshape axis maps) depends only on shapes, so a model changed after a
first summary gets the summary a fresh copy of it gets."""

from __future__ import annotations

import copy

import torch
from torch import nn

from trainlab.convnets.tracer import summary


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.gap = nn.AdaptiveAvgPool2d(2)
        self.mix = nn.Parameter(torch.ones(8, 4))
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(torch.relu(self.stem(x)))  # (N, 8, H/2, W/2)
        x = torch.einsum("bchw,cd->bdhw", x, self.mix)  # (N, 4, H/2, W/2)
        x = self.gap(x.permute(0, 1, 3, 2)).reshape(x.shape[0], -1)  # (N, 16)
        return self.fc(x)


def _rows(model: nn.Module, size: tuple[int, ...] = (3, 16, 16)) -> list:
    return summary(model, size).rows


def test_a_changed_model_gets_the_summary_of_a_fresh_copy():
    torch.manual_seed(0)
    model = Net()
    first = _rows(model)
    assert _rows(model) == first  # the same model again: the same rows

    changes = [
        lambda m: setattr(m.stem, "stride", (2, 2)),  # geometry of a layer
        lambda m: setattr(m.stem, "padding", (0, 0)),
        lambda m: setattr(m, "pool", nn.AvgPool2d(3, 1)),  # a layer replaced
        lambda m: setattr(m, "gap", nn.AdaptiveMaxPool2d((4, 1))),
        lambda m: m.fc.weight.requires_grad_(False),  # trainable parameters
        lambda m: setattr(m.mix, "data", torch.ones(8, 3)),  # the same parameter object, resized
        lambda m: setattr(m, "fc", nn.Linear(12, 3)),
        lambda m: setattr(m, "mix", nn.Parameter(torch.ones(8, 2))),  # a new parameter of another size
        lambda m: setattr(m, "fc", nn.Linear(8, 3)),
    ]
    before = first
    for change in changes:
        change(model)
        if not isinstance(model.fc, nn.Linear) or model.fc.in_features != 4 * model.mix.shape[1]:
            continue  # halfway through a change of width (the next change fits the head)
        fresh = copy.deepcopy(model)  # never summarised: nothing remembered about it
        rows = _rows(model)
        assert rows == _rows(fresh)
        assert rows != before
        before = rows


def test_a_new_input_size_is_not_answered_from_the_last_one():
    torch.manual_seed(0)
    model = Net()
    small, large = summary(model, (3, 16, 16)), summary(model, (3, 32, 32))
    assert small.rows[0].output_shape == (1, 8, 16, 16) and large.rows[0].output_shape == (1, 8, 32, 32)
    assert large.total_macs > small.total_macs
    assert summary(model, (3, 16, 16)).rows == small.rows
