"""Claims of CLAIMS.md §1: which solution does an optimizer find?

Setups, metrics and tolerances follow the acceptance table (shared/optim-acceptance.md).
Every run is float64, from w₀ = 0 unless said otherwise, on J(w) = (1/2n)‖Xw − t‖²
(:mod:`trainlab.optim.problems`), and stops when ‖Xw − t‖/‖t‖ ≤ 1e-10. Each claim
cross-checks the vectorised runner against ``torch.optim`` on some of its runs.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

import trainlab.functional as F
from trainlab.claims import Claim, Context, Evidence, register
from trainlab.optim.problems import (
    LeastSquares,
    distance_from_row_space,
    gd_stability_bound,
    min_norm_solution,
    preconditioned_solution,
    random_problems,
    ridge_solution,
    row_space_projection,
    sign_interpolant,
    smoothness,
    worked_example,
)
from trainlab.optim.rates import (
    distance_rate,
    error_moments,
    kaczmarz_rate,
    sampling_covariance,
    weighted_loss_rate,
    worst_one_step_ratio,
)
from trainlab.optim.runner import Trajectories, limit_threads, run_batch, torch_optim_reference
from trainlab.optim.samplers import FullBatch, MiniBatch, Sampler, Weighted, squared_norm_probabilities
from trainlab.plotting import new_figure

__all__ = ["CLAIM_IDS"]

SECTION = "§1 Optimization"
TOL = 1e-10  # stopping rule: relative residual
CLAIM_IDS = (
    "optim.gd-min-norm", "optim.sgd-min-norm", "optim.momentum-min-norm", "optim.adaptive-not-min-norm",
    "optim.preconditioned-solution", "optim.nonuniform-sampling", "optim.weight-decay-vs-l2",
)


def _seeds(ctx: Context) -> list[int]:
    """The acceptance table's instances (seeds 0, 1, 2) at quick scale; ten at full scale."""
    return [0, 1, 2] if ctx.quick else list(range(10))


def _max(x: Tensor) -> float:
    return float(x.max())


def _min(x: Tensor) -> float:
    return float(x.min())


def _col(x: Tensor) -> Tensor:
    """Per-run hyperparameter (R,) -> (R, 1), broadcast against parameters (R, d)."""
    return x.unsqueeze(-1)


def _max_row_norm2(X: Tensor) -> Tensor:
    """R² = max_i ‖x_i‖² per problem: (R,)."""
    return X.pow(2).sum(-1).max(-1).values


def _off_row_space(problem: LeastSquares, tr: Trajectories, w_star: Tensor) -> Tensor:
    """max over recorded iterates of ‖(I − P)w_k‖/‖w*‖ per run: (R,)."""
    assert tr.params is not None
    return (distance_from_row_space(problem.X, tr.params) / w_star.norm(dim=-1)).max(0).values


def _worked_pair() -> LeastSquares:
    return worked_example("x=[2,1],t=2").concat(worked_example("x=[1,2],t=3"))


# --------------------------------------------------------------------------------------------
# optim.gd-min-norm
# --------------------------------------------------------------------------------------------

