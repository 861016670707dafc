"""``trainlab convnets …`` in-process through trainlab.cli.main: output, exit codes, one-line errors."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from trainlab.cli import main

VGG = "conv3-64, maxpool, conv3-128, maxpool, conv3-256, conv3-256, maxpool, fc-1024, fc-100"
FACTORY_FILE = """
from torch import nn

def small(num_filters=4, num_colours=3):
    return nn.Sequential(nn.Conv2d(1, num_filters, 3, padding=1),
                         nn.Conv2d(num_filters, num_colours, 3, padding=1))
"""


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_summary_of_the_course_spec_prints_the_handout_totals(capsys):
    code, out, err = run(capsys, "convnets", "summary", VGG, "--input", "3x112x112")
    assert code == 0, err
    total = next(line for line in out.splitlines() if line.startswith("total"))
    assert "1,957,988" in total and "52,444,644" in total and "999,407,616" in total


@pytest.mark.parametrize("fmt", ["json", "csv", "md"])
def test_summary_formats(capsys, fmt):
    code, out, _ = run(capsys, "convnets", "summary", VGG, "--input", "3x112x112", "--format", fmt)
    assert code == 0
    if fmt == "json":
        assert json.loads(out)["totals"]["connections"] == 999_407_616
    elif fmt == "csv":
        assert out.splitlines()[-1].startswith("total,,,1957988,52444644,52444644,998002688,999407616")
    else:
        assert out.startswith("| layer |") and "999,407,616" in out


def test_summary_of_a_module_reference_with_ignore(capsys):
    code, out, err = run(
        capsys,
        "convnets",
        "summary",
        "trainlab.colourize.models:PoolUpsampleNet(num_filters=8)",
        "--input",
        "1x32x32",
        "--ignore",
        "bias,batchnorm",
        "--format",
        "json",
    )
    assert code == 0, err
    nic, nf, nc = 1, 8, 24
    assert json.loads(out)["totals"]["params"] == 9 * nic * nf + 36 * nf**2 + 9 * nf * nc + 9 * nc**2


def test_summary_of_a_file_factory(capsys, tmp_path: Path):
    path = tmp_path / "nets.py"
    path.write_text(FACTORY_FILE)
    code, out, err = run(capsys, "convnets", "summary", f"{path}:small(num_filters=2)", "--input", "1x8x8")
    assert code == 0, err
    assert "Conv2d" in out


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["convnets", "summary", "conv3-64, maxpol", "--input", "3x32x32"], "spec token 2 'maxpol'"),
        (["convnets", "summary", "maxpool, maxpool, maxpool", "--input", "3x4x4"], "spec token 3 'maxpool'"),
        (["convnets", "summary", VGG, "--input", "3x112"], "--input='3x112'"),
        (["convnets", "summary", VGG, "--input", "3xbig"], "--input='3xbig'"),
        (["convnets", "summary", VGG, "--input", "3x112x112", "--ignore", "weights"], "--ignore='weights'"),
        (["convnets", "summary", "no.such.module:f()", "--input", "3x8x8"], "TARGET='no.such.module:f()'"),
        (
            [
                "convnets",
                "summary",
                "trainlab.colourize.models:PoolUpsampleNet(__import__('os'))",
                "--input",
                "1x8x8",
            ],
            "Python literals",
        ),
        (
            [
                "convnets",
                "summary",
                "trainlab.colourize.models:PoolUpsampleNet(num_in_channels=3)",
                "--input",
                "1x8x8",
            ],
            "expects 3 input channels",
        ),
        (
            ["convnets", "summary", "trainlab.colourize.models:PoolUpsampleNet()", "--input", "1x2x2"],
            "smaller than the window",
        ),
        (
            [
                "convnets",
                "summary",
                "trainlab.colourize.models:PoolUpsampleNet()",
                "--input",
                "1x8x8",
                "--format",
                "xml",
            ],
            "--format",
        ),
        (
            [
                "convnets",
                "symbolic",
                "trainlab.colourize.models:PoolUpsampleNet()",
                "--vars",
                "num filters",
                "--input",
                "1x8x8",
            ],
            "--vars='num filters'",
        ),
        (["convnets", "shape", "5", "-k", "7"], "smaller than the dilated kernel"),
        (["convnets", "solve-padding", "4", "100", "-k", "3", "-s", "2", "--transposed"], "too large"),
    ],
)
def test_bad_input_exits_2_with_one_line(capsys, args, fragment):
    code, out, err = run(capsys, *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], err
    assert "Traceback" not in err


def test_strict_refuses_uncounted_ops(capsys, tmp_path: Path):
    path = tmp_path / "ein.py"
    path.write_text(
        "import torch\nfrom torch import nn\n\nclass Ein(nn.Module):\n"
        "    def forward(self, x):\n        return torch.fft.rfft2(x).abs()\n"
    )
    code, out, _ = run(capsys, "convnets", "summary", f"{path}:Ein()", "--input", "3x8x8")
    assert code == 0 and "not counted: fft_rfft2" in out
    code, _, err = run(capsys, "convnets", "summary", f"{path}:Ein()", "--input", "3x8x8", "--strict")
    assert code == 2 and "fft_rfft2" in err and len(err.strip().splitlines()) == 1


def test_symbolic_prints_the_course_polynomial(capsys):
    code, out, err = run(
        capsys,
        "convnets",
        "symbolic",
        "trainlab.colourize.models:PoolUpsampleNet(kernel=3)",
        "--vars",
        "num_in_channels,num_filters,num_colours",
        "--input",
        "num_in_channels,8,8",
        "--ignore",
        "bias,batchnorm",
    )
    assert code == 0, err
    params = next(line for line in out.splitlines() if line.startswith("params"))
    assert params.split(None, 1)[1] == (
        "9*num_colours**2 + 9*num_colours*num_filters + 36*num_filters**2 + 9*num_filters*num_in_channels"
    )
    assert "exact at 3 fresh points" in out


def test_rf_prints_fields_and_checks_them(capsys):
    code, out, err = run(
        capsys, "convnets", "rf", "conv3-4, maxpool, conv3-4", "--input", "1x32x32", "--check"
    )
    assert code == 0, err
    lines = out.splitlines()
    assert lines[1].split()[2:] == ["3", "1", "0"]
    assert lines[3].split()[2:] == ["8", "2", "0.5"]
    assert "(13, 13)..(20, 20)" in lines[-1] and "[13, 20]" in lines[-1]


def test_shape_and_solve_padding_commands(capsys):
    assert run(capsys, "convnets", "shape", "28", "-k", "4", "-s", "2", "-p", "1")[1].strip() == "14"
    code, out, _ = run(capsys, "convnets", "solve-padding", "16", "32", "-k", "5", "-s", "2", "--transposed")
    assert code == 0 and out.strip() == "padding=2 output_padding=1"


def test_module_entry_point_in_a_subprocess():
    proc = subprocess.run(
        [sys.executable, "-m", "trainlab", "convnets", "summary", "conv3-8, fc-2x", "--input", "3x8x8"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "spec token 2 'fc-2x'" in proc.stderr


def test_shape_covers_adaptive_pooling_and_upsampling(capsys):
    code, out, _ = run(capsys, "convnets", "shape", "5", "--layer", "adaptive", "--output-size", "3")
    assert code == 0 and out.strip() == "3 windows [0,2) [1,4) [3,5)"
    code, out, _ = run(capsys, "convnets", "shape", "7", "--layer", "upsample", "--scale-factor", "1.5")
    assert code == 0 and out.strip() == "10"
    code, _, err = run(capsys, "convnets", "shape", "7", "-s", "0")
    assert code == 2 and "stride=0" in err


ZOO_FILE = str(Path(__file__).with_name("zoo.py"))


def test_json_gives_receptive_fields_as_numbers(capsys):
    code, out, err = run(capsys, "convnets", "summary", "conv3-4, maxpool, conv3-4", "--input", "1x32x32",
                         "--format", "json")
    assert code == 0, err
    rows = json.loads(out)["rows"]
    assert [r["rf_size"] for r in rows] == [[3, 3], [4, 4], [8, 8]]
    assert rows[1]["rf_start"] == [0.5, 0.5] and rows[1]["rf_status"] == "exact"
    code, out, _ = run(capsys, "convnets", "rf", "conv3-4, maxpool", "--input", "1x16x16", "--format", "json")
    assert code == 0 and json.loads(out)["layers"][-1]["rf_jump"] == [2, 2]


def test_a_constructor_that_needs_tensor_values_is_built_on_the_cpu(capsys):
    code, out, err = run(capsys, "convnets", "summary", f"{ZOO_FILE}:RegNetStyle()", "--input", "3x32x32",
                         "--strict", "--format", "json")
    assert code == 0, err
    import importlib.util

    spec = importlib.util.spec_from_file_location("zoo_for_cli", ZOO_FILE)
    zoo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(zoo)
    assert json.loads(out)["totals"]["params"] == sum(p.numel() for p in zoo.RegNetStyle().parameters())


def test_factories_and_forward_passes_that_raise_are_one_line_exit_2(capsys, tmp_path: Path):
    path = tmp_path / "broken.py"
    path.write_text(
        "import torch\nfrom torch import nn\n\n"
        "def boom():\n    raise ValueError('no such width')\n\n"
        "class BadForward(nn.Module):\n    def forward(self, x):\n        raise KeyError('layer7')\n"
    )
    for target, fragment in [(f"{path}:boom()", "ValueError: no such width"),
                             (f"{path}:BadForward()", "KeyError: 'layer7'")]:
        for command in ("summary", "rf"):
            code, out, err = run(capsys, "convnets", command, target, "--input", "3x8x8")
            assert code == 2, (command, err)
            assert len(err.strip().splitlines()) == 1 and fragment in err and "Traceback" not in err


def test_convnext_fields_continue_past_the_stem_and_train_mode_adds_the_aux_head(capsys):
    code, out, err = run(capsys, "convnets", "rf", f"{ZOO_FILE}:ConvNeXt()", "--input", "3x32x32")
    assert code == 0, err
    names = [line.split()[0] for line in out.splitlines()[1:]]
    assert "features.3.dwconv" in names
    evaluated = run(capsys, "convnets", "summary", f"{ZOO_FILE}:AuxHeadNet()", "--input", "3x16x16",
                    "--format", "json")[1]
    trained = run(capsys, "convnets", "summary", f"{ZOO_FILE}:AuxHeadNet()", "--input", "3x16x16",
                  "--format", "json", "--train-mode")[1]
    assert json.loads(trained)["totals"]["macs"] == json.loads(evaluated)["totals"]["macs"] + 32 * 10


def test_output_file_follows_its_extension_and_bad_paths_are_one_line(capsys, tmp_path: Path):
    target = tmp_path / "table.json"
    code, out, err = run(capsys, "convnets", "summary", "conv3-4, fc-2", "--input", "1x8x8",
                         "-o", str(target))
    assert code == 0 and out == "", err
    assert json.loads(target.read_text())["totals"]["params"] == 40 + 4 * 64 * 2 + 2
    code, _, err = run(capsys, "convnets", "summary", "conv3-4", "--input", "1x8x8", "-o", str(target))
    assert code == 2 and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert run(capsys, "convnets", "summary", "conv3-4", "--input", "1x8x8", "-o", str(target),
               "--overwrite")[0] == 0
    for bad, fragment in [(tmp_path / "t.xlsx", "a file ending in"), (tmp_path, "a file ending in"),
                          (tmp_path / "missing" / "dir" / "t.md", None),
                          (tmp_path / "sub.csv", "this is a folder")]:
        if bad.name == "sub.csv":
            bad.mkdir()
        code, _, err = run(capsys, "convnets", "summary", "conv3-4", "--input", "1x8x8", "-o", str(bad))
        if fragment is None:  # folders are made as needed
            assert code == 0 and bad.is_file()
            continue
        assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, err
    readonly = tmp_path / "ro"
    readonly.mkdir()
    readonly.chmod(0o500)
    try:
        code, _, err = run(capsys, "convnets", "summary", "conv3-4", "--input", "1x8x8",
                           "-o", str(readonly / "t.csv"))
        import os

        if os.geteuid() != 0:  # root writes anywhere
            assert code == 2 and "--output=" in err and len(err.strip().splitlines()) == 1
    finally:
        readonly.chmod(0o700)


def test_piped_output_is_not_wrapped(capsys):
    long_spec = ", ".join(["conv3-512"] * 6)
    code, out, _ = run(capsys, "convnets", "summary", long_spec, "--input", "3x64x64")
    assert code == 0
    footer = next(line for line in out.splitlines() if line.startswith("conventions:"))
    assert len(footer) > 120  # one line, as long as it is


def test_symbolic_factory_that_raises_is_one_line(capsys, tmp_path: Path):
    path = tmp_path / "bad_factory.py"
    path.write_text("def net(width=4):\n    raise RuntimeError('widths must be even')\n")
    code, _, err = run(capsys, "convnets", "symbolic", f"{path}:net", "--vars", "width", "--input", "3x8x8")
    assert code == 2 and "RuntimeError: widths must be even" in err and len(err.strip().splitlines()) == 1


def test_rf_check_measures_the_last_spatial_layer_of_a_classifier(capsys):
    code, out, err = run(capsys, "convnets", "rf", f"{ZOO_FILE}:ResNetD()", "--input", "3x32x32", "--check",
                         "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    check = doc["check"]
    assert check["layer"] == "features"  # the last spatial block, not the classifier
    lo = [max(0, math.ceil(a)) for a, _ in check["formula_interval"]]
    hi = [min(31, math.floor(b)) for _, b in check["formula_interval"]]
    assert (check["lo"], check["hi"]) == (lo, hi)
