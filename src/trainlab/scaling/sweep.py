"""Steps-to-target sweeps: batch sizes × a √2 learning-rate grid × seeds (Shallue et al. 2019).

A *point* is one training run: (batch size B, learning rate η, seed). It trains with a
constant learning rate (the LR protocol is recorded: the critical batch size depends on it)
until its training loss over the whole training set falls below the lowest target, and
records the step at which it fell below each target: measured on a sparse grid of steps and
interpolated between the two measurements around the crossing (``STEPS_MEASURE``,
:func:`trainlab.scaling.stacked.crossing_step`). Per batch size the best
learning rate is the one with the fewest steps averaged over seeds; when that sits at the
edge of the grid the grid is extended by one √2 step in that direction and the sweep goes
on (up to ``max_extensions`` times per batch size).

Learning rates are η_k = ``lr_base`` · 2^(k/2) for integer k, so a point's key is exact.
Points of one batch size and round run as one task: stacked in one thread
(:mod:`trainlab.scaling.stacked`). Tasks run on an executor (:mod:`trainlab.scaling.executors`);
each finished point is appended to ``points.jsonl`` in the run folder as its task returns,
and a rerun (``resume``) skips every point already there. An interrupted sweep (Ctrl-C) keeps
the points finished so far; the tasks that were running are lost and rerun on resume.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from trainlab.errors import ArgumentError, DataError
from trainlab.problems import Problem, digits_mlp, load_problem
from trainlab.runs import atomic_write_json, read_json

__all__ = [
    "CONFIG_FILE",
    "GRID_SNAPPED",
    "POINTS_FILE",
    "STEPS_MEASURE",
    "PointStore",
    "SweepConfig",
    "SweepTask",
    "interrupted_message",
    "lr_of",
    "load_sweep",
    "next_round",
    "resolve_problem",
    "run_sweep",
    "run_task",
]

CONFIG_FILE = "sweep.json"
POINTS_FILE = "points.jsonl"
LR_PROTOCOL = ("constant learning rate from step 1 (no warm-up, no decay); "
               "best LR per batch size by mean steps over seeds")
#: How a point's steps to each target are measured (recorded in sweep.json: a resumed sweep's
#: points must all be measured alike).
STEPS_MEASURE = ("training loss measured every step to 8, then 4% apart within 2x of a target "
                 "(15% apart above); the first step at or below a target interpolated between the "
                 "two measurements around it, linear in log loss, rounded up")
#: What older sweeps (no ``steps_measure`` in sweep.json) recorded: the measured step itself.
GRID_SNAPPED = "the first measured step at or below each target (not interpolated)"


@dataclass(frozen=True)
class SweepConfig:
    """Everything that defines a sweep (saved as ``sweep.json``; a resumed sweep must match it)."""

    problem: str = "digits-mlp"
    batch_sizes: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)
    lr_base: float = 0.05
    lr_indices: tuple[int, ...] = tuple(range(8))  # η_k = lr_base · 2^(k/2)
    seeds: tuple[int, ...] = (0, 1, 2, 3)
    targets: tuple[float, ...] = (0.2, 0.1)
    max_steps: int = 20_000
    optimizer: str = "sgd"
    momentum: float = 0.9
    width: int | None = None
    data: str | None = None
    loss: str | None = None
    data_seed: int = 0
    max_extensions: int = 4
    prune_factor: float = 2.0
    adaptive_grid: bool = False
    lr_protocol: str = LR_PROTOCOL
    steps_measure: str = STEPS_MEASURE
    # measure every step while within this factor of a target: the exact first step at or below it
    # even of a loss that jumps from step to step (small batches), at about 3x the time (digits sweep)
    dense_band: float | None = None

    def __post_init__(self) -> None:
        if not self.batch_sizes or any(int(b) < 1 for b in self.batch_sizes):
            raise ArgumentError("--batch-sizes", list(self.batch_sizes), "positive integers, e.g. 1,2,4,8")
        if not self.lr_indices:
            raise ArgumentError("--lr-min/--lr-max", self.lr_base,
                                "a learning-rate grid with at least one value "
                                "(--lr-max ≥ --lr-min)")
        if not (self.lr_base > 0 and math.isfinite(self.lr_base)):
            raise ArgumentError("--lr-min", self.lr_base, "a positive learning rate")
        if not self.seeds:
            raise ArgumentError("--seeds", self.seeds, "at least one seed")
        if not self.targets or any(not (t > 0 and math.isfinite(t)) for t in self.targets):
            raise ArgumentError("--targets", list(self.targets), "positive target losses, e.g. 0.2,0.1")
        if self.max_steps < 1:
            raise ArgumentError("--max-steps", self.max_steps, "a positive number of steps")
        from trainlab.scaling.stacked import OPTIMIZERS

        if self.optimizer not in OPTIMIZERS:
            raise ArgumentError("--optimizer", self.optimizer, "one of: " + ", ".join(OPTIMIZERS))
        if self.width is not None and self.width < 1:
            raise ArgumentError("--width", self.width, "a positive hidden width")
        if self.dense_band is not None and not (self.dense_band >= 1 and math.isfinite(self.dense_band)):
            raise ArgumentError("dense_band", self.dense_band, "a factor ≥ 1 (or None)")

    @property
    def sorted_targets(self) -> list[float]:
        return sorted(self.targets)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> SweepConfig:
        """The config saved as ``d``; one saved before steps were interpolated says so."""
        known = {f for f in cls.__dataclass_fields__}
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in known}
        kw.setdefault("steps_measure", GRID_SNAPPED)
        return cls(**kw)


def lr_of(config: SweepConfig, k: int) -> float:
    """η_k = lr_base · 2^(k/2): the √2-spaced grid."""
    return config.lr_base * 2.0 ** (k / 2)


def point_key(batch_size: int, k: int, seed: int) -> str:
    return f"B={batch_size}/k={k}/seed={seed}"


_PROBLEMS: dict[str, Problem] = {}


def resolve_problem(config: SweepConfig) -> Problem:
    """The sweep's problem (cached per process: each worker builds it once).

    ``digits-mlp`` takes the sweep's ``width`` (the model-size route: 64-width-10).
    """
    key = repr((config.problem, config.width, config.data, config.loss, config.data_seed))
    if key not in _PROBLEMS:
        if config.problem == "digits-mlp":
            _PROBLEMS[key] = digits_mlp(config.data_seed, width=config.width or 64)
        else:
            if config.width is not None:
                raise ArgumentError("--width", config.width, "only with --problem digits-mlp")
            _PROBLEMS[key] = load_problem(config.problem, seed=config.data_seed, data=config.data,
                                          loss=config.loss)
    return _PROBLEMS[key]


@dataclass(frozen=True)
class SweepTask:
    """One batch size's points of one round, run stacked by one worker."""

    config: dict[str, Any]
    batch_size: int
    points: tuple[tuple[int, int], ...]  # (k, seed)
    prune_cap: float | None = None
    fail_marker: str | None = None  # tests: the first attempt of this task kills its own worker

    @property
    def keys(self) -> list[str]:
        return [point_key(self.batch_size, k, s) for k, s in self.points]


