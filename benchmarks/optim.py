"""Speed of the vectorised runner against a plain Python loop of torch.optim runs (issue 4).

Workload: 1,000 independent least-squares problems (n = 20, d = 100, float64), each trained
from 0 for 5,000 full-batch steps by 5 optimizers (GD 1/L, heavy ball 0.5/L μ=0.9, AdaGrad
0.1, RMSProp 1e-2·0.999^k, Adam 1e-2) — 5,000 runs in all.

* vectorised: ``trainlab.optim.runner.run_batch`` on all 1,000 problems at once, one call
  per optimizer;
* anchor: the loop a user would write — for each problem and optimizer, a ``torch.optim``
  optimizer, ``zero_grad``/``backward``/``step`` 5,000 times. Timing every one of the 5,000
  runs would take hours, so the loop is timed on the first ``--loop-problems`` problems
  (all 5 optimizers) and extrapolated linearly to 1,000 (runs are independent and equal
  in cost); the script says so in its output.

Both sides use one intra-op thread (the runs are small; see ``limit_threads``) and the
same float64 arithmetic; the final parameters of the shared problems are compared.
Usage: ``python benchmarks/optim.py [--problems 1000] [--steps 5000] [--loop-problems 10]``.
"""

from __future__ import annotations

import argparse
import time

import torch

from trainlab.optim.compare import make_optimizer
from trainlab.optim.problems import random_problems, smoothness
from trainlab.optim.runner import run_batch
from trainlab.threads import limit_threads

NAMES = ("sgd", "momentum", "adagrad", "rmsprop", "adam")
CHECKPOINT = 1000


def torch_optim_factory(name: str, L: float):
    """The torch.optim twin of each named default (and its scheduler, for RMSProp)."""
    return {
        "sgd": (lambda p: torch.optim.SGD(p, lr=1 / L), None),
        "momentum": (lambda p: torch.optim.SGD(p, lr=0.5 / L, momentum=0.9), None),
        "adagrad": (lambda p: torch.optim.Adagrad(p, lr=0.1), None),
        "rmsprop": (
            lambda p: torch.optim.RMSprop(p, lr=1e-2),
            lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.999),
        ),
        "adam": (lambda p: torch.optim.Adam(p, lr=1e-2), None),
    }[name]


def loop_run(X: torch.Tensor, t: torch.Tensor, name: str, steps: int, checkpoint: int = 1000) -> torch.Tensor:
    """One run the plain way: a parameter, a torch.optim optimizer, a loop.

    Returns w at step ``checkpoint`` and at the end: (2, d).
    """
    make, make_scheduler = torch_optim_factory(name, float(smoothness(X)))
    w = torch.zeros(X.shape[1], dtype=X.dtype, requires_grad=True)
    opt = make([w])
    scheduler = make_scheduler(opt) if make_scheduler else None
    at_checkpoint = w.detach().clone()
    for k in range(steps):
        opt.zero_grad()
        loss = 0.5 * ((X @ w - t) ** 2).mean()
        loss.backward()
        opt.step()
        if scheduler is not None:
            scheduler.step()
        if k + 1 == checkpoint:
            at_checkpoint = w.detach().clone()
    return torch.stack([at_checkpoint, w.detach()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--problems", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--loop-problems", type=int, default=10)
    args = parser.parse_args()
    problem = random_problems(20, 100, list(range(args.problems)))
    shared = args.loop_problems
    with limit_threads(1):
        # warm-up (first torch.optim use imports torch._dynamo; first kernels allocate)
        loop_run(problem.X[0], problem.t[0], "adam", 5)
        run_batch(problem.select([0, 1]), make_optimizer("adam", problem.select([0, 1]))[0], 5, tol=0.0)

        start = time.perf_counter()
        finals = {}
        for name in NAMES:
            opt, _ = make_optimizer(name, problem)
            tr = run_batch(
                problem,
                opt,
                args.steps,
                tol=0.0,
                divergence_factor=float("inf"),
                record_every=CHECKPOINT,
                record_params=True,
            )
            assert tr.params is not None
            finals[name] = tr.params[[tr.steps.tolist().index(CHECKPOINT), -1]].transpose(0, 1)  # (R, 2, d)
        vectorised = time.perf_counter() - start

        start = time.perf_counter()
        loop_finals = {
            name: torch.stack([loop_run(problem.X[r], problem.t[r], name, args.steps) for r in range(shared)])
            for name in NAMES
        }
        loop_subset = time.perf_counter() - start
    loop_total = loop_subset * args.problems / shared
    runs = args.problems * len(NAMES)
    diffs = {
        name: (finals[name][:shared] - loop_finals[name]).abs().amax(dim=(0, 2)).tolist() for name in NAMES
    }
    print(
        f"workload: {args.problems} problems (n=20, d=100) × {len(NAMES)} optimizers = {runs} runs × "
        f"{args.steps} steps, float64, 1 thread"
    )
    print(
        f"vectorised runner      : {vectorised:8.1f} s  ({runs * args.steps / vectorised:,.0f} run-steps/s)"
    )
    print(
        f"torch.optim loop       : {loop_subset:8.1f} s for {shared} problems × {len(NAMES)} optimizers, "
        f"extrapolated ×{args.problems / shared:g} to {loop_total:,.0f} s "
        f"({runs * args.steps / loop_total:,.0f} run-steps/s)"
    )
    print(
        f"same numbers           : max |w_vectorised − w_loop| on the {shared} shared problems, "
        f"at step {CHECKPOINT} / at step {args.steps}: "
        + ", ".join(f"{name} {a:.0e} / {b:.0e}" for name, (a, b) in diffs.items())
    )
    print(
        "                         (RMSProp and Adam compute the same formulas with another rounding order;\n"
        "                          their near-sign steps amplify last-bit differences exponentially over\n"
        "                          thousands of steps, and Adam at an exact interpolant blows up again —\n"
        "                          in both implementations)"
    )
    print(f"throughput ratio       : {loop_total / vectorised:.1f}× (goal ≥ 20×)")


if __name__ == "__main__":
    main()
