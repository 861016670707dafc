"""optim.gd-min-norm, optim.sgd-min-norm, optim.momentum-min-norm: GD, SGD and momentum from 0 find w*."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

import trainlab.functional as F
from trainlab.claims import Context, claim
from trainlab.optim.claims._shared import (
    SECTION,
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
from trainlab.optim.runner import run_batch, torch_optim_reference
from trainlab.optim.samplers import FullBatch, MiniBatch, Sampler
from trainlab.plotting import new_figure
from trainlab.threads import limit_threads

__all__ = ["gd_min_norm", "momentum_min_norm", "sgd_min_norm"]


# --------------------------------------------------------------------------------------------
# optim.gd-min-norm
# --------------------------------------------------------------------------------------------


@claim("optim.gd-min-norm", section=SECTION, statement="""
    Full-batch GD from w₀ = 0 with a stable step (0 < η < 2/λ_max(XᵀX/n); here η = 1/L) converges
    to the minimum-norm interpolant w* = Xᵀ(XXᵀ)⁻¹t, and every iterate stays in the row space of X.
    From a random w₀ it converges to w* + (I − P)w₀ instead; beyond the bound (η = 2.05/L) it
    diverges.""")
def gd_min_norm(ctx: Context) -> str:
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
        over = 1.025  # η = 1.025 · 2/L = 2.05/L
        bound = gd_stability_bound(random.X)
        tr_big = run_batch(random, F.sgd(lr=per_run(over * bound)), 3000)
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

    c = ctx.checks
    c.expect("w_star", "Xᵀ(XXᵀ)⁻¹t")
    c.expect("lr_bound", "η < 2/L = 2/λ_max(XᵀX/n)")
    c.expect("random_w0_limit", "w* + (I − P)w0")
    c.record("problems", len(rel_err))
    c.record("rel_err", rel_err)
    c.record("off_row_space", off)
    c.record("steps_to_converge", steps)
    c.at_most("max_rel_err", max(rel_err.values()), 1e-8, expected=0.0)
    c.at_most("max_off_row_space", max(off.values()), 1e-12, expected=0.0)
    c.holds("all_converged", min(steps.values()) >= 0, "every run reaches ‖Xw − t‖/‖t‖ ≤ 1e-10 in 5000 steps")
    c.at_most("max_abs_diff_vs_torch_sgd", torch_diff, 1e-12, expected=0.0)
    c.at_most("random_w0_rel_err_vs_w_star_plus_null_part", ctrl_vs_limit, 1e-8, expected=0.0)
    c.at_least("random_w0_min_rel_err_vs_w_star", ctrl_vs_star, 1)
    c.record("big_step_times_L", 2 * over)
    c.holds("big_step_diverges", all(k >= 0 for k in diverged_at), "every run at η = 2.05/L diverges")
    c.record("big_step_diverged_at", diverged_at)
    c.record("big_step_first_divergence", min(diverged_at))
    c.at_least("big_step_min_residual", big_resid, 1, strict=True)
    return (
        "GD η=1/L from 0, {problems} problems: ‖w−w*‖/‖w*‖ {max_rel_err}, off row space "
        "{max_off_row_space}; from random w0 off by {random_w0_min_rel_err_vs_w_star}; "
        "η={big_step_times_L!v}/L diverges at step {big_step_first_divergence}"
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

    def check(self, ctx: Context) -> None:
        """Acceptance rows 1b, 1c and 2: rel_err ≤ 1e-8, off row space ≤ 1e-12, all converged, = torch."""
        c = ctx.checks
        c.expect("limit", "w* = Xᵀ(XXᵀ)⁻¹t")
        c.record("rel_err", self.rel_err)
        c.record("off_row_space", self.off)
        c.record("steps_to_converge", self.steps)
        c.record("settings", len(self.rel_err))
        c.at_most("max_rel_err", max(self.rel_err.values()), 1e-8, expected=0.0)
        c.at_most("max_off_row_space", max(self.off.values()), 1e-12, expected=0.0)
        every = [s for v in self.steps.values() for s in v]
        c.holds("all_converged", all(s >= 0 for s in every),
                "every run reaches ‖Xw − t‖/‖t‖ ≤ 1e-10 in 50,000 steps")
        c.record("max_steps", max(every))
        c.at_most("max_abs_diff_vs_torch_sgd_300_steps", self.torch_diff, 1e-12, expected=0.0)


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


@claim("optim.sgd-min-norm", section=SECTION, statement="""
    Single-example and mini-batch SGD (b = 1 reshuffled or with replacement, b = 5, …) from 0 with a
    small enough constant step (η = 1/max‖x_i‖², 3/max‖x_i‖² for b = 5) converges to the same w*:
    each update is a combination of the x_i, so iterates never leave span{x_i}.""")
def sgd_min_norm(ctx: Context) -> str:
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
    runs.check(ctx)
    ctx.checks.record("instances", len(seeds(ctx)))
    return (
        "SGD from 0, {settings} batch settings × {instances} instances: ‖w−w*‖/‖w*‖ {max_rel_err}, "
        "off row space {max_off_row_space}, ≤{max_steps} steps; = torch.optim to "
        "{max_abs_diff_vs_torch_sgd_300_steps}"
    )


# --------------------------------------------------------------------------------------------
# optim.momentum-min-norm
# --------------------------------------------------------------------------------------------


@claim("optim.momentum-min-norm", section=SECTION, statement="""
    Heavy-ball and Nesterov momentum (velocity starting at 0, any dampening), full batch or
    stochastic, from 0 with a stable step converge to w*: the velocity is a sum of gradients, all in
    span{x_i}.""")
def momentum_min_norm(ctx: Context) -> str:
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
    runs.check(ctx)
    ctx.checks.expect("why", "the velocity is a sum of gradients, each in span{x_i}, so iterates stay there")
    ctx.checks.record("instances", problem.num_runs)
    return (
        "{settings} momentum settings × {instances} instances from 0: ‖w−w*‖/‖w*‖ {max_rel_err}, "
        "off row space {max_off_row_space}; = torch.optim to {max_abs_diff_vs_torch_sgd_300_steps}"
    )
