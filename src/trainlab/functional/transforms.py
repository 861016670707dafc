"""Small gradient transformations that chain into optimizers (in the manner of optax).

A :class:`GradientTransformation` is a pair of pure functions::

    state = init(params)
    updates, state = update(grads, state, params)
    params = apply_updates(params, updates)          # params + updates

Nothing is modified in place: every step builds new tensors, so autograd can
differentiate the parameters after ``T`` steps with respect to the initial parameters
or to a hyperparameter passed as a tensor (``lr=torch.tensor(0.1, requires_grad=True)``).
Parameters, gradients and updates are trees (:mod:`trainlab.functional.tree`); a batch of
``R`` independent runs is simply a parameter tensor of shape ``(R, d)``, and a
hyperparameter may be a tensor of shape ``(R, 1)`` to give each run its own value.

The transforms follow ``torch.optim``'s arithmetic (same ε placement, same first step),
so chaining them reproduces each ``torch.optim`` optimizer step for step; see
:mod:`trainlab.functional.optimizers` for the chains.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor

from trainlab.errors import ArgumentError
from trainlab.functional.tree import Tree, tree_leaves, tree_map

__all__ = [
    "GradientTransformation",
    "Hyperparameter",
    "Schedule",
    "add_decayed_weights",
    "apply_updates",
    "chain",
    "exponential_decay",
    "inverse_time_decay",
    "scale_by_adagrad",
    "scale_by_adam",
    "scale_by_diagonal",
    "scale_by_learning_rate",
    "scale_by_rms",
    "trace",
]

Schedule = Callable[[int], "float | Tensor"]
"""``schedule(count) -> lr``: the value to use at step ``count`` (0 for the first step)."""

Hyperparameter = float | Tensor
"""A number, or a tensor (broadcast against the parameters; may require grad)."""


class GradientTransformation(NamedTuple):
    """``init(params) -> state`` and ``update(grads, state, params) -> (updates, state)``."""

    init: Callable[[Tree], Any]
    update: Callable[[Tree, Any, Tree], tuple[Tree, Any]]


def _number(value: Any) -> bool:
    """A real number (NumPy scalars included), not a bool; tensors are checked where they are used."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_nonnegative(name: str, value: Hyperparameter, valid: str = "a number >= 0") -> None:
    if not isinstance(value, Tensor) and (not _number(value) or not value >= 0):  # also rejects NaN
        raise ArgumentError(name, value, valid)


def _check_unit_interval(name: str, value: Hyperparameter) -> None:
    if not isinstance(value, Tensor) and (not _number(value) or not 0 <= value < 1):
        raise ArgumentError(name, value, "a number in [0, 1)")


def _real_only(g: Tensor, transform: str) -> Tensor:
    if g.is_complex():  # torch.optim treats a complex entry as two real coordinates (view_as_real)
        raise ArgumentError("params", f"a complex tensor ({g.dtype})",
                            f"real tensors for {transform}: pass torch.view_as_real(p) to treat the real "
                            "and imaginary parts as coordinates, as torch.optim does")
    return g


def _ema_of_squares(avg: Tensor, g: Tensor, decay: Hyperparameter) -> Tensor:
    """decay·avg + (1 − decay)·g², rounded as torch.optim rounds it (``mul_`` then ``addcmul_``)."""
    _real_only(g, "a second-moment estimate (adam, rmsprop)")
    if isinstance(decay, Tensor):  # a differentiable hyperparameter: addcmul's value must be a number
        return decay * avg + (1 - decay) * (g * g)
    return torch.addcmul(avg * decay, g, g, value=1 - decay)


