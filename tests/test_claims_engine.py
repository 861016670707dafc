"""The claims engine: registry, selection, statuses, seeding, interruption, resume, results.json."""

from __future__ import annotations

import json

import pytest
import torch

from trainlab.claims import (
    REGISTRY,
    Claim,
    ClaimSkipped,
    Context,
    all_claims,
    claim,
    registered,
    run_claims,
    select,
)
from trainlab.errors import ArgumentError
from trainlab.plotting import new_figure
from trainlab.results import STATUSES, ClaimRecord, schema_problems

TOP_KEYS = {"trainlab_version", "created", "scale", "seed", "environment", "claims"}
CLAIM_KEYS = set(ClaimRecord.__annotations__)
ENV_KEYS = {"python", "torch", "threads", "device"}


def _passing(ctx: Context) -> str:
    x = float(torch.rand(1, generator=ctx.generator()))
    fig, ax = new_figure()
    ax.plot([0, 1], [0, x])
    ctx.save_figure(fig, "line", {"x": x})
    ctx.checks.between("draw", x, 0.0, 1.0)
    return "drew {draw}"


def _failing(ctx: Context) -> str:
    ctx.checks.close("value", 2.0, 1.0, atol=1e-9)
    return "value {value}"


def _raising(ctx: Context) -> str:
    raise RuntimeError("boom in claim")


def _skipping(ctx: Context) -> str:
    raise ClaimSkipped("needs optional data")


def _interrupting(ctx: Context) -> str:
    raise KeyboardInterrupt


def _no_checks(ctx: Context) -> str:
    ctx.checks.record("value", 1.0)
    return "recorded {value} but judged nothing"


PASSING = Claim("testpart.passing", "tests", "Draws a number in [0, 1).", _passing)
FAILING = Claim("testpart.failing", "tests", "A deliberately broken claim.", _failing)
RAISING = Claim("testpart.raising", "tests", "A claim that raises.", _raising)
SKIPPING = Claim("testpart.skipping", "tests", "A claim that cannot run here.", _skipping)
INTERRUPTING = Claim("testpart.zz-interrupt", "tests", "Ctrl-C while running.", _interrupting)
NO_CHECKS = Claim("testpart.no-checks", "tests", "Makes no check.", _no_checks)


def test_first_claims_are_registered_under_their_part():
    ids = [c.id for c in select(["convnets.*"])]
    assert "convnets.by-hand" in ids and "convnets.shape-arithmetic" in ids
    assert all(i.startswith("convnets.") for i in ids)


# Claims of one part run where another part's objects live: §3's count claim on the §5 networks is
# registered beside those networks, so that trainlab.convnets imports nothing of colourize (issue 22).
HOSTED = {"convnets.counts-scale": "trainlab.colourize.counts"}


def test_every_registered_id_starts_with_its_parts_package():
    for c in all_claims():
        module = c.run.__module__
        if c.id in HOSTED:
            assert module == HOSTED[c.id] and c.section.startswith("§3"), (c.id, module)
            continue
        assert module.startswith(f"trainlab.{c.id.split('.')[0]}"), (c.id, module)


def test_no_pattern_selects_every_claim():
    assert [c.id for c in select()] == [c.id for c in all_claims()]


def test_pattern_matching_nothing_is_an_argument_error():
    with pytest.raises(ArgumentError) as info:
        select(["nosuch.claim"])
    assert "PATTERN='nosuch.claim'" in str(info.value) and "trainlab list" in str(info.value)


def test_claim_ids_must_be_part_dot_name():
    with pytest.raises(ValueError):
        Claim("NoDot", "s", "x", _passing)


def test_the_decorator_registers_beside_the_function_and_joins_the_statement():
    try:
        @claim("testpart.decorated", section="tests", statement="""
            A statement wrapped
            over lines.""")
        def decorated(ctx: Context) -> str:
            ctx.checks.equal("answer", 6 * 7, 42)
            return "answer {answer}"

        c = REGISTRY["testpart.decorated"]
        assert decorated.claim is c and c.run is decorated
        assert c.statement == "A statement wrapped over lines."
        with pytest.raises(ValueError, match="registered twice"):
            claim("testpart.decorated", section="tests", statement="other")(_failing)
    finally:
        REGISTRY.pop("testpart.decorated", None)


