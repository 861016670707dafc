"""The root CLI end to end: exit codes, one-line errors, run folders."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from trainlab.claims import Claim, Evidence, registered
from trainlab.cli import main


def _broken(ctx):
    return Evidence({"value": 2}, {"value": 1}, False, "measured 2, expected 1")


def _interrupt(ctx):
    raise KeyboardInterrupt


BROKEN = Claim("testcli.broken", "tests", "A deliberately broken claim.", _broken)
INTERRUPT = Claim("testcli.interrupt", "tests", "Interrupted.", _interrupt)


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
