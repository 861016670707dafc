"""A training run as a pure function of its hyperparameters.

Training is a computation graph (CLAIMS.md §2): w_{k+1} = w_k + u_k(∇J(w_k); η, λ, μ, β),
so the loss after T steps, L_T, is a differentiable function of the hyperparameters.
:class:`Unroll` holds what is fixed (the problem, the optimizer, the batches, T) and
exposes one step ``state -> state`` as a pure function of a hyperparameter dict, which
:mod:`trainlab.hpo.hypergrad` differentiates in reverse, checkpointed or forward mode.

The state of a run is ``(params, buffers, opt_state)``. Buffers are carried state: a
BatchNorm layer's running statistics are recomputed *differentiably* from the layer's
input (``r ← (1 − m) r + m · mean(x)``, PyTorch's update; the native kernel updates them
in place outside autograd, which is how ``higher`` loses them), so a held-out loss measured
in eval mode depends on the hyperparameters through them too. Other buffers are carried
as the forward pass leaves them (not differentiated).

The inner gradient ∇J(w_k) is taken with :func:`torch.func.grad`, which composes with
both outer reverse mode (autograd) and forward mode (:func:`torch.func.jvp`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from trainlab.errors import ArgumentError, TrainlabError
from trainlab.functional import GradientTransformation, adam, apply_updates, sgd
from trainlab.problems import Problem
from trainlab.seeding import derive_seed, forked_rng, generator

__all__ = [
    "HYPERPARAMETERS",
    "LOSSES",
    "OPTIMIZERS",
    "DIVERGENCE_FACTOR",
    "DivergenceError",
    "RunState",
    "Unroll",
    "flatten_state",
    "unflatten_state",
]

OPTIMIZERS = ("sgd", "momentum", "adam")
#: What a hypergradient may be taken with respect to. ``schedule`` is one learning rate per step.
HYPERPARAMETERS = ("lr", "schedule", "weight_decay", "momentum", "beta1", "beta2")
LOSSES = ("train", "valid")
#: A run whose loss exceeds this multiple of its first loss is stopped as divergent.
DIVERGENCE_FACTOR = 1e8
_WRT_FOR = {
    "sgd": ("lr", "schedule", "weight_decay", "momentum"),
    "momentum": ("lr", "schedule", "weight_decay", "momentum"),
    "adam": ("lr", "schedule", "weight_decay", "beta1", "beta2"),
}


class DivergenceError(TrainlabError):
    """The inner training run diverged: the loss became inf or NaN at ``step``."""

    def __init__(self, step: int, loss: float, lr: float, bound: float | None, argument: str = "lr"):
        self.step, self.loss, self.lr, self.bound = step, loss, lr, bound
        hint = (
            f"gradient descent on this problem is stable only for lr < 2/λ_max = {bound:.4g}"
            if bound is not None
            else "use a smaller learning rate"
        )
        super().__init__(
            f"{argument}={lr!r} diverges: the training loss is {loss:.3g} at step {step}; {hint}"
        )


@dataclass
class RunState:
    """Parameters, buffers and optimizer state after some number of steps."""

    params: dict[str, Tensor]
    buffers: dict[str, Tensor]
    opt_state: Any
    step: int = 0


def flatten_state(tree: Any) -> tuple[list[Tensor], Any]:
    """The tensors of a state tree (dicts, tuples, NamedTuples, lists, scalars, None) and its shape.

    A plain recursive function, not a recursive closure: a closure that calls itself is a
    reference cycle, and it held the leaves (and their graphs) until the next garbage
    collection, which the unrolls pause.
    """
    leaves: list[Tensor] = []
    return leaves, _flatten(tree, leaves)


def _flatten(t: Any, leaves: list[Tensor]) -> Any:
    if isinstance(t, Tensor):
        leaves.append(t)
        return ("T", len(leaves) - 1)
    if isinstance(t, dict):
        return ("D", [(k, _flatten(v, leaves)) for k, v in t.items()])
    if isinstance(t, tuple) and hasattr(t, "_fields"):  # a NamedTuple
        return ("N", type(t), [_flatten(v, leaves) for v in t])
    if isinstance(t, tuple | list):
        return ("L", type(t), [_flatten(v, leaves) for v in t])
    return ("C", t)  # int, float, None: constants


def unflatten_state(leaves: Sequence[Tensor], spec: Any) -> Any:
    """Inverse of :func:`flatten_state` with new leaves."""
    tag = spec[0]
    if tag == "T":
        return leaves[spec[1]]
    if tag == "D":
        return {k: unflatten_state(leaves, s) for k, s in spec[1]}
    if tag == "N":
        return spec[1](*(unflatten_state(leaves, s) for s in spec[2]))
    if tag == "L":
        return spec[1](unflatten_state(leaves, s) for s in spec[2])
    return spec[1]


@contextmanager
def _batchnorm_hooks(model: nn.Module, buffers: Mapping[str, Tensor]) -> Iterator[dict[str, Tensor]]:
    """Make BatchNorm's running statistics differentiable state.

    In train mode each BatchNorm layer's input is recorded by module name (its running
    statistics are then recomputed from it by the caller). In eval mode the layer's
    output is recomputed from ``buffers`` as y = (x − r_mean)/√(r_var + ε)·γ + β, since
    the native kernel is not differentiable with respect to the running statistics.
    """
    seen: dict[str, Tensor] = {}
    handles = []

    def record(module: nn.Module, args: tuple[Any, ...], name: str) -> None:
        if module.training:
            seen[name] = args[0]

    def evaluate(module: nn.Module, args: tuple[Any, ...], output: Tensor, name: str) -> Tensor | None:
        if module.training:
            return None
        prefix = f"{name}." if name else ""
        x = args[0]
        shape = [1, -1] + [1] * (x.dim() - 2)  # (C,) -> (1, C, 1, …) against (N, C, *)
        mean = buffers[prefix + "running_mean"].reshape(shape)
        var = buffers[prefix + "running_var"].reshape(shape)
        y = (x - mean) / torch.sqrt(var + module.eps)
        if module.affine:
            y = y * module.weight.reshape(shape) + module.bias.reshape(shape)
        return y

    for name, mod in model.named_modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm) and mod.track_running_stats:
            handles.append(mod.register_forward_pre_hook(lambda m, a, _n=name: record(m, a, _n)))
            handles.append(mod.register_forward_hook(lambda m, a, o, _n=name: evaluate(m, a, o, _n)))
    try:
        yield seen
    finally:
        for h in handles:
            h.remove()


@dataclass
class Unroll:
    """T steps of ``optimizer`` on ``problem`` from its starting point, batches fixed up front.

    ``batch_size`` None means full-batch gradient descent (the course's setting); otherwise
    the T mini-batches are drawn once from ``seed`` so every mode replays the same run.
    ``hyper`` holds the hyperparameters' values: ``lr``, ``weight_decay``, ``momentum``
    (heavy ball; ``optimizer="momentum"`` defaults it to 0.9), ``beta1``, ``beta2``;
    ``lr_schedule`` (T,) replaces the constant ``lr`` by one rate per step; ``batches``
    (one index tensor or slice per step; slices give views, so a graph keeps no copies)
    replaces the drawn mini-batches.
    """

    problem: Problem
    steps: int
    optimizer: str = "sgd"
    hyper: dict[str, float] = field(default_factory=dict)
    loss: str = "train"
    batch_size: int | None = None
    seed: int = 0
    lr_schedule: Tensor | None = None
    batches: Sequence[Tensor | slice] | None = None

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ArgumentError("optimizer", self.optimizer, "one of: " + ", ".join(OPTIMIZERS))
        if not isinstance(self.steps, int) or self.steps < 1:
            raise ArgumentError("steps", self.steps, "a positive number of training steps")
        if self.loss not in LOSSES:
            raise ArgumentError("loss", self.loss, "one of: " + ", ".join(LOSSES))
        if self.loss == "valid" and self.problem.x_valid is None:
            raise ArgumentError(
                "loss",
                "valid",
                f"'train': problem {self.problem.name} has no held-out data "
                "(digits-mlp and model factories with --data have)",
            )
        defaults = {
            "lr": 0.1,
            "weight_decay": 0.0,
            "momentum": 0.9 if self.optimizer == "momentum" else 0.0,
            "beta1": 0.9,
            "beta2": 0.999,
            "eps": 1e-8,
        }
        unknown = set(self.hyper) - set(defaults)
        if unknown:
            raise ArgumentError("hyper", sorted(unknown), "names among " + ", ".join(defaults))
        self.hyper = {**defaults, **{k: float(v) for k, v in self.hyper.items()}}
        h = self.hyper
        if not (math.isfinite(h["lr"]) and h["lr"] > 0):
            raise ArgumentError("lr", h["lr"], "a positive finite learning rate")
        if not (math.isfinite(h["weight_decay"]) and h["weight_decay"] >= 0):
            raise ArgumentError("weight_decay", h["weight_decay"], "a number >= 0")
        for name in ("momentum", "beta1", "beta2"):
            if not 0 <= h[name] < 1:
                raise ArgumentError(name, h[name], "a number in [0, 1)")
        self.dtype = self.problem.dtype
        n = self.problem.num_examples
        if self.batch_size is not None:
            if not isinstance(self.batch_size, int) or self.batch_size < 1:
                raise ArgumentError("batch_size", self.batch_size, "a positive integer")
            if self.batch_size >= n:
                self.batch_size = None
        if self.batches is not None:
            if len(self.batches) != self.steps:
                raise ArgumentError(
                    "batches", len(self.batches), f"one index tensor or slice per step ({self.steps})"
                )
            self._batches = list(self.batches)
        elif self.batch_size is None:
            self._batches = None
        else:
            g = generator(self.seed, "hpo-batches")
            self._batches = [torch.randperm(n, generator=g)[: self.batch_size] for _ in range(self.steps)]
        self._first_loss = math.inf
        self._dropout = any(
            isinstance(m, nn.modules.dropout._DropoutNd) for m in self.problem.model.modules()
        )

    # -- hyperparameters ---------------------------------------------------------------

    def wrt_names(self) -> tuple[str, ...]:
        """The hyperparameters a hypergradient can be taken with respect to for this optimizer."""
        return _WRT_FOR[self.optimizer]

    def check_wrt(self, wrt: Sequence[str], argument: str = "wrt") -> tuple[str, ...]:
        wrt = tuple(dict.fromkeys(wrt))
        valid = self.wrt_names()
        bad = [w for w in wrt if w not in valid]
        if not wrt or bad:
            raise ArgumentError(
                argument,
                ",".join(wrt) if wrt else "",
                f"comma-separated names among {', '.join(valid)} (for optimizer {self.optimizer})",
            )
        if "lr" in wrt and "schedule" in wrt:
            raise ArgumentError(
                argument, ",".join(wrt), "lr or schedule, not both (lr is the schedule's sum)"
            )
        return wrt

    def hyper_tensors(self, wrt: Sequence[str] = ()) -> dict[str, Tensor]:
        """The hyperparameters as tensors of the problem's dtype; ``schedule`` is (T,) filled with lr."""
        out = {k: torch.tensor(v, dtype=self.dtype) for k, v in self.hyper.items()}
        if self.lr_schedule is not None:
            if self.lr_schedule.shape != (self.steps,):
                raise ArgumentError(
                    "lr_schedule", tuple(self.lr_schedule.shape), f"one rate per step: ({self.steps},)"
                )
            out["schedule"] = self.lr_schedule.detach().to(self.dtype).clone()
        elif "schedule" in wrt:
            out["schedule"] = torch.full((self.steps,), self.hyper["lr"], dtype=self.dtype)
        return out

    def make_optimizer(self, hp: Mapping[str, Tensor | float]) -> GradientTransformation:
        """The functional optimizer with these hyperparameter values (tensors stay differentiable)."""
        if "schedule" in hp:
            sched = hp["schedule"]
            lr: Any = lambda k: sched[k]  # noqa: E731  (η_k at step k)
        else:
            lr = hp["lr"]
        wd = hp["weight_decay"]
        if self.optimizer == "adam":
            return adam(lr=lr, betas=(hp["beta1"], hp["beta2"]), eps=float(hp["eps"]), weight_decay=wd)
        return sgd(lr=lr, momentum=hp["momentum"], weight_decay=wd)

    def constant(self, hp: Mapping[str, Tensor], wrt: Sequence[str]) -> dict[str, Tensor | float]:
        """Hyperparameters not differentiated become plain numbers (no needless graph, torch's rounding)."""
        return {k: v if k in wrt or k == "schedule" else float(v) for k, v in hp.items()}

    # -- the run -----------------------------------------------------------------------

    def init_state(self) -> RunState:
        p = self.problem
        params = p.params()
        return RunState(params, p.buffers(), None, 0)

    def _forward(
        self, params: Mapping[str, Tensor], buffers: Mapping[str, Tensor], x: Tensor, y: Tensor, train: bool
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Mean loss and the new buffers; BatchNorm statistics updated differentiably."""
        model = self.problem.model
        was = model.training
        model.train(train)
        try:
            # The native kernel updates running statistics in place and cannot differentiate
            # them: hand it throwaway copies (the hooks do the differentiable part).
            scratch = {k: v.detach().clone() for k, v in buffers.items()}
            with _batchnorm_hooks(model, buffers) as seen:
                out = torch.func.functional_call(model, {**params, **scratch}, (x,))
            loss = self.problem.criterion(out, y)
        finally:
            model.train(was)
        if not train:
            return loss, dict(buffers)
        new = {k: v.detach() for k, v in scratch.items()}  # other buffers: carried, not differentiated
        modules = dict(model.named_modules())
        for name, inp in seen.items():
            mod = modules[name]
            prefix = f"{name}." if name else ""
            count = buffers[prefix + "num_batches_tracked"] + 1
            # PyTorch's update (torch.nn.BatchNorm*): r ← (1 − m) r + m·stat, m = momentum or 1/count;
            # the running variance takes the unbiased batch variance.
            m = mod.momentum if mod.momentum is not None else 1.0 / float(count)
            dims = [i for i in range(inp.dim()) if i != 1]  # (N, C, *) -> statistics per channel C
            mean = inp.mean(dims)
            var = inp.var(dims, correction=1)
            new[prefix + "running_mean"] = (1 - m) * buffers[prefix + "running_mean"] + m * mean
            new[prefix + "running_var"] = (1 - m) * buffers[prefix + "running_var"] + m * var
            new[prefix + "num_batches_tracked"] = count.detach()
        return loss, new

    def batch(self, k: int) -> tuple[Tensor, Tensor]:
        p = self.problem
        if self._batches is None:
            return p.x, p.y
        idx = self._batches[k]
        return p.x[idx], p.y[idx]

    @staticmethod
    def _gradient(objective: Any, state: RunState, functorch: bool) -> tuple[dict[str, Tensor], Tensor, Any]:
        """∇J(w_k), J(w_k) and the new buffers.

        ``functorch``: :func:`torch.func.grad` (composes with an outer ``jvp``); otherwise
        ``torch.autograd.grad``, with ``create_graph`` when the caller records a graph
        (reverse mode) and without under ``torch.no_grad`` (a checkpointing pass).
        """
        if functorch:
            grads, (loss, buffers) = torch.func.grad(objective, has_aux=True)(state.params, state.buffers)
            return grads, loss, buffers
        create_graph = torch.is_grad_enabled()
        with torch.enable_grad():
            params = {
                k: v if v.requires_grad else v.detach().requires_grad_() for k, v in state.params.items()
            }
            loss, (_, buffers) = objective(params, state.buffers)
            grads = torch.autograd.grad(loss, list(params.values()), create_graph=create_graph)
        if not create_graph:
            loss, buffers = loss.detach(), {k: v.detach() for k, v in buffers.items()}
        return dict(zip(params, grads, strict=True)), loss, buffers

    def step(
        self, state: RunState, opt: GradientTransformation, check: bool = True, functorch: bool = False
    ) -> RunState:
        """One optimizer step: w ← w + u(∇J(w)), pure (new tensors, the old state untouched)."""
        k = state.step
        x, y = self.batch(k)
        opt_state = opt.init(state.params) if state.opt_state is None else state.opt_state

        def objective(params: dict[str, Tensor], buffers: dict[str, Tensor]) -> tuple[Tensor, Any]:
            loss, new_buffers = self._forward(params, buffers, x, y, train=True)
            return loss, (loss, new_buffers)

        if self._dropout:  # the same dropout masks in every replay of step k
            with forked_rng(derive_seed(self.seed, "hpo-dropout", k)):
                grads, loss, buffers = self._gradient(objective, state, functorch)
        else:
            grads, loss, buffers = self._gradient(objective, state, functorch)
        if check:
            value = float(loss.detach()) if not _is_wrapped(loss) else float(_primal(loss))
            if k == 0 and math.isfinite(value):
                self._first_loss = abs(value)
            # Divergence: inf/NaN, or a loss grown DIVERGENCE_FACTOR-fold over the first step's,
            # (GD past 2/λ_max grows geometrically; its hypergradient would overflow next).
            if not math.isfinite(value) or abs(value) > DIVERGENCE_FACTOR * max(self._first_loss, 1e-30):
                raise DivergenceError(k, value, self.hyper["lr"], self.problem.stable_lr_bound)
        updates, opt_state = opt.update(grads, opt_state, state.params)
        return RunState(apply_updates(state.params, updates), buffers, opt_state, k + 1)

    def final_loss(self, state: RunState) -> Tensor:
        """The loss the hypergradient is of: training or held-out loss in eval mode after T steps."""
        p = self.problem
        x, y = (p.x, p.y) if self.loss == "train" else (p.x_valid, p.y_valid)
        return self._forward(state.params, state.buffers, x, y, train=False)[0]

    def run(
        self,
        hp: Mapping[str, Tensor | float],
        state: RunState | None = None,
        until: int | None = None,
        detach: bool = False,
        on_step: Any = None,
        functorch: bool = False,
    ) -> RunState:
        """Steps from ``state`` (the start by default) up to step ``until`` (T by default)."""
        opt = self.make_optimizer(hp)
        state = self.init_state() if state is None else state
        for _ in range(state.step, self.steps if until is None else until):
            state = self.step(state, opt, functorch=functorch)
            if detach:
                state = detach_state(state)
            if on_step is not None:
                on_step(state)
        return state


def detach_state(state: RunState) -> RunState:
    leaves, spec = flatten_state((state.params, state.buffers, state.opt_state))
    params, buffers, opt_state = unflatten_state([t.detach() for t in leaves], spec)
    return RunState(params, buffers, opt_state, state.step)


def _is_wrapped(t: Tensor) -> bool:
    return torch._C._functorch.is_functorch_wrapped_tensor(t)


def _primal(t: Tensor) -> Tensor:
    while torch._C._functorch.is_functorch_wrapped_tensor(t):
        t = torch._C._functorch.get_unwrapped(t)
    return t
