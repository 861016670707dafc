"""Paired comparisons of two networks over several seeds, and training seeds side by side.

A verdict such as "UNet beats ConvTransposeNet" must not depend on the seed. So a
comparison trains *pairs*: for each seed s both networks get the same training crops,
palette, order of mini-batches and initialisation seed, and the measured quantity is the
paired difference d_s = acc_better(s) − acc_worse(s). Over S seeds the claim holds with
confidence when the Student-t interval

    d̄ ± t_{1−α/2, S−1} · s_d / √S        (s_d the sample standard deviation of the d_s)

lies entirely on the predicted side of zero (a paired t-interval; pairing removes the
seed-to-seed variation both networks share, e.g. an easy or hard palette).

Training S seeds one after the other costs S times the per-step overhead of small
networks. :func:`train_side_by_side` instead trains the S networks of one kind as *one*
grouped network (:func:`~trainlab.colourize.models.stack_models`): network s reads only
its own channels, gets its own seed's batches and labels, and Adam (elementwise) takes
exactly the steps it would take on network s alone; the test suite checks that against
separate runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from trainlab.colourize.data import ColourData, to_grey
from trainlab.colourize.models import build_model, stack_models, unstack_model
from trainlab.colourize.palette import Palette
from trainlab.colourize.train import _epoch_order, autocast, input_dtype
from trainlab.plotting import subplots_or

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["PairedDifference", "SideBySide", "paired_difference", "train_side_by_side"]


@dataclass(frozen=True)
class PairedDifference:
    """Mean of paired differences with its Student-t interval (see the module docstring)."""

    differences: list[float]
    mean: float
    low: float
    high: float
    confidence: float

    def excludes_zero(self, direction: int) -> bool:
        """True when the interval lies above zero (``direction`` +1) or below it (−1)."""
        return self.low > 0 if direction > 0 else self.high < 0


def _t_quantile(p: float, dof: int) -> float:
    from scipy.stats import t  # scipy is a dependency of scikit-learn and scikit-image

    return float(t.ppf(p, dof))


def paired_difference(better: Sequence[float], worse: Sequence[float],
                      confidence: float = 0.95) -> PairedDifference:
    """Paired t-interval of ``better − worse`` (needs at least two pairs)."""
    d = [float(b) - float(w) for b, w in zip(better, worse, strict=True)]
    if len(d) < 2:
        raise ValueError("a paired interval needs at least two seeds")
    n = len(d)
    mean = sum(d) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
    half = _t_quantile(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)
    return PairedDifference(d, mean, mean - half, mean + half, confidence)


@dataclass
class SideBySide:
    """S networks of one kind trained side by side: per-seed histories and final numbers."""

    model: str
    seeds: list[int]
    epochs: list[int]
    valid_accuracy: list[list[float]]  # [epoch][seed]
    valid_loss: list[list[float]]  # [epoch][seed]
    train_loss: list[list[float]]  # [epoch][seed]
    stacked: torch.nn.Module
    steps: int = 0
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def final_accuracy(self) -> list[float]:
        return self.valid_accuracy[-1]

    @property
    def final_loss(self) -> list[float]:
        return self.valid_loss[-1]

    def network(self, index: int) -> torch.nn.Module:
        """Seed ``index``'s network as an ordinary (unstacked) module, in eval mode."""
        return unstack_model(self.stacked, index).eval()

    def plot(self, ax: Axes | None = None, label: str | None = None, **kw: Any) -> Axes:
        """Validation accuracy per epoch: the mean over seeds and the range of the seeds."""
        _, ax = subplots_or(ax)
        acc = torch.tensor(self.valid_accuracy) * 100  # (epochs, seeds)
        line, = ax.plot(self.epochs, acc.mean(1).tolist(), "o-", ms=3, label=label or self.model, **kw)
        ax.fill_between(self.epochs, acc.min(1).values.tolist(), acc.max(1).values.tolist(),
                        color=line.get_color(), alpha=0.2, lw=0)
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation pixel accuracy (%)")
        ax.xaxis.get_major_locator().set_params(integer=True)
        return ax


def _lr(lr: float, schedule: str, step: int, total: int) -> float:
    if schedule == "cosine":  # Loshchilov & Hutter 2017 (SGDR) without restarts
        return lr * 0.5 * (1 + math.cos(math.pi * step / total))
    return lr


_epoch_order_for_tests = _epoch_order  # the trainer's order of the images in an epoch


@torch.no_grad()
def _validate(stacked: torch.nn.Module, grey: torch.Tensor, labels: torch.Tensor, k: int,
              batch_size: int = 512) -> tuple[list[float], list[float]]:
    """Per-network validation loss and accuracy. ``grey`` (N, 1, H, W), ``labels`` (S, N, H, W)."""
    s = labels.shape[0]
    was = stacked.training
    stacked.eval()
    loss_sum = torch.zeros(s, dtype=torch.float64, device=grey.device)
    hits = torch.zeros(s, dtype=torch.float64, device=grey.device)
    try:
        for i in range(0, len(grey), batch_size):
            x = grey[i: i + batch_size]
            b, _, h, w = x.shape
            # (B, 1, H, W) -> (B, S, H, W) -> (B, S·K, H, W) -> (B, S, K, H, W)
            logits = stacked(x.expand(b, s, h, w).contiguous()).float().reshape(b, s, k, h, w)
            target = labels[:, i: i + batch_size].transpose(0, 1)  # (S, B, H, W) -> (B, S, H, W)
            ce = F.cross_entropy(logits.transpose(1, 2), target, reduction="none")  # (B, S, H, W)
            loss_sum += ce.double().sum((0, 2, 3))
            hits += (logits.argmax(2) == target).double().sum((0, 2, 3))
    finally:
        stacked.train(was)
    n = labels[0].numel()
    return (loss_sum / n).tolist(), (hits / n).tolist()


