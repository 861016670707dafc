"""The LR range test (Smith 2017, "Cyclical learning rates for training neural networks", §3.3).

Train for a short run while the learning rate grows exponentially from ``min_lr`` to
``max_lr``, η_k = min_lr·(max_lr/min_lr)^{k/(K−1)}; smooth the loss with an exponential
moving average, ℓ̄_k = β ℓ_k + (1 − β) ℓ̄_{k−1} (β = ``smoothing``, 0.05 as in
torch-lr-finder); stop once ℓ̄_k > ``diverge_factor``·min ℓ̄ (the *divergence point*).
The suggestion is where the smoothed loss falls fastest against log η ("steepest", as in
torch-lr-finder and fastai's ``steep``) or a tenth of the LR at its minimum ("min/10").

Two complaints users have of the usual finders, and what this one does about them:

- *it changes my model*: the run works on deep copies of the model and the optimizer
  (its state, momentum buffers included); the caller's objects and the global RNG are
  bitwise as they were (tested on the state dicts);
- *the suggestion changes from run to run*: every random choice (batch order, dropout)
  comes from ``seed``, so one seed gives one answer, and :func:`lr_find` runs several seeds
  and reports the suggestion of each (the spread) and their median.

>>> from trainlab.problems import load_problem
>>> r = lr_find(load_problem("linreg", n=10, d=30, seed=0), num_steps=60)
>>> r.divergence_lr is not None and r.suggested_lr < r.divergence_lr
True
"""

from __future__ import annotations

import copy
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from trainlab.errors import ArgumentError
from trainlab.problems import Problem
from trainlab.seeding import derive_seed, forked_rng, generator

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["SUGGESTIONS", "LRFind", "RangeTest", "copy_training_state", "lr_find", "lr_range_test"]

SUGGESTIONS = ("steepest", "min/10")
OPTIMIZERS = ("sgd", "adam")


@dataclass
class RangeTest:
    """One range test: the LRs tried, the raw and smoothed losses, the suggestion and divergence.

    ``divergence_lr`` is the LR at which the smoothed loss passed ``diverge_factor`` times its
    minimum (None if it never did); the curve stops there. ``suggested_lr`` is None when
    fewer than 3 points preceded the divergence.

    ``bounded`` is False when the range ended before the loss turned: no divergence, and the
    smoothed loss was lowest at the last LR tried or fell fastest there. The suggestion is then
    only a lower bound (the LR wanted may lie above ``max_lr``): raise ``max_lr`` and rerun.
    """

    lrs: list[float]
    losses: list[float]
    raw_losses: list[float]
    suggested_lr: float | None
    divergence_lr: float | None
    seed: int
    suggest: str
    bounded: bool = True

    def plot(self, ax: Axes | None = None, label: str | None = None) -> Axes:
        from trainlab.plotting import subplots_or

        _, ax = subplots_or(ax)
        (line,) = ax.semilogx(self.lrs, self.losses, label=label or f"seed {self.seed}")
        if self.suggested_lr is not None:
            ax.axvline(self.suggested_lr, color=line.get_color(), ls=":", lw=1)
        if self.divergence_lr is not None:
            ax.axvline(self.divergence_lr, color=line.get_color(), ls="--", lw=1)
        ax.set_xlabel("learning rate")
        ax.set_ylabel("smoothed training loss")
        return ax


@dataclass
class LRFind:
    """Range tests over several seeds: the median suggestion, its spread, the divergence point."""

    runs: list[RangeTest]
    suggested_lr: float | None
    divergence_lr: float | None
    spread: list[float | None] = field(default_factory=list)
    divergence_spread: list[float | None] = field(default_factory=list)

    @property
    def bounded(self) -> bool:
        """False when any seed's range ended before its loss turned (see :class:`RangeTest`)."""
        return all(r.bounded for r in self.runs)

    @property
    def spread_ratio(self) -> float | None:
        """max/min of the seeds' suggestions (1 when every seed agrees)."""
        values = [v for v in self.spread if v is not None]
        return max(values) / min(values) if values else None

    def as_dict(self) -> dict[str, Any]:
        first = self.runs[0]
        return {
            "suggested_lr": self.suggested_lr,
            "suggestion_bounded": self.bounded,
            "unbounded_seeds": [r.seed for r in self.runs if not r.bounded],
            "divergence_lr": self.divergence_lr,
            "spread": self.spread,
            "spread_ratio": self.spread_ratio,
            "divergence_spread": self.divergence_spread,
            "seeds": [r.seed for r in self.runs],
            "suggest": first.suggest,
            "lrs": first.lrs,
            "losses": first.losses,
            "raw_losses": first.raw_losses,
        }

    def plot(self, ax: Axes | None = None) -> Axes:
        from trainlab.plotting import subplots_or

        _, ax = subplots_or(ax)
        for r in self.runs:
            r.plot(ax)
        ax.set_title("LR range test (dotted: suggestion, dashed: divergence)", fontsize=8)
        if len(self.runs) <= 8:
            ax.legend(fontsize=7)
        return ax


