"""Claims of CLAIMS.md §1: which solution does an optimizer find?

Setups, metrics and tolerances follow the acceptance table (shared/optim-acceptance.md).
Every run is float64, from w₀ = 0 unless said otherwise, on J(w) = (1/2n)‖Xw − t‖²
(:mod:`trainlab.optim.problems`), and stops when ‖Xw − t‖/‖t‖ ≤ 1e-10. Each claim
cross-checks the vectorised runner against ``torch.optim`` on some of its runs. One module
per claim family; importing this package registers the seven claims in this order.
"""

from __future__ import annotations

from trainlab.claims import Claim, register
from trainlab.optim.claims._shared import SECTION
from trainlab.optim.claims.adaptive import (
    COURSE_RMSPROP_STEPS,
    course_rmsprop_steps,
    run_adaptive_not_min_norm,
    wilson_construction,
)
from trainlab.optim.claims.min_norm import run_gd_min_norm, run_momentum_min_norm, run_sgd_min_norm
from trainlab.optim.claims.preconditioned import run_preconditioned_solution
from trainlab.optim.claims.sampling import run_nonuniform_sampling
from trainlab.optim.claims.weight_decay import run_weight_decay_vs_l2

__all__ = ["CLAIM_IDS", "COURSE_RMSPROP_STEPS", "STATEMENTS", "course_rmsprop_steps", "wilson_construction"]

CLAIM_IDS = (
    "optim.gd-min-norm",
    "optim.sgd-min-norm",
    "optim.momentum-min-norm",
    "optim.adaptive-not-min-norm",
    "optim.preconditioned-solution",
    "optim.nonuniform-sampling",
    "optim.weight-decay-vs-l2",
)


def _statement(text: str) -> str:
    """One line from a wrapped triple-quoted paragraph."""
    return " ".join(text.split())


STATEMENTS = {
    "optim.gd-min-norm": """
        Full-batch GD from w₀ = 0 with a stable step (0 < η < 2/λ_max(XᵀX/n); here η = 1/L) converges
        to the minimum-norm interpolant w* = Xᵀ(XXᵀ)⁻¹t, and every iterate stays in the row space of X.
        From a random w₀ it converges to w* + (I − P)w₀ instead; beyond the bound (η = 2.05/L) it
        diverges.""",
    "optim.sgd-min-norm": """
        Single-example and mini-batch SGD (b = 1 reshuffled or with replacement, b = 5, …) from 0 with a
        small enough constant step (η = 1/max‖x_i‖², 3/max‖x_i‖² for b = 5) converges to the same w*:
        each update is a combination of the x_i, so iterates never leave span{x_i}.""",
    "optim.momentum-min-norm": """
        Heavy-ball and Nesterov momentum (velocity starting at 0, any dampening), full batch or
        stochastic, from 0 with a stable step converge to w*: the velocity is a sum of gradients, all in
        span{x_i}.""",
    "optim.adaptive-not-min-norm": """
        AdaGrad, RMSProp and Adam from 0 with ε small relative to |g| interpolate but generally not at
        w*: on x = [2, 1], t = 2 and x = [1, 2], t = 3 every step is along sign(g) = ±[1, 1], so they end
        at [2/3, 2/3] and [1, 1], at relative distance 1/3 from w*. When sign(g) lies in the row space
        they do reach w*; as ε grows they become plain GD and reach w*. On Wilson et al.'s (2017)
        construction the adaptive interpolant misclassifies every negative test point while GD's has
        test error 0. The course's RMSProp two steps ≈[0.314, 0.311], ≈[0.467, 0.463] follow from its
        update with ε = 0.01 (ε → 0 gives [0.316, 0.316]).""",
    "optim.preconditioned-solution": """
        Preconditioned GD/SGD (and heavy ball) with a fixed positive diagonal M, w ← w − ηM∇J, from 0
        with a stable step (η < 2/λ_max(M^½XᵀXM^½/n)) converges to the M⁻¹-norm-minimal interpolant
        M Xᵀ(XMXᵀ)⁻¹t: on x = [1, 0.1, 0.01], t = 1, M = diag(1, 100, 10⁴) that is [1, 10, 100]/3,
        while plain GD gives x/‖x‖².""",
    "optim.nonuniform-sampling": """
        SGD sampling example i with probability p_i (loss not reweighted) from 0 with η = 1/max‖x_i‖²
        converges to w*, and E‖w_k − w*‖² ≤ (1 − ρ)^k‖w*‖² with ρ = η(2 − η max‖x_i‖²)λ⁺(Σ p_i x_i x_iᵀ)
        (randomized Kaczmarz: ρ = σ⁺_min²/‖X‖_F²). The sampling-weighted loss L_p = Σ p_i(x_iᵀw − t_i)²
        falls in expectation by 1 − ρ_L per step, ρ_L = η(2λ⁺ − η max_i x_iᵀGx_i), for
        η < 2λ⁺/max_i x_iᵀGx_i (smaller than 1/max‖x_i‖²). The unweighted loss can rise in one expected
        step when p is not uniform, at any small step (shown, not asserted as a contraction).""",
    "optim.weight-decay-vs-l2": """
        For plain GD, training J(w) + λ‖w‖² with step η is identical to decoupled weight decay
        w ← (1 − λ')w − η∇J(w) with λ' = 2ηλ. With heavy-ball momentum or Adam they differ: L2 passes
        through the momentum buffer or the adaptive rescaling, decoupled decay does not; HB + L2 ends at
        ridge(λ), decoupled HB at ridge(λ(1 − μ)); Adam + L2 at ridge(λ), AdamW off the ridge path. With
        a fixed preconditioner M, decoupled decay equals an L2 penalty weighted by M⁻¹.""",
}

_RUNS = {
    "optim.gd-min-norm": run_gd_min_norm,
    "optim.sgd-min-norm": run_sgd_min_norm,
    "optim.momentum-min-norm": run_momentum_min_norm,
    "optim.adaptive-not-min-norm": run_adaptive_not_min_norm,
    "optim.preconditioned-solution": run_preconditioned_solution,
    "optim.nonuniform-sampling": run_nonuniform_sampling,
    "optim.weight-decay-vs-l2": run_weight_decay_vs_l2,
}

for _id in CLAIM_IDS:
    register(Claim(_id, SECTION, _statement(STATEMENTS[_id]), _RUNS[_id]))
