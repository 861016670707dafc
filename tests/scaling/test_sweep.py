"""Sweeps: JSONL points appended as they finish, reruns skip them, a killed worker is retried,
the grid grows at its edge, and the local pool gives the inline results."""

from __future__ import annotations

import json

import pytest

from trainlab.scaling.executors import InlineExecutor, LocalPoolExecutor
from trainlab.scaling.sweep import POINTS_FILE, PointStore, SweepConfig, run_sweep

TINY = SweepConfig(problem="digits-mlp", width=8, batch_sizes=(16, 64), lr_base=0.1, lr_indices=(0, 1),
                   seeds=(1, 2), targets=(1.5, 1.0), max_steps=400, max_extensions=2)


class CountingExecutor(InlineExecutor):
    def __init__(self):
        self.points = 0

    def map_unordered(self, fn, tasks):
        for t in tasks:
            self.points += len(t.points)
            yield fn(t)


def _steps(store):
    return {k: (r["steps_to_target"], r["diverged"], r["censored"]) for k, r in store.records.items()}


@pytest.fixture(scope="module")
def inline_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("inline")
    return d, run_sweep(TINY, d, InlineExecutor())


def test_best_lr_at_the_grid_edge_extends_the_grid(inline_run):
    _, store = inline_run
    ks = {r["lr_index"] for r in store.records.values()}
    assert max(ks) > 1  # the grid 0.1, 0.14 is too low for this MLP: extended upwards


def test_points_file_holds_one_json_line_per_point(inline_run):
    d, store = inline_run
    lines = (d / POINTS_FILE).read_text().splitlines()
    assert len(lines) == len(store) and all(json.loads(x)["key"] for x in lines)
    assert json.loads((d / "sweep.json").read_text())["lr_protocol"].startswith("constant")


def test_points_record_interpolated_steps_inside_the_measurements_around_them(inline_run):
    d, store = inline_run
    assert json.loads((d / "sweep.json").read_text())["steps_measure"].startswith("training loss measured")
    reached = 0
    for r in store.records.values():
        for s, around in zip(r["steps_to_target"], r["measured_around"], strict=True):
            assert (s is None) == (around is None)
            if s is not None:
                assert around[0] < s <= around[1] and type(s) is int
                reached += 1
    assert reached > 0


def test_a_sweep_from_before_interpolation_is_refused_on_resume_but_still_fits(tmp_path, inline_run):
    """Its points hold the first measured step below each target: mixed with interpolated ones the
    best learning rates would be chosen on two measures."""
    from trainlab.errors import ArgumentError
    from trainlab.scaling.sweep import GRID_SNAPPED, load_sweep

    source, store = inline_run
    old = json.loads((source / "sweep.json").read_text())
    del old["steps_measure"], old["dense_band"]
    (tmp_path / "sweep.json").write_text(json.dumps(old))
    lines = [json.dumps({k: v for k, v in r.items() if k != "measured_around"})
             for r in store.records.values()]
    (tmp_path / POINTS_FILE).write_text("".join(x + "\n" for x in lines))
    config, points = load_sweep(tmp_path)
    assert config.steps_measure == GRID_SNAPPED and len(points) == len(store)
    with pytest.raises(ArgumentError, match="--resume=.*first measured step.*--overwrite"):
        run_sweep(TINY, tmp_path, InlineExecutor())


def test_rerun_skips_finished_points(inline_run):
    d, store = inline_run
    ex = CountingExecutor()
    again = run_sweep(TINY, d, ex)
    assert ex.points == 0 and _steps(again) == _steps(store)


