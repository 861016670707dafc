"""``trainlab colourize …``: train, evaluate, colourise images, compare the three networks."""

from __future__ import annotations

import io
import sys
from dataclasses import asdict
from pathlib import Path

import click
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from trainlab.colourize.data import CIFAR10_CATEGORIES, read_image, to_grey
from trainlab.colourize.evaluate import Evaluation, colourise, evaluate
from trainlab.colourize.models import MODELS, count_parameters
from trainlab.colourize.train import (
    CHECKPOINT,
    CONFIG,
    TrainConfig,
    TrainEvent,
    TrainingInterrupted,
    TrainResult,
    load_run,
    load_training_data,
    train,
)
from trainlab.errors import ArgumentError
from trainlab.plotting import new_figure, save_figure
from trainlab.runs import atomic_write_bytes, atomic_write_json, make_run_dir, read_json

__all__ = ["group"]

_MODEL_NAMES = {"pool": "PoolUpsampleNet", "transpose": "ConvTransposeNet", "unet": "UNet"}


def _err() -> Console:
    return Console(stderr=True, highlight=False)


def _training_options(f):  # type: ignore[no-untyped-def]
    options = [
        click.option("--data", default="builtin", show_default=True,
                     help="builtin, cifar10:PATH (tar.gz or folder) or folder:PATH (images)."),
        click.option("--category", default="horse", show_default=True,
                     help="CIFAR-10 category: 0..9 or " + "/".join(CIFAR10_CATEGORIES) + "."),
        click.option("--patch-size", type=int, default=32, show_default=True,
                     help="Side of the square patches cut from photographs (builtin, folder)."),
        click.option("--epochs", type=int, default=25, show_default=True),
        click.option("--batch-size", type=int, default=100, show_default=True),
        click.option("--lr", type=float, default=1e-3, show_default=True, help="Adam learning rate."),
        click.option("--lr-schedule", type=click.Choice(["constant", "cosine"]), default="constant",
                     show_default=True, help="constant (the course) or cosine decay to 0."),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--kernel", type=int, default=3, show_default=True),
        click.option("--num-filters", type=int, default=32, show_default=True),
        click.option("--num-colours", type=int, default=24, show_default=True),
        click.option("--max-train", type=int, default=None, help="Use at most this many training images."),
        click.option("--max-valid", type=int, default=None, help="Use at most this many validation images."),
        click.option("--channels-last", is_flag=True, help="channels_last memory format (speed, float32)."),
        click.option("--compile", is_flag=True, help="torch.compile the network (speed, float32; "
                     "costs ~10-30 s of compilation first)."),
        click.option("--bf16", is_flag=True, help="bfloat16 autocast (speed; changes the numbers)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _config(model: str, **kw: object) -> TrainConfig:
    return TrainConfig(model=model, **kw)  # type: ignore[arg-type]


def _run_training(config: TrainConfig, out: Path, resume: bool, data: object = None) -> TrainResult:
    err = _err()
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("loss {task.fields[loss]:.3f}"), TimeElapsedColumn(),
                        console=err, transient=True)
    with progress:
        task = progress.add_task(f"{config.model} epoch 1/{config.epochs}", total=None, loss=float("nan"))

        def on_event(e: TrainEvent) -> None:
            progress.update(task, description=f"{config.model} epoch {e.epoch}/{e.epochs}",
                            completed=e.step, total=e.steps, loss=e.loss)
            if e.metrics is not None:
                m = e.metrics
                progress.console.print(
                    f"{config.model} epoch {m.epoch}/{e.epochs}: train loss {m.train_loss:.4f}, "
                    f"valid loss {m.valid_loss:.4f}, valid accuracy {100 * m.valid_accuracy:.2f}%, "
                    f"{m.images_per_second:.0f} images/s")

        try:
            return train(config, data, out, resume=resume, progress=on_event)  # type: ignore[arg-type]
        except TrainingInterrupted as e:
            progress.stop()
            where = f"checkpoint saved in {e.checkpoint}" if e.checkpoint else "nothing saved"
            err.print(f"interrupted at epoch {e.epoch}, after step {e.step}: {where}; "
                      f"continue with `trainlab colourize train ... --out {out} --resume`")
            sys.exit(130)


def _evaluation_table(title: str, evaluation: Evaluation) -> Table:
    table = Table("predictor", "valid accuracy", "valid loss", title=title)
    b = evaluation.baselines
    table.add_row("baseline: majority", f"{100 * b.majority_accuracy:.2f}%", f"{b.majority_loss:.4f}")
    table.add_row("baseline: grey level", f"{100 * b.grey_level_accuracy:.2f}%",
                  f"{b.grey_level_loss:.4f}")
    table.add_row("[bold]model[/]", f"[bold]{100 * evaluation.accuracy:.2f}%[/]", f"{evaluation.loss:.4f}")
    return table


@click.group(help="Colourization (the programming assignment): train, eval, predict, compare.")
def group() -> None:
    pass


@group.command("train")
@click.option("--model", default="unet", show_default=True, help="pool, transpose or unet.")
@_training_options
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Run folder [default: runs/colourize-<model>-<UTC time>].")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint.")
def train_cmd(model: str, out: Path | None, resume: bool, **kw: object) -> None:
    """Train a colourization network; writes checkpoints, metrics, figures into a run folder.

    With --resume, the run in --out continues from its checkpoint under its saved config;
    options given on the command line must agree with it (except --epochs, which may grow).
    """
    if resume:
        if out is None:
            raise ArgumentError("--resume", True, "together with --out RUN (the run to continue)")
        saved = (out / CONFIG)
        if not saved.is_file():
            raise ArgumentError("--out", str(out), f"a run folder holding {CONFIG} to resume")
        ctx = click.get_current_context()
        given = {k: v for k, v in {"model": model, **kw}.items()
                 if ctx.get_parameter_source(k) is click.core.ParameterSource.COMMANDLINE}
        config = TrainConfig.from_dict({**read_json(saved), **given})
    else:
        if out is not None and (out / CHECKPOINT).is_file():
            # Never overwrite a run silently: its checkpoint may be hours of training.
            raise ArgumentError("--out", str(out), "a folder without a training run (this one holds "
                                f"{CHECKPOINT}: add --resume to continue it, or choose another --out)")
        config = _config(model, **kw)
    data = load_training_data(config)  # bad data fails before a run folder is made
    run = make_run_dir(out, f"colourize-{config.model}")
    result = _run_training(config, run, resume, data)
    Console(highlight=False).print(_evaluation_table(
        f"{_MODEL_NAMES[config.model]} ({count_parameters(result.model):,} parameters) on {config.data}",
        result.evaluation))
    click.echo(f"run folder: {run}")


