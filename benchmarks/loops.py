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
3. Quick scale of ``loops.*``: wall time of ``trainlab verify 'loops.*'`` in process.

PyHessian is an anchor for this script only (``pip install pyhessian==0.1``); without it
the comparison is skipped with a note. Usage: ``python benchmarks/loops.py [--repeats 5]``.
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

    # -- 3. the claims at quick scale ---------------------------------------------------------
    from trainlab.claims import run_claims

    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        result = run_claims(["loops.*"], scale="quick", seed=0, out_dir=out)
        total = time.perf_counter() - t0
    per = ", ".join(f"{c['id']} {c['status']} {c['seconds']:.1f} s" for c in result.results["claims"])
    print(f"\n3. trainlab verify 'loops.*' quick: {total:.1f} s in all ({per}); target ≤ 20 s")


if __name__ == "__main__":
    main()
