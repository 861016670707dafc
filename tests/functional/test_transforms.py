"""The functional optimizers are differentiable, vectorise over runs, and reject bad hyperparameters."""

from __future__ import annotations

import pytest
import torch

import trainlab.functional as F
from trainlab.errors import ArgumentError
from trainlab.functional import apply_updates


def _problem():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(5, 8, generator=g, dtype=torch.float64)
    t = torch.randn(5, generator=g, dtype=torch.float64)
    return X, t


def _train(opt: F.GradientTransformation, X: torch.Tensor, t: torch.Tensor, steps: int) -> torch.Tensor:
    w = torch.zeros(X.shape[1], dtype=torch.float64)
    state = opt.init(w)
    for _ in range(steps):
        grad = X.T @ (X @ w - t) / len(t)
        updates, state = opt.update(grad, state, w)
        w = apply_updates(w, updates)
    return 0.5 * ((X @ w - t) ** 2).mean()


@pytest.mark.parametrize(
    "make",
    [
        lambda lr: F.sgd(lr=lr),
        lambda lr: F.sgd(lr=lr, momentum=0.9, nesterov=True),
        lambda lr: F.adam(lr=lr),
        lambda lr: F.rmsprop(lr=lr, momentum=0.5),
        lambda lr: F.adagrad(lr=lr),
    ],
    ids=["sgd", "nesterov", "adam", "rmsprop", "adagrad"],
)
def test_hypergradient_through_a_whole_run_matches_finite_differences(make) -> None:
    X, t = _problem()
    lr0 = 0.05
    lr = torch.tensor(lr0, dtype=torch.float64, requires_grad=True)
    (dloss_dlr,) = torch.autograd.grad(_train(make(lr), X, t, 30), lr)
    h = 1e-6
    fd = (_train(make(lr0 + h), X, t, 30) - _train(make(lr0 - h), X, t, 30)) / (2 * h)
    assert float(dloss_dlr) == pytest.approx(float(fd), rel=1e-6, abs=1e-10)
    assert abs(float(dloss_dlr)) > 1e-6  # a run whose loss does depend on the step


def test_per_run_hyperparameters_equal_separate_runs() -> None:
    """Three runs with per-run learning rates in one (R, d) tensor equal three separate runs.

    Both are the same code; they differ only in how the gradient's sums are ordered
    ((W Xᵀ − t) X for all runs vs Xᵀ(Xw − t) for one), i.e. in float64 rounding. Each step
    that can change each coordinate by a few roundings of ‖w_k‖∞ + ‖u_k‖∞ (ε = 2⁻⁵²), and on
    this small, well-conditioned problem a difference does not grow, so over K steps
    |ΔW| ≤ C·ε·Σ_k (‖w_k‖∞ + ‖u_k‖∞) with C = 4 roundings per step (measured ≤ 0.12).
    """
    X, t = _problem()
    eps = torch.finfo(torch.float64).eps
    lrs = [0.01, 0.1, 0.3]
    steps = 50
    W = torch.zeros(3, X.shape[1], dtype=torch.float64)
    opt = F.adam(lr=torch.tensor(lrs, dtype=torch.float64)[:, None])
    state = opt.init(W)
    for _ in range(steps):
        grads = (W @ X.T - t) @ X / len(t)  # (R, d)
        updates, state = opt.update(grads, state, W)
        W = apply_updates(W, updates)
    for r, lr in enumerate(lrs):
        w = torch.zeros(X.shape[1], dtype=torch.float64)
        single = F.adam(lr=lr)
        s = single.init(w)
        scale = 0.0  # Σ_k (‖w_k‖∞ + ‖u_k‖∞)
        for _ in range(steps):
            u, s = single.update(X.T @ (X @ w - t) / len(t), s, w)
            w = apply_updates(w, u)
            scale += float(w.abs().max() + u.abs().max())
        diff = float((W[r] - w).abs().max())
        assert diff <= 4 * eps * scale, (lr, diff, 4 * eps * scale)
        assert float(w.abs().max()) > 0.1  # the runs moved: the comparison is not of zeros


