"""The course's cross-correlation by hand: equals F.conv2d, zero exactly on flat neighbourhoods."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from trainlab.convnets.by_hand import LAPLACIAN, blob_image, cross_correlate2d, edge_mask, zero_pad
from trainlab.errors import ArgumentError


def test_blob_through_laplacian_matches_conv2d_and_has_zeros_inside_the_blob():
    padded = zero_pad(blob_image(5, 3), 1)
    mine = cross_correlate2d(padded, LAPLACIAN)
    assert mine.shape == (5, 5)
    assert torch.equal(mine, F.conv2d(padded[None, None], LAPLACIAN[None, None])[0, 0])
    assert mine[2, 2] == 0  # centre of the 3×3 blob: flat cross-neighbourhood
    assert mine[1, 1] == 2  # corner of the blob: two of its four neighbours are outside


@settings(max_examples=40, deadline=None)
@given(size=st.integers(3, 9), stride=st.integers(1, 2), seed=st.integers(0, 10_000))
def test_by_hand_equals_conv2d_on_random_images(size, stride, seed):
    g = torch.Generator().manual_seed(seed)
    image = torch.randn(size, size, generator=g, dtype=torch.float64)
    kernel = torch.randn(3, 3, generator=g, dtype=torch.float64)
    mine = cross_correlate2d(image, kernel, padding=1, stride=stride)
    ref = F.conv2d(image[None, None], kernel[None, None], padding=1, stride=stride)[0, 0]
    assert torch.allclose(mine, ref, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(size=st.integers(3, 10), seed=st.integers(0, 10_000))
def test_laplacian_is_zero_exactly_on_flat_cross_neighbourhoods(size, seed):
    g = torch.Generator().manual_seed(seed)
    padded = zero_pad((torch.rand(size, size, generator=g) < 0.5).double(), 1)
    out = cross_correlate2d(padded, LAPLACIAN.double())
    assert torch.equal(out != 0, edge_mask(padded))


def test_bad_inputs_are_argument_errors():
    with pytest.raises(ArgumentError, match="blob"):
        blob_image(5, 2)
    with pytest.raises(ArgumentError, match="2-D"):
        cross_correlate2d(torch.zeros(1, 3, 3), LAPLACIAN)
