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

from torch import nn

from trainlab.errors import ArgumentError

__all__ = ["FactoryRef", "is_factory_ref", "load_factory", "load_model", "parse_factory_ref"]

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
        except Exception as e:
            sys.modules.pop(name, None)
            raise ArgumentError(
                argument, text, f"a file that imports cleanly ({type(e).__name__}: {e})"
            ) from None
        return mod
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ArgumentError(argument, text, f"an importable module ({e})") from None


def load_factory(text: str, argument: str = "MODULE") -> tuple[Callable[..., Any], FactoryRef]:
    """The callable (or module instance) named by ``text`` and the parsed reference."""
    ref = parse_factory_ref(text, argument)
    mod = _import(ref.module, argument, text)
    obj = getattr(mod, ref.attribute, None)
    if obj is None:
        raise ArgumentError(argument, text, f"a name defined in {ref.module} (no {ref.attribute!r} there)")
    return obj, ref


def load_model(text: str, argument: str = "MODULE") -> nn.Module:
    """Import and call the factory; an ``nn.Module`` instance named directly is returned as is."""
    obj, ref = load_factory(text, argument)
    if isinstance(obj, nn.Module):
        return obj
    if not callable(obj):
        raise ArgumentError(argument, text, "a callable returning an nn.Module")
    try:
        model = obj(*ref.args, **ref.kwargs)
    except TypeError as e:
        raise ArgumentError(argument, text, f"arguments {ref.attribute} accepts ({e})") from None
    if not isinstance(model, nn.Module):
        raise ArgumentError(argument, text, f"a factory returning an nn.Module (got {type(model).__name__})")
    return model