def run_gd_min_norm(ctx: Context) -> Evidence:
    with limit_threads():
        random = random_problems(20, 100, _seeds(ctx))
        worked = [worked_example(name) for name in ("x=[2,1],t=2", "x=[1,2],t=3", "x=[1,0.1,0.01],t=1")]
        rel_err: dict[str, float] = {}
        off: dict[str, float] = {}
        steps: dict[str, int] = {}
        ctx.progress("GD on random instances and the worked examples")
        traces = []
        for problem in [random, *worked]:
            w_star = min_norm_solution(problem.X, problem.t)
            tr = run_batch(problem, F.sgd(lr=_col(1 / smoothness(problem.X))), 5000, record_params=True,
                           record_every=1, label="GD, η = 1/L")
            traces.append((problem, tr, w_star))
            for r, name in enumerate(problem.names):
                rel_err[name] = float(tr.final_relative_distance(w_star)[r])
                off[name] = float(_off_row_space(problem, tr, w_star)[r])
                steps[name] = int(tr.converged_at[r])
        # Cross-check: torch.optim.SGD on the first instance ends at the same point.
        ref = torch_optim_reference(random.select([0]),
                                    lambda p: torch.optim.SGD(p, lr=float(1 / smoothness(random.X[0]))), 5000)
        torch_diff = float((ref[0] - traces[0][1].final_params[0]).abs().max())

        # Control 1d: from a random w0 GD ends at w* + (I − P)w0, not at w*.
        w0 = torch.randn(random.num_runs, random.d, generator=ctx.generator(1), dtype=torch.float64)
        w_star = min_norm_solution(random.X, random.t)
        limit = w_star + w0 - row_space_projection(random.X, w0)
        tr0 = run_batch(random, F.sgd(lr=_col(1 / smoothness(random.X))), 5000, w0=w0)
        ctrl_vs_limit = _max(tr0.final_relative_distance(limit))
        ctrl_vs_star = _min(tr0.final_relative_distance(w_star))
        # Control 1e: a step beyond the stability bound 2/L diverges.
        bound = gd_stability_bound(random.X)
        tr_big = run_batch(random, F.sgd(lr=_col(1.025 * bound)), 3000)
        diverged_at = tr_big.diverged_at.tolist()
        big_resid = _min(torch.nan_to_num(tr_big.relative_residual[-1], nan=math.inf))

    fig, axes = new_figure(1, 2, size=(10, 3.6))
    for problem, tr, ws in traces:
        for r, name in enumerate(problem.names):
            axes[0].semilogy(tr.steps, tr.relative_distance(ws)[:, r].clamp_min(1e-17), label=name)
            axes[1].semilogy(tr.steps, (distance_from_row_space(problem.X, tr.params)[:, r]
                                        / ws[r].norm()).clamp_min(1e-18), label=name)
    axes[0].set(xlabel="step", ylabel="‖w_k − w*‖/‖w*‖", title="GD (η = 1/L) from 0 → w*")
    axes[1].set(xlabel="step", ylabel="‖(I − P)w_k‖/‖w*‖", title="distance from the row space")
    axes[0].legend(fontsize=7)
    ctx.save_figure(fig, "distance", {
        name: {"steps": tr.steps, "rel_dist": tr.relative_distance(ws)[:, r]}
        for problem, tr, ws in traces for r, name in enumerate(problem.names)})

    worst_err, worst_off = max(rel_err.values()), max(off.values())
    passed = (worst_err <= 1e-8 and worst_off <= 1e-12 and min(steps.values()) >= 0 and torch_diff <= 1e-12
              and ctrl_vs_limit <= 1e-8 and ctrl_vs_star >= 1 and all(k >= 0 for k in diverged_at)
              and big_resid > 1)
    return Evidence(
        measured={"rel_err": rel_err, "off_row_space": off, "steps_to_converge": steps,
                  "max_abs_diff_vs_torch_sgd": torch_diff,
                  "control_random_w0_rel_err_vs_w_star_plus_null_part": ctrl_vs_limit,
                  "control_random_w0_min_rel_err_vs_w_star": ctrl_vs_star,
                  "control_lr_2.05_over_L_diverged_at_step": diverged_at},
        expected={"rel_err": 0.0, "off_row_space": 0.0, "lr_bound": "η < 2/L = 2/λ_max(XᵀX/n)",
                  "w_star": "Xᵀ(XXᵀ)⁻¹t", "control_random_w0_limit": "w* + (I − P)w0"},
        tolerance={"rel_err": 1e-8, "off_row_space": 1e-12, "torch_diff": 1e-12,
                   "control_rel_err_vs_w_star": ">= 1"},
        passed=passed,
        summary=(f"GD η=1/L from 0, {len(rel_err)} problems: ‖w−w*‖/‖w*‖ ≤ {worst_err:.1e} (≤1e-8), "
                 f"off row space ≤ {worst_off:.1e}; from random w0 off by ≥{ctrl_vs_star:.1f}; "
                 f"η=2.05/L diverges at step {min(diverged_at)}"),
    )


# --------------------------------------------------------------------------------------------
# optim.sgd-min-norm
# --------------------------------------------------------------------------------------------

def _sgd_settings(ctx: Context) -> list[tuple[str, Sampler, float]]:
    """(label, sampler, step × R²): b = 1 at η = 1/R², b = 5 at 3/R² (acceptance 1b, 1c)."""
    settings: list[tuple[str, Sampler, float]] = [
        ("b=1 reshuffled", MiniBatch(1), 1.0), ("b=1 with replacement", MiniBatch(1, True), 1.0),
        ("b=5 reshuffled", MiniBatch(5), 3.0)]
    if not ctx.quick:
        settings += [("b=2 reshuffled", MiniBatch(2), 1.0), ("b=10 reshuffled", MiniBatch(10), 1.0),
                     ("b=5 with replacement", MiniBatch(5, True), 3.0)]
    return settings


