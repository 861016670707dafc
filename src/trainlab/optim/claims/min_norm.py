"""optim.gd-min-norm, optim.sgd-min-norm, optim.momentum-min-norm: GD, SGD and momentum from 0 find w*."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

import trainlab.functional as F
from trainlab.claims import Context, claim
from trainlab.optim.claims._shared import (
    SECTION,
    STOP_TOL,
    cross_check,
    instance_draw,
    interpolant_tolerances,
    max_of,
    max_row_norm2,
    min_of,
    off_row_space,
    per_run,
    seeds,
    step_gain,
    steps_taken,
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
from trainlab.tolerance import (
    carried,
    closed_form_rounding,
    condition_number,
    iteration_rounding,
    residual_error_bound,
    within,
)

__all__ = ["gd_min_norm", "momentum_min_norm", "sgd_min_norm"]

#: What the derived tolerances of these claims are (recorded with each check).
REL_ERR_FORMULA = (
    "κ(X)·(τ + γ_(d+1)(1 + 2√ρ·κ)) + off-row-space bound + closed-form rounding "
    "(τ = 1e-10 the stopping residual, ρ = ‖X‖_F²/‖X‖² the stable rank)"
)
OFF_ROW_FORMULA = "2·T·gain·γ_(d+b+4) + closed-form rounding (T steps, gain = 1 + 2η_eff‖X_B‖_F²/b)"
TORCH_FORMULA = "2 × (T·gain·γ_(d+b+4)·2‖w*‖), T steps, each implementation within rounding of exact"


def _width(d: int, batch: int) -> int:
    """Terms in the longest sum of one step: a d-term residual, a b-row gradient, 4 vector updates."""
    return d + batch + 4


# --------------------------------------------------------------------------------------------
# optim.gd-min-norm
# --------------------------------------------------------------------------------------------


@claim("optim.gd-min-norm", section=SECTION, statement="""
    Full-batch GD from w₀ = 0 with a stable step (0 < η < 2/λ_max(XᵀX/n); here η = 1/L) converges
    to the minimum-norm interpolant w* = Xᵀ(XXᵀ)⁻¹t, and every iterate stays in the row space of X.
    From a random w₀ it converges to w* + (I − P)w₀ instead; beyond the bound (η = 2.05/L) it
    diverges.""")
def gd_min_norm(ctx: Context, instances: Sequence[int] | None = None) -> str:
    """``instances``: the random instances' seeds (default :func:`seeds` of ``ctx``; more for tests)."""
    instances = seeds(ctx) if instances is None else list(instances)
    with limit_threads():
        random = random_problems(20, 100, instances)
        worked = [worked_example(name) for name in ("x=[2,1],t=2", "x=[1,2],t=3", "x=[1,0.1,0.01],t=1")]
        rel_err: dict[str, float] = {}
        off: dict[str, float] = {}
        steps: dict[str, int] = {}
        rel_tol: list[Tensor] = []
        off_tol: list[Tensor] = []
        ctx.progress("GD on random instances and the worked examples")
        traces = []
        for problem in [random, *worked]:
            w_star = min_norm_solution(problem.X, problem.t)
            lr = 1 / smoothness(problem.X)
            tr = run_batch(
                problem,
                F.sgd(lr=per_run(lr)),
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
            rt, ot = interpolant_tolerances(
                problem.X, steps_taken(tr), step_gain(problem.X, lr), _width(problem.d, problem.n)
            )
            rel_tol.append(rt)
            off_tol.append(ot)
        # Cross-check: torch.optim.SGD on the first instance ends at the same point.
        ref = torch_optim_reference(
            random.select([0]), lambda p: torch.optim.SGD(p, lr=float(1 / smoothness(random.X[0]))), 5000
        )
        torch_diff = float((ref[0] - traces[0][1].final_params[0]).abs().max())
        first = random.select([0])
        torch_tol = 2 * float(
            iteration_rounding(carried(steps_taken(traces[0][1])[0]), _width(random.d, random.n),
                               step_gain(first.X, 1 / smoothness(first.X)))[0]
        ) * 2 * float(traces[0][2][0].norm())

        # Control 1d: from a random w0 GD ends at w* + (I − P)w0, not at w*.
        w0 = instance_draw(instances, "optim.w0", random.d)
        w_star = min_norm_solution(random.X, random.t)
        limit = w_star + w0 - row_space_projection(random.X, w0)
        lr_r = 1 / smoothness(random.X)
        tr0 = run_batch(random, F.sgd(lr=per_run(lr_r)), 5000, w0=w0)
        ctrl_vs_limit = tr0.final_relative_distance(limit)
        ctrl_vs_star = min_of(tr0.final_relative_distance(w_star))
        # Its bound: the residual bounds the row-space part (κτ‖w*‖); the null-space part keeps
        # (I − P)w0 up to rounding at the scale ‖w0‖ + 2‖limit‖; both closed forms round.
        wn, ln = w_star.norm(dim=-1), limit.norm(dim=-1)
        cf = closed_form_rounding(random.X)
        ctrl_tol = (
            residual_error_bound(condition_number(random.X), STOP_TOL) * wn
            + iteration_rounding(
                carried(steps_taken(tr0)), _width(random.d, random.n), step_gain(random.X, lr_r)
            ) * (w0.norm(dim=-1) + 2 * ln)
            + cf * (wn + 2 * w0.norm(dim=-1))
        ) / ln
        # Control 1e: a step beyond the stability bound 2/L diverges.
        over = 1.025  # η = 1.025 · 2/L = 2.05/L
        bound = gd_stability_bound(random.X)
        tr_big = run_batch(random, F.sgd(lr=per_run(over * bound)), 3000)
        diverged_at = tr_big.diverged_at.tolist()
        big_resid = min_of(torch.nan_to_num(tr_big.relative_residual[-1], nan=math.inf))

    fig, axes = new_figure(1, 2, size=(10, 3.6))
    data = {}
    for problem, tr, ws in traces:
        assert tr.params is not None
        dist = tr.relative_distance(ws)  # (T, R), once per batch of problems
        away = distance_from_row_space(problem.X, tr.params) / ws.norm(dim=-1)
        for r, name in enumerate(problem.names):
            data[name] = {"steps": tr.steps, "rel_dist": dist[:, r]}
            if r < 10:  # the figure shows at most ten instances of a batch (all are in its data)
                axes[0].semilogy(tr.steps, dist[:, r].clamp_min(1e-17), label=name)
                axes[1].semilogy(tr.steps, away[:, r].clamp_min(1e-18), label=name)
    axes[0].set(xlabel="step", ylabel="‖w_k − w*‖/‖w*‖", title="GD (η = 1/L) from 0 → w*")
    axes[1].set(xlabel="step", ylabel="‖(I − P)w_k‖/‖w*‖", title="distance from the row space")
    axes[0].legend(fontsize=7)
    ctx.save_figure(fig, "distance", data)

    c = ctx.checks
    c.expect("w_star", "Xᵀ(XXᵀ)⁻¹t")
    c.expect("lr_bound", "η < 2/L = 2/λ_max(XᵀX/n)")
    c.expect("random_w0_limit", "w* + (I − P)w0")
    c.record("problems", len(rel_err))
    c.record("rel_err", rel_err)
    c.record("off_row_space", off)
    c.record("steps_to_converge", steps)
    names = list(rel_err)
    within(c, "rel_err_vs_w_star", list(rel_err.values()), torch.cat(rel_tol), REL_ERR_FORMULA, names)
    within(c, "max_off_row_space", list(off.values()), torch.cat(off_tol), OFF_ROW_FORMULA, names)
    c.holds("all_converged", min(steps.values()) >= 0, "every run reaches ‖Xw − t‖/‖t‖ ≤ 1e-10 in 5000 steps")
    within(c, "max_abs_diff_vs_torch_sgd", [torch_diff], [torch_tol], TORCH_FORMULA)
    within(c, "random_w0_rel_err_vs_w_star_plus_null_part", ctrl_vs_limit, ctrl_tol,
           "(κτ‖w*‖ + T·gain·γ_(d+n+4)(‖w0‖ + 2‖limit‖) + closed-form rounding)/‖limit‖")
    c.at_least("random_w0_min_rel_err_vs_w_star", ctrl_vs_star, 1)
    c.record("big_step_times_L", 2 * over)
    c.holds("big_step_diverges", all(k >= 0 for k in diverged_at), "every run at η = 2.05/L diverges")
    c.record("big_step_diverged_at", diverged_at)
    c.record("big_step_first_divergence", min(diverged_at))
    c.at_least("big_step_min_residual", big_resid, 1, strict=True)
    return (
        "GD η=1/L from 0, {problems} problems: ‖w−w*‖/‖w*‖ {rel_err_vs_w_star}, off row space "
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
class _Setting:
    """One optimizer setting of the SGD and momentum claims, with what its tolerances need."""

    label: str
    optimizer: F.GradientTransformation
    twin: dict[str, float]  # torch.optim.SGD keyword arguments for run 0
    sampler: Sampler
    lr: Tensor  # (R,)
    momentum: float = 0.0
    dampening: float = 0.0

    @property
    def batch(self) -> int | None:
        return getattr(self.sampler, "batch_size", None)


@dataclass
class _FromZero:
    """Per setting: worst ‖w − w*‖/‖w*‖, worst distance from the row space, steps to converge;
    and the largest gap to ``torch.optim.SGD`` over all settings; with every run's derived bounds."""

    rel_err: dict[str, float]
    off: dict[str, float]
    steps: dict[str, list[int]]
    torch_diff: float
    per_run: dict[str, Tensor] = field(default_factory=dict)  # rel_err, off, rel_tol, off_tol, torch_*

    def check(self, ctx: Context) -> None:
        """Acceptance rows 1b, 1c and 2, each run against its derived bound: rel_err, off row
        space, all converged, = torch."""
        c = ctx.checks
        c.expect("limit", "w* = Xᵀ(XXᵀ)⁻¹t")
        c.record("rel_err", self.rel_err)
        c.record("off_row_space", self.off)
        c.record("steps_to_converge", self.steps)
        c.record("settings", len(self.rel_err))
        p = self.per_run
        within(c, "rel_err_vs_w_star", p["rel_err"], p["rel_tol"], REL_ERR_FORMULA)
        within(c, "max_off_row_space", p["off"], p["off_tol"], OFF_ROW_FORMULA)
        every = [s for v in self.steps.values() for s in v]
        c.holds("all_converged", all(s >= 0 for s in every),
                "every run reaches ‖Xw − t‖/‖t‖ ≤ 1e-10 in 50,000 steps")
        c.record("max_steps", max(every))
        within(c, "max_abs_diff_vs_torch_sgd_300_steps", p["torch_diff"], p["torch_tol"], TORCH_FORMULA)


def _runs_from_zero(
    ctx: Context, problem, w_star, settings: list[_Setting], *, generator_base: int, record_every: int,
    title: str,
) -> _FromZero:
    """Run each setting from 0 to convergence, compare run 0 of each with ``torch.optim.SGD`` on the
    same samples, derive every run's tolerances, and save the distance-over-steps figure."""
    rel_err: dict[str, float] = {}
    off: dict[str, float] = {}
    steps: dict[str, list[int]] = {}
    torch_diff = 0.0
    keys = ("rel_err", "off", "rel_tol", "off_tol", "torch_diff", "torch_tol")
    per: dict[str, list[Tensor]] = {k: [] for k in keys}
    fig, ax = new_figure(size=(6, 4))
    data = {}
    for k, s in enumerate(settings):
        ctx.progress(s.label)
        tr = run_batch(
            problem,
            s.optimizer,
            50_000,
            sampler=s.sampler,
            generator=ctx.generator(generator_base + k),
            record_params=True,
            record_every=record_every,
            label=s.label,
        )
        rel = tr.final_relative_distance(w_star)
        off_r = off_row_space(problem, tr, w_star)
        rel_err[s.label] = max_of(rel)
        off[s.label] = max_of(off_r)
        steps[s.label] = tr.converged_at.tolist()
        gain = step_gain(problem.X, s.lr, s.batch, s.momentum, s.dampening)
        width = _width(problem.d, s.batch or problem.n)
        assert tr.params is not None
        # the scale of the numbers rounded: the largest recorded iterate, plus w* (residuals)
        scale = tr.params.norm(dim=-1).amax(0) / w_star.norm(dim=-1) + 1
        rel_tol, off_tol = interpolant_tolerances(problem.X, steps_taken(tr), gain, width, scale)
        diff = cross_check(
            problem,
            F.sgd(**s.twin),
            lambda p, kw=s.twin: torch.optim.SGD(p, **kw),
            s.sampler,
            lambda k=k: ctx.generator(generator_base + k),
        )
        torch_diff = max(torch_diff, diff)
        per["rel_err"].append(rel)
        per["off"].append(off_r)
        per["rel_tol"].append(rel_tol)
        per["off_tol"].append(off_tol)
        per["torch_diff"].append(torch.tensor([diff], dtype=torch.float64))
        per["torch_tol"].append(
            2 * iteration_rounding(carried(300), width, gain[:1]) * scale[:1] * w_star[0].norm()
        )
        dist = tr.relative_distance(w_star)
        ax.semilogy(tr.steps, dist.median(1).values.clamp_min(1e-17), label=s.label)
        data[s.label] = {"steps": tr.steps, "rel_dist": dist}
    ax.set(xlabel="step", ylabel="‖w_k − w*‖/‖w*‖ (median over instances)", title=title)
    ax.legend(fontsize=7)
    ctx.save_figure(fig, "distance", data)
    return _FromZero(rel_err, off, steps, torch_diff, {k: torch.cat(v) for k, v in per.items()})


@claim("optim.sgd-min-norm", section=SECTION, statement="""
    Single-example and mini-batch SGD (b = 1 reshuffled or with replacement, b = 5, …) from 0 with a
    small enough constant step (η = 1/max‖x_i‖², 3/max‖x_i‖² for b = 5) converges to the same w*:
    each update is a combination of the x_i, so iterates never leave span{x_i}.""")
def sgd_min_norm(ctx: Context, instances: Sequence[int] | None = None) -> str:
    """``instances``: the random instances' seeds (default :func:`seeds` of ``ctx``; more for tests)."""
    instances = seeds(ctx) if instances is None else list(instances)
    with limit_threads():
        problem = random_problems(20, 100, instances)
        w_star = min_norm_solution(problem.X, problem.t)
        R2 = max_row_norm2(problem.X)
        settings = [
            _Setting(label, F.sgd(lr=per_run(scale / R2)), dict(lr=float(scale / R2[0])), sampler, scale / R2)
            for label, sampler, scale in _sgd_settings(ctx)
        ]
        runs = _runs_from_zero(
            ctx, problem, w_star, settings, generator_base=10, record_every=10,
            title="SGD from 0 (n=20, d=100) → w*",
        )
    runs.check(ctx)
    ctx.checks.record("instances", len(instances))
    return (
        "SGD from 0, {settings} batch settings × {instances} instances: ‖w−w*‖/‖w*‖ {rel_err_vs_w_star}, "
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
def momentum_min_norm(ctx: Context, instances: Sequence[int] | None = None) -> str:
    """``instances``: the random instances' seeds (default :func:`seeds` of ``ctx``; more for tests)."""
    instances = seeds(ctx) if instances is None else list(instances)
    with limit_threads():
        problem = random_problems(20, 100, instances)
        w_star = min_norm_solution(problem.X, problem.t)
        L, R2 = smoothness(problem.X), max_row_norm2(problem.X)
        settings = [
            _Setting(
                "heavy ball μ=0.9, η=0.5/L",
                F.sgd(lr=per_run(0.5 / L), momentum=0.9),
                dict(lr=float(0.5 / L[0]), momentum=0.9),
                FullBatch(), 0.5 / L, momentum=0.9,
            ),
            _Setting(
                "Nesterov μ=0.9, η=0.5/L",
                F.sgd(lr=per_run(0.5 / L), momentum=0.9, nesterov=True),
                dict(lr=float(0.5 / L[0]), momentum=0.9, nesterov=True),
                FullBatch(), 0.5 / L, momentum=0.9,
            ),
            _Setting(
                "heavy ball, dampening 0.5",
                F.sgd(lr=per_run(0.5 / L), momentum=0.9, dampening=0.5),
                dict(lr=float(0.5 / L[0]), momentum=0.9, dampening=0.5),
                FullBatch(), 0.5 / L, momentum=0.9, dampening=0.5,
            ),
            _Setting(
                "heavy ball μ=0.9, b=5, η=0.3/R²",
                F.sgd(lr=per_run(0.3 / R2), momentum=0.9),
                dict(lr=float(0.3 / R2[0]), momentum=0.9),
                MiniBatch(5), 0.3 / R2, momentum=0.9,
            ),
            _Setting(
                "heavy ball μ=0.5, b=1, η=0.5/R²",
                F.sgd(lr=per_run(0.5 / R2), momentum=0.5),
                dict(lr=float(0.5 / R2[0]), momentum=0.5),
                MiniBatch(1), 0.5 / R2, momentum=0.5,
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
        "{settings} momentum settings × {instances} instances from 0: ‖w−w*‖/‖w*‖ {rel_err_vs_w_star}, "
        "off row space {max_off_row_space}; = torch.optim to {max_abs_diff_vs_torch_sgd_300_steps}"
    )
