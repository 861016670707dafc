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
of the branch fields. With the same jump the union of two intervals whose centres are a
constant distance apart has a constant extent, so the merged field is their hull (lowest
start to highest end): exact extents, marked ``misaligned`` when the branch centres differ
(a ResNet-D average-pool shortcut beside a strided 3×3 conv). A tensor broadcast along a
spatial axis (an SE gate of shape N×C×1×1) maps every output index to its one unit: jump 0.
When such a fixed region covers the whole input, every unit of the product sees the whole
input: the field is marked ``global`` and keeps its local part (size, jump, start) beside
the input's extent; so does a normalisation whose statistics are taken over the image (group
norm, instance norm without running statistics, batch norm in training). A union no single
pattern describes (different non-zero jumps, a fixed
region that is not the whole input) is marked ``varies``. Upsampling and transposed
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
    "region_field",
    "through_upsampling",
    "through_window",
]

EXACT, MISALIGNED, APPROXIMATE = "exact", "misaligned", "approximate"
GLOBAL, VARIES = "global", "varies"
_RANK = {EXACT: 0, APPROXIMATE: 1, MISALIGNED: 2}


@dataclass(frozen=True, init=False)
class ReceptiveField:
    """Receptive field of a layer's units, one entry per spatial dimension (H, W, ...).

    ``status`` is ``exact``, ``misaligned`` (exact extents: the hull of branches with different
    centres), ``approximate`` (after upsampling), ``global`` (every unit sees the whole input,
    of size ``extent``; size, jump and start are then the local field beside it) or ``varies``
    (no single pattern). A jump of 0 means every unit sees the same region.
    """

    size: tuple[float, ...]
    jump: tuple[float, ...]
    start: tuple[float, ...]
    status: str = EXACT
    extent: tuple[int, ...] | None = None  # the input's spatial size, for a global field

    def __init__(self, size: tuple[float, ...], jump: tuple[float, ...], start: tuple[float, ...],
                 status: str = EXACT, extent: tuple[int, ...] | None = None) -> None:
        # The frozen dataclass's own __init__, writing the instance's dict directly instead of five
        # object.__setattr__ calls (a third of the cost; the tracer makes one field per layer).
        d = self.__dict__
        d["size"], d["jump"], d["start"], d["status"], d["extent"] = size, jump, start, status, extent

    @property
    def ndim(self) -> int:
        return len(self.size)

    def interval(self, index: Sequence[int]) -> list[tuple[float, float]]:
        """Input interval [lo, hi] (pixel indices, before clipping to the image) of unit ``index``."""
        if self.status == GLOBAL and self.extent is not None:
            return [(0.0, float(e - 1)) for e in self.extent]
        out = []
        for r, j, s, i in zip(self.size, self.jump, self.start, index, strict=True):
            centre = s + i * j
            out.append((centre - (r - 1) / 2, centre + (r - 1) / 2))
        return out

    @property
    def whole_size(self) -> tuple[float, ...]:
        """What the gradient support's extent is: the input's extent for a global field, else size."""
        if self.status == GLOBAL and self.extent is not None:
            return tuple(float(e) for e in self.extent)
        return self.size

    def describe(self) -> tuple[str, str, str]:
        """(size, jump, start) as short strings: one number when all dimensions agree."""
        if self.status == VARIES:
            return "varies", "—", "—"

        def fmt(values: tuple[float, ...]) -> str:
            texts = [f"{v:g}" for v in values]
            return texts[0] if len(set(texts)) == 1 else "×".join(texts)

        if self.status == GLOBAL:
            return f"{fmt(self.whole_size)} (all; local {fmt(self.size)})", fmt(self.jump), fmt(self.start)
        mark = "~" if self.status == APPROXIMATE else ""
        tail = " (hull)" if self.status == MISALIGNED else ""
        return mark + fmt(self.size) + tail, mark + fmt(self.jump), mark + fmt(self.start)

    def as_numbers(self) -> dict[str, Any]:
        """Plain numbers for JSON: per-dimension lists (ints where whole), the status, and the local
        size of a global field."""

        def num(values: tuple[float, ...]) -> list[float | int]:
            return [int(v) if float(v).is_integer() else float(v) for v in values]

        out: dict[str, Any] = {"rf_size": num(self.whole_size), "rf_jump": num(self.jump),
                               "rf_start": num(self.start), "rf_status": self.status}
        if self.status == GLOBAL:
            out["rf_local_size"] = num(self.size)
        if self.status == VARIES:
            out.update(rf_size=None, rf_jump=None, rf_start=None)
        return out


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
    return ReceptiveField(tuple(size), tuple(jump), tuple(start), rf.status, rf.extent)


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
    status = rf.status if rf.status in (MISALIGNED, GLOBAL, VARIES) else APPROXIMATE
    return ReceptiveField(size, jump, start, status, rf.extent)


