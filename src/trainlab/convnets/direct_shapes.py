"""Outputs of concatenation, reductions and copies worked out from shapes, without PyTorch's meta kernels.

On the meta device ``torch.cat``, ``torch.stack`` and ``mean`` run Python decompositions that
cost 100–400 µs a call (copies: ``contiguous``, a ``reshape`` that cannot be a view, ``unbind``,
``zeros``: 5–15 µs), more than the rest of a small model's trace together; their output
shapes are one line of arithmetic. Each function here returns the output as an empty meta
tensor (contiguous, like the meta kernel's when one input is contiguous), or None where it does not
answer (mixed dtypes, only non-contiguous inputs, names instead of dims, sizes that do not match:
the tracer then runs the meta kernel, which also raises the usual errors). Tests compare
every answer with the meta kernel's shape, dtype and strides.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["DIRECT"]

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
    # else it is contiguous: so it is whenever one input is contiguous.
    if not any(t.is_contiguous() for t in tensors):
        return None
    return list(tensors), dim


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
    return torch.empty(shape, dtype=tensors[0].dtype, device=_META)


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
    return torch.empty(shape, dtype=tensors[0].dtype, device=_META)


def _reduction(args: tuple, kwargs: dict) -> torch.Tensor | None:
    """``mean``/``sum``/``amax``/``amin`` of a contiguous floating tensor over given dims (keepdim keeps
    them as size 1)."""
    if not 2 <= len(args) + len(kwargs) <= 3 or len(args) > 3 or not kwargs.keys() <= {"dim", "keepdim"}:
        return None
    x = args[0] if args else None
    dims = args[1] if len(args) > 1 else kwargs.get("dim")
    keepdim = args[2] if len(args) > 2 else kwargs.get("keepdim", False)
    if (not isinstance(x, torch.Tensor) or not x.is_floating_point() or type(keepdim) is not bool
            or not x.is_contiguous()):  # the output of a strided input keeps its layout
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
    return torch.empty(out, dtype=x.dtype, device=_META)


def _contiguous(args: tuple, kwargs: dict) -> torch.Tensor | None:
    """``x.contiguous()``: ``x`` itself when it is contiguous, else a contiguous tensor of its shape
    (the meta kernel copies through a Python decomposition)."""
    if len(args) != 1 or kwargs or not isinstance(args[0], torch.Tensor) or not args[0].is_meta:
        return None
    x = args[0]
    return x if x.is_contiguous() else torch.empty(x.shape, dtype=x.dtype, device=_META)


def _reshape(args: tuple, kwargs: dict) -> torch.Tensor | None:
    """``x.reshape(*shape)``: a view where one exists, else a view of a contiguous copy."""
    x = args[0] if args else None
    if kwargs or not isinstance(x, torch.Tensor) or not x.is_meta:
        return None
    shape = args[1:]
    if x.is_contiguous():
        try:
            return x.view(*shape)
        except RuntimeError:  # a size that does not fit: the meta kernel raises the usual error
            return None
    try:
        return x.view(*shape)
    except RuntimeError:  # strides that no view can express: reshape copies
        pass
    try:
        return torch.empty(x.shape, dtype=x.dtype, device=_META).view(*shape)
    except RuntimeError:
        return None


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
