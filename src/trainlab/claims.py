"""Claims, their evidence, the registry, and the runner behind ``trainlab verify``.

A claim is one result of the course that trainlab runs and checks. There is one way to
declare one: the :func:`claim` decorator, beside its run function, carrying the id,
section and statement. The function gets a :class:`Context` (scale, seed, where figures
go, and ``ctx.checks``), makes its checks, and returns a summary template::

    @claim("hpo.one-step-optimal-lr", section="§2 Hyperparameters",
           statement="After one GD step L₁(η) is a convex quadratic minimised at η* = ...")
    def one_step_optimal_lr(ctx: Context) -> str:
        eta_closed, eta_numeric = ...
        ctx.checks.close("eta_star", eta_numeric, eta_closed, rtol=1e-8)
        return "η* {eta_star}"

Each check records measured, expected and tolerance and decides pass or fail
(:mod:`trainlab.checks`); the verdict is their conjunction and the summary is rendered
from the same records, so it cannot state what was not measured. A claim that cannot run
here raises :class:`ClaimSkipped`. Each part registers its claims in its own ``claims``
module; :data:`REGISTRY` is filled by importing the modules in :data:`PARTS`, in order.

>>> from trainlab.claims import select
>>> [c.id for c in select(["convnets.by-hand"])]
['convnets.by-hand']
"""

from __future__ import annotations

import fnmatch
import importlib
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainlab import __version__
from trainlab.checks import Checks
from trainlab.errors import ArgumentError
from trainlab.plotting import save_figure
from trainlab.results import STATUSES, ClaimRecord, Results
from trainlab.runs import atomic_write_json, environment, timestamp, to_jsonable
from trainlab.seeding import derive_seed, forked_rng, generator, numpy_rng

__all__ = [
    "PARTS",
    "REGISTRY",
    "SCALES",
    "Claim",
    "ClaimSkipped",
    "Context",
    "Evidence",
    "RunResult",
    "all_claims",
    "claim",
    "registered",
    "run_claims",
    "select",
]

SCALES = ("quick", "full")

#: The modules whose import registers each part's claims, in report order.
PARTS: tuple[str, ...] = (
    "trainlab.optim.claims",
    "trainlab.hpo.claims",
    "trainlab.convnets.claims",
    "trainlab.colourize.counts",  # §3's count claim on the §5 networks
    "trainlab.scaling.claims",
    "trainlab.colourize.claims",
    "trainlab.loops.claims",
)

#: Claim id -> Claim. Filled by :func:`claim`; read through :func:`all_claims`.
REGISTRY: dict[str, Claim] = {}

_ID = re.compile(r"^[a-z][a-z0-9_]*\.[a-z0-9][a-z0-9-]*$")

ProgressFn = Callable[[int, int, str], None]
"""``progress(done, total, message)``: claims finished so far, claims in the run, what is running."""


class ClaimSkipped(Exception):
    """Raised inside a claim's run function when it cannot run here (optional data or dependency)."""


@dataclass
class Evidence:
    """What one claim run produced: the records of its checks, the verdict and the summary.

    Built by the engine from ``ctx.checks``; ``measured`` and ``expected`` hold plain
    numbers, strings or (nested) lists.
    """

    measured: dict[str, Any]
    expected: dict[str, Any]
    passed: bool
    summary: str
    tolerance: dict[str, Any] = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_checks(cls, checks: Checks, template: str | None, figures: list[str]) -> Evidence:
        return cls(measured=dict(checks.measured), expected=dict(checks.expected),
                   passed=checks.passed, summary=checks.summary(template),
                   tolerance=dict(checks.tolerance), figures=list(figures),
                   checks=[c.as_record() for c in checks.checks])


@dataclass
class Context:
    """What a claim's run function gets: scale, seed, the run folder, checks, a progress hook.

    ``seed`` is the run's seed; :attr:`claim_seed`, :meth:`generator` and :meth:`rng` are
    derived from it and the claim's id, so a claim gives the same numbers whether it runs
    alone or with others.
    """

    claim_id: str
    scale: str
    seed: int
    out_dir: Path
    progress: Callable[[str], None] = lambda message: None
    figures: list[str] = field(default_factory=list)
    checks: Checks = field(default_factory=Checks)

    @property
    def quick(self) -> bool:
        return self.scale == "quick"

    @property
    def claim_seed(self) -> int:
        return derive_seed(self.seed, self.claim_id)

    def generator(self, offset: int = 0):  # -> torch.Generator
        """A fresh CPU ``torch.Generator`` for this claim (``offset`` gives independent streams)."""
        return generator(self.seed, self.claim_id, offset)

    def rng(self, offset: int = 0):  # -> numpy.random.Generator
        return numpy_rng(self.seed, self.claim_id, offset)

    def save_figure(self, fig: Any, name: str, data: dict[str, Any] | None = None) -> str:
        """Save ``fig`` (and its data) under ``figures/``; returns the run-relative path."""
        path = self.out_dir / "figures" / f"{self.claim_id}-{name}.png"
        save_figure(fig, path, data)
        rel = path.relative_to(self.out_dir).as_posix()
        if rel not in self.figures:
            self.figures.append(rel)
        return rel


