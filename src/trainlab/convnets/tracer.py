"""The network accountant: per-layer neurons, parameters, MACs, connections and receptive fields.

:func:`summary` traces any ``nn.Module`` on a shape-only input and returns a :class:`Summary`
with one :class:`LayerRow` per layer. It never runs the real computation and never touches
the user's model: the inputs are tensors on PyTorch's ``meta`` device (shapes, no data),
and every torch function the model calls is intercepted by a ``TorchFunctionMode``. Layers
with a known cost (convolution, transposed convolution, linear, matmul, attention,
pooling, upsampling, embedding) are answered by formula; shape-preserving ones (activations,
batch norm, dropout, residual adds) by broadcasting; views by running them on meta
tensors. In-place updates of the model's own tensors (batch norm's running statistics and
batch counter) are skipped, so parameters and buffers are left exactly as they were. The
cost of a trace therefore depends on the number of layers, not on the input size or the
number of parameters.

Conventions (CLAIMS.md §3):

* **neurons**: a layer's output activations (C×H×W for the whole batch). Activations,
  batch norm, dropout, adds and concatenations add none: they belong to the layer before.
* **parameters**: weights plus biases (batch norm's scale and shift included), counted once
  even when shared; ``ignore={"bias"}`` leaves out biases, ``ignore={"batchnorm"}`` batch
  norm's scale and shift, as the course does.
* **MACs**: multiply-accumulates with weights or between activations, biases excluded:
  convolution k^d·(C_in/groups)·C_out·(output positions); transposed convolution
  k^d·C_in·(C_out/groups)·(input positions) (each input scatters into k^d outputs; the
  usual anchors count this 4× too high at stride 2 by using output positions); linear
  n_in·n_out per row of the input; matmul (…, n, k)@(…, k, m): n·k·m per batch entry.
* **connections**: input→output links: the MACs of the layers above plus pooling windows
  (k^d·C·output positions), adaptive pooling (the exact window sizes), upsampling (one link
  per output for nearest, 2^d for (bi/tri)linear, 16 for bicubic), and global pooling by
  ``mean``/``sum``/``amax`` over spatial dimensions (one link per input).

Anything else that is not a view or an elementwise function is listed in
:attr:`Summary.not_counted` ("not counted: …"); ``strict=True`` raises
:class:`NotCountedError` instead.

>>> from torch import nn
>>> s = summary(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)), (3, 32, 32))
>>> [(r.name, r.neurons, r.params, r.connections) for r in s.rows]
[('0', 8192, 224, 221184), ('1', 0, 0, 0), ('2', 2048, 0, 8192)]
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
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
    input_field,
    merge_fields,
    through_upsampling,
    through_window,
)
from trainlab.errors import ArgumentError, ShapeError, TrainlabError
from trainlab.shapes import (
    adaptive_pool_windows,
    conv_output_size,
    conv_transpose_output_size,
    pool_output_size,
    upsample_output_size,
)

__all__ = [
    "IGNORABLE",
    "LayerRow",
    "NotCountedError",
    "Summary",
    "parse_size",
    "summary",
]

#: What ``ignore`` accepts.
IGNORABLE = ("bias", "batchnorm")

CONVENTIONS = (
    "neurons = output activations of a layer; parameters = weights + biases; "
    "connections = multiply-accumulates without biases, plus pooling windows and upsampling links; "
    "activations, batch norm and adds belong to the layer before (no neurons or connections)"
)


class NotCountedError(TrainlabError):
    """``strict=True`` and the model calls an operation whose cost trainlab cannot count."""


@dataclass
class LayerRow:
    """One layer (a leaf module call, or a functional operation in a container's forward)."""

    name: str
    type: str
    output_shape: tuple[int, ...] | None
    neurons: int = 0
    params: int = 0
    trainable_params: int = 0
    macs: int = 0
    connections: int = 0
    receptive_field: ReceptiveField | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        rf = self.receptive_field
        size, jump, start = rf.describe() if rf is not None else ("", "", "")
        return {
            "name": self.name,
            "type": self.type,
            "output_shape": list(self.output_shape) if self.output_shape is not None else None,
            "neurons": self.neurons,
            "params": self.params,
            "trainable_params": self.trainable_params,
            "macs": self.macs,
            "connections": self.connections,
            "rf_size": size,
            "rf_jump": jump,
            "rf_start": start,
            "note": self.note,
        }


_COLUMNS = (
    "name",
    "type",
    "output_shape",
    "neurons",
    "params",
    "trainable_params",
    "macs",
    "connections",
    "rf_size",
    "rf_jump",
    "rf_start",
    "note",
)


@dataclass
class Summary:
    """The accountant's answer: rows, totals, and what could not be counted."""

    rows: list[LayerRow]
    input_shapes: list[tuple[int, ...]]
    ignore: frozenset[str] = frozenset()
    not_counted: list[str] = field(default_factory=list)

    @property
    def total_neurons(self) -> int:
        return sum(r.neurons for r in self.rows)

    @property
    def total_params(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def trainable_params(self) -> int:
        return sum(r.trainable_params for r in self.rows)

    @property
    def total_macs(self) -> int:
        return sum(r.macs for r in self.rows)

    @property
    def total_connections(self) -> int:
        return sum(r.connections for r in self.rows)

    def totals(self) -> dict[str, int]:
        return {
            "neurons": self.total_neurons,
            "params": self.total_params,
            "trainable_params": self.trainable_params,
            "macs": self.total_macs,
            "connections": self.total_connections,
        }

    def layers(self) -> list[LayerRow]:
        """Rows that are layers in the course's sense: they have neurons or parameters."""
        return [r for r in self.rows if r.neurons or r.params]

    def to_dict(self) -> dict[str, Any]:
        return {
            "input_shapes": [list(s) for s in self.input_shapes],
            "ignore": sorted(self.ignore),
            "conventions": CONVENTIONS,
            "rows": [r.as_dict() for r in self.rows],
            "totals": self.totals(),
            "not_counted": list(self.not_counted),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def to_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for r in self.rows:
            d = r.as_dict()
            d["output_shape"] = "x".join(map(str, r.output_shape)) if r.output_shape else ""
            writer.writerow(d)
        t = self.totals()
        writer.writerow(
            {
                "name": "total",
                "neurons": t["neurons"],
                "params": t["params"],
                "trainable_params": t["trainable_params"],
                "macs": t["macs"],
                "connections": t["connections"],
            }
        )
        return buf.getvalue()

    def text_rows(self) -> tuple[list[str], list[list[str]]]:
        """Header and formatted cells (thousands separators) for text, markdown and rich tables."""
        header = [
            "layer",
            "type",
            "output",
            "neurons",
            "params",
            "MACs",
            "connections",
            "RF",
            "jump",
            "start",
        ]
        body = []
        for r in self.rows:
            rf = r.receptive_field.describe() if r.receptive_field is not None else ("—", "—", "—")
            shape = "×".join(map(str, r.output_shape)) if r.output_shape else "—"
            params = f"{r.params:,}" + (
                "" if r.trainable_params == r.params else f" ({r.trainable_params:,} trainable)"
            )
            body.append(
                [
                    r.name + (f" [{r.note}]" if r.note else ""),
                    r.type,
                    shape,
                    f"{r.neurons:,}",
                    params,
                    f"{r.macs:,}",
                    f"{r.connections:,}",
                    *rf,
                ]
            )
        t = self.totals()
        body.append(
            [
                "total",
                "",
                "",
                f"{t['neurons']:,}",
                f"{t['params']:,}",
                f"{t['macs']:,}",
                f"{t['connections']:,}",
                "",
                "",
                "",
            ]
        )
        return header, body

    def footer(self) -> list[str]:
        lines = [f"conventions: {CONVENTIONS}"]
        if self.ignore:
            lines.append("ignored in parameter counts: " + ", ".join(sorted(self.ignore)))
        if self.not_counted:
            lines.append("not counted: " + "; ".join(self.not_counted))
        return lines

    def to_markdown(self) -> str:
        header, body = self.text_rows()
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]
        return "\n".join(lines + [""] + self.footer()) + "\n"

    def to_text(self) -> str:
        header, body = self.text_rows()
        widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
        right = set(range(3, len(header)))

        def line(cells: list[str]) -> str:
            return "  ".join(
                c.rjust(w) if i in right else c.ljust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()

        return "\n".join([line(header), *(line(r) for r in body), *self.footer()]) + "\n"

    def plot(self, ax: Any = None) -> Any:
        """Bar chart of neurons, parameters and connections per layer (log scale; zeros left out)."""
        from trainlab.plotting import new_figure

        if ax is None:
            fig, ax = new_figure(size=(max(6.0, 0.6 * len(self.layers()) + 2), 4.0))
        else:
            fig = ax.figure
        layers = self.layers()
        xs = range(len(layers))
        width = 0.27
        for offset, (label, values) in zip(
            (-width, 0, width),
            [
                ("neurons", [r.neurons for r in layers]),
                ("parameters", [r.params for r in layers]),
                ("connections", [r.connections for r in layers]),
            ],
            strict=True,
        ):
            heights = [v if v > 0 else float("nan") for v in values]  # log scale: no bar for zero
            ax.bar([x + offset for x in xs], heights, width, label=label)
        ax.set_yscale("log")
        ax.set_xticks(list(xs), [r.name for r in layers], rotation=60, fontsize=7)
        ax.set_ylabel("count")
        ax.legend(fontsize=8)
        return fig


def parse_size(text: str, argument: str = "--input") -> tuple[int, ...]:
    """Parse an input size given channels first, like ``3x112x112`` (no batch dimension)."""
    parts = re.split(r"[x×,]", text.strip())
    if not parts or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise ArgumentError(argument, text, "positive sizes, channels first, joined by 'x' (e.g. 3x112x112)")
    return tuple(int(p) for p in parts)


# ----------------------------------------------------------------------------------------------
# The tracing mode.


def _bind(args: tuple, kwargs: dict, names: tuple[str, ...], defaults: dict[str, Any]) -> dict[str, Any]:
    bound = dict(defaults)
    bound.update(zip(names, args, strict=False))
    bound.update(kwargs)
    return bound


def _tuple(value: Any, n: int) -> tuple:
    if isinstance(value, list | tuple):
        return tuple(value) * n if len(value) == 1 else tuple(value)
    return (value,) * n


def _broadcast(shapes: Sequence[tuple[int, ...]]) -> tuple[int, ...]:
    ndim = max(len(s) for s in shapes)
    out = []
    for i in range(ndim):
        dims = {s[len(s) - ndim + i] for s in shapes if len(s) - ndim + i >= 0} - {1}
        if len(dims) > 1:
            raise RuntimeError(f"shapes {[tuple(s) for s in shapes]} do not broadcast")
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def _tensors(args: tuple, kwargs: dict) -> list[torch.Tensor]:
    """The tensors among the arguments (one level of lists/tuples: elementwise ops need no more)."""
    found = []
    for a in (*args, *kwargs.values()):
        if isinstance(a, torch.Tensor):
            found.append(a)
        elif isinstance(a, list | tuple):
            found.extend(t for t in a if isinstance(t, torch.Tensor))
    return found


_META = torch.device("meta")


# Argument types that pytree treats as leaves (no containers, no registered nodes such as torch.Size).
_LEAF_TYPES = frozenset(
    (torch.Tensor, nn.Parameter, int, float, bool, complex, str, type(None), torch.dtype, torch.device,
     torch.memory_format, torch.layout)
)


def _flat(values: Iterable[Any]) -> bool:
    """Whether none of ``values`` is a container (or any type pytree might open)."""
    return all(type(v) in _LEAF_TYPES for v in values)


def _meta(shape: Sequence[int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.empty(tuple(shape), dtype=dtype, device=_META)


def _as_meta(x: Any) -> Any:
    if isinstance(x, torch.Tensor) and not x.is_meta:
        return x.to("meta")
    return x


def _shape(t: torch.Tensor) -> str:
    return "×".join(map(str, t.shape))


_ELEMENTWISE = frozenset(
    """
relu relu_ relu6 gelu silu silu_ sigmoid sigmoid_ tanh tanh_ hardtanh hardtanh_ leaky_relu leaky_relu_
elu elu_ selu selu_ celu celu_ mish hardswish hardsigmoid softplus softsign threshold threshold_ prelu
rrelu logsigmoid tanhshrink softshrink hardshrink
add add_ __add__ __radd__ __iadd__ sub sub_ __sub__ __rsub__ __isub__ mul mul_ __mul__ __rmul__ __imul__
div div_ __truediv__ __rtruediv__ __itruediv__ true_divide __floordiv__ floor_divide neg __neg__ exp exp_
log log_ sqrt sqrt_ rsqrt pow pow_ __pow__ __rpow__ abs abs_ __abs__ clamp clamp_ clip clip_ clamp_min
clamp_max square reciprocal sin cos erf maximum minimum where masked_fill masked_fill_ lerp addcmul addcdiv
""".split()
)
# Shape-preserving functions of their first argument (the others are parameters or statistics).
_SAME_SHAPE = frozenset(
    """
dropout dropout_ dropout1d dropout2d dropout3d alpha_dropout feature_alpha_dropout
softmax log_softmax softmin batch_norm instance_norm layer_norm group_norm local_response_norm normalize
rms_norm
""".split()
)
_COMPARISONS = frozenset(
    "eq ne lt le gt ge __eq__ __ne__ __lt__ __le__ __gt__ __ge__ isnan isinf "
    "logical_and logical_or logical_not __and__ __or__ __invert__".split()
)
# Functions that create or reshape tensors, query them, or cost nothing under the conventions.
_FREE = frozenset(
    """
__get__ __set__ dim size numel __len__ stride is_floating_point is_contiguous is_complex get_device
element_size data_ptr __format__ __repr__ __hash__ __iter__ __reduce_ex__ __contains__ __setstate__
view view_as reshape reshape_as flatten unflatten permute transpose t contiguous unsqueeze squeeze
expand expand_as repeat repeat_interleave tile __getitem__ __setitem__ narrow select chunk split unbind
split_with_sizes tensor_split movedim moveaxis swapaxes swapdims flip roll pad
to type type_as float double half bfloat16 long int bool clone detach detach_ requires_grad_ cpu cuda
zero_ fill_ copy_ zeros ones empty full arange linspace eye rand randn randint tensor as_tensor
zeros_like ones_like empty_like full_like rand_like randn_like new_zeros new_ones new_empty new_full
new_tensor triu tril cat concat concatenate stack gather index_select one_hot
""".split()
)
_READ_ONLY = frozenset(
    """
__get__ dim size numel __len__ stride is_floating_point is_contiguous is_complex get_device element_size
__format__ __repr__ __hash__
""".split()
)
_FACTORIES = frozenset("zeros ones empty full arange linspace eye rand randn randint".split())
_INPLACE_SUFFIX = re.compile(r"^(__i\w+__|\w+_)$")


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


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


# ----------------------------------------------------------------------------------------------
# Handlers: formulas for the layers whose cost is known.


def _conv_size(h: Any, k: Any, s: Any, p: Any, d: Any, tr: _Tracer, name: str) -> int:
    """``conv_output_size`` with its checks, answered inline for plain valid integers."""
    if type(h) is int and type(k) is int and type(s) is int and type(p) is int and type(d) is int:
        span = h + 2 * p - d * (k - 1) - 1
        if h >= 1 and k >= 1 and s >= 1 and p >= 0 and d >= 1 and span >= 0:
            return span // s + 1
    return conv_output_size(h, k, s, p, d, layer=f"layer {tr.where(name)}")


def _window_field(rf: ReceptiveField, k: tuple, s: tuple, p: tuple, d: tuple) -> ReceptiveField:
    """``through_window`` for per-dimension tuples of the field's length (same arithmetic)."""
    if len(k) == 2:
        (r0, r1), (j0, j1), (a0, a1) = rf.size, rf.jump, rf.start
        e0, e1 = d[0] * (k[0] - 1), d[1] * (k[1] - 1)  # k_eff − 1
        return ReceptiveField(
            (r0 + e0 * j0, r1 + e1 * j1),
            (j0 * s[0], j1 * s[1]),
            (a0 + (e0 / 2 - p[0]) * j0, a1 + (e1 / 2 - p[1]) * j1),
            rf.status,
        )
    size, jump, start = [], [], []
    for r, j, s0, ki, si, pi, di in zip(rf.size, rf.jump, rf.start, k, s, p, d, strict=True):
        reach = di * (ki - 1)  # k_eff − 1
        size.append(r + reach * j)
        start.append(s0 + (reach / 2 - pi) * j)
        jump.append(j * si)
    return ReceptiveField(tuple(size), tuple(jump), tuple(start), rf.status)


def _conv(tr: _Tracer, name: str, args: tuple, kwargs: dict) -> torch.Tensor:
    if len(args) == 7 and not kwargs:  # F.conv2d(input, weight, bias, stride, padding, dilation, groups)
        x, w, bias, stride, padding, dilation, groups = args
        if type(stride) is tuple and type(padding) is tuple and type(dilation) is tuple:
            # the same geometry again (repeated blocks): sizes and counts worked out once per summary
            key = (name, x.shape, w.shape, stride, padding, dilation, groups)
            hit = tr.conv_cache.get(key)
            if hit is None:
                hit = tr.conv_cache[key] = _conv_geometry(tr, name, x, w, stride, padding, dilation, groups)
            shape, numel, macs, k, s, p, d = hit
            out = torch.empty(shape, dtype=x.dtype, device=_META)
            tr.last = (out, shape)
            entry = tr.fields.get(id(x))
            if entry is not None and entry[0] is x:
                rf = entry[1]
                if rf.ndim == len(k):
                    tr.set_field(out, _window_field(rf, k, s, p, d))
            stack = tr.stack
            if stack and stack[-1].leaf:  # book() inside a layer: add up
                top = stack[-1]
                top.neurons += numel
                top.macs += macs
                top.connections += macs
            else:
                tr.book(name, out, neurons=numel, macs=macs, connections=macs, params=(w, bias))
            return out
    else:
        b = _bind(
            args,
            kwargs,
            ("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
            {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1},
        )
        x, w, bias, groups = b["input"], b["weight"], b["bias"], b["groups"]
        stride, padding, dilation = b["stride"], b["padding"], b["dilation"]
    geometry = _conv_geometry(tr, name, x, w, stride, padding, dilation, groups)
    return _conv_book(tr, name, x, w, bias, *geometry)


def _conv_geometry(
    tr: _Tracer, name: str, x: torch.Tensor, w: torch.Tensor,
    stride: Any, padding: Any, dilation: Any, groups: int,
) -> tuple:
    """(output shape, neurons, MACs, k, s, p, d) of a convolution; raises on bad shapes."""
    w_shape = w.shape
    nd = len(w_shape) - 2
    x_shape = tuple(x.shape)
    unbatched = len(x_shape) == nd + 1
    xb_shape = (1, *x_shape) if unbatched else x_shape  # (N, C_in, *spatial)
    if len(xb_shape) != nd + 2:
        raise ShapeError(
            f"layer {tr.where(name)}: a {nd}-D convolution needs a (N, C, {nd} sizes) input, "
            f"got shape {_shape(x)}"
        )
    if xb_shape[1] != w_shape[1] * groups:
        raise ShapeError(
            f"layer {tr.where(name)} expects {w_shape[1] * groups} input channels (weight "
            f"{_shape(w)}, groups {groups}) but gets {xb_shape[1]} (input {_shape(x)})"
        )
    k, s, d = tuple(w_shape[2:]), _tuple(stride, nd), _tuple(dilation, nd)
    if isinstance(padding, str) and padding == "same":  # stride 1; total padding d(k − 1), odd pixel right
        p = tuple(di * (ki - 1) // 2 for ki, di in zip(k, d, strict=True))
        spatial = tuple(xb_shape[2:])
    else:
        p = (0,) * nd if isinstance(padding, str) and padding == "valid" else _tuple(padding, nd)
        spatial = tuple(
            _conv_size(h, ki, si, pi, di, tr, name)
            for h, ki, si, pi, di in zip(xb_shape[2:], k, s, p, d, strict=True)
        )
    out_shape = (xb_shape[0], w_shape[0], *spatial)
    numel = math.prod(out_shape)
    macs = numel * w_shape[1] * math.prod(k)  # k^d · (C_in/groups) per output
    return out_shape[1:] if unbatched else out_shape, numel, macs, k, s, p, d


def _conv_book(
    tr: _Tracer, name: str, x: torch.Tensor, w: torch.Tensor, bias: Any,
    shape: tuple, numel: int, macs: int, k: tuple, s: tuple, p: tuple, d: tuple,
) -> torch.Tensor:
    out = torch.empty(shape, dtype=x.dtype, device=_META)
    rf = tr.field_of(x)
    if rf is not None and rf.ndim == len(k):
        tr.set_field(out, _window_field(rf, k, s, p, d))
    tr.book(name, out, neurons=numel, macs=macs, connections=macs, params=(w, bias))
    return out


def _conv_transpose(tr: _Tracer, name: str, args: tuple, kwargs: dict) -> torch.Tensor:
    b = _bind(
        args,
        kwargs,
        ("input", "weight", "bias", "stride", "padding", "output_padding", "groups", "dilation"),
        {"bias": None, "stride": 1, "padding": 0, "output_padding": 0, "groups": 1, "dilation": 1},
    )
    x, w, groups = b["input"], b["weight"], b["groups"]
    nd = w.dim() - 2
    unbatched = x.dim() == nd + 1
    xb_shape = (1, *x.shape) if unbatched else tuple(x.shape)
    where = tr.where(name)
    if xb_shape[1] != w.shape[0]:
        raise ShapeError(
            f"layer {where} expects {w.shape[0]} input channels (weight {_shape(w)}) but "
            f"gets {xb_shape[1]} (input {_shape(x)})"
        )
    k = tuple(w.shape[2:])
    s, p, op, d = (_tuple(b[key], nd) for key in ("stride", "padding", "output_padding", "dilation"))
    spatial = tuple(
        conv_transpose_output_size(h, ki, si, pi, di, oi, layer=f"layer {where}")
        for h, ki, si, pi, di, oi in zip(xb_shape[2:], k, s, p, d, op, strict=True)
    )
    out_shape = (xb_shape[0], w.shape[1] * groups, *spatial)
    out = _meta(out_shape[1:] if unbatched else out_shape, x.dtype)
    # Each input value is multiplied by k^d·(C_out/groups) weights: C_in·C_out·k^d·H_in·W_in/groups.
    macs = math.prod(xb_shape) * w.shape[1] * math.prod(k)
    rf = tr.field_of(x)
    if rf is not None and rf.ndim == nd:
        reach = [-(-(di * (ki - 1) + 1) // si) - 1 for ki, si, di in zip(k, s, d, strict=True)]
        offset = [(pi - di * (ki - 1) / 2) / si for ki, si, pi, di in zip(k, s, p, d, strict=True)]
        tr.set_field(
            out, through_upsampling(rf, s, reach, offset)
        )
    tr.book(name, out, neurons=math.prod(out_shape), macs=macs, connections=macs, params=(w, b["bias"]))
    return out


def _linear(tr: _Tracer, name: str, args: tuple, kwargs: dict) -> torch.Tensor:
    b = _bind(args, kwargs, ("input", "weight", "bias"), {"bias": None})
    x, w = b["input"], b["weight"]
    if x.shape[-1] != w.shape[-1]:
        raise ShapeError(
            f"layer {tr.where(name)} expects {w.shape[-1]} input features (weight {_shape(w)}) "
            f"but gets {x.shape[-1]} (input {_shape(x)})"
        )
    out = _meta((*x.shape[:-1], w.shape[0]) if w.dim() == 2 else tuple(x.shape[:-1]), x.dtype)
    numel = out.numel()
    macs = numel * w.shape[-1]  # n_in·n_out for every row of the input (all leading dimensions)
    tr.book(name, out, neurons=numel, macs=macs, connections=macs, params=(w, b["bias"]))
    return out


def _matmul(tr: _Tracer, name: str, args: tuple, kwargs: dict) -> torch.Tensor:
    if name in ("addmm", "baddbmm"):
        a, m = args[1], args[2]  # bias + a @ m
    elif name == "__rmatmul__":
        m, a = args[0], args[1]  # other @ self
    else:
        a, m = args[0], args[1]
    if a.shape[-1] != m.shape[-2 if m.dim() > 1 else 0]:
        raise ShapeError(
            f"layer {tr.where(name)}: {name} of {_shape(a)} and {_shape(m)}: the inner sizes "
            f"{a.shape[-1]} and {m.shape[-2 if m.dim() > 1 else 0]} differ"
        )
    if a.dim() >= 2 and m.dim() >= 2:
        batch = _broadcast([tuple(a.shape[:-2]), tuple(m.shape[:-2])])
        out = _meta((*batch, a.shape[-2], m.shape[-1]), a.dtype)
    else:  # vector cases: torch's own shape rules, on meta tensors
        out = torch.matmul(_as_meta(a), _as_meta(m))
    macs = out.numel() * a.shape[-1]  # one multiply-accumulate per output and inner index
    tr.book("matmul", out, neurons=out.numel(), macs=macs, connections=macs, params=(a, m))
    return out


def _sdpa(tr: _Tracer, name: str, args: tuple, kwargs: dict) -> torch.Tensor:
    b = _bind(args, kwargs, ("query", "key", "value"), {})
    q, k, v = b["query"], b["key"], b["value"]  # (..., L, E), (..., S, E), (..., S, Ev)
    batch = _broadcast([tuple(q.shape[:-2]), tuple(k.shape[:-2]), tuple(v.shape[:-2])])
    n_q, n_k, e, e_v = q.shape[-2], k.shape[-2], q.shape[-1], v.shape[-1]
    out = _meta((*batch, n_q, e_v), q.dtype)
    macs = math.prod(batch) * n_q * n_k * (e + e_v)  # scores QKᵀ, then weights·V
    tr.book("attention", out, neurons=out.numel(), macs=macs, connections=macs)
    return out


def _mha(tr: _Tracer, name: str, args: tuple, kwargs: dict) -> Any:
    names = (
        "query",
        "key",
        "value",
        "embed_dim_to_check",
        "num_heads",
        "in_proj_weight",
        "in_proj_bias",
        "bias_k",
        "bias_v",
        "add_zero_attn",
        "dropout_p",
        "out_proj_weight",
        "out_proj_bias",
        "training",
        "key_padding_mask",
        "need_weights",
        "attn_mask",
        "use_separate_proj_weight",
        "q_proj_weight",
        "k_proj_weight",
        "v_proj_weight",
        "static_k",
        "static_v",
        "average_attn_weights",
        "is_causal",
    )
    b = _bind(
        args,
        kwargs,
        names,
        {"need_weights": True, "average_attn_weights": True, "use_separate_proj_weight": False},
    )
    q, k, v = b["query"], b["key"], b["value"]  # (L, N, E) or (L, E)
    batched = q.dim() == 3
    n_q, n_k = q.shape[0], k.shape[0]
    batch = q.shape[1] if batched else 1
    e, kdim, vdim, heads = q.shape[-1], k.shape[-1], v.shape[-1], b["num_heads"]
    # projections q, k, v, attention scores and weighted sum over all heads, output projection
    macs = batch * (n_q * e * e + n_k * kdim * e + n_k * vdim * e + 2 * n_q * n_k * e + n_q * e * e)
    out = _meta(tuple(q.shape), q.dtype)
    tr.book(
        "attention",
        out,
        neurons=out.numel(),
        macs=macs,
        connections=macs,
        params=[
            b[key]
            for key in (
                "in_proj_weight",
                "in_proj_bias",
                "bias_k",
                "bias_v",
                "out_proj_weight",
                "out_proj_bias",
                "q_proj_weight",
                "k_proj_weight",
                "v_proj_weight",
            )
        ],
    )
    weights = None
    if b["need_weights"]:
        shape = (n_q, n_k) if b["average_attn_weights"] else (heads, n_q, n_k)
        weights = _meta((batch, *shape) if batched else shape, q.dtype)
    return out, weights


def _pool(tr: _Tracer, name: str, args: tuple, kwargs: dict) -> Any:
    is_max = "max" in name
    if is_max:
        b = _bind(
            args,
            kwargs,
            ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"),
            {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False, "return_indices": False},
        )
    else:
        b = _bind(
            args,
            kwargs,
            ("input", "kernel_size", "stride", "padding", "ceil_mode"),
            {"stride": None, "padding": 0, "ceil_mode": False},
        )
    x = b["input"]
    nd = int(re.search(r"(\d)d", name).group(1))
    k = _tuple(b["kernel_size"], nd)
    s = _tuple(b["stride"], nd) if b["stride"] not in (None, [], ()) else k
    p, d = _tuple(b["padding"], nd), _tuple(b.get("dilation", 1), nd)
    where = tr.where(name)
    spatial = tuple(
        pool_output_size(h, ki, si, pi, di, bool(b["ceil_mode"]), layer=f"layer {where}")
        for h, ki, si, pi, di in zip(x.shape[-nd:], k, s, p, d, strict=True)
    )
    out = _meta((*x.shape[:-nd], *spatial), x.dtype)
    rf = tr.field_of(x)
    if rf is not None and rf.ndim == nd:
        tr.set_field(out, through_window(rf, k, s, p, d))
    numel = out.numel()
    tr.book(
        name.lstrip("_").replace("_with_indices", ""), out, neurons=numel, connections=numel * math.prod(k)
    )
    if is_max and b["return_indices"]:
        return out, _meta(tuple(out.shape), torch.int64)
    return out


def _adaptive_pool(tr: _Tracer, name: str, args: tuple, kwargs: dict) -> Any:
    b = _bind(args, kwargs, ("input", "output_size", "return_indices"), {"return_indices": False})
    x = b["input"]
    nd = int(re.search(r"(\d)d", name).group(1))
    wanted = _tuple(b["output_size"], nd)
    spatial = tuple(h if o is None else int(o) for h, o in zip(x.shape[-nd:], wanted, strict=True))
    out = _meta((*x.shape[:-nd], *spatial), x.dtype)
    windows = [adaptive_pool_windows(h, o) for h, o in zip(x.shape[-nd:], spatial, strict=True)]
    links_per_channel = math.prod(sum(e - s for s, e in w) for w in windows)
    connections = math.prod(x.shape[:-nd]) * links_per_channel
    rf = tr.field_of(x)
    if rf is not None and rf.ndim == nd:
        if all(h % o == 0 for h, o in zip(x.shape[-nd:], spatial, strict=True)):
            ks = tuple(h // o for h, o in zip(x.shape[-nd:], spatial, strict=True))
            tr.set_field(out, through_window(rf, ks, ks, 0, 1))
        else:
            widest = [max(e - s for s, e in w) for w in windows]
            field_ = through_window(rf, widest, [h / o for h, o in zip(x.shape[-nd:], spatial, strict=True)])
            tr.set_field(out, ReceptiveField(field_.size, field_.jump, field_.start, APPROXIMATE))
    tr.book(name.replace("_with_indices", ""), out, neurons=out.numel(), connections=connections)
    if "max" in name and b["return_indices"]:
        return out, _meta(tuple(out.shape), torch.int64)
    return out


_INTERP_LINKS = {"nearest": 1, "nearest-exact": 1, "linear": 2, "bilinear": 4, "trilinear": 8, "bicubic": 16}


def _interpolate(tr: _Tracer, name: str, args: tuple, kwargs: dict) -> torch.Tensor:
    b = _bind(
        args,
        kwargs,
        ("input", "size", "scale_factor", "mode", "align_corners"),
        {"size": None, "scale_factor": None, "mode": "nearest"},
    )
    x, mode = b["input"], b["mode"]
    nd = x.dim() - 2
    where = f"layer {tr.where(name)}"
    if b["size"] is not None:
        spatial = tuple(
            upsample_output_size(h, output_size=int(o), layer=where)
            for h, o in zip(x.shape[2:], _tuple(b["size"], nd), strict=True)
        )
    else:
        spatial = tuple(
            upsample_output_size(h, float(f), layer=where)
            for h, f in zip(x.shape[2:], _tuple(b["scale_factor"], nd), strict=True)
        )
    out = _meta((*x.shape[:2], *spatial), x.dtype)
    if mode == "area":
        windows = [adaptive_pool_windows(h, o) for h, o in zip(x.shape[2:], spatial, strict=True)]
        connections = math.prod(x.shape[:2]) * math.prod(sum(e - s for s, e in w) for w in windows)
    elif mode in _INTERP_LINKS:
        connections = out.numel() * _INTERP_LINKS[mode]
    else:
        connections = 0
        tr.not_counted[f"interpolate mode {mode!r} in {tr.where(name)}"] = None
    rf = tr.field_of(x)
    if rf is not None and rf.ndim == nd:
        reach = {"nearest": 0, "nearest-exact": 0, "bicubic": 3}.get(mode, 1)
        if b.get("align_corners") and mode not in ("nearest", "nearest-exact", "area"):
            # output o samples input o·(H − 1)/(H_out − 1): corners on corners
            scale = [(o - 1) / (i - 1) if o > 1 and i > 1 else 1.0
                     for o, i in zip(spatial, x.shape[2:], strict=True)]
            offset = [0.0] * nd
        else:  # output o samples input (o + ½)/scale − ½
            scale = [o / i for o, i in zip(spatial, x.shape[2:], strict=True)]
            offset = [0.5 / f - 0.5 for f in scale]
        tr.set_field(
            out,
            through_upsampling(rf, scale, [reach] * nd, offset),
        )
    tr.book("interpolate", out, neurons=out.numel(), connections=connections)
    return out


def _embedding(tr: _Tracer, name: str, args: tuple, kwargs: dict) -> torch.Tensor:
    b = _bind(args, kwargs, ("input", "weight"), {})
    out = _meta((*b["input"].shape, b["weight"].shape[-1]), b["weight"].dtype)
    tr.book("embedding", out, neurons=out.numel(), params=(b["weight"],))  # a lookup: no MACs
    return out


def _recurrent(tr: _Tracer, name: str, args: tuple, kwargs: dict) -> Any:
    """``nn.LSTM``/``nn.GRU``/``nn.RNN``: every weight matrix (input-to-hidden, hidden-to-hidden,
    projection) multiplies one vector per time step and sequence: MACs = T·B·Σ numel(W)."""
    x, weights = args[0], args[2] if len(args) > 2 else None
    if not isinstance(weights, list | tuple) or not isinstance(args[1], torch.Tensor | list | tuple):
        return tr.fallback(getattr(torch._VF, name), name, args, kwargs)  # packed sequences: not counted
    out = getattr(torch._VF, name)(*pytree.tree_map(_as_meta, args), **kwargs)
    steps = x.numel() // x.shape[-1]  # T·B
    macs = steps * sum(w.numel() for w in weights if isinstance(w, torch.Tensor) and w.dim() == 2)
    tr.book(name, out[0], neurons=out[0].numel(), macs=macs, connections=macs, params=weights)
    return out


def _to(tr: _Tracer, name: str, args: tuple, kwargs: dict) -> Any:
    """``.to(…)``, ``.cpu()``, ``.cuda()``, ``.type_as(…)``: tracing stays on the meta device, only
    the dtype follows (a model moving a mask to ``self.weight.device`` must not leave meta)."""
    x = args[0]
    dtype = kwargs.get("dtype")
    for a in args[1:]:
        if isinstance(a, torch.dtype):
            dtype = a
        elif isinstance(a, torch.Tensor) and a.is_floating_point() == x.is_floating_point():
            dtype = a.dtype
    out = _as_meta(x)
    if dtype is not None and dtype != out.dtype:
        out = out.to(dtype)
    tr.set_field(out, tr.field_of(x))
    return out


def _pad(tr: _Tracer, name: str, args: tuple, kwargs: dict) -> torch.Tensor:
    """Explicit padding (``F.pad``; convolutions with ``padding_mode`` other than zeros): free, and
    the field of output unit 0 starts ``left``·jump earlier."""
    b = _bind(args, kwargs, ("input", "pad", "mode", "value"), {"mode": "constant", "value": None})
    x, pads = b["input"], tuple(b["pad"])
    out = torch.nn.functional.pad(_as_meta(x), pads, b["mode"], b["value"])
    rf = tr.field_of(x)
    if rf is not None and len(pads) // 2 <= rf.ndim:
        left = [0] * rf.ndim
        for i in range(len(pads) // 2):  # pads come last dimension first: (left_W, right_W, left_H, ...)
            left[rf.ndim - 1 - i] = pads[2 * i]
        start = tuple(st - lp * j for st, lp, j in zip(rf.start, left, rf.jump, strict=True))
        tr.set_field(out, ReceptiveField(rf.size, rf.jump, start, rf.status))
    return out


def _reduction(tr: _Tracer, name: str, args: tuple, kwargs: dict) -> Any:
    """``mean``/``sum``/``amax``/``amin``: global pooling when taken over an image's spatial
    dimensions (one link per input), otherwise statistics of a normalisation (free)."""
    out = tr.fallback(getattr(torch.Tensor, name), name, args, kwargs)
    tr.not_counted.pop(f"{name} in {tr.where(name)}", None)
    x = args[0]
    dims = args[1] if len(args) > 1 else kwargs.get("dim")
    rf = tr.field_of(x)
    if not isinstance(out, torch.Tensor) or dims is None or rf is None:
        return out
    dims = {dd % x.dim() for dd in _tuple(dims, 1)}
    if dims and min(dims) >= 2:
        if out.dim() == x.dim():  # keepdim: still an image, of size 1 along the pooled dimensions
            ks = [h if (2 + i) in dims else 1 for i, h in enumerate(x.shape[2:])]
            tr.set_field(out, through_window(rf, ks, ks))
        tr.book(f"global {name}", out, neurons=out.numel(), connections=x.numel())
    return out


_HANDLERS: dict[str, Callable[[_Tracer, str, tuple, dict], Any]] = {
    **dict.fromkeys(("conv1d", "conv2d", "conv3d"), _conv),
    **dict.fromkeys(("conv_transpose1d", "conv_transpose2d", "conv_transpose3d"), _conv_transpose),
    "linear": _linear,
    **dict.fromkeys(("matmul", "__matmul__", "__rmatmul__", "mm", "bmm", "addmm", "baddbmm"), _matmul),
    "scaled_dot_product_attention": _sdpa,
    "multi_head_attention_forward": _mha,
    **dict.fromkeys(
        (
            "max_pool1d",
            "max_pool2d",
            "max_pool3d",
            "_max_pool1d",
            "_max_pool2d",
            "_max_pool3d",
            "max_pool1d_with_indices",
            "max_pool2d_with_indices",
            "max_pool3d_with_indices",
            "avg_pool1d",
            "avg_pool2d",
            "avg_pool3d",
        ),
        _pool,
    ),
    **dict.fromkeys(
        (
            "adaptive_avg_pool1d",
            "adaptive_avg_pool2d",
            "adaptive_avg_pool3d",
            "adaptive_max_pool1d",
            "adaptive_max_pool2d",
            "adaptive_max_pool3d",
            "adaptive_max_pool1d_with_indices",
            "adaptive_max_pool2d_with_indices",
            "adaptive_max_pool3d_with_indices",
        ),
        _adaptive_pool,
    ),
    "interpolate": _interpolate,
    "pad": _pad,
    **dict.fromkeys(("to", "cpu", "cuda", "type_as"), _to),
    **dict.fromkeys(("lstm", "gru", "rnn_tanh", "rnn_relu"), _recurrent),
    "embedding": _embedding,
    **dict.fromkeys(("mean", "sum", "amax", "amin"), _reduction),
}


# Dispatch by function name, in order of precedence: read-only queries, handlers, elementwise
# functions and comparisons, shape-preserving functions; anything else falls back to meta tensors.
_READ, _ELEM, _SAME = object(), object(), object()
_KIND: dict[str, Any] = {
    **dict.fromkeys(_SAME_SHAPE, _SAME),
    **dict.fromkeys(_ELEMENTWISE | _COMPARISONS, _ELEM),
    **_HANDLERS,
    **dict.fromkeys(_READ_ONLY, _READ),
}


def _elementwise_info(name: str) -> tuple[bool, str, bool, bool]:
    """(in place by name, the op booked, a comparison, may merge two activations)."""
    op = name.strip("_")
    op = op[1:] if op in ("iadd", "isub", "imul") else op  # out += identity is a residual add
    return bool(_INPLACE_SUFFIX.match(name)), op, name in _COMPARISONS, op in ("add", "sub", "mul")


_ELEM_INFO = {name: _elementwise_info(name) for name in _ELEMENTWISE | _COMPARISONS}


# ----------------------------------------------------------------------------------------------


def _meta_inputs(input_size: Any, example_inputs: Any, batch_size: int, dtype: torch.dtype) -> list[Any]:
    if (input_size is None) == (example_inputs is None):
        raise ArgumentError(
            "input_size/example_inputs", (input_size, example_inputs), "exactly one of the two"
        )
    if example_inputs is not None:
        items = list(example_inputs) if isinstance(example_inputs, list | tuple) else [example_inputs]
        return [torch.empty_like(t, device="meta") if isinstance(t, torch.Tensor) else t for t in items]
    sizes = [input_size] if all(isinstance(v, int) for v in input_size) else list(input_size)
    for size in sizes:
        if not size or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size):
            raise ArgumentError(
                "input_size",
                input_size,
                "positive integer sizes without the batch dimension, e.g. (3, 112, 112)",
            )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ArgumentError("batch_size", batch_size, "an integer ≥ 1")
    return [_meta((batch_size, *size), dtype) for size in sizes]


def summary(
    model: nn.Module,
    input_size: Sequence[int] | Sequence[Sequence[int]] | None = None,
    *,
    example_inputs: Any = None,
    batch_size: int = 1,
    dtype: torch.dtype = torch.float32,
    ignore: Iterable[str] = (),
    strict: bool = False,
) -> Summary:
    """Count neurons, parameters, MACs and connections of every layer of ``model``, and its receptive fields.

    Give either ``input_size`` (channels first, no batch dimension: ``(3, 112, 112)``, or a list
    of sizes for several inputs; a batch of ``batch_size`` is added) or ``example_inputs``
    (tensors, of which only shapes and dtypes are used). Counts are for the whole batch.
    ``ignore`` may hold ``"bias"`` and ``"batchnorm"``. The model is called once on meta
    tensors and is left unchanged (no moving, no parameter or buffer updates).
    """
    if not isinstance(model, nn.Module):
        raise ArgumentError("model", type(model).__name__, "a torch.nn.Module")
    ignore = frozenset(ignore)
    if not ignore <= set(IGNORABLE):
        raise ArgumentError("ignore", ",".join(sorted(ignore)), "a subset of: " + ", ".join(IGNORABLE))
    inputs = _meta_inputs(input_size, example_inputs, batch_size, dtype)
    tracer = _Tracer(model, ignore)
    lazy = [f"{tracer.names[id(owner)]}.{pname}".lstrip(".")
            for is_lazy, (_, _, pname, owner) in zip(tracer.lazy, tracer.param_info.values(), strict=True)
            if is_lazy]
    if lazy:
        raise ArgumentError("model", f"lazy parameters ({', '.join(lazy[:3])})",
                            "a model whose lazy modules are initialised (run one forward pass first)")
    for x in inputs:
        if isinstance(x, torch.Tensor) and x.is_floating_point() and 3 <= x.dim() <= 5:
            tracer.set_field(x, input_field(x.dim() - 2))
    pre = nn.modules.module.register_module_forward_pre_hook(tracer.pre_hook)
    post = nn.modules.module.register_module_forward_hook(tracer.post_hook, always_call=True)
    try:
        with torch.no_grad(), tracer:
            model(*inputs)
    finally:
        pre.remove()
        post.remove()
    # Parameters of modules never called, or held directly by containers (cls tokens, ...).
    counted = tracer.counted
    for mod_name, module in zip(tracer.names.values(), tracer.modules.values(), strict=True):
        if not module._parameters:
            continue
        own = [p for p in module._parameters.values() if p is not None and id(p) not in counted]
        if own:
            total, trainable = tracer.take_params(own)
            tracer.rows.append(
                LayerRow(
                    mod_name or "(model)",
                    type(module).__name__,
                    None,
                    params=total,
                    trainable_params=trainable,
                    note="not called" if not module._modules else "own parameters",
                )
            )
    not_counted = list(tracer.not_counted)
    if strict and not_counted:
        raise NotCountedError(
            "strict: the model calls operations trainlab cannot count: " + "; ".join(not_counted)
        )
    return Summary(
        tracer.rows, [tuple(x.shape) for x in inputs if isinstance(x, torch.Tensor)], ignore, not_counted
    )
