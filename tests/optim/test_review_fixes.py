"""Defects found by a review of `trainlab optim path`, each pinned by a test."""

from __future__ import annotations

import json

import pytest

from trainlab.cli import main


@pytest.mark.parametrize("x", ["1e-200,1e-200", "1e300,1e300", "0,0"])
def test_an_x_whose_solution_float64_cannot_hold_is_one_line(tmp_path, capsys, x):
    # 1e-200 made XXᵀ singular (exit 3); 1e300 printed w* = [0, 0] (the true one is 5e-301)
    assert main(["optim", "path", "--x", x, "--t", "1", "-o", str(tmp_path / "p.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--x" in err[0]
    assert not (tmp_path / "p.png").exists()


def test_path_json_has_numbers_or_null_never_nan_strings(tmp_path, capsys):
    args = ["optim", "path", "--x", "2,1", "--t", "2", "--format", "json", "-o", str(tmp_path / "p.png")]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    for row in out["optimizers"]:
        assert row["rel_dist_to_w_star"] is None or isinstance(row["rel_dist_to_w_star"], float)
    assert out["w_star"] == pytest.approx([0.8, 0.4])