RunFn = Callable[[Context], "str | None"]


@dataclass(frozen=True)
class Claim:
    """One result of the course. ``run(ctx)`` makes checks on ``ctx.checks`` and returns a
    summary template (or None for the default summary of the checks)."""

    id: str
    section: str
    statement: str
    run: RunFn

    def __post_init__(self) -> None:
        if not _ID.match(self.id):
            raise ValueError(f"claim id {self.id!r} must look like 'part.short-name'")

    def evidence(self, ctx: Context) -> Evidence:
        """Run the claim in ``ctx`` and build its evidence from the checks it made."""
        template = self.run(ctx)
        if template is not None and not isinstance(template, str):
            raise TypeError(f"claim {self.id} returned {type(template).__name__}, not a summary template")
        return Evidence.from_checks(ctx.checks, template, ctx.figures)


def _register(c: Claim) -> Claim:
    if c.id in REGISTRY and REGISTRY[c.id] is not c:
        raise ValueError(f"claim id {c.id!r} is registered twice")
    REGISTRY[c.id] = c
    return c


def claim(id: str, *, section: str, statement: str) -> Callable[[RunFn], RunFn]:
    """Declare and register a claim; decorates its run function (returned unchanged).

    ``statement`` may be a wrapped triple-quoted paragraph: it is joined into one line.
    The registered :class:`Claim` is attached to the function as ``fn.claim``.
    """

    def decorate(fn: RunFn) -> RunFn:
        c = _register(Claim(id, section, " ".join(statement.split()), fn))
        fn.claim = c  # type: ignore[attr-defined]
        return fn

    return decorate


@contextmanager
def registered(*claims: Claim) -> Iterator[None]:
    """Register ``claims`` for the duration of a ``with`` block (tests, plugins)."""
    all_claims()
    for c in claims:
        _register(c)
    try:
        yield
    finally:
        for c in claims:
            REGISTRY.pop(c.id, None)


_loaded = False


def all_claims() -> list[Claim]:
    """Every registered claim, importing each part's claims module on first use."""
    global _loaded
    if not _loaded:
        for module in PARTS:
            importlib.import_module(module)
        _loaded = True
    return list(REGISTRY.values())


def select(patterns: Iterable[str] = ()) -> list[Claim]:
    """Claims whose id matches any of the glob ``patterns`` (all claims when none given).

    A pattern that matches nothing is an error: a typo must not silently run zero claims.
    """
    claims = all_claims()
    patterns = list(patterns)
    if not patterns:
        return claims
    chosen: set[str] = set()
    for p in patterns:
        hits = {c.id for c in claims if fnmatch.fnmatchcase(c.id, p)}
        if not hits:
            raise ArgumentError("PATTERN", p, "a claim id or glob such as 'convnets.*' "
                                "(run `trainlab list` to see the ids)")
        chosen |= hits
    return [c for c in claims if c.id in chosen]


@dataclass
class RunResult:
    run_dir: Path
    results: Results
    reused: list[str] = field(default_factory=list)  # ids taken over from a resumed run
    selected: list[str] | None = None  # ids this call ran or kept (None: every record)

    @property
    def statuses(self) -> dict[str, str]:
        """Status of each claim this call ran or kept (results.json may hold more: the records of
        claims a resumed run did not select this time stay there)."""
        chosen = None if self.selected is None else set(self.selected)
        return {c["id"]: c["status"] for c in self.results["claims"] if chosen is None or c["id"] in chosen}

    @property
    def ok(self) -> bool:
        """True when no claim failed or raised (skipped claims do not count against a run)."""
        return all(s in ("passed", "skipped") for s in self.statuses.values())


def run_one(c: Claim, scale: str, seed: int, run_dir: Path,
            progress: Callable[[str], None] = lambda m: None,
            clock: Callable[[], float] = time.perf_counter) -> ClaimRecord:
    """Run one claim and return its results.json record (never raises for a claim's own error)."""
    ctx = Context(c.id, scale, seed, run_dir, progress=progress)
    record: dict[str, Any] = {"id": c.id, "section": c.section, "statement": c.statement,
                              "status": "error", "measured": {}, "expected": {}, "tolerance": {},
                              "summary": "", "seconds": 0.0, "figures": [], "checks": []}
    start = clock()
    try:
        # Claims that build nn.Modules draw from the global RNG: seed it per claim and
        # restore it afterwards, so library users' global state is untouched.
        with forked_rng(ctx.claim_seed):
            ev = c.evidence(ctx)
        record.update(status="passed" if ev.passed else "failed",
                      measured=to_jsonable(ev.measured), expected=to_jsonable(ev.expected),
                      tolerance=to_jsonable(ev.tolerance), summary=str(ev.summary),
                      checks=to_jsonable(ev.checks))
    except ClaimSkipped as e:
        record.update(status="skipped", summary=f"skipped: {e}")
    except (KeyboardInterrupt, MemoryError):
        raise
    except Exception as e:  # a claim that raises is recorded; the others still run
        record.update(status="error", summary=f"{type(e).__name__}: {e}")
    record["seconds"] = round(clock() - start, 4)
    record["figures"] = list(dict.fromkeys(ctx.figures))
    assert record["status"] in STATUSES
    return record  # type: ignore[return-value]


