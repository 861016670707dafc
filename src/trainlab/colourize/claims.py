"""Claims of CLAIMS.md §5 (colourization, the programming assignment).

The two comparison claims are *paired* comparisons over several seeds
(:mod:`trainlab.colourize.paired`): from the user's seed, S seeds are derived; for each,
both networks get the same random crops of the built-in photographs, the same palette, the
same order of mini-batches and the same initialisation seed. A claim passes only when the
95% Student-t interval of the paired difference in validation accuracy lies on the
predicted side of zero, and so does the interval of the paired difference in validation
loss. The S networks of one kind train side by side in one grouped network, and each
(scale, seed, network) is trained once per process, shared by both claims (ConvTransposeNet
is in both).

The protocol (:data:`PROTOCOL`). History. A first protocol (NF 16; quick 10 pairs × 200 steps
of 20 fixed 12×12 crops at ½, ⅓, ¼ resolution; full 8 × 600 steps of 16×16 at ⅓, ¼, ⅙, float32)
passed skip-connections-help for every held-out seed but transpose-beats-pool for 9 of 10 at
the full scale (user seeds 300–309; 302: +1.13 [−0.15, +2.41]). Redesigned on user seeds 0,
1, 2 (4–6 pairs each), ConvTransposeNet − PoolUpsampleNet accuracy points at seed 0: NF 16,
20 fixed crops a step, 600 steps +3.3 [+2.0, +4.7]; NF 32 (the course's width), 50 fresh
crops a step (new random crops every epoch), 200 steps +2.0 [+0.8, +3.2] (seed 1: +2.1
[−0.2, +4.5]), 400 steps +5.3 [+1.9, +8.7] (seed 1), 800 steps +8.8 [+7.5, +10.0] with UNet −
ConvTransposeNet +2.2 [+1.5, +2.9]: PoolUpsampleNet stays near 41%, as in the course, while
learned upsampling keeps improving. bfloat16 autocast halves the CPU time (AMX / AVX-512 BF16)
and trains as well (the quick scale's verdicts and intervals moved by at most 0.4 points at seed 0).
So the full scale became 5 pairs × 800 steps of 50 fresh 16×16 crops, NF 32, bf16; the quick
scale keeps the first quick protocol, in bf16, with one validation.

Held-out check, user seeds 400–409 (used for neither design; slow tests
``test_*_scale_verdicts_on_seeds_not_used_in_design``). Quick: skip-connections-help passed
10 of 10 (+1.7 to +3.7 points, lower ends +0.10 (seed 405) to +2.0); transpose-beats-pool
failed 10 of 10 with its loss interval below 0 every time and its accuracy interval containing 0
(400, 404, 405, 406) or below it (the other 6; down to −6.1 [−7.7, −4.5]): after 200 steps
PoolUpsampleNet is not behind in accuracy, and the claim says so and points to the full scale.
With 8 or 6 of the 10 pairs (faster) skip-connections-help would have failed for 1 or 3 of
these seeds, so the quick scale keeps 10 pairs: 28.7 s (19.4 + 9.3) in the README's main job
on a quiet 2-core machine, 35–45 s with the other core busy. Unchanged since, it was checked
again on user seeds 420–429: skip-connections-help passed 10 of 10 (+1.1 to +2.8 points, lower
ends +0.25 to +1.7), transpose-beats-pool failed 10 of 10 as above. Full (5 pairs × 800 steps):
transpose-beats-pool passed 10 of 10 (+5.4 to +11.4 points, lower ends +3.5 to +8.6; loss
intervals below 0 every time); skip-connections-help passed 8 of 10 (+1.2 to +2.7 points),
not resolved at 405 (+0.71 [−1.27, +2.68]) and 409 (+1.16 [−0.32, +2.65]): with 5 pairs one
pair that ends an epoch low widens the interval past 0. The three networks took 237–283 s
of one core per user seed (the other core busy).
Since 400–409 had now informed the design, the full scale was changed to what they pointed to,
more pairs at the same cost: **8 pairs × 500 steps** (5 epochs of 5,000 fresh crops), and
checked again on user seeds 410–419, used for nothing before: transpose-beats-pool passed 10
of 10 (+3.3 to +7.7 points, lower ends +1.9 to +6.2), skip-connections-help passed 10 of 10
(+1.2 to +2.6 points, lower ends +0.39 to +2.2), loss intervals below 0 every time; 247–269 s
of one core per user seed with the other core busy (under the 5 minutes aimed at).
The networks do not reliably beat the best colour per grey level on the held-out photographs
(the claims record the better network − lookup interval): UNet − lookup (means) ranged from
−7.8 to +8.7 points over seeds 400–409 and −8.3 to +4.5 over 410–419 (8 pairs × 500 steps),
below 0 for 8 of 10 each time; the lookup's accuracy follows the k-means palette (41.7–55.2%)
much more than UNet's does (45.0–51.5%). Nor does it depend on which photographs are held out:
holding out each of the 11 alone in turn (``benchmarks/colourize_holdout.py``, UNet trained on
the other ten at the full budget, 3 pairs from seed 0), UNet − lookup ran from −11.6 points
(astronaut) to +16.0 (chelsea), −0.0 on average over the photographs (95% interval [−6.0,
+5.9]).

The verdicts report what was measured, whatever it is.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from trainlab.claims import Context, claim
from trainlab.colourize.data import ColourData, load_data
from trainlab.colourize.evaluate import Baselines, baselines, image_grid, predict_labels
from trainlab.colourize.models import MODELS, build_model, up_padding
from trainlab.colourize.paired import PairedDifference, SideBySide, paired_difference, train_side_by_side
from trainlab.colourize.palette import Palette, fit_palette
from trainlab.plotting import new_figure
from trainlab.seeding import derive_seed
from trainlab.shapes import conv_transpose_output_size, solve_padding
from trainlab.threads import limit_threads

__all__ = ["PROTOCOL", "Protocol", "pair_seeds", "protocol"]

SECTION = "§5 Colourization"
_NAMES = {"pool": "PoolUpsampleNet", "transpose": "ConvTransposeNet", "unet": "UNet"}
#: What the course reports on CIFAR-10 horses (validation accuracy, low and high of its runs).
COURSE_CIFAR10_HORSES = {"PoolUpsampleNet": [0.411, 0.414], "ConvTransposeNet": [0.547, 0.555],
                         "UNet": [0.583, 0.589]}


@dataclass(frozen=True)
class Protocol:
    """The shared budget of the comparison claims at one scale (same for every network)."""

    num_seeds: int
    num_filters: int
    epochs: int
    batch_size: int
    num_crops: int
    patch_size: int = 16
    scales: tuple[int, ...] = (3, 4, 6)  # downscale factors of training crops and held-out patches
    lr: float = 5e-3
    lr_schedule: str = "cosine"
    num_colours: int = 24
    palette_pixels: int = 10_000
    confidence: float = 0.95
    num_evals: int = 2  # validation points per run for the figure (the last epoch always)
    resample: bool = False  # fresh random crops every epoch (as ``colourize train`` on builtin)
    precision: str = "fp32"  # "bf16": bfloat16 autocast of the forward pass (the loss in float32)


#: Scale -> budget. quick: 10 seeds × 200 steps of 20 random 12×12 crops at ½, ⅓, ¼ of the
#: photographs' resolution (NF 16); full: 8 seeds × 500 steps of 50 fresh 16×16 crops at ⅓,
#: ¼, ⅙ (NF 32, the course's width), bfloat16 autocast.
PROTOCOL: dict[str, Protocol] = {
    "quick": Protocol(num_seeds=10, num_filters=16, epochs=5, batch_size=20, num_crops=800, patch_size=12,
                      scales=(2, 3, 4), precision="bf16", num_evals=1),
    "full": Protocol(num_seeds=8, num_filters=32, epochs=5, batch_size=50, num_crops=5_000, num_evals=5,
                     resample=True, precision="bf16"),
}

_DATA: dict[tuple[str, int, int], tuple[ColourData, Palette, Baselines]] = {}
_VALID_LABELS: dict[tuple[str, int], torch.Tensor] = {}
_TRAINED: dict[tuple[str, tuple[int, ...], str], SideBySide] = {}


def protocol(scale: str) -> Protocol:
    return PROTOCOL[scale]


def pair_seeds(seed: int, num_seeds: int) -> list[int]:
    """The S seeds of the pairs, derived from the user's seed (the same for both claims)."""
    return [derive_seed(seed, "colourize.pairs", i) % 2**31 for i in range(num_seeds)]


