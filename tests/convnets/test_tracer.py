"""The accountant on a zoo of architectures, against trusted references.

References: parameters = sum(p.numel()) over the model's (deduplicated) parameters; MACs =
FlopCounterMode's FLOPs / 2 (it counts convolutions, transposed convolutions and matmuls,
2 FLOPs per multiply-accumulate) on a real forward pass.
"""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from trainlab.convnets.tracer import NotCountedError, Summary, parse_size, summary
from trainlab.errors import ArgumentError, ShapeError

_spec = importlib.util.spec_from_file_location("convnets_zoo", Path(__file__).with_name("zoo.py"))
zoo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(zoo)

FAST_ZOO = [name for name, (_, _, slow) in zoo.ZOO.items() if not slow]
SLOW_ZOO = [name for name, (_, _, slow) in zoo.ZOO.items() if slow]
ATTENTION = {"sdpa-block", "mha-block"}  # FlopCounterMode on CPU does not count fused attention


def flop_counter_macs(model: nn.Module, size: tuple[int, ...]) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.randn(1, *size, generator=torch.Generator().manual_seed(0)))
    return counter.get_total_flops() // 2


def attention_macs(model: nn.Module, size: tuple[int, ...]) -> int:
    """Closed form of the fused attention part: QKᵀ and weights·V, T·T·d each (all heads together)."""
    t, d = size
    return 2 * t * t * d


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def check_zoo_model(name: str) -> None:
    factory, size, _ = zoo.ZOO[name]
    torch.manual_seed(0)
    model = factory()
    before, training = state(model), model.training
    result = summary(model, size)
    assert result.total_params == sum(p.numel() for p in model.parameters())
    assert result.trainable_params == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert result.not_counted == []
    # the model is untouched: same tensors, same values, same device, same mode
    after = model.state_dict()
    assert after.keys() == before.keys()
    assert all(torch.equal(before[k], after[k]) and after[k].device.type == "cpu" for k in before)
    assert model.training == training
    reference = flop_counter_macs(model, size)
    if name in ATTENTION:
        reference += attention_macs(model, size)
    assert result.total_macs == reference


@pytest.mark.parametrize("name", FAST_ZOO)
def test_zoo_params_equal_numel_and_macs_equal_flop_counter(name):
    check_zoo_model(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW_ZOO)
def test_zoo_big_models_at_224(name):
    check_zoo_model(name)


def test_vgg16_and_resnet50_totals_at_224_without_running_them():
    # The true MACs (biases excluded) quoted in the issue; the real forward pass is in the slow test.
    for name, params, macs in [
        ("vgg16", 138_357_544, 15_470_264_320),
        ("resnet50", 25_557_032, 4_089_184_256),
    ]:
        with torch.device("meta"):
            model = zoo.ZOO[name][0]()
        result = summary(model, (3, 224, 224))
        assert (result.total_params, result.total_macs) == (params, macs)
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(torch.empty(1, 3, 224, 224, device="meta"))
        assert result.total_macs == counter.get_total_flops() // 2


def test_transposed_conv_macs_are_per_input_position_not_per_output():
    layer = nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1)
    row = summary(layer, (8, 16, 16)).rows[0]
    assert row.output_shape == (1, 4, 32, 32)
    assert row.macs == 8 * 4 * 16 * 16 * 16  # C_in·C_out·k²·H_in·W_in
    assert row.macs == flop_counter_macs(layer, (8, 16, 16))


def test_linear_on_3d_input_counts_every_row():
    layer = nn.Linear(16, 32)
    row = summary(layer, (10, 16)).rows[0]
    assert row.macs == 10 * 16 * 32 == flop_counter_macs(layer, (10, 16))
    assert row.neurons == 10 * 32


def test_pooling_and_upsampling_connections_follow_the_conventions():
    model = nn.Sequential(
        nn.MaxPool2d(3, 2, 1),
        nn.AvgPool2d(2),
        nn.Upsample(scale_factor=2),
        nn.Upsample(scale_factor=2, mode="bilinear"),
        nn.AdaptiveAvgPool2d(3),
    )
    rows = summary(model, (5, 16, 16)).rows
    assert [r.connections for r in rows] == [
        9 * 5 * 8 * 8,
        4 * 5 * 4 * 4,
        5 * 8 * 8,
        4 * 5 * 16 * 16,
        5 * 9 * 6 * 6,
    ]  # adaptive 16→3: 9 outputs, 6×6 windows
    assert [r.neurons for r in rows] == [5 * 64, 5 * 16, 5 * 64, 5 * 256, 5 * 9]
    assert all(r.macs == 0 for r in rows)


