"""The tracing mode: a ``TorchFunctionMode`` that intercepts every torch function a model calls.

Module calls are framed by a wrapper of each module's forward (a leaf module is one row); each function is
dispatched by name to a cost rule (:mod:`trainlab.convnets.rules`), answered by broadcasting
(elementwise, shape-preserving), or run on meta tensors (views and everything else). The
receptive field of every image-like tensor is carried alongside it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils import _pytree as pytree

from trainlab.convnets.direct_shapes import DIRECT
from trainlab.convnets.fast_forward import _FAST_CALLS, _FastForward, _named_modules
from trainlab.convnets.field_book import _STATISTICS, FieldBook, _leaves, _pools_space
from trainlab.convnets.op_tables import (
    _COMPARISONS,
    _ELEM_INFO,
    _ELEMENTWISE,
    _FACTORIES,
    _FREE,
    _META,
    _SAME_SHAPE,
    _as_meta,
    _broadcast,
    _first_line,
    _flat,
    _plain,
    _shape,
    _tensors,
)
from trainlab.convnets.receptive_field import (
    ReceptiveField,
)
from trainlab.convnets.rules import (
    _ELEM,
    _KIND,
    _MOVE,
    _READ,
    _SAME,
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


def _framed(stack: list[_Frame], post: Callable[[nn.Module, Any, Any], None], module: nn.Module,
            frame: type[_Frame], entry: tuple, forward: Callable[..., Any]) -> Callable[..., Any]:
    """``module``'s forward during a trace: its frame pushed, the forward run, its row booked (what the
    global hooks did: the row is booked with no output when the forward raises)."""
    def framed(*args: Any, **kwargs: Any) -> Any:
        stack.append(frame(*entry))
        try:
            out = forward(*args, **kwargs)
        except Exception:
            post(module, args, None)
            raise
        post(module, args, out)
        return out
    return framed


_TRAIN = nn.Module.train
_SCRIPT_MODULE = torch.jit.ScriptModule
_BATCH_NORM, _PARAMETER = nn.modules.batchnorm._BatchNorm, nn.Parameter
_UNINITIALIZED = nn.parameter.UninitializedParameter


class _Tracer(FieldBook, TorchFunctionMode):
    """Intercepts every torch function the model calls and books its cost."""

    def __init__(self, model: nn.Module, ignore: frozenset[str]) -> None:
        super().__init__()
        self.ignore = ignore
        # id(param) -> (numel, requires_grad, its name inside its module, the module owning it);
        # read here, before tracing, where attribute reads are not intercepted.
        self.param_info: dict[int, tuple[int, bool, str, nn.Module]] = {}
        self.params: list[torch.Tensor] = []  # in the order of param_info
        self.param_counts: dict[int, tuple[int, int]] = {}
        # id(module) -> (module, name, is a leaf, its own parameters): what the hooks need, read once.
        self.frames: dict[int, tuple[nn.Module, str, bool, tuple[torch.Tensor, ...]]] = {}
        self.lazy: list[bool] = []  # per entry of params: an uninitialised (lazy) parameter
        frames = self.frames
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

    # -- module frames ---------------------------------------------------------------------------
    def frame_modules(self, use_hooks: bool = False) -> Callable[[], None]:
        """Frame every call of the model's modules for the trace; returns what undoes it.

        Where no hooks are in play, each module's forward is replaced on the instance (removed
        afterwards) by a closure that pushes its frame, runs the forward (for a leaf of
        :data:`_FAST_CALLS`, its one torch call handed to the tracer) and books its row through
        :meth:`post_hook`: ``nn.Module.__call__`` then takes its hook-free path, which saves the
        generic hook machinery on every module call (a third of a small model's trace). A module
        with hooks of its own, or a forward set on the instance, is framed by hooks of its own
        put first, where global hooks would run, so that its hooks' work is booked as before;
        when global module hooks are registered (by the user, or ``use_hooks``) every module is
        framed by global hooks, the way all were before (tests/convnets/test_framing.py checks
        the two ways give the same summaries)."""
        fast = dict(self.fast)
        handles: list[Any] = []
        installed: list[nn.Module] = []
        hooks = nn.modules.module
        if use_hooks or (hooks._global_forward_pre_hooks or hooks._global_forward_hooks
                         or hooks._global_backward_pre_hooks or hooks._global_backward_hooks):
            handles = [hooks.register_module_forward_pre_hook(self.pre_hook),
                       hooks.register_module_forward_hook(self.post_hook, always_call=True)]
            for m, forward in self.fast:
                m.__dict__["forward"] = forward
                installed.append(m)
        else:
            stack, post = self.stack, self.post_hook
            for m, name, leaf, own in self.frames.values():
                if ("forward" in m.__dict__ or m._forward_pre_hooks or m._forward_hooks
                        or m._backward_pre_hooks or m._backward_hooks):
                    handles.append(m.register_forward_pre_hook(self.pre_hook, prepend=True))
                    handles.append(m.register_forward_hook(self.post_hook, prepend=True, always_call=True))
                    continue  # (a leaf of _FAST_CALLS has no forward on the instance: none here)
                m.__dict__["forward"] = _framed(stack, post, m, _Frame, (m, name, leaf, own),
                                                fast.get(m) or m.forward)
                installed.append(m)

        def undo() -> None:
            for m in installed:
                m.__dict__.pop("forward", None)
            for handle in handles:
                handle.remove()
            self.fast = []  # each refers to the tracer: no cycle left for the garbage collector

        return undo

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
        elif type(output) is tuple and output and type(output[0]) is torch.Tensor:
            out = output[0]  # the first leaf (an LSTM's (output, (h, c))) without pytree's walk
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

