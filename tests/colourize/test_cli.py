"""`trainlab colourize …` in-process: train, eval, predict, compare; bad input is one line, exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from trainlab.cli import main

TINY = ["--max-train", "24", "--max-valid", "8", "--epochs", "1", "--batch-size", "12",
        "--num-filters", "4", "--num-colours", "5"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(["colourize", "train", "--model", "transpose", "--out", str(out), *TINY]) == 0
    return out


def _one_error_line(capsys, *words):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("trainlab"), err
    for w in words:
        assert w in err[0], err[0]
    assert "Traceback" not in err[0]


def test_train_writes_a_run_folder_and_prints_the_table(run, capsys):
    assert (run / "checkpoint.pt").is_file() and (run / "metrics.jsonl").is_file()
    assert json.loads((run / "config.json").read_text())["model"] == "transpose"


def test_train_refuses_to_overwrite_an_existing_run(run, capsys):
    before = (run / "checkpoint.pt").read_bytes()
    assert main(["colourize", "train", "--model", "transpose", "--out", str(run), *TINY]) == 2
    _one_error_line(capsys, "--out=", "--resume")
    assert (run / "checkpoint.pt").read_bytes() == before


def test_train_resume_extends_the_run(run, capsys):
    assert main(["colourize", "train", "--model", "transpose", "--out", str(run), "--resume",
                 *[a if a != "1" else "2" for a in TINY]]) == 0
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2
    assert "ConvTransposeNet" in capsys.readouterr().out


def test_eval_prints_model_and_baselines(run, capsys):
    assert main(["colourize", "eval", str(run)]) == 0
    out = capsys.readouterr().out
    assert "baseline: majority" in out and "baseline: grey level" in out and "PSNR" in out
    assert (run / "eval.png").is_file()


def test_predict_colourises_an_image_of_any_size(run, tmp_path, capsys):
    src = tmp_path / "in.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (37, 51, 3), dtype=np.uint8)).save(src)
    out = tmp_path / "out.png"
    assert main(["colourize", "predict", str(run), str(src), "-o", str(out)]) == 0
    with Image.open(out) as im:
        assert im.size == (51, 37) and im.mode == "RGB"


def test_compare_trains_all_three_on_the_same_data(tmp_path, capsys):
    assert main(["colourize", "compare", "--out", str(tmp_path), *TINY]) == 0
    out = capsys.readouterr().out
    for name in ("PoolUpsampleNet", "ConvTransposeNet", "UNet", "baseline: grey level"):
        assert name in out
    summary = json.loads((tmp_path / "compare.json").read_text())
    assert set(summary) == {"pool", "transpose", "unet"}
    assert (tmp_path / "compare.png").is_file()


@pytest.mark.parametrize(("args", "words"), [
    (["train", "--model", "resnet"], ["--model", "resnet", "pool"]),
    (["train", "--data", "imagenet"], ["--data", "imagenet", "cifar10:PATH"]),
    (["train", "--data", "cifar10:/no/such/file.tar.gz"], ["--data", "cifar10"]),
    (["train", "--epochs", "0"], ["--epochs"]),
    (["train", "--resume"], ["resume"]),
    (["eval", "/no/such/run"], ["RUN"]),
])
def test_bad_input_is_one_line_and_exit_2(args, words, capsys, tmp_path):
    assert main(["colourize", *args, *(["--out", str(tmp_path)] if args[0] == "train" else [])]) == 2
    _one_error_line(capsys, *words)


def test_predict_rejects_a_non_image_and_a_missing_one(run, tmp_path, capsys):
    fake = tmp_path / "fake.png"
    fake.write_text("not an image")
    assert main(["colourize", "predict", str(run), str(fake), "-o", str(tmp_path / "o.png")]) == 2
    _one_error_line(capsys, "not a readable image")
    assert main(["colourize", "predict", str(run), str(tmp_path / "nope.png"), "-o", "o.png"]) == 2
    _one_error_line(capsys, "IMAGE")
    assert not (tmp_path / "o.png").exists()


def test_module_entry_point_reports_bad_model_with_exit_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "trainlab", "colourize", "train", "--model", "vgg",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "--model" in proc.stderr
