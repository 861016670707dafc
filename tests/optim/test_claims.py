"""The seven §1 claims run, pass, and leave their evidence and figures in the run folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainlab.claims import run_claims, select
from trainlab.optim.claims import CLAIM_IDS, COURSE_RMSPROP_STEPS, course_rmsprop_steps

EXPECTED_IDS = {
    "optim.gd-min-norm",
    "optim.sgd-min-norm",
    "optim.momentum-min-norm",
    "optim.adaptive-not-min-norm",
    "optim.preconditioned-solution",
    "optim.nonuniform-sampling",
    "optim.weight-decay-vs-l2",
}


def test_the_seven_claims_are_registered_under_their_ids() -> None:
    assert set(CLAIM_IDS) == EXPECTED_IDS
    assert {c.id for c in select(["optim.*"])} == EXPECTED_IDS


def test_every_optim_claim_passes_at_quick_scale(tmp_path: Path) -> None:
    result = run_claims(["optim.*"], scale="quick", seed=0, out_dir=tmp_path)
    records = {c["id"]: c for c in json.loads((tmp_path / "results.json").read_text())["claims"]}
    assert set(records) == EXPECTED_IDS
    for claim_id, record in records.items():
        assert record["status"] == "passed", (claim_id, record["summary"])
        assert "\n" not in record["summary"]
        assert record["figures"], claim_id
        for fig in record["figures"]:
            assert (tmp_path / fig).is_file() and (tmp_path / fig).with_suffix(".json").is_file()
    assert result.ok
    adaptive = records["optim.adaptive-not-min-norm"]["measured"]
    assert adaptive["worked_limits"]["Adam"]["rel_err_vs_w_star"][0] == pytest.approx(1 / 3, abs=1e-6)


def test_course_rmsprop_numbers_need_eps_of_a_hundredth() -> None:
    stated = COURSE_RMSPROP_STEPS
    at_001 = course_rmsprop_steps(0.01)[0]
    tiny = course_rmsprop_steps(1e-12)[0]
    assert max(abs(float(at_001[i, j]) - stated[i][j]) for i in range(2) for j in range(2)) <= 5e-4
    assert float(tiny[0, 0]) == pytest.approx(0.1 / 0.1**0.5, abs=1e-9)
    assert abs(float(tiny[0, 1]) - stated[0][1]) > 4e-3  # ε → 0 does not give 0.311


@pytest.mark.slow
def test_every_optim_claim_passes_at_full_scale(tmp_path: Path) -> None:
    result = run_claims(["optim.*"], scale="full", seed=0, out_dir=tmp_path)
    assert all(status == "passed" for status in result.statuses.values()), result.statuses


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_claims_pass_for_other_seeds(tmp_path: Path, seed: int) -> None:
    result = run_claims(["optim.*"], scale="quick", seed=seed, out_dir=tmp_path)
    assert all(status == "passed" for status in result.statuses.values()), result.statuses