def test_activations_batchnorm_and_adds_add_no_neurons_but_bn_has_parameters():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout())
    rows = summary(model, (3, 8, 8)).rows
    assert [r.neurons for r in rows] == [4 * 6 * 6, 0, 0, 0]
    assert [r.params for r in rows] == [3 * 9 * 4 + 4, 8, 0, 0]
    assert summary(model, (3, 8, 8), ignore={"batchnorm"}).total_params == 112
    assert summary(model, (3, 8, 8), ignore={"bias", "batchnorm"}).total_params == 108


class Functional(nn.Module):
    """Only functional ops in the container: each becomes a row of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(8, 3, 3, 3))
        self.proj = nn.Parameter(torch.randn(8, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(F.conv2d(x, self.w, padding=1))
        y = torch.cat([y, F.max_pool2d(F.interpolate(y, scale_factor=2), 2)], dim=1)  # (N, 16, H, W)
        return y.flatten(2)[:, :8].transpose(1, 2) @ self.proj  # (N, HW, 8) @ (8, 5)


def test_functional_ops_are_counted_not_silently_zero():
    model = Functional()
    result = summary(model, (3, 6, 6))
    types = [r.type for r in result.rows]
    assert types == ["conv2d", "interpolate", "max_pool2d", "cat", "matmul"]
    assert result.total_params == 8 * 27 + 40
    assert result.total_macs == flop_counter_macs(model, (3, 6, 6))
    assert result.rows[1].connections == 8 * 12 * 12  # nearest: one link per output


class Spectral(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.fft.rfft2(x).abs()


def test_uncountable_ops_are_listed_and_strict_refuses_them():
    result = summary(Spectral(), (3, 4, 4))
    assert result.not_counted == ["fft_rfft2 in 'model' (fft_rfft2)"]
    assert "not counted: fft_rfft2" in result.to_text()
    with pytest.raises(NotCountedError, match="fft_rfft2"):
        summary(Spectral(), (3, 4, 4), strict=True)


class EinsumMix(nn.Module):
    """The issue's example: a 1×1 channel mix written as an einsum, w of shape (16, 32)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(16, 32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bchw,cd->bdhw", x, self.w)


def test_einsum_counts_every_index_combination_once():
    result = summary(EinsumMix(), (16, 8, 8), strict=True)
    assert result.total_macs == 1 * 16 * 8 * 8 * 32 == 32_768
    assert result.total_macs == flop_counter_macs(EinsumMix(), (16, 8, 8))
    assert result.total_params == 16 * 32
    assert result.rows[0].receptive_field.size == (1.0, 1.0)  # a channel mix keeps the pixel's field


@pytest.mark.parametrize("equation, shapes", [
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("bhqd,bhkd->bhqk", [(1, 2, 5, 8), (1, 2, 7, 8)]),
    ("ij,jk,kl->il", [(3, 4), (4, 5), (5, 6)]),  # (ij,jk) then (ik,kl): 60 + 90, not 3·4·5·6
    ("bij,jk,kl->bil", [(2, 8, 8), (8, 8), (8, 8)]),  # x @ A @ B
    ("bij,j->b", [(1, 100, 50), (50,)]),  # i summed out alone first: 50, not 5,000
    ("bi,bj->bij", [(2, 3), (2, 4)]),  # an outer product: no accumulation
    ("ij,jk", [(3, 4), (4, 5)]),  # implicit output
])
def test_einsum_rule_counts_the_matrix_products_torch_runs(equation, shapes):
    from trainlab.convnets.rules import _einsum_macs

    tensors = [torch.empty(s, device="meta") for s in shapes]
    counter = FlopCounterMode(display=False)
    with counter:
        torch.einsum(equation, *tensors)
    assert _einsum_macs(equation, shapes) == counter.get_total_flops() // 2


