"""Samplers draw what they say, from the generator they are given."""

from __future__ import annotations

import itertools

import pytest
import torch

from trainlab.errors import ArgumentError
from trainlab.optim.samplers import FullBatch, MiniBatch, Weighted, squared_norm_probabilities


def test_reshuffled_minibatches_visit_every_example_once_per_epoch() -> None:
    stream = MiniBatch(3).stream(4, 10, torch.Generator().manual_seed(0))
    epoch = torch.cat(list(itertools.islice(stream, 4)), dim=1)  # 3 + 3 + 3 + 1 = 10 per run
    assert epoch.shape == (4, 10)
    assert all(sorted(row.tolist()) == list(range(10)) for row in epoch)
    assert len({tuple(row.tolist()) for row in epoch}) > 1  # each run has its own order


def test_with_replacement_draws_are_uniform() -> None:
    draws = torch.cat(
        list(
            itertools.islice(
                MiniBatch(1, replacement=True).stream(1000, 5, torch.Generator().manual_seed(1)), 20
            )
        )
    )
    freq = torch.bincount(draws.flatten(), minlength=5).double() / draws.numel()
    assert float((freq - 0.2).abs().max()) < 0.01  # 20,000 draws: standard error 0.003


def test_weighted_sampling_follows_p_and_never_draws_zero_weight_examples() -> None:
    p = torch.tensor([0.5, 0.0, 0.3, 0.2], dtype=torch.float64)
    stream = Weighted(p, batch_size=2).stream(5000, 4, torch.Generator().manual_seed(2))
    draws = torch.cat([next(stream) for _ in range(4)]).flatten()
    freq = torch.bincount(draws, minlength=4).double() / draws.numel()
    assert int((draws == 1).sum()) == 0
    assert float((freq - p).abs().max()) < 0.006  # 40,000 draws: standard error ≤ 0.0025


def test_squared_norm_probabilities() -> None:
    X = torch.tensor([[3.0, 4.0], [1.0, 0.0]], dtype=torch.float64)
    assert squared_norm_probabilities(X).tolist() == [25 / 26, 1 / 26]


def test_same_seed_same_indices_and_global_rng_untouched() -> None:
    torch.manual_seed(7)
    before = torch.random.get_rng_state()
    for sampler in (MiniBatch(2), MiniBatch(2, True), Weighted(torch.ones(6))):
        a = list(itertools.islice(sampler.stream(3, 6, torch.Generator().manual_seed(5)), 7))
        b = list(itertools.islice(sampler.stream(3, 6, torch.Generator().manual_seed(5)), 7))
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert torch.equal(torch.random.get_rng_state(), before)
    assert next(FullBatch().stream(3, 6, torch.Generator())) is None


@pytest.mark.parametrize(
    "make, argument",
    [
        (lambda: MiniBatch(0), "batch_size"),
        (lambda: Weighted(torch.tensor([1.0, -1.0])), "p"),
        (lambda: Weighted(torch.zeros(3)), "p"),
        (lambda: next(MiniBatch(8).stream(1, 5, torch.Generator())), "batch_size"),
    ],
)
def test_bad_sampler_arguments(make, argument: str) -> None:
    with pytest.raises(ArgumentError) as info:
        make()
    assert info.value.argument == argument
