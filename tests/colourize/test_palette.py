"""The k-means palette: as good as scikit-learn's, seeded, nearest-colour labels, plain .npy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans

from trainlab.colourize.palette import Palette, fit_palette, kmeans, nearest_colour
from trainlab.errors import DataError


def _blobs(seed=0, n=3000, k=6):
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(k, 3, generator=g)
    assign = torch.randint(k, (n,), generator=g)
    return (centres[assign] + 0.03 * torch.randn(n, 3, generator=g)).double()


def test_kmeans_inertia_matches_scikit_learn():
    x = _blobs()
    _, ours = kmeans(x, 6, seed=0)
    reference = min(KMeans(6, n_init=1, random_state=s).fit(x.numpy()).inertia_ for s in range(3)) / len(x)
    assert ours <= 1.05 * reference


def test_kmeans_centres_are_the_means_of_their_clusters():
    x = _blobs(1)
    centres, _ = kmeans(x, 6, seed=2)
    assign = nearest_colour(x, centres)
    for j in range(6):
        assert torch.allclose(centres[j].double(), x[assign == j].mean(0), atol=1e-5)


def test_same_seed_same_palette():
    rgb = torch.rand(4, 3, 16, 16)
    a, b = fit_palette(rgb, 8, seed=3), fit_palette(rgb, 8, seed=3)
    assert torch.equal(a.colours, b.colours) and a.num_colours == 8


def test_labels_are_the_nearest_colour_by_brute_force():
    palette = Palette(torch.rand(24, 3))
    rgb = torch.rand(2, 3, 5, 7)
    labels = palette.labels(rgb)
    assert labels.shape == (2, 5, 7)
    pixels = rgb.permute(0, 2, 3, 1)[..., None, :]  # (N, H, W, 1, 3)
    brute = ((pixels - palette.colours) ** 2).sum(-1).argmin(-1)
    assert torch.equal(labels, brute)
    assert torch.equal(palette.labels(palette.render(labels)), labels)


def test_palette_round_trips_as_a_plain_npy(tmp_path):
    palette = Palette(torch.rand(5, 3))
    path = palette.save(tmp_path / "palette.npy")
    assert np.load(path, allow_pickle=False).shape == (5, 3)
    assert torch.equal(Palette.load(path).colours, palette.colours)


@pytest.mark.parametrize("content", ["object", "shape", "garbage"])
def test_bad_palette_files_raise_data_error(tmp_path, content):
    path = tmp_path / "palette.npy"
    if content == "object":
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif content == "shape":
        np.save(path, np.zeros((4, 2)))
    else:
        path.write_bytes(b"nonsense")
    with pytest.raises(DataError):
        Palette.load(path)
