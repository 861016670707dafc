"""Sharpness: the largest eigenvalue λ_max of the training loss's Hessian, by Lanczos on HVPs.

The Hessian is never formed. A Hessian–vector product (HVP) is one backward pass through
the gradient's graph (Pearlmutter 1994, "Fast exact multiplication by the Hessian"):
H v = ∇_w (∇_w L(w) · v); the gradient's graph is built once and reused for every HVP.

Lanczos (Golub & Van Loan, "Matrix Computations" §10.1) builds an orthonormal basis Q_k of
the Krylov space span{q, Hq, …, H^{k−1}q} in which H is the tridiagonal T_k = Q_kᵀ H Q_k;
the largest eigenvalue θ of T_k (a Ritz value) converges to λ_max much faster than power
iteration, whose error shrinks like (λ₂/λ₁)^k. With s the eigenvector of T_k for θ and
y = Q_k s, the residual is r = ‖H y − θ y‖ = β_{k+1}|s_k| without an extra HVP.

Two error bounds follow (Parlett, "The Symmetric Eigenvalue Problem", §4.5 and §11.7):
- some eigenvalue of H lies within r of θ (H is symmetric) — unconditional
  (``bound="residual"``, ARPACK's stopping test);
- Kato–Temple: if no eigenvalue other than λ_max lies above a, then
  0 ≤ λ_max − θ ≤ r²/(θ − a). With a = θ₂ + r₂ (the second Ritz value plus its residual)
  this is far tighter — the error of a Ritz value falls like the square of its residual —
  and is the default (``bound="gap"``); it holds unless Lanczos has missed an eigenvalue
  between θ₂ + r₂ and λ_max, the usual caveat of Krylov methods. When θ − a ≤ 0 the
  residual bound is used.
We stop when the chosen bound ≤ tol·|θ|, so ``tol`` is a bound on the relative error of
the eigenvalue, not (as in PyHessian's power iteration) the change between two
iterations, which can be far below the error when convergence is slow. Q_k is
fully re-orthogonalised (twice, "twice is enough"), which costs k·d memory and keeps the
Ritz values free of the spurious copies plain Lanczos makes in floating point.

GD on a quadratic with Hessian H is stable only for η < 2/λ_max; :attr:`Sharpness.stable_lr_bound`
reports that bound (Cohen et al. 2021, "Gradient descent on neural networks typically
occurs at the edge of stability").

>>> from trainlab.problems import load_problem
>>> p = load_problem("linreg", n=5, d=12, seed=0)
>>> s = sharpness(p, tol=1e-10)
>>> abs(s.lambda_max - p.info["lambda_max"]) <= 1e-8 * p.info["lambda_max"]
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from trainlab.errors import ArgumentError
from trainlab.problems import Problem

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "BOUNDS",
    "FlatLoss",
    "Sharpness",
    "flat_loss",
    "hvp_operator",
    "lanczos_top_eigenvalue",
    "sharpness",
]

HVP = Callable[[Tensor], Tensor]


@dataclass
class FlatLoss:
    """The loss as a function of one flat parameter vector (so HVPs and GD act on vectors).

    ``unflatten(w)`` gives the parameter dict as views of ``w``, so autograd flows through.
    """

    problem: Problem
    names: list[str]
    shapes: list[torch.Size]
    w0: Tensor
    x: Tensor
    y: Tensor
    buffers: dict[str, Tensor]

    def unflatten(self, w: Tensor) -> dict[str, Tensor]:
        out, offset = {}, 0
        for name, shape in zip(self.names, self.shapes, strict=True):
            n = math.prod(shape)
            out[name] = w[offset : offset + n].view(shape)  # (d,) -> the parameter's shape
            offset += n
        return out

    def __call__(self, w: Tensor) -> Tensor:
        return self.problem.loss(self.unflatten(w), self.x, self.y, self.buffers)


def flat_loss(
    problem: Problem,
    params: Mapping[str, Tensor] | None = None,
    x: Tensor | None = None,
    y: Tensor | None = None,
    dtype: torch.dtype | None = None,
) -> FlatLoss:
    """``problem``'s loss on (x, y) (the training set by default) as a function of a flat vector.

    With ``dtype`` (e.g. float64) the parameters, buffers and floating inputs are converted;
    the problem's own model is not changed (its parameters are replaced per call).
    """
    params = dict(problem.params() if params is None else params)
    x = problem.x if x is None else x
    y = problem.y if y is None else y
    buffers = problem.buffers()
    if dtype is not None:
        params = {k: v.to(dtype) for k, v in params.items()}
        buffers = {k: v.to(dtype) if v.is_floating_point() else v for k, v in buffers.items()}
        x = x.to(dtype) if x.is_floating_point() else x
        y = y.to(dtype) if y.is_floating_point() else y
        if problem.dtype != dtype:  # functional_call needs modules of one dtype for its own consts
            problem = _retyped(problem, dtype)
    names = list(params)
    w0 = torch.cat([params[k].detach().reshape(-1) for k in names])  # (d,)
    return FlatLoss(problem, names, [params[k].shape for k in names], w0, x, y, buffers)


def _retyped(problem: Problem, dtype: torch.dtype) -> Problem:
    import dataclasses

    model = problem.fresh_model().to(dtype)
    return dataclasses.replace(problem, model=model)


def hvp_operator(f: Callable[[Tensor], Tensor], w: Tensor) -> tuple[HVP, Tensor, Tensor]:
    """(v ↦ H v, loss, gradient) at ``w`` for a scalar function ``f`` of a flat vector.

    The gradient is computed once with ``create_graph=True``; each HVP is one backward pass
    through it (double backward). For a :class:`FlatLoss` the graph is built on one leaf
    tensor per parameter (as PyHessian does), which saves the scatter into a flat vector
    that differentiating through views of ``w`` costs on every HVP (~25% on the digits MLP).
    """
    if isinstance(f, FlatLoss):
        leaves = [t.detach().clone().requires_grad_(True) for t in f.unflatten(w.detach()).values()]
        with torch.enable_grad():
            loss = f.problem.loss(dict(zip(f.names, leaves, strict=True)), f.x, f.y, f.buffers)
            grads = torch.autograd.grad(loss, leaves, create_graph=True, allow_unused=True)
        live = [(leaf, g) for leaf, g in zip(leaves, grads, strict=True) if g is not None and g.requires_grad]
        flat_g = torch.cat(
            [
                (torch.zeros_like(leaf) if g is None else g.detach()).reshape(-1)
                for leaf, g in zip(leaves, grads, strict=True)
            ]
        )

        def hvp_leaves(v: Tensor) -> Tensor:
            if not live:  # the loss is linear in every parameter: H = 0
                return torch.zeros_like(v)
            views = f.unflatten(v)  # (d,) -> each parameter's shape
            by_leaf = {id(leaf): name for name, leaf in zip(f.names, leaves, strict=True)}
            with torch.enable_grad():
                hv = torch.autograd.grad(
                    [g for _, g in live],
                    [leaf for leaf, _ in live],
                    grad_outputs=[views[by_leaf[id(leaf)]] for leaf, _ in live],
                    retain_graph=True,
                    allow_unused=True,
                )
            out = dict(zip([by_leaf[id(leaf)] for leaf, _ in live], hv, strict=True))
            return torch.cat(
                [
                    (out[n] if out.get(n) is not None else torch.zeros(shape, dtype=v.dtype))
                    .detach()
                    .reshape(-1)
                    for n, shape in zip(f.names, f.shapes, strict=True)
                ]
            )

        return hvp_leaves, loss.detach(), flat_g

    w = w.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = f(w)
        (g,) = torch.autograd.grad(loss, w, create_graph=True)

    def hvp(v: Tensor) -> Tensor:
        if not g.requires_grad:  # the loss is linear in w: H = 0
            return torch.zeros_like(v)
        with torch.enable_grad():
            (hv,) = torch.autograd.grad(g, w, grad_outputs=v, retain_graph=True, allow_unused=True)
        return torch.zeros_like(v) if hv is None else hv.detach()

    return hvp, loss.detach(), g.detach()


BOUNDS = ("gap", "residual")


@dataclass
class Sharpness:
    """λ_max of a Hessian, how it was found, and the Lanczos history behind the figure.

    ``hvps`` counts Hessian–vector products; ``residual`` is ‖H y − θ y‖ for the returned
    eigenvector y and ``error_bound`` the bound the stopping test used (module doc);
    ``history`` the Ritz value after each HVP and ``bounds`` the error bound after each;
    ``ritz_values`` the spectrum of the final tridiagonal matrix.
    """

    lambda_max: float
    hvps: int
    residual: float
    error_bound: float
    converged: bool
    tol: float
    bound: str = "gap"
    history: list[float] = field(default_factory=list)
    residuals: list[float] = field(default_factory=list)
    bounds: list[float] = field(default_factory=list)
    ritz_values: list[float] = field(default_factory=list)
    eigenvector: Tensor | None = None
    seconds: float = 0.0

    @property
    def stable_lr_bound(self) -> float | None:
        """2/λ_max: GD on the quadratic model is stable only below it (None when λ_max ≤ 0)."""
        return 2.0 / self.lambda_max if self.lambda_max > 0 else None

    @property
    def relative_error_bound(self) -> float:
        """error_bound/|λ_max|: the relative error of λ_max is at most this (module doc)."""
        return self.error_bound / abs(self.lambda_max) if self.lambda_max else math.inf

    def as_dict(self) -> dict[str, Any]:
        return {
            "lambda_max": self.lambda_max,
            "stable_lr_bound": self.stable_lr_bound,
            "hvps": self.hvps,
            "converged": self.converged,
            "tol": self.tol,
            "bound": self.bound,
            "residual": self.residual,
            "relative_error_bound": self.relative_error_bound,
            "seconds": self.seconds,
        }

    def plot(self, ax: Axes | None = None, exact: float | None = None) -> Axes:
        """Relative error bounds per HVP (and the error against ``exact`` when given)."""
        from trainlab.plotting import subplots_or

        _, ax = subplots_or(ax)
        k = range(1, len(self.history) + 1)
        ax.semilogy(
            k,
            [max(r / abs(h), 1e-18) if h else 1.0 for r, h in zip(self.residuals, self.history, strict=True)],
            label="residual / |θ|",
        )
        ax.semilogy(
            k,
            [max(b / abs(h), 1e-18) if h else 1.0 for b, h in zip(self.bounds, self.history, strict=True)],
            label=f"{self.bound} bound / |θ|",
        )
        if exact is not None:
            ax.semilogy(
                k,
                [max(abs(h - exact) / abs(exact), 1e-18) for h in self.history],
                label="|θ − λ_max| / λ_max (exact)",
            )
        ax.axhline(self.tol, color="grey", lw=0.8, ls="--", label=f"tol {self.tol:g}")
        ax.set_xlabel("Hessian–vector products")
        ax.set_ylabel("relative error")
        ax.legend(fontsize=7)
        return ax


def lanczos_top_eigenvalue(
    hvp: HVP,
    dim: int,
    *,
    tol: float = 1e-6,
    max_hvps: int = 200,
    bound: str = "gap",
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    start: Tensor | None = None,
) -> Sharpness:
    """The largest (algebraic) eigenvalue of the symmetric operator ``hvp`` on R^dim.

    Stops when the error ``bound`` ("gap": Kato–Temple, "residual": r; see the module doc)
    is ≤ ``tol``·|θ|, when the Krylov space is exhausted (β = 0: θ is exact), or after
    ``max_hvps`` products (``converged`` False). Starts from ``start`` or a Gaussian vector
    drawn from ``generator``.
    """
    if not tol > 0 or not math.isfinite(tol):
        raise ArgumentError("tol", tol, "a positive relative tolerance such as 1e-6")
    if not isinstance(max_hvps, int) or max_hvps < 1:
        raise ArgumentError("max_hvps", max_hvps, "a positive integer")
    if bound not in BOUNDS:
        raise ArgumentError("bound", bound, "one of: " + ", ".join(BOUNDS))
    import time

    t0 = time.perf_counter()
    q = start.to(dtype).clone() if start is not None else torch.randn(dim, generator=generator, dtype=dtype)
    q = q / q.norm()
    basis: list[Tensor] = []
    alphas: list[float] = []
    betas: list[float] = []
    history: list[float] = []
    residuals: list[float] = []
    bounds: list[float] = []
    theta, s, beta, converged = 0.0, torch.ones(1, dtype=torch.float64), 0.0, False
    evals = torch.zeros(1, dtype=torch.float64)
    for _ in range(min(max_hvps, dim)):
        basis.append(q)
        z = hvp(q).to(dtype)
        alphas.append(float(q @ z))
        Q = torch.stack(basis)  # (k, d)
        for _ in range(2):  # full re-orthogonalisation, twice
            z = z - Q.T @ (Q @ z)
        beta = float(z.norm())
        # T_k: alphas on the diagonal, the previous betas beside it.
        T = torch.diag(torch.tensor(alphas, dtype=torch.float64))
        if betas:
            off = torch.tensor(betas, dtype=torch.float64)
            T = T + torch.diag(off, 1) + torch.diag(off, -1)
        evals, evecs = torch.linalg.eigh(T)
        theta, s = float(evals[-1]), evecs[:, -1]
        res = beta * abs(float(s[-1]))
        err = res
        if bound == "gap" and len(evals) > 1:
            above = float(evals[-2]) + beta * abs(float(evecs[-1, -2]))  # θ₂ + r₂
            if theta - above > 0:
                err = min(res, res**2 / (theta - above))
        history.append(theta)
        residuals.append(res)
        bounds.append(err)
        if err <= tol * abs(theta) or beta <= 1e-14 * max(abs(theta), 1e-300):
            converged = True
            break
        betas.append(beta)
        q = z / beta
    Q = torch.stack(basis)
    y = s.to(dtype) @ Q  # (k,) @ (k, d) -> (d,)
    return Sharpness(
        theta,
        len(history),
        residuals[-1],
        bounds[-1],
        converged,
        tol,
        bound,
        history,
        residuals,
        bounds,
        evals.tolist(),
        y / y.norm(),
        time.perf_counter() - t0,
    )


def sharpness(
    problem: Problem,
    *,
    params: Mapping[str, Tensor] | None = None,
    batch: tuple[Tensor, Tensor] | None = None,
    tol: float = 1e-6,
    max_hvps: int = 200,
    seed: int = 0,
    dtype: torch.dtype | None = torch.float64,
    bound: str = "gap",
) -> Sharpness:
    """λ_max of the Hessian of ``problem``'s mean training loss at ``params`` (its start by default).

    ``batch`` = (x, y) measures the loss of that batch instead of the whole training set.
    ``dtype`` (float64 by default; None keeps the model's) is the precision of the HVPs: in
    float32 the rounding of each HVP (~1e-7 relative) limits the reachable ``tol``.
    """
    from trainlab.seeding import derive_seed, forked_rng, generator

    x, y = batch if batch is not None else (None, None)
    f = flat_loss(problem, params, x, y, dtype)
    # A model with dropout draws its mask from the global RNG once, when the gradient's graph
    # is built (every HVP reuses it): seed that draw, and leave the caller's RNG as it was.
    with forked_rng(derive_seed(seed, "sharpness-forward")):
        hvp, _, _ = hvp_operator(f, f.w0)
    return lanczos_top_eigenvalue(
        hvp,
        f.w0.numel(),
        tol=tol,
        max_hvps=max_hvps,
        bound=bound,
        generator=generator(seed, "lanczos-start"),
        dtype=f.w0.dtype,
    )
