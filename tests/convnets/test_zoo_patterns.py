"""The accountant on the patterns of the real model zoo (issue 12), written out in zoo.py.

For every pattern: parameters = Σ numel, MACs = FlopCounterMode's FLOPs/2 on a meta copy in
eval mode, nothing left uncounted (``strict=True`` passes), and the receptive field of the
last spatial layer (the model's ``features``) equals the gradient support of units at the
centre and the two corners.
"""

from __future__ import annotations

import copy
import importlib.util
import math
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from trainlab.convnets import empirical_receptive_field, summary

_spec = importlib.util.spec_from_file_location("convnets_zoo", Path(__file__).with_name("zoo.py"))
zoo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(zoo)


def meta_flop_counter_macs(model: nn.Module, size: tuple[int, ...]) -> int:
    meta = copy.deepcopy(model).to("meta").eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        meta(torch.empty(1, *size, device="meta"))
    return counter.get_total_flops() // 2


def clipped(interval: list[tuple[float, float]], shape: tuple[int, ...]):
    lo = tuple(max(0, math.ceil(a)) for a, _ in interval)
    hi = tuple(min(n - 1, math.floor(b)) for (_, b), n in zip(interval, shape, strict=True))
    return lo, hi


@pytest.mark.parametrize("name", list(zoo.PATTERNS))
def test_pattern_counts_are_exact_strict_passes_and_the_field_is_the_gradient_support(name):
    factory, size = zoo.PATTERNS[name]
    torch.manual_seed(0)
    model = factory()
    result = summary(model, size, strict=True)
    assert result.not_counted == []
    assert result.total_params == sum(p.numel() for p in model.parameters())
    assert result.total_macs == meta_flop_counter_macs(model, size)
    assert model.training  # the eval-mode trace restored the mode

    rows = [r for r in summary(model.features, size).rows if r.receptive_field is not None]
    rf = rows[-1].receptive_field
    assert rf.status != "varies"
    out = rows[-1].output_shape[2:]
    for pos in (tuple(n // 2 for n in out), (0,) * len(out), tuple(n - 1 for n in out)):
        measured = empirical_receptive_field(model.features, size, pos)
        assert (measured.lo, measured.hi) == clipped(rf.interval(pos), size[1:]), (name, pos)


def test_convnext_channels_last_blocks_keep_the_field_and_grow_it_by_7_per_block():
    model = zoo.ConvNeXt()
    rows = [r for r in summary(model.features, (3, 32, 32)).rows if r.receptive_field is not None]
    by_name = {r.name: r.receptive_field for r in rows}
    # stem 4/4 gives 4; each 7×7 depthwise conv at jump 4 adds 24; the 2/2 downsample adds 4
    assert by_name["0"].size == (4.0, 4.0)
    assert by_name["2.dwconv"].size == (28.0, 28.0)
    assert by_name["3.dwconv"].size == (52.0, 52.0)
    assert all(r.status == "exact" for r in by_name.values())


def test_an_se_gate_makes_the_field_global_and_keeps_the_local_one():
    rf = [r for r in summary(zoo.ResNetD(se=True).features, (3, 32, 32)).rows
          if r.receptive_field is not None][-1].receptive_field
    assert rf.status == "global" and rf.extent == (32, 32)
    size, _, _ = rf.describe()
    assert size.startswith("32 (all; local ")
    assert rf.as_numbers()["rf_size"] == [32, 32] and rf.as_numbers()["rf_local_size"] == list(
        map(int, rf.size))


def test_resnet_d_shortcut_is_misaligned_with_an_exact_hull():
    rf = [r for r in summary(zoo.ResNetD().features, (3, 32, 32)).rows
          if r.receptive_field is not None][-1].receptive_field
    assert rf.status == "misaligned"
    assert rf.describe()[0].endswith("(hull)")


def test_eval_mode_by_default_leaves_out_training_only_branches():
    model = zoo.AuxHeadNet()
    evaluated = summary(model, (3, 16, 16), strict=True)
    trained = summary(model, (3, 16, 16), training=True)
    aux_macs = 32 * 10
    assert trained.total_macs == evaluated.total_macs + aux_macs
    assert not [r for r in evaluated.rows if r.name.startswith("aux.") and r.output_shape is not None]
    assert model.training


def test_stochastic_depth_is_off_in_eval_and_free_in_training():
    model = zoo.ConvNeXt()
    assert summary(model, (3, 32, 32), strict=True).not_counted == []
    assert summary(model, (3, 32, 32), training=True, strict=True).not_counted == []


def test_a_constructor_using_torch_ops_cannot_be_built_on_meta_but_is_counted_on_the_cpu():
    with pytest.raises(Exception, match="meta"), torch.device("meta"):
        zoo.RegNetStyle()
    model = zoo.RegNetStyle()
    assert summary(model, (3, 32, 32), strict=True).total_params == sum(p.numel() for p in model.parameters())


def test_free_operations_and_pools_without_macs():
    model = zoo.FreeOps()
    result = summary(model, (3, 24, 24), strict=True)
    assert result.total_macs == 3 * 8 * 9 * 24 * 24 == meta_flop_counter_macs(model, (3, 24, 24))
    by_type = {r.type: r for r in result.rows}
    assert by_type["LPPool2d"].connections == 8 * 12 * 12 * 4  # one link per window pixel
    assert by_type["FractionalMaxPool2d"].connections == 8 * 6 * 6 * 4
    assert by_type["FractionalMaxPool2d"].receptive_field.status == "approximate"


def test_bilinear_counts_rows_out_in1_in2():
    class Pair(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bil = nn.Bilinear(5, 3, 7)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.bil(x, x[..., :3])

    result = summary(Pair(), (4, 5), strict=True)
    assert result.total_macs == 4 * 7 * 5 * 3  # the contraction 'bi,kij,bj->bk'
    assert result.total_params == 7 * 5 * 3 + 7


@pytest.mark.parametrize("norm, training, status", [
    (lambda: nn.GroupNorm(2, 8), False, "global"),
    (lambda: nn.InstanceNorm2d(8), False, "global"),  # no running statistics: the input's own
    (lambda: nn.BatchNorm2d(8), False, "exact"),  # running statistics at inference
    (lambda: nn.BatchNorm2d(8), True, "global"),  # batch statistics in training
    (lambda: nn.LayerNorm([8, 16, 16]), False, "global"),  # normalises over H and W too
])
def test_normalisations_with_spatial_statistics_make_the_field_global(norm, training, status):
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), norm(), nn.Conv2d(8, 8, 3, padding=1))
    rf = summary(model, (3, 16, 16), training=training).rows[-1].receptive_field
    assert rf.status == status and rf.size == (5.0, 5.0)
    if status == "global":
        assert rf.extent == (16, 16) and rf.interval((3, 3)) == [(0.0, 15.0), (0.0, 15.0)]
