"""`trainlab optim compare` and `trainlab optim path`, in process, plus one real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from trainlab.cli import main


def test_compare_prints_a_table_with_adam_off_w_star(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "optim",
            "compare",
            "--n",
            "5",
            "--d",
            "20",
            "--optimizers",
            "sgd,adam",
            "--steps",
            "3000",
            "--seeds",
            "2",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "sgd" in out and "adam" in out and "2/2" in out
    header = next(line for line in out.splitlines() if "‖w−w*‖/‖w*‖" in line)
    column = [c.strip() for c in header.split("┃")].index("‖w−w*‖/‖w*‖")
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")]
            for line in out.splitlines() if line.startswith("│")}
    assert float(rows["sgd"][column]) <= 1e-8  # SGD from 0 reaches w*
    assert float(rows["adam"][column]) >= 0.1  # Adam ends at another interpolant


def test_compare_reports_divergence_with_the_stability_bound(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "optim",
            "compare",
            "--n",
            "5",
            "--d",
            "20",
            "--optimizers",
            "sgd",
            "--lr",
            "50",
            "--steps",
            "500",
            "--seeds",
            "2",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "diverged at step" in out and "2/λ_max" in out
    assert "nan" not in out.lower()


@pytest.mark.parametrize(
    "args, argument",
    [
        (["--n", "30", "--d", "20"], "--n"),
        (["--optimizers", "sgd,lbfgs"], "--optimizers"),
        (["--lr", "-0.1"], "--lr"),
        (["--seeds", "0"], "--seeds"),
        (["--batch-size", "50", "--n", "5", "--d", "20"], "--batch-size"),
    ],
)
def test_compare_bad_input_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], argument: str
) -> None:
    code = main(["optim", "compare", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("trainlab: error: ") and argument in err
    assert "Traceback" not in err


def test_path_draws_the_figure_and_finds_the_diagonal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_png = tmp_path / "fig.png"
    code = main(["optim", "path", "--x", "2,1", "--t", "2", "--optimizers", "gd,adagrad", "-o", str(out_png)])
    out = capsys.readouterr().out
    assert code == 0
    assert out_png.is_file() and out_png.stat().st_size > 1000
    data = json.loads(out_png.with_suffix(".json").read_text())
    assert data["w_star"] == pytest.approx([0.8, 0.4])
    assert data["adagrad"][-1] == pytest.approx([2 / 3, 2 / 3], abs=1e-8)
    assert "[0.8000, 0.4000]" in out and "[0.6667, 0.6667]" in out


@pytest.mark.parametrize("x", ["2,1,3", "2,a", "0,0"])
def test_path_rejects_bad_examples(x: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["optim", "path", "--x", x, "--t", "2", "-o", str(tmp_path / "f.png")])
    err = capsys.readouterr().err
    assert code == 2 and "--x" in err and err.count("\n") == 1
    assert not (tmp_path / "f.png").exists()


def test_module_entry_point_runs_compare() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "trainlab",
            "optim",
            "compare",
            "--n",
            "4",
            "--d",
            "10",
            "--optimizers",
            "sgd",
            "--steps",
            "2000",
            "--seeds",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "sgd" in proc.stdout and "1/1" in proc.stdout
