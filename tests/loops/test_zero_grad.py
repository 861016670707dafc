"""zero_grad placements: what each loop applies, measured against independently computed gradients."""

from __future__ import annotations

import pytest
import torch

from trainlab.loops.models import tanh_regression
from trainlab.loops.zero_grad import PLACEMENTS, compare_placements, train_loop
from trainlab.problems import load_problem


@pytest.fixture(scope="module")
def runs():
    return compare_placements(load_problem("digits-mlp", seed=1), lr=0.5, steps=40, batch_size=32, seed=2)


def test_missing_zero_grad_applies_the_running_sum_of_gradients(runs) -> None:
    u = torch.finfo(torch.float32).eps / 2
    assert max(runs["missing"].err_vs_sum) <= 40 * u  # accumulation rounding, t·u·Σ‖g‖
    assert runs["missing"].err_vs_true[0] == 0.0  # the first step has nothing to accumulate
    assert min(runs["missing"].err_vs_true[5:]) > 1.0  # later it is far from the true gradient


def test_correct_loops_apply_the_true_gradient_and_agree_bitwise(runs) -> None:
    assert max(runs["before-backward"].err_vs_true) == 0.0
    assert runs["after-step"].losses == runs["before-backward"].losses


def test_zero_grad_between_backward_and_step_never_moves_the_model(runs) -> None:
    r = runs["after-backward"]
    assert not r.params_moved and len(set(r.losses)) == 1 and max(r.applied_norm) == 0.0


def test_missing_zero_grad_on_least_squares_is_undamped_momentum() -> None:
    # w_{t+1} − 2w_t + w_{t−1} = −η∇J(w_t): with ηλ < 4 for every mode the loss keeps oscillating.
    p = load_problem("linreg", n=8, d=20, seed=0)
    lr = 0.5 * p.stable_lr_bound
    broken = train_loop(p, "missing", lr=lr, steps=200)
    correct = train_loop(p, "before-backward", lr=lr, steps=200)
    assert correct.losses[-1] < 1e-6 * correct.losses[0]
    assert max(broken.losses[100:]) > 1e-2 * broken.losses[0]
    assert max(broken.err_vs_sum) <= 200 * torch.finfo(torch.float64).eps


def test_unknown_placement_is_refused() -> None:
    with pytest.raises(ValueError, match="placement"):
        train_loop(tanh_regression(0), "sometimes", lr=0.1, steps=2)
    assert set(PLACEMENTS) == {"before-backward", "missing", "after-backward", "after-step"}
