"""Defects found by a review of the convnets CLI and shape rules, each pinned by a test."""

from __future__ import annotations

import re

import pytest

from trainlab.cli import main
from trainlab.shapes import adaptive_pool_windows


def test_a_spec_size_beyond_2_31_is_a_spec_error(capsys):
    assert main(["convnets", "summary", "conv3-99999999999999999999", "--input", "3x32x32"]) == 2
    err = capsys.readouterr().err
    assert "channel/unit count must be below 2,147,483,648" in err and len(err.strip().splitlines()) == 1


def test_an_upsampling_scale_that_overflows_is_an_argument_error(capsys):
    assert main(["convnets", "shape", "8", "--layer", "upsample", "--scale-factor", "1e308"]) == 2
    assert "--scale-factor" in capsys.readouterr().err


@pytest.mark.parametrize("n", [64, 65, 70, 10**11])
def test_adaptive_windows_print_both_ends_of_a_long_list_without_computing_it(capsys, n):
    assert main(["convnets", "shape", "8", "--layer", "adaptive", "--output-size", str(n)]) == 0
    out = capsys.readouterr().out
    shown = [(int(a), int(b)) for a, b in re.findall(r"\[(\d+),(\d+)\)", out)]
    assert out.startswith(f"{n} windows ")
    if n <= 64:
        assert shown == adaptive_pool_windows(8, n)
    else:
        ends = [*range(32), *range(n - 32, n)]
        assert shown == [((i * 8) // n, -(-((i + 1) * 8) // n)) for i in ends]
        if n < 1000:  # the library function agrees where it can list them all
            every = adaptive_pool_windows(8, n)
            assert shown == [every[i] for i in ends]
        assert "…" in out


def test_a_forward_that_calls_sys_exit_is_one_line(tmp_path, capsys):
    (tmp_path / "m.py").write_text(
        "import sys\nfrom torch import nn\n\nclass ExitFwd(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.conv = nn.Conv2d(3, 4, 3)\n\n"
        "    def forward(self, x):\n        sys.exit(5)\n")
    assert main(["convnets", "summary", f"{tmp_path / 'm.py'}:ExitFwd()", "--input", "3x8x8"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "TARGET" in err[0] and "SystemExit" in err[0]


def test_rf_check_measures_a_model_that_changes_its_input_in_place(tmp_path, capsys):
    (tmp_path / "m.py").write_text(
        "from torch import nn\n\nclass InPlace(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.conv = nn.Conv2d(3, 4, 3)\n\n"
        "    def forward(self, x):\n        x.mul_(2)\n        return self.conv(x)\n")
    assert main(["convnets", "rf", f"{tmp_path / 'm.py'}:InPlace()", "--input", "3x9x9", "--check"]) == 0
    out = capsys.readouterr().out
    assert "gradient support of unit (3, 3) of (model): (3, 3)..(5, 5) (size 3×3)" in out
    assert "formula interval [3, 5], [3, 5]" in out


@pytest.mark.parametrize("options", [{}, {"add_bias_kv": True}, {"add_zero_attn": True},
                                     {"add_bias_kv": True, "add_zero_attn": True}])
def test_attention_macs_count_the_extra_key_positions(options):
    import torch
    from torch import nn
    from torch.utils.flop_counter import FlopCounterMode

    from trainlab.convnets import summary

    class Attend(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(8, 2, **options)

        def forward(self, q, k):
            return self.attn(q, k, k)[0]

    model = Attend().eval()
    q, k = torch.rand(5, 2, 8), torch.rand(7, 2, 8)
    with FlopCounterMode(display=False) as counter:
        model(q, k)
    assert summary(model, example_inputs=[q, k]).total_macs == counter.get_total_flops() // 2


@pytest.mark.parametrize("mode", ["circular", "reflect", "replicate"])
def test_fields_after_padding_that_copies_pixels_are_approximate(mode):
    from torch import nn

    from trainlab.convnets import summary

    model = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1, padding_mode=mode),
                          nn.Conv2d(1, 1, 3, padding=1, padding_mode=mode))
    fields = [row.receptive_field for row in summary(model, (1, 9, 9)).rows]
    assert [f.size for f in fields] == [(3.0, 3.0), (5.0, 5.0)]
    assert all(f.status == "approximate" for f in fields)
    zeros = summary(nn.Conv2d(1, 1, 3, padding=1), (1, 9, 9)).rows[0].receptive_field
    assert zeros.status == "exact"


def test_a_torchscript_model_or_part_is_refused_not_counted_as_zero():
    """Scripted code calls no torch function the tracer sees: every count was 0, even under --strict."""
    import torch
    from torch import nn

    from trainlab.convnets import summary
    from trainlab.errors import ArgumentError

    class Half(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 8, 3), torch.jit.script(nn.Conv2d(8, 8, 3))

        def forward(self, x):
            return self.b(self.a(x))

    scripted = torch.jit.script(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()))
    traced = torch.jit.trace(nn.Conv2d(3, 8, 3), torch.randn(1, 3, 8, 8))
    frozen = torch.jit.freeze(torch.jit.script(nn.Conv2d(3, 8, 3).eval()))
    cases = ((scripted, "the model"), (traced, "the model"), (frozen, "the model"), (Half(), "b"))
    for model, where in cases:
        with pytest.raises(ArgumentError, match=f"TorchScript module \\({where}: .*before torch.jit.script"):
            summary(model, (3, 8, 8), strict=True)


def test_a_model_that_overrides_train_is_left_as_it_was():
    """Its train() froze the parameters (requires_grad) as a side effect: eval tracing called it and
    left the model frozen, so the next summary counted 0 trainable parameters."""
    from torch import nn

    from trainlab.convnets import summary

    class OwnTrain(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c, self.bn = nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8)

        def train(self, mode: bool = True):
            super().train(mode)
            self.c.requires_grad_(mode)
            self.bn.eval()  # frozen batch norm, as detection backbones do
            return self

        def forward(self, x):
            return self.bn(self.c(x))

    model = OwnTrain()
    for training in (False, True, False):
        result = summary(model, (3, 8, 8), training=training)
        assert result.trainable_params == result.total_params == 224 + 16
        assert all(p.requires_grad for p in model.parameters())
        assert model.training and model.c.training and model.bn.training  # as built
    # training=True went through the model's own train(): its batch norm stayed in eval mode, so the
    # statistics are the running ones and the field stays local
    assert summary(model, (3, 8, 8), training=True).rows[-1].receptive_field.status != "global"


def test_grouped_query_attention_is_counted_like_flop_counter():
    """enable_gqa=True: 2 key/value heads serve 8 query heads; it failed as the user's model."""
    import torch
    import torch.nn.functional as F
    from torch import nn
    from torch.utils.flop_counter import FlopCounterMode

    from trainlab.convnets import summary

    class GQA(nn.Module):
        def forward(self, x):  # (N, T, 32)
            n, t, _ = x.shape
            q = x.reshape(n, t, 8, 4).transpose(1, 2)
            kv = x[..., :8].reshape(n, t, 2, 4).transpose(1, 2)
            return F.scaled_dot_product_attention(q, kv, kv, enable_gqa=True)

    result = summary(GQA(), (10, 32), strict=True)
    counter = FlopCounterMode(display=False)
    with counter:
        GQA()(torch.empty(1, 10, 32, device="meta"))
    assert result.total_macs == counter.get_total_flops() // 2 == 8 * 10 * 10 * (4 + 4)
    assert result.rows[-1].output_shape == (1, 8, 10, 4)


def test_strict_accepts_grad_modes_checkpoints_weight_norm_and_counts_mv_dot_cdist_and_bags():
    """--strict refused no_grad blocks, checkpointing and weight norm as 'not counted'; mv and dot
    (spectral norm's power step) were not counted though matmul of the same shapes was."""
    import torch
    from torch import nn

    from trainlab.convnets import summary

    class Checkpointed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            with torch.no_grad():
                y = self.c(x)
            return torch.utils.checkpoint.checkpoint(self.c, x, use_reentrant=False) + y

    class Normed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.utils.parametrizations.weight_norm(nn.Linear(4, 4))
            self.c = nn.utils.spectral_norm(nn.Linear(4, 4)).eval()

        def forward(self, x):
            return self.c(self.a(x))

    class Distances(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.randn(8, 4))
            self.bag = nn.EmbeddingBag(10, 6)

        def forward(self, x):  # (N, 5, 4)
            d = torch.cdist(x, x)  # (N, 5, 5): 5·5·4 squared differences accumulated
            return d.sum() + torch.mv(self.w, x[0, 0]).sum() + torch.dot(x[0, 0], x[0, 1])

    conv = 4 * 3 * 9 * 6 * 6
    assert summary(Checkpointed(), (3, 8, 8), strict=True).total_macs == 2 * conv
    assert summary(Normed(), (4,), strict=True).total_macs == 16 + 16 + 4 * 4 + 4  # two linears, mv, dot
    assert summary(Distances(), (5, 4), strict=True).total_macs == 5 * 5 * 4 + 8 * 4 + 4
    bag = summary(nn.EmbeddingBag(10, 6), example_inputs=torch.randint(10, (3, 7)), strict=True)
    assert (bag.total_macs, bag.total_params, bag.rows[0].output_shape) == (0, 60, (3, 6))
    offsets = summary(nn.EmbeddingBag(10, 6), example_inputs=[torch.randint(10, (9,)), torch.tensor([0, 4])],
                      strict=True)
    assert offsets.rows[0].output_shape == (2, 6)


def test_what_a_users_model_prints_never_lands_in_the_json_on_stdout(tmp_path, capsys):
    import json

    (tmp_path / "printer.py").write_text(
        "import torch\nfrom torch import nn\nprint('importing')\n"
        "class Printer(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        print('building')\n"
        "        self.c = nn.Conv2d(3, 4, 3)\n"
        "    def forward(self, x):\n        print('shape', x.shape)\n        return self.c(x)\n")
    target = f"{tmp_path / 'printer.py'}:Printer"
    assert main(["convnets", "summary", target, "--input", "3x8x8", "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["totals"]["params"] == 112
    assert "importing" in err and "building" in err and "shape" in err
    assert main(["convnets", "rf", target, "--input", "3x8x8", "--format", "json", "--check"]) == 0
    assert "check" in json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("args, flag", [(["--input", "3x99999999999999999999x8"], "--input"),
                                        (["--input", "3x8x8", "--batch-size", "99999999999999999999"],
                                         "--batch-size"),
                                        (["--input", "4000000000x2x2"], "--input")])
def test_sizes_that_overflow_name_their_flag(capsys, args, flag):
    assert main(["convnets", "summary", "conv3-8", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and flag in err[0] and "TARGET" not in err[0]


def test_rf_check_estimates_its_memory_first(capsys):
    """It allocated 38 GB and blamed --check; now it is refused up front, naming --input."""
    assert main(["convnets", "rf", "conv3-8, conv3-8", "--input", "3x40000x40000", "--check"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--input='3x40000x40000' needs about" in err[0]


def test_rf_blames_the_model_not_a_valid_input_when_no_field_can_be_followed(tmp_path, capsys):
    (tmp_path / "lost.py").write_text(
        "from torch import nn\nclass Lost(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.l = nn.Linear(48, 8)\n"
        "    def forward(self, x):\n        return self.l(x.flatten(1)[:, :48])\n")
    assert main(["convnets", "rf", f"{tmp_path / 'lost.py'}:Lost", "--input", "3x8x8"]) == 2
    err = capsys.readouterr().err
    assert "TARGET=" in err and "spatial axes" in err and "--input" not in err
    assert main(["convnets", "rf", f"{tmp_path / 'lost.py'}:Lost", "--input", "48"]) == 2
    assert "--input='48'" in capsys.readouterr().err
