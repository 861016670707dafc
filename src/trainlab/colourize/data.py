"""Colour images for colourization, from three sources behind one interface.

A data spec names the source (CLAIMS.md §5, issue 5):

- ``builtin``: every colour photograph the installed dependencies ship: scikit-image
  (astronaut, coffee, rocket, chelsea, the left view of stereo_motorcycle, hubble_deep_field,
  immunohistochemistry, retina), scikit-learn (china, flower) and matplotlib's sample data
  (grace_hopper). Left out: the right motorcycle view (a near copy of the left), drawings,
  logos and synthetic images (colorwheel, logo, logo2, Minduka_Present_Blue_Pack) and the
  grey ones. Train and validation are split by whole photograph (no pixel of chelsea,
  flower or grace_hopper is ever trained on). Training images are ``num_crops`` random
  crops (a seeded draw: photograph uniformly, downscale factor uniformly from
  :data:`BUILTIN_CROP_SCALES` (area averaging), position uniformly, a horizontal flip with
  probability 1/2), and the trainer draws a fresh set every epoch (:attr:`ColourData.resample`),
  so training sees many distinct patches; validation images are the
  non-overlapping patches of the held-out photographs at :data:`BUILTIN_SCALES`, the same for
  every seed. Offline and deterministic in the seed.
- ``cifar10:PATH``: a user's ``cifar-10-python.tar.gz`` or its extracted folder; one category
  (default horse = 7) of ``data_batch_1..5`` for training and of ``test_batch`` for
  validation, as in the course. The pickles are read straight from the archive with
  :class:`RestrictedUnpickler`, which admits only NumPy's array reconstruction: a tampered
  file raises :class:`~trainlab.errors.DataError` and never runs code.
- ``folder:PATH``: every image in a folder (Pillow, with a pixel limit), split by image;
  images smaller than the patch are resized up, larger ones cut into patches.

Pixels are ``uint8 / 256`` (the course's scaling) and the grey input is the mean of R, G, B.
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from trainlab.errors import ArgumentError, DataError
from trainlab.seeding import derive_seed

__all__ = [
    "BUILTIN_CROP_SCALES",
    "BUILTIN_MAX_PATCH",
    "BUILTIN_NUM_CROPS",
    "BUILTIN_SCALES",
    "BUILTIN_TRAIN",
    "BUILTIN_VALID",
    "CIFAR10_CATEGORIES",
    "IMAGE_SUFFIXES",
    "MAX_IMAGE_PIXELS",
    "ColourData",
    "RestrictedUnpickler",
    "builtin_photographs",
    "random_crops",
    "load_cifar10",
    "load_data",
    "load_folder",
    "patches",
    "read_image",
    "to_grey",
]

CIFAR10_CATEGORIES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                      "ship", "truck")
#: Photographs trained on / validated on for ``builtin`` (split by whole photograph).
BUILTIN_TRAIN = ("astronaut", "coffee", "rocket", "motorcycle", "china", "hubble_deep_field",
                 "immunohistochemistry", "retina")
BUILTIN_VALID = ("chelsea", "flower", "grace_hopper")
#: Downscale factors the held-out photographs are cut at (non-overlapping patches): a patch
#: carries CIFAR-like detail per pixel (full-resolution patches of these photographs are smooth).
BUILTIN_SCALES = (2, 3, 4)
#: Downscale factors random training crops are drawn at (one uniformly per crop).
BUILTIN_CROP_SCALES = (2, 3, 4)
#: Largest patch side for ``builtin``: chelsea (300×451), the smallest held-out photograph, at
#: half resolution.
BUILTIN_MAX_PATCH = 148
#: Random training crops drawn from the training photographs by default.
BUILTIN_NUM_CROPS = 4000
BUILTIN_STRIDE: int | None = None
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
#: Largest image (width × height) that :func:`read_image` decodes.
MAX_IMAGE_PIXELS = 40_000_000
_MAX_MEMBER_BYTES = 64 * 2**20  # a CIFAR-10 batch is ~31 MB


@dataclass(frozen=True)
class ColourData:
    """Training and validation colour images, ``(N, 3, H, W)`` float32 in [0, 1)."""

    train: torch.Tensor
    valid: torch.Tensor
    source: str
    train_names: tuple[str, ...] = ()
    valid_names: tuple[str, ...] = ()
    #: ``resample(epoch, n)``: n fresh training images for ``epoch`` (a function of the seed and
    #: the epoch), for sources that can draw more (``builtin``'s random crops); None otherwise.
    resample: Callable[[int, int], torch.Tensor] | None = None

    def subset(self, max_train: int | None = None, max_valid: int | None = None,
               seed: int = 0) -> ColourData:
        """A seeded random subset of at most ``max_train`` / ``max_valid`` images."""
        g = torch.Generator().manual_seed(seed)

        def pick(x: torch.Tensor, n: int | None) -> torch.Tensor:
            if n is None or n >= len(x):
                return x
            idx = torch.randperm(len(x), generator=g)[:n].sort().values
            return x[idx]

        return replace(self, train=pick(self.train, max_train), valid=pick(self.valid, max_valid))


def to_grey(rgb: torch.Tensor) -> torch.Tensor:
    """Grey = mean of R, G, B (the course's definition). ``(N, 3, H, W) -> (N, 1, H, W)``."""
    return rgb.mean(dim=1, keepdim=True)


def _to_float(image: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 -> ``(3, H, W)`` float32 = uint8 / 256."""
    return torch.from_numpy(np.array(image[..., :3], dtype=np.uint8)).permute(2, 0, 1).float() / 256.0


def patches(image: torch.Tensor, size: int = 32, scales: Sequence[int] = (1, 2),
            stride: int | None = None) -> torch.Tensor:
    """``size``×``size`` patches of ``image`` every ``stride`` pixels at each downscale factor.

    A factor s averages s×s blocks first (area downscaling); ``stride`` defaults to ``size``
    (non-overlapping). ``(3, H, W) -> (P, 3, size, size)``, row by row, scale by scale.
    """
    stride = size if stride is None else stride
    out = []
    for s in scales:
        img = F.avg_pool2d(image[None], s)[0] if s > 1 else image  # (3, H, W) -> (3, H/s, W/s)
        c, h, w = img.shape
        if h < size or w < size:
            continue
        # (3, H, W) -> (3, nh, nw, size, size) -> (nh·nw, 3, size, size)
        cut = img.unfold(1, size, stride).unfold(2, size, stride)
        out.append(cut.permute(1, 2, 0, 3, 4).reshape(-1, c, size, size))
    if not out:
        return torch.empty(0, 3, size, size)
    return torch.cat(out)


def _matplotlib_sample(name: str) -> np.ndarray:
    import matplotlib.cbook

    with matplotlib.cbook.get_sample_data(name) as f:
        from PIL import Image

        with Image.open(f) as im:
            return np.asarray(im.convert("RGB"))


def _builtin_loaders() -> dict[str, Callable[[], np.ndarray]]:
    import skimage.data as sk
    from sklearn.datasets import load_sample_image

    return {
        "astronaut": sk.astronaut, "coffee": sk.coffee, "rocket": sk.rocket,
        "chelsea": sk.chelsea, "motorcycle": lambda: sk.stereo_motorcycle()[0],
        "hubble_deep_field": sk.hubble_deep_field, "immunohistochemistry": sk.immunohistochemistry,
        "retina": sk.retina,
        "china": lambda: load_sample_image("china.jpg"),
        "flower": lambda: load_sample_image("flower.jpg"),
        "grace_hopper": lambda: _matplotlib_sample("grace_hopper.jpg"),
    }


def builtin_photographs(names: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """The built-in photographs as ``(3, H, W)`` float32 tensors, by name (offline)."""
    loaders = _builtin_loaders()
    names = list(names) if names is not None else list(loaders)
    out = {}
    for name in names:
        if name not in loaders:
            raise ArgumentError("photograph", name, "one of: " + ", ".join(loaders))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                image = np.asarray(loaders[name]())
        except Exception as e:  # a broken scikit-image install must be a clear message
            raise DataError(f"builtin photograph {name!r} could not be loaded ({type(e).__name__}: "
                            f"{e}); reinstall scikit-image / scikit-learn") from None
        out[name] = _to_float(image)
    return out


_PHOTOS: dict[str, torch.Tensor] = {}


def _photo(name: str) -> torch.Tensor:
    """A built-in photograph, decoded once per process (they are read-only afterwards)."""
    if name not in _PHOTOS:
        _PHOTOS[name] = builtin_photographs([name])[name]
    return _PHOTOS[name]


def random_crops(images: Sequence[torch.Tensor], num_crops: int, size: int, *, seed: int,
                 scales: Sequence[int] = BUILTIN_CROP_SCALES) -> torch.Tensor:
    """``num_crops`` random ``size``×``size`` crops: ``(num_crops, 3, size, size)``.

    Each crop draws an image uniformly, a downscale factor s uniformly from ``scales`` (s×s
    area averaging), a position uniformly among those that fit, and a horizontal flip with
    probability 1/2, all from a generator seeded with ``seed``.
    """
    g = torch.Generator().manual_seed(seed)
    pyramid = [[F.avg_pool2d(img[None], s)[0] if s > 1 else img for s in scales] for img in images]
    out = torch.empty(num_crops, 3, size, size)
    which = torch.randint(len(images), (num_crops,), generator=g)
    level = torch.randint(len(scales), (num_crops,), generator=g)
    u = torch.rand(num_crops, 3, generator=g, dtype=torch.float64)
    for i in range(num_crops):
        img = pyramid[int(which[i])][int(level[i])]
        h, w = img.shape[-2:]
        if h < size or w < size:
            img = _fit(img, size)
            h, w = img.shape[-2:]
        top, left = int(u[i, 0] * (h - size + 1)), int(u[i, 1] * (w - size + 1))
        crop = img[:, top: top + size, left: left + size]  # (3, size, size)
        out[i] = crop.flip(-1) if u[i, 2] < 0.5 else crop
    return out


def _builtin(size: int, scales: Sequence[int], stride: int | None, seed: int,
             num_crops: int, crop_scales: Sequence[int] = BUILTIN_CROP_SCALES,
             valid_photos: Sequence[str] = BUILTIN_VALID) -> ColourData:
    every = BUILTIN_TRAIN + BUILTIN_VALID
    held = tuple(dict.fromkeys([valid_photos] if isinstance(valid_photos, str) else valid_photos))
    unknown = [n for n in held if n not in every]
    if unknown or not held or len(held) == len(every):
        raise ArgumentError("valid_photos", ",".join(held) or "(none)",
                            "one or more, not all, of: " + ", ".join(every))
    train_names = tuple(n for n in every if n not in held)
    train_photos = [_photo(n) for n in train_names]
    train = random_crops(train_photos, num_crops, size, seed=seed, scales=crop_scales)
    valid = torch.cat([patches(_photo(n), size, scales, stride) for n in held])

    def resample(epoch: int, n: int) -> torch.Tensor:
        return random_crops(train_photos, n, size, seed=derive_seed(seed, "builtin-epoch", epoch),
                            scales=crop_scales)

    return ColourData(train, valid, "builtin", train_names, held, resample)


# --------------------------------------------------------------------------- CIFAR-10


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as Python 3 writes bytes into protocol-2 pickles; latin-1 only."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise DataError(f"pickle asks to encode with {encoding!r}; only latin-1 is admitted")
    return text.encode("latin1")


def _numpy_globals() -> dict[tuple[str, str], Any]:
    try:
        from numpy._core.multiarray import _reconstruct
        from numpy._core.numeric import _frombuffer
    except ImportError:  # NumPy < 2
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
        from numpy.core.numeric import _frombuffer  # type: ignore[no-redef]
    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
                                           ("_codecs", "encode"): _latin1_encode}
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = _reconstruct
        allowed[(f"{core}.numeric", "_frombuffer")] = _frombuffer
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals NumPy needs to rebuild an array.

    ``find_class`` is the only way a pickle reaches code; anything outside the allow-list
    (``os.system``, ``builtins.eval``, ...) raises :class:`DataError` before it is called.
    """

    _allowed: dict[tuple[str, str], Any] | None = None

    def find_class(self, module: str, name: str) -> Any:
        if RestrictedUnpickler._allowed is None:
            RestrictedUnpickler._allowed = _numpy_globals()
        try:
            return RestrictedUnpickler._allowed[(module, name)]
        except KeyError:
            raise DataError(f"refusing to unpickle {module}.{name}: only NumPy arrays are "
                            "admitted (is this a genuine CIFAR-10 file?)") from None


def _unpickle(raw: bytes, what: str) -> Any:
    try:
        return RestrictedUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except DataError as e:
        raise DataError(f"{what}: {e}") from None
    except Exception as e:
        raise DataError(f"{what} is not a readable CIFAR-10 pickle ({type(e).__name__}: {e})") from None


_CIFAR_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)


def _read_cifar_members(path: Path) -> dict[str, bytes]:
    """Raw bytes of the six batch files, from a .tar.gz or a folder."""
    found: dict[str, bytes] = {}
    if path.is_dir():
        for base in (path, path / "cifar-10-batches-py"):
            for name in _CIFAR_FILES:
                f = base / name
                if name not in found and f.is_file():
                    if f.stat().st_size > _MAX_MEMBER_BYTES:
                        raise DataError(f"{f} is larger than a CIFAR-10 batch ({f.stat().st_size} bytes)")
                    found[name] = f.read_bytes()
    elif path.is_file():
        try:
            with tarfile.open(path, "r:*") as tar:
                for member in tar:
                    base = member.name.rsplit("/", 1)[-1]
                    if base in _CIFAR_FILES and member.isfile() and base not in found:
                        if member.size > _MAX_MEMBER_BYTES:
                            raise DataError(f"{path}: member {member.name} is larger than a "
                                            f"CIFAR-10 batch ({member.size} bytes)")
                        fobj = tar.extractfile(member)
                        if fobj is not None:
                            found[base] = fobj.read()
        except (tarfile.TarError, OSError, EOFError) as e:
            raise DataError(f"cifar10:{path} is not a readable tar archive ({e})") from None
    else:
        raise ArgumentError("--data", f"cifar10:{path}", "an existing cifar-10-python.tar.gz or "
                            "its extracted folder")
    missing = [n for n in _CIFAR_FILES if n not in found]
    if missing:
        raise DataError(f"cifar10:{path} lacks {', '.join(missing)} (expected data_batch_1..5 "
                        "and test_batch of cifar-10-python)")
    return found


def _cifar_batch(raw: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle(raw, name)
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DataError(f"{name}: expected a dict with b'data' and b'labels'")
    data, labels = batch[b"data"], batch[b"labels"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"{name}: b'data' must be a uint8 array of shape (n, 3072), got "
                        f"{getattr(data, 'dtype', type(data).__name__)} {getattr(data, 'shape', '')}")
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError):
        raise DataError(f"{name}: b'labels' must be a list of integers") from None
    if labels.shape != (data.shape[0],) or (labels.size and (labels.min() < 0 or labels.max() > 9)):
        raise DataError(f"{name}: b'labels' must hold {data.shape[0]} integers in 0..9")
    return data, labels


def _category_index(category: int | str) -> int:
    if isinstance(category, str) and category.isdigit():
        category = int(category)
    if isinstance(category, int) and not isinstance(category, bool) and 0 <= category <= 9:
        return category
    if isinstance(category, str) and category in CIFAR10_CATEGORIES:
        return CIFAR10_CATEGORIES.index(category)
    raise ArgumentError("--category", category, "0..9 or one of: " + ", ".join(CIFAR10_CATEGORIES))


def load_cifar10(path: str | os.PathLike[str], category: int | str = "horse") -> ColourData:
    """One CIFAR-10 category: data_batch_1..5 for training, test_batch for validation."""
    index = _category_index(category)
    members = _read_cifar_members(Path(path))

    def select(names: Sequence[str]) -> torch.Tensor:
        parts = []
        for n in names:
            data, labels = _cifar_batch(members[n], n)
            parts.append(data[labels == index])
        flat = np.concatenate(parts)
        # (n, 3072) -> (n, 3, 32, 32): CIFAR stores the R plane, then G, then B, row-major.
        return torch.from_numpy(flat.reshape(-1, 3, 32, 32).copy()).float() / 256.0

    train, valid = select(_CIFAR_FILES[:5]), select(_CIFAR_FILES[5:])
    if len(train) == 0 or len(valid) == 0:
        raise DataError(f"cifar10:{path} has no images of category {CIFAR10_CATEGORIES[index]} "
                        f"({len(train)} training, {len(valid)} validation)")
    return ColourData(train, valid, f"cifar10:{CIFAR10_CATEGORIES[index]}")


# --------------------------------------------------------------------------- image files


def read_image(path: str | os.PathLike[str], *, max_pixels: int = MAX_IMAGE_PIXELS,
               argument: str = "IMAGE") -> torch.Tensor:
    """Decode an image file as ``(3, H, W)`` float32 RGB = uint8 / 256, refusing huge images.

    The size is checked from the header before any pixel is decoded.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise ArgumentError(argument, str(path), "an existing image file")
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise DataError(f"{path}: {w}×{h} = {w * h} pixels exceeds the limit of {max_pixels}")
            rgb = np.asarray(_as_rgb8(im, path))
    except (UnidentifiedImageError, Image.DecompressionBombError) as e:
        raise DataError(f"{path} is not a readable image ({e})") from None
    except OSError as e:
        raise DataError(f"{path} could not be decoded ({e})") from None
    return _to_float(rgb)


def _as_rgb8(im: Any, path: Path) -> Any:
    """An 8-bit RGB view of a decoded image. Pillow's ``convert("RGB")`` clips 16-bit grey
    (modes ``I;16*`` and ``I``, as 16-bit PNGs open) to 255 instead of scaling it: scale by 1/257."""
    from PIL import Image

    if im.mode.startswith("I;16") or im.mode == "I":
        values = np.asarray(im, dtype=np.int64)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise DataError(f"{path}: {im.mode} pixels outside 0..65535; save it as 8- or 16-bit")
        grey = np.round(values / 257).astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    if im.mode == "F":
        raise DataError(f"{path}: floating-point pixels (mode F); save it as 8- or 16-bit")
    return im.convert("RGB")


def _fit(image: torch.Tensor, size: int) -> torch.Tensor:
    """Resize up (bilinear, antialias-free) so the short side is at least ``size``."""
    h, w = image.shape[-2:]
    if min(h, w) >= size:
        return image
    scale = size / min(h, w)
    new = (max(size, round(h * scale)), max(size, round(w * scale)))
    return F.interpolate(image[None], size=new, mode="bilinear", align_corners=False)[0].clamp(0, 255 / 256)


def load_folder(path: str | os.PathLike[str], *, size: int = 32, scales: Sequence[int] = (1, 2),
                stride: int | None = None, valid_fraction: float = 0.2, seed: int = 0,
                max_pixels: int = MAX_IMAGE_PIXELS) -> ColourData:
    """Every image in a folder, split by image (a seeded shuffle) and cut into patches."""
    folder = Path(path)
    if not folder.is_dir():
        raise ArgumentError("--data", f"folder:{path}", "an existing folder of images")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if len(files) < 2:
        raise DataError(f"folder:{path} holds {len(files)} image(s) ({', '.join(IMAGE_SUFFIXES)}); "
                        "at least 2 are needed to split training from validation")
    order = torch.randperm(len(files), generator=torch.Generator().manual_seed(seed)).tolist()
    n_valid = min(len(files) - 1, max(1, round(valid_fraction * len(files))))
    valid_files = sorted(files[i] for i in order[:n_valid])
    train_files = sorted(files[i] for i in order[n_valid:])

    def cut(paths: list[Path], split: str) -> torch.Tensor:
        out = torch.cat([patches(_fit(read_image(p, max_pixels=max_pixels, argument="--data"), size),
                                 size, scales, stride) for p in paths])
        if len(out) == 0:
            raise ArgumentError("--patch-size", size, f"a size that fits in the {split} image(s) "
                                f"{', '.join(p.name for p in paths)} at a downscale factor of "
                                f"{', '.join(map(str, scales))}")
        return out

    return ColourData(cut(train_files, "training"), cut(valid_files, "validation"), f"folder:{folder}",
                      tuple(p.name for p in train_files), tuple(p.name for p in valid_files))


def load_data(spec: str = "builtin", *, category: int | str = "horse", size: int = 32,
              seed: int = 0, scales: Sequence[int] | None = None,
              stride: int | None = BUILTIN_STRIDE, num_crops: int = BUILTIN_NUM_CROPS,
              crop_scales: Sequence[int] = BUILTIN_CROP_SCALES,
              valid_photos: Sequence[str] = BUILTIN_VALID) -> ColourData:
    """Load the data a spec names: ``builtin``, ``cifar10:PATH`` or ``folder:PATH``.

    ``scales`` and ``stride`` say how photographs (builtin validation, folder) are cut into
    patches (default: :data:`BUILTIN_SCALES` for builtin, full and half resolution for a
    folder); ``num_crops`` is the number of random training crops of ``builtin`` (drawn with
    ``seed`` at the downscale factors ``crop_scales``). ``valid_photos``: the built-in
    photographs held out for validation (the others are trained on); the default is
    :data:`BUILTIN_VALID`, and ``benchmarks/colourize_holdout.py`` holds out each in turn.
    """
    kind, _, rest = spec.partition(":")
    if kind == "builtin" and not rest:
        if isinstance(num_crops, bool) or not isinstance(num_crops, int) or num_crops < 1:
            raise ArgumentError("--num-crops", num_crops, "an integer ≥ 1")
        return _builtin(size, BUILTIN_SCALES if scales is None else scales, stride, seed, num_crops,
                        crop_scales, valid_photos)
    if kind == "cifar10" and rest:
        return load_cifar10(rest, category)
    if kind == "folder" and rest:
        return load_folder(rest, size=size, seed=seed, scales=(1, 2) if scales is None else scales,
                           stride=stride)
    raise ArgumentError("--data", spec, "builtin, cifar10:PATH or folder:PATH")
