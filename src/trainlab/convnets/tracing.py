"""The tracing mode: a ``TorchFunctionMode`` that intercepts every torch function a model calls.

Module calls are framed by global forward hooks (a leaf module is one row); each function is
dispatched by name to a cost rule (:mod:`trainlab.convnets.rules`), answered by broadcasting
(elementwise, shape-preserving), or run on meta tensors (views and everything else). The
receptive field of every image-like tensor is carried alongside it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils import _pytree as pytree

from trainlab.convnets.receptive_field import (
    APPROXIMATE,
    EXACT,
    MISALIGNED,
    ReceptiveField,
    merge_fields,
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
    _READ,
    _SAME,
    _SAME_SHAPE,
    _as_meta,
    _broadcast,
    _first_line,
    _flat,
    _shape,
    _tensors,
)
from trainlab.convnets.table import LayerRow
from trainlab.errors import ArgumentError, ShapeError

__all__: list[str] = []  # private: used by trainlab.convnets.tracer

class _Frame:
    """One module call on the stack (a plain slotted class: one is made per module call)."""

    __slots__ = ("module", "name", "leaf", "neurons", "macs", "connections")

    def __init__(self, module: nn.Module, name: str, leaf: bool) -> None:
        self.module = module
        self.name = name
        self.leaf = leaf
        self.neurons = 0
        self.macs = 0
        self.connections = 0


def _merge_two(a: ReceptiveField, b: ReceptiveField) -> ReceptiveField:
    """``merge_fields([a, b])``, spelled out for two fields (the same result)."""
    if b.ndim != a.ndim:
        return ReceptiveField(a.size, a.jump, a.start, MISALIGNED)
    size = tuple(max(x, y) for x, y in zip(a.size, b.size, strict=True))
    if b.jump != a.jump or b.start != a.start or MISALIGNED in (a.status, b.status):
        status = MISALIGNED
    else:
        status = APPROXIMATE if APPROXIMATE in (a.status, b.status) else EXACT
    return ReceptiveField(size, a.jump, a.start, status)


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
        # id(module) -> (module, name, may be a leaf): what pre_hook needs, once per summary.
        self.frames: dict[int, tuple[nn.Module, str, bool]] = {}
        self.lazy: list[bool] = []  # per entry of params: an uninitialised (lazy) parameter
        names, modules, frames = self.names, self.modules, self.frames
        param_info, params, counts, lazies = self.param_info, self.params, self.param_counts, self.lazy
        ignore_bias, ignore_bn = "bias" in ignore, "batchnorm" in ignore
        builtin_types: dict[type, bool] = {}
        for mod_name, m in model.named_modules():
            mid = id(m)
            names[mid], modules[mid] = mod_name, m
            # A module without children is one layer (its ops add up in one row), except a model of
            # its own class written with functional ops only: it gets a row per op.
            builtin = builtin_types.get(type(m))
            if builtin is None:
                builtin = builtin_types[type(m)] = type(m).__module__.startswith("torch.nn")
            frames[mid] = (m, mod_name, mod_name != "" or builtin)
            own = m._parameters
            if not own:
                continue
            drop_all = ignore_bn and isinstance(m, nn.modules.batchnorm._BatchNorm)
            for pname, p in own.items():
                if p is None or id(p) in param_info:
                    continue
                lazy = type(p) is not nn.Parameter and isinstance(p, nn.parameter.UninitializedParameter)
                numel = 0 if lazy else p.numel()
                requires_grad = p.requires_grad
                param_info[id(p)] = (numel, requires_grad, pname, m)
                params.append(p)
                lazies.append(lazy)
                # (total, trainable) it adds once booked, with ``ignore`` applied: biases, and every
                # parameter of a batch-norm layer
                kept = 0 if drop_all or (ignore_bias and pname.endswith("bias")) else numel
                counts[id(p)] = (kept, kept if requires_grad else 0)
        self.counted: set[int] = set()
        self.stack: list[_Frame] = []
        self.rows: list[LayerRow] = []
        self.fields: dict[int, tuple[torch.Tensor, ReceptiveField]] = {}
        self.not_counted: dict[str, None] = {}
        self.row_names: dict[str, int] = {}
        self.calls: dict[int, int] = {}
        self.conv_cache: dict[tuple, tuple] = {}
        # (tensor, its shape) of the last output made by a hot path, so that post_hook need not read
        # the shape through the mode; reset by the fallback (the only route to in-place reshaping).
        self.last: tuple[torch.Tensor, tuple[int, ...]] | None = None

    # -- receptive-field bookkeeping --------------------------------------------------------
    def field_of(self, t: Any) -> ReceptiveField | None:
        entry = self.fields.get(id(t)) if isinstance(t, torch.Tensor) else None
        return entry[1] if entry is not None and entry[0] is t else None

    def set_field(self, t: Any, rf: ReceptiveField | None) -> None:
        if rf is not None and isinstance(t, torch.Tensor) and t.dim() == rf.ndim + 2:
            self.fields[id(t)] = (t, rf)

    def merged_field(self, tensors: Iterable[Any]) -> ReceptiveField | None:
        if isinstance(tensors, list) and len(tensors) == 2:  # a residual add: two branches
            a, b = self.field_of(tensors[0]), self.field_of(tensors[1])
            if a is not None and b is not None:
                return _merge_two(a, b)
        found = [f for f in (self.field_of(t) for t in tensors) if f is not None]
        return merge_fields(found) if found else None

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
            self.stack.append(_Frame(module, entry[1], entry[2] and not module._modules))

    def post_hook(self, module: nn.Module, args: Any, output: Any) -> None:
        stack = self.stack
        if not stack:
            return
        frame = stack[-1]
        if frame.module is not module:
            return
        stack.pop()
        if not frame.leaf:
            return
        mid = id(module)
        calls = self.calls
        n = calls[mid] = calls.get(mid, 0) + 1
        params = module._parameters
        own = [p for p in params.values() if p is not None] if params else None
        total, trainable = self.take_params(own) if own else (0, 0)
        if isinstance(output, torch.Tensor):
            out = output
        else:
            out = next((o for o in pytree.tree_leaves(output) if isinstance(o, torch.Tensor)), None)
        if out is not None:
            last = self.last
            if last is not None and last[0] is out:
                shape = last[1]
            else:
                with torch._C.DisableTorchFunction():  # hooks run inside the mode: read the shape directly
                    shape = tuple(out.shape)
            entry = self.fields.get(id(out))
            rf = entry[1] if entry is not None and entry[0] is out else None
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
        if kind is _SAME:  # booked with no row and nothing to count: only the field follows
            x = args[0] if args else kwargs["input"]
            shape = tuple(x.shape)
            out = torch.empty(shape, dtype=x.dtype, device=_META)
            self.last = (out, shape)
            entry = self.fields.get(id(x))
            if entry is not None and entry[0] is x and out.dim() == entry[1].ndim + 2:
                self.fields[id(out)] = (out, entry[1])
            return out
        if kind is not None:
            return kind(self, name, args, kwargs)
        if name in _FACTORIES:
            kwargs = {**kwargs, "device": "meta"}
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
            if len(tensors) != len(args):
                tensors = _tensors(args, kwargs)
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
            rf = entry[1] if entry is not None and entry[0] is first else None
        else:
            rf = self.merged_field(tensors)
        if inplace and first.shape == shape:
            out = first
        else:
            dtype = torch.bool if comparison else first.dtype
            if name == "where" and len(args) > 1 and isinstance(args[1], torch.Tensor):
                dtype = args[1].dtype  # where(condition, x, y) has the values' dtype
            out = torch.empty(shape, dtype=dtype, device=_META)
        if rf is not None and out.dim() == rf.ndim + 2:  # set_field
            self.fields[id(out)] = (out, rf)
        # Two activations meeting (a residual add, a gating product) get a row in a container; any
        # other elementwise op is booked with nothing to count and no row, which changes nothing.
        if merge_op and len(tensors) > 1 and sum(t.dim() >= 2 for t in tensors) >= 2:
            self.book(op, out)
        self.last = (out, shape)
        return out

    def fallback(self, func: Any, name: str, args: tuple, kwargs: dict) -> Any:
        self.last = None
        flat = _flat(args) and _flat(kwargs.values())
        if flat:  # no containers: the leaves are the arguments themselves
            meta_args = tuple(_as_meta(a) for a in args)
            meta_kwargs = {k: _as_meta(v) for k, v in kwargs.items()}
        else:
            meta_args, meta_kwargs = pytree.tree_map(_as_meta, (args, kwargs))
        try:
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
            name not in _FREE
            and name not in _ELEMENTWISE
            and name not in _COMPARISONS
            and name not in _SAME_SHAPE
        ):
            self.not_counted[f"{name} in {self.where(name)}"] = None
        leaves = args if flat else pytree.tree_leaves(args)
        src = next((a for a in leaves if isinstance(a, torch.Tensor)), None)
        rf = self.field_of(src)
        if rf is not None:
            for o in (out,) if type(out) is torch.Tensor else pytree.tree_leaves(out):
                if isinstance(o, torch.Tensor) and o.dim() == src.dim() and o.shape[2:] == src.shape[2:]:
                    self.set_field(o, rf)
        if name in ("cat", "concat", "concatenate"):
            self._cat_field(args, kwargs, out)
        return out

    def _cat_field(self, args: tuple, kwargs: dict, out: torch.Tensor) -> None:
        tensors = list(args[0]) if args else list(kwargs.get("tensors", ()))
        dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
        dim = dim % out.dim() if out.dim() else 0
        self.fields.pop(id(out), None)
        if dim == 1:  # joining channels: the units see the union of the branches' fields
            self.set_field(out, self.merged_field(tensors))
        self.book("cat", out, row=len(tensors) > 1)
