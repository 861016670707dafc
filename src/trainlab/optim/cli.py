"""``trainlab optim …``: compare optimizers on random least-squares problems, draw 2-D paths."""

from __future__ import annotations

import math
from pathlib import Path

import click
import torch
from rich.console import Console
from rich.table import Table

from trainlab.errors import ArgumentError
from trainlab.optim.compare import compare_optimizers, parse_optimizer_names, trace_paths_2d
from trainlab.optim.problems import random_problems
from trainlab.optim.runner import limit_threads
from trainlab.optim.samplers import FullBatch, MiniBatch

__all__ = ["group"]


def _positive(name: str, value: int) -> None:
    if value < 1:
        raise ArgumentError(name, value, "a positive integer")


def _numbers(name: str, text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise ArgumentError(name, text, "comma-separated numbers, e.g. 2,1") from None
    if not all(math.isfinite(v) for v in values):
        raise ArgumentError(name, text, "finite numbers")
    return values


def _fmt(x: float | None, spec: str = ".1e") -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


@click.group(help="Optimizers and their implicit bias: which interpolant does each one find?")
def group() -> None:
    pass


@group.command()
@click.option("--n", "n", type=int, default=20, show_default=True, help="Examples per problem.")
@click.option("--d", "d", type=int, default=100, show_default=True, help="Parameters (must exceed n).")
@click.option(
    "--optimizers",
    default="sgd,momentum,adagrad,rmsprop,adam",
    show_default=True,
    help="Comma-separated: sgd (=gd), momentum, nesterov, adagrad, rmsprop, adam, course-rmsprop.",
)
@click.option("--steps", type=int, default=20_000, show_default=True, help="Most steps per run.")
@click.option("--seeds", type=int, default=3, show_default=True, help="Random problems (seeds 0..K−1).")
@click.option("--lr", type=float, default=None, help="One step size for all [default: per optimizer].")
@click.option("--batch-size", type=int, default=None, help="Examples per step [default: full batch].")
@click.option("--tol", type=float, default=1e-10, show_default=True, help="Stop at ‖Xw − t‖/‖t‖ ≤ tol.")
def compare(
    n: int,
    d: int,
    optimizers: str,
    steps: int,
    seeds: int,
    lr: float | None,
    batch_size: int | None,
    tol: float,
) -> None:
    """Final distance to the minimum-norm interpolant w*, residual and steps, per optimizer."""
    names = parse_optimizer_names(optimizers)
    for name, value in (("--n", n), ("--d", d), ("--steps", steps), ("--seeds", seeds)):
        _positive(name, value)
    if n >= d:
        raise ArgumentError(
            "--n", n, f"fewer examples than parameters (n < d = {d}): the problem must be overparameterised"
        )
    if lr is not None and not lr > 0:
        raise ArgumentError("--lr", lr, "a positive step size")
    if batch_size is not None and not 1 <= batch_size <= n:
        raise ArgumentError("--batch-size", batch_size, f"an integer from 1 to n = {n}")
    if not tol >= 0:
        raise ArgumentError("--tol", tol, "a number >= 0")
    with limit_threads():
        problem = random_problems(n, d, list(range(seeds)))
        sampler = FullBatch() if batch_size is None else MiniBatch(batch_size)
        result = compare_optimizers(
            problem, names, steps, lr=lr, sampler=sampler, generator=torch.Generator().manual_seed(0), tol=tol
        )
    bound = result.stability_bound
    table = Table(
        "optimizer",
        "step",
        "converged",
        "steps",
        "‖w−w*‖/‖w*‖",
        "resid",
        "‖w‖/‖w*‖",
        title=f"{seeds} problems, n={n}, d={d}, {sampler.describe()}, ≤{steps} steps",
        caption="medians over the problems; resid: the largest ‖Xw − t‖/‖t‖",
    )
    notes = []
    for row in result.rows:
        if row.diverged:
            notes.append(
                f"{row.name}: diverged at step {row.first_divergence_step} in {row.diverged}/{row.runs} runs "
                f"(GD is stable only for lr < 2/λ_max(XᵀX/n) = {float(bound.min()):.4g} on these problems)"
            )
        if row.diverged == row.runs:
            table.add_row(
                row.name,
                row.step,
                f"0/{row.runs}",
                "—",
                f"diverged at step {row.first_divergence_step}",
                "—",
                "—",
            )
            continue
        table.add_row(
            row.name,
            row.step,
            f"{row.converged}/{row.runs}",
            _fmt(row.median_steps_to_converge, ".0f"),
            _fmt(row.median_rel_dist, ".2e"),
            _fmt(row.max_residual),
            _fmt(row.median_norm_ratio, ".3f"),
        )
    console = Console(highlight=False)
    console.print(table)
    for note in notes:
        console.print(note, soft_wrap=True)


@group.command()
@click.option("--x", "x", required=True, help="The example x ∈ R², e.g. 2,1.")
@click.option("--t", "t", type=float, required=True, help="Its target t.")
@click.option(
    "--optimizers", default="gd,adagrad,rmsprop,adam", show_default=True, help="Comma-separated names."
)
@click.option("--steps", type=int, default=20_000, show_default=True)
@click.option("--lr", type=float, default=None, help="One step size for all [default: per optimizer].")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=Path("optim-path.png"),
    show_default=True,
    help="Figure (PNG; its data is saved beside it as JSON).",
)
def path(x: str, t: float, optimizers: str, steps: int, lr: float | None, output: Path) -> None:
    """Draw each optimizer's path from 0 on one example x ∈ R², with the solution line and w*."""
    from trainlab.plotting import save_figure

    names = parse_optimizer_names(optimizers)
    values = _numbers("--x", x)
    _positive("--steps", steps)
    if not math.isfinite(t):
        raise ArgumentError("--t", t, "a finite number")
    with limit_threads():
        result, runs = trace_paths_2d(values, t, names, steps, lr)
    ax = result.plot()
    ax.set_title(f"x = {x}, t = {t:g}")
    saved = save_figure(
        ax.figure,
        output,
        {
            "x": result.x,
            "t": result.t,
            "w_star": result.w_star,
            "sign_interpolant": result.sign_interpolant,
            **result.paths,
        },
    )
    table = Table(
        "optimizer",
        "w_T",
        "‖w−w*‖/‖w*‖",
        "steps",
        title=f"x = {x}, t = {t:g}: w* = [{', '.join(f'{v:.4f}' for v in result.w_star.tolist())}]",
    )
    for name, tr in runs.items():
        w = tr.final_params[0]
        if bool(tr.diverged[0]):
            table.add_row(name, "—", f"diverged at step {int(tr.diverged_at[0])}", "—")
            continue
        rel = float((w - result.w_star).norm() / result.w_star.norm())
        table.add_row(
            name,
            f"[{', '.join(f'{v:.4f}' for v in w.tolist())}]",
            f"{rel:.4f}",
            str(int(tr.converged_at[0])) if bool(tr.converged[0]) else f">{tr.steps_run}",
        )
    console = Console(highlight=False)
    console.print(table)
    console.print(f"wrote {saved} and {saved.with_suffix('.json')}", soft_wrap=True)
