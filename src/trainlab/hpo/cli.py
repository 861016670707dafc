"""``trainlab hpo …``: hypergradients of a training run, and learning the learning rate."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from trainlab.cli_options import combine, format_option, seed_option
from trainlab.errors import ArgumentError
from trainlab.problem_options import ProblemChoice, problem_options, steps_range

__all__ = ["group"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def group() -> None:
    """§2 Gradient-based hyperparameter optimization: hypergradients through training."""


_problem_options = combine(
    problem_options(default="linreg", loss_flag="--criterion"),
    click.option("--batch-size", type=click.IntRange(min=1), default=None,
                 help="Examples per step, drawn once from --seed [default: full batch]."),
    seed_option(help="Seed for the problem and batches."),
    format_option(),
)
# the options both commands take, each with its own help
_OPTIMIZER = click.option("--optimizer", type=click.Choice(["sgd", "momentum", "adam"]), default="sgd",
                          show_default=True)


def _mode_option(help: str) -> Any:
    return click.option("--mode", type=click.Choice(["auto", "reverse", "checkpoint", "forward"]),
                        default="auto", show_default=True, help=help)


def _loss_option(help: str) -> Any:
    return click.option("--loss", "loss", type=click.Choice(["train", "valid"]), default="train",
                        show_default=True, help=help)


def _check_forward_schedule(mode: str, schedule: bool, steps: int, what: str) -> None:
    """Forward mode differentiates one step's rate per run: a per-step schedule costs T² work."""
    if mode == "forward" and schedule and steps > 200:
        raise ArgumentError(
            "--mode",
            mode,
            f"reverse or checkpoint for {what} beyond 200 steps "
            "(forward mode takes one run per step's rate: T² work)",
        )


def _positive_float(name: str, value: float | None) -> None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise ArgumentError(name, value, "a positive finite number")


def _unit(name: str, value: float | None) -> None:
    if value is not None and not (math.isfinite(value) and 0 <= value < 1):
        raise ArgumentError(name, value, "a number in [0, 1)")


def _parse_wrt(text: str) -> list[str]:
    from trainlab.hpo.unroll import HYPERPARAMETERS

    names = [w.strip() for w in text.split(",") if w.strip()]
    bad = [w for w in names if w not in HYPERPARAMETERS]
    if not names or bad:
        raise ArgumentError("--wrt", text, "comma-separated names among " + ", ".join(HYPERPARAMETERS))
    if len(set(names)) != len(names):
        raise ArgumentError("--wrt", text, "each hyperparameter named once")
    return names


def _check_batch(batch_size: int | None, prob: Any) -> None:
    """A batch larger than the training set is refused (it would silently run as the full batch)."""
    if batch_size is not None and batch_size > prob.num_examples:
        raise ArgumentError("--batch-size", batch_size, f"at most the problem's {prob.num_examples:,} "
                            "training examples (leave it out for full-batch GD)")


def _parse_betas(text: str) -> tuple[float, float]:
    try:
        b1, b2 = (float(v) for v in text.split(","))
    except ValueError:
        raise ArgumentError("--betas", text, "two numbers in [0, 1), e.g. 0.9,0.999") from None
    for name, v in (("--betas", b1), ("--betas", b2)):
        if not (math.isfinite(v) and 0 <= v < 1):
            raise ArgumentError(name, text, "two numbers in [0, 1), e.g. 0.9,0.999")
    return b1, b2


_FLAGS = {
    "lr": "--lr",
    "loss": "--loss",
    "steps": "--steps",
    "batch_size": "--batch-size",
    "weight_decay": "--weight-decay",
    "momentum": "--momentum",
    "betas[0]": "--betas",
    "betas[1]": "--betas",
    "beta1": "--betas",
    "beta2": "--betas",
    "segment": "--segment",
    "meta_steps": "--meta-steps",
    "meta_lr": "--meta-lr",
    "optimizer": "--optimizer",
    "hypergrad_lr": "--hypergrad-lr",
    "wrt": "--wrt",
}


