"""Training a colourization network: the course's protocol, checkpointed and resumable.

The course's defaults (issue 5): Adam with lr 1e-3, batch 100, 25 epochs, kernel 3,
32 filters, 24 colours; loss = per-pixel cross-entropy against nearest-palette labels.
Everything is configurable through :class:`TrainConfig`, including three speed settings
(see ``benchmarks/colourize.py`` for what each gives): ``channels_last`` memory format,
``compile`` (``torch.compile`` of the network, TorchInductor's fused C++ kernels) and
``bf16`` (bfloat16 autocast of the forward pass; the loss stays float32). The first two
keep float32 arithmetic; ``bf16`` changes the numbers and is off by default.

Reproducibility: the initial weights depend on ``seed`` only, and the order of the
training images in epoch e is a permutation drawn from a generator seeded with
(seed, e). So a run stopped at any step and resumed from its checkpoint takes exactly
the steps of an uninterrupted run, and the same seed gives the same numbers.

A run folder holds ``config.json``, ``palette.npy``, ``checkpoint.pt`` (model and optimizer
state, position in the run, history; written atomically after every epoch and on
Ctrl-C), ``metrics.jsonl`` (one line per epoch), ``curves.png`` and
``samples/epoch-NNN.png`` (grey / quantised truth / prediction), and ``eval.json``.
"""

from __future__ import annotations

import io
import json
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from trainlab.colourize.data import ColourData, load_data, to_grey
from trainlab.colourize.evaluate import Evaluation, evaluate, image_grid, predict_logits
from trainlab.colourize.models import KERNEL_SIZES, MODELS, build_model
from trainlab.colourize.palette import Palette, fit_palette
from trainlab.errors import ArgumentError, DataError, TrainlabError
from trainlab.plotting import save_figure, subplots_or
from trainlab.runs import atomic_write_bytes, atomic_write_json, atomic_write_text, read_json

if TYPE_CHECKING:  # annotations only: figures import matplotlib when they draw
    from matplotlib.axes import Axes

__all__ = [
    "CONFIG",
    "EpochMetrics",
    "TrainConfig",
    "TrainEvent",
    "TrainResult",
    "TrainingDiverged",
    "TrainingInterrupted",
    "load_run",
    "LR_SCHEDULES",
    "learning_rate",
    "load_training_data",
    "train",
]

CHECKPOINT, CONFIG, PALETTE, METRICS = "checkpoint.pt", "config.json", "palette.npy", "metrics.jsonl"
_NUM_SAMPLES = 8
#: "constant": the course's fixed Adam step; "cosine": lr·(1 + cos(π·t/T))/2 over all T steps.
LR_SCHEDULES = ("constant", "cosine")


def learning_rate(config: TrainConfig, step: int, total_steps: int) -> float:
    """Learning rate of global step ``step`` (0-based) of ``total_steps``.

    Cosine annealing (Loshchilov & Hutter 2017, SGDR, without restarts) ends the run at a
    small step, so the final weights do not jitter from step to step.
    """
    if config.lr_schedule == "cosine":
        return config.lr * 0.5 * (1 + math.cos(math.pi * step / total_steps))
    return config.lr


