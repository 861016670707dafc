"""Train many small models at once: R runs of one problem stacked along a leading axis.

On a 2-core CPU a 64-64-10 MLP step is a few microseconds of arithmetic and tens of
microseconds of Python and dispatch, so R runs trained one after another cost R times the
overhead. Stacking the R parameter sets, ``(R, …)``, and vectorising the loss with
:func:`torch.func.vmap` turns R tiny matmuls into one batched matmul
``(R, B, 64) x (R, 64, 64)``: one thread, one dispatch per layer, for every run.

Each run has its own learning rate (a tensor of shape (R,)), its own initialisation and
its own batch order (both drawn from its seed, so runs that share a seed see the same
batches: common random numbers make learning rates comparable). A run stops as soon as
its full training loss falls below the last target (or it diverges, or its step budget
ends); finished runs are dropped from the stack.

The full training loss costs a pass over the training set, so it is measured on a sparse grid
of steps (every step up to ``dense``, then 4% apart near a target, 15% apart far from one).
A target's step is not the grid point at which the loss was first seen below it (up to 4%
late, 15% after a fast drop) but the crossing of the line through the last measurement above
the target and the first at or below it, in (step, log loss): :func:`crossing_step`. Between
two measurements a loss that decays like a sum of exponentials is locally one exponential,
straight in log loss; the crossing is rounded up to a whole step, so measurements one step
apart give exactly the first step at or below the target.

The optimizers are the ``torch.optim`` rules written for stacked tensors:

- SGD with heavy-ball momentum μ (``torch.optim.SGD``): b ← μb + g (b₁ = g), w ← w − ηb;
- Adam (Kingma & Ba 2015, ``torch.optim.Adam``): m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g²,
  w ← w − η m̂/(√v̂ + ε) with m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ).

tests/scaling/test_stacked.py checks a stacked run against ``torch.optim`` run alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainlab.problems import Problem
from trainlab.seeding import derive_seed, forked_rng, generator

__all__ = ["OPTIMIZERS", "RunOutcome", "StackedRuns", "crossing_step", "init_params", "measure_curve",
           "next_measurement", "train_stacked"]

OPTIMIZERS = ("sgd", "momentum", "adam")


def init_params(problem: Problem, seed: int, key: object = "init") -> dict[str, Tensor]:
    """The problem's model re-initialised from ``seed`` (each module's own ``reset_parameters``).

    The problem's own starting point belongs to its data seed; runs of a sweep draw their
    initialisation from their run seed instead, through the modules' usual init rules.
    """
    model = problem.fresh_model()
    with forked_rng(derive_seed(seed, key)), torch.no_grad():
        for m in model.modules():
            reset = getattr(m, "reset_parameters", None)
            if callable(reset):
                reset()
    return {k: v.detach().clone() for k, v in model.named_parameters()}


@dataclass
class RunOutcome:
    """One run's result: the step at which the full training loss reached each target, targets in
    ascending order (None: not reached), interpolated between the two measured steps that
    bracket the crossing (``brackets``: the last measured step above the target and the first
    at or below it, the grid-snapped figure), and the loss curve at the measured steps (when
    asked for)."""

    steps_to_target: list[int | None]
    final_loss: float
    steps_run: int
    diverged: bool
    censored: bool = False
    curve_steps: list[int] = field(default_factory=list)
    curve_loss: list[float] = field(default_factory=list)
    brackets: list[tuple[int, int] | None] = field(default_factory=list)


def crossing_step(step0: int, loss0: float, step1: int, loss1: float, target: float) -> int:
    """The first whole step at which the line through (step0, log loss0) and (step1, log loss1)
    is ≤ log ``target``, for loss0 > target ≥ loss1: in (step0, step1].

    Straight in log loss (an exponential decay between the two measurements); straight in the
    loss itself when loss1 is 0 or a loss is not finite and positive.
    """
    if step1 - step0 <= 1:
        return step1
    if loss1 > 0 and math.isfinite(loss0) and loss0 > 0:
        frac = (math.log(loss0) - math.log(target)) / (math.log(loss0) - math.log(loss1))
    elif math.isfinite(loss0):
        frac = (loss0 - target) / (loss0 - loss1)
    else:
        return step1
    # a relative tolerance: a crossing that lands on a whole step, up to rounding, is that step
    at = step0 + frac * (step1 - step0)
    return min(step1, max(step0 + 1, math.ceil(at - 1e-9 * step1)))


def _record_crossings(reached: list[int | None], brackets: list[tuple[int, int] | None],
                      last: tuple[int, float], step: int, loss: float, targets: Sequence[float]) -> None:
    """Fill in each target (ascending) that the measurement (step, loss) is the first at or below,
    ``last`` being the run's measurement before it."""
    for j, target in enumerate(targets):
        if reached[j] is None and loss <= target:
            reached[j] = crossing_step(last[0], last[1], step, loss, target)
            brackets[j] = (last[0], step)


