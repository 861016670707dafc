"""Claims of this part (§4 Trading off resources), registered on import with `trainlab.claims.claim`.

All four run on scikit-learn's digits with the 64-64-10 tanh MLP (``digits-mlp``), many
small models stacked in one thread (:mod:`trainlab.scaling.stacked`). ``scaling.lr-vs-batch``
and ``scaling.steps-vs-batch`` read the same SGD sweep, made once per (scale, seed) in a
process. Statistical verdicts rest on bootstrap intervals over the run seeds.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from trainlab.claims import Context, claim
from trainlab.seeding import derive_seed
from trainlab.threads import limit_threads

__all__ = ["PROTOCOLS", "optimizer_batch", "sgd_sweep"]

SECTION = "§4 Trading off resources in training"
_LEVEL = 0.9  # bootstrap intervals: 5th to 95th percentile

#: quick / full protocols of the digits SGD sweep (designed on seed 0, then on seeds 101-505 and
#: 1001-5005; checked on the unseen seeds 6006, 7007, 8008, 9009, 10010)
PROTOCOLS: dict[str, dict[str, Any]] = {
    "quick": {"batch_sizes": (2, 4, 8, 16, 32, 64, 128, 256), "num_seeds": 4, "targets": (0.2, 0.1),
              "resamples": 1000},
    "full": {"batch_sizes": (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024), "num_seeds": 8,
             "targets": (0.2, 0.1, 0.05), "resamples": 2000},
}
_TARGET = 0.1  # the loss every check is judged at (the others are recorded)
_CACHE: dict[tuple[str, int], tuple[Any, list[dict[str, Any]]]] = {}


def _run_seeds(ctx: Context, n: int) -> tuple[int, ...]:
    return tuple(int(derive_seed(ctx.seed, "scaling-run", i) % 1_000_000) for i in range(n))


def sgd_sweep(ctx: Context) -> tuple[Any, list[dict[str, Any]]]:
    """The SGD steps-to-target sweep of this scale and seed (cached per process)."""
    from trainlab.scaling.sweep import SweepConfig, next_round, run_task

    key = (ctx.scale, ctx.seed)
    if key not in _CACHE:
        p = PROTOCOLS[ctx.scale]
        config = SweepConfig(problem="digits-mlp", batch_sizes=p["batch_sizes"], lr_base=0.05,
                             lr_indices=(2, 3, 4) if ctx.quick else (0, 1, 2),
                             seeds=_run_seeds(ctx, p["num_seeds"]), targets=p["targets"],
                             max_steps=40_000, data_seed=ctx.seed, adaptive_grid=True)
        store = _MemoryStore()
        while tasks := next_round(config, store):  # type: ignore[arg-type]
            for t in tasks:
                ctx.progress(f"SGD sweep: B={t.batch_size}, {len(t.points)} runs")
                store.append(run_task(t))
        _CACHE[key] = (config, list(store.records.values()))
    return _CACHE[key]


class _MemoryStore:
    """A PointStore that keeps the points in memory (claims write their figures' data instead)."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}

    def append(self, records: list[dict[str, Any]]) -> None:
        for r in records:
            self.records[r["key"]] = r

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def __len__(self) -> int:
        return len(self.records)


def _fit(ctx: Context, config: Any, records: list[dict[str, Any]], target: float, offset: int = 0) -> Any:
    from trainlab.scaling.fit import fit_sweep

    targets = sorted(config.targets)
    return fit_sweep(records, config.seeds, targets, targets.index(target),
                     num_resamples=PROTOCOLS[ctx.scale]["resamples"], rng=ctx.rng(offset), level=_LEVEL)


@claim("scaling.lr-vs-batch", section=SECTION, statement="""
    The best learning rate grows with batch size, roughly linearly at small batches (larger
    batches average away gradient noise), then saturates (at the stability limit of the
    curvature). Checked on the digits MLP with constant-LR SGD: per batch size the LR with the
    fewest mean steps (over seeds) to a training loss of 0.1 on a √2 grid extended at its edges,
    refined by a parabola in log–log through it and its neighbours.""")
def lr_vs_batch(ctx: Context) -> str:
    from trainlab.plotting import new_figure
    from trainlab.scaling.fit import fit_power_law, percentile_interval

    config, records = sgd_sweep(ctx)
    f = _fit(ctx, config, records, _TARGET)
    B = np.asarray(f.batch_sizes, dtype=float)
    b_crit = f.critical.b_crit  # from the steps, not from the learning rates
    small = np.arange(len(B)) < 4  # the four smallest batch sizes (a factor 8)
    large = np.arange(len(B)) >= len(B) - 3  # the three largest (a factor 4)
    lrs = np.asarray(f.best_lr)

    def slopes(sample_lrs: np.ndarray) -> tuple[float, float]:
        return (fit_power_law(B[small], sample_lrs[small]).exponent,
                fit_power_law(B[large], sample_lrs[large]).exponent)

    # theory: ε_opt = ε_max/(1 + B_noise/B) (McCandlish eq. 2.7) has log–log slope B_noise/(B + B_noise):
    # 1 for B ≪ B_noise, 0 for B ≫ B_noise. With B_noise = the B_crit fitted to the *steps*, the
    # least-squares slope of that law over each range is what theory expects there.
    def law_slope(mask: np.ndarray) -> float:
        return fit_power_law(B[mask], 1.0 / (1.0 + b_crit / B[mask])).exponent

    expected_small, expected_large = law_slope(small), law_slope(large)
    s_small, s_large = slopes(lrs)
    boot = np.array([slopes(row) for row in f.lr_samples if np.all(np.isfinite(row))])
    lo_small, hi_small = percentile_interval(boot[:, 0], _LEVEL)
    lo_large, hi_large = percentile_interval(boot[:, 1], _LEVEL)
    ctx.checks.record("batch_sizes", f.batch_sizes)
    ctx.checks.record("best_lr", [round(v, 4) for v in f.best_lr])
    ctx.checks.record("small_batch_range", [int(B[small].min()), int(B[small].max())])
    ctx.checks.record("large_batch_range", [int(B[large].min()), int(B[large].max())])
    ctx.checks.record("lr_slope_small", s_small)
    ctx.checks.record("lr_slope_large", s_large)
    ctx.checks.record("b_crit", b_crit)
    ctx.checks.expect("lr_slope_small", expected_small)
    ctx.checks.expect("lr_slope_large", expected_large)
    # a grid best LR is within a factor 2^(1/4) of the optimum (log2 error ≤ 1/4 at each end:
    # up to 1/4 on a slope over 2-3 octaves; the parabola refinement removes most of it) and
    # seed noise comes on top: tolerance 0.3 on the bootstrap interval's ends.
    # The two expectations differ by more than 2 × 0.3 when the ranges straddle B_crit, so
    # passing both says: near-linear growth at small B, saturation at large B.
    for name, value, exp in (("lr_slope_small_lo", lo_small, expected_small),
                             ("lr_slope_small_hi", hi_small, expected_small),
                             ("lr_slope_large_lo", lo_large, expected_large),
                             ("lr_slope_large_hi", hi_large, expected_large)):
        ctx.checks.between(name, value, exp - 0.3, exp + 0.3, expected=exp)
    ctx.checks.at_least("slope_gap", expected_small - expected_large, 0.6)
    ctx.checks.record("lr_law_max", f.lr_law.lr_max)
    ctx.checks.record("lr_law_b_noise", f.lr_law.b_noise)
    fig, ax = new_figure()
    f.plot_lr(ax)
    ctx.save_figure(fig, "best-lr-vs-batch", {"batch_sizes": f.batch_sizes, "best_lr": f.best_lr,
                                              "lr_max": f.lr_law.lr_max, "b_noise": f.lr_law.b_noise,
                                              "target": f.target})
    return ("best LR {best_lr!v} at B {batch_sizes!v}; log–log slope {lr_slope_small:.2f} at B in "
            "{small_batch_range!v} (90% interval [{lr_slope_small_lo!v:.2f}, {lr_slope_small_hi!v:.2f}], "
            "ε_max/(1 + B_crit/B) with B_crit {b_crit:.1f} from the steps gives " + f"{expected_small:.2f}), "
            "{lr_slope_large:.2f} at B in {large_batch_range!v} (90% [{lr_slope_large_lo!v:.2f}, "
            "{lr_slope_large_hi!v:.2f}], law " + f"{expected_large:.2f}"
            + "): saturates at ε_max ≈ {lr_law_max:.2f}")


@claim("scaling.steps-vs-batch", section=SECTION, statement="""
    Steps to a target training loss fall ≈1/B at small batches and flatten beyond a critical
    batch size; S = S_min(1 + B_crit/B) fits the curve, and the gradient noise scale
    B_simple = tr(Σ)/|G|², measured independently (exact, from per-example gradients at the
    start of training), predicts B_crit to within a small factor (4); later in training (along
    a full-batch GD path, where the loss is within 2x of the target) B_simple has grown and
    bounds the constant-LR SGD B_crit from above.""")
def steps_vs_batch(ctx: Context) -> str:

    from trainlab.plotting import new_figure
    from trainlab.scaling.fit import fit_power_law, percentile_interval
    from trainlab.scaling.noise_scale import NoiseScaleTrajectory, exact_noise_scale, noise_scale_trajectory
    from trainlab.scaling.stacked import init_params
    from trainlab.scaling.sweep import resolve_problem

    config, records = sgd_sweep(ctx)
    f = _fit(ctx, config, records, _TARGET, offset=1)
    B = np.asarray(f.batch_sizes, dtype=float)
    S = np.asarray(f.best_steps)
    c = f.critical
    lo, hi = f.b_crit_interval
    ctx.checks.record("batch_sizes", f.batch_sizes)
    ctx.checks.record("steps", [round(s, 1) for s in f.best_steps])
    ctx.checks.record("s_min", c.s_min)
    ctx.checks.record("e_min", c.e_min)
    ctx.checks.record("b_crit", c.b_crit)
    ctx.checks.record("b_crit_interval", [round(lo, 2), round(hi, 2)])
    # the hyperbola describes the curve (McCandlish eq. 2.11)
    ctx.checks.at_most("fit_max_rel_err", c.max_rel_err, 0.25, expected=0.0)
    ctx.checks.between("b_crit_lo", lo, float(B.min()), float(B.max()))
    ctx.checks.between("b_crit_hi", hi, float(B.min()), float(B.max()))
    # perfect scaling below, diminishing returns above (Shallue et al. 2019)
    s_small = fit_power_law(B[:3], S[:3]).exponent
    s_large = fit_power_law(B[-3:], S[-3:]).exponent
    boots = np.array([(fit_power_law(B[:3], row[:3]).exponent, fit_power_law(B[-3:], row[-3:]).exponent)
                      for row in f.steps_samples if np.all(np.isfinite(row))])
    ctx.checks.record("slope_small", s_small)
    ctx.checks.record("slope_large", s_large)
    ctx.checks.expect("perfect_scaling_slope", -1.0)
    ctx.checks.between("slope_small_lo", percentile_interval(boots[:, 0], _LEVEL)[0], -1.3, -0.6)
    ctx.checks.between("slope_small_hi", percentile_interval(boots[:, 0], _LEVEL)[1], -1.3, -0.6)
    ctx.checks.between("slope_large_lo", percentile_interval(boots[:, 1], _LEVEL)[0], -0.35, 0.05)
    ctx.checks.between("slope_large_hi", percentile_interval(boots[:, 1], _LEVEL)[1], -0.35, 0.05)
    # B_simple, measured independently: exact, at each run seed's initialisation
    problem = resolve_problem(config)
    with limit_threads(1):
        inits = [exact_noise_scale(problem, init_params(problem, s)) for s in config.seeds]
        g2 = np.array([n.grad_norm_sq for n in inits])
        tr = np.array([n.trace_cov for n in inits])
        b_simple = float(tr.mean() / g2.mean())  # ratio of means (McCandlish A.1)
        # B_simple over training, measured where the noise of SGD itself does not inflate |G|²
        # (an SGD iterate near the stability edge bounces along the sharpest direction): along
        # full-batch GD at 0.7x the large-batch best LR, from two of the seeds' initialisations
        n_steps = int(math.ceil(3 * c.s_min))
        marks = sorted({0, *np.unique(np.geomspace(1, n_steps, 12).astype(int)).tolist()})
        trajs = [noise_scale_trajectory(problem, init_params(problem, s), lr=0.7 * f.best_lr[-1],
                                        batch_size=problem.num_examples, checkpoints=marks,
                                        gen=ctx.generator(10 + j))
                 for j, s in enumerate(config.seeds[:2])]
    # the figure: ratio of means over seeds at each checkpoint
    traj = NoiseScaleTrajectory(trajs[0].steps, np.mean([t.loss for t in trajs], 0).tolist(),
                                (np.mean([t.trace_cov for t in trajs], 0)
                                 / np.mean([t.grad_norm_sq for t in trajs], 0)).tolist(),
                                np.mean([t.grad_norm_sq for t in trajs], 0).tolist(),
                                np.mean([t.trace_cov for t in trajs], 0).tolist())
    # "late": the checkpoints at which the loss is within 2x of the target (ratio of means)
    late = [j for j, L in enumerate(traj.loss) if L <= 2 * _TARGET]
    b_late = (float(np.mean(np.asarray(traj.trace_cov)[late]) / np.mean(np.asarray(traj.grad_norm_sq)[late]))
              if late else math.nan)
    ctx.checks.record("b_simple", b_simple)
    ctx.checks.record("b_simple_late", b_late)
    ratio_lo, ratio_hi = b_simple / hi, b_simple / lo
    ctx.checks.expect("b_simple_over_b_crit", 1.0)
    ctx.checks.between("b_simple_over_b_crit_lo", ratio_lo, 0.25, 4.0)
    ctx.checks.between("b_simple_over_b_crit_hi", ratio_hi, 0.25, 4.0)
    ctx.checks.at_least("b_simple_late_over_b_crit", b_late / hi, 1.0)
    fig, ax = new_figure()
    f.plot(ax)
    ax.axvline(b_simple, c="C3", ls="-.", label=f"B_simple at init = {b_simple:.3g}")
    ax.legend(fontsize=7)
    ctx.save_figure(fig, "steps-vs-batch", {**f.as_dict(), "b_simple": b_simple})
    fig, ax = new_figure()
    f.plot_tradeoff(ax)
    ctx.save_figure(fig, "time-vs-compute", f.as_dict())
    fig, ax = new_figure()
    traj.plot(ax, b_crit=c.b_crit)
    ax.set_title("exact B_simple along full-batch GD (mean of 2 initialisations)", fontsize=8)
    ctx.save_figure(fig, "b-simple-over-training", {"steps": traj.steps, "loss": traj.loss,
                                                    "b_simple": traj.b_simple, "b_crit": c.b_crit,
                                                    "optimizer": "full-batch GD", "lr": 0.7 * f.best_lr[-1]})
    for t in sorted(config.targets):
        if t != _TARGET:
            other = _fit(ctx, config, records, t, offset=3)
            ctx.checks.record(f"b_crit_at_{t:g}", other.critical.b_crit)
    return ("S(B) {steps!v} at B {batch_sizes!v}; fit S_min {s_min:.0f}, E_min {e_min:.0f}, "
            "B_crit {b_crit:.1f} (90% [{b_crit_lo!v:.1f}, {b_crit_hi!v:.1f}]), worst point off by "
            "{fit_max_rel_err}; slopes {slope_small:.2f} (small B) and {slope_large:.2f} (large B); "
            "B_simple {b_simple:.1f} at init → B_simple/B_crit in [{b_simple_over_b_crit_lo!v:.2f}, "
            "{b_simple_over_b_crit_hi!v:.2f}]; late in training (GD path, loss ≤ 2× target) B_simple "
            "{b_simple_late:.0f} → /B_crit {b_simple_late_over_b_crit}")


@claim("scaling.optimizer-batch", section=SECTION, statement="""
    Momentum and preconditioning raise the critical batch size (Zhang et al. 2019): in the
    exact noisy quadratic model heavy-ball momentum needs as many steps as SGD at small
    batches but fewer at large ones, and both it and preconditioning (H^-1/2) have a larger
    B_crit than SGD; on the digits MLP momentum and Adam cut the steps to the target more at a
    large batch than at a small one.""")
def optimizer_batch(ctx: Context) -> str:
    from trainlab.plotting import new_figure
    from trainlab.scaling.fit import fit_critical_batch, fit_sweep, percentile_interval, seed_resamples
    from trainlab.scaling.nqm import NQM, nqm_batch_sweep
    from trainlab.scaling.sweep import SweepConfig, next_round, run_task

    # 1. the exact oracle
    nqm = NQM.harmonic(100)
    sizes = [4.0**k for k in range(7)] if ctx.quick else [2.0**k for k in range(13)]
    target = 0.01 * nqm.initial_loss()
    ctx.progress("noisy quadratic model")
    sweep = nqm_batch_sweep(nqm, sizes, target)
    crit = {name: fit_critical_batch(sizes, s) for name, s in sweep.steps.items()}
    for name, c in crit.items():
        ctx.checks.record(f"nqm_b_crit_{name}", c.b_crit)
    ctx.checks.at_least("nqm_b_crit_ratio_momentum", crit["momentum"].b_crit / crit["sgd"].b_crit, 1.5)
    ctx.checks.at_least("nqm_b_crit_ratio_preconditioned",
                        crit["preconditioned"].b_crit / crit["sgd"].b_crit, 1.5)
    ctx.checks.expect("nqm_small_batch_ratio_momentum", 1.0)
    ctx.checks.between("nqm_small_batch_ratio_momentum", sweep.steps["momentum"][0] / sweep.steps["sgd"][0],
                       0.9, 1.1)
    ctx.checks.at_most("nqm_large_batch_ratio_momentum", sweep.steps["momentum"][-1] / sweep.steps["sgd"][-1],
                       0.67)
    # 2. digits: momentum and Adam at a small and a large batch, against the SGD sweep's seeds
    config, records = sgd_sweep(ctx)
    b_small, b_large = 4, 256
    seeds = config.seeds
    weights = seed_resamples(len(seeds), PROTOCOLS[ctx.scale]["resamples"], ctx.rng(4))
    targets = sorted(config.targets)
    ti = targets.index(_TARGET)

    def best(recs: list[dict[str, Any]]) -> Any:
        return fit_sweep(recs, seeds, targets, ti, resample_weights=weights)

    base = best([r for r in records if r["batch_size"] in (b_small, b_large)])
    sgd_steps = dict(zip(base.batch_sizes, base.best_steps, strict=True))
    sgd_samples = {b: base.steps_samples[:, j] for j, b in enumerate(base.batch_sizes)}
    sgd_lr = dict(zip(base.batch_sizes, base.best_lr, strict=True))
    ratios: dict[str, Any] = {}
    for opt in ("momentum", "adam"):
        recs: list[dict[str, Any]] = []
        for b in (b_small, b_large):
            if opt == "momentum":  # start near SGD's best effective step ε/(1 − β)
                lr_base = sgd_lr[b] * (1 - 0.9)
            else:  # Adam: a grid around 1e-3·√B (its best LR grows ≈ √B)
                lr_base = 1e-3 * math.sqrt(b)
            cfg = SweepConfig(problem="digits-mlp", batch_sizes=(b,), lr_base=lr_base, lr_indices=(0, 1, 2),
                              seeds=seeds, targets=config.targets, max_steps=40_000, optimizer=opt,
                              data_seed=config.data_seed, max_extensions=6)
            store = _MemoryStore()
            while tasks := next_round(cfg, store):  # type: ignore[arg-type]
                for t in tasks:
                    ctx.progress(f"{opt}: B={b}, {len(t.points)} runs")
                    store.append(run_task(t))
            recs += [{**r, "lr_index": (opt, b, r["lr_index"])} for r in store.records.values()]
        fit = best(recs)
        for j, b in enumerate(fit.batch_sizes):
            ratios[(opt, b)] = (fit.best_steps[j] / sgd_steps[b], fit.steps_samples[:, j] / sgd_samples[b])
        ctx.checks.record(f"{opt}_best_lr", [round(v, 4) for v in fit.best_lr])
    for opt in ("momentum", "adam"):
        r_small, s_small = ratios[(opt, b_small)]
        r_large, s_large = ratios[(opt, b_large)]
        gain = s_large / s_small  # < 1: the optimizer helps more at the large batch
        ctx.checks.record(f"{opt}_ratio_small", r_small)
        ctx.checks.record(f"{opt}_ratio_large", r_large)
        ctx.checks.at_most(f"{opt}_ratio_large_hi", percentile_interval(s_large, _LEVEL)[1], 0.8)
        ctx.checks.at_most(f"{opt}_gain_hi", percentile_interval(gain, _LEVEL)[1], 0.8, expected=0.0)
    ctx.checks.record("batch_small", b_small)
    ctx.checks.record("batch_large", b_large)
    fig, ax = new_figure()
    sweep.plot(ax)
    ctx.save_figure(fig, "nqm-steps-vs-batch", {"batch_sizes": sizes, "steps": sweep.steps, "target": target,
                                                "best_lr": sweep.best_lr, "momentum": sweep.best_momentum,
                                                "b_crit": {k: v.b_crit for k, v in crit.items()}})
    return ("NQM B_crit: SGD {nqm_b_crit_sgd:.0f}, momentum {nqm_b_crit_momentum:.0f} "
            "(×{nqm_b_crit_ratio_momentum}), preconditioned {nqm_b_crit_preconditioned:.0f} "
            "(×{nqm_b_crit_ratio_preconditioned}); momentum/SGD steps {nqm_small_batch_ratio_momentum} "
            "at B=1, "
            "{nqm_large_batch_ratio_momentum} at the largest B. Digits, steps vs SGD at B={batch_small!v} / "
            "B={batch_large!v}: momentum {momentum_ratio_small:.2f} / {momentum_ratio_large:.2f}, "
            "Adam {adam_ratio_small:.2f} / {adam_ratio_large:.2f}")


@claim("scaling.model-size", section=SECTION, statement="""
    Loss falls with model size along a power law: trained on the same data (same steps and
    batch size), wider digits MLPs reach a lower training loss, L ∝ N^α with α < 0 (Kaplan et
    al. 2020). Along the compute frontier min_N L(N, C), with C = 6·N·B·S, loss falls as a power
    law in compute; the compute-optimal width at each budget is reported (on this small data
    set it stays small: more steps, not a larger model, is the better use of compute here).""")
def model_size(ctx: Context) -> str:
    from trainlab.scaling.fit import fit_power_law, percentile_interval, seed_resamples
    from trainlab.scaling.model_size import compute_frontier, model_size_sweep

    quick = ctx.quick
    widths = [8, 16, 32, 64, 128] if quick else [4, 8, 16, 32, 64, 128, 256]
    seeds = _run_seeds(ctx, 3 if quick else 5)
    ctx.progress(f"width sweep {widths}")
    with limit_threads(1):
        sweep = model_size_sweep(widths, seeds, max_steps=400 if quick else 1000, batch_size=32, lr=0.004,
                                 data_seed=ctx.seed)
    law = sweep.size_law()
    boots = [sweep.size_law(w) for w in seed_resamples(len(seeds), 500, ctx.rng(5))]
    lo, hi = percentile_interval(np.array([b.exponent for b in boots]), _LEVEL)
    ctx.checks.record("widths", widths)
    ctx.checks.record("num_params", sweep.num_params)
    ctx.checks.record("final_loss", [round(v, 4) for v in sweep.final_loss()])
    ctx.checks.record("size_exponent", law.exponent)
    ctx.checks.at_most("size_exponent_hi", hi, -0.1, expected=-0.5)
    ctx.checks.at_least("size_law_r2", law.r2, 0.9)
    C, L, N = compute_frontier(sweep)
    frontier = fit_power_law(C, L)
    ctx.checks.record("compute_exponent", frontier.exponent)
    ctx.checks.at_most("compute_exponent_neg", frontier.exponent, -0.1, expected=-1.0)
    ctx.checks.at_least("frontier_r2", frontier.r2, 0.9)
    ctx.checks.record("compute_optimal_params", sorted({int(n) for n in N}))
    ctx.checks.record("lo", lo)
    fig = sweep.plot()
    ctx.save_figure(fig, "loss-vs-model-size", {
        "widths": widths, "num_params": sweep.num_params, "final_loss": sweep.final_loss().tolist(),
        "exponent": law.exponent, "frontier_compute": C.tolist(), "frontier_loss": L.tolist(),
        "frontier_params": N.tolist(), "steps": sweep.steps,
        "mean_loss": [m.tolist() for m in sweep.mean_loss()]})
    return ("after {final_loss!v} for N = {num_params!v}: L ∝ N^{size_exponent:.2f} (90% interval "
            "[{lo!v:.2f}, {size_exponent_hi!v:.2f}], R² {size_law_r2!v:.3f}); frontier L* ∝ "
            "C^{compute_exponent:.2f} (R² {frontier_r2!v:.3f}); compute-optimal N {compute_optimal_params!v}")
