"""The §3 claims: declared with @claim, judged by their checks, and passing at quick scale."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import trainlab.colourize.counts as colourize_counts
import trainlab.convnets as convnets
import trainlab.convnets.claims as convnets_claims
from trainlab.claims import Context, run_claims, select

IDS = {
    "run_by_hand": "convnets.by-hand",
    "run_shape_arithmetic": "convnets.shape-arithmetic",
    "run_vgg_size_table": "convnets.vgg-size-table",
    "run_receptive_field": "convnets.receptive-field",
}
# §3's count claim on the §5 networks lives with them (convnets imports nothing of colourize)
ELSEWHERE = {"run_counts_scale": ("convnets.counts-scale", colourize_counts)}


def test_each_claim_is_declared_beside_its_run_function_with_its_published_id():
    for fn_name, (claim_id, module) in {**{k: (v, convnets_claims) for k, v in IDS.items()},
                                        **ELSEWHERE}.items():
        fn = getattr(module, fn_name)
        assert fn.claim.id == claim_id
        assert fn.claim.run is fn
        assert fn.claim.section.startswith("§3")
        assert "\n" not in fn.claim.statement
    assert {c.id for c in select(["convnets.*"])} == set(IDS.values()) | {v for v, _ in ELSEWHERE.values()}


def run_direct(fn_name: str, tmp_path: Path) -> tuple[Context, str]:
    fn = getattr(convnets_claims, fn_name)
    ctx = Context(fn.claim.id, "quick", 0, tmp_path)
    template = fn(ctx)
    assert isinstance(template, str)
    return ctx, ctx.checks.summary(template)


@pytest.mark.parametrize("fn_name", ["run_by_hand", "run_shape_arithmetic"])
def test_small_claims_make_real_checks_and_render_their_summary_from_them(fn_name, tmp_path: Path):
    ctx, text = run_direct(fn_name, tmp_path)
    assert len(ctx.checks.checks) >= 4
    assert ctx.checks.passed, text
    assert not text.startswith("FAILED")
    for c in ctx.checks.checks:  # every judged value appears with its relation in the summary
        if c.relation != "is":
            assert "✓" in text


def test_by_hand_checks_the_course_map_cell_by_cell(tmp_path: Path):
    ctx, _ = run_direct("run_by_hand", tmp_path)
    m = ctx.checks.measured
    assert m["map"] == ctx.checks.expected["map"]
    assert m["max_abs_on_flat"] == 0.0 and m["min_abs_on_edges"] >= 1.0
    assert (m["flat_cells"], m["edge_cells"]) == (5, 20)


def test_a_failed_check_is_prefixed_to_the_summary_and_fails_the_verdict(tmp_path: Path):
    ctx, _ = run_direct("run_shape_arithmetic", tmp_path)
    ctx.checks.equal("injected", 1, 2)  # what a wrong formula would record
    text = ctx.checks.summary("{settings!v} settings")
    assert not ctx.checks.passed
    assert text.startswith("FAILED injected 1 (= 2 ✗)")


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
    assert table["measured"]["macs"] == table["expected"]["macs"]  # FlopCounterMode's count
    rf = by_id["convnets.receptive-field"]
    assert rf["measured"]["mismatches"] == []
    assert rf["measured"]["final_size"]["VGG table"] == 30
    assert rf["measured"]["misaligned_status"] == "misaligned"
    counts = by_id["convnets.counts-scale"]
    assert counts["measured"]["ratio_64_over_32"] == {"params": 1.0, "neurons": 4.0, "connections": 4.0}
    for claim in by_id.values():
        assert claim["checks"] and all(c["passed"] for c in claim["checks"])
        names = {c["name"] for c in claim["checks"]}
        assert names <= set(claim["measured"])
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