class TrainingDiverged(TrainlabError):
    """The loss became NaN or infinite; the message names the epoch and the step."""

    exit_code = 1


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training, after the checkpoint of the current step was written."""

    def __init__(self, epoch: int, step: int, checkpoint: Path | None):
        self.epoch, self.step, self.checkpoint = epoch, step, checkpoint
        super().__init__(f"interrupted at epoch {epoch}, step {step}")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a run (saved as ``config.json``)."""

    model: str = "unet"
    data: str = "builtin"
    category: str = "horse"
    patch_size: int = 32
    kernel: int = 3
    num_in_channels: int = 1
    num_filters: int = 32
    num_colours: int = 24
    epochs: int = 25
    batch_size: int = 100
    lr: float = 1e-3
    lr_schedule: str = "constant"
    seed: int = 0
    max_train: int | None = None
    max_valid: int | None = None
    channels_last: bool = False
    compile: bool = False
    bf16: bool = False

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ArgumentError("--model", self.model, "one of: " + ", ".join(MODELS))
        for name, minimum in [("epochs", 1), ("batch_size", 1), ("patch_size", 4), ("num_filters", 1),
                              ("num_colours", 2), ("num_in_channels", 1), ("kernel", 1)]:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ArgumentError("--" + name.replace("_", "-"), value, f"an integer ≥ {minimum}")
        if self.kernel not in KERNEL_SIZES:
            raise ArgumentError("--kernel", self.kernel, "one of " + ", ".join(map(str, KERNEL_SIZES)))
        if self.lr_schedule not in LR_SCHEDULES:
            raise ArgumentError("--lr-schedule", self.lr_schedule, "one of: " + ", ".join(LR_SCHEDULES))
        if self.patch_size % 4:
            raise ArgumentError("--patch-size", self.patch_size, "a multiple of 4 (the networks halve twice)")
        if self.data.startswith("cifar10:") and self.patch_size != 32:
            raise ArgumentError("--patch-size", self.patch_size, "32 for CIFAR-10 (its images are 32×32)")
        if self.num_in_channels != 1:
            raise ArgumentError("--num-in-channels", self.num_in_channels, "1 (a grey image)")
        if not (isinstance(self.lr, int | float) and math.isfinite(self.lr) and self.lr > 0):
            raise ArgumentError("--lr", self.lr, "a positive finite number")
        for name in ("max_train", "max_valid"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ArgumentError("--" + name.replace("_", "-"), value, "an integer ≥ 1 (or none)")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int
    train_loss: float
    valid_loss: float
    valid_accuracy: float
    seconds: float
    images_per_second: float


@dataclass(frozen=True)
class TrainEvent:
    """What the progress callback gets after every step (``metrics`` at the end of an epoch)."""

    epoch: int
    epochs: int
    step: int
    steps: int
    loss: float
    metrics: EpochMetrics | None = None


@dataclass
class TrainResult:
    """A finished run: its config, per-epoch history, model, palette and final evaluation."""

    config: TrainConfig
    history: list[EpochMetrics]
    model: nn.Module
    palette: Palette
    evaluation: Evaluation
    out_dir: Path | None = None
    figures: list[Path] = field(default_factory=list)

    def plot(self, ax: Axes | None = None) -> Axes:
        """Training and validation loss per epoch, validation accuracy on a twin axis."""
        return _plot_curves(self.history, self.config.model, ax)


def _plot_curves(history: list[EpochMetrics], label: str, ax: Axes | None) -> Axes:
    _, ax = subplots_or(ax)
    epochs = [m.epoch for m in history]
    ax.plot(epochs, [m.train_loss for m in history], "o-", label="train loss")
    ax.plot(epochs, [m.valid_loss for m in history], "s-", label="validation loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy")
    acc = ax.twinx()
    acc.plot(epochs, [100 * m.valid_accuracy for m in history], "^--", color="C2",
             label="validation accuracy")
    acc.set_ylabel("validation accuracy (%)")
    lines = ax.get_lines() + acc.get_lines()
    ax.legend(lines, [line.get_label() for line in lines], fontsize=8, loc="center right")
    ax.set_title(label, fontsize=9)
    return ax


class _ForcedInterrupt(KeyboardInterrupt):
    """A second Ctrl-C: stop at once, without saving a step that may be half applied."""


@contextmanager
def _deferred_sigint() -> Iterator[Callable[[], bool]]:
    """Turn the first Ctrl-C into a flag checked between steps (a second one interrupts at once).

    So a step is never cut between ``backward`` and ``optimizer.step``. Only in the main
    thread (the only one that may own signal handlers); the old handler is restored after.
    """
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    requested = False
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        nonlocal requested
        if requested:
            raise _ForcedInterrupt
        requested = True

    signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: requested
    finally:
        signal.signal(signal.SIGINT, previous)


def _epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The permutation of the training images in ``epoch`` (1-based): a function of (seed, epoch)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


def _save_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, epoch: int,
                     step: int, loss_sum: float, history: list[EpochMetrics]) -> None:
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
                "step": step, "loss_sum": loss_sum, "history": [asdict(m) for m in history]}, buf)
    atomic_write_bytes(path, buf.getvalue())


def _load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise DataError(f"{path} does not exist: nothing to resume or evaluate") from None
    except Exception as e:
        raise DataError(f"{path} is not a trainlab checkpoint ({type(e).__name__}: {e})") from None


def _check_resumable(saved: TrainConfig, wanted: TrainConfig) -> None:
    # Speed settings may change; so may the number of epochs under a constant learning rate
    # (a cosine schedule is stretched over all epochs, so extending it would change the past).
    free = {"compile", "channels_last"} | ({"epochs"} if saved.lr_schedule == "constant" else set())
    for f in fields(TrainConfig):
        if f.name not in free and getattr(saved, f.name) != getattr(wanted, f.name):
            raise ArgumentError("--" + f.name.replace("_", "-"), getattr(wanted, f.name),
                                f"{getattr(saved, f.name)!r} as in the run being resumed")


