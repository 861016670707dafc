"""Parameters as small trees: a tensor, or a tuple / list / dict of trees.

The optimizers in :mod:`trainlab.functional` map over every leaf tensor of the
parameters, gradients and states, so one optimizer works on a single weight tensor,
on a batch of independent runs stacked as ``(R, d)``, or on a model's parameter dict.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

from torch import Tensor

__all__ = ["Tree", "tree_leaves", "tree_map"]

Tree: TypeAlias = Any
"""A tensor, or a tuple, list or dict whose values are trees."""


def tree_map(fn: Callable[..., Tensor], tree: Tree, *rest: Tree) -> Tree:
    """Apply ``fn`` leaf by leaf to ``tree`` and trees of the same structure ``rest``.

    >>> import torch
    >>> tree_map(lambda a, b: a + b, {"w": torch.ones(2)}, {"w": torch.ones(2)})["w"].tolist()
    [2.0, 2.0]
    """
    if isinstance(tree, Tensor):
        return fn(tree, *rest)
    if isinstance(tree, dict):
        return {k: tree_map(fn, v, *(r[k] for r in rest)) for k, v in tree.items()}
    if isinstance(tree, tuple | list):
        mapped = [tree_map(fn, v, *(r[i] for r in rest)) for i, v in enumerate(tree)]
        return type(tree)(mapped)
    raise TypeError(f"a parameter tree holds tensors, tuples, lists and dicts, not {type(tree).__name__}")


def tree_leaves(tree: Tree) -> list[Tensor]:
    """The leaf tensors of ``tree`` in a fixed order (dicts in insertion order)."""
    if isinstance(tree, Tensor):
        return [tree]
    if isinstance(tree, dict):
        return [leaf for v in tree.values() for leaf in tree_leaves(v)]
    if isinstance(tree, tuple | list):
        return [leaf for v in tree for leaf in tree_leaves(v)]
    raise TypeError(f"a parameter tree holds tensors, tuples, lists and dicts, not {type(tree).__name__}")
