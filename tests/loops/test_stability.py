"""GD's divergence threshold on quadratics: the vectorised runs, the bisection, the horizon slack."""

from __future__ import annotations

import pytest
import torch

from trainlab.loops.sharpness import flat_loss, sharpness
from trainlab.loops.stability import divergence_threshold, gd_runs, horizon_slack
from trainlab.problems import load_problem


def test_gd_runs_follow_the_closed_form_iteration_on_least_squares() -> None:
    p = load_problem("linreg", n=6, d=15, seed=1)
    f = flat_loss(p)
    lrs = [0.01, 0.05]
    runs = gd_runs(f, lrs, 25)
    X, t = p.x, p.y
    for i, lr in enumerate(lrs):
        w = torch.zeros(15, dtype=torch.float64)
        for _ in range(25):
            w = w - lr * (2 / 6) * X.T @ (X @ w - t)  # ∇J = (2/n) Xᵀ(Xw − t)
        assert float(runs.losses[i, -1]) == pytest.approx(float((X @ w - t).pow(2).mean()), rel=1e-12)


def test_threshold_on_a_quadratic_lies_between_two_over_lambda_and_the_horizon_slack() -> None:
    p = load_problem("linreg", n=10, d=30, seed=7)
    f = flat_loss(p)
    s = sharpness(p, tol=1e-12)
    th = divergence_threshold(f, steps=150, rtol=1e-6)
    slack = horizon_slack(f, s.lambda_max, s.eigenvector, 150)
    excess = th.lr / s.stable_lr_bound - 1
    assert -th.rel_width <= excess <= (1 + slack) * (1 + th.rel_width) - 1
    assert excess == pytest.approx(slack, rel=0.05)  # the top mode alone decides it here
    assert not gd_runs(f, [th.stable_lr], 150).diverged[0] and gd_runs(f, [th.diverging_lr], 150).diverged[0]


def test_a_run_that_overflows_is_marked_diverged_and_frozen() -> None:
    p = load_problem("linreg", n=5, d=12, seed=0)
    runs = gd_runs(flat_loss(p), [1e6], 200)
    assert runs.diverged == [True] and torch.isinf(runs.losses[0, -1])


def test_minimize_reaches_an_interpolating_minimum_to_rounding() -> None:
    from trainlab.loops.models import tanh_regression
    from trainlab.loops.stability import minimize

    f = flat_loss(tanh_regression(5))
    w_star, loss, grad = minimize(f)
    assert loss < 1e-25 and grad < 1e-12
    assert float((w_star - f.w0).norm()) > 0  # it moved from the start
