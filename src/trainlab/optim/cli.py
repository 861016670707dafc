"""``trainlab optim …``: compare optimizers on random least-squares problems, draw 2-D paths.

Bad input ends in one line naming the flag (exit 2) before any work is done: flags are
checked by click ranges (finite numbers, positive counts), work too large for this machine
is refused with its memory estimate (:func:`trainlab.memory.require_memory`), and the
figure's format follows the extension of ``-o`` (png, pdf or svg). Files are written
atomically, an existing one only with ``--overwrite``, and a failed write leaves nothing
behind. ``--format json`` prints one JSON object (numbers as numbers, ``null`` for a value
that does not exist, such as the distance of a diverged run).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click

from trainlab.errors import ArgumentError
from trainlab.problem_options import steps_range

__all__ = ["compare_memory_bytes", "group"]

#: Figure formats that ``optim path -o`` writes, by extension (what matplotlib's Agg/PDF/SVG backends make).
_FORMATS = click.Choice(["table", "json"])


class _Finite(click.FloatRange):
    """A FloatRange that also refuses nan and ±inf (click's range lets nan through)."""

    name = "finite float"

    def _describe_range(self) -> str:
        if self.min is None and self.max is None:  # unbounded: no "x<=None" in the help
            return "finite"
        return super()._describe_range()

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        rv = super().convert(value, param, ctx)
        if not math.isfinite(rv):
            self.fail(f"{rv!r} is not a finite number.", param, ctx)
        return rv


def _numbers(name: str, text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise ArgumentError(name, text, "comma-separated numbers, e.g. 2,1") from None
    if not all(math.isfinite(v) for v in values):
        raise ArgumentError(name, text, "finite numbers")
    return values


def _optimizer_names(text: str) -> list[str]:
    """The --optimizers list, each name once (a repeated one would be run, and tabled, twice)."""
    from trainlab.optim.compare import parse_optimizer_names

    names = parse_optimizer_names(text)
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ArgumentError("--optimizers", text, f"each name once ({', '.join(repeated)} is repeated)")
    return names


def _fmt(x: float | None, spec: str = ".1e") -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def _number_or_null(x: float | int | None) -> float | int | None:
    """A JSON number, or None where the value does not exist (NaN) or is not finite."""
    if x is None:
        return None
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _print_json(obj: dict[str, Any]) -> None:
    from trainlab.console import echo_json

    echo_json(obj)


def compare_memory_bytes(n: int, d: int, runs: int, optimizers: int, batch_size: int | None = None) -> int:
    """Peak memory of ``optim compare`` (float64), in bytes, from the sizes it allocates.

    X is (R, n, d), held twice while the problems are stacked; XXᵀ (R, n, n) for w*; per
    optimizer, parameters, update and up to four state tensors (R, d), the final parameters
    kept for the table, ~500 recorded residuals per run; a mini-batch gathers (R, b, d).
    """
    b = 0 if batch_size is None else batch_size
    floats = runs * (2 * n * d + b * d + 2 * n * n + (8 + optimizers) * d + 502 * optimizers + 4 * n)
    return 8 * floats


def _largest_request(**values: tuple[int, int]) -> tuple[str, int]:
    """The flag whose value is furthest above its default: (flag, value)."""
    flag = max(values, key=lambda k: values[k][0] / values[k][1])
    return flag, values[flag][0]


@click.group(help="Optimizers and their implicit bias: which interpolant does each one find?")
def group() -> None:
    pass


@group.command()
@click.option("--n", "n", type=click.IntRange(min=1), default=20, show_default=True,
              help="Examples per problem.")
@click.option("--d", "d", type=click.IntRange(min=2), default=100, show_default=True,
              help="Parameters (must exceed n).")
@click.option(
    "--optimizers",
    default="sgd,momentum,adagrad,rmsprop,adam",
    show_default=True,
    help="Comma-separated: sgd (=gd), momentum, nesterov, adagrad, rmsprop, adam, course-rmsprop.",
)
@click.option("--steps", type=steps_range(), default=20_000, show_default=True,
              help="Most steps per run.")
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True,
              help="Random problems (seeds 0..K−1).")
@click.option("--lr", type=_Finite(min=0, min_open=True), default=None,
              help="One step size for all [default: per optimizer].")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Examples per step [default: full batch].")
@click.option("--tol", type=_Finite(min=0), default=1e-10, show_default=True,
              help="Stop at ‖Xw − t‖/‖t‖ ≤ tol.")
@click.option("--format", "fmt", type=_FORMATS, default="table", show_default=True,
              help="table, or one JSON object on stdout.")
def compare(
    n: int,
    d: int,
    optimizers: str,
    steps: int,
    seeds: int,
    lr: float | None,
    batch_size: int | None,
    tol: float,
    fmt: str,
) -> None:
    """Final distance to the minimum-norm interpolant w*, residual and steps, per optimizer."""
    from trainlab.memory import require_memory

    names = _optimizer_names(optimizers)
    if n >= d:
        raise ArgumentError(
            "--n", n, f"fewer examples than parameters (n < d = {d}): the problem must be overparameterised"
        )
    if batch_size is not None and batch_size > n:
        raise ArgumentError("--batch-size", batch_size, f"an integer from 1 to n = {n}")
    flag, value = _largest_request(**{"--seeds": (seeds, 3), "--d": (d, 100), "--n": (n, 20)})
    require_memory(flag, value, compare_memory_bytes(n, d, seeds, len(names), batch_size))

    import torch

    from trainlab.optim.compare import compare_optimizers
    from trainlab.optim.problems import random_problems
    from trainlab.optim.samplers import FullBatch, MiniBatch
    from trainlab.threads import limit_threads

    with limit_threads():
        problem = random_problems(n, d, list(range(seeds)))
        sampler = FullBatch() if batch_size is None else MiniBatch(batch_size)
        result = compare_optimizers(
            problem, names, steps, lr=lr, sampler=sampler, generator=torch.Generator().manual_seed(0), tol=tol
        )
    bound = float(result.stability_bound.min())
    if fmt == "json":
        _print_json({
            "problems": seeds, "n": n, "d": d, "sampler": sampler.describe(), "max_steps": steps, "tol": tol,
            "gd_stability_bound_min": bound,
            "optimizers": [
                {"name": row.name, "step": row.step, "runs": row.runs, "converged": row.converged,
                 "diverged": row.diverged, "first_divergence_step": row.first_divergence_step,
                 "median_steps_to_converge": _number_or_null(row.median_steps_to_converge),
                 "median_rel_dist_to_w_star": _number_or_null(row.median_rel_dist),
                 "max_rel_dist_to_w_star": _number_or_null(row.max_rel_dist),
                 "max_residual": _number_or_null(row.max_residual),
                 "median_norm_ratio": _number_or_null(row.median_norm_ratio)}
                for row in result.rows
            ],
        })
        return
    from rich.table import Table

    from trainlab.console import stdout_console

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
                f"(GD is stable only for lr < 2/λ_max(XᵀX/n) = {bound:.4g} on these problems)"
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
    console = stdout_console()
    console.print(table)
    for note in notes:
        console.print(note)


def _figure_path(output: Path, overwrite: bool) -> None:
    """Refuse an unknown extension, a folder, or an existing file without ``--overwrite``
    (before any work is done)."""
    from trainlab.plotting import FIGURE_FORMATS
    from trainlab.runs import check_output_file

    check_output_file("--output", output, list(FIGURE_FORMATS), overwrite=overwrite, companions=[".json"])


@group.command()
@click.option("--x", "x", required=True, help="The example x ∈ R², e.g. 2,1.")
@click.option("--t", "t", type=_Finite(), required=True, help="Its target t (non-zero).")
@click.option(
    "--optimizers", default="gd,adagrad,rmsprop,adam", show_default=True, help="Comma-separated names."
)
@click.option("--steps", type=steps_range(), default=20_000, show_default=True)
@click.option("--lr", type=_Finite(min=0, min_open=True), default=None,
              help="One step size for all [default: per optimizer].")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=Path("optim-path.png"),
    show_default=True,
    help="Figure: .png, .pdf or .svg (the format follows the extension); its data is saved beside it "
    "as JSON.",
)
@click.option("--overwrite", is_flag=True, help="Replace the figure and its JSON if they exist.")
@click.option("--format", "fmt", type=_FORMATS, default="table", show_default=True,
              help="table, or one JSON object on stdout.")
