"""Module trees walked once, and leaf modules whose forward is handed to the tracer directly.

:func:`_named_modules` is ``model.named_modules()`` without a generator per level;
:data:`_FAST_CALLS` maps exact leaf classes to the one torch call their forward makes, which
:class:`_FastForward` gives straight to the tracer during a trace.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from trainlab.convnets.op_tables import _meta

__all__: list[str] = []  # private: used by trainlab.convnets.tracing

_NAMED_MODULES = nn.Module.named_modules

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
# The torch call that the forward of each of these exact classes makes, as (function, args, kwargs),
# or (function, args, kwargs, finish) where the forward returns finish(the call's result):
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


def _recurrent_call(m: Any, x: torch.Tensor) -> tuple | None:
    """``nn.LSTM``/``nn.GRU``/``nn.RNN`` on a batched 3-D input of the weights' dtype with no initial
    state: the zero states their forward makes (meta tensors: zeros on meta hold no values) and its
    one ``_VF`` call, whose (output, final states) it returns as the forward does. Their forward's
    size queries and checks cost a small recurrent model half its trace; anything those checks
    would refuse, and packed or unbatched input, runs the real forward (its own errors)."""
    m._update_flat_weights()  # what the forward does first (weights replaced since: flattened anew)
    weights = m._flat_weights
    if (x.dim() != 3 or x.shape[-1] != m.input_size or not weights or weights[0] is None
            or x.dtype != weights[0].dtype):
        return None
    states = m.num_layers * (2 if m.bidirectional else 1)
    batch = x.shape[0] if m.batch_first else x.shape[1]
    kind = type(m)
    if kind is nn.LSTM:
        hidden = m.proj_size if m.proj_size > 0 else m.hidden_size
        hx: Any = (_meta((states, batch, hidden), x.dtype), _meta((states, batch, m.hidden_size), x.dtype))
        func, finish = torch._VF.lstm, _output_and_states
    elif kind is nn.GRU or m.mode in ("RNN_TANH", "RNN_RELU"):
        hx = _meta((states, batch, m.hidden_size), x.dtype)
        func = torch._VF.gru if kind is nn.GRU else (
            torch._VF.rnn_tanh if m.mode == "RNN_TANH" else torch._VF.rnn_relu)
        finish = _output_and_state
    else:
        return None
    return (func, (x, hx, weights, m.bias, m.num_layers, m.dropout, m.training, m.bidirectional,
                   m.batch_first), None, finish)


def _output_and_states(result: tuple) -> tuple:
    return result[0], result[1:]  # LSTM: output, (h_n, c_n)


def _output_and_state(result: tuple) -> tuple:
    return result[0], result[1]  # GRU, RNN: output, h_n


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
    **dict.fromkeys((nn.LSTM, nn.GRU, nn.RNN), _recurrent_call),
}
_NO_TORCH_FUNCTION = torch._C.DisableTorchFunction


class _FastForward:
    """A leaf module's forward during a trace (set on the instance, removed afterwards): the call from
    :data:`_FAST_CALLS` handed to the tracer. Anything else (more arguments, a tensor subclass, a
    configuration not covered) runs the class's own forward."""

    __slots__ = ("tracer", "module", "call")

    def __init__(self, tracer: TorchFunctionMode, module: nn.Module, call: Any) -> None:
        self.tracer, self.module, self.call = tracer, module, call

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        module = self.module
        if len(args) == 1 and not kwargs and type(args[0]) is torch.Tensor:
            with _NO_TORCH_FUNCTION():
                found = self.call(module, args[0])
                if found is not None:
                    out = self.tracer.__torch_function__(found[0], (), found[1], found[2])
                    return out if len(found) == 3 else found[3](out)
        return type(module).forward(module, *args, **kwargs)


