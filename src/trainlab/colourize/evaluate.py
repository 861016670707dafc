"""Validation metrics of a colourization network, and the baselines that give them meaning.

- loss: mean per-pixel cross-entropy −log p(true colour) over all validation pixels;
- accuracy: share of all validation pixels whose predicted colour class is right (the
  course's definition: pixels, not images, are counted);
- baselines, both fitted on the *training* labels only:
  majority colour (always predict the most frequent training class; its loss is the
  cross-entropy of the training class frequencies) and best colour per grey level
  (predict the most frequent training class among pixels of the same grey level, 64
  levels; the best any per-pixel rule that ignores context can do, up to binning);
- PSNR of the colourised image against the true RGB, 10·log₁₀(1/MSE) with pixels in
  [0, 1), next to the PSNR of the palette-quantised truth (the ceiling a K-colour
  classifier can reach) and of the grey image itself.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from trainlab.colourize.data import to_grey
from trainlab.colourize.palette import Palette
from trainlab.plotting import new_figure, subplots_or

if TYPE_CHECKING:  # annotations only: figures import matplotlib when they draw
    from matplotlib.axes import Axes

__all__ = [
    "GREY_LEVELS",
    "Baselines",
    "Evaluation",
    "baselines",
    "TILE",
    "colourise",
    "colourise_bytes",
    "evaluate",
    "image_grid",
    "predict_labels",
    "predict_logits",
    "psnr",
    "tile_halo",
]

GREY_LEVELS = 64


def _device_of(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def predict_logits(model: nn.Module, grey: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Logits ``(N, K, H, W)`` for grey images ``(N, 1, H, W)``, in eval mode, batch by batch.

    Each batch runs on the model's device; the logits come back on ``grey``'s device (float32).
    """
    was_training = model.training
    model.eval()
    device = _device_of(model)
    try:
        return torch.cat([model(grey[i: i + batch_size].to(device)).float().to(grey.device)
                          for i in range(0, len(grey), batch_size)])
    finally:
        model.train(was_training)


