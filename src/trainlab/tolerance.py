"""Float tolerances derived from the problem: error bounds in place of fixed constants.

A claim that compares a computed number with theory's must allow for two errors: the
method's own (it stopped at a residual, after finitely many contracting steps) and
floating-point rounding. Both are bounded here from quantities of the drawn instance (its
condition number, the number of steps, the step size) and the unit roundoff of the dtype,
so a tolerance follows the instance instead of being tuned on a few of them. The claims
record each bound beside what they measured (:func:`within`).

Rounding model (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed. 2002,
§2–3, first order in the unit roundoff u = eps/2, 1.1e-16 in float64): a sum or inner
product of m terms is computed with error at most γ_m·Σ|terms|, γ_m = m·u/(1 − m·u). These
are worst-case bounds: the rounding actually seen is usually far smaller (errors of random
sign add like a random walk), which is why a measured value sits well below a rounding
bound while it sits close to a bound set by a stopping rule (:func:`residual_error_bound`).

>>> round(unit_roundoff() * 2**53)
1
>>> kappa = torch.tensor(3.0, dtype=torch.float64)  # stopped at ‖Xw − t‖/‖t‖ ≤ 1e-10
>>> float(residual_error_bound(kappa, 1e-10))
3e-10
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from trainlab.checks import Checks

__all__ = [
    "carried",
    "closed_form_rounding",
    "condition_number",
    "gamma",
    "heavy_ball_amplification",
    "iteration_rounding",
    "residual_error_bound",
    "stable_rank",
    "unit_roundoff",
    "within",
]


def unit_roundoff(dtype: torch.dtype = torch.float64) -> float:
    """u = eps/2: the largest relative error of rounding one real number to ``dtype``."""
    return torch.finfo(dtype).eps / 2


def gamma(m: float, dtype: torch.dtype = torch.float64) -> float:
    """γ_m = m·u/(1 − m·u): the relative error bound of a sum or inner product of m terms."""
    mu = m * unit_roundoff(dtype)
    if not 0 <= mu < 1:
        raise ValueError(f"γ_{m} is undefined in {dtype} (m·u = {mu} ≥ 1)")
    return mu / (1 - mu)


def condition_number(X: Tensor) -> Tensor:
    """κ(X) = σ_max/σ_min over the min(n, d) singular values (X of full rank); batched: (...,)."""
    s = torch.linalg.svdvals(X)
    return s[..., 0] / s[..., -1]


def stable_rank(X: Tensor) -> Tensor:
    """‖X‖_F²/‖X‖₂² ∈ [1, rank]: how much larger |X|'s sums are than ‖X‖ says (batched: (...,))."""
    return X.pow(2).sum((-2, -1)) / torch.linalg.matrix_norm(X, ord=2).pow(2)


def residual_error_bound(kappa: Tensor, rel_residual: float | Tensor) -> Tensor:
    """‖w − w*‖/‖w*‖ ≤ κ(X)·‖Xw − t‖/‖t‖ for w in the row space of X (exact, no constant).

    There w − w* = X⁺(Xw − t), so ‖w − w*‖ ≤ ‖Xw − t‖/σ_min, while ‖w*‖ = ‖X⁺t‖ ≥ ‖t‖/σ_max.
    A run stopped at relative residual τ is therefore within κτ of w*; the part of w outside
    the row space (rounding only, for GD/SGD/momentum from 0) adds its own norm.
    """
    return kappa * rel_residual


def closed_form_rounding(X: Tensor, shift: float | Tensor = 0.0, dtype: torch.dtype | None = None) -> Tensor:
    """Relative rounding error of w = Xᵀ(XXᵀ + cI)⁻¹t computed as written (min-norm c = 0, ridge c > 0).

    Three steps, each first order: forming K = XXᵀ + cI (d-term inner products: ‖ΔK‖ ≤ γ_d‖X‖_F²,
    i.e. γ_d·ρ·‖K‖ relative with ρ the stable rank), solving with K (LU of a symmetric positive
    definite matrix, no pivot growth: backward error ≤ γ_{3n}·n‖K‖), and multiplying by Xᵀ
    (γ_n). A relative error η in K moves the solution by κ(K)·η, so the bound is
    (γ_d·ρ + n·γ_{3n})·κ(K) + γ_n·√ρ·κ(X); batched: (...,).
    """
    dtype = dtype or X.dtype
    n, d = X.shape[-2], X.shape[-1]
    s2 = torch.linalg.svdvals(X).pow(2)  # eigenvalues of XXᵀ (n ≤ d)
    shift_t = torch.as_tensor(shift, dtype=s2.dtype)
    kappa_K = (s2[..., 0] + shift_t) / (s2[..., -1] + shift_t)
    rho = stable_rank(X)
    return (gamma(d, dtype) * rho + n * gamma(3 * n, dtype)) * kappa_K + gamma(n, dtype) * rho.sqrt() * (
        s2[..., 0] / s2[..., -1]
    ).sqrt()


def iteration_rounding(
    carried_steps: float | Tensor, width: int, gain: float | Tensor, dtype: torch.dtype = torch.float64
) -> Tensor:
    """Rounding accumulated over the steps of a first-order method, relative to the iterate's scale.

    One step on least squares computes residuals x_iᵀw − t_i (inner products of d terms), a
    gradient (a sum of b rows), and a few vector updates; first order, the error it adds to w
    is at most γ_width·gain times the scale of the iterate, with width = d + b + (vector
    operations) and gain = 1 + 2η‖X_B‖_F²/b: the update's own rounding, and the residuals' and
    the gradient sum's, each reaching w magnified by η‖X_B‖_F²/b (η the effective step, e.g.
    through a momentum buffer). An error made k steps before the end reaches the end
    multiplied by at most the iteration's ‖T^k‖; ``carried_steps`` is Σ_k ‖T^k‖ over the
    steps taken (:func:`carried`, :func:`heavy_ball_amplification`). Returns
    ``carried_steps · gain · γ_width``.
    """
    return torch.as_tensor(carried_steps, dtype=torch.float64) * gain * gamma(width, dtype)


