"""Shape arithmetic against real torch modules (hypothesis), and the padding solver."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from trainlab.errors import ArgumentError, ShapeError
from trainlab.shapes import (
    adaptive_pool_windows,
    conv_output_size,
    conv_transpose_output_size,
    pool_output_size,
    same_padding,
    solve_padding,
    upsample_output_size,
)

FAST = settings(max_examples=60, deadline=None)


def torch_size(layer: nn.Module, size: int, dims: int = 2) -> int | None:
    try:
        with torch.no_grad():
            out = layer(torch.zeros(1, 1, *([size] * dims)))
    except RuntimeError:
        return None
    return int(out.shape[-1]) if out.shape[-1] >= 1 else None


def ours(fn, *args, **kwargs) -> int | None:
    try:
        return fn(*args, **kwargs)
    except ShapeError:
        return None


@FAST
@given(
    h=st.integers(1, 40),
    k=st.integers(1, 7),
    s=st.integers(1, 4),
    p=st.integers(0, 3),
    d=st.integers(1, 3),
    dims=st.sampled_from([1, 2, 3]),
)
def test_conv_output_size_matches_conv_modules(h, k, s, p, d, dims):
    h = min(h, 12) if dims == 3 else h  # keep the 3-D volumes small
    conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dims](1, 1, k, s, p, d)
    assert ours(conv_output_size, h, k, s, p, d) == torch_size(conv, h, dims)


@FAST
@given(
    h=st.integers(1, 40),
    k=st.integers(1, 7),
    s=st.integers(1, 4),
    p=st.integers(0, 3),
    d=st.integers(1, 3),
    data=st.data(),
)
def test_transposed_conv_output_size_matches_module(h, k, s, p, d, data):
    op = data.draw(st.integers(0, max(s, d) - 1))
    layer = nn.ConvTranspose2d(1, 1, k, s, p, op, dilation=d)
    assert ours(conv_transpose_output_size, h, k, s, p, d, op) == torch_size(layer, h)


@FAST
@given(
    h=st.integers(1, 40),
    k=st.integers(1, 5),
    s=st.integers(1, 4),
    d=st.integers(1, 2),
    ceil=st.booleans(),
    data=st.data(),
)
def test_pool_output_size_matches_max_and_avg_pool(h, k, s, d, ceil, data):
    p = data.draw(st.integers(0, k // 2))
    assert ours(pool_output_size, h, k, s, p, d, ceil) == torch_size(
        nn.MaxPool2d(k, s, p, d, ceil_mode=ceil), h
    )
    assert ours(pool_output_size, h, k, s, p, 1, ceil) == torch_size(nn.AvgPool2d(k, s, p, ceil_mode=ceil), h)


@FAST
@given(h=st.integers(1, 30), out=st.integers(1, 12))
def test_adaptive_pool_windows_reproduce_adaptive_avg_pool(h, out):
    x = torch.arange(h, dtype=torch.float64)[None, None]
    got = nn.AdaptiveAvgPool1d(out)(x)[0, 0]
    want = torch.tensor(
        [sum(range(a, b)) / (b - a) for a, b in adaptive_pool_windows(h, out)], dtype=torch.float64
    )
    assert torch.allclose(got, want)


@FAST
@given(h=st.integers(1, 30), scale=st.sampled_from([0.5, 1.5, 2.0, 3.0, 2.5]))
def test_upsample_output_size_matches_upsample(h, scale):
    assert ours(upsample_output_size, h, scale) == torch_size(nn.Upsample(scale_factor=scale), h)


@FAST
@given(
    h=st.integers(2, 32),
    k=st.integers(1, 6),
    s=st.integers(1, 3),
    d=st.integers(1, 2),
    p=st.integers(0, 2),
    data=st.data(),
)
def test_every_solved_padding_realises_the_size_and_the_generating_one_is_found(h, k, s, d, p, data):
    op = data.draw(st.integers(0, max(s, d) - 1))
    target = torch_size(nn.ConvTranspose2d(1, 1, k, s, p, op, dilation=d), h)
    if target is None:  # torch refuses (or gives an empty output): the formula must refuse too
        assert ours(conv_transpose_output_size, h, k, s, p, d, op) is None
        return
    assert conv_transpose_output_size(h, k, s, p, d, op) == target
    sols = solve_padding(h, target, k, s, d, transposed=True)
    assert (p, op) in sols
    for sp, sop in sols:
        assert torch_size(nn.ConvTranspose2d(1, 1, k, s, sp, sop, dilation=d), h) == target


def test_transposed_conv_16_to_32_paddings_from_the_assignment():
    assert solve_padding(16, 32, kernel_size=4, stride=2, transposed=True) == [(1, 0)]
    assert solve_padding(16, 32, kernel_size=5, stride=2, transposed=True) == [(2, 1)]
    for k, (p, op) in [(4, (1, 0)), (5, (2, 1))]:
        assert nn.ConvTranspose2d(1, 1, k, 2, p, op)(torch.zeros(1, 1, 16, 16)).shape[-1] == 32


def test_same_padding_for_odd_kernels_and_refusal_for_even():
    assert [same_padding(k) for k in (1, 3, 5, 7)] == [0, 1, 2, 3]
    with pytest.raises(ArgumentError, match="kernel_size"):
        same_padding(4)


def test_course_examples_28_to_26_and_14():
    assert conv_output_size(28, 3) == 26
    assert conv_output_size(28, 4, 2, 1) == 14


def test_impossible_sizes_name_the_arithmetic():
    with pytest.raises(ShapeError, match="smaller than the dilated kernel"):
        conv_output_size(2, 5)
    with pytest.raises(ShapeError, match="too large"):
        solve_padding(4, 100, 3, 2, transposed=True)
    with pytest.raises(ArgumentError, match="stride"):
        conv_output_size(10, 3, stride=0)
