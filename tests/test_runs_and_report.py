"""Atomic writes, JSON conversion, run folders and report rendering."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import torch

from trainlab.claims import Claim, Context, Evidence, registered, run_claims
from trainlab.errors import ArgumentError
from trainlab.plotting import new_figure
from trainlab.report import format_value, load_results, write_report
from trainlab.runs import atomic_write_json, atomic_write_text, make_run_dir, to_jsonable


def test_atomic_write_leaves_the_old_file_when_the_rename_fails(tmp_path, monkeypatch):
    target = tmp_path / "results.json"
    atomic_write_text(target, "old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temporary file left


def test_to_jsonable_handles_numpy_torch_and_non_finite_numbers():
    data = {"a": np.float64(1.5), "b": torch.tensor([1.0, 2.0]), "c": math.nan,
            "d": -math.inf, "e": np.arange(3), "f": (1, 2)}
    assert to_jsonable(data) == {"a": 1.5, "b": [1.0, 2.0], "c": "nan", "d": "-inf",
                                 "e": [0, 1, 2], "f": [1, 2]}
    with pytest.raises(TypeError):
        to_jsonable(object())


def test_results_json_is_strict_json_even_with_nan(tmp_path):
    atomic_write_json(tmp_path / "x.json", {"loss": float("nan")})
    assert json.loads((tmp_path / "x.json").read_text()) == {"loss": "nan"}


def test_make_run_dir_refuses_a_file_and_an_unwritable_place(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ArgumentError, match="--out="):
        make_run_dir(f, "verify")
    with pytest.raises(ArgumentError, match="--out="):
        make_run_dir(f / "sub", "verify")
    assert make_run_dir(tmp_path / "new" / "run", "verify").is_dir()


def test_format_value_is_compact():
    assert format_value(0.123456789) == "0.123457"
    assert format_value(52444644) == "52,444,644"
    assert format_value(list(range(20))).endswith("… (20 items)]")


def _with_figure(ctx: Context) -> Evidence:
    fig, ax = new_figure()
    ax.plot([0, 1], [1, 0])
    ctx.save_figure(fig, "curve", {"y": [1, 0]})
    return Evidence({"x": 1.0}, {"x": 1.0}, True, "x = 1")


def test_report_rerenders_from_results_json_alone(tmp_path):
    claim = Claim("testpart.figure", "tests", "Has a figure.", _with_figure)
    with registered(claim):
        run_claims([claim.id], out_dir=tmp_path)
    (tmp_path / "report.md").unlink()
    (tmp_path / "report.html").unlink()
    write_report(tmp_path)
    page = (tmp_path / "report.html").read_text()
    assert "testpart.figure" in page and "passed" in page
    assert "data:image/png;base64," in page  # figures embedded: the page opens offline
    assert "<link" not in page and "<script src" not in page
    assert "![figures/testpart.figure-curve.png]" in (tmp_path / "report.md").read_text()


def test_report_of_a_folder_without_results_is_an_argument_error(tmp_path):
    with pytest.raises(ArgumentError, match="RUN_DIR="):
        load_results(tmp_path)
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(ArgumentError, match="readable results.json"):
        load_results(tmp_path)
    (tmp_path / "results.json").write_text('{"claims": []}')
    with pytest.raises(ArgumentError, match="missing"):
        load_results(tmp_path)