def test_einsum_rule_agrees_with_flop_counter_on_random_contractions():
    """Random equations of 2-4 operands (letters of size 1 included, implicit outputs): the short form
    equals FlopCounterMode wherever it answers; where it does not the tracer runs the counter."""
    import random
    import string

    from trainlab.convnets.rules import _einsum_macs, _einsum_run

    rng = random.Random(1)
    answered = 0
    for _ in range(300):
        letters = string.ascii_lowercase[:rng.randint(1, 6)]
        size = {c: rng.randint(1, 4) for c in letters}
        terms = ["".join(rng.sample(letters, rng.randint(1, min(4, len(letters)))))
                 for _ in range(rng.randint(2, 4))]
        used = sorted(set("".join(terms)))
        equation = ",".join(terms)
        if rng.random() < 0.8:
            equation += "->" + "".join(rng.sample(used, rng.randint(0, len(used))))
        shapes = [tuple(size[c] for c in t) for t in terms]
        operands = [torch.empty(s, device="meta") for s in shapes]
        counter = FlopCounterMode(display=False)
        with counter:
            torch.einsum(equation, *operands)
        want = counter.get_total_flops() // 2
        got = _einsum_macs(equation, shapes)
        answered += got is not None
        assert got in (None, want), (equation, shapes)
        assert _einsum_run(equation, operands)[1] == want
    assert answered > 250


def test_shared_modules_get_one_row_per_call_and_parameters_once():
    conv = nn.Conv2d(4, 4, 3, padding=1)
    model = nn.Sequential(conv, nn.ReLU(), conv)
    result = summary(model, (4, 8, 8))
    assert [r.name for r in result.rows] == ["0", "1", "0 (2)"]
    assert result.total_params == sum(p.numel() for p in model.parameters())
    assert result.rows[0].macs == result.rows[2].macs


def test_unused_parameters_still_counted_as_not_called():
    class WithSpare(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body, self.spare = nn.Linear(4, 4), nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x)

    result = summary(WithSpare(), (4,))
    assert result.total_params == 20 + 10
    assert [r.note for r in result.rows if r.name == "spare"] == ["not called"]


def test_channel_mismatch_names_the_layer():
    model = nn.Sequential(nn.Conv2d(3, 16, 3), nn.Conv2d(8, 4, 3))
    with pytest.raises(ShapeError, match=r"'1' \(Conv2d\) expects 8 input channels .* gets 16"):
        summary(model, (3, 16, 16))
    with pytest.raises(ShapeError, match=r"'1' \(Linear\) expects 10 input features"):
        summary(nn.Sequential(nn.Flatten(), nn.Linear(10, 2)), (3, 4, 4))


def test_impossible_shape_names_the_layer_and_the_arithmetic():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.MaxPool2d(2), nn.Conv2d(4, 4, 5))
    with pytest.raises(
        ShapeError, match=r"'2' \(Conv2d\).*input 3 \+ 2·padding 0 = 3 is smaller than the dilated"
    ):
        summary(model, (3, 8, 8))


def test_residual_add_shape_mismatch_is_a_shape_error():
    class Bad(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x) + x

    with pytest.raises(ShapeError, match="do not broadcast"):
        summary(Bad(), (3, 8, 8))


def test_a_4096_input_is_traced_from_shapes_and_conv_counts_scale_with_area():
    # A real forward pass at 4096² would need gigabytes; the trace only moves shapes around.
    model = zoo.ZOO["resnet18"][0]()
    before = state(model)
    small, huge = summary(model, (3, 2048, 2048)), summary(model, (3, 4096, 4096))
    assert huge.total_params == small.total_params == sum(p.numel() for p in model.parameters())
    conv = [(a, b) for a, b in zip(small.rows, huge.rows, strict=True) if a.type == "Conv2d"]
    assert all(b.macs == 4 * a.macs and b.neurons == 4 * a.neurons for a, b in conv)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_example_inputs_and_batch_size_scale_counts_not_params():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 36, 2))
    one = summary(model, (3, 8, 8))
    four = summary(model, example_inputs=torch.zeros(4, 3, 8, 8))
    assert four.total_params == one.total_params
    assert (four.total_neurons, four.total_macs) == (4 * one.total_neurons, 4 * one.total_macs)
    assert summary(model, (3, 8, 8), batch_size=4).totals() == four.totals()


def test_bad_arguments_are_argument_errors():
    model = nn.Linear(2, 2)
    with pytest.raises(ArgumentError, match="ignore"):
        summary(model, (2,), ignore={"weights"})
    with pytest.raises(ArgumentError, match="input_size"):
        summary(model, (0, 2))
    with pytest.raises(ArgumentError, match="exactly one"):
        summary(model)
    with pytest.raises(ArgumentError, match="--input"):
        parse_size("3xAx4")
    assert parse_size("3x112x112") == (3, 112, 112)