def _data(scale: str, seed: int, palette_seed: int) -> tuple[ColourData, Palette, Baselines]:
    """One pair seed's training crops, the palette, and the context-free baselines (cached).

    The palette is one per user seed (k-means of the first pair's crops, seeded by it): a
    pair shares it, and fitting it once keeps the quick scale quick.
    """
    key = (scale, seed, palette_seed)
    if key not in _DATA:
        p = PROTOCOL[scale]
        data = load_data("builtin", size=p.patch_size, seed=seed, num_crops=p.num_crops,
                         scales=p.scales, crop_scales=p.scales)
        if seed == palette_seed:
            palette = fit_palette(data.train, p.num_colours, seed=seed, max_pixels=p.palette_pixels)
        else:
            palette = _data(scale, palette_seed, palette_seed)[1]
        if seed == palette_seed:
            _VALID_LABELS[(scale, seed)] = palette.labels(data.valid)
        base = baselines(data.train, palette.labels(data.train), data.valid,
                         _VALID_LABELS[(scale, palette_seed)], p.num_colours)
        _DATA[key] = (data, palette, base)
    return _DATA[key]


def _trained(ctx: Context, model: str) -> SideBySide:
    """``model`` trained for every pair seed, side by side (cached per scale and seeds)."""
    p = PROTOCOL[ctx.scale]
    seeds = pair_seeds(ctx.seed, p.num_seeds)
    key = (ctx.scale, tuple(seeds), model)
    if key not in _TRAINED:
        prepared = [_data(ctx.scale, s, seeds[0]) for s in seeds]
        evals = sorted({max(1, round(p.epochs * (i + 1) / p.num_evals)) for i in range(p.num_evals)})
        ctx.progress(f"training {p.num_seeds} × {_NAMES[model]} side by side ({p.epochs} epochs)")
        # One thread: small grouped convolutions gain little from a second one on a quiet
        # machine and lose much on a busy one, and the numbers do not depend on the core count.
        with limit_threads(1):
            _TRAINED[key] = train_side_by_side(
                model, seeds, [d for d, _, _ in prepared], [pal for _, pal, _ in prepared],
                num_filters=p.num_filters, epochs=p.epochs, batch_size=p.batch_size, lr=p.lr,
                lr_schedule=p.lr_schedule, eval_epochs=evals, precision=p.precision,
                resample=p.resample, progress=ctx.progress)
    return _TRAINED[key]


