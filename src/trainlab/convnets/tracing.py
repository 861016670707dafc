"""The tracing mode: a ``TorchFunctionMode`` that intercepts every torch function a model calls.

Module calls are framed by global forward hooks (a leaf module is one row); each function is
dispatched by name to a cost rule (:mod:`trainlab.convnets.rules`), answered by broadcasting
(elementwise, shape-preserving), or run on meta tensors (views and everything else). The
receptive field of every image-like tensor is carried alongside it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils import _pytree as pytree

from trainlab.convnets.direct_shapes import DIRECT
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
from trainlab.convnets.rules import (
    _COMPARISONS,
    _ELEM,
    _ELEM_INFO,
    _ELEMENTWISE,
    _FACTORIES,
    _FREE,
    _KIND,
    _META,
    _MOVE,
    _READ,
    _SAME,
    _SAME_SHAPE,
    _as_meta,
    _broadcast,
    _first_line,
    _flat,
    _plain,
    _shape,
    _tensors,
)
from trainlab.convnets.table import LayerRow
from trainlab.errors import ArgumentError, ShapeError

__all__: list[str] = []  # private: used by trainlab.convnets.tracer

class _Frame:
    """One module call on the stack (a plain slotted class: one is made per module call)."""

    __slots__ = ("module", "name", "leaf", "own", "neurons", "macs", "connections")

    def __init__(self, module: nn.Module, name: str, leaf: bool, own: tuple[torch.Tensor, ...]) -> None:
        self.module = module
        self.name = name
        self.leaf = leaf
        self.own = own  # its parameters, booked with its row
        self.neurons = 0
        self.macs = 0
        self.connections = 0


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


def _named_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``list(model.named_modules())``: the same modules, names and order (depth first, a shared module
    at its first place), walked with one explicit stack instead of a generator per level, which
    costs every module a frame per level above it. A model that overrides ``named_modules`` gets
    its own."""
    found: list[tuple[str, nn.Module]] = []
    seen: set[int] = set()
    stack = [("", model)]
    while stack:
        name, m = stack.pop()
        if id(m) in seen:
            continue
        if type(m).named_modules is not _NAMED_MODULES:
            return list(model.named_modules())
        seen.add(id(m))
        found.append((name, m))
        children = m._modules
        if children:
            prefix = name + "." if name else ""
            stack.extend((prefix + key, child) for key, child in reversed(children.items())
                         if child is not None)
    return found


# -- leaf modules handed to the tracer directly ---------------------------------------------------
# The torch call that the forward of each of these exact classes makes, as (function, args, kwargs):
# during a trace the module's forward is this one call given straight to the tracer, skipping the
# module's Python, the functional's Python wrapper and the dispatch through the mode (2-4 µs a
# module; modules whose forward is one call of a C function gain nothing and are left alone).
# None: run the real forward (a configuration these do not cover). tests/convnets/test_fast_paths.py
# checks each against the call that the module's own forward makes.
F = torch.nn.functional


def _batch_norm_call(m: Any, x: torch.Tensor) -> tuple | None:
    if m.training:  # training updates the batch counter: the real forward says how
        return None
    m._check_input_dim(x)
    batch_statistics = m.running_mean is None and m.running_var is None
    kwargs = {"weight": m.weight, "bias": m.bias, "training": batch_statistics,
              "momentum": 0.0 if m.momentum is None else m.momentum, "eps": m.eps}
    return F.batch_norm, (x, m.running_mean, m.running_var), kwargs


def _pool_call(func: Any) -> Any:
    """Max pooling without indices (their forward calls another function)."""
    def call(m: Any, x: torch.Tensor) -> tuple | None:
        if m.return_indices:
            return None
        return func, (x, m.kernel_size), {"stride": m.stride, "padding": m.padding, "dilation": m.dilation,
                                          "ceil_mode": m.ceil_mode, "return_indices": False}
    return call


def _adaptive_max_call(func: Any) -> Any:
    def call(m: Any, x: torch.Tensor) -> tuple | None:
        return None if m.return_indices else (func, (x, m.output_size), {"return_indices": False})
    return call


def _upsample_call(m: Any, x: torch.Tensor) -> tuple:
    return F.interpolate, (x,), {"size": m.size, "scale_factor": m.scale_factor, "mode": m.mode,
                                 "align_corners": m.align_corners,
                                 "recompute_scale_factor": m.recompute_scale_factor, "antialias": False}


