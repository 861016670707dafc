"""The colour palette: seeded k-means in RGB over training pixels, and nearest-colour labels.

The course turns colourization into classification over K = 24 colours found by k-means
on the training images' RGB values; a pixel's label is the index of its nearest palette
colour (squared Euclidean distance in RGB). Lloyd's algorithm (Lloyd 1982) from a
k-means++ start (Arthur & Vassilvitskii 2007), all randomness from an explicit seed.

The palette is saved as a plain ``(K, 3)`` float32 ``.npy`` (loaded with
``allow_pickle=False``), beside the model it labels.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from trainlab.errors import ArgumentError, DataError
from trainlab.runs import atomic_write_bytes

__all__ = ["Palette", "fit_palette", "kmeans", "nearest_colour"]


def _sq_dist(x: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Squared distances ``(P, 3), (K, 3) -> (P, K)``: ‖x‖² − 2x·c + ‖c‖²."""
    return ((x * x).sum(1, keepdim=True) - 2 * x @ centres.T + (centres * centres).sum(1)).clamp_min(0)


def nearest_colour(rgb: torch.Tensor, colours: torch.Tensor, chunk: int = 1 << 18) -> torch.Tensor:
    """Index of the nearest palette colour for every pixel.

    ``rgb``: ``(N, 3, H, W)`` (or ``(P, 3)``); returns ``(N, H, W)`` (or ``(P,)``) int64.
    """
    if rgb.ndim == 4:
        n, _, h, w = rgb.shape
        flat = rgb.permute(0, 2, 3, 1).reshape(-1, 3)  # (N, 3, H, W) -> (N·H·W, 3)
        return nearest_colour(flat, colours, chunk).reshape(n, h, w)
    colours = colours.to(torch.float64)
    # argmin_k ‖x − c_k‖² = argmin_k (‖c_k‖² − 2x·c_k): ‖x‖² is the same for every k
    c2 = (colours * colours).sum(1)
    out = torch.empty(rgb.shape[0], dtype=torch.int64)
    for i in range(0, rgb.shape[0], chunk):
        x = rgb[i: i + chunk].to(torch.float64)
        out[i: i + chunk] = torch.addmm(c2, x, colours.T, alpha=-2).argmin(1)
    return out


def kmeans(points: torch.Tensor, k: int, *, seed: int = 0, iterations: int = 300,
           tol: float = 1e-5) -> tuple[torch.Tensor, float]:
    """k-means of ``(P, D)`` points: centres ``(k, D)`` and the mean squared distance (inertia/P).

    k-means++ seeding, then Lloyd steps until the inertia improves by less than ``tol``
    (relative). An emptied cluster is moved to the point farthest from its centre.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ArgumentError("num_colours", k, "an integer ≥ 1")
    x = points.to(torch.float64)
    if x.shape[0] < k:
        raise DataError(f"k-means needs at least {k} pixels, got {x.shape[0]}")
    g = torch.Generator().manual_seed(seed)
    centres = x[torch.randint(x.shape[0], (1,), generator=g)]
    d2 = _sq_dist(x, centres).squeeze(1)
    for _ in range(1, k):  # k-means++: next centre drawn with probability ∝ D(x)²
        weights = d2 if float(d2.sum()) > 0 else torch.ones_like(d2)
        nxt = x[torch.multinomial(weights, 1, generator=g)]
        centres = torch.cat([centres, nxt])
        d2 = torch.minimum(d2, _sq_dist(x, nxt).squeeze(1))
    previous = float("inf")
    for _ in range(iterations):
        dist = _sq_dist(x, centres)
        d2, assign = dist.min(1)
        inertia = float(d2.mean())
        sums = torch.zeros_like(centres).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k).to(x.dtype)
        empty = counts == 0
        centres = torch.where(empty[:, None], centres, sums / counts.clamp_min(1)[:, None])
        for j in torch.nonzero(empty).flatten().tolist():
            far = int(d2.argmax())
            centres[j] = x[far]
            d2[far] = 0
        if math.isfinite(previous) and previous - inertia <= tol * previous:
            break
        previous = inertia
    d2 = _sq_dist(x, centres).min(1).values
    return centres.to(torch.float32), float(d2.mean())


@dataclass(frozen=True)
class Palette:
    """``colours``: ``(K, 3)`` float32 RGB in [0, 1); a pixel's label is its nearest colour."""

    colours: torch.Tensor

    @property
    def num_colours(self) -> int:
        return int(self.colours.shape[0])

    def labels(self, rgb: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W) -> (N, H, W)`` nearest-colour indices."""
        return nearest_colour(rgb, self.colours)

    def render(self, labels: torch.Tensor) -> torch.Tensor:
        """Colour image of class indices: ``(N, H, W) -> (N, 3, H, W)``."""
        return self.colours[labels].permute(0, 3, 1, 2)  # (N, H, W, 3) -> (N, 3, H, W)

    def save(self, path: str | os.PathLike[str]) -> Path:
        buf = io.BytesIO()
        np.save(buf, self.colours.numpy().astype(np.float32), allow_pickle=False)
        return atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Palette:
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise DataError(f"{path} is not a palette .npy file ({e})") from None
        if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] < 2 or not np.isfinite(arr).all():
            raise DataError(f"{path}: a palette must be a finite (K, 3) array with K ≥ 2, got {arr.shape}")
        return cls(torch.from_numpy(arr.astype(np.float32)))


def fit_palette(rgb: torch.Tensor, num_colours: int = 24, *, seed: int = 0,
                max_pixels: int = 50_000) -> Palette:
    """k-means palette of ``(N, 3, H, W)`` training images over a seeded sample of pixels."""
    flat = rgb.permute(0, 2, 3, 1).reshape(-1, 3)  # (N, 3, H, W) -> (N·H·W, 3)
    g = torch.Generator().manual_seed(seed)
    if flat.shape[0] > max_pixels:
        flat = flat[torch.randperm(flat.shape[0], generator=g)[:max_pixels]]
    centres, _ = kmeans(flat, num_colours, seed=seed + 1)
    # Sort by brightness so the palette (and its labels) read naturally in figures.
    order = centres.sum(1).argsort()
    return Palette(centres[order].contiguous())
