"""Exact SGD moments against Monte Carlo, and the rate bounds against the exact moments."""

from __future__ import annotations

import math

import pytest
import torch

import trainlab.functional as F
from trainlab.optim.problems import min_norm_solution, random_problems
from trainlab.optim.rates import (
    distance_rate,
    error_moments,
    kaczmarz_rate,
    sampling_covariance,
    weighted_loss_rate,
    worst_one_step_ratio,
)
from trainlab.optim.runner import run_batch
from trainlab.optim.samplers import Weighted, squared_norm_probabilities


def _instance():
    p = random_problems(5, 12, [0], row_scale=(0.5, 2.0))
    probs = torch.tensor([0.4, 0.1, 0.2, 0.2, 0.1], dtype=torch.float64)
    return p, probs, 1 / float(p.X[0].pow(2).sum(-1).max())


def test_exact_second_moments_match_monte_carlo() -> None:
    p, probs, lr = _instance()
    w_star = min_norm_solution(p.X, p.t)[0]
    exact = error_moments(p.X[0], probs, lr, -w_star, 40)
    n_runs = 4000
    many = p.repeat(n_runs)
    tr = run_batch(
        many,
        F.sgd(lr=lr),
        40,
        sampler=Weighted(probs),
        generator=torch.Generator().manual_seed(0),
        tol=0.0,
        record_every=1,
        observe=lambda w: (w - w_star).pow(2).sum(-1),
    )
    obs = tr.extra["observed"]
    z = (obs.mean(1) - exact.squared_distance) / (obs.std(1) / math.sqrt(n_runs)).clamp_min(1e-300)
    assert float(z[1:].abs().max()) < 5
    assert float(exact.squared_distance[-1]) < 0.9 * float(exact.squared_distance[0])  # it does move


def test_distance_and_kaczmarz_bounds_hold_on_the_exact_moments() -> None:
    p, probs, lr = _instance()
    X, e0 = p.X[0], -min_norm_solution(p.X, p.t)[0]
    rho = float(distance_rate(X, probs, lr))
    m = error_moments(X, probs, lr, e0, 200)
    k = torch.arange(201, dtype=torch.float64)
    assert bool((m.squared_distance <= m.squared_distance[0] * (1 - rho) ** k * (1 + 1e-12)).all())
    sq = X.pow(2).sum(-1)
    rk = error_moments(X, squared_norm_probabilities(X), 1 / sq, e0, 200)
    bound = rk.squared_distance[0] * (1 - float(kaczmarz_rate(X))) ** k
    assert bool((rk.squared_distance <= bound * (1 + 1e-12)).all())


def test_moments_at_given_steps_are_the_full_runs_values() -> None:
    """``at``: step 0 and one step per problem, bit for bit what every step gives, in memory that
    does not grow with the steps (the 201-seed slow test of optim.nonuniform-sampling ran out of
    24 GB keeping them all); steps outside 0..steps and other shapes are refused."""
    from trainlab.errors import ArgumentError

    p = random_problems(5, 12, [0, 1, 2, 3], row_scale=(0.5, 2.0))
    gen = torch.Generator().manual_seed(1)
    probs = torch.softmax(torch.randn(4, 5, dtype=torch.float64, generator=gen), -1)
    lr = (1 / p.X.pow(2).sum(-1).amax(-1)).unsqueeze(-1)
    e0 = -min_norm_solution(p.X, p.t)
    full = error_moments(p.X, probs, lr, e0, 60)
    at = torch.tensor([0, 17, 60, 3])
    kept = error_moments(p.X, probs, lr, e0, 60, at=at)
    assert torch.equal(kept.steps, torch.stack([torch.zeros_like(at), at]))
    for name in ("squared_distance", "weighted_loss", "loss"):
        values, picked = getattr(full, name), getattr(kept, name)
        assert picked.shape == (2, 4)
        assert torch.equal(picked[0], values[0]) and torch.equal(picked[1], values[at, torch.arange(4)])
    for bad in (torch.tensor([0, 1, 61, 2]), torch.tensor([-1, 0, 0, 0]), torch.tensor([1, 2]),
                torch.tensor([0.0, 1, 2, 3]), torch.tensor([True, False, True, True])):
        with pytest.raises(ArgumentError, match="at="):
            error_moments(p.X, probs, lr, e0, 60, at=bad)


def test_worst_one_step_ratio_bounds_random_directions_and_is_attained() -> None:
    p, probs, _ = _instance()
    X = p.X[0]
    G = sampling_covariance(X, probs)
    lr = 0.02
    worst = float(worst_one_step_ratio(X, probs, lr, G))
    e = torch.randn(2000, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64) @ X  # row space
    after = torch.stack([e - lr * (e @ X[i])[:, None] * X[i] for i in range(5)])  # (n, N, d)
    ratio = (probs[:, None] * torch.einsum("ind,de,ine->in", after, G, after)).sum(0) / torch.einsum(
        "nd,de,ne->n", e, G, e
    )
    assert float(ratio.max()) <= worst + 1e-12
    assert worst <= 1 - float(weighted_loss_rate(X, probs, lr)) + 1e-12
    # attained: with a 2-dimensional row space, 20,001 directions come within 1e-6 of the worst one
    X2, p2 = X[:2], torch.tensor([0.7, 0.3], dtype=torch.float64)
    G2 = sampling_covariance(X2, p2)
    angle = torch.linspace(0, math.pi, 20001, dtype=torch.float64)
    e2 = torch.stack([angle.cos(), angle.sin()], 1) @ X2
    after2 = torch.stack([e2 - lr * (e2 @ X2[i])[:, None] * X2[i] for i in range(2)])
    ratio2 = (p2[:, None] * torch.einsum("ind,de,ine->in", after2, G2, after2)).sum(0) / torch.einsum(
        "nd,de,ne->n", e2, G2, e2
    )
    assert float(ratio2.max()) == pytest.approx(float(worst_one_step_ratio(X2, p2, lr, G2)), abs=1e-6)


def test_unweighted_loss_can_rise_under_nonuniform_sampling() -> None:
    c = 0.95
    X = torch.tensor([[1.0, 0.0], [c, math.sqrt(1 - c * c)]], dtype=torch.float64)
    probs = torch.tensor([0.9, 0.1], dtype=torch.float64)
    H = X.T @ X / 2
    assert float(worst_one_step_ratio(X, probs, 1e-4, H)) > 1
    assert float(worst_one_step_ratio(X, probs, 1e-4, sampling_covariance(X, probs))) < 1
    uniform = torch.tensor([0.5, 0.5], dtype=torch.float64)
    assert float(worst_one_step_ratio(X, uniform, 1e-4, H)) < 1