def predict_labels(model: nn.Module, grey: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Most likely colour class per pixel: ``(N, 1, H, W) -> (N, H, W)``."""
    return predict_logits(model, grey, batch_size).argmax(1)


def psnr(image: torch.Tensor, reference: torch.Tensor, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio 10·log₁₀(range² / MSE) in dB (inf for identical images)."""
    mse = float(((image.double() - reference.double()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(data_range**2 / mse)


@dataclass(frozen=True)
class Baselines:
    """Context-free predictors fitted on training labels, scored on validation pixels."""

    majority_accuracy: float
    majority_loss: float
    grey_level_accuracy: float
    grey_level_loss: float


def _grey_bins(rgb: torch.Tensor) -> torch.Tensor:
    return (to_grey(rgb)[:, 0] * GREY_LEVELS).long().clamp(0, GREY_LEVELS - 1)  # (N, H, W)


def baselines(train_rgb: torch.Tensor, train_labels: torch.Tensor, valid_rgb: torch.Tensor,
              valid_labels: torch.Tensor, num_colours: int) -> Baselines:
    """Majority colour and best colour per grey level (see the module docstring).

    Losses use the training frequencies as predicted probabilities, with add-one
    (Laplace) smoothing so an unseen class costs a finite amount.
    """
    k = num_colours
    counts = torch.bincount(train_labels.flatten(), minlength=k).double()
    prior = (counts + 1) / (counts.sum() + k)
    v = valid_labels.flatten()
    majority_acc = float((v == counts.argmax()).double().mean())
    majority_loss = float(-prior.log()[v].mean())
    # counts per (grey level, class): a (levels, K) table
    tb, vb = _grey_bins(train_rgb).flatten(), _grey_bins(valid_rgb).flatten()
    table = torch.bincount(tb * k + train_labels.flatten(), minlength=GREY_LEVELS * k)
    table = table.reshape(GREY_LEVELS, k).double()  # (levels·K,) -> (levels, K)
    cond = (table + prior * 1.0) / (table.sum(1, keepdim=True) + 1.0)  # smoothed towards the prior
    grey_acc = float((table.argmax(1)[vb] == v).double().mean())
    grey_loss = float(-cond.log()[vb, v].mean())
    return Baselines(majority_acc, majority_loss, grey_acc, grey_loss)


@dataclass(frozen=True)
class Evaluation:
    """Validation metrics of one model, its baselines, and the images behind the figure."""

    loss: float
    accuracy: float
    baselines: Baselines
    psnr_prediction: float
    psnr_quantised: float
    psnr_grey: float
    num_pixels: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def plot(self, ax: Axes | None = None) -> Axes:
        """Accuracy of the model against the two baselines (bar chart)."""
        _, ax = subplots_or(ax)
        names = ["majority colour", "best colour\nper grey level", "model"]
        values = [self.baselines.majority_accuracy, self.baselines.grey_level_accuracy, self.accuracy]
        bars = ax.bar(names, [100 * v for v in values], color=["#bbb", "#888", "#2a7"])
        for b, v in zip(bars, values, strict=True):
            ax.annotate(f"{100 * v:.1f}%", (b.get_x() + b.get_width() / 2, b.get_height()),
                        ha="center", va="bottom", fontsize=8)
        ax.set_ylabel("validation pixel accuracy (%)")
        ax.set_title(f"loss {self.loss:.3f}; PSNR {self.psnr_prediction:.1f} dB "
                     f"(quantised truth {self.psnr_quantised:.1f})", fontsize=9)
        return ax


def evaluate(model: nn.Module, palette: Palette, train_rgb: torch.Tensor, valid_rgb: torch.Tensor,
             *, train_labels: torch.Tensor | None = None, valid_labels: torch.Tensor | None = None,
             batch_size: int = 256) -> Evaluation:
    """Loss, accuracy and PSNR of ``model`` on the validation images, with baselines."""
    train_labels = palette.labels(train_rgb) if train_labels is None else train_labels
    valid_labels = palette.labels(valid_rgb) if valid_labels is None else valid_labels
    logits = predict_logits(model, to_grey(valid_rgb), batch_size)
    loss = float(F.cross_entropy(logits, valid_labels))
    predicted = logits.argmax(1)
    accuracy = float((predicted == valid_labels).double().mean())
    base = baselines(train_rgb, train_labels, valid_rgb, valid_labels, palette.num_colours)
    return Evaluation(
        loss=loss, accuracy=accuracy, baselines=base,
        psnr_prediction=psnr(palette.render(predicted), valid_rgb),
        psnr_quantised=psnr(palette.render(valid_labels), valid_rgb),
        psnr_grey=psnr(to_grey(valid_rgb).expand_as(valid_rgb), valid_rgb),
        num_pixels=int(valid_labels.numel()))


def tile_halo(kernel: int) -> int:
    """Context (pixels, a multiple of 4) around a tile that makes tiled prediction exact.

    The networks' receptive-field radius is at most 4·(k − 1) + 8 for kernel k (two
    halvings, so a layer at quarter resolution spreads by 4·(k − 1)/2 per side, and five
    layers in all); 8·k covers it with room to spare (24 for k = 3). Tile corners sit on
    multiples of 4, so the stride-2 grids of the tiles line up with the whole image's.
    """
    return 8 * kernel


#: Side of the square tiles :func:`colourise` runs the network on (before the halo).
TILE = 256


def colourise_bytes(height: int, width: int, num_colours: int, num_filters: int, kernel: int = 3,
                    tile: int = TILE) -> int:
    """Memory :func:`colourise` needs for one ``height``×``width`` image (bytes, estimated).

    The whole image: RGB float input (12 B/px), grey (4), labels (8), colour output (12),
    8-bit output (3); one tile with its halo: the activations of the widest network, about
    (2·NF + 3·NC + 2) float32 channels at full resolution, twice over (input and output of a layer).
    """
    side = tile + 2 * tile_halo(kernel)
    per_tile = side * side * (2 * num_filters + 3 * num_colours + 2) * 4 * 2
    return height * width * (12 + 4 + 8 + 12 + 3) + per_tile


@torch.no_grad()
def colourise(model: nn.Module, palette: Palette, grey: torch.Tensor, *, tile: int = TILE) -> torch.Tensor:
    """Colour image for a grey image of any size: ``(N, 1, H, W) -> (N, 3, H, W)``.

    The networks halve twice, so the input is replicate-padded to multiples of 4 and the
    prediction cropped back. Large images run tile by tile (``tile``×``tile`` with a halo
    of :func:`tile_halo` pixels of context on every side), so memory stays bounded (a
    12-megapixel photograph needs a few hundred MB) and the result is the same as in one piece.
    """
    from trainlab.colourize.models import pad_to_multiple

    tile = max(4, tile - tile % 4)
    padded, (h, w) = pad_to_multiple(grey, 4)
    n, _, hp, wp = padded.shape
    if hp * wp <= (tile + 2 * tile_halo(getattr(model, "kernel", 3))) ** 2:
        labels = predict_labels(model, padded, batch_size=1)[:, :h, :w]  # (N, H', W') -> (N, H, W)
        return palette.render(labels)
    halo = tile_halo(getattr(model, "kernel", 3))
    labels = torch.empty(n, hp, wp, dtype=torch.int64)
    for top in range(0, hp, tile):
        for left in range(0, wp, tile):
            # the tile plus its halo, clipped to the image (all corners are multiples of 4)
            t0, l0 = max(0, top - halo), max(0, left - halo)
            t1, l1 = min(hp, top + tile + halo), min(wp, left + tile + halo)
            part = predict_labels(model, padded[:, :, t0:t1, l0:l1], batch_size=1)  # (N, h', w')
            bottom, right = min(hp, top + tile), min(wp, left + tile)
            labels[:, top:bottom, left:right] = part[:, top - t0: bottom - t0, left - l0: right - l0]
    return palette.render(labels[:, :h, :w])


def image_grid(rgb: torch.Tensor, quantised: torch.Tensor, predicted: torch.Tensor,
               title: str = "") -> Any:
    """Figure: rows grey input / quantised truth / prediction, one column per image.

    The 3 × n images are laid out in one array (white gaps between them) and drawn with one
    ``imshow``: a grid of 3·n axes costs matplotlib about 10 ms each to make and to save.
    """
    n, _, h, w = rgb.shape
    gap = max(1, h // 8)
    grey = to_grey(rgb).expand_as(rgb)
    sheet = torch.ones(3, 3 * h + 2 * gap, n * w + (n - 1) * gap)
    for row, images in enumerate((grey, quantised, predicted)):
        for j in range(n):
            top, left = row * (h + gap), j * (w + gap)
            sheet[:, top: top + h, left: left + w] = images[j].clamp(0, 1)
    fig, ax = new_figure(size=(1.1 * n + 0.8, 3.6))
    ax.imshow(sheet.permute(1, 2, 0).numpy(), interpolation="nearest")  # (3, H', W') -> (H', W', 3)
    ax.set_xticks([])
    ax.set_yticks([row * (h + gap) + (h - 1) / 2 for row in range(3)], ["grey", "truth", "model"], fontsize=9)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    if title:
        ax.set_title(title, fontsize=9)
    return fig
