"""Receptive fields: size, jump and start of every layer, by formula and by gradient.

For a unit of a layer, its receptive field is the set of input pixels it depends on. Along
each spatial dimension a chain of convolutions and poolings maps output index i to an
input interval centred at ``start + i·jump`` of width ``size`` (Araujo, Norris & Sim,
"Computing Receptive Fields of Convolutional Neural Networks", Distill 2019). A layer with
kernel k, stride s, padding p and dilation d (effective kernel k_eff = d(k − 1) + 1) updates

    size  ← size + (k_eff − 1)·jump
    jump  ← jump·s
    start ← start + ((k_eff − 1)/2 − p)·jump

starting from the input: size 1, jump 1, start 0 (pixel centres at integer coordinates,
so ``start`` is the centre of the field of output unit 0 and may be negative when the
field hangs over the zero padding). Closed form for a chain of L layers:
size_L = 1 + Σ_l (k_l − 1)·Π_{i<l} s_i.

Where two branches meet (a residual add, a ``torch.cat``), the merged field is the union
of the branch fields: its size is the larger one when both branches agree on jump and
start; when they disagree no single (size, jump, start) describes it, and the field is
marked ``misaligned`` rather than given a wrong number. Upsampling and transposed
convolutions do not map indices affinely (several outputs share one input); their field
is marked ``approximate``: ``size`` is the largest field over the outputs and ``jump`` the
average step.

:func:`empirical_receptive_field` measures the field directly: the non-zero support of the
gradient of one output unit with respect to the input, with every weight set to a
positive constant so that nothing cancels.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from trainlab.errors import ArgumentError

__all__ = [
    "EmpiricalField",
    "ReceptiveField",
    "chain_receptive_field",
    "empirical_receptive_field",
    "input_field",
    "merge_fields",
    "through_upsampling",
    "through_window",
]

EXACT, MISALIGNED, APPROXIMATE = "exact", "misaligned", "approximate"


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of a layer's units, one entry per spatial dimension (H, W, ...)."""

    size: tuple[float, ...]
    jump: tuple[float, ...]
    start: tuple[float, ...]
    status: str = EXACT

    @property
    def ndim(self) -> int:
        return len(self.size)

    def interval(self, index: Sequence[int]) -> list[tuple[float, float]]:
        """Input interval [lo, hi] (pixel indices, before clipping to the image) of unit ``index``."""
        out = []
        for r, j, s, i in zip(self.size, self.jump, self.start, index, strict=True):
            centre = s + i * j
            out.append((centre - (r - 1) / 2, centre + (r - 1) / 2))
        return out

    def describe(self) -> tuple[str, str, str]:
        """(size, jump, start) as short strings: one number when all dimensions agree."""
        if self.status == MISALIGNED:
            return "misaligned", "—", "—"

        def fmt(values: tuple[float, ...]) -> str:
            texts = [f"{v:g}" for v in values]
            return texts[0] if len(set(texts)) == 1 else "×".join(texts)

        mark = "~" if self.status == APPROXIMATE else ""
        return mark + fmt(self.size), mark + fmt(self.jump), mark + fmt(self.start)


def input_field(ndim: int) -> ReceptiveField:
    """The input's own field: every pixel sees itself (size 1, jump 1, start 0)."""
    return ReceptiveField((1.0,) * ndim, (1.0,) * ndim, (0.0,) * ndim)


