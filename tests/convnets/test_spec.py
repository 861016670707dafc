"""The spec language: parsing, errors, and the course's VGG table."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainlab.convnets.models import COURSE_VGG_INPUT, COURSE_VGG_SPEC, CourseVGG
from trainlab.convnets.spec import build_from_spec, hand_counts, parse_spec
from trainlab.convnets.tracer import summary
from trainlab.errors import ShapeError, SpecError


def test_course_vgg_spec_has_the_handout_totals():
    with torch.device("meta"):
        model = build_from_spec(COURSE_VGG_SPEC, COURSE_VGG_INPUT)
    result = summary(model, COURSE_VGG_INPUT)
    assert (result.total_neurons, result.total_params, result.total_connections) == (
        1_957_988,
        52_444_644,
        999_407_616,
    )


def test_spec_table_equals_the_hand_written_module_and_the_closed_forms():
    with torch.device("meta"):
        spec_model, hand_model = build_from_spec(COURSE_VGG_SPEC, COURSE_VGG_INPUT), CourseVGG()

    def key(rows):
        return [(r.type, r.output_shape, r.neurons, r.params, r.connections) for r in rows]

    spec_rows = summary(spec_model, COURSE_VGG_INPUT).layers()
    assert key(spec_rows) == key(summary(hand_model, COURSE_VGG_INPUT).layers())
    closed = [
        (r["neurons"], r["params"], r["connections"]) for r in hand_counts(COURSE_VGG_SPEC, COURSE_VGG_INPUT)
    ]
    assert [(r.neurons, r.params, r.connections) for r in spec_rows] == closed


def test_optional_tokens_build_real_layers_with_solved_transposed_padding():
    model = build_from_spec(
        "conv3-8/2, bn, relu, convT4-8/2, convT5-4/2, upsample, avgpool4/4, fc-10, bn, relu", (3, 16, 16)
    )
    kinds = [type(m).__name__ for m in model]
    assert kinds == [
        "Conv2d",
        "BatchNorm2d",
        "ReLU",
        "ConvTranspose2d",
        "ConvTranspose2d",
        "Upsample",
        "AvgPool2d",
        "Flatten",
        "Linear",
        "BatchNorm1d",
        "ReLU",
    ]
    assert (model.convT2.padding, model.convT2.output_padding) == ((2, 2), (1, 1))  # k=5: 16→32 needs (2, 1)
    out = model.eval()(torch.zeros(2, 3, 16, 16))
    assert out.shape == (2, 10)
    rows = summary(model, (3, 16, 16)).layers()
    closed = hand_counts(
        "conv3-8/2, bn, relu, convT4-8/2, convT5-4/2, upsample, avgpool4/4, fc-10, bn, relu", (3, 16, 16)
    )
    assert [(r.neurons, r.params, r.connections) for r in rows] == [
        (c["neurons"], c["params"], c["connections"]) for c in closed if c["neurons"] or c["params"]
    ]


def test_tokens_are_case_insensitive_and_spaced_freely():
    layers = parse_spec(" CONV3-64 ,MaxPool,  FC-10")
    assert [(lay.kind, lay.kernel, lay.channels, lay.stride) for lay in layers] == [
        ("conv", 3, 64, 1),
        ("maxpool", 2, 0, 2),
        ("fc", 0, 10, 1),
    ]


@pytest.mark.parametrize(
    "spec, token, position",
    [
        ("conv3-64, maxpol, fc-10", "'maxpol'", 2),
        ("conv3x64", "'conv3x64'", 1),
        ("conv3-64,,fc-10", "(empty)", 2),
        ("fc-", "'fc-'", 1),
    ],
)
def test_syntax_errors_name_the_token_its_position_and_the_accepted_forms(spec, token, position):
    with pytest.raises(SpecError) as err:
        parse_spec(spec)
    message = str(err.value)
    assert f"token {position} {token}" in message
    assert "conv<k>-<C>" in message and "fc-<n>" in message
    assert "\n" not in message


def test_zero_sizes_and_empty_specs_are_spec_errors():
    with pytest.raises(SpecError, match="at least 1"):
        parse_spec("conv0-4")
    with pytest.raises(SpecError, match="empty"):
        parse_spec("  ")


def test_impossible_shapes_name_the_token():
    with pytest.raises(ShapeError, match="spec token 4 'maxpool'"):
        build_from_spec("maxpool, maxpool, maxpool, maxpool", (3, 8, 8))
    with pytest.raises(SpecError, match="cannot follow a fully connected"):
        build_from_spec("fc-10, conv3-4", (3, 8, 8))


def test_spec_model_runs_for_real():
    model = build_from_spec("conv3-4, relu, maxpool, fc-3", (1, 8, 8))
    assert isinstance(model, nn.Sequential)
    assert model(torch.zeros(1, 1, 8, 8)).shape == (1, 3)
