"""Exact expectations for SGD on an interpolating least-squares problem, and rate bounds.

SGD that samples example i with probability p_i and steps η_i on it maps the error
e = w − w* (w* any interpolant; x_iᵀw* = t_i) to e' = A_i e with A_i = I − η_i x_i x_iᵀ.
So the second moment S = E[e eᵀ] evolves *exactly* as

    S_{k+1} = Σ_i p_i A_i S_k A_iᵀ,

and every quadratic of the error has an exact expectation: E‖e_k‖² = tr S_k,
E[L_p(w_k)] = tr(G S_k) with G = Σ p_i x_i x_iᵀ and L_p(w) = Σ p_i (x_iᵀw − t_i)²
(the midterm's sampling-weighted loss), E[L(w_k)] = tr(H S_k) with H = XᵀX/n.

Rates (e in the row space, R² = max‖x_i‖², λ⁺ the least non-zero eigenvalue of G):

* distance, constant η:  E‖e'‖² = ‖e‖² − 2η eᵀGe + η² Σ p_i‖x_i‖²(x_iᵀe)²
  ≤ (1 − ρ)‖e‖²,  ρ = η(2 − ηR²)λ⁺   (Needell, Srebro & Ward 2014 style bound);
* randomized Kaczmarz, p_i ∝ ‖x_i‖², η_i = 1/‖x_i‖²:  ρ = σ⁺_min(X)²/‖X‖_F²  (Strohmer & Vershynin 2009);
* weighted loss, constant η:  E[L_p(w')] = eᵀGe − 2η eᵀG²e + η² Σ p_i (x_iᵀGx_i)(x_iᵀe)²
  ≤ (1 − ρ_L) L_p(w),  ρ_L = η(2λ⁺ − η max_i x_iᵀGx_i), using eᵀG²e ≥ λ⁺ eᵀGe.

The unweighted loss has no such guarantee when p is not uniform: the worst one-step
ratio max_e E[L(w')]/L(w) can exceed 1 (:func:`worst_one_step_ratio`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from trainlab.errors import ArgumentError
from trainlab.plotting import subplots_or

if TYPE_CHECKING:  # annotations only: figures import matplotlib when they draw
    from matplotlib.axes import Axes

__all__ = [
    "ErrorMoments",
    "distance_rate",
    "error_moments",
    "kaczmarz_rate",
    "sampling_covariance",
    "smallest_nonzero_eigenvalue",
    "weighted_loss_rate",
    "worst_one_step_ratio",
]


def sampling_covariance(X: Tensor, p: Tensor) -> Tensor:
    """G = Σ_i p_i x_i x_iᵀ = Xᵀ diag(p) X: (..., d, d)."""
    return X.mT @ (p.unsqueeze(-1) * X)


def smallest_nonzero_eigenvalue(G: Tensor, rank: int) -> Tensor:
    """λ⁺: the smallest of the ``rank`` largest eigenvalues of the symmetric G (batched: (..., d, d))."""
    return torch.linalg.eigvalsh(G)[..., -rank]


def distance_rate(X: Tensor, p: Tensor, lr: float) -> Tensor:
    """ρ = η(2 − ηR²)λ⁺(G): E‖e_{k+1}‖² ≤ (1 − ρ)E‖e_k‖² for SGD with constant step η."""
    R2 = X.pow(2).sum(-1).max()
    lam = smallest_nonzero_eigenvalue(sampling_covariance(X, p), min(X.shape[-2:]))
    return lr * (2 - lr * R2) * lam


def kaczmarz_rate(X: Tensor) -> Tensor:
    """ρ = σ⁺_min(X)²/‖X‖_F², randomized Kaczmarz's rate (Strohmer & Vershynin 2009)."""
    return torch.linalg.svdvals(X)[-1] ** 2 / X.pow(2).sum()


def weighted_loss_rate(X: Tensor, p: Tensor, lr: float) -> Tensor:
    """ρ_L = η(2λ⁺ − η max_i x_iᵀGx_i): E[L_p(w_{k+1})] ≤ (1 − ρ_L) L_p(w_k) (module docstring)."""
    G = sampling_covariance(X, p)
    lam = smallest_nonzero_eigenvalue(G, min(X.shape[-2:]))
    worst = torch.einsum("nd,de,ne->n", X, G, X).max()
    return lr * (2 * lam - lr * worst)


@dataclass
class ErrorMoments:
    """Exact expectations along SGD (one problem): tr S_k, tr(G S_k), tr(H S_k) for k = 0..K."""

    steps: Tensor
    squared_distance: Tensor
    weighted_loss: Tensor
    loss: Tensor

    def plot(self, ax: Axes | None = None, rate: float | None = None, which: str = "weighted_loss") -> Axes:
        """The chosen expectation against the step (log scale), with (1 − ρ)^k from its start if given."""
        _, ax = subplots_or(ax)
        values = getattr(self, which)
        if values.ndim > 1:
            raise ValueError("plot one problem at a time: index the batch first")
        ax.semilogy(self.steps.numpy(), values.numpy(), label=f"exact E[{which.replace('_', ' ')}]")
        if rate is not None:
            ax.semilogy(
                self.steps.numpy(),
                (values[0] * (1 - rate) ** self.steps.double()).numpy(),
                "k--",
                label="bound (1 − ρ)^k",
            )
        ax.set_xlabel("step k")
        ax.legend(fontsize=8)
        return ax


