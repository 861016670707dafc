"""The command-line options that name a problem (DESIGN.md, "Problems"), shared by hpo, scaling and loops.

One place declares ``--problem``, the linreg sizes ``--n``/``--d``, ``--data`` and the
model factory's loss, so that every command that trains something takes them with the same
names, ranges and help; each command adds its own options beside them. The command receives
them as one :class:`ProblemChoice`, which checks and loads the problem, instead of five
parameters repeated in every signature.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from trainlab.errors import ArgumentError

if TYPE_CHECKING:
    from trainlab.problems import Problem

__all__ = ["MAX_STEPS", "PROBLEM_HELP", "ProblemChoice", "finite", "problem_options", "steps_range"]

PROBLEM_HELP = ("linreg, linreg:PATH.npz (arrays X, t), digits-mlp, or a model factory "
                "package.module:factory(args) / path/file.py:factory(args) with --data.")

# Sizes past these are refused by click before a linreg problem is even estimated.
_MAX_N, _MAX_D = 10**6, 10**7
#: Most training steps a command accepts (--steps, --max-steps, --meta-steps × --steps is the
#: caller's). A step of the smallest problem costs about 0.5 ms on 2 cores (hpo hypergrad on
#: linreg: 20,000 steps in 11 s), so 10^6 steps are minutes to hours; --steps 1e11 ran silently
#: for years' worth of steps instead of being refused.
MAX_STEPS = 10**6


def steps_range() -> click.IntRange:
    """The type of every option that counts training steps: 1..:data:`MAX_STEPS`."""
    return click.IntRange(1, MAX_STEPS)


@dataclass(frozen=True)
class ProblemChoice:
    """What the problem options chose: ``--problem`` (``spec``), ``--data``, the loss, and ``--n``/``--d``
    (None where the command takes no sizes). ``loss_flag`` is the flag the loss came from."""

    spec: str
    data: str | None
    loss: str | None
    n: int | None = None
    d: int | None = None
    loss_flag: str = "--loss"

    @property
    def builtin(self) -> bool:
        """linreg, linreg:PATH.npz or digits-mlp: a problem that brings its own data and loss."""
        return self.spec in ("linreg", "digits-mlp") or self.spec.startswith("linreg:")

    def refuse_unused(self, *, spec: bool = True) -> None:
        """Refuse ``--data`` or the loss beside a built-in problem (they go with a model factory and
        would be ignored), and (``spec``) a ``--problem`` that is neither built in nor a factory reference."""
        from trainlab.loader import is_factory_ref

        if self.builtin and (self.data is not None or self.loss is not None):
            flag, value = ("--data", self.data) if self.data is not None else (self.loss_flag, self.loss)
            raise ArgumentError(
                flag,
                value,
                f"no {flag} with --problem {self.spec} (it brings its own data "
                f"and loss; --data/{self.loss_flag} go with a MODULE factory)",
            )
        if spec and not self.builtin and not is_factory_ref(self.spec):
            raise ArgumentError("--problem", self.spec, PROBLEM_HELP)

    def load(self, seed: int) -> Problem:
        """The problem (:func:`trainlab.problems.load_problem`), its data and weights drawn from ``seed``
        (after :meth:`refuse_unused`: a --data beside a built-in problem is refused, not ignored)."""
        from trainlab.problems import load_problem

        self.refuse_unused(spec=False)  # (a bad spec: load_problem's own message)

        sizes = {} if self.n is None or self.d is None else {"n": self.n, "d": self.d}
        return load_problem(self.spec, seed=seed, data=self.data, loss=self.loss, **sizes)


def problem_options(*, default: str | None, sizes: bool = True,
                    loss_flag: str = "--loss") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a click command with the problem options, passed to it as one ``choice: ProblemChoice``.

    ``default`` is the default ``--problem`` (None: the option is required); ``sizes`` adds
    ``--n``/``--d`` for ``linreg``; ``loss_flag`` names the model factory's training loss
    (hpo calls it ``--criterion`` because its ``--loss`` chooses train or held-out loss).
    """
    # no default= at all when required: click 8.5 treats an explicit default=None as a default given
    # and lets a missing --problem through
    problem = {"required": True} if default is None else {"default": default, "show_default": True}
    options = [click.option("--problem", help=PROBLEM_HELP, **problem)]
    if sizes:
        options += [
            click.option("--n", "n", type=click.IntRange(1, _MAX_N), default=20, show_default=True,
                         help="linreg: examples."),
            click.option("--d", "d", type=click.IntRange(1, _MAX_D), default=100, show_default=True,
                         help="linreg: parameters (more than --n)."),
        ]
    options += [
        click.option("--data", default=None, help="For a model factory: digits or PATH.npz (arrays x, y)."),
        # its own name, so that a command may have a --loss of its own (hpo's train or valid)
        click.option(loss_flag, "problem_loss", type=click.Choice(["mse", "cross-entropy"]), default=None,
                     help="For a model factory: its training loss [default: cross-entropy]."),
    ]

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)  # keeps the docstring (the command's help) and the options declared below
        def command(*, problem: str, data: str | None, problem_loss: str | None, **kwargs: Any) -> Any:
            choice = ProblemChoice(problem, data, problem_loss, n=kwargs.pop("n", None),
                                   d=kwargs.pop("d", None), loss_flag=loss_flag)
            return fn(choice=choice, **kwargs)

        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def finite(kind: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A click callback refusing NaN and ±inf (click's FloatRange lets NaN through, and inf past a
    lower bound): "nan is not a learning rate (a finite number)"."""

    def check(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is not None and not math.isfinite(value):
            raise click.BadParameter(f"{value!r} is not {kind} (a finite number)")
        return value

    return check