def test_interrupted_sweep_resumes_without_losing_or_redoing_points(tmp_path, inline_run):
    _, full = inline_run

    def stop(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(TINY, tmp_path, InlineExecutor(), progress=stop)
    kept = PointStore(tmp_path / POINTS_FILE)
    assert 0 < len(kept) < len(full)
    ex = CountingExecutor()
    store = run_sweep(TINY, tmp_path, ex)
    assert ex.points == len(full) - len(kept)
    assert _steps(store) == _steps(full)


def _point(key):
    return {"key": key, "batch_size": 4, "lr_index": 0, "lr": 0.1, "seed": 0, "steps_to_target": [3]}


def test_a_cut_off_last_line_is_dropped_and_cut_only_before_an_append(tmp_path):
    p = tmp_path / POINTS_FILE
    first = json.dumps(_point("a")) + "\n"
    p.write_text(first + '{"key": "b", "x"')
    store = PointStore(p)
    # reading (scaling fit) leaves the file as it was
    assert list(store.records) == ["a"] and p.read_text() == first + '{"key": "b", "x"'
    store.append([_point("c")])
    assert [json.loads(x)["key"] for x in p.read_text().splitlines()] == ["a", "c"]


@pytest.mark.parametrize("line", ['{"key": "x"}', '[1, 2]', '{"key": "a", "batch_size": "4", "lr_index": 0, '
                                  '"lr": 0.1, "seed": 0, "steps_to_target": [3]}'])
def test_a_line_that_is_not_a_point_record_is_a_data_error(tmp_path, line):
    from trainlab.errors import DataError

    (tmp_path / POINTS_FILE).write_text(line + "\n")
    with pytest.raises(DataError, match="line 1 is not a sweep point record"):
        PointStore(tmp_path / POINTS_FILE)


def test_fit_on_a_sweep_without_points_or_with_a_list_config_is_one_line(inline_run, tmp_path, capsys):
    from trainlab.cli import main

    d, _ = inline_run
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "sweep.json").write_text((d / "sweep.json").read_text())
    assert main(["scaling", "fit", str(empty)]) == 2
    assert "no finished point" in capsys.readouterr().err
    (empty / "sweep.json").write_text("[1, 2]")
    assert main(["scaling", "fit", str(empty)]) == 2
    assert "not a sweep configuration" in capsys.readouterr().err


def test_a_resumed_sweep_must_have_the_same_settings(inline_run):
    from trainlab.errors import ArgumentError

    d, _ = inline_run
    with pytest.raises(ArgumentError, match="max_steps"):
        run_sweep(SweepConfig(**{**TINY.__dict__, "max_steps": 10}), d, InlineExecutor())


def test_local_pool_retries_a_killed_worker_and_matches_inline(tmp_path, inline_run):
    _, full = inline_run
    marker = tmp_path / "killed"
    store = run_sweep(TINY, tmp_path / "run", LocalPoolExecutor(2), fail_marker=str(marker))
    assert marker.exists()  # a worker really was killed (SIGKILL) once
    assert _steps(store) == _steps(full)
    lines = (tmp_path / "run" / POINTS_FILE).read_text().splitlines()
    assert len(lines) == len({json.loads(x)["key"] for x in lines}) == len(full)  # none lost, none twice


@pytest.mark.slow
def test_ray_gives_the_same_sweep_as_the_local_pool(tmp_path, inline_run):
    ray = pytest.importorskip("ray")
    from trainlab.scaling.executors import RayExecutor

    _, full = inline_run
    ex = RayExecutor(workers=1)
    try:
        store = run_sweep(TINY, tmp_path, ex)
    finally:
        ex.shutdown()
    assert not ray.is_initialized()
    assert _steps(store) == _steps(full)


@pytest.mark.parametrize("change", [{"batch_size": -4}, {"batch_size": 0}, {"steps_to_target": ["x"]},
                                    {"steps_to_target": [-1]}, {"lr": -0.1}, {"seed": -2}])
def test_a_damaged_point_record_is_refused_not_fitted(tmp_path, inline_run, change):
    """A hand-edited points.jsonl: a negative batch size was fitted silently (the interval moved), and
    steps of 'x' ended in exit 3."""
    from trainlab.errors import DataError

    source, _ = inline_run
    lines = (source / POINTS_FILE).read_text().splitlines()
    record = json.loads(lines[0])
    record.update(change)
    (tmp_path / POINTS_FILE).write_text("\n".join([json.dumps(record), *lines[1:]]) + "\n")
    with pytest.raises(DataError, match="line 1 is not a sweep point record"):
        PointStore(tmp_path / POINTS_FILE)


def test_stopping_the_local_pool_leaves_no_manager_thread_for_the_exit_to_wake():
    """After Ctrl-C the pool's manager thread must be gone (its wake-up pipe closed) before the
    interpreter exits: CPython 3.11's exit handler writes to that pipe without a lock, and a close
    racing it printed "OSError: Bad file descriptor" with a traceback under the one-line message
    (seen once in the suite on a loaded machine)."""
    import multiprocessing as mp
    import time
    from concurrent.futures import ProcessPoolExecutor

    from trainlab.scaling.executors import _stop_workers

    pool = ProcessPoolExecutor(max_workers=2, mp_context=mp.get_context("forkserver"))
    futures = [pool.submit(time.sleep, 30) for _ in range(3)]
    deadline = time.monotonic() + 30
    while not any(f.running() for f in futures):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    manager, wakeup = pool._executor_manager_thread, pool._executor_manager_thread_wakeup
    workers = list(pool._processes.values())
    assert manager.is_alive() and not wakeup._closed and workers
    start = time.monotonic()
    _stop_workers(pool)
    assert time.monotonic() - start < 5
    assert not manager.is_alive() and wakeup._closed
    assert not any(w.is_alive() for w in workers)
