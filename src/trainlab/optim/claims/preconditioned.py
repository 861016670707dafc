"""optim.preconditioned-solution: a fixed diagonal preconditioner M picks the M⁻¹-norm-minimal interpolant."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

import trainlab.functional as F
from trainlab.claims import Context, claim
from trainlab.optim.claims._shared import (
    SECTION,
    instance_draw,
    interpolant_tolerances,
    max_of,
    min_of,
    per_run,
    seeds,
    step_gain,
    steps_taken,
)
from trainlab.optim.problems import (
    min_norm_solution,
    preconditioned_solution,
    random_problems,
    smoothness,
    worked_example,
)
from trainlab.optim.runner import run_batch, torch_optim_reference
from trainlab.optim.samplers import FullBatch, MiniBatch
from trainlab.plotting import new_figure
from trainlab.threads import limit_threads
from trainlab.tolerance import carried, iteration_rounding, within

__all__ = ["preconditioned_solution_claim"]


def _torch_preconditioned_three_ways(
    x: Tensor, t: float, m: Tensor, lr: float, steps: int
) -> dict[str, Tensor]:
    """Preconditioned GD on one example with torch.optim.SGD, three ways (acceptance 4a)."""

    def loss(w: Tensor) -> Tensor:
        return 0.5 * (x @ w - t) ** 2

    out = {}
    # (i) a gradient hook multiplies the gradient by M
    w = torch.zeros_like(x, requires_grad=True)
    w.register_hook(lambda g: g * m)
    opt = torch.optim.SGD([w], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss(w).backward()
        opt.step()
    out["gradient hook"] = w.detach()
    # (ii) one parameter group per coordinate with learning rate η m_j
    coords = [torch.zeros(1, dtype=x.dtype, requires_grad=True) for _ in range(len(x))]
    opt = torch.optim.SGD([{"params": [c], "lr": lr * float(mj)} for c, mj in zip(coords, m, strict=True)])
    for _ in range(steps):
        opt.zero_grad()
        loss(torch.cat(coords)).backward()
        opt.step()
    out["param groups"] = torch.cat([c.detach() for c in coords])
    # (iii) plain GD on u with w = √M u
    u = torch.zeros_like(x, requires_grad=True)
    opt = torch.optim.SGD([u], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss(m.sqrt() * u).backward()
        opt.step()
    out["√M reparametrisation"] = (m.sqrt() * u).detach()
    return out


@claim("optim.preconditioned-solution", section=SECTION, statement="""
    Preconditioned GD/SGD (and heavy ball) with a fixed positive diagonal M, w ← w − ηM∇J, from 0
    with a stable step (η < 2/λ_max(M^½XᵀXM^½/n)) converges to the M⁻¹-norm-minimal interpolant
    M Xᵀ(XMXᵀ)⁻¹t: on x = [1, 0.1, 0.01], t = 1, M = diag(1, 100, 10⁴) that is [1, 10, 100]/3,
    while plain GD gives x/‖x‖².""")
def preconditioned_solution_claim(ctx: Context, instances: Sequence[int] | None = None) -> str:
    """``instances``: the random instances' seeds (default :func:`seeds` of ``ctx``; more for tests)."""
    instances = seeds(ctx) if instances is None else list(instances)
    c = ctx.checks
    with limit_threads():
        # 4a: the textbook example.
        ex = worked_example("x=[1,0.1,0.01],t=1")
        m = torch.tensor([1.0, 1e2, 1e4], dtype=torch.float64)
        w_M = preconditioned_solution(ex.X, ex.t, m)
        w_star = min_norm_solution(ex.X, ex.t)
        textbook = torch.tensor([[1.0, 10.0, 100.0]], dtype=torch.float64) / 3
        L_M = float(smoothness(ex.X * m.sqrt()))  # λmax_of(M^½ H M^½) = xᵀMx = 3 here
        lr, big_lr = 0.5, 0.68  # stable, and beyond 2/L_M = 2/3
        tr = run_batch(ex, F.preconditioned_sgd(lr, m), 50, record_params=True, record_every=1, tol=0.0)
        ex_err = float(tr.final_relative_distance(textbook)[0])
        three = _torch_preconditioned_three_ways(ex.X[0, 0], float(ex.t[0, 0]), m, lr, 50)
        three_diff = max(float((v - tr.final_params[0]).abs().max()) for v in three.values())
        big = run_batch(ex, F.preconditioned_sgd(big_lr, m), 3000)
        gd = run_batch(ex, F.sgd(lr=float(1 / smoothness(ex.X))), 5000)
        c.expect("textbook_w_M", textbook[0])
        c.expect("plain_gd_w_star", w_star[0])
        c.record("textbook_x", ex.X[0, 0])
        c.record("textbook_m", m)
        c.record("textbook_w_T", tr.final_params[0])
        c.at_most("textbook_rel_err_vs_w_M", ex_err, 1e-10, expected=0.0)
        c.at_most("closed_form_w_M_vs_textbook", float((w_M - textbook).abs().max()), 1e-12, expected=0.0)
        c.at_most("textbook_torch_three_ways_max_abs_diff", three_diff, 1e-12, expected=0.0)
        c.record("textbook_lr", lr)
        c.record("textbook_big_lr", big_lr)
        c.record("textbook_stability_bound", 2 / L_M)
        c.holds("textbook_big_lr_diverges", bool(big.diverged[0]),
                f"preconditioned GD at η = {big_lr} > 2/L_M diverges")
        c.record("textbook_big_lr_diverged_at", int(big.diverged_at[0]))
        c.record("plain_gd_w_T", gd.final_params[0])
        c.at_most("plain_gd_rel_err_vs_w_star", max_of(gd.final_relative_distance(w_star)), 1e-8,
                  expected=0.0)

        # 4b: random instances with m log-uniform on [1e-2, 1e2].
        problem = random_problems(20, 100, instances)
        mr = 10 ** (4 * instance_draw(instances, "optim.preconditioner", problem.d, uniform=True) - 2)
        wM_r = preconditioned_solution(problem.X, problem.t, mr)
        ws_r = min_norm_solution(problem.X, problem.t)
        LM = smoothness(problem.X * mr.sqrt().unsqueeze(1))
        RM = (problem.X.pow(2) * mr.unsqueeze(1)).sum(-1).max(-1).values  # max_i x_iᵀ M x_i
        settings = [  # label, optimizer, sampler, step, momentum
            ("precond. GD, η = 1/L_M", F.preconditioned_sgd(per_run(1 / LM), mr), FullBatch(), 1 / LM, 0.0),
            ("precond. SGD b=1, η = 1/max xᵢᵀMxᵢ", F.preconditioned_sgd(per_run(1 / RM), mr), MiniBatch(1),
             1 / RM, 0.0),
            (
                "precond. heavy ball μ=0.9, η = 0.5/L_M",
                F.preconditioned_sgd(per_run(0.5 / LM), mr, momentum=0.9),
                FullBatch(), 0.5 / LM, 0.9,
            ),
        ]
        # In u = M^(-½)w each run is plain GD/SGD/heavy ball on X̃ = XM^½ from 0, so u stays in the
        # row space of X̃ and u_M = M^(-½)w_M is its min-norm interpolant: the bounds of the min-norm
        # claims hold for u with X̃, and ‖w − w_M‖/‖w_M‖ ≤ κ(M^½)·‖u − u_M‖/‖u_M‖.
        Xt = problem.X * mr.sqrt().unsqueeze(1)
        uM = wM_r / mr.sqrt()
        kappa_half = (mr.amax(-1) / mr.amin(-1)).sqrt()
        rand: dict[str, dict[str, float]] = {}
        traces = {}
        errs, tols, errs_m, tols_m = [], [], [], []
        for k, (label, opt, sampler, lr_k, mu) in enumerate(settings):
            ctx.progress(label)
            trk = run_batch(
                problem,
                opt,
                50_000,
                sampler=sampler,
                generator=ctx.generator(30 + k),
                record_params=True,
                record_every=10,
            )
            traces[label] = trk
            rel = trk.final_relative_distance(wM_r)
            batch = getattr(sampler, "batch_size", None)
            assert trk.params is not None
            scale = (trk.params / mr.sqrt()).norm(dim=-1).amax(0) / uM.norm(dim=-1) + 1
            gain = step_gain(problem.X, lr_k, batch, mu, m=mr)
            width = problem.d + (batch or problem.n) + 5
            tol_u, _ = interpolant_tolerances(Xt, steps_taken(trk), gain, width, scale)
            errs.append(rel)
            tols.append(kappa_half * tol_u)
            errs_m.append((trk.final_params / mr.sqrt() - uM).norm(dim=-1) / uM.norm(dim=-1))
            tols_m.append(tol_u)
            rand[label] = {
                "rel_err_vs_w_M": max_of(rel),
                "min_rel_err_vs_w_star": min_of(trk.final_relative_distance(ws_r)),
                "max_steps": int(trk.converged_at.max()),
                "all_converged": bool(trk.converged.all()),
            }

        # Cross-check the random GD run against torch.optim.SGD with a gradient hook.
        def hooked(params: list[Tensor]) -> torch.optim.Optimizer:
            params[0].register_hook(lambda g: g * mr[0])
            return torch.optim.SGD(params, lr=float(1 / LM[0]))

        ref = torch_optim_reference(problem, hooked, 50_000, runs=[0])
        gd = traces[settings[0][0]]
        torch_diff = float((ref[0] - gd.final_params[0]).abs().max())
        # two roundings of one GD run in u, each ≤ T·gain·γ·2‖u_M‖; |Δw| ≤ √max m · ‖Δu‖
        gain0 = step_gain(problem.X[:1], 1 / LM[:1], m=mr[:1])
        torch_tol = 2 * iteration_rounding(carried(steps_taken(gd)[0]), problem.d + problem.n + 5, gain0) * (
            2 * uM[0].norm() * mr[0].max().sqrt()
        )
        c.record("random", rand)
        c.expect("random", "rel_err_vs_w_M within its derived bound, vs w* ≥ 0.5")
        within(c, "random_rel_err_vs_w_M", torch.cat(errs), torch.cat(tols),
               "κ(M^½)·[κ(XM^½)·(τ + residual rounding) + T·gain·γ_(d+b+5)·scale "
               "+ closed-form rounding of XM^½]")
        within(c, "random_rel_err_vs_w_M_in_M_inverse_norm", torch.cat(errs_m), torch.cat(tols_m),
               "the same without κ(M^½): ‖w − w_M‖_(M⁻¹) = ‖u − u_M‖")
        c.at_least("random_min_rel_err_vs_w_star",
                   min(v["min_rel_err_vs_w_star"] for v in rand.values()), 0.5)
        c.holds("random_all_converged", all(v["all_converged"] for v in rand.values()),
                "every run reaches ‖Xw − t‖/‖t‖ ≤ 1e-10 in 50,000 steps")
        within(c, "random_gd_vs_torch_hook_max_abs_diff", [torch_diff], torch_tol,
               "2 × T·gain·γ_(d+n+5)·2‖u_M‖·√max m (two roundings of one run, in u = M^(-½)w)")

    fig, axes = new_figure(1, 2, size=(10, 3.8))
    assert tr.params is not None
    axes[0].semilogy(
        tr.steps, tr.relative_distance(w_M)[:, 0].clamp_min(1e-17), label="to w_M = [1, 10, 100]/3"
    )
    axes[0].semilogy(tr.steps, tr.relative_distance(w_star)[:, 0], label="to w* = x/‖x‖²")
    axes[0].set(
        xlabel="step", ylabel="relative distance", title="x = [1, .1, .01], M = diag(1, 1e2, 1e4), η = 0.5"
    )
    axes[0].legend(fontsize=8)
    for label, trk in traces.items():
        line = axes[1].semilogy(
            trk.steps, trk.relative_distance(wM_r).median(1).values.clamp_min(1e-17), label=label
        )[0]
        axes[1].semilogy(
            trk.steps, trk.relative_distance(ws_r).median(1).values, ls="--", color=line.get_color()
        )
    axes[1].set(
        xlabel="step",
        ylabel="median relative distance (solid: w_M, dashed: w*)",
        title="random instances, m log-uniform [1e-2, 1e2]",
    )
    axes[1].legend(fontsize=7)
    ctx.save_figure(
        fig,
        "distance",
        {
            "textbook_steps": tr.steps,
            "textbook_to_w_M": tr.relative_distance(w_M),
            "textbook_to_w_star": tr.relative_distance(w_star),
            **{
                k: {
                    "steps": v.steps,
                    "to_w_M": v.relative_distance(wM_r),
                    "to_w_star": v.relative_distance(ws_r),
                }
                for k, v in traces.items()
            },
        },
    )
    return (
        "x={textbook_x}, M=diag{textbook_m}, η={textbook_lr}: ‖w_T − w_M‖/‖w_M‖ {textbook_rel_err_vs_w_M} "
        "(hook/param groups/√M reparam agree to {textbook_torch_three_ways_max_abs_diff}), "
        "η={textbook_big_lr} > 2/L_M = {textbook_stability_bound:.4f} diverges at step "
        "{textbook_big_lr_diverged_at}; random: ‖w−w_M‖/‖w_M‖ {random_rel_err_vs_w_M}, "
        "‖w−w*‖/‖w*‖ {random_min_rel_err_vs_w_star}"
    )
