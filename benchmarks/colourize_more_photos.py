"""Do more photographs make the networks beat the best colour per grey level? Measure it.

Run: ``python benchmarks/colourize_more_photos.py FOLDER [--valid 10] [--pairs 3] [--split 0]``
(about 1 minute of one core per network and 3 pairs at the full scale).

Issue 20 asks that each network beat the grey-level lookup (the most frequent training colour
of each grey level) on held-out photographs. On the 11 built-in photographs it does not
(``benchmarks/colourize_holdout.py``: UNet − lookup −0.0 points on average). No package on
PyPI ships more than a few dozen colour photographs, so this takes a FOLDER of the user's
(for instance the photographs of Debian's wallpaper packages), adds them to the built-in
ones, holds out ``--valid`` whole photographs (a seeded draw, ``--split``), and trains the
three networks on random crops of the others with the claims' full-scale budget
(:data:`trainlab.colourize.claims.PROTOCOL`) for ``--pairs`` seeds. It prints, per network, the
validation accuracy, the lookup's, and the 95% t-interval of the paired difference.

Each photograph of FOLDER is first shrunk (antialiased) so that its long side is at most
``--max-side`` pixels (512: the size of the built-in photographs), so that the claims' downscale
factors mean the same on every photograph.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from trainlab.colourize.claims import PROTOCOL, pair_seeds
from trainlab.colourize.data import (
    IMAGE_SUFFIXES,
    ColourData,
    builtin_photographs,
    patches,
    random_crops,
    read_image,
)
from trainlab.colourize.evaluate import baselines
from trainlab.colourize.paired import paired_difference, train_side_by_side
from trainlab.colourize.palette import fit_palette
from trainlab.seeding import derive_seed
from trainlab.threads import limit_threads


def shrink(image: torch.Tensor, max_side: int) -> torch.Tensor:
    """``(3, H, W)`` shrunk so that max(H, W) ≤ ``max_side`` (antialiased bilinear)."""
    h, w = image.shape[-2:]
    if max(h, w) <= max_side:
        return image
    size = (max(1, round(h * max_side / max(h, w))), max(1, round(w * max_side / max(h, w))))
    return F.interpolate(image[None], size=size, mode="bilinear", antialias=True,
                         align_corners=False)[0].clamp(0, 255 / 256)


def photographs(folder: Path, max_side: int, builtin: bool = True) -> dict[str, torch.Tensor]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    photos = {p.stem: shrink(read_image(p, argument="FOLDER"), max_side) for p in files}
    if builtin:
        photos.update(builtin_photographs())
    return photos


def compare(photos: dict[str, torch.Tensor], num_valid: int, split: int, seeds: list[int],
            scale: str = "full", models: tuple[str, ...] = ("pool", "transpose", "unet")
            ) -> dict[str, tuple[list[float], list[float]]]:
    """Each model's and the lookup's validation accuracy per seed on ``num_valid`` held-out photos."""
    p = PROTOCOL[scale]
    names = sorted(photos)
    if not 0 < num_valid < len(names):
        raise SystemExit(f"--valid {num_valid}: need between 1 and {len(names) - 1} of "
                         f"{len(names)} photographs")
    order = torch.randperm(len(names), generator=torch.Generator().manual_seed(split)).tolist()
    held, kept = [names[i] for i in order[:num_valid]], [names[i] for i in order[num_valid:]]
    train_photos = [photos[n] for n in kept]
    valid = torch.cat([patches(photos[n], p.patch_size, p.scales) for n in held])
    print(f"held out: {', '.join(held)} ({len(valid)} patches); trained on {len(kept)} photographs")
    data = []
    for s in seeds:
        def resample(epoch: int, n: int, s: int = s) -> torch.Tensor:
            return random_crops(train_photos, n, p.patch_size, seed=derive_seed(s, "more-photos", epoch),
                                scales=p.scales)
        data.append(ColourData(random_crops(train_photos, p.num_crops, p.patch_size, seed=s, scales=p.scales),
                               valid, "more-photos", tuple(kept), tuple(held), resample))
    palettes = [fit_palette(d.train, p.num_colours, seed=s, max_pixels=p.palette_pixels)
                for d, s in zip(data, seeds, strict=True)]
    lookup = [baselines(d.train, pal.labels(d.train), valid, pal.labels(valid),
                        p.num_colours).grey_level_accuracy for d, pal in zip(data, palettes, strict=True)]
    out = {}
    with limit_threads(1):
        for m in models:
            run = train_side_by_side(m, seeds, data, palettes, num_filters=p.num_filters, epochs=p.epochs,
                                     batch_size=p.batch_size, lr=p.lr, lr_schedule=p.lr_schedule,
                                     eval_epochs=[p.epochs], precision=p.precision, resample=p.resample)
            out[m] = (run.final_accuracy, lookup)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a folder of colour photographs")
    parser.add_argument("--valid", type=int, default=10, help="photographs held out")
    parser.add_argument("--pairs", type=int, default=3, help="seeds (≥ 2)")
    parser.add_argument("--seed", type=int, default=0, help="the user seed the pair seeds derive from")
    parser.add_argument("--split", type=int, default=0, help="seed of the draw of held-out photographs")
    parser.add_argument("--max-side", type=int, default=512)
    parser.add_argument("--scale", choices=sorted(PROTOCOL), default="full")
    args = parser.parse_args()
    if args.pairs < 2:
        parser.error(f"--pairs {args.pairs}: need at least 2 for an interval")
    if not args.folder.is_dir():
        parser.error(f"FOLDER {args.folder}: not a folder")
    t = time.perf_counter()
    photos = photographs(args.folder, args.max_side)
    results = compare(photos, args.valid, args.split, pair_seeds(args.seed, args.pairs), args.scale)
    for m, (acc, lookup) in results.items():
        d = paired_difference(acc, lookup)
        print(f"{m:10s} {100 * sum(acc) / len(acc):5.1f}%  "
              f"lookup {100 * sum(lookup) / len(lookup):5.1f}%  "
              f"net − lookup {100 * d.mean:+.2f} points, "
              f"95% interval [{100 * d.low:+.2f}, {100 * d.high:+.2f}]")
    print(f"{time.perf_counter() - t:.0f} s")


if __name__ == "__main__":
    main()
