"""Consoles and progress bars: the one place that decides how trainlab writes to a terminal.

On a terminal rich wraps to its width; piped into a file or a log nothing is wrapped
(rich's default of 80 columns split the verdict table into 106 lines and epoch lines
mid-number), and progress bars are not drawn at all.
"""

from __future__ import annotations

import io
import json
import os
import sys
from typing import IO, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = ["echo_json", "progress_bar", "stderr_console", "stdout_console"]

_UNWRAPPED = 100_000  # "no wrapping": wider than any line trainlab prints


class _Console(Console):
    """rich's console, except that a reader who stops reading (``trainlab verify | head``) only
    silences it: rich's own handler exits with status 1, which reads as a failed claim. The
    command goes on and exits with its own status."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.file.fileno())  # Python's flush at exit stays quiet too
            os.close(devnull)
        except (OSError, ValueError, io.UnsupportedOperation):
            pass


def _console(file: IO[str]) -> Console:
    tty = file.isatty()
    return _Console(file=file, highlight=False, width=None if tty else _UNWRAPPED,
                    soft_wrap=not tty, force_terminal=None)


def stdout_console() -> Console:
    return _console(sys.stdout)


def stderr_console() -> Console:
    return _console(sys.stderr)


def progress_bar(console: Console | None = None) -> Progress:
    """A transient progress bar on stderr; drawn only on a terminal."""
    console = console or stderr_console()
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=True,
                    disable=not console.is_terminal)


def echo_json(obj: Any) -> None:
    """``--format json``: exactly one JSON object on stdout, one line.

    Every command's JSON goes through here, so all of them write numbers the same way: NumPy
    and torch values as plain numbers, non-finite floats as the strings "nan", "inf", "-inf"
    (as in results.json; strict JSON has no NaN), non-ASCII text as it is.
    """
    from trainlab.runs import to_jsonable

    sys.stdout.write(json.dumps(to_jsonable(obj), allow_nan=False, ensure_ascii=False) + "\n")
