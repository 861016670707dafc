"""Atomic writes, JSON conversion, run folders and report rendering."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import torch

from trainlab.claims import Claim, Context, registered, run_claims
from trainlab.errors import ArgumentError, OutputError, TrainlabError
from trainlab.plotting import new_figure
from trainlab.report import format_value, load_results, write_report
from trainlab.runs import (
    RUN_MARKER,
    atomic_write_json,
    atomic_write_text,
    output_errors,
    prepare_run_dir,
    to_jsonable,
)


def test_atomic_write_leaves_the_old_file_when_the_rename_fails(tmp_path, monkeypatch):
    target = tmp_path / "results.json"
    atomic_write_text(target, "old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temporary file left


def test_to_jsonable_handles_numpy_torch_and_non_finite_numbers():
    data = {"a": np.float64(1.5), "b": torch.tensor([1.0, 2.0]), "c": math.nan,
            "d": -math.inf, "e": np.arange(3), "f": (1, 2)}
    assert to_jsonable(data) == {"a": 1.5, "b": [1.0, 2.0], "c": "nan", "d": "-inf",
                                 "e": [0, 1, 2], "f": [1, 2]}
    with pytest.raises(TypeError):
        to_jsonable(object())


def test_results_json_is_strict_json_even_with_nan(tmp_path):
    atomic_write_json(tmp_path / "x.json", {"loss": float("nan")})
    assert json.loads((tmp_path / "x.json").read_text()) == {"loss": "nan"}


def test_run_dir_refuses_a_file_an_unwritable_place_and_an_empty_path(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ArgumentError, match="--out="):
        prepare_run_dir(f, "verify")
    with pytest.raises(ArgumentError, match="--out=.*a folder in a folder .*file is a file"):  # before mkdir
        prepare_run_dir(f / "sub", "verify")
    with pytest.raises(ArgumentError, match="--out=''.*empty path"):
        prepare_run_dir("", "verify")
    assert prepare_run_dir(tmp_path / "new" / "run", "verify").is_dir()


def test_an_existing_run_needs_resume_or_overwrite(tmp_path):
    run = prepare_run_dir(tmp_path / "run", "verify")
    (run / "results.json").write_text("{}")
    (run / "figures").mkdir()
    (run / "figures" / "old.png").write_bytes(b"png")
    with pytest.raises(ArgumentError, match="--resume to continue it or --overwrite"):
        prepare_run_dir(run, "verify")
    with pytest.raises(ArgumentError, match="at most one"):
        prepare_run_dir(run, "verify", resume=True, overwrite=True)
    assert prepare_run_dir(run, "verify", resume=True) == run
    assert (run / "figures" / "old.png").is_file()  # resume keeps everything
    prepare_run_dir(run, "verify", overwrite=True)
    assert sorted(p.name for p in run.iterdir()) == [RUN_MARKER]  # replaced whole, figures included


def test_overwrite_never_deletes_a_folder_trainlab_did_not_make(tmp_path):
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("precious")
    with pytest.raises(ArgumentError, match="never overwritten"):
        prepare_run_dir(mine, "verify", overwrite=True)
    assert (mine / "chapter1.tex").read_text() == "precious"


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_get_the_mode_the_umask_gives(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        path = atomic_write_text(tmp_path / "report.md", "x")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == mode


def test_os_errors_on_a_users_path_become_one_line_output_errors(tmp_path):
    import errno

    with pytest.raises(OutputError) as info:
        with output_errors("-o", tmp_path / "x.png"):
            raise OSError(errno.ENOSPC, "No space left on device")
    assert isinstance(info.value, TrainlabError)
    assert str(info.value) == f"-o='{tmp_path / 'x.png'}' cannot be written: no space is left on the device"


def test_format_value_is_compact():
    assert format_value(0.123456789) == "0.123457"
    assert format_value(52444644) == "52,444,644"
    assert format_value(list(range(20))).endswith("… (20 items)]")


def _with_figure(ctx: Context) -> str:
    fig, ax = new_figure()
    ax.plot([0, 1], [1, 0])
    ctx.save_figure(fig, "curve", {"y": [1, 0]})
    ctx.checks.close("x", 1.0, 1.0, atol=1e-12)
    return "x = {x}"


def test_report_rerenders_from_results_json_alone(tmp_path):
    claim = Claim("testpart.figure", "tests", "Has a figure.", _with_figure)
    with registered(claim):
        run_claims([claim.id], out_dir=tmp_path)
    (tmp_path / "report.md").unlink()
    (tmp_path / "report.html").unlink()
    write_report(tmp_path)
    page = (tmp_path / "report.html").read_text()
    assert "testpart.figure" in page and "passed" in page
    assert "data:image/png;base64," in page  # figures embedded: the page opens offline
    assert "<link" not in page and "<script src" not in page
    assert "![figures/testpart.figure-curve.png]" in (tmp_path / "report.md").read_text()


def test_report_of_a_folder_without_results_is_an_argument_error(tmp_path):
    with pytest.raises(ArgumentError, match="RUN_DIR="):
        load_results(tmp_path)
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(ArgumentError, match="readable results.json"):
        load_results(tmp_path)
    (tmp_path / "results.json").write_text('{"claims": []}')
    with pytest.raises(ArgumentError, match="missing key"):
        load_results(tmp_path)
    good = {"trainlab_version": "0.1.0", "created": "now", "scale": "quick", "seed": 0,
            "environment": {"python": "3.11", "torch": "2.13", "threads": 1, "device": "cpu"},
            "claims": [{"id": "a.b", "section": "s", "statement": "x", "status": "maybe",
                        "measured": {}, "expected": {}, "tolerance": {}, "summary": "",
                        "seconds": 0.0, "figures": []}]}
    (tmp_path / "results.json").write_text(json.dumps(good))
    with pytest.raises(ArgumentError, match="status 'maybe'"):
        load_results(tmp_path)
    good["claims"][0]["status"] = "passed"
    (tmp_path / "results.json").write_text(json.dumps(good))
    assert load_results(tmp_path)["claims"][0]["status"] == "passed"  # 0.1 files (no "checks") still load


def _tamper(run, **changes):
    results = json.loads((run / "results.json").read_text())
    results["claims"][0].update(changes)
    (run / "results.json").write_text(json.dumps(results))


def test_a_tampered_results_json_embeds_no_file_from_outside_the_run(tmp_path):
    run = tmp_path / "run"
    claim = Claim("testpart.figure", "tests", "Has a figure.", _with_figure)
    with registered(claim):
        run_claims([claim.id], out_dir=run)
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG not for the report")
    link = run / "figures" / "link.png"
    link.symlink_to(secret)
    import base64

    leaked = base64.b64encode(secret.read_bytes()).decode("ascii")
    for figures in (["../secret.png"], [str(secret)], ["figures/link.png"]):
        _tamper(run, figures=figures)
        write_report(run)
        page = (run / "report.html").read_text()
        assert leaked not in page and "figure missing" in page


@pytest.mark.parametrize(("key", "value"), [("seconds", "x"), ("seconds", None), ("measured", [1]),
                                            ("id", 7), ("figures", [3]), ("summary", None),
                                            ("figures", ["figures/a\u0000b.png"]),
                                            ("figures", ["figures/" + "a" * 300 + ".png"]),
                                            ("figures", [""])])
def test_a_results_json_with_a_value_of_the_wrong_type_is_one_line(tmp_path, capsys, key, value):
    from trainlab.cli import main

    claim = Claim("testpart.figure", "tests", "Has a figure.", _with_figure)
    with registered(claim):
        run_claims([claim.id], out_dir=tmp_path)
    _tamper(tmp_path, **{key: value})
    before = (tmp_path / "report.md").read_bytes()
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and key in err[0] and "results.json" in err[0]
    assert (tmp_path / "report.md").read_bytes() == before  # nothing rewritten


def test_a_refused_resume_never_marks_another_tools_folder_as_a_run(tmp_path):
    """A results.json from another tool: --resume is refused, leaves no marker behind, and so
    --overwrite still refuses to empty the folder (it deleted the user's thesis before)."""
    from trainlab.cli import main

    other = tmp_path / "other"
    other.mkdir()
    (other / "results.json").write_text('{"accuracy": 0.9}')
    (other / "thesis.tex").write_text("precious")
    assert main(["verify", "optim.gd-min-norm", "--out", str(other)]) == 2  # names --resume, no marker
    # not trainlab's schema
    assert main(["verify", "optim.gd-min-norm", "--out", str(other), "--resume"]) == 2
    assert not (other / RUN_MARKER).exists()
    assert main(["verify", "optim.gd-min-norm", "--out", str(other), "--overwrite"]) == 2
    assert sorted(p.name for p in other.iterdir()) == ["results.json", "thesis.tex"]
    assert (other / "thesis.tex").read_text() == "precious"
    with pytest.raises(ArgumentError, match="no .trainlab-run: if trainlab made it, --resume continues it"):
        prepare_run_dir(other, "verify")
    assert prepare_run_dir(other, "verify", resume=True) == other  # a resumed folder is not marked either
    assert not (other / RUN_MARKER).exists()


def test_a_link_to_nothing_is_named_as_such(tmp_path):
    link = tmp_path / "dangling"
    link.symlink_to(tmp_path / "gone")
    with pytest.raises(ArgumentError, match="--out=.*a link to nothing"):
        prepare_run_dir(link, "verify")


def _interrupting(ctx: Context) -> str:
    raise KeyboardInterrupt


def test_the_interrupted_hint_quotes_the_folder_for_the_shell(tmp_path, capsys):
    from trainlab.cli import main

    out = tmp_path / "my run"
    with registered(Claim("testpart.figure", "tests", "Has a figure.", _with_figure),
                    Claim("testpart.zz-interrupt", "tests", "Ctrl-C.", _interrupting)):
        assert main(["verify", "testpart.figure", "testpart.zz-interrupt", "--out", str(out)]) == 130
    assert f"--resume --out '{out}'" in " ".join(capsys.readouterr().err.split())
