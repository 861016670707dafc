"""Output-size arithmetic of convolution, pooling and transposed convolution, and its inverse.

Formulas (PyTorch's documentation of Conv2d / MaxPool2d / ConvTranspose2d; CLAIMS.md §3):

    conv / pool:     H_out = ⌊(H + 2p − d(k − 1) − 1) / s⌋ + 1
    ceil_mode pool:  H_out = ⌈(H + 2p − d(k − 1) − 1) / s⌉ + 1, minus one if the last
                     window would start inside the right padding ((H_out − 1)s ≥ H + p)
    transposed conv: H_out = (H − 1)s − 2p + d(k − 1) + p_out + 1,  0 ≤ p_out < max(s, d)
    adaptive pool:   window i covers [⌊iH/H_out⌋, ⌈(i + 1)H/H_out⌉)
    upsampling:      H_out = ⌊H · scale⌋ (or the requested size)

>>> conv_output_size(28, kernel_size=3)
26
>>> conv_output_size(28, kernel_size=4, stride=2, padding=1)
14
>>> conv_transpose_output_size(16, kernel_size=4, stride=2, padding=1)
32
>>> solve_padding(16, 32, kernel_size=5, stride=2, transposed=True)
[PaddingSolution(padding=2, output_padding=1)]
"""

from __future__ import annotations

from typing import NamedTuple

from trainlab.errors import ArgumentError, ShapeError

__all__ = [
    "PaddingSolution",
    "adaptive_pool_windows",
    "conv_output_size",
    "conv_transpose_output_size",
    "pool_output_size",
    "same_padding",
    "solve_padding",
    "upsample_output_size",
]


def _check(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ArgumentError(name, value, f"an integer ≥ {minimum}")


def _check_common(size: int, kernel_size: int, stride: int, padding: int, dilation: int) -> None:
    _check("size", size, 1)
    _check("kernel_size", kernel_size, 1)
    _check("stride", stride, 1)
    _check("padding", padding, 0)
    _check("dilation", dilation, 1)


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0,
                     dilation: int = 1, *, layer: str = "conv") -> int:
    """Spatial output size of a convolution along one dimension."""
    _check_common(size, kernel_size, stride, padding, dilation)
    span = size + 2 * padding - dilation * (kernel_size - 1) - 1
    if span < 0:
        raise ShapeError(
            f"{layer}: input {size} + 2·padding {padding} = {size + 2 * padding} is smaller than "
            f"the dilated kernel d(k−1)+1 = {dilation * (kernel_size - 1) + 1}; "
            "use a smaller kernel, more padding or a larger input")
    return span // stride + 1


def pool_output_size(size: int, kernel_size: int, stride: int | None = None, padding: int = 0,
                     dilation: int = 1, ceil_mode: bool = False, *, layer: str = "pool") -> int:
    """Spatial output size of max/avg pooling (``stride`` defaults to ``kernel_size``)."""
    stride = kernel_size if stride is None else stride
    _check_common(size, kernel_size, stride, padding, dilation)
    if 2 * padding > kernel_size:
        raise ArgumentError("padding", padding, f"at most half the kernel size ({kernel_size // 2})")
    span = size + 2 * padding - dilation * (kernel_size - 1) - 1
    # ceil_mode rounds a negative span up too (a window may hang over the right padding).
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:  # last window starts in the padding
        out -= 1
    if out < 1:
        raise ShapeError(f"{layer}: input {size} + 2·padding {padding} is smaller than the "
                         f"window d(k−1)+1 = {dilation * (kernel_size - 1) + 1}")
    return out


