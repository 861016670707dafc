"""Outputs of concatenation, reductions and copies worked out from shapes, without PyTorch's meta kernels.

On the meta device ``torch.cat``, ``torch.stack`` and ``mean`` run Python decompositions that
cost 100–400 µs a call (copies: ``contiguous``, a ``reshape`` that cannot be a view, ``unbind``,
``zeros``: 5–15 µs), more than the rest of a small model's trace together; their output
shapes are one line of arithmetic. Each function here returns the output as an empty meta
tensor (contiguous, like the meta kernel's when one input is), or None where it does not answer
(mixed dtypes, no input with a contiguous tensor's strides, names instead of dims, sizes that do
not match: the tracer then runs the meta kernel, which also raises the usual errors). Tests
compare every answer with the meta kernel's shape, dtype and strides.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch

__all__: list[str] = []  # private: the tracer's shortcuts

_META = torch.device("meta")


def _joined(args: tuple, kwargs: dict) -> tuple[list[torch.Tensor], int] | None:
    """(tensors, dim) of ``cat(tensors, dim=0)`` / ``stack(tensors, dim=0)``, or None."""
    if len(args) > 2 or not kwargs.keys() <= {"tensors", "dim"}:
        return None
    tensors = args[0] if args else kwargs.get("tensors")
    dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
    if type(tensors) not in (list, tuple) or not tensors or type(dim) is not int:
        return None
    first = tensors[0]
    if not isinstance(first, torch.Tensor):
        return None
    dtype, n = first.dtype, first.dim()
    if not all(isinstance(t, torch.Tensor) and t.dtype == dtype and t.dim() == n for t in tensors):
        return None
    # The output takes the inputs' memory format when they all suggest the same one (channels last),
    # else it is contiguous: so it is whenever one input has a contiguous tensor's own strides (a
    # contiguous tensor may carry others on axes of size 1, which can suggest channels last).
    if not any(t.stride() == _standard_strides(t.shape) for t in tensors):
        return None
    return list(tensors), dim


@functools.lru_cache(maxsize=1024)
def _standard_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The strides of a new contiguous tensor of ``shape``."""
    return torch.empty(size=shape, device=_META).stride()


def _cat(args: tuple, kwargs: dict) -> torch.Tensor | None:
    """``torch.cat``: the sizes along ``dim`` add up, every other size agrees."""
    found = _joined(args, kwargs)
    if found is None:
        return None
    tensors, dim = found
    shape = list(tensors[0].shape)
    n = len(shape)
    if n == 0 or not -n <= dim < n:
        return None
    dim %= n
    total = 0
    for t in tensors:
        size = t.shape
        if any(size[i] != shape[i] for i in range(n) if i != dim):
            return None
        total += size[dim]
    shape[dim] = total
    return torch.empty(size=shape, dtype=tensors[0].dtype, device=_META)


def _stack(args: tuple, kwargs: dict) -> torch.Tensor | None:
    """``torch.stack``: equal shapes, a new axis of the number of tensors at ``dim``."""
    found = _joined(args, kwargs)
    if found is None:
        return None
    tensors, dim = found
    shape = list(tensors[0].shape)
    n = len(shape) + 1
    if not -n <= dim < n or any(t.shape != tensors[0].shape for t in tensors):
        return None
    shape.insert(dim % n, len(tensors))
    return torch.empty(size=shape, dtype=tensors[0].dtype, device=_META)


def _reduction(args: tuple, kwargs: dict) -> torch.Tensor | None:
    """``mean``/``sum``/``amax``/``amin`` of a contiguous floating tensor over given dims (keepdim keeps
    them as size 1)."""
    if not 2 <= len(args) + len(kwargs) <= 3 or len(args) > 3 or not kwargs.keys() <= {"dim", "keepdim"}:
        return None
    x = args[0] if args else None
    dims = args[1] if len(args) > 1 else kwargs.get("dim")
    keepdim = args[2] if len(args) > 2 else kwargs.get("keepdim", False)
    if (not isinstance(x, torch.Tensor) or not x.is_floating_point() or type(keepdim) is not bool
            or x.stride() != _standard_strides(x.shape)):  # the output of a strided input keeps its layout
        return None
    n = x.dim()
    dims = (dims,) if type(dims) is int else dims
    if n == 0 or type(dims) not in (list, tuple) or not dims:
        return None
    if not all(type(d) is int and -n <= d < n for d in dims):
        return None
    axes = {d % n for d in dims}
    if len(axes) != len(dims):
        return None  # a repeated dim: the meta kernel raises
    shape = x.shape
    if keepdim:
        out = [1 if i in axes else shape[i] for i in range(n)]
    else:
        out = [shape[i] for i in range(n) if i not in axes]
    return torch.empty(size=out, dtype=x.dtype, device=_META)