@contextmanager
def _as_flags() -> Iterator[None]:
    """Library errors name Python parameters (``lr=``); on the command line they name the flag."""
    from trainlab.hpo.unroll import DivergenceError

    try:
        yield
    except DivergenceError as e:
        raise DivergenceError(e.step, e.loss, e.lr, e.bound, argument="--lr") from None
    except ArgumentError as e:
        if e.argument in _FLAGS:
            raise ArgumentError(_FLAGS[e.argument], e.value, e.valid) from None
        raise


def _echo_json(obj: dict[str, Any]) -> None:
    from trainlab.console import echo_json

    echo_json(obj)


def _fmt(v: float) -> str:
    return f"{v:.6g}"


@group.command("hypergrad")
@_problem_options
@click.option("--steps", type=steps_range(), required=True, help="Training steps T.")
@_mode_option("auto: reverse up to 100 steps, checkpoint beyond.")
@click.option("--wrt", default="lr", show_default=True,
              help="Comma-separated: lr, schedule (one rate per step), weight_decay, momentum, beta1, beta2.")
@click.option("--lr", type=float, required=True, help="Learning rate η.")
@_OPTIMIZER
@click.option("--momentum", type=float, default=None,
              help="Heavy-ball μ [default: 0.9 for momentum, 0 for sgd].")
@click.option("--weight-decay", type=float, default=0.0, show_default=True, help="L2 weight decay λ.")
@click.option("--betas", default="0.9,0.999", show_default=True, help="Adam's β₁,β₂.")
@_loss_option("Differentiate the training loss or the held-out loss after T steps.")
@click.option("--segment", type=click.IntRange(min=1), default=None,
              help="checkpoint: steps per segment [default: ⌈√T⌉].")
def hypergrad_cmd(
    choice: ProblemChoice,
    batch_size: int | None,
    seed: int,
    fmt: str,
    steps: int,
    mode: str,
    wrt: str,
    lr: float,
    optimizer: str,
    momentum: float | None,
    weight_decay: float,
    betas: str,
    loss: str,
    segment: int | None,
) -> None:
    """d(loss after T training steps)/d(hyperparameters), by differentiating through training.

    For linreg problems training starts at w₀ = 0 with full-batch GD on J(w) = (1/n)‖Xw − t‖².
    """
    _positive_float("--lr", lr)
    _unit("--momentum", momentum)
    if not (math.isfinite(weight_decay) and weight_decay >= 0):
        raise ArgumentError("--weight-decay", weight_decay, "a finite number >= 0")
    names = _parse_wrt(wrt)
    b = _parse_betas(betas)
    _check_forward_schedule(mode, "schedule" in names, steps, "--wrt schedule")
    if optimizer == "sgd" and "momentum" in names and momentum is None:
        momentum = 0.0
    from trainlab.hpo.hypergrad import hypergradient_of
    from trainlab.hpo.unroll import Unroll
    from trainlab.threads import limit_threads

    prob = choice.load(seed)
    _check_batch(batch_size, prob)
    hyper = {"lr": lr, "weight_decay": weight_decay, "beta1": b[0], "beta2": b[1]}
    if momentum is not None:
        hyper["momentum"] = momentum
    with _as_flags():
        unroll = Unroll(prob, steps, optimizer, hyper, loss, batch_size, seed)
    try:
        unroll.check_wrt(names, "--wrt")
    except ArgumentError as e:
        raise ArgumentError("--wrt", wrt, e.valid) from None
    chosen = mode if mode != "auto" else ("reverse" if steps <= 100 else "checkpoint")
    with limit_threads(1 if prob.num_params < 1_000_000 else 2), _as_flags():
        result = hypergradient_of(unroll, names, chosen, segment, measure="rss")
    out = result.to_json()
    if fmt == "json":
        _echo_json(out)
        return
    click.echo(
        f"problem {prob.name}  optimizer {optimizer}  lr {_fmt(lr)}  steps {steps}  mode {chosen}"
        + (f" (segment {result.segment})" if result.segment else "")
    )
    click.echo(f"{loss} loss after {steps} steps: {_fmt(result.loss)}")
    for k, v in result.hypergradient.items():
        if isinstance(v, list):
            head = ", ".join(_fmt(x) for x in v[:6]) + (", …" if len(v) > 6 else "")
            click.echo(f"  dL/d{k}: [{head}] (sum {_fmt(sum(v))})")
        else:
            click.echo(f"  dL/d{k}: {_fmt(v)}")
    mem = result.peak_memory_bytes
    click.echo(f"{result.seconds:.3f} s, peak extra memory {mem / 1e6:.1f} MB (RSS)")


