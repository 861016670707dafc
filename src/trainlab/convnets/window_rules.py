"""Cost rules of window layers: pooling (max, average, adaptive, fractional, LP), upsampling,
padding, pixel shuffle and global reductions, with the window geometry that convolutions share.

Each rule takes the tracer, the function's name and its arguments, books through ``tr.book`` and
returns the output as a meta tensor. Formulas and conventions: :mod:`trainlab.convnets.tracer`.
"""

from __future__ import annotations

import math
import re
from typing import Any

import torch

from trainlab.convnets.op_tables import Booker, _as_meta, _bind, _meta, _tuple
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
from trainlab.shapes import (
    adaptive_pool_windows,
    conv_output_size,
    pool_output_size,
    upsample_output_size,
)

__all__: list[str] = []  # private: the tracer's rules


def _conv_size(h: Any, k: Any, s: Any, p: Any, d: Any, tr: Booker, name: str) -> int:
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



def _pool(tr: Booker, name: str, args: tuple, kwargs: dict) -> Any:
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


def _pool_geometry(tr: Booker, name: str, x: torch.Tensor, kernel_size: Any, stride: Any, padding: Any,
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


def _adaptive_pool(tr: Booker, name: str, args: tuple, kwargs: dict) -> Any:
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


def _interpolate(tr: Booker, name: str, args: tuple, kwargs: dict) -> torch.Tensor:
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


def _fractional_max_pool(tr: Booker, name: str, args: tuple, kwargs: dict) -> Any:
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


def _pixel_shuffle(tr: Booker, name: str, args: tuple, kwargs: dict) -> Any:
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


def _pad(tr: Booker, name: str, args: tuple, kwargs: dict) -> torch.Tensor:
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


def _reduction(tr: Booker, name: str, args: tuple, kwargs: dict) -> Any:
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


