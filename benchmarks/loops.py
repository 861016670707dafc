"""Sharpness meter vs PyHessian's power iteration, and the quick scale of the loops claims (issue 11).

1. Speed, on the digits MLP (64-64-10 tanh, 4,810 parameters, its 1,438 training examples,
   full batch, float32 like PyHessian): trainlab's Lanczos to a relative error bound of
   1e-6 against PyHessian 0.1's ``hessian.eigenvalues(maxIter=100, tol=1e-3)`` (power
   iteration stopped when two estimates differ by < 1e-3 relative). Both build the
   gradient's graph once and spend one backward pass per HVP; HVPs are counted (PyHessian's
   by wrapping its ``hessian_vector_product`` for the duration of the call); medians over
   ``--repeats`` random starts, in this one process, one thread; at the initialisation and
   after 300 GD steps. The error against a tol-1e-12 run is printed beside each.
2. Accuracy, on a model small enough for the full Hessian (digits MLP of width 8, 610
   parameters, 300 examples): both against the top eigenvalue of
   ``torch.autograd.functional.hessian`` (float64).
3. The LR range test against torch-lr-finder 0.2.2 (same sweep, smoothing and stop rule):
   the same curve on a full batch; with shuffled mini-batches, torch-lr-finder's
   suggestion moves with the global RNG while ours is fixed by its seed.
4. Quick scale of ``loops.*``: wall time of ``trainlab verify 'loops.*'`` in process.

PyHessian and torch-lr-finder are anchors for this script only (``pip install pyhessian==0.1
torch-lr-finder==0.2.2``); without them their comparisons are skipped with a note.
Usage: ``python benchmarks/loops.py [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import statistics
import tempfile
import time
from unittest import mock

import torch
from torch import nn

from trainlab.loops.sharpness import flat_loss, sharpness
from trainlab.problems import Problem, digits_data, digits_mlp
from trainlab.threads import limit_threads


def pyhessian_top(model: nn.Module, x: torch.Tensor, y: torch.Tensor, seed: int) -> tuple[float, int, float]:
    """(λ, HVPs, seconds) from PyHessian's power iteration at its defaults (tol 1e-3, 100 iterations)."""
    import importlib

    ph = importlib.import_module("pyhessian.hessian")  # the module (the package re-exports the class)

    calls = 0
    real = ph.hessian_vector_product

    def counted(*args, **kwargs):
        nonlocal calls
        calls += 1
        return real(*args, **kwargs)

    net = copy.deepcopy(model)  # PyHessian switches the model to eval mode and fills .grad
    torch.manual_seed(seed)  # its random start comes from the global RNG
    t0 = time.perf_counter()
    h = ph.hessian(net, nn.functional.cross_entropy, data=(x, y), cuda=False)
    with mock.patch.object(ph, "hessian_vector_product", counted):
        eigenvalues, _ = h.eigenvalues(maxIter=100, tol=1e-3, top_n=1)
    return float(eigenvalues[0]), calls, time.perf_counter() - t0


def ours(
    problem: Problem, tol: float, dtype: torch.dtype | None, seed: int
) -> tuple[float, int, float, bool]:
    t0 = time.perf_counter()
    r = sharpness(problem, tol=tol, dtype=dtype, seed=seed, max_hvps=300)
    return r.lambda_max, r.hvps, time.perf_counter() - t0, r.converged


def medians(fn, repeats: int) -> tuple[float, float, float, list[int]]:
    """Median λ, HVPs and seconds of ``fn(start)`` over ``repeats`` random starts, and every HVP count."""
    runs = [fn(i) for i in range(repeats)]
    med = [statistics.median(r[k] for r in runs) for k in range(3)]
    return med[0], med[1], med[2], [r[1] for r in runs]


def trained(p: Problem, steps: int) -> Problem:
    """``p`` after ``steps`` full-batch GD steps at lr 0.5 (a model in the middle of training)."""
    model = p.fresh_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(steps):
        opt.zero_grad()
        p.criterion(model(p.x), p.y).backward()
        opt.step()
    return dataclasses.replace(p, model=model)