def test_data_dependent_forward_is_refused_with_a_reason():
    class Branchy(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 2 if x.sum().item() > 0 else x

    with pytest.raises(ArgumentError, match="does not depend on tensor values"):
        summary(Branchy(), (3, 4, 4))


def test_formats_carry_the_same_totals():
    result = summary(zoo.ZOO["unet"][0](), (1, 16, 16))
    assert isinstance(result, Summary)
    data = result.to_dict()
    assert data["totals"] == result.totals()
    lines = result.to_csv().splitlines()
    assert lines[0].startswith("name,type,output_shape,neurons")
    assert lines[-1].startswith("total,") and f",{result.total_params}," in lines[-1]
    md = result.to_markdown()
    assert md.startswith("| layer | type |") and f"{result.total_connections:,}" in md
    assert "conventions:" in result.to_text()
    # header, rows, total, conventions, and what the transposed convs' "~" means
    text = result.to_text().splitlines()
    assert len(text) == 1 + len(result.rows) + 1 + 1 + 1
    assert text[-1] == "receptive fields: ~ approximate (after upsampling)"


def test_agrees_with_torchinfo_on_parameters_and_conv_macs():
    torchinfo = pytest.importorskip("torchinfo")
    model = zoo.ZOO["resnet18"][0]()
    theirs = torchinfo.summary(copy.deepcopy(model), input_size=(1, 3, 64, 64), verbose=0)
    ours_ = summary(model, (3, 64, 64))
    assert ours_.total_params == theirs.total_params
    # torchinfo adds BN's per-element work and biases to MACs; conv MACs agree layer by layer
    conv_theirs = sum(layer.macs for layer in theirs.summary_list if isinstance(layer.module, nn.Conv2d))
    assert sum(r.macs for r in ours_.rows if r.type == "Conv2d") == conv_theirs


def test_recurrent_layers_count_every_weight_matrix_once_per_step():
    # T = 5 steps; LSTM layer 1: 4H×I and 4H×H per direction, layer 2 reads both directions (2H)
    lstm = nn.LSTM(8, 16, num_layers=2, batch_first=True, bidirectional=True)
    result = summary(lstm, (5, 8))
    assert result.total_macs == 5 * 2 * ((64 * 8 + 64 * 16) + (64 * 32 + 64 * 16))
    assert result.total_params == sum(p.numel() for p in lstm.parameters())
    gru = nn.GRU(4, 6)
    assert summary(gru, (3, 4)).total_macs == flop_counter_macs(gru, (3, 4))


def test_padding_modes_shift_the_field_and_keep_its_size():
    model = nn.Sequential(nn.Conv2d(1, 1, 3, padding=2, padding_mode="reflect"),
                          nn.Conv2d(1, 1, 3, padding=1, padding_mode="circular"))
    field = summary(model, (1, 20, 20)).rows[-1].receptive_field
    assert (field.size, field.start) == ((5.0, 5.0), (-1.0, -1.0))


def test_lazy_modules_are_refused_rather_than_initialised():
    lazy = nn.LazyLinear(3)
    with pytest.raises(ArgumentError, match="lazy"):
        summary(lazy, (4,))
    assert isinstance(lazy.weight, nn.parameter.UninitializedParameter)


def test_a_single_builtin_layer_is_one_row_named_model():
    rows = summary(nn.Conv2d(3, 8, 3), (3, 8, 8)).rows
    assert [(r.name, r.type, r.params) for r in rows] == [("(model)", "Conv2d", 224)]


class MaskToWeightDevice(nn.Module):
    """Common idioms: a mask moved to the weights' device, dtype round trips, where()."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = torch.ones(x.shape[1], x.shape[1]).to(self.lin.weight.device).tril()
        y = self.lin(x).to(torch.float64).float().type_as(x)
        return torch.where(mask.bool(), y @ y.transpose(1, 2), torch.zeros(1))


def test_device_moves_inside_forward_stay_on_meta():
    model = MaskToWeightDevice()
    result = summary(model, (5, 4))
    assert result.not_counted == []
    assert result.total_macs == 5 * 4 * 4 + 5 * 5 * 4 == flop_counter_macs(model, (5, 4))


@pytest.mark.parametrize("padding, stride, dilation",
                         [("same", 1, 1), ("same", 1, 2), ("valid", 2, 1), ("valid", 3, 2)])
def test_string_paddings_match_the_module(padding, stride, dilation):
    conv = nn.Conv2d(2, 3, 4, stride=stride, padding=padding, dilation=dilation)
    row = summary(conv, (2, 17, 13)).rows[0]
    with torch.no_grad():
        real = conv(torch.zeros(1, 2, 17, 13))
    assert row.output_shape == tuple(real.shape)
    assert row.macs == flop_counter_macs(conv, (2, 17, 13))
