"""The learning rate at which constant-LR full-batch GD stops converging, found by bisection.

On a quadratic with Hessian H, GD's error along the eigenvector of λ is multiplied by
(1 − ηλ) every step, so GD converges for η < 2/λ_max and diverges above (every course on
optimisation; Cohen et al. 2021 §2). Near a minimum w* of any smooth loss the same holds
for the local quadratic model: the minimum is linearly stable for GD iff η ≤ 2/λ_max(w*)
(Wu, Ma & E 2018, "How SGD selects the global minima").

What is measured. GD runs ``steps`` steps at each trial η from a start w₀; η *diverges*
when the loss after the horizon is not below the starting loss (L_T ≥ L_0, or not finite).
The threshold is bracketed on a log grid and the bracket shrunk by k-section (bisection
with several trial LRs per round, run together with ``torch.func.vmap``) until its
relative width is below ``rtol``. The first diverging LR of each round is kept, so on a
non-monotone network the threshold is the *smallest* LR found to fail.

What theory predicts for a finite horizon. Just above 2/λ, at η = (2/λ)(1 + δ), the top
mode grows by |1 − ηλ| = 1 + 2δ per step while the others shrink, so L_T exceeds L_0 only
once (1 + 2δ)^{2T} ≥ L_0 / L_top, with L_top = (g₀·v)²/(2λ) the part of the starting
loss in the top eigendirection v (g₀ the starting gradient). Hence the measured threshold
lies in [2/λ, (2/λ)(1 + δ_T)] with δ_T = ((L_0/L_top)^{1/(2T)} − 1)/2 ≈ ln(L_0/L_top)/(4T)
(:func:`horizon_slack`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from trainlab.errors import ArgumentError

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from trainlab.loops.sharpness import FlatLoss

__all__ = ["GDRuns", "Threshold", "divergence_threshold", "gd_runs", "horizon_slack", "minimize"]


@dataclass
class GDRuns:
    """Loss curves of constant-LR full-batch GD, one row per learning rate."""

    lrs: list[float]
    losses: Tensor  # (K, steps + 1), inf once a run has left the finite numbers

    @property
    def diverged(self) -> list[bool]:
        """L_T ≥ L_0 or non-finite: the run did not make progress over the horizon."""
        end, start = self.losses[:, -1], self.losses[:, 0]
        return [not bool(e < s) for e, s in zip(end, start, strict=True)]

    def plot(self, ax: Axes | None = None, labels: list[str] | None = None) -> Axes:
        from trainlab.plotting import subplots_or

        _, ax = subplots_or(ax)
        for i, lr in enumerate(self.lrs):
            curve = self.losses[i].clamp(max=1e30).tolist()
            ax.semilogy(range(len(curve)), curve, label=labels[i] if labels else f"η = {lr:.5g}")
        ax.set_xlabel("GD step")
        ax.set_ylabel("training loss")
        ax.legend(fontsize=7)
        return ax


def gd_runs(f: FlatLoss, lrs: list[float] | Tensor, steps: int, w0: Tensor | None = None) -> GDRuns:
    """Run w ← w − η ∇L(w) for ``steps`` steps from ``w0`` at every η in ``lrs`` (vectorised).

    A run whose loss is not finite stays at inf (its iterate is frozen, so NaNs do not spread).
    """
    if steps < 1:
        raise ArgumentError("steps", steps, "a positive number of GD steps")
    w0 = f.w0 if w0 is None else w0
    eta = torch.as_tensor(lrs, dtype=w0.dtype).reshape(-1, 1)  # (K, 1)
    W = w0.detach().expand(len(eta), -1).clone()  # (K, d)
    grad_and_loss = torch.func.vmap(torch.func.grad_and_value(f))
    losses = torch.empty(len(eta), steps + 1, dtype=w0.dtype)
    alive = torch.ones(len(eta), dtype=torch.bool)
    for t in range(steps + 1):
        g, loss = grad_and_loss(W)
        ok = torch.isfinite(loss) & torch.isfinite(g).all(dim=1) & alive
        losses[:, t] = torch.where(ok, loss, torch.full_like(loss, math.inf))
        alive = ok
        if t < steps:
            W = torch.where(alive[:, None], W - eta * g, W)
    return GDRuns([float(e) for e in eta.reshape(-1)], losses.detach())


def horizon_slack(
    f: FlatLoss,
    lambda_max: float,
    eigenvector: Tensor,
    steps: int,
    w0: Tensor | None = None,
    loss_min: float = 0.0,
) -> float:
    """δ_T: how far above 2/λ a horizon of T = ``steps`` steps places the threshold.

    From (1 + 2δ)^{2T}·L_top = L_0 (module doc): δ_T = ((L_0/L_top)^{1/(2T)} − 1)/2, where
    L_0 = L(w₀) − ``loss_min`` is the starting loss above the minimum and L_top = (g₀·v)²/(2λ)
    the quadratic model's share of it in the top eigendirection v (g₀ the gradient at w₀).
    """
    w0 = f.w0 if w0 is None else w0
    w = w0.detach().requires_grad_(True)
    loss = f(w)
    (g,) = torch.autograd.grad(loss, w)
    v = eigenvector.to(g.dtype)
    l_top = float(g @ v) ** 2 / (2 * lambda_max)
    l_0 = float(loss.detach()) - loss_min
    if l_top <= 0 or l_0 <= 0:
        return math.inf
    return (max(l_0 / l_top, 1.0) ** (1 / (2 * steps)) - 1) / 2


@dataclass
class Threshold:
    """The measured divergence threshold: the bracket [stable_lr, diverging_lr] and its history."""

    stable_lr: float
    diverging_lr: float
    steps: int
    rounds: int
    runs: int
    tried: list[tuple[float, bool]] = field(default_factory=list)

    @property
    def lr(self) -> float:
        """The geometric mid-point of the final bracket."""
        return math.sqrt(self.stable_lr * self.diverging_lr)

    @property
    def rel_width(self) -> float:
        return self.diverging_lr / self.stable_lr - 1.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "threshold_lr": self.lr,
            "stable_lr": self.stable_lr,
            "diverging_lr": self.diverging_lr,
            "steps": self.steps,
            "rounds": self.rounds,
            "gd_runs": self.runs,
        }


def divergence_threshold(
    f: FlatLoss,
    *,
    steps: int,
    w0: Tensor | None = None,
    low: float = 1e-4,
    high: float = 1e4,
    rtol: float = 1e-4,
    per_round: int = 15,
    max_rounds: int = 12,
) -> Threshold:
    """Smallest LR at which GD from ``w0`` fails to lower the loss in ``steps`` steps (module doc).

    The first round tries ``per_round`` LRs spaced evenly in log from ``low`` to ``high``; a
    threshold outside that range is an error. Each later round tries ``per_round`` LRs
    inside the current bracket, so the bracket shrinks by a factor of about per_round + 1.
    """
    if not 0 < low < high:
        raise ArgumentError("low/high", (low, high), "0 < low < high")
    tried: list[tuple[float, bool]] = []
    runs = 0

    def probe(lrs: list[float]) -> list[bool]:
        nonlocal runs
        d = gd_runs(f, lrs, steps, w0).diverged
        runs += len(lrs)
        tried.extend(zip(lrs, d, strict=True))
        return d

    grid = torch.logspace(math.log10(low), math.log10(high), per_round, dtype=torch.float64).tolist()
    d = probe(grid)
    if not any(d):
        raise ValueError(f"GD did not diverge at any LR up to {high:g}")
    first = d.index(True)
    if first == 0:
        raise ValueError(f"GD diverged already at the smallest LR {low:g}")
    lo, hi = grid[first - 1], grid[first]
    rounds = 1
    while hi / lo - 1 > rtol and rounds < max_rounds:
        ratio = hi / lo
        inner = [lo * ratio ** ((i + 1) / (per_round + 1)) for i in range(per_round)]
        d = probe(inner)
        if any(d):
            first = d.index(True)
            hi = inner[first]
            lo = inner[first - 1] if first > 0 else lo
        else:
            lo = inner[-1]
        rounds += 1
    return Threshold(lo, hi, steps, rounds, runs, tried)


def minimize(
    f: FlatLoss, w0: Tensor | None = None, *, max_iter: int = 2000, newton_steps: int = 8
) -> tuple[Tensor, float, float]:
    """A minimum near ``w0``: (w*, L(w*), ‖∇L(w*)‖).

    L-BFGS with strong-Wolfe line search gets close; then up to ``newton_steps`` Newton steps
    w ← w − H⁺∇L (least-squares solve: at an interpolating minimum H is singular) polish the
    gradient down to rounding, each kept only if it lowers the gradient. Newton needs the
    full Hessian, so it is used only for up to 2,000 parameters. Used to place GD where the
    local quadratic model is the whole story.
    """
    w = (f.w0 if w0 is None else w0).detach().clone().requires_grad_(True)
    opt = torch.optim.LBFGS(
        [w],
        lr=1,
        max_iter=max_iter,
        tolerance_grad=1e-14,
        tolerance_change=0,
        history_size=50,
        line_search_fn="strong_wolfe",
    )

    def closure() -> Tensor:
        opt.zero_grad()
        loss = f(w)
        loss.backward()
        return loss

    opt.step(closure)

    def loss_and_grad(x: Tensor) -> tuple[float, Tensor]:
        x = x.detach().clone().requires_grad_(True)
        loss = f(x)
        (g,) = torch.autograd.grad(loss, x)
        return float(loss.detach()), g

    w_star = w.detach()
    loss, g = loss_and_grad(w_star)
    if w_star.numel() <= 2000:
        for _ in range(newton_steps):
            H = torch.autograd.functional.hessian(f, w_star)  # (d, d)
            step = torch.linalg.lstsq(H, g.unsqueeze(1), rcond=1e-12, driver="gelsd").solution.squeeze(1)
            candidate = w_star - step
            c_loss, c_g = loss_and_grad(candidate)
            if not (math.isfinite(c_loss) and float(c_g.norm()) < float(g.norm())):
                break
            w_star, loss, g = candidate, c_loss, c_g
    return w_star, loss, float(g.norm())
