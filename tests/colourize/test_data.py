"""Data sources: built-in photographs split by photograph, CIFAR-10 read safely, image folders."""

from __future__ import annotations

import io
import os
import pickle
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from trainlab.colourize import data as data_module
from trainlab.colourize.data import (
    BUILTIN_SCALES,
    BUILTIN_TRAIN,
    BUILTIN_VALID,
    builtin_photographs,
    load_cifar10,
    load_data,
    load_folder,
    patches,
    random_crops,
    read_image,
    to_grey,
)
from trainlab.errors import ArgumentError, DataError


@pytest.fixture(scope="module")
def builtin():
    return load_data("builtin", num_crops=300, seed=0)


def test_builtin_uses_every_shipped_colour_photograph_split_by_photograph(builtin):
    assert set(builtin.train_names).isdisjoint(builtin.valid_names)
    photos = builtin_photographs()
    assert set(photos) == set(BUILTIN_TRAIN) | set(BUILTIN_VALID) and len(photos) == 11
    assert all(p.shape[0] == 3 for p in photos.values())
    valid = torch.cat([patches(photos[n], 32, BUILTIN_SCALES) for n in BUILTIN_VALID])
    assert torch.equal(builtin.valid, valid)
    assert builtin.train.shape == (300, 3, 32, 32)


def test_every_crop_comes_from_a_training_photograph_and_none_from_a_held_out_one():
    photos = builtin_photographs()
    crops = random_crops([photos["coffee"]], 40, 16, seed=5, scales=(2,))
    half = torch.nn.functional.avg_pool2d(photos["coffee"][None], 2)[0]
    windows = half.unfold(1, 16, 1).unfold(2, 16, 1)  # (3, nh, nw, 16, 16)
    flipped = windows.flip(-1)
    for c in crops[:10]:
        hit = ((windows - c[:, None, None]).abs().amax((0, 3, 4)) == 0).any() or \
            ((flipped - c[:, None, None]).abs().amax((0, 3, 4)) == 0).any()
        assert hit
    # many distinct crops, some of them flipped
    assert len({c.numpy().tobytes() for c in crops}) == 40


def test_builtin_is_deterministic_in_the_seed_and_scaled_by_256(builtin):
    again = load_data("builtin", num_crops=300, seed=0)
    assert torch.equal(builtin.train, again.train) and torch.equal(builtin.valid, again.valid)
    other = load_data("builtin", num_crops=300, seed=1)
    assert not torch.equal(builtin.train, other.train) and torch.equal(builtin.valid, other.valid)
    assert float(builtin.train.min()) >= 0 and float(builtin.train.max()) <= 255 / 256
    # crops average s×s blocks (s = 2, 3, 4) of uint8/256 values: multiples of 1/(256·144)
    first = builtin.train[:20] * (256 * 144)
    assert torch.allclose(first, first.round(), atol=1e-3)


def test_builtin_refuses_a_patch_larger_than_its_held_out_photographs():
    from trainlab.colourize.train import TrainConfig

    with pytest.raises(ArgumentError, match="--patch-size"):
        TrainConfig(patch_size=100_000)
    with pytest.raises(ArgumentError, match="--num-crops"):
        load_data("builtin", num_crops=0)


def test_grey_is_the_mean_of_red_green_blue():
    rgb = torch.rand(2, 3, 4, 4)
    assert torch.allclose(to_grey(rgb)[:, 0], (rgb[:, 0] + rgb[:, 1] + rgb[:, 2]) / 3)


def test_patches_cut_non_overlapping_tiles_at_each_scale():
    image = torch.rand(3, 70, 100)
    p = patches(image, 32, scales=(1, 2))
    assert p.shape == (2 * 3 + 1 * 1, 3, 32, 32)
    assert torch.equal(p[0], image[:, :32, :32]) and torch.equal(p[4], image[:, 32:64, 32:64])
    half = torch.nn.functional.avg_pool2d(image[None], 2)[0]
    assert torch.allclose(p[6], half[:, :32, :32])


def test_subset_is_seeded(builtin):
    a, b = builtin.subset(10, 5, seed=3), builtin.subset(10, 5, seed=3)
    assert torch.equal(a.train, b.train) and len(a.train) == 10 and len(a.valid) == 5
    assert not torch.equal(a.train, builtin.subset(10, 5, seed=4).train)


