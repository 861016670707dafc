"""The course's network spec language, turned into a real ``nn.Module``.

A spec is a comma-separated list of layers, read left to right from an input given
channels first (``3x112x112``)::

    conv3-64, maxpool, conv3-128, maxpool, conv3-256, conv3-256, maxpool, fc-1024, fc-100

Accepted tokens (case-insensitive):

==================  ===========================================================================
``conv<k>-<C>``     k×k convolution to C channels, stride 1, 'same' padding ⌊(k − 1)/2⌋
``conv<k>-<C>/<s>`` the same with stride s
``convT<k>-<C>/<s>`` transposed convolution to C channels that multiplies the size by s
                    (default 2); padding and output_padding are solved for
``maxpool[<k>[/<s>]]``, ``avgpool[<k>[/<s>]]``  k×k pooling (default 2), stride s (default k)
``fc-<n>``          fully connected layer to n units (the first one flattens its input)
``relu``, ``bn``    ReLU; batch norm (2-d after convolutions, 1-d after fc)
``upsample[<f>]``   nearest upsampling by f (default 2)
==================  ===========================================================================

:func:`hand_counts` is the course's by-hand table (neurons, parameters, connections per
layer from closed forms), computed without tracing, as an independent check of the tracer.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from trainlab.errors import ArgumentError, ShapeError, SpecError
from trainlab.shapes import (
    conv_output_size,
    conv_transpose_output_size,
    pool_output_size,
    solve_padding,
    upsample_output_size,
)

__all__ = ["ACCEPTED", "SpecLayer", "build_from_spec", "hand_counts", "parse_spec"]

ACCEPTED = (
    "conv<k>-<C>[/<s>], convT<k>-<C>[/<s>], maxpool[<k>[/<s>]], avgpool[<k>[/<s>]], fc-<n>, "
    "relu, bn, upsample[<f>]"
)

#: Largest kernel, channel count, stride or factor a spec token may hold (2^31).
_MAX_SIZE = 2**31
_PATTERNS = [
    ("convT", re.compile(r"convt(?P<k>\d+)-(?P<c>\d+)(?:/(?P<s>\d+))?")),
    ("conv", re.compile(r"conv(?P<k>\d+)-(?P<c>\d+)(?:/(?P<s>\d+))?")),
    ("maxpool", re.compile(r"maxpool(?:(?P<k>\d+)(?:/(?P<s>\d+))?)?")),
    ("avgpool", re.compile(r"avgpool(?:(?P<k>\d+)(?:/(?P<s>\d+))?)?")),
    ("fc", re.compile(r"fc-(?P<c>\d+)")),
    ("relu", re.compile(r"relu")),
    ("bn", re.compile(r"bn")),
    ("upsample", re.compile(r"upsample(?P<f>\d+)?")),
]


@dataclass(frozen=True)
class SpecLayer:
    """One parsed token: ``kind`` with its kernel, channels/units, stride or factor."""

    kind: str
    token: str
    position: int
    kernel: int = 0
    channels: int = 0
    stride: int = 1
    factor: int = 2


def parse_spec(spec: str) -> list[SpecLayer]:
    """Parse a spec string into layers; a bad token raises :class:`SpecError` naming it and its position."""
    if not isinstance(spec, str) or not spec.strip():
        raise SpecError(
            f"spec={spec!r} is empty: expected comma-separated layers such as "
            f"'conv3-64, maxpool, fc-10' ({ACCEPTED})"
        )
    layers: list[SpecLayer] = []
    offset = 0
    for i, raw in enumerate(spec.split(","), start=1):
        token = raw.strip()
        column = offset + (len(raw) - len(raw.lstrip())) + 1
        offset += len(raw) + 1
        text = token.lower()
        for kind, pattern in _PATTERNS:
            m = pattern.fullmatch(text)
            if m is None:
                continue
            g = {key: int(v) for key, v in m.groupdict().items() if v is not None}
            for key, label in (
                ("k", "kernel size"),
                ("c", "channel/unit count"),
                ("s", "stride"),
                ("f", "upsampling factor"),
            ):
                if key in g and g[key] < 1:
                    raise SpecError(
                        f"spec token {i} {token!r} (at character {column}): the {label} must be at least 1"
                    )
                if key in g and g[key] >= _MAX_SIZE:  # torch sizes are 64-bit; a network this wide is a typo
                    raise SpecError(
                        f"spec token {i} {token!r} (at character {column}): the {label} must be below "
                        f"{_MAX_SIZE:,}"
                    )
            k = g.get("k", 2 if kind.endswith("pool") else 0)
            default_stride = k if kind.endswith("pool") else (2 if kind == "convT" else 1)
            layers.append(
                SpecLayer(
                    kind,
                    token,
                    i,
                    kernel=k,
                    channels=g.get("c", 0),
                    stride=g.get("s", default_stride),
                    factor=g.get("f", 2),
                )
            )
            break
        else:
            shown = repr(token) if token else "(empty)"
            raise SpecError(
                f"spec token {i} {shown} (at character {column}) is not a layer: expected one of {ACCEPTED}"
            )
    return layers


def _check_input(input_size: Sequence[int]) -> tuple[int, int, int]:
    size = tuple(input_size)
    if len(size) != 3 or not all(isinstance(v, int) and v > 0 for v in size):
        raise ArgumentError("--input", "x".join(map(str, size)), "channels×height×width, e.g. 3x112x112")
    return size  # type: ignore[return-value]


def build_from_spec(spec: str | Sequence[SpecLayer], input_size: Sequence[int]) -> nn.Sequential:
    """The ``nn.Sequential`` a spec describes, for inputs of ``input_size`` = (C, H, W).

    Layers are named ``conv1, pool1, fc1, …`` by kind. Sizes are followed through the network
    so that fully connected layers get the right number of inputs and transposed convolutions
    the padding that multiplies the size by their stride; sizes that cannot be realised raise
    :class:`ShapeError` naming the token.
    """
    layers = parse_spec(spec) if isinstance(spec, str) else list(spec)
    c, h, w = _check_input(input_size)
    flat: int | None = None  # number of features once flattened
    modules: OrderedDict[str, nn.Module] = OrderedDict()
    counters: dict[str, int] = {}

    def name(prefix: str) -> str:
        counters[prefix] = counters.get(prefix, 0) + 1
        return f"{prefix}{counters[prefix]}"

    for layer in layers:
        where = f"spec token {layer.position} {layer.token!r}"
        if flat is not None and layer.kind not in ("fc", "relu", "bn"):
            raise SpecError(
                f"{where}: a {layer.kind} layer cannot follow a fully connected layer "
                "(the activations are flat); expected fc-<n>, relu or bn"
            )
        if layer.kind == "conv":
            p = (layer.kernel - 1) // 2
            h, w = (conv_output_size(v, layer.kernel, layer.stride, p, layer=where) for v in (h, w))
            modules[name("conv")] = nn.Conv2d(c, layer.channels, layer.kernel, layer.stride, p)
            c = layer.channels
        elif layer.kind == "convT":
            try:
                sols = [
                    solve_padding(v, v * layer.stride, layer.kernel, layer.stride, transposed=True)[0]
                    for v in (h, w)
                ]
            except ShapeError as e:
                raise ShapeError(f"{where}: {e}") from None
            if sols[0] != sols[1]:
                raise ShapeError(
                    f"{where}: height {h} and width {w} need different paddings; use a square input"
                )
            p, op = sols[0]
            h, w = (
                conv_transpose_output_size(v, layer.kernel, layer.stride, p, 1, op, layer=where)
                for v in (h, w)
            )
            modules[name("convT")] = nn.ConvTranspose2d(c, layer.channels, layer.kernel, layer.stride, p, op)
            c = layer.channels
        elif layer.kind in ("maxpool", "avgpool"):
            h, w = (pool_output_size(v, layer.kernel, layer.stride, layer=where) for v in (h, w))
            pool = nn.MaxPool2d if layer.kind == "maxpool" else nn.AvgPool2d
            modules[name("pool")] = pool(layer.kernel, layer.stride)
        elif layer.kind == "upsample":
            h, w = (upsample_output_size(v, layer.factor, layer=where) for v in (h, w))
            modules[name("up")] = nn.Upsample(scale_factor=layer.factor, mode="nearest")
        elif layer.kind == "fc":
            if flat is None:
                flat = c * h * w
                modules["flatten"] = nn.Flatten()
            modules[name("fc")] = nn.Linear(flat, layer.channels)
            flat = layer.channels
        elif layer.kind == "relu":
            modules[name("relu")] = nn.ReLU()
        elif layer.kind == "bn":
            modules[name("bn")] = nn.BatchNorm1d(flat) if flat is not None else nn.BatchNorm2d(c)
    return nn.Sequential(modules)


def hand_counts(spec: str | Sequence[SpecLayer], input_size: Sequence[int]) -> list[dict[str, object]]:
    """The course's by-hand table: per layer (C, H, W) out, neurons, parameters, connections.

    Closed forms (CLAIMS.md §3), no tracing: conv k×k, C_in → C_out on an H'×W' output:
    neurons C_out·H'·W', parameters (k²·C_in + 1)·C_out, connections k²·C_in·C_out·H'·W';
    pooling k×k: neurons C·H'·W', connections k²·C·H'·W'; fc n_in → n_out: neurons n_out,
    parameters (n_in + 1)·n_out, connections n_in·n_out; nearest upsampling: one connection
    per output; transposed conv: k²·C_in·C_out·H·W connections (per input position); batch
    norm: 2C parameters; ReLU: nothing.
    """
    layers = parse_spec(spec) if isinstance(spec, str) else list(spec)
    c, h, w = _check_input(input_size)
    flat: int | None = None
    rows: list[dict[str, object]] = []
    for layer in layers:
        k = layer.kernel
        if layer.kind == "conv":
            h2, w2 = ((v + 2 * ((k - 1) // 2) - k) // layer.stride + 1 for v in (h, w))
            row = (
                layer.channels * h2 * w2,
                (k * k * c + 1) * layer.channels,
                k * k * c * layer.channels * h2 * w2,
            )
            c, h, w = layer.channels, h2, w2
        elif layer.kind == "convT":
            row = (
                layer.channels * h * w * layer.stride**2,
                (k * k * c + 1) * layer.channels,
                k * k * c * layer.channels * h * w,
            )
            c, h, w = layer.channels, h * layer.stride, w * layer.stride
        elif layer.kind in ("maxpool", "avgpool"):
            h, w = ((v - k) // layer.stride + 1 for v in (h, w))
            row = (c * h * w, 0, k * k * c * h * w)
        elif layer.kind == "upsample":
            h, w = h * layer.factor, w * layer.factor
            row = (c * h * w, 0, c * h * w)
        elif layer.kind == "fc":
            n_in = c * h * w if flat is None else flat
            row = (layer.channels, (n_in + 1) * layer.channels, n_in * layer.channels)
            flat = layer.channels
        elif layer.kind == "bn":
            row = (0, 2 * (flat if flat is not None else c), 0)
        else:
            row = (0, 0, 0)
        shape = (flat,) if flat is not None else (c, h, w)
        rows.append(
            {
                "token": layer.token,
                "kind": layer.kind,
                "output": shape,
                "neurons": row[0],
                "params": row[1],
                "connections": row[2],
            }
        )
    return rows
