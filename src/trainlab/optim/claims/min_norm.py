"""optim.gd-min-norm, optim.sgd-min-norm, optim.momentum-min-norm: GD, SGD and momentum from 0 find w*."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

import trainlab.functional as F
from trainlab.claims import Context, Evidence
from trainlab.optim.claims._shared import (
    cross_check,
    max_of,
    max_row_norm2,
    min_of,
    off_row_space,
    per_run,
    seeds,
)
from trainlab.optim.problems import (
    distance_from_row_space,
    gd_stability_bound,
    min_norm_solution,
    random_problems,
    row_space_projection,
    smoothness,
    worked_example,
)
from trainlab.optim.runner import limit_threads, run_batch, torch_optim_reference
from trainlab.optim.samplers import FullBatch, MiniBatch, Sampler
from trainlab.plotting import new_figure

__all__ = ["run_gd_min_norm", "run_sgd_min_norm", "run_momentum_min_norm"]


# --------------------------------------------------------------------------------------------
# optim.gd-min-norm
# --------------------------------------------------------------------------------------------


def run_gd_min_norm(ctx: Context) -> Evidence:
    with limit_threads():
        random = random_problems(20, 100, seeds(ctx))
        worked = [worked_example(name) for name in ("x=[2,1],t=2", "x=[1,2],t=3", "x=[1,0.1,0.01],t=1")]
        rel_err: dict[str, float] = {}
        off: dict[str, float] = {}
        steps: dict[str, int] = {}
        ctx.progress("GD on random instances and the worked examples")
        traces = []
        for problem in [random, *worked]:
            w_star = min_norm_solution(problem.X, problem.t)
            tr = run_batch(
                problem,
                F.sgd(lr=per_run(1 / smoothness(problem.X))),
                5000,
                record_params=True,
                record_every=1,
                label="GD, η = 1/L",
            )
            traces.append((problem, tr, w_star))
            for r, name in enumerate(problem.names):
                rel_err[name] = float(tr.final_relative_distance(w_star)[r])
                off[name] = float(off_row_space(problem, tr, w_star)[r])
                steps[name] = int(tr.converged_at[r])
        # Cross-check: torch.optim.SGD on the first instance ends at the same point.
        ref = torch_optim_reference(
            random.select([0]), lambda p: torch.optim.SGD(p, lr=float(1 / smoothness(random.X[0]))), 5000
        )
        torch_diff = float((ref[0] - traces[0][1].final_params[0]).abs().max())

        # Control 1d: from a random w0 GD ends at w* + (I − P)w0, not at w*.
        w0 = torch.randn(random.num_runs, random.d, generator=ctx.generator(1), dtype=torch.float64)
        w_star = min_norm_solution(random.X, random.t)
        limit = w_star + w0 - row_space_projection(random.X, w0)
        tr0 = run_batch(random, F.sgd(lr=per_run(1 / smoothness(random.X))), 5000, w0=w0)
        ctrl_vs_limit = max_of(tr0.final_relative_distance(limit))
        ctrl_vs_star = min_of(tr0.final_relative_distance(w_star))
        # Control 1e: a step beyond the stability bound 2/L diverges.
        bound = gd_stability_bound(random.X)
        tr_big = run_batch(random, F.sgd(lr=per_run(1.025 * bound)), 3000)
        diverged_at = tr_big.diverged_at.tolist()
        big_resid = min_of(torch.nan_to_num(tr_big.relative_residual[-1], nan=math.inf))

    fig, axes = new_figure(1, 2, size=(10, 3.6))
    for problem, tr, ws in traces:
        for r, name in enumerate(problem.names):
            axes[0].semilogy(tr.steps, tr.relative_distance(ws)[:, r].clamp_min(1e-17), label=name)
            axes[1].semilogy(
                tr.steps,
                (distance_from_row_space(problem.X, tr.params)[:, r] / ws[r].norm()).clamp_min(1e-18),
                label=name,
            )
    axes[0].set(xlabel="step", ylabel="‖w_k − w*‖/‖w*‖", title="GD (η = 1/L) from 0 → w*")
    axes[1].set(xlabel="step", ylabel="‖(I − P)w_k‖/‖w*‖", title="distance from the row space")
    axes[0].legend(fontsize=7)
    ctx.save_figure(
        fig,
        "distance",
        {
            name: {"steps": tr.steps, "rel_dist": tr.relative_distance(ws)[:, r]}
            for problem, tr, ws in traces
            for r, name in enumerate(problem.names)
        },
    )

    worst_err, worst_off = max(rel_err.values()), max(off.values())
    passed = (
        worst_err <= 1e-8
        and worst_off <= 1e-12
        and min(steps.values()) >= 0
        and torch_diff <= 1e-12
        and ctrl_vs_limit <= 1e-8
        and ctrl_vs_star >= 1
        and all(k >= 0 for k in diverged_at)
        and big_resid > 1
    )
    return Evidence(
        measured={
            "rel_err": rel_err,
            "off_row_space": off,
            "steps_to_converge": steps,
            "max_abs_diff_vs_torch_sgd": torch_diff,
            "control_random_w0_rel_err_vs_w_star_plus_null_part": ctrl_vs_limit,
            "control_random_w0_min_rel_err_vs_w_star": ctrl_vs_star,
            "control_lr_2.05_over_L_diverged_at_step": diverged_at,
        },
        expected={
            "rel_err": 0.0,
            "off_row_space": 0.0,
            "lr_bound": "η < 2/L = 2/λmax_of(XᵀX/n)",
            "w_star": "Xᵀ(XXᵀ)⁻¹t",
            "control_random_w0_limit": "w* + (I − P)w0",
        },
        tolerance={
            "rel_err": 1e-8,
            "off_row_space": 1e-12,
            "torch_diff": 1e-12,
            "control_rel_err_vs_w_star": ">= 1",
        },
        passed=passed,
        summary=(
            f"GD η=1/L from 0, {len(rel_err)} problems: ‖w−w*‖/‖w*‖ ≤ {worst_err:.1e} (≤1e-8), "
            f"off row space ≤ {worst_off:.1e}; from random w0 off by ≥{ctrl_vs_star:.1f}; "
            f"η=2.05/L diverges at step {min(diverged_at)}"
        ),
    )


# --------------------------------------------------------------------------------------------
# optim.sgd-min-norm
# --------------------------------------------------------------------------------------------


def _sgd_settings(ctx: Context) -> list[tuple[str, Sampler, float]]:
    """(label, sampler, step × R²): b = 1 at η = 1/R², b = 5 at 3/R² (acceptance 1b, 1c)."""
    settings: list[tuple[str, Sampler, float]] = [
        ("b=1 reshuffled", MiniBatch(1), 1.0),
        ("b=1 with replacement", MiniBatch(1, True), 1.0),
        ("b=5 reshuffled", MiniBatch(5), 3.0),
    ]
    if not ctx.quick:
        settings += [
            ("b=2 reshuffled", MiniBatch(2), 1.0),
            ("b=10 reshuffled", MiniBatch(10), 1.0),
            ("b=5 with replacement", MiniBatch(5, True), 3.0),
        ]
    return settings


@dataclass
class _FromZero:
    """Per setting: worst ‖w − w*‖/‖w*‖, worst distance from the row space, steps to converge;
    and the largest gap to ``torch.optim.SGD`` over all settings."""

    rel_err: dict[str, float]
    off: dict[str, float]
    steps: dict[str, list[int]]
    torch_diff: float

    @property
    def worst_err(self) -> float:
        return max(self.rel_err.values())

    @property
    def worst_off(self) -> float:
        return max(self.off.values())

    @property
    def passed(self) -> bool:
        """Acceptance rows 1b, 1c and 2: rel_err ≤ 1e-8, off row space ≤ 1e-12, all converged, = torch."""
        converged = all(s >= 0 for v in self.steps.values() for s in v)
        return self.worst_err <= 1e-8 and self.worst_off <= 1e-12 and converged and self.torch_diff <= 1e-12


def _runs_from_zero(
    ctx: Context, problem, w_star, settings, *, generator_base: int, record_every: int, title: str
) -> _FromZero:
    """Run each ``(label, optimizer, torch.optim.SGD kwargs, sampler)`` from 0 to convergence,
    compare run 0 of each with ``torch.optim.SGD`` on the same samples, and save the
    distance-over-steps figure."""
    rel_err: dict[str, float] = {}
    off: dict[str, float] = {}
    steps: dict[str, list[int]] = {}
    torch_diff = 0.0
    fig, ax = new_figure(size=(6, 4))
    data = {}
    for k, (label, opt, twin, sampler) in enumerate(settings):
        ctx.progress(label)
        tr = run_batch(
            problem,
            opt,
            50_000,
            sampler=sampler,
            generator=ctx.generator(generator_base + k),
            record_params=True,
            record_every=record_every,
            label=label,
        )
        rel_err[label] = max_of(tr.final_relative_distance(w_star))
        off[label] = max_of(off_row_space(problem, tr, w_star))
        steps[label] = tr.converged_at.tolist()
        torch_diff = max(
            torch_diff,
            cross_check(
                problem,
                F.sgd(**twin),
                lambda p, kw=twin: torch.optim.SGD(p, **kw),
                sampler,
                lambda k=k: ctx.generator(generator_base + k),
            ),
        )
        dist = tr.relative_distance(w_star)
        ax.semilogy(tr.steps, dist.median(1).values.clamp_min(1e-17), label=label)
        data[label] = {"steps": tr.steps, "rel_dist": dist}
    ax.set(xlabel="step", ylabel="‖w_k − w*‖/‖w*‖ (median over instances)", title=title)
    ax.legend(fontsize=7)
    ctx.save_figure(fig, "distance", data)
    return _FromZero(rel_err, off, steps, torch_diff)


def run_sgd_min_norm(ctx: Context) -> Evidence:
    with limit_threads():
        problem = random_problems(20, 100, seeds(ctx))
        w_star = min_norm_solution(problem.X, problem.t)
        R2 = max_row_norm2(problem.X)
        settings = [
            (label, F.sgd(lr=per_run(scale / R2)), dict(lr=float(scale / R2[0])), sampler)
            for label, sampler, scale in _sgd_settings(ctx)
        ]
        runs = _runs_from_zero(
            ctx, problem, w_star, settings, generator_base=10, record_every=10,
            title="SGD from 0 (n=20, d=100) → w*",
        )
    rel_err, off, steps, torch_diff = runs.rel_err, runs.off, runs.steps, runs.torch_diff
    worst_err, worst_off, passed = runs.worst_err, runs.worst_off, runs.passed
    return Evidence(
        measured={
            "rel_err": rel_err,
            "off_row_space": off,
            "steps_to_converge": steps,
            "max_abs_diff_vs_torch_sgd_300_steps": torch_diff,
            "instances": len(seeds(ctx)),
        },
        expected={"rel_err": 0.0, "off_row_space": 0.0, "limit": "w* = Xᵀ(XXᵀ)⁻¹t for every batch size"},
        tolerance={"rel_err": 1e-8, "off_row_space": 1e-12, "torch_diff": 1e-12},
        passed=passed,
        summary=(
            f"SGD from 0, {len(rel_err)} batch settings × {len(seeds(ctx))} instances: "
            f"‖w−w*‖/‖w*‖ ≤ {worst_err:.1e} (≤1e-8), off row space ≤ {worst_off:.1e}, "
            f"≤{max(max(v) for v in steps.values())} steps; = torch.optim to {torch_diff:.0e}"
        ),
    )


# --------------------------------------------------------------------------------------------
# optim.momentum-min-norm
# --------------------------------------------------------------------------------------------


def run_momentum_min_norm(ctx: Context) -> Evidence:
    with limit_threads():
        problem = random_problems(20, 100, seeds(ctx))
        w_star = min_norm_solution(problem.X, problem.t)
        L, R2 = smoothness(problem.X), max_row_norm2(problem.X)
        settings = [  # label, functional, torch twin (run 0), sampler
            (
                "heavy ball μ=0.9, η=0.5/L",
                F.sgd(lr=per_run(0.5 / L), momentum=0.9),
                dict(lr=float(0.5 / L[0]), momentum=0.9),
                FullBatch(),
            ),
            (
                "Nesterov μ=0.9, η=0.5/L",
                F.sgd(lr=per_run(0.5 / L), momentum=0.9, nesterov=True),
                dict(lr=float(0.5 / L[0]), momentum=0.9, nesterov=True),
                FullBatch(),
            ),
            (
                "heavy ball, dampening 0.5",
                F.sgd(lr=per_run(0.5 / L), momentum=0.9, dampening=0.5),
                dict(lr=float(0.5 / L[0]), momentum=0.9, dampening=0.5),
                FullBatch(),
            ),
            (
                "heavy ball μ=0.9, b=5, η=0.3/R²",
                F.sgd(lr=per_run(0.3 / R2), momentum=0.9),
                dict(lr=float(0.3 / R2[0]), momentum=0.9),
                MiniBatch(5),
            ),
            (
                "heavy ball μ=0.5, b=1, η=0.5/R²",
                F.sgd(lr=per_run(0.5 / R2), momentum=0.5),
                dict(lr=float(0.5 / R2[0]), momentum=0.5),
                MiniBatch(1),
            ),
        ]
        runs = _runs_from_zero(
            ctx, problem, w_star, settings, generator_base=20, record_every=5,
            title="momentum from 0 (velocity 0) → w*",
        )
    rel_err, off, steps, torch_diff = runs.rel_err, runs.off, runs.steps, runs.torch_diff
    worst_err, worst_off, passed = runs.worst_err, runs.worst_off, runs.passed
    return Evidence(
        measured={
            "rel_err": rel_err,
            "off_row_space": off,
            "steps_to_converge": steps,
            "max_abs_diff_vs_torch_sgd_300_steps": torch_diff,
        },
        expected={
            "rel_err": 0.0,
            "off_row_space": 0.0,
            "why": "the velocity is a sum of gradients, each in span{x_i}, so iterates stay there",
        },
        tolerance={"rel_err": 1e-8, "off_row_space": 1e-12, "torch_diff": 1e-12},
        passed=passed,
        summary=(
            f"{len(settings)} momentum settings × {problem.num_runs} instances from 0: "
            f"‖w−w*‖/‖w*‖ ≤ {worst_err:.1e} (≤1e-8), off row space ≤ {worst_off:.1e}; "
            f"= torch.optim to {torch_diff:.0e}"
        ),
    )