def carried(steps: float | Tensor, contraction: float | Tensor | None = None) -> Tensor:
    """Σ_{k<steps} q^k: how many step errors reach the end of a run whose map has norm ≤ q per step.

    q = None (or 1) is a map that does not grow errors (GD/SGD with a stable step on least
    squares leave the null space of X untouched): ``steps`` itself. q < 1 contracts, q > 1
    (a bound on a map that may grow errors) compounds.
    """
    steps_t = torch.as_tensor(steps, dtype=torch.float64)
    if contraction is None:
        return steps_t
    q = torch.as_tensor(contraction, dtype=torch.float64)
    one = q == 1
    safe = torch.where(one, torch.full_like(q, 0.5), q)
    return torch.where(one, steps_t, (1 - safe.pow(steps_t)) / (1 - safe))


def heavy_ball_amplification(
    curvatures: Tensor, lr: Tensor, momentum: float, steps: int, decay: float | Tensor = 0.0,
    decay_in_buffer: bool = True,
) -> tuple[Tensor, Tensor]:
    """Exact error propagation of heavy ball on a quadratic: (max_h ‖T_h^steps‖, Σ_{k<steps} max_h ‖T_h^k‖).

    With curvature h (an eigenvalue of the Hessian of J), step η, momentum μ and weight decay
    2λ = ``decay``, the error e = w − w_fix and the buffer's error v follow a 2×2 linear map
    per eigen-direction: with the decay inside the buffer (L2, a = h + 2λ)
    v' = μv + a·e, e' = e − ηv'; decoupled (outside it) v' = μv + h·e, e' = (1 − 2ηλ)e − ηv'.
    ‖T^k‖ is taken in the Frobenius norm (≥ the spectral norm). ``curvatures`` (R, m),
    ``lr`` (R,) or a number, ``decay`` a number or (R,); results (R,).
    """
    h = curvatures.to(torch.float64)
    eta = torch.as_tensor(lr, dtype=torch.float64).reshape(-1, 1).expand_as(h)
    lam2 = torch.as_tensor(decay, dtype=torch.float64).reshape(-1, 1).expand_as(h)
    a = h + lam2 if decay_in_buffer else h
    shrink = torch.zeros_like(h) if decay_in_buffer else eta * lam2
    # e' = (1 − ηa − 2ηλ_dec) e − ημ v ; v' = a e + μ v
    T = torch.stack(
        [torch.stack([1 - eta * a - shrink, -eta * momentum * torch.ones_like(h)], -1),
         torch.stack([a, momentum * torch.ones_like(h)], -1)], -2
    )  # (R, m, 2, 2)
    # Powers in blocks of B: T^0 … T^(B−1) once, then each block is T^B times the one before
    # (steps/B batched products instead of ``steps`` small ones).
    B = min(64, steps + 1)
    block = [torch.eye(2, dtype=torch.float64).expand_as(T)]
    for _ in range(B - 1):
        block.append(T @ block[-1])
    powers = torch.stack(block)  # (B, R, m, 2, 2): T^0 … T^(B−1)
    TB = T @ powers[-1]
    total = torch.zeros(h.shape[0], dtype=torch.float64)
    final = None
    for start in range(0, steps + 1, B):
        norms = torch.linalg.matrix_norm(powers).amax(-1)  # (B, R): max over curvatures of ‖T^k‖
        count = min(B, steps - start)
        if count > 0:
            total = total + norms[:count].sum(0)
        if start <= steps < start + B:
            final = norms[steps - start]
        powers = TB @ powers
    assert final is not None
    return final, total


def within(
    checks: Checks,
    name: str,
    measured: Tensor | list[float],
    tolerance: Tensor | list[float],
    formula: str,
    labels: list[str] | tuple[str, ...] | None = None,
) -> bool:
    """Judge every measured[r] ≤ tolerance[r] (each run against its own derived bound).

    The check ``name`` shows the run nearest its bound (largest measured/tolerance): its
    value against its tolerance, so it passes exactly when every run does. Also recorded:
    ``name_tolerance`` (every run's bound, by label when given), ``name_worst_ratio`` (the
    largest measured/tolerance) and, as expected, the formula the bounds come from.
    """
    m = torch.as_tensor(measured, dtype=torch.float64).reshape(-1)
    tol = torch.as_tensor(tolerance, dtype=torch.float64).reshape(-1).expand_as(m)
    if not bool((tol > 0).all()):
        raise ValueError(f"{name}: every derived tolerance must be positive, got {tol.tolist()}")
    ratio = torch.where(torch.isfinite(m), m / tol, torch.full_like(m, torch.inf))
    worst = int(ratio.argmax())
    per_run: Any = tol.tolist()
    if labels is not None:
        per_run = dict(zip(labels, per_run, strict=True))
    checks.expect(f"{name}_tolerance", formula)
    checks.record(f"{name}_tolerance", per_run)
    checks.record(f"{name}_worst_ratio", float(ratio[worst]))
    return checks.at_most(name, float(m[worst]), float(tol[worst]), expected=0.0)
