"""The network accountant: per-layer neurons, parameters, MACs, connections and receptive fields.

:func:`summary` traces any ``nn.Module`` on a shape-only input and returns a :class:`Summary`
with one :class:`LayerRow` per layer. It never runs the real computation and never touches
the user's model: the inputs are tensors on PyTorch's ``meta`` device (shapes, no data),
and every torch function the model calls is intercepted by a ``TorchFunctionMode``. Layers
with a known cost (convolution, transposed convolution, linear, matmul, einsum, attention,
recurrent layers, pooling, upsampling, embedding) are answered by formula
(:mod:`trainlab.convnets.rules`); shape-preserving ones (activations,
batch norm, dropout, residual adds) by broadcasting; views by running them on meta
tensors. In-place updates of the model's own tensors (batch norm's running statistics and
batch counter) are skipped, so parameters and buffers are left exactly as they were. The
cost of a trace therefore depends on the number of layers, not on the input size or the
number of parameters. The model is traced in eval mode (as at inference: no stochastic depth,
no auxiliary heads) unless ``training=True``. The pieces, imported one way:
:mod:`trainlab.convnets.tracing` (the interception) uses :mod:`~trainlab.convnets.field_book`
(receptive fields carried through views and merges), :mod:`~trainlab.convnets.fast_forward`
(leaf modules answered directly) and :mod:`~trainlab.convnets.rules` (the cost of each
operation; window layers in :mod:`~trainlab.convnets.window_rules`), which rest on
:mod:`~trainlab.convnets.op_tables` (which functions are elementwise, free, views, ...);
:mod:`trainlab.convnets.table` holds the result and its formats.

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
  n_in·n_out per row of the input; matmul (…, n, k)@(…, k, m): n·k·m per batch entry;
  einsum of two or more operands: the matrix products torch runs for it (letters only one
  operand has are summed out first, then the operands are contracted left to right; a pair
  sharing every index costs the product of all index sizes, ``bchw,cd->bdhw``: b·c·h·w·d, and
  ``ij,jk,kl->il`` costs ij·k + ik·l as ``x @ A @ B`` does); tensordot: the product of the
  sizes of every index, free and contracted; ``mv``/``dot`` as matmul; ``cdist`` of
  (…, P, M) and (…, R, M): …·P·R·M (FlopCounterMode does not count it); bilinear rows·out·in1·in2; recurrent
  layers T·B·Σ numel(W). Rearrangements (pixel shuffle, unfold, views), ``torch._assert``,
  grad-mode switches, weight norm's weight and embedding lookups (``embedding_bag`` too) cost
  nothing.
* **connections**: input→output links: the MACs of the layers above plus pooling windows
  (k^d·C·output positions), adaptive pooling (the exact window sizes), upsampling (one link
  per output for nearest, 2^d for (bi/tri)linear, 16 for bicubic), and global pooling by
  ``mean``/``sum``/``amax`` over spatial dimensions (one link per input).
* **receptive fields** (:mod:`trainlab.convnets.receptive_field`) follow the spatial axes
  through permutes (channels-last blocks), reshapes that keep or split them (channel
  shuffle, space-to-depth), slices and channels-last linears; where branches meet the
  field is their hull, and a gate broadcast from global pooling makes it global.

Anything else that is not a view or an elementwise function is listed in
:attr:`Summary.not_counted` ("not counted: …"); ``strict=True`` raises
:class:`NotCountedError` instead.

>>> from torch import nn
>>> s = summary(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)), (3, 32, 32))
>>> [(r.name, r.neurons, r.params, r.connections) for r in s.rows]
[('0', 8192, 224, 221184), ('1', 0, 0, 0), ('2', 2048, 0, 8192)]
"""


from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

from trainlab.convnets.op_tables import _meta
from trainlab.convnets.receptive_field import input_field
from trainlab.convnets.table import CONVENTIONS, LayerRow, Summary
from trainlab.convnets.tracing import _Tracer
from trainlab.errors import ArgumentError, TrainlabError

__all__ = [
    "CONVENTIONS",
    "IGNORABLE",
    "LayerRow",
    "NotCountedError",
    "Summary",
    "parse_size",
    "summary",
]

#: Frame module calls by global hooks instead of forward wrappers (the reference the tests compare with).
_USE_HOOKS = False

#: What ``ignore`` accepts.
IGNORABLE = ("bias", "batchnorm")


class NotCountedError(TrainlabError):
    """``strict=True`` and the model calls an operation whose cost trainlab cannot count."""