def run_sgd_min_norm(ctx: Context) -> Evidence:
    rel_err: dict[str, float] = {}
    off: dict[str, float] = {}
    steps: dict[str, list[int]] = {}
    torch_diff = 0.0
    fig, ax = new_figure(size=(6, 4))
    data = {}
    with limit_threads():
        problem = random_problems(20, 100, _seeds(ctx))
        w_star = min_norm_solution(problem.X, problem.t)
        R2 = _max_row_norm2(problem.X)
        for k, (label, sampler, scale) in enumerate(_sgd_settings(ctx)):
            ctx.progress(label)
            tr = run_batch(problem, F.sgd(lr=_col(scale / R2)), 50_000, sampler=sampler,
                           generator=ctx.generator(10 + k), record_params=True, record_every=10, label=label)
            rel_err[label] = _max(tr.final_relative_distance(w_star))
            off[label] = _max(_off_row_space(problem, tr, w_star))
            steps[label] = tr.converged_at.tolist()
            ref = torch_optim_reference(problem, lambda p, s=float(scale / R2[0]): torch.optim.SGD(p, lr=s),
                                        tr.steps_run, sampler=sampler, generator=ctx.generator(10 + k), runs=[0])
            torch_diff = max(torch_diff, float((ref[0] - tr.final_params[0]).abs().max()))
            dist = tr.relative_distance(w_star)
            ax.semilogy(tr.steps, dist.median(1).values.clamp_min(1e-17), label=label)
            data[label] = {"steps": tr.steps, "rel_dist": dist}
    ax.set(xlabel="step", ylabel="‖w_k − w*‖/‖w*‖ (median over instances)",
           title="SGD from 0 (n=20, d=100) → w*")
    ax.legend(fontsize=8)
    ctx.save_figure(fig, "distance", data)
    worst_err, worst_off = max(rel_err.values()), max(off.values())
    converged = all(s >= 0 for v in steps.values() for s in v)
    passed = worst_err <= 1e-8 and worst_off <= 1e-12 and converged and torch_diff <= 1e-12
    return Evidence(
        measured={"rel_err": rel_err, "off_row_space": off, "steps_to_converge": steps,
                  "max_abs_diff_vs_torch_sgd": torch_diff, "instances": len(_seeds(ctx))},
        expected={"rel_err": 0.0, "off_row_space": 0.0, "limit": "w* = Xᵀ(XXᵀ)⁻¹t for every batch size"},
        tolerance={"rel_err": 1e-8, "off_row_space": 1e-12, "torch_diff": 1e-12},
        passed=passed,
        summary=(f"SGD from 0, {len(rel_err)} batch settings × {len(_seeds(ctx))} instances: "
                 f"‖w−w*‖/‖w*‖ ≤ {worst_err:.1e} (≤1e-8), off row space ≤ {worst_off:.1e}, "
                 f"≤{max(max(v) for v in steps.values())} steps; = torch.optim to {torch_diff:.0e}"),
    )


# --------------------------------------------------------------------------------------------
# optim.momentum-min-norm
# --------------------------------------------------------------------------------------------

def run_momentum_min_norm(ctx: Context) -> Evidence:
    with limit_threads():
        problem = random_problems(20, 100, _seeds(ctx))
        w_star = min_norm_solution(problem.X, problem.t)
        L, R2 = smoothness(problem.X), _max_row_norm2(problem.X)
        settings = [  # label, functional, torch twin (run 0), sampler
            ("heavy ball μ=0.9, η=0.5/L", F.sgd(lr=_col(0.5 / L), momentum=0.9),
             dict(lr=float(0.5 / L[0]), momentum=0.9), FullBatch()),
            ("Nesterov μ=0.9, η=0.5/L", F.sgd(lr=_col(0.5 / L), momentum=0.9, nesterov=True),
             dict(lr=float(0.5 / L[0]), momentum=0.9, nesterov=True), FullBatch()),
            ("heavy ball, dampening 0.5", F.sgd(lr=_col(0.5 / L), momentum=0.9, dampening=0.5),
             dict(lr=float(0.5 / L[0]), momentum=0.9, dampening=0.5), FullBatch()),
            ("heavy ball μ=0.9, b=5, η=0.3/R²", F.sgd(lr=_col(0.3 / R2), momentum=0.9),
             dict(lr=float(0.3 / R2[0]), momentum=0.9), MiniBatch(5)),
            ("heavy ball μ=0.5, b=1, η=0.5/R²", F.sgd(lr=_col(0.5 / R2), momentum=0.5),
             dict(lr=float(0.5 / R2[0]), momentum=0.5), MiniBatch(1)),
        ]
        rel_err, off, steps = {}, {}, {}
        torch_diff = 0.0
        fig, ax = new_figure(size=(6, 4))
        data = {}
        for k, (label, opt, twin, sampler) in enumerate(settings):
            ctx.progress(label)
            tr = run_batch(problem, opt, 50_000, sampler=sampler, generator=ctx.generator(20 + k),
                           record_params=True, record_every=5, label=label)
            rel_err[label] = _max(tr.final_relative_distance(w_star))
            off[label] = _max(_off_row_space(problem, tr, w_star))
            steps[label] = tr.converged_at.tolist()
            ref = torch_optim_reference(problem, lambda p, kw=twin: torch.optim.SGD(p, **kw), tr.steps_run,
                                        sampler=sampler, generator=ctx.generator(20 + k), runs=[0])
            torch_diff = max(torch_diff, float((ref[0] - tr.final_params[0]).abs().max()))
            dist = tr.relative_distance(w_star)
            ax.semilogy(tr.steps, dist.median(1).values.clamp_min(1e-17), label=label)
            data[label] = {"steps": tr.steps, "rel_dist": dist}
    ax.set(xlabel="step", ylabel="‖w_k − w*‖/‖w*‖ (median)", title="momentum from 0 (velocity 0) → w*")
    ax.legend(fontsize=7)
    ctx.save_figure(fig, "distance", data)
    worst_err, worst_off = max(rel_err.values()), max(off.values())
    converged = all(s >= 0 for v in steps.values() for s in v)
    passed = worst_err <= 1e-8 and worst_off <= 1e-12 and converged and torch_diff <= 1e-12
    return Evidence(
        measured={"rel_err": rel_err, "off_row_space": off, "steps_to_converge": steps,
                  "max_abs_diff_vs_torch_sgd": torch_diff},
        expected={"rel_err": 0.0, "off_row_space": 0.0,
                  "why": "the velocity is a sum of gradients, each in span{x_i}, so iterates stay there"},
        tolerance={"rel_err": 1e-8, "off_row_space": 1e-12, "torch_diff": 1e-12},
        passed=passed,
        summary=(f"{len(settings)} momentum settings × {problem.num_runs} instances from 0: "
                 f"‖w−w*‖/‖w*‖ ≤ {worst_err:.1e} (≤1e-8), off row space ≤ {worst_off:.1e}; "
                 f"= torch.optim to {torch_diff:.0e}"),
    )


