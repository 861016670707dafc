"""The sharpness meter against exact eigenvalues: explicit matrices, least squares, full Hessians."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainlab.errors import ArgumentError
from trainlab.loops.models import tanh_regression
from trainlab.loops.sharpness import flat_loss, hvp_operator, lanczos_top_eigenvalue, sharpness
from trainlab.problems import Problem, digits_data, load_problem


def _matrix_with_spectrum(eigs: list[float], seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(len(eigs), len(eigs), generator=g, dtype=torch.float64))
    return q @ torch.diag(torch.tensor(eigs, dtype=torch.float64)) @ q.T


@pytest.mark.parametrize("tol", [1e-3, 1e-6, 1e-10])
def test_lanczos_error_is_within_its_residual_bound_on_a_quadratic(tol: float) -> None:
    eigs = torch.linspace(0.1, 5.0, 60).tolist() + [5.5, 7.0]
    A = _matrix_with_spectrum(eigs)
    r = lanczos_top_eigenvalue(lambda v: A @ v, 62, tol=tol, generator=torch.Generator().manual_seed(1))
    assert r.converged and r.hvps == len(r.history)
    assert abs(r.lambda_max - 7.0) <= r.residual  # some eigenvalue lies within the residual: λ_max here
    assert abs(r.lambda_max - 7.0) / 7.0 <= tol
    assert float((A @ r.eigenvector - r.lambda_max * r.eigenvector).norm()) == pytest.approx(
        r.residual, rel=1e-3, abs=1e-12
    )


def test_lanczos_returns_the_largest_algebraic_eigenvalue_not_the_largest_magnitude() -> None:
    A = _matrix_with_spectrum([-10.0, -3.0, 0.5, 1.0, 2.0])
    r = lanczos_top_eigenvalue(lambda v: A @ v, 5, tol=1e-12, generator=torch.Generator().manual_seed(0))
    assert r.lambda_max == pytest.approx(2.0, rel=1e-10)


def test_lanczos_reports_non_convergence_when_out_of_hvps() -> None:
    A = _matrix_with_spectrum(torch.linspace(1.0, 1.01, 200).tolist(), seed=3)  # no gap: slow
    r = lanczos_top_eigenvalue(
        lambda v: A @ v, 200, tol=1e-12, max_hvps=3, generator=torch.Generator().manual_seed(0)
    )
    assert not r.converged and r.hvps == 3 and r.relative_error_bound > 1e-12


def test_least_squares_sharpness_is_the_closed_form() -> None:
    p = load_problem("linreg", n=15, d=40, seed=4)
    r = sharpness(p, tol=1e-10)
    X = p.x
    exact = float(torch.linalg.eigvalsh(2 / len(X) * X.T @ X)[-1])  # Hessian (2/n) XᵀX
    assert r.lambda_max == pytest.approx(exact, rel=1e-9)
    assert r.stable_lr_bound == pytest.approx(p.stable_lr_bound, rel=1e-9)


def _exact_lambda(f, w) -> float:
    H = torch.autograd.functional.hessian(f, w)  # (d, d)
    return float(torch.linalg.eigvalsh((H + H.T) / 2)[-1])


def test_tanh_network_sharpness_matches_its_full_hessian() -> None:
    p = tanh_regression(3)
    f = flat_loss(p)
    r = sharpness(p, tol=1e-10)
    assert r.lambda_max == pytest.approx(_exact_lambda(f, f.w0), rel=1e-9)


def test_cross_entropy_network_on_a_batch_matches_its_full_hessian() -> None:
    x, y, _, _ = digits_data(0, dtype=torch.float64)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 4), nn.Tanh(), nn.Linear(4, 10)).double()  # 310 parameters
    p = Problem("small", model, x, y, "cross-entropy")
    batch = (x[:200], y[:200])
    r = sharpness(p, batch=batch, tol=1e-9)
    exact = _exact_lambda(flat_loss(p, x=batch[0], y=batch[1]), flat_loss(p).w0)
    assert r.lambda_max == pytest.approx(exact, rel=1e-8)
    whole = sharpness(p, tol=1e-9)
    assert whole.lambda_max != pytest.approx(r.lambda_max, rel=1e-6)  # the batch's loss, not the full one


def test_float32_model_is_measured_in_float64_and_left_unchanged() -> None:
    p = load_problem("digits-mlp", seed=0)
    before = {k: v.clone() for k, v in p.model.state_dict().items()}
    r = sharpness(p, batch=(p.x[:256], p.y[:256]), tol=1e-8)
    assert r.converged and r.eigenvector.dtype == torch.float64
    assert all(torch.equal(before[k], v) for k, v in p.model.state_dict().items())
    assert next(p.model.parameters()).dtype == torch.float32


def test_hvp_of_a_quadratic_is_the_matrix_product() -> None:
    A = _matrix_with_spectrum([1.0, 2.0, 3.0])
    hvp, loss, g = hvp_operator(lambda w: 0.5 * w @ A @ w, torch.ones(3, dtype=torch.float64))
    v = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    assert torch.allclose(hvp(v), A @ v, rtol=1e-14, atol=1e-14)
    assert torch.allclose(g, A @ torch.ones(3, dtype=torch.float64))


def test_bad_tolerance_is_refused() -> None:
    with pytest.raises(ArgumentError, match="tol"):
        lanczos_top_eigenvalue(lambda v: v, 3, tol=0.0)


@pytest.mark.parametrize(
    "eigs",
    [
        [1.0, 1.001, 1.002, 2.0],  # clustered bottom, isolated top
        [0.5] * 30 + [2.99, 3.0],  # two close top eigenvalues
        torch.linspace(-1.0, 1.0, 80).tolist(),  # no gap at all
    ],
)
@pytest.mark.parametrize("bound", ["gap", "residual"])
def test_stopping_bound_covers_the_true_error_at_the_stop(eigs: list[float], bound: str) -> None:
    A = _matrix_with_spectrum(eigs, seed=len(eigs))
    top = max(eigs)
    for seed in range(3):
        r = lanczos_top_eigenvalue(
            lambda v, A=A: A @ v,
            len(eigs),
            tol=1e-8,
            bound=bound,
            max_hvps=len(eigs),
            generator=torch.Generator().manual_seed(seed),
        )
        # At the stop the bound covers the true error (it may not early on: there θ can sit
        # near an interior eigenvalue, which is all the residual bound speaks of).
        assert r.converged and abs(r.lambda_max - top) <= r.error_bound * (1 + 1e-6) + 1e-13
        assert abs(r.lambda_max - top) <= 1e-8 * top + 1e-13


def test_gap_bound_needs_fewer_hvps_than_the_residual_bound() -> None:
    p = load_problem("digits-mlp", seed=0)
    batch = (p.x[:300], p.y[:300])
    gap = sharpness(p, batch=batch, tol=1e-6, bound="gap")
    res = sharpness(p, batch=batch, tol=1e-6, bound="residual")
    assert gap.hvps < res.hvps and gap.lambda_max == pytest.approx(res.lambda_max, rel=2e-6)


def test_a_model_with_dropout_and_batchnorm_gives_one_answer_per_seed() -> None:
    x, y, _, _ = digits_data(0, dtype=torch.float64)
    torch.manual_seed(1)
    model = nn.Sequential(
        nn.Linear(64, 16), nn.BatchNorm1d(16), nn.Tanh(), nn.Dropout(0.3), nn.Linear(16, 10)
    )
    p = Problem("dropout", model.double(), x[:256], y[:256], "cross-entropy")
    rng = torch.get_rng_state()
    a, b, c = (sharpness(p, tol=1e-8, seed=s).lambda_max for s in (0, 0, 1))
    assert a == b and a != c  # the dropout mask follows the seed
    assert torch.equal(rng, torch.get_rng_state())