def parse_size(text: str, argument: str = "--input") -> tuple[int, ...]:
    """Parse an input size given channels first, like ``3x112x112`` (no batch dimension)."""
    parts = re.split(r"[x×,]", text.strip())
    if not parts or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise ArgumentError(argument, text, "positive sizes, channels first, joined by 'x' (e.g. 3x112x112)")
    size = tuple(int(p) for p in parts)
    if max(size) >= 2**31 or math.prod(size) >= 2**62:
        raise ArgumentError(argument, text, "sizes below 2,147,483,648 whose product is below 2^62 "
                            "(a tensor's element count must fit in 64 bits)")
    return size


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
    if any(batch_size * math.prod(size) >= 2**62 or max(size) >= 2**31 for size in sizes):
        raise ArgumentError("input_size/batch_size", (input_size, batch_size),
                            "sizes below 2^31 whose product with the batch is below 2^62 (a tensor's "
                            "element count must fit in 64 bits)")
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
    training: bool = False,
) -> Summary:
    """Count neurons, parameters, MACs and connections of every layer of ``model``, and its receptive fields.

    Give either ``input_size`` (channels first, no batch dimension: ``(3, 112, 112)``, or a list
    of sizes for several inputs; a batch of ``batch_size`` is added) or ``example_inputs``
    (tensors, of which only shapes and dtypes are used). Counts are for the whole batch.
    ``ignore`` may hold ``"bias"`` and ``"batchnorm"``. The model is called once on meta
    tensors and is left unchanged (no moving, no parameter or buffer updates).

    The trace runs in eval mode (``training=False``, the default): stochastic depth and dropout
    are off, batch norm uses its running statistics and auxiliary heads that only run in
    training (GoogLeNet, Inception-v3) are left out, as at inference; every module's flag is set
    directly (a model's own ``train()`` is not called). ``training=True`` traces the training
    forward pass, through the model's own ``train(True)`` where it overrides it. Each module's
    mode and each parameter's ``requires_grad`` are restored afterwards.
    """
    if not isinstance(model, nn.Module):
        raise ArgumentError("model", type(model).__name__, "a torch.nn.Module")
    ignore = frozenset(ignore)
    if not ignore <= set(IGNORABLE):
        raise ArgumentError("ignore", ",".join(sorted(ignore)), "a subset of: " + ", ".join(IGNORABLE))
    inputs = _meta_inputs(input_size, example_inputs, batch_size, dtype)
    tracer = _Tracer(model, ignore)
    if any(tracer.lazy):
        lazy = [f"{tracer.frames[id(owner)][1]}.{pname}".lstrip(".")
                for is_lazy, (_, _, pname, owner) in zip(tracer.lazy, tracer.param_info.values(), strict=True)
                if is_lazy]
        raise ArgumentError("model", f"lazy parameters ({', '.join(lazy[:3])})",
                            "a model whose lazy modules are initialised (run one forward pass first)")
    for x in inputs:
        if isinstance(x, torch.Tensor) and x.is_floating_point() and 3 <= x.dim() <= 5:
            tracer.set_field(x, input_field(x.dim() - 2))
            if tracer.extent is None:
                tracer.extent = tuple(x.shape[2:])
    modes = tracer.modes
    grads: list[tuple[torch.Tensor, bool]] = []  # what an overridden train() may change besides the flags
    try:
        if training and not tracer.default_train:  # an overridden train() (frozen batch norm, ...)
            grads = [(p, p.requires_grad) for p in tracer.params]
            model.train(True)
        elif any(mode != training for _, mode in modes):
            for m, _ in modes:  # what Module.train does, without its per-child recursion
                object.__setattr__(m, "training", training)
        unframe = tracer.frame_modules(_USE_HOOKS)
        try:
            with torch.no_grad(), tracer:
                model(*inputs)
        finally:
            unframe()
    finally:
        for m, mode in modes:
            if m.training != mode:
                object.__setattr__(m, "training", mode)  # exactly the flags the model had
        for p, requires_grad in grads:
            if p.requires_grad != requires_grad:
                p.requires_grad_(requires_grad)
    # Parameters of modules never called, or held directly by containers (cls tokens, ...).
    counted = tracer.counted
    for module, mod_name, _, params in tracer.frames.values():
        own = [p for p in params if id(p) not in counted] if params else None
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
        tracer.rows, [tuple(x.shape) for x in inputs if isinstance(x, torch.Tensor)], ignore, not_counted,
        dict(tracer.block_fields),
    )
