"""``trainlab colourize …``: train, evaluate, colourise images, compare the three networks."""

from __future__ import annotations

import io
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path

import click
import numpy as np
from rich.table import Table

from trainlab.colourize.data import CIFAR10_CATEGORIES, read_image, to_grey
from trainlab.colourize.evaluate import Evaluation, colourise, colourise_bytes, evaluate
from trainlab.colourize.models import MODELS, count_parameters
from trainlab.colourize.palette import Palette, fit_palette
from trainlab.colourize.train import (
    CHECKPOINT,
    CONFIG,
    DEVICES,
    PALETTE,
    PRECISIONS,
    TrainConfig,
    TrainEvent,
    TrainingInterrupted,
    TrainResult,
    estimate_training_bytes,
    load_run,
    load_training_data,
    resolve_device,
    train,
)
from trainlab.console import stderr_console, stdout_console
from trainlab.errors import ArgumentError
from trainlab.memory import require_memory
from trainlab.plotting import new_figure, save_figure
from trainlab.runs import (
    RUN_MARKER,
    atomic_write_bytes,
    atomic_write_json,
    check_output_file,
    check_run_dir,
    output_errors,
    prepare_run_dir,
    read_json,
)

__all__ = ["COURSE_PROTOCOL", "COURSE_RESULTS", "group"]

_MODEL_NAMES = {"pool": "PoolUpsampleNet", "transpose": "ConvTransposeNet", "unet": "UNet"}

#: The handout's settings (``--protocol course``): whole 32×32 images, kernel 3, 32 filters,
#: 24 colours, batch 100, Adam with a constant lr 1e-3, 25 epochs.
COURSE_PROTOCOL = {"patch_size": 32, "kernel": 3, "num_filters": 32, "num_colours": 24, "batch_size": 100,
                   "lr": 1e-3, "lr_schedule": "constant", "epochs": 25}
#: Validation accuracy the course reports for its protocol on CIFAR-10 horses (low, high), %.
COURSE_RESULTS = {"pool": (41.1, 41.4), "transpose": (54.7, 55.4), "unet": (58.3, 58.9)}

#: trainlab's defaults for ``train`` and ``compare`` where they differ from the course's.
_DEFAULTS = {"patch_size": 32, "kernel": 3, "num_filters": 32, "num_colours": 24, "batch_size": 50,
             "lr": 2e-3, "lr_schedule": "cosine", "epochs": 25}