def _contiguous(args: tuple, kwargs: dict) -> torch.Tensor | None:
    """``x.contiguous()``: ``x`` itself when it is contiguous, else a contiguous tensor of its shape
    (the meta kernel copies through a Python decomposition)."""
    if len(args) != 1 or kwargs or not isinstance(args[0], torch.Tensor) or not args[0].is_meta:
        return None
    x = args[0]
    return x if x.is_contiguous() else torch.empty(size=x.shape, dtype=x.dtype, device=_META)


def _sizes(numel: int, shape: tuple) -> list[int] | None:
    """The sizes of a reshape to ``shape`` (one -1 inferred), or None if they do not hold ``numel``."""
    sizes = list(shape[0]) if len(shape) == 1 and type(shape[0]) in (tuple, list, torch.Size) else list(shape)
    if not all(type(n) is int and n >= -1 for n in sizes) or sizes.count(-1) > 1:
        return None
    known = math.prod(n for n in sizes if n != -1)
    if -1 in sizes:
        if known == 0 or numel % known:
            return None
        sizes[sizes.index(-1)] = numel // known
    return sizes if math.prod(sizes) == numel else None


def _viewable(shape: torch.Size, stride: tuple[int, ...], sizes: list[int]) -> bool:
    """Whether a tensor of ``shape`` and ``stride`` can be viewed with ``sizes`` (no copy).

    Its axes of size > 1 fall into runs in which each axis steps exactly over the next one
    (stride[i] = stride[i+1]·shape[i+1]): each run is one evenly strided block. A view exists iff
    the new sizes > 1, in order, group into consecutive products equal to the runs' sizes.
    """
    runs: list[int] = []
    previous = None
    for n, step in zip(shape, stride, strict=True):
        if n == 1:
            continue
        if runs and previous == step * n:
            runs[-1] *= n
        else:
            runs.append(n)
        previous = step
    new = [n for n in sizes if n != 1]
    i = 0
    for run in runs:
        product = 1
        while product < run and i < len(new):
            product *= new[i]
            i += 1
        if product != run:
            return False
    return i == len(new)


def _reshape(args: tuple, kwargs: dict) -> torch.Tensor | None:
    """``x.reshape(*shape)``: a view where one exists, else a view of a contiguous copy (trying
    ``view`` first costs a C++ exception, 15 µs, whenever it fails)."""
    x = args[0] if args else None
    if kwargs or not isinstance(x, torch.Tensor) or not x.is_meta:
        return None
    numel = x.numel()
    sizes = _sizes(numel, args[1:])
    if sizes is None or numel == 0:  # a size that does not fit (torch raises), or an empty tensor
        return None
    if x.is_contiguous() or _viewable(x.shape, x.stride(), sizes):
        return x.view(sizes)
    return torch.empty(size=x.shape, dtype=x.dtype, device=_META).view(sizes)


def _unbind(args: tuple, kwargs: dict) -> tuple[torch.Tensor, ...] | None:
    """``x.unbind(dim)``: the slices ``x.select(dim, i)``."""
    x = args[0] if args else None
    dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
    if len(args) > 2 or not kwargs.keys() <= {"dim"} or not isinstance(x, torch.Tensor) or not x.is_meta:
        return None
    if type(dim) is not int or not -x.dim() <= dim < x.dim():
        return None
    return tuple(x.select(dim, i) for i in range(x.shape[dim]))


def _zeros(args: tuple, kwargs: dict) -> torch.Tensor | None:
    """``torch.zeros``/``torch.ones`` on the meta device: ``torch.empty`` (no values to fill)."""
    if not kwargs.keys() <= {"dtype", "device", "layout", "requires_grad", "pin_memory"}:
        return None
    if kwargs.get("device") != _META:
        return None
    try:
        return torch.empty(*args, **kwargs)
    except (RuntimeError, TypeError):  # the meta kernel raises the usual error
        return None


#: function name -> its output from the arguments, or None (then the meta kernel runs)
DIRECT: dict[str, Callable[[tuple, dict], torch.Tensor | None]] = {
    **dict.fromkeys(("cat", "concat", "concatenate"), _cat),
    "stack": _stack,
    **dict.fromkeys(("mean", "sum", "amax", "amin"), _reduction),
    "contiguous": _contiguous,
    "reshape": _reshape,
    "unbind": _unbind,
    **dict.fromkeys(("zeros", "ones"), _zeros),
}
