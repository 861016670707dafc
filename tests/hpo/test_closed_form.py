"""Closed forms of L_t(η) for GD on least squares against training and autograd."""

from __future__ import annotations

import pytest
import torch

from trainlab.errors import ArgumentError
from trainlab.hpo.closed_form import LeastSquaresClosedForm
from trainlab.hpo.hypergrad import hypergradient
from trainlab.hpo.tune import grid_search_lr
from trainlab.problems import load_problem


@pytest.fixture
def problem():
    return load_problem("linreg", n=8, d=20, seed=5)


def test_loss_after_t_steps_matches_training(problem):
    cf = LeastSquaresClosedForm(problem.x, problem.y)
    etas = [0.2 * cf.stable_lr, 0.7 * cf.stable_lr]
    grid = grid_search_lr(problem, [1, 3, 10], etas)
    for i, t in enumerate([1, 3, 10]):
        for j, e in enumerate(etas):
            assert grid.losses[i][j] == pytest.approx(cf.loss(e, t), rel=1e-12, abs=1e-14)


def test_derivatives_match_autograd_and_each_other(problem):
    cf = LeastSquaresClosedForm(problem.x, problem.y)
    eta = 0.4 * cf.stable_lr
    for t in (1, 4):
        hg = hypergradient(problem, t, lr=eta).hypergradient["lr"]
        assert hg == pytest.approx(cf.dloss(eta, t), rel=1e-12)
        h = 1e-5 * eta
        fd2 = (cf.dloss(eta + h, t) - cf.dloss(eta - h, t)) / (2 * h)
        assert cf.d2loss(eta, t) == pytest.approx(fd2, rel=1e-6)
        assert cf.d2loss(eta, t) > 0


def test_eta_star_is_the_one_step_minimiser_and_minimiser_finds_it_for_t_1(problem):
    cf = LeastSquaresClosedForm(problem.x, problem.y)
    e = cf.eta_star()
    assert cf.dloss(e, 1) == pytest.approx(0.0, abs=1e-12)
    assert cf.loss(e, 1) < min(cf.loss(0.99 * e, 1), cf.loss(1.01 * e, 1))
    t = 20
    m = cf.minimiser(t)
    assert abs(cf.dloss(m, t)) < 1e-9 * abs(cf.dloss(0.5 * m, t))


def test_eta_star_is_undefined_at_a_minimiser():
    X = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    t = torch.tensor([1.0, 2.0], dtype=torch.float64)
    cf = LeastSquaresClosedForm(X, t, w0=torch.tensor([1.0, 2.0, 5.0], dtype=torch.float64))  # Xw₀ = t
    with pytest.raises(ArgumentError):
        cf.eta_star()