def load_run(run_dir: str | Path) -> tuple[TrainConfig, nn.Module, Palette, dict[str, Any]]:
    """Config, model (eval mode, last checkpoint), palette and checkpoint of a run folder."""
    run = Path(run_dir)
    if not (run / CONFIG).is_file():
        raise ArgumentError("RUN", str(run_dir), "a run folder written by `trainlab colourize train` "
                            f"(it has no {CONFIG})")
    try:
        config = TrainConfig.from_dict(read_json(run / CONFIG))
    except (ValueError, TypeError) as e:
        raise DataError(f"{run / CONFIG} is not a valid run config ({e})") from None
    palette = Palette.load(run / PALETTE)
    ckpt = _load_checkpoint(run / CHECKPOINT)
    model = _build(config)
    try:
        model.load_state_dict(ckpt["model"])
    except (KeyError, RuntimeError) as e:
        raise DataError(f"{run / CHECKPOINT} does not match its config ({type(e).__name__})") from None
    return config, model.eval(), palette, ckpt


def _build(config: TrainConfig) -> nn.Module:
    return build_model(config.model, kernel=config.kernel, num_in_channels=config.num_in_channels,
                       num_filters=config.num_filters, num_colours=config.num_colours, seed=config.seed)


def load_training_data(config: TrainConfig) -> ColourData:
    """The data ``config`` names, subset as it asks (``max_train``, ``max_valid``, seeded)."""
    data = load_data(config.data, category=config.category, size=config.patch_size, seed=config.seed)
    return data.subset(config.max_train, config.max_valid, seed=config.seed)


