"""Exit 3 for trainlab's own bugs, exit 2 for the user's mistakes: never one shown as the other.

A bug injected into a convnets rule (the code that counts a layer) used to reach the user as
"TARGET=... is not valid: expected a model whose forward pass runs" (exit 2): the user was
told to fix a model that was fine. It is now exit 3, one line naming the exception and the
file that holds its traceback; the same exceptions raised by the user's own model stay exit 2.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from trainlab.claims import Claim, registered
from trainlab.cli import main
from trainlab.errors import raised_by_trainlab

SPEC = "conv3-8, relu, maxpool, fc-10"
SUMMARY = ["convnets", "summary", SPEC, "--input", "3x16x16"]

#: Bugs a rule could have, each of a kind the user's own model may raise as well.
BUGS = {
    "ZeroDivisionError": "1 / 0",
    "TypeError": "len(5)",
    "AttributeError": "tr.no_such_attribute",
    "KeyError": "kwargs['padding']",
    "IndexError": "[][3]",
}


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err and "Traceback" not in err, err
    return err


def _crash_file(err: str) -> Path:
    assert "traceback saved in " in err, err
    return Path(err.split("traceback saved in ", 1)[1].rstrip(")"))


def _buggy_rule(kind: str):
    """A convnets rule with a bug of ``kind``, compiled as if written in rules.py (trainlab's code)."""
    import trainlab.convnets.rules as rules

    namespace: dict = {}
    exec(compile(f"def rule(tr, name, args, kwargs):\n    return {BUGS[kind]}\n", rules.__file__, "exec"),
         namespace)
    return namespace["rule"]


@pytest.mark.parametrize("kind", sorted(BUGS))
def test_a_bug_in_a_convnets_rule_exits_3_with_its_traceback_in_a_file(kind, monkeypatch, tmp_path, capsys):
    import trainlab.convnets.rules as rules

    monkeypatch.setenv("TRAINLAB_CRASH_DIR", str(tmp_path))
    monkeypatch.setitem(rules._KIND, "conv2d", _buggy_rule(kind))
    assert main(SUMMARY) == 3
    err = _one_line(capsys)
    assert err.startswith(f"trainlab: internal error: {kind}: ")
    assert "a bug in trainlab" in err and "please report" in err and "TARGET" not in err
    log = _crash_file(err)
    assert log.parent == tmp_path and log.name.startswith("trainlab-crash-")
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and f"{kind}" in text
    assert "rules.py" in text and "tracing.py" in text  # the frames that raised
    assert "argv:" in text and "trainlab 0." in text


def test_the_crash_file_goes_beside_the_run_it_broke(monkeypatch, tmp_path, capsys):
    """Without $TRAINLAB_CRASH_DIR, a command with a run folder saves the traceback in it."""
    import trainlab.claims

    def bug(*args, **kwargs):
        raise AttributeError("'NoneType' object has no attribute 'records'")

    monkeypatch.delenv("TRAINLAB_CRASH_DIR", raising=False)
    monkeypatch.setattr(trainlab.claims, "run_claims", bug)
    ok = Claim("testinternal.ok", "tests", "Passes.", lambda ctx: "ok")
    with registered(ok):
        assert main(["verify", "testinternal.ok", "--out", str(tmp_path / "run")]) == 3
    log = _crash_file(_one_line(capsys))
    assert log.parent == tmp_path / "run"
    assert "AttributeError" in log.read_text()


def test_without_a_run_folder_the_crash_file_goes_to_the_temporary_folder(monkeypatch, tmp_path, capsys):
    import tempfile

    import trainlab.convnets.rules as rules

    monkeypatch.delenv("TRAINLAB_CRASH_DIR", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    monkeypatch.setitem(rules._KIND, "conv2d", _buggy_rule("ZeroDivisionError"))
    assert main(SUMMARY) == 3
    assert _crash_file(_one_line(capsys)).parent == tmp_path


def test_debug_prints_the_traceback_instead(monkeypatch, capsys):
    import trainlab.convnets.rules as rules

    monkeypatch.setitem(rules._KIND, "conv2d", _buggy_rule("KeyError"))
    assert main(["--debug", *SUMMARY]) == 3
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "KeyError: 'padding'" in err


MODEL = '''
import torch
from torch import nn

class Fails(nn.Module):
    def __init__(self, bug):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.bug = bug

    def forward(self, x):
        x = self.conv(x)
        if self.bug == "ZeroDivisionError":
            return x / (1 // 0)
        if self.bug == "TypeError":
            return len(x.shape[0])
        if self.bug == "AttributeError":
            return x.no_such_attribute
        if self.bug == "KeyError":
            return {}["missing"]
        return x[[]][3]

def fails(bug):
    return Fails(bug)

def mismatched():  # 8 channels into a layer that takes 4: torch's kernel refuses it
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(4, 4, 3))

def view_wrong():
    class V(nn.Module):
        def forward(self, x):
            return x.view(7, -1, 5)
    return V()
'''


@pytest.mark.parametrize("kind", sorted(BUGS))
def test_the_same_exceptions_raised_by_the_users_model_stay_exit_2(kind, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.py").write_text(MODEL)
    assert main(["convnets", "summary", f"model.py:fails('{kind}')", "--input", "3x16x16"]) == 2
    err = _one_line(capsys)
    assert err.startswith("trainlab: error: TARGET=") and kind in err and "internal" not in err


@pytest.mark.parametrize("factory", ["mismatched()", "view_wrong()"])
def test_torch_refusing_the_users_model_is_exit_2(factory, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.py").write_text(MODEL)
    assert main(["convnets", "summary", f"model.py:{factory}", "--input", "3x16x16"]) == 2
    assert "internal" not in _one_line(capsys)


def test_a_factory_called_with_arguments_it_does_not_take_is_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.py").write_text(MODEL)
    assert main(["convnets", "summary", "model.py:fails(1, 2)", "--input", "3x16x16"]) == 2
    assert "arguments fails accepts" in _one_line(capsys)


UNET = "trainlab.colourize.models:UNet(kernel=3, num_in_channels=1, num_filters=4, num_colours=4)"


@pytest.mark.parametrize("where", ["_check_int", "_cat"])
def test_a_bug_in_trainlabs_own_model_is_exit_3_even_when_the_user_names_it(where, monkeypatch, tmp_path,
                                                                           capsys):
    """The user names trainlab's UNet; its constructor (_check_int) or its forward pass (_cat) calls
    a helper with the wrong arguments: trainlab's bug, not "a factory that builds its model"."""
    import trainlab.colourize.models as models
    from trainlab.runs import read_json

    monkeypatch.setenv("TRAINLAB_CRASH_DIR", str(tmp_path))
    monkeypatch.setattr(models, where, read_json)  # read_json takes one argument: a TypeError in models.py
    assert main(["convnets", "summary", UNET, "--input", "1x16x16"]) == 3
    err = _one_line(capsys)
    assert err.startswith("trainlab: internal error: TypeError: read_json() takes 1 positional argument")
    assert "models.py" in _crash_file(err).read_text()


def test_a_bad_argument_to_trainlabs_own_model_stays_exit_2(capsys):
    assert main(["convnets", "summary", UNET.replace("num_filters=4", "num_filters=0"),
                 "--input", "1x16x16"]) == 2
    assert "num_filters=0" in _one_line(capsys)


def test_ctrl_c_inside_a_rule_is_still_an_interruption(monkeypatch, capsys):
    import trainlab.convnets.rules as rules

    def interrupted(tr, name, args, kwargs):
        raise KeyboardInterrupt

    monkeypatch.setitem(rules._KIND, "conv2d", interrupted)
    assert main(SUMMARY) == 130
    assert capsys.readouterr().err.strip() == "trainlab: interrupted"


def test_an_os_error_on_a_path_the_user_did_not_name_is_a_bug(monkeypatch, tmp_path, capsys):
    """A missing file inside the package is no fault of the user's: exit 3, not 2."""
    import errno

    import trainlab.claims

    inside = os.path.join(os.path.dirname(trainlab.claims.__file__), "no-such-data.json")

    def bug(*args, **kwargs):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", inside)

    monkeypatch.setenv("TRAINLAB_CRASH_DIR", str(tmp_path))
    monkeypatch.setattr(trainlab.claims, "run_claims", bug)
    ok = Claim("testinternal.ok", "tests", "Passes.", lambda ctx: "ok")
    with registered(ok):
        assert main(["verify", "testinternal.ok", "--out", str(tmp_path / "run")]) == 3
    assert "internal error: FileNotFoundError" in _one_line(capsys)


def test_an_os_error_on_the_users_path_or_a_full_disk_stays_exit_2(monkeypatch, tmp_path, capsys):
    import errno

    import trainlab.claims

    ok = Claim("testinternal.ok", "tests", "Passes.", lambda ctx: "ok")
    out = tmp_path / "run"
    for error in (FileNotFoundError(errno.ENOENT, "No such file or directory", str(out / "x.json")),
                  OSError(errno.ENOSPC, "No space left on device", "/var/somewhere/else")):
        def fail(*args, error=error, **kwargs):
            raise error

        monkeypatch.setattr(trainlab.claims, "run_claims", fail)
        with registered(ok):
            assert main(["verify", "testinternal.ok", "--out", str(out), "--overwrite"]) == 2
        assert "cannot be" in _one_line(capsys)


def test_whose_code_raised_reads_the_frames_below_the_catch():
    def catch(f):
        try:
            f()
        except Exception as e:
            return e
        raise AssertionError("did not raise")

    import torch

    user = catch(lambda: 1 / 0)  # this test file is the user's code
    assert not raised_by_trainlab(user)
    from trainlab.runs import to_jsonable  # raises TypeError on its own line: trainlab's code
    assert raised_by_trainlab(catch(lambda: to_jsonable(object())))
    # torch's kernel refusing a shape, even if trainlab's code made the call: not a bug
    from trainlab.convnets import rules
    assert not raised_by_trainlab(catch(lambda: rules._broadcast([(2, 3), (4, 3)])))
    assert not raised_by_trainlab(catch(lambda: torch.zeros(3).view(7)))


def test_the_real_entry_point_exits_3_for_a_rule_bug(tmp_path):
    """Through ``python -m trainlab``'s own main, in a fresh process (the bug injected before main runs)."""
    code = ("import sys, trainlab.convnets.rules as r\n"
            "src = 'def rule(tr, name, args, kwargs): return tr.no_such_attribute'\n"
            "exec(compile(src, r.__file__, 'exec'), vars(r))  # a bug in rules.py\n"
            "r._KIND['conv2d'] = r.rule\n"
            "from trainlab.cli import main  # the console script's entry point\n"
            f"sys.argv = ['trainlab', *{SUMMARY!r}]\n"
            "sys.exit(main())\n")
    env = {**os.environ, "TRAINLAB_CRASH_DIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 3, proc.stderr
    err = proc.stderr.strip()
    assert "\n" not in err and err.startswith("trainlab: internal error: AttributeError: ")
    assert "no_such_attribute" in _crash_file(err).read_text()
    proc = subprocess.run([sys.executable, "-m", "trainlab", "convnets", "summary", "conv3-8, fc-10",
                           "--input", "3x0x16"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("trainlab")  # bad input: still 2