# --------------------------------------------------------------------------------------------
# optim.adaptive-not-min-norm
# --------------------------------------------------------------------------------------------

def _adaptive_optimizers() -> dict[str, tuple[F.GradientTransformation, str]]:
    """The acceptance table's settings (3b, 3c): name -> (optimizer, description)."""
    return {
        "AdaGrad": (F.adagrad(lr=0.1), "Adagrad(lr=0.1)"),
        "RMSProp": (F.rmsprop(lr=F.exponential_decay(1e-2, 0.999)), "RMSprop(lr=1e-2) + ExponentialLR(0.999)"),
        "Adam": (F.adam(lr=1e-2), "Adam(lr=1e-2)"),
    }


#: The course's two RMSProp steps from 0 on x = [2, 1], t = 2 (β = 0.9, η = 0.1), as printed.
COURSE_RMSPROP_STEPS = ((0.314, 0.311), (0.467, 0.463))


def _course_rmsprop_steps(eps: float | Tensor) -> Tensor:
    """Two steps of the course's RMSProp from 0 on x = [2, 1], t = 2 (g = (xᵀw − t)x); eps (E,) -> (E, 2, 2)."""
    eps_t = torch.as_tensor(eps, dtype=torch.float64).reshape(-1)
    ex = worked_example("x=[2,1],t=2")
    batch = LeastSquares(ex.X.expand(len(eps_t), -1, -1), ex.t.expand(len(eps_t), -1),
                         tuple(f"eps={e:g}" for e in eps_t.tolist()))
    tr = run_batch(batch, F.course_rmsprop(lr=0.1, beta=0.9, eps=_col(eps_t)), 2, record_params=True,
                   record_every=1, tol=0.0)
    assert tr.params is not None
    return tr.params[1:3].transpose(0, 1)  # (T, E, d) -> (E, 2, d)


def _first_steps(worked: LeastSquares, a: float) -> dict[str, Tensor]:
    """One step of size a of GD and of each adaptive method from 0: name -> w₁ (R, d)."""
    opts = {"GD": F.sgd(lr=a), "AdaGrad": F.adagrad(lr=a), "Adam": F.adam(lr=a), "RMSProp": F.rmsprop(lr=a)}
    return {name: run_batch(worked, o, 1, tol=0.0).final_params for name, o in opts.items()}


