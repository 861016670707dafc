"""Fits of a steps-to-target sweep: critical batch size, learning-rate law, power laws.

McCandlish et al. 2018 (eqs. 2.11, 2.12): the steps S and examples E = B·S needed to reach
a given loss trade off along

    S(B) = S_min (1 + B_noise/B),   equivalently   (S/S_min − 1)(E/E_min − 1) = 1,

with B_crit = E_min/S_min. S is linear in 1/B (S = a + b/B with a = S_min, b = E_min), fitted
by non-negative least squares on relative errors (each point weighted by 1/S, so B = 1 and
B = 1024 count alike). For SGD the best learning rate follows ε_opt(B) = ε_max/(1 + B_noise/B)
(eq. 2.7), so 1/ε is linear in 1/B as well. Uncertainty comes from a bootstrap over seeds:
resample the seeds with replacement, redo "best learning rate per batch size = fewest mean
steps", refit; percentile intervals.

Power laws (Kaplan et al. 2020; Hoffmann et al. 2022) are straight lines in log–log space.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trainlab.plotting import subplots_or

__all__ = [
    "CriticalBatchFit",
    "LRLawFit",
    "PowerLawFit",
    "SweepFit",
    "fit_critical_batch",
    "fit_lr_law",
    "fit_power_law",
    "fit_sweep",
    "percentile_interval",
    "refine_best_lr",
    "seed_resamples",
    "steps_table",
]


@dataclass
class CriticalBatchFit:
    """S(B) = s_min (1 + b_crit/B); max_rel_err is the largest |S_fit/S − 1| over the points."""

    s_min: float
    e_min: float
    max_rel_err: float

    @property
    def b_crit(self) -> float:
        return self.e_min / self.s_min if self.s_min > 0 else math.inf

    def steps(self, batch_sizes: Sequence[float]) -> np.ndarray:
        B = np.asarray(batch_sizes, dtype=float)
        return self.s_min + self.e_min / B


def _nnls_linear_in_inverse(B: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """y ≈ a + b/B with a, b ≥ 0, least squares on relative error (rows divided by y)."""
    A = np.stack([1.0 / y, 1.0 / (B * y)], axis=1)  # (n, 2): (a + b/B)/y ≈ 1
    ones = np.ones_like(y)
    (a, b), *_ = np.linalg.lstsq(A, ones, rcond=None)
    if a >= 0 and b >= 0:
        return float(a), float(b)
    # non-negative least squares with two unknowns: the best of the two one-variable fits
    fits = []
    for col in (0, 1):
        c = A[:, col]
        v = max(float(c @ ones / (c @ c)), 0.0)
        fits.append((float(np.sum((c * v - ones) ** 2)), col, v))
    _, col, v = min(fits)
    return (v, 0.0) if col == 0 else (0.0, v)


def fit_critical_batch(batch_sizes: Sequence[float], steps: Sequence[float]) -> CriticalBatchFit:
    """Fit S(B) = S_min + E_min/B to measured (B, S) (finite points only; at least two)."""
    B = np.asarray(batch_sizes, dtype=float)
    S = np.asarray(steps, dtype=float)
    ok = np.isfinite(S) & (S > 0)
    if ok.sum() < 2:
        return CriticalBatchFit(math.nan, math.nan, math.nan)
    a, b = _nnls_linear_in_inverse(B[ok], S[ok])
    fit = CriticalBatchFit(a, b, 0.0)
    fit.max_rel_err = float(np.max(np.abs(fit.steps(B[ok]) / S[ok] - 1)))
    return fit


@dataclass
class LRLawFit:
    """ε_opt(B) = lr_max/(1 + b_noise/B) (McCandlish eq. 2.7)."""

    lr_max: float
    b_noise: float

    def lr(self, batch_sizes: Sequence[float]) -> np.ndarray:
        return self.lr_max / (1 + self.b_noise / np.asarray(batch_sizes, dtype=float))


def fit_lr_law(batch_sizes: Sequence[float], lrs: Sequence[float]) -> LRLawFit:
    """Fit 1/ε = 1/ε_max + (B_noise/ε_max)/B to the best learning rates."""
    B = np.asarray(batch_sizes, dtype=float)
    inv = 1.0 / np.asarray(lrs, dtype=float)
    ok = np.isfinite(inv)
    a, b = _nnls_linear_in_inverse(B[ok], inv[ok])
    if a <= 0:
        return LRLawFit(math.inf, math.inf)
    return LRLawFit(1.0 / a, b / a)


@dataclass
class PowerLawFit:
    """y = coef · x^exponent, fitted in log–log space; r2 is that line's R²."""

    coef: float
    exponent: float
    r2: float

    def __call__(self, x: Sequence[float]) -> np.ndarray:
        return self.coef * np.asarray(x, dtype=float) ** self.exponent