def _figures(ctx: Context, worse: SideBySide, better: SideBySide, acc: PairedDifference,
             base: list[Baselines]) -> None:
    """Accuracy per epoch (mean and range over seeds), the paired differences, sample grids."""
    fig, axes = new_figure(1, 2, size=(10, 3.6))
    worse.plot(axes[0], label=_NAMES[worse.model])
    better.plot(axes[0], label=_NAMES[better.model])
    grey = 100 * sum(b.grey_level_accuracy for b in base) / len(base)
    axes[0].axhline(grey, color="#888", ls="--", label="best colour per grey level (mean)")
    axes[0].legend(fontsize=7)
    d = [100 * x for x in acc.differences]
    axes[1].plot(range(1, len(d) + 1), d, "o", label="paired difference, one seed each")
    axes[1].axhspan(100 * acc.low, 100 * acc.high, color="C1", alpha=0.25,
                    label=f"{100 * acc.confidence:.0f}% interval of the mean")
    axes[1].axhline(100 * acc.mean, color="C1")
    axes[1].axhline(0, color="k", lw=0.8)
    axes[1].set_xlabel("pair (seed)")
    axes[1].set_ylabel(f"{_NAMES[better.model]} − {_NAMES[worse.model]} (accuracy points)")
    axes[1].xaxis.get_major_locator().set_params(integer=True)
    axes[1].legend(fontsize=7)
    ctx.save_figure(fig, f"{better.model}-vs-{worse.model}", {
        "seeds": better.seeds, "epochs": better.epochs,
        f"{_NAMES[worse.model]}_valid_accuracy": worse.valid_accuracy,
        f"{_NAMES[better.model]}_valid_accuracy": better.valid_accuracy,
        f"{_NAMES[worse.model]}_valid_loss": worse.valid_loss,
        f"{_NAMES[better.model]}_valid_loss": better.valid_loss,
        "accuracy_differences": acc.differences, "interval": [acc.low, acc.high],
        "grey_level_accuracy": [b.grey_level_accuracy for b in base]})
    data, palette, _ = _data(ctx.scale, better.seeds[0], better.seeds[0])
    idx = torch.linspace(0, len(data.valid) - 1, 8).long()
    rgb = data.valid[idx]
    for r in (worse, better):
        predicted = predict_labels(r.network(0), rgb.mean(1, keepdim=True))
        truth = palette.labels(rgb)
        fig = image_grid(rgb, palette.render(truth), palette.render(predicted),
                         title=f"{_NAMES[r.model]} on held-out patches (seed {r.seeds[0]})")
        ctx.save_figure(fig, f"{better.model}-vs-{worse.model}-{r.model}-samples",
                        {"rgb": rgb, "truth_labels": truth, "predicted_labels": predicted,
                         "palette": palette.colours})


