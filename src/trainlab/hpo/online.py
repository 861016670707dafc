"""Online hypergradient descent: SGD-HD and Adam-HD (Baydin et al., ICLR 2018).

Baydin, Cornish, Martínez Rubio, Schmidt & Wood, *Online Learning Rate Adaptation with
Hypergradient Descent*, 2018. With d_{t−1} the last step's direction
(θ_{t−1} = θ_{t−2} − α d_{t−1}), the derivative of the current loss with respect to the
learning rate used one step earlier is

    ∂f(θ_{t−1})/∂α = −∇f(θ_{t−1}) · d_{t−1},

so before each step the learning rate takes a gradient step of its own (their eq. 4–6):

    α_t = α_{t−1} + β ∇f(θ_{t−1}) · d_{t−1}           (additive, β = ``hypergrad_lr``)

with d = ∇f (SGD-HD), d = the momentum buffer (SGDN-HD) or d = m̂/(√v̂ + ε) (Adam-HD).
The additive rule's β has units of 1/‖∇f‖²; ``multiplicative=True`` uses the scale-free
form α_t = α_{t−1}(1 + β cos∠(∇f(θ_{t−1}), d_{t−1})), which Baydin et al. also discuss.

Short-horizon bias: the rule is greedy. It follows ∂f(θ_{t−1})/∂α, the effect of α on the
*next* loss only, so it settles where consecutive steps stop agreeing, near the rate that is
best for one step, not the rate that is best over the whole run (Wu, Ren, Liao & Grosse,
*Understanding Short-Horizon Bias in Stochastic Meta-Optimization*, ICLR 2018). On
least squares the one-step optimum η*₁ = (n/2)·aᵀKa/aᵀK²a differs from the best constant
rate for a long run, sometimes even exceeding 2/λ_max where a long run diverges
(``hpo.multi-step-loss`` records η*_t for several t; ``hpo.learn-the-lr`` draws η*₁, the
grid optimum and the online rate together). Full-batch on a quadratic, SGD-HD keeps raising
η while consecutive gradients agree and then hovers near the edge of stability.

Both classes are ordinary ``torch.optim.Optimizer`` subclasses: ``zero_grad``,
``backward``, ``step`` in any loop; the adapted rate is ``param_groups[i]["lr"]`` (so
schedulers and loggers see it). With ``hypergrad_lr=0`` they equal ``torch.optim.SGD`` and
``torch.optim.Adam`` step for step (tests/hpo).

>>> import torch
>>> w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
>>> opt = SGDHD([w], lr=0.1, hypergrad_lr=0.01)
>>> for _ in range(3):
...     opt.zero_grad(); (w ** 2).sum().backward(); opt.step()
>>> opt.param_groups[0]["lr"] > 0.1      # consecutive gradients agreed: the rate grew
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import Tensor

from trainlab.errors import ArgumentError

__all__ = ["AdamHD", "SGDHD"]


def _check(
    name: str, value: float, low: float = 0.0, high: float = math.inf, closed_high: bool = False
) -> None:
    ok = (isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
          and low <= value and (value <= high if closed_high else value < high))
    if not ok:
        raise ArgumentError(name, value, f"a number in [{low}, {high}{']' if closed_high else ')'}")


def _closure_loss(closure: Callable[[], Tensor] | None) -> Tensor | None:
    """torch.optim's closure protocol: the loss re-evaluated with gradients on (None without one)."""
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()


class _HypergradientMixin:
    param_groups: list[dict[str, Any]]
    state: dict[Tensor, dict[str, Any]]

    def _adapted_groups(self) -> Iterator[tuple[dict[str, Any], list[Tensor], list[Tensor]]]:
        """Each group with its parameters and ∇f(θ_{t−1}) (L2 term included, torch.optim's d_p),
        after its learning rate has been adapted: what both optimizers' steps start from."""
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            grads = [
                p.grad.add(p, alpha=group["weight_decay"]) if group["weight_decay"] else p.grad
                for p in params
            ]
            self._adapt_lr(group, grads, params)
            yield group, params, grads

    def _adapt_lr(self, group: dict[str, Any], grads: list[Tensor], params: list[Tensor]) -> None:
        """α ← α + β ∇f(θ_{t−1})·d_{t−1} (or the multiplicative form), before the step."""
        if group["hypergrad_lr"] == 0:  # torch.optim's SGD/Adam exactly
            return
        dot, gg, dd, have = 0.0, 0.0, 0.0, False
        for p, g in zip(params, grads, strict=True):
            prev = self.state[p].get("prev_direction")
            if prev is None:
                continue
            have = True
            # a complex entry is two real coordinates (as torch.optim treats it): Re(g·conj(d))
            g = torch.view_as_real(g) if g.is_complex() else g
            prev = torch.view_as_real(prev) if prev.is_complex() else prev
            dot += float(torch.sum(g * prev))
            if group["multiplicative"]:
                gg += float(torch.sum(g * g))
                dd += float(torch.sum(prev * prev))
        if not have:
            return
        beta = group["hypergrad_lr"]
        if group["multiplicative"]:
            norm = math.sqrt(gg * dd)
            cos = dot / norm if norm > 0 else 0.0
            group["lr"] = group["lr"] * (1 + beta * cos)
        else:
            group["lr"] = max(group["lr"] + beta * dot, 0.0)
        group.setdefault("lr_history", []).append(group["lr"])