def merge_fields(fields: Sequence[ReceptiveField], extent: Sequence[int] | None = None) -> ReceptiveField:
    """The field of a unit that combines branches (add, concat, a gate): their union.

    The fields are on the output's index grid (a broadcast branch has jump 0). Per dimension:
    the same jump everywhere gives the hull of the intervals (exact extents; ``misaligned``
    when the centres differ); moving fields of one jump beside fixed regions (jump 0) that
    cover the whole input (``extent``) make the field ``global``; anything else ``varies``.
    """
    if not fields:
        raise ValueError("merge_fields needs at least one field")
    first = fields[0]
    n = first.ndim
    if any(f.ndim != n for f in fields):
        return ReceptiveField(first.size, first.jump, first.start, VARIES)
    if any(f.status == VARIES for f in fields):
        return ReceptiveField(first.size, first.jump, first.start, VARIES)
    known = next((f.extent for f in fields if f.extent is not None), None)
    known = extent if known is None else known  # a global field's own extent first
    size, jump, start = [], [], []
    status = max((f.status for f in fields if f.status in _RANK), key=_RANK.__getitem__, default=EXACT)
    whole = any(f.status == GLOBAL for f in fields)
    for i in range(n):
        moving = [f for f in fields if f.jump[i] != 0]
        fixed = [f for f in fields if f.jump[i] == 0]
        group = moving or fixed
        if len({f.jump[i] for f in group}) > 1:
            return ReceptiveField(first.size, first.jump, first.start, VARIES)
        lo = min(f.start[i] - (f.size[i] - 1) / 2 for f in group)
        hi = max(f.start[i] + (f.size[i] - 1) / 2 for f in group)
        if len({f.start[i] for f in group}) > 1:  # centres differ: the hull, flagged
            status = MISALIGNED
        if moving and fixed:  # a broadcast region beside moving fields: the whole input, or no pattern
            f_lo = min(f.start[i] - (f.size[i] - 1) / 2 for f in fixed)
            f_hi = max(f.start[i] + (f.size[i] - 1) / 2 for f in fixed)
            if known is None or not (f_lo <= 0 and f_hi >= known[i] - 1):
                return ReceptiveField(first.size, first.jump, first.start, VARIES)
            whole = True
        size.append(hi - lo + 1)
        jump.append(group[0].jump[i])
        start.append((lo + hi) / 2)
    if whole:
        if known is None:
            return ReceptiveField(tuple(size), tuple(jump), tuple(start), VARIES)
        return ReceptiveField(tuple(size), tuple(jump), tuple(start), GLOBAL, tuple(int(e) for e in known))
    return ReceptiveField(tuple(size), tuple(jump), tuple(start), status)


def region_field(rf: ReceptiveField, spatial: Sequence[int], extent: Sequence[int]) -> ReceptiveField:
    """The fixed region (jump 0) that all ``spatial`` units of a tensor with field ``rf`` see together,
    clipped to the input: what every element depends on once the spatial axes are mixed or lost."""
    if rf.status == GLOBAL or rf.status == VARIES:
        lo = [0.0] * rf.ndim
        hi = [float(e - 1) for e in extent]
    else:
        lo, hi = [], []
        for r, j, s, n, e in zip(rf.size, rf.jump, rf.start, spatial, extent, strict=True):
            half, spread = (r - 1) / 2, (n - 1) * j  # the field's half width; unit 0 to unit n − 1
            lo.append(max(0.0, s - half + min(0, spread)))
            hi.append(min(e - 1.0, s + half + max(0, spread)))
    return ReceptiveField(tuple(b - a + 1 for a, b in zip(lo, hi, strict=True)), (0.0,) * rf.ndim,
                          tuple((a + b) / 2 for a, b in zip(lo, hi, strict=True)), EXACT)


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
        if func is F.layer_norm and _over_features_only(*args, **kwargs):
            return _channel_affine(*args, **kwargs)
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


def _over_features_only(input: torch.Tensor, normalized_shape: Any, *args: Any, **kwargs: Any) -> bool:
    """Whether a layer norm normalises one (feature) dimension only: channels last, or tokens. Over
    more (``LayerNorm([C, H, W])``) its statistics span the image, and the real layer norm is kept:
    there Σ_c (x_c − mean) depends on every pixel through the mean and the gradient does not vanish."""
    return isinstance(normalized_shape, int) or len(tuple(normalized_shape)) <= 1


def _channel_affine(input: torch.Tensor, normalized_shape: Any, weight: torch.Tensor | None = None,
                    bias: torch.Tensor | None = None, eps: float = 1e-5) -> torch.Tensor:
    """Layer norm over the last (feature) dimensions without the normalisation: on the probe's
    constant input every feature is equal, x − mean is 0 and the gradient would vanish. The
    statistics mix only the normalised (non-spatial) dimensions, so the support is unchanged."""
    out = input
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


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
    model: nn.Module, input_size: Sequence[int], position: Sequence[int] | None = None,
    layer: str | None = None,
) -> EmpiricalField:
    """Measure the receptive field of one output unit as the support of its input gradient.

    A copy of ``model`` (the model itself is untouched) gets every parameter set to a positive
    constant (weights 1/fan-in, biases 0.01), batch-norm statistics reset (mean 0, variance 1)
    and is run in eval mode in float64 on an all-ones input of shape ``(1, *input_size)``; max
    pooling is replaced by average pooling over the same windows, and layer norm over the feature
    dimension alone by its affine part, whose dependencies are the same (a layer norm over the
    image's axes too is kept: its statistics make every pixel count). All activations are then
    positive, ReLUs pass gradient, and no two paths cancel, so the gradient of
    Σ_c out[0, c, *position] is non-zero exactly on the pixels the unit depends on.
    ``position`` defaults to the centre unit. ``layer`` names a submodule (``"features.7"``)
    whose output (at its last call) is measured instead of the model's.
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
    captured: list[Any] = []
    handle = None
    if layer:
        try:
            target = probe.get_submodule(layer)
        except AttributeError:
            raise ArgumentError("layer", layer, "the name of a submodule of the model") from None
        handle = target.register_forward_hook(lambda m, args, output: captured.append(output))
    try:
        with _MaxToAvgPool():
            out = _first_tensor(probe(x.clone()))  # a clone: a forward may change its input in place
    finally:
        if handle is not None:
            handle.remove()
    if layer:
        out = _first_tensor(captured[-1])
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