def _training_options(f):  # type: ignore[no-untyped-def]
    def d(name: str) -> str:
        return f"{_DEFAULTS[name]} ({COURSE_PROTOCOL[name]} under --protocol course)"

    options = [
        click.option("--data", default="builtin", show_default=True,
                     help="builtin, cifar10:PATH (tar.gz or folder) or folder:PATH (images)."),
        click.option("--category", default="horse", show_default=True,
                     help="CIFAR-10 category: 0..9 or " + "/".join(CIFAR10_CATEGORIES) + "."),
        click.option("--protocol", type=click.Choice(["trainlab", "course"]), default="trainlab",
                     show_default=True, help="course: the handout's settings (32×32, kernel 3, 32 filters, "
                     "24 colours, batch 100, Adam lr 1e-3 constant, 25 epochs); options given explicitly "
                     "still win."),
        click.option("--patch-size", type=click.IntRange(4, 4096), default=None,
                     help=f"Side of the square patches cut from photographs [default: {d('patch_size')}]."),
        click.option("--num-crops", type=click.IntRange(1, 10_000_000), default=4000, show_default=True,
                     help="Random training crops drawn from the built-in photographs."),
        click.option("--epochs", type=click.IntRange(1, 100_000), default=None,
                     help=f"[default: {d('epochs')}]"),
        click.option("--batch-size", type=click.IntRange(1, 10_000_000), default=None,
                     help=f"[default: {d('batch_size')}]"),
        click.option("--lr", type=click.FloatRange(0, None, min_open=True), default=None,
                     help=f"Adam learning rate [default: {d('lr')}]."),
        click.option("--lr-schedule", type=click.Choice(["constant", "cosine"]), default=None,
                     help=f"constant or cosine decay to 0 [default: {d('lr_schedule')}]."),
        click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True),
        click.option("--kernel", type=int, default=None, help=f"[default: {d('kernel')}]"),
        click.option("--num-filters", type=click.IntRange(1, 10_000_000), default=None,
                     help=f"[default: {d('num_filters')}]"),
        click.option("--num-colours", type=click.IntRange(2, 10_000_000), default=None,
                     help=f"[default: {d('num_colours')}]"),
        click.option("--max-train", type=click.IntRange(1, None), default=None,
                     help="Use at most this many training images."),
        click.option("--max-valid", type=click.IntRange(1, None), default=None,
                     help="Use at most this many validation images."),
        click.option("--device", default="auto", show_default=True,
                     help="auto (a GPU when present), " + ", ".join(DEVICES[1:]) + " or cuda:N."),
        click.option("--precision", type=click.Choice(PRECISIONS), default="auto", show_default=True,
                     help="auto (bf16 where the device runs it natively: recent Intel/AMD CPUs, NVIDIA "
                     "Ampere+; else fp32), fp32, or bf16/fp16 autocast (fp16 with a gradient scaler)."),
        click.option("--channels-last", is_flag=True, help="channels_last memory format (speed, float32)."),
        click.option("--compile", is_flag=True, help="torch.compile the network (CUDA graphs on a GPU; "
                     "costs ~10-30 s of compilation first)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _config(model: str, protocol: str = "trainlab", **kw: object) -> TrainConfig:
    """A config from the options: the protocol's values for options not given."""
    base = COURSE_PROTOCOL if protocol == "course" else _DEFAULTS
    values = {k: (base[k] if v is None and k in base else v) for k, v in kw.items()}
    return TrainConfig(model=model, **values)  # type: ignore[arg-type]


def _check_memory(config: TrainConfig, num_train: int | None = None, num_valid: int | None = None,
                  source: Path | None = None) -> None:
    """Refuse a run whose estimated memory does not fit, naming the option that makes it large (or,
    for a resumed run, the setting of its ``source`` config.json)."""
    estimate = estimate_training_bytes(config, num_train, num_valid)
    culprits = [("--num-filters", config.num_filters, 32), ("--batch-size", config.batch_size, 100),
                ("--patch-size", config.patch_size, 32), ("--num-colours", config.num_colours, 24),
                ("--num-crops", config.num_crops, 4000)]
    name, value, _ = max(culprits, key=lambda c: c[1] / c[2])
    if source is not None:
        name = f"{source}: {name[2:].replace('-', '_')}"
    require_memory(name, value, estimate)


def _prepare_data(config: TrainConfig, palette: Palette | None = None,
                  source: Path | None = None):  # -> (ColourData, Palette)
    """Data and palette, loaded and fitted before any run folder is made (errors leave none);
    ``source``: the config.json of a resumed run (where a size too large comes from)."""
    _check_memory(config, source=source)
    data = load_training_data(config)
    _check_memory(config, len(data.train), len(data.valid), source=source)
    if palette is None:
        palette = fit_palette(data.train, config.num_colours, seed=config.seed)
    return data, palette


@contextmanager
def _run_folder(out: Path | None, prefix: str, *, resume: bool, overwrite: bool) -> Iterator[Path]:
    """The run folder; a folder this command created is removed again if nothing was trained in it."""
    existed = out is not None and out.exists()
    run = prepare_run_dir(out, prefix, resume=resume, overwrite=overwrite)
    try:
        yield run
    except BaseException:
        if not existed and not any(run.rglob(CHECKPOINT)):
            for child in run.iterdir():
                if child.name in (RUN_MARKER, CONFIG, PALETTE):
                    child.unlink()
            if not any(run.iterdir()):
                shutil.rmtree(run, ignore_errors=True)
        raise


def _run_training(config: TrainConfig, out: Path, resume: bool, data: object = None,
                  palette: Palette | None = None) -> TrainResult:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    err = stderr_console()  # epoch lines are never wrapped when piped
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[loss]}"), TimeElapsedColumn(),
                        console=err, transient=True, disable=not err.is_terminal)
    with progress:
        # no loss is shown before the first step has one
        task = progress.add_task(f"{config.model} epoch 1/{config.epochs}", total=None, loss="")

        def on_event(e: TrainEvent) -> None:
            progress.update(task, description=f"{config.model} epoch {e.epoch}/{e.epochs}",
                            completed=e.step, total=e.steps, loss=f"loss {e.loss:.3f}")
            if e.metrics is not None:
                m = e.metrics
                err.print(f"{config.model} epoch {m.epoch}/{e.epochs}: train loss {m.train_loss:.4f}, "
                          f"valid loss {m.valid_loss:.4f}, valid accuracy {100 * m.valid_accuracy:.2f}%, "
                          f"{m.images_per_second:.0f} images/s")

        try:
            return train(config, data, out, resume=resume, palette=palette,  # type: ignore[arg-type]
                         progress=on_event)
        except TrainingInterrupted as e:
            progress.stop()
            where = f"checkpoint saved in {e.checkpoint}" if e.checkpoint else "nothing saved"
            err.print(f"interrupted at epoch {e.epoch}, after step {e.step}: {where}; "
                      f"continue with the same command and --out {out} --resume")
            sys.exit(130)


