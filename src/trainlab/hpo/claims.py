"""Claims of §2 (CLAIMS.md): hypergradients through training, registered on import.

Protocols were designed on seeds 0–2 and checked on seeds 11, 23, 37, 58, 91 and 1234
(``trainlab verify 'hpo.*' --seed S``). Every problem is drawn from the claim's seed, and every
float tolerance is derived from it: the rounding of training t steps and of the closed forms
(:meth:`LeastSquaresClosedForm.trained_rounding`, :meth:`~LeastSquaresClosedForm.closed_form_rounding`),
propagated through each comparison; the checks record the bound beside what they measured.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from trainlab.claims import Context, claim
from trainlab.hpo.closed_form import LeastSquaresClosedForm
from trainlab.hpo.hypergrad import hypergradient
from trainlab.hpo.tune import grid_search_lr, online_lr, tune_lr
from trainlab.hpo.unroll import Unroll
from trainlab.problems import Problem, load_problem
from trainlab.threads import limit_threads
from trainlab.tolerance import within

__all__: list[str] = []

SECTION = "§2 Gradient-based hyperparameter optimization"
EPS = float(np.finfo(np.float64).eps)


def _trained_loss(problem: Problem, eta: float, steps: int) -> float:
    """L_t(η) by actually running t full-batch GD steps from w₀ = 0."""
    u = Unroll(problem, steps, "sgd", {"lr": eta})
    with torch.no_grad():
        return float(u.final_loss(u.run(u.constant(u.hyper_tensors(()), ()))))


def _parabola_vertex(xs: list[float], ys: list[float]) -> float:
    """Vertex of the parabola through three points (one step of successive parabolic interpolation)."""
    (x0, x1, x2), (y0, y1, y2) = xs, ys
    num = (x1 - x0) ** 2 * (y1 - y2) - (x1 - x2) ** 2 * (y1 - y0)
    den = (x1 - x0) * (y1 - y2) - (x1 - x2) * (y1 - y0)
    return x1 - 0.5 * num / den


@claim(
    "hpo.one-step-optimal-lr",
    section=SECTION,
    statement="""
    With a = Xw₀ − t, after one GD step L₁(η) = (1/n)‖(I − (2η/n)XXᵀ)a‖², a convex quadratic
    in η, minimized at η* = (n/2)·aᵀXXᵀa / aᵀ(XXᵀ)²a (undefined only when XXᵀa = 0).""",
)
def one_step_optimal_lr(ctx: Context) -> str:
    p = load_problem("linreg", n=20, d=100, seed=ctx.claim_seed)
    cf = LeastSquaresClosedForm(p.x, p.y)
    eta_closed = ctx.checks.expect("eta_star_closed_form", cf.eta_star())
    bound = p.stable_lr_bound
    with limit_threads(1):
        # A numerical minimiser of the *trained* L₁: successive parabolic interpolation
        # (exact for a quadratic up to rounding; a second pass on a tighter bracket).
        xs1 = [0.1 * bound, 0.5 * bound, 0.9 * bound]
        v = _parabola_vertex(xs1, [_trained_loss(p, x, 1) for x in xs1])
        xs = [0.9 * v, v, 1.1 * v]
        eta_numeric = _parabola_vertex(xs, [_trained_loss(p, x, 1) for x in xs])

        # Hypergradient descent on η: η ← η − α dL₁/dη (reverse mode through the step), with
        # α = 1/(2c) and c = L₁'' measured by a secant of two hypergradients.
        def hg(eta: float) -> float:
            return hypergradient(p, 1, lr=eta, mode="reverse", check_memory=False).hypergradient["lr"]

        eta = 0.05 * bound
        g0, g1 = hg(eta), hg(2 * eta)
        alpha = 0.5 * eta / (g1 - g0)
        g = g0
        path = [eta]
        for _ in range(200):
            step = alpha * g
            eta -= step
            path.append(eta)
            if abs(step) <= 4 * EPS * abs(eta):
                break
            g = hg(eta)
        eta_hd = eta
        # Hypergradient vs a central difference of the trained loss (exact for a quadratic
        # up to rounding, so a small relative step is safe).
        fd_errs, fd_tols = [], []
        L0, S1 = cf.loss(0.0, 1), cf.hypergradient_scale(1)
        for frac in (0.2, 0.5, 0.8):
            x = frac * bound
            h = 1e-4 * x
            fd = (_trained_loss(p, x + h, 1) - _trained_loss(p, x - h, 1)) / (2 * h)
            fd_errs.append(abs(hg(x) - fd) / max(abs(fd), 1e-300))
            # L₁ is quadratic, so the central difference is exact but for rounding: each trained
            # loss is off by ε_run·L₀ (over 2h), x ± h by u·x; the hypergradient by 2ε_run·S₁.
            eps = cf.trained_rounding(x + h, 1)
            slope = abs(cf.dloss(x, 1))
            err = eps * L0 / h + 2 * eps * S1 + slope * 2 * EPS * x / h
            fd_tols.append(err / (slope - err))
        closed = [(abs(hg(f * bound) - cf.dloss(f * bound, 1)), f * bound) for f in (0.2, 0.8)]
    # Tolerances from the instance (rounding of one trained step and of the closed forms):
    curv = cf.d2loss(eta_closed, 1)  # L₁'' (a constant: L₁ is quadratic)
    eps_star = cf.eta_star_rounding()
    # A parabola through 3 points h apart puts its vertex δ/(L''h) off when the values are δ off,
    # plus |x₁ − η*|·4δ/(L''h²) through the second difference; the second pass starts from the first.
    h1, d1 = 0.4 * bound, max(cf.trained_rounding(x, 1) for x in xs1) * L0
    first_err = d1 / (curv * h1) * (1 + 4 * abs(xs1[1] - eta_closed) / h1)
    h2, d2 = 0.1 * v, max(cf.trained_rounding(x, 1) for x in xs) * L0
    numeric_err = d2 / (curv * h2) * (1 + 4 * first_err / h2) + 8 * EPS * eta_closed
    rtol_numeric = numeric_err / eta_closed + eps_star
    # Hypergradient descent stops when |α g| ≤ 4ε|η| with α ≈ 1/(2L''): |η − η*| ≤ 8ε|η| + |δg|/L''.
    rtol_hd = 8 * EPS + 2 * cf.trained_rounding(eta_closed, 1) * S1 / (curv * eta_closed) + eps_star
    c = ctx.checks
    c.close("eta_star_numeric", eta_numeric, eta_closed, rtol=rtol_numeric)
    c.expect("eta_star_numeric_tolerance", "δ/(L''h)·(1 + 4|v₁ − η*|/h)/η* + 8ε + closed-form rounding, "
             "δ = ε_run·L₀ the trained losses' rounding, h = 0.1v")
    c.close("eta_star_hypergradient_descent", eta_hd, eta_closed, rtol=rtol_hd)
    c.expect("eta_star_hypergradient_descent_tolerance", "8ε + 2ε_run·S₁/(L''η*) + closed-form rounding")
    within(c, "hypergradient_vs_fd_rel_err", fd_errs, fd_tols,
           "(ε_run·L₀/h + 2ε_run·S₁ + |L'|·2εx/h)/(|L'| − ...), at η = 0.2, 0.5, 0.8 × 2/λ_max")
    within(c, "hypergradient_vs_closed_form_rel_err", [e / abs(cf.dloss(x, 1)) for e, x in closed],
           [(2 * cf.trained_rounding(x, 1) + cf.closed_form_rounding(1)) * S1 / abs(cf.dloss(x, 1))
            for _, x in closed],
           "(2ε_run + ε_cf)·S₁/|dL₁/dη|, S₁ = 4λ_max‖a‖²/n²")
    c.record("hd_iterations", len(path) - 1)

    from trainlab.plotting import new_figure

    fig, ax = new_figure(size=(6.0, 4.0))
    etas = np.linspace(0, bound, 101)
    ax.plot(etas, [cf.loss(e, 1) for e in etas], label="closed form L₁(η)")
    ax.plot(etas[5::10], [_trained_loss(p, e, 1) for e in etas[5::10]], "o", ms=4, label="one trained step")
    ax.axvline(eta_closed, color="black", ls="--", label="η* closed form")
    ax.plot([eta_numeric], [cf.loss(eta_numeric, 1)], "s", mfc="none", ms=10, label="numerical minimiser")
    ax.plot(
        path[:30], [cf.loss(e, 1) for e in path[:30]], ".-", ms=5, alpha=0.6, label="hypergradient descent"
    )
    ax.set_xlabel("learning rate η")
    ax.set_ylabel("L₁(η)")
    ax.legend(fontsize=8)
    ctx.save_figure(
        fig,
        "one-step-loss",
        {
            "eta": etas.tolist(),
            "loss": [cf.loss(e, 1) for e in etas],
            "eta_star": eta_closed,
            "hd_path": path,
        },
    )
    return (
        "η* = {eta_star_numeric} (numerical minimiser of the trained loss), "
        "{eta_star_hypergradient_descent} by hypergradient descent in {hd_iterations} steps; "
        "hypergradient vs central difference {hypergradient_vs_fd_rel_err}, "
        "vs closed form {hypergradient_vs_closed_form_rel_err}"
    )


@claim(
    "hpo.multi-step-loss",
    section=SECTION,
    statement="""
    After t GD steps L_t(η) = (1/n)‖(I − (2η/n)XXᵀ)^t a‖², and L_t is convex in η (its second
    derivative is a sum of even powers of commuting symmetric matrices).""",
)
def multi_step_loss(ctx: Context) -> str:
    p = load_problem("linreg", n=20, d=40, seed=ctx.claim_seed)
    cf = LeastSquaresClosedForm(p.x, p.y)
    steps = [1, 2, 5, 10, 50] if ctx.quick else [1, 2, 5, 10, 50, 200]
    etas = np.linspace(0.0, cf.stable_lr, 41).tolist()
    with limit_threads(1):
        grid = grid_search_lr(p, steps, etas)  # training, all η at once
        closed = [[cf.loss(e, t) for e in etas] for t in steps]
        L0 = cf.loss(0.0, 1)
        err = [  # per t: max over η of |trained − closed form|/L₀
            max(abs(m - c) for m, c in zip(row_m, row_c, strict=True)) / L0
            for row_m, row_c in zip(grid.losses, closed, strict=True)
        ]
        # Second differences of the *trained* losses, each of the three off by ≤ ε_run·L₀.
        second = [
            min(row[j - 1] - 2 * row[j] + row[j + 1] for j in range(1, len(row) - 1)) / L0
            for row in grid.losses
        ]
        run_eps = [max(cf.trained_rounding(e, t) for e in (etas[0], etas[-1])) for t in steps]
        second_tol = [4 * e for e in run_eps]
        # Hypergradients through t steps (reverse mode) against the closed-form dL_t/dη.
        eta_mid = 0.5 * cf.stable_lr
        hg_err = [
            abs(hypergradient(p, t, lr=eta_mid, check_memory=False).hypergradient["lr"]
                - cf.dloss(eta_mid, t))
            / abs(cf.dloss(eta_mid, t))
            for t in steps
        ]
        hg_tol = [
            (2 * cf.trained_rounding(eta_mid, t) + cf.closed_form_rounding(t)) * cf.hypergradient_scale(t)
            / abs(cf.dloss(eta_mid, t))
            for t in steps
        ]
    curves = cf.curves(steps, etas)
    curves.measured = grid.losses
    c = ctx.checks
    labels = [f"t={t}" for t in steps]
    within(c, "closed_form_vs_training", err, [e + cf.closed_form_rounding(t) for e, t in zip(run_eps, steps,
                                                                                             strict=True)],
           "ε_run(η, t) + ε_cf(t): rounding of t trained steps and of the eigendecomposition, relative to L₀",
           labels)
    # judged at the t nearest its bound (all pass exactly when that one does)
    i = min(range(len(steps)), key=lambda k: second[k] + second_tol[k])
    c.at_least("min_second_difference", second[i], -second_tol[i])
    c.expect("min_second_difference_tolerance", "−4·ε_run(η, t): three trained losses, each off by ε_run·L₀")
    c.record("min_second_difference_tolerance", dict(zip(labels, second_tol, strict=True)))
    c.at_least("min_closed_form_curvature", min(cf.d2loss(e, t) for t in steps for e in etas), 0.0)
    within(c, "hypergradient_vs_closed_form", hg_err, hg_tol,
           "(2ε_run + ε_cf)·S_t/|dL_t/dη|, S_t = 4t·λ_max‖a‖²/n², at η = 1/λ_max", labels)
    c.record("steps", steps)
    # η*_t moves with t (η*₁ may even exceed 2/λ_max): the best rate depends on the horizon
    ctx.checks.record("eta_star_by_t", curves.eta_star)
    ctx.checks.record("stable_lr", cf.stable_lr)
    from trainlab.plotting import new_figure

    fig, ax = new_figure(size=(6.4, 4.6))
    curves.plot(ax)
    ctx.save_figure(
        fig,
        "loss-vs-eta",
        {
            "etas": etas,
            "steps": steps,
            "closed_form": closed,
            "trained": grid.losses,
            "eta_star": curves.eta_star,
        },
    )
    return (
        "L_t(η) closed form vs training for t in {steps!v}: max error/L₀ {closed_form_vs_training}; "
        "second differences {min_second_difference}; dL_t/dη {hypergradient_vs_closed_form}; "
        "η*_t {eta_star_by_t!v} (2/λ_max {stable_lr!v})"
    )


def _fit_line(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    """Least-squares y = a + b x: (a, b, R²)."""
    A = np.vstack([np.ones(len(xs)), xs]).T
    (a, b), *_ = np.linalg.lstsq(A, np.asarray(ys, dtype=float), rcond=None)
    pred = A @ np.array([a, b])
    ss = float(np.sum((np.asarray(ys) - np.mean(ys)) ** 2))
    r2 = 1 - float(np.sum((np.asarray(ys) - pred) ** 2)) / ss if ss > 0 else 1.0
    return float(a), float(b), r2


def _memory_setup(ctx: Context) -> tuple[Problem, list[int], float]:
    """hpo.memory-forward-vs-reverse's problem (n = 10, d = 20,000, from the claim's seed), horizons, step."""
    p = load_problem("linreg", n=10, d=20_000, seed=ctx.claim_seed)
    horizons = [3, 30, 300] if ctx.quick else [10, 100, 1000]
    return p, horizons, 0.01 * p.stable_lr_bound


def _forward_reverse_agreement(
    p: Problem, horizons: list[int], lr: float, forward: list, reverse: list
) -> tuple[list[float], list[float]]:
    """Per horizon: |forward − reverse|/|reverse| of dL_T/dη, and its derived bound (both modes differentiate
    the same T steps; each within 2ε_run·S_T of the exact value)."""
    cf = LeastSquaresClosedForm(p.x, p.y)
    rel = [abs(f.hypergradient["lr"] - r.hypergradient["lr"]) / abs(r.hypergradient["lr"])
           for f, r in zip(forward, reverse, strict=True)]
    tol = [4 * cf.trained_rounding(lr, T) * cf.hypergradient_scale(T) / abs(cf.dloss(lr, T))
           for T in horizons]
    return rel, tol


@claim(
    "hpo.memory-forward-vs-reverse",
    section=SECTION,
    statement="""
    Reverse-mode differentiation through t steps must keep every intermediate w_k: memory O(t).
    Forward mode (carrying dw_k/dη alongside w_k) needs O(1) memory in t, at a cost per
    hyperparameter.""",
)
def memory_forward_vs_reverse(ctx: Context) -> str:
    # Memory is the process's peak RSS above its start (sampled every ms, freed heap trimmed
    # first): the same meter for every mode, tangents and checkpoints included. The problem is
    # wide (d = 20,000, 160 kB per w_k) so one step's state dwarfs the meter's noise.
    p, horizons, lr = _memory_setup(ctx)
    d = p.x.shape[1]
    state_bytes = d * 8
    results: dict[str, list] = {}
    with limit_threads(1):
        for mode in ("forward", "reverse", "checkpoint"):
            hypergradient(p, 2, lr=lr, mode=mode, check_memory=False)  # first-call set-up off the books
            results[mode] = []
            for T in horizons:
                ctx.progress(f"{mode} T={T}")
                results[mode].append(hypergradient(p, T, lr=lr, mode=mode, measure="rss", check_memory=False))
        saved = [
            hypergradient(p, T, lr=lr, mode="reverse", measure="saved", check_memory=False).peak_memory_bytes
            for T in horizons
        ]
    mem = {m: [r.peak_memory_bytes for r in rs] for m, rs in results.items()}
    fits = {m: _fit_line([float(T) for T in horizons], [float(b) for b in mem[m]]) for m in mem}
    slopes = {
        m: round(float(np.polyfit(np.log(horizons), np.log(np.maximum(mem[m], 1)), 1)[0]), 3) for m in mem
    }
    agree, agree_tol = _forward_reverse_agreement(p, horizons, lr, results["forward"], results["reverse"])
    # Theory: reverse keeps at least one w_k (d floats) per step; forward keeps none. What the
    # graph keeps is counted exactly by the saved-tensor meter; the process's RSS confirms it
    # (looser: the heap can reuse memory freed earlier in the process).
    saved_fit = _fit_line([float(T) for T in horizons], [float(b) for b in saved])
    ctx.checks.at_least("reverse_bytes_per_step", saved_fit[1], state_bytes, expected=f">= {state_bytes}")
    ctx.checks.at_least("reverse_linear_r2", saved_fit[2], 0.99)
    ctx.checks.at_least("reverse_rss_bytes_per_step", fits["reverse"][1], 0.5 * state_bytes)
    # Keeping any w_k per step costs ≥ one state per step; a quarter of one separates that
    # from "keeps none" with room for the RSS sampler's ~1 MB noise over a few hundred steps.
    ctx.checks.at_most("forward_bytes_per_step", fits["forward"][1], 0.25 * state_bytes, expected=0.0)
    within(ctx.checks, "forward_vs_reverse_rel_diff", agree, agree_tol,
           "4ε_run(η, T)·S_T/|dL_T/dη|: each mode within 2ε_run·S_T of the exact hypergradient",
           [f"T={T}" for T in horizons])
    ctx.checks.record("horizons", horizons)
    ctx.checks.record("peak_rss_bytes", mem)
    ctx.checks.record("loglog_slopes", slopes)
    ctx.checks.record("reverse_saved_tensor_bytes", saved)
    ctx.checks.record("seconds", {m: [round(r.seconds, 3) for r in rs] for m, rs in results.items()})
    ctx.checks.record("forward_ratio_max_min", mem["forward"][-1] / max(mem["forward"][0], 1))

    from trainlab.plotting import new_figure

    fig, ax = new_figure(size=(6.0, 4.2))
    for m in mem:
        ax.loglog(horizons, [max(b, 1) / 1e6 for b in mem[m]], "o-", label=f"{m} (slope {slopes[m]:.2f})")
    ax.loglog(horizons, [b / 1e6 for b in saved], "x:", label="reverse: bytes saved by autograd")
    ax.set_xlabel("steps T")
    ax.set_ylabel("peak extra memory (MB)")
    ax.set_title(f"hypergradient memory, least squares d = {d:,}")
    ax.legend(fontsize=8)
    ctx.save_figure(
        fig,
        "memory-vs-steps",
        {"horizons": horizons, "peak_rss_bytes": mem, "saved_bytes_reverse": saved, "slopes": slopes},
    )
    return (
        "over T = {horizons!v}: reverse's graph keeps {reverse_bytes_per_step} bytes per step "
        "(R² {reverse_linear_r2}; RSS {reverse_rss_bytes_per_step}), forward's RSS grows "
        "{forward_bytes_per_step} per step; RSS log–log slopes {loglog_slopes!v}; "
        "hypergradients agree to {forward_vs_reverse_rel_diff}"
    )


@claim(
    "hpo.learn-the-lr",
    section=SECTION,
    statement="""
    Gradient descent on η itself (offline, through the unrolled loop; and online hypergradient
    descent, which adapts η every step) finds a good learning rate from a poor start.""",
)
def learn_the_lr(ctx: Context) -> str:
    p = load_problem("linreg", n=20, d=30, seed=ctx.claim_seed)
    cf = LeastSquaresClosedForm(p.x, p.y)
    T = 30 if ctx.quick else 100
    T_online = 200
    eta0 = 0.01 * cf.stable_lr  # a poor start: 1% of the stable bound
    etas = np.geomspace(eta0, cf.stable_lr, 60).tolist()
    cell = math.log(etas[1] / etas[0])
    with limit_threads(1):
        grid = grid_search_lr(p, [T, T_online], etas)
        eta_grid, loss_grid = grid.best(0)
        eta_grid_online, _ = grid.best(1)
        offline = tune_lr(p, T, lr=eta0, meta_steps=40 if ctx.quick else 60, meta_lr=0.2, mode="reverse")
        # β = 0.02 multiplicative: η can grow at most e^{βT} = e⁴ ≈ 55-fold from 1% of 2/λ_max,
        # so the online run stays stable by construction (an additive β would need the scale of ∇J).
        online = online_lr(p, T_online, lr=eta0, hypergrad_lr=0.02, multiplicative=True)
        const = grid_search_lr(p, list(range(1, T_online + 1)), [eta0])
    const_curve = [row[0] for row in const.losses]
    online_curve = [h["loss"] for h in online.history[1:]] + [online.loss]  # loss after k = 1 … T steps
    ctx.checks.at_most(
        "offline_log_distance_to_grid", abs(math.log(offline.lr / eta_grid)), cell, expected=0.0
    )
    # both losses come from training T steps, each within ε_run·L₀ of exact
    slack = 2 * max(cf.trained_rounding(e, T) for e in (offline.lr, eta_grid)) * cf.loss(0.0, 1) / loss_grid
    ctx.checks.at_most("offline_loss_vs_grid_best", offline.loss / loss_grid, 1 + slack, expected="<= 1")
    ctx.checks.expect("offline_loss_vs_grid_best_tolerance", "1 + 2ε_run(η, T)·L₀/L_grid")
    ctx.checks.at_most("offline_loss_vs_start", offline.loss / offline.start_loss, 0.5)
    ctx.checks.at_most("online_final_loss_vs_constant_start", online.loss / const_curve[-1], 0.5)
    ctx.checks.at_most(
        "online_mean_log10_loss_gain",
        float(np.mean(np.log10(online_curve)) - np.mean(np.log10(const_curve))),
        0.0,
    )
    ctx.checks.holds(
        "online_moves_toward_grid",
        abs(math.log(online.lr / eta_grid_online)) < abs(math.log(eta0 / eta_grid_online)),
        "η_online closer to the grid optimum than η₀",
    )
    ctx.checks.record("eta_start", eta0)
    ctx.checks.record("eta_offline", offline.lr)
    ctx.checks.record("eta_grid", eta_grid)
    ctx.checks.record("eta_online", online.lr)
    ctx.checks.record("eta_grid_online_horizon", eta_grid_online)
    ctx.checks.record("eta_star_one_step", cf.eta_star())  # the greedy (horizon-1) optimum
    ctx.checks.record("eta_star_T_closed_form", cf.minimiser(T))
    ctx.checks.record("horizon", T)

    from trainlab.plotting import new_figure

    fig, (a1, a2) = new_figure(1, 2, size=(10.0, 4.0))
    offline.plot(a1)
    a1.axhline(eta_grid, color="black", ls="--", label=f"grid optimum (T = {T})")
    a1.axhline(cf.eta_star(), color="grey", ls=":", label="η*₁ (one step)")
    a1.legend(fontsize=8)
    a1.set_title("offline: descent on log η through the unrolled run")
    online.plot(a2)
    a2.axhline(eta_grid_online, color="black", ls="--", label=f"grid optimum (T = {T_online})")
    a2.axhline(cf.eta_star(), color="grey", ls=":", label="η*₁ (one step)")
    a2.legend(fontsize=8)
    a2.set_title("online: SGD-HD (multiplicative, β = 0.02)")
    ctx.save_figure(
        fig,
        "eta-over-iterations",
        {
            "offline": offline.history,
            "online": online.history,
            "eta_grid": eta_grid,
            "eta_grid_online": eta_grid_online,
            "eta_star_one_step": cf.eta_star(),
            "grid_etas": etas,
            "grid_losses": grid.losses,
            "constant_start_curve": const_curve,
        },
    )
    return (
        "offline η {eta_offline!v} vs grid optimum {eta_grid!v} (T = {horizon!v}; log-distance "
        "{offline_log_distance_to_grid}), loss ratio to grid best {offline_loss_vs_grid_best}; "
        "online SGD-HD η {eta_start!v} → {eta_online!v}, final loss vs constant start "
        "{online_final_loss_vs_constant_start}"
    )
