"""`trainlab hpo hypergrad` and `trainlab hpo tune-lr`: JSON output and one-line errors (exit 2)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from trainlab.cli import main
from trainlab.hpo.closed_form import LeastSquaresClosedForm
from trainlab.problems import load_problem


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_hypergrad_json_is_one_object_with_the_documented_keys_and_the_closed_form_value(capsys):
    code, out, err = run(
        capsys,
        "hpo",
        "hypergrad",
        "--problem",
        "linreg",
        "--steps",
        "5",
        "--lr",
        "0.05",
        "--mode",
        "forward",
        "--format",
        "json",
    )
    assert code == 0
    data = json.loads(out)
    assert set(data) >= {"hypergradient", "loss", "mode", "steps", "seconds", "peak_memory_bytes"}
    assert data["mode"] == "forward" and data["steps"] == 5
    p = load_problem("linreg", n=20, d=100, seed=0)
    cf = LeastSquaresClosedForm(p.x, p.y)
    assert data["hypergradient"]["lr"] == pytest.approx(cf.dloss(0.05, 5), rel=1e-10)
    assert data["loss"] == pytest.approx(cf.loss(0.05, 5), rel=1e-10)


def test_hypergrad_table_and_several_hyperparameters(capsys):
    code, out, _ = run(
        capsys,
        "hpo",
        "hypergrad",
        "--steps",
        "5",
        "--lr",
        "0.05",
        "--optimizer",
        "momentum",
        "--wrt",
        "lr,momentum,weight_decay",
        "--mode",
        "checkpoint",
    )
    assert code == 0
    for name in ("dL/dlr", "dL/dmomentum", "dL/dweight_decay", "segment 3"):
        assert name in out


def test_user_linreg_file(tmp_path, capsys):
    rng = np.random.default_rng(0)
    path = tmp_path / "p.npz"
    np.savez(path, X=rng.standard_normal((5, 9)), t=rng.standard_normal(5))
    code, out, _ = run(
        capsys,
        "hpo",
        "hypergrad",
        "--problem",
        f"linreg:{path}",
        "--steps",
        "3",
        "--lr",
        "0.01",
        "--format",
        "json",
    )
    assert code == 0 and "lr" in json.loads(out)["hypergradient"]


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--problem", "nope"], "--problem"),
        (["--steps", "0"], "--steps"),
        (["--lr", "-1"], "--lr"),
        (["--lr", "nan"], "--lr"),
        (["--wrt", "foo"], "--wrt"),
        (["--wrt", "beta1"], "--wrt"),
        (["--momentum", "1.5"], "--momentum"),
        (["--betas", "0.9"], "--betas"),
        (["--loss", "valid"], "--loss"),
        (["--steps", "1000000000000", "--mode", "reverse"], "--steps"),
        (["--lr", "1"], "--lr"),  # diverges: the step and 2/λ_max
        (["--problem", "linreg:/no/such.npz"], "--problem"),
    ],
)
def test_bad_input_is_one_line_naming_the_flag_exit_2(capsys, args, flag):
    options = {"--problem": "linreg", "--steps": "20", "--lr": "0.01"}
    options.update(zip(args[::2], args[1::2], strict=True))
    code, out, err = run(capsys, "hpo", "hypergrad", *[x for kv in options.items() for x in kv])
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and flag in err and "Traceback" not in err


def test_a_batch_larger_than_the_training_set_and_a_repeated_name_are_refused(capsys):
    n = load_problem("linreg", seed=0).num_examples
    base = ["--problem", "linreg", "--steps", "5", "--lr", "0.01"]
    for command in (["hypergrad"], ["tune-lr", "--meta-steps", "2"]):
        code, out, err = run(capsys, "hpo", *command, *base, "--batch-size", str(n + 1))
        assert code == 2 and out == "" and err.count("\n") == 1, err
        assert f"--batch-size={n + 1}" in err and f"at most the problem's {n:,} training examples" in err
        code, out, err = run(capsys, "hpo", *command, *base, "--batch-size", str(n), "--format", "json")
        assert code == 0, err  # the whole training set: full-batch, as before
    code, _, err = run(capsys, "hpo", "hypergrad", *base, "--wrt", "lr,weight_decay,lr")
    assert code == 2 and "--wrt='lr,weight_decay,lr'" in err and "each hyperparameter named once" in err


def test_huge_reverse_horizon_is_refused_with_an_estimate(capsys):
    # 10^6 steps is the most --steps takes (beyond, click refuses it); kept in reverse mode they
    # need about 930 GB on the digits MLP
    code, _, err = run(
        capsys, "hpo", "hypergrad", "--problem", "digits-mlp", "--steps", "1000000", "--lr", "0.01",
        "--mode", "reverse"
    )
    assert code == 2 and "needs about" in err and "available" in err


def test_unreadable_npz_is_a_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_text("not a zip")
    code, _, err = run(
        capsys, "hpo", "hypergrad", "--problem", f"linreg:{bad}", "--steps", "3", "--lr", "0.1"
    )
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_tune_lr_offline_and_online_json(capsys):
    code, out, _ = run(
        capsys,
        "hpo",
        "tune-lr",
        "--n",
        "10",
        "--d",
        "15",
        "--steps",
        "10",
        "--meta-steps",
        "30",
        "--format",
        "json",
    )
    assert code == 0
    data = json.loads(out)
    assert set(data) >= {"lr", "loss", "history"} and data["loss"] < data["start_loss"]
    p = load_problem("linreg", n=10, d=15, seed=0)
    assert data["lr"] == pytest.approx(LeastSquaresClosedForm(p.x, p.y).minimiser(10), rel=0.05)
    code, out, _ = run(
        capsys, "hpo", "tune-lr", "--n", "10", "--d", "15", "--steps", "50", "--online", "--format", "json"
    )
    data = json.loads(out)
    assert code == 0 and len(data["history"]) == 50 and data["lr"] > data["start_lr"]


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--online", "--optimizer", "momentum"], "--optimizer"),
        (["--online", "--schedule"], "--schedule"),
        (["--meta-lr", "0"], "--meta-lr"),
        (["--hypergrad-lr", "-1"], "--hypergrad-lr"),
        (["--lr", "100"], "--lr"),
    ],
)
def test_tune_lr_bad_input(capsys, args, flag):
    code, out, err = run(capsys, "hpo", "tune-lr", "--steps", "10", *args)
    assert code == 2 and out == "" and flag in err and len(err.strip().splitlines()) == 1


# Exact lines, recorded before the shared option helpers (trainlab.cli_options, ProblemChoice) replaced
# each command's own declarations: routing the options through one place changed none of them.
@pytest.mark.parametrize(("argv", "line"), [
    (["hypergrad", "--steps", "3", "--lr", "0.01", "--seed", "-1"],
     "trainlab hpo hypergrad: error: Invalid value for '--seed': -1 is not in the range "
     "0<=x<=9223372036854775807. (see `trainlab hpo hypergrad --help`)"),
    (["tune-lr", "--steps", "3", "--format", "xml"],
     "trainlab hpo tune-lr: error: Invalid value for '--format': 'xml' is not one of 'table', 'json'. "
     "(see `trainlab hpo tune-lr --help`)"),
    (["tune-lr", "--steps", "3", "--criterion", "l1"],
     "trainlab hpo tune-lr: error: Invalid value for '--criterion': 'l1' is not one of 'mse', "
     "'cross-entropy'. (see `trainlab hpo tune-lr --help`)"),
    (["hypergrad", "--steps", "3", "--lr", "0.01", "--problem", "nope"],
     "trainlab: error: --problem='nope' is not valid: expected linreg, linreg:PATH.npz (arrays X, t), "
     "digits-mlp, or a model factory package.module:factory(args) / path/file.py:factory(args)"),
])
def test_bad_shared_options_keep_their_exact_messages(capsys, argv, line):
    code, _, err = run(capsys, "hpo", *argv)
    assert (code, err) == (2, line + "\n")


@pytest.mark.parametrize("criterion", ["mse", "cross-entropy"])
@pytest.mark.parametrize("loss", ["train", "valid"])
def test_criterion_and_loss_each_reach_their_own_parameter(tmp_path, monkeypatch, capsys, criterion, loss):
    """--criterion (the factory's training loss, a problem option) and hpo's own --loss (train or
    held-out) are two options; each must reach what it names: the loss equals the library's."""
    from trainlab.hpo.hypergrad import hypergradient_of
    from trainlab.hpo.unroll import Unroll

    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.py").write_text("from torch import nn\ndef net(): return nn.Linear(64, 10)\n")
    code, out, err = run(capsys, "hpo", "hypergrad", "--problem", "m.py:net", "--data", "digits",
                         "--criterion", criterion, "--loss", loss, "--steps", "3", "--lr", "0.01",
                         "--seed", "4", "--format", "json")
    assert code == 0, err
    prob = load_problem("m.py:net", data="digits", loss=criterion, seed=4)
    hyper = {"lr": 0.01, "weight_decay": 0.0, "beta1": 0.9, "beta2": 0.999}
    expected = hypergradient_of(Unroll(prob, 3, "sgd", hyper, loss, None, 4), ["lr"], "reverse")
    assert json.loads(out)["loss"] == pytest.approx(expected.loss, rel=1e-6)


def test_a_problem_choice_names_the_loss_flag_it_came_from():
    from trainlab.errors import ArgumentError
    from trainlab.problem_options import ProblemChoice

    with pytest.raises(ArgumentError) as e:
        ProblemChoice("linreg", None, "mse", loss_flag="--criterion").refuse_unused()
    assert str(e.value) == ("--criterion='mse' is not valid: expected no --criterion with --problem linreg "
                            "(it brings its own data and loss; --data/--criterion go with a MODULE factory)")
    # a model factory takes both
    ProblemChoice("m.py:net", "digits", "mse", loss_flag="--criterion").refuse_unused()