def reusable_records(run_dir: Path, scale: str, seed: int) -> dict[str, ClaimRecord]:
    """Finished claims of an earlier run in ``run_dir`` that ``--resume`` may keep.

    Only a run of the same trainlab version, scale and seed counts; of its claims, those
    that passed, failed or were skipped and whose figures are all still there (a claim
    that raised is run again).
    """
    return _reusable(_earlier_run(run_dir, scale, seed)[0], run_dir)


def _earlier_run(run_dir: Path, scale: str, seed: int) -> tuple[dict[str, ClaimRecord], list[str]]:
    """Every claim record of the run already in ``run_dir``, and the claims it was asked for but did
    not finish (refused unless it is a run of this trainlab version, scale and seed)."""
    from trainlab.report import load_results

    if not (run_dir / "results.json").is_file():
        return {}, []
    old = load_results(run_dir, "--out")
    if (old["trainlab_version"], old["scale"], old["seed"]) != (__version__, scale, int(seed)):
        raise ArgumentError("--out", str(run_dir),
                            f"a run to --resume of trainlab {__version__} at scale {scale} and seed {seed} "
                            f"(this one is trainlab {old['trainlab_version']}, scale {old['scale']}, "
                            f"seed {old['seed']}; use --overwrite to replace it)")
    return {c["id"]: c for c in old["claims"]}, list(old.get("pending", []))


def _reusable(records: dict[str, ClaimRecord], run_dir: Path) -> dict[str, ClaimRecord]:
    return {cid: c for cid, c in records.items()
            if c["status"] in ("passed", "failed", "skipped")
            and all((run_dir / f).is_file() for f in c.get("figures", []))}


def run_claims(ids: Iterable[str], scale: str = "quick", seed: int = 0,
               out_dir: str | Path = "runs/verify", *,
               resume: bool = False,
               progress: ProgressFn | None = None,
               clock: Callable[[], float] = time.perf_counter) -> RunResult:
    """Run the claims matching ``ids`` (ids or globs) and write the run folder.

    The folder must exist (see :func:`trainlab.runs.prepare_run_dir`). With ``resume`` the
    finished claims of an earlier run there (same version, scale, seed) are kept and only
    the rest run. ``results.json`` is rewritten after every claim, so an interrupted run
    keeps what it finished; on Ctrl-C the results so far (marked ``"interrupted": true``)
    and the report are written, then ``KeyboardInterrupt`` propagates.
    """
    from trainlab.report import write_report

    if scale not in SCALES:
        raise ArgumentError("scale", scale, "one of: " + ", ".join(SCALES))
    claims = select(ids)
    run_dir = Path(out_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    # Every record of the earlier run: those of claims not reached yet (or not selected this
    # time) stay in results.json, so an interruption or other patterns lose nothing finished.
    earlier, pending_before = _earlier_run(run_dir, scale, seed) if resume else ({}, [])
    done_before = _reusable(earlier, run_dir)
    # What this run is asked for: these claims, and those an interrupted earlier call never finished
    # (a resume with other patterns keeps the run marked interrupted until they are done).
    asked = list(dict.fromkeys([*pending_before, *(c.id for c in claims)]))
    progress = progress or (lambda done, total, message: None)
    finished: list[ClaimRecord] = []
    results: Results = {
        "trainlab_version": __version__, "created": timestamp(), "scale": scale,  # type: ignore[typeddict-item]
        "seed": int(seed), "environment": environment(), "claims": finished,
    }

    def save(interrupted: bool = False) -> None:
        ran = {r["id"] for r in finished}
        results["claims"] = finished + [r for cid, r in earlier.items() if cid not in ran]
        pending = [cid for cid in asked if cid not in ran and (cid not in earlier or cid in pending_before)]
        results.pop("interrupted", None)
        results.pop("pending", None)
        if interrupted or pending:
            results["interrupted"] = True
            results["pending"] = pending
        atomic_write_json(path, results)

    path = run_dir / "results.json"
    reused: list[str] = []
    try:
        for i, c in enumerate(claims):
            progress(i, len(claims), c.id)
            if c.id in done_before:
                finished.append(done_before[c.id])
                reused.append(c.id)
                continue
            finished.append(run_one(c, scale, seed, run_dir,
                                    lambda msg, i=i, c=c: progress(i, len(claims), f"{c.id}: {msg}"),
                                    clock))
            save()
        progress(len(claims), len(claims), "done")
    except KeyboardInterrupt:
        save(interrupted=True)
        write_report(run_dir)
        raise
    save()
    write_report(run_dir)
    return RunResult(run_dir, results, reused, [c.id for c in claims])

