"""The three networks: parameter counts, the course's closed form, shapes, derived paddings."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import trainlab.colourize.models as models_module
from trainlab.colourize.models import (
    MODELS,
    ConvTransposeNet,
    PoolUpsampleNet,
    UNet,
    build_model,
    count_parameters,
    pad_to_multiple,
    pool_conv_weight_count,
    up_padding,
)
from trainlab.errors import ArgumentError
from trainlab.shapes import conv_transpose_output_size


def test_public_names():
    assert set(models_module.__all__) >= {"PoolUpsampleNet", "ConvTransposeNet", "UNet", "build_model"}
    assert all(hasattr(models_module, n) for n in models_module.__all__)


@pytest.mark.parametrize(("name", "expected"), [("pool", 49_728), ("transpose", 49_728), ("unet", 56_856)])
def test_course_parameter_counts(name, expected):
    assert count_parameters(build_model(name)) == expected


def _conv_weights(model: nn.Module) -> int:
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d))


@pytest.mark.parametrize(("nic", "nf", "nc"), [(1, 32, 24), (1, 8, 10), (3, 16, 5), (2, 7, 13)])
def test_pool_conv_weights_follow_the_course_closed_form(nic, nf, nc):
    net = PoolUpsampleNet(3, nic, nf, nc)
    course = 9 * nic * nf + 36 * nf**2 + 9 * nf * nc + 9 * nc**2
    assert _conv_weights(net) == course == pool_conv_weight_count(nic, nf, nc)


@pytest.mark.parametrize("kernel", [3, 4, 5])
def test_pool_conv_weights_scale_with_kernel_area(kernel):
    assert _conv_weights(PoolUpsampleNet(kernel, 1, 8, 6)) == pool_conv_weight_count(1, 8, 6, kernel)


def test_transpose_and_pool_have_the_same_weights_but_unet_reads_more_channels():
    nic, nf, nc = 1, 32, 24
    extra = 9 * (nf * nc + nic * nc)  # up2 reads NF more channels, final conv reads NIC more
    assert _conv_weights(ConvTransposeNet()) == _conv_weights(PoolUpsampleNet())
    assert _conv_weights(UNet()) - _conv_weights(ConvTransposeNet()) == extra


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("kernel", [2, 3, 4, 5, 6, 7])
@pytest.mark.parametrize("size", [(32, 32), (8, 44)])
def test_output_has_the_input_spatial_size(name, kernel, size):
    net = build_model(name, kernel=kernel, num_filters=4, num_colours=5).eval()
    out = net(torch.rand(2, 1, *size))
    assert out.shape == (2, 5, *size)


@pytest.mark.parametrize("kernel", [3, 4, 5])
def test_transposed_paddings_come_from_the_solver_and_double_the_size(kernel):
    sol = up_padding(kernel)
    assert {3: (1, 1), 4: (1, 0), 5: (2, 1)}[kernel] == (sol.padding, sol.output_padding)
    net = ConvTransposeNet(kernel, 1, 4, 3)
    conv_t = net.up1[0]
    assert (conv_t.padding[0], conv_t.output_padding[0]) == tuple(sol)
    for h in (4, 8, 16):
        assert conv_transpose_output_size(h, kernel, 2, sol.padding, 1, sol.output_padding) == 2 * h


def test_unet_skip_connections_feed_the_concatenated_channels():
    net = UNet(3, 1, 32, 24)
    assert net.up2[0].in_channels == 64 and net.final.in_channels == 25


def test_same_seed_same_weights_and_global_rng_untouched():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a, b = build_model("unet", seed=5), build_model("unet", seed=5)
    c = build_model("unet", seed=6)
    assert torch.equal(torch.random.get_rng_state(), before)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["down1.0.weight"], sc["down1.0.weight"])


@pytest.mark.parametrize(("kwargs", "argument"), [
    ({"name": "vgg"}, "--model"), ({"name": "pool", "kernel": 9}, "kernel"),
    ({"name": "pool", "num_filters": 0}, "num_filters"), ({"name": "unet", "num_colours": 1}, "num_colours"),
])
def test_bad_arguments_name_themselves(kwargs, argument):
    with pytest.raises(ArgumentError, match=argument):
        build_model(**kwargs)


def test_pad_to_multiple_replicates_and_reports_the_original_size():
    x = torch.arange(15.0).reshape(1, 1, 3, 5)
    padded, size = pad_to_multiple(x, 4)
    assert padded.shape == (1, 1, 4, 8) and size == (3, 5)
    assert torch.equal(padded[..., :3, :5], x)
    assert torch.equal(padded[..., 3, :5], x[..., 2, :])  # replicated last row


@pytest.mark.parametrize("module", ["trainlab.colourize", "trainlab.colourize.data",
                                    "trainlab.colourize.palette", "trainlab.colourize.train",
                                    "trainlab.colourize.evaluate", "trainlab.colourize.claims",
                                    "trainlab.colourize.cli"])
def test_every_public_name_exists(module):
    import importlib

    mod = importlib.import_module(module)
    assert mod.__all__ and all(hasattr(mod, name) for name in mod.__all__)


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("kernel", [3, 4])
def test_stacked_networks_compute_each_network_on_its_own_channels(name, kernel):
    from trainlab.colourize.models import stack_models, unstack_model

    nets = [build_model(name, kernel=kernel, num_filters=5, num_colours=6, seed=s).eval() for s in range(3)]
    stacked = stack_models(nets).eval()
    assert count_parameters(stacked) == 3 * count_parameters(nets[0])
    x = torch.rand(2, 3, 16, 20)
    with torch.no_grad():
        out = stacked(x)  # (2, 3·6, 16, 20)
        for i, net in enumerate(nets):
            # grouped vs plain convolution: float32 sums in another order, ~1e-6 relative
            assert torch.allclose(out[:, 6 * i: 6 * i + 6], net(x[:, i: i + 1]), atol=1e-5)
    back = unstack_model(stacked, 1)
    pairs = zip(back.state_dict().values(), nets[1].state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)


def test_stacking_refuses_networks_of_different_kinds():
    from trainlab.colourize.models import stack_models

    with pytest.raises(ValueError):
        stack_models([build_model("pool", num_filters=4), build_model("unet", num_filters=4)])
