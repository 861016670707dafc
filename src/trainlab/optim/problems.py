"""Least-squares problems and their closed-form solutions (CLAIMS.md §1).

A :class:`LeastSquares` holds a *batch* of R independent problems, X of shape (R, n, d)
and t of shape (R, n), so that many runs can be executed at once. The loss is

    J(w) = (1/2n) ‖Xw − t‖²,    ∇J(w) = (1/n) Xᵀ(Xw − t),    Hessian H = XᵀX/n

(the course writes (1/n)‖Xw − t‖²; the factor only rescales the step: η_course = η/2).
Overparameterised means d > n with X of full row rank: infinitely many w interpolate
(Xw = t), and the one of least Euclidean norm is w* = Xᵀ(XXᵀ)⁻¹t.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from trainlab.errors import ArgumentError

__all__ = [
    "WORKED_EXAMPLES",
    "LeastSquares",
    "distance_from_row_space",
    "gd_stability_bound",
    "min_norm_solution",
    "preconditioned_solution",
    "random_problems",
    "ridge_solution",
    "row_space_projection",
    "sign_interpolant",
    "smoothness",
    "worked_example",
]


@dataclass(frozen=True)
class LeastSquares:
    """R least-squares problems: ``X`` (R, n, d), ``t`` (R, n), one ``name`` per problem."""

    X: Tensor
    t: Tensor
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.X.ndim != 3 or self.t.shape != self.X.shape[:2] or len(self.names) != self.X.shape[0]:
            raise ValueError(
                f"X {tuple(self.X.shape)}, t {tuple(self.t.shape)} and {len(self.names)} "
                "names do not describe (R, n, d), (R, n) and R problems"
            )

    @property
    def num_runs(self) -> int:
        return self.X.shape[0]

    @property
    def n(self) -> int:
        return self.X.shape[1]

    @property
    def d(self) -> int:
        return self.X.shape[2]

    def repeat(self, times: int) -> LeastSquares:
        """Each problem ``times`` times in a row (problem-major), e.g. for several seeds of a sampler."""
        return LeastSquares(
            self.X.repeat_interleave(times, 0),
            self.t.repeat_interleave(times, 0),
            tuple(name for name in self.names for _ in range(times)),
        )

    def concat(self, other: LeastSquares) -> LeastSquares:
        """The problems of ``self`` then those of ``other`` (same n and d)."""
        return LeastSquares(
            torch.cat([self.X, other.X]), torch.cat([self.t, other.t]), self.names + other.names
        )

    def select(self, index: Sequence[int]) -> LeastSquares:
        idx = torch.as_tensor(list(index), dtype=torch.long)
        return LeastSquares(self.X[idx], self.t[idx], tuple(self.names[i] for i in idx.tolist()))

    def residual(self, w: Tensor) -> Tensor:
        """Xw − t for w of shape (R, d): (R, n)."""
        return torch.matmul(self.X, w.unsqueeze(-1)).squeeze(-1) - self.t  # (R, n, d) @ (R, d, 1)

    def loss(self, w: Tensor) -> Tensor:
        """J(w) = (1/2n)‖Xw − t‖² per problem: (R,)."""
        return 0.5 * self.residual(w).pow(2).mean(-1)

    def gradient(self, w: Tensor) -> Tensor:
        """∇J(w) = (1/n)Xᵀ(Xw − t): (R, d)."""
        return torch.einsum("rnd,rn->rd", self.X, self.residual(w)) / self.n

    def relative_residual(self, w: Tensor) -> Tensor:
        """‖Xw − t‖/‖t‖ per problem: (R,)."""
        return self.residual(w).norm(dim=-1) / self.t.norm(dim=-1)


def random_problems(
    n: int,
    d: int,
    seeds: Sequence[int],
    *,
    condition_number: float | None = None,
    row_scale: tuple[float, float] | None = None,
    dtype: torch.dtype = torch.float64,
) -> LeastSquares:
    """One random problem per seed: X, t with standard normal entries (X first, then t).

    ``condition_number`` κ replaces the singular values of X by values log-spaced from
    σ_max down to σ_max/κ (same singular vectors). ``row_scale=(a, b)`` multiplies each row
    by a factor drawn uniformly from [a, b] (rows of unequal norm, for non-uniform sampling).
    """
    if n < 1:
        raise ArgumentError("n", n, "a positive number of examples")
    if d < 1:
        raise ArgumentError("d", d, "a positive number of parameters")
    if condition_number is not None and not condition_number >= 1:
        raise ArgumentError("condition_number", condition_number, "a number >= 1")
    if row_scale is not None and not 0 < row_scale[0] <= row_scale[1]:
        raise ArgumentError("row_scale", row_scale, "(a, b) with 0 < a <= b")
    Xs, ts = [], []
    for seed in seeds:
        g = torch.Generator().manual_seed(int(seed))
        X = torch.randn(n, d, generator=g, dtype=dtype)
        t = torch.randn(n, generator=g, dtype=dtype)
        if condition_number is not None:
            U, S, Vh = torch.linalg.svd(X, full_matrices=False)  # (n, k), (k,), (k, d)
            S = S[0] * torch.logspace(
                0, -torch.log10(torch.tensor(condition_number)).item(), len(S), dtype=dtype
            )
            X = U @ torch.diag(S) @ Vh
        if row_scale is not None:
            a, b = row_scale
            X = X * (a + (b - a) * torch.rand(n, 1, generator=g, dtype=dtype))
        Xs.append(X)
        ts.append(t)
    return LeastSquares(torch.stack(Xs), torch.stack(ts), tuple(f"seed {s}" for s in seeds))


#: The course's worked examples: name -> (rows of X, targets).
WORKED_EXAMPLES: dict[str, tuple[list[list[float]], list[float]]] = {
    "x=[2,1],t=2": ([[2.0, 1.0]], [2.0]),
    "x=[1,2],t=3": ([[1.0, 2.0]], [3.0]),
    "x=[1,0.1,0.01],t=1": ([[1.0, 0.1, 0.01]], [1.0]),
}


def worked_example(name: str, dtype: torch.dtype = torch.float64) -> LeastSquares:
    """One of :data:`WORKED_EXAMPLES` as a batch of one problem."""
    if name not in WORKED_EXAMPLES:
        raise ArgumentError("example", name, "one of: " + ", ".join(WORKED_EXAMPLES))
    rows, targets = WORKED_EXAMPLES[name]
    return LeastSquares(torch.tensor([rows], dtype=dtype), torch.tensor([targets], dtype=dtype), (name,))


def _solve(A: Tensor, b: Tensor) -> Tensor:
    """A⁻¹b for a batch of matrices A (..., n, n) and vectors b (..., n), broadcasting the batch."""
    return torch.linalg.solve(A, b.unsqueeze(-1)).squeeze(-1)


def min_norm_solution(X: Tensor, t: Tensor) -> Tensor:
    """w* = Xᵀ(XXᵀ)⁻¹t, the interpolant of least ‖w‖ (X of full row rank); batched: (..., d)."""
    return torch.einsum("...nd,...n->...d", X, _solve(X @ X.mT, t))


def preconditioned_solution(X: Tensor, t: Tensor, m: Tensor) -> Tensor:
    """w_M = M Xᵀ(X M Xᵀ)⁻¹t with M = diag(m): the interpolant of least wᵀM⁻¹w.

    Preconditioned GD w ← w − ηM∇J(w) from 0 moves in M·row(X); w_M is the only
    interpolant there (CLAIMS.md §1, optim.preconditioned-solution).
    """
    XM = X * m.unsqueeze(-2)  # (..., n, d): X M
    return m * torch.einsum("...nd,...n->...d", X, _solve(XM @ X.mT, t))


def ridge_solution(X: Tensor, t: Tensor, lam: float | Tensor) -> Tensor:
    """argmin J(w) + λ‖w‖² = Xᵀ(XXᵀ + 2nλI)⁻¹t (J = (1/2n)‖Xw − t‖²); λ → 0 gives w*.

    ``lam`` may be a tensor of shape (..., k) for k values at once: result (..., k, d).
    """
    n = X.shape[-2]
    eye = torch.eye(n, dtype=X.dtype)
    K = X @ X.mT
    if isinstance(lam, Tensor) and lam.ndim > 0:
        A = K.unsqueeze(-3) + 2 * n * lam[..., :, None, None] * eye  # (..., k, n, n)
        coef = _solve(A, t.unsqueeze(-2).expand(*A.shape[:-1]))  # (..., k, n)
        return torch.einsum("...nd,...kn->...kd", X, coef)
    return torch.einsum("...nd,...n->...d", X, _solve(K + 2 * n * lam * eye, t))


def row_space_projection(X: Tensor, w: Tensor) -> Tensor:
    """P w = Xᵀ(XXᵀ)⁻¹X w, the orthogonal projection of w onto span{x_i}."""
    return torch.einsum("...nd,...n->...d", X, _solve(X @ X.mT, torch.einsum("...nd,...d->...n", X, w)))


def distance_from_row_space(X: Tensor, w: Tensor) -> Tensor:
    """‖(I − P)w‖: how far w is from the span of the rows of X."""
    return (w - row_space_projection(X, w)).norm(dim=-1)


def smoothness(X: Tensor) -> Tensor:
    """L = λ_max(XᵀX/n), the largest curvature of J; batched: (...,)."""
    return torch.linalg.eigvalsh(X @ X.mT)[..., -1] / X.shape[-2]


def gd_stability_bound(X: Tensor) -> Tensor:
    """GD on a quadratic converges iff 0 < η < 2/λ_max(H) = 2/L (the error along the top eigenvector
    is multiplied by 1 − ηL each step)."""
    return 2.0 / smoothness(X)


def sign_interpolant(x: Tensor, t: float | Tensor) -> Tensor:
    """For one example (n = 1): the interpolant on the ray of s = sign(t·x), w = t s/(xᵀs).

    AdaGrad, RMSProp and Adam from 0 with ε → 0 divide every coordinate of g = r x by the
    same function of the residual history times |x_j|, so each step is a multiple of s and
    the iterates end where the ray {c s} meets the solution line xᵀw = t.
    """
    s = torch.sign(t * x)
    return t * s / (x @ s)