def run_adaptive_not_min_norm(ctx: Context) -> Evidence:
    measured: dict[str, object] = {}
    expected: dict[str, object] = {}
    checks: dict[str, bool] = {}
    with limit_threads():
        worked = _worked_pair()
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
        first_expected = {"GD": -a * g0, "AdaGrad": -a * g0 / (g0.abs() + 1e-10),
                          "Adam": -a * g0 / (g0.abs() + 1e-8),
                          "RMSProp": -a * g0 / (math.sqrt(0.01) * g0.abs() + 1e-8)}
        angle = {name: [math.degrees(math.acos(min(1.0, float(w[r] @ x[r] / (w[r].norm() * x[r].norm())))))
                        for r in range(2)] for name, w in first.items()}
        first_err = max(float((first[k] - v).abs().max()) / a for k, v in first_expected.items())
        sign_dev = max(float((first[k] / (c * a) - s).abs().max())
                       for k, c in (("AdaGrad", 1), ("Adam", 1), ("RMSProp", 10)))
        checks["first_step_is_sign"] = first_err <= 1e-12 and sign_dev <= 1e-6 and max(angle["GD"]) <= 1e-5
        measured["first_step"] = {k: v for k, v in first.items()}
        measured["first_step_angle_to_x_deg"] = angle
        expected["first_step"] = first_expected
        expected["first_step_angle_to_x_deg"] = {
            "GD": 0.0, "adaptive": [math.degrees(math.acos(float(s[r] @ x[r] / (s[r].norm() * x[r].norm()))))
                                    for r in range(2)]}
        measured["first_step_max_deviation_from_closed_form_over_a"] = first_err
        measured["first_step_max_deviation_from_c_times_sign"] = sign_dev

        # 3b: the adaptive limits on the worked examples are the sign interpolants.
        ctx.progress("worked examples")
        paths: dict[str, Trajectories] = {"GD": run_batch(worked, F.sgd(lr=_col(1 / smoothness(worked.X))), 5000,
                                                          record_params=True, record_every=1, label="GD")}
        limits: dict[str, dict[str, object]] = {}
        for name, (opt, desc) in _adaptive_optimizers().items():
            tr = run_batch(worked, opt, 200_000, record_params=True, label=desc)
            paths[name] = tr
            limits[name] = {"w_T": tr.final_params, "rel_to_sign_interpolant": tr.final_relative_distance(w_sign),
                            "rel_err_vs_w_star": tr.final_relative_distance(w_star),
                            "steps": tr.converged_at.tolist()}
        # Between the two limits: Adam with ε = 1 (comparable to |g|) curves from the diagonal towards w*.
        paths["Adam, ε = 1"] = run_batch(worked, F.adam(lr=0.02, eps=1.0), 100_000, record_params=True)
        third = (w_sign - w_star).norm(dim=-1) / w_star.norm(dim=-1)  # theory: 1/3 on both examples
        checks["worked_limits"] = all(
            _max(v["rel_to_sign_interpolant"]) <= 1e-6  # type: ignore[arg-type]
            and _max((v["rel_err_vs_w_star"] - third).abs()) <= 1e-6  # type: ignore[operator]
            and min(v["steps"]) >= 0 for v in limits.values())  # type: ignore[arg-type]
        checks["gd_worked_is_min_norm"] = _max(paths["GD"].final_relative_distance(w_star)) <= 1e-8
        measured["worked_limits"] = limits
        expected["worked_limits"] = {"sign_interpolant": w_sign, "w_star": w_star,
                                     "rel_err_vs_w_star": third}

        # 3c: random instances: interpolate, but not at w*, and with a larger norm.
        ctx.progress("random instances")
        random = random_problems(20, 100, _seeds(ctx))
        ws_random = min_norm_solution(random.X, random.t)
        rand: dict[str, dict[str, object]] = {}
        for name, (opt, _) in _adaptive_optimizers().items():
            tr = run_batch(random, opt, 60_000)
            rand[name] = {"resid": tr.relative_residual[-1], "rel_err_vs_w_star": tr.final_relative_distance(ws_random),
                          "norm_ratio": tr.final_params.norm(dim=-1) / ws_random.norm(dim=-1)}
        checks["random_not_min_norm"] = all(
            _max(v["resid"]) <= 1e-8 and _min(v["rel_err_vs_w_star"]) >= 0.1  # type: ignore[arg-type]
            and _min(v["norm_ratio"]) > 1 for v in rand.values())  # type: ignore[arg-type]
        measured["random_instances"] = rand
        expected["random_instances"] = {"resid": 0.0, "rel_err_vs_w_star": ">= 0.1", "norm_ratio": "> 1"}

        # 3f: negative control: when sign(g) already lies in the row space the adaptive limit is w*.
        controls = LeastSquares(torch.tensor([[[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 2.0, -2.0]]], dtype=torch.float64),
                                torch.tensor([[1.0, 2.0]], dtype=torch.float64), ("X=[[1,1,0,0],[0,0,2,-2]]",))
        single = LeastSquares(torch.tensor([[[1.0, -1.0]]], dtype=torch.float64), torch.tensor([[2.0]],
                              dtype=torch.float64), ("x=[1,-1],t=2",))
        control_err = {}
        for problem in (single, controls):
            ws = min_norm_solution(problem.X, problem.t)
            for name, (opt, _) in _adaptive_optimizers().items():
                control_err[f"{name} on {problem.names[0]}"] = _max(
                    run_batch(problem, opt, 200_000).final_relative_distance(ws))
        checks["negative_control_reaches_w_star"] = max(control_err.values()) <= 1e-8
        measured["negative_control_rel_err_vs_w_star"] = control_err

        # 3d: ε → ∞ turns the methods into plain GD, which finds w*.
        big_err = {}
        for label, opt in (("Adam(eps=1e6, lr=1e5)", F.adam(lr=1e5, eps=1e6)),
                           ("Adagrad(initial_accumulator_value=1e12, lr=1e5)",
                            F.adagrad(lr=1e5, initial_accumulator_value=1e12))):
            errs = []
            for problem in (worked, random.select([0])):
                errs.append(_max(run_batch(problem, opt, 20_000).final_relative_distance(
                    min_norm_solution(problem.X, problem.t))))
            big_err[label] = max(errs)
        checks["large_eps_reaches_w_star"] = max(big_err.values()) <= 1e-5
        measured["large_eps_rel_err_vs_w_star"] = big_err

        # The ε sweep on x = [2, 1], t = 2: lr = 0.1(1 + ε) keeps both limits at step 0.1.
        eps = torch.logspace(-8, 8, 17 if ctx.quick else 33, dtype=torch.float64)
        ex = worked_example("x=[2,1],t=2")
        sweep_problem = LeastSquares(ex.X.expand(len(eps), -1, -1), ex.t.expand(len(eps), -1),
                                     tuple(f"eps={e:g}" for e in eps.tolist()))
        ws_ex = min_norm_solution(ex.X, ex.t)
        sweep = {}
        for name, make in (("AdaGrad", lambda e: F.adagrad(lr=0.1 * (1 + e), eps=e)),
                           ("Adam", lambda e: F.adam(lr=0.01 * (1 + e), eps=e))):
            tr = run_batch(sweep_problem, make(_col(eps)), 100_000)
            sweep[name] = tr.final_relative_distance(ws_ex)
        tail = eps >= 1e-2
        monotone = {name: bool((v[tail][1:] <= v[tail][:-1] + 1e-9).all()) for name, v in sweep.items()}
        checks["eps_sweep_monotone_to_w_star"] = all(monotone.values()) and all(
            float(v[0]) > 0.3 and float(v[-1]) <= 1e-5 for v in sweep.values())
        measured["eps_sweep"] = {"eps": eps, **sweep}

        # The course's RMSProp numbers: two steps from 0 with β = 0.9, η = 0.1.
        stated = torch.tensor(COURSE_RMSPROP_STEPS, dtype=torch.float64)
        eps_grid = torch.logspace(-8, 0, 801, dtype=torch.float64)
        two = _course_rmsprop_steps(eps_grid)  # (E, 2, 2)
        mismatch = (two - stated).abs().amax(dim=(1, 2))
        best = int(mismatch.argmin())
        small_eps = two[0]
        theory_first = 0.1 / math.sqrt(0.1)  # η/√(1 − β) · sign(g) when ε → 0
        at_001 = _course_rmsprop_steps(0.01)[0]
        reproduced = float((at_001 - stated).abs().max()) <= 5e-4
        torch_twin = torch_optim_reference(ex, lambda p: torch.optim.RMSprop(p, lr=0.1, alpha=0.9, eps=0.01), 2,
                                           tol=0.0)
        checks["course_rmsprop"] = (abs(float(small_eps[0, 0]) - theory_first) <= 1e-6
                                    and float((torch_twin[0] - at_001[1]).abs().max()) <= 1e-15 and reproduced)
        measured["course_rmsprop"] = {
            "eps=1e-8": small_eps, "eps=0.01": at_001, "best_fitting_eps": float(eps_grid[best]),
            "best_fit_max_abs_diff": float(mismatch[best]),
            "note": ("the stated numbers do not follow with ε → 0 (the first step is then "
                     f"0.1/√0.1 = {theory_first:.4f} in both coordinates); they follow from the same update "
                     f"with ε = 0.01 (best-fitting ε on a grid: {float(eps_grid[best]):.4g})")}
        expected["course_rmsprop"] = {"stated": stated, "first_step_eps_to_0": [theory_first, theory_first]}

    _adaptive_figures(ctx, worked, paths, w_star, w_sign, eps, sweep)
    passed = all(checks.values())
    lim = {k: _max(v["rel_to_sign_interpolant"]) for k, v in limits.items()}  # type: ignore[arg-type]
    return Evidence(
        measured={**measured, "checks": checks}, expected=expected,
        tolerance={"first_step": 1e-8, "rel_to_sign_interpolant": 1e-6, "rel_err_minus_third": 1e-6,
                   "random_resid": 1e-8, "random_rel_err": ">= 0.1", "negative_control": 1e-8,
                   "large_eps": 1e-5, "course_numbers": 5e-4},
        passed=passed,
        summary=(f"worked cases: AdaGrad/RMSProp/Adam end at [2/3,2/3], [1,1] (≤{max(lim.values()):.0e}), "
                 f"‖w−w*‖/‖w*‖ = {float(third[0]):.4f} (1/3); random: ‖w−w*‖/‖w*‖ ≥ "
                 f"{min(_min(v['rel_err_vs_w_star']) for v in rand.values()):.2f}, resid ≤ "  # type: ignore[arg-type]
                 f"{max(_max(v['resid']) for v in rand.values()):.0e}; ε→∞ → w*; course RMSProp "  # type: ignore[arg-type]
                 f"[{float(at_001[0, 0]):.3f},{float(at_001[0, 1]):.3f}],[{float(at_001[1, 0]):.3f},"
                 f"{float(at_001[1, 1]):.3f}] needs ε=0.01"),
    )


