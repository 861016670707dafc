"""What the §1 claims share: instance seeds and draws, per-run hyperparameters, torch.optim cross-checks."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
from torch import Tensor

import trainlab.functional as F
from trainlab.claims import Context
from trainlab.optim.problems import (
    LeastSquares,
    distance_from_row_space,
    worked_example,
)
from trainlab.optim.runner import Trajectories, run_batch, torch_optim_reference
from trainlab.optim.samplers import Sampler
from trainlab.seeding import generator
from trainlab.tolerance import (
    carried,
    closed_form_rounding,
    condition_number,
    gamma,
    iteration_rounding,
    residual_error_bound,
    stable_rank,
)

__all__ = [
    "SECTION",
    "STOP_TOL",
    "cross_check",
    "instance_draw",
    "instance_seeds",
    "interpolant_tolerances",
    "max_of",
    "max_row_norm2",
    "min_of",
    "off_row_space",
    "per_run",
    "seeds",
    "step_gain",
    "steps_taken",
    "worked_pair",
]

SECTION = "§1 Optimization"


#: The stopping rule of every run that ends at an interpolant: ‖Xw − t‖/‖t‖ ≤ STOP_TOL (run_batch's default).
STOP_TOL = 1e-10


def instance_seeds(run_seeds: Iterable[int], per_run: int) -> list[int]:
    """The instance seeds of runs with the given ``--seed`` values: k·s, …, k·s + k − 1 for each s
    (k = ``per_run``, modulo 2⁶³ to stay a valid torch seed)."""
    return [(per_run * int(s) + i) % 2**63 for s in run_seeds for i in range(per_run)]


def seeds(ctx: Context) -> list[int]:
    """The seeds of a claim's random instances, drawn from ``ctx.seed``: 3 at quick scale, 10 at full.

    Instance seeds k·seed … k·seed + k − 1 (k = 3 or 10; :func:`instance_seeds`): seed 0 gives the
    acceptance table's instances (seeds 0–2, 0–9 at full scale), two runs of one scale at
    different seeds never share an instance, and the §1 claims of one run share theirs. Every
    tolerance these instances meet is derived from them (:mod:`trainlab.tolerance`)."""
    k = 3 if ctx.quick else 10
    return instance_seeds([ctx.seed], k)


def instance_draw(instances: Sequence[int], key: str, d: int, uniform: bool = False) -> Tensor:
    """One float64 vector of length d per instance (standard normal, or uniform on [0, 1)), each from
    its instance's own seed and ``key``: (R, d). A batch of many instances draws the same vector for
    an instance as a run of its own seed does."""
    draw = torch.rand if uniform else torch.randn
    return torch.stack([draw(d, generator=generator(s, key), dtype=torch.float64) for s in instances])


def steps_taken(tr: Trajectories) -> Tensor:
    """Steps each run took: where it converged, else every step of the run: (R,)."""
    return torch.where(tr.converged_at >= 0, tr.converged_at, torch.full_like(tr.converged_at, tr.steps_run))


def step_gain(
    X: Tensor, lr: Tensor | float, batch: int | None = None, momentum: float = 0.0, dampening: float = 0.0,
    m: Tensor | None = None,
) -> Tensor:
    """gain = 1 + 2·η_eff·‖X_B‖_F²/b of :func:`trainlab.tolerance.iteration_rounding`, per problem: (R,).

    ‖X_B‖_F²/b is ‖X‖_F²/n for the full batch (``batch`` None) and at most max_i ‖x_i‖² for b
    sampled rows; η_eff = η(1 − dampening)/(1 − μ) is the step a gradient finally takes through
    a momentum buffer (Σ μ^k = 1/(1 − μ); in the null space of X, where nothing contracts, this
    is exact). The 2: the residuals' rounding and the gradient sum's. With a diagonal
    preconditioner ``m`` the rows are x_i ⊙ √m (the iteration in u = M^(-½)w).
    """
    Xs = X if m is None else X * m.sqrt().unsqueeze(-2)
    rows = Xs.pow(2).sum(-1)  # (R, n)
    per_row = rows.mean(-1) if batch is None else rows.max(-1).values
    eta = torch.as_tensor(lr, dtype=torch.float64).reshape(-1) * (1 - dampening) / (1 - momentum)
    return 1 + 2 * eta * per_row


def interpolant_tolerances(
    X: Tensor, steps: Tensor, gain: Tensor, width: int, scale: float | Tensor = 2.0,
    stop_tol: float = STOP_TOL, dtype: torch.dtype = torch.float64,
) -> tuple[Tensor, Tensor]:
    """Derived bounds for a run from 0 that stopped at ‖Xw − t‖/‖t‖ ≤ STOP_TOL after ``steps`` steps:
    (on ‖w_T − w*‖/‖w*‖, on max_k ‖(I − P)w_k‖/‖w*‖), per problem (R,).

    The iterates of GD, SGD and momentum from 0 lie in the row space up to rounding, and rounding
    errors there are never shrunk (the null space of X is left alone): at most
    ``steps · gain · γ_width`` times the iterate's scale (``scale`` · ‖w*‖; 2 covers ‖w_k‖ + ‖w*‖ for a
    run whose distance to w* never grows), plus the rounding of computing P w. In the row space
    the stopping rule bounds the error by κ(X)·τ (:func:`trainlab.tolerance.residual_error_bound`),
    τ = ``stop_tol`` plus the rounding of the residual it was computed from (γ_(d+1)(1 + scale·√ρ·κ),
    ρ the stable rank, since ‖X‖_F‖w*‖ ≤ √ρ·κ·‖t‖). Add the rounding of the closed-form w*.
    ``dtype`` is the precision the run computed in (its unit roundoff sets every γ).
    """
    cf = closed_form_rounding(X, dtype=dtype)
    off = iteration_rounding(carried(steps), width, gain, dtype) * scale + cf
    kappa, rho = condition_number(X), stable_rank(X)
    resid = stop_tol + gamma(X.shape[-1] + 1, dtype) * (1 + scale * rho.sqrt() * kappa)
    return residual_error_bound(kappa, resid) + off + cf, off


def max_of(x: Tensor) -> float:
    return float(x.max())


def min_of(x: Tensor) -> float:
    return float(x.min())


def per_run(x: Tensor) -> Tensor:
    """Per-run hyperparameter (R,) -> (R, 1), broadcast against parameters (R, d)."""
    return x.unsqueeze(-1)


def max_row_norm2(X: Tensor) -> Tensor:
    """R² = max_i ‖x_i‖² per problem: (R,)."""
    return X.pow(2).sum(-1).max(-1).values


def off_row_space(problem: LeastSquares, tr: Trajectories, w_star: Tensor) -> Tensor:
    """max over recorded iterates of ‖(I − P)w_k‖/‖w*‖ per run: (R,)."""
    assert tr.params is not None
    return (distance_from_row_space(problem.X, tr.params) / w_star.norm(dim=-1)).max(0).values


def cross_check(
    problem: LeastSquares,
    optimizer: F.GradientTransformation,
    make_torch: Callable[[list[Tensor]], torch.optim.Optimizer],
    sampler: Sampler,
    generator_seed: Callable[[], torch.Generator],
    steps: int = 300,
) -> float:
    """max |w_runner − w_torch.optim| after ``steps`` steps (no early stop) on the first problem alone."""
    one = problem.select([0])
    mine = run_batch(one, optimizer, steps, sampler=sampler, generator=generator_seed(), tol=0.0)
    ref = torch_optim_reference(one, make_torch, steps, sampler=sampler, generator=generator_seed(), tol=0.0)
    return float((ref[0] - mine.final_params[0]).abs().max())


def worked_pair() -> LeastSquares:
    return worked_example("x=[2,1],t=2").concat(worked_example("x=[1,2],t=3"))
