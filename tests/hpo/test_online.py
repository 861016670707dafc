"""SGD-HD and Adam-HD: torch.optim when β = 0, and the learning rate adapts otherwise."""

from __future__ import annotations

import pytest
import torch

from trainlab.errors import ArgumentError
from trainlab.hpo.online import SGDHD, AdamHD


def _lsq(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(20, 10, generator=g, dtype=torch.float64), torch.randn(
        20, generator=g, dtype=torch.float64
    )


def _run(opt_cls, kwargs, steps=30):
    X, t = _lsq()
    w = torch.nn.Parameter(torch.zeros(10, dtype=torch.float64))
    opt = opt_cls([w], **kwargs)
    for _ in range(steps):
        opt.zero_grad()
        ((X @ w - t) ** 2).mean().backward()
        opt.step()
    return w.detach(), opt


@pytest.mark.parametrize(
    ("cls", "ref", "kw"),
    [
        (SGDHD, torch.optim.SGD, {"lr": 0.01}),
        (SGDHD, torch.optim.SGD, {"lr": 0.01, "momentum": 0.9, "weight_decay": 0.1}),
        (AdamHD, torch.optim.Adam, {"lr": 0.01, "weight_decay": 0.1}),
    ],
)
def test_with_zero_hypergradient_rate_equals_torch_optim(cls, ref, kw):
    w1, _ = _run(cls, {**kw, "hypergrad_lr": 0.0})
    w2, _ = _run(ref, kw)
    assert torch.equal(w1, w2)


@pytest.mark.parametrize("multiplicative", [False, True])
def test_rate_grows_from_a_poor_start_and_the_loss_beats_the_fixed_rate(multiplicative):
    X, t = _lsq()
    beta = 0.05 if multiplicative else 1e-3
    w_hd, opt = _run(SGDHD, {"lr": 1e-3, "hypergrad_lr": beta, "multiplicative": multiplicative}, steps=100)
    w_fix, _ = _run(torch.optim.SGD, {"lr": 1e-3}, steps=100)
    assert opt.param_groups[0]["lr"] > 2e-3
    assert len(opt.param_groups[0]["lr_history"]) == 99
    assert ((X @ w_hd - t) ** 2).mean() < ((X @ w_fix - t) ** 2).mean()


def test_adam_hd_adapts_its_rate():
    _, opt = _run(AdamHD, {"lr": 1e-3, "hypergrad_lr": 0.02, "multiplicative": True}, steps=50)
    assert opt.param_groups[0]["lr"] != 1e-3


def test_bad_arguments_are_refused():
    w = torch.nn.Parameter(torch.zeros(2))
    for kw in ({"lr": -1.0}, {"hypergrad_lr": float("nan")}, {"momentum": 1.0}):
        with pytest.raises(ArgumentError):
            SGDHD([w], **kw)
    with pytest.raises(ArgumentError):
        AdamHD([w], betas=(0.9, 1.0))
