"""Claims, their evidence, the registry, and the runner behind ``trainlab verify``.

A :class:`Claim` is one result of the course that trainlab runs and checks. Its ``run``
takes a :class:`Context` (scale, seed, where figures go) and returns :class:`Evidence`:
what was measured, what theory expected, the tolerances, a verdict and a one-line
summary. Each part of trainlab registers its claims in its own ``claims`` module; the
registry is the plain dict :data:`REGISTRY`, filled by importing the modules listed in
:data:`PARTS` (explicitly, in that order).

>>> from trainlab.claims import select
>>> [c.id for c in select(["convnets.by-hand"])]
['convnets.by-hand']
"""

from __future__ import annotations

import fnmatch
import importlib
import re
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainlab import __version__
from trainlab.errors import ArgumentError
from trainlab.plotting import save_figure
from trainlab.runs import atomic_write_json, environment, timestamp, to_jsonable

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
    "register",
    "registered",
    "run_claims",
    "select",
]

SCALES = ("quick", "full")

#: The modules whose import registers each part's claims, in report order.
PARTS: tuple[str, ...] = (
    "trainlab.optim.claims",
    "trainlab.convnets.claims",
    "trainlab.colourize.claims",
)

#: Claim id -> Claim. Filled by :func:`register`; read through :func:`all_claims`.
REGISTRY: dict[str, Claim] = {}

_ID = re.compile(r"^[a-z][a-z0-9_]*\.[a-z0-9][a-z0-9-]*$")

ProgressFn = Callable[[int, int, str], None]
"""``progress(done, total, message)``: claims finished so far, claims in the run, what is running."""


class ClaimSkipped(Exception):
    """Raised inside a claim's ``run`` when it cannot run here (optional data or dependency)."""


@dataclass
class Evidence:
    """What a claim measured, what theory expected, and the verdict.

    ``measured`` and ``expected`` hold plain numbers, strings or (nested) lists; a claim's
    ``expected`` comes from theory, its ``measured`` from running.
    """

    measured: dict[str, Any]
    expected: dict[str, Any]
    passed: bool
    summary: str
    tolerance: dict[str, Any] = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)


@dataclass
class Context:
    """What a claim's ``run`` gets: scale, seed, the run folder, and a progress hook.

    ``seed`` is the run's seed; :meth:`generator` and :meth:`rng` are seeded from it and
    the claim's id, so a claim gives the same numbers whether it runs alone or with others.
    """

    claim_id: str
    scale: str
    seed: int
    out_dir: Path
    progress: Callable[[str], None] = lambda message: None
    figures: list[str] = field(default_factory=list)

    @property
    def quick(self) -> bool:
        return self.scale == "quick"

    @property
    def claim_seed(self) -> int:
        return (self.seed * 1_000_003 + zlib.crc32(self.claim_id.encode())) % (2**63)

    def generator(self, offset: int = 0) -> torch.Generator:
        """A fresh CPU ``torch.Generator`` for this claim (``offset`` gives independent streams)."""
        return torch.Generator().manual_seed(self.claim_seed + offset)

    def rng(self, offset: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.claim_seed, offset])

    def save_figure(self, fig: Any, name: str, data: dict[str, Any] | None = None) -> str:
        """Save ``fig`` (and its data) under ``figures/``; returns the run-relative path."""
        path = self.out_dir / "figures" / f"{self.claim_id}-{name}.png"
        save_figure(fig, path, data)
        rel = path.relative_to(self.out_dir).as_posix()
        if rel not in self.figures:
            self.figures.append(rel)
        return rel


@dataclass(frozen=True)
class Claim:
    """One result of the course: ``run(ctx) -> Evidence``."""

    id: str
    section: str
    statement: str
    run: Callable[[Context], Evidence]

    def __post_init__(self) -> None:
        if not _ID.match(self.id):
            raise ValueError(f"claim id {self.id!r} must look like 'part.short-name'")


def register(claim: Claim) -> Claim:
    """Add ``claim`` to the registry; ids are unique and never change once published."""
    if claim.id in REGISTRY and REGISTRY[claim.id] is not claim:
        raise ValueError(f"claim id {claim.id!r} is registered twice")
    REGISTRY[claim.id] = claim
    return claim


