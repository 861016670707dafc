"""Speed and memory of hypergradients through training (issue 9), against ``higher`` and TorchOpt.

Workload (the issue's anchors): MLP 784-256-256-10 (ReLU), batch 128, float32, random data
(a pool of 8 batches used in turn), plain SGD at lr 0.01, T = 100 and 500 steps, d(training
loss after T steps)/d(lr). Methods, all measured in this one run on this machine:

* plain training: ``torch.optim.SGD``, no hypergradient (the floor);
* trainlab ``reverse`` / ``checkpoint`` (segments of ⌈√T⌉) / ``forward`` (:mod:`trainlab.hpo`);
* ``higher`` 0.2.1 (``innerloop_ctx`` with the lr overridden by a tensor);
* TorchOpt 0.7.3 ``MetaSGD`` (lr a tensor).

Each (method, T) runs in a fresh subprocess with one intra-op thread: a warm-up of 2 steps,
then the timed run; memory is the peak RSS above the RSS just before the run (a thread
samples /proc/self/statm every ms; freed heap is trimmed first), i.e. the *extra* memory
the hypergradient costs. With ``--device cuda`` (run automatically when a GPU is present)
memory is ``torch.cuda.max_memory_allocated`` above the allocation before the run.
Forward mode is also measured at T = 10 and T = 1000 (its memory should be flat).

Goals: checkpoint ≥ 10× less extra memory than ``higher`` at T = 500 at no more than its
time; forward's memory at T = 1000 within 1.2× of T = 10. Usage:
``python benchmarks/hpo.py [--steps 100 500] [--device cpu|cuda|auto]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

METHODS = ("plain", "reverse", "checkpoint", "forward", "higher", "torchopt")
POOL = 8
BATCH = 128
LR = 0.01


def _build(device: str):
    import torch
    from torch import nn

    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10)
    ).to(device)
    x = torch.randn(POOL * BATCH, 784, generator=g).to(device)
    y = torch.randint(0, 10, (POOL * BATCH,), generator=g).to(device)
    return model, x, y


def _batches(steps: int) -> list[slice]:
    return [slice((k % POOL) * BATCH, (k % POOL + 1) * BATCH) for k in range(steps)]


def _run(method: str, steps: int, model, x, y) -> float:
    """One hypergradient (or plain training) of ``steps`` steps; returns dL/dlr (nan for plain)."""
    import torch
    from torch import nn

    batches = _batches(steps)
    if method == "plain":
        opt = torch.optim.SGD(model.parameters(), lr=LR)
        for b in batches:
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[b]), y[b]).backward()
            opt.step()
        return float("nan")
    if method in ("reverse", "checkpoint", "forward"):
        from trainlab.hpo.hypergrad import hypergradient_of
        from trainlab.hpo.unroll import Unroll
        from trainlab.problems import Problem

        problem = Problem("mlp", model, x, y, "cross-entropy")
        unroll = Unroll(problem, steps, "sgd", {"lr": LR}, batches=batches)
        return hypergradient_of(unroll, ("lr",), method, check_memory=False).hypergradient["lr"]
    if method == "higher":
        import higher

        lr = torch.tensor(LR, device=x.device, requires_grad=True)
        opt = torch.optim.SGD(model.parameters(), lr=LR)
        with higher.innerloop_ctx(model, opt, copy_initial_weights=True, override={"lr": [lr]}) as (fm, dopt):
            for b in batches:
                dopt.step(nn.functional.cross_entropy(fm(x[b]), y[b]))
            loss = nn.functional.cross_entropy(fm(x), y)
            (g,) = torch.autograd.grad(loss, lr)
        return float(g)
    if method == "torchopt":
        import copy

        import torchopt

        lr = torch.tensor(LR, device=x.device, requires_grad=True)
        net = copy.deepcopy(model)
        meta = torchopt.MetaSGD(net, lr=lr)
        for b in batches:
            meta.step(nn.functional.cross_entropy(net(x[b]), y[b]))
        loss = nn.functional.cross_entropy(net(x), y)
        (g,) = torch.autograd.grad(loss, lr)
        return float(g)
    raise ValueError(method)


def one(method: str, steps: int, device: str) -> dict:
    """Child process: warm up, then time and measure one run."""
    import torch

    from trainlab.hpo.measure import CudaPeak, RssPeak

    torch.set_num_threads(1)
    if method == "higher":
        try:
            import higher  # noqa: F401
        except ImportError as e:
            return {"skipped": f"higher not importable ({e})"}
    if method == "torchopt":
        try:
            import torchopt  # noqa: F401
        except ImportError as e:
            return {"skipped": f"torchopt not importable ({e})"}
    model, x, y = _build(device)
    _run(method, 2, _build(device)[0], x, y)  # warm-up (lazy initialisation, kernels)
    meter = CudaPeak() if device == "cuda" else RssPeak()
    start = time.perf_counter()
    with meter:
        g = _run(method, steps, model, x, y)
        if device == "cuda":
            torch.cuda.synchronize()
    return {"seconds": time.perf_counter() - start, "extra_bytes": meter.extra_bytes, "hypergradient": g}


MALLOC_ENV: dict[str, str] = {}


def measure(method: str, steps: int, device: str) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", **MALLOC_ENV)
    cmd = [sys.executable, __file__, "--one", method, str(steps), "--device", device]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode
        return {"skipped": f"failed: {last}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(
    device: str, horizons: list[int], forward_check: bool = True, methods: tuple[str, ...] = METHODS
) -> None:
    note = " (MALLOC_MMAP_THRESHOLD_=131072)" if MALLOC_ENV else ""
    print(
        f"\n== device {device}: MLP 784-256-256-10, batch {BATCH}, float32, SGD lr {LR}, one thread{note} =="
    )
    table: dict[tuple[str, int], dict] = {}
    for T in horizons:
        for m in methods:
            r = measure(m, T, device)
            table[m, T] = r
            if "skipped" in r:
                print(f"  {m:<11} T={T:<5} skipped: {r['skipped']}")
            else:
                print(
                    f"  {m:<11} T={T:<5} {r['seconds']:7.2f} s  {r['extra_bytes'] / 1e6:8.1f} MB extra"
                    f"  dL/dlr {r['hypergradient']:+.6g}",
                    flush=True,
                )
    for T in horizons:
        if any((m, T) not in table for m in ("higher", "checkpoint", "torchopt", "reverse")):
            continue
        h, c = table["higher", T], table["checkpoint", T]
        if "skipped" in h or "skipped" in c:
            continue
        mem_ratio = h["extra_bytes"] / max(c["extra_bytes"], 1)
        time_ratio = c["seconds"] / h["seconds"]
        print(
            f"  T={T}: checkpoint vs higher: {mem_ratio:.1f}× less extra memory (goal ≥ 10×), "
            f"time {time_ratio:.2f}× higher's (goal ≤ 1)"
        )
        t = table["torchopt", T]
        if "skipped" not in t:
            print(
                f"  T={T}: checkpoint vs TorchOpt: {t['extra_bytes'] / max(c['extra_bytes'], 1):.1f}× "
                f"less memory, time {c['seconds'] / t['seconds']:.2f}×"
            )
        r = table["reverse", T]
        print(
            f"  T={T}: reverse vs higher: memory {r['extra_bytes'] / max(h['extra_bytes'], 1):.2f}×, "
            f"time {r['seconds'] / h['seconds']:.2f}×; hypergradients reverse {r['hypergradient']:+.6g}, "
            f"higher {h['hypergradient']:+.6g}"
        )
    if not forward_check:
        return
    f10, f1000 = measure("forward", 10, device), measure("forward", 1000, device)
    if "skipped" not in f10 and "skipped" not in f1000:
        print(
            f"  forward T=10: {f10['extra_bytes'] / 1e6:.1f} MB, T=1000: {f1000['extra_bytes'] / 1e6:.1f} MB "
            f"({f1000['seconds']:.1f} s): ratio {f1000['extra_bytes'] / max(f10['extra_bytes'], 1):.2f} "
            "(goal ≤ 1.2)"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, nargs="+", default=[100, 500])
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))  # noqa: F821
    ap.add_argument(
        "--fixed-mmap-threshold",
        action="store_true",
        help="Children run with MALLOC_MMAP_THRESHOLD_=131072: glibc then maps every large "
        "tensor separately and unmaps it on free, so RSS follows live memory instead of "
        "the heap's high-water mark (the same setting for every method).",
    )
    ap.add_argument("--no-forward-check", action="store_true", help="Skip forward mode at T = 10 and 1000.")
    ap.add_argument("--one", nargs=2, metavar=("METHOD", "T"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], int(args.one[1]), "cpu" if args.device == "auto" else args.device)))
        return
    import torch

    if args.fixed_mmap_threshold:
        MALLOC_ENV["MALLOC_MMAP_THRESHOLD_"] = "131072"
    devices = (
        ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) if args.device == "auto" else [args.device]
    )
    for device in devices:
        report(device, args.steps, forward_check=not args.no_forward_check, methods=tuple(args.methods))


if __name__ == "__main__":
    main()
