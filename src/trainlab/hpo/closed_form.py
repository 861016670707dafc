"""Closed forms for gradient descent on least squares as a function of the learning rate.

J(w) = (1/n)‖Xw − t‖², gradient (2/n)Xᵀ(Xw − t). With the residual r_k = Xw_k − t and
K = XXᵀ (n×n), one GD step is r_{k+1} = (I − (2η/n)K) r_k, so from a = Xw₀ − t
(CLAIMS.md §2, hpo.one-step-optimal-lr / hpo.multi-step-loss):

    L_t(η) = (1/n)‖(I − (2η/n)K)^t a‖² = (1/n) Σ_i c_i² (1 − 2ηλ_i/n)^{2t},

with K = QΛQᵀ and c = Qᵀa. Differentiating each term,

    dL_t/dη   = −(4t/n²) Σ_i c_i² λ_i (1 − 2ηλ_i/n)^{2t−1},
    d²L_t/dη² = (8t(2t − 1)/n³) Σ_i c_i² λ_i² (1 − 2ηλ_i/n)^{2t−2} ≥ 0,

a sum of even powers: L_t is convex in η for every t. At t = 1 it is a quadratic,
L₁(η) = (1/n)(aᵀa − (4η/n) aᵀKa + (4η²/n²) aᵀK²a), minimised at

    η* = (n/2) · aᵀKa / aᵀK²a,

undefined only when Ka = 0 (then Xᵀa = 0: w₀ is already a minimiser).

>>> import torch
>>> X = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
>>> cf = LeastSquaresClosedForm(X, torch.tensor([1.0, 1.0], dtype=torch.float64))
>>> round(cf.eta_star(), 6)      # (2/2)·(1 + 4)/(1 + 16)
0.294118
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from trainlab.errors import ArgumentError
from trainlab.tolerance import gamma

__all__ = ["LeastSquaresClosedForm", "LossCurves"]


@dataclass
class LossCurves:
    """L_t(η) on a grid of η for several t, with each t's minimiser η*_t (arrays behind a figure)."""

    etas: list[float]
    steps: list[int]
    losses: list[list[float]]  # losses[i][j] = L_{steps[i]}(etas[j])
    eta_star: list[float]  # argmin_η L_t(η) per t
    loss_star: list[float]
    measured: list[list[float]] | None = None  # the same from actually training, where run
    stable_lr: float | None = None

    def plot(self, ax=None):  # noqa: ANN001, ANN201  (a matplotlib Axes)
        from trainlab.plotting import subplots_or

        fig, ax = subplots_or(ax)
        for i, t in enumerate(self.steps):
            (line,) = ax.plot(self.etas, self.losses[i], label=f"t = {t}")
            if self.measured is not None:
                ax.plot(self.etas[::4], self.measured[i][::4], "o", ms=3, color=line.get_color())
            ax.plot(
                [self.eta_star[i]],
                [self.loss_star[i]],
                "*",
                ms=12,
                color=line.get_color(),
                markeredgecolor="black",
            )
        if self.stable_lr is not None:
            ax.axvline(self.stable_lr, ls=":", color="grey", label="2/λ_max")
        ax.set_yscale("log")
        ax.set_xlabel("learning rate η")
        ax.set_ylabel("L_t(η) = (1/n)‖Xw_t − t‖²")
        ax.set_title("L_t(η): closed form (lines), training (dots), η*_t (★)")
        ax.legend(fontsize=8)
        return fig


