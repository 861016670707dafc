"""Learning the learning rate offline (through the unroll) and online."""

from __future__ import annotations

import math

import pytest

from trainlab.hpo.closed_form import LeastSquaresClosedForm
from trainlab.hpo.tune import online_lr, tune_lr
from trainlab.hpo.unroll import DivergenceError
from trainlab.problems import load_problem


def test_offline_descent_on_eta_finds_the_closed_form_minimiser():
    p = load_problem("linreg", n=10, d=15, seed=2)
    cf = LeastSquaresClosedForm(p.x, p.y)
    r = tune_lr(p, 10, meta_steps=50)
    assert r.lr == pytest.approx(cf.minimiser(10), rel=1e-3)
    assert r.loss < 0.1 * r.start_loss
    assert [h["iteration"] for h in r.history] == list(range(len(r.history)))


def test_offline_schedule_tuning_lowers_the_loss_below_the_start():
    p = load_problem("linreg", n=10, d=15, seed=2)
    r = tune_lr(p, 6, meta_steps=15, schedule=True)
    assert r.schedule is not None and len(r.schedule) == 6
    assert r.loss < 0.5 * r.start_loss


def test_online_hypergradient_descent_raises_a_poor_rate_and_lowers_the_loss():
    p = load_problem("linreg", n=10, d=15, seed=2)
    cf = LeastSquaresClosedForm(p.x, p.y)
    r = online_lr(p, 100, hypergrad_lr=0.02)
    assert r.lr > 2 * r.start_lr
    assert r.loss < cf.loss(r.start_lr, 100)
    assert len(r.history) == 100


def test_a_diverging_start_is_reported_not_tuned():
    p = load_problem("linreg", n=10, d=15, seed=2)
    with pytest.raises(DivergenceError):
        tune_lr(p, 50, lr=5 * p.stable_lr_bound, meta_steps=3)
    with pytest.raises(DivergenceError):
        online_lr(p, 50, lr=5 * p.stable_lr_bound)
    assert math.isfinite(p.stable_lr_bound)