def run_task(task: SweepTask) -> list[dict[str, Any]]:
    """Train the task's points (stacked, one thread) and return one record per point."""
    if task.fail_marker is not None:
        _die_once(task.fail_marker)
    from trainlab.scaling.stacked import StackedRuns, train_stacked
    from trainlab.threads import limit_threads

    config = SweepConfig.from_json(task.config)
    problem = resolve_problem(config)
    targets = config.sorted_targets
    start = time.perf_counter()
    with limit_threads(1):
        outcomes = train_stacked(
            problem, StackedRuns([lr_of(config, k) for k, _ in task.points], [s for _, s in task.points]),
            batch_size=task.batch_size, targets=targets, max_steps=config.max_steps,
            optimizer=config.optimizer, momentum=config.momentum, data_seed=config.data_seed,
            prune_factor=config.prune_factor, prune_cap=task.prune_cap, dense_band=config.dense_band)
    seconds = (time.perf_counter() - start) / max(1, len(task.points))
    records = []
    for (k, seed), o in zip(task.points, outcomes, strict=True):
        records.append({
            "key": point_key(task.batch_size, k, seed), "batch_size": task.batch_size,
            "lr_index": k, "lr": lr_of(config, k), "seed": seed, "optimizer": config.optimizer,
            "targets": targets, "steps_to_target": o.steps_to_target,
            "measured_around": [list(b) if b is not None else None for b in o.brackets],
            "final_loss": o.final_loss,
            "steps_run": o.steps_run, "diverged": o.diverged, "censored": o.censored,
            "examples_seen": o.steps_run * min(task.batch_size, problem.num_examples),
            "seconds": seconds,
        })
    return records