def fit_power_law(x: Sequence[float], y: Sequence[float]) -> PowerLawFit:
    lx, ly = np.log(np.asarray(x, dtype=float)), np.log(np.asarray(y, dtype=float))
    slope, icpt = np.polyfit(lx, ly, 1)
    resid = ly - (icpt + slope * lx)
    ss = float(np.sum((ly - ly.mean()) ** 2))
    r2 = 1.0 - float(np.sum(resid**2)) / ss if ss > 0 else 1.0
    return PowerLawFit(float(math.exp(icpt)), float(slope), r2)


StepsTable = tuple[list[int], dict[int, list[int]], dict[int, dict[int, np.ndarray]], dict[int, float]]


def steps_table(records: Sequence[Mapping[str, Any]], seeds: Sequence[int], target_index: int) -> StepsTable:
    """(batch sizes, lr indices per batch size, steps[B][k] as an array over ``seeds`` (inf: not
    reached or missing), lr of each index)."""
    sizes = sorted({r["batch_size"] for r in records})
    pos = {s: i for i, s in enumerate(seeds)}
    table: dict[int, dict[int, np.ndarray]] = {B: {} for B in sizes}
    lr_of: dict[int, float] = {}
    for r in records:
        if r["seed"] not in pos:
            continue
        row = table[r["batch_size"]].setdefault(r["lr_index"], np.full(len(seeds), np.inf))
        v = r["steps_to_target"][target_index]
        row[pos[r["seed"]]] = np.inf if v is None else float(v)
        lr_of[r["lr_index"]] = float(r["lr"])
    ks = {B: sorted(table[B]) for B in sizes}
    return sizes, ks, table, lr_of


def _weighted_mean_finite(s: np.ndarray, w: np.ndarray) -> float:
    used = w > 0
    if not np.all(np.isfinite(s[used])):
        return math.inf
    return float(np.sum(s[used] * w[used]) / np.sum(w[used]))


@dataclass
class SweepFit:
    """A sweep's fit at one target: points, best LRs, hyperbola, LR law, bootstrap intervals."""

    target: float
    batch_sizes: list[int]
    best_lr: list[float]
    best_steps: list[float]
    critical: CriticalBatchFit
    lr_law: LRLawFit
    b_crit_interval: tuple[float, float]
    s_min_interval: tuple[float, float]
    e_min_interval: tuple[float, float]
    num_resamples: int
    b_crit_samples: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    lr_samples: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)
    steps_samples: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)

    @property
    def examples(self) -> list[float]:
        return [B * S for B, S in zip(self.batch_sizes, self.best_steps, strict=True)]

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "batch_sizes": self.batch_sizes, "best_lr": self.best_lr,
                "steps": self.best_steps, "examples": self.examples, "s_min": self.critical.s_min,
                "e_min": self.critical.e_min, "b_crit": self.critical.b_crit,
                "b_crit_interval": list(self.b_crit_interval), "s_min_interval": list(self.s_min_interval),
                "e_min_interval": list(self.e_min_interval), "max_rel_err": self.critical.max_rel_err,
                "lr_max": self.lr_law.lr_max, "lr_b_noise": self.lr_law.b_noise,
                "bootstrap_resamples": self.num_resamples}

    def plot(self, ax: Any = None) -> Any:
        """Steps to target vs batch size (log–log) with the fitted hyperbola and S_min."""
        fig, ax = subplots_or(ax)
        B = np.asarray(self.batch_sizes, dtype=float)
        ax.loglog(B, self.best_steps, "o", label="measured (best LR, mean over seeds)")
        grid = np.geomspace(B.min(), B.max(), 100)
        c = self.critical
        ax.loglog(grid, c.steps(grid), "-", label=f"S_min(1 + B_crit/B), B_crit = {c.b_crit:.3g}")
        ax.axhline(c.s_min, ls=":", c="grey", label=f"S_min = {c.s_min:.3g}")
        ax.axvline(c.b_crit, ls="--", c="grey")
        ax.set_xlabel("batch size B")
        ax.set_ylabel(f"steps to loss ≤ {self.target:g}")
        ax.legend(fontsize=7)
        return fig

    def plot_lr(self, ax: Any = None) -> Any:
        fig, ax = subplots_or(ax)
        B = np.asarray(self.batch_sizes, dtype=float)
        ax.loglog(B, self.best_lr, "o", label="best LR (√2 grid)")
        grid = np.geomspace(B.min(), B.max(), 100)
        if math.isfinite(self.lr_law.lr_max):
            ax.loglog(grid, self.lr_law.lr(grid), "-",
                      label=f"ε_max/(1 + B_noise/B), B_noise = {self.lr_law.b_noise:.3g}")
        ax.set_xlabel("batch size B")
        ax.set_ylabel("best learning rate")
        ax.legend(fontsize=7)
        return fig

    def plot_tradeoff(self, ax: Any = None) -> Any:
        """Examples vs steps: the time/compute trade-off (S/S_min − 1)(E/E_min − 1) = 1."""
        fig, ax = subplots_or(ax)
        c = self.critical
        ax.loglog(self.best_steps, self.examples, "o", label="measured")
        s = np.geomspace(c.s_min * 1.01, max(self.best_steps) * 1.2, 200)
        ax.loglog(s, c.e_min * (1 + 1 / (s / c.s_min - 1)), "-", label="(S/S_min − 1)(E/E_min − 1) = 1")
        ax.set_xlabel("steps S (time)")
        ax.set_ylabel("examples E = B·S (compute)")
        ax.legend(fontsize=7)
        return fig