def _sqrt(v: Tensor) -> Tensor:
    """√v (v ≥ 0) whose derivative at v = 0 is 0 instead of ∞.

    A coordinate whose gradient is exactly 0 (a dead unit, an always-zero input pixel) keeps
    v = 0 and m = 0; its update m/(√v + ε) is 0 whatever the hyperparameters, but autograd
    would multiply 0 by √'s infinite slope and turn a hypergradient through Adam into NaN.
    Same values as ``torch.sqrt``; the guarded form only when something may differentiate it.
    """
    wrapped = getattr(torch._C._functorch, "is_functorch_wrapped_tensor", lambda t: False)(v)
    if not (v.requires_grad or wrapped):
        return torch.sqrt(v)
    positive = v > 0
    safe = torch.where(positive, v, torch.ones_like(v))
    return torch.where(positive, torch.sqrt(safe), torch.zeros_like(v))


def _axpy(y: Tensor, x: Tensor, a: Hyperparameter) -> Tensor:
    """y + a·x, rounded like torch.optim's ``add_(x, alpha=a)`` when ``a`` is a number."""
    return y + a * x if isinstance(a, Tensor) else torch.add(y, x, alpha=a)


def _zeros(params: Tree) -> Tree:
    return tree_map(torch.zeros_like, params)


def apply_updates(params: Tree, updates: Tree) -> Tree:
    """``params + updates`` leaf by leaf (out of place)."""
    return tree_map(torch.add, params, updates)


class ChainState(NamedTuple):
    inner: tuple[Any, ...]


def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """Apply ``transforms`` one after the other; the state is the tuple of their states."""

    def init(params: Tree) -> ChainState:
        return ChainState(tuple(t.init(params) for t in transforms))

    def update(grads: Tree, state: ChainState, params: Tree = None) -> tuple[Tree, ChainState]:
        new_states = []
        for t, s in zip(transforms, state.inner, strict=True):
            grads, s = t.update(grads, s, params)
            new_states.append(s)
        return grads, ChainState(tuple(new_states))

    return GradientTransformation(init, update)


class CountState(NamedTuple):
    count: int


def exponential_decay(lr: Hyperparameter, gamma: float) -> Schedule:
    """``lr · γ^k`` at step k, the schedule of ``torch.optim.lr_scheduler.ExponentialLR``."""
    _check_nonnegative("lr", lr)
    if not gamma > 0:
        raise ArgumentError("gamma", gamma, "a positive decay factor (ExponentialLR uses 0 < γ ≤ 1)")
    return lambda count: lr * gamma**count


def inverse_time_decay(lr: Hyperparameter, decay: float) -> Schedule:
    """``lr / (1 + k · decay)`` at step k: ``torch.optim.Adagrad``'s ``lr_decay``."""
    _check_nonnegative("lr", lr)
    _check_nonnegative("lr_decay", decay)
    return lambda count: lr / (1 + count * decay)


def scale_by_learning_rate(lr: Hyperparameter | Schedule) -> GradientTransformation:
    """``u ← −η_k u``; ``lr`` is a number, a tensor, or a schedule ``k -> η_k``."""
    if not callable(lr):
        _check_nonnegative("lr", lr)

    def init(params: Tree) -> CountState:
        return CountState(0)

    def update(grads: Tree, state: CountState, params: Tree = None) -> tuple[Tree, CountState]:
        step = lr(state.count) if callable(lr) else lr
        return tree_map(lambda g: -step * g, grads), CountState(state.count + 1)

    return GradientTransformation(init, update)


def add_decayed_weights(weight_decay: Hyperparameter) -> GradientTransformation:
    """``u ← u + λ w``.

    Placed first in a chain it is L2 regularisation in the gradient (the gradient of
    J(w) + (λ/2)‖w‖², ``torch.optim``'s ``weight_decay``), and the term then passes through
    momentum and adaptive rescaling. Placed after an adaptive transform it is decoupled
    weight decay (Loshchilov & Hutter, *Decoupled Weight Decay Regularization*, 2019: AdamW).
    """
    _check_nonnegative("weight_decay", weight_decay)

    def init(params: Tree) -> CountState:
        return CountState(0)

    def update(grads: Tree, state: CountState, params: Tree = None) -> tuple[Tree, CountState]:
        if params is None:
            raise ValueError("add_decayed_weights needs params")
        return tree_map(lambda g, p: _axpy(g, p, weight_decay), grads, params), state

    return GradientTransformation(init, update)


