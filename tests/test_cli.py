"""The root CLI end to end: exit codes, one-line errors, run folders."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from trainlab.claims import Claim, registered
from trainlab.cli import PART_CLIS, main


def _broken(ctx):
    ctx.checks.equal("value", 2, 1)
    return "measured {value}"


def _buggy(ctx):
    ctx.checks.equal("value", 1, 1)
    return "ok"


def _interrupt(ctx):
    raise KeyboardInterrupt


BROKEN = Claim("testcli.broken", "tests", "A deliberately broken claim.", _broken)
INTERRUPT = Claim("testcli.interrupt", "tests", "Interrupted.", _interrupt)
OK = Claim("testcli.ok", "tests", "Passes.", _buggy)


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err and "Traceback" not in err, err
    return err


def test_list_json_names_every_claim(capsys):
    assert main(["list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"convnets.by-hand", "convnets.shape-arithmetic"} <= {r["id"] for r in rows}
    assert all(set(r) == {"id", "section", "statement"} for r in rows)


def test_verify_unknown_claim_exits_2_with_one_line(capsys, tmp_path):
    assert main(["verify", "nosuch.claim", "--out", str(tmp_path / "run")]) == 2
    err = _one_line_error(capsys)
    assert "nosuch.claim" in err and "trainlab list" in err
    assert not (tmp_path / "run").exists()  # nothing written for a bad pattern


@pytest.mark.parametrize("argv, fragment", [
    (["verify", "--scale", "huge"], "'huge' is not one of 'quick', 'full'"),
    (["verify", "--sclae", "quick"], "--sclae"),
    (["verify", "--seed", "abc"], "'abc' is not a valid integer"),
    (["frobnicate"], "frobnicate"),
    (["convnets", "shape", "-5"], "'-5' was read as an option"),
])
def test_usage_errors_exit_2_with_one_line(capsys, argv, fragment):
    assert main(argv) == 2
    assert fragment in _one_line_error(capsys)


def test_verify_into_an_unwritable_out_exits_2(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["verify", "convnets.by-hand", "--out", str(blocker / "run")]) == 2
    assert "--out=" in _one_line_error(capsys)


def test_a_broken_claim_makes_verify_exit_1_and_show_failed(capsys, tmp_path):
    with registered(BROKEN):
        code = main(["verify", "testcli.*", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 1
    assert "testcli.broken" in out and "failed" in out
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["claims"][0]["status"] == "failed"


def test_ctrl_c_during_verify_exits_130_and_keeps_results(capsys, tmp_path):
    with registered(INTERRUPT):
        assert main(["verify", "testcli.interrupt", "--out", str(tmp_path)]) == 130
    assert json.loads((tmp_path / "results.json").read_text())["interrupted"] is True


def test_verify_refuses_an_existing_run_unless_resume_or_overwrite(capsys, tmp_path):
    run = tmp_path / "run"
    with registered(OK):
        assert main(["verify", "testcli.ok", "--out", str(run)]) == 0
        before = (run / "results.json").read_text()
        capsys.readouterr()
        assert main(["verify", "testcli.ok", "--out", str(run)]) == 2
        assert "--resume" in _one_line_error(capsys)
        assert (run / "results.json").read_text() == before  # untouched
        assert main(["verify", "testcli.ok", "--out", str(run), "--resume"]) == 0
        assert "(kept)" in capsys.readouterr().out
        assert main(["verify", "testcli.ok", "--out", str(run), "--seed", "5", "--resume"]) == 2
        assert "seed 0" in _one_line_error(capsys)
        assert main(["verify", "testcli.ok", "--out", str(tmp_path / "typo"), "--resume"]) == 2
        assert "holds no results.json" in _one_line_error(capsys)
        assert not (tmp_path / "typo").exists()  # a mistyped run is not started afresh
        assert main(["verify", "testcli.ok", "--out", str(run), "--seed", "5", "--overwrite"]) == 0
        capsys.readouterr()
        assert main(["verify", "testcli.ok", "--out", ""]) == 2
        assert "empty path" in _one_line_error(capsys)
    assert json.loads((run / "results.json").read_text())["seed"] == 5


def test_disk_full_during_verify_is_one_line_exit_2(capsys, tmp_path, monkeypatch):
    import errno

    import trainlab.claims

    def full(path, obj):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(trainlab.claims, "atomic_write_json", full)
    with registered(OK):
        assert main(["verify", "testcli.ok", "--out", str(tmp_path / "run")]) == 2
    err = _one_line_error(capsys)
    assert "--out=" in err and "no space is left on the device" in err


def test_an_internal_error_exits_3_with_the_traceback_in_a_file(capsys, tmp_path, monkeypatch):
    import trainlab.claims

    def bug(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setenv("TRAINLAB_CRASH_DIR", str(tmp_path))
    monkeypatch.setattr(trainlab.claims, "run_claims", bug)
    with registered(OK):
        assert main(["verify", "testcli.ok", "--out", str(tmp_path / "run")]) == 3
    err = _one_line_error(capsys)
    assert "internal error: ZeroDivisionError: a bug" in err
    saved = list(tmp_path.glob("trainlab-crash-*.txt"))
    assert len(saved) == 1 and str(saved[0]) in err
    assert "Traceback" in saved[0].read_text() and "ZeroDivisionError" in saved[0].read_text()
    with registered(OK):
        assert main(["--debug", "verify", "testcli.ok", "--out", str(tmp_path / "run2")]) == 3
    assert "Traceback" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [[], *([p] for p in PART_CLIS)])
def test_a_bare_group_prints_its_help_and_exits_0(capsys, argv):
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("Usage: trainlab") and "error:" not in captured.out
    assert captured.err == ""


def test_help_does_not_import_torch():
    code = ("import sys; from trainlab.cli import main; rc = main(['--help']); "
            "assert rc == 0; assert 'torch' not in sys.modules, 'torch imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "optim" in proc.stdout and "colourize" in proc.stdout


def test_piped_output_is_one_plain_line_a_row_within_100_columns(tmp_path):
    """In a log a table is plain columns: no box drawing, one line a row, at most 100 characters
    (rich wrapped at 80 columns, and drawn unwrapped its rows reached 1,794 characters)."""
    proc = subprocess.run([sys.executable, "-m", "trainlab", "list", "optim.*"], capture_output=True,
                          text=True, timeout=120, env={k: v for k, v in os.environ.items() if k != "COLUMNS"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    rows = [line for line in lines if "optim.gd-min-norm" in line]
    assert len(rows) == 1 and rows[0].endswith("…")  # the statement is cut, not wrapped
    assert lines[0].split() == ["id", "section", "statement"]
    assert len(lines) == 1 + 7 and all(len(line) <= 100 for line in lines)
    assert not any(ch in proc.stdout for ch in "│┃━─")


def test_plain_table_narrows_the_widest_column_and_keeps_short_ones_whole():
    from rich.table import Column, Table

    from trainlab.console import plain_table

    table = Table("id", Column("s", justify="right"), "summary", title="a title " + "x" * 120)
    table.add_row("a.b", "1.5", "word " * 60)
    table.add_row("c.longer-id", "12.0", "[red]short[/]")
    title, header, first, second = plain_table(table, width=60)
    assert title == "a title " + "x" * 120  # titles are never cut (they may name paths)
    assert header.split() == ["id", "s", "summary"]
    assert len(first) == 60 and first.endswith("…") and first.startswith("a.b           1.5  word word")
    assert second == "c.longer-id  12.0  short"  # markup dropped, numbers right-aligned
    # every column at its floor: the line stays longer than the width rather than lose the row's name
    narrow = plain_table(table, width=10)
    assert narrow[3].startswith("c.longer-id  12.0  short") and narrow[2].endswith("word wo…")


def test_verify_prints_plain_lines_in_a_log_and_one_json_object_on_request(tmp_path, capsys):
    out_dir = str(tmp_path / "a")
    assert main(["verify", "convnets.by-hand", "convnets.shape-arithmetic", "--out", out_dir]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["status", "s", "claim", "measured", "vs", "expected"]
    assert [line.split()[0] for line in lines[2:4]] == ["passed", "passed"]
    assert [line.split()[2] for line in lines[2:4]] == ["convnets.by-hand", "convnets.shape-arithmetic"]
    assert all(len(line) <= 100 for line in lines[:4]) and lines[4].startswith("2 passed. Run folder:")
    assert main(["verify", "convnets.by-hand", "--out", str(tmp_path / "b"), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)  # one object and nothing else on stdout
    assert out["ok"] is True and out["counts"] == {"passed": 1}
    assert [c["id"] for c in out["claims"]] == ["convnets.by-hand"] and out["claims"][0]["summary"]
    assert main(["verify", "convnets.by-hand", "--out", str(tmp_path / "c"), "--format", "table"]) == 0
    assert "┃" in capsys.readouterr().out  # boxes on request, even in a log


def test_report_command_rerenders(capsys, tmp_path):
    assert main(["verify", "convnets.by-hand", "--out", str(tmp_path)]) == 0
    (tmp_path / "report.html").unlink()
    assert main(["report", str(tmp_path)]) == 0
    assert (tmp_path / "report.html").is_file()
    assert main(["report", str(tmp_path / "missing")]) == 2


def test_python_dash_m_trainlab_verifies_the_convnets_claims(tmp_path):
    env = {**os.environ, "COLUMNS": "120"}
    proc = subprocess.run([sys.executable, "-m", "trainlab", "verify", "convnets.*", "--out",
                           str(tmp_path / "run")], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    data = json.loads((tmp_path / "run" / "results.json").read_text())
    assert {"trainlab_version", "created", "scale", "seed", "environment", "claims"} == set(data)
    assert all(c["status"] == "passed" for c in data["claims"])
    assert "Run folder:" in proc.stdout


def test_a_reader_that_stops_reading_silences_the_console_without_changing_the_exit_status():
    """`trainlab verify | head`: rich's own handler exits with 1, which reads as a failed claim."""
    import os

    from trainlab.console import _console

    read, write = os.pipe()
    os.close(read)
    with os.fdopen(write, "w") as file:
        console = _console(file)
        console.print("x" * 200_000)  # BrokenPipeError inside rich: no SystemExit
        assert console.quiet
        console.print("more")  # and nothing more is attempted


def test_sigterm_stops_any_command_as_ctrl_c_does(monkeypatch, capsys):
    """`kill` gave exit 143 from every command but verify; now 130 and one line, as Ctrl-C."""
    import signal

    import trainlab.optim.compare as compare

    def killed(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # as `kill PID` from another shell
        raise AssertionError("not reached")

    monkeypatch.setattr(compare, "compare_optimizers", killed)
    before = signal.getsignal(signal.SIGTERM)
    assert main(["optim", "compare", "--seeds", "1", "--steps", "10"]) == 130
    assert capsys.readouterr().err.strip().splitlines() == ["trainlab: interrupted"]
    assert signal.getsignal(signal.SIGTERM) is before
