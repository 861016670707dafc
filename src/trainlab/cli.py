"""The ``trainlab`` command: ``list``, ``verify``, ``report``, and each part's sub-commands.

This is the one place that turns errors into exit codes:

    0  success (verify: every claim that ran passed or was skipped)
    1  verify: a claim failed or raised
    2  bad input: one line on stderr naming the argument, its value and what is valid
  130  interrupted (Ctrl-C); verify writes the results of the claims already done

Each part's ``cli`` module exposes a ``click.Group`` called ``group``, mounted here under
the part's name (``trainlab convnets shape …``).
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from trainlab import __version__
from trainlab.errors import TrainlabError

__all__ = ["PART_CLIS", "cli", "main"]

#: Sub-command groups: name -> module exposing a ``click.Group`` called ``group``.
PART_CLIS: dict[str, str] = {
    "optim": "trainlab.optim.cli",
    "convnets": "trainlab.convnets.cli",
    "colourize": "trainlab.colourize.cli",
}

_STATUS_STYLE = {"passed": "green", "failed": "red", "error": "yellow", "skipped": "dim"}
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _out() -> Console:
    return Console(highlight=False)


def _err() -> Console:
    return Console(stderr=True, highlight=False)


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="trainlab")
def cli() -> None:
    """Run the theory of neural-network training: claims, measurements, verdicts."""


@cli.command("list")
@click.argument("patterns", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_claims(patterns: tuple[str, ...], as_json: bool) -> None:
    """List the claims (id, section, statement); PATTERNS are globs on ids such as 'optim.*'."""
    from trainlab.claims import select

    claims = select(patterns)
    if as_json:
        click.echo(json.dumps([{"id": c.id, "section": c.section, "statement": c.statement}
                               for c in claims], indent=2, ensure_ascii=False))
        return
    table = Table("id", "section", "statement")
    for c in claims:
        table.add_row(c.id, c.section, c.statement)
    _out().print(table)


@cli.command()
@click.argument("patterns", nargs=-1)
@click.option("--scale", type=click.Choice(["quick", "full"]), default="quick", show_default=True,
              help="quick: seconds per claim; full: minutes.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for every random choice.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Run folder [default: runs/verify-<UTC time>].")
def verify(patterns: tuple[str, ...], scale: str, seed: int, out: Path | None) -> None:
    """Run claims (all, or those matching PATTERNS), compare with theory, write a report.

    Exit status: 0 if every claim that ran passed, 1 if any failed or raised, 2 on bad input.
    """
    from trainlab.claims import run_claims, select
    from trainlab.runs import make_run_dir

    claims = select(patterns)  # a bad pattern fails before anything is written
    run_dir = make_run_dir(out, "verify")
    err = _err()
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=err, transient=True)
    with progress:
        task = progress.add_task("claims", total=len(claims))

        def on_progress(done: int, total: int, message: str) -> None:
            progress.update(task, completed=done, description=_short(message, 50))

        try:
            result = run_claims([c.id for c in claims], scale=scale, seed=seed, out_dir=run_dir,
                                progress=on_progress)
        except KeyboardInterrupt:
            progress.stop()
            err.print(f"interrupted: results of the finished claims are in {run_dir}/results.json")
            sys.exit(130)
    table = Table("claim", "status", "measured vs expected", "s",
                  title=f"trainlab verify ({scale} scale, seed {seed})")
    for c in result.results["claims"]:
        style = _STATUS_STYLE.get(c["status"], "")
        table.add_row(c["id"], f"[{style}]{c['status']}[/]", c["summary"], f"{c['seconds']:.1f}")
    out_console = _out()
    out_console.print(table)
    statuses = list(result.statuses.values())
    counts = ", ".join(f"{statuses.count(s)} {s}" for s in ("passed", "failed", "error", "skipped")
                       if statuses.count(s))
    out_console.print(f"{counts}. Run folder: {run_dir} (open {run_dir / 'report.html'})",
                      soft_wrap=True)
    if not result.ok:
        sys.exit(1)


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
def report(run_dir: Path) -> None:
    """Re-render report.md and report.html from RUN_DIR/results.json (nothing is re-run)."""
    from trainlab.report import write_report

    md, page = write_report(run_dir)
    click.echo(f"wrote {md} and {page}")


for _name, _module in PART_CLIS.items():
    cli.add_command(importlib.import_module(_module).group, name=_name)


def _usage_line(e: click.UsageError) -> str:
    command = e.ctx.command_path if e.ctx is not None else "trainlab"
    message = " ".join(e.format_message().split())
    return f"{command}: error: {message} (see `{command} --help`)"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    try:
        cli.main(args=argv, prog_name="trainlab", standalone_mode=False)
    except click.UsageError as e:
        print(_usage_line(e), file=sys.stderr)
        return 2
    except TrainlabError as e:
        print(f"trainlab: error: {' '.join(str(e).split())}", file=sys.stderr)
        return e.exit_code
    except (KeyboardInterrupt, click.Abort):
        print("trainlab: interrupted", file=sys.stderr)
        return 130
    except click.exceptions.Exit as e:
        return e.exit_code
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BrokenPipeError:  # `trainlab list | head`
        return 0
    return 0
