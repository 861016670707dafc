"""Counts as exact polynomials (SymPy), checked against the course's formula and fresh points."""

from __future__ import annotations

import pytest
import sympy
import torch
from torch import nn

from trainlab.colourize.models import PoolUpsampleNet
from trainlab.convnets.symbolic import symbolic_counts
from trainlab.convnets.tracer import summary
from trainlab.errors import ArgumentError, ShapeError


def test_pool_upsample_net_conv_weights_are_the_course_polynomial():
    fit = symbolic_counts(
        PoolUpsampleNet,
        ["num_in_channels", "num_filters", "num_colours"],
        ("num_in_channels", 8, 8),
        fixed={},
        ignore=("bias", "batchnorm"),
    )
    nic, nf, nc = (fit.symbols[n] for n in ("num_in_channels", "num_filters", "num_colours"))
    course = 9 * nic * nf + 36 * nf**2 + 9 * nf * nc + 9 * nc**2
    assert sympy.expand(fit.polynomials["params"] - course) == 0
    # ...and it is what sum(numel) gives on a real model
    model = PoolUpsampleNet(num_in_channels=2, num_filters=5, num_colours=7)
    conv_weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Conv2d))
    assert fit.evaluate({"num_in_channels": 2, "num_filters": 5, "num_colours": 7})["params"] == conv_weights


def test_full_parameter_count_includes_biases_and_batchnorm():
    fit = symbolic_counts(
        PoolUpsampleNet, ["num_filters", "num_colours"], (1, 8, 8), fixed={"num_in_channels": 1}
    )
    for nf, nc in [(3, 4), (17, 9)]:
        model = PoolUpsampleNet(num_in_channels=1, num_filters=nf, num_colours=nc)
        assert fit.evaluate({"num_filters": nf, "num_colours": nc})["params"] == sum(
            p.numel() for p in model.parameters()
        )


def test_neurons_and_connections_scale_with_area_and_params_do_not():
    fit = symbolic_counts(
        PoolUpsampleNet,
        {"num_filters": 1, "height": 4, "width": 4},
        (1, "height", "width"),
        fixed={"num_colours": 3},
    )
    h, w = fit.symbols["height"], fit.symbols["width"]
    assert not ({h, w} & fit.polynomials["params"].free_symbols)
    for key in ("neurons", "connections", "macs"):
        poly = fit.polynomials[key]
        assert sympy.expand(poly.subs({h: 2 * h, w: 2 * w}, simultaneous=True) - 4 * poly) == 0
    assert len(fit.checked_at) == 3
    with torch.device("meta"):
        model = PoolUpsampleNet(num_in_channels=1, num_filters=6, num_colours=3)
    direct = summary(model, (1, 20, 28)).totals()
    predicted = fit.evaluate({"num_filters": 6, "height": 20, "width": 28})
    assert all(predicted[k] == direct[k] for k in predicted)


def conv_pool(num_filters: int = 2) -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, num_filters, 3, padding=1), nn.MaxPool2d(2))


def test_sizes_off_the_stride_grid_are_not_a_polynomial_and_say_so():
    # ⌊H/2⌋ is linear on even H only: sampled on every integer the fit fails at fresh points
    with pytest.raises(ShapeError, match="not a polynomial"):
        symbolic_counts(conv_pool, {"height": 1}, (1, "height", 8), degree=2, num_checks=10)
    fit = symbolic_counts(
        conv_pool, {"height": 2, "num_filters": 1}, (1, "height", 8), degree=2, num_checks=10
    )
    h, nf = fit.symbols["height"], fit.symbols["num_filters"]
    assert sympy.expand(fit.polynomials["neurons"] - (nf * 8 * h + nf * 4 * h / 2)) == 0


def test_bad_variables_are_argument_errors():
    with pytest.raises(ArgumentError, match="--vars"):
        symbolic_counts(PoolUpsampleNet, [], (1, 8, 8))
    with pytest.raises(ArgumentError, match="missing: height"):
        symbolic_counts(PoolUpsampleNet, ["num_filters"], (1, "height", 8))
    with pytest.raises(ArgumentError, match="--vars"):
        symbolic_counts(PoolUpsampleNet, ["not_an_argument"], (1, 8, 8))
