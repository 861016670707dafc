"""Derived tolerances (trainlab.tolerance): each bound holds, is tight where it should be, rejects errors."""

from __future__ import annotations

import pytest
import torch

import trainlab.functional as F
from trainlab.checks import Checks
from trainlab.optim.claims._shared import interpolant_tolerances, step_gain, steps_taken
from trainlab.optim.problems import min_norm_solution, random_problems, ridge_solution, smoothness
from trainlab.optim.runner import run_batch
from trainlab.tolerance import (
    carried,
    closed_form_rounding,
    condition_number,
    gamma,
    heavy_ball_amplification,
    residual_error_bound,
    unit_roundoff,
    within,
)


def test_unit_roundoff_and_gamma() -> None:
    assert unit_roundoff(torch.float64) == 2.0**-53 and unit_roundoff(torch.float32) == 2.0**-24
    assert gamma(100) == pytest.approx(100 * 2.0**-53)
    with pytest.raises(ValueError, match="undefined"):
        gamma(2**24, torch.float32)


def test_carried_counts_steps_and_sums_powers() -> None:
    assert float(carried(7)) == 7
    assert float(carried(3, 0.5)) == pytest.approx(1 + 0.5 + 0.25)
    assert float(carried(3, 2.0)) == pytest.approx(1 + 2 + 4)
    assert carried(torch.tensor([4, 5]), torch.tensor([1.0, 0.0])).tolist() == [4, 1]


