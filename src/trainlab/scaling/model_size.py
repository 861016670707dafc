"""Loss vs model size and compute: a width sweep of the digits MLP (Kaplan et al. 2020, §3 and
§6; Hoffmann et al. 2022).

Every width trains with the same optimizer and batch size; the training loss over the whole
training set is recorded along the way. Compute is counted as Kaplan's C ≈ 6·N·B·S floating
point operations (2N per example forward, 4N backward, N parameters, S steps of B examples).
From the curves:

- L(N): the loss each size reaches after the same number of steps, i.e. the same data (a power
  law in N: larger models are more sample-efficient);
- steps to a target loss against N (the same sample efficiency, as a count);
- the compute frontier L*(C) = min_N L(N, C) and the compute-optimal size N*(C) that attains
  it: L* falls as a power law in C; where N* sits says whether, at this scale, extra compute
  is better spent on a larger model or on more steps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trainlab.problems import digits_mlp
from trainlab.scaling.fit import PowerLawFit, fit_power_law
from trainlab.scaling.stacked import StackedRuns, train_stacked

__all__ = ["ModelSizeSweep", "compute_frontier", "model_size_sweep"]


@dataclass
class ModelSizeSweep:
    """Loss curves per width (mean over seeds) and per seed, against steps and compute."""

    widths: list[int]
    num_params: list[int]
    batch_size: int
    steps: list[list[int]]  # per width: evaluated steps
    loss: list[list[list[float]]]  # per width, per seed: loss at those steps
    info: dict[str, Any] = field(default_factory=dict)

    def mean_loss(self, weights: np.ndarray | None = None) -> list[np.ndarray]:
        return [np.average(np.asarray(ls), axis=0, weights=weights) for ls in self.loss]

    def compute(self, i: int) -> np.ndarray:
        """C = 6·N·B·S for width i's evaluated steps."""
        return 6.0 * self.num_params[i] * self.batch_size * np.asarray(self.steps[i], dtype=float)

    def final_loss(self, weights: np.ndarray | None = None) -> np.ndarray:
        return np.array([m[-1] for m in self.mean_loss(weights)])

    def steps_to(self, target: float, weights: np.ndarray | None = None) -> np.ndarray:
        """First evaluated step at which each width's mean loss is ≤ ``target`` (inf: never)."""
        out = []
        for st, m in zip(self.steps, self.mean_loss(weights), strict=True):
            hit = np.nonzero(np.asarray(m) <= target)[0]
            out.append(float(st[hit[0]]) if len(hit) else math.inf)
        return np.array(out)

    def size_law(self, weights: np.ndarray | None = None) -> PowerLawFit:
        """L(N) ≈ a·N^α over the widths, at the end of training."""
        return fit_power_law(self.num_params, self.final_loss(weights))

    def plot(self, ax: Any = None) -> Any:
        """Loss vs compute per width, with the frontier; a second panel L(N)."""
        if ax is None:
            from trainlab.plotting import new_figure

            fig, (ax, ax2) = new_figure(1, 2)
        else:
            fig, ax2 = ax.figure, None
        means = self.mean_loss()
        for i, w in enumerate(self.widths):
            ax.loglog(self.compute(i), means[i], "-", lw=1, label=f"width {w} (N={self.num_params[i]:,})")
        C, L, N = compute_frontier(self)
        ax.loglog(C, L, "k--", lw=1.5, label="frontier min_N L(N, C)")
        ax.set_xlabel("compute C = 6·N·B·S (FLOP)")
        ax.set_ylabel("training loss")
        ax.legend(fontsize=6)
        if ax2 is not None:
            law = self.size_law()
            ax2.loglog(self.num_params, self.final_loss(), "o", label="end of training")
            ax2.loglog(self.num_params, law(self.num_params), "-", label=f"∝ N^{law.exponent:.2f}")
            ax2.set_xlabel("parameters N")
            ax2.set_ylabel("training loss")
            ax2.legend(fontsize=7)
        return fig


def compute_frontier(sweep: ModelSizeSweep, num_budgets: int = 12, weights: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(C, L*(C), N*(C)) on a geometric grid of budgets every width's curve can price.

    Each width's loss at budget C is interpolated (log–log) along its curve; budgets run from
    where every model has done 8 steps to where the smallest model's curve ends (every width
    is priced at every budget).
    """
    means = sweep.mean_loss(weights)
    lo = max(sweep.compute(i)[min(7, len(sweep.steps[i]) - 1)] for i in range(len(sweep.widths)))
    hi = min(sweep.compute(i)[-1] for i in range(len(sweep.widths)))
    budgets = np.geomspace(lo, hi, num_budgets)
    best_L, best_N = [], []
    for C in budgets:
        vals = []
        for i in range(len(sweep.widths)):
            c = sweep.compute(i)
            if C < c[0] or C > c[-1]:
                vals.append(math.inf)
                continue
            vals.append(float(np.exp(np.interp(np.log(C), np.log(c), np.log(np.maximum(means[i], 1e-12))))))
        j = int(np.argmin(vals))
        best_L.append(vals[j])
        best_N.append(sweep.num_params[j])
    return budgets, np.array(best_L), np.array(best_N, dtype=float)


def model_size_sweep(widths: Sequence[int], seeds: Sequence[int], *, max_steps: int, batch_size: int = 32,
                     lr: float = 0.01, optimizer: str = "adam", data_seed: int = 0) -> ModelSizeSweep:
    """Train the 64-width-10 digits MLP for each width, all seeds stacked, ``max_steps`` steps of
    ``batch_size`` examples (every width sees the same data)."""
    nparams, steps, losses = [], [], []
    for w in widths:
        problem = digits_mlp(data_seed, width=w)
        nparams.append(problem.num_params)
        budget = max_steps
        out = train_stacked(problem, StackedRuns([lr] * len(seeds), list(seeds)), batch_size=batch_size,
                            targets=[0.0], max_steps=budget, optimizer=optimizer, data_seed=data_seed,
                            keep_curves=True, stop_at_target=False, fine_ratio=1.1, coarse_ratio=1.1)
        steps.append(out[0].curve_steps)
        losses.append([o.curve_loss for o in out])
    return ModelSizeSweep(list(widths), nparams, batch_size, steps, losses,
                          {"lr": lr, "optimizer": optimizer, "max_steps": max_steps})
