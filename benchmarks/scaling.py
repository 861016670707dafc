"""Speed targets of §4 scaling (issue 10), each as a ratio against an anchor measured in this run.

1. Exact B_simple over the digits training set (1,438 examples, 64-64-10 MLP): vmapped
   per-example gradients (``exact_noise_scale``) against one backward pass per example
   (``loop_noise_scale``). Target: ≥ 10× faster, the same value.
2. Stacked training: R runs of the digits MLP in one batched-matmul stack against the same R
   runs one after another (the same code with R = 1). Reported as a ratio.
3. Executors: one small sweep on the local process pool and on a local Ray instance
   (``ray.init(num_cpus=workers)``): the same points with the same results; throughput
   (points per second) of both, start-up included.
4. The quick scale of all §4 claims (part of ``trainlab verify``): target ≈ 90 s on 2 cores;
   ``--full`` also times the full scale (target ≈ 6 minutes).

Timings depend on the load of the machine: say so when quoting them.
Usage: ``python benchmarks/scaling.py [--skip-ray] [--skip-claims] [--full] [--workers 2]``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch

from trainlab.problems import digits_mlp
from trainlab.threads import limit_threads


def bench_noise_scale() -> None:
    from trainlab.scaling.noise_scale import exact_noise_scale, loop_noise_scale

    p = digits_mlp(0)
    with limit_threads(1):
        exact_noise_scale(p)  # warm-up: vmap's first call traces
        t = time.perf_counter()
        reps = 5
        for _ in range(reps):
            ex = exact_noise_scale(p)
        t_exact = (time.perf_counter() - t) / reps
        t = time.perf_counter()
        lp = loop_noise_scale(p)
        t_loop = time.perf_counter() - t
    rel = abs(ex.b_simple - lp.b_simple) / lp.b_simple
    print(f"[noise scale] exact (vmap) {t_exact * 1e3:.1f} ms, per-example loop {t_loop * 1e3:.0f} ms: "
          f"{t_loop / t_exact:.1f}x (target ≥ 10x); B_simple {ex.b_simple:.4f} vs {lp.b_simple:.4f} "
          f"(rel. diff {rel:.1e}, float32)")


def bench_stacked(runs: int = 16, steps: int = 300, batch_size: int = 16) -> None:
    from trainlab.scaling.stacked import StackedRuns, train_stacked

    p = digits_mlp(0)
    lrs = [0.1 * 2 ** (k / 4) for k in range(runs)]
    seeds = list(range(runs))
    kw = dict(batch_size=batch_size, targets=[0.0], max_steps=steps, stop_at_target=False)
    with limit_threads(1):
        t = time.perf_counter()
        stacked = train_stacked(p, StackedRuns(lrs, seeds), **kw)
        t_stacked = time.perf_counter() - t
        t = time.perf_counter()
        alone = [train_stacked(p, StackedRuns([lr], [s]), **kw)[0] for lr, s in zip(lrs, seeds, strict=True)]
        t_alone = time.perf_counter() - t
    diff = max(abs(a.final_loss - b.final_loss) / b.final_loss for a, b in zip(stacked, alone, strict=True))
    print(f"[stacked] {runs} runs × {steps} steps at B={batch_size}: stacked {t_stacked:.2f} s, one after "
          f"another {t_alone:.2f} s: {t_alone / t_stacked:.1f}x; max rel. diff of final losses {diff:.1e} "
          "(float32)")


def bench_executors(workers: int, skip_ray: bool) -> None:
    from trainlab.scaling.executors import LocalPoolExecutor, RayExecutor
    from trainlab.scaling.sweep import SweepConfig, run_sweep

    config = SweepConfig(problem="digits-mlp", batch_sizes=(8, 16, 32, 64, 128, 256), lr_base=0.2,
                         lr_indices=(0, 1, 2, 3), seeds=(1, 2), targets=(0.5,), max_steps=2000)
    results = {}
    root = Path(tempfile.mkdtemp(prefix="trainlab-bench-scaling-"))
    try:
        executors = [("local", LocalPoolExecutor(workers))]
        if not skip_ray:
            executors.append(("ray", RayExecutor(workers=workers)))
        for name, ex in executors:
            t = time.perf_counter()
            store = run_sweep(config, root / name, ex)
            dt = time.perf_counter() - t
            if hasattr(ex, "shutdown"):
                ex.shutdown()
            results[name] = {k: (r["steps_to_target"], r["diverged"], r["censored"])
                             for k, r in store.records.items()}
            print(f"[executors] {name}: {len(store)} points in {dt:.1f} s = {len(store) / dt:.2f} points/s "
                  f"({workers} workers, start-up included)")
        if "ray" in results:
            same = results["ray"] == results["local"]
            print(f"[executors] Ray and the local pool give the same results: {same}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def bench_claims(scale: str, target_s: float) -> None:
    from trainlab.claims import run_claims

    out = Path(tempfile.mkdtemp(prefix="trainlab-bench-claims-"))
    try:
        t = time.perf_counter()
        result = run_claims(["scaling.*"], scale, seed=0, out_dir=out)
        dt = time.perf_counter() - t
        per = ", ".join(f"{c['id'].split('.')[1]} {c['seconds']:.1f} s ({c['status']})"
                        for c in result.results["claims"])
        print(f"[claims] {scale} scale of all §4 claims: {dt:.1f} s (target ≈ {target_s:.0f} s): {per}")
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-ray", action="store_true")
    ap.add_argument("--skip-claims", action="store_true")
    ap.add_argument("--full", action="store_true", help="also time the full scale of the claims")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads available")
    bench_noise_scale()
    bench_stacked()
    bench_executors(args.workers, args.skip_ray)
    if not args.skip_claims:
        bench_claims("quick", 90)
        if args.full:
            bench_claims("full", 360)


if __name__ == "__main__":
    main()
