"""Per-operation cost rules: the formulas for the layers whose cost is known, and the dispatch table.

Each rule takes the tracer, the function's name and its arguments, books neurons, MACs,
connections and parameters through ``tr.book`` and returns the output as a meta tensor
(shapes only). Formulas and conventions: :mod:`trainlab.convnets.tracer`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from trainlab.convnets.receptive_field import (
    APPROXIMATE,
    EXACT,
    GLOBAL,
    MISALIGNED,
    VARIES,
    ReceptiveField,
    through_upsampling,
    through_window,
)
from trainlab.errors import ShapeError
from trainlab.shapes import (
    adaptive_pool_windows,
    conv_output_size,
    conv_transpose_output_size,
    pool_output_size,
    upsample_output_size,
)

if TYPE_CHECKING:
    from trainlab.convnets.tracing import _Tracer

__all__: list[str] = []  # private: the tracer's rules

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


# What may sit inside an index or a size argument without hiding a tensor: x[:, 0, None, ...], view(shape).
_INDEX_ITEMS = frozenset((int, bool, slice, type(None), type(Ellipsis)))
_SEQUENCES = frozenset((tuple, list, torch.Size))


def _plain(values: Iterable[Any]) -> bool:
    """Whether ``values`` hold no tensor at all: numbers, names, or tuples of ints and slices."""
    for v in values:
        kind = type(v)
        if kind in _INDEX_ITEMS:
            continue
        if kind in _SEQUENCES and all(type(i) in _INDEX_ITEMS for i in v):
            continue
        return False
    return True


def _flat(values: Iterable[Any]) -> bool:
    """Whether no tensor hides inside a container among ``values`` (leaves, or tuples of ints and
    slices such as an index or a shape): then the tensors are the values themselves."""
    for v in values:
        kind = type(v)
        if kind in _LEAF_TYPES:
            continue
        if kind in _SEQUENCES and all(type(i) in _INDEX_ITEMS for i in v):
            continue
        return False
    return True


def _meta(shape: Sequence[int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    # size= as a keyword: torch.empty's argument parser then skips its overloads (0.9 µs, not 1.4),
    # which is why every empty tensor of the tracer is made this way
    return torch.empty(size=tuple(shape), dtype=dtype, device=_META)


def _as_meta(x: Any) -> Any:
    if isinstance(x, torch.Tensor) and not x.is_meta:
        return x.to(_META)
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
unfold fold cumsum cumprod max min norm sort topk argmax argmin argsort std var logsumexp prod any all
std_mean var_mean count_nonzero _assert_async bernoulli bernoulli_ dropout_ nonzero
_set_grad_enabled is_grad_enabled device _weight_norm _weight_norm_interface norm_except_dim
""".split()
)
_READ_ONLY = frozenset(
    """
__get__ dim size numel __len__ stride is_floating_point is_contiguous is_complex get_device element_size
__format__ __repr__ __hash__
""".split()
)
_FACTORIES = frozenset("zeros ones empty full arange linspace eye rand randn randint".split())
# Free rearrangements of one tensor by sizes, dims or an index: the tracer runs them on the meta tensor
# directly when no other argument is a tensor (``view_as``, a tensor index: the general route).
_REARRANGE = frozenset(
    """
view reshape flatten unflatten permute transpose t contiguous unsqueeze squeeze expand movedim moveaxis
swapaxes swapdims narrow select chunk split unbind split_with_sizes tensor_split __getitem__ repeat tile
flip roll
""".split()
)
assert _REARRANGE <= _FREE
_INPLACE_SUFFIX = re.compile(r"^(__i\w+__|\w+_)$")


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
            rf.extent,
        )
    size, jump, start = [], [], []
    for r, j, s0, ki, si, pi, di in zip(rf.size, rf.jump, rf.start, k, s, p, d, strict=True):
        reach = di * (ki - 1)  # k_eff − 1
        size.append(r + reach * j)
        start.append(s0 + (reach / 2 - pi) * j)
        jump.append(j * si)
    return ReceptiveField(tuple(size), tuple(jump), tuple(start), rf.status, rf.extent)