def test_residual_bound_holds_and_is_attained() -> None:
    """‖w − w*‖/‖w*‖ ≤ κ·‖Xw − t‖/‖t‖ in the row space, with equality for the worst t and residual."""
    X = torch.randn(5, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    U, S, Vh = torch.linalg.svd(X, full_matrices=False)
    kappa = condition_number(X)
    assert float(kappa) == pytest.approx(float(S[0] / S[-1]))
    t = U[:, 0]  # ‖w*‖ = ‖t‖/σ_max: as small as it gets
    w_star = min_norm_solution(X, t)
    for tau in (1e-3, 1e-10):
        w = w_star + tau * Vh[-1] / S[-1]  # a residual of τ along σ_min's direction: error τ/σ_min
        rel_res = float((X @ w - t).norm() / t.norm())
        rel_err = float((w - w_star).norm() / w_star.norm())
        assert rel_res == pytest.approx(tau, rel=1e-6)
        assert rel_err == pytest.approx(float(residual_error_bound(kappa, rel_res)), rel=1e-6)
    for seed in range(20):  # and it bounds every other direction
        g = torch.Generator().manual_seed(seed)
        t = torch.randn(5, dtype=torch.float64, generator=g)
        w_star = min_norm_solution(X, t)
        w = w_star + 1e-4 * X.T @ torch.randn(5, dtype=torch.float64, generator=g)
        rel_res = float((X @ w - t).norm() / t.norm())
        assert float((w - w_star).norm() / w_star.norm()) <= float(residual_error_bound(kappa, rel_res))


@pytest.mark.parametrize("shift", [0.0, 2.0])
def test_closed_form_rounding_bounds_float32_against_float64(shift: float) -> None:
    """The rounding bound in float32 (u = 6e-8) covers what float32 actually loses on min-norm and ridge."""
    p = random_problems(20, 100, range(30))
    X32, t32 = p.X.float(), p.t.float()
    lam = shift / (2 * 20)
    exact = ridge_solution(p.X, p.t, lam) if shift else min_norm_solution(p.X, p.t)
    got = (ridge_solution(X32, t32, lam) if shift else min_norm_solution(X32, t32)).double()
    err = (got - exact).norm(dim=-1) / exact.norm(dim=-1)
    # the float32 inputs are themselves rounded (u per entry): a perturbation the bound also covers
    bound = closed_form_rounding(p.X, shift, dtype=torch.float32)
    assert bool((err <= bound).all()), (err.max(), bound.min())
    assert float((err / bound).max()) > 1e-4  # and is not vacuous


def test_interpolant_tolerances_hold_in_float32_for_gd_and_sgd() -> None:
    """The min-norm claims' bounds, for float32's unit roundoff (2^29 times float64's), hold for float32 runs
    measured against the float64 solution: the rounding model is not tuned to float64's luck."""
    from trainlab.optim.samplers import MiniBatch

    p64 = random_problems(20, 100, range(6))
    p32 = type(p64)(p64.X.float(), p64.t.float(), p64.names)
    w_star = min_norm_solution(p64.X, p64.t)
    lr = 1 / smoothness(p64.X)
    tr = run_batch(p32, F.sgd(lr=lr.float().unsqueeze(-1)), 5000, tol=1e-5, record_params=True,
                   record_every=1)
    assert bool(tr.converged.all())
    rel_tol, off_tol = interpolant_tolerances(p64.X, steps_taken(tr), step_gain(p64.X, lr), 124,
                                              stop_tol=1e-5, dtype=torch.float32)
    err = tr.final_relative_distance(w_star.float()).double()
    assert bool((err <= rel_tol).all()), (err, rel_tol)
    assert tr.params is not None
    P = p64.X.mT @ torch.linalg.solve(p64.X @ p64.X.mT, p64.X)

    def off_row(params: torch.Tensor) -> torch.Tensor:
        w = params.double()
        return ((w - torch.einsum("rde,tre->trd", P, w)).norm(dim=-1) / w_star.norm(dim=-1)).amax(0)

    assert bool((off_row(tr.params) <= off_tol).all())
    # SGD b=1 in float32: its distance from the row space stays within the accumulated bound
    R2 = p64.X.pow(2).sum(-1).amax(-1)
    sgd = run_batch(p32, F.sgd(lr=(1 / R2).float().unsqueeze(-1)), 3000, sampler=MiniBatch(1),
                    generator=torch.Generator().manual_seed(0), record_params=True, record_every=50, tol=0.0)
    assert sgd.params is not None
    _, sgd_off = interpolant_tolerances(p64.X, torch.full((6,), 3000), step_gain(p64.X, 1 / R2, 1), 105,
                                        dtype=torch.float32)
    measured = off_row(sgd.params)
    assert bool((measured <= sgd_off).all())
    assert float(measured.max()) > 1e-9  # float32 does leave the row space: the check is not vacuous


def test_heavy_ball_map_carries_step_errors_as_stated() -> None:
    """Heavy ball on a diagonal quadratic with a perturbation added to w at every step: the perturbed run
    ends within Σ_k max_h ‖T_h^k‖ · (largest perturbation) of the clean one, for L2 in the buffer and for
    decoupled decay; and the clean error after k steps within max_h ‖T_h^k‖ of the start's."""
    h = torch.tensor([0.0, 0.3, 1.0, 4.0], dtype=torch.float64)
    lr, mu, lam2, k = 0.2, 0.9, 0.1, 60
    g = torch.Generator().manual_seed(3)
    kicks = 1e-6 * torch.randn(k, 4, dtype=torch.float64, generator=g)
    for in_buffer in (True, False):
        def run(noise: torch.Tensor, in_buffer: bool = in_buffer) -> torch.Tensor:
            w = torch.tensor([1.0, -2.0, 0.5, 1.5], dtype=torch.float64)  # minimiser and fixed point: 0
            v = torch.zeros(4, dtype=torch.float64)
            for j in range(k):
                v = mu * v + h * w + (lam2 * w if in_buffer else 0)
                w = w - lr * (v + (0 if in_buffer else lam2 * w)) + noise[j]
            return w

        clean, kicked = run(torch.zeros_like(kicks)), run(kicks)
        grow, total = heavy_ball_amplification(h[None], lr, mu, k, lam2, decay_in_buffer=in_buffer)
        assert float(clean.norm()) <= float(grow[0]) * float(torch.tensor([1.0, -2.0, 0.5, 1.5]).norm())
        gap = float((kicked - clean).norm())
        assert gap <= float(total[0]) * float(kicks.norm(dim=-1).max())
        assert gap > 1e-3 * float(total[0]) * float(kicks.norm(dim=-1).max())  # not vacuous by 1e3


def test_within_judges_each_run_against_its_own_bound() -> None:
    c = Checks()
    assert within(c, "err", [1e-10, 6e-9], [2e-10, 1e-8], "κτ", ["a", "b"])
    rec = c.checks[0]
    assert (rec.measured, rec.bound) == (6e-9, 1e-8)  # the run nearest its bound, with its bound
    assert c.measured["err_tolerance"] == {"a": 2e-10, "b": 1e-8}
    assert c.measured["err_worst_ratio"] == pytest.approx(0.6)
    assert c.expected["err_tolerance"] == "κτ"
    c2 = Checks()
    # the largest value passes its loose bound; the small one fails its tight bound: the check fails
    assert not within(c2, "err", [3e-10, 5e-9], [2e-10, 1e-8], "κτ")
    assert (c2.checks[0].measured, c2.checks[0].bound) == (3e-10, 2e-10)
    with pytest.raises(ValueError, match="positive"):
        within(Checks(), "err", [1.0], [0.0], "none")


# --------------------------------------------------------------------------------------------
# The derived tolerances still reject wrong answers (the claims' negative controls are ~1e-1)
# --------------------------------------------------------------------------------------------


def _gd_run():
    p = random_problems(20, 100, [433 * 3 + i for i in range(3)])
    lr = 1 / smoothness(p.X)
    tr = run_batch(p, F.sgd(lr=lr.unsqueeze(-1)), 5000)
    rel_tol, _ = interpolant_tolerances(p.X, steps_taken(tr), step_gain(p.X, lr), 124)
    return p, tr, rel_tol


def test_the_min_norm_bound_rejects_a_perturbed_solution_and_adam() -> None:
    p, tr, rel_tol = _gd_run()
    w_star = min_norm_solution(p.X, p.t)
    assert bool((tr.final_relative_distance(w_star) <= rel_tol).all())  # GD passes (ratio ~0.5)
    assert float(rel_tol.max()) < 1e-9
    # w* nudged by 1e-8 of its norm along the null space (still interpolating: residual 0) fails
    g = torch.Generator().manual_seed(0)
    z = torch.randn(p.num_runs, p.d, dtype=torch.float64, generator=g)
    z = z - p.X.mT.matmul(torch.linalg.solve(p.X @ p.X.mT, (p.X @ z.unsqueeze(-1)))).squeeze(-1)
    nudged = w_star + 1e-8 * w_star.norm(dim=-1, keepdim=True) * z / z.norm(dim=-1, keepdim=True)
    assert bool(((nudged - w_star).norm(dim=-1) / w_star.norm(dim=-1) > rel_tol).all())
    # the adaptive claim's negative control: Adam interpolates elsewhere, ~1e9 bounds away
    adam = run_batch(p, F.adam(lr=1e-2), 60_000)
    assert float(adam.relative_residual[-1].max()) <= 1e-8
    ratio = adam.final_relative_distance(w_star) / rel_tol
    assert float(ratio.min()) > 1e8


def test_the_ridge_bound_rejects_adamw_and_the_wrong_lambda(tmp_path) -> None:
    """Adam + L2's derived bound (stationarity of J + λ‖w‖²) holds for Adam + L2 and fails for AdamW's end
    point and for ridge(λ/2), the convention slip the claim guards against."""
    from trainlab.claims import Context
    from trainlab.optim.claims.weight_decay import weight_decay_vs_l2

    ctx = Context("optim.weight-decay-vs-l2", "quick", 433, tmp_path)
    weight_decay_vs_l2(ctx)
    checks = {c.name: c for c in ctx.checks.checks}
    adam = checks["adam_l2_rel_dist_to_ridge_lambda"]
    assert adam.passed and adam.measured <= adam.bound < 1e-9
    tol = max(ctx.checks.measured["adam_l2_rel_dist_to_ridge_lambda_tolerance"])
    # AdamW's end point is farther than that from every ridge solution, ridge(λ) included
    assert min(ctx.checks.measured["adamw_rel_dist_to_ridge_path"]) > 1e8 * tol
    assert min(ctx.checks.measured["adamw_stationarity"]) > 1e8 * tol
    p = random_problems(20, 100, [433 * 3 + i for i in range(3)])
    half = ridge_solution(p.X, p.t, 0.025)
    full = ridge_solution(p.X, p.t, 0.05)
    assert float(((half - full).norm(dim=-1) / full.norm(dim=-1)).min()) > 1e6 * tol
