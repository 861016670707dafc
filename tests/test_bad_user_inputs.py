"""Bad user files, factories and sizes found by the review: each ends with exit 2 and one line.

Every case names the flag and what is wrong; none leaves a file behind or reaches a traceback
(exit 3) or a misleading message (a NaN start blamed on --lr).
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from trainlab.cli import main
from trainlab.memory import available_memory_bytes

MODULE = """
import torch
from torch import nn
def exits(): raise SystemExit(3)
def nan_start():
    m = nn.Linear(64, 10)
    with torch.no_grad():
        m.weight.fill_(float("nan"))
    return m
def good(): return nn.Linear(64, 10)
"""


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mods.py").write_text(MODULE)
    (tmp_path / "exit_on_import.py").write_text("import sys\nsys.exit(4)\n")
    np.savez(tmp_path / "complex.npz", X=np.ones((3, 5)) + 1j, t=np.ones(3))
    np.savez(tmp_path / "x_nan.npz", x=np.full((10, 64), np.nan, dtype=np.float32), y=np.arange(10))
    np.savez(tmp_path / "x_str.npz", x=np.array([["a"] * 64] * 10), y=np.arange(10))
    with open(tmp_path / "pickled.npz", "wb") as f:
        pickle.dump({"X": 1}, f)
    np.savez(tmp_path / "objects.npz", X=np.array([{"a": 1}, None], dtype=object), t=np.ones(2))
    np.save(tmp_path / "single.npy", np.ones((3, 4)))
    (tmp_path / "text.csv").write_text("1,2,3\n")
    (tmp_path / "folder.npz").mkdir()
    return tmp_path


def _run(argv, capsys) -> str:
    code = main(argv)
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert code == 2, (code, captured.err)
    assert err and "\n" not in err and "Traceback" not in err, err
    return err


HYPERGRAD = ["hpo", "hypergrad", "--steps", "3", "--lr", "0.01"]


@pytest.mark.parametrize(("argv", "expected"), [
    (["--problem", "mods.py:exits", "--data", "digits"], "--problem='mods.py:exits'"),
    (["--problem", "exit_on_import.py:f", "--data", "digits"], "SystemExit: 4"),
    (["--problem", "mods.py:nan_start", "--data", "digits"], "loss at its start is finite"),
    (["--problem", "mods.py:good", "--data", "x_nan.npz"], "--data='x_nan.npz': x and y must be finite"),
    (["--problem", "mods.py:good", "--data", "x_str.npz"], "arrays of real numbers"),
    (["--problem", "linreg:complex.npz"], "real numbers (got complex128"),
    (["--problem", "linreg:pickled.npz"], "is not an .npz archive"),
    (["--problem", "linreg:objects.npz"], "pickled objects, which are never loaded"),
    (["--problem", "linreg:single.npy"], "single-array .npy file; expected an .npz archive with arrays X, t"),
    (["--problem", "linreg:text.csv"], "is not an .npz archive"),
    (["--problem", "mods.py:good", "--data", "single.npy"], "single-array .npy file"),
    (["--problem", "linreg:folder.npz"], "is a folder"),
    (["--problem", "linreg:"], "a path to an .npz file after the colon"),
    (["--problem", "mods.py:good", "--data", ""], "--data='' is not valid: expected a path to an .npz file"),
])
def test_bad_problem_files_and_factories(files, capsys, argv, expected):
    err = _run([*HYPERGRAD, *argv], capsys)
    assert expected in err
    assert "--lr" not in err and "allow_pickle" not in err
    assert sorted(p.name for p in files.iterdir()) == sorted(
        ["mods.py", "exit_on_import.py", "complex.npz", "x_nan.npz", "x_str.npz", "pickled.npz",
         "objects.npz", "single.npy", "text.csv", "folder.npz",
         *(["__pycache__"] if (files / "__pycache__").exists() else [])])


def test_linreg_too_large_is_refused_before_allocating(capsys):
    n, d = 10**6, 10**7  # X alone is 80 TB
    assert 8 * n * d > available_memory_bytes()
    err = _run(["loops", "sharpness", "--problem", "linreg", "--n", str(n), "--d", str(d)], capsys)
    assert "--n/--d='1000000x10000000' needs about" in err


@pytest.mark.parametrize(("argv", "expected"), [
    (["hpo", "hypergrad", "--steps", "3", "--lr", "0.01", "--seed", "-1"], "'--seed'"),
    (["hpo", "hypergrad", "--steps", "3", "--lr", "0.01", "--seed", str(2**64)], "'--seed'"),
    (["convnets", "shape", "32", "--layer", "upsample", "--scale-factor", "inf"], "--scale-factor=inf"),
    (["convnets", "shape", "32", "-k", "0"], "--kernel-size=0"),
    (["convnets", "shape", "0"], "SIZE=0"),
    (["convnets", "shape", "32", "--layer", "upsample"], "--scale-factor/--output-size"),
    (["convnets", "solve-padding", "32", "32", "-s", "-1"], "--stride=-1"),
])
def test_flags_named_and_ranges_checked(capsys, argv, expected):
    assert expected in _run(argv, capsys)


def test_check_output_file_refusals(tmp_path):
    from trainlab.errors import ArgumentError
    from trainlab.runs import check_output_file

    (tmp_path / "a-file").write_text("x")
    (tmp_path / "fig.json").write_text("mine")
    (tmp_path / "folder.png").mkdir()
    cases = {tmp_path / "a-file" / "sub" / "f.png": "a-file is a file)",
             tmp_path / "f.txt": "ending in .png, .svg", tmp_path / ".png": "ending in",
             tmp_path / "folder.png": "this is a folder", tmp_path / "fig.png": "fig.json exists"}
    for path, expected in cases.items():
        with pytest.raises(ArgumentError, match="^--output=") as e:
            check_output_file("--output", path, [".png", ".svg"], overwrite=False, companions=[".json"])
        assert expected in str(e.value)
    assert check_output_file("--output", tmp_path / "fig.PNG", [".png"], overwrite=True,
                             companions=[".json"]) == tmp_path / "fig.PNG"
    assert check_output_file("--output", tmp_path / "new" / "f.svg", [".svg"], overwrite=False)
    with pytest.raises(ArgumentError, match="new does not exist"):
        check_output_file("--output", tmp_path / "new" / "f.svg", [".svg"], overwrite=False,
                          make_folders=False)


def test_save_figure_follows_the_extension_and_writes_both_or_neither(tmp_path, monkeypatch):
    import trainlab.plotting as plotting
    import trainlab.runs

    fig, ax = plotting.new_figure()
    ax.plot([0, 1], [1, 0])
    assert plotting.save_figure(fig, tmp_path / "f.svg", {"a": 1}).read_bytes().lstrip().startswith(b"<?xml")
    assert (tmp_path / "f.json").is_file()

    def fail(path, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(trainlab.runs, "atomic_write_json", fail)
    with pytest.raises(OSError):
        plotting.save_figure(fig, tmp_path / "g.png", {"a": 1})
    assert not (tmp_path / "g.png").exists() and not (tmp_path / "g.json").exists()


def test_echo_json_is_one_strict_object_with_non_finite_as_strings(capsys):
    import json

    import torch

    from trainlab.console import echo_json

    echo_json({"a": float("nan"), "b": [1.5, float("inf")], "c": np.float32(2.0),
               "d": torch.tensor([-np.inf]), "λ": "μ"})
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert json.loads(out) == {"a": "nan", "b": [1.5, "inf"], "c": 2.0, "d": ["-inf"], "λ": "μ"}


@pytest.mark.parametrize("argv", [
    ["optim", "compare", "--n", "4", "--d", "8", "--seeds", "1", "--steps", "30", "--lr", "10"],
    ["hpo", "hypergrad", "--steps", "3", "--lr", "0.01"],
    ["loops", "lr-find", "--problem", "linreg", "--steps", "20", "--max-lr", "1e30",
     "--diverge-factor", "1e300"],
])
def test_format_json_prints_one_object_and_nothing_else(capsys, argv):
    import json

    assert main([*argv, "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert isinstance(json.loads(captured.out), dict) and captured.out.count("\n") == 1
    assert captured.err == ""


@pytest.mark.parametrize(("argv", "expected"), [
    (["report", ""], "RUN_DIR=''"),
    (["hpo", "hypergrad", "--steps", "3", "--lr", "0.1", "--problem", ":"], "--problem=':'"),
    (["loops", "sharpness", "--problem", "mods.py:good(1+)"], "--problem='mods.py:good(1+)'"),
])
def test_the_first_error_is_the_one_the_user_made(capsys, argv, expected):
    """An empty RUN_DIR is not shown as '.'; a malformed reference is named before a missing --data."""
    assert expected in _run(argv, capsys)


def test_a_factory_problem_starts_from_the_same_weights_for_the_same_seed():
    """The factory's weights came from torch's global generator, seeded at random in each process:
    the same --seed gave other numbers from run to run. Now --seed seeds them, and the caller's
    global generator is left as it was."""
    import torch

    from trainlab.problems import load_problem

    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = load_problem("torch.nn:Linear(64,10)", data="digits", seed=5)
    assert torch.equal(torch.random.get_rng_state(), before)
    torch.manual_seed(999)  # another global state: same weights
    b = load_problem("torch.nn:Linear(64,10)", data="digits", seed=5)
    c = load_problem("torch.nn:Linear(64,10)", data="digits", seed=6)
    assert torch.equal(a.model.weight, b.model.weight)
    assert not torch.equal(a.model.weight, c.model.weight)


@pytest.mark.parametrize("command", [["loops", "sharpness"], ["loops", "lr-find"]])
def test_a_missing_required_problem_is_a_usage_error(capsys, command):
    """click 8.5 let a missing --problem through (explicit default=None): exit 3 on None.startswith."""
    err = _run(command, capsys)
    assert "Missing option '--problem'" in err


NOISE_SCALE = ["scaling", "noise-scale", "--at", "trained", "--steps", "2"]


@pytest.mark.parametrize(("argv", "expected"), [
    ([*NOISE_SCALE, "--lr", "nan"], "nan is not a learning rate"),
    ([*NOISE_SCALE, "--lr", "inf"], "inf is not a learning rate"),
    (["scaling", "sweep", "--optimizer", "momentum", "--momentum", "nan"], "nan is not a momentum"),
    (["scaling", "sweep", "--lr-min", "1e-300", "--lr-max", "1e300"], "--lr-max=1e+300"),
    (["scaling", "sweep", "--batch-sizes", "64,2000"], "at most the 1438 training examples (2000 would be"),
])
def test_scaling_refuses_non_finite_rates_and_huge_grids(tmp_path, monkeypatch, capsys, argv, expected):
    """NaN and inf ran to exit 0 with nan results; a grid of 1e-300..1e300 ended in exit 3."""
    monkeypatch.chdir(tmp_path)
    assert expected in _run(argv, capsys)
    assert list(tmp_path.iterdir()) == []  # no run folder left behind


def test_lr_find_grid_stays_finite_when_the_ratio_overflows():
    import math

    from trainlab.loops.lr_range import _exponential_lrs

    lrs = _exponential_lrs(1e-6, 1e308, 3)
    assert all(math.isfinite(v) for v in lrs)
    assert lrs[0] == pytest.approx(1e-6) and lrs[-1] == pytest.approx(1e308)
    assert _exponential_lrs(1e-6, 10.0, 8) == [1e-6 * (10.0 / 1e-6) ** (k / 7) for k in range(8)]  # unchanged


@pytest.mark.parametrize("factory", ["bn", "drop"])
@pytest.mark.parametrize("command", [["scaling", "noise-scale"],
                                     ["scaling", "noise-scale", "--method", "hessian"],
                                     ["scaling", "sweep", "--batch-sizes", "4,8", "--out", "run"]])
def test_per_example_methods_refuse_batch_norm_and_dropout_models_up_front(tmp_path, monkeypatch, capsys,
                                                                          factory, command):
    """They ended in exit 3 inside torch.func, and the sweep left a half-made run folder behind."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.py").write_text(
        "from torch import nn\n"
        "def bn(): return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 3))\n"
        "def drop(): return nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Tanh(), nn.Linear(8, 3))\n")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.standard_normal((50, 4)).astype(np.float32), y=rng.integers(0, 3, 50))
    err = _run([*command, "--problem", f"m.py:{factory}", "--data", "d.npz"], capsys)
    assert "--problem=" in err and ("batch norm" in err if factory == "bn" else "dropout" in err)
    assert not (tmp_path / "run").exists()
