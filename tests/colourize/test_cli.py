"""`trainlab colourize …` in-process: train, eval, predict, compare; bad input is one line, exit 2."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from trainlab.cli import main

TINY = ["--max-train", "24", "--max-valid", "8", "--epochs", "1", "--batch-size", "12",
        "--num-filters", "4", "--num-colours", "5", "--num-crops", "48", "--lr-schedule", "constant"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run folder and what `colourize train` printed on stdout and stderr."""
    out = tmp_path_factory.mktemp("cli") / "run"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["colourize", "train", "--model", "transpose", "--out", str(out), *TINY])
    assert code == 0, stderr.getvalue()
    return out, stdout.getvalue(), stderr.getvalue()


@pytest.fixture
def run(trained):
    return trained[0]


def _one_error_line(capsys, *words):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("trainlab"), err
    for w in words:
        assert w in err[0], err[0]
    assert "Traceback" not in err[0]
    return err[0]


def test_train_writes_a_run_folder_and_prints_the_table(trained):
    run, stdout, stderr = trained
    assert (run / "checkpoint.pt").is_file() and (run / "metrics.jsonl").is_file()
    assert json.loads((run / "config.json").read_text())["model"] == "transpose"
    assert "ConvTransposeNet" in stdout and "baseline: grey level" in stdout and "model" in stdout
    # a model no better than the grey-level lookup is said to be so under the table
    ev = json.loads((run / "eval.json").read_text())
    below = ev["accuracy"] <= ev["baselines"]["grey_level_accuracy"]
    assert ("not more accurate than the best colour per grey level" in " ".join(stdout.split())) == below
    # piped: each epoch is one unwrapped line, and no loss is shown before a step has one
    epoch_lines = [line for line in stderr.splitlines() if "epoch 1/1:" in line]
    assert len(epoch_lines) == 1 and epoch_lines[0].endswith("images/s"), stderr
    assert "nan" not in stderr


def test_train_refuses_to_overwrite_an_existing_run(run, capsys):
    before = (run / "checkpoint.pt").read_bytes()
    assert main(["colourize", "train", "--model", "transpose", "--out", str(run), *TINY]) == 2
    _one_error_line(capsys, "--out=", "--resume", "--overwrite")
    assert (run / "checkpoint.pt").read_bytes() == before


