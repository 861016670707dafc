"""The gradient noise scale B_simple = tr(Σ)/|G|² (McCandlish et al. 2018, "An Empirical Model
of Large-Batch Training", §2.2 and Appendix A).

G = (1/n) Σᵢ gᵢ is the full-batch gradient and Σ = (1/n) Σᵢ (gᵢ − G)(gᵢ − G)ᵀ the covariance of
the per-example gradients gᵢ over the data set, so tr(Σ) = (1/n) Σᵢ |gᵢ|² − |G|². A minibatch
gradient of B examples drawn with replacement has E|G_B|² = |G|² + tr(Σ)/B: B_simple is the
batch size at which noise and signal are equally large.

Three ways to measure it:

- :func:`exact_noise_scale`: every per-example gradient at once with
  ``torch.func.vmap(torch.func.grad(·))`` (in chunks), exact for the data set;
- :func:`loop_noise_scale`: the same with one backward pass per example (the slow reference);
- :class:`TwoBatchEstimator`: McCandlish's Appendix A.1 estimator from gradient norms at two
  batch sizes B_small < B_big, usable as a training-loop callback for models too large for
  per-example gradients:

      |G|² ≈ (B_big |G_big|² − B_small |G_small|²) / (B_big − B_small)
      tr Σ ≈ (|G_small|² − |G_big|²) / (1/B_small − 1/B_big)

  each unbiased; their *ratio* is not, and one step's ratio is wild when B_big ≪ B_simple, so
  numerator and denominator are averaged separately (running means or EMAs) before dividing.

:func:`hessian_noise_scale` gives B_noise = tr(HΣ)/(GᵀHG) (McCandlish eq. 2.8) with
Hessian-vector products, which accounts for curvature (B_simple assumes H ∝ I).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor

from trainlab.memory import require_memory
from trainlab.problems import Problem

__all__ = [
    "NoiseScale",
    "TwoBatchEstimator",
    "exact_noise_scale",
    "hessian_noise_scale",
    "loop_noise_scale",
    "NoiseScaleTrajectory",
    "noise_scale_trajectory",
    "per_example_gradient_dict",
    "per_example_gradients",
    "two_batch_noise_scale",
]


@dataclass
class NoiseScale:
    """B_simple = trace_cov / grad_norm_sq, and how it was measured."""

    b_simple: float
    grad_norm_sq: float
    trace_cov: float
    method: str
    num_examples: int = 0
    info: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, float | str | int]:
        return {"b_simple": self.b_simple, "grad_norm_sq": self.grad_norm_sq,
                "trace_cov": self.trace_cov, "method": self.method, "num_examples": self.num_examples}


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else math.inf


def per_example_gradient_dict(problem: Problem, params: Mapping[str, Tensor], x: Tensor,
                              y: Tensor) -> dict[str, Tensor]:
    """Per-example gradients by name, each (len(x), *param.shape): vmap over grad of one example's loss."""
    buffers = problem.buffers()

    def one(p: Mapping[str, Tensor], xi: Tensor, yi: Tensor) -> Tensor:
        return problem.loss(p, xi.unsqueeze(0), yi.unsqueeze(0), buffers)  # a batch of one

    return torch.func.vmap(torch.func.grad(one), in_dims=(None, 0, 0))(dict(params), x, y)


