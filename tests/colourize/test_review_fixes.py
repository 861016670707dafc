"""Defects found by a review of the colourize package, each pinned by a test."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from trainlab.cli import main
from trainlab.colourize.data import load_data, load_folder, read_image
from trainlab.colourize.palette import Palette
from trainlab.colourize.train import TrainConfig, _epoch_order, estimate_training_bytes, load_run, train
from trainlab.errors import ArgumentError, DataError


def _folder(path, sizes, seed=0):
    rng = np.random.default_rng(seed)
    path.mkdir(exist_ok=True)
    for i, (h, w) in enumerate(sizes):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path / f"im{i}.png")
    return path


def test_folder_data_is_cut_at_full_and_half_resolution_through_load_data(tmp_path):
    # load_data used to pass builtin's downscale factors (2, 3, 4) to folders: 40×40 images gave
    # no 32×32 patch at all, and 64×64 images a fifth of the patches
    small = _folder(tmp_path / "small", [(40, 40)] * 3)
    assert len(load_data(f"folder:{small}").train) == len(load_folder(small).train) == 2
    big = _folder(tmp_path / "big", [(64, 64)] * 6)
    assert len(load_data(f"folder:{big}").train) == len(load_folder(big, scales=(1, 2)).train) == 5 * (4 + 1)


def test_a_folder_split_without_a_patch_is_a_clear_error(tmp_path):
    folder = _folder(tmp_path / "mix", [(200, 200), (40, 40)])
    with pytest.raises(ArgumentError, match="--patch-size"):
        load_folder(folder, scales=(2,), seed=1)


def test_memory_check_before_loading_a_folder_counts_no_guessed_images():
    config = TrainConfig(data="folder:anything", patch_size=512, batch_size=4, num_filters=8, num_colours=8)
    before = estimate_training_bytes(config)
    assert before < 2e9  # it assumed 4,000 + 2,000 images of 512² (42.6 GB) and refused the run
    assert estimate_training_bytes(config, 10, 2) > before  # after loading, the data is counted


def test_a_batch_of_one_at_a_one_pixel_bottleneck_is_refused_up_front():
    data = load_data("builtin", size=4, num_crops=3, seed=0).subset(3, 4)
    config = TrainConfig(patch_size=4, num_crops=3, batch_size=2, epochs=1, num_filters=4, num_colours=4)
    with pytest.raises(ArgumentError, match="--batch-size"):
        train(config, data)  # 3 images in batches of 2 leave a last batch of 1
    result = train(replace(config, batch_size=3), data)  # no batch of 1: it trains
    assert len(result.history) == 1


def test_large_seeds_work_and_out_of_range_seeds_are_refused():
    old = torch.randperm(7, generator=torch.Generator().manual_seed(12345 * 1_000_003 + 2))
    assert torch.equal(_epoch_order(7, 12345, 2), old)  # unchanged where it worked
    assert sorted(_epoch_order(7, 2**63 - 1, 3).tolist()) == list(range(7))
    for bad in (-1, 2**63, True):
        with pytest.raises(ArgumentError, match="--seed"):
            TrainConfig(seed=bad)


def test_sixteen_bit_grey_images_are_scaled_not_clipped(tmp_path):
    path = tmp_path / "grey16.png"
    Image.fromarray(np.full((20, 30), 30000, dtype=np.uint16)).save(path)
    with Image.open(path) as im:
        assert im.mode.startswith("I")  # how Pillow opens a 16-bit grey PNG
    x = read_image(path)
    assert x.shape == (3, 20, 30)
    assert float(x.mean()) == pytest.approx(round(30000 / 257) / 256)  # was 255/256: clipped to white
    Image.fromarray(np.zeros((4, 4), dtype=np.float32), mode="F").save(tmp_path / "f.tiff")
    with pytest.raises(DataError, match="floating-point"):
        read_image(tmp_path / "f.tiff")


def test_a_run_whose_palette_does_not_match_its_config_is_refused(tmp_path):
    data = load_data("builtin", size=8, num_crops=16, seed=0).subset(16, 4)
    config = TrainConfig(patch_size=8, num_crops=16, batch_size=8, epochs=1, num_filters=4, num_colours=5)
    train(config, data, tmp_path / "run", figures=False)
    Palette(torch.rand(3, 3)).save(tmp_path / "run" / "palette.npy")
    with pytest.raises(DataError, match="3 colours"):
        load_run(tmp_path / "run")


def test_a_learning_rate_float32_cannot_hold_is_refused(capsys, tmp_path):
    with pytest.raises(ArgumentError, match="--lr"):
        TrainConfig(lr=1e300)
    assert main(["colourize", "train", "--lr", "1e300", "--out", str(tmp_path / "r")]) == 2
    assert "--lr" in capsys.readouterr().err and not (tmp_path / "r").exists()


@pytest.mark.parametrize("suffix", [".pgm", ".pbm", ".pfm"])
def test_predict_refuses_grey_and_float_extensions(tmp_path, capsys, suffix):
    data = load_data("builtin", size=8, num_crops=16, seed=0).subset(16, 4)
    run = tmp_path / "run"
    train(TrainConfig(patch_size=8, num_crops=16, batch_size=8, epochs=1, num_filters=4, num_colours=5),
          data, run, figures=False)
    src = tmp_path / "in.png"
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(src)
    assert main(["colourize", "predict", str(run), str(src), "-o", str(tmp_path / f"x{suffix}")]) == 2
    err = capsys.readouterr().err
    assert "--output" in err and ".ppm" in err and suffix not in err.split("ending in one of")[-1]
    shutil.rmtree(run)