def _approximate(rf: ReceptiveField) -> ReceptiveField:
    """``rf`` marked approximate (a global or varying field stays what it is)."""
    if rf.status in (GLOBAL, VARIES, MISALIGNED):
        return rf
    return ReceptiveField(rf.size, rf.jump, rf.start, APPROXIMATE, rf.extent)


# (name, input shape, weight shape, stride, padding, dilation, groups) -> _conv_geometry's answer
_CONV_GEOMETRY: dict[tuple, tuple] = {}


def _conv(tr: _Tracer, name: str, args: tuple, kwargs: dict) -> torch.Tensor:
    if len(args) == 7 and not kwargs:  # F.conv2d(input, weight, bias, stride, padding, dilation, groups)
        x, w, bias, stride, padding, dilation, groups = args
        if type(stride) is tuple and type(padding) is tuple and type(dilation) is tuple:
            # the same geometry again (repeated blocks, the next summary): sizes and counts are a pure
            # function of these shapes and settings, worked out once
            key = (name, x.shape, w.shape, stride, padding, dilation, groups)
            hit = _CONV_GEOMETRY.get(key)
            if hit is None:
                hit = _conv_geometry(tr, name, x, w, stride, padding, dilation, groups)
                if len(_CONV_GEOMETRY) >= 4096:
                    _CONV_GEOMETRY.clear()
                _CONV_GEOMETRY[key] = hit
            shape, numel, macs, k, s, p, d = hit
            out = torch.empty(size=shape, dtype=x.dtype, device=_META)
            tr.last = (out, shape)
            rf = tr.image_field(x, len(k)) if tr.fields else None
            if rf is not None:
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
    out = torch.empty(size=shape, dtype=x.dtype, device=_META)
    rf = tr.image_field(x, len(k))
    if rf is not None:
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
    rf = tr.image_field(x, nd)
    if rf is not None:
        reach = [-(-(di * (ki - 1) + 1) // si) - 1 for ki, si, di in zip(k, s, d, strict=True)]
        offset = [(pi - di * (ki - 1) / 2) / si for ki, si, pi, di in zip(k, s, p, d, strict=True)]
        tr.set_field(
            out, through_upsampling(rf, s, reach, offset)
        )
    tr.book(name, out, neurons=math.prod(out_shape), macs=macs, connections=macs, params=(w, b["bias"]))
    return out


def _linear(tr: _Tracer, name: str, args: tuple, kwargs: dict) -> torch.Tensor:
    if len(args) == 3 and not kwargs:  # F.linear(input, weight, bias), as nn.Linear calls it
        x, w, bias = args
    else:
        b = _bind(args, kwargs, ("input", "weight", "bias"), {"bias": None})
        x, w, bias = b["input"], b["weight"], b["bias"]
    if x.shape[-1] != w.shape[-1]:
        raise ShapeError(
            f"layer {tr.where(name)} expects {w.shape[-1]} input features (weight {_shape(w)}) "
            f"but gets {x.shape[-1]} (input {_shape(x)})"
        )
    out = _meta((*x.shape[:-1], w.shape[0]) if w.dim() == 2 else tuple(x.shape[:-1]), x.dtype)
    entry = tr.entry(x)
    if entry is not None and entry[1] is not None and x.dim() - 1 not in entry[1]:
        tr.fields[id(out)] = (out, entry[0], entry[1])  # features last (channels last): the field stays
    elif entry is not None and entry[1] is None and tr.entry(w) is None and tr.entry(bias) is None:
        tr.fields[id(out)] = (out, entry[0], None)  # tokens: x's region, as deriving it would give
    numel = out.numel()
    macs = numel * w.shape[-1]  # n_in·n_out for every row of the input (all leading dimensions)
    tr.book(name, out, neurons=numel, macs=macs, connections=macs, params=(w, bias))
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
    k_batch, v_batch = tuple(k.shape[:-2]), tuple(v.shape[:-2])
    if kwargs.get("enable_gqa") and q.dim() >= 3 and k.dim() >= 3 and v.dim() >= 3:
        # grouped-query attention: each key/value head serves q_heads / kv_heads query heads
        heads = q.shape[-3]
        k_batch, v_batch = (*k_batch[:-1], heads), (*v_batch[:-1], heads)
    try:
        batch = _broadcast([tuple(q.shape[:-2]), k_batch, v_batch])
    except RuntimeError as e:
        raise ShapeError(f"layer {tr.where(name)}: attention of query {_shape(q)}, key {_shape(k)} and value "
                         f"{_shape(v)}: {e}") from None
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
    # projections q, k, v, attention scores and weighted sum over all heads, output projection;
    # add_bias_kv and add_zero_attn each append one key/value position after the projections
    n_att = n_k + (b["bias_k"] is not None) + bool(b["add_zero_attn"])
    macs = batch * (n_q * e * e + n_k * kdim * e + n_k * vdim * e + 2 * n_q * n_att * e + n_q * e * e)
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
    elif name.startswith("lp_pool"):  # (Σ x^p)^(1/p) over the window: avg_pool's windows, no padding
        b = _bind(args, kwargs, ("input", "norm_type", "kernel_size", "stride", "ceil_mode"),
                  {"stride": None, "ceil_mode": False})
    else:
        b = _bind(
            args,
            kwargs,
            ("input", "kernel_size", "stride", "padding", "ceil_mode"),
            {"stride": None, "padding": 0, "ceil_mode": False},
        )
    x = b["input"]
    settings = (b["kernel_size"], b["stride"], b.get("padding", 0), b.get("dilation", 1),
                bool(b["ceil_mode"]))
    key = (name, x.shape, settings)
    try:
        hit = _POOL_GEOMETRY.get(key)
    except TypeError:  # sizes given as lists: not a key
        key = hit = None
    if hit is None:
        hit = _pool_geometry(tr, name, x, *settings)
        if key is not None:
            if len(_POOL_GEOMETRY) >= 4096:
                _POOL_GEOMETRY.clear()
            _POOL_GEOMETRY[key] = hit
    shape, k, s, p, d = hit
    out = _meta(shape, x.dtype)
    rf = tr.image_field(x, len(k))
    if rf is not None:
        tr.set_field(out, _window_field(rf, k, s, p, d))
    numel = out.numel()
    tr.book(
        name.lstrip("_").replace("_with_indices", ""), out, neurons=numel, connections=numel * math.prod(k)
    )
    if is_max and b["return_indices"]:
        return out, _meta(tuple(out.shape), torch.int64)
    return out


# (name, input shape, (kernel, stride, padding, dilation, ceil_mode)) -> _pool_geometry's answer
_POOL_GEOMETRY: dict[tuple, tuple] = {}


def _pool_geometry(tr: _Tracer, name: str, x: torch.Tensor, kernel_size: Any, stride: Any, padding: Any,
                   dilation: Any, ceil_mode: bool) -> tuple:
    """(output shape, k, s, p, d) of a pooling window; raises on bad shapes."""
    nd = int(re.search(r"(\d)d", name).group(1))
    k = _tuple(kernel_size, nd)
    s = _tuple(stride, nd) if stride not in (None, [], ()) else k
    p, d = _tuple(padding, nd), _tuple(dilation, nd)
    where = tr.where(name)
    spatial = tuple(
        pool_output_size(h, ki, si, pi, di, ceil_mode, layer=f"layer {where}")
        for h, ki, si, pi, di in zip(x.shape[-nd:], k, s, p, d, strict=True)
    )
    return (*x.shape[:-nd], *spatial), k, s, p, d


def _adaptive_pool(tr: _Tracer, name: str, args: tuple, kwargs: dict) -> Any:
    b = _bind(args, kwargs, ("input", "output_size", "return_indices"), {"return_indices": False})
    x = b["input"]
    key = (name, x.shape, b["output_size"])
    try:
        hit = _ADAPTIVE_GEOMETRY.get(key)
    except TypeError:  # the output size given as a list: not a key
        key = hit = None
    if hit is None:
        hit = _adaptive_geometry(name, x.shape, b["output_size"])
        if key is not None:
            if len(_ADAPTIVE_GEOMETRY) >= 4096:
                _ADAPTIVE_GEOMETRY.clear()
            _ADAPTIVE_GEOMETRY[key] = hit
    shape, connections, window, step = hit
    out = _meta(shape, x.dtype)
    rf = tr.image_field(x, len(window))
    if rf is not None:
        field_ = through_window(rf, window, step, 0, 1)
        tr.set_field(out, field_ if window == step else _approximate(field_))
    tr.book(name.replace("_with_indices", ""), out, neurons=out.numel(), connections=connections)
    if "max" in name and b["return_indices"]:
        return out, _meta(tuple(out.shape), torch.int64)
    return out


# (name, input shape, output size) -> _adaptive_geometry's answer
_ADAPTIVE_GEOMETRY: dict[tuple, tuple] = {}


def _adaptive_geometry(name: str, x_shape: torch.Size, output_size: Any) -> tuple:
    """(output shape, connections, window, step) of adaptive pooling: equal windows H/H_out when the
    output size divides the input's (window = step), else the widest window and the mean step."""
    nd = int(re.search(r"(\d)d", name).group(1))
    wanted = _tuple(output_size, nd)
    sizes = tuple(x_shape[-nd:])
    spatial = tuple(h if o is None else int(o) for h, o in zip(sizes, wanted, strict=True))
    windows = [adaptive_pool_windows(h, o) for h, o in zip(sizes, spatial, strict=True)]
    links_per_channel = math.prod(sum(e - s for s, e in w) for w in windows)
    connections = math.prod(x_shape[:-nd]) * links_per_channel
    if all(h % o == 0 for h, o in zip(sizes, spatial, strict=True)):
        window = step = tuple(h // o for h, o in zip(sizes, spatial, strict=True))
    else:
        window = tuple(max(e - s for s, e in w) for w in windows)
        step = tuple(h / o for h, o in zip(sizes, spatial, strict=True))
    return (*x_shape[:-nd], *spatial), connections, window, step


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
    rf = tr.image_field(x, nd)
    if rf is not None:
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


def _embedding_bag(tr: _Tracer, name: str, args: tuple, kwargs: dict) -> torch.Tensor:
    """``nn.EmbeddingBag``: one row per bag (2-D input: its rows; 1-D: one per offset), a lookup and
    a sum or mean of rows: no MACs, as for ``embedding``."""
    b = _bind(args, kwargs, ("input", "weight", "offsets", "max_norm", "norm_type", "scale_grad_by_freq",
                             "mode", "sparse", "per_sample_weights", "include_last_offset", "padding_idx"),
              {"offsets": None, "include_last_offset": False})
    x, weight, offsets = b["input"], b["weight"], b["offsets"]
    if x.dim() == 2:
        bags = x.shape[0]
    elif isinstance(offsets, torch.Tensor) and offsets.dim() == 1:
        bags = offsets.shape[0] - (1 if b["include_last_offset"] else 0)
    else:
        # torch raises the usual error
        return tr.fallback(torch.nn.functional.embedding_bag, name, args, kwargs, counted=True)
    out = _meta((bags, weight.shape[-1]), weight.dtype)
    tr.book("embedding_bag", out, neurons=out.numel(), params=(weight,))
    return out


def _cdist(tr: _Tracer, name: str, args: tuple, kwargs: dict) -> torch.Tensor:
    """``torch.cdist`` of (…, P, M) and (…, R, M): one squared difference accumulated per pair and
    coordinate, …·P·R·M MACs between activations (FlopCounterMode does not count it)."""
    b = _bind(args, kwargs, ("x1", "x2"), {})
    x1, x2 = b["x1"], b["x2"]
    out = tr.fallback(torch.cdist, name, args, kwargs, counted=True)
    macs = out.numel() * x1.shape[-1]
    tr.book("cdist", out, neurons=out.numel(), macs=macs, connections=macs, params=(x1, x2))
    return out


def _embedding(tr: _Tracer, name: str, args: tuple, kwargs: dict) -> torch.Tensor:
    b = _bind(args, kwargs, ("input", "weight"), {})
    out = _meta((*b["input"].shape, b["weight"].shape[-1]), b["weight"].dtype)
    tr.book("embedding", out, neurons=out.numel(), params=(b["weight"],))  # a lookup: no MACs
    return out


def _recurrent(tr: _Tracer, name: str, args: tuple, kwargs: dict) -> Any:
    """``nn.LSTM``/``nn.GRU``/``nn.RNN``: every weight matrix (input-to-hidden, hidden-to-hidden,
    projection) multiplies one vector per time step and sequence: MACs = T·B·Σ numel(W).

    The outputs' shapes are worked out, not run (running the cell step by step on meta tensors
    costs T steps of every gate): output (…, D·H_out) with D = 2 when bidirectional, and the final
    states the shapes of the initial ones.
    """
    x, hx, weights = args[0], args[1], args[2] if len(args) > 2 else None
    if (kwargs or len(args) != 9 or not isinstance(weights, list | tuple)
            or not isinstance(x, torch.Tensor) or isinstance(hx, torch.Tensor) == (name == "lstm")):
        return tr.fallback(getattr(torch._VF, name), name, args, kwargs)  # packed sequences: not counted
    states = tuple(hx) if name == "lstm" else (hx,)
    directions = 2 if args[7] else 1
    out = _meta((*x.shape[:-1], directions * states[0].shape[-1]), x.dtype)
    final = tuple(_meta(tuple(h.shape), h.dtype) for h in states)
    steps = x.numel() // x.shape[-1]  # T·B
    macs = steps * sum(w.numel() for w in weights if isinstance(w, torch.Tensor) and w.dim() == 2)
    tr.book(name, out, neurons=out.numel(), macs=macs, connections=macs, params=weights)
    return (out, *final)


def _einsum_macs(equation: str, shapes: Sequence[tuple[int, ...]]) -> int | None:
    """The multiply-accumulates of the matrix products ``torch.einsum`` runs for a contraction of
    ≥ 2 operands (what ``FlopCounterMode`` counts), or None where this short form does not apply
    (``…``, a letter repeated in one operand, sizes that broadcast, opt_einsum's reordering).

    torch first sums out the letters that only one operand has and the output lacks (free), then
    contracts the operands left to right: a pair sharing letters that nothing later needs is one
    batched matrix product costing the product of every letter size of the two; a pair with no such
    letter is an elementwise product (no accumulation: 0). 'ij,jk,kl->il' costs ij·k + ik·l, as
    ``x @ A @ B`` does; 'bchw,cd->bdhw' costs b·c·h·w·d.
    """
    equation = equation.replace(" ", "")
    if "..." in equation:
        return None
    lhs, _, rhs = equation.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes) or any(len(t) != len(set(t)) or len(t) != len(sh)
                                         for t, sh in zip(terms, shapes, strict=True)):
        return None
    if "->" not in equation:  # implicit output: the letters seen once, in alphabetical order
        rhs = "".join(sorted(c for c in set(lhs) - {","} if lhs.count(c) == 1))
    if len(terms) > 2 and torch.backends.opt_einsum.is_available() and torch.backends.opt_einsum.enabled:
        return None
    sizes: dict[str, int] = {}
    for term, shape in zip(terms, shapes, strict=True):
        for letter, n in zip(term, shape, strict=True):
            if sizes.setdefault(letter, n) != n:
                return None  # a broadcast letter: left to the counter
    # A letter of size 1 adds no work (torch squeezes it away; a sum over it is no accumulation).
    ops = [{c for c in t if sizes[c] != 1} for t in terms]
    out = {c for c in rhs if sizes.get(c) != 1}
    for i, letters in enumerate(ops):  # letters no other operand and not the output has: summed out
        others = out.union(*(o for j, o in enumerate(ops) if j != i))
        ops[i] = letters & others
    macs, current = 0, ops[0]
    for i in range(1, len(ops)):
        right = ops[i]
        later = out.union(*ops[i + 1:])
        summed = (current & right) - later
        union = current | right
        if summed:
            macs += math.prod(sizes[c] for c in union)
        current = union - summed
    return macs


def _einsum_run(equation: str, operands: Sequence[torch.Tensor]) -> tuple[torch.Tensor, int]:
    """The output of a contraction on meta tensors and its MACs: :func:`_einsum_macs`'s short form,
    or ``FlopCounterMode`` itself where that does not apply (the same count)."""
    metas = [_as_meta(o) for o in operands]
    macs = _einsum_macs(equation, [tuple(o.shape) for o in operands])
    if macs is not None:
        return torch.einsum(equation, *metas), macs
    from torch.utils.flop_counter import FlopCounterMode  # its first use costs about a second

    counter = FlopCounterMode(display=False)
    with counter:
        out = torch.einsum(equation, *metas)
    return out, counter.get_total_flops() // 2


def _einsum_field(tr: _Tracer, equation: str, operands: Sequence[torch.Tensor], out: torch.Tensor) -> None:
    """An einsum that carries an operand's spatial indices to the output untouched (a channel mix
    'bchw,cd->bdhw') keeps its field; anything else mixes them (the rule's caller derives a region)."""
    if "..." in equation or "->" not in equation:
        return
    lhs, rhs = equation.replace(" ", "").split("->")
    terms = lhs.split(",")
    tracked = [(i, e) for i, e in enumerate(tr.entry(o) for o in operands) if e is not None]
    if len(tracked) != 1 or tracked[0][1][1] is None:
        return
    i, (rf, axes) = tracked[0]
    letters = [terms[i][a] for a in axes]
    others = "".join(t for j, t in enumerate(terms) if j != i)
    if any(letter in others or letter not in rhs for letter in letters):
        return
    tr.fields[id(out)] = (out, rf, tuple(rhs.index(letter) for letter in letters))


# (equation, (shape, strides, dtype) of each operand) -> (output shape, strides, dtype, MACs): the meta
# kernel of a contraction costs 30 µs and more
_EINSUM: dict[tuple, tuple] = {}


def _einsum(tr: _Tracer, name: str, args: tuple, kwargs: dict) -> Any:
    equation = args[0] if args else kwargs.get("equation")
    operands = args[1:] if len(args) > 1 else tuple(kwargs.get("operands", ()))
    if len(operands) == 1 and isinstance(operands[0], list | tuple):
        operands = tuple(operands[0])
    if not isinstance(equation, str) or not all(isinstance(o, torch.Tensor) for o in operands):
        return tr.fallback(torch.einsum, name, args, kwargs)  # the sublist form: not counted
    if len(operands) > 1:  # a contraction: its output and MACs remembered by operand layout
        key = (equation, *((o.shape, o.stride(), o.dtype) for o in operands))
        hit = _EINSUM.get(key)
        if hit is None:
            out, macs = _einsum_run(equation, operands)
            hit = (out.shape, out.stride(), out.dtype, macs)
            if len(_EINSUM) >= 4096:
                _EINSUM.clear()
            _EINSUM[key] = hit
        shape, stride, dtype, macs = hit
        out = torch.empty_strided(shape, stride, dtype=dtype, device=_META)
    else:  # one operand is a permutation, a trace or a sum (maybe a view of it): no multiplications
        out = torch.einsum(equation, *(_as_meta(o) for o in operands))
        macs = 0
    _einsum_field(tr, equation, operands, out)
    tr.book("einsum", out, neurons=out.numel() if macs else 0, macs=macs, connections=macs, params=operands)
    return out


def _tensordot(tr: _Tracer, name: str, args: tuple, kwargs: dict) -> Any:
    b = _bind(args, kwargs, ("a", "b", "dims"), {"dims": 2})
    a, m, dims = b["a"], b["b"], b["dims"]
    out = torch.tensordot(_as_meta(a), _as_meta(m), dims)
    if isinstance(dims, int):
        contracted = set(range(dims))
    elif isinstance(dims, torch.Tensor):
        contracted = ({int(v) % m.dim() for v in dims[1].tolist()} if dims.dim() == 2
                      else set(range(int(dims))))
    else:
        second = dims[1]
        contracted = {int(v) % m.dim() for v in (second if isinstance(second, list | tuple) else [second])}
    # a's every element meets every free element of b once: Π a.shape · Π (free sizes of b)
    macs = a.numel() * math.prod(n for i, n in enumerate(m.shape) if i not in contracted)
    tr.book("tensordot", out, neurons=out.numel(), macs=macs, connections=macs, params=(a, m))
    return out


def _bilinear(tr: _Tracer, name: str, args: tuple, kwargs: dict) -> Any:
    """``nn.Bilinear``: y_k = x1ᵀ W_k x2 + b_k, the contraction 'bi,kij,bj->bk': rows·out·in1·in2 MACs."""
    b = _bind(args, kwargs, ("input1", "input2", "weight", "bias"), {"bias": None})
    x1, x2, w = b["input1"], b["input2"], b["weight"]
    if x1.shape[-1] != w.shape[1] or x2.shape[-1] != w.shape[2]:
        raise ShapeError(f"layer {tr.where(name)} expects inputs of {w.shape[1]} and {w.shape[2]} features "
                         f"(weight {_shape(w)}) but gets {_shape(x1)} and {_shape(x2)}")
    out = _meta((*x1.shape[:-1], w.shape[0]), x1.dtype)
    macs = out.numel() * w.shape[1] * w.shape[2]
    tr.book("bilinear", out, neurons=out.numel(), macs=macs, connections=macs, params=(w, b["bias"]))
    return out


def _fractional_max_pool(tr: _Tracer, name: str, args: tuple, kwargs: dict) -> Any:
    """Pseudo-random windows of size k with an average stride H/H_out: k^d links per output; the field
    is approximate (largest window, average jump)."""
    b = _bind(args, kwargs, ("input", "kernel_size", "output_size", "output_ratio", "return_indices",
                             "_random_samples"), {"output_size": None, "output_ratio": None,
                                                  "return_indices": False})
    x = b["input"]
    nd = int(re.search(r"(\d)d", name).group(1))
    k = _tuple(b["kernel_size"], nd)
    if b["output_size"] is not None:
        spatial = tuple(int(o) for o in _tuple(b["output_size"], nd))
    else:
        spatial = tuple(int(h * float(r)) for h, r in zip(x.shape[-nd:], _tuple(b["output_ratio"], nd),
                                                           strict=True))
    out = _meta((*x.shape[:-nd], *spatial), x.dtype)
    rf = tr.image_field(x, nd)
    if rf is not None:
        steps = [h / o for h, o in zip(x.shape[-nd:], spatial, strict=True)]
        f = through_window(rf, k, steps)
        tr.set_field(out, _approximate(f))
    tr.book("fractional_max_pool", out, neurons=out.numel(), connections=out.numel() * math.prod(k))
    if "indices" in name or b["return_indices"]:
        return out, _meta(tuple(out.shape), torch.int64)
    return out


def _pixel_shuffle(tr: _Tracer, name: str, args: tuple, kwargs: dict) -> Any:
    """Depth to space (nearest upsampling of the field by r) and space to depth (an r×r window of
    stride r): rearrangements, no MACs and no neurons of their own."""
    x = args[0] if args else kwargs["input"]
    r = int(args[1] if len(args) > 1 else kwargs.get("upscale_factor", kwargs.get("downscale_factor")))
    out = getattr(torch.nn.functional, name)(_as_meta(x), r)
    if name == "pixel_shuffle":
        tr.follow(x, out, 2, lambda rf: through_upsampling(rf, [r, r], [0, 0], [0.5 / r - 0.5] * 2))
    else:
        tr.follow(x, out, 2, lambda rf: through_window(rf, r, r))
    return out


def _no_op(tr: _Tracer, name: str, args: tuple, kwargs: dict) -> Any:
    """``torch._assert``: a check on sizes (or on values, which a shape-only trace cannot see)."""
    return None


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
    entry = tr.entry(x)
    if entry is not None:
        tr.fields[id(out)] = (out, entry[0], entry[1])
    return out


def _pad(tr: _Tracer, name: str, args: tuple, kwargs: dict) -> torch.Tensor:
    """Explicit padding (``F.pad``; convolutions with ``padding_mode`` other than zeros): free, and
    the field of output unit 0 starts ``left``·jump earlier."""
    b = _bind(args, kwargs, ("input", "pad", "mode", "value"), {"mode": "constant", "value": None})
    x, pads = b["input"], tuple(b["pad"])
    out = torch.nn.functional.pad(_as_meta(x), pads, b["mode"], b["value"])
    rf = tr.image_field(x, x.dim() - 2) if x.dim() > 2 else None
    entry = tr.entry(x)
    if rf is None and entry is not None and entry[1] is not None:
        padded = range(x.dim() - len(pads) // 2, x.dim())
        if not set(padded) & set(entry[1]):  # padding channels (channels last): the field stays
            tr.fields[id(out)] = (out, entry[0], entry[1])
    if rf is not None and len(pads) // 2 <= rf.ndim:
        left = [0] * rf.ndim
        for i in range(len(pads) // 2):  # pads come last dimension first: (left_W, right_W, left_H, ...)
            left[rf.ndim - 1 - i] = pads[2 * i]
        start = tuple(st - lp * j for st, lp, j in zip(rf.start, left, rf.jump, strict=True))
        # circular, reflect and replicate padding copy real pixels into the border: an edge unit
        # also sees pixels elsewhere (the far side, for circular), so the field is approximate there
        status = rf.status if b["mode"] == "constant" or rf.status != EXACT else APPROXIMATE
        tr.set_field(out, ReceptiveField(rf.size, rf.jump, start, status, rf.extent))
    return out


def _reduction(tr: _Tracer, name: str, args: tuple, kwargs: dict) -> Any:
    """``mean``/``sum``/``amax``/``amin``: global pooling when taken over an image's spatial
    dimensions (one link per input), otherwise statistics of a normalisation (free)."""
    out = tr.fallback(getattr(torch.Tensor, name), name, args, kwargs, counted=True)
    x = args[0]
    dims = args[1] if len(args) > 1 else kwargs.get("dim")
    rf = tr.image_field(x, x.dim() - 2) if x.dim() > 2 else None
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
    **dict.fromkeys(("matmul", "__matmul__", "__rmatmul__", "mm", "bmm", "addmm", "baddbmm", "mv", "dot"),
                    _matmul),
    "embedding_bag": _embedding_bag,
    "cdist": _cdist,
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
    "einsum": _einsum,
    "tensordot": _tensordot,
    "bilinear": _bilinear,
    **dict.fromkeys(("lp_pool1d", "lp_pool2d", "lp_pool3d"), _pool),
    **dict.fromkeys(("fractional_max_pool2d", "fractional_max_pool3d", "fractional_max_pool2d_with_indices",
                     "fractional_max_pool3d_with_indices", "_fractional_max_pool2d",
                     "_fractional_max_pool3d"), _fractional_max_pool),
    **dict.fromkeys(("pixel_shuffle", "pixel_unshuffle"), _pixel_shuffle),
    **dict.fromkeys(("_assert", "_assert_async"), _no_op),
    **dict.fromkeys(("mean", "sum", "amax", "amin"), _reduction),
}


# Dispatch by function name, in order of precedence: read-only queries, handlers, elementwise
# functions and comparisons, shape-preserving functions; anything else falls back to meta tensors.
_READ, _ELEM, _SAME, _MOVE = object(), object(), object(), object()
_KIND: dict[str, Any] = {
    **dict.fromkeys(_REARRANGE, _MOVE),
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
