"""The four §2 claims are registered, run, pass, and leave figures with their data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainlab.claims import run_claims, select

IDS = {"hpo.one-step-optimal-lr", "hpo.multi-step-loss", "hpo.memory-forward-vs-reverse", "hpo.learn-the-lr"}


def test_the_four_claims_are_registered() -> None:
    assert {c.id for c in select(["hpo.*"])} == IDS


def _check(tmp_path: Path, ids: list[str], seed: int) -> None:
    result = run_claims(ids, scale="quick", seed=seed, out_dir=tmp_path)
    records = json.loads((tmp_path / "results.json").read_text())["claims"]
    for rec in records:
        assert rec["status"] == "passed", (rec["id"], rec["summary"])
        assert rec["figures"] and all((tmp_path / f).is_file() for f in rec["figures"])
        assert rec["checks"], rec["id"]
    assert result.ok


def test_closed_form_and_learning_claims_pass_at_quick_scale(tmp_path: Path) -> None:
    _check(tmp_path, ["hpo.one-step-optimal-lr", "hpo.multi-step-loss", "hpo.learn-the-lr"], seed=3)


@pytest.mark.slow
def test_memory_claim_passes_at_quick_scale(tmp_path: Path) -> None:
    _check(tmp_path, ["hpo.memory-forward-vs-reverse"], seed=3)


# ----------------------------------------------------------------------------------------------
# Every float tolerance is derived from the drawn problem: the claims pass on the seed whose §1
# instances failed a fixed 1e-8 (433), and on 201 seeds not used while designing (slow).
# ----------------------------------------------------------------------------------------------

FLOAT_CLAIMS = ["hpo.one-step-optimal-lr", "hpo.multi-step-loss", "hpo.learn-the-lr"]
SLOW_SEEDS = [433, *range(1000, 1200)]


def _worst_ratios(record: dict) -> dict[str, float]:
    """measured/derived tolerance of every derived check (≤ 1 passes; negative: on the safe side of 0)."""
    measured = record["measured"]
    out = {k.removesuffix("_worst_ratio"): v for k, v in measured.items() if k.endswith("_worst_ratio")}
    for c in record["checks"]:
        if f"{c['name']}_tolerance" not in record["expected"] or c["name"] in out:
            continue
        tol = c["tolerance"]
        if "rtol" in tol:  # close(): |m − e| ≤ rtol·|e|
            out[c["name"]] = abs(c["measured"] - c["expected"]) / (tol["rtol"] * abs(c["expected"]))
        elif "max" in tol:  # a ratio ≤ 1 + slack
            out[c["name"]] = (c["measured"] - 1) / (tol["max"] - 1)
        elif "min" in tol:  # ≥ −slack
            out[c["name"]] = -c["measured"] / -tol["min"]
    return out


@pytest.mark.parametrize("seed", [1, 433])
def test_float_claims_pass_with_derived_tolerances(tmp_path: Path, seed: int) -> None:
    from trainlab.claims import run_one

    for claim in select(FLOAT_CLAIMS):
        record = run_one(claim, "quick", seed, tmp_path)
        assert record["status"] == "passed", (claim.id, record["summary"])
        for check in record["checks"]:  # each derived bound is recorded with what it judged
            if check["name"] in record["measured"] and f"{check['name']}_tolerance" in record["expected"]:
                assert check["tolerance"], check
    one = {c["name"]: c for c in run_one(select(["hpo.one-step-optimal-lr"])[0], "quick", seed,
                                          tmp_path)["checks"]}
    # η* agrees with the closed form to a bound derived from the problem: far tighter than the old 1e-8
    assert 0 < one["eta_star_numeric"]["tolerance"]["rtol"] < 1e-9


def test_a_derived_tolerance_rejects_a_wrong_closed_form(tmp_path: Path) -> None:
    """The bound on |trained L_t − closed form|/L₀ is ~1e-11: L_t computed with t − 1 steps is caught by
    orders of magnitude, and so is an η* off by 1e-7 against the one-step claim's derived rtol."""
    from trainlab.checks import Checks
    from trainlab.claims import run_one
    from trainlab.hpo.claims import _trained_loss
    from trainlab.hpo.closed_form import LeastSquaresClosedForm
    from trainlab.problems import load_problem

    p = load_problem("linreg", n=20, d=40, seed=433)
    cf = LeastSquaresClosedForm(p.x, p.y)
    eta, t = 0.5 * cf.stable_lr, 10
    bound = cf.trained_rounding(eta, t) + cf.closed_form_rounding(t)
    L0 = cf.loss(0.0, 1)
    assert abs(_trained_loss(p, eta, t) - cf.loss(eta, t)) / L0 <= bound < 1e-10
    assert abs(_trained_loss(p, eta, t) - cf.loss(eta, t - 1)) / L0 > 1e3 * bound
    record = run_one(select(["hpo.one-step-optimal-lr"])[0], "quick", 433, tmp_path)
    check = {c["name"]: c for c in record["checks"]}["eta_star_numeric"]
    star = check["expected"]
    assert Checks().close("ok", check["measured"], star, rtol=check["tolerance"]["rtol"])
    assert not Checks().close("off", star * (1 + 1e-7), star, rtol=check["tolerance"]["rtol"])


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("claim_id", FLOAT_CLAIMS)
def test_float_claim_passes_on_201_seeds(tmp_path: Path, claim_id: str) -> None:
    from trainlab.claims import run_one

    claim = select([claim_id])[0]
    worst: dict[str, float] = {}
    failed = []
    for seed in SLOW_SEEDS:
        record = run_one(claim, "quick", seed, tmp_path)
        if record["status"] != "passed":
            failed.append((seed, record["summary"]))
        for k, v in _worst_ratios(record).items():
            worst[k] = max(worst.get(k, -float("inf")), v)
    print(f"\n{claim_id} on {len(SLOW_SEEDS)} seeds: worst measured/derived tolerance {worst}")
    assert not failed, failed


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_memory_claims_hypergradients_agree_within_derived_bounds_on_201_seeds(tmp_path: Path) -> None:
    """The memory claim's one float comparison (forward vs reverse dL_T/dη), on its own problem and
    horizons for 201 seeds (the memory meters themselves are not re-run 201 times)."""
    from trainlab.claims import Context
    from trainlab.hpo.claims import _forward_reverse_agreement, _memory_setup
    from trainlab.hpo.hypergrad import hypergradient

    worst = 0.0
    for seed in SLOW_SEEDS:
        p, horizons, lr = _memory_setup(Context("hpo.memory-forward-vs-reverse", "quick", seed, tmp_path))
        modes = {m: [hypergradient(p, T, lr=lr, mode=m, check_memory=False) for T in horizons]
                 for m in ("forward", "reverse")}
        rel, tol = _forward_reverse_agreement(p, horizons, lr, modes["forward"], modes["reverse"])
        assert all(r <= b for r, b in zip(rel, tol, strict=True)), (seed, rel, tol)
        worst = max(worst, max(r / b for r, b in zip(rel, tol, strict=True)))
    print(f"\nhpo.memory-forward-vs-reverse on {len(SLOW_SEEDS)} seeds: worst measured/derived tolerance "
          f"{worst}")
