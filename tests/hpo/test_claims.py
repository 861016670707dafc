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