@dataclass
class LeastSquaresClosedForm:
    """L_t(η) and its derivatives for GD from ``w0`` (0 by default) on J(w) = (1/n)‖Xw − t‖²."""

    X: Tensor
    t: Tensor
    w0: Tensor | None = None
    eigenvalues: Tensor = field(init=False)
    coefficients: Tensor = field(init=False)

    def __post_init__(self) -> None:
        X = self.X.to(torch.float64)
        if X.ndim != 2 or self.t.shape != (X.shape[0],):
            raise ArgumentError("X", tuple(X.shape), "X of shape (n, d) and t of shape (n,)")
        w0 = torch.zeros(X.shape[1], dtype=torch.float64) if self.w0 is None else self.w0.to(torch.float64)
        self.n = X.shape[0]
        self.a = X @ w0 - self.t.to(torch.float64)  # a = Xw₀ − t, (n,)
        self.K = X @ X.T  # K = XXᵀ, (n, n)
        lam, Q = torch.linalg.eigh(self.K)
        self.eigenvalues = lam.clamp_min(0.0)  # K is PSD; clip rounding below 0
        self.coefficients = Q.T @ self.a  # c = Qᵀa

    @property
    def stable_lr(self) -> float:
        """2/λ_max(∇²J) = n/λ_max(K): GD diverges for larger η."""
        return self.n / float(self.eigenvalues.max())

    def _factor(self, eta: float) -> Tensor:
        return 1 - 2 * eta * self.eigenvalues / self.n  # (1 − 2ηλ_i/n)

    def loss(self, eta: float, steps: int) -> float:
        """L_t(η) = (1/n) Σ c_i² (1 − 2ηλ_i/n)^{2t}."""
        return float((self.coefficients**2 * self._factor(eta) ** (2 * steps)).sum() / self.n)

    def dloss(self, eta: float, steps: int) -> float:
        """dL_t/dη = −(4t/n²) Σ c_i² λ_i (1 − 2ηλ_i/n)^{2t−1}."""
        c2, lam, n = self.coefficients**2, self.eigenvalues, self.n
        return float(-(4 * steps / n**2) * (c2 * lam * self._factor(eta) ** (2 * steps - 1)).sum())

    def d2loss(self, eta: float, steps: int) -> float:
        """d²L_t/dη² = (8t(2t − 1)/n³) Σ c_i² λ_i² (1 − 2ηλ_i/n)^{2t−2} ≥ 0."""
        c2, lam, n = self.coefficients**2, self.eigenvalues, self.n
        return float(
            (8 * steps * (2 * steps - 1) / n**3) * (c2 * lam**2 * self._factor(eta) ** (2 * steps - 2)).sum()
        )

    def eta_star(self) -> float:
        """η* = (n/2)·aᵀKa / aᵀK²a, the minimiser of L₁ (computed without the eigendecomposition)."""
        Ka = self.K @ self.a
        num, den = float(self.a @ Ka), float(Ka @ Ka)
        if den == 0.0:
            raise ArgumentError(
                "X",
                "XXᵀa = 0",
                "a starting point that is not already a minimiser "
                "(η* is undefined: every η gives the same loss)",
            )
        return self.n / 2 * num / den

    def minimiser(self, steps: int, tol: float = 1e-15) -> float:
        """argmin_η L_t(η), by bisection on the (increasing) closed-form dL_t/dη.

        Every term is minimised at η = n/(2λ_i), so the minimiser lies in
        [n/(2λ_max), n/(2λ_min)] over the λ_i > 0 with c_i ≠ 0.
        """
        if steps == 1:
            return self.eta_star()
        mask = (self.eigenvalues > self.eigenvalues.max() * 1e-12) & (self.coefficients.abs() > 0)
        if not bool(mask.any()):
            raise ArgumentError("X", "XXᵀa = 0", "a starting point that is not already a minimiser")
        lo = self.n / (2 * float(self.eigenvalues[mask].max()))
        hi = self.n / (2 * float(self.eigenvalues[mask].min()))
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if self.dloss(mid, steps) > 0:
                hi = mid
            else:
                lo = mid
            if hi - lo <= tol * hi:
                break
        return 0.5 * (lo + hi)

    # -- rounding: what a trained or closed-form number may be off by (trainlab.tolerance) -------

    @property
    def condition_number(self) -> float:
        """κ(X) = √(λ_max/λ_min) of K = XXᵀ (X of full row rank)."""
        lam = self.eigenvalues
        return float((lam.max() / lam.min()).sqrt())

    @property
    def stable_rank(self) -> float:
        """ρ = ‖X‖_F²/‖X‖₂² = tr K/λ_max(K)."""
        return float(self.eigenvalues.sum() / self.eigenvalues.max())

    def hypergradient_scale(self, steps: int) -> float:
        """S_t = 4t·λ_max‖a‖²/n²: a bound on Σ_k |adjoint_k|·|∇J(w_k)|, the terms whose sum is dL_t/dη
        (each factor ≤ (2/n)σ_max‖a‖ while GD is stable), so the scale its rounding is relative to."""
        return 4 * steps * float(self.eigenvalues.max()) * float(self.a @ self.a) / self.n**2

    def trained_rounding(self, eta: float, steps: int) -> float:
        """ε_run: relative rounding of a number computed by training ``steps`` GD steps at η from w₀ = 0
        (the loss relative to L₀ = ‖a‖²/n; a hypergradient relative to :meth:`hypergradient_scale`).

        One step w ← w − η(2/n)Xᵀ(Xw − t) adds at most γ_W·gain·(‖w‖ + ‖w*‖) to w (W = d + n + 3
        terms, gain = 1 + 4η‖X‖_F²/n), while ‖w_k‖ ≤ (1 + q^k)‖w*‖ and ‖w*‖ ≤ ‖a‖/σ_min; a residual
        error is carried by I − (2η/n)K, of norm q = max_i |1 − 2ηλ_i/n| (≤ 1 while stable). In the
        residual that is σ_max·(2 + q^t)·Σ_k q^k·γ_W·gain·‖a‖/σ_min, times 2‖r_t‖/‖a‖ ≤ 2q^t for the
        loss; the last residual and its norm add γ_(d+1)(1 + 2√ρ·κ) + γ_n. (Stable η: q ≤ 1.)
        """
        d = self.X.shape[1]
        q = max(1.0, float((1 - 2 * eta * self.eigenvalues / self.n).abs().max()))
        carried = steps if q == 1.0 else (q**steps - 1) / (q - 1)
        kappa, rho = self.condition_number, self.stable_rank
        gain = 1 + 4 * eta * float(self.eigenvalues.sum()) / self.n
        per_run = 2 * kappa * (2 + q**steps) * carried * gamma(d + self.n + 3) * gain
        return per_run * q**steps + gamma(d + 1) * (1 + 2 * rho**0.5 * kappa) + gamma(self.n)

    def closed_form_rounding(self, steps: int) -> float:
        """ε_cf: relative rounding of :meth:`loss` / :meth:`dloss` (to L₀ / S_t), via the eigendecomposition.

        K is formed (γ_d·ρ relative) and decomposed (backward error n·γ_(3n)), so each λ_i moves by
        ε_K·λ_max; (1 − 2ηλ/n)^(2t) is 4t/λ_max-Lipschitz in λ for a stable η: 4t·ε_K, plus the sum (γ_(n+1)).
        """
        d = self.X.shape[1]
        eps_K = gamma(d) * self.stable_rank + self.n * gamma(3 * self.n)
        return 4 * steps * eps_K + gamma(self.n + 1)

    def eta_star_rounding(self) -> float:
        """Relative rounding of :meth:`eta_star`: K (γ_d·ρ), Ka and the two dot products (γ_(2n)), the
        first amplified by the cancellation ‖a‖‖Ka‖/aᵀKa of aᵀKa."""
        Ka = self.K @ self.a
        cancel = float(self.a.norm() * Ka.norm() / (self.a @ Ka))
        return 4 * (gamma(self.X.shape[1]) * self.stable_rank + gamma(2 * self.n)) * cancel

    def curves(self, steps: list[int], etas: np.ndarray | list[float]) -> LossCurves:
        etas = [float(e) for e in etas]
        stars = [self.minimiser(t) for t in steps]
        return LossCurves(
            etas,
            list(steps),
            [[self.loss(e, t) for e in etas] for t in steps],
            stars,
            [self.loss(s, t) for s, t in zip(stars, steps, strict=True)],
            stable_lr=self.stable_lr,
        )
