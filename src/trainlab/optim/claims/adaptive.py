"""optim.adaptive-not-min-norm: AdaGrad, RMSProp and Adam end at another interpolant."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

import trainlab.functional as F
from trainlab.claims import Context, claim
from trainlab.optim.claims._shared import (
    SECTION,
    max_of,
    min_of,
    per_run,
    seeds,
    worked_pair,
)
from trainlab.optim.compare import Paths2D
from trainlab.optim.problems import (
    LeastSquares,
    min_norm_solution,
    random_problems,
    sign_interpolant,
    smoothness,
    worked_example,
)
from trainlab.optim.runner import Trajectories, run_batch, torch_optim_reference
from trainlab.plotting import new_figure
from trainlab.threads import limit_threads

__all__ = ["COURSE_RMSPROP_STEPS", "course_rmsprop_steps", "adaptive_not_min_norm", "wilson_construction"]


def _adaptive_optimizers() -> dict[str, tuple[F.GradientTransformation, str]]:
    """The acceptance table's settings (3b, 3c): name -> (optimizer, description).

    Adam gets a slowly decaying step as RMSProp does: at the table's constant lr = 1e-2 it kept
    circling the solution set on 3 of the 603 instances of seeds 433 and 1000–1199 (residual up to
    2e-2 after 60,000 steps); with lr = 1e-2·0.9998^k all interpolated, in ~430 steps at the median.
    """
    return {
        "AdaGrad": (F.adagrad(lr=0.1), "Adagrad(lr=0.1)"),
        "RMSProp": (
            F.rmsprop(lr=F.exponential_decay(1e-2, 0.999)),
            "RMSprop(lr=1e-2) + ExponentialLR(0.999)",
        ),
        "Adam": (F.adam(lr=F.exponential_decay(1e-2, 0.9998)), "Adam(lr=1e-2) + ExponentialLR(0.9998)"),
    }


#: Steps the adaptive methods get to interpolate a random instance (each run stops at ‖Xw − t‖/‖t‖ ≤ 1e-10).
RANDOM_MAX_STEPS = 100_000

#: The course's two RMSProp steps from 0 on x = [2, 1], t = 2 (β = 0.9, η = 0.1), as printed.
COURSE_RMSPROP_STEPS = ((0.314, 0.311), (0.467, 0.463))


def course_rmsprop_steps(eps: float | Tensor) -> Tensor:
    """Two steps of the course's RMSProp from 0 on x = [2, 1], t = 2 (g = (xᵀw − t)x).

    ``eps`` (E,) -> parameters after steps 1 and 2: (E, 2, 2).
    """
    eps_t = torch.as_tensor(eps, dtype=torch.float64).reshape(-1)
    ex = worked_example("x=[2,1],t=2")
    batch = LeastSquares(
        ex.X.expand(len(eps_t), -1, -1),
        ex.t.expand(len(eps_t), -1),
        tuple(f"eps={e:g}" for e in eps_t.tolist()),
    )
    tr = run_batch(
        batch,
        F.course_rmsprop(lr=0.1, beta=0.9, eps=per_run(eps_t)),
        2,
        record_params=True,
        record_every=1,
        tol=0.0,
    )
    assert tr.params is not None
    return tr.params[1:3].transpose(0, 1)  # (T, E, d) -> (E, 2, d)


def _wilson_features(y: Tensor, d: int) -> Tensor:
    """Wilson et al. (2017, §3.3): x₁ = y, x₂ = x₃ = 1, and unique features: one for a positive
    example, five for a negative one (columns 3 + 5i …); the rest 0. (m, d)."""
    m = len(y)
    X = torch.zeros(m, d, dtype=torch.float64)
    X[:, 0], X[:, 1], X[:, 2] = y, 1.0, 1.0
    for i in range(m):
        width = 1 if y[i] > 0 else 5
        X[i, 3 + 5 * i : 3 + 5 * i + width] = 1.0
    return X


def wilson_construction(
    generator: torch.Generator, n: int = 30, p: float = 0.7, num_test: int = 20_000
) -> dict[str, float]:
    """GD vs AdaGrad/Adam on Wilson et al.'s separable problem (d = 6n, P(y = 1) = p).

    The lemma: if X sign(Xᵀy) = c·y for a c > 0, adaptive methods from 0 stay on the ray of
    s = sign(Xᵀy) and interpolate at s/c (here c = 4, so w₁ = w₂ = w₃ = 1/4), predicting
    sign(w₁y + w₂ + w₃) = +1 for every new point: test error = the fraction of negatives.
    GD's minimum-norm solution classifies new points correctly.
    """
    d = 6 * n
    while True:  # the lemma needs more positives than negatives (s₂ = s₃ = +1)
        y = 2 * (torch.rand(n, generator=generator, dtype=torch.float64) < p).double() - 1
        if y.sum() > 0:
            break
    X = _wilson_features(y, d)
    s = torch.sign(X.T @ y)
    ratio = (X @ s) / y  # the lemma's c for every example
    y_test = 2 * (torch.rand(num_test, generator=generator, dtype=torch.float64) < p).double() - 1
    # a fresh point's unique features are columns no training example uses (weights 0 there)
    problem = LeastSquares(X[None], y[None], ("wilson",))
    out: dict[str, float] = {
        "lemma_c": float(ratio.mean()),
        "lemma_c_spread": float(ratio.max() - ratio.min()),
        "test_fraction_negative": float((y_test < 0).double().mean()),
    }
    runs = {
        "gd": F.sgd(lr=float(1 / smoothness(problem.X)[0])),
        "AdaGrad": F.adagrad(lr=0.1),
        "Adam": F.adam(lr=1e-2),
    }
    for name, opt in runs.items():
        w = run_batch(problem, opt, 100_000).final_params[0]
        score = w[0] * y_test + w[1] + w[2]
        out[f"{name}_test_error"] = float((torch.sign(score) != y_test).double().mean())
        out[f"{name}_train_residual"] = float(problem.relative_residual(w[None])[0])
        if name != "gd":
            out[f"{name}_max_abs_w123_minus_quarter"] = float((w[:3] - 0.25).abs().max())
    return out


def _first_steps(worked: LeastSquares, a: float) -> dict[str, Tensor]:
    """One step of size a of GD and of each adaptive method from 0: name -> w₁ (R, d)."""
    opts = {"GD": F.sgd(lr=a), "AdaGrad": F.adagrad(lr=a), "Adam": F.adam(lr=a), "RMSProp": F.rmsprop(lr=a)}
    return {name: run_batch(worked, o, 1, tol=0.0).final_params for name, o in opts.items()}


@claim("optim.adaptive-not-min-norm", section=SECTION, statement="""
    AdaGrad, RMSProp and Adam from 0 with ε small relative to |g| interpolate but generally not at
    w*: on x = [2, 1], t = 2 and x = [1, 2], t = 3 every step is along sign(g) = ±[1, 1], so they end
    at [2/3, 2/3] and [1, 1], at relative distance 1/3 from w*. When sign(g) lies in the row space
    they do reach w*; as ε grows they become plain GD and reach w*. On Wilson et al.'s (2017)
    construction the adaptive interpolant misclassifies every negative test point while GD's has
    test error 0. The course's RMSProp two steps ≈[0.314, 0.311], ≈[0.467, 0.463] follow from its
    update with ε = 0.01 (ε → 0 gives [0.316, 0.316]).""")
def adaptive_not_min_norm(ctx: Context, instances: Sequence[int] | None = None) -> str:
    """``instances``: the random instances' seeds (default :func:`seeds` of ``ctx``; more for tests)."""
    instances = seeds(ctx) if instances is None else list(instances)
    c = ctx.checks
    with limit_threads():
        worked = worked_pair()
        x, t = worked.X[:, 0], worked.t[:, 0]  # (2, d), (2,)
        w_star = min_norm_solution(worked.X, worked.t)
        w_sign = torch.stack([sign_interpolant(x[r], t[r]) for r in range(2)])
        s = torch.sign(t[:, None] * x)

        # 3a: from 0 the first gradient is g = −t·x; the first step is a·g/(|g| + ε) for AdaGrad and
        # Adam (m̂ = g, v̂ = g²), a·g/(√(1 − α)|g| + ε) = 10a·sign(g) for RMSProp (α = 0.99): a
        # multiple of sign(g) = −s up to O(ε/|g|), while GD's step a·t·x is along x.
        a = 1e-3
        first = _first_steps(worked, a)
        g0 = -t[:, None] * x  # (2, d): ∇J(0) for n = 1
        first_expected = {
            "GD": -a * g0,
            "AdaGrad": -a * g0 / (g0.abs() + 1e-10),
            "Adam": -a * g0 / (g0.abs() + 1e-8),
            "RMSProp": -a * g0 / (math.sqrt(0.01) * g0.abs() + 1e-8),
        }
        angle = {
            name: [
                math.degrees(math.acos(min(1.0, float(w[r] @ x[r] / (w[r].norm() * x[r].norm())))))
                for r in range(2)
            ]
            for name, w in first.items()
        }
        first_err = max(float((first[k] - v).abs().max()) / a for k, v in first_expected.items())
        sign_dev = max(
            float((first[k] / (c * a) - s).abs().max())
            for k, c in (("AdaGrad", 1), ("Adam", 1), ("RMSProp", 10))
        )
        c.record("first_step", first)
        c.expect("first_step", first_expected)
        c.record("first_step_angle_to_x_deg", angle)
        c.expect("first_step_angle_to_x_deg", {
            "GD": 0.0,
            "adaptive": [
                math.degrees(math.acos(float(s[r] @ x[r] / (s[r].norm() * x[r].norm())))) for r in range(2)
            ],
        })
        c.at_most("first_step_max_deviation_from_closed_form_over_a", first_err, 1e-12, expected=0.0)
        c.at_most("first_step_max_deviation_from_c_times_sign", sign_dev, 1e-6, expected=0.0)
        c.at_most("gd_first_step_max_angle_to_x_deg", max(angle["GD"]), 1e-5, expected=0.0)

        # 3b: the adaptive limits on the worked examples are the sign interpolants.
        ctx.progress("worked examples")
        paths: dict[str, Trajectories] = {
            "GD": run_batch(
                worked,
                F.sgd(lr=per_run(1 / smoothness(worked.X))),
                5000,
                record_params=True,
                record_every=1,
                label="GD",
            )
        }
        limits: dict[str, dict[str, object]] = {}
        for name, (opt, desc) in _adaptive_optimizers().items():
            tr = run_batch(worked, opt, 200_000, record_params=True, label=desc)
            paths[name] = tr
            limits[name] = {
                "w_T": tr.final_params,
                "rel_to_sign_interpolant": tr.final_relative_distance(w_sign),
                "rel_err_vs_w_star": tr.final_relative_distance(w_star),
                "steps": tr.converged_at.tolist(),
            }
        # Between the two limits: Adam with ε = 1 (comparable to |g|) curves from the diagonal towards w*.
        paths["Adam, ε = 1"] = run_batch(worked, F.adam(lr=0.02, eps=1.0), 100_000, record_params=True)
        third = (w_sign - w_star).norm(dim=-1) / w_star.norm(dim=-1)  # theory: 1/3 on both examples
        c.record("worked_limits", limits)
        c.expect("worked_limits", {"sign_interpolant": w_sign, "w_star": w_star, "rel_err_vs_w_star": third})
        worked_rel = torch.cat([v["rel_err_vs_w_star"] for v in limits.values()])  # type: ignore[misc]
        c.at_most("worked_max_rel_to_sign_interpolant",
                  max(max_of(v["rel_to_sign_interpolant"]) for v in limits.values()),  # type: ignore[arg-type]
                  1e-6, expected=0.0)
        c.at_most("worked_max_abs_rel_err_minus_third",
                  max(max_of((v["rel_err_vs_w_star"] - third).abs()) for v in limits.values()),  # type: ignore[operator]
                  1e-6, expected=0.0)
        c.record("worked_rel_err_vs_w_star_range", [min_of(worked_rel), max_of(worked_rel)])
        c.holds("worked_converged", all(min(v["steps"]) >= 0 for v in limits.values()),  # type: ignore[arg-type]
                "every adaptive run interpolates (‖Xw − t‖/‖t‖ ≤ 1e-10) within 200,000 steps")
        c.at_most("worked_gd_rel_err_vs_w_star", max_of(paths["GD"].final_relative_distance(w_star)), 1e-8,
                  expected=0.0)

        # 3c: random instances: interpolate, but not at w*, and with a larger norm.
        ctx.progress("random instances")
        random = random_problems(20, 100, instances)
        ws_random = min_norm_solution(random.X, random.t)
        rand: dict[str, dict[str, object]] = {}
        for name, (opt, _) in _adaptive_optimizers().items():
            tr = run_batch(random, opt, RANDOM_MAX_STEPS)
            rand[name] = {
                "resid": tr.relative_residual[-1],
                "rel_err_vs_w_star": tr.final_relative_distance(ws_random),
                "norm_ratio": tr.final_params.norm(dim=-1) / ws_random.norm(dim=-1),
            }
        c.record("random_instances", rand)
        c.at_most("random_max_resid", max(max_of(v["resid"]) for v in rand.values()), 1e-8,  # type: ignore[arg-type]
                  expected=0.0)
        c.at_least("random_min_rel_err_vs_w_star",
                   min(min_of(v["rel_err_vs_w_star"]) for v in rand.values()), 0.1)  # type: ignore[arg-type]
        c.at_least("random_min_norm_ratio", min(min_of(v["norm_ratio"]) for v in rand.values()), 1,  # type: ignore[arg-type]
                   strict=True)

        # 3f: negative control: when sign(g) already lies in the row space the adaptive limit is w*.
        controls = LeastSquares(
            torch.tensor([[[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 2.0, -2.0]]], dtype=torch.float64),
            torch.tensor([[1.0, 2.0]], dtype=torch.float64),
            ("X=[[1,1,0,0],[0,0,2,-2]]",),
        )
        single = LeastSquares(
            torch.tensor([[[1.0, -1.0]]], dtype=torch.float64),
            torch.tensor([[2.0]], dtype=torch.float64),
            ("x=[1,-1],t=2",),
        )
        control_err = {}
        for problem in (single, controls):
            ws = min_norm_solution(problem.X, problem.t)
            for name, (opt, _) in _adaptive_optimizers().items():
                control_err[f"{name} on {problem.names[0]}"] = max_of(
                    run_batch(problem, opt, 200_000).final_relative_distance(ws)
                )
        c.record("negative_control_rel_err_vs_w_star", control_err)
        c.at_most("negative_control_max_rel_err_vs_w_star", max(control_err.values()), 1e-8, expected=0.0)

        # 3e: Wilson et al.'s construction: adaptive methods generalise worse than GD.
        ctx.progress("Wilson et al. construction")
        wilson = wilson_construction(ctx.generator(4))
        c.record("wilson_construction", wilson)
        c.expect("wilson_construction", {
            "lemma_c": 4.0,
            "gd_test_error": 0.0,
            "adaptive_test_error": "fraction of negative test labels",
            "adaptive_w1_w2_w3": 0.25,
        })
        c.at_most("wilson_lemma_c_spread", wilson["lemma_c_spread"], 1e-12, expected=0.0)
        c.equal("wilson_lemma_c", wilson["lemma_c"], 4.0)
        c.equal("wilson_gd_test_error", wilson["gd_test_error"], 0.0)
        for k in ("AdaGrad", "Adam"):
            c.equal(f"wilson_{k.lower()}_test_error", wilson[f"{k}_test_error"],
                    wilson["test_fraction_negative"])
        c.at_most("wilson_max_abs_w123_minus_quarter",
                  max(wilson[f"{k}_max_abs_w123_minus_quarter"] for k in ("AdaGrad", "Adam")), 1e-5,
                  expected=0.0)

        # 3d: ε → ∞ turns the methods into plain GD, which finds w*.
        big_err = {}
        for label, opt in (
            ("Adam(eps=1e6, lr=1e5)", F.adam(lr=1e5, eps=1e6)),
            (
                "Adagrad(initial_accumulator_value=1e12, lr=1e5)",
                F.adagrad(lr=1e5, initial_accumulator_value=1e12),
            ),
        ):
            errs = []
            for problem in (worked, random):
                errs.append(
                    max_of(
                        run_batch(problem, opt, 20_000).final_relative_distance(
                            min_norm_solution(problem.X, problem.t)
                        )
                    )
                )
            big_err[label] = max(errs)
        c.record("large_eps_rel_err_vs_w_star", big_err)
        c.at_most("large_eps_max_rel_err_vs_w_star", max(big_err.values()), 1e-5, expected=0.0)

        # The ε sweep on x = [2, 1], t = 2: lr = 0.1(1 + ε) keeps both limits at step 0.1.
        eps = torch.logspace(-8, 8, 17 if ctx.quick else 33, dtype=torch.float64)
        ex = worked_example("x=[2,1],t=2")
        sweep_problem = LeastSquares(
            ex.X.expand(len(eps), -1, -1),
            ex.t.expand(len(eps), -1),
            tuple(f"eps={e:g}" for e in eps.tolist()),
        )
        ws_ex = min_norm_solution(ex.X, ex.t)
        sweep = {}
        for name, make in (
            ("AdaGrad", lambda e: F.adagrad(lr=0.1 * (1 + e), eps=e)),
            ("Adam", lambda e: F.adam(lr=0.01 * (1 + e), eps=e)),
        ):
            tr = run_batch(sweep_problem, make(per_run(eps)), 100_000)
            sweep[name] = tr.final_relative_distance(ws_ex)
        tail = eps >= 1e-2
        monotone = {name: bool((v[tail][1:] <= v[tail][:-1] + 1e-9).all()) for name, v in sweep.items()}
        c.record("eps_sweep", {"eps": eps, **sweep})
        c.holds("eps_sweep_monotone", all(monotone.values()),
                "‖w_T − w*‖/‖w*‖ does not grow with ε from ε = 1e-2 on (to 1e-9)")
        c.at_least("eps_sweep_min_rel_err_at_smallest_eps", min(float(v[0]) for v in sweep.values()), 0.3,
                   strict=True)
        c.at_most("eps_sweep_max_rel_err_at_largest_eps", max(float(v[-1]) for v in sweep.values()), 1e-5,
                  expected=0.0)

        # The course's RMSProp numbers: two steps from 0 with β = 0.9, η = 0.1.
        stated = torch.tensor(COURSE_RMSPROP_STEPS, dtype=torch.float64)
        eps_grid = torch.logspace(-8, 0, 801, dtype=torch.float64)
        two = course_rmsprop_steps(eps_grid)  # (E, 2, 2)
        mismatch = (two - stated).abs().amax(dim=(1, 2))
        best = int(mismatch.argmin())
        small_eps = two[0]
        theory_first = 0.1 / math.sqrt(0.1)  # η/√(1 − β) · sign(g) when ε → 0
        course_eps = 0.01
        at_001 = course_rmsprop_steps(course_eps)[0]
        torch_twin = torch_optim_reference(
            ex, lambda p: torch.optim.RMSprop(p, lr=0.1, alpha=0.9, eps=course_eps), 2, tol=0.0
        )
        c.record("course_rmsprop", {"eps=1e-8": small_eps, "eps=0.01": at_001})
        c.expect("course_rmsprop", {"stated": stated, "first_step_eps_to_0": [theory_first, theory_first]})
        c.close("course_rmsprop_first_step_at_eps_1e_8", float(small_eps[0, 0]), theory_first, atol=1e-6)
        c.at_most("course_rmsprop_vs_torch_rmsprop", float((torch_twin[0] - at_001[1]).abs().max()), 1e-15,
                  expected=0.0)
        c.record("course_rmsprop_eps", course_eps)
        c.close("course_rmsprop_two_steps", at_001.flatten().tolist(), stated.flatten().tolist(), atol=5e-4)
        c.record("course_rmsprop_best_fitting_eps", float(eps_grid[best]))
        c.record("course_rmsprop_best_fit_max_abs_diff", float(mismatch[best]))

    _adaptive_figures(ctx, worked, paths, w_star, w_sign, eps, sweep)
    return (
        "worked cases: AdaGrad/RMSProp/Adam end at the sign interpolants "
        "({worked_max_rel_to_sign_interpolant}), ‖w−w*‖/‖w*‖ ∈ {worked_rel_err_vs_w_star_range:.4f} "
        "(off theory by {worked_max_abs_rel_err_minus_third}); "
        "random: ‖w−w*‖/‖w*‖ {random_min_rel_err_vs_w_star}, resid {random_max_resid}; "
        "ε→∞ → w* ({large_eps_max_rel_err_vs_w_star}); Wilson: test error GD {wilson_gd_test_error!v}, "
        "adaptive {wilson_adam_test_error} (the fraction of negatives); course RMSProp "
        "{course_rmsprop_two_steps:.3f} at ε={course_rmsprop_eps}"
    )


