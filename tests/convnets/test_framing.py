"""Module calls framed by forward wrappers give the summaries that global hooks gave (issue 22).

The tracer frames each module call by replacing the module's forward on the instance for the
trace (``nn.Module.__call__`` then skips its hook machinery); the way it did before, global
forward hooks, stays as the reference (``tracer._USE_HOOKS``) and as the route when anyone else
has global hooks registered. Both must agree on every row, field, note and uncounted operation:
on the zoo, and on random module trees with hooks of their own, instance forwards, shared and
repeated modules and a forward that raises inside a caught block.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import trainlab.convnets.tracer as tracer_module
from trainlab.convnets import summary

_spec = importlib.util.spec_from_file_location("convnets_zoo", Path(__file__).with_name("zoo.py"))
zoo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(zoo)


def _everything(s) -> tuple:
    return (s.to_dict(), s.to_text(), list(s.not_counted),
            {k: (shape, rf, n) for k, (shape, rf, n) in s.block_fields.items()})


def _both(model: nn.Module, size, **kwargs) -> tuple[tuple, tuple]:
    """(forward wrappers, global hooks) summaries of ``model``, its state checked unchanged after each."""
    before = {k: v.clone() for k, v in model.state_dict().items()}
    forwards = {id(m): m.__dict__.get("forward") for m in model.modules()}
    results = []
    for use_hooks in (False, True):
        tracer_module._USE_HOOKS = use_hooks
        try:
            results.append(_everything(summary(model, size, **kwargs)))
        finally:
            tracer_module._USE_HOOKS = False
        assert {id(m): m.__dict__.get("forward") for m in model.modules()} == forwards  # nothing left set
        after = model.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before)
    return results[0], results[1]


CASES = {**zoo.PATTERNS, "free-ops": (zoo.FreeOps, (3, 16, 16))}


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("name", list(CASES))
def test_zoo_summaries_are_the_same_framed_either_way(name, training):
    factory, size = CASES[name]
    torch.manual_seed(0)
    wrapped, hooked = _both(factory(), size, training=training)
    assert wrapped == hooked


def test_user_global_hooks_are_still_called_and_the_trace_falls_back_to_global_hooks():
    seen = []
    handle = nn.modules.module.register_module_forward_hook(lambda m, a, o: seen.append(type(m).__name__))
    try:
        model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
        s = summary(model, (3, 8, 8))
    finally:
        handle.remove()
    assert seen == ["Conv2d", "ReLU", "Sequential"]
    assert [r.name for r in s.rows] == ["0", "1"] and s.rows[0].macs == 4 * 27 * 36


class _Scale(nn.Module):  # a leaf with a parameter of its own
    def __init__(self, c: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(1, c, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.w


class _Block(nn.Module):
    """A container whose forward calls its children in a drawn order, a child twice, one child by
    ``.forward`` through super(), functional ops between, and a child that raises, caught."""

    def __init__(self, children: list[nn.Module], twice: int, catch: bool) -> None:
        super().__init__()
        self.layers = nn.ModuleList(children)
        self.twice = twice
        self.catch = catch
        self.fail = _Fails() if catch else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i == self.twice:
                x = layer(x) + x
            x = torch.relu(x)
        if self.fail is not None:
            try:
                self.fail(x)
            except ValueError:
                x = x * 2
        return x


class _Fails(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch.nn.functional.conv2d(x, torch.zeros(x.shape[1], x.shape[1], 1, 1))  # booked, then:
        raise ValueError("no")


def _conv(c: int) -> nn.Module:
    return nn.Conv2d(c, c, 3, padding=1)


LEAVES = [_conv, lambda c: nn.BatchNorm2d(c), lambda c: nn.ReLU(), lambda c: nn.MaxPool2d(3, 1, 1),
          _Scale, lambda c: nn.Identity(), lambda c: nn.GELU(), lambda c: nn.Dropout(0.1)]


@st.composite
def trees(draw, c: int, depth: int = 0) -> nn.Module:
    n = draw(st.integers(1, 4))
    children = []
    for _ in range(n):
        if depth < 2 and draw(st.integers(0, 3)) == 0:
            children.append(draw(trees(c, depth + 1)))
        else:
            children.append(draw(st.sampled_from(LEAVES))(c))
    if draw(st.booleans()) and len(children) > 1:
        children.append(children[0])  # a shared module, met twice in the tree
    kind = draw(st.sampled_from(["sequential", "block"]))
    if kind == "sequential":
        return nn.Sequential(*children)
    return _Block(children, draw(st.integers(-1, len(children) - 1)), draw(st.booleans()))


def _decorate(model: nn.Module, data) -> None:
    """Hooks of the modules' own (a pre-hook doing a counted op, a hook replacing the output) and
    forwards set on instances, on drawn modules."""
    for m in model.modules():
        choice = data.draw(st.integers(0, 5))
        if choice == 0:
            # a pre-hook whose work is counted (x @ W: MACs), booked to the module as before
            m.register_forward_pre_hook(lambda mod, args: (args[0] @ torch.ones(args[0].shape[-1:] * 2),))
        elif choice == 1:
            m.register_forward_hook(lambda mod, args, out: out * 1.0 if torch.is_tensor(out) else out)
        elif choice == 2 and not m._modules:
            own = type(m).forward
            m.forward = lambda x, _m=m, _own=own: _own(_m, x) + 0  # an instance forward of the user's
        elif choice == 3:
            m.register_forward_hook(lambda mod, args, out: None, always_call=True)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), training=st.booleans(), size=st.sampled_from([(4, 6, 6), (4, 9, 5)]))
def test_random_trees_with_hooks_and_instance_forwards_are_the_same_framed_either_way(data, training, size):
    torch.manual_seed(0)
    model = data.draw(trees(size[0]))
    _decorate(model, data)
    wrapped, hooked = _both(model, size, training=training)
    assert wrapped == hooked