@group.command("eval")
@click.argument("run", type=click.Path(path_type=Path))
def eval_cmd(run: Path) -> None:
    """Validation loss, accuracy and baselines of the last checkpoint of RUN."""
    config, model, palette, _ = load_run(run)
    data = load_training_data(config)
    evaluation = evaluate(model, palette, data.train, data.valid)
    atomic_write_json(run / "eval.json", evaluation.as_dict())
    fig, ax = new_figure(size=(5, 3.6))
    evaluation.plot(ax)
    save_figure(fig, run / "eval.png", evaluation.as_dict())
    Console(highlight=False).print(_evaluation_table(f"{_MODEL_NAMES[config.model]} on {config.data}",
                                                     evaluation))
    click.echo(f"PSNR {evaluation.psnr_prediction:.2f} dB (grey {evaluation.psnr_grey:.2f}, "
               f"quantised truth {evaluation.psnr_quantised:.2f}); wrote {run / 'eval.json'}")


@group.command("predict")
@click.argument("run", type=click.Path(path_type=Path))
@click.argument("image", type=click.Path(path_type=Path))
@click.option("-o", "--output", "output", type=click.Path(path_type=Path), required=True,
              help="Where to write the colourised PNG.")
def predict_cmd(run: Path, image: Path, output: Path) -> None:
    """Colourise IMAGE (any size; it is made grey first) with the network of RUN."""
    from PIL import Image

    _, model, palette, _ = load_run(run)
    rgb = read_image(image)
    coloured = colourise(model, palette, to_grey(rgb[None]))[0]  # (3, H, W)
    pixels = (coloured.permute(1, 2, 0).numpy() * 256).clip(0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    atomic_write_bytes(output, buf.getvalue())
    click.echo(f"wrote {output} ({pixels.shape[1]}×{pixels.shape[0]})")


@group.command("compare")
@_training_options
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Folder for the three runs [default: runs/colourize-compare-<UTC time>].")
def compare_cmd(out: Path | None, **kw: object) -> None:
    """Train all three networks on the same data and budget; table and figure."""
    configs = [_config(m, **kw) for m in MODELS]
    data = load_training_data(configs[0])
    root = make_run_dir(out, "colourize-compare")
    results = [_run_training(c, root / c.model, False, data) for c in configs]
    table = Table("network", "parameters", "valid accuracy", "valid loss", "PSNR (dB)",
                  title=f"same data ({configs[0].data}), {configs[0].epochs} epochs, seed {configs[0].seed}")
    for r in results:
        table.add_row(_MODEL_NAMES[r.config.model], f"{count_parameters(r.model):,}",
                      f"{100 * r.evaluation.accuracy:.2f}%", f"{r.evaluation.loss:.4f}",
                      f"{r.evaluation.psnr_prediction:.2f}")
    b = results[0].evaluation.baselines
    table.add_row("baseline: majority", "0", f"{100 * b.majority_accuracy:.2f}%",
                  f"{b.majority_loss:.4f}", "")
    table.add_row("baseline: grey level", "0", f"{100 * b.grey_level_accuracy:.2f}%",
                  f"{b.grey_level_loss:.4f}", "")
    Console(highlight=False).print(table)
    fig, axes = new_figure(1, 2, size=(10, 3.6))
    for r in results:
        epochs = [m.epoch for m in r.history]
        axes[0].plot(epochs, [100 * m.valid_accuracy for m in r.history], "o-", ms=3,
                     label=_MODEL_NAMES[r.config.model])
        axes[1].plot(epochs, [m.valid_loss for m in r.history], "o-", ms=3,
                     label=_MODEL_NAMES[r.config.model])
    axes[0].axhline(100 * b.grey_level_accuracy, color="#888", ls="--", label="best colour per grey level")
    axes[0].set_ylabel("validation pixel accuracy (%)")
    axes[1].set_ylabel("validation cross-entropy")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    summary = {r.config.model: {"evaluation": r.evaluation.as_dict(),
                                "history": [asdict(m) for m in r.history]} for r in results}
    save_figure(fig, root / "compare.png", summary)
    atomic_write_json(root / "compare.json", summary)
    click.echo(f"wrote {root / 'compare.png'} and {root / 'compare.json'}")
