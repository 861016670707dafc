"""trainlab.loader: models for shape-only work are built on meta, or on the CPU after an estimate."""

from __future__ import annotations

from pathlib import Path

import pytest
from torch import nn

import trainlab.memory
from trainlab.errors import ArgumentError, ResourceError
from trainlab.loader import load_model, load_model_for_shapes, parameter_bytes

ZOO = str(Path(__file__).with_name("zoo.py"))


def test_an_ordinary_model_is_built_on_meta_without_weights():
    model = load_model_for_shapes(f"{ZOO}:resnet18()")
    assert {p.device.type for p in model.parameters()} == {"meta"}
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    # float32 weights, running means and variances, one int64 batch counter per batch norm
    floats = sum(p.numel() for p in model.parameters()) + sum(2 * m.num_features for m in norms)
    assert parameter_bytes(model) == 4 * floats + 8 * len(norms)


def test_a_constructor_that_reads_tensor_values_is_built_on_the_cpu():
    model = load_model_for_shapes(f"{ZOO}:RegNetStyle()")
    assert {p.device.type for p in model.parameters()} == {"cpu"}


def test_the_cpu_build_is_refused_when_the_estimate_does_not_fit(monkeypatch):
    monkeypatch.setattr(trainlab.memory, "available_memory_bytes", lambda: 1000)
    with pytest.raises(ResourceError, match="RegNetStyle"):
        load_model_for_shapes(f"{ZOO}:RegNetStyle()")


def test_a_factory_that_raises_is_one_argument_error(tmp_path: Path):
    path = tmp_path / "f.py"
    path.write_text("def f():\n    raise RuntimeError('bad config')\n")
    for load in (load_model, load_model_for_shapes):
        with pytest.raises(ArgumentError, match="RuntimeError: bad config"):
            load(f"{path}:f()")
