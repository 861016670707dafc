"""§3 Convolutional networks: shape arithmetic, cross-correlation by hand, accounting."""

from trainlab.convnets.by_hand import LAPLACIAN, cross_correlate2d
from trainlab.convnets.shapes import (
    PaddingSolution,
    conv_output_size,
    conv_transpose_output_size,
    pool_output_size,
    same_padding,
    solve_padding,
)

__all__ = [
    "LAPLACIAN",
    "PaddingSolution",
    "conv_output_size",
    "conv_transpose_output_size",
    "cross_correlate2d",
    "pool_output_size",
    "same_padding",
    "solve_padding",
]
