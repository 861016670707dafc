"""`trainlab loops sharpness` and `trainlab loops lr-find`: JSON, tables, figures, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from trainlab.cli import main


def _json(capsys, *args: str) -> dict:
    assert main(["loops", *args, "--format", "json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    return json.loads(out)


def test_sharpness_json_matches_the_closed_form_on_a_users_npz(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(0)
    X, t = rng.standard_normal((12, 30)), rng.standard_normal(12)
    np.savez(tmp_path / "ls.npz", X=X, t=t)
    out = _json(capsys, "sharpness", "--problem", f"linreg:{tmp_path / 'ls.npz'}", "--tol", "1e-10")
    exact = 2 / 12 * np.linalg.norm(X, 2) ** 2
    assert out["lambda_max"] == pytest.approx(exact, rel=1e-9)
    assert out["stable_lr_bound"] == pytest.approx(2 / exact, rel=1e-9)
    assert isinstance(out["hvps"], int) and 1 <= out["hvps"] <= 30 and out["converged"] is True


def test_sharpness_table_on_a_module_factory(tmp_path: Path, capsys) -> None:
    (tmp_path / "mynet.py").write_text(
        "import torch\ndef net(width=8):\n    return torch.nn.Sequential("
        "torch.nn.Linear(64, width), torch.nn.Tanh(), torch.nn.Linear(width, 10))\n"
    )
    code = main(
        [
            "loops",
            "sharpness",
            "--problem",
            f"{tmp_path / 'mynet.py'}:net(4)",
            "--data",
            "digits",
            "--batch-size",
            "100",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "λ_max" in out and "310 parameters" in out


def test_lr_find_json_has_the_promised_keys_and_writes_the_figure(tmp_path: Path, capsys) -> None:
    fig = tmp_path / "lr.png"
    out = _json(
        capsys,
        "lr-find",
        "--problem",
        "digits-mlp",
        "--seeds",
        "3",
        "--batch-size",
        "64",
        "--steps",
        "40",
        "--min-lr",
        "1e-3",
        "-o",
        str(fig),
    )
    assert {"suggested_lr", "divergence_lr", "spread", "lrs", "losses"} <= out.keys()
    assert len(out["spread"]) == 3 and len(out["lrs"]) == len(out["losses"])
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and json.loads(fig.with_suffix(".json").read_text())
    assert main(["loops", "lr-find", "--problem", "linreg", "-o", str(fig)]) == 2  # exists: no overwrite
    assert "--overwrite" in capsys.readouterr().err


def test_lr_find_says_when_the_loss_never_rose_up_to_max_lr(capsys) -> None:
    assert main(["loops", "lr-find", "--problem", "linreg", "--max-lr", "0.01"]) == 0
    out = capsys.readouterr().out
    assert "≥ 0.01 (unbounded)" in out and "never rose up to --max-lr 0.01" in out
    assert "larger --max-lr" in out
    assert main(["loops", "lr-find", "--problem", "linreg"]) == 0  # diverges inside: a plain answer
    assert "unbounded" not in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, flag",
    [
        (["sharpness", "--problem", "nope"], "--problem"),
        (["lr-find", "--problem", "linreg", "--seeds", "0"], "--seeds"),
        (["sharpness", "--problem", "linreg", "--tol", "0"], "--tol"),
        (["sharpness", "--problem", "linreg", "--tol", "-1e-3"], "--tol"),
        (["sharpness", "--problem", "linreg", "--tol", "nan"], "--tol"),
        (["lr-find", "--problem", "linreg", "--min-lr", "1", "--max-lr", "0.1"], "--min-lr"),
        (["lr-find", "--problem", "linreg", "--max-lr", "inf"], "--max-lr"),
        (["sharpness", "--problem", "linreg:{tmp}/bad.npz"], "--problem"),
        (["sharpness", "--problem", "linreg:{tmp}/missing.npz"], "--problem"),
        (["sharpness", "--problem", "{tmp}/m.py:net()", "--data", "digits", "--loss", "mse"], "--problem"),
        (["sharpness", "--problem", "{tmp}/m.py:net()"], "--data"),
        (["lr-find", "--problem", "linreg", "-o", "{tmp}/fig.jpg"], "--output"),
        (["lr-find", "--problem", "linreg", "-o", "{tmp}/no/such/fig.png"], "--output"),
        (["lr-find", "--problem", "linreg", "--data", "digits"], "--data"),
        (["sharpness", "--problem", "linreg", "--batch-size", "21"], "--batch-size"),
        (["sharpness", "--problem", "linreg", "--max-hvps", "0"], "--max-hvps"),
        (["lr-find", "--problem", "linreg", "--optimizer", "adam", "--momentum", "0.9"], "--momentum"),
        (["lr-find", "--problem", "linreg", "--format", "yaml"], "--format"),
    ],
)
def test_bad_input_is_one_line_naming_the_flag_exit_2(
    args: list[str], flag: str, tmp_path: Path, capsys
) -> None:
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    (tmp_path / "m.py").write_text("import torch\ndef net():\n    return torch.nn.Linear(64, 3)\n")
    assert main(["loops", *[a.replace("{tmp}", str(tmp_path)) for a in args]]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and flag in err and "Traceback" not in err
    assert not list(tmp_path.glob("*.png"))


# Exact lines, recorded before the shared option helpers (trainlab.cli_options, ProblemChoice) replaced
# each command's own declarations: routing the options through one place changed none of them.
@pytest.mark.parametrize(("argv", "line"), [
    (["sharpness", "--problem", "linreg", "--seed", "abc"],
     "trainlab loops sharpness: error: Invalid value for '--seed': 'abc' is not a valid integer range. "
     "(see `trainlab loops sharpness --help`)"),
    (["sharpness", "--problem", "digits-mlp", "--data", "digits"],
     "trainlab: error: --data='digits' is not valid: expected no --data with --problem digits-mlp (it "
     "brings its own data and loss; --data/--loss go with a MODULE factory)"),
    (["lr-find", "--problem", "linreg", "--loss", "mse"],
     "trainlab: error: --loss='mse' is not valid: expected no --loss with --problem linreg (it brings its "
     "own data and loss; --data/--loss go with a MODULE factory)"),
    (["lr-find", "--problem", "nope"],
     "trainlab: error: --problem='nope' is not valid: expected linreg, linreg:PATH.npz (arrays X, t), "
     "digits-mlp, or a model factory package.module:factory(args) / path/file.py:factory(args) with --data."),
    (["lr-find", "--problem", "linreg", "-o", "afile/x.png"],
     "trainlab: error: --output='afile/x.png' is not valid: expected a file in a folder (afile is a file)"),
    (["lr-find", "--problem", "linreg", "-o", "missing/x.png"],
     "trainlab: error: --output='missing/x.png' is not valid: expected a file in an existing folder "
     "(missing does not exist)"),
    (["lr-find", "--problem", "linreg", "-o", "fig.png"],
     "trainlab: error: --output='fig.png' is not valid: expected a new file (fig.json exists; add "
     "--overwrite to replace it)"),
])
def test_bad_shared_options_keep_their_exact_messages(tmp_path: Path, monkeypatch, capsys, argv,
                                                      line) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    (tmp_path / "fig.json").write_text("mine")
    assert main(["loops", *argv]) == 2
    assert capsys.readouterr().err == line + "\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "fig.json"]
    assert (tmp_path / "fig.json").read_text() == "mine"