class TraceState(NamedTuple):
    count: int
    momentum_buffer: Tree


def trace(
    momentum: Hyperparameter, dampening: Hyperparameter = 0.0, nesterov: bool = False
) -> GradientTransformation:
    """Heavy-ball or Nesterov momentum, torch's form (Polyak 1964; Sutskever et al. 2013).

    b₁ = g₁ (the first step copies the gradient, no dampening), then
    b_k = μ b_{k−1} + (1 − τ) g_k; the update is b_k (heavy ball) or g_k + μ b_k (Nesterov).
    With τ = 0 this equals a velocity that starts at 0.
    """
    _check_unit_interval("momentum", momentum)
    _check_unit_interval("dampening", dampening)

    def init(params: Tree) -> TraceState:
        return TraceState(0, _zeros(params))

    def update(grads: Tree, state: TraceState, params: Tree = None) -> tuple[Tree, TraceState]:
        if state.count == 0:
            buf = tree_map(lambda g: g, grads)
        else:
            buf = tree_map(lambda b, g: _axpy(b * momentum, g, 1 - dampening), state.momentum_buffer, grads)
        out = tree_map(lambda g, b: _axpy(g, b, momentum), grads, buf) if nesterov else buf
        return out, TraceState(state.count + 1, buf)

    return GradientTransformation(init, update)


class AdagradState(NamedTuple):
    sum_of_squares: Tree


def scale_by_adagrad(
    initial_accumulator_value: Hyperparameter = 0.0, eps: Hyperparameter = 1e-10
) -> GradientTransformation:
    """AdaGrad's rescaling (Duchi, Hazan & Singer 2011), torch's form.

    G_k = G₀ + Σ_{j≤k} g_j² (G₀ = ``initial_accumulator_value``), u = g_k / (√G_k + ε).
    A large G₀ (or ε) makes the denominator ≈ constant: plain gradient descent.
    """
    _check_nonnegative("initial_accumulator_value", initial_accumulator_value)
    _check_nonnegative("eps", eps)

    def init(params: Tree) -> AdagradState:
        return AdagradState(
            tree_map(
                lambda p: (
                    torch.full_like(p, float(initial_accumulator_value))
                    if not isinstance(initial_accumulator_value, Tensor)
                    else torch.zeros_like(p) + initial_accumulator_value
                ),
                params,
            )
        )

    def update(grads: Tree, state: AdagradState, params: Tree = None) -> tuple[Tree, AdagradState]:
        acc = tree_map(lambda s, g: s + _real_only(g, "adagrad") ** 2, state.sum_of_squares, grads)
        return tree_map(lambda g, s: g / (_sqrt(s) + eps), grads, acc), AdagradState(acc)

    return GradientTransformation(init, update)


class RmsState(NamedTuple):
    square_avg: Tree
    grad_avg: Tree


def scale_by_rms(
    alpha: Hyperparameter = 0.99,
    eps: Hyperparameter = 1e-8,
    centered: bool = False,
    eps_in_sqrt: bool = False,
) -> GradientTransformation:
    """RMSProp's rescaling (Tieleman & Hinton 2012, lecture 6e), torch's form.

    v_k = α v_{k−1} + (1 − α) g_k² (v₀ = 0), u = g_k / (√v_k + ε); ``centered`` subtracts the
    squared running mean of g inside the root. ``eps_in_sqrt`` gives u = g_k / √(v_k + ε), the
    placement of TensorFlow's RMSProp: it differs from torch's when ε is not negligible.
    """
    _check_unit_interval("alpha", alpha)
    _check_nonnegative("eps", eps)

    def init(params: Tree) -> RmsState:
        return RmsState(_zeros(params), _zeros(params) if centered else None)

    def update(grads: Tree, state: RmsState, params: Tree = None) -> tuple[Tree, RmsState]:
        sq = tree_map(lambda v, g: _ema_of_squares(v, g, alpha), state.square_avg, grads)
        ga = None
        if centered:
            ga = tree_map(lambda m, g: torch.lerp(m, g, 1 - alpha), state.grad_avg, grads)
            var = tree_map(lambda v, m: torch.addcmul(v, m, m, value=-1), sq, ga)
        else:
            var = sq
        if eps_in_sqrt:
            out = tree_map(lambda g, v: g / torch.sqrt(v + eps), grads, var)
        else:
            out = tree_map(lambda g, v: g / (_sqrt(v) + eps), grads, var)
        return out, RmsState(sq, ga)

    return GradientTransformation(init, update)