def _compare(ctx: Context, worse_name: str, better_name: str) -> str:
    p = PROTOCOL[ctx.scale]
    worse, better = _trained(ctx, worse_name), _trained(ctx, better_name)
    base = [_data(ctx.scale, s, better.seeds[0])[2] for s in better.seeds]
    acc = paired_difference(better.final_accuracy, worse.final_accuracy, p.confidence)
    loss = paired_difference(better.final_loss, worse.final_loss, p.confidence)
    c = ctx.checks
    c.record("seeds", better.seeds)
    c.record("steps", better.steps)
    c.record("accuracy_gain", 100 * acc.mean)
    c.record("accuracy_interval", [100 * acc.low, 100 * acc.high])
    c.at_least("accuracy_gain_low", 100 * acc.low, 0.0, strict=True)
    c.record("loss_change", loss.mean)
    c.record("loss_interval", [loss.low, loss.high])
    c.at_most("loss_change_high", loss.high, 0.0, strict=True)
    c.record(f"{_NAMES[worse_name]}_accuracy", 100 * sum(worse.final_accuracy) / p.num_seeds)
    c.record(f"{_NAMES[better_name]}_accuracy", 100 * sum(better.final_accuracy) / p.num_seeds)
    c.record(f"{_NAMES[worse_name]}_accuracy_per_seed", worse.final_accuracy)
    c.record(f"{_NAMES[better_name]}_accuracy_per_seed", better.final_accuracy)
    c.record(f"{_NAMES[worse_name]}_loss_per_seed", worse.final_loss)
    c.record(f"{_NAMES[better_name]}_loss_per_seed", better.final_loss)
    c.record("grey_level_accuracy", 100 * sum(b.grey_level_accuracy for b in base) / len(base))
    # the better network against the best colour per grey level (context-free), paired by seed
    vs_grey = paired_difference(better.final_accuracy, [b.grey_level_accuracy for b in base], p.confidence)
    c.record(f"{_NAMES[better_name]}_minus_grey_level", 100 * vs_grey.mean)
    c.record(f"{_NAMES[better_name]}_minus_grey_level_interval", [100 * vs_grey.low, 100 * vs_grey.high])
    num_valid = len(_data(ctx.scale, better.seeds[0], better.seeds[0])[0].valid)
    c.record("protocol", {**asdict(p), "data": "builtin", "num_valid": num_valid})
    c.expect("course_cifar10_horses", COURSE_CIFAR10_HORSES)
    hi, lo = _NAMES[better_name], _NAMES[worse_name]
    if acc.low > 0:
        reading = f"{hi} is ahead in accuracy for any seed at this budget"
    elif acc.high < 0:
        reading = (f"at this budget {lo} is ahead in accuracy for any seed (the interval lies below 0): "
                   "the prediction does not hold here")
    else:
        reading = "the accuracy difference is not resolved at this budget (the interval contains 0)"
    if acc.low <= 0 and ctx.quick:
        f = PROTOCOL["full"]
        steps = f.epochs * f.num_crops // f.batch_size
        reading += (f"; compare the full scale ({f.num_seeds} pairs × {steps} "
                    f"steps of {f.patch_size}×{f.patch_size} crops at lower resolution)")
    c.record("reading", reading)
    _figures(ctx, worse, better, acc, base)
    return ("{reading!v}. "
            f"{hi} − {lo} over {p.num_seeds} paired seeds: accuracy {{accuracy_gain:+.2f}} points, "
            f"95% interval {{accuracy_interval:.2f}} (low {{accuracy_gain_low}}); "
            f"loss {{loss_change:+.3f}}, interval {{loss_interval:.3f}} (high {{loss_change_high}}); "
            f"means {hi} {{{hi}_accuracy:.1f}}%, {lo} {{{lo}_accuracy:.1f}}%, "
            f"grey-level lookup {{grey_level_accuracy:.1f}}% ({hi} − lookup {{{hi}_minus_grey_level:+.2f}}, "
            f"interval {{{hi}_minus_grey_level_interval:.2f}}; {{steps}} steps)")


