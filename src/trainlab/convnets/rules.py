"""Per-operation cost rules: the formulas for the layers whose cost is known, and the dispatch table.

Each rule takes the tracer, the function's name and its arguments, books neurons, MACs,
connections and parameters through ``tr.book`` and returns the output as a meta tensor
(shapes only). Formulas and conventions: :mod:`trainlab.convnets.tracer`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from trainlab.convnets.op_tables import (
    _COMPARISONS,
    _ELEMENTWISE,
    _META,
    _READ_ONLY,
    _REARRANGE,
    _SAME_SHAPE,
    Booker,
    _as_meta,
    _bind,
    _broadcast,
    _meta,
    _shape,
    _tuple,
)
from trainlab.convnets.receptive_field import (
    through_upsampling,
)
from trainlab.convnets.window_rules import (
    _adaptive_pool,
    _conv_size,
    _fractional_max_pool,
    _interpolate,
    _pad,
    _pixel_shuffle,
    _pool,
    _reduction,
    _window_field,
)
from trainlab.errors import ShapeError
from trainlab.shapes import (
    conv_transpose_output_size,
)

__all__: list[str] = []  # private: the tracer's rules


# (name, input shape, weight shape, stride, padding, dilation, groups) -> _conv_geometry's answer
_CONV_GEOMETRY: dict[tuple, tuple] = {}


def _conv(tr: Booker, name: str, args: tuple, kwargs: dict) -> torch.Tensor:
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
    tr: Booker, name: str, x: torch.Tensor, w: torch.Tensor,
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
    tr: Booker, name: str, x: torch.Tensor, w: torch.Tensor, bias: Any,
    shape: tuple, numel: int, macs: int, k: tuple, s: tuple, p: tuple, d: tuple,
) -> torch.Tensor:
    out = torch.empty(size=shape, dtype=x.dtype, device=_META)
    rf = tr.image_field(x, len(k))
    if rf is not None:
        tr.set_field(out, _window_field(rf, k, s, p, d))
    tr.book(name, out, neurons=numel, macs=macs, connections=macs, params=(w, bias))
    return out


def _conv_transpose(tr: Booker, name: str, args: tuple, kwargs: dict) -> torch.Tensor:
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


def _linear(tr: Booker, name: str, args: tuple, kwargs: dict) -> torch.Tensor:
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


def _matmul(tr: Booker, name: str, args: tuple, kwargs: dict) -> torch.Tensor:
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


def _sdpa(tr: Booker, name: str, args: tuple, kwargs: dict) -> torch.Tensor:
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


def _mha(tr: Booker, name: str, args: tuple, kwargs: dict) -> Any:
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


def _embedding_bag(tr: Booker, name: str, args: tuple, kwargs: dict) -> torch.Tensor:
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


def _cdist(tr: Booker, name: str, args: tuple, kwargs: dict) -> torch.Tensor:
    """``torch.cdist`` of (…, P, M) and (…, R, M): one squared difference accumulated per pair and
    coordinate, …·P·R·M MACs between activations (FlopCounterMode does not count it)."""
    b = _bind(args, kwargs, ("x1", "x2"), {})
    x1, x2 = b["x1"], b["x2"]
    out = tr.fallback(torch.cdist, name, args, kwargs, counted=True)
    macs = out.numel() * x1.shape[-1]
    tr.book("cdist", out, neurons=out.numel(), macs=macs, connections=macs, params=(x1, x2))
    return out


def _embedding(tr: Booker, name: str, args: tuple, kwargs: dict) -> torch.Tensor:
    b = _bind(args, kwargs, ("input", "weight"), {})
    out = _meta((*b["input"].shape, b["weight"].shape[-1]), b["weight"].dtype)
    tr.book("embedding", out, neurons=out.numel(), params=(b["weight"],))  # a lookup: no MACs
    return out


def _recurrent(tr: Booker, name: str, args: tuple, kwargs: dict) -> Any:
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


def _einsum_field(tr: Booker, equation: str, operands: Sequence[torch.Tensor], out: torch.Tensor) -> None:
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


def _einsum(tr: Booker, name: str, args: tuple, kwargs: dict) -> Any:
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


def _tensordot(tr: Booker, name: str, args: tuple, kwargs: dict) -> Any:
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


def _bilinear(tr: Booker, name: str, args: tuple, kwargs: dict) -> Any:
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


def _no_op(tr: Booker, name: str, args: tuple, kwargs: dict) -> Any:
    """``torch._assert``: a check on sizes (or on values, which a shape-only trace cannot see)."""
    return None


def _to(tr: Booker, name: str, args: tuple, kwargs: dict) -> Any:
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


_HANDLERS: dict[str, Callable[[Booker, str, tuple, dict], Any]] = {
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

