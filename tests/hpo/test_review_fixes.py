"""Defects found by a review of hpo/loops and the shared problem loader, each pinned by a test."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from trainlab.cli import main
from trainlab.errors import ArgumentError, DataError
from trainlab.hpo.online import SGDHD, AdamHD
from trainlab.hpo.tune import _hypergradient_at, online_lr, tune_lr
from trainlab.hpo.unroll import DivergenceError, Unroll
from trainlab.plotting import save_figure
from trainlab.problems import linreg, load_problem

FACTORY = '''
import torch
from torch import nn

def mlp(drop=0.0, classes=3):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(drop), nn.Linear(8, classes))
'''


@pytest.fixture
def factory(tmp_path):
    path = tmp_path / "fac.py"
    path.write_text(FACTORY)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "data.npz", x=rng.normal(size=(40, 4)), y=rng.integers(0, 3, 40))
    return path, tmp_path / "data.npz"


def test_every_class_label_is_checked_against_the_models_outputs(factory, tmp_path):
    path, _ = factory
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 40)
    y[17] = 9  # past the first rows, which were the only ones tried
    np.savez(tmp_path / "bad.npz", x=rng.normal(size=(40, 4)), y=y)
    for seed in (0, 1):  # wherever the split puts it
        with pytest.raises(DataError, match="class label 9"):
            load_problem(f"{path}:mlp()", data=str(tmp_path / "bad.npz"), seed=seed)


def test_a_least_squares_matrix_too_large_for_float64_is_a_data_error():
    with pytest.raises(DataError, match="too large"):
        linreg(X=torch.full((3, 5), 1e200, dtype=torch.float64), t=torch.ones(3, dtype=torch.float64))


def test_the_multiplicative_rule_needs_beta_below_one(capsys):
    w = [torch.nn.Parameter(torch.zeros(2))]
    for cls in (SGDHD, AdamHD):
        with pytest.raises(ArgumentError, match="hypergrad_lr"):
            cls(w, lr=0.1, hypergrad_lr=3.0, multiplicative=True)
        cls(w, lr=0.1, hypergrad_lr=3.0, multiplicative=False)  # additive: any β ≥ 0
    code = main(["hpo", "tune-lr", "--online", "--lr", "0.1", "--hypergrad-lr", "3", "--steps", "6"])
    assert code == 2 and "--hypergrad-lr" in capsys.readouterr().err


def test_online_tuning_with_dropout_is_reproducible_and_leaves_the_global_rng_alone(factory):
    path, data = factory
    problem = load_problem(f"{path}:mlp(drop=0.3)", data=str(data))
    state = torch.get_rng_state()
    a = online_lr(problem, 5, seed=0, batch_size=5)
    b = online_lr(problem, 5, seed=0, batch_size=5)
    assert a.loss == b.loss and a.history == b.history
    assert torch.equal(torch.get_rng_state(), state)


def test_a_tuned_schedule_is_the_one_behind_the_reported_loss():
    problem = linreg(n=10, d=20, seed=0)
    result = tune_lr(problem, 8, meta_steps=12, schedule=True)
    base = Unroll(problem, 8, "sgd", {"lr": result.start_lr}, "train", None, 0)
    again = _hypergradient_at(base, torch.tensor(result.schedule, dtype=torch.float64), ("schedule",),
                              "reverse", True)
    assert again.loss == pytest.approx(result.loss, rel=1e-12)
    assert result.loss == min(h["loss"] for h in result.history)


def test_online_divergence_names_the_adapted_rate_not_the_users_lr():
    problem = linreg(n=10, d=20, seed=0)
    lr = 3 * problem.stable_lr_bound  # diverges (β = 0: the rate does not adapt away from it)
    with pytest.raises(DivergenceError, match="online rate") as caught:
        online_lr(problem, 50, lr=lr, hypergrad_lr=0.0)
    assert f"from lr {lr:g}, --hypergrad-lr 0)" in str(caught.value)


def test_forward_mode_schedules_beyond_200_steps_are_refused_by_tune_lr_too(capsys):
    code = main(["hpo", "tune-lr", "--steps", "300", "--meta-steps", "1", "--schedule", "--mode", "forward"])
    assert code == 2 and "--mode" in capsys.readouterr().err


def test_a_figure_whose_json_cannot_be_written_keeps_the_figure_it_would_replace(tmp_path):
    old = tmp_path / "w.png"
    old.write_bytes(b"the user's figure")
    (tmp_path / "w.json").mkdir()  # the JSON cannot be written
    fig = Figure()
    fig.subplots().plot([0, 1])
    with pytest.raises(OSError):
        save_figure(fig, old, {"x": 1})
    assert old.read_bytes() == b"the user's figure"
    (tmp_path / "new.json").mkdir()
    with pytest.raises(OSError):
        save_figure(fig, tmp_path / "new.png", {"x": 1})
    assert not (tmp_path / "new.png").exists()  # no figure without its data


@pytest.mark.parametrize("multiplicative", [False, True])
def test_hypergradient_optimizers_take_complex_parameters_as_torch_optim_does(multiplicative):
    # the hypergradient dot product crashed on complex tensors at the second step, even with β = 0
    def run(make):
        w = torch.nn.Parameter(torch.tensor([1 + 2j, -0.5 + 0.25j], dtype=torch.complex128))
        opt = make([w])
        for _ in range(5):
            opt.zero_grad()
            (w.abs() ** 2 - 1).pow(2).sum().backward()
            opt.step()
        return w.detach()

    same = run(lambda p: AdamHD(p, lr=0.05, hypergrad_lr=0.0, multiplicative=multiplicative))
    assert torch.allclose(same, run(lambda p: torch.optim.Adam(p, lr=0.05)), rtol=0, atol=1e-12)
    moved = run(lambda p: SGDHD(p, lr=0.01, hypergrad_lr=0.1 if multiplicative else 1e-3,
                                multiplicative=multiplicative))
    assert torch.isfinite(torch.view_as_real(moved)).all()


def test_a_checkpoint_segment_longer_than_the_run_is_estimated_as_the_run():
    """--segment 100000 on 300 steps was refused as '--steps=300 needs about 93 GB'; a segment holds
    at most the T steps there are, and where a large segment is what costs, it is the flag named."""
    from trainlab.hpo.hypergrad import estimate_memory
    from trainlab.hpo.unroll import Unroll
    from trainlab.problems import load_problem

    unroll = Unroll(load_problem("linreg", n=10, d=20), 30, "sgd", {"lr": 0.01}, "train", None, 0)
    assert estimate_memory(unroll, "checkpoint", ("lr",), 100_000) == estimate_memory(unroll, "checkpoint",
                                                                                       ("lr",), 30)
    assert main(["hpo", "hypergrad", "--problem", "linreg", "--steps", "30", "--lr", "0.01", "--mode",
                 "checkpoint", "--segment", "100000"]) == 0
