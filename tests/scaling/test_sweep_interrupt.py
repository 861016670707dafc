"""Ctrl-C in `trainlab scaling sweep` on the local process pool: the command ends within 5 s with
exit 130 and one line on stderr, the finished points stay in points.jsonl (whole lines), no process
it started is left behind, and --resume finishes the sweep with the numbers of an uninterrupted run.

The sweep runs in a subprocess in its own session, so SIGINT can go to its process group (what a
terminal's Ctrl-C does: the workers and the forkserver receive it too) or to the command alone.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from trainlab.scaling.sweep import POINTS_FILE, PointStore

# one round (no grid extension) of six tasks, one per batch size, a second or so each
SWEEP = ["scaling", "sweep", "--width", "8", "--batch-sizes", "4,8,16,32,64,128", "--seeds", "1,2",
         "--targets", "0.7", "--lr-min", "0.2", "--lr-max", "0.8", "--max-steps", "3000",
         "--max-extensions", "0", "--format", "json"]
LOCAL = ["--executor", "local", "--workers", "2"]
EXIT_LIMIT = 5.0  # seconds from SIGINT to the command's exit


def _numbers(store: PointStore) -> dict[str, tuple]:
    return {k: (r["steps_to_target"], r["measured_around"], r["final_loss"], r["steps_run"], r["diverged"],
                r["censored"]) for k, r in store.records.items()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, tuple]:
    """The same sweep uninterrupted, in this process (the local pool gives the inline numbers)."""
    from trainlab.cli import main

    out = tmp_path_factory.mktemp("reference") / "run"
    assert main([*SWEEP, "--executor", "inline", "--out", str(out)]) == 0
    return _numbers(PointStore(out / POINTS_FILE))


@dataclass
class Interrupted:
    seconds: float  # from SIGINT to the command's exit
    returncode: int
    stderr: str
    kept_bytes: bytes  # points.jsonl right after the exit


def _interrupt(run: Path, *, group: bool, delay: float = 0.0) -> Interrupted:
    """Start the sweep, wait until a point has finished (and ``delay`` seconds more), send SIGINT."""
    proc = subprocess.Popen([sys.executable, "-m", "trainlab", *SWEEP, *LOCAL, "--out", str(run)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            cwd=run.parent)
    points = run / POINTS_FILE
    try:
        deadline = time.monotonic() + 300
        while not (points.is_file() and points.stat().st_size > 0):
            assert proc.poll() is None, f"the sweep ended before a point finished: {proc.communicate()}"
            assert time.monotonic() < deadline, "no point finished in 300 s"
            time.sleep(0.02)
        time.sleep(delay)
        start = time.monotonic()
        if group:
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGINT)
        returncode = proc.wait(timeout=60)
        seconds = time.monotonic() - start
        kept = points.read_bytes()
        # the forkserver, the workers and the resource tracker all hold the command's stdout and
        # stderr: their end of file says every process it started has gone too
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None or proc.stdout is not None and not proc.stdout.closed:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # its session: nothing of it outlives a failed test
            except ProcessLookupError:
                pass
            proc.wait()
    return Interrupted(seconds, returncode, err.decode(), kept)


def _check_interrupted(r: Interrupted, run: Path, total: int) -> int:
    """The exit status, the one line, whole point lines; returns the number of points kept."""
    assert r.returncode == 130, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("trainlab: interrupted: "), r.stderr
    assert f"--out {run}" in lines[0] and "--resume" in lines[0], lines[0]
    assert r.kept_bytes.endswith(b"\n"), "a half-written point line"
    kept = len(r.kept_bytes.splitlines())
    assert f" {kept} finished point" in lines[0], lines[0]
    assert 0 < kept <= total  # a point had finished (all of them when it came during the fit)
    assert len(PointStore(run / POINTS_FILE)) == kept  # every line a point record
    return kept


def _resume(run: Path, kept: bytes, reference: dict[str, tuple]) -> None:
    done = subprocess.run([sys.executable, "-m", "trainlab", *SWEEP, *LOCAL, "--out", str(run), "--resume"],
                          capture_output=True, timeout=600, cwd=run.parent)
    assert done.returncode == 0, done.stderr.decode()
    text = (run / POINTS_FILE).read_bytes()
    assert text.startswith(kept)  # the kept points untouched, the others appended
    assert len(text.splitlines()) == len(reference)  # none run twice
    assert _numbers(PointStore(run / POINTS_FILE)) == reference


def test_ctrl_c_ends_the_sweep_at_once_and_resume_finishes_it(tmp_path, reference):
    run = tmp_path / "run"
    r = _interrupt(run, group=True)
    assert _check_interrupted(r, run, len(reference)) < len(reference)  # it came before the last point
    assert r.seconds < EXIT_LIMIT, r.seconds
    _resume(run, r.kept_bytes, reference)


@pytest.mark.slow
@pytest.mark.timeout(3600)  # 20 interrupted runs and their resumes: 10-30 s each
def test_ctrl_c_ends_the_sweep_within_5_s_every_time(tmp_path, reference):
    """20 interrupts: to the process group and to the command alone, at once or up to a second
    after the first point (later ones can come while the finished sweep is being fitted: its
    points are all kept then, and --resume only fits); each run resumed to the reference numbers."""
    seconds, kept = [], []
    for i in range(20):
        run = tmp_path / f"run{i}"
        r = _interrupt(run, group=i % 2 == 0, delay=(0.0, 0.25, 0.5, 1.0)[i // 2 % 4])
        kept.append(_check_interrupted(r, run, len(reference)))
        seconds.append(r.seconds)
        print(f"interrupt {i}: exit after {r.seconds:.2f} s, {kept[-1]} points kept", flush=True)
        _resume(run, r.kept_bytes, reference)
    print(f"\nSIGINT to exit over {len(seconds)} interrupts: max {max(seconds):.2f} s, "
          f"median {statistics.median(seconds):.2f} s, all {[round(s, 2) for s in seconds]}; points kept "
          f"{kept} of {len(reference)}")
    assert max(seconds) < EXIT_LIMIT, seconds