def conv_transpose_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0,
                               dilation: int = 1, output_padding: int = 0, *,
                               layer: str = "convT") -> int:
    """Spatial output size of a transposed convolution along one dimension."""
    _check_common(size, kernel_size, stride, padding, dilation)
    _check("output_padding", output_padding, 0)
    if output_padding >= max(stride, dilation):
        raise ArgumentError("output_padding", output_padding,
                            f"smaller than stride or dilation (< {max(stride, dilation)})")
    out = (size - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1
    if out < 1:
        raise ShapeError(f"{layer}: (H−1)s − 2p + d(k−1) + p_out + 1 = {out} is not positive; "
                         "reduce the padding")
    return out


def same_padding(kernel_size: int, dilation: int = 1) -> int:
    """Padding that keeps the size at stride 1: (d(k − 1))/2, defined for odd k (or even d(k−1))."""
    _check("kernel_size", kernel_size, 1)
    _check("dilation", dilation, 1)
    if dilation * (kernel_size - 1) % 2:
        raise ArgumentError("kernel_size", kernel_size,
                            "odd (with dilation 1) so that padding (k−1)/2 keeps H and W")
    return dilation * (kernel_size - 1) // 2


class PaddingSolution(NamedTuple):
    padding: int
    output_padding: int = 0


def solve_padding(size_in: int, size_out: int, kernel_size: int, stride: int = 1,
                  dilation: int = 1, *, transposed: bool = False) -> list[PaddingSolution]:
    """Every (padding, output_padding) that takes ``size_in`` to ``size_out``.

    For a convolution output_padding is always 0; for a transposed convolution it ranges
    over 0 ≤ p_out < max(stride, dilation). Raises :class:`ShapeError` explaining why when
    no solution exists.
    """
    _check("size_in", size_in, 1)
    _check("size_out", size_out, 1)
    _check("kernel_size", kernel_size, 1)
    _check("stride", stride, 1)
    _check("dilation", dilation, 1)
    reach = dilation * (kernel_size - 1)
    if transposed:
        # 2p = (H−1)s + d(k−1) + p_out + 1 − H_out must be even and ≥ 0: p_out from the smallest such
        # value in steps of 2 (closed form: a loop over p_out never ends for a stride of 10^15)
        base = (size_in - 1) * stride + reach + 1 - size_out
        first = max(0, -base)
        first += (base + first) % 2
        found = [PaddingSolution((base + op) // 2, op) for op in range(first, max(stride, dilation), 2)]
        if not found:
            lo = (size_in - 1) * stride + reach + 1 - size_out
            why = ("the output is too large even with padding 0 and the largest output_padding"
                   if lo + max(stride, dilation) - 1 < 0 else
                   "no padding/output_padding pair makes (H−1)s − 2p + d(k−1) + p_out + 1 hit it")
            raise ShapeError(f"no transposed convolution with k={kernel_size}, s={stride}, "
                             f"d={dilation} takes {size_in} to {size_out}: {why}")
        return found
    # ⌊(H + 2p − d(k−1) − 1)/s⌋ + 1 = H_out  ⇔  (H_out−1)s ≤ H + 2p − d(k−1) − 1 < H_out·s
    # ⇔ (H_out−1)s − H + d(k−1) + 1 ≤ 2p ≤ H_out·s − H + d(k−1), p ≥ 0 (closed form: a loop over p
    # never ends for a kernel of 10^15)
    lo, hi = (size_out - 1) * stride - size_in + reach + 1, size_out * stride - size_in + reach
    found = [PaddingSolution(p, 0) for p in range(max(0, -(-lo // 2)), hi // 2 + 1)]
    if not found:
        span0 = size_in - reach - 1
        at_zero = (f"padding 0 gives {span0 // stride + 1}" if span0 >= 0
                   else "padding 0 leaves the input smaller than the kernel")
        raise ShapeError(f"no padding makes a convolution with k={kernel_size}, s={stride}, "
                         f"d={dilation} take {size_in} to {size_out}: the output only grows "
                         f"with padding ({at_zero}), by 2/{stride} of a pixel per padding step")
    return found


def adaptive_pool_windows(size: int, output_size: int) -> list[tuple[int, int]]:
    """The [start, end) input window of each output of adaptive pooling along one dimension.

    PyTorch's rule (aten/src/ATen/native/AdaptiveAveragePooling.cpp): output i pools
    input positions ⌊i·H/H_out⌋ ≤ h < ⌈(i + 1)·H/H_out⌉. Windows have equal size and
    stride H/H_out exactly when H_out divides H; otherwise they vary and may overlap.

    >>> adaptive_pool_windows(5, 3)
    [(0, 2), (1, 4), (3, 5)]
    """
    _check("size", size, 1)
    _check("output_size", output_size, 1)
    return [((i * size) // output_size, -(-((i + 1) * size) // output_size)) for i in range(output_size)]


def upsample_output_size(size: int, scale_factor: float | None = None, output_size: int | None = None,
                         *, layer: str = "upsample") -> int:
    """Spatial output size of ``nn.Upsample`` / ``F.interpolate``: the requested size or ⌊H·scale⌋."""
    _check("size", size, 1)
    if (scale_factor is None) == (output_size is None):
        raise ArgumentError("scale_factor/size", (scale_factor, output_size), "exactly one of the two")
    if output_size is not None:
        _check("size", output_size, 1)
        return output_size
    if not 0 < scale_factor < float("inf"):
        raise ArgumentError("scale_factor", scale_factor, "a positive finite number")
    product = size * scale_factor
    if not product < 2**63:  # inf included
        raise ArgumentError("scale_factor", scale_factor,
                            f"a scale giving fewer than 2^63 pixels from {size}")
    out = int(product)  # torch floors (aten upsample_*: floor(input_size * scale))
    if out < 1:
        raise ShapeError(f"{layer}: ⌊{size}·{scale_factor}⌋ = {out} is not positive; use a larger scale")
    return out
