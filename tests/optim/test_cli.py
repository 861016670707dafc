"""`trainlab optim compare` and `trainlab optim path`, in process, plus one real subprocess."""

from __future__ import annotations

import errno
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from trainlab.cli import main
from trainlab.optim.cli import compare_memory_bytes


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
    # captured output is not a terminal: plain columns, two or more spaces apart
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if "‖w−w*‖/‖w*‖" in line)
    column = re.split(r"\s{2,}", lines[header]).index("‖w−w*‖/‖w*‖")
    rows = {cells[0]: cells for cells in (re.split(r"\s{2,}", line) for line in lines[header + 1:])
            if cells[0] in ("sgd", "adam")}
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


def _one_error_line(err: str, argument: str) -> None:
    """One line on stderr that says 'error', names the flag, and has no traceback."""
    assert err.count("\n") == 1 and "error: " in err and argument in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "args, argument",
    [
        (["--n", "30", "--d", "20"], "--n"),
        (["--optimizers", "sgd,lbfgs"], "--optimizers"),
        (["--lr", "-0.1"], "--lr"),
        (["--lr", "0"], "--lr"),
        (["--lr", "nan"], "--lr"),
        (["--lr", "inf"], "--lr"),
        (["--seeds", "0"], "--seeds"),
        (["--seeds", "-3"], "--seeds"),
        (["--steps", "0"], "--steps"),
        (["--steps", "-5"], "--steps"),
        (["--n", "0"], "--n"),
        (["--d", "-1"], "--d"),
        (["--tol", "-1e-3"], "--tol"),
        (["--tol", "nan"], "--tol"),
        (["--batch-size", "0"], "--batch-size"),
        (["--batch-size", "50", "--n", "5", "--d", "20"], "--batch-size"),
        (["--format", "xml"], "--format"),
    ],
)
def test_compare_bad_input_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], argument: str
) -> None:
    code = main(["optim", "compare", *args])
    captured = capsys.readouterr()
    assert code == 2
    _one_error_line(captured.err, argument)
    assert captured.out == ""


@pytest.mark.parametrize(
    "args, argument", [(["--d", "1000000000"], "--d"), (["--seeds", "1000000000"], "--seeds")]
)
def test_compare_refuses_work_too_large_with_its_estimate(
    capsys: pytest.CaptureFixture[str], args: list[str], argument: str
) -> None:
    """Refused up front (it used to raise a traceback, or grow until the OOM killer ended it)."""
    code = main(["optim", "compare", *args])
    err = capsys.readouterr().err
    assert code == 2
    _one_error_line(err, argument)
    assert "needs about" in err and "TB" in err and "is available" in err


def test_compare_memory_estimate_grows_with_each_size() -> None:
    base = compare_memory_bytes(20, 100, 3, 5)
    assert 8 * 3 * 20 * 100 * 2 < base < 1e6  # at least X twice; the defaults are small
    assert compare_memory_bytes(20, 100, 3000, 5) == 1000 * base
    assert compare_memory_bytes(20, 1000, 3, 5) > 6 * base  # X and every (R, d) tensor grow tenfold


def test_compare_json_is_one_object_with_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["optim", "compare", "--n", "5", "--d", "20", "--optimizers", "sgd,adam", "--steps", "3000",
                 "--seeds", "2", "--format", "json"])
    out = capsys.readouterr().out
    assert code == 0
    data = json.loads(out)  # exactly one JSON object and nothing else
    assert (data["n"], data["d"], data["problems"]) == (5, 20, 2)
    rows = {r["name"]: r for r in data["optimizers"]}
    assert isinstance(rows["sgd"]["median_rel_dist_to_w_star"], float)
    assert rows["sgd"]["max_rel_dist_to_w_star"] <= 1e-8 and rows["adam"]["median_rel_dist_to_w_star"] >= 0.1
    assert rows["sgd"]["converged"] == 2 and isinstance(rows["sgd"]["median_steps_to_converge"], float)
    assert data["gd_stability_bound_min"] > 0


def test_compare_json_reports_a_diverged_run_as_null(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["optim", "compare", "--n", "5", "--d", "20", "--optimizers", "sgd", "--lr", "50",
                 "--steps", "500", "--seeds", "2", "--format", "json"])
    row = json.loads(capsys.readouterr().out)["optimizers"][0]
    assert code == 0
    assert row["diverged"] == 2 and row["first_divergence_step"] >= 0
    assert row["median_rel_dist_to_w_star"] is None and row["max_residual"] is None


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


