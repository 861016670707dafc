"""Load a model named on the command line: ``package.module:factory(args)`` or ``file.py:factory(args)``.

The call's arguments are parsed with :func:`ast.literal_eval` only (numbers, strings,
tuples, lists, dicts, booleans, None), never evaluated as code. The module itself is
imported, which runs its code: name only modules you trust.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from trainlab.errors import ArgumentError, TrainlabError, raised_by_trainlab
from trainlab.memory import require_memory

__all__ = [
    "FactoryRef",
    "is_factory_ref",
    "load_factory",
    "load_model",
    "load_model_for_shapes",
    "parameter_bytes",
    "parse_factory_ref",
]

_FORM = "package.module:factory(args) or path/to/file.py:factory(args), arguments as Python literals"


@dataclass(frozen=True)
class FactoryRef:
    module: str
    attribute: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


def is_factory_ref(text: str) -> bool:
    """A reference has a ``:`` before any ``(``; specs never contain ``:``."""
    head = text.split("(", 1)[0]
    return ":" in head


def parse_factory_ref(text: str, argument: str = "MODULE") -> FactoryRef:
    head, sep, call = text.partition(":")
    if not sep or not head.strip() or not call.strip():
        raise ArgumentError(argument, text, _FORM)
    try:
        node = ast.parse(call.strip(), mode="eval").body
    except SyntaxError:
        raise ArgumentError(argument, text, _FORM) from None
    if isinstance(node, ast.Name):
        return FactoryRef(head.strip(), node.id)
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        raise ArgumentError(argument, text, _FORM)
    try:
        args = tuple(ast.literal_eval(a) for a in node.args)
        kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg is not None}
    except (ValueError, SyntaxError):
        raise ArgumentError(
            argument,
            text,
            "arguments that are Python literals (numbers, strings, tuples, lists, dicts, True/False/None)",
        ) from None
    if len(kwargs) != len(node.keywords):
        raise ArgumentError(argument, text, "named arguments (no **kwargs)")
    return FactoryRef(head.strip(), node.func.id, args, kwargs)


def _import(module: str, argument: str, text: str) -> Any:
    if module.endswith(".py") or "/" in module:
        path = Path(module)
        if not path.is_file():
            raise ArgumentError(argument, text, f"an existing Python file ({path} does not exist)")
        name = f"_trainlab_user_{abs(hash(path.resolve()))}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ArgumentError(argument, text, "a Python source file")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        try:
            spec.loader.exec_module(mod)
        except (Exception, SystemExit) as e:  # sys.exit() in the user's module is a failed import too
            sys.modules.pop(name, None)
            if raised_by_trainlab(e):
                raise
            raise ArgumentError(
                argument, text, f"a file that imports cleanly ({type(e).__name__}: {e})"
            ) from None
        return mod
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ArgumentError(argument, text, f"an importable module ({e})") from None
    except (Exception, SystemExit) as e:  # the module was found but its code failed
        if raised_by_trainlab(e):  # importing trainlab's own modules (trainlab.convnets.models:...)
            raise
        raise ArgumentError(
            argument, text, f"a module that imports cleanly ({type(e).__name__}: {_first_line(e)})"
        ) from None


def load_factory(text: str, argument: str = "MODULE") -> tuple[Callable[..., Any], FactoryRef]:
    """The callable (or module instance) named by ``text`` and the parsed reference."""
    ref = parse_factory_ref(text, argument)
    mod = _import(ref.module, argument, text)
    obj = getattr(mod, ref.attribute, None)
    if obj is None:
        raise ArgumentError(argument, text, f"a name defined in {ref.module} (no {ref.attribute!r} there)")
    return obj, ref


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def _call(obj: Any, ref: FactoryRef, argument: str, text: str) -> nn.Module:
    """Call the factory; anything it raises becomes one line naming the reference."""
    if isinstance(obj, nn.Module):
        return obj
    if not callable(obj):
        raise ArgumentError(argument, text, "a callable returning an nn.Module")
    try:
        model = obj(*ref.args, **ref.kwargs)
    except TrainlabError:
        raise
    except TypeError as e:
        if raised_by_trainlab(e):  # not the call's arguments: a bug inside trainlab's own factory
            raise
        raise ArgumentError(argument, text, f"arguments {ref.attribute} accepts ({_first_line(e)})") from None
    except (Exception, SystemExit) as e:  # the user's constructor failed (or called sys.exit): one line
        if raised_by_trainlab(e):
            raise
        raise ArgumentError(argument, text, f"a factory that builds its model ({ref.attribute} raised "
                            f"{type(e).__name__}: {_first_line(e)})") from None
    if not isinstance(model, nn.Module):
        raise ArgumentError(argument, text, f"a factory returning an nn.Module (got {type(model).__name__})")
    return model


def load_model(text: str, argument: str = "MODULE") -> nn.Module:
    """Import and call the factory; an ``nn.Module`` instance named directly is returned as is.

    Anything the factory raises is an :class:`ArgumentError` naming ``argument`` (one line).
    """
    obj, ref = load_factory(text, argument)
    return _call(obj, ref, argument, text)


_FACTORIES = (torch.empty, torch.zeros, torch.ones, torch.full, torch.rand, torch.randn, torch.randint)


class _LargeOnMeta(TorchFunctionMode):
    """New tensors of ``threshold`` elements or more go to the meta device, smaller ones to the CPU:
    weight matrices cost nothing, while a constructor's small computations (widths, masks) run."""

    def __init__(self, threshold: int = 4096) -> None:
        super().__init__()
        self.threshold = threshold

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = dict(kwargs or {})
        if func in _FACTORIES and kwargs.get("device") is None:
            size = args[0] if args and isinstance(args[0], tuple | list | torch.Size) else args
            if func is torch.full:
                size = args[0]
            elif func is torch.randint:
                sizes = (a for a in args if isinstance(a, tuple | list | torch.Size))
                size = next(sizes, kwargs.get("size", ()))
            numel = 1
            for n in size if isinstance(size, tuple | list | torch.Size) else ():
                numel *= int(n)
            kwargs["device"] = "meta" if numel >= self.threshold else "cpu"
        return func(*args, **kwargs)


def parameter_bytes(model: nn.Module) -> int:
    """Bytes of the model's parameters and buffers (whatever device they are on)."""
    tensors = {id(t): t for t in (*model.parameters(), *model.buffers())}
    return sum(t.numel() * t.element_size() for t in tensors.values())


def load_model_for_shapes(text: str, argument: str = "MODULE") -> nn.Module:
    """The model for shape-only work (counting, tracing), without allocating its weights if possible.

    The factory runs on the meta device. A constructor that computes with tensor values (RegNet
    derives its widths with torch ops and ``.tolist()``) cannot run there; it is then built once
    with large tensors on meta and small ones on the CPU to estimate its parameter memory, refused
    if that does not fit (:class:`~trainlab.errors.ResourceError`), and built on the CPU. Any
    failure of the factory is one line naming ``argument``.
    """
    obj, ref = load_factory(text, argument)
    if isinstance(obj, nn.Module):
        return obj
    try:
        with torch.device("meta"):
            return _call(obj, ref, argument, text)
    except ArgumentError:
        pass
    try:
        with _LargeOnMeta():
            estimate = parameter_bytes(_call(obj, ref, argument, text))
    except ArgumentError:
        estimate = None  # the CPU build below says why, or succeeds
    if estimate is not None:
        require_memory(argument, text, 1.2 * estimate)
    return _call(obj, ref, argument, text)