def _adaptive_figures(
    ctx: Context,
    worked: LeastSquares,
    paths: dict[str, Trajectories],
    w_star: Tensor,
    w_sign: Tensor,
    eps: Tensor,
    sweep: dict[str, Tensor],
) -> None:
    fig, axes = new_figure(1, 2, size=(10, 4.4))
    data: dict[str, object] = {}
    for r, ax in enumerate(axes):
        picture = Paths2D(
            worked.X[r, 0],
            float(worked.t[r, 0]),
            {name: tr.params[:, r] for name, tr in paths.items()},  # type: ignore[index]
            w_star[r],
            w_sign[r],
        )
        picture.plot(ax)
        ax.set_title(worked.names[r])
        data[worked.names[r]] = picture.paths
    ctx.save_figure(fig, "paths-2d", {**data, "w_star": w_star, "sign_interpolant": w_sign})

    fig, ax = new_figure(size=(5.5, 3.8))
    for name, v in sweep.items():
        ax.loglog(eps, v.clamp_min(1e-16), "o-", ms=3, label=name)
    ax.axhline(1 / 3, color="k", ls=":", lw=0.8)
    ax.set(
        xlabel="ε (lr = 0.1(1 + ε) AdaGrad, 0.01(1 + ε) Adam)",
        ylabel="‖w_T − w*‖/‖w*‖",
        title="x = [2, 1], t = 2: large ε → plain GD → w*",
    )
    ax.legend(fontsize=8)
    ctx.save_figure(fig, "eps-sweep", {"eps": eps, **sweep})
