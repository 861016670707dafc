"""The §3 claims run at quick scale, pass, and save their figures with data."""

from __future__ import annotations

import json
from pathlib import Path

import trainlab.convnets as convnets
from trainlab.claims import run_claims, select


def test_convnets_claims_are_registered_with_their_published_ids():
    ids = {c.id for c in select(["convnets.*"])}
    assert {
        "convnets.by-hand",
        "convnets.shape-arithmetic",
        "convnets.vgg-size-table",
        "convnets.receptive-field",
        "convnets.counts-scale",
    } <= ids


def test_accounting_claims_pass_at_quick_scale(tmp_path: Path):
    result = run_claims(
        ["convnets.vgg-size-table", "convnets.receptive-field", "convnets.counts-scale"],
        scale="quick",
        seed=0,
        out_dir=tmp_path,
    )
    assert result.statuses == {
        "convnets.vgg-size-table": "passed",
        "convnets.receptive-field": "passed",
        "convnets.counts-scale": "passed",
    }, [c["summary"] for c in result.results["claims"]]
    by_id = {c["id"]: c for c in result.results["claims"]}
    table = by_id["convnets.vgg-size-table"]
    assert (table["measured"]["neurons"], table["measured"]["params"], table["measured"]["connections"]) == (
        1_957_988,
        52_444_644,
        999_407_616,
    )
    assert by_id["convnets.receptive-field"]["measured"]["mismatches"] == []
    for claim in by_id.values():
        assert claim["figures"]
        for fig in claim["figures"]:
            assert (tmp_path / fig).is_file()
            assert json.loads((tmp_path / fig).with_suffix(".json").read_text())
        assert "\n" not in claim["summary"]


def test_public_names():
    assert set(convnets.__all__) >= {
        "summary",
        "Summary",
        "LayerRow",
        "build_from_spec",
        "parse_spec",
        "symbolic_counts",
        "ReceptiveField",
        "empirical_receptive_field",
        "solve_padding",
        "conv_output_size",
    }
    for name in convnets.__all__:
        assert hasattr(convnets, name), name
