"""optim.nonuniform-sampling: SGD sampling p_i, its exact moments and rates, and where the loss can rise."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

import trainlab.functional as F
from trainlab.claims import Context, claim
from trainlab.optim.claims._shared import (
    SECTION,
    cross_check,
    interpolant_tolerances,
    max_row_norm2,
    per_run,
    seeds,
    step_gain,
    steps_taken,
)
from trainlab.optim.problems import (
    min_norm_solution,
    random_problems,
)
from trainlab.optim.rates import (
    error_moments,
    kaczmarz_rate,
    sampling_covariance,
    worst_one_step_ratio,
)
from trainlab.optim.runner import run_batch
from trainlab.optim.samplers import Weighted
from trainlab.plotting import new_figure
from trainlab.threads import limit_threads
from trainlab.tolerance import carried, gamma, iteration_rounding, within

__all__ = ["nonuniform_sampling"]


def _sampling_distributions(X: Tensor) -> dict[str, Tensor]:
    """uniform, ∝ ‖x_i‖² and ∝ 1/‖x_i‖² for each problem: name -> (R, n)."""
    sq = X.pow(2).sum(-1)
    return {
        "uniform": torch.ones_like(sq) / sq.shape[-1],
        "p ∝ ‖x‖²": sq / sq.sum(-1, keepdim=True),
        "p ∝ 1/‖x‖²": (1 / sq) / (1 / sq).sum(-1, keepdim=True),
    }


def _row_space_coordinates(X: Tensor, e: Tensor) -> tuple[Tensor, Tensor]:
    """(X Q, Qᵀe) with Q an orthonormal basis of the row space (QR of Xᵀ): (..., n, n), (..., n)."""
    Q, _ = torch.linalg.qr(X.mT)  # (..., d, n)
    return X @ Q, (Q.mT @ e.unsqueeze(-1)).squeeze(-1)


def _counter_example() -> tuple[Tensor, Tensor]:
    """Acceptance 5d: two unit rows at cosine 0.95, sampled with p = [0.9, 0.1]."""
    c = 0.95
    return (
        torch.tensor([[1.0, 0.0], [c, math.sqrt(1 - c * c)]], dtype=torch.float64),
        torch.tensor([0.9, 0.1], dtype=torch.float64),
    )


@claim("optim.nonuniform-sampling", section=SECTION, statement="""
    SGD sampling example i with probability p_i (loss not reweighted) from 0 with η = 1/max‖x_i‖²
    converges to w*, and E‖w_k − w*‖² ≤ (1 − ρ)^k‖w*‖² with ρ = η(2 − η max‖x_i‖²)λ⁺(Σ p_i x_i x_iᵀ)
    (randomized Kaczmarz: ρ = σ⁺_min²/‖X‖_F²). The sampling-weighted loss L_p = Σ p_i(x_iᵀw − t_i)²
    falls in expectation by 1 − ρ_L per step, ρ_L = η(2λ⁺ − η max_i x_iᵀGx_i), for
    η < 2λ⁺/max_i x_iᵀGx_i (smaller than 1/max‖x_i‖²). The unweighted loss can rise in one expected
    step when p is not uniform, at any small step (shown, not asserted as a contraction).""")
def nonuniform_sampling(ctx: Context, instances: Sequence[int] | None = None) -> str:
    """``instances``: the random instances' seeds (default :func:`seeds` of ``ctx``; more for tests)."""
    instances = seeds(ctx) if instances is None else list(instances)
    c = ctx.checks
    c.expect("limit", "w*")
    c.expect("distance_rate", "E‖e_k‖² ≤ (1 − ρ)^k‖e_0‖², ρ = η(2 − ηR²)λ⁺(Σ p_i x_i x_iᵀ)")
    c.expect("kaczmarz_rate", "ρ = σ⁺_min(X)²/‖X‖_F²")
    c.expect("weighted_loss", "E[L_p(w')] ≤ (1 − ρ_L)L_p(w), ρ_L = η(2λ⁺ − η max_i x_iᵀGx_i)")
    c.expect("counter_example", "worst unweighted one-step factor > 1")
    with limit_threads():
        base = random_problems(20, 100, instances, row_scale=(0.5, 2.0))
        R = base.num_runs
        dists = _sampling_distributions(base.X)
        names = list(dists)
        problem = base.repeat(1)
        for _ in names[1:]:
            problem = problem.concat(base)
        P = torch.cat([dists[k] for k in names])  # (3R, n), distribution-major
        R2 = max_row_norm2(problem.X)
        lr = 1 / R2
        G = sampling_covariance(problem.X, P)
        eig_G = torch.linalg.eigvalsh(G)
        lam = eig_G[:, -problem.n]  # λ⁺ of each G
        kappa_G = eig_G[:, -1] / lam  # G's condition number on the row space
        rho = lr * (2 - lr * R2) * lam  # = distance_rate, batched
        w_star = min_norm_solution(problem.X, problem.t)

        # 5a: SGD with p_i sampling (loss not reweighted) from 0 still ends at w*.
        ctx.progress("SGD with non-uniform sampling")
        K = int(math.ceil(60 / float(rho.min())))
        tr = run_batch(problem, F.sgd(lr=per_run(lr)), K, sampler=Weighted(P), generator=ctx.generator(1))
        rel = tr.final_relative_distance(w_star)
        torch_diff = cross_check(
            problem,
            F.sgd(lr=float(lr[0])),
            lambda p: torch.optim.SGD(p, lr=float(lr[0])),
            Weighted(P[:1]),
            lambda: ctx.generator(1),
        )
        c.record("distributions", len(names))
        c.record("instances", R)
        c.record("rel_err_by_distribution", {k: rel[i * R : (i + 1) * R] for i, k in enumerate(names)})
        c.record("steps_to_converge", {k: tr.converged_at[i * R : (i + 1) * R] for i, k in enumerate(names)})
        width = problem.d + 1 + 4  # one sampled row per step
        gain = step_gain(problem.X, lr, 1)
        rel_tol, _ = interpolant_tolerances(problem.X, steps_taken(tr), gain, width)
        within(c, "rel_err_vs_w_star", rel, rel_tol,
               "κ(X)·(τ + residual rounding) + T·gain·γ_(d+5)·2 + closed-form rounding "
               "(as optim.sgd-min-norm)")
        c.holds("all_converged", bool(tr.converged.all()),
                f"every run reaches ‖Xw − t‖/‖t‖ ≤ 1e-10 within K = ⌈60/ρ⌉ = {K} steps")
        within(c, "max_abs_diff_vs_torch_sgd_300_steps", [torch_diff],
               2 * iteration_rounding(carried(300), width, gain[:1]) * 2 * w_star[0].norm(),
               "2 × 300·gain·γ_(d+5)·2‖w*‖ (two roundings of one run)")

        # 5b: the exact second-moment recursion against (1 − ρ)^k at k = ⌈3/ρ⌉.
        ctx.progress("exact second moments")
        Y, z0 = _row_space_coordinates(problem.X, -w_star)
        k_rate = torch.ceil(3 / rho).long()
        # only steps 0 and k of each run kept: every step of 3R runs is gigabytes when some ρ is small
        at_k = error_moments(Y, P, per_run(lr), z0, int(k_rate.max()), at=k_rate)
        dist_k = at_k.squared_distance[1] / at_k.squared_distance[0]
        shown = [i * R for i in range(len(names))]  # the figure: the first instance, each p
        moments = error_moments(Y[shown], P[shown], per_run(lr[shown]), z0[shown], int(k_rate[shown].max()))
        bound_k = (1 - rho) ** k_rate
        c.record("E_dist2_at_3_over_rho", {k: dist_k[i * R : (i + 1) * R] for i, k in enumerate(names)})
        c.record("bound_at_3_over_rho", {k: bound_k[i * R : (i + 1) * R] for i, k in enumerate(names)})
        c.at_most("distance_max_ratio_to_bound", float((dist_k / bound_k).max()), 1.0)
        # 5c: randomized Kaczmarz, p ∝ ‖x‖², per-example step 1/‖x_i‖².
        sq = base.X.pow(2).sum(-1)
        rho_rk = torch.stack([kaczmarz_rate(base.X[r]) for r in range(R)])
        k_rk = torch.ceil(3 / rho_rk).long()
        Yb, zb = _row_space_coordinates(base.X, -min_norm_solution(base.X, base.t))
        rk_at = error_moments(Yb, dists["p ∝ ‖x‖²"], 1 / sq, zb, int(k_rk.max()), at=k_rk)
        rk_k = rk_at.squared_distance[1] / rk_at.squared_distance[0]
        rk = error_moments(Yb[:1], dists["p ∝ ‖x‖²"][:1], 1 / sq[:1], zb[:1], int(k_rk[0]))  # the figure
        rk_bound = (1 - rho_rk) ** k_rk
        tr_rk = run_batch(
            base,
            F.sgd(lr=1.0),
            200_000,
            sampler=Weighted(dists["p ∝ ‖x‖²"]),
            generator=ctx.generator(2),
            example_weights=1 / sq,
        )
        rk_rel = tr_rk.final_relative_distance(min_norm_solution(base.X, base.t))
        c.record("kaczmarz", {"E_dist2_at_3_over_rho": rk_k, "bound": rk_bound, "rel_err_vs_w_star": rk_rel})
        c.at_most("kaczmarz_max_ratio_to_bound", float((rk_k / rk_bound).max()), 1.0)
        # Kaczmarz is SGD with η = 1 on the rows scaled to unit norm (x_i/‖x_i‖, t_i/‖x_i‖)
        rk_tol, _ = interpolant_tolerances(base.X, steps_taken(tr_rk),
                                           step_gain(base.X / sq.sqrt().unsqueeze(-1), 1.0, 1), width)
        within(c, "kaczmarz_rel_err_vs_w_star", rk_rel, rk_tol, "as rel_err_vs_w_star, gain 1 + 2·1")

        # The sampling-weighted loss: one expected step contracts by 1 − ρ_L at the step
        # η_L = λ⁺/max_i x_iᵀGx_i (which maximises ρ_L = η(2λ⁺ − η max_i x_iᵀGx_i)).
        ctx.progress("weighted loss")
        c_max = torch.einsum("rnd,rde,rne->rn", problem.X, G, problem.X).max(-1).values
        lr_L = lam / c_max
        rho_L = lr_L * (2 * lam - lr_L * c_max)
        worst_Lp = torch.stack(
            [worst_one_step_ratio(problem.X[r], P[r], float(lr_L[r]), G[r]) for r in range(problem.num_runs)]
        )
        worst_Lp_big = torch.stack(
            [worst_one_step_ratio(problem.X[r], P[r], float(lr[r]), G[r]) for r in range(problem.num_runs)]
        )
        steps_L = 300 if ctx.quick else 1000
        wl = error_moments(Y, P, per_run(lr_L), z0, steps_L).weighted_loss  # (T, 3R)
        ratio = wl[1:] / wl[:-1]
        # worst-case and exact expected one-step factors of L_p against the bound 1 − ρ_L, up to rounding:
        # the worst factor is an eigenvalue of C⁻¹QᵀBQC⁻ᵀ (QᵀGQ = CCᵀ), four steps each within
        # γ_(2d+3n) of ‖B‖/λ⁺ ≤ κ_G; the exact ratio tr(GS_{k+1})/tr(GS_k) holds for any PSD S_k, and
        # the recursion's rounding (γ_(3n) per step, n from a trace against a norm) accumulates over
        # the steps relative to S_k, which the bound's own contraction shrinks as fast as S_k.
        n, d = problem.n, problem.d
        within(c, "weighted_loss_worst_factor_minus_bound", worst_Lp - (1 - rho_L),
               4 * gamma(2 * d + 3 * n) * kappa_G, "4·γ_(2d+3n)·κ_G (κ_G = λ_max/λ⁺ of G)")
        within(c, "weighted_loss_exact_ratio_minus_bound", (ratio - (1 - rho_L)).amax(0),
               4 * n * gamma(3 * n) * kappa_G * steps_L, "4·n·γ_(3n)·κ_G·steps")
        c.record("weighted_loss", {
            "step_eta_L_times_R2": lr_L * R2,
            "rho_L": rho_L,
            "worst_one_step_factor_at_eta_L": worst_Lp,
            "max_exact_step_ratio_E_Lp": ratio.max(0).values,
            "worst_one_step_factor_at_eta_1_over_R2": worst_Lp_big,
        })
        # Monte Carlo: the mean of L_p over many runs follows the exact expectation.
        n_mc = 200 if ctx.quick else 2000
        first = problem.select([i * R for i in range(len(names))])  # the first instance, each p
        mc_problem = first.repeat(n_mc)
        p_mc = P[[i * R for i in range(len(names))]].repeat_interleave(n_mc, 0)
        ws_mc = w_star[[i * R for i in range(len(names))]]

        def weighted_loss(w: Tensor) -> Tensor:
            return (p_mc * mc_problem.residual(w).pow(2)).sum(-1)

        lr_mc = lr_L[[i * R for i in range(len(names))]].repeat_interleave(n_mc)
        mc = run_batch(
            mc_problem,
            F.sgd(lr=per_run(lr_mc)),
            steps_L,
            sampler=Weighted(p_mc),
            generator=ctx.generator(3),
            record_every=1,
            tol=0.0,
            observe=weighted_loss,
        )
        obs = mc.extra["observed"].reshape(-1, len(names), n_mc)  # (T, 3, N)
        mc_mean, mc_se = obs.mean(-1), obs.std(-1) / math.sqrt(n_mc)
        exact_first = wl[:, [i * R for i in range(len(names))]]
        z = ((mc_mean - exact_first) / mc_se.clamp_min(1e-300))[1:]
        c.record("monte_carlo_runs", n_mc)
        c.at_most("monte_carlo_max_abs_z", float(z.abs().max()), 5.0)
        del ws_mc

        # 5d: the unweighted loss can rise in expectation for a step, at any small η.
        Xc, pc = _counter_example()
        Hc = Xc.mT @ Xc / 2
        Gc = sampling_covariance(Xc, pc)
        eta_c = 1e-4
        worst_unweighted = float(worst_one_step_ratio(Xc, pc, eta_c, Hc))
        # Show it by stepping: from the worst error direction, average the two possible SGD steps.
        evals, evecs = torch.linalg.eigh(Hc)
        Ci = torch.linalg.inv(torch.linalg.cholesky(Hc))
        B = sum(
            pc[i]
            * (torch.eye(2, dtype=torch.float64) - eta_c * torch.outer(Xc[i], Xc[i])).mT
            @ Hc
            @ (torch.eye(2, dtype=torch.float64) - eta_c * torch.outer(Xc[i], Xc[i]))
            for i in range(2)
        )
        _, vecs = torch.linalg.eigh(Ci @ B @ Ci.mT)
        e = Ci.mT @ vecs[:, -1]
        t_c = torch.tensor([1.0, 1.0], dtype=torch.float64)
        w_c = torch.linalg.solve(Xc, t_c) + e
        after = [w_c - eta_c * (Xc[i] @ w_c - t_c[i]) * Xc[i] for i in range(2)]
        loss_c = lambda w: 0.5 * float(((Xc @ w - t_c) ** 2).mean())  # noqa: E731
        weighted_c = lambda w: float((pc * (Xc @ w - t_c) ** 2).sum())  # noqa: E731
        stepped_unweighted = sum(float(pc[i]) * loss_c(after[i]) for i in range(2)) / loss_c(w_c)
        stepped_weighted = sum(float(pc[i]) * weighted_c(after[i]) for i in range(2)) / weighted_c(w_c)
        etas = torch.logspace(-6, 0, 25, dtype=torch.float64)
        curve_unweighted = torch.stack([worst_one_step_ratio(Xc, pc, float(h), Hc) for h in etas])
        curve_weighted = torch.stack([worst_one_step_ratio(Xc, pc, float(h), Gc) for h in etas])
        c.record("counter_example_eta", eta_c)
        c.record("counter_example_cosine", float(Xc[0] @ Xc[1]))
        c.record("counter_example_p", pc)
        c.at_least("counter_example_worst_unweighted_factor", worst_unweighted, 1, strict=True)
        c.at_least("counter_example_stepped_unweighted_factor", stepped_unweighted, 1, strict=True)
        c.at_most("counter_example_stepped_weighted_factor", stepped_weighted, 1, strict=True)
        del evals, evecs

    fig, axes = new_figure(1, 3, size=(15, 4.2))
    for i, k in enumerate(names):
        line = axes[0].semilogy(moments.squared_distance[:, i] / moments.squared_distance[0, i], label=k)[0]
        kk = torch.arange(moments.squared_distance.shape[0])
        axes[0].semilogy(kk, (1 - rho[i * R]) ** kk, "--", color=line.get_color())
    kk = torch.arange(rk.squared_distance.shape[0])
    line = axes[0].semilogy(rk.squared_distance[:, 0] / rk.squared_distance[0, 0], label="Kaczmarz")[0]
    axes[0].semilogy(kk, (1 - rho_rk[0]) ** kk, "--", color=line.get_color())
    axes[0].set(
        xlabel="step k",
        ylabel="E‖w_k − w*‖²/‖w*‖²",
        ylim=(1e-4, 1.5),
        title="E distance²: exact (solid), bound (1 − ρ)^k (dashed)",
    )
    axes[0].legend(fontsize=7)
    steps = torch.arange(steps_L + 1)
    for i, k in enumerate(names):
        line = axes[1].semilogy(steps, exact_first[:, i] / exact_first[0, i], label=f"{k}: exact")[0]
        axes[1].errorbar(
            steps[::25],
            (mc_mean[::25, i] / exact_first[0, i]),
            yerr=2 * mc_se[::25, i] / exact_first[0, i],
            fmt="o",
            ms=3,
            color=line.get_color(),
        )
        axes[1].semilogy(steps, (1 - rho_L[i * R]) ** steps, ":", color=line.get_color())
    axes[1].set(
        xlabel="step k",
        ylabel="E[L_p(w_k)]/L_p(w_0)",
        title=f"E L_p at η_L: exact, {n_mc}-run mean ±2SE, bound (dotted)",
    )
    axes[1].legend(fontsize=7)
    axes[2].semilogx(etas, curve_unweighted - 1, label="unweighted L")
    axes[2].semilogx(etas, curve_weighted - 1, label="weighted L_p")
    axes[2].axhline(0, color="k", lw=0.7)
    axes[2].set_yscale("symlog", linthresh=1e-7)
    axes[2].set(
        xlabel="step η",
        ylabel="worst E[loss(w')]/loss(w) − 1",
        title="cos 0.95, p = [0.9, 0.1]: worst one-step factor",
    )
    axes[2].legend(fontsize=8)
    ctx.save_figure(
        fig,
        "rates",
        {
            "distance_exact": moments.squared_distance,
            "rho": rho[::R],
            "kaczmarz_exact": rk.squared_distance[:, 0],
            "rho_kaczmarz": rho_rk[0],
            "weighted_loss_exact": exact_first,
            "weighted_loss_mc_mean": mc_mean,
            "weighted_loss_mc_se": mc_se,
            "rho_L": rho_L[::R],
            "eta": etas,
            "worst_unweighted": curve_unweighted,
            "worst_weighted": curve_weighted,
        },
    )
    return (
        "{distributions} p's × {instances} instances → w* ({rel_err_vs_w_star}); E‖e_k‖²/(1−ρ)^k "
        "{distance_max_ratio_to_bound:.2f} (RK {kaczmarz_max_ratio_to_bound:.2f}); "
        "E[L_p] step ratio − (1−ρ_L) {weighted_loss_exact_ratio_minus_bound}; "
        "MC |z| {monte_carlo_max_abs_z:.1f}; unweighted L rises "
        "×{counter_example_worst_unweighted_factor:.7f} at η={counter_example_eta} "
        "(cos {counter_example_cosine:.2f}, p={counter_example_p})"
    )
