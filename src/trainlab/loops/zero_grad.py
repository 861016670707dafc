"""Where ``optimizer.zero_grad()`` sits in the training loop, and what each placement applies.

``loss.backward()`` *adds* the batch gradient g_t into each ``p.grad``; only ``zero_grad()``
clears it. So the gradient an SGD step applies is

- ``before-backward`` (the correct loop) and ``after-step`` (the same loop, rotated): g_t;
- ``missing``: the running sum S_t = g_0 + … + g_t of every gradient so far, so the update
  is w_{t+1} = w_t − η S_t, i.e. heavy-ball momentum with β = 1 and no damping:
  w_{t+1} − 2w_t + w_{t−1} = −η g_t. On a quadratic every mode with 0 < ηλ < 4 then
  oscillates forever (the roots of z² − (2 − ηλ)z + 1 have modulus 1) instead of decaying,
  and modes with ηλ > 4 blow up;
- ``after-backward`` (cleared between ``backward()`` and ``step()``): nothing — with
  ``set_to_none=True`` (PyTorch's default) ``step()`` skips every parameter, so the model
  never moves.

:func:`train_loop` runs a real ``torch.optim.SGD`` loop with one of these placements and, at
every step, compares the gradient it applied with g_t and with S_t computed independently
(``torch.autograd.grad`` of the functional loss at the same weights and batch).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from trainlab.errors import ArgumentError
from trainlab.problems import Problem
from trainlab.seeding import generator

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["PLACEMENTS", "LoopRun", "compare_placements", "plot_placements", "train_loop"]

#: Where zero_grad() is called in each variant of the loop.
PLACEMENTS = ("before-backward", "missing", "after-backward", "after-step")


@dataclass
class LoopRun:
    """One training run with a given zero_grad placement, and what it applied at each step.

    ``losses``: training-set loss before each step and after the last (steps + 1 values);
    ``err_vs_sum[t]`` = ‖applied_t − S_t‖ / Σ_{s≤t}‖g_s‖ (the scale rounding acts on);
    ``err_vs_true[t]`` = ‖applied_t − g_t‖ / ‖g_t‖; ``applied_norm[t]`` = ‖applied_t‖.
    """

    placement: str
    lr: float
    losses: list[float]
    err_vs_sum: list[float] = field(default_factory=list)
    err_vs_true: list[float] = field(default_factory=list)
    applied_norm: list[float] = field(default_factory=list)
    true_norm: list[float] = field(default_factory=list)
    params_moved: bool = True
    dtype: str = "float32"

    def plot(self, ax: Axes | None = None) -> Axes:
        from trainlab.plotting import subplots_or

        _, ax = subplots_or(ax)
        ax.semilogy(
            range(len(self.losses)), [min(v, 1e30) for v in self.losses], label=f"zero_grad {self.placement}"
        )
        ax.set_xlabel("step")
        ax.set_ylabel("training loss")
        ax.legend(fontsize=7)
        return ax


def _flat(tensors: list[Tensor | None], like: list[Tensor]) -> Tensor:
    return torch.cat(
        [
            (torch.zeros_like(p) if t is None else t).detach().reshape(-1)
            for t, p in zip(tensors, like, strict=True)
        ]
    )


def train_loop(
    problem: Problem, placement: str, *, lr: float, steps: int, batch_size: int | None = None, seed: int = 0
) -> LoopRun:
    """Train a fresh copy of ``problem``'s model with SGD(lr), zero_grad() at ``placement``.

    Batches of ``batch_size`` (the whole set when None) are drawn from ``seed``, the same
    sequence for every placement.
    """
    if placement not in PLACEMENTS:
        raise ArgumentError("placement", placement, "one of: " + ", ".join(PLACEMENTS))
    if steps < 1:
        raise ArgumentError("steps", steps, "a positive number of steps")
    model = problem.fresh_model()
    params = list(model.parameters())
    names = [k for k, _ in model.named_parameters()]
    start = [p.detach().clone() for p in params]
    opt = torch.optim.SGD(params, lr=lr)
    gen = generator(seed, "zero-grad-batches")
    full = batch_size is None or batch_size >= problem.num_examples
    run = LoopRun(placement, lr, [], dtype=str(params[0].dtype).replace("torch.", ""))
    running = None
    norms_sum = 0.0

    def train_loss() -> float:
        with torch.no_grad():
            return float(problem.criterion(model(problem.x), problem.y))

    for _ in range(steps):
        xb, yb = (problem.x, problem.y) if full else problem.sample_batch(batch_size, gen)
        run.losses.append(train_loss())
        # The true gradient g_t at the current weights on this batch, computed on its own.
        current = {k: p.detach().requires_grad_(True) for k, p in zip(names, params, strict=True)}
        g_true = torch.autograd.grad(problem.loss(current, xb, yb), list(current.values()))
        g_flat = _flat(list(g_true), params).double()
        running = g_flat.clone() if running is None else running + g_flat
        norms_sum += float(g_flat.norm())
        # The loop as a student writes it.
        if placement == "before-backward":
            opt.zero_grad()
        loss = problem.criterion(model(xb), yb)
        loss.backward()
        if placement == "after-backward":
            opt.zero_grad()
        applied = _flat([p.grad for p in params], params).double()
        opt.step()
        if placement == "after-step":
            opt.zero_grad()
        run.err_vs_sum.append(float((applied - running).norm()) / norms_sum)
        run.err_vs_true.append(float((applied - g_flat).norm()) / max(float(g_flat.norm()), 1e-300))
        run.applied_norm.append(float(applied.norm()))
        run.true_norm.append(float(g_flat.norm()))
    run.losses.append(train_loss())
    run.params_moved = any(not torch.equal(p.detach(), s) for p, s in zip(params, start, strict=True))
    return run


def compare_placements(
    problem: Problem,
    *,
    lr: float,
    steps: int,
    batch_size: int | None = None,
    seed: int = 0,
    placements: tuple[str, ...] = PLACEMENTS,
) -> dict[str, LoopRun]:
    """:func:`train_loop` for every placement, on the same batches."""
    return {
        p: train_loop(problem, p, lr=lr, steps=steps, batch_size=batch_size, seed=seed) for p in placements
    }


def plot_placements(runs: dict[str, LoopRun], axes: Any = None) -> Any:
    """Loss curves (left) and ‖applied gradient‖/‖true gradient g_t‖ per step (right)."""
    from trainlab.plotting import new_figure

    if axes is None:
        _, axes = new_figure(1, 2, size=(9, 3.4))
    for run in runs.values():
        run.plot(axes[0])
        ratio = [a / t if t > 0 else 0.0 for a, t in zip(run.applied_norm, run.true_norm, strict=True)]
        axes[1].plot(range(len(ratio)), ratio, label=f"zero_grad {run.placement}")
    if "missing" in runs:
        worst = max(runs["missing"].err_vs_sum)
        axes[1].set_title(f"missing: ‖applied − Σ g_s‖ / Σ‖g_s‖ ≤ {worst:.1e}", fontsize=8)
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("‖applied gradient‖ / ‖g_t‖")
    axes[1].legend(fontsize=7)
    return axes
