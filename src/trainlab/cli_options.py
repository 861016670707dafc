"""The options that hpo, loops and scaling share beside the problem: ``--seed``, ``--format``, figure files.

Each is declared once here, so the commands take them with the same type, range, default and
help, and refuse a bad value with the same one-line error; :func:`combine` stacks a part's own
set of them into one decorator. The problem's options are in :mod:`trainlab.problem_options`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

__all__ = ["FORMATS", "SEED_RANGE", "FigureFile", "combine", "format_option", "seed_option"]

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

#: Seeds are 64-bit (numpy's and torch's generators take any of them; 2^64 would not fit).
SEED_RANGE = click.IntRange(0, 2**63 - 1)
#: What ``--format`` prints: a table for people, one JSON object on stdout for tools.
FORMATS = ("table", "json")


def combine(*decorators: Decorator) -> Decorator:
    """One decorator applying ``decorators`` as if they were stacked in this order, the first on top."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        for decorator in reversed(decorators):
            fn = decorator(fn)
        return fn

    return decorate


def seed_option(flag: str = "--seed", *, help: str | None = None) -> Decorator:
    """A seed: a whole number in 0..2^63-1, default 0."""
    return click.option(flag, type=SEED_RANGE, default=0, show_default=True, help=help)


def format_option() -> Decorator:
    """``--format table|json``, passed to the command as ``fmt``."""
    return click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
                        help="table for people, json (one object on stdout) for tools.")


@dataclass(frozen=True)
class FigureFile:
    """A .png figure that a command writes where its option ``flag`` names one, its data beside it as .json.

    ``make_folders=False`` refuses a file in a folder that does not exist yet; ``not_png``, where
    given, is what the refusal of a name not ending in .png says is valid (checked first).
    """

    flag: str
    make_folders: bool = True
    not_png: str | None = None

    def overwrite_option(self) -> Decorator:
        """``--overwrite``: replace the figure and its .json where they exist."""
        return click.option("--overwrite", is_flag=True,
                            help=f"Replace an existing {self.flag} and its .json.")

    def check(self, path: str | os.PathLike[str] | None, overwrite: bool) -> Path | None:
        """The figure's path (None: no figure), refused before any work: not a .png file name, a
        folder, under a file, or existing (it or its .json) unless ``overwrite``."""
        if path is None:
            return None
        from trainlab.errors import ArgumentError
        from trainlab.runs import check_output_file

        if self.not_png is not None and Path(path).suffix.lower() != ".png":
            raise ArgumentError(self.flag, os.fspath(path), self.not_png)
        return check_output_file(self.flag, path, [".png"], overwrite=overwrite, companions=[".json"],
                                 make_folders=self.make_folders)

    def write(self, fig: Any, path: Path, data: dict[str, Any]) -> None:
        """Save ``fig`` to ``path`` and ``data`` beside it; an OS error is one line naming the flag."""
        from trainlab.plotting import save_figure
        from trainlab.runs import output_errors

        with output_errors(self.flag, path):
            save_figure(fig, path, data)
