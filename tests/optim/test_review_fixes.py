"""Defects found by a review of `trainlab optim path`, each pinned by a test."""

from __future__ import annotations

import json

import pytest

from trainlab.cli import main


@pytest.mark.parametrize("x", ["1e-200,1e-200", "1e300,1e300", "0,0"])
def test_an_x_whose_solution_float64_cannot_hold_is_one_line(tmp_path, capsys, x):
    # 1e-200 made XXᵀ singular (exit 3); 1e300 printed w* = [0, 0] (the true one is 5e-301)
    assert main(["optim", "path", "--x", x, "--t", "1", "-o", str(tmp_path / "p.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--x" in err[0]
    assert not (tmp_path / "p.png").exists()


def test_path_json_has_numbers_or_null_never_nan_strings(tmp_path, capsys):
    args = ["optim", "path", "--x", "2,1", "--t", "2", "--format", "json", "-o", str(tmp_path / "p.png")]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    for row in out["optimizers"]:
        assert row["rel_dist_to_w_star"] is None or isinstance(row["rel_dist_to_w_star"], float)
    assert out["w_star"] == pytest.approx([0.8, 0.4])


def test_rates_take_more_examples_than_dimensions():
    import torch

    from trainlab.optim.rates import distance_rate, sampling_covariance, smallest_nonzero_eigenvalue

    X = torch.randn(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    p = torch.full((6,), 1 / 6, dtype=torch.float64)
    lam = smallest_nonzero_eigenvalue(sampling_covariance(X, p), 3)
    assert lam == pytest.approx(float(torch.linalg.eigvalsh(X.T @ X / 6).min()))  # rank d = 3, not n = 6
    assert float(distance_rate(X, p, 0.01)) > 0


def test_second_moment_transforms_refuse_complex_tensors():
    import torch

    import trainlab.functional as F
    from trainlab.errors import ArgumentError

    w, g = torch.tensor([1 + 2j]), torch.tensor([0.5 - 1j])
    for opt in (F.adam(lr=0.1), F.rmsprop(lr=0.1), F.adagrad(lr=0.1)):
        with pytest.raises(ArgumentError, match="view_as_real"):
            opt.update(g, opt.init(w), w)
    real = F.adam(lr=0.1)
    u, _ = real.update(torch.view_as_real(g), real.init(torch.view_as_real(w)), torch.view_as_real(w))
    assert torch.allclose(torch.view_as_complex(u), torch.tensor([-0.1 + 0.1j]))


def test_runner_and_optimizer_arguments_are_checked_up_front():
    import torch

    import trainlab.functional as F
    from trainlab.errors import ArgumentError
    from trainlab.hpo.online import SGDHD
    from trainlab.optim.problems import worked_example
    from trainlab.optim.runner import run_batch

    problem = worked_example("x=[2,1],t=2")
    bad = [{"tol": float("nan")}, {"divergence_factor": float("nan")}, {"divergence_factor": 0.5},
           {"w0": torch.zeros(1, 2, dtype=torch.float32)}, {"w0": torch.zeros(2, 2, dtype=torch.float64)}]
    for kwargs in bad:
        with pytest.raises(ArgumentError, match=next(iter(kwargs))):
            run_batch(problem, F.sgd(0.1), 5, **kwargs)
    assert run_batch(problem, F.sgd(0.1), 5, w0=torch.zeros(1, 2, dtype=torch.float64)).steps_run == 5
    with pytest.raises(ArgumentError, match="preconditioner"):
        F.preconditioned_sgd(0.1, {"w": torch.tensor([-1.0, 0.0])})
    with pytest.raises(ArgumentError, match="lr"):
        SGDHD([torch.nn.Parameter(torch.zeros(2))], lr="a")


def test_functional_hyperparameters_must_be_numbers_or_tensors():
    import numpy as np
    import torch

    import trainlab.functional as F
    from trainlab.errors import ArgumentError

    for bad in ("0.1", None, True, float("nan"), -1.0):
        with pytest.raises(ArgumentError, match="lr"):
            F.sgd(lr=bad)
    for good in (0.1, np.float32(0.1), torch.tensor(0.1)):  # NumPy scalars and tensors are fine
        F.sgd(lr=good)
