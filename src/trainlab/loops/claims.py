"""Claims of this part, registered on import with `trainlab.claims.claim`.

- ``loops.zero-grad``: a loop without ``zero_grad()`` applies the running sum of gradients;
- ``loops.lr-too-high``: GD's measured divergence threshold vs 2/λ_max from the sharpness meter.
"""

from __future__ import annotations

import math

import torch

from trainlab.claims import Context, claim
from trainlab.problems import digits_mlp, linreg
from trainlab.seeding import derive_seed, generator
from trainlab.threads import limit_threads

__all__: list[str] = []

SECTION = "Midterm: training-loop pitfalls"


@claim(
    "loops.zero-grad",
    section=SECTION,
    statement="""
    Without optimizer.zero_grad() before backward(), gradients accumulate across steps: the gradient
    an SGD step applies is the running sum of all gradients so far (to float rounding), i.e.
    momentum with β = 1, and training goes wrong (late in the run its loss stays above twice the
    correct loop's, on every batch order tried);
    zero_grad() between backward() and step() applies nothing, so the model never moves.""",
)
def zero_grad_claim(ctx: Context) -> str:
    from trainlab.loops.zero_grad import PLACEMENTS, compare_placements, plot_placements
    from trainlab.plotting import new_figure

    steps, reps = (150, 2) if ctx.quick else (400, 10)
    lr, batch_size = 0.5, 64
    checks = ctx.checks
    with limit_threads(1):
        problem = digits_mlp(derive_seed(ctx.claim_seed, "digits"))
        ctx.progress("four placements of zero_grad()")
        batches = derive_seed(ctx.claim_seed, "batches", 0)
        runs = compare_placements(
            problem,
            lr=lr,
            steps=steps,
            batch_size=batch_size,
            seed=batches,
            placements=("before-backward", "missing"),
        )
        # The other two placements are exact statements (nothing moves; the same curve): a
        # shorter run shows them as well as a long one.
        runs.update(
            compare_placements(
                problem,
                lr=lr,
                steps=steps // 5,
                batch_size=batch_size,
                seed=batches,
                placements=("after-backward", "after-step"),
            )
        )
        pairs = [(runs["before-backward"], runs["missing"])]
        for r in range(1, reps):  # other batch orders: the consequence must not hinge on one
            ctx.progress(f"batch order {r + 1}/{reps}")
            more = compare_placements(
                problem,
                lr=lr,
                steps=steps,
                batch_size=batch_size,
                seed=derive_seed(ctx.claim_seed, "batches", r),
                placements=("before-backward", "missing"),
            )
            pairs.append((more["before-backward"], more["missing"]))
    # Rounding: each p.grad += g_t rounds to a unit u of the partial sum, so after t steps
    # ‖applied − S_t‖ ≤ t·u·Σ‖g_s‖ (u = eps/2 of the model's dtype).
    u = torch.finfo(problem.dtype).eps / 2
    checks.record("steps", steps)
    checks.record("lr", lr)
    checks.record("batch_size", batch_size)
    checks.at_most(
        "missing_minus_running_sum", max(max(m.err_vs_sum) for _, m in pairs), steps * u, expected=0.0
    )
    checks.at_most(
        "correct_minus_true_grad",
        max(max(runs[p].err_vs_true) for p in ("before-backward", "after-step")),
        u,
        expected=0.0,
    )
    checks.record(
        "missing_over_true_grad_norm_final", runs["missing"].applied_norm[-1] / runs["missing"].true_norm[-1]
    )
    q = (steps + 1) * 3 // 4  # the last quarter of the run
    separation = [min(m.losses[q:]) / max(c.losses[q:]) for c, m in pairs]
    checks.record("final_loss_correct", runs["before-backward"].losses[-1])
    checks.record("final_loss_missing", runs["missing"].losses[-1])
    checks.at_least("late_loss_missing_over_correct", min(separation), 2.0)
    checks.record("separation_per_batch_order", separation)
    checks.holds(
        "after_backward_never_moves",
        not runs["after-backward"].params_moved and len(set(runs["after-backward"].losses)) == 1,
        "parameters and loss bitwise unchanged after every step",
    )
    short = len(runs["after-step"].losses)
    checks.holds(
        "after_step_same_as_correct",
        runs["after-step"].losses == runs["before-backward"].losses[:short],
        "the same loss curve as the correct loop, bitwise",
    )

    fig, axes = new_figure(1, 2, size=(9, 3.4))
    plot_placements(runs, axes)
    axes[0].set_title(f"digits MLP, SGD lr={lr}, batch {batch_size}", fontsize=8)
    ctx.save_figure(
        fig,
        "loss-and-applied-gradient",
        {
            "placements": list(PLACEMENTS),
            "losses": {p: r.losses for p, r in runs.items()},
            "applied_norm": {p: r.applied_norm for p, r in runs.items()},
            "true_norm": runs["before-backward"].true_norm,
            "err_vs_running_sum": runs["missing"].err_vs_sum,
        },
    )
    return (
        "without zero_grad the applied gradient is the running sum of the true ones to "
        "{missing_minus_running_sum} (relative to Σ‖g‖); correct loop applies g_t to "
        "{correct_minus_true_grad}; late loss missing/correct {late_loss_missing_over_correct} "
        "over the batch orders (final {final_loss_missing:.3f} vs {final_loss_correct:.3f}); "
        "zero_grad between backward and step: model never moves {after_backward_never_moves!v}; "
        "after step: same curve as correct {after_step_same_as_correct!v}"
    )


