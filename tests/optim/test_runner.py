"""The vectorised runner equals torch.optim run by run, and its iterates behave as §1 says."""

from __future__ import annotations

import pytest
import torch

import trainlab.functional as F
from trainlab.errors import ArgumentError
from trainlab.optim.problems import (
    LeastSquares,
    distance_from_row_space,
    gd_stability_bound,
    min_norm_solution,
    random_problems,
    smoothness,
)
from trainlab.optim.runner import batch_gradient, run_batch, torch_optim_reference
from trainlab.optim.samplers import FullBatch, MiniBatch, Weighted


@pytest.mark.parametrize(
    "functional, torch_optim, sampler",
    [
        (lambda: F.sgd(lr=0.005), lambda p: torch.optim.SGD(p, lr=0.005), MiniBatch(1)),
        (
            lambda: F.sgd(lr=0.005, momentum=0.9),
            lambda p: torch.optim.SGD(p, lr=0.005, momentum=0.9),
            MiniBatch(4, True),
        ),
        (lambda: F.adam(lr=0.01), lambda p: torch.optim.Adam(p, lr=0.01), Weighted(torch.arange(1.0, 9.0))),
        (lambda: F.adagrad(lr=0.1), lambda p: torch.optim.Adagrad(p, lr=0.1), FullBatch()),
    ],
    ids=["sgd-b1", "momentum-b4", "adam-weighted", "adagrad-full"],
)
def test_vectorised_runs_equal_a_torch_optim_loop(functional, torch_optim, sampler) -> None:
    problem = random_problems(8, 30, [0, 1, 2])
    tr = run_batch(
        problem, functional(), 200, sampler=sampler, generator=torch.Generator().manual_seed(3), tol=0.0
    )
    ref = torch_optim_reference(
        problem, torch_optim, 200, sampler=sampler, generator=torch.Generator().manual_seed(3), tol=0.0
    )
    assert float((tr.final_params - ref).abs().max()) <= 1e-12
    assert float((tr.final_params).abs().max()) > 1e-3


def test_batch_gradient_is_the_gradient_of_the_sampled_loss() -> None:
    problem = random_problems(6, 10, [0, 1])
    w = torch.randn(2, 10, generator=torch.Generator().manual_seed(0), dtype=torch.float64).requires_grad_(
        True
    )
    idx = torch.tensor([[0, 3, 3], [5, 1, 2]])
    c = torch.rand(2, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    rows = torch.arange(2)[:, None]
    loss = 0.5 * (
        c[rows, idx] * ((problem.X[rows, idx] @ w.unsqueeze(-1)).squeeze(-1) - problem.t[rows, idx]) ** 2
    )
    (auto,) = torch.autograd.grad(loss.mean(-1).sum(), w)
    assert torch.allclose(batch_gradient(problem, w.detach(), idx, c), auto, atol=1e-13)
    (full,) = torch.autograd.grad(problem.loss(w).sum(), w)
    assert torch.allclose(batch_gradient(problem, w.detach(), None), full, atol=1e-13)


def test_sgd_from_zero_stays_in_the_row_space_and_reaches_w_star() -> None:
    problem = random_problems(10, 40, [0, 1, 2, 3])
    R2 = problem.X.pow(2).sum(-1).max(-1).values[:, None]
    tr = run_batch(
        problem,
        F.sgd(lr=1 / R2),
        20_000,
        sampler=MiniBatch(1),
        generator=torch.Generator().manual_seed(0),
        record_params=True,
        record_every=5,
    )
    w_star = min_norm_solution(problem.X, problem.t)
    assert bool(tr.converged.all())
    assert float(tr.final_relative_distance(w_star).max()) <= 1e-8
    assert float(distance_from_row_space(problem.X, tr.params).max()) <= 1e-12


def test_runs_stop_on_their_own_and_are_frozen() -> None:
    problem = random_problems(5, 20, [0, 1])
    lr = (1 / smoothness(problem.X))[:, None] * torch.tensor([[1.0], [0.2]], dtype=torch.float64)
    tr = run_batch(problem, F.sgd(lr=lr), 10_000, record_every=1)
    fast, slow = tr.converged_at.tolist()
    assert 0 < fast < slow
    assert tr.steps_run == slow
    # the fast run's residual stays where it stopped while the slow one keeps going
    assert torch.equal(tr.relative_residual[fast:, 0], tr.relative_residual[fast, 0].expand(slow - fast + 1))


def test_a_step_beyond_two_over_lambda_max_is_reported_as_diverged() -> None:
    problem = random_problems(5, 20, [0, 1])
    bound = gd_stability_bound(problem.X)[:, None]
    tr = run_batch(problem, F.sgd(lr=bound * torch.tensor([[0.9], [1.1]], dtype=torch.float64)), 5000)
    assert tr.converged_at[0] >= 0 and tr.diverged_at[0] == -1
    assert tr.diverged_at[1] > 0 and tr.converged_at[1] == -1
    assert bool(torch.isfinite(tr.final_params).all())  # frozen before overflowing


def test_same_seed_same_run() -> None:
    problem = random_problems(5, 20, [0])
    runs = [
        run_batch(
            problem, F.sgd(lr=0.01), 300, sampler=MiniBatch(2), generator=torch.Generator().manual_seed(9)
        )
        for _ in range(2)
    ]
    assert torch.equal(runs[0].final_params, runs[1].final_params)


def test_stochastic_runs_need_an_explicit_generator() -> None:
    problem = LeastSquares(
        torch.ones(1, 2, 3, dtype=torch.float64), torch.ones(1, 2, dtype=torch.float64), ("p",)
    )
    with pytest.raises(ArgumentError) as info:
        run_batch(problem, F.sgd(lr=0.1), 10, sampler=MiniBatch(1))
    assert info.value.argument == "generator"


def test_a_run_does_not_depend_on_the_other_runs_in_its_batch() -> None:
    problem = random_problems(6, 25, [0, 1, 2])
    lr = (1 / smoothness(problem.X))[:, None]
    together = run_batch(problem, F.adam(lr=0.01 * lr / lr), 500, tol=0.0).final_params
    alone = run_batch(problem.select([1]), F.adam(lr=0.01), 500, tol=0.0).final_params
    assert torch.allclose(together[1], alone[0], rtol=0, atol=1e-15)