class AdamState(NamedTuple):
    count: int
    exp_avg: Tree
    exp_avg_sq: Tree
    max_exp_avg_sq: Tree


def scale_by_adam(
    b1: Hyperparameter = 0.9, b2: Hyperparameter = 0.999, eps: Hyperparameter = 1e-8, amsgrad: bool = False
) -> GradientTransformation:
    """Adam's rescaling (Kingma & Ba 2015), torch's form.

    m_k = β₁ m + (1 − β₁) g, v_k = β₂ v + (1 − β₂) g² (both from 0),
    u = (m_k / (1 − β₁^k)) / (√v_k / √(1 − β₂^k) + ε): ε is added *after* bias-correcting
    √v (optax's ``eps``, not ``eps_root``). ``amsgrad`` uses the running maximum of v_k.
    """
    _check_unit_interval("betas[0]", b1)
    _check_unit_interval("betas[1]", b2)
    _check_nonnegative("eps", eps)

    def init(params: Tree) -> AdamState:
        return AdamState(0, _zeros(params), _zeros(params), _zeros(params) if amsgrad else None)

    def update(grads: Tree, state: AdamState, params: Tree = None) -> tuple[Tree, AdamState]:
        k = state.count + 1
        m = tree_map(
            lambda m, g: torch.lerp(m, g, 1 - b1) if not isinstance(b1, Tensor) else b1 * m + (1 - b1) * g,
            state.exp_avg,
            grads,
        )
        v = tree_map(lambda v, g: _ema_of_squares(v, g, b2), state.exp_avg_sq, grads)
        vmax = tree_map(torch.maximum, state.max_exp_avg_sq, v) if amsgrad else None
        bias_correction1 = 1 - b1**k
        bias_correction2_sqrt = (1 - b2**k) ** 0.5
        out = tree_map(
            lambda m, v: (m / bias_correction1) / (_sqrt(v) / bias_correction2_sqrt + eps),
            m,
            vmax if amsgrad else v,
        )
        return out, AdamState(k, m, v, vmax)

    return GradientTransformation(init, update)


def scale_by_diagonal(preconditioner: Tree) -> GradientTransformation:
    """A fixed diagonal preconditioner: u ← M u with M = diag(m), m > 0 (same tree as params).

    Preconditioned GD w ← w − η M ∇J(w) from 0 stays in M·row(X) and ends at the
    M⁻¹-norm-minimal interpolant M Xᵀ(X M Xᵀ)⁻¹ t.
    """
    leaves = [preconditioner] if isinstance(preconditioner, Tensor) else [
        leaf for leaf in tree_leaves(preconditioner) if isinstance(leaf, Tensor)]
    for leaf in leaves:
        if not bool((leaf > 0).all()):
            raise ArgumentError(
                "preconditioner",
                leaf.tolist() if leaf.numel() <= 8 else "…",
                "positive entries (a positive diagonal M)",
            )

    def init(params: Tree) -> CountState:
        return CountState(0)

    def update(grads: Tree, state: CountState, params: Tree = None) -> tuple[Tree, CountState]:
        if isinstance(preconditioner, Tensor) and isinstance(grads, Tensor):
            return grads * preconditioner, state
        return tree_map(lambda g, m: g * m, grads, preconditioner), state

    return GradientTransformation(init, update)
