"""The command-line options that name a problem (DESIGN.md, "Problems"), shared by hpo, scaling and loops.

One place declares ``--problem``, the linreg sizes ``--n``/``--d``, ``--data`` and the
model factory's loss, so that every command that trains something takes them with the same
names, ranges and help; each command adds its own options beside them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import click

__all__ = ["MAX_STEPS", "PROBLEM_HELP", "problem_options", "steps_range"]

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


def problem_options(*, default: str | None, sizes: bool = True,
                    loss_flag: str = "--loss") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a click command with the problem options.

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
        click.option(loss_flag, type=click.Choice(["mse", "cross-entropy"]), default=None,
                     help="For a model factory: its training loss [default: cross-entropy]."),
    ]

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


def finite(kind: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A click callback refusing NaN and ±inf (click's FloatRange lets NaN through, and inf past a
    lower bound): "nan is not a learning rate (a finite number)"."""

    def check(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is not None and not math.isfinite(value):
            raise click.BadParameter(f"{value!r} is not {kind} (a finite number)")
        return value

    return check
