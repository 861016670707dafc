"""Named optimizers with sensible steps, and a side-by-side comparison on one set of problems.

The defaults are the acceptance table's settings (shared/optim-acceptance.md): GD at
η = 1/L, momentum at 0.5/L, AdaGrad 0.1, RMSProp 1e-2·0.999^k, Adam 1e-2, with
L = λ_max(XᵀX/n) per problem, so each default converges on any instance.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

import trainlab.functional as F
from trainlab.errors import ArgumentError
from trainlab.optim.problems import LeastSquares, min_norm_solution, sign_interpolant, smoothness
from trainlab.optim.runner import Trajectories, run_batch
from trainlab.optim.samplers import Sampler
from trainlab.plotting import subplots_or

if TYPE_CHECKING:  # annotations only: figures import matplotlib when they draw
    from matplotlib.axes import Axes

__all__ = [
    "OPTIMIZERS",
    "Comparison",
    "ComparisonRow",
    "Paths2D",
    "compare_optimizers",
    "make_optimizer",
    "parse_optimizer_names",
    "trace_paths_2d",
]

Factory = Callable[[Tensor, Tensor | None], tuple[F.GradientTransformation, str]]


def _lr(default: Tensor, given: Tensor | None) -> Tensor:
    return default if given is None else given


#: name -> factory(L (R, 1), lr or None) -> (optimizer, description of the step)
OPTIMIZERS: dict[str, Factory] = {
    "sgd": lambda L, lr: (F.sgd(lr=_lr(1 / L, lr)), "1/L" if lr is None else "lr"),
    "momentum": lambda L, lr: (
        F.sgd(lr=_lr(0.5 / L, lr), momentum=0.9),
        "0.5/L, μ=0.9" if lr is None else "lr, μ=0.9",
    ),
    "nesterov": lambda L, lr: (
        F.sgd(lr=_lr(0.5 / L, lr), momentum=0.9, nesterov=True),
        "0.5/L, μ=0.9" if lr is None else "lr, μ=0.9",
    ),
    "adagrad": lambda L, lr: (
        F.adagrad(lr=_lr(torch.tensor(0.1, dtype=L.dtype), lr)),
        "0.1" if lr is None else "lr",
    ),
    "rmsprop": lambda L, lr: (
        F.rmsprop(lr=F.exponential_decay(1e-2, 0.999)) if lr is None else F.rmsprop(lr=lr),
        "1e-2·0.999^k" if lr is None else "lr",
    ),
    "adam": lambda L, lr: (
        F.adam(lr=_lr(torch.tensor(1e-2, dtype=L.dtype), lr)),
        "1e-2" if lr is None else "lr",
    ),
    "course-rmsprop": lambda L, lr: (
        F.course_rmsprop(lr=F.exponential_decay(0.1, 0.999) if lr is None else lr),
        "0.1·0.999^k, β=0.9" if lr is None else "lr, β=0.9",
    ),
}
OPTIMIZERS["gd"] = OPTIMIZERS["sgd"]


def parse_optimizer_names(text: str, argument: str = "--optimizers") -> list[str]:
    """``"sgd,adam"`` -> ``["sgd", "adam"]``; an unknown or empty name is an :class:`ArgumentError`."""
    names = [n.strip().lower() for n in text.split(",")]
    for name in names:
        if name not in OPTIMIZERS:
            raise ArgumentError(argument, text, "comma-separated names from: " + ", ".join(OPTIMIZERS))
    return names


def make_optimizer(
    name: str, problem: LeastSquares, lr: float | None = None
) -> tuple[F.GradientTransformation, str]:
    """The named optimizer for the runs of ``problem`` (per-run default steps from L when ``lr`` is None)."""
    if name not in OPTIMIZERS:
        raise ArgumentError("optimizer", name, "one of: " + ", ".join(OPTIMIZERS))
    if lr is not None and not lr > 0:
        raise ArgumentError("--lr", lr, "a positive step size")
    L = smoothness(problem.X).unsqueeze(-1)  # (R, 1)
    return OPTIMIZERS[name](L, None if lr is None else torch.tensor(float(lr), dtype=problem.X.dtype))


@dataclass
class ComparisonRow:
    """One optimizer over R runs: medians and extremes of the end points."""

    name: str
    step: str
    runs: int
    converged: int
    diverged: int
    first_divergence_step: int | None
    median_steps_to_converge: float | None
    median_rel_dist: float
    max_rel_dist: float
    max_residual: float
    median_norm_ratio: float


@dataclass
class Comparison:
    """Every optimizer's row, the GD stability bound 2/λ_max per run, and the raw trajectories."""

    rows: list[ComparisonRow]
    stability_bound: Tensor
    trajectories: dict[str, Trajectories]

    def plot(self, ax: Axes | None = None) -> Axes:
        """Median relative residual against the step, one line per optimizer."""
        _, ax = subplots_or(ax)
        for name, tr in self.trajectories.items():
            ax.semilogy(tr.steps, tr.relative_residual.median(1).values.clamp_min(1e-17), label=name)
        ax.set(xlabel="step", ylabel="median ‖Xw − t‖/‖t‖")
        ax.legend(fontsize=8)
        return ax


