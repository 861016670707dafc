"""Which examples each step of a batch of runs uses.

A sampler's :meth:`~Sampler.stream` yields, for every step, a long tensor of shape
(R, b): the indices of the b examples each of the R runs uses (or ``None`` for the full
batch). Every draw comes from the ``torch.Generator`` passed in, so the same seed gives
the same sequence, and global RNG state is never touched.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from trainlab.errors import ArgumentError

__all__ = ["FullBatch", "MiniBatch", "Sampler", "Weighted", "squared_norm_probabilities"]


class Sampler(Protocol):
    def stream(self, num_runs: int, num_examples: int, generator: torch.Generator) -> Iterator[Tensor | None]:
        """Indices (R, b) for each step, forever."""
        ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class FullBatch:
    """Every step uses all n examples: gradient descent."""

    def stream(self, num_runs: int, num_examples: int, generator: torch.Generator) -> Iterator[Tensor | None]:
        while True:
            yield None

    def describe(self) -> str:
        return "full batch"


@dataclass(frozen=True)
class MiniBatch:
    """b examples per step, uniformly.

    Without replacement each run walks through its own fresh permutation of the n
    examples every epoch (the last batch of an epoch is shorter when b does not divide n);
    with replacement every index is drawn independently. ``batch_size=1`` is single-example SGD.
    """

    batch_size: int
    replacement: bool = False

    def __post_init__(self) -> None:
        if not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise ArgumentError("batch_size", self.batch_size, "a positive integer")

    def stream(self, num_runs: int, num_examples: int, generator: torch.Generator) -> Iterator[Tensor | None]:
        b = self.batch_size
        if b > num_examples:
            raise ArgumentError("batch_size", b, f"at most the number of examples n = {num_examples}")
        if self.replacement:
            while True:
                yield torch.randint(num_examples, (num_runs, b), generator=generator)
        while True:
            # one permutation per run: (R, n) uniform keys -> argsort
            perm = torch.rand(num_runs, num_examples, generator=generator).argsort(dim=1)
            for start in range(0, num_examples, b):
                yield perm[:, start : start + b]

    def describe(self) -> str:
        kind = "with replacement" if self.replacement else "reshuffled each epoch"
        return f"batch {self.batch_size}, {kind}"


@dataclass(frozen=True)
class Weighted:
    """b examples per step, example i drawn with probability p_i (with replacement).

    ``p`` has shape (n,) or (R, n) (one distribution per run); it is normalised here.
    The loss is *not* reweighted: the step uses the plain gradient of the sampled examples.
    """

    p: Tensor
    batch_size: int = 1
    label: str = "non-uniform p"

    def __post_init__(self) -> None:
        if not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise ArgumentError("batch_size", self.batch_size, "a positive integer")
        if (
            not bool(torch.isfinite(self.p).all())
            or bool((self.p < 0).any())
            or bool((self.p.sum(-1) <= 0).any())
        ):
            raise ArgumentError(
                "p",
                self.p.tolist() if self.p.numel() <= 8 else "…",
                "non-negative, finite sampling weights with a positive sum",
            )

    def stream(self, num_runs: int, num_examples: int, generator: torch.Generator) -> Iterator[Tensor | None]:
        if self.p.shape[-1] != num_examples:
            raise ArgumentError(
                "p", f"{self.p.shape[-1]} weights", f"one weight per example ({num_examples})"
            )
        # Inverse-CDF sampling: i = #{j : c_j <= u} with c the cumulative p and u ~ U[0, 1).
        # (Same law as torch.multinomial with replacement, about 10× cheaper per call here.)
        p = (self.p / self.p.sum(-1, keepdim=True)).expand(num_runs, num_examples)
        cdf = p.cumsum(-1).contiguous()  # (R, n)
        while True:
            u = torch.rand(num_runs, self.batch_size, generator=generator, dtype=cdf.dtype)
            yield torch.searchsorted(cdf, u, right=True).clamp_max_(num_examples - 1)

    def describe(self) -> str:
        return f"batch {self.batch_size}, {self.label}"


def squared_norm_probabilities(X: Tensor) -> Tensor:
    """p_i = ‖x_i‖²/‖X‖_F², randomized Kaczmarz's distribution (Strohmer & Vershynin 2009): (..., n)."""
    sq = X.pow(2).sum(-1)
    return sq / sq.sum(-1, keepdim=True)
