"""Both claims at quick scale pass, with their figures, and the public names are what they should be."""

from __future__ import annotations

from pathlib import Path

import pytest

import trainlab.loops.lr_range
import trainlab.loops.sharpness
import trainlab.loops.stability
import trainlab.loops.zero_grad
from trainlab.claims import run_claims


def test_both_claims_pass_at_quick_scale_with_figures(tmp_path: Path) -> None:
    result = run_claims(["loops.*"], scale="quick", seed=3, out_dir=tmp_path)
    records = {c["id"]: c for c in result.results["claims"]}
    assert set(records) == {"loops.zero-grad", "loops.lr-too-high"}
    for c in records.values():
        assert c["status"] == "passed", c["summary"]
        assert c["figures"] and all((tmp_path / f).is_file() for f in c["figures"])
    m = records["loops.lr-too-high"]["measured"]
    assert 0 <= m["threshold_excess_quadratic"] <= 0.05 and 0 <= m["threshold_excess_network"] <= 0.05
    assert records["loops.zero-grad"]["measured"]["missing_minus_running_sum"] < 1e-5


@pytest.mark.parametrize(
    "module, names",
    [
        (
            trainlab.loops.sharpness,
            {
                "BOUNDS",
                "FlatLoss",
                "Sharpness",
                "flat_loss",
                "hvp_operator",
                "lanczos_top_eigenvalue",
                "sharpness",
            },
        ),
        (
            trainlab.loops.lr_range,
            {"SUGGESTIONS", "LRFind", "RangeTest", "copy_training_state", "lr_find", "lr_range_test"},
        ),
        (
            trainlab.loops.stability,
            {"GDRuns", "Threshold", "divergence_threshold", "gd_runs", "horizon_slack", "minimize"},
        ),
        (
            trainlab.loops.zero_grad,
            {"PLACEMENTS", "LoopRun", "compare_placements", "plot_placements", "train_loop"},
        ),
    ],
)
def test_public_names(module, names: set[str]) -> None:
    assert set(module.__all__) == names and all(hasattr(module, n) for n in names)


@pytest.mark.slow
def test_both_claims_pass_at_full_scale(tmp_path: Path) -> None:
    result = run_claims(["loops.*"], scale="full", seed=7, out_dir=tmp_path)
    assert all(c["status"] == "passed" for c in result.results["claims"]), result.results["claims"]
