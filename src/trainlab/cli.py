"""The ``trainlab`` command: ``list``, ``verify``, ``report``, and each part's sub-commands.

This is the one place that turns errors into exit codes:

    0  success (verify: every claim that ran passed or was skipped); a bare group prints its help
    1  verify: a claim failed or raised
    2  bad input: one line on stderr naming the argument, its value and what is valid
       (usage, a path that cannot be read or written, work too large for this machine)
    3  an internal error (a bug of trainlab's, never the user's input): one line on stderr,
       "trainlab: internal error: <type>: <message> (... the traceback saved in <file>)", the
       file in $TRAINLAB_CRASH_DIR, else the command's run folder, else the temporary folder
       (the traceback printed instead with ``--debug`` or TRAINLAB_DEBUG=1). A failure inside
       the user's code run by trainlab (a factory, a forward pass) is exit 2; a bug of
       trainlab's own code called there (a convnets rule) is exit 3: see
       :func:`trainlab.errors.raised_by_trainlab`
  130  interrupted (Ctrl-C); verify writes the results of the claims already done

Each part's ``cli`` module exposes a ``click.Group`` called ``group``, mounted here under
the part's name (``trainlab convnets shape …``). Parts are imported only when their
command runs, so ``trainlab --help`` starts without importing torch.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib
import json
import os
import re
import shlex
import sys
import tempfile
import traceback
from collections.abc import Iterator
from pathlib import Path

import click

from trainlab import __version__
from trainlab.errors import ArgumentError, TrainlabError
from trainlab.runs import RUN_MARKER

__all__ = ["PART_CLIS", "cli", "main"]

#: Sub-command groups: name -> (module exposing a ``click.Group`` called ``group``, short help).
PART_CLIS: dict[str, tuple[str, str]] = {
    "optim": ("trainlab.optim.cli", "§1 Optimizers and their implicit bias: compare, path."),
    "hpo": ("trainlab.hpo.cli", "§2 Hypergradients through training: hypergrad, tune-lr."),
    "convnets": ("trainlab.convnets.cli", "§3 The network accountant: summary, symbolic, shape, rf."),
    "scaling": ("trainlab.scaling.cli", "§4 Resource trade-offs: noise-scale, sweep, fit, nqm."),
    "colourize": ("trainlab.colourize.cli", "§5 Colourization: train, eval, predict, compare."),
    "loops": ("trainlab.loops.cli", "Midterm training-loop pitfalls: sharpness, lr-find."),
}

_STATUS_STYLE = {"passed": "green", "failed": "red", "error": "yellow", "skipped": "dim"}
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class _Root(click.Group):
    """The root group: parts are loaded on first use; help lists them without loading them."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*super().list_commands(ctx), *PART_CLIS]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in PART_CLIS:
            return importlib.import_module(PART_CLIS[name][0]).group
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        own = [(n, self.commands[n].get_short_help_str(90)) for n in super().list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(own)
        with formatter.section("Parts"):
            formatter.write_dl([(n, h) for n, (_, h) in PART_CLIS.items()])


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


@click.group(cls=_Root, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="trainlab")
@click.option("--debug", is_flag=True, help="On an internal error, print the traceback instead of saving it.")
def cli(debug: bool) -> None:
    """Run the theory of neural-network training: claims, measurements, verdicts."""


@cli.command("list")
@click.argument("patterns", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_claims(patterns: tuple[str, ...], as_json: bool) -> None:
    """List the claims (id, section, statement); PATTERNS are globs on ids such as 'optim.*'."""
    from rich.table import Table

    from trainlab.claims import select
    from trainlab.console import stdout_console

    claims = select(patterns)
    if as_json:
        click.echo(json.dumps([{"id": c.id, "section": c.section, "statement": c.statement}
                               for c in claims], indent=2, ensure_ascii=False))
        return
    table = Table("id", "section", "statement")
    for c in claims:
        table.add_row(c.id, c.section, c.statement)
    stdout_console().print(table)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises KeyboardInterrupt (main thread only; restored after)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@cli.command()
@click.argument("patterns", nargs=-1)
@click.option("--scale", type=click.Choice(["quick", "full"]), default="quick", show_default=True,
              help="quick: seconds per claim; full: minutes.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True,
              help="Seed for every random choice, the optim claims' problems included (seed 0 "
              "gives the course's acceptance instances, seeds 0-2, 0-9 at full scale).")
@click.option("--out", type=click.Path(), default=None,  # a str: Path('') would silently become '.'
              help="Run folder [default: runs/verify-<UTC time>].")
@click.option("--resume", is_flag=True,
              help="Continue the run in --out: keep its finished claims (same version, scale, seed).")
@click.option("--overwrite", is_flag=True, help="Replace the run in --out, figures included.")
@click.option("--format", "fmt", type=click.Choice(["auto", "table", "plain", "json"]), default="auto",
              show_default=True,
              help="auto: a table on a terminal, plain lines in a log or pipe (one a claim, at most 100 "
              "columns; the whole summaries are in report.md and results.json); json: one JSON object.")
def verify(patterns: tuple[str, ...], scale: str, seed: int, out: str | None, resume: bool,
           overwrite: bool, fmt: str) -> None:
    """Run claims (all, or those matching PATTERNS), compare with theory, write a report.

    Exit status: 0 if every claim that ran passed, 1 if any failed or raised, 2 on bad input.
    """
    from rich.table import Column, Table

    from trainlab.claims import reusable_records, run_claims, select
    from trainlab.console import echo_json, progress_bar, stderr_console, stdout_console
    from trainlab.runs import output_errors, prepare_run_dir

    claims = select(patterns)  # a bad pattern fails before anything is written
    if resume and out is None:
        raise click.UsageError("--resume needs --out naming the run to continue")
    if resume and not (Path(out) / "results.json").is_file() and not (Path(out) / RUN_MARKER).is_file():
        # (a run stopped before its first claim finished holds only the marker: resuming it
        # starts it again)
        raise ArgumentError("--out", out, "a run folder to continue with --resume (it holds no results.json; "
                            "drop --resume to start a new run there)")
    if resume and not overwrite and Path(out).is_dir():
        # a mismatched run, or another tool's results.json, is refused before anything is written
        reusable_records(Path(out), scale, seed)
    run_dir = prepare_run_dir(out, "verify", resume=resume, overwrite=overwrite)
    err = stderr_console()
    progress = progress_bar(err)
    with progress, output_errors("--out", run_dir):
        task = progress.add_task("claims", total=len(claims))

        def on_progress(done: int, total: int, message: str) -> None:
            progress.update(task, completed=done, description=_short(message, 50))

        try:  # `kill` arrives here as KeyboardInterrupt too (main maps SIGTERM for every command)
            result = run_claims([c.id for c in claims], scale=scale, seed=seed, out_dir=run_dir,
                                resume=resume, progress=on_progress)
        except KeyboardInterrupt:
            progress.stop()
            err.print(f"interrupted: results of the finished claims are in {run_dir}/results.json "
                      f"(continue with --resume --out {shlex.quote(str(run_dir))})", markup=False)
            sys.exit(130)
    records = [c for c in result.results["claims"]
               if c["id"] in result.statuses]  # not those kept from an earlier call with other patterns
    statuses = list(result.statuses.values())
    counts = {s: statuses.count(s) for s in ("passed", "failed", "error", "skipped") if statuses.count(s)}
    if fmt == "json":
        echo_json({"scale": scale, "seed": seed, "run_dir": str(run_dir), "ok": result.ok, "counts": counts,
                   "claims": [{"id": c["id"], "status": c["status"], "reused": c["id"] in result.reused,
                               "seconds": c["seconds"], "summary": c["summary"]} for c in records]})
    else:
        out_console = stdout_console({"auto": None, "table": False, "plain": True}[fmt])
        title = f"trainlab verify ({scale} scale, seed {seed})"
        plain = out_console.tables_are_plain
        if plain:  # a log reads best with the verdict first: status, seconds, id, the summary's start
            table = Table("status", Column("s", justify="right"), "claim", "measured vs expected",
                          title=title)
        else:
            table = Table("claim", "status", "measured vs expected", "s", title=title)
        for c in records:
            kept = " (kept)" if c["id"] in result.reused else ""
            if plain:
                table.add_row(c["status"] + kept, f"{c['seconds']:.1f}", c["id"], c["summary"])
            else:
                style = _STATUS_STYLE.get(c["status"], "")
                table.add_row(c["id"], f"[{style}]{c['status']}[/]{kept}", c["summary"],
                              f"{c['seconds']:.1f}")
        out_console.print(table)
        out_console.print(f"{', '.join(f'{n} {s}' for s, n in counts.items())}. Run folder: {run_dir} "
                          f"(open {run_dir / 'report.html'})", soft_wrap=True, markup=False)
    if not result.ok:
        sys.exit(1)


@cli.command()
@click.argument("run_dir", type=click.Path())  # a str: Path('') would silently become '.'
def report(run_dir: str) -> None:
    """Re-render report.md and report.html from RUN_DIR/results.json (nothing is re-run)."""
    from trainlab.errors import ArgumentError
    from trainlab.report import write_report
    from trainlab.runs import output_errors

    if not run_dir.strip():
        raise ArgumentError("RUN_DIR", run_dir, "a run folder written by `trainlab verify`")

    with output_errors("RUN_DIR", run_dir):
        md, page = write_report(run_dir)
    click.echo(f"wrote {md} and {page}")


#: torch's CPU allocator refusing a tensor (its RuntimeError): the bytes asked for.
_ALLOCATION = re.compile(r"DefaultCPUAllocator: can't allocate memory: you tried to allocate (\d+) bytes")
_NEGATIVE_NUMBER = re.compile(r"-\d+(\.\d*)?([eE][-+]?\d+)?")


def _usage_line(e: click.UsageError) -> str:
    command = e.ctx.command_path if e.ctx is not None else "trainlab"
    message = " ".join(e.format_message().split())
    if isinstance(e, click.NoSuchOption) and _NEGATIVE_NUMBER.fullmatch(e.option_name):
        message = (f"{e.option_name!r} was read as an option, and there is none of that name: if it is "
                   "a negative number for an argument, that argument takes none (put -- before the "
                   "arguments to pass it anyway)")
    return f"{command}: error: {message} (see `{command} --help`)"


def _crash_folders() -> list[Path]:
    """Where a traceback is saved, first choice first: $TRAINLAB_CRASH_DIR if set, the run folder
    of the command that broke (beside what it wrote), the temporary folder."""
    from trainlab.runs import last_run_dir

    folders = [Path(os.environ["TRAINLAB_CRASH_DIR"])] if os.environ.get("TRAINLAB_CRASH_DIR") else []
    run = last_run_dir()
    return [*folders, *([run] if run is not None else []), Path(tempfile.gettempdir())]


def _save_traceback() -> Path | None:
    """Write the current exception's traceback to a file; its path, or None if nothing could be written."""
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%d-%H%M%S")
    torch = sys.modules.get("torch")
    text = (f"trainlab {__version__}, Python {sys.version.split()[0]}"
            + (f", torch {torch.__version__}" if torch is not None else "")
            + f", {sys.platform}\nargv: {sys.argv!r}\ncwd: {os.getcwd()!r}\n\n" + traceback.format_exc())
    for folder in _crash_folders():
        try:  # mkstemp makes no folder: a run folder removed on the way out is skipped
            fd, name = tempfile.mkstemp(prefix=f"trainlab-crash-{stamp}-", suffix=".txt", dir=folder)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            return Path(name)
        except OSError:
            continue
    return None


def _debug_requested(argv: list[str] | None) -> bool:
    args = sys.argv[1:] if argv is None else argv
    return "--debug" in args[:1] or os.environ.get("TRAINLAB_DEBUG") == "1"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    from trainlab.runs import last_run_dir

    last_run_dir(clear=True)  # an earlier command's run folder (tests call main many times)
    try:
        with _sigterm_as_interrupt():  # `kill` stops every command as Ctrl-C does (exit 130, work saved)
            cli.main(args=argv, prog_name="trainlab", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as e:  # a bare group: its help, not an error
        click.echo(e.ctx.get_help() if e.ctx is not None else cli.get_help(click.Context(cli)))
        return 0
    except click.UsageError as e:
        _say(_usage_line(e))
        return 2
    except TrainlabError as e:
        _say(f"trainlab: error: {' '.join(str(e).split())}")
        return e.exit_code
    except (KeyboardInterrupt, click.Abort):
        print("trainlab: interrupted", file=sys.stderr)
        return 130
    except click.exceptions.Exit as e:
        return e.exit_code
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BrokenPipeError:  # `trainlab list | head`
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keep Python's exit flush quiet
        except OSError:
            pass
        return 0
    except OSError as e:  # a path the user named (parts name the option where they can)
        args = sys.argv[1:] if argv is None else argv
        if not _users_fault(e, args):
            return _internal_error(e, argv)
        from trainlab.runs import describe_os_error

        if e.filename is None:  # the disk or the machine refused a read or write
            _say(f"trainlab: error: a file could not be read or written: {describe_os_error(e)}")
            return 2
        flag = _option_naming(e.filename, args)
        what = f"{flag}={os.fsdecode(e.filename)!r}" if flag else repr(os.fsdecode(e.filename))
        _say(f"trainlab: error: {what} cannot be used: {describe_os_error(e)}")
        return 2
    except MemoryError:
        _say("trainlab: error: out of memory: this work is too large for this machine (use smaller sizes)")
        return 2
    except RuntimeError as e:  # torch's allocator refusing a tensor is a RuntimeError, not a MemoryError
        asked = _ALLOCATION.search(str(e))
        if asked is None:
            return _internal_error(e, argv)
        from trainlab.memory import format_bytes

        _say("trainlab: error: out of memory: this work is too large for this machine (a tensor of "
             f"{format_bytes(int(asked.group(1)))} was asked for; use smaller sizes)")
        return 2
    except Exception as e:  # a bug: one line, traceback kept
        return _internal_error(e, argv)
    return 0


def _say(line: str) -> None:
    """Print one line on stderr; a path that is not UTF-8 (its bytes kept as surrogates) is shown
    with backslash escapes instead of failing to encode."""
    print(line.encode("utf-8", "backslashreplace").decode("utf-8"), file=sys.stderr)


def _option_naming(filename: str | bytes, args: list[str]) -> str | None:
    """The option whose value names ``filename`` (or a folder holding it): ``--out PATH``,
    ``--out=PATH``, ``--problem linreg:PATH``; None for an argument or a path not on the command line."""
    from trainlab.runs import path_is_named

    for i, token in enumerate(args):
        flag, _, value = token.partition("=") if token.startswith("--") else ("", "", token)
        if path_is_named(filename, {value, *value.split(":")}):
            if flag:
                return flag
            return args[i - 1] if i > 0 and args[i - 1].startswith("-") else None
    return None


def _users_fault(e: OSError, args: list[str]) -> bool:
    """Whether an OS error that reached main is the user's: see :func:`trainlab.runs.is_users_os_error`,
    with the paths the user named read from the command line (``--out=PATH``, ``linreg:PATH`` too)."""
    from trainlab.runs import is_users_os_error

    named = {part for token in args for part in (token, *token.split("=", 1)[1:], *token.split(":"))}
    return is_users_os_error(e, named)


def _internal_error(e: BaseException, argv: list[str] | None) -> int:
    """Exit code 3 with one line; the traceback is printed (--debug) or saved to a file it names."""
    if _debug_requested(argv):
        traceback.print_exc()
        return 3
    saved = _save_traceback()
    where = (f"please report it with the traceback saved in {saved}" if saved
             else "please report it (run with --debug for the traceback)")
    _say(f"trainlab: internal error: {type(e).__name__}: {' '.join(str(e).split())[:300]} "
         f"(a bug in trainlab, not in what you gave it: {where})")
    return 3