def _ratio_to_next_target(loss: float, reached: Sequence[int | None], targets: Sequence[float]) -> float:
    """The loss over the largest target (ascending ``targets``) not reached yet (inf: all reached)."""
    for j in range(len(targets) - 1, -1, -1):
        if reached[j] is None:
            return loss / targets[j] if targets[j] > 0 else math.inf
    return math.inf


def next_measurement(step: int, ratios: Sequence[float], *, max_steps: int, dense: int = 8,
                     fine_ratio: float = 1.04, coarse_ratio: float = 1.15,
                     dense_band: float | None = None) -> int:
    """The step of the measurement after the one at ``step``, ``ratios`` being each unfinished run's
    loss over the next target it has not reached: every step up to ``dense`` (and while a ratio is
    ≤ ``dense_band``, when given); then ``fine_ratio`` × ``step`` while a ratio is ≤ 2 (the crossing
    is bracketed by measurements 4% apart), else ``coarse_ratio`` × ``step`` (all far above)."""
    if step < dense or (dense_band is not None and any(r <= dense_band for r in ratios)):
        return min(step + 1, max_steps)
    ratio = fine_ratio if any(r <= 2 for r in ratios) else coarse_ratio
    return min(max(step + 1, int(round(step * ratio))), max_steps)


def measure_curve(loss_at: Callable[[int], float], targets: Sequence[float], max_steps: int,
                  **schedule: Any) -> RunOutcome:
    """A deterministic loss curve (step -> loss) measured as :func:`train_stacked` measures a run:
    the same steps (:func:`next_measurement`, ``schedule`` its keywords) and interpolated
    crossings, stopping at the last target. For curves whose exact steps to target are known
    (the noisy quadratic model's expected loss): the measurement's own error."""
    targets = sorted(float(t) for t in targets)
    reached: list[int | None] = [None] * len(targets)
    brackets: list[tuple[int, int] | None] = [None] * len(targets)
    last = (0, float(loss_at(0)))
    step, measured, losses = 0, [], []
    while step < max_steps and reached[0] is None:
        step = next_measurement(step, [_ratio_to_next_target(last[1], reached, targets)],
                                max_steps=max_steps, **schedule)
        loss = float(loss_at(step))
        measured.append(step)
        losses.append(loss)
        _record_crossings(reached, brackets, last, step, loss, targets)
        last = (step, loss)
    return RunOutcome(steps_to_target=reached, final_loss=last[1], steps_run=step, diverged=False,
                      curve_steps=measured, curve_loss=losses, brackets=brackets)


@dataclass
class StackedRuns:
    """R runs' hyperparameters: learning rates and seeds (one per run)."""

    lrs: Sequence[float]
    seeds: Sequence[int]

    def __post_init__(self) -> None:
        if len(self.lrs) != len(self.seeds):
            raise ValueError(f"{len(self.lrs)} learning rates but {len(self.seeds)} seeds")


