"""The trainer: exact resume, Ctrl-C, NaN detection, reproducibility, the run folder."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from trainlab.colourize.data import load_data, to_grey
from trainlab.colourize.models import build_model
from trainlab.colourize.palette import fit_palette
from trainlab.colourize.train import (
    TrainConfig,
    TrainingDiverged,
    TrainingInterrupted,
    _epoch_order,
    learning_rate,
    load_run,
    train,
)
from trainlab.errors import ArgumentError

CONFIG = TrainConfig(model="unet", num_filters=4, num_colours=6, epochs=2, batch_size=16, seed=3)


@pytest.fixture(scope="module")
def small():
    data = load_data("builtin").subset(40, 12, seed=0)
    return data, fit_palette(data.train, 6, seed=0)


def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _numbers(history):
    return [(m.epoch, m.train_loss, m.valid_loss, m.valid_accuracy) for m in history]


def test_trainer_equals_a_plain_adam_loop(small):
    data, palette = small
    config = replace(CONFIG, epochs=1, model="transpose")
    result = train(config, data, palette=palette)
    model = build_model("transpose", num_filters=4, num_colours=6, seed=3)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    grey, labels = to_grey(data.train), palette.labels(data.train)
    order = _epoch_order(len(grey), 3, 1)
    for i in range(0, len(grey), 16):
        idx = order[i: i + 16]
        opt.zero_grad()
        F.cross_entropy(model(grey[idx]), labels[idx]).backward()
        opt.step()
    for (k, a), b in zip(result.model.state_dict().items(), model.state_dict().values(), strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), k


def test_same_seed_same_numbers_other_seed_other_numbers(small):
    data, palette = small
    a, b = train(CONFIG, data, palette=palette), train(CONFIG, data, palette=palette)
    c = train(replace(CONFIG, seed=4), data, palette=palette)
    assert _numbers(a.history) == _numbers(b.history) and _same_weights(a.model, b.model)
    assert _numbers(a.history) != _numbers(c.history)


def test_resume_after_one_epoch_equals_an_uninterrupted_run(small, tmp_path):
    data, palette = small
    full = train(CONFIG, data, tmp_path / "full", palette=palette, figures=False)
    train(replace(CONFIG, epochs=1), data, tmp_path / "split", palette=palette, figures=False)
    resumed = train(CONFIG, data, tmp_path / "split", resume=True, figures=False)
    assert _same_weights(full.model, resumed.model)
    assert _numbers(full.history) == _numbers(resumed.history)


def test_ctrl_c_mid_epoch_saves_and_resume_is_exact(small, tmp_path):
    data, palette = small
    full = train(CONFIG, data, palette=palette)

    def interrupt(event):
        if (event.epoch, event.step) == (2, 2):
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted) as info:
        train(CONFIG, data, tmp_path, palette=palette, progress=interrupt, figures=False)
    assert (info.value.epoch, info.value.step) == (2, 2) and info.value.checkpoint.is_file()
    resumed = train(CONFIG, data, tmp_path, resume=True, figures=False)
    assert _same_weights(full.model, resumed.model)
    assert _numbers(full.history) == _numbers(resumed.history)


def test_nan_loss_stops_naming_epoch_and_step(small):
    data, palette = small
    bad = data.train.clone()
    bad[0, :, 0, 0] = float("nan")
    with pytest.raises(TrainingDiverged, match=r"epoch 1, step 1 of 1"):
        train(replace(CONFIG, batch_size=1000), replace(data, train=bad), palette=palette)


def test_run_folder_holds_checkpoint_metrics_and_figures(small, tmp_path):
    data, palette = small
    result = train(CONFIG, data, tmp_path, palette=palette)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert ckpt["epoch"] == 2 and ckpt["step"] == 0
    for name in ("config.json", "palette.npy", "curves.png", "curves.json", "eval.json",
                 "samples/epoch-001.png", "samples/epoch-002.png", "samples/epoch-002.json"):
        assert (tmp_path / name).is_file(), name
    assert not list(tmp_path.rglob("*.tmp"))
    config, model, loaded_palette, _ = load_run(tmp_path)
    assert config == CONFIG and _same_weights(model, result.model)
    assert torch.equal(loaded_palette.colours, palette.colours)
    assert json.loads((tmp_path / "eval.json").read_text())["accuracy"] == result.evaluation.accuracy


def test_training_lowers_the_loss(small):
    data, palette = small
    result = train(replace(CONFIG, epochs=6, batch_size=8, lr=3e-3), data, palette=palette)
    assert result.history[-1].train_loss < 0.8 * result.history[0].train_loss


def test_resume_refuses_a_different_config(small, tmp_path):
    data, palette = small
    train(replace(CONFIG, epochs=1), data, tmp_path, palette=palette, figures=False)
    with pytest.raises(ArgumentError, match="--lr"):
        train(replace(CONFIG, lr=0.1), data, tmp_path, resume=True)
    with pytest.raises(ArgumentError, match="--resume"):
        train(CONFIG, data, tmp_path / "empty", resume=True)


@pytest.mark.parametrize(("field", "value", "argument"), [
    ("model", "resnet", "--model"), ("epochs", 0, "--epochs"), ("lr", -1.0, "--lr"),
    ("batch_size", 0, "--batch-size"), ("lr", float("nan"), "--lr"), ("kernel", 8, "--kernel"),
    ("patch_size", 18, "--patch-size"), ("lr_schedule", "step", "--lr-schedule"),
])
def test_bad_config_names_the_option(field, value, argument):
    with pytest.raises(ArgumentError, match=argument):
        TrainConfig(**{field: value})


def test_cosine_schedule_matches_torch_cosine_annealing():
    config = replace(CONFIG, lr=2e-3, lr_schedule="cosine")
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=30, eta_min=0.0)
    for step in range(30):
        assert learning_rate(config, step, 30) == pytest.approx(sched.get_last_lr()[0], rel=1e-9, abs=1e-15)
        opt.step()
        sched.step()
    assert learning_rate(CONFIG, 17, 30) == CONFIG.lr


def test_resume_is_exact_under_a_cosine_schedule_and_refuses_more_epochs(small, tmp_path):
    data, palette = small
    config = replace(CONFIG, lr_schedule="cosine")

    def interrupt(event):
        if (event.epoch, event.step) == (1, 2):
            raise KeyboardInterrupt

    full = train(config, data, palette=palette)
    with pytest.raises(TrainingInterrupted):
        train(config, data, tmp_path, palette=palette, progress=interrupt, figures=False)
    resumed = train(config, data, tmp_path, resume=True, figures=False)
    assert _same_weights(full.model, resumed.model)
    with pytest.raises(ArgumentError, match="--epochs"):
        train(replace(config, epochs=3), data, tmp_path, resume=True)


@pytest.mark.slow  # a subprocess importing torch; test_ctrl_c_mid_epoch_saves_and_resume_is_exact is fast
def test_a_real_sigint_finishes_the_step_saves_and_exits_130(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "trainlab", "colourize", "train", "--model", "pool", "--out", str(out),
           "--max-train", "40", "--max-valid", "8", "--epochs", "500", "--batch-size", "8",
           "--num-filters", "4", "--num-colours", "5"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "metrics.jsonl").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted at epoch" in err and "--resume" in err and "Traceback" not in err
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ckpt["epoch"] >= 1 and not list(out.glob(".*.tmp"))
    assert os.path.getsize(out / "checkpoint.pt") > 0


def test_auto_device_is_the_cpu_without_a_gpu_and_a_missing_device_is_refused(monkeypatch):
    from trainlab.colourize.train import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu") and resolve_device("cpu").type == "cpu"
    for missing in ("cuda", "cuda:0", "mps"):
        with pytest.raises(ArgumentError, match="--device"):
            resolve_device(missing)
    with pytest.raises(ArgumentError, match="one of"):
        resolve_device("tpu")


def test_auto_device_takes_a_gpu_when_one_is_present(monkeypatch):
    from trainlab.colourize.train import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(ArgumentError, match="cuda:0..cuda:0"):
        resolve_device("cuda:1")


def test_checkpoints_hold_cpu_tensors_and_load_onto_any_device(small, tmp_path):
    data, palette = small
    result = train(CONFIG, data, tmp_path, palette=palette, figures=False)
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True, map_location="meta")
    raw = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    devices = {t.device.type for t in raw["model"].values()}
    devices |= {t.device.type for s in raw["optimizer"]["state"].values() for t in s.values()
                if isinstance(t, torch.Tensor)}
    assert devices == {"cpu"} and set(ckpt["model"]) == set(result.model.state_dict())
    _, model, _, _ = load_run(tmp_path, device="cpu")
    assert next(model.parameters()).device.type == "cpu" and _same_weights(model, result.model)


@pytest.mark.parametrize("precision", ["bf16", pytest.param("fp16", marks=pytest.mark.slow)])
def test_reduced_precision_trains_close_to_fp32(small, precision):
    data, palette = small
    config = replace(CONFIG, epochs=3, batch_size=8, lr=3e-3, device="cpu")
    full = train(config, data, palette=palette)
    low = train(replace(config, precision=precision), data, palette=palette)
    assert low.history[-1].train_loss < 0.9 * low.history[0].train_loss  # it learns
    # autocast rounds activations to 8 (bf16) or 11 (fp16) significant bits: the runs part
    # ways slowly; after 15 steps the losses agree to a few per cent
    assert low.history[-1].train_loss == pytest.approx(full.history[-1].train_loss, rel=0.05)


def test_precision_and_old_bf16_configs(tmp_path):
    assert TrainConfig.from_dict({"bf16": True}).precision == "bf16"
    assert TrainConfig.from_dict({"bf16": False}).precision == "fp32"
    with pytest.raises(ArgumentError, match="--precision"):
        TrainConfig(precision="fp8")


def test_memory_estimate_grows_with_the_network_and_refuses_what_does_not_fit():
    from trainlab.colourize.train import estimate_training_bytes
    from trainlab.errors import ResourceError
    from trainlab.memory import require_memory

    small_run = estimate_training_bytes(TrainConfig(num_filters=32), 1000, 100)
    huge = estimate_training_bytes(TrainConfig(num_filters=100_000), 1000, 100)
    assert 1e6 < small_run < 2e9 and huge > 1e11  # ~36·NF² weights × 16 bytes at NF = 10⁵
    with pytest.raises(ResourceError, match="--num-filters"):
        require_memory("--num-filters", 100_000, huge)


def test_auto_precision_is_bf16_where_native_and_trains_as_that_precision(small, monkeypatch):
    import importlib

    tr = importlib.import_module("trainlab.colourize.train")  # the package re-exports a function "train"

    cpu = torch.device("cpu")
    assert tr.resolve_precision("fp32", cpu) == "fp32" and tr.resolve_precision("fp16", cpu) == "fp16"
    assert tr.resolve_precision("auto", cpu) == ("bf16" if tr.native_bf16(cpu) else "fp32")
    assert tr.resolve_precision("auto", torch.device("mps")) == "fp32"
    data, palette = small
    config = replace(CONFIG, epochs=1, device="cpu", precision="auto")
    auto = train(config, data, palette=palette)
    same = train(replace(config, precision=tr.resolve_precision("auto", cpu)), data, palette=palette)
    assert _numbers(auto.history) == _numbers(same.history)
    monkeypatch.setattr(tr, "native_bf16", lambda device: False)
    assert tr.resolve_precision("auto", cpu) == "fp32"
    assert _numbers(train(config, data, palette=palette).history) == _numbers(
        train(replace(config, precision="fp32"), data, palette=palette).history)
    assert TrainConfig.from_dict({}).precision == "fp32"  # a config without the key: float32 as before


@pytest.mark.parametrize("name", ["pool", "transpose", "unet"])
def test_low_precision_inputs_are_bit_identical_to_float32_inputs_under_autocast(name):
    # The trainer keeps the grey images in the autocast dtype (input_dtype): the first
    # convolution would round them to it anyway, and UNet's cat(features, input) would
    # otherwise promote to float32 and be cast back. Same logits, same gradients, bit for bit.
    from trainlab.colourize.train import autocast, input_dtype

    assert input_dtype("fp32") is torch.float32 and input_dtype("bf16") is torch.bfloat16
    cpu = torch.device("cpu")
    x = torch.rand(4, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    target = torch.randint(6, (4, 16, 16), generator=torch.Generator().manual_seed(1))
    results = []
    for inputs in (x, x.to(input_dtype("bf16"))):
        model = build_model(name, num_filters=4, num_colours=6, seed=2)
        with autocast(cpu, "bf16"):
            logits = model(inputs)
        F.cross_entropy(logits.float(), target).backward()
        results.append((logits.float(), [p.grad for p in model.parameters()]))
    (l32, g32), (l16, g16) = results
    assert torch.equal(l32, l16)
    assert all(torch.equal(a, b) for a, b in zip(g32, g16, strict=True))