def _die_once(marker: str) -> None:
    import os
    import signal

    p = Path(marker)
    if not p.exists():
        p.write_text("killed once\n")
        os.kill(os.getpid(), signal.SIGKILL)


#: Fields of a point record that the fits read, and their JSON types.
_POINT_FIELDS = {"key": str, "batch_size": int, "lr_index": int, "lr": (int, float), "seed": int,
                 "steps_to_target": list}


def _is_point(rec: Any) -> bool:
    """A point record as the sweep writes it: the fields' types, a batch size ≥ 1, a finite positive
    learning rate, and steps to each target that are whole numbers ≥ 0 or null (not reached)."""
    if not (isinstance(rec, dict) and all(isinstance(rec.get(k), kind) and not isinstance(rec.get(k), bool)
                                          for k, kind in _POINT_FIELDS.items())):
        return False
    steps = rec["steps_to_target"]
    return (rec["batch_size"] >= 1 and math.isfinite(rec["lr"]) and rec["lr"] > 0 and rec["seed"] >= 0
            and all(s is None or (type(s) is int and s >= 0) for s in steps))


class PointStore:
    """``points.jsonl``: one JSON line per finished point, appended atomically.

    Each line is written with one ``write`` on a file opened with O_APPEND and flushed to
    disk, so concurrent appends never interleave and a finished point survives a crash. A
    line cut short by a crash is ignored when the store is read, and truncated away before the
    first append (a store only read, as by ``scaling fit``, leaves the file as it is).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.records: dict[str, dict[str, Any]] = {}
        self._partial_from: int | None = None  # where a partial last line starts, until it is cut
        self._load()

    def _load(self) -> None:
        import json

        if not self.path.exists():
            return
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # a partial last line from an interrupted write: cut before appending
            self._partial_from = end
        for i, line in enumerate(data[:end].splitlines()):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                if not _is_point(rec):
                    raise TypeError
                self.records[rec["key"]] = rec
            except (ValueError, KeyError, TypeError, RecursionError):  # (a line nested too deeply to parse)
                raise DataError(f"{self.path}: line {i + 1} is not a sweep point record") from None

    def append(self, records: Sequence[Mapping[str, Any]]) -> None:
        import json
        import os

        from trainlab.runs import file_mode, to_jsonable

        if not records:
            return
        blob = "".join(json.dumps(to_jsonable(dict(r)), allow_nan=False) + "\n" for r in records).encode()
        if self._partial_from is not None:
            with open(self.path, "r+b") as f:
                f.truncate(self._partial_from)
            self._partial_from = None
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, file_mode())
        try:
            os.write(fd, blob)
            os.fsync(fd)
        finally:
            os.close(fd)
        for r in records:
            self.records[r["key"]] = dict(r)

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def __len__(self) -> int:
        return len(self.records)


def mean_steps(records: Sequence[Mapping[str, Any]], seeds: Sequence[int], target_index: int = 0) -> float:
    """Mean over ``seeds`` of the steps to the target (inf when any seed missed it or is absent)."""
    by_seed = {r["seed"]: r["steps_to_target"][target_index] for r in records}
    vals = [by_seed.get(s) for s in seeds]
    if any(v is None for v in vals):
        return math.inf
    return sum(vals) / len(vals)  # type: ignore[arg-type]


def best_lr_index(config: SweepConfig, store: PointStore, batch_size: int) -> tuple[int | None, float]:
    """(k, mean steps) of the best learning rate at ``batch_size`` so far (None, inf if none reached)."""
    recs = [r for r in store.records.values() if r["batch_size"] == batch_size]
    ks = sorted({r["lr_index"] for r in recs})
    steps = {k: mean_steps([r for r in recs if r["lr_index"] == k], config.seeds) for k in ks}
    finite = [k for k in ks if math.isfinite(steps[k])]
    if not finite:
        return None, math.inf
    k = min(finite, key=lambda k: (steps[k], k))
    return k, steps[k]


def initial_grid(config: SweepConfig, store: PointStore, batch_size: int) -> list[int] | None:
    """The first learning rates tried at ``batch_size``: the configured grid, or (adaptive grid)
    for every batch size but the smallest the window [k*, k* + 2] above the best index k* at the
    next smaller batch size, since ε_opt(B) = ε_max/(1 + B_noise/B) grows with B but at most
    in proportion (doubling B moves it by 0 to 2 √2-steps; McCandlish et al. 2018, eq. 2.7).
    None: the smaller batch size has no best learning rate yet (wait for it)."""
    sizes = sorted(config.batch_sizes)
    if not config.adaptive_grid or batch_size == sizes[0]:
        return list(config.lr_indices)
    smaller = sizes[sizes.index(batch_size) - 1]
    k, _ = best_lr_index(config, store, smaller)
    if k is None:
        return None
    ratio = batch_size / smaller  # ε_opt grows by at most this factor: 2·log2(ratio) √2-steps
    return list(range(k, k + int(math.ceil(2 * math.log2(ratio))) + 1))


def _smaller_unfinished(config: SweepConfig, pending: set[int], batch_size: int) -> bool:
    return config.adaptive_grid and any(b < batch_size for b in pending)


def next_round(config: SweepConfig, store: PointStore,
               fail_marker: str | None = None) -> list[SweepTask]:
    """The tasks still to run: missing points of the grid, plus one √2 step beyond any best
    learning rate at the grid's edge (at most ``max_extensions`` beyond the initial grid)."""
    tasks = []
    cfg = config.to_json()
    pending: set[int] = set()
    for B in sorted(config.batch_sizes):
        if _smaller_unfinished(config, pending, B):
            break
        recs = [r for r in store.records.values() if r["batch_size"] == B]
        grid = initial_grid(config, store, B)
        if grid is None:
            break
        lo0, hi0 = min(grid), max(grid)
        ks = sorted(set(grid) | {r["lr_index"] for r in recs})
        missing = [(k, s) for k in ks for s in config.seeds if point_key(B, k, s) not in store]
        best = math.inf
        if not missing:
            by_k = {k: [r for r in recs if r["lr_index"] == k] for k in ks}
            steps = {k: mean_steps(by_k[k], config.seeds) for k in ks}
            best = min(steps.values())
            lo, hi = ks[0], ks[-1]
            diverged_hi = any(r["diverged"] for r in by_k[hi])
            new_k = None
            if math.isinf(best):
                all_diverged = all(r["diverged"] for r in recs)
                new_k = lo - 1 if all_diverged else (hi + 1 if not diverged_hi else None)
            else:
                kbest = min(ks, key=lambda k: (steps[k], k))
                if kbest == hi and not diverged_hi:
                    new_k = hi + 1
                elif kbest == lo:
                    new_k = lo - 1
            if new_k is not None and lo0 - config.max_extensions <= new_k <= hi0 + config.max_extensions:
                missing = [(new_k, s) for s in config.seeds]
        if missing:
            cap = config.prune_factor * best if math.isfinite(best) else None
            tasks.append(SweepTask(cfg, B, tuple(missing), cap, fail_marker))
            pending.add(B)
    return tasks