def test_every_status_is_recorded_and_results_json_has_the_schema(tmp_path):
    with registered(PASSING, FAILING, RAISING, SKIPPING, NO_CHECKS):
        result = run_claims(["testpart.*"], scale="quick", seed=3, out_dir=tmp_path)
    assert result.statuses == {"testpart.passing": "passed", "testpart.failing": "failed",
                               "testpart.raising": "error", "testpart.skipping": "skipped",
                               "testpart.no-checks": "failed"}
    assert not result.ok
    data = json.loads((tmp_path / "results.json").read_text())
    assert schema_problems(data) == []
    assert set(data) == TOP_KEYS
    assert ENV_KEYS <= set(data["environment"])
    assert data["scale"] == "quick" and data["seed"] == 3
    for c in data["claims"]:
        assert set(c) == CLAIM_KEYS and c["status"] in STATUSES
    by_id = {c["id"]: c for c in data["claims"]}
    assert "boom in claim" in by_id["testpart.raising"]["summary"]
    assert "needs optional data" in by_id["testpart.skipping"]["summary"]
    assert by_id["testpart.no-checks"]["summary"].startswith("no checks were made")
    passing = by_id["testpart.passing"]
    assert passing["figures"] == ["figures/testpart.passing-line.png"]
    assert passing["checks"][0]["name"] == "draw" and passing["checks"][0]["passed"] is True
    assert passing["tolerance"]["draw"] == {"min": 0.0, "max": 1.0}
    failing = by_id["testpart.failing"]
    assert failing["measured"] == {"value": 2.0} and failing["expected"] == {"value": 1.0}
    assert failing["summary"].startswith("FAILED value 2") and "✗" in failing["summary"]
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
    assert f"(interrupted; not run: {INTERRUPTING.id})" in (tmp_path / "report.md").read_text()


def test_resume_keeps_finished_claims_and_runs_the_rest(tmp_path):
    calls: list[str] = []

    def counting(ctx: Context) -> str:
        calls.append(ctx.claim_id)
        return _passing(ctx)

    first = Claim("testpart.first", "tests", "Counted.", counting)
    second = Claim("testpart.second", "tests", "Counted.", counting)
    with registered(first, second, INTERRUPTING):
        with pytest.raises(KeyboardInterrupt):
            run_claims(["testpart.first", "testpart.zz-interrupt"], out_dir=tmp_path)
        assert calls == ["testpart.first"]
        kept = json.loads((tmp_path / "results.json").read_text())["claims"][0]
        result = run_claims(["testpart.first", "testpart.second"], out_dir=tmp_path, resume=True)
    assert calls == ["testpart.first", "testpart.second"]  # the first was not run again
    assert result.reused == ["testpart.first"]
    assert result.results["claims"][0] == kept
    assert result.statuses == {"testpart.first": "passed", "testpart.second": "passed"}


def test_resume_refuses_a_run_of_another_seed_or_scale(tmp_path):
    with registered(PASSING):
        run_claims([PASSING.id], seed=1, out_dir=tmp_path)
        with pytest.raises(ArgumentError, match="--out=.*a run to --resume .*seed 1"):
            run_claims([PASSING.id], seed=2, out_dir=tmp_path, resume=True)


def test_resume_reruns_a_claim_whose_figure_is_gone(tmp_path):
    with registered(PASSING):
        run_claims([PASSING.id], out_dir=tmp_path)
        (tmp_path / "figures" / "testpart.passing-line.png").unlink()
        result = run_claims([PASSING.id], out_dir=tmp_path, resume=True)
    assert result.reused == []
    assert (tmp_path / "figures" / "testpart.passing-line.png").is_file()


def test_a_claim_returning_the_wrong_type_is_an_error_not_a_crash(tmp_path):
    bad = Claim("testpart.wrong-type", "tests", "Returns a dict.", lambda ctx: {"passed": True})
    with registered(bad, PASSING):
        result = run_claims(["testpart.*"], out_dir=tmp_path)
    assert result.statuses == {"testpart.passing": "passed", "testpart.wrong-type": "error"}


def test_a_summary_naming_an_unrecorded_value_is_an_error(tmp_path):
    def lying(ctx: Context) -> str:
        ctx.checks.at_most("err", 1e-3, 1e-2)
        return "error {err}, and {speedup} faster"

    with registered(Claim("testpart.lying", "tests", "Names a number it never measured.", lying)):
        result = run_claims(["testpart.lying"], out_dir=tmp_path)
    record = result.results["claims"][0]
    assert record["status"] == "error" and "speedup" in record["summary"]


def test_bad_scale_is_an_argument_error(tmp_path):
    with pytest.raises(ArgumentError, match="scale='huge'"):
        run_claims(["convnets.by-hand"], scale="huge", out_dir=tmp_path)


def test_an_interrupted_resume_loses_no_finished_record(tmp_path):
    # results.json used to be rewritten with only the claims reached so far: a Ctrl-C while a
    # claim that had raised was run again dropped the finished claims after it
    with registered(RAISING, PASSING):
        run_claims([RAISING.id, PASSING.id], out_dir=tmp_path)
    before = {c["id"]: c for c in json.loads((tmp_path / "results.json").read_text())["claims"]}
    assert before[RAISING.id]["status"] == "error" and before[PASSING.id]["status"] == "passed"
    again = Claim(RAISING.id, "tests", "Interrupted this time.", _interrupting)
    with registered(again, PASSING):
        with pytest.raises(KeyboardInterrupt):
            run_claims([RAISING.id, PASSING.id], out_dir=tmp_path, resume=True)
    after = {c["id"]: c for c in json.loads((tmp_path / "results.json").read_text())["claims"]}
    assert after == before


