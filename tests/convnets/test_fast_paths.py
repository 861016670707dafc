"""The tracer's hand-inlined fast paths equal the library functions they copy (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from trainlab.convnets.receptive_field import (
    APPROXIMATE,
    EXACT,
    GLOBAL,
    MISALIGNED,
    ReceptiveField,
    merge_fields,
    through_window,
)
from trainlab.convnets.rules import _conv_size, _window_field
from trainlab.convnets.tracing import _merge_two
from trainlab.errors import ArgumentError, ShapeError
from trainlab.shapes import conv_output_size

FAST = settings(max_examples=60, deadline=None)

halves = st.integers(-8, 40).map(lambda v: v / 2)  # starts on the half-pixel grid, as layers make them


@st.composite
def fields(draw, ndim: int, jump: tuple[float, ...] | None = None) -> ReceptiveField:
    size = tuple(float(draw(st.integers(1, 60))) for _ in range(ndim))
    jumps = jump or tuple(float(draw(st.sampled_from([1, 2, 4, 8, 16]))) for _ in range(ndim))
    start = tuple(draw(halves) for _ in range(ndim))
    status = draw(st.sampled_from([EXACT, EXACT, APPROXIMATE, MISALIGNED, GLOBAL]))
    extent = tuple(draw(st.integers(1, 64)) for _ in range(ndim)) if status == GLOBAL else None
    return ReceptiveField(size, jumps, start, status, extent)


class _Tracer:  # what _conv_size needs of a tracer when it falls back: where the layer is
    def where(self, name: str) -> str:
        return f"'layer' ({name})"


@FAST
@given(ndim=st.integers(1, 3), data=st.data())
def test_merge_two_equals_merge_fields(ndim, data):
    a = data.draw(fields(ndim))
    same_grid = data.draw(st.booleans())
    b = data.draw(fields(ndim, a.jump if same_grid else None))
    extent = tuple(data.draw(st.integers(1, 64)) for _ in range(ndim))
    assert _merge_two(a, b, extent) == merge_fields([a, b], extent)
    assert _merge_two(a, a, extent) == merge_fields([a, a], extent)


@FAST
@given(ndim=st.integers(1, 3), data=st.data())
def test_window_field_equals_through_window(ndim, data):
    rf = data.draw(fields(ndim))
    k, s, p, d = (tuple(data.draw(st.integers(lo, hi)) for _ in range(ndim))
                  for lo, hi in ((1, 7), (1, 4), (0, 3), (1, 3)))
    assert _window_field(rf, k, s, p, d) == through_window(rf, k, s, p, d)


@FAST
@given(h=st.integers(-2, 50), k=st.integers(0, 8), s=st.integers(0, 4), p=st.integers(-1, 4),
       d=st.integers(0, 3))
def test_conv_size_equals_conv_output_size_or_raises_the_same(h, k, s, p, d):
    try:
        want = conv_output_size(h, k, s, p, d)
    except (ShapeError, ArgumentError) as e:
        try:
            _conv_size(h, k, s, p, d, _Tracer(), "conv2d")
        except type(e):
            return
        raise AssertionError("the fast path accepted what conv_output_size refuses") from None
    assert _conv_size(h, k, s, p, d, _Tracer(), "conv2d") == want