@group.command("tune-lr")
@_problem_options
@click.option("--steps", type=steps_range(), required=True,
              help="Training steps T (the horizon whose final loss is minimised; online: steps trained).")
@click.option("--online", is_flag=True, help="Online hypergradient descent (SGD-HD / Adam-HD) instead.")
@click.option("--lr", type=float, default=None,
              help="Starting η [default: 1% of 2/λ_max where known, else 1e-3].")
@_OPTIMIZER
@_loss_option("Offline: the loss after T steps to minimise.")
@click.option("--meta-steps", type=click.IntRange(1, 10_000), default=60, show_default=True,
              help="Offline: hypergradient evaluations.")
@click.option("--meta-lr", type=float, default=0.2, show_default=True, help="Offline: first step in log η.")
@click.option("--schedule", is_flag=True, help="Offline: learn one rate per step instead of one rate.")
@click.option("--hypergrad-lr", type=float, default=0.02, show_default=True,
              help="Online: β of the (multiplicative) hypergradient update.")
@_mode_option("Offline: how hypergradients are taken.")
def tune_lr_cmd(
    choice: ProblemChoice,
    batch_size: int | None,
    seed: int,
    fmt: str,
    steps: int,
    online: bool,
    lr: float | None,
    optimizer: str,
    loss: str,
    meta_steps: int,
    meta_lr: float,
    schedule: bool,
    hypergrad_lr: float,
    mode: str,
) -> None:
    """Learn the learning rate: offline through the unrolled run, or online (--online)."""
    _positive_float("--lr", lr)
    _positive_float("--meta-lr", meta_lr)
    if not (math.isfinite(hypergrad_lr) and hypergrad_lr >= 0):
        raise ArgumentError("--hypergrad-lr", hypergrad_lr, "a finite number >= 0")
    _check_forward_schedule(mode, schedule, steps, "--schedule")
    if online and optimizer == "momentum":
        raise ArgumentError("--optimizer", optimizer, "sgd or adam with --online")
    if online and schedule:
        raise ArgumentError("--schedule", True, "offline tuning (drop --online)")
    from trainlab.hpo.tune import online_lr, tune_lr
    from trainlab.threads import limit_threads

    prob = choice.load(seed)
    _check_batch(batch_size, prob)
    with limit_threads(1 if prob.num_params < 1_000_000 else 2), _as_flags():
        if online:
            result = online_lr(
                prob,
                steps,
                lr=lr,
                hypergrad_lr=hypergrad_lr,
                optimizer=optimizer,
                batch_size=batch_size,
                seed=seed,
            )
        else:
            result = tune_lr(
                prob,
                steps,
                lr=lr,
                meta_steps=meta_steps,
                meta_lr=meta_lr,
                optimizer=optimizer,
                loss=loss,
                mode=None if mode == "auto" else mode,
                schedule=schedule,
                batch_size=batch_size,
                seed=seed,
            )
    if fmt == "json":
        _echo_json(result.to_json())
        return
    kind = "online hypergradient descent" if online else f"offline, {len(result.history)} meta-iterations"
    click.echo(f"problem {prob.name}  steps {steps}  {kind}")
    click.echo(f"lr {_fmt(result.start_lr)} -> {_fmt(result.lr)}")
    click.echo(f"loss {_fmt(result.start_loss)} -> {_fmt(result.loss)}")
    if result.schedule is not None:
        head = ", ".join(_fmt(x) for x in result.schedule[:6]) + (", …" if len(result.schedule) > 6 else "")
        click.echo(f"schedule [{head}]")
