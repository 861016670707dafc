"""Operator tables and argument helpers shared by the cost rules and the tracer.

Which torch functions are elementwise, shape-preserving, comparisons, free under the conventions,
read-only queries, factories or rearrangements; small helpers that read arguments (binding,
broadcasting, finding tensors) and make meta tensors; and :class:`Booker`, what a rule may ask of
the tracer. Imports go one way: ``tracing`` → ``rules`` → ``window_rules`` → this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import torch
from torch import nn

from trainlab.convnets.receptive_field import (
    ReceptiveField,
)

__all__: list[str] = []  # private: the accountant's tables

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


class Booker(Protocol):
    """What a cost rule uses of the tracer (:class:`trainlab.convnets.tracing._Tracer`)."""

    fields: dict[int, tuple[torch.Tensor, ReceptiveField, tuple[int, ...] | None]]
    not_counted: dict[str, None]
    stack: list[Any]
    extent: tuple[int, ...] | None
    last: tuple[torch.Tensor, tuple[int, ...]] | None

    def where(self, op: str) -> str: ...

    def book(self, op: str, out: torch.Tensor, *, neurons: int = 0, macs: int = 0, connections: int = 0,
             params: Iterable[Any] = (), row: bool = True) -> None: ...

    def entry(self, t: Any) -> tuple[ReceptiveField, tuple[int, ...] | None] | None: ...

    def image_field(self, x: Any, nd: int) -> ReceptiveField | None: ...

    def set_field(self, t: Any, rf: ReceptiveField | None, axes: tuple[int, ...] | None = None) -> None: ...

    def follow(self, x: torch.Tensor, out: torch.Tensor, nd: int, through: Any) -> None: ...

    def derive(self, inputs: Iterable[Any], outputs: Any) -> None: ...

    def fallback(self, func: Any, name: str, args: tuple, kwargs: dict, *, counted: bool = False) -> Any: ...


def _elementwise_info(name: str) -> tuple[bool, str, bool, bool]:
    """(in place by name, the op booked, a comparison, may merge two activations)."""
    op = name.strip("_")
    op = op[1:] if op in ("iadd", "isub", "imul") else op  # out += identity is a residual add
    return bool(_INPLACE_SUFFIX.match(name)), op, name in _COMPARISONS, op in ("add", "sub", "mul")


_ELEM_INFO = {name: _elementwise_info(name) for name in _ELEMENTWISE | _COMPARISONS}