def compare_optimizers(
    problem: LeastSquares,
    names: Sequence[str],
    steps: int,
    *,
    lr: float | None = None,
    sampler: Sampler | None = None,
    generator: torch.Generator | None = None,
    tol: float = 1e-10,
) -> Comparison:
    """Run each named optimizer on all problems from 0 and summarise the end points against w*."""
    w_star = min_norm_solution(problem.X, problem.t)
    rows, trajectories = [], {}
    for name in names:
        opt, step = make_optimizer(name, problem, lr)
        gen = None if generator is None else torch.Generator().manual_seed(generator.initial_seed())
        tr = run_batch(problem, opt, steps, sampler=sampler, generator=gen, tol=tol, label=name)
        trajectories[name] = tr
        ok = ~tr.diverged
        rel = tr.final_relative_distance(w_star)[ok]
        conv = tr.converged_at[tr.converged]
        rows.append(
            ComparisonRow(
                name=name,
                step=step,
                runs=problem.num_runs,
                converged=int(tr.converged.sum()),
                diverged=int(tr.diverged.sum()),
                first_divergence_step=int(tr.diverged_at[tr.diverged].min())
                if bool(tr.diverged.any())
                else None,
                median_steps_to_converge=float(conv.double().median()) if len(conv) else None,
                median_rel_dist=float(rel.median()) if len(rel) else float("nan"),
                max_rel_dist=float(rel.max()) if len(rel) else float("nan"),
                max_residual=float(tr.relative_residual[-1][ok].max()) if bool(ok.any()) else float("nan"),
                median_norm_ratio=float((tr.final_params[ok].norm(dim=-1) / w_star[ok].norm(dim=-1)).median())
                if bool(ok.any())
                else float("nan"),
            )
        )
    return Comparison(rows, 2 / smoothness(problem.X), trajectories)


@dataclass
class Paths2D:
    """Iterates (T, 2) of several optimizers on one example xᵀw = t (x ∈ R²), w* and the sign interpolant."""

    x: Tensor
    t: float
    paths: dict[str, Tensor]
    w_star: Tensor
    sign_interpolant: Tensor

    def plot(self, ax: Axes | None = None) -> Axes:
        """The solution line, w*, the sign interpolant and each optimizer's path."""
        _, ax = subplots_or(ax)
        points = torch.cat([self.w_star[None], self.sign_interpolant[None], *self.paths.values()])
        finite = points[torch.isfinite(points).all(-1)]
        lo = float(finite.min()) - 0.1
        hi = 1.2 * float(finite.max()) + 0.1
        if abs(float(self.x[1])) > 1e-12:
            u = torch.linspace(lo, hi, 50, dtype=torch.float64)
            ax.plot(u, (self.t - self.x[0] * u) / self.x[1], "k-", lw=1, label="solutions xᵀw = t")
        else:
            ax.axvline(self.t / float(self.x[0]), color="k", lw=1, label="solutions xᵀw = t")
        for k, (name, path) in enumerate(self.paths.items()):
            ax.plot(
                path[:, 0], path[:, 1], ["-", "--", ":", "-."][k % 4], lw=max(0.8, 2.5 - 0.4 * k), label=name
            )
        ax.plot(*self.w_star.tolist(), "k*", ms=12, label="w* (min norm)")
        ax.plot(*self.sign_interpolant.tolist(), "ks", mfc="none", ms=9, label="sign interpolant")
        ax.set(xlim=(lo, hi), ylim=(lo, hi), aspect="equal", xlabel="w₁", ylabel="w₂")
        ax.legend(fontsize=7)
        return ax


def trace_paths_2d(
    x: Sequence[float], t: float, names: Sequence[str], steps: int, lr: float | None = None
) -> tuple[Paths2D, dict[str, Trajectories]]:
    """Run each named optimizer from 0 on the single example (x, t) with x ∈ R², recording every step."""
    if len(x) != 2:
        raise ArgumentError("--x", ",".join(f"{v:g}" for v in x), "exactly two numbers (the figure is 2-D)")
    if all(v == 0 for v in x):
        raise ArgumentError("--x", ",".join(f"{v:g}" for v in x), "a non-zero example")
    X = torch.tensor([[list(map(float, x))]], dtype=torch.float64)
    problem = LeastSquares(X, torch.tensor([[float(t)]], dtype=torch.float64), (f"x={list(x)},t={t:g}",))
    paths, runs = {}, {}
    for name in names:
        opt, _ = make_optimizer(name, problem, lr)
        tr = run_batch(
            problem, opt, steps, record_params=True, record_every=max(1, steps // 2000), label=name
        )
        assert tr.params is not None
        paths[name], runs[name] = tr.params[:, 0], tr
    result = Paths2D(
        X[0, 0],
        float(t),
        paths,
        min_norm_solution(problem.X, problem.t)[0],
        sign_interpolant(X[0, 0], float(t)),
    )
    return result, runs
