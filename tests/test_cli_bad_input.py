"""Property-based: generated bad invocations of every command end cleanly.

Every command of the tree (the root's and each part's) is walked; for each, bad values are
generated from its parameters' own types (out-of-range numbers, non-numbers, unknown
choices, missing files, unknown options, stray arguments). Every such invocation must end
with exit 2, exactly one line on stderr, no traceback, and no file left behind.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import click
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trainlab.cli import PART_CLIS, cli, main


def _leaves(group: click.Group, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], click.Command]]:
    ctx = click.Context(group)
    out = []
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        if isinstance(cmd, click.Group):
            out += _leaves(cmd, (*path, name))
        elif cmd is not None:
            out.append(((*path, name), cmd))
    return out


COMMANDS = _leaves(cli, ())


def _bad_values(param: click.Parameter) -> list[str]:
    t = param.type
    if isinstance(t, click.Choice):
        return ["zz-not-a-choice"]
    if isinstance(t, click.IntRange):
        bad = ["abc", "1.5"]
        if t.min is not None:
            bad.append(str(int(t.min) - 1 if not t.min_open else int(t.min)))
        if t.max is not None:
            bad.append(str(int(t.max) + 1 if not t.max_open else int(t.max)))
        return bad
    if isinstance(t, click.FloatRange):
        bad = ["abc"]
        if t.min is not None:
            bad.append(repr(float(t.min) - 1.0) if not t.min_open else repr(float(t.min)))
        if t.max is not None:
            bad.append(repr(float(t.max) + 1.0) if not t.max_open else repr(float(t.max)))
        return bad
    if t is click.INT or isinstance(t, click.types.IntParamType):
        return ["abc", "1.5"]
    if t is click.FLOAT or isinstance(t, click.types.FloatParamType):
        return ["abc"]
    if isinstance(t, click.Path) and t.exists:
        return ["no/such/file-or-folder"]
    return []


def _cases() -> list[tuple[tuple[str, ...], list[str]]]:
    cases: list[tuple[tuple[str, ...], list[str]]] = []
    for path, cmd in COMMANDS:
        cases.append((path, ["--no-such-option"]))
        if not any(isinstance(p, click.Argument) and (p.nargs == -1) for p in cmd.params):
            cases.append((path, ["stray-1", "stray-2", "stray-3", "stray-4", "stray-5"]))
        for p in cmd.params:
            if isinstance(p, click.Option) and not p.is_flag and p.name not in ("help",):
                flag = max(p.opts, key=len)
                cases += [(path, [flag, v]) for v in _bad_values(p)]
                if p.nargs == 1 and not p.multiple:
                    cases.append((path, [flag]))  # option without its value
    return cases


CASES = _cases()


def test_every_part_is_walked():
    parts = {path[0] for path, _ in COMMANDS}
    assert set(PART_CLIS) - {"hpo", "scaling", "loops"} <= parts
    assert len(CASES) >= 100


BY_COMMAND: dict[tuple[str, ...], list[list[str]]] = {}
for _path, _bad in CASES:
    if len(_bad) == 2:  # "--flag bad-value" pairs combine safely; a bare "--flag" swallows the next token
        BY_COMMAND.setdefault(_path, []).append(_bad)


@st.composite
def _combined(draw: st.DrawFn) -> tuple[tuple[str, ...], list[str]]:
    """One command with one to three of its bad "--flag value" pairs, in any order."""
    path = draw(st.sampled_from(sorted(BY_COMMAND)))
    fragments = draw(st.lists(st.sampled_from(BY_COMMAND[path]), min_size=1, max_size=3))
    return path, [token for f in fragments for token in f]


@pytest.mark.parametrize("case", CASES, ids=lambda c: " ".join(c[0]) + " " + " ".join(c[1]))
def test_each_bad_value_exits_2_with_one_line_and_leaves_nothing(case, tmp_path_factory, capsys):
    _check(case, tmp_path_factory, capsys)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=_combined())
def test_combined_bad_invocations_exit_2_with_one_line_and_leave_nothing(case, tmp_path_factory, capsys):
    _check(case, tmp_path_factory, capsys)


def _check(case, tmp_path_factory, capsys) -> None:
    path, bad = case
    work = tmp_path_factory.mktemp("cwd")
    old = os.getcwd()
    os.chdir(work)

    def too_long(signum, frame):  # a bad invocation is refused before any work starts
        raise AssertionError(f"{path} {bad} ran for 30 s instead of being refused")

    previous = signal.signal(signal.SIGALRM, too_long)
    signal.alarm(30)
    try:
        code = main([*path, *bad])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        os.chdir(old)
    err = capsys.readouterr().err.strip()
    assert code == 2, (path, bad, code, err)
    assert err and "\n" not in err and "Traceback" not in err, (path, bad, err)
    assert list(Path(work).rglob("*")) == [], (path, bad, "left files behind")


@pytest.mark.parametrize("path", sorted({p for p, _ in COMMANDS}), ids=" ".join)
def test_every_command_has_help(path, capsys):
    assert main([*path, "--help"]) == 0
    assert capsys.readouterr().out.startswith("Usage: trainlab")


def test_every_option_that_counts_training_steps_is_bounded():
    """`--steps 1e11` ran silently for years' worth of steps (hpo hypergrad, tune-lr): every
    option counting steps has a finite maximum, so an enormous value is one line and exit 2."""
    from trainlab.problem_options import MAX_STEPS

    seen = []
    for path, cmd in COMMANDS:
        for p in cmd.params:
            if isinstance(p, click.Option) and any(o.endswith("steps") for o in p.opts):
                seen.append((" ".join(path), p.opts[0]))
                assert isinstance(p.type, click.IntRange) and p.type.max is not None, (path, p.opts)
                assert p.type.max <= MAX_STEPS, (path, p.opts)
    assert ("hpo hypergrad", "--steps") in seen and ("hpo tune-lr", "--meta-steps") in seen
    assert len(seen) >= 8


@pytest.mark.parametrize("argv", [
    ["hpo", "hypergrad", "--lr", "0.01", "--steps", "100000000000"],
    ["hpo", "tune-lr", "--problem", "linreg", "--steps", "100000000000"],
    ["optim", "compare", "--steps", "100000000000"],
    ["scaling", "sweep", "--max-steps", "100000000000"],
])
def test_an_enormous_step_count_is_refused_up_front(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "100000000000 is not in the range 1<=x<=1000000" in err[0]


def _takes_problem_and_data(cmd: click.Command) -> bool:
    flags = {o for p in cmd.params for o in getattr(p, "opts", ())}
    return {"--problem", "--data"} <= flags


# Each command with --problem and --data, with what it requires besides.
_REQUIRED = {("hpo", "hypergrad"): ("--steps", "3", "--lr", "0.01"), ("hpo", "tune-lr"): ("--steps", "3")}


@pytest.mark.parametrize("path", [p for p, c in COMMANDS if _takes_problem_and_data(c)], ids=" ".join)
def test_data_beside_a_builtin_problem_is_refused_not_ignored(capsys, tmp_path, path):
    data = tmp_path / "x.npz"
    data.write_bytes(b"")
    code = main([*path, *_REQUIRED.get(path, ()), "--problem", "linreg", "--data", str(data)])
    err = capsys.readouterr().err
    assert code == 2 and "--data" in err and "--problem linreg" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npz"]


def test_every_command_with_problem_and_data_is_checked():
    found = {p for p, c in COMMANDS if _takes_problem_and_data(c)}
    expected = {("hpo", "hypergrad"), ("hpo", "tune-lr"), ("scaling", "sweep"), ("scaling", "noise-scale")}
    assert expected <= found
