"""Fits recover known laws: the critical-batch hyperbola, the LR law, power laws; the bootstrap."""

from __future__ import annotations

import math

import numpy as np

from trainlab.scaling.fit import fit_critical_batch, fit_lr_law, fit_power_law, fit_sweep, refine_best_lr


def test_hyperbola_is_recovered_exactly_from_exact_points():
    B = [1, 2, 4, 8, 16, 32, 64, 128, 256]
    S = [100 * (1 + 30 / b) for b in B]
    f = fit_critical_batch(B, S)
    assert math.isclose(f.s_min, 100, rel_tol=1e-9) and math.isclose(f.b_crit, 30, rel_tol=1e-9)
    assert math.isclose(f.e_min, 3000, rel_tol=1e-9) and f.max_rel_err < 1e-9
    # the same curve in E, S form: (S/S_min − 1)(E/E_min − 1) = 1
    for b, s in zip(B, S, strict=True):
        assert math.isclose((s / f.s_min - 1) * (b * s / f.e_min - 1), 1, rel_tol=1e-8)


def test_lr_law_and_power_law_are_recovered():
    B = np.array([1, 2, 4, 8, 16, 64, 256.0])
    law = fit_lr_law(B, 1.2 / (1 + 20 / B))
    assert math.isclose(law.lr_max, 1.2, rel_tol=1e-9) and math.isclose(law.b_noise, 20, rel_tol=1e-9)
    p = fit_power_law([10, 100, 1000], [3 * 10**-0.5, 3 * 100**-0.5, 3 * 1000**-0.5])
    assert math.isclose(p.exponent, -0.5, rel_tol=1e-9) and math.isclose(p.coef, 3, rel_tol=1e-9)


def _records(rng, seeds, noise):
    """Synthetic sweep points: S = 100(1 + 30/B) at the best LR index, slower elsewhere."""
    recs = []
    for B in [2, 4, 8, 16, 32, 64, 128, 256]:
        best_k = min(int(round(2 * math.log2(B))), 10)
        for k in range(best_k - 1, best_k + 2):
            for s in seeds:
                slow = 1 + 0.3 * abs(k - best_k)
                steps = 100 * (1 + 30 / B) * slow * math.exp(noise * rng.standard_normal())
                recs.append({"batch_size": B, "lr_index": k, "lr": 0.05 * 2 ** (k / 2), "seed": s,
                             "steps_to_target": [steps]})
    return recs


def test_fit_sweep_picks_the_best_lr_and_its_interval_covers_the_truth():
    rng = np.random.default_rng(0)
    seeds = list(range(8))
    f = fit_sweep(_records(rng, seeds, 0.05), seeds, [0.1], 0, num_resamples=300, rng=rng, refine_lr=False)
    assert [round(2 * math.log2(lr / 0.05)) for lr in f.best_lr] == [min(int(round(2 * math.log2(B))), 10)
                                                                    for B in f.batch_sizes]
    lo, hi = f.b_crit_interval
    assert lo < 30 < hi and hi / lo < 2
    assert f.steps_samples.shape == (300, 8)


def test_a_missing_seed_makes_that_learning_rate_unusable():
    rng = np.random.default_rng(1)
    recs = [r for r in _records(rng, [0, 1], 0.0) if not (r["batch_size"] == 2 and r["seed"] == 1
                                                          and r["lr_index"] == 2)]
    f = fit_sweep(recs, [0, 1], [0.1], 0, num_resamples=20, refine_lr=False)
    assert f.best_lr[0] != 0.05 * 2 ** (2 / 2)  # the best index at B=2 lost a seed


def test_refined_best_lr_is_the_vertex_of_a_log_log_parabola():
    lr_of = {k: 0.1 * 2 ** (k / 2) for k in range(5)}
    true = 0.1 * 2 ** (1.7 / 2)
    steps = {k: math.exp(2.0 * (math.log(lr_of[k]) - math.log(true)) ** 2 + 5) for k in lr_of}
    assert math.isclose(refine_best_lr(lr_of, steps, 2), true, rel_tol=1e-9)
    assert refine_best_lr(lr_of, steps, 0) == lr_of[0]  # at the edge: the grid value
    steps[1] = math.inf
    assert refine_best_lr(lr_of, steps, 2) == lr_of[2]  # a neighbour never reached the target
