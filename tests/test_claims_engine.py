"""The claims engine: registry, selection, statuses, seeding, interruption, results.json."""

from __future__ import annotations

import json

import pytest
import torch

from trainlab.claims import (
    REGISTRY,
    Claim,
    ClaimSkipped,
    Context,
    Evidence,
    all_claims,
    register,
    registered,
    run_claims,
    select,
)
from trainlab.errors import ArgumentError
from trainlab.plotting import new_figure

TOP_KEYS = {"trainlab_version", "created", "scale", "seed", "environment", "claims"}
CLAIM_KEYS = {"id", "section", "statement", "status", "measured", "expected", "tolerance",
              "summary", "seconds", "figures"}
ENV_KEYS = {"python", "torch", "threads", "device"}


def _passing(ctx: Context) -> Evidence:
    x = float(torch.rand(1, generator=ctx.generator()))
    fig, ax = new_figure()
    ax.plot([0, 1], [0, x])
    ctx.save_figure(fig, "line", {"x": x})
    return Evidence({"draw": x}, {"draw": "in [0, 1)"}, 0.0 <= x < 1.0, f"drew {x:.3f}")


def _failing(ctx: Context) -> Evidence:
    return Evidence({"value": 2.0}, {"value": 1.0}, False, "2 != 1", tolerance={"value": 0.0})


def _raising(ctx: Context) -> Evidence:
    raise RuntimeError("boom in claim")


def _skipping(ctx: Context) -> Evidence:
    raise ClaimSkipped("needs optional data")


def _interrupting(ctx: Context) -> Evidence:
    raise KeyboardInterrupt


PASSING = Claim("testpart.passing", "tests", "Draws a number in [0, 1).", _passing)
FAILING = Claim("testpart.failing", "tests", "A deliberately broken claim.", _failing)
RAISING = Claim("testpart.raising", "tests", "A claim that raises.", _raising)
SKIPPING = Claim("testpart.skipping", "tests", "A claim that cannot run here.", _skipping)
INTERRUPTING = Claim("testpart.zz-interrupt", "tests", "Ctrl-C while running.", _interrupting)


def test_first_claims_are_registered_under_their_part():
    ids = [c.id for c in select(["convnets.*"])]
    assert "convnets.by-hand" in ids and "convnets.shape-arithmetic" in ids
    assert all(i.startswith("convnets.") for i in ids)


def test_no_pattern_selects_every_claim():
    assert [c.id for c in select()] == [c.id for c in all_claims()]


def test_pattern_matching_nothing_is_an_argument_error():
    with pytest.raises(ArgumentError) as info:
        select(["nosuch.claim"])
    assert "PATTERN='nosuch.claim'" in str(info.value) and "trainlab list" in str(info.value)


def test_claim_ids_must_be_part_dot_name():
    with pytest.raises(ValueError):
        Claim("NoDot", "s", "x", _passing)


def test_registering_a_different_claim_under_a_taken_id_fails():
    with registered(PASSING):
        with pytest.raises(ValueError, match="registered twice"):
            register(Claim(PASSING.id, "s", "other", _failing))
    assert PASSING.id not in REGISTRY


def test_every_status_is_recorded_and_results_json_has_the_schema(tmp_path):
    with registered(PASSING, FAILING, RAISING, SKIPPING):
        result = run_claims(["testpart.*"], scale="quick", seed=3, out_dir=tmp_path)
    assert result.statuses == {"testpart.passing": "passed", "testpart.failing": "failed",
                               "testpart.raising": "error", "testpart.skipping": "skipped"}
    assert not result.ok
    data = json.loads((tmp_path / "results.json").read_text())
    assert set(data) == TOP_KEYS
    assert ENV_KEYS <= set(data["environment"])
    assert data["scale"] == "quick" and data["seed"] == 3
    for c in data["claims"]:
        assert set(c) == CLAIM_KEYS
    by_id = {c["id"]: c for c in data["claims"]}
    assert "boom in claim" in by_id["testpart.raising"]["summary"]
    assert "needs optional data" in by_id["testpart.skipping"]["summary"]
    assert by_id["testpart.passing"]["figures"] == ["figures/testpart.passing-line.png"]
    assert (tmp_path / "figures" / "testpart.passing-line.png").is_file()
    assert (tmp_path / "figures" / "testpart.passing-line.json").is_file()
    assert (tmp_path / "report.md").is_file() and (tmp_path / "report.html").is_file()


def test_skipped_claims_do_not_fail_a_run(tmp_path):
    with registered(PASSING, SKIPPING):
        result = run_claims(["testpart.passing", "testpart.skipping"], out_dir=tmp_path)
    assert result.ok


def test_same_seed_same_numbers_and_global_rng_untouched(tmp_path):
    before = torch.get_rng_state()
    with registered(PASSING):
        a = run_claims([PASSING.id], seed=7, out_dir=tmp_path / "a").results["claims"][0]
        b = run_claims([PASSING.id], seed=7, out_dir=tmp_path / "b").results["claims"][0]
        c = run_claims([PASSING.id], seed=8, out_dir=tmp_path / "c").results["claims"][0]
    assert a["measured"] == b["measured"]
    assert a["measured"] != c["measured"]
    assert torch.equal(before, torch.get_rng_state())


def test_ctrl_c_writes_the_finished_claims_then_propagates(tmp_path):
    with registered(PASSING, INTERRUPTING):
        with pytest.raises(KeyboardInterrupt):
            run_claims([PASSING.id, INTERRUPTING.id], out_dir=tmp_path)
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["interrupted"] is True
    assert [c["id"] for c in data["claims"]] == [PASSING.id]
    assert "(interrupted)" in (tmp_path / "report.md").read_text()


def test_a_claim_returning_the_wrong_type_is_an_error_not_a_crash(tmp_path):
    bad = Claim("testpart.wrong-type", "tests", "Returns a dict.", lambda ctx: {"passed": True})
    with registered(bad, PASSING):
        result = run_claims(["testpart.*"], out_dir=tmp_path)
    assert result.statuses == {"testpart.passing": "passed", "testpart.wrong-type": "error"}


def test_bad_scale_is_an_argument_error(tmp_path):
    with pytest.raises(ArgumentError, match="--scale='huge'"):
        run_claims(["convnets.by-hand"], scale="huge", out_dir=tmp_path)
