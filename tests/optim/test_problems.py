"""Closed forms of §1 against independent computations (pseudo-inverse, autograd, reparametrisation)."""

from __future__ import annotations

import pytest
import torch

from trainlab.errors import ArgumentError
from trainlab.optim.problems import (
    WORKED_EXAMPLES,
    distance_from_row_space,
    gd_stability_bound,
    min_norm_solution,
    preconditioned_solution,
    random_problems,
    ridge_solution,
    sign_interpolant,
    smoothness,
    worked_example,
)


def test_min_norm_solution_is_the_pseudo_inverse_solution() -> None:
    p = random_problems(6, 15, [0, 1])
    w = min_norm_solution(p.X, p.t)
    assert torch.allclose(w, (torch.linalg.pinv(p.X) @ p.t.unsqueeze(-1)).squeeze(-1), atol=1e-12)
    assert float(p.relative_residual(w).max()) < 1e-13
    assert float(distance_from_row_space(p.X, w).max()) < 1e-13


def test_worked_examples_have_the_course_values() -> None:
    ex = worked_example("x=[2,1],t=2")
    assert torch.allclose(min_norm_solution(ex.X, ex.t)[0], torch.tensor([0.8, 0.4], dtype=torch.float64))
    assert torch.allclose(sign_interpolant(ex.X[0, 0], 2.0), torch.full((2,), 2 / 3, dtype=torch.float64))
    ex = worked_example("x=[1,2],t=3")
    assert torch.allclose(min_norm_solution(ex.X, ex.t)[0], torch.tensor([0.6, 1.2], dtype=torch.float64))
    assert torch.allclose(sign_interpolant(ex.X[0, 0], 3.0), torch.ones(2, dtype=torch.float64))
    ex = worked_example("x=[1,0.1,0.01],t=1")
    m = torch.tensor([1.0, 1e2, 1e4], dtype=torch.float64)
    assert torch.allclose(
        preconditioned_solution(ex.X, ex.t, m)[0],
        torch.tensor([1.0, 10.0, 100.0], dtype=torch.float64) / 3,
        atol=1e-12,
    )
    assert set(WORKED_EXAMPLES) == {"x=[2,1],t=2", "x=[1,2],t=3", "x=[1,0.1,0.01],t=1"}


def test_preconditioned_solution_is_the_min_m_inverse_norm_interpolant() -> None:
    # In u = M^{-1/2} w the M⁻¹-norm is Euclidean: w_M = M^{1/2} pinv(X M^{1/2}) t.
    p = random_problems(4, 9, [3])
    m = torch.linspace(0.1, 5, 9, dtype=torch.float64)
    w_M = preconditioned_solution(p.X, p.t, m)[0]
    via_pinv = m.sqrt() * (torch.linalg.pinv(p.X[0] * m.sqrt()) @ p.t[0])
    assert torch.allclose(w_M, via_pinv, atol=1e-12)


def test_ridge_solution_zeroes_the_gradient_of_the_penalised_loss() -> None:
    p = random_problems(5, 12, [2])
    lam = 0.3
    w = ridge_solution(p.X, p.t, lam).requires_grad_(True)
    objective = p.loss(w).sum() + lam * w.pow(2).sum()
    (grad,) = torch.autograd.grad(objective, w)
    assert float(grad.abs().max()) < 1e-13
    many = ridge_solution(p.X, p.t, torch.tensor([lam, 1.0], dtype=torch.float64))  # (R, 2, d)
    assert torch.allclose(many[:, 0], w.detach(), atol=1e-14)


def test_gd_stability_bound_is_two_over_the_largest_hessian_eigenvalue() -> None:
    p = random_problems(5, 12, [4])
    H = p.X[0].T @ p.X[0] / 5
    assert float(gd_stability_bound(p.X)[0]) == pytest.approx(
        2 / float(torch.linalg.eigvalsh(H)[-1]), rel=1e-12
    )
    assert float(smoothness(p.X)[0]) == pytest.approx(float(torch.linalg.eigvalsh(H)[-1]), rel=1e-12)


def test_random_problems_are_seeded_and_leave_the_global_rng_alone() -> None:
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a, b = random_problems(4, 10, [0, 1]), random_problems(4, 10, [0, 1])
    assert torch.equal(torch.random.get_rng_state(), before)
    assert torch.equal(a.X, b.X) and torch.equal(a.t, b.t)
    assert not torch.equal(a.X[0], a.X[1])


def test_condition_number_and_row_scales_are_realised() -> None:
    p = random_problems(5, 20, [0], condition_number=100.0)
    s = torch.linalg.svdvals(p.X[0])
    assert float(s[0] / s[-1]) == pytest.approx(100.0, rel=1e-10)
    q = random_problems(50, 60, [0], row_scale=(0.5, 2.0))
    base = random_problems(50, 60, [0])
    scale = q.X[0].norm(dim=-1) / base.X[0].norm(dim=-1)
    assert 0.5 <= float(scale.min()) and float(scale.max()) <= 2.0 and float(scale.std()) > 0.1


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda: random_problems(0, 5, [0]), "n"),
        (lambda: random_problems(3, 5, [0], condition_number=0.5), "condition_number"),
        (lambda: worked_example("x=[3,4],t=1"), "example"),
    ],
)
def test_bad_arguments_are_argument_errors(call, argument: str) -> None:
    with pytest.raises(ArgumentError) as info:
        call()
    assert info.value.argument == argument
