"""The usual optimizers as chains of transforms, each equal to its ``torch.optim`` twin.

Every function takes ``torch.optim``'s hyperparameter names and defaults and returns a
:class:`~trainlab.functional.transforms.GradientTransformation`. In float64 the
parameters after each step equal ``torch.optim``'s to about 1e-15 (tests/functional).

>>> import torch
>>> from trainlab.functional import apply_updates, sgd
>>> opt = sgd(lr=0.1, momentum=0.9)
>>> w = torch.zeros(2, dtype=torch.float64)
>>> state = opt.init(w)
>>> updates, state = opt.update(torch.tensor([1.0, -2.0], dtype=torch.float64), state, w)
>>> apply_updates(w, updates).tolist()
[-0.1, 0.2]
"""

from __future__ import annotations

from trainlab.errors import ArgumentError
from trainlab.functional.transforms import (
    GradientTransformation,
    Hyperparameter,
    Schedule,
    add_decayed_weights,
    chain,
    inverse_time_decay,
    scale_by_adagrad,
    scale_by_adam,
    scale_by_diagonal,
    scale_by_learning_rate,
    scale_by_rms,
    trace,
)
from trainlab.functional.tree import Tree

__all__ = ["adagrad", "adam", "adamw", "course_rmsprop", "preconditioned_sgd", "rmsprop", "sgd"]

LearningRate = Hyperparameter | Schedule


def _l2(weight_decay: Hyperparameter) -> list[GradientTransformation]:
    return [add_decayed_weights(weight_decay)] if _nonzero(weight_decay) else []


def _nonzero(value: Hyperparameter) -> bool:
    return not (isinstance(value, int | float) and value == 0)


def sgd(
    lr: LearningRate = 1e-3,
    momentum: Hyperparameter = 0.0,
    dampening: Hyperparameter = 0.0,
    weight_decay: Hyperparameter = 0.0,
    nesterov: bool = False,
) -> GradientTransformation:
    """``torch.optim.SGD``: d = g + λw; b = d (first step) then μb + (1 − τ)d; w ← w − η(b or d + μb).

    ``weight_decay`` is L2 in the gradient, so it passes through the momentum buffer.
    """
    if nesterov and (not _nonzero(momentum) or _nonzero(dampening)):
        raise ArgumentError("nesterov", nesterov, "momentum > 0 and dampening = 0 for Nesterov momentum")
    parts = _l2(weight_decay)
    if _nonzero(momentum):
        parts.append(trace(momentum, dampening, nesterov))
    return chain(*parts, scale_by_learning_rate(lr))


def preconditioned_sgd(
    lr: LearningRate,
    preconditioner: Tree,
    momentum: Hyperparameter = 0.0,
    weight_decay: Hyperparameter = 0.0,
    decoupled: bool = False,
) -> GradientTransformation:
    """w ← w − η M ∇J(w) with a fixed positive diagonal M (optionally heavy-ball momentum).

    ``weight_decay`` λ is L2 in the gradient (then preconditioned: w ← w − η M(∇J + λw)),
    or with ``decoupled=True`` the decay w ← (1 − ηλ) w applied outside the preconditioner.
    """
    parts = [] if decoupled else _l2(weight_decay)
    parts.append(scale_by_diagonal(preconditioner))
    if _nonzero(momentum):
        parts.append(trace(momentum))
    if decoupled and _nonzero(weight_decay):
        parts.append(add_decayed_weights(weight_decay))
    return chain(*parts, scale_by_learning_rate(lr))


def adagrad(
    lr: LearningRate = 1e-2,
    lr_decay: float = 0.0,
    weight_decay: Hyperparameter = 0.0,
    initial_accumulator_value: Hyperparameter = 0.0,
    eps: Hyperparameter = 1e-10,
) -> GradientTransformation:
    """``torch.optim.Adagrad``: G ← G + g², w ← w − η_k g/(√G + ε), η_k = η/(1 + k·lr_decay)."""
    if lr_decay:
        if callable(lr):
            raise ArgumentError("lr", lr, "a number or tensor when lr_decay is set")
        lr = inverse_time_decay(lr, lr_decay)
    return chain(
        *_l2(weight_decay), scale_by_adagrad(initial_accumulator_value, eps), scale_by_learning_rate(lr)
    )


def rmsprop(
    lr: LearningRate = 1e-2,
    alpha: Hyperparameter = 0.99,
    eps: Hyperparameter = 1e-8,
    weight_decay: Hyperparameter = 0.0,
    momentum: Hyperparameter = 0.0,
    centered: bool = False,
) -> GradientTransformation:
    """``torch.optim.RMSprop``: v ← αv + (1 − α)g², w ← w − η g/(√v + ε) (momentum on g/(√v + ε))."""
    parts = [*_l2(weight_decay), scale_by_rms(alpha, eps, centered)]
    if _nonzero(momentum):
        parts.append(trace(momentum))  # torch's buffer starts at 0: b₁ = u₁, as trace's first step
    return chain(*parts, scale_by_learning_rate(lr))


def course_rmsprop(
    lr: LearningRate = 0.1, beta: Hyperparameter = 0.9, eps: Hyperparameter = 1e-8, eps_in_sqrt: bool = False
) -> GradientTransformation:
    """The course's RMSProp: v ← βv + (1 − β)g², w ← w − η g/(√v + ε), from v₀ = 0.

    The update has the same form as ``torch.optim.RMSprop`` (ε outside the root, v from 0,
    no bias correction); what differs is the defaults: the course's β = 0.9 and η = 0.1
    against torch's ``alpha=0.99``, ``lr=0.01``, and no momentum or centring. On the first
    step from v₀ = 0 the update is η g/(√(1 − β)|g| + ε) ≈ η/√(1 − β) · sign(g): about 3.16η
    here, 10η for torch's α. ``eps_in_sqrt=True`` gives the variant g/√(v + ε) (Hinton's
    slides and TensorFlow put ε there).
    """
    return chain(scale_by_rms(beta, eps, eps_in_sqrt=eps_in_sqrt), scale_by_learning_rate(lr))


def adam(
    lr: LearningRate = 1e-3,
    betas: tuple[Hyperparameter, Hyperparameter] = (0.9, 0.999),
    eps: Hyperparameter = 1e-8,
    weight_decay: Hyperparameter = 0.0,
    amsgrad: bool = False,
) -> GradientTransformation:
    """``torch.optim.Adam``: L2 ``weight_decay`` is added to g *before* the moments (coupled)."""
    return chain(
        *_l2(weight_decay), scale_by_adam(betas[0], betas[1], eps, amsgrad), scale_by_learning_rate(lr)
    )


def adamw(
    lr: LearningRate = 1e-3,
    betas: tuple[Hyperparameter, Hyperparameter] = (0.9, 0.999),
    eps: Hyperparameter = 1e-8,
    weight_decay: Hyperparameter = 1e-2,
    amsgrad: bool = False,
) -> GradientTransformation:
    """``torch.optim.AdamW``: w ← w − η(m̂/(√v̂ + ε) + λw); the decay skips the adaptive rescaling."""
    parts = [scale_by_adam(betas[0], betas[1], eps, amsgrad)]
    if _nonzero(weight_decay):
        parts.append(add_decayed_weights(weight_decay))
    return chain(*parts, scale_by_learning_rate(lr))