@claim(
    "loops.lr-too-high",
    section=SECTION,
    statement="""
    Constant-LR full-batch GD converges for η < 2/λ_max of the loss's Hessian and diverges above it:
    the threshold measured by bisection matches 2/λ_max from the sharpness meter (within the
    finite-horizon slack) on a quadratic and on a small tanh network around a minimum; the meter
    matches the exact eigenvalue; an LR range test on the quadratic diverges only past 2/λ_max. (From
    the network's initialisation the threshold is recorded, not judged: its sharpness changes as GD
    runs, so 2/λ_max at the start is no bound there.)""",
)
def lr_too_high_claim(ctx: Context) -> str:
    from trainlab.loops.lr_range import lr_find
    from trainlab.loops.models import tanh_regression
    from trainlab.loops.sharpness import flat_loss, hvp_operator, lanczos_top_eigenvalue, sharpness
    from trainlab.loops.stability import divergence_threshold, gd_runs, horizon_slack, minimize
    from trainlab.plotting import new_figure

    steps_q, steps_n, steps_init = (200, 100, 20) if ctx.quick else (1000, 400, 50)
    bisect_rtol = 1e-5
    checks = ctx.checks
    seed = ctx.claim_seed
    with limit_threads(1):
        # -- a quadratic: the course's least squares, λ_max in closed form ---------------------
        ctx.progress("quadratic: sharpness and threshold")
        quad = linreg(20, 100, derive_seed(seed, "linreg"))
        fq = flat_loss(quad)
        sq = sharpness(quad, tol=1e-10, seed=derive_seed(seed, "lanczos-q"))
        checks.close("lambda_quadratic", sq.lambda_max, quad.info["lambda_max"], rtol=1e-8)
        checks.record("hvps_quadratic", sq.hvps)
        thq = divergence_threshold(fq, steps=steps_q, rtol=bisect_rtol)
        bound_q = 2 / sq.lambda_max
        slack_q = horizon_slack(fq, sq.lambda_max, sq.eigenvector, steps_q)
        w = thq.rel_width
        checks.record("horizon_quadratic", steps_q)
        checks.record("stable_lr_bound_quadratic", bound_q)
        checks.record("threshold_lr_quadratic", thq.lr)
        checks.record("horizon_slack_quadratic", slack_q)
        # GD diverges exactly past 2/λ_max, but a horizon of T steps only sees it once the top mode
        # has grown back to L_0: the measured η_c/(2/λ_max) − 1 lies in [0, δ_T] (stability.py),
        # widened by the bisection's final bracket width w.
        checks.between(
            "threshold_excess_quadratic", thq.lr / bound_q - 1, -w, (1 + slack_q) * (1 + w) - 1, expected=0.0
        )

        # -- a small tanh network, at a minimum L-BFGS reaches from its initialisation ------------
        ctx.progress("network: minimum, exact Hessian, threshold")
        net = tanh_regression(derive_seed(seed, "tanh-net"))
        fn = flat_loss(net)
        w_star, loss_star, grad_star = minimize(fn)
        checks.record("loss_at_minimum", loss_star)
        checks.record("grad_norm_at_minimum", grad_star)
        hessian = torch.autograd.functional.hessian(fn, w_star)  # (d, d), exact, float64
        exact = torch.linalg.eigvalsh(hessian)
        hvp, _, _ = hvp_operator(fn, w_star)
        sn = lanczos_top_eigenvalue(hvp, w_star.numel(), tol=1e-10, generator=generator(seed, "lanczos-net"))
        checks.close("lambda_network", sn.lambda_max, float(exact[-1]), rtol=1e-8)
        checks.record("hvps_network", sn.hvps)
        u = torch.randn(w_star.numel(), generator=generator(seed, "perturbation"), dtype=w_star.dtype)
        w0 = w_star + 1e-6 * u / u.norm()  # a small kick: the quadratic model holds to O(1e-6)
        # The minimum's own gradient must be negligible beside the kick's (≈ H·kick): ≤ 0.1%.
        w0_ = w0.clone().requires_grad_(True)
        (g_kick,) = torch.autograd.grad(fn(w0_), w0_)
        checks.at_most("grad_at_minimum_over_kick", grad_star / float(g_kick.norm()), 1e-3, expected=0.0)
        thn = divergence_threshold(fn, steps=steps_n, w0=w0, rtol=bisect_rtol)
        bound_n = 2 / sn.lambda_max
        slack_n = horizon_slack(fn, sn.lambda_max, sn.eigenvector, steps_n, w0, loss_min=loss_star)
        # The quadratic model's λ_max varies over the kicked region by a (measured at w₀ with the
        # meter); that is the extra room the network's threshold gets beyond the bisection width.
        s_kick = lanczos_top_eigenvalue(
            hvp_operator(fn, w0)[0], w0.numel(), tol=1e-10, generator=generator(seed, "lanczos-kick")
        )
        a = abs(s_kick.lambda_max / sn.lambda_max - 1)
        w = thn.rel_width + a
        checks.record("lambda_change_over_kick", a)
        checks.record("horizon_network", steps_n)
        checks.record("stable_lr_bound_network", bound_n)
        checks.record("threshold_lr_network", thn.lr)
        checks.record("horizon_slack_network", slack_n)
        checks.between(
            "threshold_excess_network", thn.lr / bound_n - 1, -w, (1 + slack_n) * (1 + w) - 1, expected=0.0
        )

        # -- the same network from its initialisation: not judged, see the module doc ---------
        ctx.progress("network from its initialisation")
        s0 = sharpness(net, tol=1e-10, seed=derive_seed(seed, "lanczos-init"))
        th0 = divergence_threshold(fn, steps=steps_init, rtol=1e-2)
        checks.record("lambda_init", s0.lambda_max)
        checks.record("lambda_at_minimum_over_init", sn.lambda_max / s0.lambda_max)
        checks.record("init_threshold_over_init_bound", th0.lr * s0.lambda_max / 2)

        # -- LR range tests on the same two models -------------------------------------------
        ctx.progress("LR range tests")
        rq = lr_find(quad, min_lr=1e-4, max_lr=10.0, num_steps=200, seed=derive_seed(seed, "range-q"))
        rn = lr_find(net, min_lr=1e-4, max_lr=10.0, num_steps=200, seed=derive_seed(seed, "range-n"))
        div_q = rq.divergence_lr if rq.divergence_lr is not None else math.inf
        # While every η_k ≤ 2/λ_max each mode of the quadratic shrinks, so the (smoothed) loss
        # cannot rise: the range test can only flag divergence past 2/λ_max.
        checks.at_least("range_divergence_over_bound_quadratic", div_q / bound_q, 1.0, strict=True)
        checks.record("range_suggested_lr_quadratic", rq.suggested_lr)
        checks.record("range_divergence_lr_network", rn.divergence_lr)
        checks.record("range_divergence_over_init_threshold_network", (rn.divergence_lr or math.inf) / th0.lr)

        # -- figure: just below and just above each threshold ---------------------------------
        ctx.progress("figure")
        below, above = 0.98, 1.02
        cq = gd_runs(fq, [below * thq.lr, above * thq.lr], 2 * steps_q)
        cn = gd_runs(fn, [below * thn.lr, above * thn.lr], 2 * steps_n, w0)
        c0 = gd_runs(fn, [below * th0.lr, above * th0.lr], 3 * steps_init)
    fig, axes = new_figure(2, 2, size=(9, 6.8))
    cq.plot(axes[0, 0], [f"η = {below}·η_c", f"η = {above}·η_c"])
    axes[0, 0].set_title(f"quadratic: η_c = {thq.lr:.4g}, 2/λ_max = {bound_q:.4g}", fontsize=8)
    cn.plot(axes[0, 1], [f"η = {below}·η_c", f"η = {above}·η_c"])
    axes[0, 1].set_title(f"tanh net near a minimum: η_c = {thn.lr:.4g}, 2/λ_max = {bound_n:.4g}", fontsize=8)
    c0.plot(axes[1, 0], [f"η = {below}·η_c", f"η = {above}·η_c"])
    axes[1, 0].set_title(
        f"tanh net from init: η_c = {th0.lr:.4g}, 2/λ_max(w₀) = {2 / s0.lambda_max:.4g}", fontsize=8
    )
    rq.runs[0].plot(axes[1, 1], "quadratic")
    rn.runs[0].plot(axes[1, 1], "tanh net")
    axes[1, 1].axvline(bound_q, color="k", lw=0.8, label="2/λ_max quadratic")
    axes[1, 1].set_yscale("log")
    axes[1, 1].legend(fontsize=7)
    axes[1, 1].set_title("LR range tests (dotted: suggestion, dashed: divergence)", fontsize=8)
    ctx.save_figure(
        fig,
        "below-and-above-threshold",
        {
            "quadratic": {"lrs": cq.lrs, "losses": cq.losses.tolist(), "threshold": thq.lr, "bound": bound_q},
            "network_minimum": {
                "lrs": cn.lrs,
                "losses": cn.losses.tolist(),
                "threshold": thn.lr,
                "bound": bound_n,
            },
            "network_init": {
                "lrs": c0.lrs,
                "losses": c0.losses.tolist(),
                "threshold": th0.lr,
                "bound": 2 / s0.lambda_max,
            },
            "range_test_quadratic": rq.as_dict(),
            "range_test_network": rn.as_dict(),
        },
    )
    return (
        "quadratic: λ_max {lambda_quadratic} in {hvps_quadratic} HVPs, η_c/(2/λ_max) − 1 "
        "{threshold_excess_quadratic:.3e} ({horizon_quadratic}-step slack {horizon_slack_quadratic:.1e}); "
        "tanh net at a minimum: λ_max {lambda_network} (exact Hessian), η_c/(2/λ_max) − 1 "
        "{threshold_excess_network:.3e}; from init the threshold is {init_threshold_over_init_bound!v:.2f}"
        "×2/λ_max(w₀) (sharpness changes along the run: λ_max(w*)/λ_max(w₀) = "
        "{lambda_at_minimum_over_init:.2f}); on the quadratic the range test diverges at "
        "lr/(2/λ_max) = {range_divergence_over_bound_quadratic}"
    )