def train(config: TrainConfig, data: ColourData | None = None, out_dir: str | Path | None = None, *,
          resume: bool = False, palette: Palette | None = None,
          progress: Callable[[TrainEvent], None] | None = None, figures: bool = True,
          clock: Callable[[], float] = time.perf_counter) -> TrainResult:
    """Train ``config.model`` on ``data`` (loaded from ``config.data`` when None).

    With ``out_dir`` the run folder is written as described in the module docstring; with
    ``resume`` the run continues from ``out_dir/checkpoint.pt`` (same config, except that
    ``epochs`` may grow). Without ``out_dir`` nothing is written (library use, claims).
    ``palette`` defaults to a k-means palette of the training images seeded by ``seed``.

    Raises :class:`TrainingDiverged` on a NaN/inf loss and :class:`TrainingInterrupted`
    (a ``KeyboardInterrupt``) on Ctrl-C, after saving a checkpoint of the last finished step.
    """
    out = Path(out_dir) if out_dir is not None else None
    ckpt: dict[str, Any] | None = None
    if resume:
        if out is None or not (out / CHECKPOINT).is_file():
            raise ArgumentError("--resume", str(out), f"a run folder holding {CHECKPOINT}")
        _check_resumable(TrainConfig.from_dict(read_json(out / CONFIG)), config)
        ckpt = _load_checkpoint(out / CHECKPOINT)
        palette = Palette.load(out / PALETTE)
    data = load_training_data(config) if data is None else data
    if palette is None:
        palette = fit_palette(data.train, config.num_colours, seed=config.seed)
    if palette.num_colours != config.num_colours:
        raise ArgumentError("--num-colours", config.num_colours, f"{palette.num_colours} (the palette's)")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / CONFIG, asdict(config))
        palette.save(out / PALETTE)

    memory = torch.channels_last if config.channels_last else torch.contiguous_format
    model = _build(config).to(memory_format=memory)
    forward: Callable[[torch.Tensor], torch.Tensor] = torch.compile(model) if config.compile else model
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    grey = to_grey(data.train).contiguous(memory_format=memory)  # (N, 3, H, W) -> (N, 1, H, W)
    labels = palette.labels(data.train)  # (N, H, W) int64
    valid_labels = palette.labels(data.valid)
    valid_grey = to_grey(data.valid).contiguous(memory_format=memory)
    history: list[EpochMetrics] = []
    start_epoch, start_step, loss_sum = 1, 0, 0.0
    if ckpt is not None:
        try:
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            history = [EpochMetrics(**m) for m in ckpt["history"]]
            start_epoch, start_step, loss_sum = ckpt["epoch"] + 1, ckpt["step"], ckpt["loss_sum"]
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise DataError(f"{out / CHECKPOINT} does not match this run ({type(e).__name__}: {e})") from None

    n = grey.shape[0]
    steps = math.ceil(n / config.batch_size)
    samples = torch.linspace(0, len(data.valid) - 1, min(_NUM_SAMPLES, len(data.valid))).long()
    fig_paths: list[Path] = []
    model.train()
    with _deferred_sigint() as stop_requested:
        for epoch in range(start_epoch, config.epochs + 1):
            order = _epoch_order(n, config.seed, epoch)
            first = start_step if epoch == start_epoch else 0
            if first == 0:
                loss_sum = 0.0
            began = clock()
            completed = first
            try:
                for step in range(first + 1, steps + 1):
                    idx = order[(step - 1) * config.batch_size: step * config.batch_size]
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.bf16):
                        logits = forward(grey[idx])  # (B, 1, H, W) -> (B, K, H, W)
                    loss = F.cross_entropy(logits.float(), labels[idx])
                    value = float(loss.detach())
                    if not math.isfinite(value):
                        raise TrainingDiverged(
                            f"training loss became {value} at epoch {epoch}, step {step} of {steps}; "
                            f"lower --lr (now {config.lr:g}) or check the data")
                    for group in optimizer.param_groups:
                        group["lr"] = learning_rate(config, (epoch - 1) * steps + step - 1,
                                                    config.epochs * steps)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    loss_sum += value * len(idx)
                    completed = step
                    if progress is not None:
                        progress(TrainEvent(epoch, config.epochs, step, steps, value))
                    if stop_requested():
                        raise KeyboardInterrupt
            except _ForcedInterrupt:
                raise  # the last epoch's checkpoint stays as it was
            except KeyboardInterrupt:
                path = None
                if out is not None:  # the checkpoint holds completed steps only: resuming is exact
                    path = out / CHECKPOINT
                    _save_checkpoint(path, model, optimizer, epoch - 1, completed, loss_sum, history)
                raise TrainingInterrupted(epoch, completed, path) from None
            seconds = clock() - began
            logits = predict_logits(model, valid_grey)
            metrics = EpochMetrics(
                epoch=epoch, train_loss=loss_sum / n,
                valid_loss=float(F.cross_entropy(logits, valid_labels)),
                valid_accuracy=float((logits.argmax(1) == valid_labels).double().mean()),
                seconds=seconds, images_per_second=(n - first * config.batch_size) / max(seconds, 1e-9))
            history.append(metrics)
            if out is not None:
                _save_checkpoint(out / CHECKPOINT, model, optimizer, epoch, 0, 0.0, history)
                atomic_write_text(out / METRICS, "".join(json.dumps(asdict(m)) + "\n" for m in history))
                if figures:
                    fig_paths = _epoch_figures(out, history, config, palette, data.valid[samples],
                                               logits[samples].argmax(1), valid_labels[samples])
            if progress is not None:
                progress(TrainEvent(epoch, config.epochs, steps, steps, metrics.train_loss, metrics))
            if stop_requested():  # Ctrl-C during evaluation or figures: the epoch is saved
                raise TrainingInterrupted(epoch, steps, out / CHECKPOINT if out is not None else None)

    model.eval()
    evaluation = evaluate(model, palette, data.train, data.valid, train_labels=labels,
                          valid_labels=valid_labels)
    if out is not None:
        atomic_write_json(out / "eval.json", evaluation.as_dict())
    return TrainResult(config, history, model, palette, evaluation, out, fig_paths)


def _epoch_figures(out: Path, history: list[EpochMetrics], config: TrainConfig, palette: Palette,
                   rgb: torch.Tensor, predicted: torch.Tensor, truth: torch.Tensor) -> list[Path]:
    fig = image_grid(rgb, palette.render(truth), palette.render(predicted),
                     title=f"{config.model}, epoch {history[-1].epoch}: grey / quantised truth / prediction")
    grid = save_figure(fig, out / "samples" / f"epoch-{history[-1].epoch:03d}.png")
    fig, ax = _new_curves_figure()
    _plot_curves(history, f"{config.model} on {config.data}", ax)
    curves = save_figure(fig, out / "curves.png", {"history": [asdict(m) for m in history]})
    return [curves, grid]


def _new_curves_figure() -> tuple[Any, Axes]:
    from trainlab.plotting import new_figure

    return new_figure(size=(5.5, 3.6))