def _adaptive_figures(ctx: Context, worked: LeastSquares, paths: dict[str, Trajectories], w_star: Tensor,
                      w_sign: Tensor, eps: Tensor, sweep: dict[str, Tensor]) -> None:
    fig, axes = new_figure(1, 2, size=(10, 4.4))
    data: dict[str, object] = {}
    for r, ax in enumerate(axes):
        x, t = worked.X[r, 0], float(worked.t[r, 0])
        top = 1.3 * float(max(w_sign[r].max(), w_star[r].max()))
        u = torch.linspace(-0.1, top, 50, dtype=torch.float64)
        ax.plot(u, (t - x[0] * u) / x[1], "k-", lw=1, label="solutions xᵀw = t")
        for k, (name, tr) in enumerate(paths.items()):
            assert tr.params is not None
            ax.plot(tr.params[:, r, 0], tr.params[:, r, 1], ["-", "--", ":", "-.", "-"][k % 5],
                    lw=2.5 - 0.4 * k, label=name)
        ax.plot(*w_star[r].tolist(), "k*", ms=12, label="w* (min norm)")
        ax.plot(*w_sign[r].tolist(), "ks", mfc="none", ms=9, label="sign interpolant")
        ax.set(xlim=(-0.1, top), ylim=(-0.1, top), aspect="equal", xlabel="w₁", ylabel="w₂",
               title=worked.names[r])
        data[worked.names[r]] = {name: tr.params[:, r] for name, tr in paths.items()}  # type: ignore[index]
    axes[0].legend(fontsize=7)
    ctx.save_figure(fig, "paths-2d", {**data, "w_star": w_star, "sign_interpolant": w_sign})

    fig, ax = new_figure(size=(5.5, 3.8))
    for name, v in sweep.items():
        ax.loglog(eps, v.clamp_min(1e-16), "o-", ms=3, label=name)
    ax.axhline(1 / 3, color="k", ls=":", lw=0.8)
    ax.set(xlabel="ε (lr = 0.1(1 + ε) AdaGrad, 0.01(1 + ε) Adam)", ylabel="‖w_T − w*‖/‖w*‖",
           title="x = [2, 1], t = 2: large ε → plain GD → w*")
    ax.legend(fontsize=8)
    ctx.save_figure(fig, "eps-sweep", {"eps": eps, **sweep})


