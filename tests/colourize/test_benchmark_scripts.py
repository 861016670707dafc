"""The colourize benchmark scripts run (tiny settings): the GPU rows are ready for a machine with a GPU."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_course_protocol_timing_runs_its_loops_on_the_cpu(capsys):
    # The function benchmarks/colourize.py --gpu-only calls on a CUDA GPU, here on the CPU with a
    # tiny budget (no compile): the plain loop and the trainer both run and are compared.
    bench = _load("colourize")
    bench.course_protocol_timing("cpu", epochs=1, num_images=200, fast=False)
    out = capsys.readouterr().out
    assert "CPU: course protocol, 3 networks × 1 epochs × 200 images" in out
    rows = {line.split()[0] + " " + line.split()[1]: line for line in out.splitlines()[1:]}
    assert set(rows) == {"plain fp32", "trainer fp32"}
    for line in rows.values():
        seconds = [float(v) for v in re.findall(r"(?:pool|transpose|unet) ([0-9.]+)", line)]
        assert len(seconds) == 3 and all(s > 0 for s in seconds)
        assert "× the plain loop" in line and "target ≤ 7 s" in line


def test_course_protocol_timing_says_when_there_is_no_gpu(capsys):
    bench = _load("colourize")
    if bench.torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    bench.course_protocol_timing("cuda")
    assert "no CUDA GPU" in capsys.readouterr().out


def test_holdout_compares_unet_with_the_lookup_on_the_photograph_held_out():
    bench = _load("colourize_holdout")
    unet, lookup = bench.holdout("retina", [3, 4], "quick")
    assert len(unet) == len(lookup) == 2
    assert all(0 < a < 1 for a in unet + lookup)
    assert lookup[0] != lookup[1]  # each pair's own crops and palette


def test_more_photos_compares_each_network_with_the_lookup_on_held_out_photographs(tmp_path):
    """benchmarks/colourize_more_photos.py on a folder of two images (tiny, quick scale)."""
    from PIL import Image

    bench = _load("colourize_more_photos")
    g = __import__("numpy").random.default_rng(0)
    for i in range(2):  # 600 px wide: shrunk to the 512 px of the built-in photographs
        Image.fromarray(g.integers(0, 256, (300, 600, 3), dtype="uint8")).save(tmp_path / f"p{i}.png")
    photos = bench.photographs(tmp_path, 512)
    assert max(photos["p0"].shape[-2:]) == 512 and "chelsea" in photos and len(photos) == 13
    out = bench.compare(photos, 3, split=0, seeds=[3, 4], scale="quick", models=("transpose",))
    acc, lookup = out["transpose"]
    assert len(acc) == len(lookup) == 2 and all(0 < a < 1 for a in acc + lookup)