def error_moments(X: Tensor, p: Tensor, lr: Tensor | float, e0: Tensor, steps: int, *,
                  at: Tensor | None = None) -> ErrorMoments:
    """Iterate S_{k+1} = Σ p_i A_i S_k A_iᵀ, A_i = I − η_i x_i x_iᵀ, from S_0 = e0 e0ᵀ.

    Batched over leading dimensions: X (..., n, d), p (..., n), ``lr`` a number or per-example
    steps η_i (..., n), e0 (..., d); results (steps + 1, ...). Expanded so each step costs
    O(n d²): S' = S − XᵀD(XS) − (XS)ᵀDX + Xᵀ diag(p η² q) X, D = diag(p η), q_i = x_iᵀ S x_i.
    When e0 lies in the row space, pass X Q and Qᵀe0 (Q an orthonormal basis of the row
    space, d×n): the error never leaves it, and the same numbers cost O(n³) a step.

    ``at`` (integer steps, shape ``...``: one per problem of the batch) keeps only step 0 and each
    problem's step ``at`` (≤ ``steps``): results (2, ...), ``steps`` (2, ...), and memory that does
    not grow with the steps (all of them are (steps + 1)·3 numbers a problem: gigabytes for a slow
    rate over many problems). The values are those the full run gives.
    """
    n = X.shape[-2]
    eta = torch.as_tensor(lr, dtype=X.dtype).expand(p.shape)
    pe, pe2 = p * eta, p * eta * eta
    G = sampling_covariance(X, p)
    H = X.mT @ X / n
    S = e0.unsqueeze(-1) * e0.unsqueeze(-2)  # (..., d, d)
    if at is not None:
        integral = not at.dtype.is_floating_point and not at.dtype.is_complex and at.dtype != torch.bool
        if (at.shape != X.shape[:-2] or not integral
                or (at.numel() and (int(at.min()) < 0 or int(at.max()) > steps))):
            found = f"{at.dtype} of shape {tuple(at.shape)}"
            if integral and at.numel():
                found += f", from {int(at.min())} to {int(at.max())}"
            raise ArgumentError("at", found, f"integer steps from 0 to steps = {steps}, one per problem "
                                f"(shape {tuple(X.shape[:-2])})")
        steps = int(at.max()) if at.numel() else 0  # no further: nothing after it is kept
    # (tr S, tr GS, tr HS) at the steps kept, written in place: a few small tensors kept each step
    # between the large temporaries fragment the heap (3 GB for 300 steps of 1,809 problems)
    kept = torch.empty((3, steps + 1 if at is None else 2, *X.shape[:-2]), dtype=S.dtype)
    for k in range(steps + 1):
        XS = X @ S  # (..., n, d)
        q = (XS * X).sum(-1)  # (..., n): x_iᵀ S x_i
        values = (S.diagonal(dim1=-2, dim2=-1).sum(-1), (G * S).sum((-2, -1)), (H * S).sum((-2, -1)))
        if at is None or k == 0:
            for row, v in zip(kept, values, strict=True):
                row[k] = v
                if at is not None:
                    row[1] = v  # step `at` of the problems whose `at` is 0
        elif bool((here := at == k).any()):
            for row, v in zip(kept, values, strict=True):
                row[1] = torch.where(here, v, row[1])
        cross = X.mT @ (pe.unsqueeze(-1) * XS)  # (..., d, d)
        S = S - cross - cross.mT + X.mT @ ((pe2 * q).unsqueeze(-1) * X)
    steps_kept = torch.arange(steps + 1) if at is None else torch.stack([torch.zeros_like(at), at])
    return ErrorMoments(steps_kept, kept[0], kept[1], kept[2])


def worst_one_step_ratio(X: Tensor, p: Tensor, lr: float, weight: Tensor) -> Tensor:
    """max over e ≠ 0 in the row space of E[eᵀA_iᵀ W A_i e]/(eᵀWe): the worst one-step factor of the
    quadratic eᵀWe (W = G: weighted loss; W = XᵀX/n: unweighted loss).

    A generalised eigenvalue problem restricted to the row space (orthonormal basis Q from
    the QR factorisation of Xᵀ): λ_max(C⁻¹ QᵀBQ C⁻ᵀ) with QᵀWQ = CCᵀ, B = Σ p_i A_iᵀ W A_i.
    """
    n, d = X.shape
    Q, _ = torch.linalg.qr(X.mT)  # (d, n)
    B = torch.zeros(d, d, dtype=X.dtype)
    eye = torch.eye(d, dtype=X.dtype)
    for i in range(n):
        A = eye - lr * torch.outer(X[i], X[i])
        B = B + p[i] * A.mT @ weight @ A
    C = torch.linalg.cholesky(Q.mT @ weight @ Q)
    Ci = torch.linalg.inv(C)
    M = Ci @ (Q.mT @ B @ Q) @ Ci.mT
    return torch.linalg.eigvalsh((M + M.mT) / 2)[-1]
