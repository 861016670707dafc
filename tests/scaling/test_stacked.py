"""Stacked training equals torch.optim on each run alone; the MLP fast path equals the vmap path."""

from __future__ import annotations

import torch
from torch import nn

from trainlab.problems import Problem, digits_mlp
from trainlab.scaling.stacked import StackedRuns, _batch_orders, init_params, train_stacked

STEPS = 15


def _alone(problem, lr, seed, batch_size, optimizer):
    """One run with torch.optim on the same initialisation and batches."""
    model = problem.fresh_model()
    start = init_params(problem, seed)
    with torch.no_grad():
        for k, p in model.named_parameters():
            p.copy_(start[k])
    opt = {"sgd": lambda ps: torch.optim.SGD(ps, lr=lr),
           "momentum": lambda ps: torch.optim.SGD(ps, lr=lr, momentum=0.9),
           "adam": lambda ps: torch.optim.Adam(ps, lr=lr)}[optimizer](model.parameters())
    order = _batch_orders(problem.num_examples, batch_size, seed, 0)
    for t in range(STEPS):
        idx = order(t)
        opt.zero_grad()
        problem.criterion(model(problem.x[idx]), problem.y[idx]).backward()
        opt.step()
    with torch.no_grad():
        return float(problem.criterion(model(problem.x), problem.y))


def test_stacked_runs_equal_torch_optim_runs_alone():
    problem = digits_mlp(0, width=8, dtype=torch.float64)
    lrs, seeds = [0.05, 0.2, 0.4], [1, 1, 2]
    for optimizer in ("sgd", "momentum", "adam"):
        scale = 0.01 if optimizer == "adam" else 1.0
        out = train_stacked(problem, StackedRuns([lr * scale for lr in lrs], seeds), batch_size=16,
                            targets=[0.0], max_steps=STEPS, optimizer=optimizer, stop_at_target=False)
        for o, lr, s in zip(out, lrs, seeds, strict=True):
            ref = _alone(problem, lr * scale, s, 16, optimizer)
            # float64, 15 steps of sums over ~10³ terms: far below 1e-10 relative
            assert abs(o.final_loss - ref) <= 1e-10 * ref, (optimizer, lr, s)


class _Wrapped(nn.Module):
    """The same MLP not as an nn.Sequential: takes the generic vmap path."""

    def __init__(self, seq: nn.Sequential):
        super().__init__()
        self.net = seq

    def forward(self, x):
        return self.net(x)


def test_generic_vmap_path_equals_the_batched_matmul_path():
    base = digits_mlp(0, width=8, dtype=torch.float64)
    wrapped = Problem("wrapped", _Wrapped(base.fresh_model()), base.x, base.y, base.loss_name)
    kw = dict(batch_size=32, targets=[2.0, 1.5], max_steps=20)
    a = train_stacked(base, StackedRuns([0.3, 0.6], [1, 2]), **kw)
    b = train_stacked(wrapped, StackedRuns([0.3, 0.6], [1, 2]),
                      init=lambda s: {f"net.{k}": v for k, v in init_params(base, s).items()}, **kw)
    for x, y in zip(a, b, strict=True):
        assert x.steps_to_target == y.steps_to_target
        assert abs(x.final_loss - y.final_loss) <= 1e-10 * x.final_loss


def test_runs_stop_at_the_target_diverge_or_are_pruned():
    problem = digits_mlp(0, width=16)
    out = train_stacked(problem, StackedRuns([0.02, 0.5, 50.0], [1, 1, 1]), batch_size=64, targets=[1.0],
                        max_steps=3000, prune_factor=2.0)
    slow, good, wild = out
    assert good.steps_to_target[0] is not None and good.steps_run == good.steps_to_target[0]
    assert wild.diverged and wild.steps_to_target == [None]
    assert slow.censored and slow.steps_to_target == [None] and slow.steps_run >= 2 * good.steps_to_target[0]
    # every run that reached the target is below it at the step recorded
    assert good.final_loss <= 1.0
