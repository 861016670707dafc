"""Learning the learning rate: offline through the unrolled run, or online while training.

- :func:`tune_lr` (offline): gradient descent on log η (or on a per-step schedule log η_k)
  using the hypergradient dL_T/dη of the loss after T steps (:mod:`trainlab.hpo.hypergrad`).
  The meta-optimizer is iRprop− on log η: positivity for free, and a step (starting at
  ``meta_lr`` in log space) that grows while the sign of the hypergradient holds and halves
  when it flips, so it neither cares about the scale of L_T, which falls by orders of
  magnitude, nor stalls after the steep wall past the optimum (Adam on η did both here).
  A meta-step whose run diverges is undone and the step quartered.
- :func:`online_lr`: one training run with :class:`~trainlab.hpo.online.SGDHD` /
  :class:`~trainlab.hpo.online.AdamHD`, which adapt η every step from the last two
  gradients; greedy, hence short-horizon biased (see :mod:`trainlab.hpo.online`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from trainlab.errors import ArgumentError, TrainlabError
from trainlab.hpo.hypergrad import hypergradient_of
from trainlab.hpo.online import SGDHD, AdamHD
from trainlab.hpo.unroll import DIVERGENCE_FACTOR, DivergenceError, Unroll
from trainlab.problems import Problem
from trainlab.seeding import derive_seed, forked_rng, generator

__all__ = ["GridSearch", "LearnedRate", "default_start_lr", "grid_search_lr", "online_lr", "tune_lr"]


@dataclass
class LearnedRate:
    """A learned rate, the loss it reaches, and its history (arrays behind the figure).

    ``history``: offline, one entry per meta-iteration ``{"iteration", "lr", "loss",
    "hypergradient"}`` (the loss after T steps at that iteration's η); online, one per
    training step ``{"step", "lr", "loss"}``.
    """

    lr: float
    loss: float
    method: str
    steps: int
    start_lr: float
    start_loss: float
    history: list[dict[str, float]] = field(default_factory=list)
    schedule: list[float] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = {
            "lr": self.lr,
            "loss": self.loss,
            "method": self.method,
            "steps": self.steps,
            "start_lr": self.start_lr,
            "start_loss": self.start_loss,
            "history": self.history,
        }
        if self.schedule is not None:
            out["schedule"] = self.schedule
        return out

    def plot(self, ax=None):  # noqa: ANN001, ANN201  (a matplotlib Axes)
        from trainlab.plotting import subplots_or

        fig, ax = subplots_or(ax)
        key = "iteration" if self.method == "offline" else "step"
        ax.plot([h[key] for h in self.history], [h["lr"] for h in self.history], label=f"η ({self.method})")
        ax.set_yscale("log")
        ax.set_xlabel("meta-iteration" if self.method == "offline" else "training step")
        ax.set_ylabel("learning rate η")
        return fig


def default_start_lr(problem: Problem) -> float:
    """A deliberately poor start: 1% of the stable bound 2/λ_max where it is known, else 1e-3."""
    return 0.01 * problem.stable_lr_bound if problem.stable_lr_bound else 1e-3


def tune_lr(
    problem: Problem,
    steps: int,
    *,
    lr: float | None = None,
    meta_steps: int = 60,
    meta_lr: float = 0.2,
    optimizer: str = "sgd",
    loss: str = "train",
    mode: str | None = None,
    schedule: bool = False,
    batch_size: int | None = None,
    seed: int = 0,
    hyper: dict[str, float] | None = None,
) -> LearnedRate:
    """Offline: descend L_T(η) (or L_T(η₁…η_T) with ``schedule``) from ``lr`` through the unrolled run.

    ``mode`` defaults to ``reverse`` for T ≤ 100 and ``checkpoint`` beyond.
    """
    if not isinstance(meta_steps, int) or meta_steps < 1:
        raise ArgumentError("meta_steps", meta_steps, "a positive number of meta-iterations")
    if not (math.isfinite(meta_lr) and meta_lr > 0):
        raise ArgumentError("meta_lr", meta_lr, "a positive step in log η")
    lr0 = default_start_lr(problem) if lr is None else lr
    mode = mode or ("reverse" if steps <= 100 else "checkpoint")
    wrt = ("schedule",) if schedule else ("lr",)
    base = Unroll(problem, steps, optimizer, {**(hyper or {}), "lr": lr0}, loss, batch_size, seed)
    log_eta = torch.full((steps,) if schedule else (), math.log(lr0), dtype=torch.float64)
    delta = torch.full_like(log_eta, meta_lr)  # Rprop's per-coordinate step in log η
    prev_sign = torch.zeros_like(log_eta)
    history: list[dict[str, float]] = []
    evaluated: list[torch.Tensor] = []  # the η (per step with ``schedule``) behind each history entry
    start_loss = None
    good = log_eta.clone()
    for i in range(meta_steps):
        eta = torch.exp(log_eta) if i else torch.full_like(log_eta, lr0)
        try:
            hg = _hypergradient_at(base, eta, wrt, mode, schedule)
        except TrainlabError as e:  # the run diverged (or its hypergradient overflowed)
            if not history:
                raise
            log_eta, delta, prev_sign = good.clone(), delta / 4, torch.zeros_like(prev_sign)
            if float(delta.max()) < 1e-12:
                raise TrainlabError(
                    f"tuning stalled: every step from lr={float(torch.exp(good).mean())!r} diverges ({e})"
                ) from None
            continue
        g_eta = torch.tensor(hg.hypergradient[wrt[0]], dtype=torch.float64)
        # d log L/d log η = η (dL/dη)/L: its sign is all Rprop uses.
        g = g_eta * eta / max(hg.loss, 1e-300)
        if start_loss is None:
            start_loss = hg.loss
        history.append(
            {"iteration": i, "lr": float(eta.mean()), "loss": hg.loss, "hypergradient": float(g_eta.sum())}
        )
        evaluated.append(eta.clone())
        good = log_eta.clone()
        # iRprop− (Riedmiller & Braun 1993; Igel & Hüsken 2000): grow the step 1.2× while the
        # sign of the meta-gradient holds, halve it and skip the move when it flips.
        sign = torch.sign(g)
        flip = sign * prev_sign < 0
        delta = torch.where(flip, delta * 0.5, torch.where(sign * prev_sign > 0, delta * 1.2, delta)).clamp(
            max=1.0
        )
        sign = torch.where(flip, torch.zeros_like(sign), sign)
        log_eta = log_eta - sign * delta
        prev_sign = sign
    # the best rate seen (the last, once converged), and the schedule that gave its loss
    best = min(range(len(history)), key=lambda j: history[j]["loss"])
    last, eta = history[best], evaluated[best]
    return LearnedRate(
        lr=last["lr"],
        loss=last["loss"],
        method="offline",
        steps=steps,
        start_lr=lr0,
        start_loss=float(start_loss),
        history=history,
        schedule=[float(e) for e in eta] if schedule else None,
        info={"mode": mode, "meta_lr": meta_lr},
    )


def _hypergradient_at(base: Unroll, eta: torch.Tensor, wrt: tuple[str, ...], mode: str, schedule: bool):
    u = Unroll(
        base.problem,
        base.steps,
        base.optimizer,
        {**base.hyper, "lr": float(eta.mean())},
        base.loss,
        base.batch_size,
        base.seed,
        lr_schedule=eta if schedule else None,
    )
    return hypergradient_of(u, wrt, mode, check_memory=False)


def online_lr(
    problem: Problem,
    steps: int,
    *,
    lr: float | None = None,
    hypergrad_lr: float = 0.02,
    optimizer: str = "sgd",
    multiplicative: bool = True,
    batch_size: int | None = None,
    seed: int = 0,
) -> LearnedRate:
    """Online: train ``steps`` steps with SGD-HD/Adam-HD, η adapting every step; η and loss per step."""
    if optimizer not in ("sgd", "adam"):
        raise ArgumentError("optimizer", optimizer, "sgd or adam for online hypergradient descent")
    if not isinstance(steps, int) or steps < 1:
        raise ArgumentError("steps", steps, "a positive number of training steps")
    lr0 = default_start_lr(problem) if lr is None else lr
    model = problem.fresh_model()
    model.train()
    params = list(model.parameters())
    cls = SGDHD if optimizer == "sgd" else AdamHD
    opt = cls(params, lr=lr0, hypergrad_lr=hypergrad_lr, multiplicative=multiplicative)
    gen = generator(seed, "hpo-online-batches")
    history: list[dict[str, float]] = []
    first = math.inf
    for k in range(steps):
        x, y = problem.sample_batch(batch_size, gen) if batch_size else (problem.x, problem.y)
        opt.zero_grad()
        with forked_rng(derive_seed(seed, "hpo-online-dropout", k)):  # dropout: seeded, global RNG kept
            loss = problem.criterion(model(x), y)
        value = float(loss.detach())
        first = value if k == 0 else first
        if not math.isfinite(value) or abs(value) > DIVERGENCE_FACTOR * max(abs(first), 1e-30):
            raise DivergenceError(k, value, opt.param_groups[0]["lr"], problem.stable_lr_bound,
                                  argument=f"the online rate (from lr {lr0:g}, "
                                           f"--hypergrad-lr {hypergrad_lr:g})")
        history.append({"step": k, "lr": opt.param_groups[0]["lr"], "loss": value})
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        final = float(problem.criterion(model(problem.x), problem.y))
    return LearnedRate(
        lr=opt.param_groups[0]["lr"],
        loss=final,
        method="online",
        steps=steps,
        start_lr=lr0,
        start_loss=history[0]["loss"],
        history=history,
        info={"optimizer": optimizer, "hypergrad_lr": hypergrad_lr, "multiplicative": multiplicative},
    )


@dataclass
class GridSearch:
    """L_T(η) on a grid of constant rates, by training, and the best grid point."""

    etas: list[float]
    losses: list[list[float]]  # losses[i][j]: after steps[i] steps at etas[j]
    steps: list[int]

    def best(self, i: int = -1) -> tuple[float, float]:
        """(η, L) of the lowest finite loss after ``steps[i]`` steps."""
        row = self.losses[i]
        j = min((j for j in range(len(row)) if math.isfinite(row[j])), key=lambda j: row[j])
        return self.etas[j], row[j]


def grid_search_lr(problem: Problem, steps: int | list[int], etas: list[float]) -> GridSearch:
    """Train full-batch GD at every η of ``etas`` and record the training loss after each of ``steps``.

    For the linear least-squares problems the runs are one batch (R, d) with a learning rate
    per run ((R, 1) tensor, :func:`trainlab.functional.sgd`); otherwise one run per η.
    """
    from trainlab.functional import apply_updates, sgd
    from trainlab.problems import LinearModel

    wanted = sorted({steps} if isinstance(steps, int) else set(steps))
    if not wanted or wanted[0] < 1:
        raise ArgumentError("steps", steps, "positive numbers of steps")
    if isinstance(problem.model, LinearModel) and problem.loss_name == "mse":
        X, t = problem.x, problem.y
        n = len(t)
        lr = torch.tensor(etas, dtype=X.dtype).reshape(-1, 1)  # (R, 1)
        W = problem.model.weight.detach().expand(len(etas), -1).clone()  # (R, d)
        opt = sgd(lr=lr)
        state = opt.init(W)
        out: dict[int, list[float]] = {}
        for k in range(1, wanted[-1] + 1):
            grad = (2 / n) * (W @ X.T - t) @ X  # ∇J = (2/n)Xᵀ(Xw − t), (R, d)
            updates, state = opt.update(grad, state, W)
            W = apply_updates(W, updates)
            if k in wanted:
                out[k] = ((W @ X.T - t) ** 2).mean(dim=1).tolist()  # (R,)
        return GridSearch(list(etas), [out[k] for k in wanted], wanted)
    rows: dict[int, list[float]] = {k: [] for k in wanted}
    for eta in etas:
        recorded = _losses_along_run(Unroll(problem, wanted[-1], "sgd", {"lr": eta}), set(wanted))
        for k in wanted:
            rows[k].append(recorded.get(k, math.inf))
    return GridSearch(list(etas), [rows[k] for k in wanted], wanted)


def _losses_along_run(u: Unroll, at: set[int]) -> dict[int, float]:
    """The final-loss measure after each step in ``at`` (inf from a diverging step on)."""
    recorded: dict[int, float] = {}

    def on_step(s: Any) -> None:
        if s.step in at:
            recorded[s.step] = float(u.final_loss(s))

    with torch.no_grad():
        try:
            u.run(u.constant(u.hyper_tensors(()), ()), on_step=on_step)
        except DivergenceError:
            pass
    return recorded
