"""Claims of CLAIMS.md §3 (convolutional networks)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from trainlab.claims import Context, claim
from trainlab.convnets.by_hand import LAPLACIAN, blob_image, cross_correlate2d, edge_mask, zero_pad
from trainlab.convnets.models import COURSE_VGG_INPUT, COURSE_VGG_SPEC, CourseVGG
from trainlab.convnets.receptive_field import chain_receptive_field, empirical_receptive_field
from trainlab.convnets.spec import build_from_spec, hand_counts, parse_spec
from trainlab.convnets.tracer import LayerRow, summary
from trainlab.errors import ShapeError
from trainlab.plotting import new_figure
from trainlab.shapes import (
    conv_output_size,
    conv_transpose_output_size,
    pool_output_size,
    same_padding,
    solve_padding,
)

__all__ = [
    "run_by_hand",
    "run_receptive_field",
    "run_shape_arithmetic",
    "run_vgg_size_table",
]

SECTION = "§3 Convolutional networks"


def _cells(image: torch.Tensor):
    for i in range(image.shape[0]):
        for j in range(image.shape[1]):
            yield (i, j), float(image[i, j])


@claim("convnets.by-hand", section=SECTION, statement="""
    Cross-correlating the 7×7 zero-padded image I (a 3×3 blob of ones in a 5×5 image, padded by
    (k − 1)/2 = 1) with the Laplacian J = [[0,−1,0],[−1,4,−1],[0,−1,0]] gives a 5×5 map that is zero
    on flat regions and non-zero on edges: J is an edge detector.""")
def run_by_hand(ctx: Context) -> str:
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
    checks = ctx.checks
    checks.record("map", by_hand)
    checks.expect("map", reference)
    # Float64 and float32 sums of at most 5 products of small integers are exact: any difference is a bug.
    checks.at_most("max_abs_diff_vs_conv2d", worst_diff, 1e-12, expected=0.0)
    checks.equal("max_abs_on_flat", flat_abs_max, 0.0)
    checks.at_least("min_abs_on_edges", edge_abs_min, 0.0, strict=True)
    checks.equal("edge_law_mismatches", mismatches, 0)
    checks.record("random_images", trials)
    checks.record("images", trials + 1)
    checks.record("flat_cells", int((~edges).sum()))
    checks.record("edge_cells", int(edges.sum()))

    from matplotlib import patheffects

    fig, axes = new_figure(1, 3, size=(11, 4.2))
    for ax, (img, title) in zip(
        axes,
        [
            (padded, "I (5×5 blob, zero-padded to 7×7)"),
            (LAPLACIAN, "J (Laplacian)"),
            (by_hand, "I ⋆ J (5×5): 0 on flat regions"),
        ],
        strict=True,
    ):
        # Symmetric limits so that 0 is the colour midpoint; outlined digits read on any cell.
        lim = float(img.abs().max())
        ax.imshow(img.numpy(), cmap="coolwarm", vmin=-lim, vmax=lim)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        for (i, j), v in _cells(img):
            ax.text(j, i, f"{v:g}", ha="center", va="center", fontsize=9,
                    path_effects=[patheffects.withStroke(linewidth=2.5, foreground="white")])
    ctx.save_figure(fig, "maps", {"I": padded, "J": LAPLACIAN, "I_star_J": by_hand, "edge_mask": edges})
    return ("by-hand map = conv2d: max diff {max_abs_diff_vs_conv2d} over {images!v} images; "
            "{max_abs_on_flat} on all {flat_cells!v} flat cells, {min_abs_on_edges} on {edge_cells!v} "
            "edge cells; edge law broken {edge_law_mismatches} times")


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


@claim("convnets.shape-arithmetic", section=SECTION, statement="""
    Conv/pool output size is ⌊(H + 2p − d(k − 1) − 1)/s⌋ + 1 (ceil with ceil_mode); transposed conv
    gives (H − 1)s − 2p + d(k − 1) + p_out + 1; the padding and output_padding realising given sizes
    can be solved for (28→26 with k=3; 28→14 with k=4, s=2, p=1).""")
def run_shape_arithmetic(ctx: Context) -> str:
    g = ctx.generator()

    def r(lo: int, hi: int) -> int:
        return int(torch.randint(lo, hi + 1, (1,), generator=g))

    n = 120 if ctx.quick else 1500
    rows: list[tuple[str, int | None, int | None]] = []
    with torch.no_grad():
        for _ in range(n):
            h, k, s, d = r(1, 40), r(1, 7), r(1, 4), r(1, 3)
            p = r(0, 3)
            rows.append(
                ("conv", _ours(conv_output_size, h, k, s, p, d), _torch_size(nn.Conv2d(1, 1, k, s, p, d), h))
            )
            op = r(0, max(s, d) - 1)
            rows.append(
                (
                    "convT",
                    _ours(conv_transpose_output_size, h, k, s, p, d, op),
                    _torch_size(nn.ConvTranspose2d(1, 1, k, s, p, op, dilation=d), h),
                )
            )
            kp = r(1, 5)
            pp, ceil = r(0, kp // 2), bool(r(0, 1))
            rows.append(
                (
                    "maxpool",
                    _ours(pool_output_size, h, kp, s, pp, d, ceil),
                    _torch_size(nn.MaxPool2d(kp, s, pp, d, ceil_mode=ceil), h),
                )
            )
            rows.append(
                (
                    "avgpool",
                    _ours(pool_output_size, h, kp, s, pp, 1, ceil),
                    _torch_size(nn.AvgPool2d(kp, s, pp, ceil_mode=ceil), h),
                )
            )
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
                for sp, sop in sols
            )
            solver_failures += not ok
    disagreements = sum(a != b for _, a, b in rows)
    refused_agree = sum(a is None and b is None for _, a, b in rows)
    examples = {
        "conv 28, k=3, p=0": conv_output_size(28, 3),
        "conv 28, k=4, s=2, p=1": conv_output_size(28, 4, 2, 1),
        "convT 16→32 k=4 s=2": [tuple(x) for x in solve_padding(16, 32, 4, 2, transposed=True)],
        "convT 16→32 k=5 s=2": [tuple(x) for x in solve_padding(16, 32, 5, 2, transposed=True)],
    }
    expected_examples = {
        "conv 28, k=3, p=0": 26,
        "conv 28, k=4, s=2, p=1": 14,
        "convT 16→32 k=4 s=2": [(1, 0)],
        "convT 16→32 k=5 s=2": [(2, 1)],
    }

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
    checks = ctx.checks
    checks.record("settings", len(rows))
    checks.equal("disagreements", disagreements, 0)
    checks.record("both_refuse", refused_agree)
    checks.record("solver_checks", solver_checks)
    checks.equal("solver_failures", solver_failures, 0)
    for key, value in examples.items():
        checks.equal(key, value, expected_examples[key])
    return ("{settings!v} random conv/convT/pool settings: {disagreements} disagreements with torch "
            "({both_refuse!v} refused by both); padding solver failures {solver_failures} in "
            "{solver_checks!v} solves; conv 28 k3 → {conv 28, k=3, p=0}, conv 28 k4 s2 p1 → "
            "{conv 28, k=4, s=2, p=1}, convT 16→32 k4 s2 (p, op) {convT 16→32 k=4 s=2}, "
            "k5 {convT 16→32 k=5 s=2}")


# ---------------------------------------------------------------------------------------------
# Accounting claims: size table, receptive fields, counts as polynomials.


def _layer_key(row: LayerRow) -> tuple:
    return (row.type, row.output_shape, row.neurons, row.params, row.connections)


@claim("convnets.vgg-size-table", section=SECTION, statement="""
    For input 3×112×112 and conv3-64, maxpool, conv3-128, maxpool, conv3-256, conv3-256, maxpool,
    FC-1024, FC-100 (3×3 convs with padding 1, 2×2/2 max-pools) the network has 1,957,988 neurons,
    52,444,644 parameters and 999,407,616 connections; the table from the spec equals the one traced
    from the equivalent nn.Module.""")
def run_vgg_size_table(ctx: Context) -> str:
    size = COURSE_VGG_INPUT
    with torch.device("meta"):  # shapes are all the tracer needs; skips initialising 52M weights
        spec_model = build_from_spec(COURSE_VGG_SPEC, size)
    hand_model = CourseVGG()
    ctx.progress("tracing the spec and the hand-written module")
    from_spec = summary(spec_model, size)
    from_hand = summary(hand_model, size)
    spec_rows = [_layer_key(r) for r in from_spec.layers()]
    hand_rows = [_layer_key(r) for r in from_hand.layers()]
    # The course's by-hand closed forms, row by row (no tracing involved).
    by_hand = hand_counts(COURSE_VGG_SPEC, size)
    closed = [(r["neurons"], r["params"], r["connections"]) for r in by_hand if r["neurons"] or r["params"]]
    traced = [(r.neurons, r.params, r.connections) for r in from_spec.layers()]
    closed_totals = {k: sum(int(r[k]) for r in by_hand) for k in ("neurons", "params", "connections")}
    # Trusted references: parameter tensors, and FlopCounterMode's MACs (FLOPs/2) on a meta copy.
    ref_params = sum(p.numel() for p in hand_model.parameters())
    with torch.device("meta"):
        meta_vgg = CourseVGG()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        meta_vgg(torch.empty(1, *size, device="meta"))
    ref_macs = counter.get_total_flops() // 2
    # The course's numbers (CLAIMS.md §3, the handout's table).
    course = {"neurons": 1_957_988, "params": 52_444_644, "connections": 999_407_616}
    checks = ctx.checks
    checks.equal("neurons", from_spec.total_neurons, course["neurons"])
    checks.equal("params", from_spec.total_params, course["params"])
    checks.equal("connections", from_spec.total_connections, course["connections"])
    checks.equal("closed_form_totals", closed_totals, course)
    checks.holds("spec_table_equals_module_table", spec_rows == hand_rows,
                 "the spec's rows equal the nn.Module's (type, shape, neurons, params, connections)")
    checks.holds("rows_equal_closed_form", traced == closed,
                 "every traced row equals the course's by-hand closed form")
    checks.equal("params_numel", from_spec.total_params, ref_params)
    checks.equal("macs", from_spec.total_macs, ref_macs)
    checks.equal("not_counted", list(from_spec.not_counted), [])
    checks.record("table", [r.as_dict() for r in from_spec.layers()])

    fig = from_spec.plot()
    fig.axes[0].set_title(
        f"course VGG table on {'×'.join(map(str, size))}: {from_spec.total_neurons:,} neurons,\n"
        f"{from_spec.total_params:,} parameters, {from_spec.total_connections:,} connections",
        fontsize=8,
    )
    ctx.save_figure(
        fig,
        "table",
        {"rows": [r.as_dict() for r in from_spec.rows], "totals": from_spec.totals(), "closed_form": by_hand},
    )
    return ("neurons {neurons}, params {params}, connections {connections}; spec table = nn.Module table: "
            "{spec_table_equals_module_table!v}; rows = closed form: {rows_equal_closed_form!v}; "
            "params {params_numel} (Σ numel); MACs {macs} (FlopCounterMode)")


_RF_VARIANTS = {
    "VGG table": "conv3-{c}, maxpool, conv3-{c}, maxpool, conv3-{c}, conv3-{c}, maxpool",
    "larger kernel (5×5)": "conv5-{c}, maxpool, conv5-{c}, maxpool, conv5-{c}, conv5-{c}, maxpool",
    "larger stride (first conv s=2)": (
        "conv3-{c}/2, maxpool, conv3-{c}, maxpool, conv3-{c}, conv3-{c}, maxpool"
    ),
    "one more layer": "conv3-{c}, maxpool, conv3-{c}, maxpool, conv3-{c}, conv3-{c}, maxpool, conv3-{c}",
}


class _Residual(nn.Module):
    """x + conv3(conv3(x)): aligned branches, field 5."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.b(torch.relu(self.a(x)))