# --------------------------------------------------------------------------------------------
# optim.preconditioned-solution
# --------------------------------------------------------------------------------------------

def _torch_preconditioned_three_ways(x: Tensor, t: float, m: Tensor, lr: float, steps: int) -> dict[str, Tensor]:
    """Preconditioned GD on one example with torch.optim.SGD, three ways (acceptance 4a)."""
    def loss(w: Tensor) -> Tensor:
        return 0.5 * (x @ w - t) ** 2

    out = {}
    # (i) a gradient hook multiplies the gradient by M
    w = torch.zeros_like(x, requires_grad=True)
    w.register_hook(lambda g: g * m)
    opt = torch.optim.SGD([w], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss(w).backward()
        opt.step()
    out["gradient hook"] = w.detach()
    # (ii) one parameter group per coordinate with learning rate η m_j
    coords = [torch.zeros(1, dtype=x.dtype, requires_grad=True) for _ in range(len(x))]
    opt = torch.optim.SGD([{"params": [c], "lr": lr * float(mj)} for c, mj in zip(coords, m, strict=True)])
    for _ in range(steps):
        opt.zero_grad()
        loss(torch.cat(coords)).backward()
        opt.step()
    out["param groups"] = torch.cat([c.detach() for c in coords])
    # (iii) plain GD on u with w = √M u
    u = torch.zeros_like(x, requires_grad=True)
    opt = torch.optim.SGD([u], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss(m.sqrt() * u).backward()
        opt.step()
    out["√M reparametrisation"] = (m.sqrt() * u).detach()
    return out


def run_preconditioned_solution(ctx: Context) -> Evidence:
    checks: dict[str, bool] = {}
    with limit_threads():
        # 4a: the textbook example.
        ex = worked_example("x=[1,0.1,0.01],t=1")
        m = torch.tensor([1.0, 1e2, 1e4], dtype=torch.float64)
        w_M = preconditioned_solution(ex.X, ex.t, m)
        w_star = min_norm_solution(ex.X, ex.t)
        textbook = torch.tensor([[1.0, 10.0, 100.0]], dtype=torch.float64) / 3
        L_M = float(smoothness(ex.X * m.sqrt()))  # λ_max(M^½ H M^½) = xᵀMx = 3 here
        tr = run_batch(ex, F.preconditioned_sgd(0.5, m), 50, record_params=True, record_every=1, tol=0.0)
        ex_err = float(tr.final_relative_distance(textbook)[0])
        three = _torch_preconditioned_three_ways(ex.X[0, 0], float(ex.t[0, 0]), m, 0.5, 50)
        three_diff = max(float((v - tr.final_params[0]).abs().max()) for v in three.values())
        big = run_batch(ex, F.preconditioned_sgd(0.68, m), 3000)
        gd = run_batch(ex, F.sgd(lr=float(1 / smoothness(ex.X))), 5000)
        checks["textbook"] = (ex_err <= 1e-10 and float((w_M - textbook).abs().max()) <= 1e-12 and three_diff <= 1e-12
                              and bool(big.diverged[0]) and _max(gd.final_relative_distance(w_star)) <= 1e-8)

        # 4b: random instances with m log-uniform on [1e-2, 1e2].
        problem = random_problems(20, 100, _seeds(ctx))
        R = problem.num_runs
        mr = 10 ** (4 * torch.rand(R, problem.d, generator=ctx.generator(1), dtype=torch.float64) - 2)
        wM_r = preconditioned_solution(problem.X, problem.t, mr)
        ws_r = min_norm_solution(problem.X, problem.t)
        LM = smoothness(problem.X * mr.sqrt().unsqueeze(1))
        RM = (problem.X.pow(2) * mr.unsqueeze(1)).sum(-1).max(-1).values  # max_i x_iᵀ M x_i
        settings = [("precond. GD, η = 1/L_M", F.preconditioned_sgd(_col(1 / LM), mr), FullBatch()),
                    ("precond. SGD b=1, η = 1/max xᵢᵀMxᵢ", F.preconditioned_sgd(_col(1 / RM), mr), MiniBatch(1)),
                    ("precond. heavy ball μ=0.9, η = 0.5/L_M", F.preconditioned_sgd(_col(0.5 / LM), mr, momentum=0.9),
                     FullBatch())]
        rand: dict[str, dict[str, float]] = {}
        traces = {}
        for k, (label, opt, sampler) in enumerate(settings):
            ctx.progress(label)
            trk = run_batch(problem, opt, 50_000, sampler=sampler, generator=ctx.generator(30 + k),
                            record_params=True, record_every=10)
            traces[label] = trk
            rand[label] = {"rel_err_vs_w_M": _max(trk.final_relative_distance(wM_r)),
                           "min_rel_err_vs_w_star": _min(trk.final_relative_distance(ws_r)),
                           "max_steps": int(trk.converged_at.max())}
        # Cross-check the random GD run against torch.optim.SGD with a gradient hook.
        def hooked(params: list[Tensor]) -> torch.optim.Optimizer:
            params[0].register_hook(lambda g: g * mr[0])
            return torch.optim.SGD(params, lr=float(1 / LM[0]))
        ref = torch_optim_reference(problem, hooked, 50_000, runs=[0])
        torch_diff = float((ref[0] - traces[settings[0][0]].final_params[0]).abs().max())
        checks["random"] = all(v["rel_err_vs_w_M"] <= 1e-8 and v["min_rel_err_vs_w_star"] >= 0.5
                               and v["max_steps"] >= 0 for v in rand.values()) and torch_diff <= 1e-12

    fig, axes = new_figure(1, 2, size=(10, 3.8))
    assert tr.params is not None
    axes[0].semilogy(tr.steps, tr.relative_distance(w_M)[:, 0].clamp_min(1e-17), label="to w_M = [1, 10, 100]/3")
    axes[0].semilogy(tr.steps, tr.relative_distance(w_star)[:, 0], label="to w* = x/‖x‖²")
    axes[0].set(xlabel="step", ylabel="relative distance", title="x = [1, .1, .01], M = diag(1, 1e2, 1e4), η = 0.5")
    axes[0].legend(fontsize=8)
    for label, trk in traces.items():
        line = axes[1].semilogy(trk.steps, trk.relative_distance(wM_r).median(1).values.clamp_min(1e-17),
                                label=label)[0]
        axes[1].semilogy(trk.steps, trk.relative_distance(ws_r).median(1).values, ls="--", color=line.get_color())
    axes[1].set(xlabel="step", ylabel="median relative distance (solid: w_M, dashed: w*)",
                title="random instances, m log-uniform [1e-2, 1e2]")
    axes[1].legend(fontsize=7)
    ctx.save_figure(fig, "distance", {"textbook_steps": tr.steps, "textbook_to_w_M": tr.relative_distance(w_M),
                                      "textbook_to_w_star": tr.relative_distance(w_star),
                                      **{k: {"steps": v.steps, "to_w_M": v.relative_distance(wM_r),
                                             "to_w_star": v.relative_distance(ws_r)} for k, v in traces.items()}})
    passed = all(checks.values())
    return Evidence(
        measured={"textbook_w_T": tr.final_params[0], "textbook_rel_err_vs_w_M": ex_err,
                  "textbook_torch_three_ways_max_abs_diff": three_diff,
                  "textbook_eta_0.68_diverged_at": int(big.diverged_at[0]), "plain_gd_w_T": gd.final_params[0],
                  "random": rand, "random_gd_vs_torch_hook_max_abs_diff": torch_diff, "checks": checks},
        expected={"textbook_w_M": textbook[0], "plain_gd_w_star": w_star[0],
                  "stability_bound": f"η < 2/L_M = {2 / L_M:.4f}", "random": "rel_err_vs_w_M ≤ 1e-8, vs w* ≥ 0.5"},
        tolerance={"textbook": 1e-10, "torch_three_ways": 1e-12, "random_vs_w_M": 1e-8, "random_vs_w_star": ">= 0.5"},
        passed=passed,
        summary=(f"x=[1,.1,.01], M=diag(1,1e2,1e4): w_T = [1,10,100]/3 to {ex_err:.0e} (hook/param groups/√M "
                 f"reparam agree to {three_diff:.0e}), η=0.68 > 2/3 diverges; random: ‖w−w_M‖/‖w_M‖ ≤ "
                 f"{max(v['rel_err_vs_w_M'] for v in rand.values()):.0e}, ‖w−w*‖/‖w*‖ ≥ "
                 f"{min(v['min_rel_err_vs_w_star'] for v in rand.values()):.2f}"),
    )
