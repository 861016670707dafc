"""Cross-correlation by hand, the course's edge-detection exercise.

A convolutional layer computes a cross-correlation (no kernel flip):

    (I ⋆ J)[i, j] = Σ_{u,v} I[i + u, j + v] · J[u, v]

With the Laplacian kernel J = [[0, −1, 0], [−1, 4, −1], [0, −1, 0]] each output is
4·I[c] − (sum of the 4 neighbours), so it is 0 wherever the cross-shaped neighbourhood is
flat. On a binary image every term I[c] − I[n] has the same sign, so the output is
non-zero exactly where a neighbour differs: J is an edge detector.
"""

from __future__ import annotations

import torch

from trainlab.errors import ArgumentError

__all__ = ["LAPLACIAN", "blob_image", "cross_correlate2d", "edge_mask", "zero_pad"]

LAPLACIAN = torch.tensor([[0.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 0.0]])


def blob_image(size: int = 5, blob: int = 3) -> torch.Tensor:
    """A ``size``×``size`` image of zeros with a centred ``blob``×``blob`` square of ones."""
    if blob > size or (size - blob) % 2:
        raise ArgumentError("blob", blob, f"at most size={size} and of the same parity")
    image = torch.zeros(size, size)
    lo = (size - blob) // 2
    image[lo:lo + blob, lo:lo + blob] = 1.0
    return image


def zero_pad(image: torch.Tensor, padding: int) -> torch.Tensor:
    """Surround a 2-D image with ``padding`` rings of zeros."""
    h, w = image.shape
    out = image.new_zeros(h + 2 * padding, w + 2 * padding)
    out[padding:padding + h, padding:padding + w] = image
    return out


def cross_correlate2d(image: torch.Tensor, kernel: torch.Tensor, padding: int = 0,
                      stride: int = 1) -> torch.Tensor:
    """Plain loops over output positions: what ``F.conv2d`` computes for one channel."""
    if image.dim() != 2 or kernel.dim() != 2:
        raise ArgumentError("image/kernel", (tuple(image.shape), tuple(kernel.shape)),
                            "2-D tensors (H, W) and (kH, kW)")
    padded = zero_pad(image, padding) if padding else image
    kh, kw = kernel.shape
    out_h = (padded.shape[0] - kh) // stride + 1
    out_w = (padded.shape[1] - kw) // stride + 1
    out = image.new_zeros(out_h, out_w)
    for i in range(out_h):
        for j in range(out_w):
            window = padded[i * stride:i * stride + kh, j * stride:j * stride + kw]
            out[i, j] = (window * kernel).sum()
    return out


def edge_mask(padded: torch.Tensor, kernel: torch.Tensor = LAPLACIAN) -> torch.Tensor:
    """Where the kernel's support (its non-zero taps) sees more than one value.

    Output (i, j) of a valid cross-correlation over ``padded`` is an *edge* position when the
    pixels under the kernel's non-zero taps are not all equal, and *flat* otherwise.
    """
    kh, kw = kernel.shape
    taps = kernel != 0
    out_h, out_w = padded.shape[0] - kh + 1, padded.shape[1] - kw + 1
    mask = torch.zeros(out_h, out_w, dtype=torch.bool)
    for i in range(out_h):
        for j in range(out_w):
            seen = padded[i:i + kh, j:j + kw][taps]
            mask[i, j] = bool((seen != seen[0]).any())
    return mask