def _per_dim(value: int | Sequence[int], ndim: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * ndim
    value = tuple(value)
    return value * ndim if len(value) == 1 else value


def through_window(
    rf: ReceptiveField,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
) -> ReceptiveField:
    """The field after a convolution or pooling window (Araujo et al. 2019, eqs. for r, j, start)."""
    n = rf.ndim
    ks, ss, ps, ds = (_per_dim(v, n) for v in (kernel_size, stride, padding, dilation))
    size, jump, start = [], [], []
    for r, j, s0, k, s, p, d in zip(rf.size, rf.jump, rf.start, ks, ss, ps, ds, strict=True):
        k_eff = d * (k - 1) + 1
        size.append(r + (k_eff - 1) * j)
        start.append(s0 + ((k_eff - 1) / 2 - p) * j)
        jump.append(j * s)
    return ReceptiveField(tuple(size), tuple(jump), tuple(start), rf.status)


def through_upsampling(rf: ReceptiveField, scale: Sequence[float], reach: Sequence[int],
                       offset: Sequence[float]) -> ReceptiveField:
    """The field after upsampling by ``scale`` where each output reads ``reach + 1`` adjacent inputs.

    Output unit o sits, in the input's index coordinates, near ``o/scale + offset``: for a
    transposed convolution (o = i·s − p + t·d over its taps t) the taps' mean gives offset
    (p − d(k − 1)/2)/s and reach ⌈(d(k − 1) + 1)/s⌉ − 1; for nearest or linear interpolation
    (align_corners=False) offset 1/(2s) − 1/2 and reach 0 or 1. So

        size ← size + reach·jump,  jump ← jump/scale,  start ← start + offset·jump.

    Several outputs share one input, the index map is not affine, and the result is marked
    ``approximate`` (largest size, average jump, centre to within half an input step).
    """
    size = tuple(r + q * j for r, j, q in zip(rf.size, rf.jump, reach, strict=True))
    jump = tuple(j / f for j, f in zip(rf.jump, scale, strict=True))
    start = tuple(s + c * j for s, c, j in zip(rf.start, offset, rf.jump, strict=True))
    status = MISALIGNED if rf.status == MISALIGNED else APPROXIMATE
    return ReceptiveField(size, jump, start, status)


def merge_fields(fields: Sequence[ReceptiveField]) -> ReceptiveField:
    """The field of a unit that combines branches (add, concat): their union.

    Aligned branches (same jump and start in every dimension) give the larger size;
    otherwise the union is no single interval pattern and the result is ``misaligned``.
    """
    if not fields:
        raise ValueError("merge_fields needs at least one field")
    first = fields[0]
    if any(f.ndim != first.ndim for f in fields):
        return ReceptiveField(first.size, first.jump, first.start, MISALIGNED)
    size = tuple(max(f.size[i] for f in fields) for i in range(first.ndim))
    aligned = all(f.jump == first.jump and f.start == first.start for f in fields)
    statuses = {f.status for f in fields}
    if not aligned or MISALIGNED in statuses:
        status = MISALIGNED
    else:
        status = APPROXIMATE if APPROXIMATE in statuses else EXACT
    return ReceptiveField(size, first.jump, first.start, status)


def chain_receptive_field(kernels: Sequence[int], strides: Sequence[int]) -> list[int]:
    """Closed form for a chain: size_l = 1 + Σ_{m≤l} (k_m − 1)·Π_{i<m} s_i (Araujo et al. 2019, eq. 2).

    An independent check of :func:`through_window` (no padding/start bookkeeping).

    >>> chain_receptive_field([3, 2, 3], [1, 2, 1])
    [3, 4, 8]
    """
    sizes, total = [], 1
    for m, k in enumerate(kernels):
        total += (k - 1) * math.prod(strides[:m])
        sizes.append(total)
    return sizes


@dataclass(frozen=True)
class EmpiricalField:
    """Support of ∂(output unit)/∂(input): the input pixels ``lo..hi`` (inclusive) per dimension."""

    position: tuple[int, ...]
    lo: tuple[int, ...]
    hi: tuple[int, ...]

    @property
    def size(self) -> tuple[int, ...]:
        return tuple(h - lo + 1 for lo, h in zip(self.lo, self.hi, strict=True))


class _MaxToAvgPool(TorchFunctionMode):
    """Max pooling routes the gradient to one pixel per window; average pooling, with the
    same window geometry and so the same receptive field, sends it to all of them."""

    _MAX = {F.max_pool1d: F.avg_pool1d, F.max_pool2d: F.avg_pool2d, F.max_pool3d: F.avg_pool3d}

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = dict(kwargs or {})
        avg = self._MAX.get(func)
        if avg is None:
            return func(*args, **kwargs)
        names = ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
        bound = dict(zip(names, args, strict=False)) | kwargs
        if any(d != 1 for d in _per_dim(bound.get("dilation", 1), 1)):
            raise ArgumentError(
                "model",
                "max pooling with dilation > 1",
                "max pooling without dilation for the empirical receptive field",
            )
        if bound.get("return_indices"):
            raise ArgumentError(
                "model",
                "max pooling with return_indices",
                "max pooling without indices for the empirical receptive field",
            )
        return avg(
            bound["input"],
            bound["kernel_size"],
            bound.get("stride") or bound["kernel_size"],
            bound.get("padding", 0),
            bool(bound.get("ceil_mode", False)),
        )


def _first_tensor(out: Any) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, list | tuple):
        for item in out:
            if isinstance(item, torch.Tensor):
                return item
    if isinstance(out, dict):
        return _first_tensor(list(out.values()))
    raise ArgumentError("model", type(out).__name__, "a model whose output is (or starts with) a tensor")


def empirical_receptive_field(
    model: nn.Module, input_size: Sequence[int], position: Sequence[int] | None = None
) -> EmpiricalField:
    """Measure the receptive field of one output unit as the support of its input gradient.

    A copy of ``model`` (the model itself is untouched) gets every parameter set to a positive
    constant (weights 1/fan-in, biases 0.01), batch-norm statistics reset (mean 0, variance 1)
    and is run in eval mode in float64 on an all-ones input of shape ``(1, *input_size)``; max
    pooling is replaced by average pooling over the same windows. All activations are then
    positive, ReLUs pass gradient, and no two paths cancel, so the gradient of
    Σ_c out[0, c, *position] is non-zero exactly on the pixels the unit depends on.
    ``position`` defaults to the centre unit.
    """
    probe = copy.deepcopy(model).to(torch.float64).eval()
    with torch.no_grad():
        for name, p in probe.named_parameters():
            p.requires_grad_(False)  # only the input gradient is needed
            fan_in = p[0].numel() if p.dim() > 1 else 1
            p.fill_(1.0 / fan_in if p.dim() > 1 else (0.01 if name.endswith("bias") else 1.0))
        for m in probe.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
                m.reset_running_stats()
    x = torch.ones(1, *input_size, dtype=torch.float64, requires_grad=True)
    with _MaxToAvgPool():
        out = _first_tensor(probe(x))
    spatial = tuple(out.shape[2:])
    if position is None:
        position = tuple(n // 2 for n in spatial)
    position = tuple(position)
    if len(position) != len(spatial) or any(not 0 <= i < n for i, n in zip(position, spatial, strict=True)):
        raise ArgumentError("position", position, f"indices inside the output's spatial shape {spatial}")
    (grad,) = torch.autograd.grad(out[(0, slice(None), *position)].sum(), x)
    support = grad[0].abs().sum(0) > 0  # (C, *spatial) -> (*spatial)
    lo, hi = [], []
    for dim in range(support.dim()):
        other = tuple(d for d in range(support.dim()) if d != dim)
        along = support.any(dim=other) if other else support
        idx = torch.nonzero(along).flatten()
        lo.append(int(idx.min()))
        hi.append(int(idx.max()))
    return EmpiricalField(position, tuple(lo), tuple(hi))
