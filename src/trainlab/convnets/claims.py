"""Claims of CLAIMS.md §3 (convolutional networks)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainlab.claims import Claim, Context, Evidence, register
from trainlab.convnets.by_hand import LAPLACIAN, blob_image, cross_correlate2d, edge_mask, zero_pad
from trainlab.convnets.shapes import (
    conv_output_size,
    conv_transpose_output_size,
    pool_output_size,
    same_padding,
    solve_padding,
)
from trainlab.errors import ShapeError
from trainlab.plotting import new_figure

SECTION = "§3 Convolutional networks"


def _cells(image: torch.Tensor):
    for i in range(image.shape[0]):
        for j in range(image.shape[1]):
            yield (i, j), float(image[i, j])


def run_by_hand(ctx: Context) -> Evidence:
    image = blob_image(5, 3)
    padded = zero_pad(image, same_padding(3))  # 'same' padding for k = 3 is (k − 1)/2 = 1
    by_hand = cross_correlate2d(padded, LAPLACIAN)
    reference = F.conv2d(padded[None, None], LAPLACIAN[None, None])[0, 0]
    edges = edge_mask(padded)
    course_max_diff = float((by_hand - reference).abs().max())

    # The same law on random binary images: zero exactly on flat neighbourhoods.
    g = ctx.generator()
    trials = 50 if ctx.quick else 500
    worst_diff, mismatches = course_max_diff, 0
    for _ in range(trials):
        size = int(torch.randint(4, 12, (1,), generator=g))
        img = (torch.rand(size, size, generator=g) < 0.5).double()
        p = zero_pad(img, 1)
        mine = cross_correlate2d(p, LAPLACIAN.double())
        ref = F.conv2d(p[None, None], LAPLACIAN.double()[None, None])[0, 0]
        worst_diff = max(worst_diff, float((mine - ref).abs().max()))
        mismatches += int(((mine != 0) != edge_mask(p)).sum())

    flat_abs_max = float(by_hand[~edges].abs().max())
    edge_abs_min = float(by_hand[edges].abs().min())
    passed = worst_diff <= 1e-12 and flat_abs_max == 0.0 and edge_abs_min > 0 and mismatches == 0

    fig, axes = new_figure(1, 3, size=(11, 3.8))
    for ax, (img, title) in zip(axes, [(padded, "I (5×5 blob, zero-padded to 7×7)"),
                                       (LAPLACIAN, "J (Laplacian)"),
                                       (by_hand, "I ⋆ J (5×5): 0 on flat regions")], strict=True):
        ax.imshow(img.numpy(), cmap="coolwarm" if img is by_hand else "gray")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        for (i, j), v in _cells(img):
            ax.text(j, i, f"{v:g}", ha="center", va="center", fontsize=8)
    ctx.save_figure(fig, "maps", {"I": padded, "J": LAPLACIAN, "I_star_J": by_hand,
                                  "edge_mask": edges})
    return Evidence(
        measured={"map": by_hand, "max_abs_diff_vs_conv2d": worst_diff,
                  "max_abs_on_flat": flat_abs_max, "min_abs_on_edges": edge_abs_min,
                  "random_images": trials, "edge_law_mismatches": mismatches},
        expected={"map": reference, "max_abs_diff_vs_conv2d": 0.0, "max_abs_on_flat": 0.0,
                  "min_abs_on_edges": "> 0", "edge_law_mismatches": 0},
        tolerance={"max_abs_diff_vs_conv2d": 1e-12},
        passed=passed,
        summary=(f"by-hand map = conv2d (max diff {worst_diff:.1e} over {trials + 1} images); "
                 f"0 on all {int((~edges).sum())} flat cells, ≥{edge_abs_min:g} on "
                 f"{int(edges.sum())} edge cells"),
    )


def _torch_size(layer: nn.Module, size: int) -> int | None:
    """Output height of ``layer`` on a (1, 1, size, size) input, or None if torch refuses.

    Torch returns an *empty* tensor for a transposed conv whose size works out to 0; trainlab
    treats any non-positive size as an error, so an empty output counts as a refusal here.
    """
    try:
        out = int(layer(torch.zeros(1, 1, size, size)).shape[-1])
    except RuntimeError:
        return None
    return out if out >= 1 else None


def _ours(fn, *args, **kwargs) -> int | None:
    try:
        return fn(*args, **kwargs)
    except ShapeError:
        return None


def run_shape_arithmetic(ctx: Context) -> Evidence:
    g = ctx.generator()

    def r(lo: int, hi: int) -> int:
        return int(torch.randint(lo, hi + 1, (1,), generator=g))

    n = 120 if ctx.quick else 1500
    rows: list[tuple[str, int | None, int | None]] = []
    with torch.no_grad():
        for _ in range(n):
            h, k, s, d = r(1, 40), r(1, 7), r(1, 4), r(1, 3)
            p = r(0, 3)
            rows.append(("conv", _ours(conv_output_size, h, k, s, p, d),
                         _torch_size(nn.Conv2d(1, 1, k, s, p, d), h)))
            op = r(0, max(s, d) - 1)
            rows.append(("convT", _ours(conv_transpose_output_size, h, k, s, p, d, op),
                         _torch_size(nn.ConvTranspose2d(1, 1, k, s, p, op, dilation=d), h)))
            kp = r(1, 5)
            pp, ceil = r(0, kp // 2), bool(r(0, 1))
            rows.append(("maxpool", _ours(pool_output_size, h, kp, s, pp, d, ceil),
                         _torch_size(nn.MaxPool2d(kp, s, pp, d, ceil_mode=ceil), h)))
            rows.append(("avgpool", _ours(pool_output_size, h, kp, s, pp, 1, ceil),
                         _torch_size(nn.AvgPool2d(kp, s, pp, ceil_mode=ceil), h)))
        # The inverse: every solution the solver returns realises the size in torch, and the
        # padding that generated the size is among them.
        solver_checks = solver_failures = 0
        for _ in range(n // 4):
            h, k, s, d = r(2, 32), r(1, 6), r(1, 3), r(1, 2)
            p, op = r(0, 2), r(0, max(s, d) - 1)
            target = _torch_size(nn.ConvTranspose2d(1, 1, k, s, p, op, dilation=d), h)
            if target is None:
                continue
            sols = solve_padding(h, target, k, s, d, transposed=True)
            solver_checks += 1
            ok = (p, op) in sols and all(
                _torch_size(nn.ConvTranspose2d(1, 1, k, s, sp, sop, dilation=d), h) == target
                for sp, sop in sols)
            solver_failures += not ok
    disagreements = sum(a != b for _, a, b in rows)
    refused_agree = sum(a is None and b is None for _, a, b in rows)
    examples = {
        "conv 28, k=3, p=0": conv_output_size(28, 3),
        "conv 28, k=4, s=2, p=1": conv_output_size(28, 4, 2, 1),
        "convT 16→32 k=4 s=2": [tuple(x) for x in solve_padding(16, 32, 4, 2, transposed=True)],
        "convT 16→32 k=5 s=2": [tuple(x) for x in solve_padding(16, 32, 5, 2, transposed=True)],
    }
    expected_examples = {"conv 28, k=3, p=0": 26, "conv 28, k=4, s=2, p=1": 14,
                         "convT 16→32 k=4 s=2": [(1, 0)], "convT 16→32 k=5 s=2": [(2, 1)]}
    examples_ok = all(examples[key] == expected_examples[key] for key in examples)

    fig, ax = new_figure()
    for kind, marker in [("conv", "o"), ("convT", "s"), ("maxpool", "^"), ("avgpool", "v")]:
        pts = [(b, a) for kk, a, b in rows if kk == kind and a is not None and b is not None]
        if pts:
            ax.scatter(*zip(*pts, strict=True), s=12, marker=marker, label=kind, alpha=0.6)
    ax.plot([0, 1], [0, 1], transform=ax.transAxes, color="k", lw=0.6)
    ax.set_xlabel("torch module output size")
    ax.set_ylabel("formula output size")
    ax.set_title(f"{len(rows)} random layers: formula = module")
    ax.legend(fontsize=8)
    ctx.save_figure(fig, "formula-vs-torch", {"rows": [list(x) for x in rows]})
    passed = disagreements == 0 and solver_failures == 0 and examples_ok
    return Evidence(
        measured={"settings": len(rows), "disagreements": disagreements,
                  "both_refuse": refused_agree, "solver_checks": solver_checks,
                  "solver_failures": solver_failures, **examples},
        expected={"disagreements": 0, "solver_failures": 0, **expected_examples},
        passed=passed,
        summary=(f"{len(rows)} random conv/convT/pool settings: {disagreements} disagreements "
                 f"with torch; padding solver {solver_checks - solver_failures}/{solver_checks} "
                 f"right; 28→26 (k3), 28→14 (k4 s2 p1)"),
    )


register(Claim(
    "convnets.by-hand", SECTION,
    "Cross-correlating the 7×7 zero-padded image I (a 3×3 blob of ones in a 5×5 image, "
    "padded by (k − 1)/2 = 1) with the Laplacian J = [[0,−1,0],[−1,4,−1],[0,−1,0]] gives a 5×5 "
    "map that is zero on flat regions and non-zero on edges: J is an edge detector.",
    run_by_hand))
register(Claim(
    "convnets.shape-arithmetic", SECTION,
    "Conv/pool output size is ⌊(H + 2p − d(k − 1) − 1)/s⌋ + 1 (ceil with ceil_mode); transposed "
    "conv gives (H − 1)s − 2p + d(k − 1) + p_out + 1; the padding and output_padding realising "
    "given sizes can be solved for (28→26 with k=3; 28→14 with k=4, s=2, p=1).",
    run_shape_arithmetic))
