"""Hypergradients dL_T/dθ of the loss after T training steps, in three modes.

With w_{k+1} = Φ_k(w_k, θ) (one optimizer step; θ = learning rate(s), weight decay,
momentum, Adam's betas) and L = ℓ(w_T):

- ``reverse``: the plain unroll. Autograd records all T steps (each with its inner
  gradient, ``create_graph``) and one backward pass gives dL/dθ for every θ at once.
  Memory O(T): every w_k and the activations of every step are kept.
- ``checkpoint``: the run is first done without a graph, keeping the state (w_k, buffers,
  optimizer state) every s ≈ √T steps; then the segments are replayed last to first, each
  with a graph, and the adjoint āₖ = ∂L/∂state_k is carried backwards:
  ā_{start} = (∂ state_{end}/∂ state_{start})ᵀ ā_{end}, dL/dθ += (∂ state_{end}/∂θ)ᵀ ā_{end}
  (Griewank & Walther, *Evaluating Derivatives*, 2008, ch. 12: checkpointing). Memory
  O(T/s + s) = O(√T) states, time one extra forward pass. The default for long horizons.
- ``forward``: tangents dw_k/dθ carried along with w_k (:func:`torch.func.jvp`, i.e.
  forward-over-reverse), no graph kept across steps: memory flat in T, one run per
  hyperparameter direction (Franceschi et al., *Forward and Reverse Gradient-Based
  Hyperparameter Optimization*, ICML 2017).

All three agree to rounding (tests/hpo) and with central differences in float64. In
float32 checkpoint mode agrees with reverse to float32 rounding rather than bit for bit:
its first pass takes inner gradients without ``create_graph``, which autograd computes
with slightly different kernels than the replay does.

>>> from trainlab.problems import load_problem
>>> p = load_problem("linreg", n=5, d=12, seed=0)
>>> r = hypergradient(p, 3, lr=0.1, mode="reverse")
>>> f = hypergradient(p, 3, lr=0.1, mode="forward")
>>> abs(r.hypergradient["lr"] - f.hypergradient["lr"]) < 1e-12
True
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from trainlab.errors import ArgumentError, TrainlabError
from trainlab.hpo.measure import RssPeak, SavedTensorMeter, trim_heap
from trainlab.hpo.unroll import (
    RunState,
    Unroll,
    flatten_state,
    unflatten_state,
)
from trainlab.memory import require_memory
from trainlab.problems import Problem

__all__ = ["MODES", "Hypergradient", "estimate_memory", "hypergradient", "hypergradient_of"]

MODES = ("reverse", "checkpoint", "forward")


@dataclass
class Hypergradient:
    """dL_T/dθ per hyperparameter (a list for ``schedule``: one entry per step) and L_T itself."""

    hypergradient: dict[str, float | list[float]]
    loss: float
    mode: str
    steps: int
    seconds: float
    peak_memory_bytes: int | None = None
    memory_method: str | None = None
    segment: int | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = {
            "hypergradient": self.hypergradient,
            "loss": self.loss,
            "mode": self.mode,
            "steps": self.steps,
            "seconds": self.seconds,
            "peak_memory_bytes": self.peak_memory_bytes,
        }
        if self.memory_method:
            out["memory_method"] = self.memory_method
        if self.segment:
            out["segment"] = self.segment
        return out


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a run is unrolled.

    An unroll keeps thousands of live tensors; each automatic collection walks them all, so
    steps got slower as T grew (MLP 784-256-256-10: 5 ms per step at the start, 24 ms by step
    400, measured). Checkpoint mode collects after each segment; forward mode, which keeps
    no graph, leaves the collector on (paused, the cycles torch.func makes each step piled
    up, about 8 kB per step).
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _finite(grads: dict[str, Tensor], loss: Tensor, unroll: Unroll) -> None:
    if not math.isfinite(float(loss)):
        raise TrainlabError(
            f"the loss after {unroll.steps} steps is {float(loss)}: lower --lr "
            f"(={unroll.hyper['lr']!r}) or --steps"
        )
    for k, g in grads.items():
        if not bool(torch.isfinite(g).all()):
            raise TrainlabError(
                f"the hypergradient with respect to {k} is not finite "
                f"(the run is on the edge of divergence): lower --lr={unroll.hyper['lr']!r}"
            )


def _reverse(unroll: Unroll, wrt: Sequence[str]) -> tuple[Tensor, dict[str, Tensor]]:
    hp = unroll.hyper_tensors(wrt)
    leaves = [hp[k].requires_grad_() for k in wrt]
    state = unroll.run(unroll.constant(hp, wrt))
    loss = unroll.final_loss(state)
    grads = torch.autograd.grad(loss, leaves, allow_unused=True, materialize_grads=True)
    return loss.detach(), dict(zip(wrt, grads, strict=True))


def default_segment(steps: int) -> int:
    """s = ⌈√T⌉: T/s checkpoints plus one segment of s steps in memory, both ≈ √T."""
    return max(1, math.ceil(math.sqrt(steps)))


def _checkpoint(unroll: Unroll, wrt: Sequence[str], segment: int | None) -> tuple[Tensor, dict[str, Tensor]]:
    T = unroll.steps
    s = default_segment(T) if segment is None else segment
    hp = unroll.hyper_tensors(wrt)
    # Pass 1: the run without a graph, keeping the state at steps 0, s, 2s, … (the last
    # segment is left to pass 2, which replays it first anyway).
    starts = list(range(0, T, s))
    checkpoints: list[RunState] = []
    with torch.no_grad():
        state = unroll.init_state()
        for j in range(len(starts)):
            checkpoints.append(state)
            if j + 1 < len(starts):
                state = unroll.run(unroll.constant(hp, wrt), state=state, until=starts[j + 1], detach=True)
        del state
    # Pass 2: segments last to first, carrying the adjoint of the state backwards.
    total = {k: torch.zeros_like(hp[k]) for k in wrt}
    adjoint: list[Tensor | None] | None = None
    loss_value = None
    for j in reversed(range(len(starts))):
        leaves, spec = flatten_state(
            (checkpoints[j].params, checkpoints[j].buffers, checkpoints[j].opt_state)
        )
        leaves_in = [t.detach().requires_grad_() if t.is_floating_point() else t for t in leaves]
        params, buffers, opt_state = unflatten_state(leaves_in, spec)
        start = RunState(params, buffers, opt_state, checkpoints[j].step)
        hp_j = {k: v.detach().clone() for k, v in hp.items()}
        hp_leaves = [hp_j[k].requires_grad_() for k in wrt]
        end = starts[j + 1] if j + 1 < len(starts) else T
        out = unroll.run(unroll.constant(hp_j, wrt), state=start, until=end)
        inputs = [t for t in leaves_in if t.requires_grad] + hp_leaves
        if adjoint is None:
            loss = unroll.final_loss(out)
            loss_value = loss.detach()
            grads = torch.autograd.grad(loss, inputs, allow_unused=True, materialize_grads=True)
        else:
            out_leaves, _ = flatten_state((out.params, out.buffers, out.opt_state))
            pairs = [
                (o, a) for o, a in zip(out_leaves, adjoint, strict=True) if a is not None and o.requires_grad
            ]
            grads = torch.autograd.grad(
                [o for o, _ in pairs],
                inputs,
                grad_outputs=[a for _, a in pairs],
                allow_unused=True,
                materialize_grads=True,
            )
        n_state = len(inputs) - len(hp_leaves)
        it = iter(grads[:n_state])
        adjoint = [next(it) if t.requires_grad else None for t in leaves_in]
        for k, g in zip(wrt, grads[n_state:], strict=True):
            total[k] = total[k] + g
        del out, grads
        # The segment's reference cycles, if any: with automatic collection paused every new
        # object sits in generation 0, so collecting it alone is cheap (a full collection,
        # walking all of torch's objects, cost ~70 ms per segment on the MLP).
        gc.collect(0)
        trim_heap()  # hand the segment's freed graph back to the kernel before the next replay
    assert loss_value is not None
    return loss_value, total


def _forward(unroll: Unroll, wrt: Sequence[str]) -> tuple[Tensor, dict[str, Tensor]]:
    hp = unroll.hyper_tensors(wrt)
    const = unroll.constant(hp, wrt)
    grads: dict[str, Tensor] = {}
    loss_value = None

    for k in wrt:
        base = hp[k]

        def f(value: Tensor, name: str = k) -> Tensor:
            return unroll.final_loss(unroll.run({**const, name: value}, functorch=True))

        if base.dim() == 0:
            loss, d = torch.func.jvp(f, (base,), (torch.ones_like(base),))
            grads[k] = d
        else:  # a schedule: one run per step's learning rate (cost ∝ T runs)
            out = torch.empty_like(base)
            for i in range(base.numel()):
                e = torch.zeros_like(base)
                e[i] = 1
                loss, out[i] = torch.func.jvp(f, (base,), (e,))
            grads[k] = out
        loss_value = loss
    assert loss_value is not None
    return loss_value, grads


def _run_paused(fn: Any) -> Any:
    with _gc_paused():
        return fn()


def estimate_memory(
    unroll: Unroll, mode: str, wrt: Sequence[str] = ("lr",), segment: int | None = None
) -> int:
    """Bytes the mode will keep, from the graph of two measured steps, extrapolated to T.

    reverse: T × (bytes one step keeps in the graph); checkpoint: s steps of graph plus
    T/s stored states; forward: one step's graph plus three states (state, tangent, next).
    """
    hp = unroll.hyper_tensors(wrt)
    leaves = [hp[k].requires_grad_() for k in wrt]
    probe = Unroll(
        unroll.problem,
        min(2, unroll.steps),
        unroll.optimizer,
        dict(unroll.hyper),
        unroll.loss,
        unroll.batch_size,
        unroll.seed,
    )
    probe._batches = unroll._batches[:2] if unroll._batches is not None else None
    after: list[int] = []
    with SavedTensorMeter() as meter:
        state = probe.run(probe.constant(hp, wrt), on_step=lambda s: after.append(meter.live_bytes))
    del state, leaves
    per_step = after[-1] - after[0] if len(after) > 1 else after[0]
    per_step = max(per_step, 1)
    state_bytes = sum(
        t.numel() * t.element_size()
        for t in flatten_state((unroll.problem.params(), unroll.problem.buffers()))[0]
    )
    state_bytes *= {"sgd": 1, "momentum": 2, "adam": 3}[unroll.optimizer]
    T = unroll.steps
    if mode == "reverse":
        return per_step * T + state_bytes
    if mode == "checkpoint":
        s = default_segment(T) if segment is None else min(segment, T)  # a segment holds at most T steps
        return per_step * s + state_bytes * (math.ceil(T / s) + 2)
    return per_step + 3 * state_bytes


def hypergradient_of(
    unroll: Unroll,
    wrt: Sequence[str] = ("lr",),
    mode: str = "reverse",
    segment: int | None = None,
    measure: str | None = None,
    check_memory: bool = True,
) -> Hypergradient:
    """dL_T/dθ for the run ``unroll`` (see :func:`hypergradient` for the arguments)."""
    if mode not in MODES:
        raise ArgumentError("mode", mode, "one of: " + ", ".join(MODES))
    if segment is not None and (not isinstance(segment, int) or segment < 1):
        raise ArgumentError("segment", segment, "a positive number of steps per checkpoint segment")
    wrt = unroll.check_wrt(wrt)
    if check_memory:
        # the steps, or the segment that holds its steps' graph when it is what the user set large
        flag, value = (("--segment", segment) if mode == "checkpoint" and segment is not None
                       and segment > default_segment(unroll.steps) else ("--steps", unroll.steps))
        require_memory(flag, value, estimate_memory(unroll, mode, wrt, segment))
    fn = {
        "reverse": lambda: _reverse(unroll, wrt),
        "checkpoint": lambda: _checkpoint(unroll, wrt, segment),
        "forward": lambda: _forward(unroll, wrt),
    }[mode]
    if mode != "forward":  # forward mode keeps no graph: the collector has little to walk
        inner = fn
        fn = lambda: _run_paused(inner)  # noqa: E731
    start = time.perf_counter()
    peak = None
    if measure == "rss":
        with RssPeak() as rss:
            loss, grads = fn()
        peak = rss.extra_bytes
    elif measure == "saved":
        if mode == "forward":  # torch.func.grad refuses saved-tensor hooks
            raise ArgumentError(
                "measure",
                measure,
                "rss or cuda in forward mode (torch.func transforms cannot be seen by saved-tensor hooks)",
            )
        with SavedTensorMeter() as meter:
            loss, grads = fn()
        peak = meter.peak_bytes
    elif measure == "cuda":
        from trainlab.hpo.measure import CudaPeak

        with CudaPeak() as cuda:
            loss, grads = fn()
        peak = cuda.extra_bytes
    elif measure is None:
        loss, grads = fn()
    else:
        raise ArgumentError("measure", measure, "rss, saved, cuda or None")
    seconds = time.perf_counter() - start
    _finite(grads, loss, unroll)
    out = {k: (float(g) if g.dim() == 0 else [float(v) for v in g]) for k, g in grads.items()}
    return Hypergradient(
        out,
        float(loss),
        mode,
        unroll.steps,
        seconds,
        peak,
        measure,
        (default_segment(unroll.steps) if segment is None else segment) if mode == "checkpoint" else None,
    )


def hypergradient(
    problem: Problem,
    steps: int,
    *,
    wrt: Sequence[str] = ("lr",),
    lr: float = 0.1,
    optimizer: str = "sgd",
    weight_decay: float = 0.0,
    momentum: float | None = None,
    betas: tuple[float, float] = (0.9, 0.999),
    loss: str = "train",
    mode: str = "reverse",
    batch_size: int | None = None,
    seed: int = 0,
    segment: int | None = None,
    measure: str | None = None,
    check_memory: bool = True,
) -> Hypergradient:
    """d(loss after ``steps`` steps of ``optimizer``)/d(hyperparameters in ``wrt``).

    ``wrt`` names among ``lr``, ``schedule`` (one learning rate per step, all starting at
    ``lr``), ``weight_decay``, ``momentum`` (sgd/momentum) and ``beta1``, ``beta2`` (adam).
    ``loss`` is ``train`` (the training loss) or ``valid`` (held-out), evaluated in eval
    mode after the last step. ``measure`` = ``rss``/``saved``/``cuda`` records the peak
    extra memory (see :mod:`trainlab.hpo.measure`). A horizon whose memory estimate exceeds
    what is available is refused up front (:class:`~trainlab.errors.ResourceError`); a run
    whose loss becomes inf/NaN stops with the step and the stable bound (``DivergenceError``).
    """
    hyper = {"lr": lr, "weight_decay": weight_decay, "beta1": betas[0], "beta2": betas[1]}
    if momentum is not None:
        hyper["momentum"] = momentum
    unroll = Unroll(problem, steps, optimizer, hyper, loss, batch_size, seed)
    return hypergradient_of(unroll, wrt, mode, segment, measure, check_memory)
