"""The noisy quadratic model (Zhang et al. 2019, "Which Algorithmic Choices Matter at Which
Batch Sizes?", §3): an exact, sampling-free oracle for batch-size effects.

Loss L(θ) = ½ Σᵢ hᵢθᵢ², gradient g = Hθ + ε with E[ε] = 0, Cov(ε) = C/B (here C = H, as in the
paper: the gradient covariance of a well-specified model equals its Fisher = Hessian).
Each coordinate evolves independently. With heavy-ball momentum β (``torch.optim.SGD``
convention) and a diagonal preconditioner P = H^(−p) (p = 0: SGD; p = ½: Adam-like; p = 1:
Newton/K-FAC-like), per coordinate with a = α·h^(−p):

    v' = βv + hθ + ε,   θ' = θ − a v'        i.e.  x' = A x + b ε,  x = (θ, v),
    A = [[1 − ah, −aβ], [h, β]],  b = (−a, 1).

The second moments M = E[x xᵀ] follow M' = A M Aᵀ + σ² b bᵀ with σ² = cᵢ/B exactly, so
vec(M_t) = Kᵗ (vec M₀ − vec M*) + vec M* with K = A ⊗ A and M* the stationary point; Kᵗ comes
from K's eigendecomposition. E[L_t] = ½ Σᵢ hᵢ E[θᵢ²]_t is exact for every t: no sampling.

:func:`steps_to_target` gives the first t with E[L_t] ≤ target; :func:`nqm_batch_sweep` tunes α
(and β) per batch size on √2 grids, as a real sweep would, and :mod:`trainlab.scaling.fit`
fits S(B) = S_min(1 + B_crit/B) to the result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trainlab.plotting import subplots_or

__all__ = ["NQM", "NQMSweep", "expected_loss", "nqm_batch_sweep", "simulate", "steps_to_target"]


@dataclass(frozen=True)
class NQM:
    """Curvatures h (and gradient-noise variances c, default c = h), start θ₀ (default all ones)."""

    h: np.ndarray
    c: np.ndarray | None = None
    theta0: np.ndarray | None = None

    @classmethod
    def harmonic(cls, dim: int = 100) -> NQM:
        """hᵢ = 1/i, i = 1..dim (Zhang et al.'s spectrum), cᵢ = hᵢ, θ₀ = 1."""
        return cls(1.0 / np.arange(1, dim + 1))

    @property
    def noise(self) -> np.ndarray:
        return self.h if self.c is None else self.c

    @property
    def start(self) -> np.ndarray:
        return np.ones_like(self.h) if self.theta0 is None else self.theta0

    def initial_loss(self) -> float:
        return float(0.5 * np.sum(self.h * self.start**2))

    def b_simple(self) -> float:
        """tr(C)/|G|² at θ₀ (McCandlish's B_simple, with per-example covariance C)."""
        return float(np.sum(self.noise) / np.sum((self.h * self.start) ** 2))

    def b_noise(self) -> float:
        """tr(HC)/(GᵀHG) at θ₀ (McCandlish eq. 2.8)."""
        g = self.h * self.start
        return float(np.sum(self.h * self.noise) / np.sum(self.h * g * g))


def _system(nqm: NQM, lr: float, batch_size: float, momentum: float, power: float
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per coordinate: eigenvalues (d, 4), V (d, 4, 4), V⁻¹(vec M₀ − vec M*) (d, 4), vec M* (d, 4)."""
    h, c = nqm.h, nqm.noise
    a = lr * h ** (-power)
    d = len(h)
    A = np.zeros((d, 2, 2))
    A[:, 0, 0], A[:, 0, 1], A[:, 1, 0], A[:, 1, 1] = 1 - a * h, -a * momentum, h, momentum
    b = np.stack([-a, np.ones(d)], axis=1)  # (d, 2)
    K = np.einsum("dij,dkl->dikjl", A, A).reshape(d, 4, 4)  # A ⊗ A acting on row-major vec(M)
    q = (c / batch_size)[:, None] * np.einsum("di,dj->dij", b, b).reshape(d, 4)  # σ² vec(b bᵀ)
    eye = np.eye(4)
    with np.errstate(all="ignore"):
        m_star = np.linalg.solve(eye - K, q[..., None])[..., 0]  # (d, 4)
        m0 = np.zeros((d, 4))
        m0[:, 0] = nqm.start**2
        lam, V = np.linalg.eig(K)  # (d, 4), (d, 4, 4)
        coef = np.linalg.solve(V, (m0 - m_star).astype(complex)[..., None])[..., 0]
    return lam, V, coef, m_star


def _loss_fn(nqm: NQM, lr: float, batch_size: float, momentum: float, power: float):  # noqa: ANN202
    """t -> E[L_t] (vectorised over t), or None when the dynamics are unstable."""
    lam, V, coef, m_star = _system(nqm, lr, batch_size, momentum, power)
    if not np.all(np.isfinite(lam)) or np.max(np.abs(lam)) >= 1.0:
        return None
    w = V[:, 0, :] * coef  # (d, 4): E[θᵢ²]_t = Σ_k w_k λ_k^t + M*[θθ]  (row 0 of vec M is θ²)
    loss_star = 0.5 * float(nqm.h @ m_star[:, 0])
    zero = np.abs(lam) == 0  # β = 0 leaves zero eigenvalues: 0^0 = 1, 0^t = 0
    log_lam = np.log(np.where(zero, 1.0, lam).astype(complex))

    def loss(t: np.ndarray) -> np.ndarray:
        powers = np.exp(log_lam[:, :, None] * t[None, None, :])  # (d, 4, T)
        powers = np.where(zero[:, :, None], (t == 0)[None, None, :], powers)
        theta2 = np.einsum("dk,dkt->dt", w, powers).real
        return 0.5 * np.einsum("d,dt->t", nqm.h, theta2) + loss_star

    return loss


def expected_loss(nqm: NQM, steps: Sequence[int] | np.ndarray, lr: float, batch_size: float,
                  momentum: float = 0.0, power: float = 0.0) -> np.ndarray:
    """E[L_t] for each t in ``steps`` (exact); inf where the dynamics are unstable."""
    t = np.asarray(steps, dtype=float)
    f = _loss_fn(nqm, lr, batch_size, momentum, power)
    return np.full(t.shape, np.inf) if f is None else f(t)


_GRID = np.unique(np.concatenate([np.arange(0, 24), np.geomspace(24, 10**7, 200).astype(int)])).astype(float)


def steps_to_target(nqm: NQM, target: float, lr: float, batch_size: float, momentum: float = 0.0,
                    power: float = 0.0, max_steps: int = 10**7) -> float:
    """First t ≥ 0 with E[L_t] ≤ ``target`` (inf if never within ``max_steps`` or unstable).

    Coarse search on a geometric grid of t, then bisection inside the bracket; E[L_t] is a sum
    of decaying modes, decreasing once the fast oscillating ones have died out, so the bracket
    holds the first crossing in practice (tests check against step-by-step iteration).
    """
    f = _loss_fn(nqm, lr, batch_size, momentum, power)
    if f is None:
        return math.inf
    grid = _GRID[_GRID <= max_steps]
    below = np.nonzero(f(grid) <= target)[0]
    if len(below) == 0:
        return math.inf
    i = below[0]
    if i == 0:
        return 0.0
    lo, hi = int(grid[i - 1]), int(grid[i])
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if f(np.array([float(mid)]))[0] <= target:
            hi = mid
        else:
            lo = mid
    return float(hi)


def simulate(nqm: NQM, steps: int, lr: float, batch_size: float, momentum: float = 0.0, power: float = 0.0,
             num_runs: int = 1000, rng: np.random.Generator | None = None) -> np.ndarray:
    """Monte-Carlo runs of the same dynamics with Gaussian noise: the losses (num_runs, steps + 1)."""
    rng = rng or np.random.default_rng(0)
    h, c = nqm.h, nqm.noise
    a = lr * h ** (-power)
    theta = np.tile(nqm.start, (num_runs, 1))
    v = np.zeros_like(theta)
    out = np.empty((num_runs, steps + 1))
    out[:, 0] = 0.5 * (theta**2 * h).sum(1)
    for t in range(steps):
        g = h * theta + rng.standard_normal(theta.shape) * np.sqrt(c / batch_size)
        v = momentum * v + g
        theta = theta - a * v
        out[:, t + 1] = 0.5 * (theta**2 * h).sum(1)
    return out


@dataclass
class NQMSweep:
    """Best steps to target per batch size for each optimizer, with the tuned hyperparameters."""

    batch_sizes: list[float]
    target: float
    steps: dict[str, list[float]]
    best_lr: dict[str, list[float]]
    best_momentum: dict[str, list[float]]
    info: dict[str, Any] = field(default_factory=dict)

    def plot(self, ax: Any = None) -> Any:
        fig, ax = subplots_or(ax)
        for name, s in self.steps.items():
            ax.loglog(self.batch_sizes, s, "o-", label=name, ms=3)
        ax.set_xlabel("batch size B")
        ax.set_ylabel(f"steps to E[L] ≤ {self.target:.3g} (exact)")
        ax.set_title("noisy quadratic model", fontsize=9)
        ax.legend(fontsize=7)
        return fig


#: name -> (momentum grid, preconditioner power)
NQM_OPTIMIZERS: dict[str, tuple[tuple[float, ...], float]] = {
    "sgd": ((0.0,), 0.0),
    "momentum": ((0.5, 0.9, 0.99), 0.0),
    "preconditioned": ((0.0,), 0.5),
}


def nqm_batch_sweep(nqm: NQM, batch_sizes: Sequence[float], target: float,
                    optimizers: dict[str, tuple[tuple[float, ...], float]] | None = None,
                    lr_ratio: float = 2**0.25, num_lrs: int = 16) -> NQMSweep:
    """Steps to ``target`` per batch size, tuning α (``num_lrs`` halvings below the stability
    bound, then steps of ``lr_ratio`` around the best) and β over each optimizer's momentum grid."""
    optimizers = optimizers or NQM_OPTIMIZERS
    steps: dict[str, list[float]] = {}
    lrs: dict[str, list[float]] = {}
    moms: dict[str, list[float]] = {}
    for name, (mom_grid, power) in optimizers.items():
        steps[name], lrs[name], moms[name] = [], [], []
        # stability of the noise-free iteration needs a·h < 2(1 + β) for every coordinate
        a_scale = float(np.max(nqm.h ** (1 - power)))
        for B in batch_sizes:
            best = (math.inf, math.nan, math.nan)
            for beta in mom_grid:
                top = 2 * (1 + beta) / a_scale
                # coarse: factors of 2 below the bound; then ratio lr_ratio around the best
                coarse = [top / 2.0**j for j in range(1, num_lrs + 1)]
                found = [(steps_to_target(nqm, target, lr, B, beta, power), lr) for lr in coarse]
                s0, lr0 = min(found)
                if not math.isfinite(s0):
                    continue
                fine = [lr0 * lr_ratio**j for j in range(-3, 4) if j != 0 and lr0 * lr_ratio**j < top]
                found += [(steps_to_target(nqm, target, lr, B, beta, power), lr) for lr in fine]
                s1, lr1 = min(found)
                if s1 < best[0]:
                    best = (s1, lr1, beta)
            steps[name].append(best[0])
            lrs[name].append(best[1])
            moms[name].append(best[2])
    return NQMSweep(list(batch_sizes), target, steps, lrs, moms)
