"""Does UNet beat the best colour per grey level on photographs it never saw? Each in turn.

Run: ``python benchmarks/colourize_holdout.py [--pairs 3] [--seed 0] [--scale full]``
(about 30 s of one core per photograph and 3 pairs at the full scale).

Issue 13 asks that, at the full scale, UNet beat the grey-level lookup (the most frequent
training colour of each grey level) on the held-out photographs by at least 3 accuracy
points. The claims hold out chelsea, flower and grace_hopper (:data:`BUILTIN_VALID`). So that a
verdict on that target does not hang on which photographs were held out, this holds out each
built-in photograph alone in turn (leave one photograph out), trains UNet on random crops of
the other ten with the claims' full-scale budget (:data:`trainlab.colourize.claims.PROTOCOL`:
NF 32, 500 steps of 50 fresh 16×16 crops, bf16, one thread) for ``--pairs`` seeds derived from
``--seed``, and prints, per photograph, UNet's and the lookup's validation accuracy and the 95%
t-interval of the paired difference (same crops, palette and validation pixels within a
pair), then the mean difference over photographs (each photograph weighted equally).
"""

from __future__ import annotations

import argparse
import statistics
import time

from trainlab.colourize.claims import PROTOCOL, pair_seeds
from trainlab.colourize.data import BUILTIN_TRAIN, BUILTIN_VALID, load_data
from trainlab.colourize.evaluate import baselines
from trainlab.colourize.paired import paired_difference, train_side_by_side
from trainlab.colourize.palette import fit_palette
from trainlab.threads import limit_threads


def holdout(photo: str, seeds: list[int], scale: str) -> tuple[list[float], list[float]]:
    """UNet's and the lookup's accuracy on ``photo`` for each seed, trained on the others."""
    p = PROTOCOL[scale]
    data = [load_data("builtin", size=p.patch_size, seed=s, num_crops=p.num_crops, scales=p.scales,
                      crop_scales=p.scales, valid_photos=[photo]) for s in seeds]
    palettes = [fit_palette(d.train, p.num_colours, seed=s, max_pixels=p.palette_pixels)
                for d, s in zip(data, seeds, strict=True)]
    with limit_threads(1):
        unet = train_side_by_side("unet", seeds, data, palettes, num_filters=p.num_filters,
                                  epochs=p.epochs, batch_size=p.batch_size, lr=p.lr,
                                  lr_schedule=p.lr_schedule, eval_epochs=[p.epochs],
                                  precision=p.precision, resample=p.resample)
    # every pair holds out the same photograph; each labels it with its own palette
    lookup = [baselines(d.train, pal.labels(d.train), d.valid, pal.labels(d.valid),
                        p.num_colours).grey_level_accuracy for d, pal in zip(data, palettes, strict=True)]
    return unet.final_accuracy, lookup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3, help="seeds per held-out photograph (≥ 2)")
    parser.add_argument("--seed", type=int, default=0, help="the user seed the pair seeds derive from")
    parser.add_argument("--scale", choices=sorted(PROTOCOL), default="full")
    parser.add_argument("--photos", default=",".join(BUILTIN_TRAIN + BUILTIN_VALID),
                        help="comma-separated photographs to hold out, one at a time")
    args = parser.parse_args()
    if args.pairs < 2:
        parser.error(f"--pairs {args.pairs}: need at least 2 for an interval")
    seeds = pair_seeds(args.seed, args.pairs)
    print(f"UNet vs grey-level lookup, each photograph held out alone; {args.scale} budget, "
          f"{args.pairs} pairs from seed {args.seed}; the claims hold out {', '.join(BUILTIN_VALID)}")
    print(f"{'held out':<22}{'UNet':>8}{'lookup':>8}{'UNet − lookup (95% interval)':>34}{'s':>6}")
    means = []
    for photo in args.photos.split(","):
        t0 = time.perf_counter()
        unet, lookup = holdout(photo, seeds, args.scale)
        d = paired_difference(unet, lookup)
        means.append(100 * d.mean)
        print(f"{photo:<22}{100 * statistics.mean(unet):>7.1f}%{100 * statistics.mean(lookup):>7.1f}%"
              f"{100 * d.mean:>+12.1f} [{100 * d.low:+6.1f}, {100 * d.high:+6.1f}]"
              f"{time.perf_counter() - t0:>12.0f}", flush=True)
    if len(means) > 1:
        over = paired_difference(means, [0.0] * len(means))
        print(f"mean over {len(means)} photographs: {over.mean:+.1f} points, 95% interval "
              f"[{over.low:+.1f}, {over.high:+.1f}] (target of issue 13: UNet ≥ lookup + 3)")


if __name__ == "__main__":
    main()