def per_example_gradients(problem: Problem, params: Mapping[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
    """Flattened per-example gradients (len(x), num_params)."""
    grads = per_example_gradient_dict(problem, params, x, y)
    return torch.cat([g.reshape(len(x), -1) for g in grads.values()], dim=1)  # (B, P)


def exact_noise_scale(problem: Problem, params: Mapping[str, Tensor] | None = None, *,
                      chunk_size: int | None = None, x: Tensor | None = None,
                      y: Tensor | None = None) -> NoiseScale:
    """Exact B_simple over the training set (or ``x, y``) from vmapped per-example gradients.

    Accumulates Σᵢ gᵢ and Σᵢ |gᵢ|² in float64 over chunks of ``chunk_size`` examples, so
    memory is chunk_size × num_params floats whatever the data set's size (default: as many
    examples as fit in about 256 MB of gradients; fewer, larger chunks are faster).
    """
    params = problem.params() if params is None else {k: v.detach() for k, v in params.items()}
    x = problem.x if x is None else x
    y = problem.y if y is None else y
    n, num_params = len(x), sum(v.numel() for v in params.values())
    if chunk_size is None:
        chunk_size = max(1, min(n, int(256e6 // (4 * num_params))))
    require_memory("chunk_size", chunk_size, 3.0 * min(chunk_size, n) * num_params * 8)
    total = {k: torch.zeros(v.shape, dtype=torch.float64) for k, v in params.items()}
    sq = 0.0
    for start in range(0, n, chunk_size):
        grads = per_example_gradient_dict(problem, params, x[start:start + chunk_size],
                                          y[start:start + chunk_size])  # name -> (b, *shape)
        # per parameter, without concatenating (a copy of every per-example gradient); within a
        # chunk sums run in the gradients' dtype, across chunks they accumulate in float64
        for k, g in grads.items():
            total[k] += g.sum(0).to(torch.float64)
            flat = g.reshape(-1)
            sq += float(torch.dot(flat, flat))
    G = torch.cat([t.reshape(-1) for t in total.values()]) / n
    g2 = float(G @ G)
    tr = max(sq / n - g2, 0.0)
    return NoiseScale(_ratio(tr, g2), g2, tr, "exact", n)


def loop_noise_scale(problem: Problem, params: Mapping[str, Tensor] | None = None) -> NoiseScale:
    """The same quantity with one backward pass per example (the reference for the benchmark)."""
    model = problem.fresh_model()
    if params is not None:
        with torch.no_grad():
            for k, p in model.named_parameters():
                p.copy_(params[k])
    n = problem.num_examples
    total, sq = None, 0.0
    for i in range(n):
        model.zero_grad(set_to_none=True)
        out = model(problem.x[i:i + 1])
        problem.criterion(out, problem.y[i:i + 1]).backward()
        g = torch.cat([p.grad.reshape(-1) for p in model.parameters()]).to(torch.float64)
        total = g.clone() if total is None else total + g
        sq += float(g @ g)
    G = total / n  # type: ignore[operator]
    g2 = float(G @ G)
    tr = max(sq / n - g2, 0.0)
    return NoiseScale(_ratio(tr, g2), g2, tr, "loop", n)


def two_batch_noise_scale(norm_sq_small: float, norm_sq_big: float, b_small: float,
                          b_big: float) -> tuple[float, float]:
    """Unbiased (|G|², tr Σ) from one pair of minibatch gradient norms (McCandlish A.1)."""
    if not 0 < b_small < b_big:
        raise ValueError(f"need 0 < b_small < b_big, got {b_small}, {b_big}")
    g2 = (b_big * norm_sq_big - b_small * norm_sq_small) / (b_big - b_small)
    tr = (norm_sq_small - norm_sq_big) / (1.0 / b_small - 1.0 / b_big)
    return g2, tr


class TwoBatchEstimator:
    """Running two-batch estimate of B_simple; feed it gradient norms as training goes.

    ``update(norm_sq_small, norm_sq_big)`` takes |G_small|² and |G_big|² measured on batches of
    ``b_small`` and ``b_big`` examples (e.g. one worker's gradient and the all-reduced one, or a
    slice of the batch and the whole). With ``ema=None`` numerator and denominator are plain
    running means; with ``ema=β`` exponential moving averages (for tracking during training).
    """

    def __init__(self, b_small: int, b_big: int, ema: float | None = None):
        if not 0 < b_small < b_big:
            raise ValueError(f"need 0 < b_small < b_big, got {b_small}, {b_big}")
        self.b_small, self.b_big, self.ema = b_small, b_big, ema
        self.count = 0
        self.grad_norm_sq_ = 0.0
        self.trace_cov_ = 0.0

    def update(self, norm_sq_small: float, norm_sq_big: float) -> None:
        g2, tr = two_batch_noise_scale(norm_sq_small, norm_sq_big, self.b_small, self.b_big)
        self.count += 1
        w = 1.0 / self.count if self.ema is None else (1.0 - self.ema) / (1.0 - self.ema ** self.count)
        # bias-corrected EMA: after k updates the weights sum to 1, as a running mean's do
        self.grad_norm_sq_ += w * (g2 - self.grad_norm_sq_)
        self.trace_cov_ += w * (tr - self.trace_cov_)

    @property
    def b_simple_(self) -> float:
        return _ratio(self.trace_cov_, self.grad_norm_sq_) if self.grad_norm_sq_ > 0 else math.inf

    def result(self) -> NoiseScale:
        return NoiseScale(self.b_simple_, self.grad_norm_sq_, self.trace_cov_, "two-batch", self.count,
                          {"b_small": self.b_small, "b_big": self.b_big})

    def callback(self, problem: Problem, gen: torch.Generator) -> Callable[[Mapping[str, Tensor]], None]:
        """A training-loop hook ``hook(params)``: draws a big batch, uses its first b_small
        examples as the small one, and updates the estimate."""
        def flat_grad(p: Mapping[str, Tensor], xb: Tensor, yb: Tensor) -> Tensor:
            g = torch.func.grad(lambda q: problem.loss(q, xb, yb))(dict(p))
            return torch.cat([v.reshape(-1) for v in g.values()]).to(torch.float64)

        def hook(params: Mapping[str, Tensor]) -> None:
            xb, yb = sample_with_replacement(problem, self.b_big, gen)
            params = {k: v.detach() for k, v in params.items()}
            g_big = flat_grad(params, xb, yb)
            g_small = flat_grad(params, xb[:self.b_small], yb[:self.b_small])
            self.update(float(g_small @ g_small), float(g_big @ g_big))

        return hook


def sample_with_replacement(problem: Problem, batch_size: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """``batch_size`` examples drawn uniformly with replacement (what the A.1 estimator assumes)."""
    idx = torch.randint(0, problem.num_examples, (batch_size,), generator=gen)
    return problem.x[idx], problem.y[idx]


def hessian_noise_scale(problem: Problem, params: Mapping[str, Tensor] | None = None, *,
                        max_examples: int = 512, gen: torch.Generator | None = None) -> NoiseScale:
    """B_noise = tr(HΣ)/(GᵀHG) (McCandlish eq. 2.8) with H the full-batch loss Hessian.

    tr(HΣ) = (1/m) Σᵢ gᵢᵀHgᵢ − GᵀHG over ``max_examples`` examples (all when fewer; a uniform
    sample from ``gen`` otherwise) whose per-example gradients gᵢ are exact; each Hgᵢ is one
    Hessian-vector product (forward-over-reverse, vmapped). G is the full-batch gradient.
    """
    params = problem.params() if params is None else {k: v.detach() for k, v in params.items()}
    names = list(params)
    shapes = [params[k].shape for k in names]
    sizes = [params[k].numel() for k in names]
    n = problem.num_examples
    if n > max_examples:
        idx = torch.randperm(n, generator=gen)[:max_examples]
        xs, ys = problem.x[idx], problem.y[idx]
    else:
        xs, ys = problem.x, problem.y
    gs = per_example_gradients(problem, params, xs, ys)  # (m, P)

    def full_grad(flat: Tensor) -> Tensor:
        p = {k: t.reshape(s) for k, t, s in zip(names, flat.split(sizes), shapes, strict=True)}
        g = torch.func.grad(lambda q: problem.loss(q, problem.x, problem.y))(p)
        return torch.cat([g[k].reshape(-1) for k in names])

    flat0 = torch.cat([params[k].reshape(-1) for k in names])
    G = full_grad(flat0)

    def hvp(v: Tensor) -> Tensor:
        return torch.func.jvp(full_grad, (flat0,), (v,))[1]

    Hg = torch.func.vmap(hvp)(gs)  # (m, P)
    gHg = float((gs.double() * Hg.double()).sum(1).mean())
    GHG = float(G.double() @ hvp(G).double())
    g2 = float(G.double() @ G.double())
    tr_h = gHg - GHG
    return NoiseScale(_ratio(tr_h, GHG), g2, tr_h, "hessian", len(xs), {"GHG": GHG})


@dataclass
class NoiseScaleTrajectory:
    """Exact B_simple (and its parts) at checkpoints of one constant-LR SGD run."""

    steps: list[int]
    loss: list[float]
    b_simple: list[float]
    grad_norm_sq: list[float]
    trace_cov: list[float]

    def plot(self, ax: object = None, b_crit: float | None = None) -> object:
        from trainlab.plotting import subplots_or

        fig, ax = subplots_or(ax)  # type: ignore[arg-type]
        ax.semilogy([max(s, 0.5) for s in self.steps], self.b_simple, "o-", ms=3, label="B_simple (exact)")
        if b_crit is not None:
            ax.axhline(b_crit, ls="--", c="grey", label=f"fitted B_crit = {b_crit:.3g}")
        ax.set_xlabel("step")
        ax.set_ylabel("B_simple = tr Σ / |G|²")
        ax.legend(fontsize=7)
        return fig


def noise_scale_trajectory(problem: Problem, params: Mapping[str, Tensor], *, lr: float, batch_size: int,
                           checkpoints: list[int], gen: torch.Generator) -> NoiseScaleTrajectory:
    """Train with constant-LR SGD from ``params`` and measure the exact B_simple at ``checkpoints``."""
    params = {k: v.detach().clone() for k, v in params.items()}
    out = NoiseScaleTrajectory([], [], [], [], [])
    last = max(checkpoints)
    marks = set(checkpoints)
    for t in range(last + 1):
        if t in marks:
            ns = exact_noise_scale(problem, params)
            out.steps.append(t)
            out.loss.append(float(problem.loss(params, problem.x, problem.y)))
            out.b_simple.append(ns.b_simple)
            out.grad_norm_sq.append(ns.grad_norm_sq)
            out.trace_cov.append(ns.trace_cov)
        if t == last:
            break
        xb, yb = problem.sample_batch(batch_size, gen)
        g = torch.func.grad(lambda p, xb=xb, yb=yb: problem.loss(p, xb, yb))(params)
        params = {k: params[k] - lr * g[k] for k in params}
    return out