def copy_training_state(
    model: nn.Module, optimizer: torch.optim.Optimizer | None
) -> tuple[nn.Module, torch.optim.Optimizer | None]:
    """Deep copies of ``model`` and of ``optimizer`` bound to the copy's parameters.

    The optimizer copy has the same class, parameter groups, hyperparameters and state
    (momentum buffers, Adam moments, step counts), all as new tensors.
    """
    model_copy = copy.deepcopy(model)
    if optimizer is None:
        return model_copy, None
    to_copy = {id(p): q for p, q in zip(model.parameters(), model_copy.parameters(), strict=True)}
    groups = []
    for g in optimizer.param_groups:
        missing = [p for p in g["params"] if id(p) not in to_copy]
        if missing:
            raise ArgumentError(
                "optimizer", type(optimizer).__name__, "an optimizer over the model's own parameters"
            )
        groups.append(
            {**{k: v for k, v in g.items() if k != "params"}, "params": [to_copy[id(p)] for p in g["params"]]}
        )
    opt_copy = type(optimizer)(groups, **optimizer.defaults)
    # load_state_dict may keep the caller's tensors (a .to() that changes nothing is a no-op): copy them
    opt_copy.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    return model_copy, opt_copy


def _exponential_lrs(min_lr: float, max_lr: float, num_steps: int) -> list[float]:
    ratio = max_lr / min_lr
    if math.isfinite(ratio):
        return [min_lr * ratio ** (k / (num_steps - 1)) for k in range(num_steps)]
    # 1e-320 .. 1e308: the ratio overflows, its logarithm does not
    low, high = math.log(min_lr), math.log(max_lr)
    return [math.exp(low + (high - low) * k / (num_steps - 1)) for k in range(num_steps)]


def _suggest(lrs: list[float], smoothed: list[float], rule: str) -> float | None:
    if rule == "min/10":
        return lrs[int(np.argmin(smoothed))] / 10 if smoothed else None
    if len(smoothed) < 3:
        return None
    # Skip the first 10% (the EMA is still filling) as torch-lr-finder's skip_start does.
    skip = max(1, len(smoothed) // 10) if len(smoothed) >= 10 else 0
    slope = np.gradient(np.asarray(smoothed), np.log(np.asarray(lrs)))  # d ℓ̄ / d log η
    return lrs[skip + int(np.argmin(slope[skip:]))]


def _check_range(
    min_lr: float, max_lr: float, num_steps: int, smoothing: float, diverge_factor: float, suggest: str
) -> None:
    if not (math.isfinite(min_lr) and min_lr > 0):
        raise ArgumentError("min_lr", min_lr, "a positive learning rate")
    if not (math.isfinite(max_lr) and max_lr > min_lr):
        raise ArgumentError("max_lr", max_lr, f"a finite learning rate above min_lr = {min_lr:g}")
    if not isinstance(num_steps, int) or num_steps < 3:
        raise ArgumentError("num_steps", num_steps, "an integer ≥ 3")
    if not 0 < smoothing <= 1:
        raise ArgumentError("smoothing", smoothing, "a number in (0, 1] (1: no smoothing)")
    if not diverge_factor > 1:
        raise ArgumentError("diverge_factor", diverge_factor, "a number > 1")
    if suggest not in SUGGESTIONS:
        raise ArgumentError("suggest", suggest, "one of: " + ", ".join(SUGGESTIONS))


def lr_range_test(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    x: Tensor,
    y: Tensor,
    *,
    min_lr: float = 1e-6,
    max_lr: float = 10.0,
    num_steps: int = 100,
    batch_size: int | None = None,
    smoothing: float = 0.05,
    diverge_factor: float = 5.0,
    suggest: str = "steepest",
    seed: int = 0,
) -> RangeTest:
    """One LR range test of ``model`` trained by (a copy of) ``optimizer`` on (x, y).

    Every step sets the copy's LR (all groups) to η_k, draws a batch of ``batch_size``
    examples (the whole set when None) from ``seed``, and takes one step. The caller's
    ``model``, ``optimizer`` and torch's global RNG are left exactly as they were.
    """
    _check_range(min_lr, max_lr, num_steps, smoothing, diverge_factor, suggest)
    n = len(x)
    if batch_size is not None and batch_size < 1:
        raise ArgumentError("batch_size", batch_size, "a positive integer")
    net, opt = copy_training_state(model, optimizer)
    net.train()
    lrs = _exponential_lrs(min_lr, max_lr, num_steps)
    gen = generator(seed, "lr-range-batches")
    tried, raw, smooth = [], [], []
    best = math.inf
    divergence = None
    with forked_rng(derive_seed(seed, "lr-range-global")):  # dropout etc. draw from the global RNG
        for lr in lrs:
            for group in opt.param_groups:
                group["lr"] = lr
            if batch_size is None or batch_size >= n:
                xb, yb = x, y
            else:
                idx = torch.randperm(n, generator=gen)[:batch_size]
                xb, yb = x[idx], y[idx]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(xb), yb)
            value = float(loss.detach())
            tried.append(lr)
            raw.append(value)
            if not math.isfinite(value):
                smooth.append(math.inf)
                divergence = lr
                break
            ema = value if not smooth else smoothing * value + (1 - smoothing) * smooth[-1]
            smooth.append(ema)
            best = min(best, ema)
            if ema > diverge_factor * best:
                divergence = lr
                break
            loss.backward()
            opt.step()
    end = len(smooth) - 1 if divergence is not None else len(smooth)  # the curve before divergence
    suggestion = _suggest(tried[:end], smooth[:end], suggest)
    return RangeTest(tried, smooth, raw, suggestion, divergence, seed, suggest,
                     bounded=_turned(tried, smooth, divergence, suggestion, suggest))


