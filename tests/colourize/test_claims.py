"""The §5 claims: the padding claim, and the paired comparison protocol and its verdict."""

from __future__ import annotations

import pytest

import trainlab.colourize.claims as cz
from trainlab.claims import Context, all_claims
from trainlab.colourize.paired import paired_difference


@pytest.fixture
def fresh_cache(monkeypatch):
    monkeypatch.setattr(cz, "_DATA", {})
    monkeypatch.setattr(cz, "_TRAINED", {})
    monkeypatch.setattr(cz, "_VALID_LABELS", {})


def _run(fn, tmp_path, scale="quick", seed=0):
    ctx = Context(fn.claim.id, scale, seed, tmp_path)
    return fn.claim.evidence(ctx)


def test_the_three_ids_are_registered_with_the_one_claim_shape():
    ids = {c.id: c for c in all_claims()}
    for name in ("colourize.transpose-beats-pool", "colourize.skip-connections-help",
                 "colourize.transpose-padding"):
        assert ids[name].section == cz.SECTION and ids[name].statement


def test_transpose_padding_solver_agrees_with_real_modules(tmp_path):
    ev = _run(cz.transpose_padding, tmp_path)
    assert ev.passed, ev.summary
    assert ev.measured["kernel_4"] == [[1, 0]] and ev.measured["kernel_5"] == [[2, 1]]
    assert ev.measured["solver"] == ev.measured["nn.ConvTranspose2d_giving_32"]
    assert "[[1, 0]]" in ev.summary and "FAILED" not in ev.summary
    assert (tmp_path / "figures" / "colourize.transpose-padding-output-size.png").is_file()
    assert (tmp_path / "figures" / "colourize.transpose-padding-output-size.json").is_file()


def test_pair_seeds_derive_from_the_user_seed():
    assert cz.pair_seeds(0, 4) == cz.pair_seeds(0, 4) and len(set(cz.pair_seeds(0, 4))) == 4
    assert set(cz.pair_seeds(0, 4)).isdisjoint(cz.pair_seeds(1, 4))


def test_comparison_verdict_is_the_paired_interval_and_training_is_shared(tmp_path, monkeypatch,
                                                                         fresh_cache):
    tiny = cz.Protocol(num_seeds=3, num_filters=4, epochs=2, batch_size=20, num_crops=40,
                       num_colours=6, palette_pixels=2000, num_evals=2)
    monkeypatch.setitem(cz.PROTOCOL, "quick", tiny)
    calls = []
    real = cz.train_side_by_side

    def counting(model, seeds, *args, **kwargs):
        calls.append((model, tuple(seeds)))
        return real(model, seeds, *args, **kwargs)

    monkeypatch.setattr(cz, "train_side_by_side", counting)
    a = _run(cz.transpose_beats_pool, tmp_path)
    b = _run(cz.skip_connections_help, tmp_path)
    seeds = tuple(cz.pair_seeds(0, 3))
    # each network trained once for all seeds; ConvTransposeNet shared by both claims
    assert sorted(calls) == sorted((m, seeds) for m in ("pool", "transpose", "unet"))
    for ev, lo, hi in [(a, "PoolUpsampleNet", "ConvTransposeNet"), (b, "ConvTransposeNet", "UNet")]:
        m = ev.measured
        acc = paired_difference(m[f"{hi}_accuracy_per_seed"], m[f"{lo}_accuracy_per_seed"])
        loss = paired_difference(m[f"{hi}_loss_per_seed"], m[f"{lo}_loss_per_seed"])
        assert m["accuracy_gain_low"] == pytest.approx(100 * acc.low)
        assert m["loss_change_high"] == pytest.approx(loss.high)
        assert ev.passed == (acc.low > 0 and loss.high < 0)
        assert m["seeds"] == list(seeds) and m["steps"] == 2 * 2
        assert "interval" in ev.summary and ("FAILED" in ev.summary) == (not ev.passed)
        # histories are figures with their data, not dictionaries in the measured table
        assert not any("history" in k for k in m)
    shared = "ConvTransposeNet_accuracy_per_seed"
    assert a.measured[shared] == b.measured[shared]
    figs = tmp_path / "figures"
    assert (figs / "colourize.transpose-beats-pool-transpose-vs-pool.png").is_file()
    assert (figs / "colourize.transpose-beats-pool-transpose-vs-pool.json").is_file()
    assert (figs / "colourize.skip-connections-help-unet-vs-transpose-unet-samples.json").is_file()


# The quick protocol was designed on user seeds 0, 1 (and 100, 101, 104, 107), the full one on
# 0, 1 and 2 (and checked in float32 on 200-209 and 300-309 before it became bf16 with NF 32).
# User seeds 400-409 were used for neither: they are the held-out check of the quick scale (and
# of a 5-pair full scale, which they showed too narrow); 410-419 are the held-out check of the
# full scale's 8 pairs × 500 steps.
HELD_OUT_SEEDS = list(range(400, 410))
FULL_HELD_OUT_SEEDS = list(range(410, 420))


@pytest.mark.slow
@pytest.mark.parametrize("seed", HELD_OUT_SEEDS)
def test_quick_scale_verdicts_on_seeds_not_used_in_design(tmp_path, fresh_cache, seed):
    a = _run(cz.transpose_beats_pool, tmp_path, seed=seed)
    b = _run(cz.skip_connections_help, tmp_path, seed=seed)
    assert b.passed, b.summary
    # at 200 steps learned upsampling loses less (cross-entropy) but is not ahead in accuracy:
    # the claim fails at the quick scale for every held-out seed, and says so
    assert not a.passed and a.measured["loss_change_high"] < 0, a.summary


@pytest.mark.slow
@pytest.mark.parametrize("seed", FULL_HELD_OUT_SEEDS[:2])
def test_full_scale_verdicts_on_seeds_not_used_in_design(tmp_path, fresh_cache, seed):
    a = _run(cz.transpose_beats_pool, tmp_path, scale="full", seed=seed)
    b = _run(cz.skip_connections_help, tmp_path, scale="full", seed=seed)
    assert a.passed, a.summary
    assert b.passed, b.summary
