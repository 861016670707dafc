"""Midterm: training-loop pitfalls (gradients never cleared, lr too high), sharpness, LR range test.

- :mod:`trainlab.loops.sharpness`: λ_max of a loss's Hessian by Lanczos on Hessian–vector
  products, with an error bound as its stopping test and the HVPs counted;
- :mod:`trainlab.loops.lr_range`: the LR range test on copies of a model and optimizer,
  seeded, with the spread of its suggestion over seeds;
- :mod:`trainlab.loops.stability`: GD's divergence threshold by (vectorised) bisection and
  the finite-horizon slack theory predicts for it;
- :mod:`trainlab.loops.zero_grad`: a real ``torch.optim`` loop with ``zero_grad()`` in four
  places, and the gradient each one applies;
- :mod:`trainlab.loops.models`: the small tanh network the claims use.
"""

__all__: list[str] = []