def _batch_orders(n: int, batch_size: int, seed: int, data_seed: int) -> Callable[[int], Tensor]:
    """Batch t of a run: epochs of a fresh permutation, ⌊n/B⌋ batches each (the rest dropped)."""
    per_epoch = max(1, n // batch_size)
    g = generator(data_seed, "batches", seed, batch_size)
    perms: dict[int, Tensor] = {}

    def batch(t: int) -> Tensor:  # t counts from 0
        epoch, k = divmod(t, per_epoch)
        if epoch not in perms:
            perms.clear()
            perms[epoch] = torch.randperm(n, generator=g)
        return perms[epoch][k * batch_size:(k + 1) * batch_size]

    return batch


_ACTIVATIONS = {nn.Tanh: torch.tanh, nn.ReLU: torch.relu, nn.Sigmoid: torch.sigmoid, nn.GELU: F.gelu}


def _mlp_layers(model: nn.Module) -> list[tuple[str, Any]] | None:
    """``nn.Sequential`` of Linear layers and elementwise activations, as (kind, name or fn); else None."""
    if not isinstance(model, nn.Sequential):
        return None
    layers: list[tuple[str, Any]] = []
    for name, m in model.named_children():
        if type(m) is nn.Linear:
            layers.append(("linear", name))
        elif type(m) in _ACTIVATIONS:
            layers.append(("act", _ACTIVATIONS[type(m)]))
        else:
            return None
    return layers


def _stacked_loss(problem: Problem, names: list[str]) -> tuple[Callable[..., dict[str, Tensor]],
                                                                 Callable[..., Tensor]]:
    """(grads(params, xb, yb) -> per-run gradients, full_loss(params, x, y) -> (R,) losses).

    An MLP (Linear + elementwise activations) runs as batched matmuls, (R, B, in) x (R, in, out),
    about 4x faster than vmap over functional_call for the digits MLP (measured); any other
    model goes through :func:`torch.func.vmap`.
    """
    layers = _mlp_layers(problem.model)
    if layers is None:
        def loss_fn(p: Mapping[str, Tensor], xb: Tensor, yb: Tensor) -> Tensor:
            return problem.loss(p, xb, yb, {})

        vgrad = torch.func.vmap(torch.func.grad(loss_fn))
        return vgrad, torch.func.vmap(loss_fn, in_dims=(0, None, None))

    def forward(p: Mapping[str, Tensor], h: Tensor) -> Tensor:
        for kind, what in layers:
            if kind == "linear":
                w, b = p[f"{what}.weight"], p.get(f"{what}.bias")  # (R, out, in), (R, out)
                h = torch.matmul(h, w.transpose(1, 2))  # (R or 1, B, in) -> (R, B, out)
                if b is not None:
                    h = h + b.unsqueeze(1)
            else:
                h = what(h)
        return h

    def per_run_loss(p: Mapping[str, Tensor], xb: Tensor, yb: Tensor) -> Tensor:
        out = forward(p, xb)  # (R, B, C)
        R, B = out.shape[:2]
        per_example = problem.criterion(out.reshape(R * B, *out.shape[2:]),
                                        yb.reshape(R * B, *yb.shape[2:]), reduction="none")
        return per_example.view(R, B).mean(1)  # (R,)

    def grads(p: Mapping[str, Tensor], xb: Tensor, yb: Tensor) -> dict[str, Tensor]:
        leaves = {k: v.detach().requires_grad_() for k, v in p.items()}
        with torch.enable_grad():
            loss = per_run_loss(leaves, xb, yb).sum()  # runs are independent: d(sum)/dθ_r = dL_r/dθ_r
            g = torch.autograd.grad(loss, [leaves[k] for k in names])
        return dict(zip(names, g, strict=True))

    def full_loss(p: Mapping[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        R = next(iter(p.values())).shape[0]
        return per_run_loss(p, x.unsqueeze(0).expand(R, *x.shape), y.unsqueeze(0).expand(R, *y.shape))

    return grads, full_loss


def train_stacked(problem: Problem, runs: StackedRuns, *, batch_size: int, targets: Sequence[float],
                  max_steps: int, optimizer: str = "sgd", momentum: float = 0.9,
                  betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, data_seed: int = 0,
                  keep_curves: bool = False, stop_at_target: bool = True,
                  prune_factor: float | None = None, prune_cap: float | None = None,
                  dense: int = 8, fine_ratio: float = 1.04, coarse_ratio: float = 1.15,
                  dense_band: float | None = None,
                  init: Callable[[int], Mapping[str, Tensor]] | None = None,
                  progress: Callable[[int, int], None] | None = None) -> list[RunOutcome]:
    """Train ``runs`` (stacked) with a constant learning rate until each reaches ``min(targets)``.

    The training loss over the whole training set is measured every step up to ``dense``, then
    every ``fine_ratio`` (while a run is within 2× of a target it has not reached) or
    ``coarse_ratio`` (while all are far above) times the last measured step, and every step
    while a run is within ``dense_band`` × its next target (when given: the exact first step at
    or below a target even of a loss that jumps from step to step); the step at which a target is
    reached is interpolated between the two measurements that bracket it (:func:`crossing_step`).
    A run whose loss is not finite or exceeds 10× its starting loss counts as diverged. With
    ``prune_factor`` a run still short of the last target once the step count passes
    ``prune_factor`` × the fewest steps any run needed (or ``prune_cap``, the same bound from
    earlier runs) is stopped as censored: it cannot be the best learning rate. Returns one
    :class:`RunOutcome` per run, in order.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer {optimizer!r} is not one of {OPTIMIZERS}")
    if problem.buffers():
        raise ValueError("stacked training needs a model without buffers (BatchNorm statistics)")
    R = len(runs.lrs)
    n = problem.num_examples
    batch_size = min(batch_size, n)
    targets = sorted(float(t) for t in targets)
    init = init or (lambda s: init_params(problem, s))
    starts = [init(s) for s in runs.seeds]
    names = list(starts[0])
    params = {k: torch.stack([s[k] for s in starts]) for k in names}  # (R, *shape)
    dtype = params[names[0]].dtype
    lr = torch.tensor(list(runs.lrs), dtype=dtype)  # (R,)
    state1 = {k: torch.zeros_like(v) for k, v in params.items()}
    state2 = {k: torch.zeros_like(v) for k, v in params.items()} if optimizer == "adam" else {}
    x, y = problem.x, problem.y
    unique_seeds = sorted(set(runs.seeds))
    orders = {s: _batch_orders(n, batch_size, s, data_seed) for s in unique_seeds}
    seed_row = {s: i for i, s in enumerate(unique_seeds)}

    grad_fn, full_loss = _stacked_loss(problem, names)

    active = list(range(R))  # run index of each row of the stack
    row_seed = torch.tensor([seed_row[runs.seeds[i]] for i in active])
    reached: list[list[int | None]] = [[None] * len(targets) for _ in range(R)]
    brackets: list[list[tuple[int, int] | None]] = [[None] * len(targets) for _ in range(R)]
    final = [math.nan] * R
    stopped = [max_steps] * R
    diverged = [False] * R
    censored = [False] * R
    cap = math.inf if prune_cap is None else float(prune_cap)
    curves: list[tuple[list[int], list[float]]] = [([], []) for _ in range(R)]
    with torch.no_grad():
        loss0 = full_loss(params, x, y)  # (R,)
    start_loss = loss0.tolist()
    last_seen = [(0, L) for L in start_loss]  # each run's latest measurement: (step, loss)
    next_eval = 1
    for t in range(max_steps):
        idx = torch.stack([orders[s](t) for s in unique_seeds])  # (S, B) one order per seed
        idx = idx[row_seed]  # (R_active, B)
        xb, yb = x[idx], y[idx]  # (R, B, …)
        grads = grad_fn(params, xb, yb)
        with torch.no_grad():
            lr_b = {k: lr.view(-1, *[1] * (v.dim() - 1)) for k, v in params.items()}
            if optimizer == "sgd":
                for k in names:
                    params[k] = params[k] - lr_b[k] * grads[k]
            elif optimizer == "momentum":
                for k in names:
                    state1[k] = grads[k] if t == 0 else momentum * state1[k] + grads[k]
                    params[k] = params[k] - lr_b[k] * state1[k]
            else:
                b1, b2 = betas
                c1, c2 = 1 - b1 ** (t + 1), 1 - b2 ** (t + 1)
                for k in names:
                    state1[k] = b1 * state1[k] + (1 - b1) * grads[k]
                    state2[k] = b2 * state2[k] + (1 - b2) * grads[k] ** 2
                    params[k] = params[k] - lr_b[k] * (state1[k] / c1) / ((state2[k] / c2).sqrt() + eps)
        step = t + 1
        if step != next_eval and step != max_steps:
            continue
        with torch.no_grad():
            losses = full_loss(params, x, y).tolist()
        keep = []
        for row, run in enumerate(active):
            L = losses[row]
            final[run] = L
            if keep_curves:
                curves[run][0].append(step)
                curves[run][1].append(L)
            first = reached[run][0]
            _record_crossings(reached[run], brackets[run], last_seen[run], step, L, targets)
            last_seen[run] = (step, L)
            if first is None and reached[run][0] is not None and prune_factor is not None:
                cap = min(cap, prune_factor * reached[run][0])
            done = reached[run][0] is not None and stop_at_target
            if not math.isfinite(L) or L > 10 * start_loss[run] + 1.0:
                diverged[run], done = True, True
            if not done and reached[run][0] is None and step >= cap:
                censored[run], done = True, True
            if done:
                stopped[run] = step
            else:
                keep.append(row)
        next_eval = next_measurement(
            step, [_ratio_to_next_target(losses[row], reached[run], targets)
                   for row, run in enumerate(active) if reached[run][0] is None],
            max_steps=max_steps, dense=dense, fine_ratio=fine_ratio, coarse_ratio=coarse_ratio,
            dense_band=dense_band)
        if progress is not None:
            progress(step, max_steps)
        if len(keep) < len(active):
            if not keep:
                break
            sel = torch.tensor(keep)
            params = {k: v[sel] for k, v in params.items()}
            state1 = {k: v[sel] for k, v in state1.items()}
            state2 = {k: v[sel] for k, v in state2.items()}
            lr = lr[sel]
            row_seed = row_seed[sel]
            active = [active[r] for r in keep]
    return [RunOutcome(steps_to_target=reached[r],
                       final_loss=final[r], steps_run=stopped[r], diverged=diverged[r], censored=censored[r],
                       curve_steps=curves[r][0], curve_loss=curves[r][1], brackets=brackets[r])
            for r in range(R)]
