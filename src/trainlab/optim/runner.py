"""Many independent training runs at once, and the plain ``torch.optim`` loop they must match.

:func:`run_batch` trains R linear least-squares models together: the parameters are one
tensor of shape (R, d), each run has its own problem (X[r], t[r]), its own sampled
examples and, if wanted, its own hyperparameters (a tensor of shape (R, 1)). One Python
step advances every run, so 1,000 runs cost little more than one.

Each run stops on its own when its relative residual ‖Xw − t‖/‖t‖ reaches ``tol``
(``converged_at``) or when it blows up (``diverged_at``: non-finite, or the residual grew
by ``divergence_factor``); a stopped run's parameters stay frozen while the others go on.
:func:`torch_optim_reference` runs the same experiment one run at a time with
``torch.optim`` and autograd: the trusted reference that the tests and the benchmark
compare against.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from trainlab.errors import ArgumentError
from trainlab.functional import GradientTransformation
from trainlab.optim.problems import LeastSquares
from trainlab.optim.samplers import FullBatch, Sampler
from trainlab.plotting import subplots_or

if TYPE_CHECKING:  # annotations only: figures import matplotlib when they draw
    from matplotlib.axes import Axes

__all__ = ["Trajectories", "batch_gradient", "run_batch", "torch_optim_reference"]


@dataclass
class Trajectories:
    """What :func:`run_batch` recorded for R runs.

    ``steps`` (T,) are the recorded step numbers (0 = the start, the last is the final
    step); ``relative_residual`` (T, R); ``params`` (T, R, d) when parameters were recorded;
    ``final_params`` (R, d); ``converged_at`` / ``diverged_at`` (R,) the step at which each
    run stopped (−1: it did not).
    """

    label: str
    names: tuple[str, ...]
    steps: Tensor
    relative_residual: Tensor
    final_params: Tensor
    converged_at: Tensor
    diverged_at: Tensor
    steps_run: int
    params: Tensor | None = None
    extra: dict[str, Tensor] = field(default_factory=dict)

    @property
    def converged(self) -> Tensor:
        return self.converged_at >= 0

    @property
    def diverged(self) -> Tensor:
        return self.diverged_at >= 0

    def relative_distance(self, reference: Tensor) -> Tensor:
        """‖w_k − w_ref‖/‖w_ref‖ at every recorded step: (T, R). Needs recorded parameters."""
        if self.params is None:
            raise ValueError("run_batch(..., record_params=True) is needed for distances along the path")
        return (self.params - reference).norm(dim=-1) / reference.norm(dim=-1)

    def final_relative_distance(self, reference: Tensor) -> Tensor:
        """‖w_T − w_ref‖/‖w_ref‖ per run: (R,)."""
        return (self.final_params - reference).norm(dim=-1) / reference.norm(dim=-1)

    def plot(self, ax: Axes | None = None, reference: Tensor | None = None, **style: object) -> Axes:
        """Relative distance to ``reference`` (or relative residual) against the step, one line per run."""
        _, ax = subplots_or(ax)
        values = self.relative_residual if reference is None else self.relative_distance(reference)
        steps = self.steps.numpy()
        for r in range(values.shape[1]):
            ax.semilogy(
                steps, values[:, r].clamp_min(1e-17).numpy(), label=self.label if r == 0 else None, **style
            )
        ax.set_xlabel("step")
        ax.set_ylabel("‖w − w*‖/‖w*‖" if reference is not None else "‖Xw − t‖/‖t‖")
        return ax


def batch_gradient(
    problem: LeastSquares,
    w: Tensor,
    indices: Tensor | None,
    example_weights: Tensor | None = None,
    residual: Tensor | None = None,
) -> Tensor:
    """Gradient of the sampled loss (1/2b) Σ_{i∈B} c_i (x_iᵀw − t_i)² for every run: (R, d).

    ``indices`` (R, b) picks each run's examples (None: all n); ``example_weights`` c (R, n)
    rescales examples (e.g. c_i = 1/‖x_i‖² for randomized Kaczmarz), default 1.
    """
    if indices is None:
        r = problem.residual(w) if residual is None else residual  # (R, n)
        if example_weights is not None:
            r = r * example_weights
        return torch.matmul(r.unsqueeze(-2), problem.X).squeeze(-2) / problem.n  # (R, 1, n) @ (R, n, d)
    b = indices.shape[1]
    Xb = problem.X.gather(1, indices.unsqueeze(-1).expand(-1, -1, problem.d))  # (R, b, d)
    rb = torch.matmul(Xb, w.unsqueeze(-1)).squeeze(-1) - problem.t.gather(1, indices)  # (R, b)
    if example_weights is not None:
        rb = rb * example_weights.gather(1, indices)
    return torch.matmul(rb.unsqueeze(-2), Xb).squeeze(-2) / b  # (R, 1, b) @ (R, b, d) -> (R, d)


def run_batch(
    problem: LeastSquares,
    optimizer: GradientTransformation,
    steps: int | Tensor,
    *,
    sampler: Sampler | None = None,
    generator: torch.Generator | None = None,
    w0: Tensor | None = None,
    tol: float = 1e-10,
    record_every: int | None = None,
    record_params: bool = False,
    example_weights: Tensor | None = None,
    divergence_factor: float = 1e8,
    label: str = "",
    observe: Callable[[Tensor], Tensor] | None = None,
    criterion: Callable[[Tensor], Tensor] | None = None,
) -> Trajectories:
    """Train the R problems of ``problem`` together for at most ``steps`` steps.

    ``steps`` is one limit for every run or a tensor (R,) of per-run limits: a run that
    reaches its own stops there (frozen, neither converged nor diverged).
    ``w0`` (R, d) defaults to 0. ``record_every`` k records every k-th step (default: about
    500 records in all); ``record_params`` keeps the parameters too (memory T·R·d).
    ``generator`` seeds the sampler (required unless the sampler is the full batch).
    ``observe(w) -> (R,)`` is recorded at the recorded steps in ``extra["observed"]`` (T, R).
    ``criterion(w) -> (R,)`` replaces the relative residual in the stopping rule: a run
    converges when its criterion is ≤ ``tol`` (e.g. a stationarity test where the optimum
    does not interpolate); divergence is still judged on the residual.
    """
    per_run_steps: Tensor | None = None
    if isinstance(steps, Tensor):
        if steps.shape != (problem.num_runs,) or steps.dtype.is_floating_point or steps.dtype == torch.bool \
                or bool((steps < 0).any()):
            raise ArgumentError("steps", f"{steps.dtype} {tuple(steps.shape)}",
                                f"a non-negative integer or an integer tensor of shape ({problem.num_runs},)")
        per_run_steps, steps = steps, int(steps.max())
    if not (isinstance(steps, int) and steps >= 0):
        raise ArgumentError("steps", steps, "a non-negative integer")
    if record_every is not None and not (isinstance(record_every, int) and record_every >= 1):
        raise ArgumentError("record_every", record_every, "a positive integer")
    if isinstance(tol, bool) or not isinstance(tol, int | float) or not 0 <= tol < math.inf:
        raise ArgumentError("tol", tol, "a finite number >= 0 (NaN would stop every run at step 0)")
    if isinstance(divergence_factor, bool) or not isinstance(divergence_factor, int | float) \
            or not 1 <= divergence_factor <= math.inf:
        raise ArgumentError("divergence_factor", divergence_factor, "a number >= 1 (inf: never stop)")
    if w0 is not None and (w0.shape != (problem.num_runs, problem.d) or w0.dtype != problem.X.dtype):
        raise ArgumentError("w0", f"{w0.dtype} {tuple(w0.shape)}",
                            f"a {problem.X.dtype} tensor of shape ({problem.num_runs}, {problem.d})")
    sampler = sampler or FullBatch()
    full_batch = isinstance(sampler, FullBatch)
    if generator is None:
        if not full_batch:
            raise ArgumentError("generator", None, "a seeded torch.Generator for a stochastic sampler")
        generator = torch.Generator().manual_seed(0)
    every = record_every or max(1, steps // 500)
    R, d = problem.num_runs, problem.d
    w = torch.zeros(R, d, dtype=problem.X.dtype) if w0 is None else w0.clone()
    state = optimizer.init(w)
    stream: Iterator[Tensor | None] = sampler.stream(R, problem.n, generator)
    t_norm = problem.t.norm(dim=-1)
    converged_at = torch.full((R,), -1, dtype=torch.long)
    diverged_at = torch.full((R,), -1, dtype=torch.long)
    rec_steps: list[int] = []
    rec_resid: list[Tensor] = []
    rec_params: list[Tensor] = []
    rec_observed: list[Tensor] = []
    residual = problem.residual(w)  # (R, n)
    rel = residual.norm(dim=-1) / t_norm
    limit = divergence_factor * rel.clamp_min(1.0)
    active = torch.ones(R, dtype=torch.bool)
    all_active = True
    k = 0
    while True:
        crit = rel if criterion is None else criterion(w)
        stop = ~(crit > tol) | ~(rel <= limit)  # converged, blown up, or NaN
        if not all_active:
            stop &= active
        if bool(stop.any()):  # rare: bookkeeping only when some run stops
            converged = stop & (crit <= tol)
            converged_at[converged] = k
            diverged_at[stop & ~converged] = k
            active = active & ~stop
            all_active = False
        if per_run_steps is not None:
            done = active & (per_run_steps <= k)
            if bool(done.any()):
                active = active & ~done
                all_active = False
        last = k == steps or (not all_active and not bool(active.any()))
        if k % every == 0 or last:
            rec_steps.append(k)
            rec_resid.append(rel)
            if record_params:
                rec_params.append(w)
            if observe is not None:
                rec_observed.append(observe(w))
        if last:
            break
        indices = next(stream)
        g = batch_gradient(problem, w, indices, example_weights, residual if full_batch else None)
        updates, state = optimizer.update(g, state, w)
        w = w + updates if all_active else torch.where(active.unsqueeze(-1), w + updates, w)
        k += 1
        residual = problem.residual(w)
        rel = residual.norm(dim=-1) / t_norm
    return Trajectories(
        label=label,
        names=problem.names,
        steps=torch.tensor(rec_steps),
        relative_residual=torch.stack(rec_resid),
        final_params=w,
        converged_at=converged_at,
        diverged_at=diverged_at,
        steps_run=k,
        params=torch.stack(rec_params) if record_params else None,
        extra={"observed": torch.stack(rec_observed)} if observe is not None else {},
    )


def torch_optim_reference(
    problem: LeastSquares,
    make_optimizer: Callable[[list[Tensor]], torch.optim.Optimizer],
    steps: int,
    *,
    sampler: Sampler | None = None,
    generator: torch.Generator | None = None,
    runs: list[int] | None = None,
    w0: Tensor | None = None,
    tol: float = 1e-10,
    make_scheduler: Callable[[torch.optim.Optimizer], object] | None = None,
    example_weights: Tensor | None = None,
) -> Tensor:
    """The same experiment as :func:`run_batch`, one run at a time, with ``torch.optim`` and autograd.

    The sampler draws the same index sequence from an equally seeded ``generator``, so the
    results are comparable run by run. Returns the final parameters of ``runs`` (default all): (len(runs), d).
    """
    sampler = sampler or FullBatch()
    generator = generator or torch.Generator().manual_seed(0)
    R = problem.num_runs
    stream = sampler.stream(R, problem.n, generator)
    indices = [next(stream) for _ in range(steps)]
    finals = []
    for r in range(R) if runs is None else runs:
        X, t = problem.X[r], problem.t[r]
        c = example_weights[r] if example_weights is not None else torch.ones_like(t)
        w = (torch.zeros(problem.d, dtype=X.dtype) if w0 is None else w0[r].clone()).requires_grad_(True)
        opt = make_optimizer([w])
        scheduler = make_scheduler(opt) if make_scheduler else None
        for k in range(steps):
            with torch.no_grad():
                if float((X @ w - t).norm() / t.norm()) <= tol:
                    break
            idx = indices[k]
            rows = slice(None) if idx is None else idx[r]
            opt.zero_grad()
            loss = 0.5 * (c[rows] * (X[rows] @ w - t[rows]) ** 2).mean()
            loss.backward()
            opt.step()
            if scheduler is not None:
                scheduler.step()  # type: ignore[attr-defined]
        finals.append(w.detach())
    return torch.stack(finals)