def _check_resume(run_dir: Path, config: SweepConfig) -> None:
    path = run_dir / CONFIG_FILE
    if path.is_file():
        try:
            old = read_json(path)
        except ValueError as e:  # not JSON, not UTF-8, nested too deeply
            raise DataError(f"{path}: not a sweep configuration ({e})") from None
        if not isinstance(old, dict):
            raise DataError(f"{path}: not a sweep configuration (a JSON {type(old).__name__}, not an object)")
        if "steps_measure" not in old:
            raise ArgumentError("--resume", str(run_dir),
                                "a sweep made by this trainlab (that one recorded the first measured step "
                                "at or below each target, this one interpolates between measurements; its "
                                "points cannot be mixed: use --overwrite to start again, or fit it as it "
                                "is with `trainlab scaling fit`)")
        if old != config.to_json():
            new = config.to_json()
            changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            raise ArgumentError("--resume", str(run_dir), "a sweep with the same settings (these differ: "
                                + ", ".join(changed) + "; use --overwrite to start again)")


def run_sweep(config: SweepConfig, run_dir: str | Path, executor: Any = None, *,
              progress: Callable[[int, int], None] | None = None,
              fail_marker: str | None = None) -> PointStore:
    """Run (or continue) the sweep in ``run_dir``; returns the store of all finished points.

    ``executor`` is an :class:`~trainlab.scaling.executors.Executor` (inline when None).
    Rounds repeat until no batch size needs more points.
    """
    from trainlab.scaling.executors import InlineExecutor

    executor = executor or InlineExecutor()
    run_dir = Path(run_dir)
    _check_resume(run_dir, config)
    atomic_write_json(run_dir / CONFIG_FILE, config.to_json())
    store = PointStore(run_dir / POINTS_FILE)
    while True:
        tasks = next_round(config, store, fail_marker)
        if not tasks:
            return store
        total = len(store) + sum(len(t.points) for t in tasks)
        results = executor.map_unordered(run_task, tasks)
        try:
            for records in results:
                store.append(records)
                if progress is not None:
                    progress(len(store), total)
        finally:  # an exception here (Ctrl-C in the progress callback) stops the executor's work at once
            close = getattr(results, "close", None)
            if close is not None:
                close()