def torch_lr_finder_run(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool, num_iter: int
) -> tuple[list[float], list[float], float | None]:
    """torch-lr-finder's range test: SGD, 1e-6 → 10, smoothing 0.05, stop at 5× the best.

    Returns (lrs, smoothed losses, its 'steepest' suggestion).
    """
    import contextlib
    import io

    import numpy as np
    from torch_lr_finder import LRFinder

    opt = torch.optim.SGD(model.parameters(), lr=1e-6)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle
    )
    finder = LRFinder(model, opt, nn.functional.cross_entropy, device="cpu")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        finder.range_test(loader, end_lr=10, num_iter=num_iter, step_mode="exp", smooth_f=0.05, diverge_th=5)
    finder.reset()
    lrs, losses = finder.history["lr"], finder.history["loss"]
    # its plot(suggest_lr=True) rule without the plot: steepest np.gradient after skipping 10 + 5 points
    cut_l, cut_r = lrs[10:-5], losses[10:-5]
    steepest = cut_l[int(np.gradient(np.array(cut_r)).argmin())] if len(cut_r) > 2 else None
    return lrs, losses, steepest


def range_test_vs_torch_lr_finder(repeats: int) -> None:
    try:
        import torch_lr_finder  # noqa: F401
    except Exception as e:  # noqa: BLE001
        print(f"\n3. note: torch-lr-finder could not be imported ({type(e).__name__}: {e}); skipped")
        return
    from trainlab.loops.lr_range import lr_find, lr_range_test

    p = digits_mlp(0)
    with limit_threads(1):
        # Full batch: no randomness, so both must trace the same curve.
        lrs, losses, steep = torch_lr_finder_run(p.fresh_model(), p.x, p.y, len(p.x), False, 100)
        ours_run = lr_range_test(
            p.model,
            torch.optim.SGD(p.model.parameters(), lr=1e-6),
            p.criterion,
            p.x,
            p.y,
            min_lr=1e-6,
            max_lr=10,
            num_steps=100,
        )
        n = min(len(lrs), len(ours_run.lrs))
        diff = max(abs(a - b) / abs(b) for a, b in zip(ours_run.losses[:n], losses[:n], strict=True))
        print("\n3. LR range test, digits MLP: SGD 1e-6 → 10 in 100 steps, smoothing 0.05, stop at 5× best")
        print(
            f"  full batch: {n} points in common, max relative difference of the smoothed losses {diff:.1e}; "
            f"divergence at step {len(ours_run.lrs)} (trainlab) vs {len(lrs)} (torch-lr-finder)"
        )
        print(f"  suggestion: trainlab {ours_run.suggested_lr:.4g}, torch-lr-finder steepest {steep:.4g}")
        # Mini-batches of 64: torch-lr-finder's suggestion depends on the global RNG's shuffling.
        theirs, rng_moved = [], False
        for _ in range(repeats):
            before = torch.get_rng_state()
            theirs.append(torch_lr_finder_run(p.fresh_model(), p.x, p.y, 64, True, 100)[2])
            rng_moved |= not torch.equal(before, torch.get_rng_state())
        before = torch.get_rng_state()
        mine = lr_find(p, seeds=repeats, seed=0, batch_size=64, min_lr=1e-6, max_lr=10, num_steps=100)
        again = lr_find(p, seeds=repeats, seed=0, batch_size=64, min_lr=1e-6, max_lr=10, num_steps=100)
        fmt = ", ".join
        print(
            f"  batch 64, {repeats} runs: torch-lr-finder suggestions [{fmt(f'{v:.3g}' for v in theirs)}] "
            f"(global RNG advanced: {rng_moved}); trainlab seeds 0..{repeats - 1} "
            f"[{fmt(f'{v:.3g}' for v in mine.spread)}], median {mine.suggested_lr:.3g}, "
            f"rerun identical: {again.spread == mine.spread}, global RNG untouched: "
            f"{torch.equal(before, torch.get_rng_state())}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    try:
        import pyhessian.hessian  # noqa: F401

        have_pyhessian = True
    except Exception as e:  # noqa: BLE001 - any import failure means: skip the anchor
        have_pyhessian = False
        print(f"note: PyHessian could not be imported ({type(e).__name__}: {e}); comparison skipped")

    print("measured on a shared, loaded 2-core machine; one intra-op thread")
    with limit_threads(1):
        # -- 1. speed on the digits MLP, at its initialisation and after 300 GD steps ------------
        base = digits_mlp(0)
        for label, p in (("at initialisation", base), ("after 300 GD steps (lr 0.5)", trained(base, 300))):
            print(
                f"\n1. digits MLP {label}: {p.num_params:,} parameters, {p.num_examples:,} examples, "
                f"full batch; medians over {args.repeats} random starts"
            )
            exact = sharpness(p, tol=1e-12, max_hvps=300).lambda_max
            rows = {
                "trainlab Lanczos tol 1e-6 float32": medians(
                    lambda i, p=p: ours(p, 1e-6, None, i), args.repeats
                ),
                "trainlab Lanczos tol 1e-6 float64": medians(
                    lambda i, p=p: ours(p, 1e-6, torch.float64, i), args.repeats
                ),
            }
            if have_pyhessian:
                rows["PyHessian power iteration tol 1e-3"] = medians(
                    lambda i, p=p: pyhessian_top(p.model, p.x, p.y, i), args.repeats
                )
            for name, (lam, hvps, secs, counts) in rows.items():
                print(
                    f"  {name:<36} λ_max {lam:.9f}  rel. error {abs(lam - exact) / exact:.1e}  "
                    f"HVPs {hvps:g} {counts}  {secs * 1e3:.0f} ms"
                )
            if have_pyhessian:
                _, h_ph, t_ph, _ = rows["PyHessian power iteration tol 1e-3"]
                for dt in ("float32", "float64"):
                    _, h, t, _ = rows[f"trainlab Lanczos tol 1e-6 {dt}"]
                    print(f"  ratio PyHessian/trainlab ({dt}): HVPs {h_ph / h:.2f}×, time {t_ph / t:.2f}×")

        # -- 2. accuracy against the full Hessian -------------------------------------------------
        x, y, _, _ = digits_data(0, dtype=torch.float64)
        x, y = x[:300], y[:300]
        torch.manual_seed(0)
        small = nn.Sequential(nn.Linear(64, 8), nn.Tanh(), nn.Linear(8, 10)).double()
        q = Problem("digits-mlp-8", small, x, y, "cross-entropy")
        f = flat_loss(q)
        t0 = time.perf_counter()
        H = torch.autograd.functional.hessian(f, f.w0)  # (610, 610)
        exact = float(torch.linalg.eigvalsh((H + H.T) / 2)[-1])
        t_full = time.perf_counter() - t0
        print(
            f"\n2. digits MLP width 8, {q.num_params} parameters, 300 examples: exact λ_max {exact:.12f} "
            f"(full Hessian, {t_full:.2f} s)"
        )
        lam, n, t, _ = ours(q, 1e-6, torch.float64, 0)
        print(f"  trainlab Lanczos tol 1e-6: {lam:.12f}  rel. error {abs(lam - exact) / exact:.1e}  {n} HVPs")
        lam, n, t, _ = ours(q, 1e-10, torch.float64, 0)
        print(
            f"  trainlab Lanczos tol 1e-10: {lam:.12f}  rel. error {abs(lam - exact) / exact:.1e}  {n} HVPs"
        )
        if have_pyhessian:
            small32 = copy.deepcopy(small).float()
            lam_ph, n_ph, _ = pyhessian_top(small32, x.float(), y, 0)
            print(
                f"  PyHessian tol 1e-3 (float32): {lam_ph:.12f}  rel. error {abs(lam_ph - exact) / exact:.1e}"
                f"  {n_ph} HVPs"
            )

    # -- 3. the LR range test against torch-lr-finder ---------------------------------------
    range_test_vs_torch_lr_finder(args.repeats)

    # -- 4. the claims at quick scale ---------------------------------------------------------
    from trainlab.claims import run_claims

    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        result = run_claims(["loops.*"], scale="quick", seed=0, out_dir=out)
        total = time.perf_counter() - t0
    per = ", ".join(f"{c['id']} {c['status']} {c['seconds']:.1f} s" for c in result.results["claims"])
    print(f"\n4. trainlab verify 'loops.*' quick: {total:.1f} s in all ({per}); target ≤ 20 s")


if __name__ == "__main__":
    main()