class SGDHD(_HypergradientMixin, torch.optim.Optimizer):
    """SGD (optionally heavy-ball momentum and L2 weight decay) whose learning rate adapts online.

    Arguments as ``torch.optim.SGD`` plus ``hypergrad_lr`` (β ≥ 0) and ``multiplicative``.
    The direction d is what was subtracted (times α) last step: g + λθ, or the momentum buffer.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        hypergrad_lr: float = 1e-3,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        multiplicative: bool = False,
    ):
        _check("lr", lr)
        # the multiplicative rule α(1 + β cos) keeps α positive only for β < 1
        _check("hypergrad_lr", hypergrad_lr, 0.0, 1.0 if multiplicative else math.inf)
        _check("momentum", momentum, 0.0, 1.0)
        _check("weight_decay", weight_decay)
        defaults = {
            "lr": lr,
            "hypergrad_lr": hypergrad_lr,
            "momentum": momentum,
            "weight_decay": weight_decay,
            "multiplicative": multiplicative,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        loss = _closure_loss(closure)
        for group, params, grads in self._adapted_groups():
            lr, mu = group["lr"], group["momentum"]
            for p, g in zip(params, grads, strict=True):
                state = self.state[p]
                if mu:
                    buf = state.get("momentum_buffer")
                    buf = g.clone() if buf is None else buf.mul_(mu).add_(g)
                    state["momentum_buffer"] = buf
                    d = buf
                else:
                    d = g
                p.add_(d, alpha=-lr)
                state["prev_direction"] = d.clone()
        return loss


class AdamHD(_HypergradientMixin, torch.optim.Optimizer):
    """Adam whose learning rate adapts online (Adam-HD); d = m̂/(√v̂ + ε), torch's ε placement.

    Arguments as ``torch.optim.Adam`` (L2 ``weight_decay`` added to the gradient) plus
    ``hypergrad_lr`` (β; Baydin et al. use 1e-7 … 1e-8 for their additive Adam-HD) and
    ``multiplicative``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        hypergrad_lr: float = 1e-7,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        multiplicative: bool = False,
    ):
        _check("lr", lr)
        # the multiplicative rule α(1 + β cos) keeps α positive only for β < 1
        _check("hypergrad_lr", hypergrad_lr, 0.0, 1.0 if multiplicative else math.inf)
        _check("betas[0]", betas[0], 0.0, 1.0)
        _check("betas[1]", betas[1], 0.0, 1.0)
        _check("eps", eps)
        _check("weight_decay", weight_decay)
        defaults = {
            "lr": lr,
            "hypergrad_lr": hypergrad_lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "multiplicative": multiplicative,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        loss = _closure_loss(closure)
        for group, params, grads in self._adapted_groups():
            lr, (b1, b2), eps = group["lr"], group["betas"], group["eps"]
            for param, g in zip(params, grads, strict=True):
                state = self.state[param]
                p = param
                if p.is_complex():  # as torch.optim.Adam: real and imaginary parts are coordinates
                    p, g = torch.view_as_real(p), torch.view_as_real(g)
                if "step" not in state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                k = state["step"]
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.lerp_(g, 1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                bias_correction1 = 1 - b1**k
                bias_correction2_sqrt = math.sqrt(1 - b2**k)
                # torch.optim.Adam's arithmetic: θ ← θ − (α/bc₁)·m / (√v/√bc₂ + ε)
                denom = (v.sqrt() / bias_correction2_sqrt).add_(eps)
                p.addcdiv_(m, denom, value=-lr / bias_correction1)
                state["prev_direction"] = (m / bias_correction1) / denom
        return loss
