"""Receptive fields by formula (Araujo et al. 2019) against the gradient support of a unit."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import nn

from trainlab.convnets.receptive_field import (
    ReceptiveField,
    chain_receptive_field,
    empirical_receptive_field,
    input_field,
    merge_fields,
    through_window,
)
from trainlab.convnets.tracer import summary
from trainlab.errors import ArgumentError, ShapeError


def formula_support(rf: ReceptiveField, pos: tuple[int, ...], shape: tuple[int, ...]):
    interval = rf.interval(pos)
    lo = tuple(max(0, math.ceil(a)) for a, _ in interval)
    hi = tuple(min(n - 1, math.floor(b)) for (_, b), n in zip(interval, shape, strict=True))
    return lo, hi


layer_strategy = st.tuples(
    st.sampled_from(["conv", "max", "avg"]),
    st.integers(1, 5),
    st.integers(1, 2),
    st.integers(0, 2),
    st.integers(1, 2),
)


@settings(max_examples=25, deadline=None)
@given(layers=st.lists(layer_strategy, min_size=1, max_size=4), data=st.data())
def test_chain_fields_equal_the_gradient_support_of_a_unit(layers, data):
    modules = []
    for kind, k, s, p, d in layers:
        p = min(p, k // 2)
        if kind == "conv":
            modules.append(nn.Conv2d(1, 1, k, s, p, d))
        elif kind == "max":
            modules.append(nn.MaxPool2d(k, s, p))
        else:
            modules.append(nn.AvgPool2d(k, s, p))
    model = nn.Sequential(*modules)
    size = (1, 40, 40)
    # The output size by the formula, layer by layer; a chain that shrinks the image below one
    # pixel must be refused with a ShapeError naming the layer (and torch refuses it too).
    h, shrinks = 40, False
    for kind, k, s, p, d in layers:
        p = min(p, k // 2)
        span = h + 2 * p - (d if kind == "conv" else 1) * (k - 1) - 1  # pools here are undilated
        if span < 0:
            shrinks = True
            break
        h = span // s + 1
    if shrinks:
        with pytest.raises(ShapeError, match="layer"):
            summary(model, size)
        with pytest.raises(RuntimeError):
            model(torch.zeros(1, *size))
        return
    result = summary(model, size)
    assert result.rows[-1].output_shape == (1, 1, h, h)
    row = result.rows[-1]
    out = row.output_shape[2:]
    pos = tuple(data.draw(st.integers(0, n - 1)) for n in out)
    # Where the field hangs over the padding, dilation's holes can make the clipped support
    # start later than the clipped interval; the field's extent is exact inside the image.
    assume(all(0 <= a and b <= 39 for a, b in row.receptive_field.interval(pos)))
    measured = empirical_receptive_field(model, size, pos)
    assert (measured.lo, measured.hi) == formula_support(row.receptive_field, pos, size[1:])


def test_closed_form_chain_agrees_with_the_recursion():
    kernels, strides = [7, 3, 3, 3, 1, 3], [2, 2, 1, 1, 2, 1]
    rf = input_field(1)
    sizes = []
    for k, s in zip(kernels, strides, strict=True):
        rf = through_window(rf, k, s)
        sizes.append(int(rf.size[0]))
    assert sizes == chain_receptive_field(kernels, strides)


def test_dilation_enters_as_effective_kernel():
    rf = through_window(input_field(2), 3, 1, 2, 2)  # k_eff = 2·(3 − 1) + 1 = 5
    assert rf.size == (5.0, 5.0) and rf.start == (0.0, 0.0)


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 5, padding=2)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.b(self.a(x)) + self.a(x)  # aligned branches: fields 7 and 3
        return self.pool(torch.cat([y, x], dim=1))


def test_dag_field_is_the_union_of_aligned_branches():
    rows = summary(Residual(), (1, 20, 20)).rows
    last = rows[-1].receptive_field
    assert last.status == "exact" and last.size == (8.0, 8.0)  # 7 after the merge, +1 through the 2×2 pool
    measured = empirical_receptive_field(Residual(), (1, 20, 20), (5, 5))
    assert (measured.lo, measured.hi) == formula_support(last, (5, 5), (20, 20))


class Misaligned(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, stride=2, padding=1)
        self.pool = nn.AvgPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + self.pool(x)


def test_branches_with_different_centres_are_flagged_misaligned_and_give_their_hull():
    row = summary(Misaligned(), (1, 16, 16)).rows[-1]
    rf = row.receptive_field
    assert rf.status == "misaligned"
    # unit 4 sees the conv's 7..9 and the pool's 8..9: centres 8 and 8.5 differ, but with one
    # jump the union's extent is the same for every unit: the hull 7..9 (size 3, centre 8)
    assert rf.describe() == ("3 (hull)", "2", "0")
    for pos in [(0, 0), (4, 4), (7, 3)]:
        measured = empirical_receptive_field(Misaligned(), (1, 16, 16), pos)
        assert (measured.lo, measured.hi) == formula_support(rf, pos, (16, 16))


def test_merge_of_identical_fields_is_exact_and_of_different_centres_their_hull():
    a = through_window(input_field(2), 3)
    assert merge_fields([a, a]) == a
    b = through_window(input_field(2), 3, 2, 1)
    assert merge_fields([a, b]).status == "varies"  # jumps 1 and 2: no single pattern
    c = through_window(input_field(2), 2)  # unit 0: a sees 0..2 (centre 1), c sees 0..1 (centre 0.5)
    merged = merge_fields([a, c])
    assert merged.status == "misaligned" and merged.size == (3.0, 3.0) and merged.start == (1.0, 1.0)


def test_empirical_field_refuses_positions_outside_the_output():
    with pytest.raises(ArgumentError, match="position"):
        empirical_receptive_field(nn.Conv2d(1, 1, 3), (1, 8, 8), (7, 0))


def test_empirical_field_leaves_the_model_untouched():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    empirical_receptive_field(model, (1, 8, 8))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("up", [nn.ConvTranspose2d(1, 1, 4, 2, 1), nn.ConvTranspose2d(1, 1, 5, 2, 2, 1),
                                nn.Upsample(scale_factor=2), nn.Upsample(scale_factor=2, mode="bilinear")])
def test_upsampling_fields_are_marked_approximate_and_bound_the_gradient_support(up):
    model = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.MaxPool2d(2), up, nn.Conv2d(1, 1, 3, padding=1))
    size = (1, 24, 24)
    field = summary(model, size).rows[-1].receptive_field
    assert field.status == "approximate"
    sizes = []
    for o in range(6, 18):  # interior units: no clipping by the image border
        measured = empirical_receptive_field(model, size, (o, o))
        sizes.append(measured.size[0])
        lo, hi = field.interval((o, o))[0]
        # the support lies in the predicted interval widened by half the upsampler's input step
        # (that step is 2 output jumps at scale 2)
        slack = field.jump[0]
        assert lo - slack <= measured.lo[0] and measured.hi[0] <= hi + slack
    assert max(sizes) == field.size[0]


def test_the_check_keeps_a_layer_norm_over_the_image_axes():
    """LayerNorm([C, H, W]) makes every unit see the whole image; the check replaced it by its affine
    part and measured the local 5×5, disagreeing with the formula silently."""
    from torch import nn

    from trainlab.convnets import summary
    from trainlab.convnets.receptive_field import empirical_receptive_field

    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.LayerNorm([8, 14, 14]), nn.Conv2d(8, 8, 3))
    formula = summary(model, (3, 16, 16)).rows[-1].receptive_field
    measured = empirical_receptive_field(model, (3, 16, 16))
    assert formula.status == "global" and formula.whole_size == (16.0, 16.0)
    assert (measured.lo, measured.hi) == ((0, 0), (15, 15))
    # over the channels alone (channels last) the field stays local: the affine stand-in holds
    class ChannelsLast(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.norm, self.b = nn.Conv2d(3, 8, 3), nn.LayerNorm(8), nn.Conv2d(8, 8, 3)

        def forward(self, x):
            return self.b(self.norm(self.a(x).permute(0, 2, 3, 1)).permute(0, 3, 1, 2))

    local = empirical_receptive_field(ChannelsLast(), (3, 16, 16))
    assert local.size == (5, 5)
