"""Hypergradients: the three modes agree with each other and with central differences."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from trainlab.errors import ArgumentError, ResourceError
from trainlab.hpo.hypergrad import MODES, estimate_memory, hypergradient
from trainlab.hpo.measure import SavedTensorMeter
from trainlab.hpo.unroll import DivergenceError, Unroll
from trainlab.problems import Problem, load_problem

EPS = torch.finfo(torch.float64).eps


def bn_problem(seed: int = 0) -> Problem:
    """A smooth (tanh) float64 MLP with BatchNorm and a held-out set: what central differences need."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 3)).double()
    x = torch.randn(40, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (40,), generator=g)
    return Problem("bn-mlp", model, x[:30], y[:30], "cross-entropy", x[30:], y[30:])


def trained_loss(problem, steps, optimizer, hyper, loss, batch_size):
    u = Unroll(problem, steps, optimizer, hyper, loss, batch_size, seed=1)
    with torch.no_grad():
        return float(u.final_loss(u.run(u.constant(u.hyper_tensors(()), ()))))


CASES = [
    ("sgd", ("lr", "weight_decay"), {"lr": 0.05, "weight_decay": 0.01}),
    ("momentum", ("lr", "momentum", "weight_decay"), {"lr": 0.05, "momentum": 0.5, "weight_decay": 0.01}),
    (
        "adam",
        ("lr", "beta1", "beta2", "weight_decay"),
        {"lr": 0.02, "beta1": 0.8, "beta2": 0.95, "weight_decay": 0.01},
    ),
]


@pytest.mark.parametrize(("optimizer", "wrt", "hyper"), CASES, ids=[c[0] for c in CASES])
def test_all_modes_agree_with_central_differences_through_batchnorm_on_a_held_out_loss(optimizer, wrt, hyper):
    p = bn_problem()
    T = 6
    kwargs = dict(
        lr=hyper["lr"],
        optimizer=optimizer,
        weight_decay=hyper["weight_decay"],
        momentum=hyper.get("momentum"),
        betas=(hyper.get("beta1", 0.9), hyper.get("beta2", 0.999)),
        loss="valid",
        batch_size=10,
        seed=1,
        wrt=wrt,
    )
    results = {m: hypergradient(p, T, mode=m, **kwargs) for m in MODES}
    ref = results["reverse"].hypergradient
    for m in ("checkpoint", "forward"):
        for k in wrt:
            # T steps of float64 rounding, amplified by at most a few orders through the graph
            assert results[m].hypergradient[k] == pytest.approx(ref[k], rel=1e3 * T * EPS, abs=1e3 * T * EPS)
        assert results[m].loss == pytest.approx(results["reverse"].loss, rel=1e-14)
    for k in wrt:
        h = 1e-6
        plus = dict(hyper, **{k: hyper[k] + h})
        minus = dict(hyper, **{k: hyper[k] - h})
        fd = (
            trained_loss(p, T, optimizer, plus, "valid", 10)
            - trained_loss(p, T, optimizer, minus, "valid", 10)
        ) / (2 * h)
        # central differences: O(h²) truncation + O(ε/h) rounding ≈ 1e-10 here
        assert ref[k] == pytest.approx(fd, rel=1e-6, abs=1e-8), k


def test_batchnorm_running_statistics_follow_torch_and_carry_the_hypergradient():
    p = bn_problem()
    u = Unroll(p, 3, "sgd", {"lr": 0.05}, "train", batch_size=10, seed=1)
    state = u.run(u.constant(u.hyper_tensors(()), ()))
    model = p.fresh_model().train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for k in range(3):
        x, y = u.batch(k)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    for name, ref in model.named_buffers():
        assert torch.allclose(state.buffers[name].detach().to(ref.dtype), ref, rtol=0, atol=1e-14), name
    # the held-out loss (eval mode) depends on η through the running statistics as well
    lr = torch.tensor(0.05, dtype=torch.float64, requires_grad=True)
    state = u.run({**u.constant(u.hyper_tensors(("lr",)), ("lr",)), "lr": lr})
    (g,) = torch.autograd.grad(state.buffers["1.running_mean"].sum(), lr)
    assert float(g) != 0.0