def test_train_overwrite_replaces_the_run(run, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    (copy / "samples" / "epoch-099.png").write_bytes(b"old")
    assert main(["colourize", "train", "--model", "pool", "--out", str(copy), "--overwrite", *TINY]) == 0
    assert json.loads((copy / "config.json").read_text())["model"] == "pool"
    assert not (copy / "samples" / "epoch-099.png").exists()


def test_train_resume_extends_the_run(run, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    assert main(["colourize", "train", "--model", "transpose", "--out", str(copy), "--resume",
                 "--epochs", "2"]) == 0
    assert len((copy / "metrics.jsonl").read_text().splitlines()) == 2
    assert "ConvTransposeNet" in capsys.readouterr().out


def test_eval_prints_model_and_baselines(run, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["colourize", "eval", str(run), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "baseline: majority" in printed and "baseline: grey level" in printed and "PSNR" in printed
    assert (out / "eval.png").is_file() and (out / "eval.json").is_file()


@pytest.mark.parametrize(("suffix", "fmt"), [(".png", "PNG"), (".jpg", "JPEG"), (".jpeg", "JPEG"),
                                             (".webp", "WEBP")])
def test_predict_writes_the_format_its_extension_names(run, tmp_path, capsys, suffix, fmt):
    src = tmp_path / "in.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (37, 51, 3), dtype=np.uint8)).save(src)
    out = tmp_path / f"out{suffix}"
    assert main(["colourize", "predict", str(run), str(src), "-o", str(out)]) == 0
    with Image.open(out) as im:
        assert im.size == (51, 37) and im.mode == "RGB" and im.format == fmt


def test_predict_refuses_an_extension_it_cannot_write_and_a_folder(run, tmp_path, capsys):
    src = tmp_path / "in.png"
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(src)
    assert main(["colourize", "predict", str(run), str(src), "-o", str(tmp_path / "x.xyz")]) == 2
    _one_error_line(capsys, "--output", ".png", ".jpg")
    folder = tmp_path / "d.png"
    folder.mkdir()
    assert main(["colourize", "predict", str(run), str(src), "-o", str(folder)]) == 2
    _one_error_line(capsys, "--output", "folder")


def test_an_unwritable_output_is_one_line(run, tmp_path, capsys, monkeypatch):
    import trainlab.colourize.cli as cli_module
    import trainlab.runs as runs

    def read_only(path, data):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(cli_module, "atomic_write_bytes", read_only)
    src = tmp_path / "in.png"
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(src)
    assert main(["colourize", "predict", str(run), str(src), "-o", str(tmp_path / "o.png")]) == 2
    _one_error_line(capsys, "--output", "read-only")
    monkeypatch.setattr(runs, "atomic_write_bytes", read_only)
    assert main(["colourize", "eval", str(run), "-o", str(tmp_path / "e")]) == 2
    _one_error_line(capsys, "--out", "read-only")


def test_compare_trains_all_three_refuses_reuse_and_resumes(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["colourize", "compare", "--out", str(out), *TINY]) == 0
    printed = capsys.readouterr().out
    for name in ("PoolUpsampleNet", "ConvTransposeNet", "UNet", "baseline: grey level"):
        assert name in printed
    summary = json.loads((out / "compare.json").read_text())
    assert set(summary) == {"pool", "transpose", "unet"}
    assert (out / "compare.png").is_file()
    checkpoints = {m: (out / m / "checkpoint.pt").read_bytes() for m in summary}
    assert main(["colourize", "compare", "--out", str(out), *TINY]) == 2
    _one_error_line(capsys, "--resume", "--overwrite")
    assert {m: (out / m / "checkpoint.pt").read_bytes() for m in summary} == checkpoints
    assert main(["colourize", "compare", "--out", str(out), "--resume"]) == 0  # all done: nothing retrained
    assert {m: (out / m / "checkpoint.pt").read_bytes() for m in summary} == checkpoints
    assert main(["colourize", "compare", "--out", str(out), "--overwrite", *TINY]) == 0


def test_course_protocol_sets_the_handout_settings_and_prints_the_course_numbers(tmp_path, capsys):
    from trainlab.colourize.cli import COURSE_PROTOCOL, _config

    config = _config("unet", protocol="course", data="builtin", category="horse", patch_size=None,
                     num_crops=10, epochs=None, batch_size=None, lr=None, lr_schedule=None, seed=0,
                     kernel=None, num_filters=None, num_colours=None, max_train=None, max_valid=None,
                     device="cpu", precision="fp32", channels_last=False, compile=False)
    assert {k: getattr(config, k) for k in COURSE_PROTOCOL} == COURSE_PROTOCOL
    out = tmp_path / "course"
    assert main(["colourize", "compare", "--protocol", "course", "--out", str(out), *TINY]) == 0
    printed = capsys.readouterr().out
    assert "58.3–58.9%" in printed and "41.1–41.4%" in printed and "course" in printed


@pytest.mark.parametrize(("args", "words"), [
    (["train", "--model", "resnet"], ["--model", "resnet"]),
    (["train", "--data", "imagenet"], ["--data", "imagenet", "cifar10:PATH"]),
    (["train", "--data", "cifar10:/no/such/file.tar.gz"], ["--data", "cifar10"]),
    (["train", "--epochs", "0"], ["--epochs"]),
    (["train", "--resume"], ["resume"]),
    (["train", "--num-filters", "100000"], ["--num-filters", "needs about", "GB"]),
    (["train", "--batch-size", "1000000", "--num-crops", "1000000"], ["needs about"]),
    (["train", "--patch-size", "100000"], ["--patch-size", "100000"]),
    (["train", "--num-colours", "100000"], ["--num-colours", "100000"]),
    (["train", "--device", "cuda"], ["--device", "cuda"]),
    (["train", "--device", "tpu"], ["--device", "tpu"]),
    (["eval", "/no/such/run"], ["RUN"]),
])
def test_bad_input_is_one_line_exit_2_and_leaves_no_run_folder(args, words, capsys, tmp_path):
    out = tmp_path / "new-run"
    assert main(["colourize", *args, *(["--out", str(out)] if args[0] == "train" else [])]) == 2
    _one_error_line(capsys, *words)
    assert not out.exists()


def test_a_bad_checkpoint_is_one_line_without_torch_advice(run, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    (copy / "checkpoint.pt").write_bytes(b"\x80\x04not a checkpoint")
    assert main(["colourize", "eval", str(copy)]) == 2
    line = _one_error_line(capsys, "checkpoint.pt", "not a trainlab checkpoint")
    assert "weights_only=False" not in line


def test_predict_rejects_a_non_image_and_a_missing_one(run, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # so the relative -o o.png below lands in tmp_path
    fake = tmp_path / "fake.png"
    fake.write_text("not an image")
    assert main(["colourize", "predict", str(run), str(fake), "-o", "o.png"]) == 2
    _one_error_line(capsys, "not a readable image")
    assert main(["colourize", "predict", str(run), str(tmp_path / "nope.png"), "-o", "o.png"]) == 2
    _one_error_line(capsys, "IMAGE")
    assert not (tmp_path / "o.png").exists()


def test_module_entry_point_reports_bad_model_with_exit_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "trainlab", "colourize", "train", "--model", "vgg",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "--model" in proc.stderr