def train_side_by_side(model: str, seeds: Sequence[int], data: Sequence[ColourData],
                       palettes: Sequence[Palette], *, num_filters: int, epochs: int, batch_size: int,
                       lr: float, lr_schedule: str = "cosine", kernel: int = 3,
                       eval_epochs: Sequence[int] | None = None,
                       device: str | torch.device = "cpu", precision: str = "fp32",
                       resample: bool = False,
                       progress: Callable[[str], None] | None = None) -> SideBySide:
    """Train one ``model`` per seed, all in one grouped network (see the module docstring).

    Seed i's network starts from ``build_model(model, seed=seeds[i])``, trains on
    ``data[i].train`` labelled by ``palettes[i]`` in the order of :func:`_epoch_order`
    ``(n, seeds[i], epoch)`` (the trainer's), and is validated on ``data[0].valid`` (the
    held-out images must be the same for every seed). All ``data[i].train`` must have the
    same number and size of images. Validation runs after the
    epochs in ``eval_epochs`` (default: every epoch; the last is always included).

    ``resample``: from epoch 2 on, seed i trains on fresh images ``data[i].resample(epoch, n)``
    (builtin's random crops), as the trainer does. ``precision`` ``bf16`` runs the forward pass
    under bfloat16 autocast (the loss in float32), as the trainer's ``--precision bf16``.
    """
    s = len(seeds)
    k = palettes[0].num_colours
    device = torch.device(device)
    nets = [build_model(model, kernel=kernel, num_filters=num_filters, num_colours=k, seed=sd)
            for sd in seeds]
    stacked = stack_models(nets).to(device)
    optimizer = torch.optim.Adam(stacked.parameters(), lr=lr, foreach=True)  # one kernel per op
    x_dtype = input_dtype(precision)  # bit-identical under autocast, fewer copies
    grey = torch.stack([to_grey(d.train)[:, 0] for d in data]).to(device, x_dtype)  # (S, N, H, W)
    labels = torch.stack([p.labels(d.train) for d, p in zip(data, palettes, strict=True)]).to(device)
    valid_grey = to_grey(data[0].valid).to(device)  # (N_v, 1, H, W): the same photographs for all
    by_palette: dict[int, torch.Tensor] = {}  # the validation images are shared: label once per palette
    for p in palettes:
        if id(p) not in by_palette:
            by_palette[id(p)] = p.labels(data[0].valid)
    valid_labels = torch.stack([by_palette[id(p)] for p in palettes]).to(device)  # (S, N_v, H, W)
    n = grey.shape[1]
    steps = math.ceil(n / batch_size)
    total = epochs * steps
    wanted = set(range(1, epochs + 1) if eval_epochs is None else eval_epochs) | {epochs}
    seed_index = torch.arange(s, device=device)[:, None]
    hist_e: list[int] = []
    hist_acc: list[list[float]] = []
    hist_loss: list[list[float]] = []
    hist_train: list[list[float]] = []
    if resample and any(d.resample is None for d in data):
        raise ValueError("resample=True needs data that can draw fresh images (builtin)")
    if precision not in ("fp32", "bf16"):  # fp16 would need a gradient scaler
        raise ValueError(f"precision must be fp32 or bf16, not {precision!r}")
    stacked.train()
    for epoch in range(1, epochs + 1):
        if resample and epoch > 1:
            fresh = [d.resample(epoch, n) for d in data]  # type: ignore[misc]
            grey = torch.stack([to_grey(r)[:, 0] for r in fresh]).to(device, x_dtype)
            labels = torch.stack([p.labels(r) for r, p in zip(fresh, palettes, strict=True)]).to(device)
        orders = torch.stack([_epoch_order(n, sd, epoch) for sd in seeds]).to(device)  # (S, N)
        train_sum = torch.zeros(s, dtype=torch.float64, device=device)
        for step in range(steps):
            idx = orders[:, step * batch_size: (step + 1) * batch_size]  # (S, B)
            x = grey[seed_index, idx].transpose(0, 1).contiguous()  # (S, B, H, W) -> (B, S, H, W)
            t = labels[seed_index, idx].transpose(0, 1)  # (B, S, H, W)
            b, _, h, w = x.shape
            with autocast(device, precision):
                logits = stacked(x)
            logits = logits.float().reshape(b, s, k, h, w)  # (B, S·K, H, W) -> (B, S, K, H, W)
            ce = F.cross_entropy(logits.transpose(1, 2), t, reduction="none").mean((0, 2, 3))  # (S,)
            for group in optimizer.param_groups:
                group["lr"] = _lr(lr, lr_schedule, (epoch - 1) * steps + step, total)
            optimizer.zero_grad(set_to_none=True)
            ce.sum().backward()  # each network's own mean loss: gradients do not mix
            optimizer.step()
            train_sum += ce.detach().double() * b
        if epoch in wanted:
            loss, acc = _validate(stacked, valid_grey, valid_labels, k)
            hist_e.append(epoch)
            hist_acc.append(acc)
            hist_loss.append(loss)
            hist_train.append((train_sum / n).tolist())
            if progress is not None:
                progress(f"{model} × {s} seeds, epoch {epoch}/{epochs}: mean valid accuracy "
                         f"{100 * sum(acc) / s:.1f}%")
    return SideBySide(model, list(seeds), hist_e, hist_acc, hist_loss, hist_train, stacked.cpu(), total)