@pytest.mark.parametrize("x", ["2,1,3", "2,a", "0,0", "2,inf"])
def test_path_rejects_bad_examples(x: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["optim", "path", "--x", x, "--t", "2", "-o", str(tmp_path / "f.png")])
    err = capsys.readouterr().err
    assert code == 2
    _one_error_line(err, "--x")
    assert not (tmp_path / "f.png").exists()


@pytest.mark.parametrize(
    "args, argument",
    [
        (["--t", "0"], "--t"),
        (["--t", "nan"], "--t"),
        (["--steps", "0"], "--steps"),
        (["--lr", "-1"], "--lr"),
        (["--optimizers", "sgd,"], "--optimizers"),
        (["-o", "{tmp}/p.jpg"], "--output"),
        (["-o", "{tmp}/p"], "--output"),
        (["-o", "{tmp}"], "--output"),
        (["--format", "yaml"], "--format"),
    ],
)
def test_path_bad_input_is_one_line_exit_2_and_writes_nothing(
    args: list[str], argument: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [a.format(tmp=tmp_path) for a in args]
    before = sorted(tmp_path.iterdir())
    code = main(["optim", "path", "--x", "2,1", "--t", "2", "--steps", "50", "-o", str(tmp_path / "f.png"),
                 *args])
    captured = capsys.readouterr()
    assert code == 2
    _one_error_line(captured.err, argument)
    assert sorted(tmp_path.iterdir()) == before


@pytest.mark.parametrize("ext, magic", [("png", b"\x89PNG"), ("pdf", b"%PDF"), ("svg", b"<?xml")])
def test_path_figure_format_follows_the_extension(
    ext: str, magic: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / f"p.{ext}"
    code = main(["optim", "path", "--x", "2,1", "--t", "2", "--optimizers", "gd", "--steps", "200",
                 "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    assert out.read_bytes().startswith(magic)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"p.{ext}", "p.json"])


def test_path_does_not_overwrite_without_the_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "p.png"
    out.write_bytes(b"mine")
    args = ["optim", "path", "--x", "2,1", "--t", "2", "--optimizers", "gd", "--steps", "200", "-o", str(out)]
    assert main(args) == 2
    _one_error_line(capsys.readouterr().err, "--overwrite")
    assert out.read_bytes() == b"mine"
    assert main([*args, "--overwrite"]) == 0
    assert out.read_bytes().startswith(b"\x89PNG")


def test_path_on_a_read_only_file_system_is_one_line_and_leaves_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The JSON write fails with EROFS after the figure was written: the figure is removed again."""
    import trainlab.runs

    def read_only(path, obj):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(trainlab.runs, "atomic_write_json", read_only)
    out = tmp_path / "p.png"
    code = main(["optim", "path", "--x", "2,1", "--t", "2", "--optimizers", "gd", "--steps", "200",
                 "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    _one_error_line(err, "--output")
    assert "read-only" in err
    assert list(tmp_path.iterdir()) == []


def test_path_json_is_one_object(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["optim", "path", "--x", "2,1", "--t", "2", "--optimizers", "gd,adam,sgd", "--lr", "5",
                 "--steps", "300", "-o", str(tmp_path / "p.svg"), "--format", "json"])
    out = capsys.readouterr().out
    assert code == 0
    data = json.loads(out)
    assert data["w_star"] == pytest.approx([0.8, 0.4]) and data["figure"].endswith("p.svg")
    rows = {r["name"]: r for r in data["optimizers"]}
    assert rows["gd"]["diverged_at"] >= 0 and rows["gd"]["w_T"] is None  # lr 5 > 2/λ_max = 0.4
    assert rows["adam"]["diverged_at"] is None and isinstance(rows["adam"]["rel_dist_to_w_star"], float)


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


def test_path_names_a_bad_x_before_an_existing_figure(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "optim-path.png").write_bytes(b"png")  # the default output exists
    assert main(["optim", "path", "--x", "2", "--t", "2"]) == 2
    err = capsys.readouterr().err
    assert "--x='2'" in err and "two numbers" in err
    assert main(["optim", "path", "--help"]) == 0
    assert "x<=None" not in capsys.readouterr().out
