"""``trainlab scaling …``: noise scale, steps-to-target sweeps, their fits, the noisy quadratic model."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import click

from trainlab.cli_options import FigureFile, combine, format_option, seed_option
from trainlab.errors import ArgumentError, DataError
from trainlab.memory import require_memory
from trainlab.problem_options import ProblemChoice, finite, problem_options, steps_range

__all__ = ["group"]

_FORMAT = format_option()


class _NumberList(click.ParamType):
    """Comma-separated numbers: ``1,2,4`` (ints) or ``0.2,0.1`` (floats), each positive."""

    def __init__(self, kind: type, what: str):
        self.kind, self.what = kind, what
        self.name = f"{kind.__name__} list"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, tuple):
            return value
        name = f"--{param.name.replace('_', '-')}" if param is not None and param.name else "value"
        try:
            items = tuple(self.kind(v) for v in str(value).split(",") if v.strip())
        except ValueError:
            raise ArgumentError(name, value, self.what) from None
        if not items or any(not (v > 0 and math.isfinite(v)) for v in items):
            raise ArgumentError(name, value, self.what)
        if self.kind is int and any(v >= 2**63 for v in items):  # seeds and sizes: 64-bit
            raise ArgumentError(name, value, self.what + ", each below 2^63")
        return items


_INTS = _NumberList(int, "comma-separated positive integers, e.g. 1,2,4,8")
_FLOATS = _NumberList(float, "comma-separated positive numbers, e.g. 0.2,0.1")


_problem_options = combine(
    problem_options(default="digits-mlp", sizes=False),
    click.option("--width", type=click.IntRange(min=1), default=None,
                 help="Hidden width of digits-mlp (64-WIDTH-10; default 64)."),
)


def _check_width(width: int | None) -> None:
    """Refuse a digits-mlp width whose network alone would not fit: 64·w + w + 10·w + 10 float32
    parameters, kept with their gradient, two optimizer moments and a few per-step copies (×8)."""
    if width is not None:
        require_memory("--width", width, 8 * 4 * (75 * width + 10))


def _load(choice: ProblemChoice, width: int | None, seed: int) -> Any:
    from trainlab.scaling.sweep import SweepConfig, resolve_problem

    choice.refuse_unused(spec=False)  # --data/--loss beside a built-in problem would be ignored
    _check_width(width)
    return resolve_problem(SweepConfig(problem=choice.spec, width=width, data=choice.data, loss=choice.loss,
                                       data_seed=seed))


def _one_example_at_a_time(p: Any, problem: str) -> None:
    """Per-example gradients (vmap) and stacked training treat each example or run on its own: a model
    with batch statistics (batch norm's buffers) or dropout cannot be run that way. Refused up front
    (they ended in exit 3 from inside torch.func, and a sweep left its folder behind)."""
    from torch import nn

    if any(True for _ in p.model.buffers()):
        raise ArgumentError("--problem", problem, "a model without buffers such as batch norm's statistics "
                            "(per-example gradients and stacked runs see one example or run at a time; "
                            "noise-scale --method two-batch takes batch gradients)")
    if any(isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0 for m in p.model.modules()):
        raise ArgumentError("--problem", problem, "a model without dropout (per-example gradients are taken "
                            "with torch.func.vmap, which draws no random masks; noise-scale --method "
                            "two-batch takes batch gradients)")


_FIGURE = FigureFile("--figure", not_png="a .png path (the figure's data is written beside it as .json)")
_OVERWRITE = _FIGURE.overwrite_option()


def _echo_json(obj: Any) -> None:
    from trainlab.runs import to_jsonable

    click.echo(json.dumps(to_jsonable(obj), allow_nan=False))


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.table import Table

    from trainlab.console import stdout_console

    t = Table(title=title)
    for c in columns:
        t.add_column(c, justify="right")
    for r in rows:
        t.add_row(*[_fmt(v) for v in r])
    stdout_console().print(t)


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        if math.isinf(v):
            return "not reached"
        if abs(v) >= 1000 and abs(v) < 1e15:
            return f"{v:,.0f}"
        return f"{v:.4g}"
    return str(v)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def group() -> None:
    """§4 Trading off resources: noise scale, batch-size sweeps, critical batch size, model size."""


@group.command("noise-scale")
@_problem_options
@click.option("--at", "at", type=click.Choice(["init", "trained"]), default="init", show_default=True,
              help="Measure at the starting point, or after --steps of SGD.")
@click.option("--method", type=click.Choice(["auto", "exact", "two-batch", "hessian"]), default="auto",
              show_default=True,
              help="exact: per-example gradients (vmap); two-batch: McCandlish's estimator; auto: exact "
                   "when the per-example gradients fit in memory; hessian: B_noise = tr(HΣ)/GᵀHG with "
                   "Hessian-vector products (trace_cov is then tr(HΣ)).")
@click.option("--steps", type=steps_range(), default=300, show_default=True,
              help="SGD steps before measuring, with --at trained.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=0.1, show_default=True,
              callback=finite("a learning rate"))
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--b-small", type=click.IntRange(min=1), default=8, show_default=True,
              help="Two-batch estimator: small batch.")
@click.option("--b-big", type=click.IntRange(min=2), default=128, show_default=True,
              help="Two-batch estimator: big batch.")
@click.option("--num-batches", type=steps_range(), default=200, show_default=True,
              help="Two-batch estimator: pairs averaged.")
@seed_option()
@click.option("--figure", default=None, help="PNG: B_simple at checkpoints of the training (--at trained).")
@_OVERWRITE
@_FORMAT
def noise_scale_cmd(choice: ProblemChoice, width: int | None, at: str, method: str,
                    steps: int, lr: float, batch_size: int, b_small: int, b_big: int, num_batches: int,
                    seed: int, figure: str | None, overwrite: bool, fmt: str) -> None:
    """Gradient noise scale B_simple = tr(Σ)/|G|² (McCandlish et al. 2018) of a problem.

    Σ is the per-example gradient covariance over the training set and G the full-batch gradient.
    JSON: {"b_simple", "grad_norm_sq", "trace_cov", "method", ...}.
    """
    import torch

    from trainlab.memory import require_memory
    from trainlab.scaling.noise_scale import (
        TwoBatchEstimator,
        exact_noise_scale,
        hessian_noise_scale,
        noise_scale_trajectory,
    )
    from trainlab.seeding import generator
    from trainlab.threads import limit_threads

    if b_small >= b_big:
        raise ArgumentError("--b-small", b_small, f"a batch smaller than --b-big ({b_big})")
    fig_path = _FIGURE.check(figure, overwrite)
    problem = choice.spec
    p = _load(choice, width, seed)
    params = p.params()
    per_example_bytes = float(p.num_examples) * p.num_params * 4
    if method == "auto":
        method = "exact" if per_example_bytes <= 2e9 else "two-batch"
    # A batch larger than the training set would silently be the full batch (sample_batch), so the
    # two-batch estimator's B_big, or the training's batch, would not be what was asked for.
    for flag, size, used in (("--b-big", b_big, method == "two-batch"),
                             ("--batch-size", batch_size, at == "trained")):
        if used and size > p.num_examples:
            raise ArgumentError(flag, size, f"a batch of at most the {p.num_examples} training examples of "
                                            f"{problem}")
    if method != "two-batch":  # two-batch takes ordinary batch gradients
        _one_example_at_a_time(p, problem)
    if method == "exact":
        chunk = max(1, min(p.num_examples, int(256e6 // (4 * p.num_params))))  # exact_noise_scale's default
        require_memory("--method", "exact", 3.0 * chunk * p.num_params * 8)
    traj = None
    with limit_threads(1):
        if at == "trained":
            marks = sorted({0, *[int(round(steps * f)) for f in (0.1, 0.25, 0.5, 0.75)], steps})
            if fig_path is not None and method == "exact":
                traj = noise_scale_trajectory(p, params, lr=lr, batch_size=batch_size, checkpoints=marks,
                                              gen=generator(seed, "noise-scale-train"))
            params = _train_sgd(p, params, lr, batch_size, steps, generator(seed, "noise-scale-train"))
        if method == "exact":
            result = exact_noise_scale(p, params)
        elif method == "hessian":
            result = hessian_noise_scale(p, params, max_examples=512, gen=generator(seed, "hessian"))
        else:
            est = TwoBatchEstimator(b_small, b_big)
            hook = est.callback(p, generator(seed, "two-batch"))
            for _ in range(num_batches):
                hook(params)
            result = est.result()
    loss_value = float(p.loss(params, p.x, p.y).detach()) if isinstance(p.x, torch.Tensor) else math.nan
    out = {**result.as_dict(), "problem": problem, "at": at, "loss": loss_value,
           "num_params": p.num_params}
    if result.method == "two-batch":
        out.update(b_small=b_small, b_big=b_big, num_batches=num_batches)
    if fig_path is not None:
        from trainlab.plotting import new_figure

        fig, ax = new_figure()
        if traj is not None:
            traj.plot(ax)
            data_out = {"steps": traj.steps, "b_simple": traj.b_simple, "loss": traj.loss}
        else:
            ax.bar(["|G|²", "tr Σ / B_simple"],
                   [result.grad_norm_sq, result.trace_cov / max(result.b_simple, 1e-30)])
            ax.set_title(f"B_simple = {result.b_simple:.4g} ({result.method})", fontsize=9)
            data_out = result.as_dict()
        _FIGURE.write(fig, fig_path, data_out)
    if fmt == "json":
        _echo_json(out)
        return
    _table(f"gradient noise scale of {problem} ({at})", ["quantity", "value"],
           [["B_simple = tr Σ / |G|²", result.b_simple], ["|G|²", result.grad_norm_sq],
            ["tr Σ", result.trace_cov], ["method", result.method], ["training loss", loss_value],
            ["examples", result.num_examples if result.method == "exact" else p.num_examples]])


def _train_sgd(p: Any, params: dict[str, Any], lr: float, batch_size: int, steps: int,
               gen: Any) -> dict[str, Any]:
    import torch

    for _ in range(steps):
        xb, yb = p.sample_batch(batch_size, gen)
        g = torch.func.grad(lambda q, xb=xb, yb=yb: p.loss(q, xb, yb))(params)
        params = {k: params[k] - lr * g[k] for k in params}
    return params


@group.command("sweep")
@_problem_options
@click.option("--batch-sizes", type=_INTS, default="2,4,8,16,32,64,128,256", show_default=True,
              help="Batch sizes (powers of 2 recommended).")
@click.option("--lr-min", type=click.FloatRange(min=0, min_open=True), default=0.05, show_default=True,
              callback=finite("a learning rate"),
              help="Smallest learning rate of the √2 grid.")
@click.option("--lr-max", type=click.FloatRange(min=0, min_open=True), default=0.8, show_default=True,
              callback=finite("a learning rate"),
              help="Largest learning rate of the √2 grid (extended automatically at an edge).")
@click.option("--seeds", type=_INTS, default="1,2,3", show_default=True,
              help="Run seeds (init and batch order).")
@click.option("--targets", type=_FLOATS, default="0.2,0.1", show_default=True, help="Target training losses.")
@click.option("--max-steps", type=steps_range(), default=20_000, show_default=True)
@click.option("--optimizer", type=click.Choice(["sgd", "momentum", "adam"]), default="sgd", show_default=True)
@click.option("--momentum", type=click.FloatRange(0, 1, max_open=True), default=0.9, show_default=True,
              callback=finite("a momentum"))
@click.option("--adaptive-grid", is_flag=True,
              help="Start each batch size at the window above the smaller one's best LR (sequential).")
@click.option("--max-extensions", type=click.IntRange(min=0), default=4, show_default=True)
@seed_option("--data-seed", help="Train/valid split of the data.")
@click.option("--executor", default="local", show_default=True,
              help="local (process pool), ray (`pip install 'trainlab[ray]'`) or inline (this process).")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Worker processes (default: CPUs).")
@click.option("--address", default=None, help="Ray cluster address (with --executor ray).")
@click.option("--out", default=None, help="Run folder (default runs/scaling-sweep-<time>).")
@click.option("--resume", is_flag=True, help="Continue the sweep in --out (finished points are skipped).")
@click.option("--overwrite", is_flag=True, help="Replace the run in --out.")
@_FORMAT
def sweep_cmd(choice: ProblemChoice, width: int | None,
              batch_sizes: tuple[int, ...], lr_min: float, lr_max: float, seeds: tuple[int, ...],
              targets: tuple[float, ...], max_steps: int,
              optimizer: str, momentum: float, adaptive_grid: bool, max_extensions: int, data_seed: int,
              executor: str, workers: int | None, address: str | None, out: str | None, resume: bool,
              overwrite: bool, fmt: str) -> None:
    """Steps to each target loss for batch sizes × a √2 learning-rate grid × seeds.

    Points are appended to RUN/points.jsonl as they finish; --resume skips finished ones.
    Then the fit (as `trainlab scaling fit RUN`) is printed and its figures written.
    """
    from trainlab.runs import prepare_run_dir
    from trainlab.scaling.executors import make_executor
    from trainlab.scaling.sweep import SweepConfig, run_sweep

    if executor not in ("local", "ray", "inline"):
        raise ArgumentError("--executor", executor, "one of: local, ray, inline")
    if lr_max >= lr_min and not lr_max / lr_min <= 2.0**100:
        raise ArgumentError("--lr-max", lr_max, f"at most 2^100 times --lr-min = {lr_min:g} (a √2 grid of at "
                            "most 201 rates)")
    if len(set(seeds)) != len(seeds):  # the intervals would count one run as several
        twice = sorted({s for s in seeds if seeds.count(s) > 1})
        raise ArgumentError("--seeds", ",".join(map(str, seeds)),
                            f"distinct seeds ({', '.join(map(str, twice))} named more than once)")
    k_max = math.floor(2 * math.log2(lr_max / lr_min) + 1e-9) if lr_max >= lr_min else -1
    problem = choice.spec
    config = SweepConfig(problem=problem, batch_sizes=tuple(sorted(set(batch_sizes))), lr_base=lr_min,
                         lr_indices=tuple(range(k_max + 1)), seeds=tuple(dict.fromkeys(seeds)),
                         targets=tuple(sorted(set(targets), reverse=True)), max_steps=max_steps,
                         optimizer=optimizer, momentum=momentum, width=width, data=choice.data,
                         loss=choice.loss, data_seed=data_seed, max_extensions=max_extensions,
                         adaptive_grid=adaptive_grid)
    loaded = _load(choice, width, data_seed)  # a bad problem fails before the folder is made
    _one_example_at_a_time(loaded, problem)
    too_big = [b for b in config.batch_sizes if b > loaded.num_examples]
    if too_big:  # they would all run as the same full batch, while the table counted B examples a step
        raise ArgumentError("--batch-sizes", ",".join(map(str, batch_sizes)),
                            f"batch sizes of at most the {loaded.num_examples} training examples "
                            f"({', '.join(map(str, too_big))} would be the full batch)")
    ex = make_executor(executor, workers=workers, address=address)  # after the checks: ray starts a cluster
    run_dir = prepare_run_dir(out, "scaling-sweep", resume=resume, overwrite=overwrite)
    from trainlab.console import progress_bar

    try:
        with progress_bar() as bar:
            task = bar.add_task("sweep", total=None)
            run_sweep(config, run_dir, ex,
                      progress=lambda done, total: bar.update(task, completed=done, total=total))
        _fit_and_report(run_dir, None, 1000, fmt)
    except KeyboardInterrupt:  # Ctrl-C or `kill`: the finished points stay, --resume goes on from them
        from trainlab.scaling.sweep import interrupted_message

        click.echo(interrupted_message(run_dir), err=True)
        raise SystemExit(130) from None
    finally:
        if hasattr(ex, "shutdown"):
            ex.shutdown()


#: Each resample refits the curves in Python (about a millisecond): 100,000 take minutes, and a 90%
#: interval's Monte-Carlo error is already well below its width at 10,000.
MAX_BOOTSTRAP = 100_000


def _check_bootstrap(value: int) -> int:
    if value > MAX_BOOTSTRAP:
        raise ArgumentError("--bootstrap", value, f"at most {MAX_BOOTSTRAP:,} resamples (each refits the "
                            "curves, about a millisecond; 10,000 already pin a 90% interval)")
    return value


@group.command("fit")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--target", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Which target loss to fit (default: every target).")
@click.option("--bootstrap", type=click.IntRange(min=10), default=1000, show_default=True,
              callback=lambda ctx, param, value: _check_bootstrap(value),
              help=f"Bootstrap resamples over seeds (10 to {MAX_BOOTSTRAP:,}).")
@_FORMAT
def fit_cmd(run: Path, target: float | None, bootstrap: int, fmt: str) -> None:
    """Fit S(B) = S_min(1 + B_crit/B) and ε_opt(B) = ε_max/(1 + B_noise/B) to a sweep in RUN."""
    _fit_and_report(run, target, bootstrap, fmt)


def _fit_and_report(run: Path, target: float | None, bootstrap: int, fmt: str) -> None:
    import numpy as np

    from trainlab.plotting import new_figure
    from trainlab.runs import atomic_write_json, output_errors
    from trainlab.scaling.fit import fit_sweep
    from trainlab.scaling.sweep import load_sweep

    config, store = load_sweep(run)
    targets = config.sorted_targets
    if target is not None and target not in targets:
        raise ArgumentError("--target", target,
                            "one of the sweep's targets: " + ", ".join(f"{t:g}" for t in targets))
    chosen = [target] if target is not None else targets
    records = list(store.records.values())
    if not records:
        raise DataError(f"{run}: the sweep has no finished point yet (continue it with "
                        f"`trainlab scaling sweep --out {run} --resume`)")
    fits = []
    for t in chosen:
        f = fit_sweep(records, config.seeds, targets, targets.index(t), num_resamples=bootstrap,
                      rng=np.random.default_rng(0))
        fits.append(f)
        with output_errors("RUN", run):
            fig, ax = new_figure()
            f.plot(ax)
            from trainlab.plotting import save_figure

            save_figure(fig, run / f"steps-vs-batch-{t:g}.png", f.as_dict())
            fig, ax = new_figure()
            f.plot_lr(ax)
            save_figure(fig, run / f"best-lr-vs-batch-{t:g}.png", f.as_dict())
            fig, ax = new_figure()
            f.plot_tradeoff(ax)
            save_figure(fig, run / f"time-vs-compute-{t:g}.png", f.as_dict())
    result = {"run": str(run), "points": len(records), "optimizer": config.optimizer,
              "lr_protocol": config.lr_protocol, "fits": [f.as_dict() for f in fits]}
    with output_errors("RUN", run):
        atomic_write_json(run / "fit.json", result)
    if fmt == "json":
        _echo_json(result)
        return
    for f in fits:
        rows = [[B, lr, s, B * s if math.isfinite(s) else math.inf]
                for B, lr, s in zip(f.batch_sizes, f.best_lr, f.best_steps, strict=True)]
        _table(f"steps to loss ≤ {f.target:g} ({config.optimizer}, {len(config.seeds)} seeds, "
               f"{len(records)} points)",
               ["batch size", "best LR", "steps", "examples"], rows)
        c = f.critical
        click.echo(f"S_min {c.s_min:.4g}  E_min {c.e_min:.4g}  B_crit {c.b_crit:.4g} "
                   f"(90% bootstrap [{f.b_crit_interval[0]:.4g}, {f.b_crit_interval[1]:.4g}]), "
                   f"worst point off the fit by {c.max_rel_err:.1%}; LR law ε_max {f.lr_law.lr_max:.4g}, "
                   f"B_noise {f.lr_law.b_noise:.4g}")
    click.echo(f"LR protocol: {config.lr_protocol}. Figures and fit.json in {run}")


@group.command("nqm")
@click.option("--dim", type=click.IntRange(min=1, max=10_000), default=100, show_default=True,
              help="Dimensions (curvatures h_i = 1/i); the time grows with it (about 20 s per 1,000 "
                   "on one core, so at most 10,000).")
@click.option("--batch-sizes", type=_FLOATS, default="1,4,16,64,256,1024,4096", show_default=True)
@click.option("--target-fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.01,
              show_default=True, help="Target expected loss as a fraction of the initial loss.",
              callback=finite("a fraction"))
@click.option("--figure", default=None, help="PNG of steps vs batch size per optimizer.")
@_OVERWRITE
@_FORMAT
def nqm_cmd(dim: int, batch_sizes: tuple[float, ...], target_fraction: float, figure: str | None,
            overwrite: bool, fmt: str) -> None:
    """Exact steps to target in the noisy quadratic model (Zhang et al. 2019): SGD, momentum, H^-1/2."""
    from trainlab.scaling.fit import fit_critical_batch
    from trainlab.scaling.nqm import NQM, nqm_batch_sweep

    fig_path = _FIGURE.check(figure, overwrite)
    nqm = NQM.harmonic(dim)
    target = target_fraction * nqm.initial_loss()
    sizes = sorted(set(batch_sizes))
    sw = nqm_batch_sweep(nqm, sizes, target)
    crit = {k: fit_critical_batch(sizes, v) for k, v in sw.steps.items()}
    out = {"dim": dim, "target": target, "batch_sizes": sizes, "steps": sw.steps, "best_lr": sw.best_lr,
           "best_momentum": sw.best_momentum, "b_crit": {k: c.b_crit for k, c in crit.items()},
           "s_min": {k: c.s_min for k, c in crit.items()}, "b_simple_at_start": nqm.b_simple(),
           "b_noise_at_start": nqm.b_noise()}
    if fig_path is not None:
        from trainlab.plotting import new_figure

        fig, ax = new_figure()
        sw.plot(ax)
        _FIGURE.write(fig, fig_path, out)
    if fmt == "json":
        _echo_json(out)
        return
    names = list(sw.steps)
    _table(f"noisy quadratic model, d={dim}: exact steps to E[L] ≤ {target:.4g}", ["batch size", *names],
           [[b, *[sw.steps[n][i] for n in names]] for i, b in enumerate(sizes)])
    click.echo("B_crit: " + ", ".join(f"{n} {crit[n].b_crit:.4g}" for n in names)
               + f"; B_simple at the start {nqm.b_simple():.4g}, B_noise {nqm.b_noise():.4g}")