_FAST_CALLS: dict[type, Any] = {
    nn.MaxPool1d: _pool_call(F.max_pool1d),
    nn.MaxPool2d: _pool_call(F.max_pool2d),
    nn.MaxPool3d: _pool_call(F.max_pool3d),
    nn.AdaptiveAvgPool2d: lambda m, x: (F.adaptive_avg_pool2d, (x, m.output_size), None),
    nn.AdaptiveAvgPool3d: lambda m, x: (F.adaptive_avg_pool3d, (x, m.output_size), None),
    nn.AdaptiveMaxPool1d: _adaptive_max_call(F.adaptive_max_pool1d),
    nn.AdaptiveMaxPool2d: _adaptive_max_call(F.adaptive_max_pool2d),
    nn.AdaptiveMaxPool3d: _adaptive_max_call(F.adaptive_max_pool3d),
    nn.Softmax: lambda m, x: (F.softmax, (x,), {"dim": m.dim, "_stacklevel": 5, "dtype": None}),
    nn.LogSoftmax: lambda m, x: (F.log_softmax, (x,), {"dim": m.dim, "_stacklevel": 5, "dtype": None}),
    **dict.fromkeys((nn.Upsample, nn.UpsamplingNearest2d, nn.UpsamplingBilinear2d), _upsample_call),
    **dict.fromkeys((nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d), _batch_norm_call),
    nn.LayerNorm: lambda m, x: (F.layer_norm, (x, m.normalized_shape),
                                {"weight": m.weight, "bias": m.bias, "eps": m.eps}),
    nn.GroupNorm: lambda m, x: (F.group_norm, (x, m.num_groups),
                                {"weight": m.weight, "bias": m.bias, "eps": m.eps}),
    nn.ReLU: lambda m, x: (F.relu, (x,), {"inplace": m.inplace}),
    nn.SiLU: lambda m, x: (F.silu, (x,), {"inplace": m.inplace}),
    nn.Hardswish: lambda m, x: (F.hardswish, (x,), {"inplace": m.inplace}),
    nn.Hardsigmoid: lambda m, x: (F.hardsigmoid, (x,), {"inplace": m.inplace}),
    nn.ReLU6: lambda m, x: (F.hardtanh, (x,),
                            {"min_val": m.min_val, "max_val": m.max_val, "inplace": m.inplace}),
    nn.LeakyReLU: lambda m, x: (F.leaky_relu, (x,),
                                {"negative_slope": m.negative_slope, "inplace": m.inplace}),
    nn.Dropout: lambda m, x: (F.dropout, (x,), {"p": m.p, "training": m.training, "inplace": m.inplace}),
}
_NO_TORCH_FUNCTION = torch._C.DisableTorchFunction


class _FastForward:
    """A leaf module's forward during a trace (set on the instance, removed afterwards): the call from
    :data:`_FAST_CALLS` handed to the tracer. Anything else (more arguments, a tensor subclass, a
    configuration not covered) runs the class's own forward."""

    __slots__ = ("tracer", "module", "call")

    def __init__(self, tracer: _Tracer, module: nn.Module, call: Any) -> None:
        self.tracer, self.module, self.call = tracer, module, call

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        module = self.module
        if len(args) == 1 and not kwargs and type(args[0]) is torch.Tensor:
            with _NO_TORCH_FUNCTION():
                found = self.call(module, args[0])
                if found is not None:
                    return self.tracer.__torch_function__(found[0], (), found[1], found[2])
        return type(module).forward(module, *args, **kwargs)


_NAMED_MODULES, _TRAIN = nn.Module.named_modules, nn.Module.train
_SCRIPT_MODULE = torch.jit.ScriptModule
_BATCH_NORM, _PARAMETER = nn.modules.batchnorm._BatchNorm, nn.Parameter
_UNINITIALIZED = nn.parameter.UninitializedParameter