@contextmanager
def registered(*claims: Claim) -> Iterator[None]:
    """Register ``claims`` for the duration of a ``with`` block (tests, plugins)."""
    all_claims()
    for c in claims:
        register(c)
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
    results: dict[str, Any]

    @property
    def statuses(self) -> dict[str, str]:
        return {c["id"]: c["status"] for c in self.results["claims"]}

    @property
    def ok(self) -> bool:
        """True when no claim failed or raised (skipped claims do not count against a run)."""
        return all(s in ("passed", "skipped") for s in self.statuses.values())


def _check_evidence(ev: Any, claim_id: str) -> Evidence:
    if not isinstance(ev, Evidence):
        raise TypeError(f"claim {claim_id} returned {type(ev).__name__}, not Evidence")
    if not isinstance(ev.passed, bool | np.bool_):
        raise TypeError(f"claim {claim_id}: Evidence.passed must be a bool, got {ev.passed!r}")
    return ev


def _run_one(claim: Claim, scale: str, seed: int, run_dir: Path,
             progress: ProgressFn, done: int, total: int,
             clock: Callable[[], float]) -> dict[str, Any]:
    ctx = Context(claim.id, scale, seed, run_dir,
                  progress=lambda msg: progress(done, total, f"{claim.id}: {msg}"))
    record: dict[str, Any] = {"id": claim.id, "section": claim.section,
                              "statement": claim.statement, "status": "error",
                              "measured": {}, "expected": {}, "tolerance": {},
                              "summary": "", "seconds": 0.0, "figures": []}
    start = clock()
    try:
        # Claims that build nn.Modules draw from the global RNG: seed it per claim and
        # restore it afterwards, so library users' global state is untouched.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(ctx.claim_seed)
            ev = _check_evidence(claim.run(ctx), claim.id)
        record.update(status="passed" if ev.passed else "failed",
                      measured=to_jsonable(ev.measured), expected=to_jsonable(ev.expected),
                      tolerance=to_jsonable(ev.tolerance), summary=str(ev.summary))
        figures = list(dict.fromkeys([*ctx.figures, *ev.figures]))
    except ClaimSkipped as e:
        record.update(status="skipped", summary=f"skipped: {e}")
        figures = list(ctx.figures)
    except Exception as e:  # a claim that raises is recorded; the others still run
        record.update(status="error", summary=f"{type(e).__name__}: {e}")
        figures = list(ctx.figures)
    record["seconds"] = round(clock() - start, 4)
    record["figures"] = figures
    return record


def run_claims(ids: Iterable[str], scale: str = "quick", seed: int = 0,
               out_dir: str | Path = "runs/verify", *,
               progress: ProgressFn | None = None,
               clock: Callable[[], float] = time.perf_counter) -> RunResult:
    """Run the claims matching ``ids`` (ids or globs) and write the run folder.

    ``results.json`` is rewritten after every claim, so an interrupted run keeps what it
    finished; on Ctrl-C the results so far (marked ``"interrupted": true``) and the report
    are written, then ``KeyboardInterrupt`` propagates. Reports are rendered at the end.
    """
    from trainlab.report import write_report

    if scale not in SCALES:
        raise ArgumentError("--scale", scale, "one of: " + ", ".join(SCALES))
    claims = select(ids)
    run_dir = Path(out_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    progress = progress or (lambda done, total, message: None)
    results: dict[str, Any] = {
        "trainlab_version": __version__, "created": timestamp(), "scale": scale,
        "seed": int(seed), "environment": environment(), "claims": [],
    }
    path = run_dir / "results.json"
    try:
        for i, claim in enumerate(claims):
            progress(i, len(claims), claim.id)
            results["claims"].append(_run_one(claim, scale, seed, run_dir, progress, i,
                                              len(claims), clock))
            atomic_write_json(path, results)
        progress(len(claims), len(claims), "done")
    except KeyboardInterrupt:
        results["interrupted"] = True
        atomic_write_json(path, results)
        write_report(run_dir)
        raise
    atomic_write_json(path, results)
    write_report(run_dir)
    return RunResult(run_dir, results)