class _Misaligned(nn.Module):
    """conv3/2 (centre 0) + maxpool2 (centre 0.5): same jump, different centres."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, stride=2, padding=1)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + self.pool(x)


def _clip(
    interval: list[tuple[float, float]], shape: tuple[int, ...]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    lo = tuple(max(0, math.ceil(a)) for a, _ in interval)
    hi = tuple(min(n - 1, math.floor(b)) for (_, b), n in zip(interval, shape, strict=True))
    return lo, hi


@claim("convnets.receptive-field", section=SECTION, statement="""
    Receptive fields grow with kernel size, stride and depth: size ← size + (k − 1)·jump,
    jump ← jump·s (pooling multiplies the jump); the formula matches the gradient support of a unit,
    and branches that disagree are flagged as misaligned.""")
def run_receptive_field(ctx: Context) -> str:
    size = COURSE_VGG_INPUT
    thin = (
        1 if ctx.quick else 8
    )  # channels do not change a receptive field; thin nets make the gradient cheap
    series: dict[str, dict[str, list]] = {}
    mismatches: list[str] = []
    checked = 0
    for label, template in _RF_VARIANTS.items():
        ctx.progress(label)
        layers = parse_spec(template.format(c=64))
        full = summary(build_from_spec(layers, size), size)
        thin_model = build_from_spec(template.format(c=thin), size)
        thin_rows = summary(thin_model, size).rows
        sizes = [r.receptive_field.size[0] for r in full.rows]
        jumps = [r.receptive_field.jump[0] for r in full.rows]
        starts = [r.receptive_field.start[0] for r in full.rows]
        closed = chain_receptive_field([lay.kernel for lay in layers], [lay.stride for lay in layers])
        empirical = []
        for i, row in enumerate(thin_rows):
            if row.receptive_field != full.rows[i].receptive_field:
                mismatches.append(f"{label} {row.name}: field depends on channels")
            pos = tuple(n // 2 for n in row.output_shape[2:])
            field = empirical_receptive_field(thin_model[: i + 1], size, pos)
            want = _clip(row.receptive_field.interval(pos), size[1:])
            empirical.append(field.size[0])
            checked += 1
            if (field.lo, field.hi) != want:
                mismatches.append(f"{label} {row.name}: gradient support {field.lo}..{field.hi} vs {want}")
        if sizes != [float(v) for v in closed]:
            mismatches.append(f"{label}: tracer sizes {sizes} vs closed form {closed}")
        series[label] = {
            "layers": [r.name for r in full.rows],
            "size": sizes,
            "jump": jumps,
            "start": starts,
            "closed_form": closed,
            "empirical": empirical,
        }

    base = series["VGG table"]
    pool_doubles = all(
        base["jump"][i] == 2 * (base["jump"][i - 1] if i else 1)
        for i, name in enumerate(base["layers"])
        if name.startswith("pool")
    )
    grows = {
        label: all(b >= a for a, b in zip(s["size"], s["size"][1:], strict=False))
        for label, s in series.items()
    }
    finals = {label: s["size"][-1] for label, s in series.items()}
    larger = {label: finals[label] > finals["VGG table"] for label in finals if label != "VGG table"}

    # Branching graphs: a residual block (aligned) and branches with different centres (misaligned).
    residual = summary(_Residual(), (1, 32, 32)).rows[-1].receptive_field
    residual_emp = empirical_receptive_field(_Residual(), (1, 32, 32), (16, 16))
    misaligned = summary(_Misaligned(), (1, 32, 32)).rows[-1].receptive_field
    fig, ax = new_figure(size=(6.4, 4.2))
    for (label, s), style in zip(series.items(), ["-", "--", "-.", ":"], strict=True):
        ax.plot(range(1, len(s["size"]) + 1), s["size"], marker="o", ls=style, label=label,
                lw=3 if style == "-" else 1.5)
        ax.plot(range(1, len(s["empirical"]) + 1), s["empirical"], ls="none", marker="x", color="k", ms=5)
    ax.set_xlabel("layer")
    ax.set_ylabel("receptive field size (pixels)")
    ax.set_title("receptive field growth (lines: formula, ×: gradient support)", fontsize=9)
    ax.legend(fontsize=7)
    ctx.save_figure(fig, "growth", series)

    checks = ctx.checks
    checks.record("variants", series)
    checks.record("final_size", finals)
    checks.equal("mismatches", mismatches, [])
    checks.record("units_checked", checked)
    checks.record("vgg_size", base["size"][-1])
    checks.record("vgg_jump", base["jump"][-1])
    checks.holds("pool_doubles_jump", pool_doubles, "every 2×2/2 max-pool doubles the jump")
    checks.holds("monotone_growth", all(grows.values()), "the field never shrinks with depth")
    checks.record("larger_than_base", larger)
    checks.holds("all_larger", all(larger.values()), "each variant's final field exceeds the VGG table's")
    checks.equal("residual_size", residual.size, (5.0, 5.0))
    checks.equal("residual_status", residual.status, "exact")
    checks.equal("residual_empirical", residual_emp.size, (5, 5))
    checks.equal("misaligned_status", misaligned.status, "misaligned")
    checks.record("k5_size", finals["larger kernel (5×5)"])
    checks.record("s2_size", finals["larger stride (first conv s=2)"])
    checks.record("deeper_size", finals["one more layer"])
    return ("VGG table RF {vgg_size!v} (jump {vgg_jump!v}) = closed form = gradient support at "
            "{units_checked!v} layers/variants, mismatches {mismatches}; 5×5 kernels {k5_size!v}, stride 2 "
            "{s2_size!v}, +1 layer {deeper_size!v} (all larger than the table's: {all_larger!v}); residual "
            "{residual_size} ({residual_status!v}, gradient {residual_empirical!v}), misaligned branches "
            "{misaligned_status}")