class _Tracer(TorchFunctionMode):
    """Intercepts every torch function the model calls and books its cost."""

    def __init__(self, model: nn.Module, ignore: frozenset[str]) -> None:
        super().__init__()
        self.ignore = ignore
        self.names: dict[int, str] = {}
        self.modules: dict[int, nn.Module] = {}
        # id(param) -> (numel, requires_grad, its name inside its module, the module owning it);
        # read here, before tracing, where attribute reads are not intercepted.
        self.param_info: dict[int, tuple[int, bool, str, nn.Module]] = {}
        self.params: list[torch.Tensor] = []  # in the order of param_info
        self.param_counts: dict[int, tuple[int, int]] = {}
        # id(module) -> (module, name, is a leaf, its own parameters): what the hooks need, read once.
        self.frames: dict[int, tuple[nn.Module, str, bool, tuple[torch.Tensor, ...]]] = {}
        self.lazy: list[bool] = []  # per entry of params: an uninitialised (lazy) parameter
        names, modules, frames = self.names, self.modules, self.frames
        param_info, params, counts, lazies = self.param_info, self.params, self.param_counts, self.lazy
        ignore_bias, ignore_bn = "bias" in ignore, "batchnorm" in ignore
        # (module, its training flag) before the trace, and whether every module trains the default way
        self.modes: list[tuple[nn.Module, bool]] = []
        modes, default_train = self.modes, True
        # (module, the forward it gets during the trace): leaf modules answered directly
        self.fast: list[tuple[nn.Module, _FastForward]] = []
        fast = self.fast
        for mod_name, m in _named_modules(model):
            mid = id(m)
            names[mid], modules[mid] = mod_name, m
            kind = type(m)
            if issubclass(kind, _SCRIPT_MODULE):  # its compiled code calls no torch function the mode sees
                raise ArgumentError(
                    "model", f"a TorchScript module ({mod_name or 'the model'}: {kind.__name__})",
                    "a Python nn.Module: TorchScript runs compiled code that cannot be traced (every count "
                    "would be 0); summarize the module before torch.jit.script or torch.jit.trace")
            modes.append((m, m.training))
            default_train = default_train and kind.train is _TRAIN
            # A module without children is one layer (its ops add up in one row), except a model of
            # its own class written with functional ops only: it gets a row per op.
            leaf = not m._modules and (mod_name != "" or kind.__module__.startswith("torch.nn"))
            call = _FAST_CALLS.get(kind) if leaf else None
            if call is not None and "forward" not in m.__dict__:
                fast.append((m, _FastForward(self, m, call)))
            own = m._parameters
            if not own:
                frames[mid] = (m, mod_name, leaf, ())
                continue
            drop_all = ignore_bn and isinstance(m, _BATCH_NORM)
            present = []
            for pname, p in own.items():
                if p is None:
                    continue
                present.append(p)
                pid = id(p)
                if pid in param_info:  # shared: booked where it is met first
                    continue
                lazy = type(p) is not _PARAMETER and isinstance(p, _UNINITIALIZED)
                numel = 0 if lazy else p.numel()
                requires_grad = p.requires_grad
                param_info[pid] = (numel, requires_grad, pname, m)
                params.append(p)
                lazies.append(lazy)
                # (total, trainable) it adds once booked, with ``ignore`` applied: biases, and every
                # parameter of a batch-norm layer
                kept = 0 if drop_all or (ignore_bias and pname.endswith("bias")) else numel
                counts[pid] = (kept, kept if requires_grad else 0)
            frames[mid] = (m, mod_name, leaf, tuple(present))
        self.default_train = default_train
        self.counted: set[int] = set()
        self.stack: list[_Frame] = []
        self.rows: list[LayerRow] = []
        # id(tensor) -> (tensor, its field, the tensor's spatial axes); axes None: a fixed region that
        # every element depends on (jump 0), once the spatial axes were mixed or lost
        self.fields: dict[int, tuple[torch.Tensor, ReceptiveField, tuple[int, ...] | None]] = {}
        self.extent: tuple[int, ...] | None = None  # the image input's spatial size
        # container module name -> (output shape, field, rows before it finished) of its last call
        self.block_fields: dict[str, tuple[tuple[int, ...], ReceptiveField, int]] = {}
        self.not_counted: dict[str, None] = {}
        self.row_names: dict[str, int] = {}
        self.calls: dict[int, int] = {}
        # (tensor, its shape) of the last output made by a hot path, so that post_hook need not read
        # the shape through the mode; reset by the fallback (the only route to in-place reshaping).
        self.last: tuple[torch.Tensor, tuple[int, ...]] | None = None

    # -- receptive-field bookkeeping --------------------------------------------------------
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

    # -- parameters ----------------------------------------------------------------------------
    def take_params(self, params: Iterable[torch.Tensor]) -> tuple[int, int]:
        """(total, trainable) of ``params`` not booked yet; books them."""
        total = trainable = 0
        counts, counted = self.param_counts, self.counted
        for p in params:
            pid = id(p)
            entry = counts.get(pid)
            if entry is None or pid in counted:
                continue
            counted.add(pid)
            total += entry[0]
            trainable += entry[1]
        return total, trainable

    # -- module frames (global forward hooks) --------------------------------------------------
    def pre_hook(self, module: nn.Module, args: Any) -> None:
        entry = self.frames.get(id(module))
        if entry is not None and entry[0] is module:
            self.stack.append(_Frame(module, entry[1], entry[2], entry[3]))

    def post_hook(self, module: nn.Module, args: Any, output: Any) -> None:
        stack = self.stack
        if not stack:
            return
        frame = stack[-1]
        if frame.module is not module:
            return
        stack.pop()
        if not frame.leaf:
            # a block's output field, by completion order: what `rf --check` measures through a hook
            out = output if type(output) is torch.Tensor else None
            entry = self.fields.get(id(out)) if out is not None else None
            if entry is not None and entry[0] is out and entry[2] is not None:
                last = self.last
                if last is not None and last[0] is out:
                    shape = last[1]
                else:
                    with torch._C.DisableTorchFunction():
                        shape = tuple(out.shape)
                self.block_fields.pop(frame.name, None)
                self.block_fields[frame.name] = (shape, entry[1], len(self.rows))
            return
        mid = id(module)
        calls = self.calls
        n = calls[mid] = calls.get(mid, 0) + 1
        own = frame.own
        total = trainable = 0
        if own:  # take_params, inlined: the parameters not booked yet
            counts, counted = self.param_counts, self.counted
            for p in own:
                pid = id(p)
                entry = counts.get(pid)
                if entry is None or pid in counted:
                    continue
                counted.add(pid)
                total += entry[0]
                trainable += entry[1]
        if type(output) is torch.Tensor or isinstance(output, torch.Tensor):
            out = output
        else:
            out = next((o for o in _leaves(output) if isinstance(o, torch.Tensor)), None)
        if out is not None:
            last = self.last
            if last is not None and last[0] is out:
                shape = last[1]
            else:
                with torch._C.DisableTorchFunction():  # hooks run inside the mode: read the shape directly
                    shape = tuple(out.shape)
            entry = self.fields.get(id(out))
            rf = entry[1] if entry is not None and entry[0] is out and entry[2] is not None else None
        else:
            shape = rf = None
        label = frame.name or "(model)"
        self.rows.append(
            LayerRow(
                label if n == 1 else f"{label} ({n})",
                type(module).__name__,
                shape,
                frame.neurons,
                total,
                trainable,
                frame.macs,
                frame.connections,
                rf,
                f"call {n}, parameters booked at call 1" if n > 1 and own else "",
            )
        )

    # -- booking an operation ------------------------------------------------------------------
    def where(self, op: str) -> str:
        if self.stack:
            top = self.stack[-1]
            kind = type(top.module).__name__
            return f"'{top.name or 'model'}' ({kind})" if top.leaf else f"'{top.name or 'model'}' ({op})"
        return f"({op})"

    def book(
        self,
        op: str,
        out: torch.Tensor,
        *,
        neurons: int = 0,
        macs: int = 0,
        connections: int = 0,
        params: Iterable[Any] = (),
        row: bool = True,
    ) -> None:
        top = self.stack[-1] if self.stack else None
        if top is not None and top.leaf:
            top.neurons += neurons
            top.macs += macs
            top.connections += connections
            return
        if not row:
            return
        prefix = top.name if top is not None and top.name else ""
        base = f"{prefix}.{op}" if prefix else op
        k = self.row_names[base] = self.row_names.get(base, 0) + 1
        total, trainable = (
            self.take_params(p for p in params if isinstance(p, torch.Tensor)) if params else (0, 0)
        )
        self.rows.append(
            LayerRow(
                base if k == 1 else f"{base}_{k}",
                op,
                tuple(out.shape),
                neurons,
                total,
                trainable,
                macs,
                connections,
                self.field_of(out),
            )
        )

    # -- the interception ----------------------------------------------------------------------
    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        name = getattr(func, "__name__", "")
        kind = _KIND.get(name)
        if kind is _READ:  # attribute and size queries: safe on the model's own tensors
            return func(*args, **kwargs) if kwargs else func(*args)
        kwargs = kwargs or {}
        if kind is _ELEM:
            return self.elementwise(func, name, args, kwargs)
        if kind is _MOVE:
            return self.rearrange(func, name, args, kwargs)
        if kind is _SAME:  # booked with no row and nothing to count: only the field follows
            x = args[0] if args else kwargs["input"]
            shape = tuple(x.shape)
            out = torch.empty(size=shape, dtype=x.dtype, device=_META)
            self.last = (out, shape)
            entry = self.fields.get(id(x))
            if entry is not None and entry[0] is x:
                rf = entry[1]
                if name in _STATISTICS and entry[2] is not None and _pools_space(
                        name, x, entry[2], args, kwargs):
                    rf = self.whole(rf)
                self.fields[id(out)] = (out, rf, entry[2])
            return out
        if kind is not None:
            out = kind(self, name, args, kwargs)
            fields = self.fields
            if fields:  # a rule that did not carry the field: the outputs depend on the inputs' regions
                entry = fields.get(id(out)) if type(out) is torch.Tensor else None
                if entry is None or entry[0] is not out:
                    self.derive([*args, *kwargs.values()], out)
            return out
        if name in _FACTORIES:
            kwargs = {**kwargs, "device": _META}
        return self.fallback(func, name, args, kwargs)

    def elementwise(self, func: Any, name: str, args: tuple, kwargs: dict) -> Any:
        if (
            len(args) == 1
            and len(kwargs) == 1
            and type(kwargs.get("inplace")) is bool
            and isinstance(args[0], torch.Tensor)
        ):
            tensors = [args[0]]  # an activation: F.relu(x, inplace=...)
        elif (
            not kwargs
            and len(args) == 2
            and type(args[1]) in (int, float, bool)
            and _ELEM_INFO[name][0]
            and isinstance(args[0], torch.Tensor)
            and not args[0].is_meta
        ):  # e.g. batch norm's num_batches_tracked.add_(1): leave it alone (as below)
            return args[0]
        elif kwargs:
            tensors = _tensors(args, kwargs)
        else:  # the usual call: positional arguments only
            tensors = [a for a in args if isinstance(a, torch.Tensor)]
            if len(tensors) != len(args) and any(isinstance(a, list | tuple) for a in args):
                tensors = _tensors(args, kwargs)  # tensors inside a list (torch.where's, ...)
        if not tensors:
            return self.fallback(func, name, args, kwargs)
        first = args[0] if args and isinstance(args[0], torch.Tensor) else tensors[0]
        shape = tensors[0].shape
        if len(tensors) > 1 and any(t.shape != shape for t in tensors):
            try:
                shape = _broadcast([tuple(t.shape) for t in tensors])
            except RuntimeError as e:
                raise ShapeError(
                    f"layer {self.where(name)}: {name} of {' and '.join(_shape(t) for t in tensors)}: {e}"
                ) from None
        else:
            shape = tuple(shape)
        inplace_name, op, comparison, merge_op = _ELEM_INFO[name]
        inplace = inplace_name or bool(kwargs.get("inplace"))
        if inplace and not first.is_meta:  # e.g. batch norm's num_batches_tracked.add_(1): leave it alone
            return first
        if len(tensors) == 1:
            entry = self.fields.get(id(first))
            found = (entry[1], entry[2]) if entry is not None and entry[0] is first else None
        else:
            found = None
        if inplace and first.shape == shape:
            out = first
        else:
            dtype = torch.bool if comparison else first.dtype
            if name == "where" and len(args) > 1 and isinstance(args[1], torch.Tensor):
                dtype = args[1].dtype  # where(condition, x, y) has the values' dtype
            out = torch.empty(size=shape, dtype=dtype, device=_META)
        if len(tensors) > 1 and self.fields:
            found = self.merged(tensors, out)
        if found is not None:
            self.fields[id(out)] = (out, found[0], found[1])
        # Two activations meeting (a residual add, a gating product) get a row in a container; any
        # other elementwise op is booked with nothing to count and no row, which changes nothing.
        if merge_op and len(tensors) > 1 and sum(t.dim() >= 2 for t in tensors) >= 2:
            self.book(op, out)
        self.last = (out, shape)
        return out

    def rearrange(self, func: Any, name: str, args: tuple, kwargs: dict) -> Any:
        """A view, permutation, slice or split of a meta tensor by plain sizes: what ``fallback`` does
        for it (run on the meta tensor, carry the field), without its conversions and searches."""
        x = args[0] if args else None
        if not isinstance(x, torch.Tensor) or not _plain(args[1:]) or not _plain(kwargs.values()):
            return self.fallback(func, name, args, kwargs)
        if not x.is_meta:  # a parameter or buffer of the model: a meta copy, so that nothing touches it
            args = (x.to(_META), *args[1:])
        direct = DIRECT.get(name)
        out = direct(args, kwargs) if direct is not None else None
        if out is None:
            try:
                out = func(*args, **kwargs)
            except Exception:  # noqa: BLE001 - the general route raises the error the user sees
                return self.fallback(func, name, (x, *args[1:]), kwargs)
        self.last = None
        if self.fields:
            self.reshaped(name, func, x, args, kwargs, out)
        return out

    def fallback(self, func: Any, name: str, args: tuple, kwargs: dict, *, counted: bool = False) -> Any:
        """Run ``func`` on meta tensors (or answer it from shapes), carry the fields, and list it as
        not counted unless it is free or ``counted`` (a rule that books it itself)."""
        self.last = None
        flat = _flat(args) and _flat(kwargs.values())
        direct = DIRECT.get(name)
        out = direct(args, kwargs) if direct is not None else None
        if out is not None:  # worked out from the shapes (the meta kernel is slow)
            meta_args, meta_kwargs = args, kwargs
        elif flat:  # no tensors inside containers: the leaves are the arguments themselves
            meta_args = tuple(_as_meta(a) for a in args)
            meta_kwargs = {k: _as_meta(v) for k, v in kwargs.items()}
        else:
            meta_args, meta_kwargs = pytree.tree_map(_as_meta, (args, kwargs))
        try:
            if out is None:
                out = func(*meta_args, **meta_kwargs)
        except NotImplementedError as e:
            raise ArgumentError(
                "model",
                f"{name} in {self.where(name)}",
                f"operations that run on the meta device ({_first_line(e)})",
            ) from None
        except RuntimeError as e:
            msg = _first_line(e)
            if "meta" in msg and ("item" in msg or "data-dependent" in msg or "cannot be called" in msg):
                raise ArgumentError(
                    "model",
                    f"{name} in {self.where(name)}",
                    f"a forward pass that does not depend on tensor values (tracing uses shapes only: {msg})",
                ) from None
            shapes = ", ".join(_shape(t) for t in pytree.tree_leaves(args) if isinstance(t, torch.Tensor))
            raise ShapeError(
                f"layer {self.where(name)}: {name} fails on input shapes {shapes}: {msg}"
            ) from None
        if (
            not counted
            and name not in _FREE
            and name not in _ELEMENTWISE
            and name not in _COMPARISONS
            and name not in _SAME_SHAPE
        ):
            self.not_counted[f"{name} in {self.where(name)}"] = None
        if name in ("cat", "concat", "concatenate"):
            self._cat_field(args, kwargs, out)
            return out
        if self.fields:
            leaves = args if flat else pytree.tree_leaves(args)
            src = next((a for a in leaves if isinstance(a, torch.Tensor)), None)
            if src is not None:
                self.reshaped(name, func, src, meta_args, meta_kwargs, out)
            others = [a for a in leaves if isinstance(a, torch.Tensor) and a is not src]
            if others:
                self.derive([src, *others], out)
        return out

    def _cat_field(self, args: tuple, kwargs: dict, out: torch.Tensor) -> None:
        tensors = list(args[0]) if args else list(kwargs.get("tensors", ()))
        dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
        dim = dim % out.dim() if out.dim() else 0
        self.fields.pop(id(out), None)
        if self.fields:
            entries = [e for e in (self.entry(t) for t in tensors) if e is not None]
            if entries and all(e[1] is not None and dim not in e[1] for e in entries):
                # joining along channels (or any non-spatial axis): the union of the branches' fields
                found = self.merged(tensors, out)
                if found is not None:
                    self.fields[id(out)] = (out, found[0], found[1])
            if self.entry(out) is None:
                self.derive(tensors, out)
        self.book("cat", out, row=len(tensors) > 1)


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
