"""B_simple: vmapped per-example gradients against a backward loop and the closed form of least squares;
the two-batch estimator is unbiased; B_noise with Hessian-vector products against the exact Hessian."""

from __future__ import annotations

import math

import torch

from trainlab.problems import digits_mlp, linreg
from trainlab.scaling.noise_scale import (
    TwoBatchEstimator,
    exact_noise_scale,
    hessian_noise_scale,
    loop_noise_scale,
    two_batch_noise_scale,
)

EPS64 = torch.finfo(torch.float64).eps


def _linreg_truth(p, w):
    """Per-example gradients of (x_iᵀw − t_i)² are 2(x_iᵀw − t_i)x_i: B_simple in closed form."""
    X, t = p.x, p.y
    g = 2 * (X @ w - t)[:, None] * X  # (n, d)
    G = g.mean(0)
    tr = (g * g).sum(1).mean() - G @ G
    return float(tr / (G @ G)), float(G @ G), float(tr), g


def test_exact_noise_scale_equals_the_closed_form_on_least_squares():
    p = linreg(n=30, d=50, seed=3)
    w = torch.randn(50, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    b, g2, tr, _ = _linreg_truth(p, w)
    ns = exact_noise_scale(p, {"weight": w}, chunk_size=7)  # chunks of 7 cover 30 examples
    # float64 sums of n·d products: relative error ~ n·d·eps
    assert math.isclose(ns.grad_norm_sq, g2, rel_tol=30 * 50 * EPS64 * 10)
    assert math.isclose(ns.trace_cov, tr, rel_tol=30 * 50 * EPS64 * 10)
    assert math.isclose(ns.b_simple, b, rel_tol=30 * 50 * EPS64 * 20)
    assert ns.method == "exact" and ns.num_examples == 30


def test_vmapped_per_example_gradients_match_a_backward_loop_on_the_digits_mlp():
    p = digits_mlp(0, width=16, dtype=torch.float64)
    exact, loop = exact_noise_scale(p), loop_noise_scale(p)
    assert math.isclose(exact.b_simple, loop.b_simple, rel_tol=1e-10)
    assert math.isclose(exact.grad_norm_sq, loop.grad_norm_sq, rel_tol=1e-10)


def test_two_batch_estimates_are_unbiased_for_batches_drawn_with_replacement():
    # E|G_B|² = |G|² + tr Σ/B exactly, so each estimator is unbiased; check against the truth
    p = linreg(n=40, d=60, seed=5)
    w = torch.randn(60, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    _, g2, tr, g = _linreg_truth(p, w)
    gen = torch.Generator().manual_seed(0)
    est = TwoBatchEstimator(4, 32)
    g2s, trs = [], []
    for _ in range(3000):
        idx = torch.randint(0, 40, (32,), generator=gen)
        G_big, G_small = g[idx].mean(0), g[idx[:4]].mean(0)
        a, b = float(G_small @ G_small), float(G_big @ G_big)
        est.update(a, b)
        e_g2, e_tr = two_batch_noise_scale(a, b, 4, 32)
        g2s.append(e_g2)
        trs.append(e_tr)
    g2s_t, trs_t = torch.tensor(g2s, dtype=torch.float64), torch.tensor(trs, dtype=torch.float64)
    se_g2, se_tr = g2s_t.std() / math.sqrt(3000), trs_t.std() / math.sqrt(3000)
    assert abs(g2s_t.mean() - g2) < 4 * se_g2  # 4 standard errors
    assert abs(trs_t.mean() - tr) < 4 * se_tr
    # the running estimator averages numerator and denominator separately
    assert math.isclose(est.grad_norm_sq_, float(g2s_t.mean()), rel_tol=1e-9)
    assert math.isclose(est.b_simple_, float(trs_t.mean() / g2s_t.mean()), rel_tol=1e-9)


def test_two_batch_callback_tracks_the_exact_value_on_the_digits_mlp():
    p = digits_mlp(0)
    exact = exact_noise_scale(p)
    est = TwoBatchEstimator(8, 128)
    hook = est.callback(p, torch.Generator().manual_seed(0))
    for _ in range(60):
        hook(p.params())
    assert 0.6 < est.result().b_simple / exact.b_simple < 1.6
    assert est.result().method == "two-batch"


def test_ema_weights_make_a_constant_stream_exact():
    est = TwoBatchEstimator(2, 8, ema=0.9)
    for _ in range(5):
        est.update(3.0, 1.5)  # the same pair every step: the EMA equals that pair's estimate
    g2, tr = two_batch_noise_scale(3.0, 1.5, 2, 8)
    assert math.isclose(est.grad_norm_sq_, g2) and math.isclose(est.trace_cov_, tr)


def test_hessian_noise_scale_matches_the_explicit_hessian_on_least_squares():
    p = linreg(n=20, d=30, seed=7)
    w = torch.randn(30, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    _, _, _, g = _linreg_truth(p, w)
    H = 2.0 / 20 * p.x.T @ p.x  # Hessian of (1/n)‖Xw − t‖²
    G = g.mean(0)
    tr_h = (torch.einsum("ni,ij,nj->n", g, H, g)).mean() - G @ H @ G
    ns = hessian_noise_scale(p, {"weight": w}, max_examples=100)
    assert math.isclose(ns.b_simple, float(tr_h / (G @ H @ G)), rel_tol=1e-9)
