"""optim.weight-decay-vs-l2: L2 in the gradient vs decoupled weight decay."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

import trainlab.functional as F
from trainlab.claims import Context, claim
from trainlab.optim.claims._shared import (
    SECTION,
    STOP_TOL,
    instance_draw,
    max_of,
    min_of,
    per_run,
    seeds,
)
from trainlab.optim.problems import (
    LeastSquares,
    random_problems,
    ridge_solution,
    smoothness,
)
from trainlab.optim.runner import run_batch, torch_optim_reference
from trainlab.plotting import new_figure
from trainlab.threads import limit_threads
from trainlab.tolerance import (
    carried,
    closed_form_rounding,
    gamma,
    heavy_ball_amplification,
    iteration_rounding,
    within,
)

__all__ = ["weight_decay_vs_l2"]

#: Adam's learning rate 1e-2·ADAM_DECAY^k, and the most steps Adam + L2 may take to become stationary.
#: The acceptance table's 0.9995 leaves lr·Σγ^k too small for some instances: over the 603 instances of
#: seeds 433 and 1000–1199, 8 never reached ‖∇F‖ ≤ 1e-10·μ_F‖w‖ in 80,000 steps (one stalled 5e-4 from
#: ridge(λ)); with 0.9998 all did, in 6,400 steps at the median and 57,713 at most.
ADAM_DECAY = 0.9998
ADAM_MAX_STEPS = 100_000


def _stationarity(problem: LeastSquares, lam: float, mu_F: Tensor, w: Tensor) -> Tensor:
    """‖∇F(w)‖/(μ_F‖w‖) for F = J + λ‖w‖²: an upper bound on ‖w − argmin F‖/‖w‖ (F is μ_F-strongly convex)."""
    return (problem.gradient(w) + 2 * lam * w).norm(dim=-1) / (mu_F * w.norm(dim=-1))


def _distance_to_ridge_path(X: Tensor, t: Tensor, w: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """min over λ' of ‖w − ridge(λ')‖/‖w‖ per problem (grid on [1e-10, 1e6], then refined).

    Returns (min distance (R,), its λ' (R,), the grid curve (R, K) with the grid (K,)) — the
    curve for the figure.
    """
    grid = torch.logspace(-10, 6, 321, dtype=X.dtype)
    path = ridge_solution(X, t, grid)  # (R, K, d)
    curve = (path - w.unsqueeze(1)).norm(dim=-1) / w.norm(dim=-1, keepdim=True)  # (R, K)
    best = curve.argmin(-1)
    lo = grid[(best - 1).clamp_min(0)].log()
    hi = grid[(best + 1).clamp_max(len(grid) - 1)].log()
    fine = torch.exp(
        lo.unsqueeze(-1) + (hi - lo).unsqueeze(-1) * torch.linspace(0, 1, 201, dtype=X.dtype)
    )  # (R, 201)
    dist = torch.stack(
        [(ridge_solution(X[r], t[r], fine[r]) - w[r]).norm(dim=-1) / w[r].norm() for r in range(X.shape[0])]
    )  # (R, 201)
    i = dist.argmin(-1)
    return dist.gather(1, i[:, None])[:, 0], fine.gather(1, i[:, None])[:, 0], torch.cat([grid[None], curve])


def _coupled_and_decoupled(
    make_rescaling: Callable[[], F.GradientTransformation],
    lam2: float,
    R: int,
    lr: F.Hyperparameter | F.Schedule,
) -> F.GradientTransformation:
    """One chain for 2R runs: the first R put 2λw into the gradient (L2, before the rescaling),
    the last R decay the weights outside it (decoupled): u = −η(rescale(g + c₁w) + c₂w)."""
    on = torch.full((R, 1), lam2, dtype=torch.float64)
    off = torch.zeros(R, 1, dtype=torch.float64)
    return F.chain(
        F.add_decayed_weights(torch.cat([on, off])),
        make_rescaling(),
        F.add_decayed_weights(torch.cat([off, on])),
        F.scale_by_learning_rate(lr),
    )


def _cross_check_from(
    problem: LeastSquares,
    w0: Tensor,
    optimizer: F.GradientTransformation,
    make_torch: Callable[[list[Tensor]], torch.optim.Optimizer],
    steps: int = 300,
) -> float:
    """max |w_runner − w_torch.optim| after ``steps`` full-batch steps from w0 on the first problem."""
    mine = run_batch(problem.select([0]), optimizer, steps, w0=w0[:1], tol=0.0)
    ref = torch_optim_reference(problem.select([0]), make_torch, steps, w0=w0[:1], tol=0.0)
    return float((ref[0] - mine.final_params[0]).abs().max())


@claim("optim.weight-decay-vs-l2", section=SECTION, statement="""
    For plain GD, training J(w) + λ‖w‖² with step η is identical to decoupled weight decay
    w ← (1 − λ')w − η∇J(w) with λ' = 2ηλ. With heavy-ball momentum or Adam they differ: L2 passes
    through the momentum buffer or the adaptive rescaling, decoupled decay does not; HB + L2 ends at
    ridge(λ), decoupled HB at ridge(λ(1 − μ)); Adam + L2 at ridge(λ), AdamW off the ridge path. With
    a fixed preconditioner M, decoupled decay equals an L2 penalty weighted by M⁻¹.""")
def weight_decay_vs_l2(ctx: Context, instances: Sequence[int] | None = None) -> str:
    """``instances``: the random instances' seeds (default :func:`seeds` of ``ctx``; more for tests)."""
    instances = seeds(ctx) if instances is None else list(instances)
    c = ctx.checks
    c.expect("sgd", "identical (λ' = 2ηλ)")
    c.expect("heavy_ball", "coupled → ridge(λ), decoupled → ridge(λ(1 − μ))")
    c.expect("adam", "Adam + L2 → ridge(λ); AdamW off the ridge path")
    c.expect("preconditioned", "identical")
    lam, mu = 0.05, 0.9
    with limit_threads():
        problem = random_problems(20, 100, instances)
        R, n, d = problem.num_runs, problem.n, problem.d
        L = smoothness(problem.X)
        eta = per_run(0.5 / L)
        w0 = instance_draw(instances, "optim.w0", d)
        steps = 3000
        # What the derived tolerances need: the curvatures h of H = XᵀX/n, ‖X‖_F²/n, a step's width.
        # H's distinct curvatures: the n of XXᵀ/n and, as d > n, 0 (the null space of X)
        curv = torch.cat([torch.zeros(R, 1, dtype=torch.float64),
                          torch.linalg.eigvalsh(problem.X @ problem.X.mT / n)], -1)  # (R, n + 1)
        fro = problem.X.pow(2).sum((-2, -1)) / n
        width = d + n + 6  # residual, gradient, decay and update terms of one step

        # 6a: three ways to run GD with weight decay, plus a wrong factor.
        ctx.progress("plain GD: L2 vs decoupled")
        w = w0.clone().requires_grad_(True)  # (i) autograd on J(w) + λ‖w‖²
        for _ in range(steps):
            objective = (problem.loss(w) + lam * w.pow(2).sum(-1)).sum()  # runs are independent
            (grad,) = torch.autograd.grad(objective, w)
            w = (w - eta * grad).detach().requires_grad_(True)
        w_autograd = w.detach()
        tr_l2 = run_batch(
            problem,
            F.sgd(lr=eta, weight_decay=2 * lam),
            steps,
            w0=w0,
            tol=0.0,
            record_params=True,
            record_every=10,
        )  # (ii) torch's weight_decay = 2λ
        w_dec, w_wrong = w0.clone(), w0.clone()  # (iii) w ← (1 − 2ηλ)w − η∇J(w), and (1 − ηλ)
        dec_path = [w_dec]
        for k in range(steps):
            w_dec = (1 - 2 * eta * lam) * w_dec - eta * problem.gradient(w_dec)
            w_wrong = (1 - eta * lam) * w_wrong - eta * problem.gradient(w_wrong)
            if (k + 1) % 10 == 0:
                dec_path.append(w_dec)
        ref = torch_optim_reference(
            problem,
            lambda p: torch.optim.SGD(p, lr=float(eta[0]), weight_decay=2 * lam),
            300,
            w0=w0,
            tol=0.0,
            runs=[0],
        )
        mine = run_batch(
            problem.select([0]), F.sgd(lr=float(eta[0]), weight_decay=2 * lam), 300, w0=w0[:1], tol=0.0
        )
        sgd_diff = torch.stack([
            (tr_l2.final_params - w_autograd).abs().amax(-1),
            (tr_l2.final_params - w_dec).abs().amax(-1),
            torch.cat([(ref[0] - mine.final_params[0]).abs().amax(-1, keepdim=True), torch.zeros(R - 1)]),
        ]).amax(0)  # (R,): the largest gap of the three ways (and torch.optim on run 0)
        # The factor matters: (1 − ηλ) instead of (1 − 2ηλ) is GD on J + (λ/2)‖w‖², visibly elsewhere.
        wrong_diff = max_of((w_wrong - w_dec).norm(dim=-1) / w_dec.norm(dim=-1))
        ridge = ridge_solution(problem.X, problem.t, lam)
        sgd_to_ridge = max_of((w_dec - ridge).norm(dim=-1) / ridge.norm(dim=-1))
        # Each way is GD on J + λ‖w‖²: its map I − η(H + 2λ) has norm q = max(|1 − η(L + 2λ)|, 1 − 2ηλ) < 1,
        # so step errors shrink (Σq^k of them reach the end), at the scale ‖w0‖ + 2‖ridge‖ (the distance
        # to the ridge solution never grows); two ways differ by at most twice one's rounding.
        lr = eta[:, 0]
        q = torch.maximum((1 - lr * (L + 2 * lam)).abs(), 1 - 2 * lr * lam)
        gd_scale = w0.norm(dim=-1) + 2 * ridge.norm(dim=-1)
        sgd_tol = 2 * iteration_rounding(carried(steps, q), width, 1 + 2 * lr * (fro + 2 * lam)) * gd_scale
        c.record("lambda", lam)
        within(c, "sgd_max_abs_diff_three_ways_and_torch", sgd_diff, sgd_tol,
               "2·Σ_(k<T) q^k·gain·γ_(d+n+6)·(‖w0‖ + 2‖ridge‖), q = ‖I − η(H + 2λ)‖")
        c.at_least("sgd_wrong_factor_eta_lambda_rel_diff", wrong_diff, 1e-3, strict=True)
        c.record("sgd_rel_dist_to_ridge", sgd_to_ridge)
        assert tr_l2.params is not None
        sgd_gap = (tr_l2.params - torch.stack(dec_path)).abs().amax(dim=(1, 2))

        # 6b: heavy ball: the L2 term passes through the momentum buffer, the decoupled decay does not.
        ctx.progress("heavy ball: L2 vs decoupled")
        both = problem.concat(problem)
        # the decoupled run's null-space part of w0 shrinks only by (1 − 2ηλ) a step:
        # 8,000 steps to reach 1e-8
        hb_steps = 8000
        hb = run_batch(
            both,
            _coupled_and_decoupled(lambda: F.trace(mu), 2 * lam, R, torch.cat([eta, eta])),
            hb_steps,
            w0=torch.cat([w0, w0]),
            tol=0.0,
            record_params=True,
            record_every=10,
        )
        assert hb.params is not None
        hb_gap = (hb.params[:, :R] - hb.params[:, R:]).abs().amax(dim=(1, 2))
        ridge_mu = ridge_solution(problem.X, problem.t, lam * (1 - mu))
        hb_coupled = (hb.final_params[:R] - ridge).norm(dim=-1) / ridge.norm(dim=-1)
        hb_decoupled = (hb.final_params[R:] - ridge_mu).norm(dim=-1) / ridge_mu.norm(dim=-1)
        # Bounds: heavy ball's error (w − w_fix, v − v_fix) follows a 2×2 map per curvature h
        # (trainlab.tolerance.heavy_ball_amplification): after T steps the start's error is multiplied
        # by at most max_h ‖T_h^T‖, and a step's rounding by Σ_k max_h ‖T_h^k‖; the ridge solution is
        # a closed form (Xᵀ(XXᵀ + 2nλI)⁻¹t) with its own rounding.
        hb_gain = 1 + 2 * lr * (fro + 2 * lam) / (1 - mu)
        hb_scale = hb.params.norm(dim=-1).amax(0)  # (2R,): the largest recorded iterate
        hb_tol = []
        for half, (fix, in_buffer, v_fix) in enumerate(
            ((ridge, True, torch.zeros_like(ridge)), (ridge_mu, False, -2 * lam * ridge_mu))
        ):  # the fixed point's velocity: 0 with L2 in the buffer, ∇J(w_fix)/(1 − μ) = −2λ w_fix without
            grow, total = heavy_ball_amplification(curv, lr, mu, hb_steps, 2 * lam, decay_in_buffer=in_buffer)
            start = torch.cat([w0 - fix, -v_fix], -1).norm(dim=-1)  # ‖(e_0, v_0)‖
            lam_eff = lam if in_buffer else lam * (1 - mu)
            hb_tol.append(
                (grow * start + iteration_rounding(total, width, hb_gain) * (hb_scale[half * R:(half + 1) * R]
                                                                            + fix.norm(dim=-1)))
                / fix.norm(dim=-1)
                + closed_form_rounding(problem.X, 2 * n * lam_eff)
            )
        _, total300 = heavy_ball_amplification(curv[:1], lr[:1], mu, 300, 2 * lam)
        hb_torch = _cross_check_from(
            problem,
            w0,
            F.sgd(lr=float(eta[0]), momentum=mu, weight_decay=2 * lam),
            lambda p: torch.optim.SGD(p, lr=float(eta[0]), momentum=mu, weight_decay=2 * lam),
        )
        c.at_least("heavy_ball_max_abs_diff", float(hb_gap.max()), 1e-2, strict=True)
        hb_formula = ("(max_h‖T_h^T‖·‖(e_0, v_0)‖ + Σ_k max_h‖T_h^k‖·gain·γ_(d+n+6)·scale)/‖w_fix‖ "
                      "+ closed-form rounding of the ridge solution")
        within(c, "heavy_ball_coupled_rel_dist_to_ridge_lambda", hb_coupled, hb_tol[0], hb_formula)
        within(c, "heavy_ball_decoupled_rel_dist_to_ridge_lambda_1_minus_mu", hb_decoupled, hb_tol[1],
               hb_formula)
        c.record("heavy_ball_max_rel_dist_to_ridge", max_of(torch.cat([hb_coupled, hb_decoupled])))
        within(c, "heavy_ball_coupled_vs_torch", [hb_torch],
               2 * iteration_rounding(total300, width, hb_gain[:1]) * (hb_scale[0] + ridge[0].norm()),
               "2·Σ_(k<300) max_h‖T_h^k‖·gain·γ_(d+n+6)·(max_k‖w_k‖ + ‖ridge‖)")

        # 6c: Adam + L2 vs AdamW, with lr 1e-2 · γ^k. Adam + L2 runs until its end point is
        # stationary for F = J + λ‖w‖² (F is μ_F-strongly convex, μ_F = λ_min(H) + 2λ, so
        # ‖w − ridge(λ)‖ ≤ ‖∇F(w)‖/μ_F); AdamW, which is not, for the acceptance table's 30,000 steps.
        ctx.progress("Adam + L2 vs AdamW")
        decay, adamw_steps = ADAM_DECAY, 30_000
        schedule = F.exponential_decay(1e-2, decay)
        mu_F = curv[:, 0].clamp_min(0) + 2 * lam

        def stationarity(w: Tensor) -> Tensor:
            """‖∇F(w)‖/(μ_F‖w‖) for the Adam + L2 half; AdamW's half never stops on it."""
            return torch.cat([_stationarity(problem, lam, mu_F, w[:R]), torch.full((R,), torch.inf)])

        ad = run_batch(
            both,
            _coupled_and_decoupled(lambda: F.scale_by_adam(), 2 * lam, R, schedule),
            torch.cat([torch.full((R,), ADAM_MAX_STEPS), torch.full((R,), adamw_steps)]),
            w0=torch.cat([w0, w0]),
            tol=STOP_TOL,
            criterion=stationarity,
            record_params=True,
            record_every=100,
        )
        assert ad.params is not None
        adam_gap = (ad.params[:, :R] - ad.params[:, R:]).abs().amax(dim=(1, 2))
        one = run_batch(
            both,
            _coupled_and_decoupled(lambda: F.scale_by_adam(), 2 * lam, R, schedule),
            1,
            w0=torch.cat([w0, w0]),
            tol=0.0,
        )
        first_step_gap = float((one.final_params[:R] - one.final_params[R:]).abs().max())
        w_l2 = ad.final_params[:R]
        adam_l2_to_ridge = (w_l2 - ridge).norm(dim=-1) / ridge.norm(dim=-1)
        # Its bound: the stopping test c = ‖∇F‖/(μ_F‖w‖) ≤ τ, plus the rounding of ∇F (inner products
        # of d and n terms at the scale of the numbers summed), gives ‖w − ridge‖/‖ridge‖ ≤ c/(1 − c);
        # plus the rounding of the closed-form ridge solution.
        grad_scale = (problem.X.pow(2).sum((-2, -1)).sqrt() * (
            problem.X.pow(2).sum((-2, -1)).sqrt() * w_l2.norm(dim=-1) + problem.t.norm(dim=-1)
        ) / n + 2 * lam * w_l2.norm(dim=-1))
        cert = STOP_TOL + gamma(d + n + 2) * grad_scale / (mu_F * w_l2.norm(dim=-1))
        adam_tol = cert / (1 - cert) + closed_form_rounding(problem.X, 2 * n * lam)
        adamw_stationarity = _stationarity(problem, lam, mu_F, ad.final_params[R:])
        adamw_off, adamw_best_lam, ridge_curve = _distance_to_ridge_path(
            problem.X, problem.t, ad.final_params[R:]
        )
        adam_torch = 0.0
        twins = [
            (F.adam(lr=schedule, weight_decay=2 * lam), torch.optim.Adam),
            (F.adamw(lr=schedule, weight_decay=2 * lam), torch.optim.AdamW),
        ]
        for opt, cls in twins:  # functional Adam / AdamW against torch.optim with ExponentialLR
            mine = run_batch(problem.select([0]), opt, 300, w0=w0[:1], tol=0.0)
            theirs = torch_optim_reference(
                problem.select([0]),
                lambda p, c=cls: c(p, lr=1e-2, weight_decay=2 * lam),
                300,
                w0=w0[:1],
                tol=0.0,
                make_scheduler=lambda o: torch.optim.lr_scheduler.ExponentialLR(o, decay),
            )
            adam_torch = max(adam_torch, float((mine.final_params[0] - theirs[0]).abs().max()))
        # ... and the 2R-run chain equals F.adam / F.adamw run separately
        sep_l2 = run_batch(
            problem, F.adam(lr=schedule, weight_decay=2 * lam), 300, w0=w0, tol=0.0
        ).final_params
        sep_w = run_batch(
            problem, F.adamw(lr=schedule, weight_decay=2 * lam), 300, w0=w0, tol=0.0
        ).final_params
        both300 = run_batch(
            both,
            _coupled_and_decoupled(lambda: F.scale_by_adam(), 2 * lam, R, schedule),
            300,
            w0=torch.cat([w0, w0]),
            tol=0.0,
        ).final_params
        adam_torch = max(adam_torch, float((both300 - torch.cat([sep_l2, sep_w])).abs().max()))
        c.at_least("adam_first_step_max_abs_diff", first_step_gap, 1e-3, strict=True)
        c.holds("adam_l2_converged", bool((ad.converged_at[:R] >= 0).all()),
                f"every Adam + L2 run reaches ‖∇F(w)‖ ≤ {STOP_TOL:g}·μ_F‖w‖ within {ADAM_MAX_STEPS:,} steps")
        c.record("adam_l2_steps", ad.converged_at[:R])
        within(c, "adam_l2_rel_dist_to_ridge_lambda", adam_l2_to_ridge, adam_tol,
               "c/(1 − c) + closed-form rounding, "
               "c = τ + γ_(d+n+2)·(‖X‖_F(‖X‖_F‖w‖ + ‖t‖)/n + 2λ‖w‖)/(μ_F‖w‖)")
        c.record("adamw_stationarity", adamw_stationarity)
        c.record("adamw_rel_dist_to_ridge_path", adamw_off)
        c.record("adamw_nearest_ridge_lambda", adamw_best_lam)
        c.at_least("adamw_min_rel_dist_to_ridge_path", min_of(adamw_off), 0.1)
        c.at_most("functional_vs_torch_adam_adamw_300_steps", adam_torch, 1e-12, expected=0.0)

        # 6d: with a fixed preconditioner M, decoupled decay = L2 penalty (λ_wd/2η)‖w ⊙ √s‖², s = 1/m.
        m = 10 ** (4 * instance_draw(instances, "optim.preconditioner", d, uniform=True) - 2)
        L_M = smoothness(problem.X * m.sqrt().unsqueeze(1))
        eta_M = per_run(0.5 / L_M)
        lam_wd = 0.01
        dec = run_batch(
            problem,
            F.preconditioned_sgd(eta_M, m, weight_decay=lam_wd / eta_M, decoupled=True),
            steps,
            w0=w0,
            tol=0.0,
        )  # w ← (1 − λ_wd)w − ηM∇J
        l2 = run_batch(
            problem, F.preconditioned_sgd(eta_M, m, weight_decay=(lam_wd / eta_M) / m), steps, w0=w0, tol=0.0
        )  # w ← w − ηM(∇J + (λ_wd/η) s ⊙ w)
        pre_diff = (dec.final_params - l2.final_params).abs().amax(-1)
        # Both are one iteration, in u = M^(-½)w GD with decay on X̃ = XM^½: its map (1 − λ_wd)I − ηX̃ᵀX̃/n
        # has norm q = max(|1 − λ_wd − ηL̃|, 1 − λ_wd); scale ‖u0‖ + 2‖u_fix‖ (the distance to the fixed
        # point never grows), |Δw| ≤ √max m·‖Δu‖.
        lr_M = eta_M[:, 0]
        q_M = torch.maximum((1 - lam_wd - lr_M * L_M).abs(), torch.full_like(lr_M, 1 - lam_wd))
        H = problem.X.mT @ problem.X / n
        b = torch.einsum("rnd,rn->rd", problem.X, problem.t) / n
        w_fix = torch.linalg.solve(H + torch.diag_embed((lam_wd / lr_M).unsqueeze(-1) / m), b)
        u_scale = (w0 / m.sqrt()).norm(dim=-1) + 2 * (w_fix / m.sqrt()).norm(dim=-1)
        fro_M = (problem.X.pow(2) * m.unsqueeze(1)).sum((-2, -1)) / n
        pre_tol = 2 * iteration_rounding(carried(steps, q_M), width, 1 + 2 * lr_M * fro_M + 2 * lam_wd) * (
            u_scale * m.amax(-1).sqrt()
        )
        within(c, "preconditioned_max_abs_diff", pre_diff, pre_tol,
               "2·Σ_(k<T) q^k·gain·γ_(d+n+6)·(‖u0‖ + 2‖u_fix‖)·√max m, in u = M^(-½)w")

    fig, axes = new_figure(1, 2, size=(11, 4))
    axes[0].semilogy(tr_l2.steps, sgd_gap.clamp_min(1e-17), label="GD: L2 vs decoupled")
    axes[0].semilogy(hb.steps, hb_gap.clamp_min(1e-17), label="heavy ball μ=0.9: L2 vs decoupled")
    axes[0].semilogy(ad.steps, adam_gap.clamp_min(1e-17), label="Adam + L2 vs AdamW")
    axes[0].set(
        xlabel="step", ylabel="max |w_L2 − w_decoupled|", title=f"λ = {lam}, λ' = 2ηλ (GD, HB), 2λ (AdamW)"
    )
    axes[0].legend(fontsize=8)
    grid, curves = ridge_curve[0], ridge_curve[1:]
    axes[1].loglog(grid, curves[0], label="AdamW end point")
    fine_grid = torch.cat([grid, torch.tensor([lam], dtype=grid.dtype)]).sort().values  # include λ itself
    adam_curve = (ridge_solution(problem.X[0], problem.t[0], fine_grid) - ad.final_params[0]).norm(
        dim=-1
    ) / ad.final_params[0].norm()
    axes[1].loglog(fine_grid, adam_curve, label="Adam + L2 end point")
    axes[1].axvline(lam, color="k", ls=":", lw=0.8)
    axes[1].set(
        xlabel="λ'",
        ylabel="‖w_T − ridge(λ')‖/‖w_T‖",
        title="distance to the ridge path (instance 0)",
        ylim=(1e-12, 10),
    )
    axes[1].legend(fontsize=8)
    ctx.save_figure(
        fig,
        "l2-vs-decoupled",
        {
            "sgd_gap": sgd_gap,
            "hb_gap": hb_gap,
            "adam_gap": adam_gap,
            "adam_gap_steps": ad.steps,
            "ridge_grid": grid,
            "ridge_grid_adam": fine_grid,
            "adamw_to_ridge": curves[0],
            "adam_l2_to_ridge": adam_curve,
        },
    )
    return (
        "GD: L2 ≡ decay (max Δw {sgd_max_abs_diff_three_ways_and_torch}, wrong factor ηλ: "
        "{sgd_wrong_factor_eta_lambda_rel_diff}); HB: Δ {heavy_ball_max_abs_diff}, ends at ridge(λ) / "
        "ridge(λ(1−μ)) to {heavy_ball_max_rel_dist_to_ridge:.0e}; Adam+L2 → ridge(λ) "
        "({adam_l2_rel_dist_to_ridge_lambda}), AdamW {adamw_min_rel_dist_to_ridge_path} off the ridge path; "
        "precond. ≡ ({preconditioned_max_abs_diff})"
    )
