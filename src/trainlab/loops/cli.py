"""``trainlab loops …``: the sharpness meter and the LR range test on any problem.

trainlab loops sharpness --problem digits-mlp --format json
trainlab loops lr-find --problem linreg --seeds 5 -o lr-find.png
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from trainlab.cli_options import FigureFile, combine, format_option, seed_option
from trainlab.errors import ArgumentError
from trainlab.problem_options import ProblemChoice, finite, problem_options

__all__ = ["group"]

_problem_options = combine(
    problem_options(default=None),
    seed_option(help="Seed for the problem, batches and random starts."),
    format_option(),
)


_FIGURE = FigureFile("--output", make_folders=False)


def _load(choice: ProblemChoice, seed: int):  # -> Problem
    choice.refuse_unused()  # --data/--loss beside a built-in problem would be ignored
    return choice.load(seed)


def _check_batch(batch_size: int | None, num_examples: int) -> None:
    if batch_size is not None and batch_size > num_examples:
        raise ArgumentError("--batch-size", batch_size, f"at most the {num_examples} training examples")


def _threads_for(num_params: int) -> int:
    """One thread for small models (many tiny kernels: threads only contend); all for large ones."""
    import os

    return 1 if num_params < 1_000_000 else (os.cpu_count() or 1)


def _emit(obj: dict[str, Any]) -> None:
    from trainlab.console import echo_json

    echo_json(obj)


def _fmt(x: float | None, spec: str = ".6g") -> str:
    return "—" if x is None else format(x, spec)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def group() -> None:
    """Midterm: training-loop pitfalls (gradients never cleared, lr too high), sharpness, LR range test."""


@group.command()
@_problem_options
@click.option("--batch-size", type=click.IntRange(1), default=None,
              help="Measure on a batch of this many examples drawn with --seed [default: all].")
@click.option("--tol", type=click.FloatRange(0, 1, min_open=True), default=1e-6, show_default=True,
              callback=finite("a tolerance"),
              help="Stop when the error bound of λ_max ≤ tol·|λ_max| (see --bound).")
@click.option("--max-hvps", type=click.IntRange(1, 100_000), default=300, show_default=True,
              help="Most Hessian–vector products.")
@click.option("--bound", type=click.Choice(["gap", "residual"]), default="gap", show_default=True,
              help="Error bound of the stopping test: gap (Kato–Temple, r²/gap) or residual "
                   "(r, unconditional).")
@click.option("--precision", type=click.Choice(["float64", "model"]), default="float64", show_default=True,
              help="Precision of the HVPs (model: the model's own dtype; float32 limits tol to ~1e-6).")
def sharpness(
    choice: ProblemChoice,
    seed: int,
    fmt: str,
    batch_size: int | None,
    tol: float,
    max_hvps: int,
    bound: str,
    precision: str,
) -> None:
    """λ_max of the training loss's Hessian, by Lanczos on Hessian–vector products, and 2/λ_max.

    GD on the local quadratic model is stable only for lr < 2/λ_max (stable_lr_bound).
    """
    import torch

    from trainlab.loops.sharpness import sharpness as measure
    from trainlab.memory import require_memory
    from trainlab.seeding import generator
    from trainlab.threads import limit_threads

    problem = choice.spec
    p = _load(choice, seed)
    _check_batch(batch_size, p.num_examples)
    dtype = torch.float64 if precision == "float64" else None
    itemsize = 8 if dtype is not None else p.dtype.itemsize
    steps = min(max_hvps, p.num_params)
    require_memory("--max-hvps", max_hvps, (steps + 8) * p.num_params * itemsize)  # the Lanczos basis
    with limit_threads(_threads_for(p.num_params)):
        batch = None if batch_size is None else p.sample_batch(batch_size, generator(seed, "sharpness-batch"))
        result = measure(p, batch=batch, tol=tol, max_hvps=max_hvps, seed=seed, dtype=dtype, bound=bound)
    closed = p.info.get("lambda_max") if batch is None else None
    out = {
        "lambda_max": result.lambda_max,
        "stable_lr_bound": result.stable_lr_bound,
        "hvps": result.hvps,
        "converged": result.converged,
        "residual": result.residual,
        "relative_error_bound": result.relative_error_bound,
        "bound": bound,
        "tol": tol,
        "problem": problem,
        "num_params": p.num_params,
        "batch_size": batch_size or p.num_examples,
        "precision": str(dtype or p.dtype).replace("torch.", ""),
        "closed_form_lambda_max": closed,
        "seconds": round(result.seconds, 4),
    }
    if fmt == "json":
        _emit(out)
    else:
        from rich.table import Table

        from trainlab.console import stdout_console

        table = Table(
            "quantity",
            "value",
            title=f"sharpness of {problem} ({p.num_params:,} parameters, {out['batch_size']:,} examples)",
        )
        table.add_row("λ_max", _fmt(result.lambda_max, ".10g"))
        table.add_row("stable lr bound 2/λ_max", _fmt(result.stable_lr_bound, ".10g"))
        table.add_row("Hessian–vector products", str(result.hvps))
        table.add_row(f"relative error bound ({bound})", f"{result.relative_error_bound:.1e} (tol {tol:g})")
        if closed is not None:
            table.add_row("λ_max in closed form (2/n)σ_max(X)²", _fmt(closed, ".10g"))
        stdout_console().print(table)
    if not result.converged:
        click.echo(
            f"trainlab: warning: not converged to --tol {tol:g} in {result.hvps} HVPs "
            f"(relative error bound {result.relative_error_bound:.1e}); raise --max-hvps",
            err=True,
        )


@group.command("lr-find")
@_problem_options
@click.option("--seeds", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="Range tests with seeds --seed, --seed+1, …: the spread of the suggestion.")
@click.option("--min-lr", type=click.FloatRange(0, min_open=True), default=1e-6, show_default=True,
              callback=finite("a learning rate"))
@click.option("--max-lr", type=click.FloatRange(0, min_open=True), default=10.0, show_default=True,
              callback=finite("a learning rate"))
@click.option("--steps", type=click.IntRange(3, 1_000_000), default=100, show_default=True,
              help="Steps of the sweep (LRs spaced evenly in log).")
@click.option("--batch-size", type=click.IntRange(1), default=None,
              help="Examples per step, drawn with the seed [default: all: full-batch, deterministic].")
@click.option("--optimizer", type=click.Choice(["sgd", "adam"]), default="sgd", show_default=True)
@click.option("--momentum", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True,
              callback=finite("a momentum"), help="SGD momentum.")
@click.option("--suggest", type=click.Choice(["steepest", "min/10"]), default="steepest", show_default=True,
              help="steepest: where the smoothed loss falls fastest in log lr; min/10: a tenth of its "
                   "minimum.")
@click.option("--smoothing", type=click.FloatRange(0, 1, min_open=True), default=0.05, show_default=True,
              callback=finite("a smoothing factor"), help="EMA weight of the newest loss (1: none).")
@click.option("--diverge-factor", type=click.FloatRange(1, min_open=True), default=5.0, show_default=True,
              callback=finite("a factor"), help="Stop once the smoothed loss exceeds this × its minimum.")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Figure of the curves (.png; its data is saved beside it as .json).")
@_FIGURE.overwrite_option()
def lr_find(
    choice: ProblemChoice,
    seed: int,
    fmt: str,
    seeds: int,
    min_lr: float,
    max_lr: float,
    steps: int,
    batch_size: int | None,
    optimizer: str,
    momentum: float,
    suggest: str,
    smoothing: float,
    diverge_factor: float,
    output: Path | None,
    overwrite: bool,
) -> None:
    """LR range test (Smith 2017) on copies of the problem's model: suggested LR, divergence point.

    The suggestion and divergence point are medians over --seeds runs; "spread" lists each seed's.
    """
    from trainlab.loops.lr_range import lr_find as run
    from trainlab.threads import limit_threads

    if min_lr >= max_lr:
        raise ArgumentError("--min-lr", min_lr, f"a learning rate below --max-lr = {max_lr:g}")
    if momentum and optimizer != "sgd":
        raise ArgumentError("--momentum", momentum, "0 with --optimizer adam (momentum is SGD's)")
    _FIGURE.check(output, overwrite)
    problem = choice.spec
    p = _load(choice, seed)
    _check_batch(batch_size, p.num_examples)
    with limit_threads(_threads_for(p.num_params)):
        result = run(p, optimizer=optimizer, momentum=momentum, seeds=seeds, seed=seed, min_lr=min_lr,
                     max_lr=max_lr, num_steps=steps, batch_size=batch_size, smoothing=smoothing,
                     diverge_factor=diverge_factor, suggest=suggest)
    out = {
        **result.as_dict(),
        "problem": problem,
        "optimizer": optimizer,
        "batch_size": batch_size or p.num_examples,
        "stable_lr_bound": p.stable_lr_bound,
    }
    if output is not None:
        _save_plot(result, output, out)
    if fmt == "json":
        _emit(out)
        return
    from rich.table import Table

    from trainlab.console import stdout_console

    table = Table(
        "seed",
        "suggested lr",
        "divergence lr",
        title=f"LR range test of {problem}: {optimizer}, lr {min_lr:g} → {max_lr:g} in {steps} steps, "
        f"batch {out['batch_size']:,}",
    )
    def suggestion(lr: float | None, bounded: bool) -> str:
        # a range that ended before the loss turned gives only a lower bound: say so in the cell
        return _fmt(lr, ".4g") if bounded or lr is None else f"≥ {_fmt(lr, '.4g')} (unbounded)"

    for r in result.runs:
        table.add_row(str(r.seed), suggestion(r.suggested_lr, r.bounded), _fmt(r.divergence_lr, ".4g"))
    if seeds > 1:
        table.add_row("median", suggestion(result.suggested_lr, result.bounded),
                      _fmt(result.divergence_lr, ".4g"))
    console = stdout_console()
    console.print(table)
    if not result.bounded:
        console.print(f"the loss never rose up to --max-lr {max_lr:g} on seed(s) "
                      f"{', '.join(map(str, out['unbounded_seeds']))}: the LR wanted may "
                      f"lie above it; rerun with a larger --max-lr", soft_wrap=True, markup=False)
    if seeds > 1 and result.spread_ratio is not None:
        console.print(f"spread of the suggestion over {seeds} seeds: max/min = {result.spread_ratio:.3g}")
    if p.stable_lr_bound is not None:
        console.print(f"2/λ_max of this quadratic: {p.stable_lr_bound:.4g} (GD diverges above it)")
    if output is not None:
        console.print(f"wrote {output} and {output.with_suffix('.json')}", soft_wrap=True)


def _save_plot(result: Any, output: Path, data: dict[str, Any]) -> None:
    from trainlab.plotting import new_figure

    fig, ax = new_figure(size=(5.5, 3.8))
    result.plot(ax)
    if data.get("stable_lr_bound"):
        ax.axvline(data["stable_lr_bound"], color="k", lw=0.8, label="2/λ_max")
        ax.legend(fontsize=7)
    _FIGURE.write(fig, output, data)
