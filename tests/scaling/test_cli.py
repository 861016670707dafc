"""`trainlab scaling …` in-process: JSON shapes, run folders, and bad input as one line with exit 2."""

from __future__ import annotations

import json
import sys

import pytest

from trainlab.cli import main

SWEEP = ["scaling", "sweep", "--width", "8", "--batch-sizes", "16,64", "--seeds", "1,2", "--targets", "1.5",
         "--lr-min", "0.2", "--lr-max", "0.3", "--max-steps", "300", "--executor", "inline"]


def _one_error_line(capsys, *words):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("trainlab"), err
    assert "Traceback" not in err[0]
    for w in words:
        assert w in err[0], err[0]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "sweep"
    assert main([*SWEEP, "--out", str(out), "--format", "json"]) == 0
    return out


def test_noise_scale_json_is_one_object_with_the_documented_keys(capsys):
    assert main(["scaling", "noise-scale", "--problem", "digits-mlp", "--width", "8",
                 "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "exact" and out["b_simple"] > 0
    assert abs(out["b_simple"] - out["trace_cov"] / out["grad_norm_sq"]) < 1e-9 * out["b_simple"]


def test_noise_scale_two_batch_after_training_with_a_figure(tmp_path, capsys):
    fig = tmp_path / "ns.png"
    assert main(["scaling", "noise-scale", "--width", "8", "--at", "trained", "--steps", "20",
                 "--method", "two-batch", "--num-batches", "20", "--figure", str(fig),
                 "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "two-batch" and out["at"] == "trained" and fig.is_file()


def test_noise_scale_hessian_method(capsys):
    assert main(["scaling", "noise-scale", "--width", "4", "--method", "hessian", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "hessian" and out["b_simple"] > 0


def test_sweep_writes_points_config_fit_and_figures(run, capsys):
    assert (run / "points.jsonl").is_file() and (run / "sweep.json").is_file()
    assert (run / "fit.json").is_file()
    assert (run / "steps-vs-batch-1.5.png").is_file()
    fit = json.loads((run / "fit.json").read_text())
    assert fit["fits"][0]["batch_sizes"] == [16, 64]


def test_fit_prints_json_of_the_sweep(run, capsys):
    assert main(["scaling", "fit", str(run), "--format", "json", "--bootstrap", "50"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["points"] == len((run / "points.jsonl").read_text().splitlines())
    assert out["fits"][0]["target"] == 1.5 and out["lr_protocol"].startswith("constant")


def test_sweep_refuses_an_existing_run_and_resume_skips_finished_points(run, capsys):
    before = (run / "points.jsonl").read_text()
    assert main([*SWEEP, "--out", str(run)]) == 2
    _one_error_line(capsys, "--out=", "--resume")
    assert main([*SWEEP, "--out", str(run), "--resume", "--format", "json"]) == 0
    assert (run / "points.jsonl").read_text() == before  # nothing re-run, nothing lost


def test_nqm_json(capsys):
    assert main(["scaling", "nqm", "--dim", "10", "--batch-sizes", "1,16,256", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["steps"]) == {"sgd", "momentum", "preconditioned"}
    assert out["b_crit"]["momentum"] > out["b_crit"]["sgd"]


@pytest.mark.parametrize("args, words", [
    (["scaling", "noise-scale", "--problem", "no-such-problem"], ["--problem"]),
    (["scaling", "sweep", "--problem", "nope", "--executor", "inline"], ["--problem"]),
    (["scaling", "sweep", "--batch-sizes", "0,2"], ["--batch-sizes", "positive"]),
    (["scaling", "sweep", "--batch-sizes", "a,b"], ["--batch-sizes"]),
    (["scaling", "sweep", "--lr-min", "0.5", "--lr-max", "0.1", "--executor", "inline"],
     ["--lr-min/--lr-max"]),
    (["scaling", "sweep", "--executor", "dask"], ["--executor", "local"]),
    (["scaling", "sweep", "--address", "1.2.3.4:6379"], ["--address"]),
    (["scaling", "noise-scale", "--figure", "x.pdf"], ["--figure", ".png"]),
    (["scaling", "nqm", "--target-fraction", "2"], ["--target-fraction"]),
])
def test_bad_input_is_one_line_and_exit_2(args, words, capsys, tmp_path):
    assert main([*args, *(["--out", str(tmp_path / "o")] if "sweep" in args else [])]) == 2
    _one_error_line(capsys, *words)
    assert not (tmp_path / "o").exists()  # nothing half-made


def test_fit_on_a_folder_that_is_not_a_sweep(tmp_path, capsys):
    assert main(["scaling", "fit", str(tmp_path)]) == 2
    _one_error_line(capsys, "RUN=", "sweep")


def test_ray_executor_without_ray_names_the_extra(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    assert main(["scaling", "sweep", "--executor", "ray", "--out", str(tmp_path / "o")]) == 2
    _one_error_line(capsys, "--executor", "trainlab[ray]")


# Exact lines, recorded before the shared option helpers (trainlab.cli_options, ProblemChoice) replaced
# each command's own declarations: routing the options through one place changed none of them.
@pytest.mark.parametrize(("argv", "line"), [
    (["noise-scale", "--seed", "9223372036854775808"],
     "trainlab scaling noise-scale: error: Invalid value for '--seed': 9223372036854775808 is not in the "
     "range 0<=x<=9223372036854775807. (see `trainlab scaling noise-scale --help`)"),
    (["sweep", "--data-seed", "abc"],
     "trainlab scaling sweep: error: Invalid value for '--data-seed': 'abc' is not a valid integer range. "
     "(see `trainlab scaling sweep --help`)"),
    (["fit", "--format", "xml", "run"],
     "trainlab scaling fit: error: Invalid value for '--format': 'xml' is not one of 'table', 'json'. "
     "(see `trainlab scaling fit --help`)"),
    (["noise-scale", "--figure", "x.txt"],
     "trainlab: error: --figure='x.txt' is not valid: expected a .png path (the figure's data is written "
     "beside it as .json)"),
    (["nqm", "--figure", "fig.png"],
     "trainlab: error: --figure='fig.png' is not valid: expected a new file (fig.json exists; add "
     "--overwrite to replace it)"),
    (["sweep", "--batch-sizes", "4,8", "--out", "afile"],
     "trainlab: error: --out='afile' is not valid: expected a folder (this path is an existing file)"),
])
def test_bad_shared_options_keep_their_exact_messages(tmp_path, monkeypatch, capsys, argv, line):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    (tmp_path / "fig.json").write_text("mine")
    assert main(["scaling", *argv]) == 2
    assert capsys.readouterr().err == line + "\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "fig.json"]


def test_hpo_loops_and_scaling_declare_seed_format_and_problem_alike():
    """One declaration each: every seed of the three parts takes 0..2^63-1 with default 0, every
    --format the same choices and help, every --problem the same help."""
    import click

    from trainlab.hpo.cli import group as hpo
    from trainlab.loops.cli import group as loops
    from trainlab.scaling.cli import group as scaling

    seen: dict[str, set] = {"seed": set(), "format": set(), "problem": set()}
    for group in (hpo, loops, scaling):
        for command in group.commands.values():
            for p in command.params:
                if not isinstance(p, click.Option):
                    continue
                if p.opts[0] in ("--seed", "--data-seed"):
                    seen["seed"].add((p.type.min, p.type.max, p.default))
                elif p.opts[0] == "--format":
                    seen["format"].add((tuple(p.type.choices), p.default, p.help))
                elif p.opts[0] == "--problem":
                    seen["problem"].add(p.help)
    assert seen["seed"] == {(0, 2**63 - 1, 0)}
    assert len(seen["format"]) == 1 and next(iter(seen["format"]))[:2] == (("table", "json"), "table")
    assert len(seen["problem"]) == 1
