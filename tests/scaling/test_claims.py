"""The §4 claims are registered with their ids; at quick scale they pass (slow)."""

from __future__ import annotations

import pytest

from trainlab.claims import run_claims, select

IDS = ["scaling.lr-vs-batch", "scaling.steps-vs-batch", "scaling.optimizer-batch", "scaling.model-size"]


def test_the_four_claims_are_registered():
    assert [c.id for c in select(["scaling.*"])] == IDS


@pytest.mark.slow
def test_quick_scale_claims_pass(tmp_path):
    result = run_claims(["scaling.*"], "quick", seed=11, out_dir=tmp_path)
    assert result.statuses == dict.fromkeys(IDS, "passed"), [c["summary"] for c in result.results["claims"]]
    figures = [f for c in result.results["claims"] for f in c["figures"]]
    assert len(figures) >= 6 and all((tmp_path / f).is_file() for f in figures)
