"""Paired comparisons: the t-interval, and seeds trained side by side = trained one by one."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from trainlab.colourize.data import load_data, to_grey
from trainlab.colourize.models import build_model
from trainlab.colourize.paired import _epoch_order_for_tests, paired_difference, train_side_by_side
from trainlab.colourize.palette import fit_palette


def test_paired_interval_matches_scipy_ttest_rel():
    from scipy.stats import ttest_rel

    better = [0.52, 0.55, 0.50, 0.58, 0.53, 0.51]
    worse = [0.50, 0.52, 0.51, 0.55, 0.50, 0.49]
    d = paired_difference(better, worse, 0.95)
    ci = ttest_rel(better, worse).confidence_interval(0.95)
    assert d.mean == pytest.approx(sum(b - w for b, w in zip(better, worse, strict=True)) / 6, abs=1e-15)
    assert (d.low, d.high) == pytest.approx((ci.low, ci.high), rel=1e-12)
    assert d.excludes_zero(+1) == (ci.low > 0) and not d.excludes_zero(-1)


def test_paired_interval_widens_with_confidence_and_needs_two_seeds():
    a, b = [1.0, 2.0, 4.0], [0.0, 0.5, 1.0]
    assert paired_difference(a, b, 0.99).low < paired_difference(a, b, 0.9).low
    with pytest.raises(ValueError):
        paired_difference([1.0], [0.0])


@pytest.mark.parametrize("model", ["pool", "unet"])
def test_side_by_side_training_equals_one_run_per_seed(model):
    seeds = [3, 8]
    data = [load_data("builtin", size=16, seed=s, num_crops=24) for s in seeds]
    palettes = [fit_palette(d.train, 5, seed=s, max_pixels=2000) for d, s in zip(data, seeds, strict=True)]
    data = [d.subset(None, 6, seed=0) for d in data]
    together = train_side_by_side(model, seeds, data, palettes, num_filters=4, epochs=2, batch_size=10,
                                  lr=5e-3, lr_schedule="cosine")
    assert together.steps == 2 * 3
    for i, (seed, d, pal) in enumerate(zip(seeds, data, palettes, strict=True)):
        net = build_model(model, num_filters=4, num_colours=5, seed=seed)
        opt = torch.optim.Adam(net.parameters(), lr=5e-3)
        grey, labels = to_grey(d.train), pal.labels(d.train)
        step = 0
        for epoch in (1, 2):
            order = _epoch_order_for_tests(len(grey), seed, epoch)
            for j in range(0, len(grey), 10):
                idx = order[j: j + 10]
                for g in opt.param_groups:
                    g["lr"] = 5e-3 * 0.5 * (1 + math.cos(math.pi * step / 6))
                opt.zero_grad()
                F.cross_entropy(net(grey[idx]), labels[idx]).backward()
                opt.step()
                step += 1
        # A conv bias feeding a batch norm has gradient 0 up to rounding, and Adam turns that
        # rounding into ±lr steps, so such biases (and the running means that track them)
        # differ. In training mode batch norm removes them exactly: compare what the networks
        # compute there, and the final conv (no batch norm after it).
        single = together.network(i).train()
        net.train()
        with torch.no_grad():
            logits, logits_stacked = net(to_grey(d.valid)), single(to_grey(d.valid))
        # float32 sums in another order (grouped vs plain conv) over 6 Adam steps of size 5e-3
        assert torch.allclose(logits, logits_stacked, atol=1e-3, rtol=1e-3)
        assert torch.allclose(net.final.weight, single.final.weight, atol=5e-4)


def test_side_by_side_resampling_trains_each_seed_on_its_own_fresh_crops():
    seeds = [3, 8]
    data = [load_data("builtin", size=16, seed=s, num_crops=20).subset(None, 6, seed=0) for s in seeds]
    palette = fit_palette(data[0].train, 5, seed=3, max_pixels=2000)
    together = train_side_by_side("transpose", seeds, data, [palette, palette], num_filters=4, epochs=2,
                                  batch_size=10, lr=5e-3, lr_schedule="constant", resample=True)
    for i, (seed, d) in enumerate(zip(seeds, data, strict=True)):
        net = build_model("transpose", num_filters=4, num_colours=5, seed=seed)
        opt = torch.optim.Adam(net.parameters(), lr=5e-3)
        for epoch in (1, 2):
            rgb = d.train if epoch == 1 else d.resample(epoch, len(d.train))  # fresh crops from epoch 2
            grey, labels = to_grey(rgb), palette.labels(rgb)
            order = _epoch_order_for_tests(len(grey), seed, epoch)
            for j in range(0, len(grey), 10):
                idx = order[j: j + 10]
                opt.zero_grad()
                F.cross_entropy(net(grey[idx]), labels[idx]).backward()
                opt.step()
        single = together.network(i).train()
        net.train()
        with torch.no_grad():  # as above: compare in training mode, to float32 reordering over 4 steps
            assert torch.allclose(net(to_grey(d.valid)), single(to_grey(d.valid)), atol=1e-3, rtol=1e-3)
    fixed = [replace(d, resample=None) for d in data]  # data that cannot draw fresh crops: refused
    with pytest.raises(ValueError, match="resample"):
        train_side_by_side("pool", seeds, fixed, [palette, palette], num_filters=4, epochs=1, batch_size=10,
                           lr=5e-3, resample=True)
