"""Hypergradients through adaptive optimizers stay finite where a gradient coordinate is 0."""

from __future__ import annotations

import torch

from trainlab.functional import adagrad, adam, apply_updates, rmsprop


def _final_loss(opt_factory, lr, x, t, steps=5):
    w = torch.zeros(3, dtype=torch.float64)
    opt = opt_factory(lr)
    state = opt.init(w)
    for _ in range(steps):
        with torch.enable_grad():
            wr = w if w.requires_grad else w.detach().requires_grad_()
            loss = ((x @ wr - t) ** 2).mean()
            (g,) = torch.autograd.grad(loss, wr, create_graph=True)
        updates, state = opt.update(g, state, wr)
        w = apply_updates(wr, updates)
    return ((x @ w - t) ** 2).mean()


def test_adaptive_hypergradient_is_finite_and_matches_central_difference_with_a_dead_coordinate():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(8, 3, generator=gen, dtype=torch.float64)
    x[:, 2] = 0.0  # the third weight never gets a gradient: v stays exactly 0
    t = torch.randn(8, generator=gen, dtype=torch.float64)
    for factory in (lambda lr: adam(lr=lr), lambda lr: rmsprop(lr=lr), lambda lr: adagrad(lr=lr)):
        lr = torch.tensor(0.05, dtype=torch.float64, requires_grad=True)
        (dl,) = torch.autograd.grad(_final_loss(factory, lr, x, t), lr)
        h = 1e-6
        with torch.no_grad():
            fd = (_final_loss(factory, 0.05 + h, x, t) - _final_loss(factory, 0.05 - h, x, t)) / (2 * h)
        assert torch.isfinite(dl)
        assert abs(float(dl) - float(fd)) <= 1e-6 * max(1.0, abs(float(fd)))


def test_guarded_sqrt_gives_torch_optim_values_unchanged():
    gen = torch.Generator().manual_seed(1)
    w0 = torch.randn(5, generator=gen, dtype=torch.float64)
    grads = [torch.randn(5, generator=gen, dtype=torch.float64) for _ in range(4)]
    for g in grads:
        g[0] = 0.0
    p = torch.nn.Parameter(w0.clone())
    ref = torch.optim.Adam([p], lr=0.01)
    opt = adam(lr=torch.tensor(0.01, dtype=torch.float64, requires_grad=True))  # the guarded path
    w, state = w0.clone(), opt.init(w0)
    for g in grads:
        p.grad = g.clone()
        ref.step()
        updates, state = opt.update(g, state, w)
        w = apply_updates(w, updates)
    assert torch.allclose(w.detach(), p.detach(), rtol=0, atol=1e-15)
