"""Consoles and progress bars: the one place that decides how trainlab writes to a terminal.

On a terminal rich wraps to its width and tables are drawn with boxes. Piped into a file or
a log, nothing is wrapped (rich's default of 80 columns split the verdict table into 106 lines
and epoch lines mid-number), progress bars are not drawn at all, and every table is printed as
plain aligned columns that fit :data:`LOG_WIDTH` characters (:func:`plain_table`): a cell too
long for its column is cut with "…" (the whole text is in the command's JSON or report).
Drawn with boxes into a log, ``trainlab verify``'s table had rows of up to 1,794 characters.
"""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Sequence
from typing import IO, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

__all__ = ["LOG_WIDTH", "echo_json", "plain_table", "progress_bar", "stderr_console", "stdout_console"]

_UNWRAPPED = 100_000  # "no wrapping": wider than any line trainlab prints
#: Widest line a table prints when the output is not a terminal (a log, a file, a pipe).
LOG_WIDTH = 100
_GAP = "  "
_MIN_CELL = 8  # a column is never cut narrower than this (or its header)


def _cell_text(cell: Any) -> str:
    """A table cell as one line of plain text (markup and styles dropped, newlines as spaces)."""
    from rich.text import Text

    text = cell.plain if isinstance(cell, Text) else Text.from_markup(str(cell)).plain
    return " ".join(text.split())


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def plain_table(table: Table, width: int = LOG_WIDTH) -> list[str]:
    """``table`` as plain lines, columns separated by two spaces, each line at most ``width``.

    Columns keep their natural width while the line fits; otherwise the widest columns are
    narrowed, widest first, down to :data:`_MIN_CELL` characters (or their header; the first
    column, which names the row, is never narrowed), and cells
    longer than their column end in "…". Columns rich right-aligns are right-aligned. The
    title comes first and the caption last, one line each and whole (they may name paths).
    """
    headers = [_cell_text(c.header) for c in table.columns]
    rows = [[_cell_text(cell) for cell in col.cells] for col in table.columns]  # column-major
    rows_t = list(zip(*rows, strict=True)) if rows else []
    natural = [max([len(h)] + [len(r) for r in col]) for h, col in zip(headers, rows, strict=True)]
    floor = [min(n, max(_MIN_CELL, len(h))) for n, h in zip(natural, headers, strict=True)]
    floor[0] = natural[0]  # the first column names the row (a claim id, an optimizer): kept whole
    widths = list(natural)
    budget = width - len(_GAP) * (len(widths) - 1)
    while sum(widths) > budget:
        i = max(range(len(widths)), key=lambda j: widths[j] - floor[j])
        if widths[i] <= floor[i]:
            break  # every column at its floor: the line stays longer than width
        widths[i] = max(floor[i], widths[i] - (sum(widths) - budget))

    def line(cells: Sequence[str]) -> str:
        out = []
        for cell, w, col in zip(cells, widths, table.columns, strict=True):
            text = _cut(cell, w)
            out.append(text.rjust(w) if col.justify == "right" else text.ljust(w))
        return _GAP.join(out).rstrip()

    lines = [_cell_text(table.title)] if table.title else []  # one line each, never cut (paths)
    if table.show_header:
        lines.append(line(headers))
    lines.extend(line(r) for r in rows_t)
    if table.caption:
        lines.append(_cell_text(table.caption))
    return lines


class _Console(Console):
    """rich's console, except that

    - a reader who stops reading (``trainlab verify | head``) only silences it: rich's own
      handler exits with status 1, which reads as a failed claim. The command goes on and
      exits with its own status;
    - off a terminal, a table is printed as :func:`plain_table` lines.
    """

    #: None: tables as plain lines off a terminal, with boxes on one; True / False: always / never.
    plain_tables: bool | None = None

    @property
    def tables_are_plain(self) -> bool:
        """Whether :meth:`print` prints a table as :func:`plain_table` lines."""
        return (not self.is_terminal) if self.plain_tables is None else self.plain_tables

    def print(self, *objects: Any, **kwargs: Any) -> None:
        if not self.tables_are_plain or not any(isinstance(o, Table) for o in objects):
            super().print(*objects, **kwargs)
            return
        for o in objects:
            if isinstance(o, Table):
                for text in plain_table(o):
                    super().print(text, markup=False, highlight=False, soft_wrap=True)
            else:
                super().print(o, **kwargs)

    def on_broken_pipe(self) -> None:
        self.quiet = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.file.fileno())  # Python's flush at exit stays quiet too
            os.close(devnull)
        except (OSError, ValueError, io.UnsupportedOperation):
            pass


def _console(file: IO[str], plain_tables: bool | None = None) -> _Console:
    tty = file.isatty()
    console = _Console(file=file, highlight=False, width=None if tty else _UNWRAPPED,
                       soft_wrap=not tty, force_terminal=None)
    console.plain_tables = plain_tables
    return console


def stdout_console(plain_tables: bool | None = None) -> _Console:
    """The console for a command's output. ``plain_tables``: None prints tables with boxes on a
    terminal and as :func:`plain_table` lines elsewhere; True or False forces one way."""
    return _console(sys.stdout, plain_tables)


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