def fit_sweep(records: Sequence[Mapping[str, Any]], seeds: Sequence[int], targets: Sequence[float],
              target_index: int = 0, *, num_resamples: int = 1000, rng: np.random.Generator | None = None,
              level: float = 0.9, resample_weights: np.ndarray | None = None,
              refine_lr: bool = True) -> SweepFit:
    """Fit the sweep's best steps per batch size at ``targets[target_index]`` (targets ascending),
    with ``level`` percentile bootstrap intervals over seeds.

    ``resample_weights`` (num_resamples, len(seeds)) fixes the bootstrap draws (seed counts), so
    two sweeps over the same seeds can be resampled jointly (paired ratios). With ``refine_lr``
    the best learning rate is refined between grid points (:func:`refine_best_lr`); the steps
    are always the best grid point's.
    """
    rng = rng or np.random.default_rng(0)
    if resample_weights is None:
        resample_weights = seed_resamples(len(seeds), num_resamples, rng)
    num_resamples = len(resample_weights)
    sizes, _, table, lr_of = steps_table(records, seeds, target_index)

    def best(weights: np.ndarray) -> tuple[list[float], list[float]]:
        lrs, steps = [], []
        for B in sizes:
            means = {k: _weighted_mean_finite(table[B][k], weights) for k in table[B]}
            k = min(means, key=lambda k: (means[k], k)) if means else None
            if k is None or not math.isfinite(means[k]):
                lrs.append(math.nan)
            else:
                lrs.append(refine_best_lr(lr_of, means, k) if refine_lr else lr_of[k])
            steps.append(means[k] if k is not None else math.inf)
        return lrs, steps

    ones = np.ones(len(seeds))
    best_lr, best_steps = best(ones)
    crit = fit_critical_batch(sizes, best_steps)
    law = fit_lr_law(sizes, best_lr)
    samples = np.empty((num_resamples, 3))
    lr_samples = np.empty((num_resamples, len(sizes)))
    steps_samples = np.empty((num_resamples, len(sizes)))
    for i, w in enumerate(resample_weights):
        lrs, steps = best(w)
        c = fit_critical_batch(sizes, steps)
        samples[i] = (c.b_crit, c.s_min, c.e_min)
        lr_samples[i] = lrs
        steps_samples[i] = steps
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]

    def interval(col: int) -> tuple[float, float]:
        lo, hi = np.nanpercentile(samples[:, col], q)
        return float(lo), float(hi)

    return SweepFit(float(sorted(targets)[target_index]), sizes, best_lr, best_steps, crit, law,
                    interval(0), interval(1), interval(2), num_resamples, samples[:, 0], lr_samples,
                    steps_samples)


def refine_best_lr(lr_of: Mapping[Any, float], mean_steps: Mapping[Any, float], k: Any) -> float:
    """The vertex of the parabola through (log η, log S) at the best grid point and its two
    neighbours, kept between the neighbours; the grid value when a neighbour is missing or
    not finite. Near its minimum log S is smooth in log η, and a flat optimum on a √2 grid
    otherwise makes the argmin jump by a whole grid step between seeds."""
    ks = sorted(mean_steps)
    i = ks.index(k)
    if i == 0 or i == len(ks) - 1:
        return lr_of[k]
    trio = ks[i - 1:i + 2]
    s = [mean_steps[j] for j in trio]
    if not all(math.isfinite(v) and v > 0 for v in s):
        return lr_of[k]
    x = np.log([lr_of[j] for j in trio])
    y = np.log(s)
    a, b, _ = np.polyfit(x, y, 2)
    if a <= 0:
        return lr_of[k]
    vertex = float(np.clip(-b / (2 * a), x[0], x[2]))
    return float(math.exp(vertex))


def seed_resamples(num_seeds: int, num_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap draws over seeds as counts: (num_resamples, num_seeds), each row summing to num_seeds."""
    draws = rng.integers(0, num_seeds, (num_resamples, num_seeds))
    return np.stack([np.bincount(d, minlength=num_seeds) for d in draws]).astype(float)


def percentile_interval(samples: np.ndarray, level: float = 0.9) -> tuple[float, float]:
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    lo, hi = np.nanpercentile(np.asarray(samples, dtype=float), q)
    return float(lo), float(hi)
