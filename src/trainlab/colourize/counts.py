"""The §3 counting claim on the colourization networks, where the accountant and §5's models meet.

``convnets.counts-scale`` checks the network accountant (:func:`trainlab.convnets.summary`,
:func:`trainlab.convnets.symbolic_counts`) on :class:`~trainlab.colourize.models.PoolUpsampleNet`,
the network of the programming assignment. It lives here, in the part that owns the network and
uses the accountant's public API, so that ``trainlab.convnets`` imports nothing of ``colourize``.
Registered in §3's place in the report (:data:`trainlab.claims.PARTS`).
"""

from __future__ import annotations

from torch import nn

from trainlab.claims import Context, claim
from trainlab.colourize.models import PoolUpsampleNet
from trainlab.convnets import summary, symbolic_counts
from trainlab.plotting import new_figure

__all__ = ["run_counts_scale"]

SECTION = "§3 Convolutional networks"


@claim("convnets.counts-scale", section=SECTION, statement="""
    Parameter counts do not depend on the input size; neurons and connections scale with H·W (4× when
    H and W double); PoolUpsampleNet's counts are polynomials in its channel numbers, its conv weights
    9·NIC·NF + 36·NF² + 9·NF·NC + 9·NC².""")
def run_counts_scale(ctx: Context) -> str:
    import sympy

    nic, nf, nc, h, w = sympy.symbols(
        "num_in_channels num_filters num_colours height width", integer=True, positive=True
    )
    ctx.progress("fitting polynomials")
    fit = symbolic_counts(
        PoolUpsampleNet,
        {"num_in_channels": 1, "num_filters": 1, "num_colours": 1, "height": 4, "width": 4},
        ("num_in_channels", "height", "width"),
        ignore=("bias", "batchnorm"),
        num_checks=3 if ctx.quick else 20,
        seed=ctx.claim_seed % 2**32,
    )
    poly = fit.polynomials
    # Theory: the course's weight count, and the per-layer closed forms of neurons and connections
    # (conv k²·C_in·C_out·H'·W', 2×2 pool 4·C·H'·W', nearest upsampling C·H'·W').
    course_params = 9 * nic * nf + 36 * nf**2 + 9 * nf * nc + 9 * nc**2
    a = h * w
    layers = [  # (neurons, connections) of each layer of PoolUpsampleNet
        (nf * a, 9 * nic * nf * a),
        (nf * a / 4, 4 * nf * a / 4),
        (2 * nf * a / 4, 9 * nf * 2 * nf * a / 4),
        (2 * nf * a / 16, 4 * 2 * nf * a / 16),
        (nf * a / 16, 9 * 2 * nf * nf * a / 16),
        (nf * a / 4, nf * a / 4),
        (nc * a / 4, 9 * nf * nc * a / 4),
        (nc * a, nc * a),
        (nc * a, 9 * nc * nc * a),
    ]
    course_neurons = sum(n for n, _ in layers)
    course_connections = sum(c for _, c in layers)
    exact = {
        "params": sympy.expand(poly["params"] - course_params) == 0,
        "neurons": sympy.expand(poly["neurons"] - course_neurons) == 0,
        "connections": sympy.expand(poly["connections"] - course_connections) == 0,
    }
    independent_of_size = not ({h, w} & poly["params"].free_symbols)
    doubled = {
        k: sympy.simplify(poly[k].subs({h: 2 * h, w: 2 * w}, simultaneous=True) / poly[k])
        for k in ("neurons", "connections")
    }

    # Measured directly at two input sizes, and against the modules' own weight tensors.
    model = PoolUpsampleNet(num_in_channels=1, num_filters=32, num_colours=24)
    conv_weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Conv2d))
    sizes = [16, 32, 64, 128] if ctx.quick else [16, 32, 64, 128, 256, 512]
    by_size = {s: summary(model, (1, s, s), ignore=("bias", "batchnorm")).totals() for s in sizes}
    ratios = {k: by_size[64][k] / by_size[32][k] for k in ("params", "neurons", "connections")}
    at_point = fit.evaluate(
        {"num_in_channels": 1, "num_filters": 32, "num_colours": 24, "height": 32, "width": 32}
    )

    fig, ax = new_figure()
    for key in ("params", "neurons", "connections"):
        ax.loglog(sizes, [by_size[s][key] for s in sizes], marker="o", label=key)
    ax.set_xlabel("input height = width (pixels)")
    ax.set_ylabel("count (PoolUpsampleNet, NF=32, NC=24)")
    ax.set_title("parameters flat; neurons, connections ∝ H·W", fontsize=9)
    ax.legend(fontsize=8)
    ctx.save_figure(fig, "scaling", {"sizes": sizes, "counts": by_size, "polynomials": fit.as_strings()})

    checks = ctx.checks
    checks.record("polynomials", fit.as_strings())
    checks.record("params_polynomial", str(poly["params"]))
    checks.record("fitted_on", fit.fitted_at)
    checks.record("checked_at", fit.checked_at)
    checks.record("fresh_points", len(fit.checked_at))
    checks.expect("params", str(course_params))
    checks.expect("neurons", str(sympy.expand(course_neurons)))
    checks.expect("connections", str(sympy.expand(course_connections)))
    for key in ("params", "neurons", "connections"):  # exact rational arithmetic: the difference is 0
        checks.holds(f"{key}_equal_course", exact[key], f"fitted {key} − course formula expands to 0")
    checks.holds("params_free_of_size", independent_of_size, "no height or width in the params polynomial")
    checks.equal("polynomial_ratio_2H_2W", {k: str(v) for k, v in doubled.items()},
                 {"neurons": "4", "connections": "4"})
    checks.equal("ratio_64_over_32", ratios, {"params": 1.0, "neurons": 4.0, "connections": 4.0})
    checks.equal("params_at_nf32_nc24", at_point["params"], conv_weights)
    checks.equal("traced_params_at_32", by_size[32]["params"], conv_weights)
    checks.equal("polynomial_at_32", [at_point["neurons"], at_point["connections"]],
                 [by_size[32]["neurons"], by_size[32]["connections"]])
    checks.record("by_size", by_size)
    return ("params = {params_polynomial!v} (equals the course formula: {params_equal_course!v}; neurons, "
            "connections: {neurons_equal_course!v}, {connections_equal_course!v}), no H/W: "
            "{params_free_of_size!v}; params, neurons, connections ×{ratio_64_over_32!v} when H, W double; "
            "polynomial = trace at "
            "{fresh_points!v} fresh points and at NF=32, NC=24: {params_at_nf32_nc24}")