def path(x: str, t: float, optimizers: str, steps: int, lr: float | None, output: Path, overwrite: bool,
         fmt: str) -> None:
    """Draw each optimizer's path from 0 on one example x ∈ R², with the solution line and w*."""
    names = _optimizer_names(optimizers)
    values = _numbers("--x", x)
    if len(values) != 2:  # before the output check: the figure is not what is wrong
        raise ArgumentError("--x", x, "exactly two numbers (the figure is 2-D), e.g. 2,1")
    if t == 0:
        raise ArgumentError("--t", t, "a non-zero target (with t = 0, w = 0 already solves xᵀw = t)")
    square = sum(v * v for v in values)  # w* = x·t/xᵀx: xᵀx must be a usable float64
    if not 1e-150 < square < 1e150:
        raise ArgumentError("--x", x, "a non-zero x with 1e-75 < ‖x‖ < 1e75 (w* = x·t/‖x‖² must be "
                            "computable in float64)")
    if not 1e-150 < abs(t) < 1e150:
        raise ArgumentError("--t", t, "a target with 1e-150 < |t| < 1e150")
    _figure_path(output, overwrite)
    data_path = output.with_suffix(".json")

    from trainlab.optim.compare import trace_paths_2d
    from trainlab.threads import limit_threads

    with limit_threads():
        result, runs = trace_paths_2d(values, t, names, steps, lr)
    ax = result.plot()
    ax.set_title(f"x = {x}, t = {t:g}")
    from trainlab.plotting import save_figure
    from trainlab.runs import output_errors

    with output_errors("--output", output):
        save_figure(ax.figure, output, {
            "x": result.x,
            "t": result.t,
            "w_star": result.w_star,
            "sign_interpolant": result.sign_interpolant,
            **result.paths,
        })
    rows = []
    for name, tr in runs.items():
        w = tr.final_params[0]
        diverged = bool(tr.diverged[0])
        rel = None if diverged else _number_or_null(float((w - result.w_star).norm() / result.w_star.norm()))
        rows.append({
            "name": name,
            "w_T": None if diverged else w.tolist(),
            "rel_dist_to_w_star": rel,
            "converged_at": int(tr.converged_at[0]) if bool(tr.converged[0]) else None,
            "diverged_at": int(tr.diverged_at[0]) if diverged else None,
            "steps_run": tr.steps_run,
        })
    if fmt == "json":
        _print_json({"x": values, "t": t, "w_star": result.w_star.tolist(),
                     "sign_interpolant": result.sign_interpolant.tolist(),
                     "figure": str(output), "data": str(data_path), "optimizers": rows})
        return
    from rich.table import Table

    from trainlab.console import stdout_console

    table = Table(
        "optimizer",
        "w_T",
        "‖w−w*‖/‖w*‖",
        "steps",
        title=f"x = {x}, t = {t:g}: w* = [{', '.join(f'{v:.4f}' for v in result.w_star.tolist())}]",
    )
    for row in rows:
        if row["diverged_at"] is not None:
            table.add_row(row["name"], "—", f"diverged at step {row['diverged_at']}", "—")
            continue
        table.add_row(
            row["name"],
            f"[{', '.join(f'{v:.4f}' for v in row['w_T'])}]",
            _fmt(row["rel_dist_to_w_star"], ".4f"),
            str(row["converged_at"]) if row["converged_at"] is not None else f">{row['steps_run']}",
        )
    console = stdout_console()
    console.print(table)
    console.print(f"wrote {output} and {data_path}")