def _turned(lrs: list[float], smoothed: list[float], divergence: float | None,
            suggestion: float | None, rule: str) -> bool:
    """Whether the range test saw the loss turn, so that its suggestion is not cut by max_lr."""
    if divergence is not None:
        return True
    if int(np.argmin(smoothed)) == len(smoothed) - 1:
        return False  # still at its lowest on the last LR tried: the loss never rose
    # "steepest": the fastest fall at the very end may continue past max_lr
    return not (rule == "steepest" and suggestion is not None and suggestion >= lrs[-1])


def _make_optimizer(name: str, params: Any, lr: float, momentum: float) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    raise ArgumentError("optimizer", name, "one of: " + ", ".join(OPTIMIZERS))


def lr_find(
    problem: Problem,
    *,
    optimizer: str = "sgd",
    momentum: float = 0.0,
    seeds: int = 1,
    seed: int = 0,
    min_lr: float = 1e-6,
    max_lr: float = 10.0,
    num_steps: int = 100,
    batch_size: int | None = None,
    smoothing: float = 0.05,
    diverge_factor: float = 5.0,
    suggest: str = "steepest",
) -> LRFind:
    """Range tests of ``problem``'s model with a fresh ``optimizer`` on ``seeds`` seeds.

    Run i uses seed ``seed`` + i (so ``seeds=1, seed=s`` repeats one of them). The reported
    suggestion and divergence point are the (geometric) medians over the seeds that produced
    one; ``spread`` lists each seed's.
    """
    if not isinstance(seeds, int) or seeds < 1:
        raise ArgumentError("seeds", seeds, "a positive number of seeds")
    if not (math.isfinite(momentum) and 0 <= momentum < 1):
        raise ArgumentError("momentum", momentum, "a number in [0, 1)")
    _check_range(min_lr, max_lr, num_steps, smoothing, diverge_factor, suggest)
    model = problem.model
    opt = _make_optimizer(optimizer, model.parameters(), min_lr, momentum)
    runs = [
        lr_range_test(
            model,
            opt,
            problem.criterion,
            problem.x,
            problem.y,
            min_lr=min_lr,
            max_lr=max_lr,
            num_steps=num_steps,
            batch_size=batch_size,
            smoothing=smoothing,
            diverge_factor=diverge_factor,
            suggest=suggest,
            seed=seed + i,
        )
        for i in range(seeds)
    ]
    spread = [r.suggested_lr for r in runs]
    div = [r.divergence_lr for r in runs]

    def median(values: list[float | None]) -> float | None:
        v = [x for x in values if x is not None]
        return float(math.exp(statistics.median(math.log(x) for x in v))) if v else None

    return LRFind(runs, median(spread), median(div), spread, div)
