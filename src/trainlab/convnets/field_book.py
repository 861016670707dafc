"""Receptive fields carried through a trace: which tensor holds which field, and how views,
permutations, slices, elementwise merges and mixing operations move it.

:class:`FieldBook` is the tracer's bookkeeping of fields (``fields``: id(tensor) -> (tensor,
field, spatial axes); ``extent``: the image input's spatial size), a base class of
:class:`trainlab.convnets.tracing._Tracer`; the functions beside it are the index arithmetic.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import torch
from torch.utils import _pytree as pytree

from trainlab.convnets.op_tables import (
    _META,
)
from trainlab.convnets.receptive_field import (
    _RANK,
    APPROXIMATE,
    EXACT,
    GLOBAL,
    MISALIGNED,
    VARIES,
    ReceptiveField,
    merge_fields,
    region_field,
    through_window,
)

__all__: list[str] = []  # private: used by trainlab.convnets.tracing


def _merge_two(a: ReceptiveField, b: ReceptiveField, extent: tuple[int, ...] | None = None) -> ReceptiveField:
    """``merge_fields([a, b], extent)``, spelled out for two fields on one grid (the same result): two
    moving fields of one jump, or two fixed regions (jump 0)."""
    n = a.ndim
    if b.ndim != n or a.jump != b.jump or VARIES in (a.status, b.status):
        return merge_fields([a, b], extent)
    if (a.start == b.start and a.size == b.size and a.extent == b.extent
            and all((2 * v).is_integer() for v in (*a.size, *a.start))):
        # the hull of a field with itself; on the half-pixel grid that layers make, merge_fields'
        # arithmetic gives back the same numbers exactly (elsewhere it may round: recomputed below)
        status = a.status if _RANK.get(a.status, 3) >= _RANK.get(b.status, 3) else b.status
        if GLOBAL in (a.status, b.status):
            status = GLOBAL
        return ReceptiveField(a.size, a.jump, a.start, status, a.extent if status == GLOBAL else None)
    size, start = [], []
    for i in range(n):
        ra, rb = (a.size[i] - 1) / 2, (b.size[i] - 1) / 2
        lo = min(a.start[i] - ra, b.start[i] - rb)
        hi = max(a.start[i] + ra, b.start[i] + rb)
        size.append(hi - lo + 1)
        start.append((lo + hi) / 2)
    if GLOBAL in (a.status, b.status):
        whole = a.extent if a.extent is not None else b.extent if b.extent is not None else extent
        if whole is None:
            return ReceptiveField(tuple(size), a.jump, tuple(start), VARIES)
        return ReceptiveField(tuple(size), a.jump, tuple(start), GLOBAL, tuple(int(e) for e in whole))
    if a.start != b.start or MISALIGNED in (a.status, b.status):
        status = MISALIGNED
    else:
        status = APPROXIMATE if APPROXIMATE in (a.status, b.status) else EXACT
    return ReceptiveField(tuple(size), a.jump, tuple(start), status)


_PERMUTES = frozenset(
    "permute transpose transpose_ t t_ movedim moveaxis swapaxes swapdims swapaxes_ swapdims_".split())
_VIEWS = frozenset(
    "view reshape flatten unflatten squeeze squeeze_ unsqueeze unsqueeze_ view_as reshape_as".split())


# Normalisations whose statistics may be taken over the spatial axes.
_STATISTICS = frozenset(("group_norm", "instance_norm", "layer_norm", "batch_norm"))


def _pools_space(name: str, x: torch.Tensor, axes: tuple[int, ...], args: tuple, kwargs: dict) -> bool:
    """Whether a normalisation's mean and variance are taken over the spatial ``axes`` of ``x``:
    group norm always; instance and batch norm with statistics of the input (training, or no
    running statistics); layer norm when its normalised (last) dimensions include a spatial one."""
    if name == "group_norm":
        return True
    if name == "instance_norm":  # (input, running_mean, running_var, weight, bias, use_input_stats, ...)
        return bool(args[5] if len(args) > 5 else kwargs.get("use_input_stats", True))
    if name == "batch_norm":  # (input, running_mean, running_var, weight, bias, training, ...)
        return bool(args[5] if len(args) > 5 else kwargs.get("training", False))
    shape = args[1] if len(args) > 1 else kwargs.get("normalized_shape", ())
    k = 1 if isinstance(shape, int) else len(shape)
    return any(a >= x.dim() - k for a in axes)


def _moves_axes(name: str, src: torch.Tensor, args: tuple, kwargs: dict, axes: tuple[int, ...]) -> bool:
    """Whether a roll or flip touches a spatial axis (its index map is then not affine: lost)."""
    if name in ("fliplr", "flipud", "rot90"):
        return True
    dims = (args[2] if len(args) > 2 else kwargs.get("dims")) if name == "roll" else (
        args[1:] if len(args) > 1 else kwargs.get("dims"))
    if dims is None:
        return True
    flat: list[int] = []
    for d in dims if isinstance(dims, list | tuple) else (dims,):
        flat.extend(d if isinstance(d, list | tuple) else (d,))
    return any(int(d) % src.dim() in axes for d in flat)


def _leaves(values: Any) -> list[Any]:
    """``pytree.tree_leaves(values)``; a tuple or list of tensors (split, unbind, an LSTM's output)
    is its own list of leaves, without pytree's walk."""
    if type(values) in (tuple, list) and all(type(v) is torch.Tensor for v in values):
        return list(values)
    return pytree.tree_leaves(values)


@functools.lru_cache(maxsize=64)
def _trailing(dim: int, nd: int) -> tuple[int, ...]:
    """The last ``nd`` axes of a ``dim``-dimensional tensor: where convolutions and pools read space."""
    return tuple(range(dim - nd, dim))


_ORDERS: dict[tuple, tuple[int, ...]] = {}  # (name, ndim, dims) -> the order a permutation makes


def _order(name: str, func: Any, ndim: int, dims: tuple, kwargs: dict) -> tuple[int, ...]:
    """Where a permutation (permute, transpose, movedim, ...) of a tensor of ``ndim`` dims takes
    each axis: output axis i is input axis order[i]. Found by permuting a meta probe whose sizes
    are its axis numbers (2, 3, ...: unlike 0 and 1, sizes that never broadcast), and remembered."""
    key = (name, ndim, dims) if not kwargs else None
    try:
        order = _ORDERS.get(key)
    except TypeError:  # dims given as a list: not a key
        key = order = None
    if order is None:
        probe = torch.empty(tuple(range(2, ndim + 2)), device=_META)
        order = tuple(n - 2 for n in func(probe, *dims, **kwargs).shape)
        if key is not None and len(_ORDERS) < 4096:
            _ORDERS[key] = order
    return order


@functools.lru_cache(maxsize=4096)
def map_axes(before: tuple[int, ...], after: tuple[int, ...],
             axes: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """Where the spatial ``axes`` of a tensor of shape ``before`` go in a reshape to ``after``.

    Row-major reshapes keep axis i intact when the product of the sizes before it is the same
    on both sides and its size is unchanged; an axis split into (outer, inner…) keeps its outer
    part, whose index o covers ``block`` consecutive input indices (a window k = s = block).
    Returns (new axes, block per axis), or None when an axis is merged with others.
    """
    pre_a = [1]
    for n in before:
        pre_a.append(pre_a[-1] * n)
    pre_b = [1]
    for n in after:
        pre_b.append(pre_b[-1] * n)
    new, blocks = [], []
    for a in axes:
        n, pre = before[a], pre_a[a]
        candidates = [j for j in range(len(after)) if pre_b[j] == pre]
        exact = [j for j in candidates if after[j] == n]
        if exact:
            new.append(exact[0] if n != 1 or len(exact) == 1 else exact[-1])
            blocks.append(1)
            continue
        split = [j for j in candidates if 1 < after[j] < n and n % after[j] == 0
                 and pre_b[j] * n in pre_b[j + 2:]]
        if not split:
            return None
        new.append(split[0])
        blocks.append(n // after[split[0]])
    return tuple(new), tuple(blocks)


class FieldBook:
    """The receptive-field bookkeeping of a trace (the attributes are set by the tracer)."""

    fields: dict[int, tuple[torch.Tensor, ReceptiveField, tuple[int, ...] | None]]
    extent: tuple[int, ...] | None

    def entry(self, t: Any) -> tuple[ReceptiveField, tuple[int, ...] | None] | None:
        entry = self.fields.get(id(t)) if isinstance(t, torch.Tensor) else None
        return (entry[1], entry[2]) if entry is not None and entry[0] is t else None

    def field_of(self, t: Any) -> ReceptiveField | None:
        """The field of an image-like tensor whose spatial axes are tracked (None for a region)."""
        entry = self.fields.get(id(t)) if isinstance(t, torch.Tensor) else None
        return entry[1] if entry is not None and entry[0] is t and entry[2] is not None else None

    def image_field(self, x: Any, nd: int) -> ReceptiveField | None:
        """``x``'s field when its spatial axes are its last ``nd`` (the layout convs and pools read)."""
        entry = self.fields.get(id(x))
        if entry is None or entry[0] is not x or entry[2] is None:
            return None
        return entry[1] if entry[2] == _trailing(x.dim(), nd) else None

    def set_field(self, t: Any, rf: ReceptiveField | None, axes: tuple[int, ...] | None = None) -> None:
        if rf is None or not isinstance(t, torch.Tensor):
            return
        if axes is None:  # (N, C, *spatial)
            nd = len(rf.size)
            if t.dim() != nd + 2:
                return
            axes = _trailing(nd + 2, nd)
        self.fields[id(t)] = (t, rf, axes)

    def whole(self, rf: ReceptiveField) -> ReceptiveField:
        """``rf`` once every unit also depends on statistics of the whole input (a global field)."""
        if self.extent is None or len(self.extent) != rf.ndim or rf.status == VARIES:
            return rf
        return ReceptiveField(rf.size, rf.jump, rf.start, GLOBAL, self.extent)

    def region(self, t: torch.Tensor) -> ReceptiveField | None:
        """What every element of ``t`` depends on together (a jump-0 region), or None."""
        entry = self.fields.get(id(t))
        if entry is None or entry[0] is not t:
            return None
        rf, axes = entry[1], entry[2]
        if axes is None:
            return rf
        if self.extent is None or len(self.extent) != rf.ndim:
            return None
        return region_field(rf, [t.shape[a] for a in axes], self.extent)

    def derive(self, inputs: Iterable[Any], outputs: Any) -> None:
        """Outputs of an operation that mixes the spatial axes: the union of the inputs' regions."""
        fields = self.fields
        if type(outputs) is torch.Tensor:
            entry = fields.get(id(outputs))
            if entry is not None and entry[0] is outputs:
                return  # the rule set its field
            outs = [outputs]
        else:
            outs = [o for o in _leaves(outputs)
                    if isinstance(o, torch.Tensor) and self.entry(o) is None]
            if not outs:
                return
        found = (self.region(t) for t in inputs if isinstance(t, torch.Tensor))
        regions = [r for r in found if r is not None]
        if not regions:
            return
        if len(regions) == 1:
            merged = regions[0]
        elif len(regions) == 2:
            merged = _merge_two(regions[0], regions[1], self.extent)
        else:
            merged = merge_fields(regions, self.extent)
        for o in outs:
            fields[id(o)] = (o, merged, None)

    def follow(self, x: torch.Tensor, out: torch.Tensor, nd: int, through: Any) -> None:
        """``out``'s field from ``x``'s by ``through(rf)`` (a window layer on the last ``nd`` axes);
        if ``x``'s spatial axes are elsewhere or lost, its region."""
        rf = self.image_field(x, nd)
        if rf is not None:
            self.set_field(out, through(rf))
        elif self.entry(x) is not None:
            self.derive((x,), out)

    def merged(self, tensors: list[Any],
               out: torch.Tensor) -> tuple[ReceptiveField, tuple[int, ...] | None] | None:
        """The field of ``out`` = an elementwise function of ``tensors`` (broadcast to ``out``)."""
        entries = [(t, e) for t in tensors if (e := self.entry(t)) is not None]
        if not entries:
            return None
        out_shape = out.shape
        if len(entries) == 1 and entries[0][0].shape == out_shape:
            return entries[0][1]
        if len(entries) == 2:  # a residual add: two branches of one layout
            (ta, (a, axa)), (tb, (b, axb)) = entries
            if (axa is not None and axa == axb and ta.dim() == tb.dim() == len(out_shape)
                    and all(ta.shape[i] == out_shape[i] == tb.shape[i] for i in axa)):
                return _merge_two(a, b, self.extent), axa  # (or a concatenation of channels)
            if axa is None and axb is None:  # two fixed regions (tokens): their union, still fixed
                field = _merge_two(a, b, self.extent)
                return (field, None) if not any(field.jump) else None
        out_axes: tuple[int, ...] | None = None
        mapped = []
        for t, (rf, axes) in entries:
            if axes is None:
                mapped.append(rf)
                continue
            shift = out.dim() - t.dim()
            moved = tuple(a + shift for a in axes)
            spread = [t.shape[a] == 1 and out_shape[a + shift] != 1 for a in axes]
            if any(spread):  # broadcast along a spatial axis: every output index reads unit 0
                jump = tuple(0.0 if b else j for b, j in zip(spread, rf.jump, strict=True))
                rf = ReceptiveField(rf.size, jump, rf.start, rf.status, rf.extent)
            if not all(spread):
                if out_axes is None:
                    out_axes = moved
                elif out_axes != moved:
                    return None if self.extent is None else self._lost(tensors)
            mapped.append(rf)
        field = merge_fields(mapped, self.extent)
        if out_axes is None and any(j != 0 for j in field.jump):
            return None
        return field, out_axes

    def _lost(self, tensors: list[Any]) -> tuple[ReceptiveField, None] | None:
        found = (self.region(t) for t in tensors if isinstance(t, torch.Tensor))
        regions = [r for r in found if r is not None]
        return (merge_fields(regions, self.extent), None) if regions else None

    def reshaped(self, name: str, func: Any, src: torch.Tensor, args: tuple, kwargs: dict, out: Any) -> None:
        """Carry ``src``'s field to the outputs of a view, permutation, slice or copy."""
        entry = self.entry(src)
        if entry is None:
            return
        rf, axes = entry
        outs = (out,) if type(out) is torch.Tensor else [o for o in _leaves(out)
                                                         if isinstance(o, torch.Tensor)]
        if axes is None:  # a fixed region (tokens): every output depends on all of it, as derive says
            fields = self.fields
            for o in outs:
                known = fields.get(id(o))
                if known is None or known[0] is not o:
                    fields[id(o)] = (o, rf, None)
            return
        if type(out) is torch.Tensor:
            moved: tuple[int, ...] | None = None
            if name in _PERMUTES:
                order = _order(name, func, src.dim(), args[1:], kwargs)
                moved = tuple(order.index(a) for a in axes)
            elif name in _VIEWS:
                found = map_axes(tuple(src.shape), tuple(out.shape), axes)
                if found is not None:
                    moved, blocks = found
                    if any(b > 1 for b in blocks):
                        rf = through_window(rf, blocks, blocks)
            elif name == "__getitem__" and len(args) == 2:
                sliced = _sliced(src, args[1], axes, rf)
                if sliced is not None:
                    moved, rf = sliced
            elif name in ("roll", "flip", "fliplr", "flipud", "rot90"):  # cyclic or reversed index maps
                moved = None if _moves_axes(name, src, args, kwargs, axes) else axes
            elif out.dim() == src.dim() and all(out.shape[a] == src.shape[a] for a in axes):
                moved = axes
            if moved is not None:
                self.fields[id(out)] = (out, rf, moved)
                return
        if type(out) is not torch.Tensor and name in ("chunk", "split", "unbind", "split_with_sizes",
                                                      "tensor_split"):
            kept = [o for o in outs if o.dim() == src.dim() and all(o.shape[a] == src.shape[a] for a in axes)]
            for o in kept:
                self.fields[id(o)] = (o, rf, axes)
        self.derive((src,), out)


def _sliced(src: torch.Tensor, index: Any, axes: tuple[int, ...],
            rf: ReceptiveField) -> tuple[tuple[int, ...], ReceptiveField] | None:
    """Axes and field after ``src[index]`` for basic indexing (slices, ints, None, ...).

    A slice start:stop:step of a spatial axis maps output o to input start + o·step: a window of
    size 1, stride ``step`` and padding −start. An integer on a spatial axis drops it (None).
    """
    items = index if isinstance(index, tuple) else (index,)
    if not all(i is None or i is Ellipsis or type(i) in (int, slice) for i in items):
        return None
    used = sum(1 for i in items if i is not None and i is not Ellipsis)
    expanded: list[Any] = []
    for i in items:
        if i is Ellipsis:
            expanded.extend([slice(None)] * (src.dim() - used))
        else:
            expanded.append(i)
    expanded.extend([slice(None)] * (src.dim() - sum(1 for i in expanded if i is not None)))
    where: dict[int, tuple[int, slice]] = {}  # input dim -> (output dim, slice)
    d_in = d_out = 0
    for i in expanded:
        if i is None:
            d_out += 1
        elif type(i) is int:
            if d_in in axes:
                return None
            d_in += 1
        else:
            where[d_in] = (d_out, i)
            d_in += 1
            d_out += 1
    moved, steps, starts = [], [], []
    for a in axes:
        d, sl = where[a]
        start, _, step = sl.indices(src.shape[a])
        if step < 1:
            return None
        moved.append(d)
        steps.append(step)
        starts.append(-start)
    if any(s != 1 for s in steps) or any(starts):
        rf = through_window(rf, 1, steps, starts)
    return tuple(moved), rf
