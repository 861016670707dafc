"""§3 Convolutional networks: shape arithmetic, cross-correlation by hand, and the network accountant.

>>> from torch import nn
>>> from trainlab.convnets import summary
>>> summary(nn.Conv2d(3, 8, 3), (3, 32, 32)).totals()["macs"]
194400
"""

from trainlab.convnets.by_hand import LAPLACIAN, cross_correlate2d
from trainlab.convnets.receptive_field import (
    EmpiricalField,
    ReceptiveField,
    chain_receptive_field,
    empirical_receptive_field,
)
from trainlab.convnets.spec import SpecLayer, build_from_spec, hand_counts, parse_spec
from trainlab.convnets.symbolic import SymbolicCounts, symbolic_counts
from trainlab.convnets.tracer import LayerRow, NotCountedError, Summary, parse_size, summary
from trainlab.loader import load_factory, load_model
from trainlab.shapes import (
    PaddingSolution,
    adaptive_pool_windows,
    conv_output_size,
    conv_transpose_output_size,
    pool_output_size,
    same_padding,
    solve_padding,
    upsample_output_size,
)

__all__ = [
    "LAPLACIAN",
    "EmpiricalField",
    "LayerRow",
    "NotCountedError",
    "PaddingSolution",
    "ReceptiveField",
    "SpecLayer",
    "Summary",
    "SymbolicCounts",
    "adaptive_pool_windows",
    "build_from_spec",
    "chain_receptive_field",
    "conv_output_size",
    "conv_transpose_output_size",
    "cross_correlate2d",
    "empirical_receptive_field",
    "hand_counts",
    "load_factory",
    "load_model",
    "parse_size",
    "parse_spec",
    "pool_output_size",
    "same_padding",
    "solve_padding",
    "summary",
    "symbolic_counts",
    "upsample_output_size",
]