def test_a_resume_with_other_patterns_keeps_the_other_records_and_judges_its_own(tmp_path):
    with registered(PASSING, FAILING):
        run_claims([PASSING.id, FAILING.id], out_dir=tmp_path)
        result = run_claims([PASSING.id], out_dir=tmp_path, resume=True)
    assert result.ok and result.statuses == {PASSING.id: "passed"}  # the failing one was not asked for
    kept = [c["id"] for c in json.loads((tmp_path / "results.json").read_text())["claims"]]
    assert kept == [PASSING.id, FAILING.id]


def test_overwrite_refuses_a_folder_whose_results_json_trainlab_did_not_write(tmp_path):
    from trainlab.runs import prepare_run_dir

    (tmp_path / "results.json").write_text("{}")
    (tmp_path / "thesis.tex").write_text("years of work")
    with pytest.raises(ArgumentError, match="--overwrite empties only those"):
        prepare_run_dir(tmp_path, "verify", overwrite=True)
    assert (tmp_path / "thesis.tex").read_text() == "years of work"


def _terminated(ctx: Context) -> str:
    import os
    import signal
    import time

    os.kill(os.getpid(), signal.SIGTERM)  # as `kill PID` from another shell
    time.sleep(1)  # the handler raises before this ends
    return "not reached"


def test_sigterm_saves_the_finished_claims_and_a_marker_only_folder_resumes(tmp_path):
    import signal

    from trainlab.cli import main

    terminated = Claim("testpart.zz-terminated", "tests", "Killed while running.", _terminated)
    before = signal.getsignal(signal.SIGTERM)
    with registered(PASSING, terminated):
        assert main(["verify", PASSING.id, terminated.id, "--out", str(tmp_path / "run")]) == 130
        data = json.loads((tmp_path / "run" / "results.json").read_text())
        assert data["interrupted"] is True and [c["id"] for c in data["claims"]] == [PASSING.id]
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is put back
    # a run killed before its first claim finished holds only the marker: --resume starts it again
    marker_only = tmp_path / "early"
    marker_only.mkdir()
    (marker_only / ".trainlab-run").write_text("trainlab verify run folder\n")
    with registered(PASSING):
        assert main(["verify", PASSING.id, "--out", str(marker_only), "--resume"]) == 0
    assert json.loads((marker_only / "results.json").read_text())["claims"][0]["status"] == "passed"


def test_resuming_a_corrupt_run_names_the_out_option(tmp_path, capsys):
    from trainlab.cli import main

    (tmp_path / ".trainlab-run").write_text("trainlab verify run folder\n")
    (tmp_path / "results.json").write_text("{bad")
    assert main(["verify", "convnets.by-hand", "--out", str(tmp_path), "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("trainlab: error: --out=") and "readable results.json" in err


def test_a_resume_with_other_patterns_keeps_the_run_interrupted_until_every_claim_asked_for_ran(tmp_path):
    """Interrupted after one of three claims, then resumed for one other: the third never ran, so
    results.json and the report still say the run is interrupted, and name it."""
    from trainlab.report import write_report

    extra = Claim("testpart.zzz-extra", "tests", "Runs last.", _passing)
    with registered(PASSING, INTERRUPTING, extra):
        with pytest.raises(KeyboardInterrupt):
            run_claims([PASSING.id, INTERRUPTING.id, extra.id], out_dir=tmp_path)
        data = json.loads((tmp_path / "results.json").read_text())
        assert data["interrupted"] and data["pending"] == [INTERRUPTING.id, extra.id]
        run_claims([extra.id], out_dir=tmp_path, resume=True)
        data = json.loads((tmp_path / "results.json").read_text())
        assert data["interrupted"] and data["pending"] == [INTERRUPTING.id]
        write_report(tmp_path)
        assert f"(interrupted; not run: {INTERRUPTING.id})" in (tmp_path / "report.md").read_text()
    with registered(PASSING, _REPLACED_INTERRUPT, extra):
        run_claims([INTERRUPTING.id], out_dir=tmp_path, resume=True)
    data = json.loads((tmp_path / "results.json").read_text())
    assert "interrupted" not in data and "pending" not in data
    assert sorted(c["id"] for c in data["claims"]) == sorted([PASSING.id, INTERRUPTING.id, extra.id])


_REPLACED_INTERRUPT = Claim(INTERRUPTING.id, "tests", "Runs this time.", _passing)