def _evaluation_table(title: str, evaluation: Evaluation) -> Table:
    table = Table("predictor", "valid accuracy", "valid loss", title=title)
    b = evaluation.baselines
    table.add_row("baseline: majority", f"{100 * b.majority_accuracy:.2f}%", f"{b.majority_loss:.4f}")
    table.add_row("baseline: grey level", f"{100 * b.grey_level_accuracy:.2f}%",
                  f"{b.grey_level_loss:.4f}")
    table.add_row("[bold]model[/]", f"[bold]{100 * evaluation.accuracy:.2f}%[/]", f"{evaluation.loss:.4f}")
    if evaluation.accuracy <= b.grey_level_accuracy:
        # Said, not hidden: on the built-in photographs this happens (README, "Where the course
        # and the measurements disagree"; benchmarks/colourize_holdout.py).
        table.caption = ("the model is not more accurate than the best colour per grey level (a lookup "
                         "of the grey value alone) on these validation images")
    return table


def _resume_config(out: Path, given: dict[str, object]) -> TrainConfig:
    saved = out / CONFIG
    if not saved.is_file():
        raise ArgumentError("--out", str(out), f"a run folder holding {CONFIG} to resume")
    try:  # the saved settings alone first: a bad one is the file's, not an option the user gave
        saved_config = read_json(saved)
        if not isinstance(saved_config, dict):
            raise TypeError(f"a JSON {type(saved_config).__name__}, not an object")
        TrainConfig.from_dict(saved_config)
    except (ValueError, TypeError) as e:  # ArgumentError included: it names a setting of the file
        raise ArgumentError("--out", str(out), f"a run whose {CONFIG} is valid ({e})") from None
    try:
        return TrainConfig.from_dict({**saved_config, **given})
    except (ValueError, TypeError) as e:
        if isinstance(e, ArgumentError):
            raise
        raise ArgumentError("--out", str(out), f"a run whose {CONFIG} is valid ({e})") from None


def _given(model: str | None, kw: dict[str, object]) -> dict[str, object]:
    """The options typed on the command line (for --resume: they must agree with the run)."""
    ctx = click.get_current_context()
    values = {"model": model, **kw} if model is not None else dict(kw)
    given = {k: v for k, v in values.items()
             if ctx.get_parameter_source(k) is click.core.ParameterSource.COMMANDLINE and v is not None}
    if given.pop("protocol", "trainlab") == "course":
        given = {**COURSE_PROTOCOL, **given}
    return given


@click.group(help="Colourization (the programming assignment): train, eval, predict, compare.")
def group() -> None:
    pass


_OUT_HELP = "Continue the run in --out from its checkpoint."


def _path(ctx: click.Context, param: click.Parameter, value: str | None) -> Path | None:
    """A path option or argument as a Path; an empty one is refused (``Path('')`` is '.', and a run
    would be written into the current folder)."""
    if value is None:
        return None
    if not value.strip():
        name = max(param.opts, key=len) if isinstance(param, click.Option) else param.human_readable_name
        raise ArgumentError(name, value, "a path (an empty one would mean the current folder)")
    return Path(value)


@group.command("train")
@click.option("--model", type=click.Choice(list(MODELS)), default="unet", show_default=True)
@_training_options
@click.option("--out", type=click.Path(), callback=_path, default=None,
              help="Run folder [default: runs/colourize-<model>-<UTC time>].")
