"""Evaluation: pixel accuracy, loss against torch, baselines by brute force, PSNR against skimage."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from skimage.metrics import peak_signal_noise_ratio
from torch import nn

from trainlab.colourize.evaluate import GREY_LEVELS, baselines, colourise, evaluate, psnr
from trainlab.colourize.models import build_model
from trainlab.colourize.palette import Palette


class _Fixed(nn.Module):
    """Returns the given logits regardless of the input."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def forward(self, x):
        return self.logits[: x.shape[0]]


def test_accuracy_counts_pixels_and_loss_is_torch_cross_entropy():
    g = torch.Generator().manual_seed(0)
    palette = Palette(torch.rand(4, 3, generator=g))
    valid = torch.rand(3, 3, 8, 8, generator=g)
    logits = torch.randn(3, 4, 8, 8, generator=g)
    ev = evaluate(_Fixed(logits), palette, torch.rand(2, 3, 8, 8, generator=g), valid)
    labels = palette.labels(valid)
    assert ev.num_pixels == 3 * 8 * 8
    assert ev.accuracy == pytest.approx(float((logits.argmax(1) == labels).sum()) / 192)
    assert ev.loss == pytest.approx(float(F.cross_entropy(logits, labels)), rel=1e-6)


def test_baselines_match_brute_force_counting():
    g = torch.Generator().manual_seed(1)
    train, valid = torch.rand(6, 3, 8, 8, generator=g), torch.rand(4, 3, 8, 8, generator=g)
    palette = Palette(torch.rand(5, 3, generator=g))
    tl, vl = palette.labels(train), palette.labels(valid)
    b = baselines(train, tl, valid, vl, 5)
    majority = int(torch.bincount(tl.flatten(), minlength=5).argmax())
    assert b.majority_accuracy == pytest.approx(float((vl == majority).double().mean()))
    tgrey = (train.mean(1) * GREY_LEVELS).long().clamp(max=GREY_LEVELS - 1).flatten()
    vgrey = (valid.mean(1) * GREY_LEVELS).long().clamp(max=GREY_LEVELS - 1).flatten()
    correct = 0
    for level, label in zip(vgrey.tolist(), vl.flatten().tolist(), strict=True):
        seen = tl.flatten()[tgrey == level]
        guess = int(torch.bincount(seen, minlength=5).argmax()) if len(seen) else 0
        correct += guess == label
    assert b.grey_level_accuracy == pytest.approx(correct / vl.numel())
    # a predictor that knows the grey level does at least as well on the training data itself
    self_b = baselines(train, tl, train, tl, 5)
    assert self_b.grey_level_accuracy >= self_b.majority_accuracy
    assert math.isfinite(b.majority_loss) and math.isfinite(b.grey_level_loss)


def test_psnr_matches_scikit_image():
    g = torch.Generator().manual_seed(2)
    a, b = torch.rand(3, 10, 10, generator=g), torch.rand(3, 10, 10, generator=g)
    assert psnr(a, b) == pytest.approx(peak_signal_noise_ratio(b.numpy(), a.numpy(), data_range=1.0))
    assert psnr(a, a) == math.inf


def test_colourise_any_size_returns_palette_colours():
    palette = Palette(torch.rand(24, 3))
    model = build_model("unet", num_filters=4).eval()
    out = colourise(model, palette, torch.rand(1, 1, 37, 22))
    assert out.shape == (1, 3, 37, 22)
    assert torch.equal(palette.render(palette.labels(out)), out)


@pytest.mark.parametrize(("name", "kernel"), [("pool", 3), ("transpose", 5), ("unet", 4), ("unet", 3)])
def test_tiled_colourising_equals_one_piece(name, kernel):
    model = build_model(name, kernel=kernel, num_filters=4, num_colours=6, seed=1).eval()
    g = torch.Generator().manual_seed(kernel)
    for m in model.modules():  # batch norm with non-trivial statistics, as after training
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5, generator=g)
            m.running_var.uniform_(0.5, 2.0, generator=g)
    palette = Palette(torch.rand(6, 3, generator=g))
    grey = torch.rand(1, 1, 203, 157, generator=g)
    whole = colourise(model, palette, grey, tile=10**6)
    assert torch.equal(colourise(model, palette, grey, tile=40), whole)
    assert torch.equal(colourise(model, palette, grey, tile=63), whole)  # rounded down to 60


def test_a_12_megapixel_photograph_needs_well_under_2_gb():
    from trainlab.colourize.evaluate import colourise_bytes

    assert colourise_bytes(3000, 4000, num_colours=24, num_filters=32) < 1e9


def test_image_grid_shows_each_image_in_its_row_and_column():
    from trainlab.colourize.evaluate import image_grid

    g = torch.Generator().manual_seed(0)
    rgb, truth, model = (torch.rand(5, 3, 8, 8, generator=g) for _ in range(3))
    fig = image_grid(rgb, truth, model, title="t")
    ax = fig.axes[0]
    # (H', W', 3) -> (3, H', W')
    sheet = torch.from_numpy(ax.images[0].get_array().data.copy()).permute(2, 0, 1)
    gap = 1
    grey = rgb.mean(1, keepdim=True).expand_as(rgb)
    for row, images in enumerate((grey, truth, model)):
        for j in range(5):
            top, left = row * (8 + gap), j * (8 + gap)
            assert torch.allclose(sheet[:, top: top + 8, left: left + 8], images[j])
    assert sheet.shape == (3, 3 * 8 + 2 * gap, 5 * 8 + 4 * gap)
    assert (sheet[:, 8, :] == 1).all() and (sheet[:, :, 8] == 1).all()  # white gaps between them
    assert [t.get_text() for t in ax.get_yticklabels()] == ["grey", "truth", "model"]
    assert ax.get_title() == "t"