@pytest.mark.parametrize("spec", ["imagenet", "cifar10", "folder:", "builtin:x", ""])
def test_bad_data_spec_names_the_argument(spec):
    with pytest.raises(ArgumentError, match="--data"):
        load_data(spec)


# ----------------------------------------------------------------------------- CIFAR-10


def _batch(n: int, seed: int, labels=None) -> dict:
    rng = np.random.default_rng(seed)
    return {b"batch_label": b"fake", b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"labels": list(labels if labels is not None else rng.integers(0, 10, n).tolist()),
            b"filenames": [b"x.png"] * n}


def _write_archive(path, batches: dict[str, bytes]):
    with tarfile.open(path, "w:gz") as tar:
        for name, raw in batches.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return path


def _fake_cifar(tmp_path, overrides=None):
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    raw = {n: pickle.dumps(_batch(20, i), protocol=2) for i, n in enumerate(names)}
    raw.update(overrides or {})
    return _write_archive(tmp_path / "cifar-10-python.tar.gz", raw), raw


def test_cifar10_reads_one_category_from_the_archive(tmp_path):
    path, raw = _fake_cifar(tmp_path)
    data = load_cifar10(path, "horse")
    expect = []
    for i in range(1, 6):
        b = pickle.loads(raw[f"data_batch_{i}"])
        expect.append(b[b"data"][np.asarray(b[b"labels"]) == 7])
    expected = torch.from_numpy(np.concatenate(expect).reshape(-1, 3, 32, 32)).float() / 256
    assert torch.equal(data.train, expected)
    t = pickle.loads(raw["test_batch"])
    assert len(data.valid) == int((np.asarray(t[b"labels"]) == 7).sum())
    assert data.source == "cifar10:horse"
    # the same through load_data, by index, and from an extracted folder
    assert torch.equal(load_data(f"cifar10:{path}", category="7").train, expected)
    with tarfile.open(path) as tar:
        tar.extractall(tmp_path / "extracted", filter="data")
    assert torch.equal(load_cifar10(tmp_path / "extracted", 7).train, expected)


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_raises_without_running_code(tmp_path):
    marker = tmp_path / "pwned"
    evil = pickle.dumps({b"data": _Exploit(marker), b"labels": [0]}, protocol=2)
    path, _ = _fake_cifar(tmp_path, {"data_batch_3": evil})
    with pytest.raises(DataError, match="refusing to unpickle"):
        load_cifar10(path)
    assert not marker.exists()


@pytest.mark.parametrize(("bad", "message"), [
    ({b"data": np.zeros((4, 100), np.uint8), b"labels": [0] * 4}, "shape"),
    ({b"data": np.zeros((4, 3072), np.float64), b"labels": [0] * 4}, "uint8"),
    ({b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 1, 2]}, "labels"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 12]}, "labels"),
    ([1, 2, 3], "dict"),
])
def test_wrongly_shaped_batches_are_rejected(tmp_path, bad, message):
    path, _ = _fake_cifar(tmp_path, {"test_batch": pickle.dumps(bad, protocol=2)})
    with pytest.raises(DataError, match=message):
        load_cifar10(path)


def test_truncated_or_missing_cifar_files(tmp_path):
    path, raw = _fake_cifar(tmp_path, {"test_batch": b"\x80\x02garbage"})
    with pytest.raises(DataError, match="test_batch"):
        load_cifar10(path)
    partial = _write_archive(tmp_path / "partial.tar.gz", {"data_batch_1": raw["data_batch_1"]})
    with pytest.raises(DataError, match="lacks"):
        load_cifar10(partial)
    (tmp_path / "not.tar.gz").write_bytes(b"plain text")
    with pytest.raises(DataError, match="tar"):
        load_cifar10(tmp_path / "not.tar.gz")
    with pytest.raises(ArgumentError, match="--data"):
        load_cifar10(tmp_path / "missing.tar.gz")
    with pytest.raises(ArgumentError, match="--category"):
        load_cifar10(path, "unicorn")


def test_restricted_unpickler_admits_numpy_arrays_of_every_protocol():
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    for protocol in (2, 3, 4, 5):
        out = data_module._unpickle(pickle.dumps({b"a": arr}, protocol=protocol), "test")
        assert np.array_equal(out[b"a"], arr)