@click.option("--resume", is_flag=True, help=_OUT_HELP)
@click.option("--overwrite", is_flag=True, help="Replace the run in --out.")
def train_cmd(model: str, out: Path | None, resume: bool, overwrite: bool, **kw: object) -> None:
    """Train a colourization network; writes checkpoints, metrics, figures into a run folder.

    With --resume, the run in --out continues from its checkpoint under its saved config;
    options given on the command line must agree with it (except --epochs under a constant
    learning rate, which may grow, and the speed options).
    """
    palette = None
    check_run_dir(out, resume=resume, overwrite=overwrite)  # before any work: a file, a folder of other files
    if resume:
        if out is None:
            raise ArgumentError("--resume", True, "together with --out RUN (the run to continue)")
        config = _resume_config(out, _given(model, kw))
        palette = Palette.load(out / PALETTE)
    else:
        config = _config(model, **kw)  # type: ignore[arg-type]
    resolve_device(config.device)
    saved = out / CONFIG if resume and out is not None else None
    data, palette = _prepare_data(config, palette, source=saved)  # bad data fails before a run folder is made
    with _run_folder(out, f"colourize-{config.model}", resume=resume, overwrite=overwrite) as run:
        result = _run_training(config, run, resume, data, palette)
    stdout_console().print(_evaluation_table(
        f"{_MODEL_NAMES[config.model]} ({count_parameters(result.model):,} parameters) on {config.data}",
        result.evaluation))
    click.echo(f"run folder: {run}")


@group.command("eval")
@click.argument("run", type=click.Path(), callback=_path)
@click.option("-o", "--out", type=click.Path(), callback=_path, default=None,
              help="Folder for eval.json and eval.png [default: RUN].")
@click.option("--device", default="cpu", show_default=True, help="auto, cpu, cuda, mps.")
def eval_cmd(run: Path, out: Path | None, device: str) -> None:
    """Validation loss, accuracy and baselines of the last checkpoint of RUN."""
    target = run if out is None else out
    argument = "RUN" if out is None else "--out"
    if target.exists() and not target.is_dir():
        raise ArgumentError(argument, str(target), "a folder (this path is a file)")
    if out is not None:  # refused before the evaluation: a link to nothing, a path under a file
        check_output_file("--out", out / "eval.json", [".json"], overwrite=True)
    config, model, palette, _ = load_run(run, resolve_device(device))
    data = load_training_data(config)
    evaluation = evaluate(model, palette, data.train, data.valid)
    with output_errors(argument, target):
        atomic_write_json(target / "eval.json", evaluation.as_dict())
        fig, ax = new_figure(size=(5, 3.6))
        evaluation.plot(ax)
        save_figure(fig, target / "eval.png", evaluation.as_dict())
    stdout_console().print(_evaluation_table(f"{_MODEL_NAMES[config.model]} on {config.data}", evaluation))
    click.echo(f"PSNR {evaluation.psnr_prediction:.2f} dB (grey {evaluation.psnr_grey:.2f}, "
               f"quantised truth {evaluation.psnr_quantised:.2f}); wrote {target / 'eval.json'}")


def _image_format(path: Path) -> str:
    """The Pillow format an output file's extension names (one it can write), or an error."""
    from PIL import Image

    Image.init()
    fmt = Image.registered_extensions().get(path.suffix.lower())
    # colour formats only: PPM's siblings .pgm/.pbm (grey, bilevel) and .pfm (float) would get a
    # colour file under a name that promises something else
    writable = sorted(ext for ext, f in Image.registered_extensions().items()
                      if f in Image.SAVE and f in ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "PPM")
                      and ext not in (".pgm", ".pbm", ".pfm", ".pnm"))
    if fmt is None or fmt not in Image.SAVE or path.suffix.lower() not in writable:
        raise ArgumentError("--output", str(path), "a file name ending in one of " + ", ".join(writable))
    return fmt


@group.command("predict")
@click.argument("run", type=click.Path(), callback=_path)
@click.argument("image", type=click.Path(), callback=_path)
@click.option("-o", "--output", "output", type=click.Path(), callback=_path, required=True,
              help="Where to write the colourised image; its extension names the format "
              "(.png, .jpg, .webp, …).")
