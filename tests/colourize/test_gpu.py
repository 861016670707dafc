"""The trainer on a CUDA GPU (skipped where there is none: CI has none; run on a GPU machine with
``PYTHONPATH=src pytest tests/colourize/test_gpu.py``)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from trainlab.colourize.data import load_data, to_grey
from trainlab.colourize.evaluate import predict_labels
from trainlab.colourize.paired import train_side_by_side
from trainlab.colourize.palette import fit_palette
from trainlab.colourize.train import TrainConfig, load_run, train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")

CONFIG = TrainConfig(model="unet", num_filters=8, num_colours=6, epochs=2, batch_size=16, seed=3,
                     patch_size=16, device="cuda")


@pytest.fixture(autouse=True)
def exact_float32(monkeypatch):
    # cuDNN convolutions default to TF32 on Ampere and later (10-bit mantissa): comparisons with
    # the CPU are made in true float32
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)


@pytest.fixture(scope="module")
def small():
    data = load_data("builtin", size=16, num_crops=96, seed=0).subset(96, 24, seed=0)
    return data, fit_palette(data.train, 6, seed=0)


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_trains_on_the_gpu_and_predicts_the_same_on_the_cpu(small, tmp_path, precision):
    data, palette = small
    result = train(replace(CONFIG, precision=precision), data, tmp_path, palette=palette, figures=False)
    assert next(result.model.parameters()).device.type == "cuda"
    assert result.history[-1].train_loss < result.history[0].train_loss  # it learns
    _, on_cpu, _, _ = load_run(tmp_path, device="cpu")  # a GPU checkpoint on a laptop
    grey = to_grey(data.valid)
    gpu_labels = predict_labels(result.model, grey.cuda()).cpu()
    cpu_labels = predict_labels(on_cpu, grey)
    assert (gpu_labels == cpu_labels).double().mean() > 0.99  # float32 kernels differ in the last bits


def test_compiled_training_with_cuda_graphs_matches_eager(small):
    data, palette = small
    eager = train(replace(CONFIG, precision="fp32"), data, palette=palette, figures=False)
    compiled = train(replace(CONFIG, precision="fp32", compile=True), data, palette=palette, figures=False)
    for a, b in zip(eager.history, compiled.history, strict=True):
        assert b.train_loss == pytest.approx(a.train_loss, rel=1e-2)


def test_paired_training_on_the_gpu_equals_the_cpu(small):
    data, palette = small
    kwargs = dict(num_filters=8, epochs=1, batch_size=16, lr=5e-3, precision="fp32")
    cpu = train_side_by_side("transpose", [1, 2], [data, data], [palette, palette], **kwargs)
    gpu = train_side_by_side("transpose", [1, 2], [data, data], [palette, palette], device="cuda", **kwargs)
    assert gpu.final_accuracy == pytest.approx(cpu.final_accuracy, abs=0.02)
    assert gpu.final_loss == pytest.approx(cpu.final_loss, rel=1e-2)