# ----------------------------------------------------------------------------- folders


def _save(path, array):
    Image.fromarray(array).save(path)
    return path


def test_folder_splits_by_image_and_resizes_small_ones(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(5):
        _save(tmp_path / f"im{i}.png", rng.integers(0, 256, (40 + 8 * i, 70, 3), dtype=np.uint8))
    _save(tmp_path / "tiny.png", rng.integers(0, 256, (10, 12, 3), dtype=np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    data = load_folder(tmp_path, seed=1)
    assert set(data.train_names).isdisjoint(data.valid_names)
    assert len(data.train_names) + len(data.valid_names) == 6 and len(data.valid_names) == 1
    assert data.train.shape[1:] == (3, 32, 32) and len(data.valid) >= 1
    assert data.train_names == load_folder(tmp_path, seed=1).train_names


def test_read_image_limits_pixels_and_rejects_non_images(tmp_path):
    path = _save(tmp_path / "a.png", np.zeros((30, 40, 3), np.uint8))
    assert read_image(path).shape == (3, 30, 40)
    with pytest.raises(DataError, match="exceeds the limit"):
        read_image(path, max_pixels=1000)
    (tmp_path / "fake.png").write_bytes(b"this is not a png")
    with pytest.raises(DataError, match="not a readable image"):
        read_image(tmp_path / "fake.png")
    with pytest.raises(ArgumentError, match="IMAGE"):
        read_image(tmp_path / "missing.png")


def test_folder_needs_two_images(tmp_path):
    _save(tmp_path / "only.png", np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(DataError, match="at least 2"):
        load_folder(tmp_path)
    with pytest.raises(ArgumentError, match="--data"):
        load_data(f"folder:{tmp_path / 'nowhere'}")


def test_builtin_draws_fresh_crops_for_every_epoch_deterministically(builtin):
    a, b = builtin.resample(2, 6), builtin.resample(2, 6)
    assert torch.equal(a, b) and a.shape == (6, 3, 32, 32)
    assert not torch.equal(a, builtin.resample(3, 6)) and not torch.equal(a, builtin.train[:6])
    assert builtin.subset(10, 5, seed=1).resample is builtin.resample


def test_builtin_crop_scales_are_passed_to_the_crops_and_to_resample():
    from trainlab.colourize.data import BUILTIN_TRAIN, _photo, random_crops

    d = load_data("builtin", size=12, num_crops=30, seed=3, crop_scales=(3, 4, 6), scales=(3, 4, 6))
    photos = [_photo(n) for n in BUILTIN_TRAIN]
    assert torch.equal(d.train, random_crops(photos, 30, 12, seed=3, scales=(3, 4, 6)))
    assert not torch.equal(d.train, random_crops(photos, 30, 12, seed=3))
    assert d.resample is not None and d.resample(1, 5).shape == (5, 3, 12, 12)


def test_builtin_holds_out_the_photographs_asked_for_and_trains_on_the_rest():
    from trainlab.colourize.data import _photo

    d = load_data("builtin", size=12, num_crops=20, seed=3, scales=(4,), crop_scales=(4,),
                  valid_photos=["retina"])
    assert d.valid_names == ("retina",)
    assert d.train_names == tuple(n for n in BUILTIN_TRAIN + BUILTIN_VALID if n != "retina")
    assert torch.equal(d.valid, patches(_photo("retina"), 12, (4,)))
    assert torch.equal(d.train, random_crops([_photo(n) for n in d.train_names], 20, 12, seed=3, scales=(4,)))
    assert load_data("builtin", size=12, num_crops=5, valid_photos="retina").valid_names == ("retina",)
    default = load_data("builtin", size=12, num_crops=5)
    assert default.train_names == BUILTIN_TRAIN and default.valid_names == BUILTIN_VALID
    for bad in (["lena"], "lena", [], list(BUILTIN_TRAIN + BUILTIN_VALID)):
        with pytest.raises(ArgumentError, match="valid_photos") as caught:
            load_data("builtin", size=12, num_crops=5, valid_photos=bad)
        assert "l,e,n,a" not in str(caught.value) and "chelsea" in str(caught.value)