@click.option("--overwrite", is_flag=True, help="Replace --output if it exists.")
@click.option("--device", default="cpu", show_default=True, help="auto, cpu, cuda, mps.")
def predict_cmd(run: Path, image: Path, output: Path, overwrite: bool, device: str) -> None:
    """Colourise IMAGE (any size; it is made grey first) with the network of RUN."""
    from PIL import Image

    fmt = _image_format(output)
    check_output_file("--output", output, [output.suffix], overwrite=overwrite)  # a folder, an existing file
    if not image.is_file():  # before its header is read: a named pipe would block the reader
        raise ArgumentError("IMAGE", str(image), "an existing image file"
                            + ("" if not image.exists() else " (this is not a regular file)"))
    config, model, palette, _ = load_run(run, resolve_device(device))
    size = _image_size(image)
    if size is not None:  # estimated from the header, before any pixel is decoded
        w, h = size
        require_memory("IMAGE", f"{image} ({w}×{h})",
                       colourise_bytes(h, w, config.num_colours, config.num_filters, config.kernel))
    rgb = read_image(image)
    coloured = colourise(model, palette, to_grey(rgb[None]))[0]  # (3, H, W)
    pixels = (coloured.permute(1, 2, 0).numpy() * 256).clip(0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt)
    with output_errors("--output", output):
        atomic_write_bytes(output, buf.getvalue())
    click.echo(f"wrote {output} ({pixels.shape[1]}×{pixels.shape[0]}, {fmt})")


def _image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from an image's header; None when it is not one (read_image says why)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except Exception:
        return None


@group.command("compare")
@_training_options
@click.option("--out", type=click.Path(), callback=_path, default=None,
              help="Folder for the three runs [default: runs/colourize-compare-<UTC time>].")
@click.option("--resume", is_flag=True, help="Continue the comparison in --out: each network from its "
              "checkpoint (a network not started yet starts).")
@click.option("--overwrite", is_flag=True, help="Replace the comparison in --out.")
def compare_cmd(out: Path | None, resume: bool, overwrite: bool, **kw: object) -> None:
    """Train all three networks on the same data and budget; table and figure.

    Under --protocol course the course's reported accuracies are printed beside trainlab's.
    """
    protocol = str(kw.get("protocol"))
    check_run_dir(out, resume=resume, overwrite=overwrite)  # before any work
    if resume:
        if out is None:
            raise ArgumentError("--resume", True, "together with --out RUN (the comparison to continue)")
        saved = [out / m for m in MODELS if (out / m / CONFIG).is_file()]
        if not saved:
            raise ArgumentError("--out", str(out), "a comparison folder holding a network's run to resume")
        base = _resume_config(saved[0], {k: v for k, v in _given(None, kw).items() if k != "model"})
        configs = [replace(base, model=m) for m in MODELS]
    else:
        configs = [_config(m, **kw) for m in MODELS]  # type: ignore[arg-type]
    resolve_device(configs[0].device)
    for c in configs:
        _check_memory(c)
    palette = Palette.load(saved[0] / PALETTE) if resume else None
    data, palette = _prepare_data(configs[0], palette)
    with _run_folder(out, "colourize-compare", resume=resume, overwrite=overwrite) as root:
        results = [_run_training(c, root / c.model, resume and (root / c.model / CHECKPOINT).is_file(),
                                 data, palette) for c in configs]
    course = protocol == "course"
    title = (f"same data ({configs[0].data}), {configs[0].epochs} epochs, batch {configs[0].batch_size}, "
             f"seed {configs[0].seed}" + (", the course's protocol" if course else ""))
    headers = ["network", "parameters", "valid accuracy", "valid loss", "PSNR (dB)"]
    table = Table(*headers, *(["course (CIFAR-10 horses)"] if course else []), title=title)
    for r in results:
        lo, hi = COURSE_RESULTS[r.config.model]
        table.add_row(_MODEL_NAMES[r.config.model], f"{count_parameters(r.model):,}",
                      f"{100 * r.evaluation.accuracy:.2f}%", f"{r.evaluation.loss:.4f}",
                      f"{r.evaluation.psnr_prediction:.2f}", *([f"{lo}–{hi}%"] if course else []))
    b = results[0].evaluation.baselines
    for name, acc, loss in [("baseline: majority", b.majority_accuracy, b.majority_loss),
                            ("baseline: grey level", b.grey_level_accuracy, b.grey_level_loss)]:
        table.add_row(name, "0", f"{100 * acc:.2f}%", f"{loss:.4f}", "", *([""] if course else []))
    stdout_console().print(table)
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
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize=7)
    summary = {r.config.model: {"evaluation": r.evaluation.as_dict(),
                                "history": [asdict(m) for m in r.history],
                                **({"course_accuracy_percent": list(COURSE_RESULTS[r.config.model])}
                                   if course else {})} for r in results}
    with output_errors("--out", root):
        save_figure(fig, root / "compare.png", summary)
        atomic_write_json(root / "compare.json", summary)
    click.echo(f"wrote {root / 'compare.png'} and {root / 'compare.json'}")