@claim("colourize.transpose-beats-pool", section=SECTION, statement="""
    Learned upsampling (ConvTransposeNet) beats fixed pooling/upsampling (PoolUpsampleNet) at the
    same budget: the 95% interval of the paired difference (same crops, palette, batches and
    initialisation seed in a pair, several seeds) lies above zero for validation accuracy and
    below zero for validation loss. Built-in photographs (random crops at reduced resolution;
    held-out photographs for validation); the course reports 55.5% vs 41.1% on
    CIFAR-10 horses.""")
def transpose_beats_pool(ctx: Context) -> str:
    return _compare(ctx, "pool", "transpose")


@claim("colourize.skip-connections-help", section=SECTION, statement="""
    Skip connections (UNet) improve further on ConvTransposeNet at the same budget, by the same
    paired protocol as colourize.transpose-beats-pool (the course reports 58.3–58.9% vs
    54.7–55.4% on CIFAR-10 horses).""")
def skip_connections_help(ctx: Context) -> str:
    return _compare(ctx, "transpose", "unet")


def _module_size(kernel: int, padding: int, output_padding: int, size_in: int = 16) -> int:
    conv = nn.ConvTranspose2d(1, 1, kernel, stride=2, padding=padding, output_padding=output_padding)
    with torch.no_grad():
        return int(conv(torch.zeros(1, 1, size_in, size_in)).shape[-1])


@claim("colourize.transpose-padding", section=SECTION, statement="""
    A stride-2 transposed conv from 16 to 32 needs padding 1, output_padding 0 with kernel 4
    and padding 2, output_padding 1 with kernel 5.""")
def transpose_padding(ctx: Context) -> str:
    solved: dict[int, list[list[int]]] = {}
    module_hits: dict[int, list[list[int]]] = {}
    for k in range(2, 8):
        solved[k] = [[s.padding, s.output_padding] for s in solve_padding(16, 32, k, 2, transposed=True)]
        # Every (padding, output_padding) a real module accepts, and which of them give 32.
        module_hits[k] = [[p, op] for p in range(k) for op in range(2) if _module_size(k, p, op) == 32]
    c = ctx.checks
    c.equal("kernel_4", solved[4], [[1, 0]])
    c.equal("kernel_5", solved[5], [[2, 1]])
    c.record("solver", {str(k): v for k, v in solved.items()})
    c.record("nn.ConvTranspose2d_giving_32", {str(k): v for k, v in module_hits.items()})
    c.holds("solver_equals_modules", all(solved[k] == module_hits[k] for k in solved),
            "the solver's (padding, output_padding) pairs are exactly those nn.ConvTranspose2d "
            "turns 16 into 32 with, for k = 2..7")
    c.holds("formula", all(conv_transpose_output_size(16, k, 2, p, 1, op) == 32
                           for k, pairs in solved.items() for p, op in pairs),
            "every solved (padding, output_padding) gives 32 by the output-size formula")
    kept = {}
    for k in (3, 4, 5):
        x = torch.zeros(2, 1, 32, 32)
        kept[k] = all(tuple(build_model(name, kernel=k, num_filters=4, num_colours=3).eval()(x).shape)
                      == (2, 3, 32, 32) for name in MODELS) and \
            [up_padding(k).padding, up_padding(k).output_padding] == solved[k][0]
    c.holds("models_keep_32x32", all(kept.values()),
            "the three networks with kernels 3, 4, 5 map 32×32 to 32×32 using the solved paddings")

    fig, ax = new_figure(size=(5.5, 3.6))
    sizes = {}
    for k in (3, 4, 5):
        for op in (0, 1):
            ps = list(range(k))
            sizes[f"k={k}, output_padding={op}"] = [_module_size(k, p, op) for p in ps]
            ax.plot(ps, sizes[f"k={k}, output_padding={op}"], "o-" if op == 0 else "s--", ms=4,
                    label=f"k={k}, output_padding={op}")
    ax.axhline(32, color="k", lw=0.8)
    ax.set_xlabel("padding")
    ax.set_ylabel("output size of nn.ConvTranspose2d(stride 2) on 16")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=7)
    ctx.save_figure(fig, "output-size", {"solved": solved, "module_hits": module_hits, "sizes": sizes})
    return ("16→32, stride 2: k=4 → (padding, output_padding) {kernel_4}, k=5 → {kernel_5}; "
            "solver = nn.ConvTranspose2d for k=2..7: {solver_equals_modules!v}; "
            "networks keep 32×32: {models_keep_32x32!v}")
