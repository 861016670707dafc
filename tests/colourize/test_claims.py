"""The §5 claims: the padding claim, and the comparison claims' protocol and verdict logic."""

from __future__ import annotations

import pytest

import trainlab.colourize.claims as cz
from trainlab.claims import Context, all_claims


@pytest.fixture
def fresh_cache(monkeypatch):
    monkeypatch.setattr(cz, "_DATA", {})
    monkeypatch.setattr(cz, "_TRAINED", {})


def _ctx(tmp_path, claim_id, scale="quick", seed=0):
    return Context(claim_id, scale, seed, tmp_path)


def test_the_three_ids_are_registered():
    ids = {c.id for c in all_claims()}
    assert {"colourize.transpose-beats-pool", "colourize.skip-connections-help",
            "colourize.transpose-padding"} <= ids


def test_transpose_padding_solver_agrees_with_real_modules(tmp_path):
    ev = cz.run_transpose_padding(_ctx(tmp_path, "colourize.transpose-padding"))
    assert ev.passed
    assert ev.measured["solver"]["4"] == [[1, 0]] and ev.measured["solver"]["5"] == [[2, 1]]
    assert ev.measured["solver"] == ev.measured["nn.ConvTranspose2d_giving_32"]
    assert (tmp_path / "figures" / "colourize.transpose-padding-output-size.png").is_file()


def test_comparison_verdict_is_the_measured_ordering_and_training_is_shared(tmp_path, monkeypatch,
                                                                           fresh_cache):
    tiny = cz.Protocol(num_filters=4, epochs=1, batch_size=20, max_train=40, max_valid=10, num_seeds=2)
    monkeypatch.setitem(cz.PROTOCOL, "quick", tiny)
    calls = []
    real_train = cz.train

    def counting_train(config, *args, **kwargs):
        calls.append((config.model, config.seed))
        return real_train(config, *args, **kwargs)

    monkeypatch.setattr(cz, "train", counting_train)
    a = cz.run_transpose_beats_pool(_ctx(tmp_path, "colourize.transpose-beats-pool"))
    b = cz.run_skip_connections_help(_ctx(tmp_path, "colourize.skip-connections-help"))
    for ev, lo, hi in [(a, "PoolUpsampleNet", "ConvTransposeNet"), (b, "ConvTransposeNet", "UNet")]:
        m = ev.measured
        ordered = (m[f"{hi}_valid_accuracy"] > m[f"{lo}_valid_accuracy"]
                   and m[f"{hi}_valid_loss"] < m[f"{lo}_valid_loss"])
        assert ev.passed == ordered
        for name in (lo, hi):  # the compared numbers are the means over the two training seeds
            assert len(m[f"{name}_valid_accuracy_per_seed"]) == 2
            assert m[f"{name}_valid_accuracy"] == pytest.approx(sum(m[f"{name}_valid_accuracy_per_seed"]) / 2)
            assert m[f"{name}_valid_loss"] == pytest.approx(sum(m[f"{name}_valid_loss_per_seed"]) / 2)
        assert m["protocol"]["num_train"] == 40 and m["protocol"]["epochs"] == 1
    # each network was trained once per seed; ConvTransposeNet's runs are shared by both claims
    assert sorted(calls) == sorted((m, s) for s in (0, 1) for m in ("pool", "transpose", "unet"))
    assert a.measured["ConvTransposeNet_valid_loss"] == b.measured["ConvTransposeNet_valid_loss"]
    assert (tmp_path / "figures" / "colourize.transpose-beats-pool-transpose-vs-pool.png").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_quick_scale_ordering_holds_for_seeds_0_to_3(tmp_path, fresh_cache, seed):
    a = cz.run_transpose_beats_pool(_ctx(tmp_path, "colourize.transpose-beats-pool", seed=seed))
    b = cz.run_skip_connections_help(_ctx(tmp_path, "colourize.skip-connections-help", seed=seed))
    assert a.passed, a.summary
    assert b.passed, b.summary
