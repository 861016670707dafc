"""§4 Trading off resources: noise scale, batch-size sweeps, critical batch size, model size.

- :mod:`~trainlab.scaling.noise_scale`: B_simple = tr(Σ)/|G|² exact (vmapped per-example
  gradients), the two-batch estimator (a training-loop callback), B_noise with HVPs;
- :mod:`~trainlab.scaling.stacked`: many small models trained at once in one thread;
- :mod:`~trainlab.scaling.sweep`: steps-to-target sweeps (batch sizes × √2 LR grid × seeds),
  points appended to JSONL, resumable; :mod:`~trainlab.scaling.executors`: inline, local
  process pool, Ray;
- :mod:`~trainlab.scaling.fit`: S(B) = S_min(1 + B_crit/B), the LR law, power laws, bootstrap
  over seeds; :mod:`~trainlab.scaling.nqm`: the exact noisy quadratic model;
- :mod:`~trainlab.scaling.model_size`: loss vs width and compute;
- :mod:`~trainlab.scaling.claims` and :mod:`~trainlab.scaling.cli` (``trainlab scaling …``).
"""

__all__: list[str] = []