def interrupted_message(run_dir: str | Path) -> str:
    """The line an interrupted ``trainlab scaling sweep`` ends with: what was kept, how to go on."""
    import shlex

    run_dir = Path(run_dir)
    try:
        kept = len(PointStore(run_dir / POINTS_FILE))
    except (OSError, DataError):
        kept = 0
    return (f"trainlab: interrupted: {kept} finished point{'s' if kept != 1 else ''} kept in "
            f"{run_dir / POINTS_FILE} (continue: the same command with --out "
            f"{shlex.quote(str(run_dir))} --resume)")


def load_sweep(run_dir: str | Path, argument: str = "RUN") -> tuple[SweepConfig, PointStore]:
    """A sweep's config and points; a folder that holds no sweep is a one-line error."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).is_file():
        raise ArgumentError(argument, str(run_dir), f"a sweep run folder (one holding {CONFIG_FILE}, "
                            "made by `trainlab scaling sweep`)")
    try:
        raw = read_json(run_dir / CONFIG_FILE)
        if not isinstance(raw, dict):
            raise TypeError(f"a JSON {type(raw).__name__}, not an object")
        config = SweepConfig.from_json(raw)
    except (ValueError, TypeError) as e:
        raise DataError(f"{run_dir / CONFIG_FILE}: not a sweep configuration ({e})") from None
    return config, PointStore(run_dir / POINTS_FILE)