def test_updates_are_out_of_place() -> None:
    w = torch.ones(3, dtype=torch.float64)
    g = torch.full((3,), 0.5, dtype=torch.float64)
    opt = F.sgd(lr=0.1, momentum=0.9, weight_decay=0.1)
    state = opt.init(w)
    updates, new_state = opt.update(g, state, w)
    assert torch.equal(w, torch.ones(3, dtype=torch.float64)) and torch.equal(
        g, torch.full((3,), 0.5).double()
    )
    assert new_state is not state and float(updates.abs().sum()) > 0


def test_course_rmsprop_first_step_is_lr_over_sqrt_one_minus_beta_times_sign() -> None:
    opt = F.course_rmsprop(lr=0.1, beta=0.9, eps=0.0)
    w = torch.zeros(2, dtype=torch.float64)
    updates, _ = opt.update(torch.tensor([-4.0, -2.0], dtype=torch.float64), opt.init(w), w)
    assert torch.allclose(updates, torch.full((2,), 0.1 / 0.1**0.5, dtype=torch.float64), atol=1e-15)


def test_eps_in_sqrt_variant_differs_only_when_eps_matters() -> None:
    w = torch.zeros(2, dtype=torch.float64)
    g = torch.tensor([-4.0, -2.0], dtype=torch.float64)
    out = {}
    for inside in (False, True):
        for eps in (1e-12, 0.5):
            opt = F.course_rmsprop(lr=0.1, eps=eps, eps_in_sqrt=inside)
            out[inside, eps] = opt.update(g, opt.init(w), w)[0]
    assert torch.allclose(out[False, 1e-12], out[True, 1e-12], atol=1e-6)
    assert not torch.allclose(out[False, 0.5], out[True, 0.5], atol=1e-3)


@pytest.mark.parametrize(
    "make, argument",
    [
        (lambda: F.sgd(lr=-0.1), "lr"),
        (lambda: F.sgd(lr=0.1, momentum=1.0), "momentum"),
        (lambda: F.sgd(lr=0.1, nesterov=True), "nesterov"),
        (lambda: F.adam(betas=(0.9, 1.5)), "betas[1]"),
        (lambda: F.adagrad(eps=-1.0), "eps"),
        (lambda: F.rmsprop(alpha=float("nan")), "alpha"),
        (lambda: F.preconditioned_sgd(0.1, torch.tensor([1.0, -1.0])), "preconditioner"),
    ],
)
def test_bad_hyperparameters_name_the_argument(make, argument: str) -> None:
    with pytest.raises(ArgumentError) as info:
        make()
    assert info.value.argument == argument
    assert "\n" not in str(info.value)


def test_trees_of_parameters() -> None:
    params = {"a": torch.ones(2, dtype=torch.float64), "b": (torch.zeros(3, dtype=torch.float64),)}
    grads = {"a": torch.ones(2, dtype=torch.float64), "b": (torch.ones(3, dtype=torch.float64),)}
    opt = F.adamw(lr=0.1, weight_decay=0.5)
    updates, _ = opt.update(grads, opt.init(params), params)
    new = apply_updates(params, updates)
    # AdamW: w − η(m̂/(√v̂ + ε) + λw) with m̂/√v̂ = 1 on the first step
    assert torch.allclose(new["a"], torch.full((2,), 1 - 0.1 * (1 + 0.5), dtype=torch.float64), atol=1e-7)
    assert torch.allclose(new["b"][0], torch.full((3,), -0.1, dtype=torch.float64), atol=1e-7)


def test_public_names() -> None:
    assert set(F.__all__) >= {
        "sgd",
        "adam",
        "adamw",
        "adagrad",
        "rmsprop",
        "course_rmsprop",
        "preconditioned_sgd",
        "chain",
        "trace",
        "scale_by_adam",
        "scale_by_rms",
        "scale_by_adagrad",
        "scale_by_diagonal",
        "add_decayed_weights",
        "scale_by_learning_rate",
        "apply_updates",
    }
    for name in F.__all__:
        assert hasattr(F, name)