@pytest.mark.parametrize("segment", [1, 3, 7, 100])
def test_checkpoint_equals_reverse_for_any_segment_length(segment):
    p = load_problem("linreg", n=6, d=15, seed=3)
    ref = hypergradient(p, 13, lr=0.05, optimizer="momentum", wrt=("lr", "momentum"), mode="reverse")
    got = hypergradient(
        p, 13, lr=0.05, optimizer="momentum", wrt=("lr", "momentum"), mode="checkpoint", segment=segment
    )
    for k in ref.hypergradient:
        assert got.hypergradient[k] == pytest.approx(ref.hypergradient[k], rel=100 * 13 * EPS)


def test_schedule_hypergradients_sum_to_the_constant_rate_hypergradient():
    # L(η, …, η): dL/dη = Σ_k ∂L/∂η_k (chain rule), in every mode
    p = load_problem("linreg", n=6, d=15, seed=4)
    const = hypergradient(p, 8, lr=0.05, mode="reverse").hypergradient["lr"]
    for mode in MODES:
        sched = hypergradient(p, 8, lr=0.05, wrt=("schedule",), mode=mode).hypergradient["schedule"]
        assert len(sched) == 8
        assert math.fsum(sched) == pytest.approx(const, rel=1e-12)


def test_divergence_stops_with_the_step_and_the_stable_bound():
    p = load_problem("linreg", n=6, d=15, seed=0)
    with pytest.raises(DivergenceError) as err:
        hypergradient(p, 200, lr=3 * p.stable_lr_bound, mode="reverse")
    assert err.value.step < 200 and "2/λ_max" in str(err.value)
    assert f"{p.stable_lr_bound:.4g}" in str(err.value)


def test_a_horizon_too_large_for_memory_is_refused_up_front_with_the_estimate():
    p = load_problem("linreg", n=6, d=15, seed=0)
    u = Unroll(p, 10**12, "sgd", {"lr": 0.01})
    assert estimate_memory(u, "reverse") > 1e12
    assert estimate_memory(u, "checkpoint") < estimate_memory(u, "reverse") / 1e4
    with pytest.raises(ResourceError, match="--steps"):
        hypergradient(p, 10**12, lr=0.01, mode="reverse")


def test_bad_arguments_name_the_argument():
    p = load_problem("linreg", n=6, d=15, seed=0)
    for kwargs, name in [
        ({"mode": "sideways"}, "mode"),
        ({"wrt": ("foo",)}, "wrt"),
        ({"wrt": ("beta1",)}, "wrt"),
        ({"lr": -1.0}, "lr"),
        ({"loss": "valid"}, "loss"),
        ({"wrt": ("lr", "schedule")}, "wrt"),
        ({"segment": 0, "mode": "checkpoint"}, "segment"),
    ]:
        with pytest.raises(ArgumentError) as err:
            hypergradient(p, 3, **kwargs)
        assert err.value.argument == name


def test_saved_tensor_meter_counts_each_storage_once_and_frees_with_the_graph():
    w = torch.ones(1000, requires_grad=True)
    with SavedTensorMeter() as m:
        loss = (w * w).sum()
        assert m.live_bytes == 4000
        del loss
    assert m.live_bytes == 0 and m.peak_bytes == 4000


def test_reverse_keeps_memory_linear_in_steps_and_checkpoint_sublinear():
    p = load_problem("linreg", n=5, d=2000, seed=0)
    lr = 0.1 * p.stable_lr_bound
    saved = {
        m: [hypergradient(p, T, lr=lr, mode=m, measure="saved").peak_memory_bytes for T in (16, 64)]
        for m in ("reverse", "checkpoint")
    }
    per_step = (saved["reverse"][1] - saved["reverse"][0]) / 48
    assert per_step >= 2000 * 8  # at least every w_k is kept
    assert saved["checkpoint"][1] < 0.5 * saved["reverse"][1]
